"""The downstream benchmark's profiles: everything that fixes its numbers, and the cache key of a config."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ganaug.config import ModelConfig
from ganaug.errors import InputError

CONDITIONS = {
    "a": "real only",
    "b": "real + generated",
    "c": "real + classical aug.",
    "d": "real + classical aug. + generated",
    "e": "generated only",
}
FULL = 0  # budget value meaning "the whole training split"
REFERENCE = {10: 64.0, 50: 86.0, 100: 92.0, 500: 97.0}  # supervised CNN on MNIST subsets (FIELD_NOTES.md)


@dataclass(frozen=True)
class Profile:
    """Everything that fixes a benchmark's numbers (written into results.json).

    ``gan_steps`` is the target number of GAN steps at every budget (epochs are derived from it, since a
    100-image subset gives one batch an epoch); ``synthetic_per_class`` is the amount of generated images
    per class for (b), (d), (e); ``sweep`` lists extra amounts tried for (b) at ``sweep_budgets``.
    With ``synthetic_filter``, generated images are kept only when a classifier trained on the same real
    subset (condition c, same seed: no other labels involved) assigns them to the requested class; each class
    is over-generated ``filter_oversample`` times and keeps at most ``synthetic_per_class``.

    ``classical`` names the dataset's classical augmentation (a key of ``ganaug.augment_ops.CLASSICAL``:
    ``affine`` for digits, ``shift-flip`` for clothes), used by (c) and (d) and, with ``gan_augment_real``,
    on the real images of the tiny-budget GANs, so (d) against (c) measures what the GAN adds beyond it.

    Levers on how the classifier uses generated data (issue 12; the defaults are the original protocol):
    ``synthetic_labels`` ``hard`` (the class asked of G) or ``soft`` (the probabilities the (c) classifier of
    the same real subset assigns: no other labels involved); ``synthetic_weight`` scales the loss of
    generated items; ``synthetic_classical`` applies the classical augmentation to generated items too (in
    (d)); ``pretrain_steps`` > 0 trains (b)/(d) first that many steps on generated images only, then
    ``clf_steps`` on the real ones (fine-tuning; (d) with classical augmentation throughout).
    Levers on which images are generated: ``latent_scale`` multiplies every latent (a temperature: > 1
    explores, < 1 truncates); ``shared_style`` gives image j of every class the same latent (style shared
    across classes). ``gan_loss``/``gan_ac_weight``/``gan_model`` are GAN levers (a changed GAN trains anew, cached apart).
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
    gan_augment_real: bool = True  # the classical augmentation on the real images (TrainConfig.augment_real)
    gan_loss: str = "bce"
    gan_ac_weight: float = 0.0  # the AC-GAN class term (needs gan_model.aux_classifier)
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
    classical: str = "affine"
    synthetic_labels: str = "hard"
    synthetic_weight: float = 1.0
    synthetic_classical: bool = True
    pretrain_steps: int = 0
    latent_scale: float = 1.0
    shared_style: bool = False

    def __post_init__(self) -> None:
        from ganaug.augment_ops import CLASSICAL

        if self.classical not in CLASSICAL:
            raise InputError(f"classical {self.classical!r}: choose one of {', '.join(CLASSICAL)}")
        if self.synthetic_labels not in ("hard", "soft"):
            raise InputError(f"synthetic_labels {self.synthetic_labels!r}: choose hard or soft")
        if not (self.synthetic_weight > 0 and self.latent_scale > 0 and 0 < self.real_fraction < 1):
            raise InputError("synthetic_weight and latent_scale must be > 0, real_fraction in (0, 1)")

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


#: Issue 12's levers as named probes: (what it tries, the Profile fields it overrides: a value, or a function
#: of the base profile). ``baseline`` is the profile as it is. Each probe runs (a)-(d) of the given budgets and seeds; cells and GANs are cached.
PROBES: dict[str, tuple[str, dict[str, Any | Callable[[Profile], Any]]]] = {
    "baseline": ("the profile unchanged", {}),
    "soft-labels": (
        "label noise: generated items carry the (c) classifier's probabilities",
        {"synthetic_labels": "soft"},
    ),
    "filter": ("label noise: keep only generated items the (c) classifier agrees with", {"synthetic_filter": True}),
    "share-25": ("synthetic share: 25% of each batch generated", {"real_fraction": 0.75}),
    "share-10": ("synthetic share: 10% of each batch generated", {"real_fraction": 0.9}),
    "weight-0.3": ("loss weight 0.3 on generated items", {"synthetic_weight": 0.3}),
    "no-classical-on-synthetic": ("classical augmentation on real items only", {"synthetic_classical": False}),
    "pretrain": (
        "pretrain clf_steps on generated only, then clf_steps on real (fine-tune)",
        {"pretrain_steps": lambda p: p.clf_steps},
    ),
    "budget-4x": ("classifier budget 4x clf_steps, for (a) and (c) as well", {"clf_steps": lambda p: 4 * p.clf_steps}),
    "temperature-1.5": ("sampling that explores: latents x1.5", {"latent_scale": 1.5}),
    "shared-style": ("style shared across classes: the same latent for item j of every class", {"shared_style": True}),
    "soft-share-25": ("soft labels and 25% generated", {"synthetic_labels": "soft", "real_fraction": 0.75}),
    "soft-share-10": ("soft labels and 10% generated", {"synthetic_labels": "soft", "real_fraction": 0.9}),
    "ac-gan": (
        "label noise, GAN side: an auxiliary classifier in D (AC-GAN term, weight 1)",
        {"gan_ac_weight": 1.0, "gan_model": lambda p: dataclasses.replace(p.gan_model, aux_classifier=True)},
    ),
    "hinge-sn": (
        "GAN: hinge loss + spectral norm (issue 11's best lever)",
        {"gan_loss": "hinge", "gan_model": lambda p: dataclasses.replace(p.gan_model, spectral_norm=True)},
    ),
}


def probe_profile(base: Profile, name: str) -> Profile:
    """``base`` with the overrides of probe ``name`` (a key of :data:`PROBES`)."""
    if name not in PROBES:
        raise InputError(f"unknown probe {name!r}; choose from {', '.join(PROBES)}")
    return dataclasses.replace(base, **{k: v(base) if callable(v) else v for k, v in PROBES[name][1].items()})


# Fashion-MNIST: the cpu profile's settings with the practitioner's augmentation for clothes.
PROFILES["cpu-fashion"] = dataclasses.replace(
    PROFILES["cpu"], name="cpu-fashion", dataset="fashion-mnist", classical="shift-flip"
)


def config_key(d: dict[str, Any]) -> str:
    """The cache key of a config: 12 hex digits of the sha256 of its sorted JSON (cached results depend on it)."""
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def budget_name(budget: int) -> str:
    """'full' for :data:`FULL`, else the number."""
    return "full" if budget == FULL else str(budget)


def resolve_profile(name: str, overrides: dict[str, Any] | None = None) -> Profile:
    """The named profile with ``overrides`` (field names of :class:`Profile`) applied."""
    if name not in PROFILES:
        raise InputError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return dataclasses.replace(PROFILES[name], **(overrides or {}))
