"""A third-party MNIST training script with only its dataset line swapped, trained without and with shuffling.

The bar (issue 10): the training loop of pytorch/examples' ``mnist/main.py`` (the README's cut-down ``Net``,
``Adadelta(lr=1.0)``, ``StepLR(step_size=1, gamma=0.7)``, batch 64, test batch 1,000), run unchanged on
``GeneratedDataset(GENERATOR, per_class=..., seed=0)`` in place of ``datasets.MNIST(train=True)``, reaches a
test accuracy on the real MNIST test set within 1 percentage point with ``shuffle=False`` of what it reaches
with ``shuffle=True``. Several well-known scripts shuffle only on GPU, so the unshuffled case is common;
with ``--order sorted`` (the old class-by-class layout) it ends near chance.

Both runs start from the same weights (``torch.manual_seed(1)``, as the example does); the shuffled loader
draws its order from a generator seeded with 0.

    python benchmarks/unshuffled_dropin.py --generator runs/mnist --data-root ../shared/data
    python benchmarks/unshuffled_dropin.py --generator runs/mnist --data-root ../shared/data --quick  # minutes
    # writes runs/benchmarks/unshuffled_dropin.{json,md} (--out to change)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import Net  # the README's classifier: one definition for the benchmarks

BAR_PP = 1.0
QUICK = {"per_class": 500, "epochs": 1, "test_limit": 2000}


def train_and_test(
    train_set: torch.utils.data.Dataset,
    test_set: torch.utils.data.Dataset,
    *,
    shuffle: bool,
    epochs: int,
    workers: int,
) -> dict[str, Any]:
    """The example's loop, unchanged but for ``shuffle``; returns the test accuracy after each epoch."""
    torch.manual_seed(1)
    model = Net()
    loader = torch.utils.data.DataLoader(
        train_set,
        batch_size=64,
        shuffle=shuffle,
        num_workers=workers,
        generator=torch.Generator().manual_seed(0) if shuffle else None,
    )
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=1000)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    accuracies = []
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for data, target in loader:
            optimizer.zero_grad()
            loss = F.nll_loss(model(data), target)
            loss.backward()
            optimizer.step()
        scheduler.step()
        model.eval()
        with torch.no_grad():
            correct = sum((model(x).argmax(1) == y).sum().item() for x, y in test_loader)
        accuracies.append(correct / len(test_set))
    return {
        "shuffle": shuffle,
        "test_accuracy": accuracies[-1],
        "per_epoch": accuracies,
        "seconds": time.perf_counter() - start,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", type=Path, required=True, help="a generator.onnx or a run folder that holds one")
    parser.add_argument("--data-root", type=Path, required=True, help="folder holding MNIST/raw (torchvision layout)")
    parser.add_argument("--per-class", type=int, default=6000, help="generated training images per class")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--test-limit", type=int, default=None, help="use only the first N test images")
    parser.add_argument("--order", choices=["mixed", "sorted"], default="mixed", help="GeneratedDataset's order")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads [default: torch's]")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK['per_class']} per class, {QUICK['epochs']} epoch, {QUICK['test_limit']} test images "
        "(explicit options still win)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs") / "benchmarks" / "unshuffled_dropin",
        help="writes OUT.json and OUT.md",
    )
    args = parser.parse_args(argv)
    if args.quick:
        given = set(argv if argv is not None else [])
        for key, value in QUICK.items():
            if f"--{key.replace('_', '-')}" not in given:
                setattr(args, key, value)
    for key in ("per_class", "epochs"):
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run both cases, write ``OUT.json`` / ``OUT.md`` and return the JSON document."""
    args = parse_args(argv)
    from torchvision import datasets, transforms

    import ganaug
    from ganaug.downstream.machine import describe

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    # train_set = datasets.MNIST("../data", train=True, download=True, transform=transform)
    train_set = ganaug.GeneratedDataset(
        args.generator, per_class=args.per_class, seed=0, order=args.order, transform=transform
    )
    test_set = datasets.MNIST(str(args.data_root), train=False, transform=transform)
    if args.test_limit is not None:
        test_set = torch.utils.data.Subset(test_set, range(min(args.test_limit, len(test_set))))
    runs = []
    for shuffle in (False, True):
        run = train_and_test(train_set, test_set, shuffle=shuffle, epochs=args.epochs, workers=args.workers)
        print(f"shuffle={shuffle}: test accuracy {run['test_accuracy']:.2%} ({run['seconds']:.0f} s)")
        runs.append(run)
    gap_pp = 100.0 * (runs[1]["test_accuracy"] - runs[0]["test_accuracy"])
    doc = {
        "benchmark": "unshuffled_dropin",
        "ganaug_version": ganaug.__version__,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "bar": f"|shuffled accuracy - unshuffled accuracy| <= {BAR_PP} pp",
        "unshuffled_accuracy": runs[0]["test_accuracy"],
        "shuffled_accuracy": runs[1]["test_accuracy"],
        "difference_pp": gap_pp,
        "meets_bar": abs(gap_pp) <= BAR_PP,
        "runs": runs,
        "machine": describe(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = [
        "# pytorch/examples MNIST loop on GeneratedDataset, without and with shuffling",
        "",
        (
            f"ganaug {ganaug.__version__}; generator `{args.generator}`, {args.per_class} per class, order "
            f"`{args.order}`, {args.epochs} epoch(s), Adadelta lr 1.0 + StepLR 0.7, batch 64; test: real MNIST "
            f"({len(test_set):,} images).{' Quick run.' if args.quick else ''}"
        ),
        "",
        "| DataLoader | test accuracy | seconds |",
        "|:---|---:|---:|",
    ]
    lines += [f"| shuffle={r['shuffle']} | {r['test_accuracy']:.2%} | {r['seconds']:.0f} |" for r in runs]
    lines += [
        "",
        f"Difference (shuffled - unshuffled): {gap_pp:+.2f} pp; bar |difference| <= {BAR_PP} pp: {'met' if doc['meets_bar'] else 'NOT met'}.",
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"difference {gap_pp:+.2f} pp; wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}")
    return doc


if __name__ == "__main__":
    main()
