"""The downstream benchmark's cells: one GAN per (budget, seed) and one classifier per condition, each cached.

A GAN is a ganaug run folder under ``cache/gan/``; a classifier (a *cell*) is a JSON file under ``cache/cells/``
holding its config and results. Both are keyed by a hash of their config, so a changed profile never reuses
a stale result and an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganaug import __version__
from ganaug.classify.classifier import CASClassifier, predict, probabilities, test_accuracy
from ganaug.classify.evaluator import EvaluatorNet
from ganaug.config import ModelConfig, TrainConfig
from ganaug.data.labels import smooth_labels
from ganaug.data.sources import indices_hash, load_source, stratified_subset, to_model_range
from ganaug.errors import InputError
from ganaug.eval import cas
from ganaug.train.pseudo import FILE as PSEUDO_FILE
from ganaug.train.pseudo import PseudoLabels
from ganaug.train.recipe import LOW_BUDGET_SAVES, epochs_for_steps

from .profiles import CLASSICAL, FULL, GENERATED, MIXED, POOLED, Profile, budget_name, config_key


def cache_folder(folder: Path) -> Path:
    """Make ``folder`` (a part of the cache) if missing; a file in its place is a one-line error, left as it is."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InputError(f"--cache: {folder} is a file, not a folder; pick another --cache") from None
    return folder


# ---- GANs ---------------------------------------------------------------------------------------


GAN_SAVES = LOW_BUDGET_SAVES  # grids + checkpoints per GAN run: at 10 images per class an epoch is one step


