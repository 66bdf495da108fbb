"""Class-conditional DCGAN generator and discriminator for 1x28x28 images.

Both follow the DCGAN rules: learned strided upsampling and strided convolutions instead of pooling,
BatchNorm in the generator, LeakyReLU in the discriminator and a tanh output. The generator sees the
label through an embedding concatenated to ``z``; the discriminator uses a projection (Miyato & Koyama,
2018): its logit is ``linear(h) + <embed(y), h>`` for image features ``h``.

The generator's 7x7 -> 14x14 step is by default a sub-pixel convolution (Shi et al., 2016): a 3x3
convolution to 4x the channels followed by PixelShuffle(2), a learned fractionally-strided convolution
like ConvTranspose2d. ONNX Runtime runs it as one batched convolution where it runs ConvTranspose as a
small GEMM per image, so it generates 2-3x faster at about the same FLOPs (``upsample="deconv"`` keeps
the classic ConvTranspose2d). The default generator costs about 15.7 MFLOP per image
(:func:`generator_flops`), under a third of the common 256-channel cDCGAN's 55.

Options for coverage (all off by default): ``g_depth`` / ``d_depth`` extra 3x3 blocks at the 7x7 stage of
G / D, ``mbstd``, ProGAN's minibatch standard-deviation feature map in D (:class:`MinibatchStd`), and
``cond_bn``, class-conditional BatchNorm in G (:class:`ClassAffine`), so the label acts at every stage of G
rather than only through its first layer; ``center_of_mass``, G's images translated by whole pixels so their
centre of mass sits where MNIST put every digit's (:class:`CenterOfMass`).
"""

from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganaug.config import ModelConfig

IMAGE_SHAPE: tuple[int, int, int] = (1, 28, 28)


class Generator(nn.Module):
    """``G(z, y)``: latent ``z`` float [N, z_dim] and labels ``y`` int64 [N] -> images float [N, 1, 28, 28] in [-1, 1]."""

    def __init__(self, config: ModelConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        w = config.g_width
        c = 4 * w
        self.embed = nn.Embedding(config.num_classes, config.embed_dim)

        def cond(channels: int) -> list[nn.Module]:  # after each BatchNorm: its class-conditional scale/shift
            return [ClassAffine(config.embed_dim, channels)] if config.cond_bn else []

        self.project = nn.Sequential(
            nn.Linear(config.z_dim + config.embed_dim, c * 7 * 7, bias=False),  # [N, c*49]
            nn.BatchNorm1d(c * 7 * 7),
            *cond(c * 7 * 7),
            nn.ReLU(inplace=True),
            nn.Unflatten(1, (c, 7, 7)),  # [N, c, 7, 7]
        )
        deeper = [
            layer
            for _ in range(config.g_depth)
            for layer in (nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), *cond(c), nn.ReLU(inplace=True))
        ]
        self.mid = nn.Sequential(*deeper)  # [N, c, 7, 7]; empty (no weights) at g_depth 0
        if config.upsample == "subpixel":
            # BatchNorm sits before the shuffle (per sub-pixel channel) so that export folds it into the conv.
            upsample = [
                nn.Conv2d(c, 4 * w, 3, 1, 1, bias=False),  # [N, 4w, 7, 7]
                nn.BatchNorm2d(4 * w),
                *cond(4 * w),
                nn.ReLU(inplace=True),
                nn.PixelShuffle(2),  # [N, w, 14, 14]
            ]
        else:
            upsample = [
                nn.ConvTranspose2d(c, w, 4, 2, 1, bias=False),  # [N, w, 14, 14]
                nn.BatchNorm2d(w),
                *cond(w),
                nn.ReLU(inplace=True),
            ]
        # Applied after self.up (from_embedding); no weights, so the state dict (and older checkpoints) stay as
        # they are. Registered first so that G's last module is still its Tanh.
        self.centre = CenterOfMass() if config.center_of_mass else nn.Identity()
        self.up = nn.Sequential(
            *upsample,
            nn.ConvTranspose2d(w, 1, 4, 2, 1),  # [N, 1, 28, 28]
            nn.Tanh(),
        )
        init_dcgan_weights(self, generator=generator)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.from_embedding(z, self.embed(labels))

    def from_embedding(self, z: torch.Tensor, label_embedding: torch.Tensor, *, centre: bool = True) -> torch.Tensor:
        """``G`` given a label embedding float [N, embed_dim] instead of labels (for walks between classes);
        ``centre=False``: the images before :class:`CenterOfMass` moves them (the same with it off)."""
        h = torch.cat([z, label_embedding], dim=1)  # [N, z_dim + embed_dim]
        for stage in (self.project, self.mid, self.up):
            for layer in stage:
                h = layer(h, label_embedding) if isinstance(layer, ClassAffine) else layer(h)
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
    """A copy of ``generator`` (same weights) whose images :class:`CenterOfMass` moves to the centre, whether or
    not it trained that way: sampling-time placement for a generator trained on MNIST-placed digits."""
    moved = copy.deepcopy(generator)
    moved.config = dataclasses.replace(generator.config, center_of_mass=True)
    moved.centre = CenterOfMass()
    return moved


