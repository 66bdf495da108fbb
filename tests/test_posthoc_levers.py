"""benchmarks/posthoc_levers.py: the variants keep their laws (temperature is G(t z); standing statistics
touch only BatchNorm buffers), and the script scores each variant end to end."""

import json

import pytest
import torch

from benchmarks import posthoc_levers
from ganaug.train.checkpoint import load_generator
from tests.test_coverage import evaluator_dir  # noqa: F401  (fixture)


def test_temperature_is_g_of_scaled_latents(tiny_run):
    g, _ = load_generator(tiny_run)
    hot = posthoc_levers.variant("temperature-1.5", tiny_run, batches=1)
    z, y = torch.randn(16, g.config.z_dim), torch.arange(16) % g.config.num_classes
    with torch.no_grad():
        torch.testing.assert_close(hot(z, y), g(1.5 * z, y))
        assert not torch.allclose(hot(z, y), g(z, y), atol=1e-3)


def test_standing_stats_change_only_batchnorm_statistics(tiny_run):
    g, _ = load_generator(tiny_run)
    standing = posthoc_levers.standing_stats(g, batches=3, batch=50)
    assert not standing.training
    for (name, a), b in zip(g.named_parameters(), standing.parameters(), strict=True):
        assert torch.equal(a, b), name
    bn = [(n, m) for n, m in standing.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bn and all(m.num_batches_tracked == 3 for _, m in bn)
    name, m = bn[0]
    old = dict(g.named_modules())[name].running_mean
    assert not torch.allclose(m.running_mean, old)
    # the statistics are the average over the batches: the same draws give the same numbers
    again = posthoc_levers.standing_stats(g, batches=3, batch=50)
    torch.testing.assert_close(dict(again.named_modules())[name].running_var, m.running_var)


def test_unknown_variant_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        posthoc_levers.parse_args([str(tmp_path), "--evaluator", "x", "--data-root", "y", "--variants", "hot"])


def test_every_variant_gets_a_row(tmp_path, tiny_run, evaluator_dir):  # noqa: F811
    out = tmp_path / "out"
    argv = [str(tiny_run), "--evaluator", str(evaluator_dir), "--data-root", str(tmp_path)]
    argv += [
        "--variants",
        "as-saved,raw-g+standing-stats,temperature-1.2",
        "--standing-batches",
        "2",
        "--per-class",
        "10",
    ]
    argv += ["--threads", "1", "--work-dir", str(tmp_path / "work"), "--out-dir", str(out)]
    rows = posthoc_levers.main(argv)
    assert [r["variant"] for r in rows] == ["as-saved", "raw-g+standing-stats", "temperature-1.2"]
    assert all(0 <= r["recall"] <= 1 and r["fd"] > 0 and r["cas"] is None for r in rows)
    assert json.loads((out / "results.json").read_text())["rows"] == rows
    assert (out / "report.md").read_text().count("\n") == 2 + len(rows)


def test_folders_holding_other_files_are_refused_and_kept(tmp_path, tiny_run, evaluator_dir):  # noqa: F811
    for folder in ("work", "out"):
        mine = tmp_path / folder / "notes.txt"
        mine.parent.mkdir()
        mine.write_text("mine")
        argv = [
            str(tiny_run),
            "--evaluator",
            str(evaluator_dir),
            "--data-root",
            str(tmp_path),
            "--variants",
            "as-saved",
        ]
        argv += ["--work-dir", str(tmp_path / "work"), "--out-dir", str(tmp_path / "out")]
        with pytest.raises(SystemExit, match="did not write"):
            posthoc_levers.main(argv)
        assert mine.read_text() == "mine" and sorted(p.name for p in mine.parent.iterdir()) == ["notes.txt"]
        mine.unlink()
        mine.parent.rmdir()
