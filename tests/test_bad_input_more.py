"""More bad input, each one line and a non-zero exit before any work, with nothing of the user's changed:
outputs under /proc, a corrupt checkpoint on --resume, resuming a run another process is training, the
downstream benchmark's options, the benchmark run as a folder, and SIGTERM (cleans up as Ctrl-C does)."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ganaug import outputs
from ganaug.cli import main
from ganaug.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--g-width", "8", "--d-width", "8", "--batch-size", "32", "--quiet", "--no-export"]
PROC = Path("/proc")
needs_proc = pytest.mark.skipif(not (PROC / "self").is_dir(), reason="needs Linux /proc")

pytestmark = pytest.mark.usefixtures("one_thread")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line(result, code: int, *phrases: str) -> str:
    """The result's output: exactly one line, no traceback, exit ``code``, holding every phrase."""
    out = result.output
    assert result.exit_code == code, (result.exit_code, out, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert out.strip().count("\n") == 0 and "Traceback" not in out, out
    for phrase in phrases:
        assert phrase in out, out
    return out


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (hidden ones too) with a file's bytes (None for a folder)."""
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes() for p in sorted(root.rglob("*"))}


@pytest.fixture
def run_copy(tiny_run: Path, tmp_path: Path) -> Path:
    """A copy of the session's tiny finished run (a checkpoint, no ONNX), inside its own folder."""
    folder = tmp_path / "runs" / "run"
    shutil.copytree(tiny_run, folder)
    return folder


# ---- 1. an output under /proc: one line, before the work ---------------------------------------------------


@needs_proc
def test_train_out_under_proc_is_one_line_before_loading_data(tmp_path, monkeypatch):
    import ganaug.train.trainer

    loaded = []
    monkeypatch.setattr(ganaug.train.trainer, "load_training_data", lambda *a, **k: loaded.append(a))
    for out in (PROC / "ganaug-test-run", PROC / "ganaug-test" / "run"):
        one_line(
            run("train", "--out", out, "--real-per-class", "10", "--epochs", "1", *TINY), 2, "cannot write", str(out)
        )
        assert not out.exists()
    assert not loaded


@needs_proc
def test_export_out_under_proc_is_refused_before_the_export(run_copy, monkeypatch):
    import ganaug.train.export

    def no_work(*a, **k):
        raise AssertionError("the export ran before --out was checked")

    monkeypatch.setattr(ganaug.train.export, "_to_onnx", no_work)
    before = snapshot(run_copy.parent)
    one_line(run("export", run_copy, "--out", PROC / "ganaug-test.onnx"), 2, "cannot write", "/proc")
    assert snapshot(run_copy.parent) == before


@needs_proc
def test_interpolate_out_under_proc_is_one_line(run_copy):
    before = snapshot(run_copy.parent)
    one_line(run("interpolate", run_copy, "--from", "0", "--to", "1", "--out", PROC / "ganaug-test.png"), 2, "/proc")
    # a folder that cannot be made under /proc: no check before the work catches it (ganaug/cli/generate.py's
    # own), but it is one line too
    result = run("interpolate", run_copy, "--from", "0", "--to", "1", "--out", PROC / "ganaug-test" / "x.png")
    assert result.exit_code != 0
    one_line(result, result.exit_code, "/proc/ganaug-test")
    assert snapshot(run_copy.parent) == before


@needs_proc
def test_exclusive_lock_under_proc_is_an_input_error():
    with pytest.raises(InputError, match="cannot create its lock file"), outputs.exclusive_lock(PROC / "ganaug-test"):
        pass
    with (
        pytest.raises(InputError, match="cannot create folder"),
        outputs.exclusive_lock(PROC / "ganaug-test" / "sub" / "x"),
    ):
        pass
    with pytest.raises(InputError, match="no file can be created in /proc"):
        outputs.check_can_create(PROC / "ganaug-test")


