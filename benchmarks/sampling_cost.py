"""What a temperature and a label check cost in generation speed: images/s of ``OnnxGenerator.generate`` with
plain sampling, with ``--temperature`` alone and with ``--temperature`` plus ``--label-check`` (and, with
``--unflatten K`` for a run trained with ``flatten_density``, plus K candidates each), side by side.

Each repeat times the three in turn (interleaved, so a drift in the machine's speed hits all three alike) on
the same labels; the report gives each one's median images/s and its ratio to plain sampling, and how many
images the check drew again.

    python -m benchmarks.sampling_cost RUN --label-check CHECK --temperature 1.15 --images 20000 --repeats 5 \\
        --threads 2 --out benchmarks/results/coverage_cpu_round15/sampling_cost.json

The time to build the unflattening (reading the run's training images and their density caps, once per
process) is reported apart, not in the images/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="a run folder holding generator.onnx, or the .onnx file")
    p.add_argument("--label-check", type=Path, required=True)
    p.add_argument("--temperature", type=float, default=1.15)
    p.add_argument("--unflatten", type=int, default=0, help="also time --unflatten K (RUN must be the run folder)")
    p.add_argument("--data-root", type=Path, default=None, help="where the run's training data is (--unflatten)")
    p.add_argument("--images", type=int, default=20000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime and torch threads")
    p.add_argument("--out", type=Path, default=None, help="JSON file to write")
    args = p.parse_args(argv)
    if args.images < 1 or args.repeats < 1 or not args.temperature > 0 or args.unflatten < 0:
        p.error("--images and --repeats must be >= 1, --temperature > 0, --unflatten >= 0")
    if args.out is not None and (args.out.exists() or args.out.is_symlink()) and not _ours(args.out):
        p.error(f"--out {args.out} exists and is not a report of this script; choose another file")

    import numpy as np
    import torch

    from ganaug.downstream.machine import describe
    from ganaug.errors import GanaugError
    from ganaug.outputs import write_text_whole
    from ganaug.sample.resample import LabelCheck, Sampling
    from ganaug.sample.runtime import OnnxGenerator
    from ganaug.sample.unflatten import Unflatten

    torch.set_num_threads(args.threads)
    gen = OnnxGenerator(args.run, provider="cpu", threads=args.threads)
    hot, checked = Sampling(args.temperature), Sampling(args.temperature, LabelCheck.load(args.label_check))
    variants = {
        "plain": None,
        f"temperature {args.temperature:g}": hot,
        f"temperature {args.temperature:g} + label check": checked,
    }
    build_seconds = None
    if args.unflatten:
        t0 = time.perf_counter()
        try:
            unflatten = Unflatten.for_run(args.run, candidates=args.unflatten, data_root=args.data_root)
        except GanaugError as e:
            raise SystemExit(f"error: {e}") from None
        build_seconds = time.perf_counter() - t0
        name = f"temperature {args.temperature:g} + label check + unflatten {args.unflatten}"
        variants[name] = Sampling(args.temperature, checked.check, unflatten)
    labels = gen.labels(-(-args.images // gen.num_classes))[: args.images]
    gen.generate(labels[:256], seed=0)  # session and check warm-up
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, sampling in variants.items():
            t0 = time.perf_counter()
            gen.generate(labels, seed=0, batch_size=args.batch_size, sampling=sampling)
            seconds[name].append(time.perf_counter() - t0)
    first = gen.generate(labels, seed=0, dtype="float", sampling=hot)
    redrawn = float(np.mean(~checked.check.judge(first, labels)[0]))
    base = statistics.median(seconds["plain"])
    rows = {
        name: {
            "median_seconds": statistics.median(s),
            "images_per_second": len(labels) / statistics.median(s),
            "speed_vs_plain": base / statistics.median(s),
            "seconds": s,
        }
        for name, s in seconds.items()
    }
    result = {
        "command": "python -m benchmarks.sampling_cost " + " ".join(sys.argv[1:] if argv is None else argv),
        "images": len(labels),
        "repeats": args.repeats,
        "redrawn_share_first_try": redrawn,
        "sampling": checked.identity(),
        "unflatten_build_seconds": build_seconds,
        "rows": rows,
        "machine": describe(),
    }
    for name, r in rows.items():
        print(f"{name:<36} {r['images_per_second']:>9.0f} images/s  x{r['speed_vs_plain']:.2f} of plain")
    print(f"the check drew {redrawn:.1%} of the images again at least once")
    if build_seconds is not None:
        print(f"building the unflattening (training images and caps) took {build_seconds:.1f} s, once")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_text_whole(args.out, json.dumps(result, indent=1) + "\n")
        except GanaugError as e:  # a full disk: the figures are printed above; one line, no traceback
            raise SystemExit(f"error: {e}") from None
    return result


def _ours(path: Path) -> bool:
    """True when ``path`` is a JSON report this script wrote (the only kind of file it replaces)."""
    try:
        doc = json.loads(path.read_text()) if path.is_file() and not path.is_symlink() else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(doc, dict) and "redrawn_share_first_try" in doc


if __name__ == "__main__":
    main()
