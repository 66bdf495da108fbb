"""Class-conditional DCGAN generator and discriminator for 1x28x28 images.

Both follow the DCGAN rules: learned strided upsampling and strided convolutions instead of pooling,
BatchNorm in the generator, LeakyReLU in the discriminator and a tanh output. The generator sees the
label through an embedding concatenated to ``z``; the discriminator uses a projection (Miyato & Koyama,
2018): its logit is ``linear(h) + <embed(y), h>`` for image features ``h``.

The generator's 7x7 -> 14x14 step is a sub-pixel convolution (Shi et al., 2016): a 3x3 convolution to 4x the
channels followed by PixelShuffle(2), a learned fractionally-strided convolution like ConvTranspose2d. ONNX
Runtime runs it as one batched convolution where it runs ConvTranspose as a small GEMM per image, so it
generates 2-3x faster at about the same FLOPs. The generator costs about 15.7 MFLOP per image
(:func:`generator_flops`), under a third of the common 256-channel cDCGAN's 55.

A generator built with ``center_of_mass=True`` moves its images by whole pixels so their centre of mass sits
where MNIST put every digit's (:class:`CenterOfMass`): sampling-time placement (``TrainConfig.sample_center_of_mass``),
which has no weights, so the same state dict loads either way.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ganaug.config import ModelConfig

IMAGE_SHAPE: tuple[int, int, int] = (1, 28, 28)


class Generator(nn.Module):
    """``G(z, y)``: latent ``z`` float [N, z_dim] and labels ``y`` int64 [N] -> images float [N, 1, 28, 28] in [-1, 1].

    ``center_of_mass``: follow G by :class:`CenterOfMass` (no weights: the state dict is the same)."""

    def __init__(
        self, config: ModelConfig, *, center_of_mass: bool = False, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.config = config
        w = config.g_width
        c = 4 * w
        self.embed = nn.Embedding(config.num_classes, config.embed_dim)
        self.project = nn.Sequential(
            nn.Linear(config.z_dim + config.embed_dim, c * 7 * 7, bias=False),  # [N, c*49]
            nn.BatchNorm1d(c * 7 * 7),
            nn.ReLU(inplace=True),
            nn.Unflatten(1, (c, 7, 7)),  # [N, c, 7, 7]
        )
        # Applied after self.up (from_embedding); no weights, so the state dict stays as it is. Registered first
        # so that G's last module is still its Tanh.
        self.centre = CenterOfMass() if center_of_mass else nn.Identity()
        # BatchNorm sits before the shuffle (per sub-pixel channel) so that export folds it into the conv.
        self.up = nn.Sequential(
            nn.Conv2d(c, 4 * w, 3, 1, 1, bias=False),  # [N, 4w, 7, 7]
            nn.BatchNorm2d(4 * w),
            nn.ReLU(inplace=True),
            nn.PixelShuffle(2),  # [N, w, 14, 14]
            nn.ConvTranspose2d(w, 1, 4, 2, 1),  # [N, 1, 28, 28]
            nn.Tanh(),
        )
        init_dcgan_weights(self, generator=generator)

    @property
    def center_of_mass(self) -> bool:
        """Whether :class:`CenterOfMass` moves this generator's images."""
        return isinstance(self.centre, CenterOfMass)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.from_embedding(z, self.embed(labels))

    def from_embedding(self, z: torch.Tensor, label_embedding: torch.Tensor, *, centre: bool = True) -> torch.Tensor:
        """``G`` given a label embedding float [N, embed_dim] instead of labels (for walks between classes);
        ``centre=False``: the images before :class:`CenterOfMass` moves them (the same with it off)."""
        h = self.up(self.project(torch.cat([z, label_embedding], dim=1)))  # [N, 1, 28, 28]
        return self.centre(h) if centre else h


