"""Learned elastic deformation: new images of a class made by warping its real images with smooth fields that a
small network learns from the data, instead of hand-set ones (issue 12, "variety beyond the affine family").

The field network ``F(x, z)`` turns a real image ``x`` and noise ``z`` into a displacement field, coarse
(``grid`` x ``grid``) and bilinearly upsampled so it stays smooth, bounded by ``max_shift`` pixels through a
tanh. It is trained adversarially on *pairs*, as in DAGAN (Antoniou et al., 2017): the critic sees two images
of one class, either two different real ones or a real one and its warp, and scores whether the pair is real.
The identity warp is therefore no answer (a real pair is never one image twice): ``F`` has to move ``x`` the
way the class's own images differ from each other, within what a smooth warp can do. A warp keeps the image's
strokes and so its label; it cannot add strokes or change their thickness. Each image is warped twice per
step with two noises, and MSGAN's mode-seeking term (Mao et al., 2019) rewards the two warps for differing: a
conditional generator otherwise learns one warp per image and ignores its noise.

Resampling blurs a little; the second image of a real pair is resampled too (at a random constant sub-pixel
shift), so blur is no tell for the critic. :func:`random_fields` draws the hand-set counterpart (smooth
random fields of the same grid and bound) for controls.

Contracts: images float [N, 1, H, W] in [-1, 1] with background -1; fields float [N, 2, H, W] in pixels
(x then y displacement); labels int64 [N].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganaug.errors import InputError


@dataclass(frozen=True)
class DeformConfig:
    """What a deformer is trained with. ``grid``: the field's resolution before upsampling (smaller is
    smoother); ``max_shift``: the largest displacement in pixels; ``steps``/``batch``/``lr``: Adam on both
    networks (betas 0, 0.9; hinge loss, spectral norm in the critic); ``diversity``: the weight of MSGAN's
    mode-seeking term between two warps of one image (without it ``F`` learns one warp per image and ignores
    ``z``); ``seed`` fixes initialisation and draws."""

    steps: int = 2000
    batch: int = 64
    z_dim: int = 16
    width: int = 32
    grid: int = 4
    max_shift: float = 3.0
    lr: float = 2e-4
    diversity: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "z_dim", "width", "grid"):
            if getattr(self, name) < 1:
                raise InputError(f"DeformConfig.{name} {getattr(self, name)}: give a positive integer")
        if self.diversity < 0:
            raise InputError(f"DeformConfig.diversity {self.diversity}: give a weight >= 0")
        if not self.max_shift > 0:
            raise InputError(f"DeformConfig.max_shift {self.max_shift}: give a positive number of pixels")

    def to_dict(self) -> dict:
        return asdict(self)


def same_label_pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index pairs (a, b), int64 [P] each, of distinct items with the same label: the batch sorted by label
    (stably), neighbours 2k and 2k + 1 paired where their labels agree. P is 0 when no label repeats."""
    order = torch.argsort(labels, stable=True)
    n = order.numel() // 2 * 2
    a, b = order[0:n:2], order[1:n:2]
    keep = labels[a] == labels[b]
    return a[keep], b[keep]


