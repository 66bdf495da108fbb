"""Issue 11, round 18: recall against FD for the MNIST generators and samplings of rounds 12-18, with the bar.

Reads only committed `ganaug evaluate` and `benchmarks.sampling_choice` JSON files (test-split figures from the
committed `mnist_cpu` evaluator) and writes `curve.png` and `curve.md` beside this script:

    python benchmarks/results/coverage_cpu_round18/curve.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent
sys.path.insert(0, str(RESULTS.parents[1]))
from benchmarks.coverage import figures  # the repository root is on the path only from here

RECALL_MIN, FD_MAX = 0.85, 3.0  # issue 11's bar


def evaluate_point(path: Path) -> tuple[float, float]:
    f = figures(json.loads(path.read_text()))
    return f["recall"], f["fd"] / f["fd_floor"]


def choice_points(path: Path) -> list[tuple[float, float, float]]:
    rows = json.loads(path.read_text())["rows"]
    return [(r["temperature"], r["test"]["recall"], r["test"]["fd_ratio"]) for r in rows]


def series() -> dict[str, list[tuple[str, float, float]]]:
    out: dict[str, list[tuple[str, float, float]]] = {}
    for seed, folder in ((0, "coverage_cpu_round15/choice"), (1, "coverage_cpu_round15/choice-train-seed-1")):
        out[f"recipe, check, T sweep (training seed {seed})"] = [
            (f"T {t:g}", r, f) for t, r, f in choice_points(RESULTS / folder / "results.json")
        ]
    for seed in (0, 1):
        path = HERE / f"choice-train-seed-{seed}" / "results.json"
        if path.is_file():
            out[f"flatten-density 3, check, T sweep (training seed {seed})"] = [
                (f"T {t:g}", r, f) for t, r, f in choice_points(path)
            ]
    out["flatten-density 3, confidence check (seed 0)"] = [
        (p.name.split(".evaluate")[0], *evaluate_point(p))
        for p in sorted((HERE / "confidence").glob("*.evaluate.json"))
    ]
    out["flatten-density 3, 4-epoch check (seed 0)"] = [
        (p.name.split(".evaluate")[0], *evaluate_point(p))
        for p in sorted((HERE / "check-4-epochs").glob("*.evaluate.json"))
    ]
    r14 = RESULTS / "coverage_cpu_round14"
    out["plain sampling (rounds 12-14)"] = [
        ("recipe", *evaluate_point(RESULTS / "coverage_cpu_round13" / "r1-30.evaluate.json")),
        ("recipe seed 1", *evaluate_point(RESULTS / "coverage_cpu_round12" / "r1-30.train-seed-1.evaluate.json")),
        ("flatten-density 3", *evaluate_point(r14 / "flatten-density-3.evaluate.json")),
        ("flatten-density 3 seed 1", *evaluate_point(r14 / "flatten-density-3.train-seed-1.evaluate.json")),
        ("flatten-density 4", *evaluate_point(r14 / "flatten-density-4.evaluate.json")),
    ]
    return out


def main() -> None:
    data = series()
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.fill_between([0, FD_MAX], RECALL_MIN, 0.9, color="tab:green", alpha=0.12, label="issue 11's bar")
    markers = iter("osD^v<>")
    lines = ["| series | point | recall | FD x floor | in the bar |", "|---|---|---|---|---|"]
    for name, points in data.items():
        xs, ys = [f for _, _, f in points], [r for _, r, _ in points]
        ax.plot(xs, ys, marker=next(markers), linestyle="-" if "sweep" in name else "none", label=name, markersize=5)
        for label, r, f in points:
            ok = r >= RECALL_MIN and f <= FD_MAX
            lines.append(f"| {name} | {label} | {r:.4f} | {f:.3f} | {'yes' if ok else 'no'} |")
    ax.set_xlim(1.4, 5.4)
    ax.set_ylim(0.81, 0.875)
    ax.set_xlabel("FD / real floor (mnist_cpu evaluator, test split)")
    ax.set_ylabel("recall (k = 3)")
    ax.set_title("MNIST, 2 CPU cores, 30-minute recipes: recall against FD")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(HERE / "curve.png", dpi=110)
    (HERE / "curve.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
