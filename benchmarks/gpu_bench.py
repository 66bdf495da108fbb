"""The GPU path, timed: full-MNIST training epochs, class fidelity of the result, and generation speed.

    python benchmarks/gpu_bench.py --data-root DATA --evaluator EVAL_DIR --out-dir benchmarks/results/gpu

1. Trains the large-batch GPU recipe (``--batch-size`` 2048, lr 1.5e-3, bf16 autocast, data resident on the
   GPU) for ``--epochs`` on full MNIST; reports the median training wall time per epoch after the first
   (cuDNN autotuning), and model FLOP utilisation from a FlopCounterMode count of one real training step
   against the GPU's dense bf16 peak (``--peak-tflops``, 989 for an H100 SXM).
2. Class fidelity of the run's EMA generator (``--per-class`` samples a class) with a ganaug evaluator.
3. Generation images/s at large batches: PyTorch fp32 and bf16, and bf16 replayed from a CUDA graph,
   for the BatchNorm-folded EMA generator; ONNX Runtime CUDA when ``onnxruntime-gpu`` is installed, else
   the reason it was not measured.

Writes ``gpu_bench.json`` and ``gpu_bench.md`` to ``--out-dir``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def train_flops_per_image(trainer) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    cfg = trainer.config
    idx = torch.arange(trainer.batch_size, device=trainer.device)
    z = torch.randn(trainer.batch_size, cfg.model.z_dim, device=trainer.device)
    with FlopCounterMode(display=False) as fc:
        _, fake, y = trainer.gan.d_step(trainer.images[idx], trainer.labels[idx], z, keep_fake=True)
        trainer.gan.g_step(fake, y)
    return fc.get_total_flops() / trainer.batch_size


def time_generation(call, batch: int) -> float:
    from throughput import images_per_second  # the sibling benchmark's timer (this folder is on sys.path)

    return images_per_second(call, batch, repeats=7, min_time=0.2, device="cuda")


def generation(run_dir: Path, batches: list[int]) -> list[dict]:
    from ganaug.export import fold_for_inference
    from ganaug.models import generator_flops
    from ganaug.training import load_generator

    g, _ = load_generator(run_dir, device="cuda")
    folded = fold_for_inference(g).cuda()
    flops = generator_flops(g.config)
    rows = []

    def add(path: str, batch: int, rate: float) -> None:
        rows.append(
            {"path": path, "batch": batch, "images_per_s": round(rate), "tflop_per_s": round(rate * flops / 1e12, 2)}
        )
        log(f"{path:28s} batch {batch:6d}: {rate:14,.0f} img/s")

    for batch in batches:
        z = torch.randn(batch, g.config.z_dim, device="cuda")
        y = torch.arange(batch, device="cuda") % g.config.num_classes
        with torch.inference_mode():
            add("torch fp32 (TF32)", batch, time_generation(lambda z=z, y=y: folded(z, y), batch))
            with torch.autocast("cuda", dtype=torch.bfloat16):
                add("torch bf16", batch, time_generation(lambda z=z, y=y: folded(z, y), batch))
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                for _ in range(3):
                    folded(z, y)
            torch.cuda.current_stream().wait_stream(s)
            with torch.cuda.graph(graph):
                out = folded(z, y)
        add("torch bf16 CUDA graph", batch, time_generation(graph.replay, batch))
        del out, graph
    try:
        from ganaug.runtime import OnnxGenerator

        ort = OnnxGenerator(run_dir / "generator.onnx", provider="cuda")
        for batch in batches:
            z = np.random.default_rng(0).standard_normal((batch, g.config.z_dim), dtype=np.float32)
            y = np.arange(batch, dtype=np.int64) % g.config.num_classes
            add("onnxruntime cuda (fp32)", batch, time_generation(lambda z=z, y=y: ort.run(z, y), batch))
    except (ImportError, RuntimeError, ValueError) as e:  # onnxruntime-gpu is often absent on GPU images: say so
        rows.append({"path": "onnxruntime cuda", "not_measured": f"{type(e).__name__}: {str(e).splitlines()[0]}"})
        log(f"onnxruntime cuda not measured: {rows[-1]['not_measured']}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--evaluator", required=True)
    ap.add_argument("--out-dir", type=Path, default=Path("benchmarks/results/gpu"))
    ap.add_argument("--run-dir", type=Path, default=Path("/tmp/ganaug-gpu-run"))
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--batch-size", type=int, default=2048)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--per-class", type=int, default=1000)
    ap.add_argument("--gen-batches", default="4096,65536,262144")
    ap.add_argument("--device", default="cuda", help="cpu only to smoke-test this script (no generation timing)")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the GPU (H100 SXM: 989)")
    args = ap.parse_args()

    from ganaug import __version__
    from ganaug.config import TrainConfig
    from ganaug.training import Trainer

    config = TrainConfig(
        dataset="mnist",
        data_root=args.data_root,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr_g=args.lr,
        lr_d=args.lr,
        device=args.device,
        amp="bf16" if args.device == "cuda" else "off",
        save_every=10,
        log_every=10_000,
    )
    trainer = Trainer.new(config, args.run_dir, overwrite=True, progress=False)
    epoch_seconds: list[float] = []
    end_epoch = trainer._end_epoch

    def timed_end_epoch(epoch: int) -> None:  # training time of each epoch, grids and checkpoints excluded
        epoch_seconds.append(trainer.train_seconds - sum(epoch_seconds))
        end_epoch(epoch)

    trainer._end_epoch = timed_end_epoch
    t0 = time.perf_counter()
    result = trainer.fit()
    wall = time.perf_counter() - t0
    steady = statistics.median(epoch_seconds[1:]) if len(epoch_seconds) > 1 else epoch_seconds[0]
    probe = Trainer(config, Path("/tmp/ganaug-flop-probe"), trainer.data, progress=False)
    flops = train_flops_per_image(probe)
    mfu = flops * trainer.batches_per_epoch * trainer.batch_size / steady / (args.peak_tflops * 1e12)
    log(
        f"epoch: median {steady:.3f} s (first {epoch_seconds[0]:.3f} s); {flops / 1e6:.1f} MFLOP per training image; MFU {100 * mfu:.2f}%"
    )

    from quality_sweep import fidelity as class_fidelity_of  # the sibling benchmark's scoring

    overall, per_class = class_fidelity_of(args.run_dir, args.evaluator, args.per_class)
    fidelity = {"overall": round(overall, 4), "per_class": [round(v, 4) for v in per_class]}
    log(f"class fidelity of the EMA generator: {fidelity}")

    gen_rows = generation(args.run_dir, [int(b) for b in args.gen_batches.split(",")]) if args.device == "cuda" else []
    report = {
        "ganaug_version": __version__,
        "command": " ".join(["python", *sys.argv]),
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "torch": torch.__version__,
        "recipe": {k: v for k, v in config.to_dict().items() if k not in ("data_root", "model")}
        | {"model": config.model.__dict__},
        "training": {
            "epochs": result.epochs,
            "steps": result.steps,
            "epoch_seconds": [round(s, 4) for s in epoch_seconds],
            "median_epoch_seconds": round(steady, 4),
            "total_train_seconds": round(result.train_seconds, 2),
            "wall_seconds_with_grids_checkpoints_export": round(wall, 1),
            "train_mflop_per_image": round(flops / 1e6, 2),
            "mfu_vs_bf16_peak": round(mfu, 5),
            "peak_tflops_assumed": args.peak_tflops,
        },
        "class_fidelity": fidelity,
        "generation": gen_rows,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "gpu_bench.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    lines = [
        f"# GPU path on {report['device']} (torch {report['torch']})",
        "",
        f"Command: `{report['command']}`",
        "",
        "| training (full MNIST train split) | value |",
        "|---|---|",
        f"| recipe | batch {args.batch_size}, lr {args.lr}, amp {trainer.amp}, {result.epochs} epochs ({result.steps} steps) |",
        f"| median epoch (training wall time, after the first) | {steady:.3f} s |",
        f"| first epoch (cuDNN autotuning) | {epoch_seconds[0]:.3f} s |",
        f"| FLOPs per training image (FlopCounterMode, one real step) | {flops / 1e6:.1f} MFLOP |",
        f"| model FLOP utilisation vs {args.peak_tflops:.0f} TFLOP/s bf16 | {100 * mfu:.2f}% |",
        f"| class fidelity of the EMA generator ({args.per_class}/class, ganaug evaluator) | {fidelity['overall']} (lowest class {min(fidelity['per_class'])}) |",
        "",
        "| generation path | batch | images/s | TFLOP/s |",
        "|---|---|---|---|",
    ]
    for r in gen_rows:
        if "not_measured" in r:
            lines.append(f"| {r['path']} | - | not measured: {r['not_measured']} | - |")
        else:
            lines.append(f"| {r['path']} | {r['batch']} | {r['images_per_s']:,} | {r['tflop_per_s']} |")
    (args.out_dir / "gpu_bench.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
