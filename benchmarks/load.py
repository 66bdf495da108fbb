"""Training speed under load: does ganaug's thread and wait policy hold up on a busy CPU?

Measures ``ganaug train --dataset digits --epochs E --no-export`` (its ``summary.json``
``train_images_per_second``) quiet and beside N busy single-threaded processes that this script starts
(each a fixed 256x256 fp32 ``torch`` matmul loop on one thread, or a pure-Python spin), under two policies:

- ``old``: what ganaug did before issue 10: torch loaded before the CLI, so OpenMP keeps libgomp's default
  spinning wait, and torch's default thread count;
- ``new``: plain ``ganaug train``: passive waiting and threads from the idle CPUs (:mod:`ganaug.threads`).

``one-thread`` (old waiting, 1 thread) and ``passive`` (passive waiting, torch's default thread count) are
there for reference. Every child starts from this environment without ``OMP_NUM_THREADS``,
``MKL_NUM_THREADS``, ``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT`` and ``KMP_BLOCKTIME``. Each repeat runs every
policy once, in a rotated order; the reports give medians over repeats.

    python benchmarks/load.py                                   # the committed report; about 10 min on 2 cores
    python benchmarks/load.py --epochs 1 --repeats 1 --warmup 0 --out /tmp/load   # smoke

Run it on an otherwise quiet machine (the report records the load average at the start). Writes
``runs/benchmarks/load_cpu.json`` (every run) and ``load_cpu.md`` unless ``--out`` says otherwise, with the machine
description.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
CLEARED = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
BUSY = {
    "matmul": (
        "import torch\ntorch.set_num_threads(1)\na = torch.randn(256, 256)\nprint('ready', flush=True)\n"
        "while True:\n    a @ a\n"
    ),
    "spin": "print('ready', flush=True)\nwhile True:\n    pass\n",
}
# torch first: libgomp reads its environment when torch loads, before ganaug's CLI could set a wait policy
TORCH_FIRST = "import sys, torch; from ganaug.cli import main; main(sys.argv[1:], prog_name='ganaug')"
BAR = {1: 0.50, 3: 0.25}  # share of its quiet throughput the new policy keeps beside that many busy processes
QUIET_BAR = 0.95  # new quiet throughput against old quiet throughput


@dataclass(frozen=True)
class Policy:
    """How one ``ganaug train`` child runs: extra environment, ``--threads`` (None: ganaug picks) and
    whether torch loads before the CLI (then ganaug cannot set the wait policy)."""

    name: str
    description: str
    threads: int | None
    torch_first: bool
    env: dict[str, str] = field(default_factory=dict)


def policies(default_threads: int) -> dict[str, Policy]:
    return {
        "old": Policy(
            "old", f"libgomp default wait, {default_threads} threads (torch's default)", default_threads, True
        ),
        "new": Policy("new", "ganaug's policy: GOMP_SPINCOUNT=1000, threads from the idle CPUs", None, False),
        "one-thread": Policy("one-thread", "libgomp default wait, 1 thread", 1, True),
        "passive": Policy(
            "passive",
            f"OMP_WAIT_POLICY=PASSIVE, {default_threads} threads",
            default_threads,
            False,
            {"OMP_WAIT_POLICY": "PASSIVE"},
        ),
        # load that arrives after the thread count was chosen (DataLoader workers): the wait policy alone
        "spin-1k-all": Policy(
            "spin-1k-all", f"GOMP_SPINCOUNT=1000, {default_threads} threads", default_threads, False,
            {"GOMP_SPINCOUNT": "1000"},
        ),
        "spin-10k-all": Policy(
            "spin-10k-all", f"GOMP_SPINCOUNT=10000, {default_threads} threads", default_threads, False,
            {"GOMP_SPINCOUNT": "10000"},
        ),
        "spin-100k-all": Policy(
            "spin-100k-all", f"GOMP_SPINCOUNT=100000, {default_threads} threads", default_threads, False,
            {"GOMP_SPINCOUNT": "100000"},
        ),
    }  # fmt: skip


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(extra or {})
    return env


def torch_default_threads() -> int:
    """torch's own thread count in a fresh process with a clean environment."""
    out = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip())


