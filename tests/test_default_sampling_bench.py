"""The default-sampling benchmark (benchmarks/default_sampling.py) on a tiny Fashion-MNIST-format run: every
variant scored by the evaluator and the second judge, with the model's own check as the T + check variant."""

from __future__ import annotations

import json

import pytest

from ganaug.classify.evaluator import EvaluatorConfig, EvaluatorTraining, train_evaluator_on
from ganaug.train.export import export_onnx
from ganaug.train.trainer import Trainer
from tests.conftest import make_fake_mnist, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


def test_default_sampling_scores_a_fashion_run_with_its_own_check(tmp_path):
    from benchmarks.default_sampling import main as default_sampling

    root = make_fake_mnist(tmp_path / "data", folder="FashionMNIST")
    run = tmp_path / "run"
    sampling = {"temperature": 1.0, "label_check": "label_check.onnx"}
    config = tiny_config(dataset="fashion-mnist", data_root=str(root), per_class=None, sampling=sampling, preset="t@1")
    Trainer.new(config, run, overwrite=True, progress=False).fit()
    export_onnx(run)
    settings = EvaluatorTraining(epochs=1, batch_size=64, model=EvaluatorConfig(width=4, hidden=16), seed=2)
    evaluator = train_evaluator_on("fashion-mnist", root=root, settings=settings).save(tmp_path / "ev")
    out = tmp_path / "out"
    argv = [str(run), "--evaluator", str(evaluator), "--data-root", str(root), "--dataset", "fashion-mnist"]
    argv += ["--label-check", str(run / "label_check.onnx"), "--temperature", "1.2", "--per-class", "20"]
    result = default_sampling([*argv, "--only", "quality", "--threads", "1", "--out", str(out)])
    rows = result["runs"][str(run)]
    assert set(rows) == {"plain", "model", "T 1.2 + check"}
    assert rows["plain"]["sampling"]["label_check"] is None
    assert rows["model"]["sampling"]["label_check"] == rows["T 1.2 + check"]["sampling"]["label_check"] is not None
    for row in rows.values():
        assert 0 <= row["recall"] <= 1 and row["fd_ratio"] > 0 and 0 <= row["judge_fidelity"] <= 1
    assert json.loads(out.with_suffix(".json").read_text())["dataset"] == "fashion-mnist"
    assert "fashion-mnist test split" in out.with_suffix(".md").read_text()
    (tmp_path / "mine.json").write_text("{}")  # someone else's file of that name is refused, and kept
    with pytest.raises(SystemExit):
        default_sampling([*argv, "--only", "quality", "--threads", "1", "--out", str(tmp_path / "mine")])
    assert (tmp_path / "mine.json").read_text() == "{}"
