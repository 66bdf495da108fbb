"""Scratch: undo flatten-density at sampling time: SIR over K checked candidates with weights d5(x)^(-beta*A)."""
# Run as written on 2026-12-06 (then reformatted by ruff, its json.dump(open(...)) made a write_text, and the
# setup and scoring it shared with per_class_temperature.py moved, statement for statement, to common.py).

import json
import sys
import time
from pathlib import Path

import torch
from common import CHECK, references, score_features

from ganaug.metrics import generate, nearest_distances, open_generator
from ganaug.resample import sampling_from_options

torch.set_num_threads(2)
run, out = sys.argv[1], sys.argv[2]
TS = [float(t) for t in sys.argv[3].split(",")]
BETAS = [float(b) for b in sys.argv[4].split(",")]
K = int(sys.argv[5]) if len(sys.argv) > 5 else 4
A, CLIP, DK = 3.0, 0.9, 5
r = references()
ev, cev, train, imgs, labels, yl = r.ev, r.cev, r.train, r.imgs, r.labels, r.yl
gen = open_generator(run)
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
    F, L = (cev if split == "choice" else ev).features_and_logits(fake)
    row = score_features(r, F, L.argmax(1), split)
    del row["per_class_recall"]  # not in this probe's rows
    return row


rows = []
for t in TS:
    t0 = time.time()
    cands = [
        generate(gen, labels, seed=s, sampling=sampling_from_options(t, CHECK)) for s in [1000 * j for j in range(K)]
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
