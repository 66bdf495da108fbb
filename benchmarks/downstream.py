"""Do generated digits make a classifier better? The honest downstream protocol.

For each budget of real labelled images per class and each seed, the seed draws the stratified subset,
trains a GAN on that subset ONLY, and seeds a fixed small CNN classifier trained under each condition:

    a  real only                        c  real + classical augmentation (per-image random affine)
    b  real + generated                 d  real + classical + generated
    e  generated only (train on synthetic, test on real)

Every classifier trains for the same fixed number of steps (no early stopping, no model selection) and is
evaluated once, on the untouched test split. Batches of conditions with both kinds of data are
``real_fraction`` real (default half). The classification accuracy score (CAS) of a GAN trained on the
whole training split is condition (e) with that GAN.

Every finished GAN (a ganaug run folder, resumable) and every finished classifier (a JSON file holding its
config and results) is cached under ``--cache``, keyed by a hash of its config: an interrupted run
resumes where it stopped and ``--report-only`` rebuilds the report from the cache.

    python benchmarks/downstream.py --profile smoke                       # digits, CI, a few minutes
    python benchmarks/downstream.py --profile cpu --data-root ../shared/data   # this 2-core machine
    python benchmarks/downstream.py --profile full --data-root DATA --device cuda

Writes ``benchmarks/results/<name>/``: ``report.md``, ``results.json`` (every number), ``accuracy_vs_budget.png``,
``per_class_gain.png`` and ``samples_<budget>.png`` (a GAN grid per budget).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ganaug import __version__
from ganaug.config import ModelConfig, TrainConfig
from ganaug.data import indices_hash, load_source, stratified_subset, to_model_range
from ganaug.errors import InputError
from ganaug.evaluator import EvaluatorConfig, EvaluatorNet, random_affine
from ganaug.machine import describe

CONDITIONS = {
    "a": "real only",
    "b": "real + generated",
    "c": "real + classical aug.",
    "d": "real + classical aug. + generated",
    "e": "generated only",
}
FULL = 0  # budget value meaning "the whole training split"
REFERENCE = {10: 64.0, 50: 86.0, 100: 92.0, 500: 97.0}  # supervised CNN on MNIST subsets (FIELD_NOTES.md)
ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Profile:
    """Everything that fixes a benchmark's numbers (written into results.json).

    ``gan_steps`` is the target number of GAN steps at every budget (epochs are derived from it, since a
    100-image subset gives one batch an epoch); ``synthetic_per_class`` is the amount of generated images
    per class for (b), (d), (e); ``sweep`` lists extra amounts tried for (b) at ``sweep_budgets``.
    With ``synthetic_filter``, generated images are kept only when a classifier trained on the same real
    subset (condition c, same seed: no other labels involved) assigns them to the requested class; each class
    is over-generated ``filter_oversample`` times and keeps at most ``synthetic_per_class``.
    """

    name: str
    dataset: str
    budgets: tuple[int, ...]
    seeds: int
    synthetic_per_class: int
    sweep: tuple[int, ...] = ()
    sweep_budgets: tuple[int, ...] = ()
    gan_steps: int = 3000
    gan_batch: int = 64
    gan_model: ModelConfig = field(default_factory=ModelConfig)
    gan_small_below: int = 200  # budgets below this many images per class get the tiny-data measures:
    gan_augment_real: bool = True  # random affine on the real images (TrainConfig.augment_real)
    gan_diffaugment: tuple[str, ...] = ()  # DiffAugment policies
    clf_steps: int = 1000
    clf_batch: int = 64
    clf_lr: float = 1e-3
    clf_width: int = 16
    real_fraction: float = 0.5
    synthetic_filter: bool = False
    filter_oversample: int = 4
    cas_gan_steps: int = 0  # 0: no CAS
    cas_per_class: int = 1000
    conditions: tuple[str, ...] = tuple(CONDITIONS)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PROFILES = {
    "smoke": Profile(
        name="smoke",
        dataset="digits",
        budgets=(5, 20),
        seeds=2,
        synthetic_per_class=40,
        sweep=(80,),
        sweep_budgets=(5,),
        gan_steps=60,
        gan_batch=32,
        gan_model=ModelConfig(z_dim=16, embed_dim=8, g_width=16, d_width=16),
        clf_steps=60,
        clf_batch=32,
        clf_width=8,
        cas_gan_steps=60,
        cas_per_class=40,
    ),
    "cpu": Profile(
        name="cpu",
        dataset="mnist",
        budgets=(10, 50, 100),
        seeds=5,
        synthetic_per_class=500,
        sweep=(100, 2000),
        sweep_budgets=(10, 50),
        gan_steps=6000,
        gan_batch=64,
        gan_model=ModelConfig(g_width=32, d_width=32),
        clf_steps=800,
        clf_batch=64,
        clf_width=16,
        cas_gan_steps=10000,
        cas_per_class=1000,
    ),
    "full": Profile(
        name="full",
        dataset="mnist",
        budgets=(10, 50, 100, 500, FULL),
        seeds=5,
        synthetic_per_class=1000,
        sweep=(250, 4000),
        sweep_budgets=(10, 50, 100),
        gan_steps=10000,
        gan_batch=64,
        gan_model=ModelConfig(),
        clf_steps=3000,
        clf_batch=128,
        clf_width=32,
        cas_gan_steps=20000,
        cas_per_class=5000,
    ),
}


def _key(d: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def _budget_name(budget: int) -> str:
    return "full" if budget == FULL else str(budget)


# ---- GANs ---------------------------------------------------------------------------------------


GAN_SAVES = 40  # grids + checkpoints per GAN run: at 10 images per class an epoch is one step


def gan_config(
    p: Profile, budget: int, seed: int, *, n_images: int, data_root: str | None, device: str, steps: int | None = None
) -> TrainConfig:
    """The GAN of one (budget, seed): trained only on the seed's stratified subset, for about ``gan_steps``."""
    batch = min(p.gan_batch, n_images)
    steps = steps or p.gan_steps
    small = budget != FULL and budget < p.gan_small_below
    epochs = max(1, math.ceil(steps / (n_images // batch)))
    return TrainConfig(
        dataset=p.dataset,
        data_root=data_root,
        per_class=None if budget == FULL else budget,
        epochs=epochs,
        save_every=max(1, epochs // GAN_SAVES),
        batch_size=batch,
        seed=seed,
        diffaugment=p.gan_diffaugment if small else (),
        augment_real=p.gan_augment_real and small,
        export_onnx=False,
        device=device,
        model=p.gan_model,
        log_every=max(1, min(50, steps // 10)),
    )


def architecture(model: ModelConfig) -> str:
    """Names and shapes of every G and D tensor: a changed architecture never reuses a cached GAN."""
    from ganaug.models import Discriminator, Generator

    return _key(
        {
            k: list(v.shape)
            for net in (Generator(model), Discriminator(model))
            for k, v in ((f"{type(net).__name__}.{n}", t) for n, t in net.state_dict().items())
        }
    )


def gan_dir(config: TrainConfig, cache: Path) -> Path:
    """``cache/gan/<budget>_s<seed>_<hash>`` of the config and :func:`architecture` (not where it trains or
    its data folder)."""
    cfg = config.to_dict()
    cfg.pop("data_root")
    cfg.pop("device")
    cfg["architecture"] = architecture(config.model)
    return cache / "gan" / f"{_budget_name(config.per_class or FULL)}_s{config.seed}_{_key(cfg)}"


def train_gan(config: TrainConfig, cache: Path) -> Path:
    """Train (or resume, or reuse) the GAN of ``config`` in :func:`gan_dir`; returns its run folder."""
    from ganaug.training import Trainer

    run = gan_dir(config, cache)
    if (run / "summary.json").is_file():
        return run
    if (run / "checkpoint.pt").is_file():
        Trainer.resume(run, progress=False).fit()
    else:
        Trainer.new(config, run, overwrite=True, progress=False).fit()
    return run


def synthetic(run: Path, per_class: int, num_classes: int, *, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` generated images per class from the run's EMA generator (latent seed ``seed``)."""
    from ganaug.metrics import generate, open_generator
    from ganaug.sampling import labels_from_counts

    labels = labels_from_counts([per_class] * num_classes)
    images = generate(open_generator(run, backend="pytorch"), labels, seed=seed)
    return images, torch.from_numpy(labels)


# ---- classifier ---------------------------------------------------------------------------------


def train_classifier(
    p: Profile,
    condition: str,
    *,
    real: tuple[torch.Tensor, torch.Tensor] | None,
    fake: tuple[torch.Tensor, torch.Tensor] | None,
    seed: int,
    num_classes: int,
    device: str,
) -> EvaluatorNet:
    """The fixed small CNN (the evaluator's architecture at ``clf_width``), ``clf_steps`` Adam steps, no selection."""
    torch.manual_seed(seed)
    net = EvaluatorNet(EvaluatorConfig(num_classes=num_classes, width=p.clf_width, hidden=8 * p.clf_width)).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=p.clf_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=p.clf_steps)
    gen = torch.Generator(device=device).manual_seed(seed)
    sources = [s for s in (real, fake) if s is not None]
    sources = [(x.to(device), y.to(device)) for x, y in sources]
    if any(len(y) == 0 for _, y in sources):
        raise InputError(
            f"condition ({condition}) has an empty training source (did the filter reject every "
            "generated image?); train the GAN longer or run without --filter"
        )
    n_real = round(p.clf_batch * p.real_fraction) if len(sources) == 2 else p.clf_batch
    sizes = [n_real, p.clf_batch - n_real][: len(sources)]
    classical = condition in ("c", "d")
    net.train()
    for _ in range(p.clf_steps):
        xs, ys = [], []
        for (x, y), n in zip(sources, sizes):
            idx = torch.randint(len(y), (n,), generator=gen, device=device)
            xs.append(x[idx])
            ys.append(y[idx])
        x, y = torch.cat(xs), torch.cat(ys)
        if classical:
            x = random_affine(x, gen)
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


@torch.no_grad()
def predict(net: EvaluatorNet, images: torch.Tensor, device: str, batch: int = 2000) -> torch.Tensor:
    """Predicted labels int64 [N] (on the CPU) of float images [N, 1, 28, 28] in [-1, 1]."""
    return torch.cat([net(images[i : i + batch].to(device)).argmax(1).cpu() for i in range(0, len(images), batch)])


_JUDGES: dict[tuple[Any, ...], EvaluatorNet] = {}


def judge(
    p: Profile, subset: tuple[torch.Tensor, torch.Tensor], *, budget: int, seed: int, num_classes: int, device: str
) -> EvaluatorNet:
    """The filter's judge: the (c) classifier of this (budget, seed), trained once per process for every cell."""
    key = (_key(p.to_dict()), budget, seed, device)
    if key not in _JUDGES:
        _JUDGES[key] = train_classifier(
            p, "c", real=subset, fake=None, seed=seed, num_classes=num_classes, device=device
        )
    return _JUDGES[key]


def test_accuracy(
    net: EvaluatorNet, images: torch.Tensor, labels: torch.Tensor, num_classes: int, device: str
) -> tuple[float, list[float]]:
    hit = (predict(net, images, device) == labels).double()
    return float(hit.mean()), [float(hit[labels == c].mean()) for c in range(num_classes)]


# ---- the grid of cells --------------------------------------------------------------------------


@dataclass
class Data:
    train_images: torch.Tensor  # uint8 [N, 28, 28]
    train_labels: torch.Tensor
    test_images: torch.Tensor  # float [M, 1, 28, 28] in [-1, 1]; used for the final evaluation only
    test_labels: torch.Tensor
    classes: list[str]


def load_data(p: Profile, data_root: str | None) -> Data:
    train = load_source(p.dataset, root=data_root, split="train")
    test = load_source(p.dataset, root=data_root, split="test")
    return Data(train.images, train.labels, to_model_range(test.images), test.labels, train.classes)


def real_subset(data: Data, budget: int, seed: int) -> tuple[tuple[torch.Tensor, torch.Tensor], np.ndarray]:
    """The seed's stratified subset (what its GAN trains on) as float images in [-1, 1] and labels, and its indices."""
    idx = (
        np.arange(len(data.train_labels))
        if budget == FULL
        else stratified_subset(data.train_labels.numpy(), budget, seed=seed)
    )
    t = torch.from_numpy(idx)
    return (to_model_range(data.train_images[t]), data.train_labels[t]), idx


def run_cell(
    p: Profile,
    data: Data,
    cache: Path,
    *,
    budget: int,
    seed: int,
    condition: str,
    amount: int,
    gan_run: Path | None,
    device: str,
    log,
    cached_only: bool = False,
) -> dict[str, Any] | None:
    """One classifier: cached in ``cache/cells/<hash>.json`` with its config (None if ``cached_only`` and absent)."""
    num_classes = len(data.classes)
    cfg = {
        "profile": p.name,
        "dataset": p.dataset,
        "budget": budget,
        "seed": seed,
        "condition": condition,
        "synthetic_per_class": amount if condition in "bde" else 0,
        "clf_steps": p.clf_steps,
        "clf_batch": p.clf_batch,
        "clf_lr": p.clf_lr,
        "clf_width": p.clf_width,
        "real_fraction": p.real_fraction,
        "gan": gan_run.name if gan_run is not None and condition in "bde" else None,
        "synthetic_filter": p.synthetic_filter and condition in "bde",
    }
    path = cache / "cells" / f"{_key(cfg)}.json"
    if path.is_file():
        return json.loads(path.read_text())
    if cached_only:
        return None
    t0 = time.perf_counter()
    real = fake = None
    honesty: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    subset, idx = real_subset(data, budget, seed)
    if condition != "e":
        real = subset
        honesty["subset_sha256"] = indices_hash(idx)
    if condition in "bde":
        gan_indices = np.load(gan_run / "indices.npy")
        honesty["gan_subset_sha256"] = indices_hash(gan_indices)
        if real is not None:
            honesty["gan_saw_only_the_subset"] = honesty["gan_subset_sha256"] == honesty["subset_sha256"]
        if p.synthetic_filter:
            net = judge(p, subset, budget=budget, seed=seed, num_classes=num_classes, device=device)
            x, y = synthetic(gan_run, amount * p.filter_oversample, num_classes, seed=seed)
            keep = predict(net, x, device) == y
            take = [torch.nonzero(keep & (y == c)).squeeze(1)[:amount] for c in range(num_classes)]
            fake = (x[torch.cat(take)], y[torch.cat(take)])
            extra["synthetic_kept_per_class"] = [len(t) for t in take]
        else:
            fake = synthetic(gan_run, amount, num_classes, seed=seed)
    net = train_classifier(p, condition, real=real, fake=fake, seed=seed, num_classes=num_classes, device=device)
    acc, per_class = test_accuracy(net, data.test_images, data.test_labels, num_classes, device)
    result = {
        **cfg,
        "accuracy": acc,
        "per_class": per_class,
        "seconds": round(time.perf_counter() - t0, 2),
        "honesty": honesty,
        **extra,
        "ganaug_version": __version__,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, path)
    log(
        f"  cell budget={_budget_name(budget)} seed={seed} {condition} n={cfg['synthetic_per_class']}: "
        f"{acc:.4f} ({result['seconds']:.0f} s)"
    )
    return result


def gan_quality(run: Path, evaluator_dir: str | None, per_class: int = 100) -> dict[str, Any] | None:
    """Class fidelity of a GAN (from :mod:`ganaug.metrics`) when an evaluator is given; cached in the run folder."""
    if evaluator_dir is None:
        return None
    path = run / "fidelity.json"
    if path.is_file():
        return json.loads(path.read_text())
    from ganaug.evaluator import load_evaluator
    from ganaug.metrics import class_fidelity, generate, open_generator
    from ganaug.sampling import labels_from_counts

    ev = load_evaluator(evaluator_dir)
    labels = labels_from_counts([per_class] * len(ev.classes))
    fid = class_fidelity(
        ev.predict(generate(open_generator(run, backend="pytorch"), labels, seed=777)),
        labels,
        num_classes=len(ev.classes),
    )
    doc = {"fidelity": fid.overall, "per_class": fid.per_class, "samples_per_class": per_class}
    path.write_text(json.dumps(doc))
    return doc


# ---- statistics ---------------------------------------------------------------------------------


def summary(values: list[float]) -> dict[str, float]:
    """Mean, std (ddof 1), and the 95% Student-t confidence interval of the mean."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    n = len(v)
    mean = float(v.mean())
    std = float(v.std(ddof=1)) if n > 1 else float("nan")
    half = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else float("nan")
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


def aggregate(p: Profile, cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Per (budget, condition, amount): accuracy stats, per-class means, paired differences vs (a) and (c)."""
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
        for ref in ("a", "c"):
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
        table[f"{_budget_name(budget)}/{cond}/{amount}"] = entry
    return table


# ---- report -------------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def _diff(s: dict[str, float] | None) -> str:
    if not s:
        return "–"
    return f"{100 * s['mean']:+.2f} [{100 * s['ci_low']:+.2f}, {100 * s['ci_high']:+.2f}]"


def verdict(s: dict[str, float] | None) -> str:
    if not s or math.isnan(s["ci_low"]):
        return "not enough seeds to tell"
    if s["ci_low"] > 0:
        return "helps (95% CI above zero)"
    if s["ci_high"] < 0:
        return "HURTS (95% CI below zero)"
    return "no significant difference (95% CI includes zero)"


def plots(p: Profile, table: dict[str, Any], classes: list[str], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = [b for b in p.budgets]
    xs = [b if b != FULL else 6000 for b in budgets]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for cond in p.conditions:
        rows = [table.get(f"{_budget_name(b)}/{cond}/{p.synthetic_per_class if cond in 'bde' else 0}") for b in budgets]
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
    ax.set_xticks(xs, [_budget_name(b) for b in budgets])
    ax.set_ylim(max(0, ax.get_ylim()[0]), min(100, ax.get_ylim()[1]))
    ax.set_xlabel("real images per class")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{p.dataset}: mean and 95% CI over {p.seeds} seeds")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_budget.png", dpi=110)
    plt.close(fig)

    pairs = [("b", "a"), ("d", "c")]
    fig, axes = plt.subplots(1, len(pairs), figsize=(11, 3.8), sharey=True)
    for ax, (cond, ref) in zip(axes, pairs):
        width = 0.8 / max(1, len(budgets))
        for i, b in enumerate(budgets):
            r = table.get(f"{_budget_name(b)}/{cond}/{p.synthetic_per_class}")
            if r and f"per_class_vs_{ref}" in r:
                ax.bar(
                    np.arange(len(classes)) + i * width,
                    100 * np.asarray(r[f"per_class_vs_{ref}"]),
                    width,
                    label=f"{_budget_name(b)}/class",
                )
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(np.arange(len(classes)) + 0.4 - width / 2, [c.split(" ")[0] for c in classes])
        ax.set_title(f"per-class gain of ({cond}) over ({ref}), pp")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "per_class_gain.png", dpi=110)
    plt.close(fig)


def bottom_line(p: Profile, table: dict[str, Any]) -> list[str]:
    """One sentence per budget, from the table: does generated data help, against both references?"""
    lines = ["## Bottom line", ""]
    for budget in p.budgets:
        name = _budget_name(budget)
        b, d = (table.get(f"{name}/{c}/{p.synthetic_per_class}") for c in "bd")
        parts = []
        if b and "vs_a" in b:
            parts.append(f"real + generated against real only: {_diff(b['vs_a'])} pp, {verdict(b['vs_a'])}")
        if d and "vs_c" in d:
            parts.append(
                f"real + classical + generated against classical alone: {_diff(d['vs_c'])} pp, {verdict(d['vs_c'])}"
            )
        rows = {c: table.get(f"{name}/{c}/{p.synthetic_per_class if c in 'bde' else 0}") for c in p.conditions}
        best = max((c for c in rows if rows[c]), key=lambda c: rows[c]["accuracy"]["mean"], default=None)
        if best:
            parts.append(f"best condition ({best}) {CONDITIONS[best].rstrip('.')}")
        if parts:
            lines.append(
                f"- **{name} per class** ({p.synthetic_per_class} generated per class): " + "; ".join(parts) + "."
            )
    return lines + [""]


def write_report(p: Profile, results: dict[str, Any], out: Path) -> None:
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
            f"Dataset `{p.dataset}`; budgets (real images per class) {', '.join(_budget_name(b) for b in p.budgets)}; "
            f"{p.seeds} seeds per cell, each seed drawing the subset, training the GAN on that subset only and seeding "
            f"the classifier. GAN: {p.gan_model}, about {p.gan_steps} steps of batch {p.gan_batch}; below "
            f"{p.gan_small_below}/class random affine on its real images {'on' if p.gan_augment_real else 'off'}, "
            f"DiffAugment {'+'.join(p.gan_diffaugment) or 'off'}. Classifier: the evaluator CNN at "
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
                " The tiny-budget GANs train on randomly affine-transformed real images, so their samples carry "
                "the kind of variation (c) adds: (b) against (a) measures generated data as a stand-in for "
                "augmentation, (d) against (c) what the GAN adds beyond it."
                if p.gan_augment_real
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
            r = table.get(f"{_budget_name(b)}/{c}/{p.synthetic_per_class if c in 'bde' else 0}")
            s = r["accuracy"] if r else None
            cells.append(
                f"{_pct(s['mean'])} ± {_pct(s['std'])} [{_pct(s['ci_low'])}, {_pct(s['ci_high'])}]" if s else "–"
            )
        lines.append(f"| {_budget_name(b)} | " + " | ".join(cells) + " |")
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
            f"| {_budget_name(r['budget'])} | ({r['condition']}) n={r['synthetic_per_class']} | "
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


# ---- driver -------------------------------------------------------------------------------------


def run(
    p: Profile,
    *,
    data_root: str | None,
    cache: Path,
    out: Path,
    device: str = "cpu",
    evaluator: str | None = None,
    full_gan: Path | None = None,
    report_only: bool = False,
    shard: tuple[int, int] = (0, 1),
    command: str = "",
    log=print,
) -> dict[str, Any]:
    """Run (or resume, or with ``report_only`` only collect) every cell of ``p``; write the report.

    ``shard=(i, n)`` trains only the (budget, seed) units whose running index is i mod n (the last shard
    also the CAS GAN and its classifiers), so n processes sharing ``cache`` split the work; each shard only
    collects the rest from the cache and writes no report. Once all have finished, an unsharded run finds
    everything cached (or trains what is missing) and writes the report.
    """
    index, shards = shard
    if not 0 <= index < shards:
        raise InputError(f"--shard {index}/{shards}: the index must be in 0..{shards - 1}")
    t0 = time.perf_counter()
    data = load_data(p, data_root)
    num_classes = len(data.classes)
    cache.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    cells, gans, honesty, grids, quality = [], {}, [], [], {}

    def cell(budget: int, seed: int, cond: str, amount: int, gan: Path | None, mine: bool) -> dict[str, Any] | None:
        return run_cell(
            p,
            data,
            cache,
            budget=budget,
            seed=seed,
            condition=cond,
            amount=amount,
            gan_run=gan,
            device=device,
            log=log,
            cached_only=report_only or not mine,
        )

    def gan_for(cfg: TrainConfig, what: str, mine: bool) -> Path | None:
        run_dir = gan_dir(cfg, cache)
        if (run_dir / "summary.json").is_file() or report_only or not mine:
            return run_dir if (run_dir / "summary.json").is_file() else None
        log(f"GAN {what} ({cfg.epochs} epochs)")
        return train_gan(cfg, cache)

    unit = 0
    for budget in p.budgets:
        n_images = len(data.train_labels) if budget == FULL else budget * num_classes
        for seed in range(p.seeds):
            mine = unit % shards == index
            unit += 1
            gan = None
            if set(p.conditions) & set("bde"):
                cfg = gan_config(p, budget, seed, n_images=n_images, data_root=data_root, device=device)
                gan = gan_for(cfg, f"budget={_budget_name(budget)} seed={seed}", mine)
                if gan is not None:
                    gans[gan.name] = gan
                    if (q := gan_quality(gan, evaluator)) is not None:
                        quality[gan.name] = q
                    if seed == 0:
                        shutil.copyfile(gan / "samples.png", out / f"samples_{_budget_name(budget)}.png")
                        grids.append(_budget_name(budget))
            for cond in p.conditions:
                if cond in "bde" and gan is None:
                    continue
                amounts = [p.synthetic_per_class if cond in "bde" else 0]
                if cond == "b" and budget in p.sweep_budgets:
                    amounts += list(p.sweep)
                cells += [c for a in amounts if (c := cell(budget, seed, cond, a, gan, mine)) is not None]

    cas = None
    want_cas = bool(p.cas_gan_steps) and "e" in p.conditions  # CAS is condition (e) with the whole-split GAN
    if want_cas:
        if full_gan is None:
            cfg = gan_config(
                p, FULL, 0, n_images=len(data.train_labels), data_root=data_root, device=device, steps=p.cas_gan_steps
            )
            full_gan = gan_for(cfg, "on the whole training split, for CAS", index == shards - 1)
        elif not (full_gan / "summary.json").is_file():
            raise InputError(f"--full-gan {full_gan} is not a finished ganaug run folder (no summary.json)")
    if want_cas and full_gan is not None:
        meta = json.loads((full_gan / "config.json").read_text())
        if meta["data"]["per_class"] is not None or meta["data"]["dataset"] != p.dataset:
            raise InputError(f"--full-gan {full_gan} was not trained on the whole {p.dataset} training split")
        cas_cells = [
            c
            for s in range(p.seeds)
            if (c := cell(FULL, s, "e", p.cas_per_class, full_gan, index == shards - 1)) is not None
        ]
        if cas_cells:
            steps = json.loads((full_gan / "summary.json").read_text())["steps"]
            cas = {
                "gan": str(full_gan),
                "gan_steps": steps,
                "synthetic_per_class": p.cas_per_class,
                "accuracy": summary([c["accuracy"] for c in cas_cells]),
                "values": [c["accuracy"] for c in cas_cells],
                "per_class": np.mean([c["per_class"] for c in cas_cells], axis=0).tolist(),
            }
            shutil.copyfile(full_gan / "samples.png", out / "samples_cas.png")
            grids.append("cas")
            if (q := gan_quality(full_gan, evaluator)) is not None:
                quality["cas:" + full_gan.name] = q

    no_selection = (
        f"test split used only for the final evaluation: no early stopping, no selection, fixed {p.clf_steps} steps"
    )
    honesty.append((no_selection, True))
    checks = [c["honesty"]["gan_saw_only_the_subset"] for c in cells if "gan_saw_only_the_subset" in c["honesty"]]
    honesty.append(
        (
            f"every GAN trained on exactly its classifier's subset (indices sha256 equal in {len(checks)} cells)",
            all(checks),
        )
    )
    overlap = _shared_images(data)
    honesty.append((f"no test image is byte-identical to a training image ({overlap} found)", overlap == 0))
    if cas:
        honesty.append(("CAS GAN trained on the whole training split (per_class None), never on the test split", True))

    results = {
        "profile": p.to_dict(),
        "command": command,
        "machine": describe(),
        "ganaug_version": __version__,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "wall_seconds": time.perf_counter() - t0,
        "cells": len(cells),
        "gans": len(gans),
        "table": aggregate(p, cells),
        "cas": cas,
        "gan_quality": quality,
        "honesty": honesty,
        "grids": grids,
        "raw_cells": cells,
    }
    if shards > 1:
        log(f"shard {index}/{shards} done; once every shard has finished, run again without --shard for the report")
        return results
    plots(p, results["table"], data.classes, out)
    write_report(p, results, out)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    return results


def _shared_images(data: Data) -> int:
    """How many test images also occur, byte for byte, in the training split."""
    train = {hashlib.sha1(x.numpy().tobytes()).digest() for x in data.train_images}
    test = ((data.test_images + 1) * 127.5).round().to(torch.uint8).squeeze(1)
    return sum(hashlib.sha1(x.numpy().tobytes()).digest() in train for x in test)


def resolve_profile(name: str, overrides: dict[str, Any] | None = None) -> Profile:
    if name not in PROFILES:
        raise InputError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return dataclasses.replace(PROFILES[name], **(overrides or {}))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=list(PROFILES), default="smoke")
    parser.add_argument("--name", default=None, help="results folder name under benchmarks/results  [default: profile]")
    parser.add_argument("--data-root", default=None, help="folder holding MNIST/raw (not needed for digits)")
    parser.add_argument("--cache", type=Path, default=None, help="cache folder  [default: runs/downstream/<name>]")
    parser.add_argument("--out", type=Path, default=None, help="results folder  [default: benchmarks/results/<name>]")
    parser.add_argument("--seeds", type=int, default=None, help="override the profile's number of seeds")
    parser.add_argument("--budgets", default=None, help="override the budgets, e.g. 10,50 (0 = full set)")
    parser.add_argument(
        "--conditions", default=None, help=f"override the conditions, e.g. a,b (from {''.join(CONDITIONS)})"
    )
    parser.add_argument(
        "--sweep", default=None, help="override the synthetic amounts swept for (b), e.g. 100,2000 ('' for none)"
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--evaluator", default=None, help="evaluator folder: adds each GAN's class fidelity")
    parser.add_argument(
        "--full-gan", type=Path, default=None, help="reuse this run (trained on the whole split) for CAS"
    )
    parser.add_argument("--report-only", action="store_true", help="rebuild the report from the cache; train nothing")
    parser.add_argument(
        "--filter",
        action="store_true",
        help="keep only generated images a classifier trained on the same real subset labels correctly",
    )
    parser.add_argument(
        "--shard",
        default="0/1",
        metavar="I/N",
        help="train only part I of N (0-based); run N processes on one cache, then once without --shard",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (1 avoids OpenMP stalls on a shared CPU)  [default: torch's]",
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    overrides: dict[str, Any] = {}
    if args.seeds is not None:
        overrides["seeds"] = args.seeds
    if args.filter:
        overrides["synthetic_filter"] = True
    if args.budgets is not None:
        overrides["budgets"] = tuple(int(b) for b in args.budgets.split(","))
    if args.conditions is not None:
        conditions = tuple(c.strip() for c in args.conditions.split(",") if c.strip())
        if not conditions or set(conditions) - set(CONDITIONS):
            raise InputError(f"--conditions {args.conditions!r}: give letters from {', '.join(CONDITIONS)}, e.g. a,b")
        overrides["conditions"] = conditions
    if args.sweep is not None:
        overrides["sweep"] = tuple(int(a) for a in args.sweep.split(",") if a.strip())
    try:
        shard = tuple(int(v) for v in args.shard.split("/"))
        assert len(shard) == 2 and shard[1] >= 1
    except (ValueError, AssertionError):
        raise InputError(f"--shard {args.shard!r}: write it as I/N, e.g. 0/2 and 1/2 for two processes") from None
    p = resolve_profile(args.profile, overrides)
    name = args.name or p.name
    cache = args.cache or Path("runs") / "downstream" / name
    out = args.out or ROOT / "results" / name
    command = "python benchmarks/downstream.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    results = run(
        p,
        data_root=args.data_root,
        cache=cache,
        out=out,
        device=args.device,
        evaluator=args.evaluator,
        full_gan=args.full_gan,
        report_only=args.report_only,
        shard=shard,
        command=command,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    if shard[1] == 1:
        print(f"wrote {out}/report.md ({results['cells']} classifier runs)")
    return results


if __name__ == "__main__":
    main()
