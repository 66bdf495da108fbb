"""The probes: each lever of :data:`~.profiles.PROBES` as conditions (a)-(d) of a profile, one table.

Every probe runs the same budgets and seeds as the others, so (c) and (a) cells are shared (cached once) and
the rows differ only in the lever. ``probes.md`` lists each probe's accuracies, the paired differences
(d) - (c) and (b) - (a) with their 95% CI (from 2 seeds), failures included, and the command that made it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

from ganaug.downstream.grid import run
from ganaug.downstream.report import provenance, provenance_lines
from ganaug.downstream.stats import verdict
from ganaug.outputs import write_owned

from .profiles import PROBES, Profile, budget_name, probe_profile


def run_probes(
    base: Profile,
    names: list[str],
    *,
    data_root: str | None,
    cache: Path,
    out: Path,
    device: str = "cpu",
    evaluator: str | None = None,
    report_only: bool = False,
    command: str = "",
    log=print,
) -> dict[str, Any]:
    """Run (or collect from ``cache``) conditions (a)-(d) of every probe in ``names`` (those of them in
    ``base.conditions``: e.g. a, c, d to skip (b)); write ``out/probes.md`` and ``out/probes.json``; return
    what was written."""
    t0 = time.perf_counter()
    rows = []
    for name in names:
        conditions = tuple(c for c in "abcd" if c in base.conditions)
        p = dataclasses.replace(probe_profile(base, name), conditions=conditions, sweep=(), sweep_budgets=())
        log(f"probe {name}")
        res = run(
            p,
            data_root=data_root,
            cache=cache,
            out=out,
            device=device,
            evaluator=evaluator,
            report_only=report_only,
            command=command,
            log=log,
            write=False,
        )
        table = res["table"]
        for budget in p.budgets:
            b = budget_name(budget)
            got = {c: table.get(f"{b}/{c}/{p.synthetic_per_class if c in 'bd' else 0}") for c in "abcd"}
            cells = [c for c in res["raw_cells"] if c["budget"] == budget and c["condition"] in "bd"]
            rows.append(
                {
                    "probe": name,
                    "lever": PROBES[name][0],
                    "overrides": {k: str(getattr(p, k)) for k in PROBES[name][1]},
                    "budget": budget,
                    "accuracy": {c: r["accuracy"] if r else None for c, r in got.items()},
                    "d_vs_c": got["d"].get("vs_c") if got["d"] else None,
                    "b_vs_a": got["b"].get("vs_a") if got["b"] else None,
                    "d_minus_c_per_seed": _per_seed(res["raw_cells"], budget, "d", "c"),
                    "b_minus_a_per_seed": _per_seed(res["raw_cells"], budget, "b", "a"),
                    "gan_fidelity": [q["fidelity"] for k, q in res["gan_quality"].items() if k.startswith(f"{b}_s")]
                    or None,
                    "label_agreement": [
                        c["synthetic_label_agreement"] for c in cells if "synthetic_label_agreement" in c
                    ]
                    or None,
                    "inversion_mse": [c["inversion_mse"] for c in cells if "inversion_mse" in c] or None,
                    "kept_fraction": [
                        sum(c["synthetic_kept_per_class"])
                        / (c["synthetic_per_class"] * len(c["synthetic_kept_per_class"]))
                        for c in cells
                        if "synthetic_kept_per_class" in c
                    ]
                    or None,
                }
            )
    doc = {
        **provenance(base, command, t0),
        "rows": rows,
    }
    files = {"probes.json": json.dumps(doc, indent=1, default=str) + "\n", "probes.md": _markdown(base, doc)}
    write_owned(out, files, _MARKS, what="the probes")
    return doc


_MARKS = {
    "probes.json": '{\n "profile"',
    "probes.md": ("# Downstream probes", "# Issue 12 probes"),
}  # what an earlier run's files begin with


def _per_seed(cells: list[dict[str, Any]], budget: int, cond: str, ref: str) -> list[float]:
    by = {(c["condition"], c["seed"]): c["accuracy"] for c in cells if c["budget"] == budget}
    return [by[(cond, s)] - by[(ref, s)] for (c, s) in sorted(by) if c == cond and (ref, s) in by]


def _pct(v: float | None) -> str:
    return "–" if v is None or math.isnan(v) else f"{100 * v:.2f}"


def _diff(row: dict[str, Any], key: str) -> str:
    s, per_seed = row[key], row[key.replace("_vs_", "_minus_") + "_per_seed"]
    if s and not math.isnan(s["ci_low"]):
        return f"{100 * s['mean']:+.2f} [{100 * s['ci_low']:+.2f}, {100 * s['ci_high']:+.2f}]"
    return " ".join(f"{100 * v:+.2f}" for v in per_seed) or "–"


def _markdown(base: Profile, doc: dict[str, Any]) -> str:
    lines = [
        *provenance_lines(f"Downstream probes: `{base.name}` profile, dataset `{base.dataset}`", doc),
        (
            f"Each probe changes one lever of the profile (classical augmentation `{base.classical}`, "
            f"{base.synthetic_per_class} generated per class, classifier {base.clf_steps} steps) and runs (a) real, "
            "(b) real + generated, (c) real + classical, (d) real + classical + generated on the same seeds; the "
            "differences are paired by seed, with a 95% Student-t CI from 2 seeds on (one seed: the difference "
            "alone). Test split: evaluation only, no selection."
        ),
        "",
        "| probe | lever | budget | seeds | (a) | (b) | (c) | (d) | (b) − (a) pp | (d) − (c) pp | (d) vs (c) | notes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        acc = r["accuracy"]
        n = acc["d"]["n"] if acc["d"] else 0
        notes = []
        if r["label_agreement"]:
            notes.append(
                f"(c) classifier agrees with the asked class on {100 * sum(r['label_agreement']) / len(r['label_agreement']):.1f}%"
            )
        if r["kept_fraction"]:
            notes.append(f"filter filled {100 * sum(r['kept_fraction']) / len(r['kept_fraction']):.1f}% of the quota")
        if r["gan_fidelity"]:
            notes.append(f"GAN fidelity {sum(r['gan_fidelity']) / len(r['gan_fidelity']):.3f}")
        lines.append(
            f"| {r['probe']} | {r['lever']} | {budget_name(r['budget'])} | {n} | "
            + " | ".join(_pct(acc[c]["mean"] if acc[c] else None) for c in "abcd")
            + f" | {_diff(r, 'b_vs_a')} | {_diff(r, 'd_vs_c')} | "
            + (verdict(r["d_vs_c"]) if n > 1 else "one seed: no CI")
            + f" | {'; '.join(notes)} |"
        )
    lines += ["", "Every number is in `probes.json`."]
    return "\n".join(lines) + "\n"