def mode_seeking_term(fake: torch.Tensor, labels: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """MSGAN's mode-seeking term (Mao et al., CVPR 2019) on warps float [B, C, H, W] made from sources int64 [B]
    and noises float [B, z_dim]: ``1 / (mean|x_a - x_b| / mean|z_a - z_b| + 1e-5)`` over the same-source pairs
    of :func:`same_label_pairs` (float []); 0 when no source repeats. Small when ``F`` maps different noises of
    one image to different warps."""
    a, b = same_label_pairs(labels)
    if a.numel() == 0:
        return fake.new_zeros(())
    ratio = (fake[a] - fake[b]).abs().float().mean() / (z[a] - z[b]).abs().float().mean()
    return 1.0 / (ratio + 1e-5)


def _upsample(coarse: torch.Tensor, size: tuple[int, int], max_shift: float) -> torch.Tensor:
    """[N, 2, g, g] unbounded -> [N, 2, H, W] in pixels, |value| < max_shift, bilinear (smooth)."""
    return max_shift * torch.tanh(F.interpolate(coarse, size=size, mode="bilinear", align_corners=True))


class FieldNet(nn.Module):
    """``F(x, z)``: image [N, 1, H, W] and noise [N, z_dim] -> displacement field [N, 2, H, W] in pixels."""

    def __init__(self, config: DeformConfig) -> None:
        super().__init__()
        self.config = config
        w, g = config.width, config.grid
        self.encode = nn.Sequential(  # [N, 1, H, W] -> [N, 2w, g, g]
            nn.Conv2d(1, w, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(g),
        )
        self.noise = nn.Linear(config.z_dim, 2 * w * g * g)
        self.head = nn.Sequential(nn.Conv2d(4 * w, 2 * w, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(2 * w, 2, 3, 1, 1))
        nn.init.zeros_(self.head[-1].weight)  # training starts at the identity warp
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = self.encode(x)
        n = self.noise(z).view(h.shape)
        return _upsample(self.head(torch.cat([h, n], 1)), x.shape[-2:], self.config.max_shift)


def warp(images: torch.Tensor, fields: torch.Tensor) -> torch.Tensor:
    """Images [N, 1, H, W] in [-1, 1] sampled at ``pixel + field`` (bilinear; outside the image is background
    -1) -> [N, 1, H, W] in [-1, 1]."""
    n, _, h, w = images.shape
    ys, xs = torch.meshgrid(
        torch.linspace(-1, 1, h, device=images.device), torch.linspace(-1, 1, w, device=images.device), indexing="ij"
    )
    base = torch.stack([xs, ys], -1).expand(n, h, w, 2)
    scale = torch.tensor([2 / (w - 1), 2 / (h - 1)], device=images.device)  # pixels -> grid units
    grid = base + fields.permute(0, 2, 3, 1) * scale
    return F.grid_sample(images + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=True) - 1


class PairCritic(nn.Module):
    """Two images of one class, [N, 1, H, W] each -> a realness score [N] (spectral norm on every layer)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            spectral_norm(nn.Conv2d(2, w, 4, 2, 1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(w, 2 * w, 4, 2, 1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(2 * w, 4 * w, 3, 2, 1)),
            nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            spectral_norm(nn.Linear(4 * w, 1)),
        )

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([a, b], 1)).squeeze(1)


def _pairs(labels: torch.Tensor, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` ordered pairs (i, j), i != j, of indices with the same label; i uniform over the images, j uniform
    over the other images of its class."""
    order = torch.argsort(labels, stable=True)  # indices grouped by class
    counts = torch.bincount(labels)
    start = torch.cumsum(counts, 0) - counts  # where each class begins in ``order``
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order))
    i = torch.randint(len(labels), (n,), generator=gen)
    size, first = counts[labels[i]], start[labels[i]]
    step = 1 + (torch.rand(n, generator=gen) * (size - 1)).long()  # 1 .. size - 1: never i itself
    j = order[first + (rank[i] - first + step) % size]
    return i, j


def train_deformer(
    images: torch.Tensor,
    labels: torch.Tensor,
    config: DeformConfig = DeformConfig(),
    *,
    device: str = "cpu",
    log: Callable[[str], None] | None = None,
) -> FieldNet:
    """Train ``F`` on real ``images`` [N, 1, H, W] in [-1, 1] with ``labels`` [N] (every class needs at least
    two images); returns it in eval mode on ``device``. Deterministic given ``config.seed`` on CPU."""
    counts = torch.bincount(labels)
    if (counts[counts > 0] < 2).any():
        raise InputError("train_deformer needs at least 2 images of every class present (pairs of different images)")
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    field, critic = FieldNet(config).to(device), PairCritic(config.width).to(device)
    opt_f = torch.optim.Adam(field.parameters(), lr=config.lr, betas=(0.0, 0.9))
    opt_c = torch.optim.Adam(critic.parameters(), lr=config.lr, betas=(0.0, 0.9))
    x_all = images.to(device)
    for step in range(config.steps):
        i, j = _pairs(labels, config.batch, gen)
        x, other = x_all[i], x_all[j]
        z = torch.randn(2 * config.batch, config.z_dim, generator=gen).to(device)  # two warps of each image
        shift = (torch.rand(config.batch, 2, 1, 1, generator=gen) - 0.5).to(device)  # sub-pixel, constant
        other = warp(other, shift.expand(-1, -1, *other.shape[-2:]))
        x2 = torch.cat([x, x])
        fake = warp(x2, field(x2, z))
        loss_c = F.relu(1 - critic(x, other)).mean() + F.relu(1 + critic(x2, fake.detach())).mean()
        opt_c.zero_grad(set_to_none=True)
        loss_c.backward()
        opt_c.step()
        loss_f = -critic(x2, fake).mean()
        if config.diversity:
            source = torch.arange(config.batch, device=device).repeat(2)  # pairs: the two warps of one image
            loss_f = loss_f + config.diversity * mode_seeking_term(fake, source, z)
        opt_f.zero_grad(set_to_none=True)
        loss_f.backward()
        opt_f.step()
        if log is not None and (step + 1) % max(1, config.steps // 10) == 0:
            log(f"deformer step {step + 1}/{config.steps}: critic {loss_c.item():.3f}, field {loss_f.item():.3f}")
    return field.eval()


@torch.no_grad()
def deform(
    field: FieldNet, images: torch.Tensor, labels: torch.Tensor, per_image: int, *, seed: int, batch: int = 1000
) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_image`` warps of each of ``images`` [N, 1, H, W] -> images [N * per_image, 1, H, W] in [-1, 1]
    (warp k of image i at row ``i * per_image + k``) and their labels (the source image's), on CPU. The noise
    is drawn from ``seed`` for all rows at once, so row r is the same whatever ``batch``."""
    device = next(field.parameters()).device
    src = images.repeat_interleave(per_image, 0)
    z = torch.randn(len(src), field.config.z_dim, generator=torch.Generator().manual_seed(seed))
    out = [
        warp(src[s : s + batch].to(device), field(src[s : s + batch].to(device), z[s : s + batch].to(device))).cpu()
        for s in range(0, len(src), batch)
    ]
    return torch.cat(out), labels.repeat_interleave(per_image, 0)


@torch.no_grad()
def field_rms(field: FieldNet, images: torch.Tensor, *, seed: int, draws: int = 8) -> float:
    """The root-mean-square displacement (pixels) of ``field`` over ``draws`` noises per image of ``images``."""
    device = next(field.parameters()).device
    src = images.repeat_interleave(draws, 0).to(device)
    z = torch.randn(len(src), field.config.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    return float(field(src, z).pow(2).mean().sqrt())


def random_fields(
    n: int, size: tuple[int, int], config: DeformConfig, *, seed: int, rms: float | None = None
) -> torch.Tensor:
    """Hand-set elastic fields [n, 2, H, W] in pixels: i.i.d. N(0, 1) on the ``grid`` x ``grid`` coarse field,
    upsampled and bounded exactly as :class:`FieldNet`'s (the same smoothness and ``max_shift``). ``rms``: scale
    them to that root-mean-square displacement (clipped at ``max_shift``), e.g. a learned field's, for a control
    of equal strength."""
    coarse = torch.randn(n, 2, config.grid, config.grid, generator=torch.Generator().manual_seed(seed))
    fields = _upsample(coarse, size, config.max_shift)
    if rms is not None:
        fields = (fields * rms / fields.pow(2).mean().sqrt()).clamp(-config.max_shift, config.max_shift)
    return fields
