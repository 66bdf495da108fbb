"""Scratch: per-class temperature, chosen greedily on the training split (choice evaluator), read on the test split."""
# Run as written on 2026-12-06 (then reformatted by ruff, its json.dump(open(...)) made a write_text, and the
# setup and scoring it shared with unflatten_probe.py moved, statement for statement, to common.py).

import json
import sys
import time
from pathlib import Path

import torch
from common import CHECK, references, score_features

from ganaug.metrics import generate, open_generator
from ganaug.resample import sampling_from_options

torch.set_num_threads(2)
run, out = sys.argv[1], sys.argv[2]
TS = [float(t) for t in (sys.argv[3] if len(sys.argv) > 3 else "1,1.025,1.05,1.075,1.1,1.15,1.2").split(",")]
r = references()
ev, cev, labels = r.ev, r.cev, r.labels
gen = open_generator(run)
feats = {}
for t in TS:
    t0 = time.time()
    fake = generate(gen, labels, seed=0, sampling=sampling_from_options(t, CHECK))
    cf, cl = cev.features_and_logits(fake)
    tf, tl = ev.features_and_logits(fake)
    feats[t] = {"cf": cf, "cp": cl.argmax(1), "tf": tf, "tp": tl.argmax(1)}
    print(f"T {t}: sampled+features {time.time() - t0:.0f}s", flush=True)


def score(assign, split):
    f = "cf" if split == "choice" else "tf"
    p = f[0] + "p"
    F = torch.cat([feats[assign[c]][f][c * 1000 : (c + 1) * 1000] for c in range(10)])
    P = torch.cat([feats[assign[c]][p][c * 1000 : (c + 1) * 1000] for c in range(10)])
    return score_features(r, F, P, split)


rows = []
for t in TS:
    a = [t] * 10
    rows.append({"assign": a, "choice": score(a, "choice"), "test": score(a, "test")})
    c, s = rows[-1]["choice"], rows[-1]["test"]
    print(
        f"uniform T {t}: choice r {c['recall']:.4f} fd {c['fd_ratio']:.3f} fid {c['fidelity']:.4f} | test r {s['recall']:.4f} p {s['precision']:.4f} fd {s['fd_ratio']:.3f} fid {s['fidelity']:.4f}",
        flush=True,
    )
Path(out).write_text(json.dumps({"run": run, "temps": TS, "uniform": rows}, indent=1, default=float))
# greedy on choice: G fixed as in round 18 from uniform T=1's test FD ratio
G = 3.0 / rows[0]["test"]["fd_ratio"]
limit = G * rows[0]["choice"]["fd"]
a = [1.0] * 10
cur = score(a, "choice")
path = []
while True:
    best = None
    for c in range(10):
        i = TS.index(a[c])
        if i + 1 >= len(TS):
            continue
        b = list(a)
        b[c] = TS[i + 1]
        s = score(b, "choice")
        if s["fd"] > limit or s["fidelity"] < 0.99:
            continue
        gain, cost = s["recall"] - cur["recall"], s["fd"] - cur["fd"]
        if gain <= 0:
            continue
        key = gain / max(cost, 1e-9)
        if best is None or key > best[0]:
            best = (key, b, s)
    if best is None:
        break
    a, cur = best[1], best[2]
    path.append({"assign": a, "choice": cur})
    print(f"step: {a} choice r {cur['recall']:.4f} fd x{cur['fd'] / rows[0]['choice']['fd']:.3f}", flush=True)
tst = score(a, "test")
print(
    f"GREEDY G {G:.4f}: {a}\n  choice r {cur['recall']:.4f} fd growth {cur['fd'] / rows[0]['choice']['fd']:.3f} fid {cur['fidelity']:.4f}\n  test r {tst['recall']:.4f} p {tst['precision']:.4f} fd {tst['fd_ratio']:.3f}x fid {tst['fidelity']:.4f}",
    flush=True,
)
Path(out).write_text(
    json.dumps(
        {"run": run, "temps": TS, "uniform": rows, "G": G, "path": path, "chosen": a, "chosen_test": tst},
        indent=1,
        default=float,
    )
)
