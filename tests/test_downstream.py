"""The downstream benchmark (ganaug.downstream) end to end on a tiny profile (digits), its cache/resume, and its
statistics."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ganaug import downstream
from ganaug.config import ModelConfig

TINY = downstream.Profile(
    name="tiny",
    dataset="digits",
    budgets=(3,),
    seeds=2,
    synthetic_per_class=5,
    sweep=(10,),
    sweep_budgets=(3,),
    gan_steps=3,
    gan_batch=16,
    gan_model=ModelConfig(z_dim=8, embed_dim=4, g_width=8, d_width=8),
    clf_steps=3,
    clf_batch=16,
    clf_width=4,
    cas_gan_steps=2,
    cas_per_class=5,
)


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    root = tmp_path_factory.mktemp("downstream")
    logs: list[str] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread avoids OpenMP barrier stalls when the CPU is shared
    try:
        results = downstream.run(
            TINY, data_root=None, cache=root / "cache", out=root / "out", command="test", log=logs.append
        )
    finally:
        torch.set_num_threads(threads)
    return root, results, logs


def test_every_condition_is_run_and_reported(tiny_results):
    root, results, _ = tiny_results
    table = results["table"]
    assert set(table) == {"3/a/0", "3/b/5", "3/b/10", "3/c/0", "3/d/5", "3/e/5"}
    assert table["3/a/0"]["accuracy"]["n"] == 2 and len(table["3/a/0"]["per_class"]) == 10
    assert "vs_a" in table["3/b/5"] and "vs_c" in table["3/d/5"] and "vs_a" not in table["3/a/0"]
    assert results["cas"]["accuracy"]["n"] == 2
    assert all(ok for _, ok in results["honesty"])
    out = root / "out"
    for name in (
        "report.md",
        "results.json",
        "accuracy_vs_budget.png",
        "per_class_gain.png",
        "samples_3.png",
        "samples_cas.png",
    ):
        assert (out / name).is_file(), name
    saved = json.loads((out / "results.json").read_text())
    assert (
        saved["profile"]["name"] == "tiny" and saved["machine"]["torch_threads"] == 1
    )  # the fixture runs on one thread
    report = (out / "report.md").read_text()
    assert "Honesty checks" in report and "CAS" in report and "FAIL" not in report


def test_gans_see_only_their_subset(tiny_results):
    _, results, _ = tiny_results
    cells = [c for c in results["raw_cells"] if c["condition"] in "bd"]
    assert cells and all(c["honesty"]["gan_saw_only_the_subset"] for c in cells)
    assert len({c["honesty"]["subset_sha256"] for c in cells}) == 2  # the seed changes the subset


def test_rerun_uses_the_cache_and_report_only_rebuilds(tiny_results):
    root, results, _ = tiny_results
    logs: list[str] = []
    torch.set_num_threads(1)
    again = downstream.run(TINY, data_root=None, cache=root / "cache", out=root / "out2", log=logs.append)
    assert not logs  # nothing trained again
    assert again["table"] == results["table"]
    rebuilt = downstream.run(
        TINY, data_root=None, cache=root / "cache", out=root / "out3", report_only=True, log=logs.append
    )
    assert rebuilt["table"] == results["table"] and rebuilt["cas"] == results["cas"]


def test_shards_split_the_work_and_add_up_to_the_unsharded_run(tiny_results, tmp_path):
    _, results, _ = tiny_results
    torch.set_num_threads(1)
    logs: dict[int, list[str]] = {0: [], 1: []}
    for i in (0, 1):  # one after the other here; concurrently in real use
        downstream.run(
            TINY, data_root=None, cache=tmp_path / "cache", out=tmp_path / "out", shard=(i, 2), log=logs[i].append
        )
    assert any("seed=0" in m for m in logs[0]) and not any("seed=1" in m or "CAS" in m for m in logs[0])
    assert any("seed=1" in m for m in logs[1]) and any("CAS" in m for m in logs[1])
    assert not (tmp_path / "out" / "report.md").exists()  # a shard writes no report
    final: list[str] = []
    merged = downstream.run(TINY, data_root=None, cache=tmp_path / "cache", out=tmp_path / "out", log=final.append)
    assert not final  # every cell was trained by one of the shards
    assert merged["table"] == results["table"] and merged["cas"]["values"] == results["cas"]["values"]
    with pytest.raises(downstream.InputError, match="--shard 2/2"):
        downstream.run(TINY, data_root=None, cache=tmp_path / "cache", out=tmp_path / "out", shard=(2, 2))


def test_summary_statistics():
    s = downstream.summary([0.5, 0.7])
    assert s["mean"] == pytest.approx(0.6) and s["std"] == pytest.approx(math.sqrt(0.02))
    half = 12.706204736 * math.sqrt(0.02) / math.sqrt(2)  # t(0.975, 1 degree of freedom) * std / sqrt(n)
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((0.6 - half, 0.6 + half))
    assert downstream.summary([0.5])["n"] == 1 and math.isnan(downstream.summary([0.5])["ci_low"])
    assert downstream.verdict({"mean": 0.02, "ci_low": 0.01, "ci_high": 0.03}).startswith("helps")
    assert downstream.verdict({"mean": -0.02, "ci_low": -0.03, "ci_high": -0.01}).startswith("HURTS")
    assert downstream.verdict({"mean": 0.0, "ci_low": -0.01, "ci_high": 0.01}).startswith("no significant")


def test_cli_help_and_unknown_profile():
    from click.testing import CliRunner

    from ganaug.cli import main

    runner = CliRunner()
    res = runner.invoke(main, ["bench", "downstream", "--help"])
    assert res.exit_code == 0 and "--profile" in res.output and "usage: ganaug bench downstream" in res.output
    assert "--probes" not in res.output  # the lab's options stay in the source checkout's benchmarks/downstream
    assert runner.invoke(main, ["bench", "downstream", "--profile", "nope"]).exit_code == 2
    for args, message in ((["--conditions", "a,x"], "--conditions 'a,x'"), (["--shard", "1"], "write it as I/N")):
        res = runner.invoke(main, ["bench", "downstream", *args])
        assert res.exit_code == 2 and message in res.output, res.output


def test_synthetic_filter_keeps_at_most_the_quota_and_trains_its_judge_once(tmp_path, monkeypatch):
    import dataclasses

    p = dataclasses.replace(
        TINY, name="tiny-filter", conditions=("a", "b", "d"), cas_gan_steps=0, seeds=1, synthetic_filter=True
    )
    trained = []
    monkeypatch.setattr(downstream.cells, "_JUDGES", {})  # judges of other tests' identical settings don't count
    train = downstream.cells.train_classifier
    monkeypatch.setattr(
        downstream.cells, "train_classifier", lambda q, cond, **kw: trained.append(cond) or train(q, cond, **kw)
    )
    torch.set_num_threads(1)
    results = downstream.run(p, data_root=None, cache=tmp_path / "cache", out=tmp_path / "out", log=lambda m: None)
    cells = [c for c in results["raw_cells"] if c["condition"] == "b"]
    assert len(cells) == 2  # the profile's amount and its sweep
    for cell in cells:
        assert cell["synthetic_filter"] and len(cell["synthetic_kept_per_class"]) == 10
        assert all(0 <= k <= cell["synthetic_per_class"] for k in cell["synthetic_kept_per_class"])
    assert trained.count("c") == 1  # one judge serves (b) at both amounts and (d); no (c) cell in this profile


def test_report_only_on_an_empty_cache_is_an_error_and_keeps_the_report(tmp_path):
    from click.testing import CliRunner

    from ganaug.cli import main

    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").write_text("the committed report\n")
    with pytest.raises(downstream.InputError, match="run without --report-only first"):
        downstream.run(TINY, data_root=None, cache=tmp_path / "empty", out=out, report_only=True, log=print)
    args = ["bench", "downstream", "--profile", "smoke", "--report-only", "--threads", "1"]
    res = CliRunner().invoke(main, [*args, "--cache", str(tmp_path / "empty"), "--out", str(out)])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "nothing to report" in res.output, res.output
    assert sorted(p.name for p in out.iterdir()) == ["report.md"]
    assert (out / "report.md").read_text() == "the committed report\n"


def test_runs_as_a_module_and_as_a_folder(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]

    def python(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *args], cwd=root, capture_output=True, text=True, timeout=120, check=False
        )

    res = python("-m", "benchmarks.downstream", "--help")
    assert res.returncode == 0 and "python -m benchmarks.downstream" in res.stdout and "--report-only" in res.stdout
    res = python(str(root / "benchmarks" / "downstream"), "--report-only", "--cache", str(tmp_path), "--out", "x")
    assert res.returncode == 2 and res.stderr.startswith("Error: no finished classifier runs"), res.stderr
    assert res.stderr.count("\n") == 1 and not (root / "x").exists()
