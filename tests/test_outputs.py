"""ganaug.outputs: what --overwrite may replace, locks, stale temps and full disks."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from ganaug import outputs
from ganaug.errors import GanaugError, InputError


def test_mark_dir_writes_kind_version_and_schema(tmp_path):
    outputs.mark_dir(tmp_path, "images")
    marker = json.loads((tmp_path / outputs.MARKER).read_text())
    assert marker["kind"] == "images"
    assert marker["schema"] == 1
    assert outputs.read_marker(tmp_path) == marker


@pytest.mark.parametrize("name", [".", ".."])
def test_refuses_dot_and_dotdot(tmp_path, monkeypatch, name):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.raises(InputError, match="working folder"):
        outputs.check_replaceable(outputs.Path(name), kind="images")


def test_refuses_working_folder_and_its_ancestors_by_any_spelling(tmp_path, monkeypatch):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    outputs.mark_dir(tmp_path / "a", "images")  # even a marked folder: it holds the working folder
    monkeypatch.chdir(work)
    for target in (work, tmp_path / "a", work / ".." / ".." / "a" / "b" / "..", outputs.Path("./")):
        with pytest.raises(InputError, match="working folder"):
            outputs.check_replaceable(target, kind="images")


def test_refuses_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    with pytest.raises(InputError, match="home"):
        outputs.check_replaceable(tmp_path / "home", kind="images")


def test_protected_paths(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    outputs.mark_dir(run, "images")
    model = run / "generator.onnx"
    model.write_bytes(b"x")
    for target, protected in ((run, model), (model, model), (model, run), (run / "sub", run)):
        with pytest.raises(InputError, match="being read"):
            outputs.check_replaceable(target, kind="onnx" if target == model else "images", protect=[protected])
    outputs.check_replaceable(tmp_path / "elsewhere", kind="images", protect=[model])


def test_folder_needs_marker_of_the_same_kind(tmp_path):
    users = tmp_path / "photos"
    users.mkdir()
    (users / "holiday.jpg").write_bytes(b"mine")
    with pytest.raises(InputError, match="not a folder ganaug wrote"):
        outputs.check_replaceable(users, kind="images")
    run = tmp_path / "run"
    run.mkdir()
    outputs.mark_dir(run, "run")
    with pytest.raises(InputError, match="ganaug 'run' folder"):
        outputs.check_replaceable(run, kind="images")
    outputs.check_replaceable(run, kind="run")
    empty = tmp_path / "empty"
    empty.mkdir()
    outputs.check_replaceable(empty, kind="images")
    outputs.check_replaceable(tmp_path / "missing", kind="images")


def test_files_must_be_ganaugs_format(tmp_path):
    notes = tmp_path / "notes.npz"
    notes.write_text("my notes")
    with pytest.raises(InputError, match="not a npz file written by ganaug"):
        outputs.check_replaceable(notes, kind="npz")
    # a real npz with the right arrays but no ganaug manifest beside it: still the user's
    real = tmp_path / "real.npz"
    np.savez(real, images=np.zeros((1, 2, 2), np.uint8), labels=np.zeros(1, np.int64))
    with pytest.raises(InputError):
        outputs.check_replaceable(real, kind="npz")
    real.with_suffix(".manifest.json").write_text(json.dumps({"ganaug_version": "0", "format": "npz"}))
    outputs.check_replaceable(real, kind="npz")
    with pytest.raises(InputError, match="folder, not a npz"):
        outputs.check_replaceable(tmp_path, kind="npz")


def test_checkpoint_and_non_onnx_files_are_never_onnx(tmp_path):
    ckpt = tmp_path / "checkpoint.pt"
    with zipfile.ZipFile(ckpt, "w") as z:
        z.writestr("checkpoint/data.pkl", b"x")
    with pytest.raises(InputError):
        outputs.check_replaceable(ckpt, kind="onnx")
    with pytest.raises(InputError):
        outputs.check_replaceable(ckpt, kind="pt")
    text = tmp_path / "model.onnx"
    text.write_text("hello")
    with pytest.raises(InputError, match="not a onnx file"):
        outputs.check_replaceable(text, kind="onnx")


def test_stamped_png_is_replaceable_and_plain_png_is_not(tmp_path):
    from PIL import Image, PngImagePlugin

    plain = tmp_path / "plain.png"
    Image.new("L", (2, 2)).save(plain)
    with pytest.raises(InputError):
        outputs.check_replaceable(plain, kind="png")
    stamped = tmp_path / "stamped.png"
    info = PngImagePlugin.PngInfo()
    for k, v in outputs.stamp_info().items():
        info.add_text(k, v)
    Image.new("L", (2, 2)).save(stamped, pnginfo=info)
    outputs.check_replaceable(stamped, kind="png")


_HOLD = """
import sys, time
from pathlib import Path
from ganaug.outputs import exclusive_lock
with exclusive_lock(Path(sys.argv[1]), what="--out"):
    print("held", flush=True)
    time.sleep(30)
"""


def test_exclusive_lock_second_process_fails_with_pid(tmp_path):
    target = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = rf"another ganaug process \(pid {holder.pid}\) is writing .*out"
        with pytest.raises(InputError, match=busy), outputs.exclusive_lock(target):
            pass
    finally:
        holder.kill()
        holder.wait()
    with outputs.exclusive_lock(target) as lock:  # the OS released the killed holder's lock
        assert lock.exists()
    assert not lock.exists()


def test_clean_stale_temps_removes_dead_writers_only(tmp_path):
    target = tmp_path / "out"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = outputs.temp_path(target, pid=dead.pid)
    (stale / "3").mkdir(parents=True)
    (stale / "3" / "0000000.png").write_bytes(b"x")
    mine = outputs.temp_path(target)
    mine.write_bytes(b"x")
    other = tmp_path / ".other.tmp-1"
    other.write_bytes(b"x")
    assert outputs.clean_stale_temps(target) == [stale]
    assert not stale.exists() and mine.exists() and other.exists()


def test_clean_stale_temps_under_our_lock_removes_live_pids_too(tmp_path):
    target = tmp_path / "out"
    leftover = outputs.temp_path(target, pid=os.getppid())  # alive, but not holding the lock: not writing
    leftover.write_bytes(b"x")
    with outputs.exclusive_lock(target):
        assert outputs.clean_stale_temps(target) == [leftover]


def test_disk_full_is_one_line_and_removes_the_partial_temp(tmp_path):
    temp = tmp_path / ".x.tmp-1"
    temp.write_bytes(b"\0" * (3 * 2**20 + 1))
    full = r"^no space left on the device while writing .*x: free at least 4 MB and rerun$"
    with pytest.raises(GanaugError, match=full), outputs.reporting_disk_full(tmp_path / "x", temp=temp):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert not temp.exists()
    with pytest.raises(PermissionError), outputs.reporting_disk_full(tmp_path / "x"):
        raise PermissionError(errno.EACCES, "denied")
