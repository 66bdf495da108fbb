"""How many CPU threads ganaug computes with, and how its idle OpenMP threads wait.

PyTorch's OpenMP threads (libgomp) spin for a while when they wait for work. On a machine where other
processes compute too, a spinning thread holds a core the thread it waits for needs. Measured on 2 cores:
``ganaug train --dataset digits`` made 724 images/s quiet, 225 beside one busy single-threaded
process with 2 threads, where 1 thread made 402 and ``OMP_WAIT_POLICY=PASSIVE`` 380; beside three busy
processes 104 (1 thread: 225). Sleeping at once (``PASSIVE``) costs 15% quiet (617 against 721 images/s);
spinning 1,000 rounds before sleeping (``GOMP_SPINCOUNT=1000``, libgomp's default is 300,000) keeps the quiet
speed (770 against 775) and most of passive's robustness (363 against 372 and the default's 247, two
threads beside one busy process): ``benchmarks/results/speed-cpu/load_cpu.md``. Hence two decisions, both overridable:

- :func:`prepare_environment`, called before torch is imported, bounds the spinning of waiting threads
  (``GOMP_SPINCOUNT=1000``) unless the user set a wait policy; this matters when load arrives after the
  thread count was chosen (DataLoader workers, a second job);
- :func:`resolve_threads` takes an explicit count as it is (``--threads``, then ``OMP_NUM_THREADS``) and
  otherwise uses as many threads as CPUs are idle right now (at least 1): :func:`idle_cpus` samples
  ``/proc/stat`` for a tenth of a second. An explicit count above :data:`MAX_THREADS_PER_CPU` times the CPUs
  this process may use is refused (:func:`check_threads`): ``--threads 100000`` once ran 458 s at a load
  average of 168 and was killed.

:func:`configure_torch` applies the choice to torch; the CLI calls it in every command that computes
(``ganaug generate`` gives :func:`choose_threads` to ONNX Runtime).
``benchmarks/load.py`` measures the policy quiet and beside busy processes.
"""

from __future__ import annotations

import math
import operator
import os
import sys
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from ganaug.errors import InputError

WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
"""Environment variables by which a user chooses how OpenMP threads wait; any one set means: leave waiting alone."""

DEFAULT_WAIT = {"GOMP_SPINCOUNT": "1000"}
"""What :func:`prepare_environment` sets when the user chose nothing."""

COUNT_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""Environment variables that fix torch's thread count explicitly (the first set one wins)."""

IDLE_MARGIN = 0.3
"""A CPU counts as idle when at least ``1 - IDLE_MARGIN`` of it was: a shell or a logger does not cost a thread."""

SAMPLE_SECONDS = 0.1

MAX_THREADS_PER_CPU = 4
"""An explicit thread count above this many times :func:`available_cpus` is refused (:func:`check_threads`)."""


def check_threads(requested: object, *, name: str = "threads", cpus: int | None = None) -> int | None:
    """``requested`` (an explicit thread count, or None for "choose") checked, as an int.

    Args:
        requested: None, or a whole number in ``[1, MAX_THREADS_PER_CPU * cpus]``.
        name: how the message names the setting (``--threads`` in the CLI).
        cpus: CPUs this process may use (default :func:`available_cpus`).

    Raises:
        InputError: not a whole number, below 1, or more threads than the machine can use (a one-line message
            naming the limit and the CPU count).
    """
    if requested is None:
        return None
    try:
        count = operator.index(requested)  # int and numpy integers; not floats, strings or bools
    except TypeError:
        count = None
    if count is None or isinstance(requested, bool):
        raise InputError(f"{name} must be a whole number >= 1, got {requested!r}")
    if count < 1:
        raise InputError(f"{name} must be >= 1, got {count}")
    cpus = available_cpus() if cpus is None else cpus
    limit = MAX_THREADS_PER_CPU * max(1, cpus)
    if count > limit:
        raise InputError(
            f"{name} {count} is more than this machine can use (at most {limit}: {MAX_THREADS_PER_CPU} x the "
            f"{cpus} CPUs this process may use); choose {name} {cpus} or fewer, or leave it out"
        )
    return count


def prepare_environment(
    environ: MutableMapping[str, str] | None = None, *, torch_imported: bool | None = None
) -> dict[str, str]:
    """Set :data:`DEFAULT_WAIT` in ``environ`` (default ``os.environ``) unless the user chose a wait policy.

    OpenMP reads its variables once, when torch loads it, so this only acts before ``import torch``
    (``torch_imported`` default: whether ``torch`` is in ``sys.modules``); afterwards it changes nothing.
    Child processes inherit the setting.

    Returns:
        The variables it set (empty when the user had set one of :data:`WAIT_VARIABLES`, or torch was loaded).
    """
    env = os.environ if environ is None else environ
    if torch_imported is None:
        torch_imported = "torch" in sys.modules
    if torch_imported or any(env.get(name) for name in WAIT_VARIABLES):
        return {}
    env.update(DEFAULT_WAIT)
    return dict(DEFAULT_WAIT)


