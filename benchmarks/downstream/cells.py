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

from ganaug import __version__, cas
from ganaug.cas import CASClassifier, predict, probabilities, test_accuracy
from ganaug.config import ModelConfig, TrainConfig
from ganaug.data import indices_hash, load_source, stratified_subset, to_model_range
from ganaug.errors import InputError
from ganaug.evaluator import EvaluatorNet
from ganaug.labels import smooth_labels
from ganaug.pseudo import FILE as PSEUDO_FILE
from ganaug.pseudo import PseudoLabels
from ganaug.recipe import LOW_BUDGET_SAVES, epochs_for_steps

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
    return TrainConfig(
        dataset=p.dataset,
        data_root=data_root,
        per_class=None if budget == FULL else budget,
        epochs=epochs,
        save_every=max(1, epochs // GAN_SAVES),
        batch_size=batch,
        seed=seed,
        diffaugment=p.gan_diffaugment if small else (),
        augment_real=(True if p.classical == "affine" else p.classical) if p.gan_augment_real and small else False,
        loss=p.gan_loss,
        ac_weight=p.gan_ac_weight,
        export_onnx=False,
        device=device,
        model=p.gan_model,
        log_every=max(1, min(50, steps // 10)),
    )


def architecture(model: ModelConfig) -> str:
    """Names and shapes of every G and D tensor: a changed architecture never reuses a cached GAN."""
    from ganaug.models import Discriminator, Generator

    return config_key(
        {
            k: list(v.shape)
            for net in (Generator(model), Discriminator(model))
            for k, v in ((f"{type(net).__name__}.{n}", t) for n, t in net.state_dict().items())
        }
    )


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


def gan_dir(config: TrainConfig, cache: Path) -> Path:
    """``cache/gan/<budget>_s<seed>_<hash>`` of the config and :func:`architecture` (not where it trains or
    its data folder)."""
    cfg = config.to_dict()
    cfg.pop("data_root")
    cfg.pop("device")
    # Options added after caches were made stay out of the key at their default, so those caches stay valid.
    for owner, name, default in _ADDED_LATER:
        d = cfg if owner is None else cfg[owner]
        if d.get(name) == default:
            d.pop(name)
    cfg["architecture"] = architecture(config.model)
    return cache / "gan" / f"{budget_name(config.per_class or FULL)}_s{config.seed}_{config_key(cfg)}"


def train_gan(config: TrainConfig, cache: Path, pseudo: PseudoLabels | None = None) -> Path:
    """Train (or resume, or reuse) the GAN of ``config`` in :func:`gan_dir`; returns its run folder.
    ``pseudo``: the pool's pseudo-labels for a ``config.pseudo_label`` GAN (see :mod:`.pool`)."""
    from ganaug.training import Trainer

    run = gan_dir(config, cache)
    if (run / "summary.json").is_file():
        return run
    if (run / "checkpoint.pt").is_file():
        Trainer.resume(run, progress=False).fit()
    else:
        Trainer.new(config, run, overwrite=True, progress=False, pseudo=pseudo).fit()
    return run


_INVERSIONS: dict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]] = {}


def invert(
    run: Path, images: torch.Tensor, labels: torch.Tensor, *, seed: int, steps: int = 300, restarts: int = 4
) -> tuple[torch.Tensor, torch.Tensor]:
    """The latents float [N, z_dim] that make the run's EMA generator reproduce ``images`` (float [N, 1, 28, 28]
    in [-1, 1]) for ``labels``, and their pixel MSEs [N]: per image, the best (lowest MSE) of ``restarts`` Adam
    descents (lr 0.05, ``steps`` steps) from seeded N(0, I) starts. Computed once per process for each
    (run, images, labels, seed, steps, restarts): the (b) and (d) cells of a GAN share it."""
    data = hashlib.sha256(images.numpy().tobytes() + labels.numpy().astype("<i8").tobytes()).hexdigest()
    key = (str(run), seed, steps, restarts, data)
    if key not in _INVERSIONS:
        _INVERSIONS[key] = _invert(run, images, labels, seed=seed, steps=steps, restarts=restarts)
    return _INVERSIONS[key]


def _invert(
    run: Path, images: torch.Tensor, labels: torch.Tensor, *, seed: int, steps: int, restarts: int
) -> tuple[torch.Tensor, torch.Tensor]:
    from ganaug.checkpoint import load_generator

    g, _ = load_generator(run)
    g.requires_grad_(False)
    n = len(labels)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        z = torch.randn(restarts * n, g.config.z_dim)
    z.requires_grad_(True)
    x, y = images.repeat(restarts, 1, 1, 1), labels.repeat(restarts)
    opt = torch.optim.Adam([z], lr=0.05)
    for _ in range(steps):
        loss = ((g(z, y) - x) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        err = ((g(z, y) - x) ** 2).flatten(1).mean(1).view(restarts, n)
    best = err.argmin(0)
    return z.detach().view(restarts, n, -1)[best, torch.arange(n)], err[best, torch.arange(n)]


def synthetic(
    run: Path,
    per_class: int,
    num_classes: int,
    *,
    seed: int,
    latent_scale: float = 1.0,
    shared_style: bool = False,
    latent_source: str = "prior",
    far_oversample: int = 2,
    subset: tuple[torch.Tensor, torch.Tensor] | None = None,
    info: dict[str, Any] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` generated images per class (class by class) from the run's EMA generator, latent seed
    ``seed``: image i is ``G(latent_scale * latents(seed, i, i + 1), labels[i])``, or with ``shared_style``
    image j of every class gets latent j (the same style drawn for each class).

    ``latent_source`` ``mix`` or ``far`` (see :class:`.profiles.Profile`) inverts ``subset`` (the GAN's own
    training images and labels) first: ``mix`` draws, per image, two of its class's inverted latents and a
    weight ``a ~ U(0, 1)`` (numpy, seeded by ``seed``) and uses ``((1 - a) z1 + a z2) / sqrt((1 - a)^2 + a^2)``
    (the variance of a prior latent kept); ``far`` draws ``far_oversample * per_class`` prior latents per
    class and keeps the ``per_class`` farthest from the class's inverted latents, in draw order. ``info``, when
    given, gets ``inversion_mse``: the mean pixel MSE of the inverted subset's reconstructions."""
    from ganaug.metrics import generate, open_generator
    from ganaug.sampling import labels_from_counts, latents

    labels = labels_from_counts([per_class] * num_classes)
    generator = open_generator(run, backend="pytorch")
    z = None
    if latent_source != "prior":
        if subset is None:
            raise InputError(f"latent_source {latent_source!r} needs the GAN's training subset")
        inverted, err = invert(run, *subset, seed=seed)
        if info is not None:
            info["inversion_mse"] = float(err.mean())
        rows = []
        for c in range(num_classes):
            bank = inverted[subset[1] == c]
            if latent_source == "mix":
                rng = np.random.default_rng([seed, c])
                pairs = np.stack([rng.choice(len(bank), 2, replace=False) for _ in range(per_class)])
                a = torch.from_numpy(rng.uniform(size=(per_class, 1))).float()
                rows.append(((1 - a) * bank[pairs[:, 0]] + a * bank[pairs[:, 1]]) / torch.sqrt((1 - a) ** 2 + a**2))
            else:
                n = far_oversample * per_class
                cand = torch.from_numpy(latents(seed, c * n, (c + 1) * n, generator.z_dim))
                far = torch.cdist(cand, bank).min(1).values
                keep = torch.sort(torch.topk(far, per_class).indices).values
                rows.append(cand[keep])
        z = (torch.cat(rows) * latent_scale).numpy().astype(np.float32)
    elif latent_scale != 1.0 or shared_style:
        z = latents(seed, 0, per_class if shared_style else len(labels), generator.z_dim) * latent_scale
        z = np.tile(z, (num_classes, 1)) if shared_style else z
    images = generate(generator, labels, seed=seed, z=z)
    return images, torch.from_numpy(labels)


_DEFORMERS: dict[Path, Any] = {}


def deform_config(p: Profile, seed: int):
    """The :class:`.deform.DeformConfig` of the profile's deformer for ``seed``."""
    from .deform import DeformConfig

    return DeformConfig(seed=seed, steps=p.deform_steps, diversity=p.deform_diversity)


def deformer(
    p: Profile, subset: tuple[torch.Tensor, torch.Tensor], *, budget: int, seed: int, cache: Path, device: str, log
):
    """The learned deformation of the seed's subset (:func:`.deform.train_deformer`, seeded by ``seed``),
    trained once and cached in ``cache/deform/<budget>_s<seed>_<hash>.safetensors`` (and per process)."""
    from safetensors.torch import load_file, save

    from ganaug.outputs import write_bytes_whole

    from .deform import FieldNet, train_deformer

    config = deform_config(p, seed)
    images, labels = subset
    key = config_key({"dataset": p.dataset, "budget": budget, "labels": labels.tolist(), **config.to_dict()})
    path = cache / "deform" / f"{budget_name(budget)}_s{seed}_{key}.safetensors"
    if path not in _DEFORMERS:
        if path.is_file():
            field = FieldNet(config)
            field.load_state_dict(load_file(path))
            field = field.to(device).eval()
        else:
            log(f"deformer budget={budget_name(budget)} seed={seed}")
            field = train_deformer(images, labels, config, device=device)
            cache_folder(path.parent)
            # Whole or not at all; a full disk is one line and leaves no partial file.
            write_bytes_whole(path, save({k: v.contiguous().cpu() for k, v in field.state_dict().items()}))
        _DEFORMERS[path] = field
    return _DEFORMERS[path]


def deformed(
    p: Profile,
    subset: tuple[torch.Tensor, torch.Tensor],
    per_class: int,
    *,
    budget: int,
    seed: int,
    cache: Path,
    device: str,
    log,
    info: dict[str, Any],
) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` items per class made by warping the subset's images (``p.synthetic_source`` ``deform``:
    the learned fields; ``elastic``: random smooth fields of the learned fields' RMS displacement), each image
    warped equally often; labels are the source images'. ``info`` gets ``deform_rms_px``."""
    from .deform import deform, field_rms, random_fields, warp

    images, labels = subset
    if budget == FULL:
        raise InputError("synthetic_source deform/elastic is for budgets of a few images per class, not the full split")
    field = deformer(p, subset, budget=budget, seed=seed, cache=cache, device=device, log=log)
    info["deform_rms_px"] = rms = field_rms(field, images, seed=seed)
    per_image = -(-per_class // budget)
    if p.synthetic_source == "deform":
        x, y = deform(field, images, labels, per_image, seed=seed)
    else:
        src, y = images.repeat_interleave(per_image, 0), labels.repeat_interleave(per_image, 0)
        x = warp(src, random_fields(len(src), tuple(src.shape[-2:]), field.config, seed=seed, rms=rms))
    take = torch.cat([torch.nonzero(y == c).squeeze(1)[:per_class] for c in range(int(labels.max()) + 1)])
    return x[take], y[take]


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
    """The fixed small CNN of :mod:`ganaug.cas` at the profile's settings, ``clf_steps`` Adam steps, no selection
    (after ``pretrain_steps`` on ``fake`` alone when the profile asks for them and there is ``fake``)."""
    sources = [s for s in (real, fake) if s is not None]
    if any(len(y) == 0 for _, y in sources):
        raise InputError(
            f"condition ({condition}) has an empty training source (did the filter reject every "
            "generated image?); train the GAN longer or run without --filter"
        )
    classical = p.classical if condition in CLASSICAL else False
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
    key = (p.dataset, p.classical, p.clf_steps, p.clf_batch, p.clf_lr, p.clf_width, budget, seed, device)
    if key not in _JUDGES:
        _JUDGES[key] = train_classifier(
            p, "c", real=subset, fake=None, seed=seed, num_classes=num_classes, device=device
        )
    return _JUDGES[key]


#: Classifier-side levers (Profile fields) added after cells were cached, with their defaults.
_LEVERS_ADDED_LATER = (
    ("synthetic_smoothing", 0.0),
    ("real_fraction_end", None),
    ("latent_source", "prior"),
    ("far_oversample", 2),
    ("synthetic_source", "gan"),
    ("deform_steps", 2000),
    ("deform_diversity", 1.0),
)


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
    if condition in POOLED:  # the pool protocol: its GAN's pseudo-labels join the real subset
        cfg["pool_threshold"] = p.pool_threshold
    if condition in GENERATED:  # the levers of issue 12, in the key only where they apply
        cfg["levers"] = {
            "synthetic_labels": p.synthetic_labels,
            "synthetic_weight": p.synthetic_weight,
            "synthetic_classical": p.synthetic_classical,
            "pretrain_steps": p.pretrain_steps,
            "latent_scale": p.latent_scale,
            "shared_style": p.shared_style,
        }
        # Levers added later enter the key only when set, so the cells cached before them stay valid.
        for name, default in _LEVERS_ADDED_LATER:
            if getattr(p, name) != default:
                cfg["levers"][name] = getattr(p, name)
        if p.synthetic_source != "gan":  # the deformer's whole config (it is trained per cell's seed)
            cfg["levers"]["deformer"] = deform_config(p, seed).to_dict()
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
        sample: dict[str, Any] = {
            "seed": seed,
            "latent_scale": p.latent_scale,
            "shared_style": p.shared_style,
            "latent_source": p.latent_source,
            "far_oversample": p.far_oversample,
            "subset": subset,
            "info": extra,
        }
        if p.synthetic_filter:
            net = judge(p, subset, budget=budget, seed=seed, num_classes=num_classes, device=device)
            x, y = synthetic(gan_run, amount * p.filter_oversample, num_classes, **sample)
            keep = predict(net, x, device) == y
            take = [torch.nonzero(keep & (y == c)).squeeze(1)[:amount] for c in range(num_classes)]
            fake = (x[torch.cat(take)], y[torch.cat(take)])
            extra["synthetic_kept_per_class"] = [len(t) for t in take]
        elif p.synthetic_source != "gan":
            fake = deformed(
                p, subset, amount, budget=budget, seed=seed, cache=cache, device=device, log=log, info=extra
            )
        else:
            fake = synthetic(gan_run, amount, num_classes, **sample)
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
