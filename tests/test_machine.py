"""The machine description that every benchmark report records."""

from __future__ import annotations

import json
import os

import torch

from ganaug.machine import describe


def test_describes_this_machine_in_json():
    info = describe()
    assert info["torch"] == torch.__version__ and info["logical_cpus"] == os.cpu_count()
    assert info["cpu"] and "onnxruntime" in info
    assert ("gpu" in info) == torch.cuda.is_available()
    assert json.loads(json.dumps(info)) == info  # goes into results.json as it is
