"""benchmarks/unshuffled_dropin.py end to end at toy size: the example loop, unshuffled and shuffled, and its report."""

from __future__ import annotations

import json

import pytest

from ganaug.cli.bench import _load_benchmark
from tests.test_dataset import export_tiny_once


@pytest.fixture(scope="module")
def dropin():
    return _load_benchmark("unshuffled_dropin")


def test_both_loaders_and_the_report(dropin, tmp_path_factory, tiny_run, fake_mnist_root, tmp_path):
    onnx_path = export_tiny_once(tmp_path_factory, tiny_run)
    out = tmp_path / "report"
    argv = ["--generator", str(onnx_path), "--data-root", str(fake_mnist_root), "--quick", "--per-class", "3"]
    doc = dropin.main([*argv, "--test-limit", "20", "--threads", "1", "--out", str(out)])
    assert doc["config"]["per_class"] == 3 and doc["config"]["epochs"] == 1 and doc["config"]["test_limit"] == 20
    assert [run["shuffle"] for run in doc["runs"]] == [False, True]
    unshuffled, shuffled = (run["test_accuracy"] for run in doc["runs"])
    assert (doc["unshuffled_accuracy"], doc["shuffled_accuracy"]) == (unshuffled, shuffled)
    assert [run["per_epoch"] for run in doc["runs"]] == [[unshuffled], [shuffled]]  # one epoch, one test each
    assert doc["difference_pp"] == pytest.approx(100 * (shuffled - unshuffled))
    assert doc["meets_bar"] == (abs(doc["difference_pp"]) <= 1.0)
    assert json.loads(out.with_suffix(".json").read_text()) == json.loads(json.dumps(doc))
    assert f"{doc['difference_pp']:+.2f} pp" in out.with_suffix(".md").read_text()


def test_quick_defaults_and_bad_sizes(dropin):
    args = dropin.parse_args(["--generator", "g.onnx", "--data-root", "d", "--quick"])
    assert (args.per_class, args.epochs, args.test_limit) == (500, 1, 2000)
    assert dropin.parse_args(["--generator", "g.onnx", "--data-root", "d"]).per_class == 6000
    with pytest.raises(SystemExit) as e:
        dropin.parse_args(["--generator", "g.onnx", "--data-root", "d", "--epochs", "0"])
    assert e.value.code == 2
