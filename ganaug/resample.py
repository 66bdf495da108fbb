"""Which latent each generated image gets: a temperature, and a label check that draws an image again when an
independent classifier disagrees with the label it was generated for.

Sample ``i`` of seed ``s`` stays index-addressed. Round 0 gives it the latent ``T * latents(s, i, i + 1)`` (with
``T = 1`` and no check, exactly the plain sample). When the check rejects that image, round ``r`` (``1 <= r <
rounds``) tries ``T * latents(round_seed(s, r), i, i + 1)``; the first image the check accepts is sample ``i``. If
it accepts none, sample ``i`` is the round's image it gave the highest probability of its label (the earliest on
a tie). So sample ``i`` depends only on (generator, seed, i, label, temperature, check), never on the batch size,
the order, or which other samples were asked for (up to the check's float rounding across batch sizes, which
could flip a verdict sitting exactly on a class boundary).

The check is a ganaug evaluator (``ganaug evaluator train``) trained on the generator's own training split; it
must not be the evaluator that scores the samples (``ganaug evaluate`` refuses the same weights), or the
fidelity it reports would be the filter's own verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ganaug.errors import InputError
from ganaug.labels import check_same_classes
from ganaug.sampling import derive_seed, latents

if TYPE_CHECKING:
    from ganaug.evaluator import Evaluator

#: ``round_seed(s, r)`` derives round r's latent seed with this purpose (see :func:`ganaug.sampling.derive_seed`).
_ROUND_PURPOSE = 0x7E5A


def round_seed(seed: int, r: int) -> int:
    """The latent seed of resampling round ``r`` (``seed`` itself for round 0)."""
    return seed if r == 0 else derive_seed(seed, _ROUND_PURPOSE, r)


def latent_rows(seed: int, indices: np.ndarray, z_dim: int) -> np.ndarray:
    """float32 [N, z_dim]: row k is ``latents(seed, indices[k], indices[k] + 1)`` (one call for a contiguous run)."""
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size and np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size)):
        return latents(seed, int(idx[0]), int(idx[0]) + idx.size, z_dim)
    if idx.size == 0:
        return np.zeros((0, z_dim), np.float32)
    return np.concatenate([latents(seed, int(i), int(i) + 1, z_dim) for i in idx.tolist()])


@dataclass(frozen=True)
class LabelCheck:
    """A classifier that must agree with a generated image's label (argmax of its logits equals it).

    Attributes:
        evaluator: a ganaug evaluator (float [N, 1, 28, 28] in [-1, 1] -> logits).
        sha256: sha256 of its weights file (identity for manifests and caches).
        rounds: latents tried per sample, the first included (>= 1).
    """

    evaluator: Evaluator
    sha256: str
    rounds: int = 8

    def __post_init__(self) -> None:
        if isinstance(self.rounds, bool) or not isinstance(self.rounds, int) or self.rounds < 1:
            raise InputError(f"label-check rounds must be a whole number >= 1, got {self.rounds!r}")

    @classmethod
    def load(cls, path: str | Path, *, rounds: int = 8) -> LabelCheck:
        """Load an evaluator folder as a check.

        Raises:
            InputError: ``path`` is not an evaluator folder (see :func:`ganaug.evaluator.load_evaluator`).
        """
        from ganaug.evaluator import WEIGHTS, load_evaluator
        from ganaug.export import file_sha256

        evaluator = load_evaluator(path)
        return cls(evaluator, file_sha256(Path(path) / WEIGHTS), rounds)

    def judge(self, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(agrees bool [N], probability of the label float64 [N])`` for images float32 [N, 1, 28, 28] in [-1, 1]."""
        import torch

        logits = self.evaluator.logits(torch.from_numpy(np.ascontiguousarray(images)))
        p = torch.softmax(logits.double(), dim=1).numpy()
        rows = np.arange(len(labels))
        return p.argmax(axis=1) == labels, p[rows, labels]


@dataclass(frozen=True)
class Sampling:
    """How latents are drawn: ``temperature`` scales every latent (> 1 explores, < 1 truncates); ``check``
    draws an image again while it disagrees with its label (see the module docstring for the law)."""

    temperature: float = 1.0
    check: LabelCheck | None = None

    def __post_init__(self) -> None:
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise InputError(f"temperature must be a number > 0, got {t!r}")

    def check_classes(self, classes: list[str]) -> None:
        """Raise :class:`InputError` unless the check (if any) names ``classes``, the generator's, in order."""
        if self.check is not None:
            check_same_classes(classes, self.check.evaluator.classes)

    @property
    def plain(self) -> bool:
        """True when this is ganaug's plain sampling (temperature 1, no check)."""
        return self.temperature == 1.0 and self.check is None

    def identity(self) -> dict[str, Any]:
        """JSON-able description for manifests, reports and cache keys."""
        check = None if self.check is None else {"sha256": self.check.sha256, "rounds": self.check.rounds}
        return {"temperature": float(self.temperature), "label_check": check}

    def images(
        self,
        run: Callable[[np.ndarray, np.ndarray], np.ndarray],
        labels: np.ndarray,
        indices: np.ndarray,
        *,
        seed: int,
        z_dim: int,
        z: np.ndarray | None = None,
    ) -> np.ndarray:
        """Samples ``indices`` (int64 [N], sample numbers) of ``seed`` for ``labels`` (int64 [N]).

        Args:
            run: the generator, ``(z float32 [N, z_dim], labels int64 [N]) -> float32 [N, 1, 28, 28]`` in [-1, 1].
            z: round 0's standard-normal latents float32 [N, z_dim] when the caller has them (else computed).

        Returns:
            float32 [N, 1, 28, 28] in [-1, 1].
        """
        labels = np.asarray(labels, dtype=np.int64)
        indices = np.asarray(indices, dtype=np.int64)
        t = np.float32(self.temperature)
        z0 = latent_rows(seed, indices, z_dim) if z is None else np.asarray(z, np.float32)
        out = np.asarray(run(z0 * t if t != 1 else z0, labels), dtype=np.float32)
        if self.check is None or len(labels) == 0:
            return out
        out = out.copy()  # rejected rows are overwritten below; the generator's buffer stays as it was
        accepted, best = self.check.judge(out, labels)
        for r in range(1, self.check.rounds):
            todo = np.flatnonzero(~accepted)
            if todo.size == 0:
                break
            images = np.asarray(run(latent_rows(round_seed(seed, r), indices[todo], z_dim) * t, labels[todo]))
            ok, p = self.check.judge(images, labels[todo])
            take = ok | (p > best[todo])
            out[todo[take]] = images[take]
            best[todo[take]] = p[take]
            accepted[todo[ok]] = True
        return out


def sampling_from_options(temperature: float, label_check: str | Path | None, *, rounds: int = 8) -> Sampling:
    """The :class:`Sampling` the CLI's ``--temperature`` / ``--label-check`` options describe."""
    check = None if label_check is None else LabelCheck.load(label_check, rounds=rounds)
    return Sampling(temperature, check)
