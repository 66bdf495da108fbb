"""Index-addressed randomness: sample i's latent depends only on (seed, i).

Latents come from numpy's counter-based Philox generator: sample ``i`` owns a fixed block of the stream,
reached with ``advance`` and turned into normals by Box-Muller, so any chunk ``[start, stop)`` is
generated independently and identically whatever the batch size, worker count or access order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ganaug.errors import InputError

_TWO_PI = 2.0 * np.pi
MAX_SEED = 2**63 - 1
"""Largest seed ganaug takes: seeds are whole numbers in ``[0, 2**63)`` so every RNG (numpy, torch) and
every file (int64 in JSON, ONNX, torch) holds them exactly."""


def check_seed(seed: Any, *, what: str = "seed") -> int:
    """``seed`` as an ``int`` if it is a whole number in ``[0, MAX_SEED]``.

    Raises:
        InputError: ``{what} must be a whole number from 0 to 2**63 - 1, got ...``.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise InputError(f"{what} must be a whole number from 0 to 2**63 - 1 ({MAX_SEED}), got {seed!r}")
    return int(seed)


def derive_seed(seed: int, purpose: int, n: int) -> int:
    """A 63-bit seed from ``(seed, purpose, n)``: ``SeedSequence([seed, purpose, n]).generate_state(1, uint64)[0] >> 1``."""
    return int(np.random.SeedSequence([seed, purpose, n]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def _blocks_per_sample(z_dim: int) -> int:
    return -(-(z_dim + z_dim % 2) // 4)  # Philox yields 4 uint64 per counter step


def latents(seed: int, start: int, stop: int, z_dim: int) -> np.ndarray:
    """Standard-normal latents float32 [stop - start, z_dim]; row ``k`` is sample ``start + k``'s ``z``.

    ``latents(seed, i, j)`` equals the rows of ``latents(seed, k, k + 1)`` for ``k`` in ``[i, j)`` stacked.

    Raises:
        InputError: ``seed`` outside ``[0, MAX_SEED]`` (see :func:`check_seed`), ``start`` negative,
            ``stop`` < ``start`` or ``z_dim`` < 1.
    """
    seed = check_seed(seed)
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0 or stop < start:
        raise InputError(f"need 0 <= start <= stop, got start={start}, stop={stop}")
    if z_dim < 1:
        raise InputError(f"z_dim must be >= 1, got {z_dim}")
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
