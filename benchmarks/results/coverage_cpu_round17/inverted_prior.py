"""Round 17 (issue 11): does a latent prior fitted to the generator's inversions of training images cover more
of the real data? Run as a script (the exact command of the round):

    python benchmarks/results/coverage_cpu_round17/inverted_prior.py RUN OUT 300 150 plain,gauss1.0,kde0.5,gauss0.8 \
        --data-root ../shared/data

It inverts PER_CLASS training images per class (stratified, seed 123; Adam on z, lr 0.05, STEPS steps, pixel MSE),
fits a full-covariance Gaussian to each class's latents, and scores with `ganaug evaluate`'s figures
(`evaluate_generator`, seed 0, 1,000 per class, the committed mnist_cpu evaluator): `plain` N(0, I); `gaussS`
z = mu_c + S L_c e (e ~ N(0, I)); `kdeH` z = z_j + H e around the inverted latent j picked by the first
coordinate's quantile (a kernel density estimate in latent space).
"""

import argparse
import dataclasses
import json
import math
import time

import numpy as np
import torch

from ganaug.checkpoint import load_generator
from ganaug.data import load_source, stratified_subset, to_model_range
from ganaug.evaluator import load_evaluator
from ganaug.metrics import evaluate_generator, open_generator

torch.set_num_threads(2)
ap = argparse.ArgumentParser()
for a in ("run", "out", "per_class", "steps", "variants"):
    ap.add_argument(a)
ap.add_argument("--data-root", required=True)
args = ap.parse_args()
run, out, per_class, steps = args.run, args.out, int(args.per_class), int(args.steps)
ev = load_evaluator("benchmarks/results/evaluators/mnist_cpu")
tr = load_source("mnist", root=args.data_root, split="train")
te = load_source("mnist", root=args.data_root, split="test")
g, meta = load_generator(run)
for p in g.parameters():
    p.requires_grad_(False)
idx = torch.from_numpy(stratified_subset(tr.labels.numpy(), per_class, seed=123))
x = to_model_range(tr.images[idx])
y = tr.labels[idx]
t0 = time.time()
torch.manual_seed(5)
z = torch.randn(len(x), 64, requires_grad=True)
opt = torch.optim.Adam([z], lr=0.05)
for s in range(steps):
    for b in range(0, len(x), 2500):
        sl = slice(b, b + 2500)
        loss = ((g(z[sl], y[sl]) - x[sl]) ** 2).mean()
        loss.backward()
    opt.step()
    opt.zero_grad()
    if s % 25 == 0 or s == steps - 1:
        print(s, float(loss.detach()), float(z.norm(dim=1).mean()), round(time.time() - t0, 1), flush=True)
z = z.detach()
print("invert secs", time.time() - t0, "z norm mean", float(z.norm(dim=1).mean()), "(prior", math.sqrt(64), ")")
mus, Ls = [], []
for c in range(10):
    zc = z[y == c]
    mu = zc.mean(0)
    cov = torch.cov(zc.T) + 1e-4 * torch.eye(64)
    mus.append(mu)
    Ls.append(torch.linalg.cholesky(cov))
    print(c, "mean norm", float(mu.norm()), "trace/64", float(cov.trace() / 64))
mus, Ls = torch.stack(mus), torch.stack(Ls)
torch.save({"z": z, "y": y, "mus": mus, "Ls": Ls}, out + ".inv.pt")
gen = open_generator(run)


def gauss(scale):
    def r(zz, ll):
        zt = torch.from_numpy(zz)
        lt = torch.from_numpy(ll)
        zn = mus[lt] + scale * torch.einsum("nij,nj->ni", Ls[lt], zt)
        return gen.run(zn.numpy().astype(np.float32), ll)

    return r


def kde(h):
    zs = [z[y == c] for c in range(10)]

    def r(zz, ll):
        zt = torch.from_numpy(zz)
        u = torch.special.ndtr(zt[:, 0])
        out = torch.empty_like(zt)
        for i in range(len(zt)):
            bank = zs[int(ll[i])]
            j = min(int(u[i] * len(bank)), len(bank) - 1)
            out[i] = bank[j] + h * zt[i]
        return gen.run(out.numpy().astype(np.float32), ll)

    return r


variants = {
    "plain": gen.run,
    "gauss1.0": gauss(1.0),
    "gauss0.8": gauss(0.8),
    "gauss1.15": gauss(1.15),
    "kde0.5": kde(0.5),
    "kde0.8": kde(0.8),
}
kw = {
    "test_images": to_model_range(te.images),
    "test_labels": te.labels,
    "train_images": to_model_range(tr.images),
    "train_labels": tr.labels,
}
rows = []
for name in args.variants.split(","):
    t1 = time.time()
    rep = evaluate_generator(dataclasses.replace(gen, run=variants[name]), ev, **kw)
    pr = rep.precision_recall
    row = {
        "v": name,
        "recall": round(pr.recall, 4),
        "precision": round(pr.precision, 4),
        "fd": round(rep.frechet_distance / rep.frechet_distance_floor, 3),
        "fid": round(rep.fidelity.overall, 4),
        "mem": str(rep.memorization)[:300],
        "secs": round(time.time() - t1),
    }
    print(json.dumps(row), flush=True)
    rows.append(row)
    with open(out + ".json", "w") as f:
        json.dump(rows, f, indent=1)
