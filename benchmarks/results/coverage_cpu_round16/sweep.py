"""Round 16's sweep (run as a script, kept here as the exact command): `ganaug evaluate`'s figures
(`ganaug.metrics.evaluate_generator`, seed 0, 1,000 samples per class) for temperatures with no check, the label
check alone, or the label check with its stored 1,000-per-class manifold.

    python benchmarks/results/coverage_cpu_round16/sweep.py RUN CHECK OUT.json '[[1.0,null],[1.15,0],[1.15,1000]]' \\
        --data-root ../shared/data

Each variant is [T, bank]: bank null = no check, 0 = CHECK's label alone, 1000 = CHECK with its manifold.
"""

import argparse
import dataclasses
import json
import time

import torch

from ganaug.data import load_source, to_model_range
from ganaug.evaluator import load_evaluator
from ganaug.metrics import evaluate_generator, open_generator
from ganaug.resample import LabelCheck, Sampling

p = argparse.ArgumentParser()
p.add_argument("run")
p.add_argument("check")
p.add_argument("out")
p.add_argument("variants")
p.add_argument("--data-root", required=True)
p.add_argument("--evaluator", default="benchmarks/results/evaluators/mnist_cpu")
args = p.parse_args()
torch.set_num_threads(2)
ev = load_evaluator(args.evaluator)
gen = open_generator(args.run)
tr = load_source("mnist", root=args.data_root, split="train")
te = load_source("mnist", root=args.data_root, split="test")
stored = LabelCheck.load(args.check)
rows = []
for T, bank in json.loads(args.variants):
    t0 = time.time()
    check = None if bank is None else stored if bank else dataclasses.replace(stored, manifold=None)
    rep = evaluate_generator(
        gen,
        ev,
        test_images=to_model_range(te.images),
        test_labels=te.labels,
        train_images=to_model_range(tr.images),
        train_labels=tr.labels,
        sampling=Sampling(T, check),
    )
    pr = rep.precision_recall
    row = {
        "T": T,
        "bank": bank,
        "recall": round(pr.recall, 4),
        "precision": round(pr.precision, 4),
        "fd_ratio": round(rep.frechet_distance / rep.frechet_distance_floor, 3),
        "fidelity": round(rep.fidelity.overall, 4),
        "secs": round(time.time() - t0, 1),
    }
    print(json.dumps(row), flush=True)
    rows.append(row)
    with open(args.out, "w") as f:
        json.dump(rows, f, indent=1)