@contextmanager
def busy_processes(n: int, kind: str) -> Iterator[list[subprocess.Popen]]:
    """Start ``n`` single-threaded busy processes (``kind`` in :data:`BUSY`), wait until each runs; stop them after."""
    procs: list[subprocess.Popen] = []
    try:
        for _ in range(n):
            proc = subprocess.Popen(
                [sys.executable, "-c", BUSY[kind]],
                env=clean_env({"OMP_NUM_THREADS": "1"}),
                stdout=subprocess.PIPE,
                text=True,
            )
            procs.append(proc)
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"busy process {proc.pid} did not start")
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def train_once(policy: Policy, *, epochs: int, run_dir: Path, timeout: float) -> dict[str, Any]:
    """One ``ganaug train`` child under ``policy``; its summary's images/s and thread count."""
    args = ["train", "--dataset", "digits", "--epochs", str(epochs), "--no-export", "--quiet", "--device", "cpu"]
    args += ["--seed", "0", "--out", str(run_dir)]
    if policy.threads is not None:
        args += ["--threads", str(policy.threads)]
    cmd = [sys.executable, "-c", TORCH_FIRST, *args] if policy.torch_first else [sys.executable, "-m", "ganaug", *args]
    done = subprocess.run(cmd, env=clean_env(policy.env), capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"images_per_second": summary["train_images_per_second"], "torch_threads": summary["torch_threads"]}


