"""Typed, frozen configuration, resolved once and written into every file ganaug produces."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

DatasetName = Literal["digits", "mnist", "fashion-mnist", "imagefolder"]
DATASETS: tuple[str, ...] = ("digits", "mnist", "fashion-mnist", "imagefolder")
LOSSES: tuple[str, ...] = ("bce", "hinge")
#: The pseudo-label confidence a pool image needs when none is given (FixMatch's; ``--pseudo-label`` bare, or
#: ``--unlabelled DIR`` alone).
PSEUDO_LABEL_THRESHOLD: float = 0.95
#: ``flatten_density``'s neighbour: the distance to a training image's k-th nearest other image of its class.
DENSITY_K = 5
# TrainConfig fields that weigh a term or a lever: finite and >= 0, 0 = off.
_LOSS_WEIGHTS = ("r1_gamma", "flatten_density")
# Epochs when none are asked for: 15 passes over MNIST-sized data (the documented CPU recipe); the
# 1,347 training digits get 100 (2,100 steps at batch 64).
DEFAULT_EPOCHS: dict[str, int] = {"digits": 100}
#: Seeds are in [0, MAX_SEED]: torch.Generator takes up to 2**64 - 1 and numpy's SeedSequence no
#: negatives; the run derives its other streams from ``seed`` modulo 2**64.
MAX_SEED = 2**63 - 1
#: Grids and checkpoints of a run whose epochs come from a step budget (:attr:`TrainConfig.steps`, the presets).
DEFAULT_SAVES = 40


#: The keys a run's default sampling (``TrainConfig.sampling``, a preset's ``sampling``, the ONNX metadata) may hold.
SAMPLING_KEYS: tuple[str, ...] = ("temperature", "label_check")


def sampling_problem(sampling: Any) -> str | None:
    """What is wrong with a default-sampling mapping (``{"temperature": t, "label_check": "label_check.onnx"}``:
    t a finite number > 0; the check, when named, a ``.onnx`` file name beside the model, which ``ganaug train``
    writes; empty = plain), or ``None`` when it is right: the one check of the run config, the preset files and
    the ONNX file."""
    if not isinstance(sampling, dict):
        return f'sampling must be a mapping such as {{"temperature": 1.0}}, got {type(sampling).__name__}'
    unknown = sorted(set(sampling) - set(SAMPLING_KEYS))
    if unknown:
        return f"unknown sampling key(s) {', '.join(map(repr, unknown))}; known: {', '.join(SAMPLING_KEYS)}"
    t = sampling.get("temperature", 1.0)
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not (math.isfinite(t) and t > 0):
        return f"sampling temperature must be a finite number > 0, got {t!r}"
    check = sampling.get("label_check")
    if check is not None and not (
        isinstance(check, str)
        and check.endswith(".onnx")
        and check == check.strip()
        and "/" not in check
        and "\\" not in check
        and check not in (".onnx", "..onnx")
    ):
        return f'sampling label_check must be a file name such as "label_check.onnx" (beside the model), got {check!r}'
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
        d_width: discriminator width; its 7x7 stage has ``2 * d_width`` channels.
    """

    num_classes: int = 10
    z_dim: int = 64
    embed_dim: int = 16
    g_width: int = 32
    d_width: int = 64

    def __post_init__(self) -> None:
        for name in ("num_classes", "z_dim", "embed_dim", "g_width", "d_width"):
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str = "this run") -> ModelConfig:
        """A ModelConfig from its ``dataclasses.asdict`` form, also as older ganaug versions wrote it (see
        :func:`upgrade_config`).

        Raises:
            RemovedLeverError: a lever ganaug no longer has was on.
            ValueError: an unknown key, or a value :meth:`__post_init__` rejects.
        """
        if not isinstance(d, dict):
            raise TypeError(f"ModelConfig must be a mapping, got {type(d).__name__}")
        d = _drop_removed(d, REMOVED_MODEL_KEYS, where)
        _check_keys(d, cls, "ModelConfig")
        return cls(**d)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run.

    ``ganaug train`` sets the options a user changes from run to run; the rest are a preset's (a ``--config``
    file in the presets' JSON format sets any field but the user's: see :mod:`ganaug.train.presets`).

    ``epochs`` is the configured total: ``--resume`` continues up to it. ``None`` resolves to
    :data:`DEFAULT_EPOCHS` of the dataset (digits is small, so it gets more passes).
    ``per_class``: a seeded stratified subset of that many real images per class (``--real-per-class``).
    ``d_label_smoothing``: one-sided label smoothing of D's real targets (they become ``1 - d_label_smoothing``;
    bce loss only). Not the ``label_smoothing=`` of :func:`ganaug.augment`, which softens a classifier's targets.
    ``augment_real`` applies a label-preserving classical augmentation to the real images only: ``True`` or
    ``"affine"`` a random affine (rotation up to 10 degrees, shift up to 10%, scale 0.9-1.1), ``"shift-flip"``
    shifts of up to 2 pixels and horizontal flips (for clothes; see ``ganaug.data.augment_ops.CLASSICAL``): G then
    learns the augmented distribution, i.e. digits in slightly new poses, which for tiny subsets is what a
    downstream classifier wants.
    ``pseudo_label``: few labels, many images (the downstream benchmark's pool protocol). With ``per_class``, the GAN also
    trains on the rest of the training split, labelled by a teacher classifier trained on the subset alone
    (:mod:`ganaug.train.pseudo`); an image is kept when the teacher's probability is >= this threshold, in (0, 1];
    0 = off (the subset only). No label outside the subset is read. ``unlabelled``: a folder of unlabelled
    images (any depth) to pseudo-label instead of the rest of the split, for data that really has few labels.
    ``amp`` "auto" means bf16 autocast on CUDA and full fp32 on CPU; "bf16" autocasts on a CPU too (oneDNN's bf16
    kernels: fast where the CPU has AVX-512 BF16 or AMX; elsewhere emulated, not measured); "fp16" needs CUDA.
    ``compile``: run G and D through ``torch.compile`` in the training steps (fused elementwise kernels; on
    CUDA it pays at large batches, see ``benchmarks/gpu_bench.py``; the first steps pay the compilation).
    ``save_every``: epochs between sample grids and checkpoints (the last epoch is always saved); raise it
    for tiny subsets, where an epoch is a step or two.
    ``sample_center_of_mass``: G trains as it is, but its samples (the run's grids, the exported ONNX file,
    every sampler that loads the run) are moved by whole pixels to MNIST's centre-of-mass placement
    (:class:`ganaug.models.dcgan.CenterOfMass`). For data placed that way (training refuses other data).
    ``seed`` is an int in ``[0, 2**63 - 1]``; ``lr_g``/``lr_d`` are finite and > 0; ``beta1``/``beta2`` (Adam's,
    both optimizers) in ``[0, 1)``: anything else raises ``ValueError`` at construction, before any work.

    The losses (the presets' choice; the defaults are the plain DCGAN's):
    ``loss``: ``"bce"`` (non-saturating, with ``d_label_smoothing``) or ``"hinge"`` (D: ``relu(1 - D(x)) +
    relu(1 + D(G(z)))``, G: ``-D(G(z))``; the mnist and fashion-mnist presets, with R1).
    ``r1_gamma``: R1 penalty ``gamma / 2 * E|grad_x D(x)|^2`` on the real images D sees (0 = off), applied
    every ``r1_every`` D steps with its weight multiplied by ``r1_every`` (lazy regularization, StyleGAN2).
    ``flatten_density``: the exponent ``a`` of a data weighting towards rare styles (0 = off: every training image
    once an epoch). Each image ``x`` gets the weight ``d(x) ** a``, where ``d(x)`` is its pixel distance to the
    ``DENSITY_K``-th nearest other training image of its class (large where the class is sparse), normalized
    so each class keeps its share; ``density_clip`` caps ``d(x)`` at that quantile of its class's distances, so
    the sparsest images (often odd or mislabelled ones) weigh no more than the rest of the sparse tail. An epoch
    is then as many images drawn with these probabilities (with replacement). The inverse of instance selection
    (DeVries et al., 2020), which drops the sparse images to buy precision with recall.
    ``ema_decay``, ``ema_warmup``: the EMA generator's decay at update ``n`` is
    ``min(ema_decay, (1 + n) / (ema_warmup + n))`` (``ema_warmup`` > 1; larger warms up longer).
    ``preset``: the preset the config was resolved from, ``name@version`` (:mod:`ganaug.train.presets`; a record only).
    ``steps``: a G-step budget for a run whose training set's size is known only once its data is read (a
    pseudo-labelled pool): :meth:`ganaug.train.trainer.Trainer.new` then derives ``epochs`` and ``save_every`` (40 saves)
    from it and records them. ``None``: ``epochs`` as given.
    ``sampling``: how the run's images are drawn by default (``{"temperature": t}``; empty = plain sampling),
    carried into the run folder and the exported ONNX file.

    Levers that the committed results rejected (``benchmarks/results/HISTORY.md``) are not here; a run that used
    one is refused when read (:func:`upgrade_config`).
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
    d_label_smoothing: float = 0.0
    ema_decay: float = 0.999
    ema_warmup: float = 10.0
    loss: Literal["bce", "hinge"] = "bce"
    r1_gamma: float = 0.0
    r1_every: int = 1
    flatten_density: float = 0.0
    density_clip: float = 0.9
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
        if not 0.0 <= self.d_label_smoothing < 0.5:
            raise ValueError(f"d_label_smoothing must be in [0, 0.5), got {self.d_label_smoothing}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        self._check_levers()
        problem = sampling_problem(self.sampling)
        if problem:
            raise ValueError(problem)

    def _check_levers(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        for name in _LOSS_WEIGHTS:  # 0 = off
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be a finite number >= 0 (0 = off), got {getattr(self, name)}")
        if self.r1_every < 1:
            raise ValueError(f"r1_every must be >= 1, got {self.r1_every}")
        if not 0.0 < self.density_clip <= 1.0:
            raise ValueError(f"density_clip must be a quantile in (0, 1], got {self.density_clip}")
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
        if self.loss != "bce" and self.d_label_smoothing:
            raise ValueError(f"d_label_smoothing applies to the bce loss only; drop it with loss={self.loss!r}")
        if self.compile and self.r1_gamma:
            raise ValueError("the R1 penalty needs a double backward, which torch.compile does not support; drop one")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str = "this run") -> TrainConfig:
        """Inverse of :meth:`to_dict`; also reads the configs older ganaug versions wrote (:func:`upgrade_config`).

        Raises:
            RemovedLeverError: the run used a lever ganaug no longer has (one line naming ``where``).
            ValueError: a key this version does not know (the message names it and the known ones), or a value
                :meth:`__post_init__` rejects.
        """
        d = upgrade_config(d, where=where)
        _check_keys(d, cls, "TrainConfig")
        d["model"] = ModelConfig.from_dict(d.get("model", {}), where=where)
        return cls(**d)


#: The commit whose ganaug still has every lever the results rejected (see :func:`upgrade_config`).
LAST_WITH_REMOVED_LEVERS = "fedccbf"
#: TrainConfig keys older versions wrote, each with the value that meant "off" and the lever it belonged to.
#: A key that only tunes another lever (its bank, its period, its held-out images) is the ``None`` lever's:
#: dropped whatever its value, the lever that uses it being checked on its own key.
REMOVED_TRAIN_KEYS: dict[str, tuple[Any, str | None]] = {
    "r2_gamma": (0.0, "the R2 penalty (--r2-gamma)"),
    "ac_weight": (0.0, "the AC-GAN term (--ac-weight)"),
    "mode_seeking": (0.0, "the mode-seeking term (--mode-seeking)"),
    "coverage_weight": (0.0, "the IMLE coverage term (--coverage-weight)"),
    "coverage_bank": (None, None),
    "coverage_every": (None, None),
    "lr_decay": ("none", "learning-rate decay (--lr-decay)"),
    "select_by": ("none", "checkpoint selection (--select-by)"),
    "holdout": (None, None),
    "select_evaluator": (None, None),
    "diffaugment": ((), "DiffAugment (--diffaugment)"),
}
#: The same for ModelConfig keys.
REMOVED_MODEL_KEYS: dict[str, tuple[Any, str | None]] = {
    "spectral_norm": (False, "spectral normalization (--spectral-norm)"),
    "upsample": ("subpixel", "the deconvolution upsampling (--upsample deconv)"),
    "mbstd": (False, "minibatch standard deviation (--mbstd)"),
    "g_depth": (0, "a deeper generator (--g-depth)"),
    "d_depth": (0, "a deeper discriminator (--d-depth)"),
    "aux_classifier": (False, "the AC-GAN class head (--ac-weight)"),
    "cond_bn": (False, "class-conditional BatchNorm (--cond-bn)"),
    "center_of_mass": (False, "centre-of-mass placement in training (--center-of-mass train)"),
    "d_coords": (False, "CoordConv in D (--d-coords)"),
    "d_pack": (1, "PacGAN (--d-pack)"),
    "proj_weight": (1.0, "a heavier projection term in D (proj_weight)"),
}
#: Values of kept keys that selected a removed lever.
REMOVED_VALUES: dict[str, tuple[Any, str]] = {"loss": ("rpgan", "the relativistic pairing loss (--loss rpgan)")}
#: Keys renamed since: old name -> new name.
RENAMED_TRAIN_KEYS: dict[str, str] = {"label_smoothing": "d_label_smoothing"}


class RemovedLeverError(ValueError):
    """A run config (a checkpoint's, a run folder's config.json) used a lever this ganaug no longer has."""


def removed_lever_message(where: str, lever: str) -> str:
    """The one line that refuses a run trained with a removed ``lever``."""
    return (
        f"{where} was trained with {lever}, a lever ganaug no longer has (benchmarks/results/HISTORY.md has its "
        f"figures); resume or export it with ganaug at git commit {LAST_WITH_REMOVED_LEVERS} (a generator.onnx "
        "already exported from it still generates)"
    )


def _drop_removed(d: dict[str, Any], removed: dict[str, tuple[Any, str | None]], where: str) -> dict[str, Any]:
    """``d`` without the ``removed`` keys, each of which must hold its "off" value (lists read as tuples)."""
    out = {}
    for key, value in d.items():
        if key not in removed:
            out[key] = value
            continue
        off, lever = removed[key]
        if lever is not None and (tuple(value) if isinstance(value, list) else value) != off:
            raise RemovedLeverError(removed_lever_message(where, lever))
    return out


def upgrade_config(d: dict[str, Any], *, where: str = "this run") -> dict[str, Any]:
    """A TrainConfig dict as an older ganaug wrote it (a checkpoint's ``config``, config.json's), in this
    version's keys: removed levers that were off are dropped, renamed keys take their new names.

    Raises:
        RemovedLeverError: a removed lever was on (one line naming ``where``, the lever and the commit to use).
        TypeError: ``d`` (or its ``model``) is not a mapping.
    """
    if not isinstance(d, dict):
        raise TypeError(f"TrainConfig must be a mapping, got {type(d).__name__}")
    d = _drop_removed(d, REMOVED_TRAIN_KEYS, where)
    for old, new in RENAMED_TRAIN_KEYS.items():
        if old in d:
            if new in d:
                raise ValueError(f"{where}: {old} is the old name of {new}; give one of them")
            d[new] = d.pop(old)
    for key, (value, lever) in REMOVED_VALUES.items():
        if d.get(key) == value:
            raise RemovedLeverError(removed_lever_message(where, lever))
    model = d.get("model", {})
    if not isinstance(model, dict):
        raise TypeError(f"TrainConfig.model must be a mapping, got {type(model).__name__}")
    d["model"] = _drop_removed(model, REMOVED_MODEL_KEYS, where)
    return d


def check_seed(seed: int, *, name: str = "seed") -> None:
    """Raise ``ValueError`` unless ``seed`` is an int in ``[0, MAX_SEED]`` (what every RNG ganaug uses takes)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{name} must be an integer in [0, 2**63 - 1], got {seed}")


def _check_keys(d: dict[str, Any], cls: type, what: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown {what} key(s) {', '.join(unknown)} (this version knows {', '.join(sorted(known))})")
