"""The thread and wait policy (ganaug.threads): pure decisions on injected CPU counts, loads and environments."""

from __future__ import annotations

import pytest
import torch

from ganaug import threads


@pytest.mark.parametrize(
    ("cpus", "idle", "expected"),
    [
        (2, 2.0, 2),  # quiet: every core
        (2, 1.85, 2),  # a shell or a logger costs no thread
        (2, 1.0, 1),  # beside one busy single-threaded process
        (2, 1.6, 1),  # more than the margin of the second core is taken
        (2, 0.0, 1),  # beside three busy processes: never fewer than one
        (8, 5.2, 5),
        (4, 7.5, 4),  # idle is machine-wide; never more than this process may use
        (2, None, 2),  # no /proc/stat: as many as the process may use
        (2, float("nan"), 2),
    ],
)
def test_threads_follow_the_idle_cpus(cpus, idle, expected):
    assert threads.resolve_threads(None, cpus=cpus, idle=idle, environ={}) == expected


def test_an_explicit_count_wins_over_environment_and_load():
    env = {"OMP_NUM_THREADS": "3"}
    assert threads.resolve_threads(5, cpus=2, idle=0.0, environ=env) == 5
    assert threads.resolve_threads(None, cpus=2, idle=0.0, environ=env) == 3
    assert threads.resolve_threads(None, cpus=2, idle=0.0, environ={"MKL_NUM_THREADS": "4"}) == 4
    for junk in ("", "0", "two", "-1"):
        assert threads.resolve_threads(None, cpus=4, idle=2.0, environ={"OMP_NUM_THREADS": junk}) == 2
    with pytest.raises(ValueError, match="threads must be >= 1"):
        threads.resolve_threads(0, cpus=2, idle=2.0, environ={})


def test_bounded_spinning_is_set_only_when_the_user_chose_nothing_and_torch_is_not_loaded():
    env: dict[str, str] = {"PATH": "/bin"}
    assert threads.prepare_environment(env, torch_imported=False) == {"GOMP_SPINCOUNT": "1000"}
    assert env == {"PATH": "/bin", "GOMP_SPINCOUNT": "1000"}
    for name, value in (("OMP_WAIT_POLICY", "ACTIVE"), ("GOMP_SPINCOUNT", "10000"), ("KMP_BLOCKTIME", "0")):
        env = {name: value}
        assert threads.prepare_environment(env, torch_imported=False) == {}
        assert env == {name: value}
    env = {}
    assert threads.prepare_environment(env, torch_imported=True) == {} and env == {}
    env = {}
    assert threads.prepare_environment(env) == {} and env == {}  # this test process has torch loaded


def _stat(user: int, idle: int, cpus: int = 2) -> str:
    per_cpu = "".join(f"cpu{i} 0 0 0 0 0 0 0 0 0 0\n" for i in range(cpus))
    return f"cpu  {user} 0 0 {idle} 0 0 0 0 0 0\n{per_cpu}intr 1\nprocs_running 1\n"


def test_idle_cpus_from_two_proc_stat_samples(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    stat.write_text(_stat(1000, 5000))
    # between the samples one of two CPUs was busy: 100 jiffies of work, 100 of idle
    monkeypatch.setattr(threads.time, "sleep", lambda s: stat.write_text(_stat(1100, 5100)))
    assert threads.idle_cpus(stat=stat) == pytest.approx(1.0)
    stat.write_text(_stat(1000, 5000, cpus=4))
    monkeypatch.setattr(threads.time, "sleep", lambda s: stat.write_text(_stat(1000, 5200, cpus=4)))
    assert threads.idle_cpus(stat=stat) == pytest.approx(4.0)
    assert threads.idle_cpus(stat=tmp_path / "missing") is None
    monkeypatch.setattr(threads.time, "sleep", lambda s: None)  # no time passed: unknown, not a division by zero
    assert threads.idle_cpus(stat=stat) is None


def test_available_cpus_honours_a_cgroup_quota(tmp_path):
    own = threads.available_cpus(cgroup_root=tmp_path)  # no cpu.max: the affinity mask
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    assert threads.available_cpus(cgroup_root=tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads.available_cpus(cgroup_root=tmp_path) == own
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU still gets one thread
    assert threads.available_cpus(cgroup_root=tmp_path) == 1


def test_configure_torch_applies_the_choice(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    monkeypatch.setattr(threads, "idle_cpus", lambda: 1.0)
    try:
        assert threads.configure_torch() == 1 and torch.get_num_threads() == 1
        assert threads.configure_torch(2) == 2 and torch.get_num_threads() == 2
        monkeypatch.setattr(threads, "idle_cpus", lambda: pytest.fail("an explicit count samples nothing"))
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert threads.configure_torch() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    "command",
    [
        ["train"],
        ["generate"],
        ["export"],
        ["interpolate"],
        ["evaluate"],
        ["evaluator", "train"],
        ["bench", "downstream"],
    ],
)
def test_every_computing_command_takes_threads(command):
    from click.testing import CliRunner

    from ganaug.cli import main

    res = CliRunner().invoke(main, [*command, "--help"])
    assert res.exit_code == 0 and "--threads" in res.output, res.output


def test_train_prepares_waiting_and_runs_on_the_given_threads(tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    from ganaug.cli import main

    calls = []
    monkeypatch.setattr(threads, "prepare_environment", lambda: calls.append("prepared") or {})
    before = torch.get_num_threads()
    args = ["train", "--real-per-class", "4", "--epochs", "1", "--batch-size", "8", "--g-width", "4"]
    args += ["--d-width", "4", "--no-export", "--quiet", "--device", "cpu", "--out", str(tmp_path / "run")]
    try:
        res = CliRunner().invoke(main, [*args, "--threads", "1"])
    finally:
        torch.set_num_threads(before)
    assert res.exit_code == 0, res.output
    assert calls == ["prepared"]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["torch_threads"] == 1  # conftest sets 2
