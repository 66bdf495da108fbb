"""benchmarks/cas_probe.py end to end on fake MNIST files: generated-only and real-only classifiers."""

from __future__ import annotations

import pytest

from ganaug.cli.bench import _load_benchmark


@pytest.fixture(scope="module")
def cas_probe():
    return _load_benchmark("cas_probe")


def test_generated_and_real_sources(cas_probe, fake_mnist_root, tiny_run):
    tiny = ["--data-root", str(fake_mnist_root), "--clf-steps", "3", "--clf-width", "4", "--threads", "1"]
    fake = cas_probe.main([*tiny, "--gan", str(tiny_run), "--per-class", "3", "--classical"])
    assert fake["source"] == str(tiny_run) and fake["per_class"] == 3 and fake["classical"]
    # the fake test split holds 5 images of each of 10 classes: accuracy is k/50 and the mean of the per-class ones
    assert len(fake["per_class_accuracy"]) == 10
    assert fake["accuracy"] == pytest.approx(sum(fake["per_class_accuracy"]) / 10)
    assert fake["accuracy"] * 50 == pytest.approx(round(fake["accuracy"] * 50))
    assert (fake["clf_steps"], fake["clf_width"]) == (3, 4)
    real = cas_probe.main([*tiny, "--real"])
    assert real["source"] == "real training split" and real["per_class"] is None
    assert cas_probe.main([*tiny, "--real"])["accuracy"] == real["accuracy"]  # seeded: the same run twice


def test_needs_exactly_one_source(cas_probe, fake_mnist_root, tiny_run):
    with pytest.raises(SystemExit) as e:
        cas_probe.main(["--data-root", str(fake_mnist_root), "--real", "--gan", str(tiny_run)])
    assert e.value.code == 2
