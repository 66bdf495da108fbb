"""Do ganaug's generator metrics rank generators the way an independent judge does?

``ganaug evaluate`` scores a generator with features of ganaug's own CNN. This script scores the same
generators, on the same samples, with judges that share nothing with that CNN:

- class fidelity from a k-nearest-neighbour classifier on raw pixels (scikit-learn, k=3, fitted on the
  whole training split) in place of the evaluator;
- the Fréchet distance in the space of the first 50 principal components of raw pixels (PCA fitted on the
  training split) in place of the evaluator's 128-d features;

and reports the rank agreement (Spearman's rho, Kendall's tau) of each pair over all generators given.

    python benchmarks/metric_agreement.py --data-root ../shared/data --evaluator EVAL RUN [RUN ...]

Writes ``benchmarks/results/metric_agreement/{report.md,results.json}`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent


def score(runs: list[Path], *, data_root: str, evaluator_dir: str, per_class: int, seed: int,
          log=print) -> tuple[list[dict], dict]:
    """Per generator: ganaug's fidelity and FD, and the independent kNN fidelity and PCA-pixel FD."""
    from sklearn.decomposition import PCA
    from sklearn.neighbors import KNeighborsClassifier

    from ganaug.data import load_source, to_model_range
    from ganaug.evaluator import load_evaluator
    from ganaug.metrics import class_fidelity, frechet_distance, generate, open_generator
    from ganaug.sampling import labels_from_counts

    ev = load_evaluator(evaluator_dir)
    train = load_source("mnist", root=data_root, split="train")
    test = load_source("mnist", root=data_root, split="test")
    train_x = to_model_range(train.images).flatten(1).numpy()
    test_images = to_model_range(test.images)
    test_x = test_images.flatten(1).numpy()
    knn = KNeighborsClassifier(n_neighbors=3, algorithm="brute", n_jobs=-1).fit(train_x, train.labels.numpy())
    knn_test = float((knn.predict(test_x) == test.labels.numpy()).mean())
    log(f"kNN on raw pixels: {knn_test:.4f} on the MNIST test split")
    pca = PCA(n_components=50, random_state=0).fit(train_x)
    pca_test = pca.transform(test_x)
    ev_test = ev.features(test_images)
    labels = labels_from_counts([per_class] * len(ev.classes))
    rows = []
    for run in runs:
        t0 = time.perf_counter()
        fake = generate(open_generator(run, backend="pytorch"), labels, seed=seed)
        flat = fake.flatten(1).numpy()
        row = {
            "generator": str(run),
            "ganaug_fidelity": class_fidelity(ev.predict(fake), labels, num_classes=len(ev.classes)).overall,
            "ganaug_fd": frechet_distance(ev.features(fake), ev_test),
            "knn_fidelity": float((knn.predict(flat) == labels).mean()),
            "pca_fd": frechet_distance(pca.transform(flat), pca_test),
        }
        rows.append(row)
        log(f"{run}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "generator")
            + f" ({time.perf_counter() - t0:.1f} s)")
    return rows, {"knn_test_accuracy": knn_test}


def agreement(rows: list[dict]) -> dict[str, dict[str, float]]:
    from scipy import stats

    out = {}
    for ours, theirs in (("ganaug_fidelity", "knn_fidelity"), ("ganaug_fd", "pca_fd")):
        a, b = [r[ours] for r in rows], [r[theirs] for r in rows]
        rho, p_rho = stats.spearmanr(a, b)
        tau, p_tau = stats.kendalltau(a, b)
        out[f"{ours} vs {theirs}"] = {"spearman_rho": float(rho), "spearman_p": float(p_rho),
                                      "kendall_tau": float(tau), "kendall_p": float(p_tau), "generators": len(rows)}
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="ganaug run folders (or .onnx files) to rank")
    parser.add_argument("--data-root", required=True, help="folder holding MNIST/raw")
    parser.add_argument("--evaluator", required=True, help="ganaug evaluator folder")
    parser.add_argument("--per-class", type=int, default=200, help="samples per class and generator")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "metric_agreement")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if len(args.runs) < 3:
        parser.error("give at least 3 generators: a ranking of fewer says nothing")
    rows, extra = score(args.runs, data_root=args.data_root, evaluator_dir=args.evaluator, per_class=args.per_class,
                        seed=args.seed, log=lambda m: print(m, file=sys.stderr, flush=True))
    agree = agreement(rows)
    command = "python benchmarks/metric_agreement.py " + " ".join(argv if argv is not None else sys.argv[1:])
    results = {"command": command, "per_class": args.per_class, "seed": args.seed, **extra, "agreement": agree,
               "generators": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    lines = ["# Metric agreement: ganaug's evaluator against independent judges", "",
             f"Command: `{command}`", "",
             (f"{len(rows)} generators, {args.per_class} samples per class each (latent seed {args.seed}). Independent "
             f"judges: a 3-NN classifier on raw pixels ({100 * extra['knn_test_accuracy']:.2f}% on the MNIST test "
             "split) for class fidelity, and the Fréchet distance over the first 50 principal components of raw "
             "pixels for FD."), "",
             "| pair | Spearman rho | Kendall tau |", "|---|---|---|"]
    lines += [f"| {k} | {v['spearman_rho']:.3f} (p {v['spearman_p']:.1g}) | {v['kendall_tau']:.3f} (p {v['kendall_p']:.1g}) |"
              for k, v in agree.items()]
    lines += ["", "| generator | ganaug fidelity | kNN fidelity | ganaug FD | PCA-pixel FD |", "|---|---|---|---|---|"]
    lines += [f"| {Path(r['generator']).name} | {r['ganaug_fidelity']:.3f} | {r['knn_fidelity']:.3f} | "
              f"{r['ganaug_fd']:.2f} | {r['pca_fd']:.2f} |" for r in sorted(rows, key=lambda r: -r["ganaug_fidelity"])]
    (args.out / "report.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}/report.md")
    return results


if __name__ == "__main__":
    main()
