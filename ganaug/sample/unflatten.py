"""Undo a run's ``flatten_density`` when sampling (``--unflatten K``): :class:`Unflatten` reweights
:class:`ganaug.sample.resample.Sampling`'s candidates towards the real data's density (the law of which candidate each
sample keeps is in :mod:`ganaug.sample.resample`)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganaug.config import DENSITY_K
from ganaug.data.density import Neighbours, class_density_distances
from ganaug.data.sources import training_set
from ganaug.errors import InputError
from ganaug.sample.resample import Sampling


@dataclass(frozen=True)
class Unflatten:
    """Undo a run's ``flatten_density A`` when sampling. That run drew each training image ``x`` with
    probability proportional to ``d(x) ** A`` (``d``: pixel distance to the 5th nearest other training image of
    its class, capped at a quantile), so its generator learned the rare styles but also makes them ``d ** A``
    times too often. Each sample is drawn as ``candidates`` independent candidates (each with the temperature
    and the label check), and one is kept with probability proportional to ``d(x) ** -A`` (``d`` now to the 5th
    nearest training image of the label, with the same cap): sampling-importance-resampling back towards the
    real density, exact as ``candidates`` grows, while the generator keeps what it learned from the rare
    styles. Candidate 0 is the sample without resampling, so ``candidates = 1`` changes nothing.

    Attributes:
        images: float32 [M, P], the run's training images flattened, in [-1, 1].
        labels: int64 [M], their classes.
        caps: float64 [C], each class's cap on ``d`` (the run's ``density_clip`` quantile).
        exponent: the run's ``flatten_density`` A (> 0).
        candidates: candidates per sample (>= 1).
    """

    images: torch.Tensor
    labels: torch.Tensor
    caps: np.ndarray
    exponent: float
    candidates: int

    def __post_init__(self) -> None:
        k = self.candidates
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"--unflatten takes a whole number of candidates >= 1, got {k!r}")

    @classmethod
    def build(
        cls, images: torch.Tensor, labels: torch.Tensor, *, exponent: float, clip: float, candidates: int
    ) -> Unflatten:
        """From training images float [M, 1, H, W] in [-1, 1] and labels int64 [M] (every class present)."""
        flat = images.flatten(1).float().contiguous()
        y = torch.as_tensor(labels, dtype=torch.int64)
        caps = np.array([class_density_distances(flat[y == c], clip=clip)[1] for c in range(int(y.max()) + 1)])
        return cls(flat, y, caps, float(exponent), candidates)

    @functools.cached_property
    def sha256(self) -> str:
        """Identity of the training images, labels, caps and exponent (manifests and caches)."""
        digest = hashlib.sha256()
        for part in (self.images.numpy().tobytes(), self.labels.numpy().tobytes(), self.caps.tobytes()):
            digest.update(part)
        digest.update(repr(self.exponent).encode())
        return digest.hexdigest()

    @classmethod
    def for_run(cls, run: str | Path, *, candidates: int, data_root: str | Path | None = None) -> Unflatten:
        """For the run folder ``run`` (its ``config.json`` says how it was trained; its training images are read
        from ``data_root``, default the one it recorded).

        Raises:
            InputError: ``run`` is not a run folder, was trained without ``flatten_density``, or on data this
                cannot rebuild (pseudo-labels, augmented reals); its data cannot be found.
        """
        from ganaug.train.runfolder import CONFIG, RunFolder  # here: the run folder's module loads matplotlib

        run = Path(run)
        if not (run / CONFIG).is_file():
            raise InputError(
                f"--unflatten needs the run folder (its {CONFIG} records flatten_density); {run} has no {CONFIG}"
            )
        doc = RunFolder(run).read_config()  # checked: schema, keys
        config, data = doc["config"], doc["data"]
        try:
            exponent, clip = float(config["flatten_density"]), float(config["density_clip"])
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{run / CONFIG} does not read as a ganaug run config ({type(e).__name__}: {e})") from None
        if not exponent > 0:
            raise InputError(
                f"{run} was trained without density weighting (flatten_density, the mnist preset's): --unflatten "
                "has nothing to undo; drop it"
            )
        if config.get("pseudo_label") or config.get("unlabelled") or config.get("augment_real"):
            raise InputError(
                f"{run} trained on pseudo-labelled or augmented images, whose density --unflatten cannot rebuild"
            )
        root = data_root if data_root is not None else config.get("data_root")
        if data.get("dataset") != "digits" and (root is None or not Path(root).is_dir()):
            raise InputError(f"--unflatten reads {run}'s training images: pass --data-root (where the data is now)")
        images, labels = training_set(data, root=root)
        return cls.build(images, labels, exponent=exponent, clip=clip, candidates=candidates)

    @functools.cached_property
    def _by_class(self) -> list[Neighbours]:
        """The training images of each class, ready to measure against (built once, not at every batch)."""
        return [Neighbours(self.images[self.labels == c]) for c in range(len(self.caps))]

    def weights(self, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """float64 [N]: ``d(x) ** -A`` of images float32 [N, 1, H, W] in [-1, 1] for labels int64 [N]. An image's
        weight does not depend on what else is in the call, up to the matrix product's rounding
        (:class:`ganaug.data.density.Neighbours`), so a caller measures all its candidates in one call: on MNIST
        one product per class over all K candidates took 1.3 s where one per candidate took 2.1 s."""
        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).flatten(1)
        d = np.ones(len(labels))
        for c in np.unique(labels):
            rows = np.flatnonzero(labels == c)
            mine = self._by_class[int(c)]
            near = mine.kth(x[torch.from_numpy(rows)], k=min(DENSITY_K, len(mine)))
            d[rows] = np.clip(near.double().numpy(), 1e-6, self.caps[int(c)])
        return d**-self.exponent

    @property
    def num_classes(self) -> int:
        """Classes of the training images (the generator's must match)."""
        return len(self.caps)

    def identity(self) -> dict[str, Any]:
        """JSON-able description for manifests, reports and cache keys."""
        return {"sha256": self.sha256, "candidates": self.candidates, "exponent": self.exponent}


def unflatten_memory(candidates: int, *, batch: int, image_shape: tuple[int, ...]) -> int:
    """Bytes :meth:`ganaug.sample.resample.Sampling.images` holds at once for ``candidates`` (``--unflatten K``) with
    ``batch`` images a call of images shaped ``image_shape`` ([C, H, W] or [N, C, H, W]): the K candidates of
    each image as float32, twice while they are stacked, and their weights and cumulative sums (float64 [N, K],
    a few copies). 0 when K <= 1 (one candidate is the plain sample)."""
    if candidates <= 1 or batch <= 0:
        return 0
    pixels = math.prod(image_shape[-3:])
    return candidates * batch * (2 * 4 * pixels + 5 * 8)


def check_unflatten_room(
    candidates: int, *, batch: int, image_shape: tuple[int, ...], option: str = "--batch-size"
) -> None:
    """Refuse, before any work (and before the training images are read), ``--unflatten candidates`` whose
    candidates (:func:`unflatten_memory`) cannot fit in the memory available
    (:func:`ganaug.outputs.check_room`); ``option`` names what sets ``batch``.

    Raises:
        InputError: one line with the memory it needs and what is available, and what to lower.
    """
    from ganaug.outputs import check_room

    memory = unflatten_memory(candidates, batch=batch, image_shape=image_shape)
    if not memory:
        return
    what = f"--unflatten {candidates:,} ({candidates:,} candidates of each of a batch's {batch:,} images, held at once)"
    check_room(what=what, memory=memory, fix=f"choose a smaller --unflatten or {option}")


def with_unflatten(
    sampling: Sampling, candidates: int, *, run: str | Path, data_root: str | Path | None = None
) -> Sampling:
    """``sampling`` with ``--unflatten candidates`` for the run folder ``run`` (0: ``sampling`` unchanged)."""
    if not candidates:
        return sampling
    return dataclasses.replace(sampling, unflatten=Unflatten.for_run(run, candidates=candidates, data_root=data_root))
