"""Image augmentations on float [N, C, H, W] tensors in [-1, 1], each drawing from a ``torch.Generator``.

The label-preserving "classical" augmentations, :data:`CLASSICAL`: :func:`random_affine` (small rotation,
shift, scale; what a practitioner uses for digits) and :func:`shift_flip` (shifts of up to 2 pixels and
horizontal flips; what a practitioner uses for clothes). They serve the evaluator, the downstream classifiers
and, with ``TrainConfig.augment_real``, the real images a GAN trains on. :func:`classical_for` names the one
for a dataset.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def translation(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size, filling with background (-1)."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = torch.randint(-sh, sh + 1, (n, 1, 1), generator=gen, device=x.device)
    ty = torch.randint(-sw, sw + 1, (n, 1, 1), generator=gen, device=x.device)
    gi, gx, gy = torch.meshgrid(
        torch.arange(n, device=x.device),
        torch.arange(h, device=x.device),
        torch.arange(w, device=x.device),
        indexing="ij",
    )
    gx = torch.clamp(gx + tx + 1, 0, h + 1)
    gy = torch.clamp(gy + ty + 1, 0, w + 1)
    padded = F.pad(x, (1, 1, 1, 1), value=-1.0)
    return padded.permute(0, 2, 3, 1)[gi, gx, gy].permute(0, 3, 1, 2)


def random_affine(
    x: torch.Tensor,
    gen: torch.Generator,
    *,
    degrees: float = 10.0,
    translate: float = 0.1,
    scale: tuple[float, float] = (0.9, 1.1),
) -> torch.Tensor:
    """Per-image random rotation, translation and scale of images float [N, C, H, W] in [-1, 1].

    Each image gets its own draw from ``gen`` (torchvision's ``RandomAffine`` draws one per call, i.e.
    one per batch). Uncovered pixels become background (-1).
    """
    n = x.size(0)
    u = torch.rand(n, 4, generator=gen, device=x.device)
    angle = (u[:, 0] * 2 - 1) * math.radians(degrees)
    s = scale[0] + u[:, 1] * (scale[1] - scale[0])
    t = (u[:, 2:] * 2 - 1) * translate * 2  # affine_grid coordinates span [-1, 1], i.e. 2 per image width
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, t[:, 0]], 1), torch.stack([sin, cos, t[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


def shift_flip(x: torch.Tensor, gen: torch.Generator, *, shift: int = 2, flip: bool = True) -> torch.Tensor:
    """Per-image random shift by up to ``shift`` pixels each way (the vacated border becomes background -1,
    as ``RandomCrop(28, padding=shift)`` on a black background) and, with ``flip``, a horizontal flip with
    probability 1/2, for images float [N, C, H, W] in [-1, 1]."""
    x = translation(x, gen, ratio=shift / x.size(-2))
    if flip:
        flipped = torch.rand(x.size(0), 1, 1, 1, generator=gen, device=x.device) < 0.5
        x = torch.where(flipped, x.flip(-1), x)
    return x


#: The classical (label-preserving, hand-set) augmentations by name.
CLASSICAL = {"affine": random_affine, "shift-flip": shift_flip}


def classical_for(dataset: str) -> str:
    """The classical augmentation a practitioner would pick for ``dataset``: flips and small shifts for clothes
    (``fashion-mnist``; a flipped shirt is a shirt, a rotated one is rarer), random affine for digits and for
    anything else (a flipped digit may not be a digit)."""
    return "shift-flip" if dataset == "fashion-mnist" else "affine"


def classical(x: torch.Tensor, gen: torch.Generator, name: str | bool = "affine") -> torch.Tensor:
    """Apply the classical augmentation ``name`` (a key of :data:`CLASSICAL`; ``True`` means ``"affine"``)."""
    return CLASSICAL["affine" if name is True else name](x, gen)
