"""Control for the smooth-share-10 probe: is its gain the GAN's, or label smoothing's?

Condition (c) with the probe's loss structure but no GAN: 10% of every batch drawn from the same real subset
with the probe's smoothed labels (0.8 + 0.02 on the true class, 0.02 elsewhere), classical augmentation on all,
the profile's classifier and seeds. Run as a script (the exact command):

    PYTHONPATH=. python benchmarks/results/fashion-winners-round2/smoothing_control.py --profile cpu-fashion --seeds 5 \\
        --data-root ../shared/data --out benchmarks/results/fashion-winners-round2/smoothing_control.json
"""

import argparse
import json

import torch

from benchmarks.downstream import cells
from benchmarks.downstream.profiles import probe_profile, resolve_profile
from ganaug import cas
from ganaug.cas import CASClassifier, test_accuracy
from ganaug.labels import smooth_labels

ap = argparse.ArgumentParser()
ap.add_argument("--profile", default="cpu-fashion")
ap.add_argument("--seeds", type=int, default=5)
ap.add_argument("--budget", type=int, default=10)
ap.add_argument("--data-root", required=True)
ap.add_argument("--out", required=True)
args = ap.parse_args()
torch.set_num_threads(1)
p = probe_profile(resolve_profile(args.profile), "smooth-share-10")
data = cells.load_data(p, args.data_root)
k, e = len(data.classes), p.synthetic_smoothing
rows = []
for seed in range(args.seeds):
    (x, y), _ = cells.real_subset(data, args.budget, seed)
    smoothed = smooth_labels(y, k, e)
    net = cas.train_classifier(
        [(x, y), (x, smoothed)],
        classifier=CASClassifier(steps=p.clf_steps, batch=p.clf_batch, lr=p.clf_lr, width=p.clf_width),
        real_fraction=p.real_fraction,
        classical=p.classical,
        num_classes=k,
        seed=seed,
    )
    acc, _ = test_accuracy(net, data.test_images, data.test_labels, k, "cpu")
    rows.append({"seed": seed, "accuracy": acc})
    print(json.dumps(rows[-1]), flush=True)
with open(args.out, "w") as f:
    json.dump({"profile": p.name, "budget": args.budget, "rows": rows}, f, indent=1)
