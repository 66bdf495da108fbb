"""Do ganaug's generator metrics rank generators the way an independent judge does?

``ganaug evaluate`` scores a generator with features of ganaug's own CNN. This script scores the same
generators, on the same samples, with judges that share nothing with that CNN:

- class fidelity from LeNet-5 (LeCun et al., 1998: two 5x5 convolutions with max-pooling, 120-84-10 dense
  layers, tanh; no BatchNorm, no augmentation), trained here on the training split with its own seed, and
  from a k-nearest-neighbour classifier on raw pixels (scikit-learn, k=3);
- the Fréchet distance in LeNet-5's 84-d penultimate features and in the first 50 principal components of
  raw pixels (PCA fitted on the training split), in place of the evaluator's 128-d features;

and reports the rank agreement (Spearman's rho, Kendall's tau) of each pair over all generators given.

    python benchmarks/metric_agreement.py --data-root ../shared/data --evaluator EVAL RUN [RUN ...]

Writes ``runs/benchmarks/metric_agreement/{report.md,results.json}`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent


def lenet5():
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.Tanh(),
        nn.MaxPool2d(2),  # [N, 6, 14, 14]
        nn.Conv2d(6, 16, 5),
        nn.Tanh(),
        nn.MaxPool2d(2),  # [N, 16, 5, 5]
        nn.Flatten(),
        nn.Linear(400, 120),
        nn.Tanh(),
        nn.Linear(120, 84),
        nn.Tanh(),  # features [N, 84]
        nn.Linear(84, 10),
    )


def train_lenet(images: torch.Tensor, labels: torch.Tensor, *, epochs: int = 3, seed: int = 1):
    """LeNet-5 on float [N, 1, 28, 28] in [-1, 1]: Adam 1e-3, batch 128, no augmentation."""
    import torch.nn.functional as F

    torch.manual_seed(seed)
    net = lenet5()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(labels), generator=gen).split(128):
            loss = F.cross_entropy(net(images[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


@torch.no_grad()
def lenet_outputs(net, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(predicted labels, 84-d penultimate features) of float images [N, 1, 28, 28] in [-1, 1]."""
    feats = torch.cat([net[:-1](x) for x in images.split(2000)])
    return net[-1](feats).argmax(1).numpy(), feats.numpy()


def score(
    runs: list[Path], *, data_root: str, evaluator_dir: str, per_class: int, seed: int, log=print
) -> tuple[list[dict], dict]:
    """Per generator: ganaug's fidelity and FD, and the independent kNN fidelity and PCA-pixel FD."""
    from sklearn.decomposition import PCA
    from sklearn.neighbors import KNeighborsClassifier

    from ganaug.classify.evaluator import load_evaluator
    from ganaug.data.labels import labels_from_counts
    from ganaug.data.sources import load_source, to_model_range
    from ganaug.eval.metrics import class_fidelity, frechet_distance
    from ganaug.sample.generators import generate, open_generator

    ev = load_evaluator(evaluator_dir)
    train = load_source("mnist", root=data_root, split="train")
    test = load_source("mnist", root=data_root, split="test")
    train_x = to_model_range(train.images).flatten(1).numpy()
    test_images = to_model_range(test.images)
    test_x = test_images.flatten(1).numpy()
    knn = KNeighborsClassifier(n_neighbors=3, algorithm="brute", n_jobs=-1).fit(train_x, train.labels.numpy())
    knn_test = float((knn.predict(test_x) == test.labels.numpy()).mean())
    log(f"kNN on raw pixels: {knn_test:.4f} on the MNIST test split")
    lenet = train_lenet(to_model_range(train.images), train.labels)
    lenet_pred, lenet_test = lenet_outputs(lenet, test_images)
    lenet_acc = float((lenet_pred == test.labels.numpy()).mean())
    log(f"LeNet-5: {lenet_acc:.4f} on the MNIST test split")
    pca = PCA(n_components=50, random_state=0).fit(train_x)
    pca_test = pca.transform(test_x)
    ev_test = ev.features(test_images)
    labels = labels_from_counts([per_class] * len(ev.classes))
    rows = []
    for run in runs:
        t0 = time.perf_counter()
        fake = generate(open_generator(run, backend="pytorch"), labels, seed=seed)
        flat = fake.flatten(1).numpy()
        pred, feats = lenet_outputs(lenet, fake)
        row = {
            "generator": str(run),
            "ganaug_fidelity": class_fidelity(ev.predict(fake), labels, num_classes=len(ev.classes)).overall,
            "ganaug_fd": frechet_distance(ev.features(fake), ev_test),
            "lenet_fidelity": float((pred == labels).mean()),
            "lenet_fd": frechet_distance(feats, lenet_test),
            "knn_fidelity": float((knn.predict(flat) == labels).mean()),
            "pca_fd": frechet_distance(pca.transform(flat), pca_test),
        }
        rows.append(row)
        log(
            f"{run}: "
            + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "generator")
            + f" ({time.perf_counter() - t0:.1f} s)"
        )
    return rows, {"lenet_test_accuracy": lenet_acc, "knn_test_accuracy": knn_test}


