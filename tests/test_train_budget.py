"""benchmarks/train_budget.py: the FLOPs of a preset's training image as torch counts them, and the report that
sets a step budget against this machine's speed."""

from __future__ import annotations

import json

import pytest

from ganaug.models.dcgan import discriminator_flops, generator_flops
from ganaug.train.presets import load, resolve
from tests.conftest import make_fake_mnist

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_counted_arithmetic_of_a_training_image_is_the_steps_passes(tmp_path):
    from benchmarks.train_budget import main as train_budget

    root = make_fake_mnist(tmp_path / "data", folder="FashionMNIST")  # not centred: the fashion preset
    out = tmp_path / "out"
    argv = ["--preset", "fashion-mnist", "--data-root", str(root), "--flop-per-class", "20", "--speed-per-class", "20"]
    result = train_budget([*argv, "--minutes", "30", "--threads", "1", "--out", str(out)])
    model = resolve(preset="fashion-mnist", data_root=str(root)).config.model
    g, d = generator_flops(model), discriminator_flops(model)
    # A step per image: G forward, D on real and fake with their backward (2x a forward each), R1's double
    # backward on the reals every 4th step (about 3 D forwards), and the G step's D forward, D backward and G
    # backward: about 3 G + 9.75 D. Forward passes alone would be G + 3 D, a third of it.
    assert result["flop"]["flop_per_image"] == pytest.approx(3 * g + 9.75 * d, rel=0.05)
    steps = load("fashion-mnist").steps
    assert result["steps"] == steps and result["training_images"] == steps * 64
    ips = result["train"]["images_per_second"]
    assert result["minutes_at_measured_speed"] == pytest.approx(steps * 64 / ips / 60)
    total = steps * 64 * result["flop"]["flop_per_image"]
    assert result["gflops_needed"] == pytest.approx(total / 1800 / 1e9)
    assert (
        result["matmul_gflops"] > 0 and json.loads(out.with_suffix(".json").read_text())["preset"] == "fashion-mnist@1"
    )
    assert "GFLOP/s that 30 minutes need" in out.with_suffix(".md").read_text()