def measure(
    chosen: list[Policy],
    *,
    loads: list[int],
    repeats: int,
    warmup: int,
    epochs: int,
    kind: str,
    timeout: float,
    log=print,
) -> list[dict[str, Any]]:
    """Every run: one per (load, repeat, policy), policies in an order rotated by the repeat."""
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ganaug-load-") as tmp:
        for i in range(warmup):  # file caches, first imports: not measured
            for p in chosen:
                train_once(p, epochs=epochs, run_dir=Path(tmp) / f"warmup{i}_{p.name}", timeout=timeout)
        for n in loads:
            with busy_processes(n, kind):
                for r in range(repeats):
                    order = chosen[r % len(chosen) :] + chosen[: r % len(chosen)]
                    for p in order:
                        got = train_once(p, epochs=epochs, run_dir=Path(tmp) / f"b{n}_r{r}_{p.name}", timeout=timeout)
                        runs.append({"busy": n, "repeat": r, "policy": p.name, **got})
                        log(
                            f"busy={n} repeat={r} {p.name}: {got['images_per_second']:.0f} img/s, "
                            f"{got['torch_threads']} threads"
                        )
    return runs


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per (policy, load), each as a share of the same policy's quiet median, and the bar's checks."""
    medians: dict[str, dict[int, float]] = {}
    for name in dict.fromkeys(r["policy"] for r in runs):
        values: dict[int, list[float]] = {}
        for r in runs:
            if r["policy"] == name:
                values.setdefault(r["busy"], []).append(r["images_per_second"])
        medians[name] = {n: statistics.median(v) for n, v in sorted(values.items())}
    share = {name: {n: v / m[0] for n, v in m.items()} for name, m in medians.items() if m.get(0)}
    checks = []
    new, old = medians.get("new", {}), medians.get("old", {})
    for n, target in BAR.items():
        if n in new and new.get(0):
            checks.append(
                {
                    "check": f"new keeps >= {target:.0%} of its quiet throughput beside {n} busy",
                    "value": new[n] / new[0],
                    "target": target,
                    "pass": new[n] / new[0] >= target,
                }
            )
    if new.get(0) and old.get(0):
        checks.append(
            {
                "check": f"new quiet throughput >= {QUIET_BAR:.0%} of old",
                "value": new[0] / old[0],
                "target": QUIET_BAR,
                "pass": new[0] / old[0] >= QUIET_BAR,
            }
        )
    return {"medians": medians, "share_of_quiet": share, "checks": checks}


def write_markdown(doc: dict[str, Any], path: Path) -> None:
    s, loads = doc["summary"], doc["settings"]["loads"]
    names = list(s["medians"])
    lines = [
        "# Training speed under load",
        "",
        f"Command: `{doc['command']}`  ",
        (
            f"ganaug {doc['ganaug_version']}; finished {doc['finished']}; load average at the start "
            f"{doc['load_average_at_start']}."
        ),
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in doc["machine"].items()),
        "",
        (
            f"`ganaug train --dataset digits --epochs {doc['settings']['epochs']} --no-export` beside N busy "
            f"single-threaded processes ({doc['settings']['busy_kind']}); median training images/s over "
            f"{doc['settings']['repeats']} repeats, and the share of the same policy's quiet median."
        ),
        "",
        "| busy processes | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for n in loads:
        cells = []
        for name in names:
            v = s["medians"][name].get(n)
            frac = s["share_of_quiet"].get(name, {}).get(n)
            cells.append("–" if v is None else f"{v:.0f}" + ("" if frac is None else f" ({frac:.0%})"))
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines += ["", "Policies:", ""] + [f"- `{p['name']}`: {p['description']}" for p in doc["policies"].values()]
    threads = sorted({(r["policy"], r["busy"], r["torch_threads"]) for r in doc["runs"]})
    lines += ["", "Threads each run used: " + "; ".join(f"{p} at {n} busy: {t}" for p, n, t in threads), ""]
    if s["checks"]:
        lines += ["## The bar (issue 10)", ""]
        lines += [f"- {'PASS' if c['pass'] else 'FAIL'}: {c['check']} ({c['value']:.0%})" for c in s["checks"]]
        lines.append("")
    lines.append("Every run is in the JSON file beside this one.")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="training epochs on digits per run")
    parser.add_argument("--repeats", type=int, default=5, help="runs per (load, policy); the report gives medians")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured runs of each policy first")
    parser.add_argument("--loads", default="0,1,3", help="numbers of busy processes, e.g. 0,1,3 (0 = quiet)")
    parser.add_argument("--policies", default="old,new", help="from old,new,one-thread,passive")
    parser.add_argument("--busy-kind", choices=list(BUSY), default="matmul")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one training run may take")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs") / "benchmarks" / "load_cpu",
        help="writes OUT.json and OUT.md [default: runs/benchmarks/load_cpu]",
    )
    args = parser.parse_args(argv)
    try:
        loads = sorted({int(v) for v in args.loads.split(",") if v.strip()})
    except ValueError:
        parser.error(f"--loads {args.loads!r}: write whole numbers, e.g. 0,1,3")
    if not loads or loads[0] < 0 or args.epochs < 1 or args.repeats < 1 or args.warmup < 0:
        parser.error("--loads must be >= 0, --epochs and --repeats >= 1, --warmup >= 0")
    available = policies(torch_default_threads())
    names = [n.strip() for n in args.policies.split(",") if n.strip()]
    if not names or set(names) - set(available):
        parser.error(f"--policies {args.policies!r}: choose from {', '.join(available)}")
    chosen = [available[n] for n in names]
    load_at_start = [round(v, 2) for v in os.getloadavg()]
    t0 = time.perf_counter()
    runs = measure(
        chosen,
        loads=loads,
        repeats=args.repeats,
        warmup=args.warmup,
        epochs=args.epochs,
        kind=args.busy_kind,
        timeout=args.timeout,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    from ganaug import __version__
    from ganaug.downstream.machine import describe

    doc = {
        "command": "python benchmarks/load.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "ganaug_version": __version__,
        "machine": describe(),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "load_average_at_start": load_at_start,
        "settings": {
            "epochs": args.epochs,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "loads": loads,
            "busy_kind": args.busy_kind,
            "cleared_environment": list(CLEARED),
        },
        "policies": {p.name: asdict(p) for p in chosen},
        "runs": runs,
        "summary": summarize(runs),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    write_markdown(doc, args.out.with_suffix(".md"))
    print(f"wrote {args.out.with_suffix('.md')}")
    return doc


if __name__ == "__main__":
    main()
