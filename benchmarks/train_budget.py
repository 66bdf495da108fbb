"""Can a preset's step budget train in a given wall time on this CPU? The arithmetic of one training image, the
speed this machine trains at, and the fastest this machine multiplies fp32 matrices, side by side.

    python -m benchmarks.train_budget --preset mnist --data-root DATA --minutes 30 --threads 2 --out OUT

1. **FLOP per training image**: a short run of the preset (its model, loss, R1 schedule, EMA; 4 epochs of
   ``--flop-per-class`` images a class, no export, no label check) with ``torch.utils.flop_counter``'s
   counts of the matrix products and convolutions of the forward and backward passes, R1's double backward
   included; the total over the run's training images.
2. **Training images/s**: the preset's step on this machine, a run of ``--speed-per-class`` images a class for one
   epoch, its ``train_images_per_second`` (training steps only), as ``ganaug train`` chooses fp32 or bf16 here.
3. **fp32 matrix products**: GFLOP/s of ``[2048, 2048] @ [2048, 2048]`` (median of 7 after one warm-up), about the
   most two cores sustain in fp32; a step of small convolutions runs below it.

The report: the preset's wall time at the measured speed, the sustained GFLOP/s that ``--minutes`` needs, and
both against the matrix-product ceiling. Writes ``OUT.json`` and ``OUT.md`` (:mod:`benchmarks.result_pair`).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

KIND = "ganaug train_budget"


def _config(preset: str, data_root: Path, per_class: int, epochs: int):
    """The preset's TrainConfig as ``ganaug train --preset PRESET`` resolves it here, on a subset, for ``epochs``,
    without export or label check (their cost is not the step's)."""
    from ganaug.train.presets import resolve

    config = resolve(preset=preset, data_root=str(data_root)).config
    return dataclasses.replace(
        config, per_class=per_class, epochs=epochs, export_onnx=False, sampling={}, log_every=10_000, save_every=10_000
    )


def _flop_counter():
    """A dispatch mode that adds up the FLOPs of every op ``torch.utils.flop_counter`` knows (matrix products and
    convolutions, forward and backward). ``FlopCounterMode`` itself tracks modules with hooks that refuse R1's
    ``autograd.grad(create_graph=True)``; this counts the same ops without them."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            count = flop_registry.get(func._overloadpacket)
            if count is not None:
                self.total += count(*args, **kwargs, out_val=out)
            return out

    return Count()


def flop_per_image(preset: str, data_root: Path, per_class: int) -> dict[str, Any]:
    import torch

    from ganaug.train.trainer import Trainer

    config = _config(preset, data_root, per_class, epochs=4)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer.new(config, Path(tmp) / "run", progress=False)
        with _flop_counter() as counter:
            result = trainer.fit()
    images = result.steps * trainer.batch_size
    return {
        "flop_per_image": counter.total / images,
        "steps": result.steps,
        "batch_size": trainer.batch_size,
        "amp": trainer.gan.amp,
        "torch": torch.__version__,
    }


def train_speed(preset: str, data_root: Path, per_class: int) -> dict[str, Any]:
    from ganaug.train.trainer import Trainer

    config = _config(preset, data_root, per_class, epochs=1)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer.new(config, Path(tmp) / "run", progress=False)
        result = trainer.fit()
    return {
        "images_per_second": result.images_per_second,
        "steps": result.steps,
        "amp": trainer.gan.amp,
        "channels_last": trainer.config.channels_last,
    }


def matmul_gflops(n: int = 2048, repeats: int = 7) -> float:
    import torch

    a, b = torch.rand(n, n), torch.rand(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="mnist")
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--minutes", type=float, default=30.0, help="the wall time to judge the step budget against")
    p.add_argument("--flop-per-class", type=int, default=20, help="images a class of the counted run")
    p.add_argument("--speed-per-class", type=int, default=1000, help="images a class of the timed run")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("runs") / "benchmarks" / "train_budget", help="file stem")
    args = p.parse_args(argv)

    from benchmarks import result_pair

    result_pair.check_out(p, args.out, kind=KIND, example="train_budget", create=True)

    from ganaug.downstream.machine import describe
    from ganaug.threads import configure_torch
    from ganaug.train.presets import load

    configure_torch(args.threads)
    log = lambda m: print(m, file=sys.stderr, flush=True)
    budget = load(args.preset)
    steps = budget.steps  # the preset's fixed step budget (on its full training split)
    flops = flop_per_image(args.preset, args.data_root, args.flop_per_class)
    log(f"{flops['flop_per_image'] / 1e6:.1f} MFLOP per training image ({flops['steps']} steps counted)")
    speed = train_speed(args.preset, args.data_root, args.speed_per_class)
    log(f"{speed['images_per_second']:.0f} training images/s ({speed['amp']}, {speed['steps']} steps)")
    peak = matmul_gflops()
    log(f"{peak:.0f} GFLOP/s in fp32 matrix products")
    images = steps * flops["batch_size"]
    total = images * flops["flop_per_image"]
    result = {
        "kind": KIND,
        "command": "python -m benchmarks.train_budget " + " ".join(sys.argv[1:] if argv is None else argv),
        "preset": f"{args.preset}@{budget.version}",
        "steps": steps,
        "training_images": images,
        "flop": flops,
        "train": speed,
        "matmul_gflops": peak,
        "achieved_gflops": speed["images_per_second"] * flops["flop_per_image"] / 1e9,
        "minutes_at_measured_speed": images / speed["images_per_second"] / 60,
        "gflops_needed": total / (args.minutes * 60) / 1e9,
        "minutes_at_matmul_speed": total / (peak * 1e9) / 60,
        "target_minutes": args.minutes,
        "threads": args.threads,
        "machine": describe(),
    }
    r = result
    lines = [
        f"# {r['preset']}: {steps:,} steps of {flops['batch_size']} in {args.minutes:g} minutes?",
        "",
        f"Machine: {r['machine'].get('cpu')}, SIMD {', '.join(r['machine'].get('simd', []))}; {args.threads} threads.",
        "",
        "| what | figure |",
        "|---|---|",
        f"| arithmetic of one training image (torch's FLOP counts, {flops['amp']}) | {flops['flop_per_image'] / 1e6:.1f} MFLOP |",
        f"| whole budget ({images:,} training images) | {total / 1e12:.0f} TFLOP |",
        f"| training speed here ({speed['amp']}) | {speed['images_per_second']:.0f} images/s, {r['achieved_gflops']:.0f} GFLOP/s |",
        f"| wall time of the budget at that speed | {r['minutes_at_measured_speed']:.1f} min |",
        f"| GFLOP/s that {args.minutes:g} minutes need | {r['gflops_needed']:.0f} |",
        f"| fp32 matrix products here ([2048, 2048]²) | {peak:.0f} GFLOP/s |",
        f"| wall time if every FLOP ran at that speed | {r['minutes_at_matmul_speed']:.1f} min |",
    ]
    result_pair.write(args.out, result, "\n".join(lines) + "\n")
    return result


if __name__ == "__main__":
    main()