class ClassAffine(nn.Module):
    """The class-conditional half of conditional BatchNorm (de Vries et al., 2017; as in SNGAN-projection's
    and BigGAN's generators): after a plain BatchNorm, ``h * (1 + gamma(e)) + beta(e)`` with ``gamma`` and
    ``beta`` linear in the label embedding ``e``, so each class gets its own per-channel scale and shift.

    Shapes: ``h`` [N, C] or [N, C, H, W], ``e`` [N, embed_dim] -> like ``h``. Linear in ``e``, so walks
    between label embeddings stay smooth. The BatchNorm before it stays a plain one, which export folds into
    the layer before it; this module stays in the exported graph as one small Gemm, a Mul and an Add.
    """

    def __init__(self, embed_dim: int, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.scale_shift = nn.Linear(embed_dim, 2 * channels)  # [N, 2C]: gamma, then beta

    def forward(self, h: torch.Tensor, label_embedding: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.scale_shift(label_embedding).view(-1, 2, self.channels, *([1] * (h.dim() - 2))).unbind(1)
        return h * (1 + gamma) + beta


class Discriminator(nn.Module):
    """``D(x, y)``: images float [N, 1, 28, 28] in [-1, 1] and labels int64 [N] -> logits float [N]; with
    ``config.aux_classifier`` a pair (logits float [N], class logits float [N, num_classes]).

    With ``config.d_pack`` = p > 1 (PacGAN), N must be a multiple of p: images p*k .. p*k + p - 1 become the p
    channels of pack k, and D returns one logit per pack, float [N / p]. The label condition of a pack is the
    projection on all p labels: slot j's label y indexes row ``j * num_classes + y`` of the embedding, and the
    rows are summed (the projection discriminator with a condition vector that is the p one-hot labels side by
    side; at p = 1 it is the plain projection).
    """

    def __init__(self, config: ModelConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        w = config.d_width
        sn = spectral_norm if config.spectral_norm else (lambda m: m)
        deeper = [
            layer
            for _ in range(config.d_depth)
            for layer in (sn(nn.Conv2d(2 * w, 2 * w, 3, 1, 1)), nn.LeakyReLU(0.2, inplace=True))
        ]
        c = 2 * w + (1 if config.mbstd else 0)
        self.features = nn.Sequential(
            # [N/p, p (+2), 28, 28]: the pack's images (then row and column with d_coords)
            *([CoordinateMaps()] if config.d_coords else []),
            sn(nn.Conv2d(config.d_pack + (2 if config.d_coords else 0), w, 4, 2, 1)),  # [N/p, w, 14, 14]
            nn.LeakyReLU(0.2, inplace=True),
            sn(nn.Conv2d(w, 2 * w, 4, 2, 1)),  # [N/p, 2w, 7, 7]
            nn.LeakyReLU(0.2, inplace=True),
            *deeper,  # [N/p, 2w, 7, 7]
            *([MinibatchStd()] if config.mbstd else []),  # [N/p, c, 7, 7]
            nn.Flatten(),  # [N/p, c*49]
        )
        self.linear = sn(nn.Linear(c * 7 * 7, 1))  # [N/p, 1]
        self.embed = sn(nn.Embedding(config.d_pack * config.num_classes, c * 7 * 7))  # [N/p, c*49] after the sum
        self.aux = sn(nn.Linear(c * 7 * 7, config.num_classes)) if config.aux_classifier else None  # [N, classes]
        init_dcgan_weights(self, generator=generator)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        p = self.config.d_pack
        if p > 1:
            if x.shape[0] % p:
                raise ValueError(f"D packs {p} images at a time: got a batch of {x.shape[0]}, not a multiple of {p}")
            x = x.reshape(x.shape[0] // p, p, *x.shape[2:])  # [N/p, p, 28, 28]
            slots = torch.arange(p, device=labels.device) * self.config.num_classes
            labels = labels.reshape(-1, p) + slots  # [N/p, p]: rows of the embedding
        h = self.features(x)
        condition = self.embed(labels) if p == 1 else self.embed(labels).sum(dim=1)  # [N/p, c*49]
        logit = self.linear(h).squeeze(1) + self.config.proj_weight * (condition * h).sum(dim=1)
        return logit if self.aux is None else (logit, self.aux(h))


class CoordinateMaps(nn.Module):
    """CoordConv (Liu et al., 2018): two constant maps, each pixel's row and column scaled to [-1, 1],
    appended to D's input, so its first convolution knows where on the canvas a stroke lies to the pixel (a
    plain convolution is blind to it; only D's last layer sees position, at its 7x7 grid's 4-pixel cells).
    MNIST places its digits to the pixel (centre of mass at the centre, the larger side 20 px).

    Shape: [N, C, H, W] -> [N, C + 2, H, W].
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        rows = torch.linspace(-1, 1, h, dtype=x.dtype, device=x.device).view(1, 1, h, 1).expand(n, 1, h, w)
        cols = torch.linspace(-1, 1, w, dtype=x.dtype, device=x.device).view(1, 1, 1, w).expand(n, 1, h, w)
        return torch.cat([x, rows, cols], dim=1)


class MinibatchStd(nn.Module):
    """ProGAN's minibatch standard deviation (Karras et al., 2018): one extra feature map, the mean over
    channels and pixels of each feature's standard deviation within a group of images of the batch.

    Shape: [N, C, H, W] -> [N, C + 1, H, W]. Groups are images ``i, i + N/g, ...`` with ``g`` the largest
    divisor of N up to ``group_size`` (so any batch size works; g = 1 gives a constant map). D sees how
    varied a batch is, so a generator that collapses to few modes is told apart from the real data.
    """

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = max(d for d in range(1, min(self.group_size, n) + 1) if n % d == 0)
        y = x.float().reshape(g, n // g, c, h, w)
        std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()  # [N/g, C, H, W]
        feature = std.mean(dim=(1, 2, 3)).to(x.dtype)  # [N/g]
        return torch.cat([x, feature.repeat(g).view(n, 1, 1, 1).expand(n, 1, h, w)], dim=1)


def init_dcgan_weights(module: nn.Module, *, generator: torch.Generator | None = None) -> None:
    """DCGAN initialisation: conv/linear weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02), biases 0.

    Every draw comes from ``generator`` (a CPU :class:`torch.Generator`) when one is given, so a seeded
    model never touches the global RNG; spectral normalization's power-iteration vectors are redrawn from
    it too and re-converged on the new weights (15 iterations, as at construction).
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(weight, 0.0, 0.02, generator=generator)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
            if hasattr(m, "parametrizations"):
                _redraw_spectral_norm(m.parametrizations.weight, weight, generator)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02, generator=generator)
            nn.init.zeros_(m.bias)


@torch.no_grad()
def _redraw_spectral_norm(parametrizations: nn.ModuleList, weight: torch.Tensor, generator: torch.Generator | None):
    for p in parametrizations:
        if hasattr(p, "_u") and hasattr(p, "_v"):
            p._u.copy_(nn.functional.normalize(torch.randn(p._u.shape, generator=generator), dim=0, eps=p.eps))
            p._v.copy_(nn.functional.normalize(torch.randn(p._v.shape, generator=generator), dim=0, eps=p.eps))
            p._power_method(p._reshape_weight_to_matrix(weight), 15)


def generator_flops(config: ModelConfig) -> int:
    """Multiply-add FLOPs (2 per MAC) of one generated image, counting the linear and conv layers."""
    w = config.g_width
    c = 4 * w
    linear = (config.z_dim + config.embed_dim) * c * 49
    if config.upsample == "subpixel":
        up1 = 7 * 7 * c * 4 * w * 9  # 3x3 conv on the 7x7 grid
    else:
        up1 = 7 * 7 * c * w * 16  # each input pixel scatters a 4x4 kernel per (in, out) pair
    up2 = 14 * 14 * w * 1 * 16
    mid = config.g_depth * 7 * 7 * c * c * 9
    cond = config.embed_dim * 2 * (c * 49 + config.g_depth * c + (4 * w if config.upsample == "subpixel" else w))
    return 2 * (linear + mid + up1 + up2 + (cond if config.cond_bn else 0))


def discriminator_flops(config: ModelConfig) -> int:
    """Multiply-add FLOPs (2 per MAC) of the discriminator per image it judges: one forward pass over one image,
    or with ``d_pack`` = p over a pack of p images, divided by p."""
    w = config.d_width
    conv1 = 14 * 14 * w * (config.d_pack + (2 if config.d_coords else 0)) * 16
    conv2 = 7 * 7 * 2 * w * w * 16
    deeper = config.d_depth * 7 * 7 * 2 * w * 2 * w * 9
    head = 2 * ((2 * w + (1 if config.mbstd else 0)) * 49)
    return 2 * (conv1 + conv2 + deeper + head) // config.d_pack
