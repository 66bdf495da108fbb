"""The downstream benchmark's report: ``report.md`` and its figures, from the aggregated table."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from ganaug import __version__
from ganaug.downstream.machine import describe

from .profiles import CONDITIONS, FULL, GENERATED, REFERENCE, Profile, budget_name
from .stats import verdict


def provenance(p: Profile, command: str, t0: float) -> dict[str, Any]:
    """What every results file starts with: the profile, the command, the machine, the version, when it
    finished and the wall time since ``t0`` (``time.perf_counter()``)."""
    return {
        "profile": p.to_dict(),
        "command": command,
        "machine": describe(),
        "ganaug_version": __version__,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "wall_seconds": time.perf_counter() - t0,
    }


def provenance_lines(title: str, doc: dict[str, Any]) -> list[str]:
    """The markdown head of a table written from a :func:`provenance` document."""
    return [
        f"# {title}",
        "",
        f"Command: `{doc['command']}`  ",
        f"ganaug {doc['ganaug_version']}; finished {doc['finished']}; {doc['wall_seconds']:.0f} s in this invocation.",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in doc["machine"].items()),
        "",
    ]


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def _diff(s: dict[str, float] | None) -> str:
    if not s:
        return "–"
    return f"{100 * s['mean']:+.2f} [{100 * s['ci_low']:+.2f}, {100 * s['ci_high']:+.2f}]"


def plots(p: Profile, table: dict[str, Any], classes: list[str], out: Path) -> None:
    """``accuracy_vs_budget.png`` (mean and CI band per condition) and ``per_class_gain.png`` in ``out``."""
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure registry to touch

    budgets = [b for b in p.budgets]
    xs = [b if b != FULL else 6000 for b in budgets]
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for cond in p.conditions:
        rows = [
            table.get(f"{budget_name(b)}/{cond}/{p.synthetic_per_class if cond in GENERATED else 0}") for b in budgets
        ]
        pts = [(x, r["accuracy"]) for x, r in zip(xs, rows) if r]
        if not pts:
            continue
        x = [a for a, _ in pts]
        ax.plot(x, [100 * s["mean"] for _, s in pts], marker="o", label=f"({cond}) {CONDITIONS[cond]}")
        ax.fill_between(x, [100 * s["ci_low"] for _, s in pts], [100 * s["ci_high"] for _, s in pts], alpha=0.2)
    ref = [(b, v) for b, v in REFERENCE.items() if b in budgets]
    if ref and p.dataset == "mnist":
        ax.plot([b for b, _ in ref], [v for _, v in ref], "k--", lw=1, label="published supervised CNN")
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(xs, [budget_name(b) for b in budgets])
    ax.set_ylim(max(0, ax.get_ylim()[0]), min(100, ax.get_ylim()[1]))
    ax.set_xlabel("real images per class")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{p.dataset}: mean and 95% CI over {p.seeds} seeds")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_budget.png", dpi=110)

    pairs = [("b", "a"), ("d", "c")]
    fig = Figure(figsize=(11, 3.8))
    axes = fig.subplots(1, len(pairs), sharey=True)
    for ax, (cond, ref) in zip(axes, pairs):
        width = 0.8 / max(1, len(budgets))
        for i, b in enumerate(budgets):
            r = table.get(f"{budget_name(b)}/{cond}/{p.synthetic_per_class}")
            if r and f"per_class_vs_{ref}" in r:
                ax.bar(
                    np.arange(len(classes)) + i * width,
                    100 * np.asarray(r[f"per_class_vs_{ref}"]),
                    width,
                    label=f"{budget_name(b)}/class",
                )
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(np.arange(len(classes)) + 0.4 - width / 2, [c.split(" ")[0] for c in classes])
        ax.set_title(f"per-class gain of ({cond}) over ({ref}), pp")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "per_class_gain.png", dpi=110)


def bottom_line(p: Profile, table: dict[str, Any]) -> list[str]:
    """One sentence per budget, from the table: does generated data help, against both references?"""
    lines = ["## Bottom line", ""]
    for budget in p.budgets:
        name = budget_name(budget)
        b, d = (table.get(f"{name}/{c}/{p.synthetic_per_class}") for c in "bd")
        parts = []
        if b and "vs_a" in b:
            parts.append(f"real + generated against real only: {_diff(b['vs_a'])} pp, {verdict(b['vs_a'])}")
        if d and "vs_c" in d:
            parts.append(
                f"real + classical + generated against classical alone: {_diff(d['vs_c'])} pp, {verdict(d['vs_c'])}"
            )
        rows = {c: table.get(f"{name}/{c}/{p.synthetic_per_class if c in GENERATED else 0}") for c in p.conditions}
        best = max((c for c in rows if rows[c]), key=lambda c: rows[c]["accuracy"]["mean"], default=None)
        if best:
            parts.append(f"best condition ({best}) {CONDITIONS[best].rstrip('.')}")
        if parts:
            lines.append(
                f"- **{name} per class** ({p.synthetic_per_class} generated per class): " + "; ".join(parts) + "."
            )
    return lines + [""]


def _dataset(p: Profile, data: dict[str, Any] | None) -> str:
    """The protocol's first words: the dataset, and an image folder's path, classes and sizes."""
    if not data or p.dataset != "imagefolder":
        return f"Dataset `{p.dataset}`"
    classes = data["classes"]
    names = ", ".join(classes) if len(classes) <= 12 else ", ".join(classes[:12]) + ", ..."
    return (
        f"Dataset `imagefolder` at `{data['root']}` ({len(classes)} classes: {names}; {data['train']} training and "
        f"{data['test']} test images, read as grayscale 28x28)"
    )


def _model(p: Profile, data: dict[str, Any] | None):
    """The GAN's ModelConfig as trained: training sets its number of classes from the data."""
    if not data:
        return p.gan_model
    return dataclasses.replace(p.gan_model, num_classes=len(data["classes"]))


