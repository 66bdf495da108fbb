"""`ganaug evaluator train --out`: the package's file rules (nothing of the user's replaced, a lock, checks before
training) and its numeric options (seed range, a finite learning rate, no NaN evaluator saved or loaded)."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ganaug.classify.evaluator import CONFIG, WEIGHTS, load_evaluator
from ganaug.cli import main
from ganaug.errors import InputError
from ganaug.outputs import MARKER, exclusive_lock, lock_path

pytestmark = pytest.mark.usefixtures("one_thread")

TRAIN = ["evaluator", "train", "--dataset", "digits", "--epochs", "1", "--width", "4", "--threads", "1"]


def _train(out, *extra: str):
    return CliRunner().invoke(main, [*TRAIN, "--out", str(out), *extra])


def _one_line_error(res) -> str:
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    return lines[0]


def _tree(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder`` (empty dict when it does not exist)."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def foreign_hf(tmp_path) -> Path:
    """A folder of someone else's model files that share the evaluator's names."""
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / WEIGHTS).write_bytes(os.urandom(1000))
    (hf / CONFIG).write_text("{}")
    return hf


@pytest.mark.parametrize("overwrite", [False, True])
def test_someone_elses_model_files_are_never_replaced(foreign_hf, overwrite):
    before = _tree(foreign_hf)
    line = _one_line_error(_train(foreign_hf, *(["--overwrite"] if overwrite else [])))
    assert "did not write" in line and WEIGHTS in line
    assert _tree(foreign_hf) == before


@pytest.mark.parametrize("where", ["other", "cwd"])
def test_a_folder_of_other_files_gets_nothing_added(tmp_path, monkeypatch, where):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    before = _tree(folder)
    if where == "cwd":
        monkeypatch.chdir(folder)
        res = _train(".", "--overwrite")
    else:
        res = _train(folder, "--overwrite")
    assert "notes.txt" in _one_line_error(res)
    assert _tree(folder) == before


def test_own_folder_is_marked_refused_without_overwrite_and_replaced_with_it(tmp_path):
    out = tmp_path / "ev"
    first = _train(out)
    assert first.exit_code == 0, first.output
    assert (out / MARKER).is_file() and (out / CONFIG).is_file()
    before = _tree(out)
    assert "--overwrite" in _one_line_error(_train(out))
    assert _tree(out) == before
    again = _train(out, "--overwrite", "--seed", "3")
    assert again.exit_code == 0, again.output
    assert _tree(out)[WEIGHTS] != before[WEIGHTS]
    assert load_evaluator(out).meta["training"]["seed"] == 3
    assert not lock_path(out).exists()


def test_an_evaluator_folder_written_before_markers_is_replaced_with_overwrite(tmp_path):
    out = tmp_path / "legacy"
    assert _train(out).exit_code == 0
    (out / MARKER).unlink()
    assert "--overwrite" in _one_line_error(_train(out))
    res = _train(out, "--overwrite")
    assert res.exit_code == 0, res.output
    assert (out / MARKER).is_file()


def test_an_evaluator_folder_with_a_stranger_inside_is_not_replaced(tmp_path):
    out = tmp_path / "ev"
    assert _train(out).exit_code == 0
    (out / "extra.bin").write_bytes(b"mine")
    before = _tree(out)
    assert "extra.bin" in _one_line_error(_train(out, "--overwrite"))
    assert _tree(out) == before


def _hold_lock(path: str, ready, release) -> None:
    with exclusive_lock(path):
        ready.set()
        release.wait(30)


def test_a_second_writer_of_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "ev"
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(out), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        line = _one_line_error(_train(out))
        assert "another ganaug process" in line
        assert not out.exists()
    finally:
        release.set()
        holder.join(30)


@pytest.mark.parametrize("case", ["file", "under-file", "proc", "read-only"])
def test_an_unwritable_out_is_refused_before_training(tmp_path, monkeypatch, case):
    import ganaug.classify.evaluator

    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking --out")

    monkeypatch.setattr(ganaug.classify.evaluator, "train_evaluator_on", no_training)
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    if case == "read-only":  # root ignores permission bits: a read-only mount is what is refused then
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        monkeypatch.setattr("os.open", _read_only_open(ro))
        out = ro / "ev"
    else:
        out = {"file": a_file, "under-file": a_file / "ev", "proc": Path("/proc/ganaug-ev")}[case]
    before = _tree(tmp_path)
    _one_line_error(_train(out))
    assert _tree(tmp_path) == before
    assert not lock_path(out).exists()


def _read_only_open(folder: Path):
    """``os.open`` as on a read-only mount for files created in ``folder``."""
    import errno

    real = os.open

    def fake_open(path, flags, *args, **kwargs):
        if Path(path).parent == folder and flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system")
        return real(path, flags, *args, **kwargs)

    return fake_open


@pytest.mark.parametrize("seed", ["-1", str(2**63), str(2**64), str(2**128), str(10**40)])
def test_seeds_outside_the_documented_range_are_refused(tmp_path, seed):
    res = CliRunner().invoke(main, [*TRAIN, "--out", str(tmp_path / "ev"), "--seed", seed])
    assert res.exit_code == 2 and "Traceback" not in res.output and "--seed" in res.output
    assert not (tmp_path / "ev").exists()


@pytest.mark.parametrize("lr", ["nan", "inf", "-inf", "0", "x"])
def test_a_learning_rate_must_be_finite_and_positive(tmp_path, lr):
    res = CliRunner().invoke(main, [*TRAIN, "--out", str(tmp_path / "ev"), "--lr", lr])
    assert res.exit_code == 2 and "Traceback" not in res.output and "--lr" in res.output
    assert not (tmp_path / "ev").exists()


def test_a_diverged_evaluator_is_neither_saved_nor_loaded(tmp_path):
    out = tmp_path / "ev"
    assert "diverged" in _one_line_error(_train(out, "--lr", "1e30"))
    assert not (out / WEIGHTS).exists()
    good = tmp_path / "good"
    assert _train(good).exit_code == 0
    from safetensors.torch import load_file, save_file

    state = load_file(str(good / WEIGHTS))
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first] = torch.full_like(state[first], float("nan"))
    save_file(state, str(good / WEIGHTS), metadata={"ganaug_version": "test"})
    with pytest.raises(InputError, match="non-finite"):
        load_evaluator(good)


def test_a_disk_too_full_for_the_evaluator_is_refused_before_training(tmp_path, monkeypatch):
    import collections
    import shutil

    import ganaug.classify.evaluator

    monkeypatch.setattr(ganaug.classify.evaluator, "train_evaluator_on", lambda *a, **k: pytest.fail("trained first"))
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 50_000, 50_000))
    line = _one_line_error(_train(tmp_path / "ev"))
    assert "of disk" in line and "choose another --out or free space" in line
    assert not (tmp_path / "ev").exists()


def test_a_disk_that_fills_while_saving_leaves_no_folder_behind(tmp_path, monkeypatch):
    import errno

    from ganaug.classify.evaluator import Evaluator

    def full(self, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(Evaluator, "save", full)
    (tmp_path / "mine.txt").write_text("mine")
    result = _train(tmp_path / "new" / "ev")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]  # the folders it made are gone
