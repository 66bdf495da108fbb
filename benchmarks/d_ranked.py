"""A discriminator-ranked sampling probe: does the trained D pick the better of several samples?

Each variant ``T:K`` samples every image as the best of K candidates by the run's discriminator (its logit for
the asked class), the candidates' latents drawn from N(0, T^2). Candidate 0 is ganaug's latent for the sample
(scaled by T); candidate j is ``Q_j z`` for a fixed random orthogonal ``Q_j`` (seed j), also N(0, I), so sample
i is the same whatever the batch size. ``1:1`` is the run's own generator. The idea is discriminator rejection
sampling (Azadi et al., 2019) in its simplest, deterministic form; at T > 1 it asks whether D can take back the
precision that a hotter latent gives away for recall.

    python -m benchmarks.d_ranked RUN --evaluator EV --data-root ../shared/data --variants 1:1,1:2,1.2:2,1.3:3 \\
        --out runs/benchmarks/d_ranked.json

Writes ``OUT`` (every figure, the command, the machine) and prints one table row a variant.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="run folder written by `ganaug train` (its checkpoint holds D)")
    p.add_argument("--evaluator", type=Path, required=True)
    p.add_argument("--data-root", required=True)
    p.add_argument("--variants", default="1:1,1:2,1.2:2,1.3:3", help="comma-separated T:K (temperature, candidates)")
    p.add_argument("--per-class", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, required=True, help="JSON file to write (a file of ours or a new one)")
    args = p.parse_args(argv)
    try:
        args.pairs = [(float(t), int(k)) for t, k in (v.split(":") for v in args.variants.split(","))]
    except ValueError:
        p.error(f"--variants {args.variants!r}: give T:K pairs such as 1.2:2 (T > 0, K >= 1)")
    if any(t <= 0 or k < 1 for t, k in args.pairs):
        p.error("--variants: every T must be > 0 and every K >= 1")
    if args.out.is_dir() or (args.out.exists() and _kind(args.out) != KIND):
        p.error(f"--out {args.out} exists and was not written by this probe; choose a new file name")
    if not args.out.parent.is_dir():
        p.error(f"--out: folder {args.out.parent} does not exist; create it first")
    return args


KIND = "ganaug d_ranked probe"


def _kind(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("kind")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None


@functools.lru_cache(maxsize=8)
def rotations(z_dim: int, k: int) -> torch.Tensor:
    """float [k, z_dim, z_dim]: the identity, then k - 1 fixed random orthogonal matrices (seeds 1 .. k - 1);
    computed once per (z_dim, k), not per batch."""
    qs = [torch.eye(z_dim)]
    for j in range(1, k):
        q, r = torch.linalg.qr(torch.randn(z_dim, z_dim, generator=torch.Generator().manual_seed(j)))
        qs.append(q * torch.sign(torch.diagonal(r)))  # Haar-distributed
    return torch.stack(qs)


@torch.no_grad()
def best_of_k(g: torch.nn.Module, d: torch.nn.Module, z: torch.Tensor, y: torch.Tensor, *, t: float, k: int):
    """float [N, 1, 28, 28]: for each row of ``z`` (float [N, z_dim]) and label ``y`` (int64 [N]), the one of
    ``G(t Q_j z, y)``, j < k, with the highest ``D(., y)`` logit. ``k = 1`` is ``G(t z, y)``."""
    cand = torch.einsum("kij,nj->kni", rotations(z.shape[1], k), t * z)  # [k, N, z_dim]
    ys = y.repeat(k)
    x = g(cand.reshape(-1, z.shape[1]), ys)
    if k == 1:
        return x
    best = d(x, ys).view(k, -1).argmax(dim=0)
    return x.view(k, len(z), *x.shape[1:])[best, torch.arange(len(z))]


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    from benchmarks.coverage import figures
    from ganaug.classify.evaluator import load_evaluator
    from ganaug.data.sources import load_source, training_images
    from ganaug.downstream.machine import describe
    from ganaug.errors import GanaugError
    from ganaug.eval.report import evaluate_on_sources
    from ganaug.models.dcgan import Discriminator
    from ganaug.outputs import write_text_whole
    from ganaug.sample.generators import open_generator
    from ganaug.train.checkpoint import config_of, load_checkpoint, load_generator

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        state = load_checkpoint(args.run)
        d = Discriminator(config_of(state, args.run).model)
        d.load_state_dict(state["D"])
        g, _ = load_generator(args.run)
        base = open_generator(args.run, backend="pytorch")
        ev = load_evaluator(args.evaluator)
        train, test = (load_source(base.data["dataset"], root=args.data_root, split=s) for s in ("train", "test"))
        gen_train = training_images(base.data, root=args.data_root)
    except GanaugError as e:
        sys.exit(f"error: {e}")
    d.eval()
    rows: list[dict[str, Any]] = []
    for t, k in args.pairs:

        def run(z: np.ndarray, labels: np.ndarray, t: float = t, k: int = k) -> np.ndarray:
            return best_of_k(g, d, torch.from_numpy(z), torch.from_numpy(labels), t=t, k=k).numpy()

        report = evaluate_on_sources(
            dataclasses.replace(base, run=run),
            ev,
            train,
            test,
            generator_train_images=gen_train,
            per_class=args.per_class,
        )
        doc = {**report.to_dict(), "cas": {"score": {"accuracy": None}, "ceiling": {"accuracy": None}, "gap_pp": None}}
        rows.append({"variant": f"T {t:g}, best of {k}", **figures(doc)})
        r = rows[-1]
        print(
            f"| {r['variant']} | {r['recall']:.3f} | {r['precision']:.3f} | {r['fd']:.2f} "
            f"| {r['fd'] / r['fd_floor'] if r['fd_floor'] else float('nan'):.2f} | {r['fidelity']:.4f} |",
            flush=True,
        )
        meta = {
            "kind": KIND,
            "command": "python -m benchmarks.d_ranked " + " ".join(sys.argv[1:] if argv is None else argv),
        }
        text = json.dumps({**meta, "run": str(args.run), "machine": describe(), "rows": rows}, indent=2) + "\n"
        try:  # whole or not at all: a full disk leaves the last complete file
            write_text_whole(args.out, text)
        except GanaugError as e:
            sys.exit(f"error: {e}")
    return rows


if __name__ == "__main__":
    main()