def write_report(p: Profile, results: dict[str, Any], out: Path) -> None:
    """``out/report.md`` from ``results`` (what :func:`~.grid.run` collects)."""
    table, cas = results["table"], results.get("cas")
    lines = [
        f"# Downstream benchmark: `{p.name}` profile",
        "",
        f"Command: `{results['command']}`  ",
        (
            f"ganaug {__version__}; finished {results['finished']}; {results['cells']} classifier runs, "
            f"{results['gans']} GANs, {results['wall_seconds']:.0f} s in this invocation."
        ),
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in results["machine"].items()),
        "",
        "## Protocol",
        "",
        (
            f"{_dataset(p, results.get('data'))}; budgets (real images per class) "
            f"{', '.join(budget_name(b) for b in p.budgets)}; "
            f"{p.seeds} seeds per cell, each seed drawing the subset, training the GAN on that subset only and seeding "
            f"the classifier. GAN: {_model(p, results.get('data'))}, about {p.gan_steps} steps of batch "
            f"{p.gan_batch}; below "
            f"{p.gan_small_below}/class the classical augmentation (`{p.classical}`) on its real images "
            f"{'on' if p.gan_augment_real and p.classical_op else 'off'}, loss {p.gan_loss}. "
            f"Classifier: the evaluator CNN at "
            f"width {p.clf_width}, {p.clf_steps} Adam steps of batch {p.clf_batch} (lr {p.clf_lr}, cosine), "
            f"{p.real_fraction:.0%} real per batch when mixed; no early stopping or selection. Generated: "
            f"{p.synthetic_per_class} per class unless noted"
            + (
                f", kept only when a classifier trained on the same real subset assigns them to the requested class "
                f"(over-generated {p.filter_oversample}x)"
                if p.synthetic_filter
                else ""
            )
            + ". Test split: evaluation only."
            + (
                f" Generated items: {p.synthetic_labels} labels, loss weight {p.synthetic_weight}, classical "
                f"augmentation on them {'on' if p.synthetic_classical else 'off'}, {p.pretrain_steps} pretraining "
                f"steps on them alone, latent scale {p.latent_scale}, shared style {'on' if p.shared_style else 'off'}."
            )
            + (
                f" The tiny-budget GANs train on real images under the classical augmentation (`{p.classical}`), so "
                "their samples carry "
                "the kind of variation (c) adds: (b) against (a) measures generated data as a stand-in for "
                "augmentation, (d) against (c) what the GAN adds beyond it."
                if p.gan_augment_real and p.classical_op
                else ""
            )
        ),
        "",
        *bottom_line(p, table),
        "## Accuracy (%) on the test split: mean ± std [95% CI]",
        "",
        "| budget | " + " | ".join(f"({c}) {CONDITIONS[c]}" for c in p.conditions) + " |",
        "|---|" + "---|" * len(p.conditions),
    ]
    for b in p.budgets:
        cells = []
        for c in p.conditions:
            r = table.get(f"{budget_name(b)}/{c}/{p.synthetic_per_class if c in GENERATED else 0}")
            s = r["accuracy"] if r else None
            cells.append(
                f"{_pct(s['mean'])} ± {_pct(s['std'])} [{_pct(s['ci_low'])}, {_pct(s['ci_high'])}]" if s else "–"
            )
        lines.append(f"| {budget_name(b)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Paired differences (pp, same seeds) with 95% CI, and what they say",
        "",
        "| budget | condition | vs (a) real only | vs (c) classical aug. | verdict vs matching condition |",
        "|---|---|---|---|---|",
    ]
    for r in table.values():
        if r["condition"] == "a":
            continue
        match = {"b": r.get("vs_a"), "d": r.get("vs_c"), "c": r.get("vs_a"), "e": r.get("vs_a")}[r["condition"]]
        lines.append(
            f"| {budget_name(r['budget'])} | ({r['condition']}) n={r['synthetic_per_class']} | "
            f"{_diff(r.get('vs_a'))} | {_diff(r.get('vs_c'))} | {verdict(match)} |"
        )
    lines += ["", "Matching condition: (b) and (e) against (a), (c) against (a), (d) against (c).", ""]
    ref_rows = [(b, v) for b, v in REFERENCE.items() if b in p.budgets]
    if p.dataset == "mnist" and ref_rows:
        lines += [
            "## Against published reference points",
            "",
            "| budget | published supervised CNN | ganaug (a) | ganaug best |",
            "|---|---|---|---|",
        ]
        for b, v in ref_rows:
            rs = [r for r in table.values() if r["budget"] == b]
            if not rs:
                continue
            a = table.get(f"{b}/a/0")
            best = max(rs, key=lambda r: r["accuracy"]["mean"])
            lines.append(
                f"| {b} | {v:.1f} | {_pct(a['accuracy']['mean']) if a else '–'} | "
                f"{_pct(best['accuracy']['mean'])} ({best['condition']}) |"
            )
        lines += [
            "",
            (
                "Published: FIELD_NOTES.md (supervised CNN on MNIST subsets); Odena 2016: 89.5% with 100 "
                "labels in total, 96.5% with 1000."
            ),
            "",
        ]
    if cas:
        s = cas["accuracy"]
        lines += [
            "## Classification accuracy score (CAS)",
            "",
            f"Classifier trained only on {cas['synthetic_per_class']} generated images per class from a GAN trained "
            f"on the whole training split ({cas['gan']}, {cas['gan_steps']} steps), tested on the real test split: "
            f"**{_pct(s['mean'])}%** ± {_pct(s['std'])} [{_pct(s['ci_low'])}, {_pct(s['ci_high'])}] over "
            f"{s['n']} classifier seeds. Target: 98%; "
            + ("met." if s["mean"] >= 0.98 else f"short by {100 * (0.98 - s['mean']):.2f} pp."),
            "",
        ]
    if results.get("gan_quality"):
        lines += ["## GAN class fidelity (evaluator)", "", "| GAN | fidelity |", "|---|---|"]
        lines += [f"| {k} | {v['fidelity']:.3f} |" for k, v in sorted(results["gan_quality"].items())] + [""]
    lines += ["## Honesty checks", ""]
    lines += [f"- {'PASS' if ok else 'FAIL'}: {text}" for text, ok in results["honesty"]] + [""]
    lines += [
        "## Figures",
        "",
        "![accuracy vs budget](accuracy_vs_budget.png)",
        "",
        "![per-class gain](per_class_gain.png)",
        "",
    ]
    lines += [
        (
            f"Samples of the seed-0 GAN at budget {b} per class:"
            if b != "cas"
            else "Samples of the CAS GAN (whole training split):"
        )
        + f"\n\n![samples {b}](samples_{b}.png)\n"
        for b in results["grids"]
    ]
    lines += ["Every number is in `results.json`."]
    (out / "report.md").write_text("\n".join(lines) + "\n")
