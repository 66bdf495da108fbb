"""How dense the real images are around each image: pixel (or feature) distances to the k-th nearest neighbour.

:func:`nearest_distances` is the one k-NN search ganaug has (precision/recall and memorization in
:mod:`ganaug.eval.metrics` use it on features and pixels); :func:`class_density_distances` turns it into each
training image's distance to its ``k``-th nearest other image of its class, what density weighting
(``flatten_density``, :mod:`ganaug.train.weighting`) trains on and what ``--unflatten``
(:mod:`ganaug.sample.unflatten`) corrects with.
"""

from __future__ import annotations

from typing import Any

import torch

from ganaug.config import DENSITY_K
from ganaug.errors import InputError


def _as_tensor(x: Any, name: str) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.dim() != 2:
        raise InputError(f"{name} must have 2 dimensions, got shape {list(t.shape)}")
    return t


def nearest_distances(queries: Any, reference: Any, *, k: int = 1, batch_size: int = 1024) -> torch.Tensor:
    """Euclidean distance float32 [N] from each query [N, D] to its ``k``-th nearest row of reference [M, D]."""
    q, r = _as_tensor(queries, "queries").float(), _as_tensor(reference, "reference").float()
    if q.shape[1] != r.shape[1]:
        raise InputError(f"queries have {q.shape[1]} dimensions but reference has {r.shape[1]}")
    if not 1 <= k <= len(r):
        raise InputError(f"k must be in [1, {len(r)}] (the reference size), got {k}")
    out = [
        torch.cdist(q[i : i + batch_size], r).topk(k, dim=1, largest=False).values[:, k - 1]
        for i in range(0, len(q), batch_size)
    ]
    return torch.cat(out) if out else torch.zeros(0)


def class_density_distances(flat: torch.Tensor, *, k: int = DENSITY_K, clip: float = 1.0) -> tuple[torch.Tensor, float]:
    """For one class's images, flattened float [M, P]: each one's pixel distance to its ``k``-th nearest other
    image of the class (the last one when there are fewer), float64 [M], and the ``clip`` quantile of those
    distances (:func:`ganaug.train.weighting.density_weights`' cap; :class:`ganaug.sample.unflatten.Unflatten` caps generated images' with it)."""
    d = nearest_distances(flat, flat, k=min(k + 1, len(flat))).double()  # the first neighbour is itself
    return d, float(torch.quantile(d, clip))
