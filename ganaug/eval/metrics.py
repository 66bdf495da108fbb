"""How good are generated images? Class fidelity, Fréchet distance, k-NN precision/recall, memorization.

Feature space: the 128-d penultimate layer of ganaug's own evaluation CNN
(:meth:`ganaug.classify.evaluator.Evaluator.features`, after the ReLU of its hidden linear layer), not Inception:
Inception features of 28x28 grayscale digits mean little and would need downloaded weights. Distances between
images for the memorization check are plain Euclidean distances between pixels in [-1, 1] (784-d).

Arrays in, numbers out: :func:`class_fidelity`, :func:`frechet_distance`, :func:`precision_recall`,
:func:`nearest_distances`, :func:`memorization`; this module never opens a generator.
:func:`ganaug.eval.report.evaluate_generator` draws from one and runs them all against real data, with the
real-vs-real floor of each beside it. Feature arrays may be torch tensors or numpy arrays, float [N, D].
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ganaug.data.density import nearest_distances
from ganaug.errors import InputError

__all__ = [
    "Fidelity",
    "Memorization",
    "PrecisionRecall",
    "class_fidelity",
    "frechet_distance",
    "frechet_distance_from_stats",
    "gaussian_stats",
    "memorization",
    "nearest_distances",
    "precision_recall",
]


def _as_tensor(x: Any, name: str, *, ndim: int = 2) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.dim() != ndim:
        raise InputError(f"{name} must have {ndim} dimensions, got shape {list(t.shape)}")
    return t


# ---- class fidelity ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Fidelity:
    """Share of samples the evaluator assigns to the class they were generated for.

    Attributes:
        overall: over all samples, in [0, 1].
        per_class: one share per class (NaN for a class with no samples).
    """

    overall: float
    per_class: list[float]


def class_fidelity(predicted: Any, requested: Any, *, num_classes: int) -> Fidelity:
    """Class fidelity from the evaluator's predictions.

    Args:
        predicted: int [N], the evaluator's classes for the samples.
        requested: int [N], the classes the samples were generated for.
        num_classes: number of classes (length of ``per_class``).

    Raises:
        InputError: shapes differ or N is 0.
    """
    p = _as_tensor(predicted, "predicted", ndim=1).long()
    r = _as_tensor(requested, "requested", ndim=1).long()
    if p.shape != r.shape or len(p) == 0:
        raise InputError(f"predicted and requested must be non-empty and of equal length, got {len(p)} and {len(r)}")
    hit = (p == r).double()
    per_class = [float(hit[r == c].mean()) if bool((r == c).any()) else float("nan") for c in range(num_classes)]
    return Fidelity(float(hit.mean()), per_class)


# ---- Fréchet distance -------------------------------------------------------------------------


def gaussian_stats(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean float64 [D] and unbiased covariance float64 [D, D] of features [N, D] (N >= 2)."""
    f = _as_tensor(features, "features").double().numpy()
    if len(f) < 2:
        raise InputError(f"need at least 2 feature vectors for a covariance, got {len(f)}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``, the squared Fréchet (2-Wasserstein) distance of
    two Gaussians, with the matrix square root from :func:`scipy.linalg.sqrtm`.

    A singular product (fewer samples than dimensions, dead features) gets ``1e-6 * I`` added to both
    covariances, as in the reference FID code; a tiny imaginary part from rounding is dropped.
    """
    from scipy import linalg

    diff = mu1 - mu2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", linalg.LinAlgWarning)
            covmean = linalg.sqrtm(sigma1 @ sigma2)
        singular = not np.isfinite(covmean).all()
    except linalg.LinAlgWarning:
        singular = True
    if singular:
        offset = np.eye(len(sigma1)) * 1e-6
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = covmean.real
    return float(max(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean), 0.0))


def frechet_distance(features_a: Any, features_b: Any) -> float:
    """Fréchet distance between two feature sets [N, D] and [M, D] (Gaussians fitted to each).

    Symmetric, >= 0, and 0 for identical sets (up to the matrix square root's rounding). Biased upwards
    for small N: compare only numbers computed with the same N (hence the real-vs-real floor).
    """
    a, b = _as_tensor(features_a, "features_a"), _as_tensor(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise InputError(f"feature sizes differ: {a.shape[1]} vs {b.shape[1]}")
    return frechet_distance_from_stats(*gaussian_stats(a), *gaussian_stats(b))


# ---- k-NN precision and recall ----------------------------------------------------------------


def _inside_any_ball(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, batch_size: int) -> torch.Tensor:
    out = [
        (torch.cdist(points[i : i + batch_size], centres) <= radii[None, :]).any(dim=1)
        for i in range(0, len(points), batch_size)
    ]
    return torch.cat(out)


@dataclass(frozen=True)
class PrecisionRecall:
    """Kynkäänniemi et al. (2019): precision = share of fake samples inside the real manifold, recall =
    share of real samples inside the fake manifold; a manifold is the union of balls around each of its
    points reaching that point's ``k``-th nearest neighbour in the same set."""

    precision: float
    recall: float
    k: int
    #: With labels: entry c is the precision of the class-c fake points (share inside the whole real manifold)
    #: and the recall of the class-c real points (share inside the whole fake manifold). Their means weighted by
    #: class size are ``precision`` and ``recall``: this splits the overall figures, it does not recompute them
    #: within classes.
    per_class_precision: list[float] | None = None
    per_class_recall: list[float] | None = None


def precision_recall(
    real_features: Any,
    fake_features: Any,
    *,
    k: int = 3,
    batch_size: int = 1024,
    real_labels: Any = None,
    fake_labels: Any = None,
    num_classes: int | None = None,
) -> PrecisionRecall:
    """Improved precision and recall (Kynkäänniemi et al., 2019) of fake features [N, D] against real [M, D].

    Both sets should hold the same number of points (the radii shrink as a set grows). Identical sets
    give precision = recall = 1. Given ``real_labels`` int [M], ``fake_labels`` int [N] and ``num_classes``,
    the result also splits both figures by class (which classes the generator under-covers); a class with
    no points gets ``nan``.

    Raises:
        InputError: a set with k or fewer points, differing feature sizes, or labels that do not match
            their set, lie outside [0, num_classes) or come without the other set's labels.
    """
    real = _as_tensor(real_features, "real_features").float()
    fake = _as_tensor(fake_features, "fake_features").float()
    if min(len(real), len(fake)) <= k:
        raise InputError(f"each set needs more than k={k} points, got {len(real)} real and {len(fake)} fake")
    by_class = (real_labels, fake_labels, num_classes)
    if any(v is not None for v in by_class) and any(v is None for v in by_class):
        raise InputError("per-class precision/recall needs real_labels, fake_labels and num_classes together")
    # The k-th neighbour within the set, not counting the point itself (which sits at distance 0).
    real_radii = nearest_distances(real, real, k=k + 1, batch_size=batch_size)
    fake_radii = nearest_distances(fake, fake, k=k + 1, batch_size=batch_size)
    fake_inside = _inside_any_ball(fake, real, real_radii, batch_size)
    real_inside = _inside_any_ball(real, fake, fake_radii, batch_size)
    precision, recall = float(fake_inside.double().mean()), float(real_inside.double().mean())
    if num_classes is None:
        return PrecisionRecall(precision, recall, k)
    return PrecisionRecall(
        precision,
        recall,
        k,
        per_class_precision=_share_by_class(fake_inside, fake_labels, num_classes, "fake_labels"),
        per_class_recall=_share_by_class(real_inside, real_labels, num_classes, "real_labels"),
    )


def _share_by_class(inside: torch.Tensor, labels: Any, num_classes: int, name: str) -> list[float]:
    y = torch.as_tensor(np.asarray(labels)).long().flatten()
    if len(y) != len(inside):
        raise InputError(f"{name} has {len(y)} entries for {len(inside)} points")
    if len(y) and not (0 <= int(y.min()) and int(y.max()) < num_classes):
        raise InputError(f"{name} must lie in [0, {num_classes}), got {int(y.min())}..{int(y.max())}")
    return [float(inside[y == c].double().mean()) if bool((y == c).any()) else float("nan") for c in range(num_classes)]


# ---- memorization -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Memorization:
    """Distances (pixels in [-1, 1], Euclidean) of generated and of real test images to their nearest
    training image. A generator that copies its training set puts its samples much closer than unseen
    real images are.

    Attributes:
        sample_median: median distance of generated samples to the nearest training image.
        test_median: the same for real test images (never trained on): the reference.
        ratio: ``sample_median / test_median``; about 1 or more is healthy, well below 1 suggests copying.
        near_copy_share: share of samples closer to a training image than 99% of test images are
            (about 0.01 without memorization).
        train_size: number of training images searched.
    """

    sample_median: float
    test_median: float
    ratio: float
    near_copy_share: float
    train_size: int


def _flat(images: Any, name: str) -> torch.Tensor:
    t = torch.as_tensor(images)
    if t.dim() < 2:
        raise InputError(f"{name} must be [N, ...] images, got shape {list(t.shape)}")
    return t.reshape(len(t), -1).float()


def memorization(samples: Any, train: Any, test: Any, *, batch_size: int = 1024) -> Memorization:
    """Memorization check of generated ``samples`` against the generator's ``train`` images, with real
    ``test`` images as the reference. All three are float images [N, 1, 28, 28] in [-1, 1] (any shape
    [N, ...] of equal size per image works).

    Raises:
        InputError: an empty set or images of differing sizes.
    """
    s, tr, te = _flat(samples, "samples"), _flat(train, "train"), _flat(test, "test")
    if min(len(s), len(tr), len(te)) == 0:
        raise InputError("samples, train and test must all be non-empty")
    d_s = nearest_distances(s, tr, batch_size=batch_size).double()
    d_t = nearest_distances(te, tr, batch_size=batch_size).double()
    q01 = torch.quantile(d_t, 0.01)
    s_med, t_med = float(d_s.median()), float(d_t.median())
    return Memorization(
        s_med, t_med, s_med / t_med if t_med > 0 else float("inf"), float((d_s < q01).double().mean()), len(tr)
    )