class CenterOfMass(nn.Module):
    """Translate each image by whole pixels so that its centre of mass lies within half a pixel of the
    image centre, the way MNIST's digits were placed in their 28x28 field (LeCun et al.): in the 60,000
    training digits the centre of mass is never more than 0.5 px from (14, 14) (std 0.29 px, the rounding),
    while an unconstrained generator scatters it with about twice that spread, and a one-pixel shift moves a
    digit far in a classifier's feature space.

    Shape: images float [N, C, H, W] in [-1, 1] (-1 = background) -> the same shape and range. The shift is
    computed from the image (no gradient flows into it) and applied by gathering pixels, so the gradient
    reaches every pixel that stays in the frame, and each image is moved independently of the batch. Pixels
    shifted in from outside the frame are background; an empty image is left where it is. ``max_shift``
    bounds the move (MNIST's digits keep a 4-pixel margin). The centre of mass is computed in float32 whatever the
    input's dtype; the move only copies pixels.
    """

    def __init__(self, max_shift: int = 4) -> None:
        super().__init__()
        self.max_shift = max_shift

    @staticmethod
    @torch.no_grad()
    def offsets(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """How far the centre of mass of images [N, C, H, W] lies from the image centre, in pixels: rows to
        move down, columns to move right (float32 [N] each), and which images hold no ink (bool [N])."""
        _, _, h, w = x.shape
        ink = (x.float() + 1) / 2
        mass = ink.sum(dim=(1, 2, 3))  # [N]
        rows = torch.arange(h, dtype=ink.dtype, device=x.device)
        cols = torch.arange(w, dtype=ink.dtype, device=x.device)
        cy = (ink.sum(dim=(1, 3)) * rows).sum(1) / mass.clamp_min(1e-6)  # [N]
        cx = (ink.sum(dim=(1, 2)) * cols).sum(1) / mass.clamp_min(1e-6)
        return h / 2 - cy, w / 2 - cx, mass < 1e-6

    def shifts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole-pixel moves (down, right), float32 [N] each, that :meth:`forward` applies to ``x``."""
        oy, ox, empty = self.offsets(x)
        dy = torch.where(empty, 0.0, torch.round(oy)).clamp(-self.max_shift, self.max_shift)
        dx = torch.where(empty, 0.0, torch.round(ox)).clamp(-self.max_shift, self.max_shift)
        return dy, dx

    def near_half_pixel(self, x: torch.Tensor, within: float) -> torch.Tensor:
        """Images (bool [N]) whose centre of mass lies within ``within`` px of a rounding boundary, where float
        rounding (another backend, batch size or precision) may round the move the other way."""
        oy, ox, _ = self.offsets(x)
        return ((oy - oy.floor() - 0.5).abs() < within) | ((ox - ox.floor() - 0.5).abs() < within)

    @staticmethod
    def move(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
        """Images [N, C, H, W] in [-1, 1] moved down by ``dy`` and right by ``dx`` whole pixels (float [N] each),
        background coming in at the edges; ``x``'s dtype out. Two gathers: each output pixel copies one input
        pixel (no arithmetic on the values, so it is exact in any dtype)."""
        n, c, h, w = x.shape
        with torch.no_grad():
            src_r = torch.arange(h, device=x.device)[None, :] - dy.long()[:, None]  # [N, H]: row i copies row i - dy
            src_c = torch.arange(w, device=x.device)[None, :] - dx.long()[:, None]  # [N, W]
            inside = ((src_r >= 0) & (src_r < h))[:, None, :, None] & ((src_c >= 0) & (src_c < w))[:, None, None, :]
            src_r = src_r.clamp(0, h - 1)[:, None, :, None].expand(n, c, h, w)
            src_c = src_c.clamp(0, w - 1)[:, None, None, :].expand(n, c, h, w)
        return torch.where(inside, x.gather(2, src_r).gather(3, src_c), -1.0)  # [N, C, H, W]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.move(x, *self.shifts(x))


def with_center_of_mass(generator: Generator) -> Generator:
    """A copy of ``generator`` (same weights) whose images :class:`CenterOfMass` moves to the centre: sampling-time
    placement for a generator trained on MNIST-placed digits."""
    moved = copy.deepcopy(generator)
    moved.centre = CenterOfMass()
    return moved


class Discriminator(nn.Module):
    """``D(x, y)``: images float [N, 1, 28, 28] in [-1, 1] and labels int64 [N] -> logits float [N]."""

    def __init__(self, config: ModelConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        w = config.d_width
        c = 2 * w
        self.features = nn.Sequential(
            nn.Conv2d(1, w, 4, 2, 1),  # [N, w, 14, 14]
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(w, c, 4, 2, 1),  # [N, 2w, 7, 7]
            nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten(),  # [N, 2w*49]
        )
        self.linear = nn.Linear(c * 7 * 7, 1)  # [N, 1]
        self.embed = nn.Embedding(config.num_classes, c * 7 * 7)  # [N, 2w*49]
        init_dcgan_weights(self, generator=generator)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        return self.linear(h).squeeze(1) + (self.embed(labels) * h).sum(dim=1)


def init_dcgan_weights(module: nn.Module, *, generator: torch.Generator | None = None) -> None:
    """DCGAN initialisation: conv/linear weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02), biases 0.

    Every draw comes from ``generator`` (a CPU :class:`torch.Generator`) when one is given, so a seeded
    model never touches the global RNG.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02, generator=generator)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02, generator=generator)
            nn.init.zeros_(m.bias)


def generator_flops(config: ModelConfig) -> int:
    """Multiply-add FLOPs (2 per MAC) of one generated image, counting the linear and conv layers."""
    w = config.g_width
    c = 4 * w
    linear = (config.z_dim + config.embed_dim) * c * 49
    up1 = 7 * 7 * c * 4 * w * 9  # 3x3 conv on the 7x7 grid
    up2 = 14 * 14 * w * 1 * 16
    return 2 * (linear + up1 + up2)


def discriminator_flops(config: ModelConfig) -> int:
    """Multiply-add FLOPs (2 per MAC) of the discriminator per image it judges (one forward pass)."""
    w = config.d_width
    conv1 = 14 * 14 * w * 16
    conv2 = 7 * 7 * 2 * w * w * 16
    head = 2 * (2 * w * 49)
    return 2 * (conv1 + conv2 + head)
