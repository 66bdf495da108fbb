"""Each augmentation op on its own: shapes, the exact pixels it moves or blanks, identity cases, seeded draws."""

from __future__ import annotations

import pytest
import torch

from ganaug.data import augment_ops as ops


def _images(n: int = 4, seed: int = 0) -> torch.Tensor:
    """Float [n, 1, 28, 28] in (-1, 1): no pixel is background (-1), so filled pixels can be told apart."""
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) * 1.8 - 0.9


def _gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("op", [ops.translation, ops.shift_flip, ops.random_affine])
def test_shape_dtype_and_seeded_determinism(op):
    x = _images()
    a, b, c = op(x, _gen(1)), op(x, _gen(1)), op(x, _gen(2))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_translation_moves_pixels_by_the_drawn_shift_and_fills_background():
    x = _images()
    g = _gen()
    tx = torch.randint(-4, 5, (4, 1, 1), generator=g).flatten()  # 28 * 0.125 = 3.5 rounds to 4 pixels
    ty = torch.randint(-4, 5, (4, 1, 1), generator=g).flatten()
    assert (tx != 0).any() and (ty != 0).any()  # the seed moves some images
    out = ops.translation(x, _gen())
    for i in range(4):
        a, b = int(tx[i]), int(ty[i])
        expected = torch.full((28, 28), -1.0)
        rows, cols = slice(max(0, -a), min(28, 28 - a)), slice(max(0, -b), min(28, 28 - b))
        src_rows, src_cols = slice(max(0, a), min(28, 28 + a)), slice(max(0, b), min(28, 28 + b))
        expected[rows, cols] = x[i, 0, src_rows, src_cols]
        assert torch.equal(out[i, 0], expected), (a, b)


def test_translation_with_zero_ratio_is_the_identity():
    x = _images()
    assert torch.equal(ops.translation(x, _gen(), ratio=0.0), x)


def test_random_affine_identity_range_background_and_per_image_draws():
    x = _images()
    same = ops.random_affine(x, _gen(), degrees=0.0, translate=0.0, scale=(1.0, 1.0))
    assert torch.allclose(same, x, atol=1e-5)
    out = ops.random_affine(x, _gen())
    assert out.min() >= -1 - 1e-6 and out.max() <= 1 + 1e-6  # bilinear mixes of pixels and background
    blank = torch.full((3, 1, 28, 28), -1.0)
    assert torch.equal(ops.random_affine(blank, _gen()), blank)
    twins = ops.random_affine(x[:1].repeat(2, 1, 1, 1), _gen())
    assert not torch.equal(twins[0], twins[1])  # each image draws its own transform
