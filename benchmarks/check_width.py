"""How wide must a run's own label check be? For each width and number of passes, train the check on the run's
training images (as ``ganaug train`` does, seed from the run's), then draw ``--per-class`` images per class through
it and report the committed evaluator's class fidelity and the images/s of ``GeneratedDataset`` with it.

    python -m benchmarks.check_width RUN --evaluator benchmarks/results/evaluators/mnist_cpu --data-root DATA \\
        --widths 4,8,16 --epochs 1,2 --threads 2 --out OUT.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--evaluator", type=Path, required=True)
    p.add_argument("--data-root", type=Path, default=None)
    p.add_argument("--widths", default="4,8,16")
    p.add_argument("--epochs", default="1,2")
    p.add_argument("--per-class", type=int, default=1000)
    p.add_argument("--speed-images", type=int, default=10000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)

    import tempfile

    import numpy as np
    import torch

    from ganaug.classify.evaluator import load_evaluator
    from ganaug.downstream.machine import describe
    from ganaug.eval.metrics import class_fidelity
    from ganaug.feed.dataset import GeneratedDataset
    from ganaug.threads import configure_torch
    from ganaug.train import labelcheck
    from ganaug.train.runfolder import RunFolder
    from ganaug.train.trainer import _reopen

    configure_torch(args.threads)
    config, data = _reopen(RunFolder(args.run), epochs=None, data_root=args.data_root)
    ev = load_evaluator(args.evaluator)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "generator.onnx"
        model.symlink_to((args.run / "generator.onnx").resolve())
        for width in (int(w) for w in args.widths.split(",")):
            for epochs in (int(e) for e in args.epochs.split(",")):
                labelcheck.CHECK_WIDTH, labelcheck.CHECK_EPOCHS = width, epochs
                t0 = time.perf_counter()
                check = labelcheck.train_label_check(
                    data.images, data.labels, data.classes, seed=config.seed, data_identity=data.identity
                )
                train_s = time.perf_counter() - t0
                path = labelcheck.export_label_check(check, Path(tmp) / "label_check.onnx")
                ds = GeneratedDataset(
                    model,
                    per_class=args.per_class,
                    seed=0,
                    order="sorted",
                    output="tensor",
                    value_range=(-1, 1),
                    label_check=path,
                    threads=args.threads,
                    sampling="plain",
                )
                t0 = time.perf_counter()
                images = torch.from_numpy(ds.arrays(np.arange(len(ds))))  # float32 [N, 1, 28, 28] in [-1, 1]
                seconds = time.perf_counter() - t0
                fid = class_fidelity(ev.predict(images), ds.targets, num_classes=len(ds.classes)).overall
                row = {
                    "width": width,
                    "epochs": epochs,
                    "train_seconds": train_s,
                    "train_accuracy": check.meta["train_accuracy"],
                    "fidelity": fid,
                    "images_per_second": len(ds) / seconds,
                }
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": "python -m benchmarks.check_width " + " ".join(argv or sys.argv[1:]),
                "machine": describe(),
                "rows": rows,
            },
            indent=1,
        )
        + "\n"
    )
    return rows


if __name__ == "__main__":
    main()
