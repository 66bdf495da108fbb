"""Host time of a SyntheticMix call on the CPU, without the generator's arithmetic: what a GPU loop pays.

    OMP_NUM_THREADS=1 python benchmarks/mix_overhead.py                 # batches 64,256,1024, torch backend
    OMP_NUM_THREADS=1 python benchmarks/mix_overhead.py --prefetch      # the worker thread CUDA batches get

On a GPU the generator's kernels run asynchronously, so what a mixing call adds to a host-bound training step
is its host time: Python, numpy (plans, latents), tensor allocation, kernel launches. To see that time on the
CPU this replaces the generator by a stub that hands back a ready tensor (no arithmetic) and times
``SyntheticMix(share, backend="torch")`` over whole lookahead blocks (median of ``--repeats``, each over
``--blocks`` blocks). cProfile then splits one such run: the numpy plans and latents (host work on any device)
the scaling and scatter (``_normalised``, ``index_copy``: arithmetic on the CPU, kernels on a GPU), and the
rest (Python, torch calls, allocation, uploads: host work on any device).
``--prefetch`` lets a worker thread draw the next block's plans and latents as on CUDA (cProfile sees only
the main thread). Writes nothing; prints a table, microseconds per step.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from ganaug import SyntheticMix
from ganaug.config import ModelConfig, TrainConfig
from ganaug.train.trainer import Trainer

PARTS = {  # cProfile function name -> column
    "_block_of": "block",
    "_draw": "plan",
    "plan": "plan",
    "latents": "latents",
    "generate": "generator",
    "_normalised": "device",
    "<method 'index_copy' of 'torch._C.TensorBase' objects>": "device",
}


def one_channel_run(folder: Path) -> Path:
    """A run folder whose generator has the default z_dim / embed_dim and g_width=1 (one training step)."""
    model = ModelConfig(g_width=1, d_width=1)
    config = TrainConfig(dataset="digits", per_class=2, epochs=1, batch_size=20, model=model, export_onnx=False)
    Trainer.new(config, folder, overwrite=True, progress=False).fit()
    return folder


def per_step_seconds(mix: SyntheticMix, images: torch.Tensor, labels: torch.Tensor, steps: int) -> float:
    start = mix.step
    t0 = time.perf_counter()
    for _ in range(steps):
        mix(images, labels)
    elapsed = time.perf_counter() - t0
    assert mix.step == start + steps
    return elapsed / steps


def profile_parts(mix: SyntheticMix, images: torch.Tensor, labels: torch.Tensor, steps: int) -> dict[str, float]:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        mix(images, labels)
    profiler.disable()
    parts: dict[str, float] = dict.fromkeys(PARTS.values(), 0.0)
    for (filename, _, name), (_, _, _, cumulative, _) in pstats.Stats(profiler).stats.items():  # type: ignore[attr-defined]
        if name in PARTS and ("batchmix" in filename or "sampling" in filename or filename == "~"):
            parts[PARTS[name]] += cumulative / steps
    return parts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", default="64,256,1024")
    parser.add_argument("--share", type=float, default=0.5)
    parser.add_argument("--blocks", type=int, default=8, help="Lookahead blocks per repeat.")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--prefetch", action="store_true", help="Draw the next block ahead on a worker thread.")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.prefetch:
        SyntheticMix._PREFETCH_ON = ("cpu", "cuda")
    with tempfile.TemporaryDirectory(prefix="ganaug-mix-overhead-") as tmp:
        run = one_channel_run(Path(tmp) / "run")
        print(
            f"torch {torch.__version__}, 1 thread, SyntheticMix(share={args.share}, backend='torch'), generator stubbed"
        )
        print("| batch | synthetic | per step (µs) | plans (µs) | latents (µs) | scaling + scatter (µs) | rest (µs) |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for batch in (int(b) for b in args.batches.split(",")):
            mix = SyntheticMix(run, share=args.share, backend="torch", normalize=(0.1307, 0.3081))
            stub = torch.zeros(mix.lookahead * mix.synthetic_count(batch), 1, 28, 28)
            mix.generate = lambda z, labels, stub=stub: stub[: len(z)]  # no arithmetic: the host's share only
            images, labels = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
            steps = args.blocks * mix.lookahead
            per_step_seconds(mix, images, labels, 2 * mix.lookahead)  # warm-up: allocator, caches
            total = statistics.median(per_step_seconds(mix, images, labels, steps) for _ in range(args.repeats))
            parts = profile_parts(mix, images, labels, steps)
            rest = total - parts["plan"] - parts["latents"] - parts["device"]
            print(
                f"| {batch} | {mix.synthetic_count(batch)} | {1e6 * total:.1f} | {1e6 * parts['plan']:.1f} | "
                f"{1e6 * parts['latents']:.1f} | {1e6 * parts['device']:.1f} | {1e6 * rest:.1f} |"
            )
    print("(plans and latents: cProfile's cumulative time, a little inflated by its own overhead)", file=sys.stderr)


if __name__ == "__main__":
    main()
