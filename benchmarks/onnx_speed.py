"""Generation speed of exported generators, side by side: ONNX Runtime CPU images/s per file, repeats interleaved.

    python -m benchmarks.onnx_speed RUN_A/generator.onnx RUN_B/generator.onnx --batch-sizes 1,256,1024 \\
        --repeats 7 --threads 1 --out runs/benchmarks/onnx_speed_cpu      # writes OUT.json and OUT.md

Each file is opened as users open it (:class:`ganaug.sample.runtime.OnnxGenerator`, CPU provider, ``--threads``
intra-op threads) and timed on ``run`` (numpy in and out) with the same latents and labels. Each repeat times
every file at every batch size in turn (A, B, A, B, ...) for at least ``--min-time`` seconds after as long a
warm-up (``benchmarks.throughput.images_per_second``, one repeat at a time), so a machine that slows down weighs on every file alike. The table gives each file's median images/s and its
ratio to the first file's median at the same batch size.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import result_pair

KIND = "ganaug onnx_speed"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "models", nargs="+", type=Path, help="generator .onnx files or run folders (the first is the reference)"
    )
    p.add_argument("--batch-sizes", default="1,256,1024")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--min-time", type=float, default=0.5, help="seconds per file, batch size and repeat")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    p.add_argument(
        "--out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "ganaug-onnx_speed_cpu",
        help="OUT.json, OUT.md [default: ganaug-onnx_speed_cpu in the system temp folder]",
    )
    args = p.parse_args(argv)
    try:
        args.batches = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    except ValueError:
        p.error(f"--batch-sizes: expected numbers such as 1,256,1024, got {args.batch_sizes!r}")
    if not args.batches or min(args.batches) < 1 or min(args.repeats, args.threads) < 1 or args.min_time <= 0:
        p.error("--batch-sizes, --repeats and --threads must be >= 1 and --min-time > 0")
    missing = [str(m) for m in args.models if not m.exists()]
    if missing:
        p.error(f"no such file or folder: {', '.join(missing)} (give generator .onnx files or run folders)")
    result_pair.check_out(p, args.out, kind=KIND, example="onnx_speed")
    return args


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Interleaved repeats of every file at every batch size; the JSON document (figures, command, machine)."""
    from benchmarks.throughput import images_per_second
    from ganaug.downstream.machine import describe
    from ganaug.sample.runtime import OnnxGenerator

    gens = [OnnxGenerator(m, provider="cpu", threads=args.threads) for m in args.models]
    rng = np.random.default_rng(0)
    inputs = {
        b: (
            rng.standard_normal((b, gens[0].z_dim), dtype=np.float32),
            np.arange(b, dtype=np.int64) % len(gens[0].classes),
        )
        for b in args.batches
    }
    speeds = {str(m): {str(b): [] for b in args.batches} for m in args.models}
    for r in range(args.repeats):
        for b, (z, labels) in inputs.items():
            for m, g in zip(args.models, gens, strict=True):
                call = functools.partial(g.run, z, labels)
                speeds[str(m)][str(b)].append(images_per_second(call, b, repeats=1, min_time=args.min_time))
        print(f"repeat {r + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    first = speeds[str(args.models[0])]
    return {
        "kind": KIND,
        "command": " ".join(["python -m benchmarks.onnx_speed", *sys.argv[1:]]),
        "machine": describe(),
        "threads": args.threads,
        "models": {
            m: {
                b: {
                    "images_per_second": [round(v, 1) for v in s],
                    "median": round(statistics.median(s), 1),
                    "ratio_to_first": round(statistics.median(s) / statistics.median(first[b]), 3),
                }
                for b, s in by_batch.items()
            }
            for m, by_batch in speeds.items()
        },
    }


def report(doc: dict[str, Any]) -> str:
    machine = doc["machine"]
    batches = list(next(iter(doc["models"].values())))
    lines = [
        "# Generation speed of exported generators, side by side (ONNX Runtime CPU)",
        "",
        f"Machine: {machine.get('cpu', machine.get('platform'))}; {doc['threads']} thread(s). Command:",
        "",
        f"    {doc['command']}",
        "",
        "Median images/s (ratio to the first file's median):",
        "",
        "| file | " + " | ".join(f"batch {b}" for b in batches) + " |",
        "|---|" + "---|" * len(batches),
    ]
    for name, by_batch in doc["models"].items():
        cells = [f"{by_batch[b]['median']:,.0f} ({by_batch[b]['ratio_to_first']:.3f})" for b in batches]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    doc = measure(args)
    result_pair.write(args.out, doc, report(doc))
    return doc


if __name__ == "__main__":
    main()
