"""benchmarks/coverage.py: the lever sweep end to end on digits (1 epoch, 2 levers, tiny CAS), its cache and report."""

import json
import subprocess

import pytest
import torch

from benchmarks import coverage
from ganaug.classify.evaluator import Evaluator, EvaluatorConfig, EvaluatorNet
from ganaug.data.sources import load_source


@pytest.fixture
def evaluator_dir(tmp_path):
    cfg = EvaluatorConfig(width=4, hidden=16)
    torch.manual_seed(0)
    ev = Evaluator(EvaluatorNet(cfg), cfg, classes=load_source("digits").classes, meta={"data": {"dataset": "digits"}})
    return ev.save(tmp_path / "ev")


def test_sweep_writes_a_row_a_lever_caches_them_and_rebuilds_the_report(tmp_path, evaluator_dir, monkeypatch):
    out, work = tmp_path / "out", tmp_path / "work"
    argv = ["--dataset", "digits", "--epochs", "1", "--levers", "baseline,g-wider", "--jobs", "2", "--threads", "1"]
    argv += ["--evaluator", str(evaluator_dir), "--eval-per-class", "10", "--cas-classifier", "smoke"]
    argv += ["--cas-per-class", "10", "--out-dir", str(out), "--work-dir", str(work)]
    results = coverage.main(argv)
    rows = results["levers"]
    assert set(rows) == {"baseline", "g-wider"}
    for name, row in rows.items():
        assert "error" not in row, row
        assert row["command"] == " ".join(coverage.lever_command(name, coverage.parse_args(argv)))
        assert 0 <= row["recall"] <= 1 and 0 <= row["cas"] <= 1 and row["fd"] >= 0 and row["wall_seconds"] > 0
        assert row["cas_gap_pp"] == pytest.approx(100 * (row["cas_ceiling"] - row["cas"]))
    assert rows["g-wider"]["command"].endswith("--epochs 1 --g-width 64")
    assert rows["baseline"]["cas_ceiling"] == rows["g-wider"]["cas_ceiling"]  # one ceiling, from the shared cache
    config = json.loads((work / "runs" / "g-wider" / "config.json").read_text())["config"]
    baseline = json.loads((work / "runs" / "baseline" / "config.json").read_text())["config"]
    assert config["model"]["g_width"] == 64 and baseline["model"]["g_width"] == 32
    assert baseline["preset"] == config["preset"] == "digits@1"
    # what comes back from a GPU machine: a few files, no folders
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert files == ["report.md", "results.json"]
    md = (out / "report.md").read_text()
    assert "| baseline | `ganaug train --dataset digits --epochs 1` |" in md and "| g-wider |" in md
    assert json.loads((out / "results.json").read_text())["machine"]["ganaug"]

    # a rerun with the same settings starts no process; a changed setting reruns
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a) or pytest.fail("no process expected"))
    assert coverage.main(argv)["levers"] == rows and calls == []
    (out / "report.md").unlink()
    coverage.main(["--report-only", "--out-dir", str(out)])
    assert (out / "report.md").read_text() == md


def test_every_lever_is_a_valid_train_command(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from ganaug.cli import main
    from ganaug.train.trainer import Trainer

    configs = []

    class Stop(Exception):
        pass

    def capture(config, *args, **kwargs):  # the checked config, then stop before any training
        configs.append(config)
        raise Stop

    monkeypatch.setattr(Trainer, "new", capture)
    args = coverage.parse_args(["--levers", "all", "--evaluator", str(tmp_path), "--dataset", "digits"])
    for name in args.names:
        command = coverage.lever_command(name, args)
        assert command[:2] == ["ganaug", "train"]
        res = CliRunner().invoke(main, [*command[1:], "--out", str(tmp_path / name)])
        assert isinstance(res.exception, Stop), (name, res.output)
    assert len(configs) == len(coverage.LEVERS) and len({repr(c) for c in configs}) == len(configs)
    with pytest.raises(SystemExit):
        coverage.parse_args(["--levers", "nope", "--evaluator", str(tmp_path)])


def test_report_only_without_results_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match="no finished lever"):
        coverage.main(["--report-only", "--out-dir", str(tmp_path)])


def test_on_a_gpu_levers_train_in_fp32_unless_they_set_their_precision(tmp_path, monkeypatch):
    commands = []

    def fake_run(cmd, log, threads):
        commands.append(cmd)
        raise RuntimeError("stop after the training command")

    monkeypatch.setattr(coverage, "_run", fake_run)
    argv = ["--levers", "baseline,bf16", "--evaluator", str(tmp_path), "--dataset", "digits"]
    args = coverage.parse_args([*argv, "--device", "cuda", "--work-dir", str(tmp_path / "work")])
    for name in args.names:
        assert "error" in coverage.run_lever(name, args)
    plain, bf16 = commands
    assert plain[plain.index("--amp") + 1] == "off"
    assert bf16.count("--amp") == 1 and bf16[bf16.index("--amp") + 1] == "bf16"
