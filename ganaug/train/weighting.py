"""Which training images an epoch draws: each once (a permutation), or with ``flatten_density`` more often the
rarer they are (:func:`density_weights`: draws with replacement weighted by each image's distance to its
neighbours of the same class, :mod:`ganaug.data.density`)."""

from __future__ import annotations

import torch

from ganaug.config import DENSITY_K
from ganaug.data.density import class_density_distances


def epoch_order(n: int, weights: torch.Tensor | None, rng: torch.Generator) -> torch.Tensor:
    """The indices int64 [n] of one epoch's images, drawn from ``rng``: a permutation of ``range(n)``, or with
    ``weights`` float [n] (:func:`density_weights`) ``n`` draws with replacement in those proportions."""
    if weights is None:
        return torch.randperm(n, generator=rng, device=rng.device)
    return torch.multinomial(weights, n, replacement=True, generator=rng)


def density_weights(
    images: torch.Tensor, labels: torch.Tensor, exponent: float, *, k: int = DENSITY_K, clip: float = 1.0
) -> torch.Tensor | None:
    """``TrainConfig.flatten_density``'s sampling probabilities float [N] (summing to 1) for images float [N, C, H,
    W] with labels int64 [N]: ``d ** exponent`` for each image's pixel distance ``d`` to its ``k``-th nearest other
    image of its class (the class's last neighbour when it has fewer), capped at the ``clip`` quantile of its
    class's distances, normalized so each class keeps its share of the data. A class of one image, or of
    identical images, gets equal weights. Cost: a k-NN search within each class (all of MNIST: seconds). None
    when ``exponent`` is 0 (uniform: :func:`epoch_order` then permutes)."""
    if not exponent:
        return None
    weights = torch.zeros(len(labels), dtype=torch.float64, device=labels.device)
    for c in labels.unique():
        members = (labels == c).nonzero().squeeze(1)
        d, cap = class_density_distances(images[members].flatten(1).float(), k=k, clip=clip)
        d = d.clamp_max(cap)
        w = d.clamp_min(1e-6) ** exponent if d.max() > 0 else torch.ones_like(d)
        weights[members] = w / w.sum() * len(members) / len(labels)
    return weights.float()
