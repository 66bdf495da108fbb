"""Scratch: undo flatten-density at sampling time: SIR over K checked candidates with weights d5(x)^(-beta*A)."""
# Run as written on 2026-12-06 (then reformatted by ruff, and its json.dump(open(...)) made a write_text).

import json
import sys
import time
from pathlib import Path

import torch

from ganaug.data import load_source, stratified_subset, to_model_range
from ganaug.evaluator import load_evaluator
from ganaug.metrics import (
    frechet_distance_from_stats,
    gaussian_stats,
    generate,
    nearest_distances,
    open_generator,
    precision_recall,
)
from ganaug.resample import sampling_from_options
from ganaug.sampling import labels_from_counts

torch.set_num_threads(2)
run, out = sys.argv[1], sys.argv[2]
TS = [float(t) for t in sys.argv[3].split(",")]
BETAS = [float(b) for b in sys.argv[4].split(",")]
K = int(sys.argv[5]) if len(sys.argv) > 5 else 4
A, CLIP, DK = 3.0, 0.9, 5
root = "/work/shared/data"
ev = load_evaluator("/work/main/benchmarks/results/evaluators/mnist_cpu")
cev = load_evaluator("/work/s25/choice_work/choice-evaluator")
gen = open_generator(run)
train, test = (load_source("mnist", root=root, split=s) for s in ("train", "test"))
lab = train.labels.numpy()
ref = torch.from_numpy(stratified_subset(lab, 1000, seed=1))
rest = torch.ones(len(lab), dtype=torch.bool)
rest[ref] = False
imgs = to_model_range(train.images)
labels = labels_from_counts([1000] * 10)
yl = torch.from_numpy(labels)
c_ref = cev.features(imgs[ref])
c_ref_y = train.labels[ref]
rest_idx = torch.nonzero(rest).flatten()
c_floor = cev.features(imgs[rest_idx[torch.from_numpy(stratified_subset(lab[rest.numpy()], 1000, seed=0))]])
t_ref = ev.features(to_model_range(test.images))
t_ref_y = test.labels
t_floor = ev.features(imgs[torch.from_numpy(stratified_subset(lab, 1000, seed=0))])
c_stats, t_stats = gaussian_stats(c_ref), gaussian_stats(t_ref)
c_fd_floor = frechet_distance_from_stats(*gaussian_stats(c_floor), *c_stats)
t_fd_floor = frechet_distance_from_stats(*gaussian_stats(t_floor), *t_stats)
# per-class training flat images and the clip quantile of their own d5
cls = {}
for c in range(10):
    flat = imgs[train.labels == c].flatten(1).float()
    d = nearest_distances(flat, flat, k=DK + 1).double()
    cls[c] = (flat, torch.quantile(d, CLIP))


def d5(fake):
    d = torch.empty(len(fake), dtype=torch.float64)
    for c in range(10):
        m = yl == c
        flat, q = cls[c]
        d[m] = nearest_distances(fake[m].flatten(1).float(), flat, k=DK).double().clamp_max(q)
    return d


def score(fake, split):
    e = cev if split == "choice" else ev
    F, L = e.features_and_logits(fake)
    P = L.argmax(1)
    R, Ry, stats, floor = (
        (c_ref, c_ref_y, c_stats, c_fd_floor) if split == "choice" else (t_ref, t_ref_y, t_stats, t_fd_floor)
    )
    fd = frechet_distance_from_stats(*gaussian_stats(F), *stats)
    pr = precision_recall(R, F, k=3, real_labels=Ry, fake_labels=yl, num_classes=10)
    return {
        "recall": pr.recall,
        "precision": pr.precision,
        "fd": fd,
        "fd_ratio": fd / floor,
        "fidelity": float((P == yl).double().mean()),
    }


rows = []
for t in TS:
    t0 = time.time()
    cands = [
        generate(gen, labels, seed=s, sampling=sampling_from_options(t, "/work/s25/check"))
        for s in [1000 * j for j in range(K)]
    ]
    D = torch.stack([d5(x) for x in cands], 1)  # [N, K]
    print(f"T {t}: {K} candidates + d5 in {time.time() - t0:.0f}s; mean d5 {D.mean():.3f}", flush=True)
    g = torch.Generator().manual_seed(0)
    u = torch.rand(len(labels), generator=g, dtype=torch.float64)
    for b in BETAS:
        if b == 0:
            pick = torch.zeros(len(labels), dtype=torch.long)
        else:
            w = D.log() * (-b * A)
            w = (w - w.max(1, keepdim=True).values).exp()
            w = w / w.sum(1, keepdim=True)
            pick = (w.cumsum(1) < u[:, None]).sum(1).clamp_max(K - 1)
        fake = torch.stack(cands)[pick, torch.arange(len(labels))]
        row = {
            "T": t,
            "beta": b,
            "K": K,
            "mean_d5": float(D[torch.arange(len(labels)), pick].mean()),
            "choice": score(fake, "choice"),
            "test": score(fake, "test"),
        }
        rows.append(row)
        c, s = row["choice"], row["test"]
        print(
            f"T {t} beta {b}: d5 {row['mean_d5']:.3f} | choice r {c['recall']:.4f} fd {c['fd_ratio']:.3f} fid {c['fidelity']:.4f} | test r {s['recall']:.4f} p {s['precision']:.4f} fd {s['fd_ratio']:.3f} fid {s['fidelity']:.4f}",
            flush=True,
        )
        Path(out).write_text(json.dumps(rows, indent=1))
