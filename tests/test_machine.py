"""The machine description that every benchmark report records."""

from __future__ import annotations

import json
import os

import torch

from ganaug.downstream.machine import describe


def test_describes_this_machine_in_json():
    info = describe()
    assert info["torch"] == torch.__version__ and info["logical_cpus"] == os.cpu_count()
    assert info["cpu"] and "onnxruntime" in info
    assert ("gpu" in info) == torch.cuda.is_available()
    assert json.loads(json.dumps(info)) == info  # goes into results.json as it is


def test_records_how_busy_the_machine_was(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (1.234, 0.5, 0.0))
    assert describe()["load_average"] == [1.23, 0.5, 0.0]