def test_exclusive_lock_failure_leaves_no_folder_it_made(tmp_path, monkeypatch):
    (tmp_path / "file.txt").write_text("keep")
    with (
        pytest.raises(InputError, match="cannot create folder"),
        outputs.exclusive_lock(tmp_path / "file.txt" / "sub" / "out"),
    ):
        pass

    def denied(lock, path, what):
        raise PermissionError(errno.EACCES, "Permission denied", str(lock))

    monkeypatch.setattr(outputs, "_take_lock", denied)
    with (
        pytest.raises(InputError, match=r"cannot create its lock file .*Permission denied"),
        outputs.exclusive_lock(tmp_path / "a" / "b" / "out"),
    ):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]
    assert (tmp_path / "file.txt").read_text() == "keep"


def test_check_can_create_leaves_nothing(tmp_path):
    (tmp_path / "keep").write_text("x")
    before = snapshot(tmp_path)
    outputs.check_can_create(tmp_path / "new" / "deeper" / "out")
    outputs.check_can_create(tmp_path / "keep")
    outputs.check_parent_writable(tmp_path / "file.onnx")
    assert snapshot(tmp_path) == before


# ---- 2. a corrupt checkpoint on --resume -------------------------------------------------------------------


def test_resume_of_a_checkpoint_that_is_no_dict_is_one_line(run_copy):
    (run_copy / "checkpoint.pt").write_bytes(b"\x80\x02h\x05.")  # unpickling it raises KeyError
    before = snapshot(run_copy.parent)
    one_line(run("train", "--resume", run_copy, "--epochs", "3", "--quiet"), 2, "checkpoint.pt is corrupt")
    assert snapshot(run_copy.parent) == before  # no lock, no temp, no metrics rewritten


# ---- 3. --resume of a run another process is training (first epoch: no checkpoint yet) ---------------------


def test_resume_of_a_run_another_process_trains_says_so(tmp_path):
    from ganaug.train.trainer import Trainer
    from tests.conftest import tiny_config

    folder = tmp_path / "runs" / "run"
    trainer = Trainer.new(tiny_config(), folder, progress=False)  # as the other process leaves it in epoch 1
    trainer.run.release()
    assert not (folder / "checkpoint.pt").exists()
    lock = outputs.lock_path(folder)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)  # another open file: flock conflicts as across processes
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, b"4242")
        before = snapshot(folder.parent)
        out = one_line(run("train", "--resume", folder, "--quiet"), 2, "another ganaug process (pid 4242)", "training")
        assert "--overwrite" not in out
        assert snapshot(folder.parent) == before
    finally:
        os.close(fd)


# ---- 4. the downstream benchmark's options, checked up front -----------------------------------------------


@pytest.fixture
def no_benchmark_work(monkeypatch):
    """Fail the test if the benchmark starts any work (it must refuse its options first)."""
    from ganaug.downstream import cli

    def work(*a, **k):
        raise AssertionError("the benchmark started before its options were checked")

    for name in ("run", "run_pool"):
        monkeypatch.setattr(cli, name, work)
    return cli


@pytest.mark.parametrize(
    "args, message",
    [
        (["--budgets", "x"], "--budgets 'x'"),
        (["--budgets", ""], "--budgets ''"),
        (["--budgets", "10,x"], "--budgets '10,x'"),
        (["--budgets", "-5"], "-5 is below 0"),
        (["--sweep", "x"], "--sweep 'x'"),
        (["--sweep", "-1"], "-1 is below 1"),
        (["--seeds", "0"], "--seeds 0"),
        (["--seeds", "-1"], "--seeds -1"),
        (["--evaluator", "{tmp}/missing"], "--evaluator {tmp}/missing: no such folder"),
        (["--evaluator", "{tmp}/empty"], "is not an evaluator folder"),
        (["--full-gan", "{tmp}/missing"], "--full-gan {tmp}/missing: no such folder"),
        (["--full-gan", "{tmp}/empty"], "not a finished ganaug run folder"),
    ],
)
def test_bench_downstream_bad_options_are_one_line_before_any_work(tmp_path, no_benchmark_work, args, message):
    (tmp_path / "empty").mkdir()
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    where = ["--cache", tmp_path / "cache", "--out", tmp_path / "out", "--threads", "1"]
    before = snapshot(tmp_path)
    one_line(run("bench", "downstream", *where, *args), 2, message.replace("{tmp}", str(tmp_path)))
    assert snapshot(tmp_path) == before


