"""The lab's profiles: the product's (:mod:`ganaug.downstream.profiles`) with the lab's levers, and the probes.

:class:`Profile` adds to the product's profile the levers only the lab runs: where generated items come from
(``synthetic_source``: the GAN, a learned elastic deformation of the subset's own images or its hand-set
control, :mod:`.deform`) and which latents the GAN is given (``latent_source``: the prior, or latents of the
GAN's own training images found by inversion, :mod:`.levers`). :data:`PROBES` names the levers tried, each
as the Profile fields it overrides; the figures of probes whose GAN levers ganaug no longer has are in
``benchmarks/results/HISTORY.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ganaug.downstream import profiles as core
from ganaug.downstream.profiles import (  # noqa: F401  (re-exported: the lab's modules and scripts import them here)
    CLASSICAL,
    CONDITIONS,
    FULL,
    GENERATED,
    MIXED,
    POOL_CONDITIONS,
    POOLED,
    REFERENCE,
    budget_name,
    config_key,
)
from ganaug.errors import InputError


@dataclass(frozen=True)
class Profile(core.Profile):
    """The product's :class:`ganaug.downstream.profiles.Profile` and the lab's levers.

    ``latent_source`` ``prior`` draws latents from N(0, I); ``mix`` and ``far`` first invert the GAN's own
    training subset (the latents that reproduce its real images, :func:`.levers.invert`): ``mix`` interpolates
    between the latents of two images of the same class (style mixing between training images), ``far`` draws
    ``far_oversample`` times the prior latents and keeps those farthest from every inverted latent of their
    class. ``synthetic_source`` ``gan`` takes the generated items from the GAN; ``deform`` from the learned
    elastic deformation of the subset's own images (:mod:`.deform`, one deformer per (budget, seed), cached),
    ``elastic`` from hand-set random smooth fields of the same grid and the learned fields' RMS displacement
    (the control: is the learning worth anything over elastic noise of equal strength?); ``deform_steps``: the
    deformer's training steps, ``deform_diversity`` its mode-seeking weight (:class:`.deform.DeformConfig`).
    """

    latent_source: str = "prior"
    far_oversample: int = 2
    synthetic_source: str = "gan"
    deform_steps: int = 2000
    deform_diversity: float = 1.0

    LEVERS_ADDED_LATER: ClassVar[tuple[tuple[str, Any], ...]] = (
        *core.Profile.LEVERS_ADDED_LATER,
        ("latent_source", "prior"),
        ("far_oversample", 2),
        ("synthetic_source", "gan"),
        ("deform_steps", 2000),
        ("deform_diversity", 1.0),
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.latent_source not in ("prior", "mix", "far") or self.far_oversample < 1:
            raise InputError(f"latent_source {self.latent_source!r}: choose prior, mix or far (far_oversample >= 1)")
        if self.synthetic_source not in ("gan", "deform", "elastic"):
            raise InputError(f"synthetic_source {self.synthetic_source!r}: choose gan, deform or elastic")

    @classmethod
    def of(cls, p: core.Profile) -> Profile:
        """The product profile ``p`` as a lab profile (the lab's levers at their defaults)."""
        return cls(**{f.name: getattr(p, f.name) for f in dataclasses.fields(core.Profile)})

    def key_levers(self, seed: int) -> dict[str, Any]:
        levers = super().key_levers(seed)
        if self.synthetic_source != "gan":  # the deformer's whole config (it is trained per cell's seed)
            from .levers import deform_config

            levers["deformer"] = deform_config(self, seed).to_dict()
        return levers

    def latents(self, run, per_class: int, num_classes: int, *, seed: int, subset, info: dict[str, Any]):
        if self.latent_source == "prior":
            return None
        from .levers import inverted_latents

        return inverted_latents(
            run,
            per_class,
            num_classes,
            seed=seed,
            latent_scale=self.latent_scale,
            latent_source=self.latent_source,
            far_oversample=self.far_oversample,
            subset=subset,
            info=info,
        )

    def other_items(self, subset, per_class: int, *, budget: int, seed: int, cache, device: str, log, info):
        if self.synthetic_source == "gan":
            return None
        from .levers import deformed

        return deformed(
            self, subset, per_class, budget=budget, seed=seed, cache=cache, device=device, log=log, info=info
        )


PROFILES: dict[str, Profile] = {name: Profile.of(p) for name, p in core.PROFILES.items()}


#: The levers tried, as named probes: (what it tries, the Profile fields it overrides: a value, or a function
#: of the base profile). ``baseline`` is the profile as it is. Each probe runs (a)-(d) of the given budgets and
#: seeds; cells and GANs are cached.
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
    "label-smoothing": ("label noise: generated items' labels smoothed (0.2)", {"synthetic_smoothing": 0.2}),
    "smooth-share-10": ("label smoothing 0.2 and 10% generated", {"synthetic_smoothing": 0.2, "real_fraction": 0.9}),
    "share-decay": (
        "synthetic share schedule: 50% generated at the first step, falling linearly to none at the last",
        {"real_fraction": 0.5, "real_fraction_end": 1.0},
    ),
    "latent-mix": (
        "variety: style mixing between training images (latents interpolated between two inverted real images)",
        {"latent_source": "mix"},
    ),
    "latent-mix-share-10": (
        "style mixing between training images, 10% generated",
        {"latent_source": "mix", "real_fraction": 0.9},
    ),
    "far-latents": (
        "variety: latents far from those that reproduce the training images (the farther half of 2x draws)",
        {"latent_source": "far"},
    ),
    "far-latents-share-10": ("far latents, 10% generated", {"latent_source": "far", "real_fraction": 0.9}),
    # The winners with a 4x classifier budget ((a) and (c) get it too): does the verdict hold when the
    # classifier trains longer, or did 800 steps favour whatever converges fastest?
    "share-10-budget-4x": (
        "10% generated, classifier budget 4x clf_steps (for (a) and (c) as well)",
        {"real_fraction": 0.9, "clf_steps": lambda p: 4 * p.clf_steps},
    ),
    "smooth-share-10-budget-4x": (
        "label smoothing 0.2 and 10% generated, classifier budget 4x clf_steps (for (a) and (c) as well)",
        {"synthetic_smoothing": 0.2, "real_fraction": 0.9, "clf_steps": lambda p: 4 * p.clf_steps},
    ),
    "deform": (
        "variety: elastic deformation learned from the subset (pairs critic, as DAGAN) instead of the GAN",
        {"synthetic_source": "deform"},
    ),
    "deform-share-10": (
        "learned elastic deformation, 10% generated",
        {"synthetic_source": "deform", "real_fraction": 0.9},
    ),
    "elastic": (
        "control for deform: hand-set random smooth fields of the learned fields' strength",
        {"synthetic_source": "elastic"},
    ),
    "elastic-share-10": (
        "hand-set elastic control, 10% generated",
        {"synthetic_source": "elastic", "real_fraction": 0.9},
    ),
}


def probe_profile(base: Profile, name: str) -> Profile:
    """``base`` with the overrides of probe ``name`` (a key of :data:`PROBES`)."""
    if name not in PROBES:
        raise InputError(f"unknown probe {name!r}; choose from {', '.join(PROBES)}")
    if not isinstance(base, Profile):
        base = Profile.of(base)
    return dataclasses.replace(base, **{k: v(base) if callable(v) else v for k, v in PROBES[name][1].items()})


def resolve_profile(name: str, overrides: dict[str, Any] | None = None) -> Profile:
    """The named lab profile with ``overrides`` (field names of :class:`Profile`) applied."""
    return core.resolve_profile(name, overrides, profiles=PROFILES)