def resolve_threads(
    requested: int | None,
    *,
    cpus: int,
    idle: float | None,
    environ: MutableMapping[str, str] | None = None,
) -> int:
    """The number of intra-op threads to compute with.

    Args:
        requested: an explicit count (``--threads``); used as it is, up to :data:`MAX_THREADS_PER_CPU` x ``cpus``.
        cpus: CPUs this process may use (:func:`available_cpus`), >= 1.
        idle: CPUs' worth of idle time right now (:func:`idle_cpus`), or None when unknown.
        environ: where ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` are read (default ``os.environ``); a
            positive integer there counts as explicit when ``requested`` is None.

    Returns:
        ``requested``; else the environment's count; else the idle CPUs, rounded up when at least
        ``1 - IDLE_MARGIN`` of a CPU is idle, clamped to [1, cpus]; ``cpus`` when ``idle`` is unknown.

    Raises:
        ValueError: ``cpus`` below 1; :class:`~ganaug.errors.InputError` (a ValueError): ``requested`` not a
            whole number, below 1 or above :data:`MAX_THREADS_PER_CPU` x ``cpus`` (:func:`check_threads`).
    """
    if cpus < 1:
        raise ValueError(f"cpus must be >= 1, got {cpus}")
    if requested is not None:
        return check_threads(requested, cpus=cpus)
    fixed = environment_threads(environ)
    if fixed is not None:
        return fixed
    if idle is None or math.isnan(idle):
        return cpus
    return max(1, min(cpus, math.floor(idle + IDLE_MARGIN)))


def environment_threads(environ: MutableMapping[str, str] | None = None) -> int | None:
    """The count the first set one of :data:`COUNT_VARIABLES` fixes (a positive integer), else None."""
    env = os.environ if environ is None else environ
    for name in COUNT_VARIABLES:
        value = env.get(name, "").strip()
        if value.isdigit() and int(value) >= 1:
            return int(value)
    return None


def available_cpus(*, cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup v2 ``cpu.max`` quota (containers)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = (cgroup_root / "cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.floor(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def _cpu_times(stat: Path) -> tuple[int, int, int]:
    """(number of CPUs, idle jiffies, total jiffies) summed over every CPU, from ``/proc/stat``."""
    lines = stat.read_text().splitlines()
    fields = [int(v) for v in lines[0].split()[1:9]]  # user nice system idle iowait irq softirq steal
    cpus = sum(1 for line in lines[1:] if line.startswith("cpu") and line[3:4].isdigit())
    return cpus, fields[3] + fields[4], sum(fields)


def idle_cpus(seconds: float = SAMPLE_SECONDS, *, stat: Path = Path("/proc/stat")) -> float | None:
    """CPUs' worth of idle time over the next ``seconds`` (machine-wide); None where ``/proc/stat`` is missing.

    A CPU that other processes keep busy is not idle; this process sleeps while it samples.
    """
    try:
        cpus, idle0, total0 = _cpu_times(stat)
        time.sleep(seconds)
        _, idle1, total1 = _cpu_times(stat)
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return cpus * (idle1 - idle0) / (total1 - total0)


def choose_threads(requested: int | None = None) -> int:
    """:func:`resolve_threads` on this machine now; samples the idle CPUs only when nothing fixes the count.

    Raises:
        InputError: ``requested`` is refused by :func:`check_threads` (before any sampling).
    """
    explicit = requested is not None or environment_threads() is not None
    return resolve_threads(requested, cpus=available_cpus(), idle=None if explicit else idle_cpus())


def configure_torch(requested: int | None = None) -> int:
    """Give torch :func:`choose_threads` intra-op threads; returns the count.

    Raises:
        InputError: ``requested`` is refused by :func:`check_threads` (before torch is imported).
    """
    threads = choose_threads(requested)
    import torch

    torch.set_num_threads(threads)
    return threads


def ort_session_options(threads: int | None) -> Any:
    """``onnxruntime.SessionOptions`` of every ganaug session (generator and label check): errors only in the log, all
    graph optimisations, ``threads`` intra-op threads (None: ONNX Runtime's choice), and no spinning after a call:
    a label check (or the caller's own work) runs between the generator's calls, and threads that spin would take
    its cores (at 2 threads the checked sampling ran 1.3x to 1.5x faster without)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # no per-session warnings on users' terminals
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options
