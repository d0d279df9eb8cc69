"""Batch augmentation: affine jitter, elastic distortion, and re-drawing digits with the canvas's round pen."""

from __future__ import annotations

import pytest
import torch

from core.augment import AugmentConfig, random_affine, restroke, thin


def _bar(width: int, n: int = 2) -> torch.Tensor:
    """Vertical bars ``width`` pixels wide, rows 4..23, centred."""
    x = torch.zeros(n, 1, 28, 28)
    left = 14 - width // 2
    x[:, :, 4:24, left : left + width] = 1.0
    return x


def _mass_centre(x: torch.Tensor) -> torch.Tensor:
    idx = torch.arange(28, dtype=torch.float32)
    mass = x.sum((1, 2, 3))
    return torch.stack([(x.sum((1, 3)) * idx).sum(1) / mass, (x.sum((1, 2)) * idx).sum(1) / mass], 1)


def test_elastic_distortion_is_small_smooth_and_reproducible(mnist):
    x = mnist.test_images[:64]
    still = AugmentConfig(shift=0, rotate=0, scale=0, shear=0)
    torch.testing.assert_close(random_affine(x, still), x, atol=1e-5, rtol=0)  # identity without jitter
    cfg = AugmentConfig(shift=0, rotate=0, scale=0, shear=0, elastic=2.0)
    a = random_affine(x, cfg, torch.Generator().manual_seed(3))
    b = random_affine(x, cfg, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    assert (a - x).abs().amax() > 0.2  # the strokes moved ...
    # ... but by at most 2 px each: the ink's centre stays within 2 px and the amount of ink is kept roughly.
    assert (_mass_centre(a) - _mass_centre(x)).abs().max() < 2.0
    assert torch.allclose(a.sum((1, 2, 3)), x.sum((1, 2, 3)), rtol=0.25)


@pytest.mark.parametrize(
    ("field", "value"), [("elastic", -1.0), ("shift", -2.0), ("thickness", 1.5), ("elastic_sigma", 0.0)]
)
def test_augment_config_refuses_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        AugmentConfig(**{field: value})


def test_thinning_leaves_a_one_pixel_centre_line():
    skeleton = thin(_bar(5) > 0.5)
    assert skeleton.dtype == torch.uint8
    row_counts = skeleton[0, 0, 8:18].sum(1)  # thinning also shortens the ends
    assert torch.equal(row_counts, torch.ones_like(row_counts))  # one pixel per row along the bar
    cols = skeleton[0, 0].nonzero()[:, 1]
    assert cols.min() >= 12 and cols.max() <= 14  # in the middle of columns 12..16
    line = (_bar(1) > 0.5).to(torch.uint8)
    assert torch.equal(thin(line), line)  # already thin: unchanged


@pytest.mark.parametrize("pen", [1.5, 2.0, 2.5])
def test_restroke_draws_the_centre_line_with_the_pen_width(pen):
    for width in (2, 5):  # thin and thick strokes come out the same
        out = restroke(_bar(width), torch.Generator().manual_seed(0), widths=(pen,))
        assert out.min() >= 0 and out.max() <= 1
        ink_per_row = out[:, 0, 8:20].sum(2)  # away from the bar's ends
        assert torch.allclose(ink_per_row, torch.full_like(ink_per_row, pen), atol=0.55)


def test_restroke_keeps_the_digit_and_is_reproducible(mnist):
    x = mnist.test_images[:32]
    a = restroke(x, torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, restroke(x, torch.Generator().manual_seed(1)))
    # Same place and shape: the re-drawn ink lies where the digit was.
    assert (_mass_centre(a) - _mass_centre(x)).abs().max() < 1.5
    assert ((a > 0.5) & (x < 0.05)).float().sum() / (a > 0.5).float().sum() < 0.05
    assert len(restroke(x[:0])) == 0