def test_bench_downstream_full_gan_of_a_subset_is_refused_up_front(run_copy, no_benchmark_work):
    before = snapshot(run_copy.parent)
    one_line(run("bench", "downstream", "--full-gan", run_copy), 2, "not trained on the whole digits training split")
    assert snapshot(run_copy.parent) == before


@pytest.mark.parametrize("pool", [False, True])
def test_report_only_without_a_cache_creates_nothing(tmp_path, pool):
    args = ["--profile", "smoke", "--report-only", "--cache", tmp_path / "none", "--out", tmp_path / "out"]
    before = snapshot(tmp_path)
    one_line(run("bench", "downstream", *args, *(["--pool", "--budgets", "10"] if pool else [])), 2, "no cache at")
    assert snapshot(tmp_path) == before


# ---- 5. the benchmark run as a folder does not hide the standard library ----------------------------------


def test_no_benchmark_module_is_named_as_a_standard_library_module():
    folder = ROOT / "benchmarks" / "downstream"
    names = {p.stem for p in folder.glob("*.py")} - {"__init__", "__main__"}
    assert not names & set(sys.stdlib_module_names)


def test_run_as_a_folder_the_standard_library_comes_first(tmp_path):
    """``python benchmarks/downstream`` puts the folder first on sys.path; once the package is imported, neither
    it nor a module of it may stand before the standard library (``statistics`` did)."""
    (tmp_path / "site").mkdir()
    record = tmp_path / "path.txt"
    (tmp_path / "site" / "sitecustomize.py").write_text(
        textwrap.dedent(
            f"""
            import atexit, importlib.machinery, sys
            seen = []
            def hook(event, args):
                if event == "import" and args[0] == "benchmarks.downstream.cli" and not seen:
                    seen.append(list(sys.path))
            sys.addaudithook(hook)
            def write():
                if seen:
                    spec = importlib.machinery.PathFinder.find_spec("statistics", seen[0])
                    open({str(record)!r}, "w").write(spec.origin if spec else "none")
            atexit.register(write)
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "downstream"), "--budgets", "x", "--out", str(tmp_path / "out")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 2 and res.stderr.startswith("Error: --budgets 'x'"), res.stderr
    assert res.stderr.count("\n") == 1
    origin = Path(record.read_text())
    assert origin.parent != ROOT / "benchmarks" / "downstream" and origin.name == "statistics.py", origin
    assert not (tmp_path / "out").exists()


# ---- 6. SIGTERM cleans up as Ctrl-C does --------------------------------------------------------------------


def test_sigterm_handler_is_only_there_while_a_command_runs():
    before = signal.getsignal(signal.SIGTERM)
    assert run("--version").exit_code == 0
    assert run("train", "--real-per-class", "0").exit_code == 2
    assert signal.getsignal(signal.SIGTERM) == before


def test_sigterm_removes_the_temp_and_the_lock_and_exits_non_zero(tmp_path):
    """``ganaug train`` is stopped by SIGTERM while it writes its first checkpoint (held there): the temp file
    and the lock go, as after Ctrl-C, and the exit code is 143."""
    out = tmp_path / "run"
    script = textwrap.dedent(
        f"""
        import os, time
        real_replace = os.replace
        def slow_replace(src, dst, *a, **k):
            if str(dst).endswith("checkpoint.pt"):
                time.sleep(60)  # the temp is written: hold here until the signal comes
            return real_replace(src, dst, *a, **k)
        os.replace = slow_replace
        from ganaug.cli import main
        main({["train", "--real-per-class", "10", "--epochs", "1", "--out", str(out), *TINY]!r}, prog_name="ganaug")
        """
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob(".checkpoint.pt.tmp-*")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the checkpoint's temp never appeared"
            time.sleep(0.05)
        assert outputs.lock_path(out).exists()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, (proc.returncode, stderr)
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1] == "Aborted: terminated by SIGTERM", stderr
    assert not outputs.lock_path(out).exists()
    leftovers = [p for p in tmp_path.rglob("*") if ".tmp-" in p.name or p.name.endswith(".lock")]
    assert not leftovers, leftovers
