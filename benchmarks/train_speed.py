"""Training speed of training levers, side by side: images/s of ``ganaug train`` per lever, repeats interleaved.

    python -m benchmarks.train_speed --data-root ../shared/data --levers baseline,bf16 --repeats 3 \\
        --threads 2 --out runs/benchmarks/train_speed_cpu      # writes OUT.json and OUT.md

Each repeat trains every lever once, in turn (lever A, lever B, A, B, ...), so a machine that slows down or
speeds up during the benchmark weighs on every lever alike. A run is ``ganaug train`` with the lever's exact
arguments (:data:`benchmarks.coverage.LEVERS`) on ``--real-per-class`` images a class for ``--epochs``, as its own
process, ``--no-export``; its figure is the ``train_images_per_second`` of its summary.json (training steps
only: data loading, sample grids and checkpoints are not timed). The table gives each lever's median and its
ratio to the first lever's median. Lever runs go to a temporary folder that is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import result_pair
from benchmarks.coverage import LEVERS, lever_command

KIND = "ganaug train_speed"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--levers", default="fp32,bf16", help=f"comma-separated: {', '.join(LEVERS)}")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist", "digits"])
    p.add_argument("--data-root", default=None, help="folder holding MNIST/raw or FashionMNIST/raw")
    p.add_argument("--real-per-class", dest="per_class", type=int, default=500, help="training images a class (all: 0)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="torch threads of each run (runs go one at a time)")
    p.add_argument(
        "--out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "ganaug-train_speed_cpu",
        help="OUT.json, OUT.md [default: ganaug-train_speed_cpu in the system temp folder]",
    )
    args = p.parse_args(argv)
    args.names = [n.strip() for n in args.levers.split(",") if n.strip()]
    unknown = [n for n in args.names if n not in LEVERS]
    if unknown:
        p.error(f"unknown lever(s) {', '.join(unknown)}; choose from {', '.join(LEVERS)}")
    if args.dataset != "digits" and args.data_root is None:
        p.error(f"--dataset {args.dataset} needs --data-root")
    if min(args.repeats, args.epochs, args.threads) < 1 or args.per_class < 0:
        p.error("--repeats, --epochs and --threads must be >= 1, --real-per-class >= 0")
    result_pair.check_out(p, args.out, kind=KIND, example="train_speed")
    return args


def train_command(name: str, args: argparse.Namespace, run_dir: Path) -> list[str]:
    """The exact ``ganaug train`` command of one timed run."""
    lever = lever_command(name, argparse.Namespace(dataset=args.dataset, epochs=args.epochs, data_root=args.data_root))
    subset = ["--real-per-class", str(args.per_class)] if args.per_class else []
    return [
        sys.executable,
        "-m",
        *lever,
        *subset,
        "--threads",
        str(args.threads),
        "--no-export",
        "--quiet",
        "--out",
        str(run_dir),
    ]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Interleaved repeats of every lever; the JSON document (figures, commands, machine)."""
    from ganaug.downstream.machine import describe

    speeds: dict[str, list[float]] = {n: [] for n in args.names}
    with tempfile.TemporaryDirectory(prefix="ganaug-train-speed-") as work:
        for r in range(args.repeats):
            for name in args.names:
                run_dir = Path(work) / f"{name}-{r}"
                cmd = train_command(name, args, run_dir)
                done = subprocess.run(cmd, check=False, capture_output=True, text=True)
                if done.returncode:
                    tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
                    raise SystemExit(f"error: lever {name} failed (exit {done.returncode}): {tail}")
                ips = json.loads((run_dir / "summary.json").read_text())["train_images_per_second"]
                speeds[name].append(ips)
                print(f"repeat {r + 1}/{args.repeats} {name}: {ips:.1f} images/s", file=sys.stderr, flush=True)
    first = statistics.median(speeds[args.names[0]])
    return {
        "kind": KIND,
        "command": " ".join(["python -m benchmarks.train_speed", *sys.argv[1:]]),
        "train_commands": {n: " ".join(train_command(n, args, Path("RUN"))[1:]) for n in args.names},
        "machine": describe(),
        "levers": {
            n: {
                "images_per_second": s,
                "median": round(statistics.median(s), 1),
                "ratio_to_first": round(statistics.median(s) / first, 3),
            }
            for n, s in speeds.items()
        },
    }


def report(doc: dict[str, Any]) -> str:
    machine = doc["machine"]
    lines = [
        "# Training speed of the levers, side by side",
        "",
        f"Machine: {machine.get('cpu', machine.get('platform'))}, torch {machine.get('torch')}. Command:",
        "",
        f"    {doc['command']}",
        "",
        "| lever | median images/s | ratio to the first | every repeat |",
        "|---|---|---|---|",
    ]
    for name, row in doc["levers"].items():
        each = ", ".join(f"{v:.1f}" for v in row["images_per_second"])
        lines.append(f"| `{name}` | {row['median']:.1f} | {row['ratio_to_first']:.3f} | {each} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    doc = measure(args)
    result_pair.write(args.out, doc, report(doc))
    return doc


if __name__ == "__main__":
    main()
