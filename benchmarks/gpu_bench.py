"""The GPU training path, timed: full-MNIST training epochs eager or compiled, and the class fidelity of the result.

    python benchmarks/gpu_bench.py --data-root DATA --evaluator EVAL_DIR --variant eager   --out-dir OUT
    python benchmarks/gpu_bench.py --data-root DATA --evaluator EVAL_DIR --variant compile --out-dir OUT
    python benchmarks/gpu_bench.py --summarize OUT     # OUT/gpu_bench_*.json side by side (markdown on stdout)
    python benchmarks/gpu_bench.py --check-summary OUT --stages STAGES.tsv   # gpu_check.sh's OUT/gpu_check.md

1. Trains the large-batch GPU recipe (``--batch-size`` 2048, lr 1.5e-3, bf16 autocast, data resident on the
   GPU) for ``--epochs`` on full MNIST, with G and D eager (``--variant eager``) or through ``torch.compile``
   (``--variant compile``, :attr:`ganaug.config.TrainConfig.compile`). Reports the median training wall time
   per epoch after the first (the first pays cuDNN autotuning and, compiled, the compilation), and model
   FLOP utilisation from a FlopCounterMode count of one real training step against the GPU's dense bf16
   peak (``--peak-tflops``, 989 for an H100 SXM).
2. Class fidelity of the run's EMA generator (``--per-class`` samples a class) with a ganaug evaluator; the
   bar is >= 0.99 whatever the variant (compiling must not change what is learned).

Generation speed is ``benchmarks/throughput.py``'s job (``--device cuda``). Each variant runs in its own
process (so a compiler failure or hang costs only its own figures) and writes ``gpu_bench_<variant>.json``;
``--summarize`` puts them side by side. ``--device cpu --dataset digits`` smoke-tests
this script on a CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch

EPOCH_BAR_S = 0.15
FIDELITY_BAR = 0.99


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def train_flops_per_image(trainer) -> float:
    """FLOPs of one D + G training step per image (FlopCounterMode over a real step of an eager copy)."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = trainer.config
    idx = torch.arange(trainer.batch_size, device=trainer.device)
    z = torch.randn(trainer.batch_size, cfg.model.z_dim, device=trainer.device)
    with FlopCounterMode(display=False) as fc:
        _, batch = trainer.gan.d_step(trainer.images[idx], trainer.labels[idx], z, keep_fake=True)
        trainer.gan.g_step(batch)
    return fc.get_total_flops() / trainer.batch_size


def profile_steps(trainer, steps: int) -> str:
    """torch.profiler over ``steps`` training steps as ``Trainer.fit`` runs them (after 5 warm-up steps):
    the operators that take the device's and the host's time, as a table. Where a step's time goes decides
    what pays next (fewer launches: CUDA graphs; fewer bytes: fusion; more FLOPs per launch: bigger batches)."""
    from torch.profiler import ProfilerActivity, profile

    cfg, gan, bs = trainer.config, trainer.gan, trainer.batch_size

    def step(i: int) -> None:
        idx = torch.randint(len(trainer.labels), (bs,), device=trainer.device)
        z = torch.randn(bs, cfg.model.z_dim, device=trainer.device)
        gan.step = i
        _, batch = gan.d_step(trainer.images[idx], trainer.labels[idx], z, keep_fake=True)  # autocast inside
        gan.g_step(batch)

    for i in range(5):
        step(i)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if trainer.device.type == "cuda" else [])
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    with profile(activities=activities) as prof:
        for i in range(steps):
            step(5 + i)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
    wall = (time.perf_counter() - t0) / steps
    sort = "cuda_time_total" if trainer.device.type == "cuda" else "cpu_time_total"
    return (
        f"{steps} training steps at batch {bs} (profiled wall {1000 * wall:.2f} ms a step)\n"
        + prof.key_averages().table(sort_by=sort, row_limit=30)
    )


