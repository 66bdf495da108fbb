"""Index-addressed randomness: sample i's latent and label depend only on (seed, i).

Latents come from numpy's counter-based Philox generator: sample ``i`` owns a fixed block of the stream,
reached with ``advance`` and turned into normals by Box-Muller, so any chunk ``[start, stop)`` is
generated independently and identically whatever the batch size, worker count or access order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

_TWO_PI = 2.0 * np.pi


def _blocks_per_sample(z_dim: int) -> int:
    return -(-(z_dim + z_dim % 2) // 4)  # Philox yields 4 uint64 per counter step


def latents(seed: int, start: int, stop: int, z_dim: int) -> np.ndarray:
    """Standard-normal latents float32 [stop - start, z_dim]; row ``k`` is sample ``start + k``'s ``z``.

    Raises:
        ValueError: ``seed`` negative, ``start`` > ``stop`` or ``start`` negative.
    """
    if seed < 0 or start < 0 or stop < start:
        raise ValueError(f"need seed >= 0 and 0 <= start <= stop, got seed={seed}, start={start}, stop={stop}")
    n = stop - start
    blocks = _blocks_per_sample(z_dim)
    bits = np.random.Philox(key=seed)
    bits.advance(start * blocks)
    raw = bits.random_raw(n * blocks * 4).reshape(n, blocks * 4)
    half = (z_dim + z_dim % 2) // 2
    u = ((raw[:, : 2 * half] >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53  # uniform in (0, 1)
    r = np.sqrt(-2.0 * np.log(u[:, :half]))
    theta = _TWO_PI * u[:, half:]
    z = np.concatenate([r * np.cos(theta), r * np.sin(theta)], axis=1)[:, :z_dim]
    return z.astype(np.float32)


def labels_from_counts(counts: Mapping[int, int] | Sequence[int]) -> np.ndarray:
    """int64 labels laid out class by class: ``{0: 2, 3: 1}`` -> ``[0, 0, 3]``; a sequence means class = position.

    Raises:
        ValueError: a negative count.
    """
    items = counts.items() if isinstance(counts, Mapping) else enumerate(counts)
    pairs = [(int(c), int(n)) for c, n in items]
    if any(n < 0 for _, n in pairs):
        raise ValueError(f"counts must be >= 0, got {dict(pairs)}")
    return np.concatenate([np.full(n, c, dtype=np.int64) for c, n in pairs] or [np.zeros(0, np.int64)])
