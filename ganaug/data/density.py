"""How dense the real images are around each image: pixel (or feature) distances to the k-th nearest neighbour.

:class:`Neighbours` (:func:`nearest_distances`) is the one k-NN search ganaug has (precision/recall and memorization in
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


class Neighbours:
    """Rows of a reference set ``[M, D]`` to measure queries against: ``kth(queries, k)`` is each query's
    Euclidean distance to its ``k``-th nearest reference row, bit for bit what
    ``torch.cdist(queries, reference).topk(k, largest=False)`` gives for the same slices of queries when either set
    has more than 25 rows (up to float rounding otherwise).

    ``torch.cdist`` computes p=2 distances between sets of more than 25 rows as the matrix product
    ``[-2x, |x|^2, 1] . [y, 1, |y|^2]^T``, then ``sqrt(max(., 0))`` (smaller sets directly). Here it is always that
    product, so a query's distance changes with how many others share its call by the product's rounding at most
    (a few rows a call can round differently from hundreds; the sampling chain's images were bit for bit the same
    on an AVX2 EPYC, ``benchmarks/results/chain-speed/``); the reference is padded
    once (not at each slice of queries), and the k-th smallest is taken before the square root, which keeps the
    order, on M values a query instead of after it on all of them.

    Only the padded rows are kept (one copy of the reference); :attr:`reference` is a view of them.
    """

    def __init__(self, reference: Any) -> None:
        r = _as_tensor(reference, "reference").float()
        norm = r.pow(2).sum(-1, keepdim=True)
        self._padded = torch.cat([r, torch.ones_like(norm), norm], -1)

    @property
    def reference(self) -> torch.Tensor:
        """float32 [M, D]: the reference rows (a view of the padded ones)."""
        return self._padded[:, :-2]

    def __len__(self) -> int:
        return len(self._padded)

    def kth(self, queries: Any, *, k: int = 1, batch_size: int = 1024) -> torch.Tensor:
        """float32 [N]: each query's (float [N, D]) distance to its ``k``-th nearest reference row, the queries
        taken ``batch_size`` at a time (memory: ``batch_size * M`` floats).

        Raises:
            InputError: queries that are not [N, D] with the reference's D, or ``k`` outside [1, M].
        """
        q = _as_tensor(queries, "queries").float()
        if q.shape[1] != self.reference.shape[1]:
            raise InputError(f"queries have {q.shape[1]} dimensions but reference has {self.reference.shape[1]}")
        if not 1 <= k <= len(self):
            raise InputError(f"k must be in [1, {len(self)}] (the reference size), got {k}")
        out = []
        for i in range(0, len(q), batch_size):
            part = q[i : i + batch_size]
            norm = part.pow(2).sum(-1, keepdim=True)
            product = torch.cat([part.mul(-2), norm, torch.ones_like(norm)], -1).matmul(self._padded.mT)
            out.append(product.topk(k, dim=1, largest=False).values[:, k - 1].clamp_min(0).sqrt())
        return torch.cat(out) if out else torch.zeros(0)


def nearest_distances(queries: Any, reference: Any, *, k: int = 1, batch_size: int = 1024) -> torch.Tensor:
    """Euclidean distance float32 [N] from each query [N, D] to its ``k``-th nearest row of reference [M, D]
    (:meth:`Neighbours.kth`; build a :class:`Neighbours` once to measure many sets of queries against one
    reference)."""
    return Neighbours(reference).kth(queries, k=k, batch_size=batch_size)


def class_density_distances(flat: torch.Tensor, *, k: int = DENSITY_K, clip: float = 1.0) -> tuple[torch.Tensor, float]:
    """For one class's images, flattened float [M, P]: each one's pixel distance to its ``k``-th nearest other
    image of the class (the last one when there are fewer), float64 [M], and the ``clip`` quantile of those
    distances (:func:`ganaug.train.weighting.density_weights`' cap; :class:`ganaug.sample.unflatten.Unflatten` caps generated images' with it)."""
    d = nearest_distances(flat, flat, k=min(k + 1, len(flat))).double()  # the first neighbour is itself
    return d, float(torch.quantile(d, clip))