def run_variant(args: argparse.Namespace) -> dict:
    from ganaug import __version__
    from ganaug.config import TrainConfig
    from ganaug.train.trainer import Trainer

    on_cuda = args.device == "cuda"
    config = TrainConfig(
        dataset=args.dataset,
        data_root=args.data_root,
        per_class=args.train_per_class,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr_g=args.lr,
        lr_d=args.lr,
        device=args.device,
        amp="bf16" if on_cuda else "off",
        compile=args.variant == "compile",
        save_every=10,
        log_every=10_000,
        export_onnx=False,
    )
    run_dir = args.run_dir / args.variant
    trainer = Trainer.new(config, run_dir, overwrite=True, progress=False)
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
    probe = Trainer(
        dataclasses.replace(config, compile=False), args.run_dir / "flop-probe", trainer.data, progress=False
    )
    flops = train_flops_per_image(probe)
    if args.profile_steps:
        table = profile_steps(probe, args.profile_steps)
        (args.out_dir / f"gpu_profile_{args.variant}.txt").write_text(table)
        log(table[:4000])
    images = trainer.batches_per_epoch * trainer.batch_size
    mfu = flops * images / steady / (args.peak_tflops * 1e12) if on_cuda else None
    log(
        f"{args.variant}: epoch median {steady:.3f} s (first {epoch_seconds[0]:.3f} s); "
        f"{flops / 1e6:.1f} MFLOP per training image" + (f"; MFU {100 * mfu:.2f}%" if mfu is not None else "")
    )

    from quality_sweep import fidelity as class_fidelity_of  # the sibling benchmark's scoring

    overall, per_class = class_fidelity_of(run_dir, args.evaluator, args.per_class)
    fidelity = {"overall": round(overall, 4), "per_class": [round(v, 4) for v in per_class]}
    log(f"{args.variant}: class fidelity of the EMA generator: {fidelity}")
    return {
        "ganaug_version": __version__,
        "variant": args.variant,
        "command": " ".join(["python", *sys.argv]),
        "device": torch.cuda.get_device_name() if on_cuda else "cpu",
        "torch": torch.__version__,
        "recipe": {k: v for k, v in config.to_dict().items() if k not in ("data_root", "model")}
        | {"model": dataclasses.asdict(config.model)},
        "training": {
            "epochs": result.epochs,
            "steps": result.steps,
            "images_per_epoch": images,
            "epoch_seconds": [round(s, 4) for s in epoch_seconds],
            "first_epoch_seconds": round(epoch_seconds[0], 4),
            "median_epoch_seconds": round(steady, 4),
            "epoch_bar_seconds": EPOCH_BAR_S,
            "meets_epoch_bar": steady <= EPOCH_BAR_S,
            "total_train_seconds": round(result.train_seconds, 2),
            "wall_seconds_with_grids_checkpoints": round(wall, 1),
            "train_mflop_per_image": round(flops / 1e6, 2),
            "mfu_vs_bf16_peak": None if mfu is None else round(mfu, 5),
            "peak_tflops_assumed": args.peak_tflops,
        },
        "class_fidelity": fidelity | {"bar": FIDELITY_BAR, "meets_bar": overall >= FIDELITY_BAR},
    }


def summarize(out_dir: Path) -> str:
    """``gpu_bench.md``: every ``gpu_bench_<variant>.json`` in ``out_dir`` side by side."""
    reports = [json.loads(p.read_text()) for p in sorted(out_dir.glob("gpu_bench_*.json"))]
    if not reports:
        return "# GPU training path\n\nNo gpu_bench_<variant>.json was written (every variant failed or timed out).\n"
    first = reports[0]
    r = first["recipe"]
    lines = [
        f"# GPU training path on {first['device']} (torch {first['torch']})",
        "",
        (
            f"Recipe: {r['dataset']}, batch {r['batch_size']}, lr {r['lr_g']}, amp {r['amp']}, {r['epochs']} epochs; "
            f"bars: median epoch <= {EPOCH_BAR_S} s, class fidelity >= {FIDELITY_BAR}."
        ),
        "",
        "| variant | median epoch (s) | first epoch (s) | MFU | class fidelity (lowest class) | epoch bar | fidelity bar |",
        "|---|---:|---:|---:|---|---|---|",
    ]
    for rep in reports:
        t, f = rep["training"], rep["class_fidelity"]
        mfu = "-" if t["mfu_vs_bf16_peak"] is None else f"{100 * t['mfu_vs_bf16_peak']:.2f}%"
        lines.append(
            f"| {rep['variant']} | {t['median_epoch_seconds']:.3f} | {t['first_epoch_seconds']:.3f} | {mfu} | "
            f"{f['overall']} ({min(f['per_class'])}) | {'met' if t['meets_epoch_bar'] else 'NOT met'} | "
            f"{'met' if f['meets_bar'] else 'NOT met'} |"
        )
    by_variant = {rep["variant"]: rep["training"]["median_epoch_seconds"] for rep in reports}
    if "eager" in by_variant and "compile" in by_variant:
        lines += ["", f"torch.compile over eager, median epoch: {by_variant['compile'] / by_variant['eager']:.2f}x."]
    lines += ["", "Commands:", ""] + [f"- `{rep['command']}`" for rep in reports]
    return "\n".join(lines) + "\n"


ORT_CUDA_BAR = 2e6  # generated images/s at large batch
MIX_BAR = 0.10


