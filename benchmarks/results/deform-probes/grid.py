"""Pictures of the deform and elastic probes: for the seed-0, 10-per-class subset, one image per class (top
row), four learned warps of it (next rows), then four hand-set elastic warps of the learned fields' strength.

    PYTHONPATH=. python benchmarks/results/deform-probes/grid.py --profile cpu --data-root ../shared/data --cache /work/dcache/mnist --out benchmarks/results/deform-probes/mnist/grid.png

Reads the deformer the probes cached (trains it, as the probes would, if the cache lacks it)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch
from torchvision.utils import save_image

from ganaug.cli.bench import _load_benchmark

downstream = _load_benchmark("downstream")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.out.exists() or not args.out.parent.is_dir():
        raise SystemExit(f"--out {args.out}: give a new file in an existing folder (nothing is overwritten)")
    torch.set_num_threads(1)
    p = downstream.resolve_profile(args.profile)
    data = downstream.load_data(p, args.data_root)
    subset, _ = downstream.real_subset(data, 10, 0)
    first = torch.stack([torch.nonzero(subset[1] == c)[0, 0] for c in range(10)])  # one image per class
    rows = [subset[0][first]]
    for source in ("deform", "elastic"):
        q = dataclasses.replace(p, synthetic_source=source)
        x, y = downstream.cells.deformed(
            q, subset, 10 * 4, budget=10, seed=0, cache=args.cache, device="cpu", log=print, info={}
        )
        # deformed() keeps, per class, the warps of the class's images in order: the first 4 are of image `first`.
        per_class = [x[y == c][:4] for c in range(10)]
        rows += [torch.stack([w[k] for w in per_class]) for k in range(4)]
    save_image(torch.cat(rows) * 0.5 + 0.5, args.out, nrow=10, padding=2, pad_value=0.5)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
