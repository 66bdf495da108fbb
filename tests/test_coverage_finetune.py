"""benchmarks/coverage_finetune.py: every variant continues the trained run (its weights, its config but the
variant's changes), gets a scored row, and is not retrained while its settings stay the same."""

import json

import pytest
import torch

from benchmarks import coverage_finetune
from ganaug.train.checkpoint import load_checkpoint
from ganaug.train.trainer import Trainer
from tests.test_coverage import evaluator_dir  # noqa: F401  (fixture)


def test_variants_continue_the_run_with_their_changes_and_are_cached(tmp_path, tiny_run, evaluator_dir, monkeypatch):  # noqa: F811
    starts = {}
    fit = Trainer.fit

    def fit_and_record(trainer):  # the weights each variant starts from
        starts[trainer.run_dir.name] = {k: v.clone() for k, v in trainer.gan.G.state_dict().items()}
        return fit(trainer)

    monkeypatch.setattr(Trainer, "fit", fit_and_record)
    out, work = tmp_path / "out", tmp_path / "work"
    argv = [str(tiny_run), "--evaluator", str(evaluator_dir), "--data-root", str(tmp_path), "--epochs", "1"]
    argv += ["--variants", "control,density-2-clip-0.9", "--threads", "1", "--eval-per-class", "10"]
    argv += ["--work-dir", str(work), "--out-dir", str(out)]
    rows = coverage_finetune.main(argv)["variants"]
    assert set(rows) == {"control", "density-2-clip-0.9"}
    trained = load_checkpoint(tiny_run)["G"]
    for name, row in rows.items():
        assert "error" not in row, row
        assert 0 <= row["recall"] <= 1 and row["fd"] >= 0 and row["cas"] is None
        for key, value in trained.items():
            assert torch.equal(starts[name][key], value), (name, key)
        config = json.loads((work / "runs" / name / "config.json").read_text())["config"]
        assert config["epochs"] == 1 and config["flatten_density"] == (2.0 if name != "control" else 0.0)
        assert (work / "runs" / name / "generator.onnx").is_file()
    md = (out / "report.md").read_text()
    assert "| control | `{}` |" in md and '| density-2-clip-0.9 | `{"flatten_density": 2.0' in md

    monkeypatch.setattr(coverage_finetune, "continue_run", lambda *a, **k: pytest.fail("cached: no training"))
    assert coverage_finetune.main(argv)["variants"] == rows


def test_unknown_variant_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        coverage_finetune.parse_args([str(tmp_path), "--evaluator", "x", "--data-root", "y", "--variants", "hot"])


def test_a_report_md_it_did_not_write_is_left_alone(tmp_path, tiny_run):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.md").write_text("my notes\n")
    argv = [str(tiny_run), "--evaluator", "x", "--data-root", str(tmp_path), "--out-dir", str(out)]
    with pytest.raises(SystemExit, match="not a benchmark report"):
        coverage_finetune.main([*argv, "--work-dir", str(tmp_path / "work")])
    assert (out / "report.md").read_text() == "my notes\n" and sorted(p.name for p in out.iterdir()) == ["report.md"]