def check_summary(out_dir: Path, stages: Path | None) -> tuple[str, list[str]]:
    """gpu_check.sh's summary (markdown) and the list of what was not measured, or measured below its bar."""
    missing: list[str] = []
    lines = ["# ganaug GPU check", ""]
    if stages is not None and stages.is_file():
        lines += ["| stage | how it ended | time / note |", "|---|---|---|"]
        for row in stages.read_text().splitlines():
            name, status, note = (row.split("\t") + ["", ""])[:3]
            lines.append(f"| {name} | {status} | {note} |")
            if status not in ("ok", "not needed"):
                missing.append(f"stage '{name}': {status} ({note})")
        lines.append("")
    lines += summarize(out_dir).replace("# GPU training path", "## GPU training path").splitlines()
    for variant in ("eager", "compile"):
        path = out_dir / f"gpu_bench_{variant}.json"
        if not path.is_file():
            missing.append(f"training epoch time and fidelity, {variant}: no {path.name} (see its stage)")
            continue
        report = json.loads(path.read_text())
        t, f = report["training"], report["class_fidelity"]
        if not t["meets_epoch_bar"]:
            missing.append(f"{variant}: median epoch {t['median_epoch_seconds']} s, bar {EPOCH_BAR_S} s NOT met")
        if not f["meets_bar"]:
            missing.append(f"{variant}: class fidelity {f['overall']}, bar {FIDELITY_BAR} NOT met")
    for name in ("throughput_gpu", "throughput_tensorrt"):
        path = out_dir / f"{name}.json"
        if not path.is_file():
            missing.append(f"{name}: no {path.name} (see its stage)")
            continue
        report = json.loads(path.read_text())
        for what, why in report.get("not_measured", {}).items():
            missing.append(f"{what}: not measured: {why}")
        for backend, parity in report.get("parity", {}).items():
            if parity["meets_bar"] is False:
                missing.append(f"{backend}: parity {parity['max_abs_err']:.2e} > {parity['bar']:g} (NOT met)")
        for row in (report.get("mixing") or {}).get("training_step", []):
            if row["meets_bar"] is False:
                missing.append(
                    f"SyntheticMix ({row['backend']}) at batch {row['batch']}: +{100 * row['added']:.1f}% per step, "
                    f"bar {100 * MIX_BAR:.0f}% NOT met"
                )
        if name == "throughput_gpu" and report["settings"]["device"] == "cuda":
            ort = [r for r in report["results"] if r["backend"].startswith("onnxruntime cuda")]
            best = max(ort, key=lambda r: r["images_per_s"], default=None)
            if best is None:
                missing.append("ONNX Runtime CUDA >= 2M images/s: not measured (no ONNX Runtime CUDA row)")
            elif best["images_per_s"] < ORT_CUDA_BAR:
                missing.append(
                    f"ONNX Runtime CUDA best {best['images_per_s']:,.0f} images/s ({best['backend']}, batch "
                    f"{best['batch']}): bar 2M NOT met"
                )
        if path.with_suffix(".md").is_file():
            lines += ["", *path.with_suffix(".md").read_text().replace("# ", "## ", 1).splitlines()]
    lines += ["", "## Not measured, or measured below the bar", ""]
    lines += [f"- {m}" for m in missing] or ["- nothing: every figure was measured and met its bar"]
    return "\n".join(lines) + "\n", missing


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default=None, help="Folder holding MNIST/raw (not needed for --dataset digits).")
    ap.add_argument("--evaluator", default=None, help="A ganaug evaluator folder for the dataset's classes.")
    ap.add_argument("--out-dir", type=Path, default=Path("runs/benchmarks/gpu"))
    ap.add_argument("--run-dir", type=Path, default=Path("/tmp/ganaug-gpu-run"), help="Runs go to RUN_DIR/<variant>.")
    ap.add_argument("--variant", choices=("eager", "compile"), default="eager")
    ap.add_argument("--profile-steps", type=int, default=0, help="Also profile N steps: OUT/gpu_profile_<variant>.txt.")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--train-per-class", type=int, default=None, help="Train on a subset (smoke tests).")
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--batch-size", type=int, default=2048)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--per-class", type=int, default=1000, help="Generated images per class for the fidelity.")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu only to smoke-test this script.")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the GPU (H100 SXM: 989)")
    ap.add_argument("--summarize", type=Path, default=None, metavar="DIR", help="Print DIR's variants side by side.")
    ap.add_argument("--check-summary", type=Path, default=None, metavar="DIR", help="Write DIR/gpu_check.md.")
    ap.add_argument("--stages", type=Path, default=None, help="With --check-summary: gpu_check.sh's stage table.")
    args = ap.parse_args()

    if args.summarize is not None:
        print(summarize(args.summarize))
        return
    if args.check_summary is not None:
        text, missing = check_summary(args.check_summary, args.stages)
        (args.check_summary / "gpu_check.md").write_text(text)
        print("NOT measured / not met:" if missing else "Everything was measured.")
        for line in missing:
            print(f"  - {line}")
        print(f"wrote {args.check_summary / 'gpu_check.md'}")
        return
    if args.evaluator is None:
        ap.error("--evaluator is required (a folder written by `ganaug evaluator train`)")
    report = run_variant(args)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"gpu_bench_{args.variant}.json"
    out.write_text(json.dumps(report, indent=2, default=float) + "\n")
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
