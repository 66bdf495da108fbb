"""Issue 11's placement probe: where and how large generated digits are, against MNIST's own rules.

MNIST's digits were size-normalized to fit a 20x20 box and then moved so that their centre of mass sits at
the centre of the 28x28 field (LeCun et al.). This probe measures, for the real test split and for each
generator's samples (``--per-class`` a class, seed 0, as ``ganaug evaluate`` draws them):

- the centre of mass: mean and spread of each axis, and the share within half a pixel of (14, 14);
- the larger side of the bounding box of pixels above 0.1 (in [0, 1]): the share at each size;
- precision, recall and FD (``ganaug.eval.metrics``, the evaluator's features) of the samples as they are and
  moved by whole pixels to the centre (:class:`ganaug.models.dcgan.CenterOfMass`).

With ``--size-candidates K`` it also scores a selection by MNIST's size rule: sample i is the first of K
candidates (sample i of seeds 0 .. K-1) whose larger side is 20 px, else the one closest to 20: does drawing
digits of the real size buy recall?

It also measures how the recall of real images themselves (``--per-class`` training images a class against
the test split, the real floor) falls when they are moved by a pixel, blurred, rotated or given noise: how
much of a generator's missing recall small changes in placement and texture can explain.

    python -m benchmarks.placement RUN [RUN ...] --evaluator EV --data-root ../shared/data \\
        --out runs/benchmarks/placement.json [--size-candidates 4]

Writes ``OUT`` (every figure, the command, the machine) and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

KIND = "ganaug placement probe"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="*", type=Path, help="run folders or generator .onnx files")
    p.add_argument("--evaluator", type=Path, required=True)
    p.add_argument("--data-root", default=None, help="folder holding MNIST/raw or FashionMNIST/raw")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist", "digits"])
    p.add_argument("--per-class", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--size-candidates", type=int, default=0, help="K >= 2: also the size-20 selection of K candidates")
    p.add_argument("--out", type=Path, required=True, help="JSON file to write (a file of ours or a new one)")
    args = p.parse_args(argv)
    if args.dataset != "digits" and args.data_root is None:
        p.error(f"--dataset {args.dataset} needs --data-root")
    if args.per_class < 4 or args.threads < 1:
        p.error("--per-class must be >= 4 and --threads >= 1")
    if args.size_candidates == 1 or args.size_candidates < 0:
        p.error("--size-candidates must be 0 (off) or >= 2")
    if args.out.is_dir() or (args.out.exists() and _kind(args.out) != KIND):
        p.error(f"--out {args.out} exists and was not written by this probe; choose a new file name")
    if not args.out.parent.is_dir():
        p.error(f"--out: folder {args.out.parent} does not exist; create it first")
    return args


def _kind(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("kind")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None


def larger_side(images: torch.Tensor) -> torch.Tensor:
    """The larger side, in pixels, of the bounding box of pixels above 0.1 (in [0, 1]): int64 [N] of images
    float [N, 1, H, W] in [-1, 1] (0 for a blank image)."""
    ink = (images[:, 0] + 1) / 2 > 0.1  # [N, H, W]
    index = torch.arange(images.shape[-1])

    def extent(mask: torch.Tensor) -> torch.Tensor:  # [N, L] -> [N]: last - first marked index + 1
        first = torch.where(mask, index, 10**6).min(1).values
        last = torch.where(mask, index, -1).max(1).values
        return (last - first + 1).clamp_min(0)

    return torch.maximum(extent(ink.any(2)), extent(ink.any(1)))


def size_selected(candidates: list[torch.Tensor], target: int = 20) -> torch.Tensor:
    """Sample i: the first candidate ``candidates[j][i]`` whose :func:`larger_side` is ``target``, else the first
    of those closest to it; candidates float [N, 1, H, W] each -> float [N, 1, H, W]."""
    gap = torch.stack([(larger_side(c) - target).abs() for c in candidates])  # [K, N]
    pick = gap.argmin(dim=0)  # the first minimum: the lowest j at the smallest gap
    return torch.stack(candidates)[pick, torch.arange(len(pick))]


def placement(images: torch.Tensor) -> dict[str, Any]:
    """Centre of mass and bounding-box figures of images float [N, 1, 28, 28] in [-1, 1]."""
    from ganaug.models.dcgan import CenterOfMass

    oy, ox, _ = CenterOfMass.offsets(images)  # image centre minus centre of mass, px
    side = larger_side(images)
    sizes, counts = torch.unique(side, return_counts=True)
    return {
        "com_row": {"mean": float(14 - oy.mean()), "std": float(oy.std())},
        "com_col": {"mean": float(14 - ox.mean()), "std": float(ox.std())},
        "com_within_half_pixel": float(((oy.abs() <= 0.5) & (ox.abs() <= 0.5)).double().mean()),
        "larger_side_share": {int(s): round(float(c) / len(side), 4) for s, c in zip(sizes, counts, strict=True)},
    }


def perturbations(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Small changes of real images float [N, 1, 28, 28] in [-1, 1] (the same images, changed)."""
    from torchvision.transforms.v2 import functional as F

    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(0))
    return {
        "as they are": images,
        "moved 1 px right": torch.cat([-torch.ones_like(images[..., :1]), images[..., :-1]], dim=-1),
        "Gaussian blur, sigma 0.5": F.gaussian_blur(images, [3, 3], [0.5, 0.5]),
        "rotated 5 degrees": F.rotate(images, 5.0, fill=-1.0),
        "noise, sigma 0.05": (images + 0.05 * noise).clamp(-1, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from ganaug.classify.evaluator import load_evaluator
    from ganaug.data.labels import labels_from_counts
    from ganaug.data.sources import load_source, stratified_subset, to_model_range
    from ganaug.downstream.machine import describe
    from ganaug.errors import GanaugError
    from ganaug.eval.metrics import frechet_distance_from_stats, gaussian_stats, precision_recall
    from ganaug.models.dcgan import CenterOfMass
    from ganaug.outputs import write_text_whole
    from ganaug.sample.generators import generate, open_generator

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        ev = load_evaluator(args.evaluator)
        train, test = (load_source(args.dataset, root=args.data_root, split=s) for s in ("train", "test"))
        gens = [open_generator(r) for r in args.runs]
    except GanaugError as e:
        sys.exit(f"error: {e}")
    test_images = to_model_range(test.images)
    f_test = ev.features(test_images)
    stats_test = gaussian_stats(f_test)

    def scores(images: torch.Tensor) -> dict[str, float]:
        f = ev.features(images)
        pr = precision_recall(f_test, f, k=3)
        fd = frechet_distance_from_stats(*gaussian_stats(f), *stats_test)
        return {"precision": pr.precision, "recall": pr.recall, "fd": fd}

    floor_idx = torch.from_numpy(stratified_subset(train.labels.numpy(), args.per_class, seed=0))
    floor = to_model_range(train.images[floor_idx])
    doc: dict[str, Any] = {
        "kind": KIND,
        "command": "python -m benchmarks.placement " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": describe(),
        "real_test": placement(test_images),
        "real_floor_changed": {name: scores(x) for name, x in perturbations(floor).items()},
        "generators": {},
    }
    labels = labels_from_counts([args.per_class] * len(ev.classes))
    for run, gen in zip(args.runs, gens, strict=True):
        fake = generate(gen, labels, seed=0)
        moved = CenterOfMass()(fake)
        doc["generators"][str(run)] = {
            "placement": placement(fake),
            "as sampled": scores(fake),
            "moved to the centre": scores(moved),
        }
        if args.size_candidates:
            k = args.size_candidates
            chosen = size_selected([fake, *(generate(gen, labels, seed=j) for j in range(1, k))])
            doc["generators"][str(run)][f"larger side 20, first of {k}"] = {
                **scores(chosen),
                "larger_side_20_share": float((larger_side(chosen) == 20).double().mean()),
            }
    print(report(doc))
    try:  # whole or not at all: a full disk leaves the last complete file
        write_text_whole(args.out, json.dumps(doc, indent=2) + "\n")
    except GanaugError as e:
        sys.exit(f"error: {e}")
    return doc


def report(doc: dict[str, Any]) -> str:
    """The probe's three tables, markdown."""

    def place_row(name: str, p: dict[str, Any]) -> str:
        side = p["larger_side_share"]
        return (
            f"| {name} | {p['com_row']['mean']:.2f} ± {p['com_row']['std']:.2f} | {p['com_col']['mean']:.2f} ± "
            f"{p['com_col']['std']:.2f} | {p['com_within_half_pixel']:.3f} | "
            + " | ".join(f"{side.get(s, side.get(str(s), 0.0)):.3f}" for s in (18, 19, 20, 21, 22))
            + " |"
        )

    lines = [
        "| images | centre of mass, row | column | within 0.5 px | larger side 18 | 19 | 20 | 21 | 22 |",
        "|---|---|---|---|---|---|---|---|---|",
        place_row("real test split", doc["real_test"]),
        *(place_row(f"`{r}`", g["placement"]) for r, g in doc["generators"].items()),
        "",
        "| real training images, changed | precision | recall | FD |",
        "|---|---|---|---|",
        *(
            f"| {name} | {s['precision']:.3f} | {s['recall']:.3f} | {s['fd']:.2f} |"
            for name, s in doc["real_floor_changed"].items()
        ),
        "",
        "| generator | samples | precision | recall | FD |",
        "|---|---|---|---|---|",
        *(
            f"| `{r}` | {kind} | {g[kind]['precision']:.3f} | {g[kind]['recall']:.3f} | {g[kind]['fd']:.2f} |"
            for r, g in doc["generators"].items()
            for kind in g
            if kind != "placement"
        ),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
