"""The lab's levers on which items are generated: latents found by inverting the GAN, and elastic deformation.

:func:`inverted_latents` gives the GAN latents of its own training images (``latent_source`` ``mix`` or
``far``, found by :func:`invert`); :func:`synthetic` samples with them; :func:`deformed` makes items by warping the
subset's own images (:mod:`.deform`) instead of asking the GAN. :class:`.profiles.Profile` calls them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganaug.downstream import cells
from ganaug.downstream.cells import cache_folder
from ganaug.errors import InputError

from .profiles import FULL, Profile, budget_name, config_key

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
    from ganaug.train.checkpoint import load_generator

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
    ``seed``, as :func:`ganaug.downstream.cells.synthetic`; with ``latent_source`` ``mix`` or ``far`` the
    latents are :func:`inverted_latents`'."""
    z = None
    if latent_source != "prior":
        z = inverted_latents(
            run,
            per_class,
            num_classes,
            seed=seed,
            latent_scale=latent_scale,
            latent_source=latent_source,
            far_oversample=far_oversample,
            subset=subset,
            info=info,
        )
    return cells.synthetic(
        run, per_class, num_classes, seed=seed, latent_scale=latent_scale, shared_style=shared_style, z=z
    )


def inverted_latents(
    run: Path,
    per_class: int,
    num_classes: int,
    *,
    seed: int,
    latent_scale: float,
    latent_source: str,
    far_oversample: int,
    subset: tuple[torch.Tensor, torch.Tensor] | None,
    info: dict[str, Any] | None,
) -> np.ndarray:
    """Latents float32 [num_classes * per_class, z_dim] (class by class, times ``latent_scale``) made from the
    GAN's own training images: it inverts ``subset`` (their images and labels) first (:func:`invert`). ``mix``
    draws, per image, two of its class's inverted latents and a weight ``a ~ U(0, 1)`` (numpy, seeded by
    ``seed``) and uses ``((1 - a) z1 + a z2) / sqrt((1 - a)^2 + a^2)`` (the variance of a prior latent kept);
    ``far`` draws ``far_oversample * per_class`` prior latents per class and keeps the ``per_class`` farthest
    from the class's inverted latents, in draw order. ``info``, when given, gets ``inversion_mse``: the mean
    pixel MSE of the inverted subset's reconstructions."""
    from ganaug.sample.generators import open_generator
    from ganaug.sample.latents import latents

    if subset is None:
        raise InputError(f"latent_source {latent_source!r} needs the GAN's training subset")
    z_dim = open_generator(run, backend="pytorch").z_dim
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
            cand = torch.from_numpy(latents(seed, c * n, (c + 1) * n, z_dim))
            far = torch.cdist(cand, bank).min(1).values
            keep = torch.sort(torch.topk(far, per_class).indices).values
            rows.append(cand[keep])
    return (torch.cat(rows) * latent_scale).numpy().astype(np.float32)


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
