"""Run folders: only ganaug's own are replaced, one writer at a time, no leftovers, no duplicate metrics."""

import csv
import shutil

import pytest
from click.testing import CliRunner

from ganaug.cli import main
from ganaug.errors import InputError
from ganaug.outputs import MARKER
from ganaug.train.checkpoint import CHECKPOINT
from ganaug.train.trainer import Trainer
from tests.conftest import tiny_config

TINY = ["--real-per-class", "10", "--epochs", "1", "--g-width", "8", "--d-width", "8"]
TINY += ["--batch-size", "32", "--quiet", "--no-export"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    return run


@pytest.mark.parametrize("out", [".", "..", "{cwd}", "{parent}"])
def test_overwrite_never_replaces_the_working_folder_or_above(tmp_path, monkeypatch, out):
    work = tmp_path / "work"
    work.mkdir()
    (work / "mine.txt").write_text("keep")
    monkeypatch.chdir(work)
    result = run("train", "--out", out.format(cwd=work, parent=tmp_path), "--overwrite", *TINY)
    assert result.exit_code == 2, result.output
    assert "refusing to replace" in result.output and len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in work.iterdir()) == ["mine.txt"]


def test_overwrite_refuses_a_folder_of_the_users_files(tmp_path):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"\xff\xd8")
    result = run("train", "--out", out, "--overwrite", *TINY)
    assert result.exit_code == 2 and "refusing to replace" in result.output, result.output
    assert [p.name for p in out.iterdir()] == ["holiday.jpg"]


def test_overwrite_refuses_a_run_folder_without_the_marker(run_copy):
    (run_copy / MARKER).unlink()
    result = run("train", "--out", run_copy, "--overwrite", *TINY)
    assert result.exit_code == 2 and "refusing to replace" in result.output, result.output
    assert (run_copy / CHECKPOINT).is_file()


def test_overwrite_replaces_a_marked_run_folder(run_copy):
    (run_copy / "samples" / "epoch_0099.png").write_bytes(b"old")
    result = run("train", "--out", run_copy, "--overwrite", *TINY)
    assert result.exit_code == 0, result.output
    assert not (run_copy / "samples" / "epoch_0099.png").exists() and (run_copy / MARKER).is_file()
    assert sorted(p.name for p in (run_copy / "samples").iterdir()) == ["epoch_0001.png"]


def test_overwrite_refuses_a_run_folder_holding_files_ganaug_did_not_write(run_copy):
    (run_copy / "notes.txt").write_text("lr 2e-4 looked best")
    run("train", "--out", run_copy / "inner", *TINY)  # a run made inside this one
    (run_copy / "samples" / "favourite.png").write_bytes(b"mine")
    before = sorted(p.relative_to(run_copy) for p in run_copy.rglob("*"))
    result = run("train", "--out", run_copy, "--overwrite", *TINY)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "inner, notes.txt, samples/favourite.png" in result.output and "move them out" in result.output
    assert sorted(p.relative_to(run_copy) for p in run_copy.rglob("*")) == before  # nothing deleted
    for name in ("notes.txt", "inner", "samples/favourite.png"):  # once they are gone, it is replaced
        shutil.rmtree(run_copy / name) if (run_copy / name).is_dir() else (run_copy / name).unlink()
    (run_copy / ".summary.json.tmp-999999").write_text("{")  # a killed writer's leftover is ganaug's own
    assert run("train", "--out", run_copy, "--overwrite", *TINY).exit_code == 0


def test_a_second_writer_of_the_same_run_folder_fails_with_a_message(run_copy):
    first = Trainer.resume(run_copy, epochs=3, progress=False)
    with pytest.raises(InputError, match=r"another ganaug process \(pid \d+\) is writing"):
        Trainer.resume(run_copy, epochs=3, progress=False)
    with pytest.raises(InputError, match="another ganaug process"):
        Trainer.new(tiny_config(), run_copy, overwrite=True, progress=False)
    assert (run_copy / CHECKPOINT).is_file()  # the refused --overwrite deleted nothing
    assert first.fit().steps == 18  # the first writer goes on; its lock is released at the end
    Trainer.resume(run_copy, epochs=4, progress=False).fit()


def test_leftover_temp_files_are_removed_by_the_next_run(run_copy):
    stale = [run_copy / ".checkpoint.pt.tmp-999999", run_copy / ".config.json.tmp-999998"]
    for p in stale:
        p.write_bytes(b"partial")
    Trainer.resume(run_copy, epochs=3, progress=False).fit()
    assert not any(p.exists() for p in stale)
    assert not [p.name for p in run_copy.iterdir() if ".tmp" in p.name]


def _steps(run):
    with open(run / "metrics.csv", newline="") as f:
        return [int(r["step"]) for r in csv.DictReader(f)]


def test_resume_after_kill_truncates_metrics_to_the_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    Trainer.new(tiny_config(epochs=1, log_every=2), run_dir, progress=False).fit()  # checkpoint at step 6
    with open(run_dir / "metrics.csv", "a", newline="") as f:  # logged, then killed before the next checkpoint
        w = csv.writer(f)
        for step in (8, 10):
            w.writerow([step, 2, 1.0, 1.0, 0.5, 0.5, 9.9])
    Trainer.resume(run_dir, epochs=2, progress=False).fit()
    steps = _steps(run_dir)
    assert steps == sorted(set(steps)) and steps[-1] == 12
    assert steps == [2, 4, 6, 8, 10, 12]
