"""Typed, frozen configuration, resolved once and written into every file ganaug produces."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

DatasetName = Literal["digits", "mnist", "fashion-mnist", "imagefolder"]
DATASETS: tuple[str, ...] = ("digits", "mnist", "fashion-mnist", "imagefolder")
DIFFAUGMENT_POLICIES: tuple[str, ...] = ("translation", "cutout", "brightness")
LOSSES: tuple[str, ...] = ("bce", "hinge", "rpgan")
LR_DECAYS: tuple[str, ...] = ("none", "linear", "cosine")
SELECT_METRICS: tuple[str, ...] = ("none", "fd", "recall")
#: The pseudo-label confidence a pool image needs when none is given (FixMatch's; ``--pseudo-label`` bare, or
#: ``--unlabelled DIR`` alone).
PSEUDO_LABEL_THRESHOLD: float = 0.95
#: ``flatten_density``'s neighbour: the distance to a training image's k-th nearest other image of its class.
DENSITY_K = 5
# TrainConfig fields that weigh a term or a lever: finite and >= 0, 0 = off.
_LOSS_WEIGHTS = ("r1_gamma", "r2_gamma", "ac_weight", "mode_seeking", "coverage_weight", "flatten_density")
# Epochs when none are asked for: 15 passes over MNIST-sized data (the documented CPU recipe); the
# 1,347 training digits get 100 (2,100 steps at batch 64).
DEFAULT_EPOCHS: dict[str, int] = {"digits": 100}
#: Seeds are in [0, MAX_SEED]: torch.Generator takes up to 2**64 - 1 and numpy's SeedSequence no
#: negatives; the run derives its other streams from ``seed`` modulo 2**64.
MAX_SEED = 2**63 - 1
#: Grids and checkpoints of a run whose epochs come from a step budget (:attr:`TrainConfig.steps`, the presets).
DEFAULT_SAVES = 40


#: The keys a run's default sampling (``TrainConfig.sampling``, a preset's ``sampling``, the ONNX metadata) may hold.
SAMPLING_KEYS: tuple[str, ...] = ("temperature",)


def sampling_problem(sampling: Any) -> str | None:
    """What is wrong with a default-sampling mapping (``{"temperature": t}``, t a finite number > 0; empty =
    plain), or ``None`` when it is right: the one check of the run config, the preset files and the ONNX file."""
    if not isinstance(sampling, dict):
        return f'sampling must be a mapping such as {{"temperature": 1.0}}, got {type(sampling).__name__}'
    unknown = sorted(set(sampling) - set(SAMPLING_KEYS))
    if unknown:
        return f"unknown sampling key(s) {', '.join(map(repr, unknown))}; known: {', '.join(SAMPLING_KEYS)}"
    t = sampling.get("temperature", 1.0)
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not (math.isfinite(t) and t > 0):
        return f"sampling temperature must be a finite number > 0, got {t!r}"
    return None


def sampling_temperature(sampling: dict[str, Any] | None) -> float:
    """The temperature of a default-sampling mapping (1: plain, also for models that carry none)."""
    return float((sampling or {}).get("temperature", 1.0))


def epochs_for_steps(steps: int, n_images: int, batch_size: int) -> int:
    """Epochs that give at least ``steps`` G steps when an epoch is ``n_images // batch_size`` batches (>= 1)."""
    return max(1, math.ceil(steps / max(1, n_images // batch_size)))


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the class-conditional DCGAN pair (28x28x1 images).

    Attributes:
        num_classes: number of classes the generator is conditioned on (``Trainer.new`` sets it from the data).
        z_dim: size of the latent vector ``z``.
        embed_dim: size of the generator's label embedding (concatenated to ``z``).
        g_width: channels of the generator's 14x14 stage; its 7x7 stage has ``4 * g_width``.
        upsample: how the generator goes from 7x7 to 14x14: ``"subpixel"`` (3x3 convolution to
            ``4 * g_width`` channels, then PixelShuffle(2)) or ``"deconv"`` (ConvTranspose2d k4 s2 p1).
        d_width: discriminator width; its 7x7 stage has ``2 * d_width`` channels.
        spectral_norm: wrap every discriminator weight in spectral normalization.
        mbstd: append ProGAN's minibatch standard-deviation feature map to D's 7x7 features (groups of up to
            4 images of the batch D sees; D only, so G and its export stay batch-independent).
        g_depth: extra 3x3 conv + BatchNorm + ReLU blocks at the generator's 7x7 stage (deeper, not wider;
            the 14x14 stage is left alone so export still fuses PixelShuffle and the last deconvolution).
        d_depth: extra 3x3 conv + LeakyReLU blocks at the discriminator's 7x7 stage.
        cond_bn: class-conditional BatchNorm in G: after each of G's BatchNorms, a per-class scale and shift
            linear in the label embedding (:class:`ganaug.models.ClassAffine`). G only; D doesn't change.
        aux_classifier: give D a class head (AC-GAN, Odena et al. 2017): D returns (logit, class logits); the
            training loss uses it with weight ``TrainConfig.ac_weight``. Only D changes: G and its export don't.
        center_of_mass: G translates each image by whole pixels so its centre of mass is within half a pixel of
            the image centre (:class:`ganaug.models.CenterOfMass`), as MNIST's digits are. D sees the moved
            images, and the export contains the move. Only for data centred that way (training refuses others).
        d_coords: CoordConv in D: its input gets two constant maps, each pixel's row and column
            (:class:`ganaug.models.CoordinateMaps`), so D sees where strokes lie to the pixel. D only.
        d_pack: PacGAN (Lin et al., NeurIPS 2018): D judges packs of ``d_pack`` images of one kind (all real or
            all fake), consecutive items of the batch stacked as channels, each with its own label; a pack is
            judged as a whole, so a generator that repeats itself within a class is easier to tell from real
            data. 1 = off. D only (G and its export don't change); the batch D sees must be a multiple of it.
        proj_weight: the weight of D's projection term ``<embed(y), h>`` against its unconditional term
            ``linear(h)`` (1 = the plain projection discriminator); above 1 the label weighs more in D's verdict
            (stronger conditioning). D only.
    """

    num_classes: int = 10
    z_dim: int = 64
    embed_dim: int = 16
    g_width: int = 32
    d_width: int = 64
    spectral_norm: bool = False
    upsample: Literal["subpixel", "deconv"] = "subpixel"
    mbstd: bool = False
    g_depth: int = 0
    d_depth: int = 0
    aux_classifier: bool = False
    cond_bn: bool = False
    center_of_mass: bool = False
    d_coords: bool = False
    d_pack: int = 1
    proj_weight: float = 1.0

    def __post_init__(self) -> None:
        for name in ("num_classes", "z_dim", "embed_dim", "g_width", "d_width", "d_pack"):
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("g_depth", "d_depth"):
            if getattr(self, name) < 0:
                raise ValueError(f"ModelConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not self.proj_weight > 0:
            raise ValueError(f"ModelConfig.proj_weight must be > 0, got {self.proj_weight}")
        if self.upsample not in ("subpixel", "deconv"):
            raise ValueError(f"ModelConfig.upsample must be 'subpixel' or 'deconv', got {self.upsample!r}")
        if self.d_pack > 1 and self.aux_classifier:
            raise ValueError(
                "ModelConfig.d_pack > 1 does not go with aux_classifier (--d-pack with --ac-weight): the class head "
                "judges one image; drop one of them"
            )


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run.

    ``epochs`` is the configured total: ``--resume`` continues up to it. ``None`` resolves to
    :data:`DEFAULT_EPOCHS` of the dataset (digits is small, so it gets more passes).
    ``label_smoothing`` is one-sided (real targets become ``1 - label_smoothing``).
    ``diffaugment`` is a tuple of DiffAugment policies applied to real and fake images before D.
    ``augment_real`` applies a label-preserving classical augmentation to the real images only: ``True`` or
    ``"affine"`` a random affine (rotation up to 10 degrees, shift up to 10%, scale 0.9-1.1), ``"shift-flip"``
    shifts of up to 2 pixels and horizontal flips (for clothes; see ``ganaug.augment_ops.CLASSICAL``): G then learns the augmented distribution, i.e. digits in
    slightly new poses, which for tiny subsets is what a downstream classifier wants.
    ``pseudo_label``: few labels, many images (issue 12's pool protocol). With ``per_class``, the GAN also
    trains on the rest of the training split, labelled by a teacher classifier trained on the subset alone
    (:mod:`ganaug.pseudo`); an image is kept when the teacher's probability is >= this threshold, in (0, 1];
    0 = off (the subset only). No label outside the subset is read. ``unlabelled``: a folder of unlabelled
    images (any depth) to pseudo-label instead of the rest of the split, for data that really has few labels.
    ``amp`` "auto" means bf16 autocast on CUDA and full fp32 on CPU; "bf16" autocasts on a CPU too (oneDNN's bf16
    kernels: fast where the CPU has AVX-512 BF16 or AMX; elsewhere emulated, not measured); "fp16" needs CUDA.
    ``compile``: run G and D through ``torch.compile`` in the training steps (fused elementwise kernels; on
    CUDA it pays at large batches, see ``benchmarks/gpu_bench.py``; the first steps pay the compilation).
    ``save_every``: epochs between sample grids and checkpoints (the last epoch is always saved); raise it
    for tiny subsets, where an epoch is a step or two.
    ``sample_center_of_mass``: G trains as it is, but its samples (the run's grids, checkpoint selection's scores,
    the exported ONNX file, every sampler that loads the run) are moved by whole pixels to MNIST's centre-of-mass placement
    (:class:`ganaug.models.CenterOfMass`). For data placed that way (training refuses other data). Unlike
    ``model.center_of_mass`` (which D sees during training), it does not change training.
    ``seed`` is an int in ``[0, 2**63 - 1]``; ``lr_g``/``lr_d`` are finite and > 0; ``beta1``/``beta2`` in
    ``[0, 1)``: anything else raises ``ValueError`` at construction, before any work.

    Coverage levers (issue 11; the defaults are the old behaviour):
    ``loss``: ``"bce"`` (non-saturating, with ``label_smoothing``) or ``"hinge"`` (D: ``relu(1 - D(x)) +
    relu(1 + D(G(z)))``, G: ``-D(G(z))``; usually with ``model.spectral_norm``) or ``"rpgan"``, the relativistic
    pairing GAN loss of R3GAN (Huang et al., 2024): each fake is paired with the real image whose label it was
    drawn with, D: ``softplus(D(G(z)) - D(x))``, G: ``softplus(D(x) - D(G(z)))`` (usually with R1 and R2).
    ``r1_gamma``: R1 penalty ``gamma / 2 * E|grad_x D(x)|^2`` on the real images D sees (0 = off), applied
    every ``r1_every`` D steps with its weight multiplied by ``r1_every`` (lazy regularization, StyleGAN2).
    ``r2_gamma``: the same penalty on the fakes D sees (R2), on the same lazy steps (0 = off).
    ``ac_weight``: the auxiliary-classifier term (stronger conditioning for tiny subsets, issue 12): D adds
    ``ac_weight * CE(class_head(x), y)`` on the real images it sees, G adds the same on its fakes, so G is
    pushed towards images of the asked class; needs ``model.aux_classifier`` (and that needs it > 0).
    ``mode_seeking``: the mode-seeking term of MSGAN (Mao et al., CVPR 2019), a push towards variety within a
    class: G adds ``mode_seeking / (mean|G(z1, y) - G(z2, y)| / mean|z1 - z2| + 1e-5)`` over pairs of its fakes
    that share a label (the batch sorted by label, neighbours paired), so two latents of one class that land on
    the same image cost G; 0 = off.
    ``coverage_weight``: a reconstruction term for the real images no fake is near (IMLE's objective, used beside
    the GAN loss as in Inclusive GAN, Yu et al., ECCV 2020): the D steps keep their last ``coverage_bank`` fakes
    (latent, label, pixels) in a bank; every ``coverage_every`` G steps, each real image of the batch picks the
    bank latent of its class whose fake is nearest in pixels, G renders that latent again and adds
    ``coverage_weight * coverage_every * mean((G(z*, y) - x)^2)`` to its loss, so every real image pulls the
    closest sample the generator makes towards it; 0 = off (single-process runs only).
    ``flatten_density``: the exponent ``a`` of a data weighting towards rare styles (0 = off: every training image
    once an epoch). Each image ``x`` gets the weight ``d(x) ** a``, where ``d(x)`` is its pixel distance to the
    ``DENSITY_K``-th nearest other training image of its class (large where the class is sparse), normalized
    so each class keeps its share; ``density_clip`` caps ``d(x)`` at that quantile of its class's distances, so
    the sparsest images (often odd or mislabelled ones) weigh no more than the rest of the sparse tail. An epoch
    is then as many images drawn with these probabilities (with replacement). The inverse of instance selection
    (DeVries et al., 2020), which drops the sparse images to buy precision with recall.
    ``lr_decay``: both learning rates follow ``none`` (constant), ``linear`` (to 0) or ``cosine`` (to 0) over
    the configured total of steps; the rate is a function of the step alone, so resume keeps it.
    ``ema_warmup``: the EMA decay at update ``n`` is ``min(ema_decay, (1 + n) / (ema_warmup + n))`` (> 1;
    larger warms up longer).
    ``select_by``: ``"none"`` exports the last EMA generator; ``"fd"`` / ``"recall"`` score the EMA generator
    after every epoch against ``holdout`` images per class held out of the *training* split (never the test
    split; they are not trained on) in the features of the evaluator at ``select_evaluator``, and export the
    best snapshot (lowest Fréchet distance / highest k=3 recall).
    ``preset``: the preset the config was resolved from, ``name@version`` (:mod:`ganaug.presets`; a record only).
    ``steps``: a G-step budget for a run whose training set's size is known only once its data is read (a
    pseudo-labelled pool): :meth:`ganaug.training.Trainer.new` then derives ``epochs`` and ``save_every`` (40 saves)
    from it and records them. ``None``: ``epochs`` as given.
    ``sampling``: how the run's images are drawn by default (``{"temperature": t}``; empty = plain sampling),
    carried into the run folder and the exported ONNX file.
    """

    dataset: str = "digits"
    data_root: str | None = None
    download: bool = False
    per_class: int | None = None
    epochs: int | None = None
    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    d_steps: int = 1
    label_smoothing: float = 0.0
    ema_decay: float = 0.999
    ema_warmup: float = 10.0
    loss: Literal["bce", "hinge", "rpgan"] = "bce"
    r1_gamma: float = 0.0
    r1_every: int = 1
    r2_gamma: float = 0.0
    ac_weight: float = 0.0
    mode_seeking: float = 0.0
    coverage_weight: float = 0.0
    coverage_bank: int = 1024
    coverage_every: int = 1
    flatten_density: float = 0.0
    density_clip: float = 0.9
    lr_decay: Literal["none", "linear", "cosine"] = "none"
    select_by: Literal["none", "fd", "recall"] = "none"
    holdout: int = 0
    select_evaluator: str | None = None
    diffaugment: tuple[str, ...] = ()
    augment_real: bool | Literal["affine", "shift-flip"] = False
    pseudo_label: float = 0.0
    unlabelled: str | None = None
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    channels_last: bool = False
    compile: bool = False
    seed: int = 0
    log_every: int = 50
    save_every: int = 1
    export_onnx: bool = True
    sample_center_of_mass: bool = False
    preset: str | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    steps: int | None = None
    model: ModelConfig = field(default_factory=ModelConfig)

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        if self.epochs is None:
            object.__setattr__(self, "epochs", DEFAULT_EPOCHS.get(self.dataset, 15))
        if self.per_class is not None and self.per_class < 1:
            raise ValueError(f"per_class must be >= 1, got {self.per_class}")
        if self.steps is not None and (
            isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1
        ):
            raise ValueError(f"steps must be a whole number >= 1 (or None), got {self.steps!r}")
        for name in ("epochs", "batch_size", "d_steps", "log_every", "save_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        check_seed(self.seed)
        for name in ("lr_g", "lr_d"):
            lr = getattr(self, name)
            if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {lr}")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        self._check_levers()
        problem = sampling_problem(self.sampling)
        if problem:
            raise ValueError(problem)
        unknown = set(self.diffaugment) - set(DIFFAUGMENT_POLICIES)
        if unknown:
            raise ValueError(
                f"unknown DiffAugment policy {sorted(unknown)}; choose from {', '.join(DIFFAUGMENT_POLICIES)}"
            )

    def _check_levers(self) -> None:
        choices = {"loss": LOSSES, "lr_decay": LR_DECAYS, "select_by": SELECT_METRICS}
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ValueError(f"{name} must be one of {', '.join(valid)}, got {getattr(self, name)!r}")
        for name in _LOSS_WEIGHTS:  # 0 = off
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be a finite number >= 0 (0 = off), got {getattr(self, name)}")
        for name in ("r1_every", "coverage_every", "coverage_bank"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.density_clip <= 1.0:
            raise ValueError(f"density_clip must be a quantile in (0, 1], got {self.density_clip}")
        if self.sample_center_of_mass and self.model.center_of_mass:
            raise ValueError("sample_center_of_mass: the generator already centres its images in training; choose one")
        if not (math.isfinite(self.ema_warmup) and self.ema_warmup > 1):
            raise ValueError(f"ema_warmup must be a finite number > 1, got {self.ema_warmup}")
        if not isinstance(self.augment_real, bool) and self.augment_real not in ("affine", "shift-flip"):
            raise ValueError(f"augment_real must be true, false, 'affine' or 'shift-flip', got {self.augment_real!r}")
        if not 0.0 <= self.pseudo_label <= 1.0:
            raise ValueError(f"pseudo_label must be a probability in [0, 1] (0 = off), got {self.pseudo_label}")
        if self.pseudo_label and self.per_class is None and self.unlabelled is None:
            raise ValueError(
                "pseudo_label needs a pool: per_class (the rest of the split) or unlabelled (a folder of images)"
            )
        if self.unlabelled is not None and not self.pseudo_label:
            raise ValueError(
                "unlabelled needs pseudo_label, the confidence a pool image needs to join, "
                f"e.g. {PSEUDO_LABEL_THRESHOLD}"
            )
        if (self.ac_weight > 0) != self.model.aux_classifier:
            raise ValueError(
                "ac_weight > 0 and model.aux_classifier go together (the class head is trained by that term); "
                f"got ac_weight={self.ac_weight}, aux_classifier={self.model.aux_classifier}"
            )
        if self.loss != "bce" and self.label_smoothing:
            raise ValueError(f"label_smoothing applies to the bce loss only; drop it with loss={self.loss!r}")
        if self.compile and (self.r1_gamma or self.r2_gamma):
            raise ValueError(
                "the R1 and R2 penalties need a double backward, which torch.compile does not support; drop one"
            )
        if self.holdout < 0:
            raise ValueError(f"holdout must be >= 0, got {self.holdout}")
        if (self.select_by == "none") != (self.holdout == 0) or (self.select_by == "none") != (
            self.select_evaluator is None
        ):
            raise ValueError(
                "select_by, holdout and select_evaluator go together: checkpoint selection needs held-out images "
                "per class and an evaluator (`ganaug evaluator train`), and held-out images are only for selection"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: a key this version does not know (the message names it and the known ones), or a value
                :meth:`__post_init__` rejects.
        """
        d = dict(d)
        _check_keys(d, cls, "TrainConfig")
        model = d.get("model", {})
        if not isinstance(model, dict):
            raise TypeError(f"TrainConfig.model must be a mapping, got {type(model).__name__}")
        _check_keys(model, ModelConfig, "ModelConfig")
        d["model"] = ModelConfig(**model)
        d["diffaugment"] = tuple(d.get("diffaugment", ()))
        return cls(**d)


def check_seed(seed: int, *, name: str = "seed") -> None:
    """Raise ``ValueError`` unless ``seed`` is an int in ``[0, MAX_SEED]`` (what every RNG ganaug uses takes)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{name} must be an integer in [0, 2**63 - 1], got {seed}")


def _check_keys(d: dict[str, Any], cls: type, what: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown {what} key(s) {', '.join(unknown)} (this version knows {', '.join(sorted(known))})")
