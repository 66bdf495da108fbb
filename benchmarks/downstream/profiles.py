"""The downstream benchmark's profiles: everything that fixes its numbers, and the cache key of a config."""

from __future__ import annotations

import dataclasses
import hashlib
import json
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
    gan_augment_real: bool = True  # random affine on the real images (TrainConfig.augment_real)
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
