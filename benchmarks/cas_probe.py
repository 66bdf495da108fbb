"""One classification-accuracy-score (CAS) probe: how a change to the data or the classifier moves CAS.

Trains the downstream benchmark's classifier (``benchmarks/downstream``, a profile's settings) on
generated images only and tests it once on the real MNIST test split, the way that benchmark's condition (e)
does, with a few knobs the profile fixes: the amount generated, the classifier's steps and width, and random
affine augmentation in the classifier (condition (c)'s). ``--real`` trains on the real training split
instead: the ceiling the same classifier reaches on real data.

    python benchmarks/cas_probe.py --data-root ../shared/data --gan runs/mnist --per-class 1000 --classical
    python benchmarks/cas_probe.py --data-root ../shared/data --real --clf-width 32 --clf-steps 3000

Prints one JSON line; nothing is cached or written.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import downstream  # the sibling benchmark package: one classifier, one protocol


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", required=True, help="folder holding MNIST/raw")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--gan", type=Path, help="a ganaug run folder trained on the whole training split")
    source.add_argument("--real", action="store_true", help="train on the real training split instead")
    parser.add_argument("--profile", default="cpu", choices=list(downstream.PROFILES), help="classifier settings")
    parser.add_argument("--per-class", type=int, default=1000, help="generated images per class")
    parser.add_argument("--clf-steps", type=int, default=None, help="override the profile's classifier steps")
    parser.add_argument("--clf-width", type=int, default=None, help="override the profile's classifier width")
    parser.add_argument("--classical", action="store_true", help="random affine in the classifier, as in (c)")
    parser.add_argument("--seed", type=int, default=0, help="classifier seed and latent seed")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {k: v for k, v in (("clf_steps", args.clf_steps), ("clf_width", args.clf_width)) if v is not None}
    p = dataclasses.replace(downstream.PROFILES[args.profile], dataset="mnist", **overrides)
    data = downstream.load_data(p, args.data_root)
    t0 = time.perf_counter()
    if args.real:
        train = downstream.real_subset(data, downstream.FULL, args.seed)[0]
    else:
        train = downstream.synthetic(args.gan, args.per_class, len(data.classes), seed=args.seed)
    net = downstream.train_classifier(
        p,
        "c" if args.classical else "a",
        real=train,
        fake=None,
        seed=args.seed,
        num_classes=len(data.classes),
        device="cpu",
    )
    accuracy, per_class = downstream.test_accuracy(net, data.test_images, data.test_labels, len(data.classes), "cpu")
    result = {
        "source": "real training split" if args.real else str(args.gan),
        "per_class": None if args.real else args.per_class,
        "classical": args.classical,
        "clf_steps": p.clf_steps,
        "clf_width": p.clf_width,
        "seed": args.seed,
        "accuracy": accuracy,
        "per_class_accuracy": per_class,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
