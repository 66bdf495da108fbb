"""The downstream benchmark's statistics: Student-t intervals over seeds and paired differences.

Named ``stats``, not ``statistics``: ``python benchmarks/downstream`` (a source checkout's lab) puts a folder of
the benchmark's modules first on ``sys.path``, where none may hide the standard library's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .profiles import Profile, budget_name


def summary(values: list[float]) -> dict[str, float]:
    """Mean, std (ddof 1), and the 95% Student-t confidence interval of the mean."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    n = len(v)
    mean = float(v.mean())
    std = float(v.std(ddof=1)) if n > 1 else float("nan")
    half = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else float("nan")
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


def aggregate(p: Profile, cells: list[dict[str, Any]], refs: tuple[str, ...] = ("a", "c")) -> dict[str, Any]:
    """Per (budget, condition, amount): accuracy stats, per-class means, paired differences (``vs_<ref>``) vs
    each reference condition of ``refs`` present on 2 seeds or more."""
    table: dict[str, Any] = {}
    by = {(c["budget"], c["condition"], c["synthetic_per_class"], c["seed"]): c for c in cells}
    for budget, cond, amount, _seed in sorted({k[:3] + (0,) for k in by}):
        seeds = sorted(k[3] for k in by if k[:3] == (budget, cond, amount))
        accs = [by[(budget, cond, amount, s)]["accuracy"] for s in seeds]
        entry = {
            "budget": budget,
            "condition": cond,
            "synthetic_per_class": amount,
            "seeds": seeds,
            "accuracy": summary(accs),
            "values": accs,
            "per_class": np.mean([by[(budget, cond, amount, s)]["per_class"] for s in seeds], axis=0).tolist(),
        }
        for ref in refs:
            if ref == cond:
                continue
            paired = [s for s in seeds if (budget, ref, 0, s) in by]
            if len(paired) >= 2:
                diffs = [
                    by[(budget, cond, amount, s)]["accuracy"] - by[(budget, ref, 0, s)]["accuracy"] for s in paired
                ]
                entry[f"vs_{ref}"] = summary(diffs)
                entry[f"per_class_vs_{ref}"] = (
                    np.mean([by[(budget, cond, amount, s)]["per_class"] for s in paired], axis=0)
                    - np.mean([by[(budget, ref, 0, s)]["per_class"] for s in paired], axis=0)
                ).tolist()
        table[f"{budget_name(budget)}/{cond}/{amount}"] = entry
    return table


def verdict(s: dict[str, float] | None) -> str:
    """What a paired difference's 95% CI says: helps, HURTS, no significant difference, or too few seeds."""
    if not s or math.isnan(s["ci_low"]):
        return "not enough seeds to tell"
    if s["ci_low"] > 0:
        return "helps (95% CI above zero)"
    if s["ci_high"] < 0:
        return "HURTS (95% CI below zero)"
    return "no significant difference (95% CI includes zero)"