def agreement(rows: list[dict]) -> dict[str, dict[str, float]]:
    from scipy import stats

    out = {}
    pairs = [
        ("ganaug_fidelity", "lenet_fidelity"),
        ("ganaug_fidelity", "knn_fidelity"),
        ("ganaug_fd", "lenet_fd"),
        ("ganaug_fd", "pca_fd"),
    ]
    for ours, theirs in [(a, b) for a, b in pairs if all(a in r and b in r for r in rows)]:
        a, b = [r[ours] for r in rows], [r[theirs] for r in rows]
        rho, p_rho = stats.spearmanr(a, b)
        tau, p_tau = stats.kendalltau(a, b)
        out[f"{ours} vs {theirs}"] = {
            "spearman_rho": float(rho),
            "spearman_p": float(p_rho),
            "kendall_tau": float(tau),
            "kendall_p": float(p_tau),
            "generators": len(rows),
        }
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="ganaug run folders (or .onnx files) to rank")
    parser.add_argument("--data-root", required=True, help="folder holding MNIST/raw")
    parser.add_argument("--evaluator", required=True, help="ganaug evaluator folder")
    parser.add_argument("--per-class", type=int, default=200, help="samples per class and generator")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs") / "benchmarks" / "metric_agreement")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if len(args.runs) < 3:
        parser.error("give at least 3 generators: a ranking of fewer says nothing")
    rows, extra = score(
        args.runs,
        data_root=args.data_root,
        evaluator_dir=args.evaluator,
        per_class=args.per_class,
        seed=args.seed,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    agree = agreement(rows)
    command = "python benchmarks/metric_agreement.py " + " ".join(argv if argv is not None else sys.argv[1:])
    from ganaug.downstream.machine import describe

    results = {
        "command": command,
        "machine": describe(),
        "per_class": args.per_class,
        "seed": args.seed,
        **extra,
        "agreement": agree,
        "generators": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    lines = [
        "# Metric agreement: ganaug's evaluator against independent judges",
        "",
        f"Command: `{command}`",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in results["machine"].items()),
        "",
        (
            f"{len(rows)} generators, {args.per_class} samples per class each (latent seed {args.seed}). Independent "
            f"judges: LeNet-5 trained here ({100 * extra['lenet_test_accuracy']:.2f}% on the MNIST test split; "
            f"fidelity, and FD in its 84-d features) and a 3-NN classifier on raw pixels "
            f"({100 * extra['knn_test_accuracy']:.2f}%; fidelity), with FD over the first 50 principal components "
            "of raw pixels. Raw-pixel judges are not shift-invariant: they mark digits in new poses (the GANs "
            "trained with augment_real) down."
        ),
        "",
        "| pair | Spearman rho | Kendall tau |",
        "|---|---|---|",
    ]
    lines += [
        f"| {k} | {v['spearman_rho']:.3f} (p {v['spearman_p']:.1g}) | {v['kendall_tau']:.3f} (p {v['kendall_p']:.1g}) |"
        for k, v in agree.items()
    ]
    lines += [
        "",
        "| generator | ganaug fidelity | LeNet-5 fidelity | kNN fidelity | ganaug FD | LeNet-5 FD | PCA-pixel FD |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {Path(r['generator']).name} | {r['ganaug_fidelity']:.3f} | {r['lenet_fidelity']:.3f} | "
        f"{r['knn_fidelity']:.3f} | {r['ganaug_fd']:.2f} | {r['lenet_fd']:.2f} | {r['pca_fd']:.2f} |"
        for r in sorted(rows, key=lambda r: -r["ganaug_fidelity"])
    ]
    (args.out / "report.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}/report.md")
    return results


if __name__ == "__main__":
    main()