def gan_config(
    p: Profile, budget: int, seed: int, *, n_images: int, data_root: str | None, device: str, steps: int | None = None
) -> TrainConfig:
    """The GAN of one (budget, seed): trained only on the seed's stratified subset, for about ``gan_steps``."""
    batch = min(p.gan_batch, n_images)
    steps = steps or p.gan_steps
    small = budget != FULL and budget < p.gan_small_below
    epochs = epochs_for_steps(steps, n_images, batch)
    op = p.classical_op
    return TrainConfig(
        dataset=p.dataset,
        data_root=data_root,
        per_class=None if budget == FULL else budget,
        epochs=epochs,
        save_every=max(1, epochs // GAN_SAVES),
        batch_size=batch,
        seed=seed,
        # affine is spelled True: the GANs' cache keys predate the name
        augment_real=(True if op == "affine" else op) if p.gan_augment_real and small and op else False,
        loss=p.gan_loss,
        export_onnx=False,
        device=device,
        model=p.gan_model,
        log_every=max(1, min(50, steps // 10)),
    )


def architecture(model: ModelConfig) -> str:
    """Names and shapes of every G and D tensor: a changed architecture never reuses a cached GAN."""
    from ganaug.models.dcgan import Discriminator, Generator

    return config_key(
        {
            k: list(v.shape)
            for net in (Generator(model), Discriminator(model))
            for k, v in ((f"{type(net).__name__}.{n}", t) for n, t in net.state_dict().items())
        }
    )


#: Options added after caches were made, with their defaults: out of the key at their default.
_ADDED_LATER = (
    (None, "ac_weight", 0.0),
    (None, "mode_seeking", 0.0),
    (None, "r2_gamma", 0.0),
    ("model", "aux_classifier", False),
    ("model", "cond_bn", False),
    ("model", "center_of_mass", False),
    ("model", "d_coords", False),
    ("model", "d_pack", 1),
    ("model", "proj_weight", 1.0),
    (None, "sample_center_of_mass", False),
    (None, "pseudo_label", 0.0),
    (None, "unlabelled", None),
    (None, "coverage_weight", 0.0),
    (None, "coverage_bank", 1024),
    (None, "coverage_every", 1),
    (None, "flatten_density", 0.0),
    (None, "density_clip", 0.9),
    (None, "preset", None),
    (None, "sampling", {}),
    (None, "steps", None),
)
#: Options in the key since the first caches that ganaug has dropped since, with the value every cached GAN had:
#: put back when absent, so those caches stay valid.
_DROPPED_SINCE = (
    (None, "lr_decay", "none"),
    (None, "select_by", "none"),
    (None, "holdout", 0),
    (None, "select_evaluator", None),
    (None, "diffaugment", []),
    ("model", "spectral_norm", False),
    ("model", "upsample", "subpixel"),
    ("model", "mbstd", False),
    ("model", "g_depth", 0),
    ("model", "d_depth", 0),
)
#: Options renamed since the first caches: the key keeps the old name.
_RENAMED_SINCE = {"d_label_smoothing": "label_smoothing"}


def gan_key(config: TrainConfig, data_id: str | None = None) -> dict[str, Any]:
    """What names a GAN in the cache: its config as the first caches wrote it (not where it trains, its data
    folder or the device), its :func:`architecture`, and ``data_id`` (an image folder's contents) when given."""
    cfg = config.to_dict()
    cfg.pop("data_root")
    cfg.pop("device")
    for new, old in _RENAMED_SINCE.items():
        if new in cfg:
            cfg[old] = cfg.pop(new)
    # Options added after caches were made stay out of the key at their default, so those caches stay valid.
    for owner, name, default in _ADDED_LATER:
        d = cfg if owner is None else cfg[owner]
        if name in d and d[name] == default:
            d.pop(name)
    for owner, name, value in _DROPPED_SINCE:
        d = cfg if owner is None else cfg[owner]
        d.setdefault(name, value)
    cfg["architecture"] = architecture(config.model)
    if data_id is not None:
        cfg["data_sha256"] = data_id
    return cfg


def gan_dir(config: TrainConfig, cache: Path, data_id: str | None = None) -> Path:
    """``cache/gan/<budget>_s<seed>_<hash>`` of :func:`gan_key`."""
    key = config_key(gan_key(config, data_id))
    return cache / "gan" / f"{budget_name(config.per_class or FULL)}_s{config.seed}_{key}"


def train_gan(config: TrainConfig, cache: Path, pseudo: PseudoLabels | None = None, data_id: str | None = None) -> Path:
    """Train (or resume, or reuse) the GAN of ``config`` in :func:`gan_dir`; returns its run folder.
    ``pseudo``: the pool's pseudo-labels for a ``config.pseudo_label`` GAN (see :mod:`.pool`)."""
    from ganaug.train.trainer import Trainer

    run = gan_dir(config, cache, data_id)
    if (run / "summary.json").is_file():
        return run
    if (run / "checkpoint.pt").is_file():
        Trainer.resume(run, progress=False).fit()
    else:
        Trainer.new(config, run, overwrite=True, progress=False, pseudo=pseudo).fit()
    return run


def synthetic(
    run: Path,
    per_class: int,
    num_classes: int,
    *,
    seed: int,
    latent_scale: float = 1.0,
    shared_style: bool = False,
    z: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` generated images per class (class by class) from the run's EMA generator, latent seed
    ``seed``: image i is ``G(latent_scale * latents(seed, i, i + 1), labels[i])``, or with ``shared_style``
    image j of every class gets latent j (the same style drawn for each class). ``z``: these latents instead."""
    from ganaug.data.labels import labels_from_counts
    from ganaug.sample.generators import generate, open_generator
    from ganaug.sample.latents import latents

    labels = labels_from_counts([per_class] * num_classes)
    generator = open_generator(run, backend="pytorch")
    if z is None and (latent_scale != 1.0 or shared_style):
        z = latents(seed, 0, per_class if shared_style else len(labels), generator.z_dim) * latent_scale
        z = np.tile(z, (num_classes, 1)) if shared_style else z
    images = generate(generator, labels, seed=seed, z=z)
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
    """The fixed small CNN of :mod:`ganaug.eval.cas` at the profile's settings, ``clf_steps`` Adam steps, no selection
    (after ``pretrain_steps`` on ``fake`` alone when the profile asks for them and there is ``fake``)."""
    sources = [s for s in (real, fake) if s is not None]
    if any(len(y) == 0 for _, y in sources):
        raise InputError(
            f"condition ({condition}) has an empty training source (did the filter reject every "
            "generated image?); train the GAN longer or run without --filter"
        )
    classical = p.classical_op if condition in CLASSICAL else False
    settings = {"num_classes": num_classes, "seed": seed, "device": device}
    classifier = CASClassifier(steps=p.clf_steps, batch=p.clf_batch, lr=p.clf_lr, width=p.clf_width)
    if p.pretrain_steps and real is not None and fake is not None:
        pre = CASClassifier(steps=p.pretrain_steps, batch=p.clf_batch, lr=p.clf_lr, width=p.clf_width)
        net = cas.train_classifier(
            [fake], classifier=pre, classical=classical if p.synthetic_classical else False, **settings
        )
        return cas.train_classifier([real], classifier=classifier, classical=classical, init=net, **settings)
    if real is not None and fake is not None and classical and not p.synthetic_classical:
        classical_on: tuple[bool, ...] | None = (True, False)
    else:
        classical_on = None
    return cas.train_classifier(
        sources,
        classifier=classifier,
        real_fraction=p.real_fraction,
        real_fraction_end=p.real_fraction_end,
        classical=classical,
        classical_on=classical_on,
        weights=[1.0, p.synthetic_weight] if len(sources) == 2 else None,
        **settings,
    )


_JUDGES: dict[tuple[Any, ...], EvaluatorNet] = {}


def judge(
    p: Profile, subset: tuple[torch.Tensor, torch.Tensor], *, budget: int, seed: int, num_classes: int, device: str
) -> EvaluatorNet:
    """The filter's judge: the (c) classifier of this (budget, seed), trained once per process for every cell."""
    # Only what the (c) classifier depends on: probes that differ in how generated data is used share it.
    data = hashlib.sha256(subset[0].numpy().tobytes()).hexdigest()
    key = (p.dataset, p.classical, p.clf_steps, p.clf_batch, p.clf_lr, p.clf_width, budget, seed, device, data)
    if key not in _JUDGES:
        _JUDGES[key] = train_classifier(
            p, "c", real=subset, fake=None, seed=seed, num_classes=num_classes, device=device
        )
    return _JUDGES[key]


# ---- the grid of cells --------------------------------------------------------------------------


@dataclass
class Data:
    """A dataset's two splits as the benchmark uses them. ``identity``: the sha256 of an image folder's decoded
    images, labels and class names (it enters every cache key, so another folder never reuses a result); None
    for the built-in datasets, whose keys predate it."""

    train_images: torch.Tensor  # uint8 [N, 28, 28]
    train_labels: torch.Tensor
    test_images: torch.Tensor  # float [M, 1, 28, 28] in [-1, 1]; used for the final evaluation only
    test_labels: torch.Tensor
    classes: list[str]
    identity: str | None = None


def load_data(p: Profile, data_root: str | None) -> Data:
    """Both splits of ``p.dataset``. An image folder is checked first (:func:`.folders.check_image_folder`:
    its layout, its classes and that every class holds the largest budget), then read as ``ganaug train
    --dataset imagefolder`` reads it (grayscale, 28x28)."""
    if p.dataset == "imagefolder":
        from .folders import check_image_folder

        check_image_folder(data_root, p.budgets)
    train = load_source(p.dataset, root=data_root, split="train")
    test = load_source(p.dataset, root=data_root, split="test")
    identity = None
    if p.dataset == "imagefolder":
        from .folders import data_identity

        identity = data_identity(train, test)
    return Data(train.images, train.labels, to_model_range(test.images), test.labels, train.classes, identity)


def real_subset(data: Data, budget: int, seed: int) -> tuple[tuple[torch.Tensor, torch.Tensor], np.ndarray]:
    """The seed's stratified subset (what its GAN trains on) as float images in [-1, 1] and labels, and its indices."""
    idx = (
        np.arange(len(data.train_labels))
        if budget == FULL
        else stratified_subset(data.train_labels.numpy(), budget, seed=seed)
    )
    t = torch.from_numpy(idx)
    return (to_model_range(data.train_images[t]), data.train_labels[t]), idx


def cell_config(
    p: Profile, data: Data, *, budget: int, seed: int, condition: str, amount: int, gan_run: Path | None
) -> dict[str, Any]:
    """What a classifier's result depends on: its cache key (and the head of its cached JSON)."""
    cfg = {
        "profile": p.name,
        "dataset": p.dataset,
        "budget": budget,
        "seed": seed,
        "condition": condition,
        "synthetic_per_class": amount if condition in GENERATED else 0,
        "clf_steps": p.clf_steps,
        "clf_batch": p.clf_batch,
        "clf_lr": p.clf_lr,
        "clf_width": p.clf_width,
        "real_fraction": p.real_fraction if condition in MIXED else None,  # mixed batches only
        "gan": gan_run.name if gan_run is not None and condition in GENERATED + POOLED else None,
        "synthetic_filter": p.synthetic_filter and condition in GENERATED,
        "classical": p.classical if condition in CLASSICAL else None,
    }
    if data.identity is not None:  # an image folder: its contents (the built-in datasets' keys predate this)
        cfg["data_sha256"] = data.identity
    if condition in POOLED:  # the pool protocol: its GAN's pseudo-labels join the real subset
        cfg["pool_threshold"] = p.pool_threshold
    if condition in GENERATED:  # how the generated items are used, in the key only where they apply
        cfg["levers"] = {
            "synthetic_labels": p.synthetic_labels,
            "synthetic_weight": p.synthetic_weight,
            "synthetic_classical": p.synthetic_classical,
            "pretrain_steps": p.pretrain_steps,
            "latent_scale": p.latent_scale,
            "shared_style": p.shared_style,
            **p.key_levers(seed),  # levers added later enter the key only when set: older cells stay valid
        }
    return cfg


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
    cfg = cell_config(p, data, budget=budget, seed=seed, condition=condition, amount=amount, gan_run=gan_run)
    path = cache / "cells" / f"{config_key(cfg)}.json"
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
    if condition in POOLED:
        labelled = json.loads((gan_run / "config.json").read_text())["data"]["labelled_indices_sha256"]
        honesty["gan_labels_only_the_subset"] = labelled == honesty["subset_sha256"]
        pl = PseudoLabels.load(gan_run / PSEUDO_FILE)
        pool = to_model_range(data.train_images[torch.from_numpy(pl.indices)])
        real = (torch.cat([subset[0], pool]), torch.cat([subset[1], torch.from_numpy(pl.labels)]))
        # A diagnostic for the report; the true labels of the pool never reach a classifier or the GAN.
        extra["pseudo_labelled"] = len(pl.indices)
        truth = data.train_labels[torch.from_numpy(pl.indices)].numpy()
        extra["pseudo_label_accuracy"] = float((truth == pl.labels).mean()) if len(truth) else None
    elif condition in "bde":
        gan_indices = np.load(gan_run / "indices.npy")
        honesty["gan_subset_sha256"] = indices_hash(gan_indices)
        if real is not None:
            honesty["gan_saw_only_the_subset"] = honesty["gan_subset_sha256"] == honesty["subset_sha256"]
    if condition in GENERATED:

        def gan_items(per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
            z = p.latents(gan_run, per_class, num_classes, seed=seed, subset=subset, info=extra)
            settings = {"latent_scale": p.latent_scale, "shared_style": p.shared_style}
            return synthetic(gan_run, per_class, num_classes, seed=seed, z=z, **settings)

        if p.synthetic_filter:
            net = judge(p, subset, budget=budget, seed=seed, num_classes=num_classes, device=device)
            x, y = gan_items(amount * p.filter_oversample)
            keep = predict(net, x, device) == y
            take = [torch.nonzero(keep & (y == c)).squeeze(1)[:amount] for c in range(num_classes)]
            fake = (x[torch.cat(take)], y[torch.cat(take)])
            extra["synthetic_kept_per_class"] = [len(t) for t in take]
        else:
            fake = p.other_items(
                subset, amount, budget=budget, seed=seed, cache=cache, device=device, log=log, info=extra
            )
            if fake is None:
                fake = gan_items(amount)
        if p.synthetic_labels == "soft":
            net = judge(p, subset, budget=budget, seed=seed, num_classes=num_classes, device=device)
            hard, fake = fake[1], (fake[0], probabilities(net, fake[0], device))
            extra["synthetic_label_agreement"] = float((fake[1].argmax(1) == hard).float().mean())
        elif p.synthetic_smoothing:
            fake = (fake[0], smooth_labels(fake[1], num_classes, p.synthetic_smoothing))
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
    cache_folder(path.parent)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, path)
    log(
        f"  cell budget={budget_name(budget)} seed={seed} {condition} n={cfg['synthetic_per_class']}: "
        f"{acc:.4f} ({result['seconds']:.0f} s)"
    )
    return result


def gan_quality(run: Path, evaluator_dir: str | None, per_class: int = 100) -> dict[str, Any] | None:
    """Class fidelity of a GAN (from :mod:`ganaug.eval.metrics`) when an evaluator is given; cached in the run folder."""
    if evaluator_dir is None:
        return None
    path = run / "fidelity.json"
    if path.is_file():
        return json.loads(path.read_text())
    from ganaug.classify.evaluator import load_evaluator
    from ganaug.data.labels import labels_from_counts
    from ganaug.eval.metrics import class_fidelity
    from ganaug.sample.generators import generate, open_generator

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
