"""One DataLoader epoch over a GeneratedDataset vs the runtime generating the same images in large batches.

The bar (issue 4): an epoch over 60,000 generated items through a DataLoader (batch 128, tensors) costs at
most 1.5x what ``OnnxGenerator.generate`` needs for 60,000 images in batches of 1,024, with
``num_workers`` 0 and 2. Every epoch starts from a fresh dataset (empty cache), and includes worker start-up
and each process's session creation, as a user's first epoch does.

    python benchmarks/dataset_epoch.py                      # full size, writes runs/benchmarks/dataset_epoch_cpu.{json,md}
    python benchmarks/dataset_epoch.py --n 4096 --out /tmp/quick   # a smoke run

Without ``--generator`` it trains a default-size model (``ModelConfig()``) for one short epoch on digits and
exports it: the weights do not change the cost of generating, the architecture does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

BAR = 1.5


def default_generator(folder: Path) -> Path:
    from ganaug.config import TrainConfig
    from ganaug.train.trainer import Trainer

    config = TrainConfig(dataset="digits", per_class=10, epochs=1, batch_size=50, device="cpu", export_onnx=True)
    Trainer.new(config, folder, overwrite=True, progress=False).fit()
    return folder / "generator.onnx"


def time_bulk(path: Path, n: int, batch_size: int) -> float:
    from ganaug.feed.dataset import resolve_labels
    from ganaug.sample.runtime import OnnxGenerator

    runtime = OnnxGenerator(path, provider="cpu")
    labels = resolve_labels(runtime.classes, per_class=None, length=n, class_weights=None)  # the dataset's labels
    runtime.generate(labels[:8], seed=0)  # session creation and first-call set-up are not generation
    start = time.perf_counter()
    runtime.generate(labels, seed=0, batch_size=batch_size, dtype="float")
    return time.perf_counter() - start


def time_epoch(path: Path, n: int, batch_size: int, workers: int, shuffle: bool) -> float:
    import torch
    from torch.utils.data import DataLoader

    from ganaug.feed.dataset import GeneratedDataset

    dataset = GeneratedDataset(path, length=n, seed=0, output="tensor")
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers, generator=torch.Generator().manual_seed(0)
    )
    start = time.perf_counter()
    count = sum(len(y) for _, y in loader)
    elapsed = time.perf_counter() - start
    assert count == n
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", type=Path, help="a generator.onnx or run folder (default: a default-size model)")
    parser.add_argument("--n", type=int, default=60_000, help="items per epoch")
    parser.add_argument("--batch-size", type=int, default=128, help="DataLoader batch size")
    parser.add_argument("--bulk-batch-size", type=int, default=1024, help="runtime batch size of the baseline")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--repeats", type=int, default=3, help="timings per case; the median is reported")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs") / "benchmarks" / "dataset_epoch_cpu",
        help="writes OUT.json and OUT.md [default: runs/benchmarks/dataset_epoch_cpu]",
    )
    args = parser.parse_args()

    import onnxruntime
    import torch

    import ganaug
    from ganaug.downstream.machine import describe
    from ganaug.sample.runtime import OnnxGenerator

    with tempfile.TemporaryDirectory() as tmp:
        path = args.generator or default_generator(Path(tmp) / "run")
        rows = []
        for shuffle in (False, True):
            for workers in args.workers:
                bulk, epoch = [], []
                for _ in range(args.repeats):  # interleaved, so machine noise hits both sides alike
                    bulk.append(time_bulk(path, args.n, args.bulk_batch_size))
                    epoch.append(time_epoch(path, args.n, args.batch_size, workers, shuffle))
                b, e = statistics.median(bulk), statistics.median(epoch)
                rows.append(
                    {
                        "num_workers": workers,
                        "shuffle": shuffle,
                        "bulk_s": b,
                        "epoch_s": e,
                        "bulk_img_s": args.n / b,
                        "epoch_img_s": args.n / e,
                        "ratio": e / b,
                        "meets_bar": e / b <= BAR,
                        "bulk_runs_s": bulk,
                        "epoch_runs_s": epoch,
                    }
                )
                print(f"workers={workers} shuffle={shuffle}: bulk {b:.2f} s, epoch {e:.2f} s, ratio {e / b:.2f}")
        metadata = OnnxGenerator(path).metadata

    result = {
        "benchmark": "dataset_epoch",
        "ganaug_version": ganaug.__version__,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "generator": {
            "path": str(args.generator or "default-size model, one short epoch on digits"),
            "model_config": metadata.get("model_config"),
            "z_dim": metadata.get("z_dim"),
        },
        "bar": f"epoch_s <= {BAR} * bulk_s",
        "machine": describe(),
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# DataLoader epoch vs bulk generation ({args.n:,} items, batch {args.batch_size}, tensors)",
        "",
        (
            f"ganaug {ganaug.__version__}, {os.cpu_count()} CPUs, torch {torch.__version__}, onnxruntime "
            f"{onnxruntime.__version__}; median of {args.repeats}; bar: epoch <= {BAR}x bulk "
            f"(runtime, batches of {args.bulk_batch_size})."
        ),
        "",
        "| num_workers | shuffle | bulk (s) | epoch (s) | bulk img/s | epoch img/s | ratio | meets bar |",
        "|---:|:---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['num_workers']} | {r['shuffle']} | {r['bulk_s']:.2f} | {r['epoch_s']:.2f} | "
            f"{r['bulk_img_s']:,.0f} | {r['epoch_img_s']:,.0f} | {r['ratio']:.2f} | {'yes' if r['meets_bar'] else 'no'} |"
        )
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
