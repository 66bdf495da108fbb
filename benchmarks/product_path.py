"""Does the product API reproduce the downstream benchmark's winning lever? (issue 12)

The downstream benchmark trains its classifiers in its own loop (:func:`ganaug.classify.classifier.train_classifier`: exactly
58 real and 6 generated items in every batch of 64). A user gets the same recipe from the package::

    train = ganaug.augment(real, run, per_class=500, label_smoothing=0.2)
    loader = DataLoader(train, batch_size=64, sampler=train.sampler(share=0.1))

This script trains the benchmark's classifier (the same CNN, steps, batch, learning rate, cosine schedule and
classical augmentation on every image) through that loader on the benchmark's seeds, subsets and cached GANs:
(d') with ``share`` generated, (c') the same loop and dataset with ``share=0`` (real items only, one-hot
targets), and reports (d') − (c') paired by seed with a 95% Student-t CI. The GANs must be in the cache
already (``python -m benchmarks.downstream ... --cache CACHE`` trains them); each gets its ``generator.onnx``
exported next to its checkpoint if it has none. The test split is only evaluated on.

    python benchmarks/product_path.py --profile cpu-fashion --probe smooth-share-10 --budget 10 --seeds 5 \\
        --data-root ../shared/data --cache /work/dcache/fashion --threads 1 --out runs/benchmarks/product-path/fashion-10
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from torchvision import transforms

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import result_pair

KIND = "product_path"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="cpu-fashion", help="downstream profile [default: cpu-fashion]")
    p.add_argument("--probe", default="smooth-share-10", help="the lever whose share and smoothing to use")
    p.add_argument("--budget", type=int, default=10, help="real images per class")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--data-root", required=True, help="folder holding MNIST/raw or FashionMNIST/raw")
    p.add_argument("--cache", type=Path, required=True, help="the downstream benchmark's cache (its GANs)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads [default: torch's]")
    p.add_argument("--out", type=Path, required=True, help="file stem: OUT.json and OUT.md are written")
    args = p.parse_args(argv)
    result_pair.check_out(p, args.out, kind=KIND, example="fashion-10")
    if args.seeds < 2:
        p.error("--seeds must be >= 2 (a paired CI needs two)")
    return args


def train(loader: DataLoader, profile: Any, seed: int, num_classes: int) -> torch.nn.Module:
    """The benchmark's classifier recipe (``ganaug.classify.classifier.train_classifier``'s), one step per batch of ``loader``."""
    from ganaug.classify.evaluator import EvaluatorConfig, EvaluatorNet
    from ganaug.data.augment_ops import classical

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = EvaluatorNet(
            EvaluatorConfig(num_classes=num_classes, width=profile.clf_width, hidden=8 * profile.clf_width)
        )
        opt = torch.optim.Adam(net.parameters(), lr=profile.clf_lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=profile.clf_steps)
        gen = torch.Generator().manual_seed(seed)
        net.train()
        for images, targets in loader:
            loss = F.cross_entropy(net(classical(images, gen, profile.classical)), targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    import ganaug
    from benchmarks.downstream import cells
    from benchmarks.downstream.profiles import probe_profile, resolve_profile
    from ganaug.classify.classifier import test_accuracy
    from ganaug.downstream.machine import describe
    from ganaug.downstream.stats import summary
    from ganaug.feed.dataset import SourceDataset
    from ganaug.train.export import export_onnx

    p = probe_profile(resolve_profile(args.profile), args.probe)
    share, smoothing = 1.0 - p.real_fraction, p.synthetic_smoothing
    data = cells.load_data(p, args.data_root)
    num_classes = len(data.classes)
    to_range = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])  # [-1, 1], as cells
    real_all = SourceDataset(p.dataset, root=args.data_root, split="train", transform=to_range)
    rows = []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        _, idx = cells.real_subset(data, args.budget, seed)
        cfg = cells.gan_config(p, args.budget, seed, n_images=len(idx), data_root=args.data_root, device="cpu")
        run = cells.gan_dir(cfg, args.cache)
        if not (run / "checkpoint.pt").is_file():
            raise SystemExit(
                f"error: no GAN for budget {args.budget}, seed {seed} in {args.cache}; run the benchmark first"
            )
        if not (run / "generator.onnx").is_file():
            export_onnx(run)
        real = Subset(real_all, idx.tolist())
        train_set = ganaug.augment(real, run, per_class=p.synthetic_per_class, seed=seed, label_smoothing=smoothing)
        accuracy = {}
        for name, s in (("c", 0.0), ("d", share)):
            draws = train_set.sampler(
                s, num_samples=p.clf_steps * p.clf_batch, generator=torch.Generator().manual_seed(seed)
            )
            loader = DataLoader(train_set, batch_size=p.clf_batch, sampler=draws)
            net = train(loader, p, seed, num_classes)
            accuracy[name], _ = test_accuracy(net, data.test_images, data.test_labels, num_classes, "cpu")
        rows.append({"seed": seed, "gan": run.name, **accuracy, "seconds": round(time.perf_counter() - t0, 1)})
        print(f"seed {seed}: (c') {accuracy['c']:.4f} (d') {accuracy['d']:.4f}", flush=True)
    diff = summary([r["d"] - r["c"] for r in rows])  # paired by seed
    doc = {
        "kind": KIND,
        "ganaug_version": ganaug.__version__,
        "command": "python benchmarks/product_path.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "profile": args.profile,
        "probe": args.probe,
        "budget": args.budget,
        "share": share,
        "label_smoothing": smoothing,
        "synthetic_per_class": p.synthetic_per_class,
        "rows": rows,
        "d_minus_c": diff,
        "machine": describe(),
    }
    result_pair.write(args.out, doc, report(doc))
    return doc


def report(doc: dict[str, Any]) -> str:
    d = doc["d_minus_c"]
    lines = [
        f"# The product path: `augment(..., label_smoothing={doc['label_smoothing']})` + `sampler(share={doc['share']:.2f})`",
        "",
        f"Command: `{doc['command']}`  ",
        (
            f"ganaug {doc['ganaug_version']}; profile `{doc['profile']}`, lever `{doc['probe']}`, {doc['budget']} "
            f"real images per class, {doc['synthetic_per_class']} generated per class; the benchmark's classifier "
            "recipe through a DataLoader. (c'): the same loop and dataset at share 0."
        ),
        "",
        f"Machine: {', '.join(f'{k} {v}' for k, v in doc['machine'].items())}",
        "",
        "| seed | GAN | (c') | (d') | (d') − (c') pp |",
        "|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        lines.append(
            f"| {r['seed']} | `{r['gan']}` | {100 * r['c']:.2f} | {100 * r['d']:.2f} | {100 * (r['d'] - r['c']):+.2f} |"
        )
    lines += [
        "",
        (
            f"(d') − (c') = **{100 * d['mean']:+.2f} [{100 * d['ci_low']:+.2f}, {100 * d['ci_high']:+.2f}]** "
            f"points (95% Student-t CI over {len(doc['rows'])} seeds, paired)."
        ),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
