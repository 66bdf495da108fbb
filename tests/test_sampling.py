"""sampling.latents and labels_from_counts: shape, dtype, the index law, determinism and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from ganaug.data.labels import labels_from_counts
from ganaug.errors import InputError
from ganaug.sample.latents import MAX_SEED, check_seed, latents


@pytest.mark.parametrize("z_dim", [1, 2, 3, 8, 100])
def test_shape_dtype_and_standard_normal(z_dim: int) -> None:
    z = latents(0, 0, 4000, z_dim)
    assert z.shape == (4000, z_dim) and z.dtype == np.float32
    assert abs(float(z.mean())) < 0.05 and abs(float(z.std()) - 1.0) < 0.05


@pytest.mark.parametrize("z_dim", [1, 5, 8])
def test_a_chunk_is_the_rows_of_single_calls(z_dim: int) -> None:
    chunk = latents(11, 3, 17, z_dim)
    rows = np.concatenate([latents(11, k, k + 1, z_dim) for k in range(3, 17)])
    np.testing.assert_array_equal(chunk, rows)
    np.testing.assert_array_equal(latents(11, 0, 40, z_dim)[3:17], chunk)


def test_deterministic_and_seeds_differ() -> None:
    np.testing.assert_array_equal(latents(5, 0, 10, 8), latents(5, 0, 10, 8))
    assert not np.array_equal(latents(5, 0, 10, 8), latents(6, 0, 10, 8))
    assert not np.array_equal(latents(MAX_SEED, 0, 10, 8), latents(0, 0, 10, 8))
    first, second = latents(5, 0, 2, 8)
    assert not np.array_equal(first, second)


def test_empty_range() -> None:
    assert latents(0, 7, 7, 8).shape == (0, 8)


@pytest.mark.parametrize("seed", [-1, 2**63, 2**64, 2**128, 2**130, 1.5, True, "3"])
def test_seeds_outside_the_range_are_one_line_input_errors(seed) -> None:
    with pytest.raises(InputError, match=r"^seed must be a whole number from 0 to 2\*\*63 - 1"):
        latents(seed, 0, 1, 8)
    with pytest.raises(InputError):
        check_seed(seed)


def test_bad_ranges() -> None:
    for start, stop in [(-1, 2), (3, 2)]:
        with pytest.raises(InputError, match="0 <= start <= stop"):
            latents(0, start, stop, 8)
    with pytest.raises(InputError, match="z_dim"):
        latents(0, 0, 1, 0)


def test_labels_from_counts() -> None:
    np.testing.assert_array_equal(labels_from_counts({0: 2, 3: 1}), [0, 0, 3])
    np.testing.assert_array_equal(labels_from_counts([1, 0, 2]), [0, 2, 2])
    assert labels_from_counts({}).dtype == np.int64
    with pytest.raises(ValueError, match="counts must be >= 0"):
        labels_from_counts({0: -1})
