"""MNIST-style preprocessing of drawn and photographed digits."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.preprocess import EmptyImageError, ImageReadError, load_image, to_mnist


@pytest.fixture(scope="module")
def digits(mnist) -> np.ndarray:
    return mnist.test_images[:100, 0].numpy()


def _dark_on_light_canvas(digit: np.ndarray, zoom: int = 10, canvas=(400, 520), at=(37, 181)) -> np.ndarray:
    """An MNIST digit enlarged ``zoom`` times, inverted to black ink on white, placed off-centre on a big canvas."""
    big = np.kron(digit, np.ones((zoom, zoom), np.float32))
    out = np.full(canvas, 255, np.uint8)
    out[at[0] : at[0] + big.shape[0], at[1] : at[1] + big.shape[1]] = np.round(255 * (1 - big)).astype(
        np.uint8
    )
    return out


def _centre_of_mass(img: np.ndarray) -> tuple[float, float]:
    ys, xs = np.mgrid[: img.shape[0], : img.shape[1]]
    return float((img * ys).sum() / img.sum()), float((img * xs).sum() / img.sum())


def _best_shifted_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of ``a`` with ``b`` moved by at most one pixel (half-pixel centring can round either way)."""
    return max(
        np.corrcoef(np.roll(a, (dy, dx), axis=(0, 1)).ravel(), b.ravel())[0, 1]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    )


def test_enlarged_mnist_digit_comes_back(digits):
    exact, best = [], []
    for digit in digits:
        out = to_mnist(_dark_on_light_canvas(digit))
        assert out.shape == (28, 28) and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() == pytest.approx(1.0)
        exact.append(np.corrcoef(out.ravel(), digit.ravel())[0, 1])
        best.append(_best_shifted_correlation(out, digit))
    assert np.median(exact) > 0.98, np.median(exact)
    assert min(best) > 0.95, min(best)


def test_centre_of_mass_and_size(digits):
    for digit in digits[:50]:
        out = to_mnist(_dark_on_light_canvas(digit, zoom=7, at=(5, 300)))
        cy, cx = _centre_of_mass(out)
        assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5, (cy, cx)
        rows = np.flatnonzero(out.any(axis=1))
        cols = np.flatnonzero(out.any(axis=0))
        assert max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) == 20


def test_aspect_ratio_is_kept():
    bar = np.full((300, 300), 255, np.uint8)
    bar[50:250, 130:170] = 0  # 200 x 40 black bar: 20 x 4 after scaling
    out = to_mnist(bar)
    rows = np.flatnonzero(out.max(axis=1) > 0.5)
    cols = np.flatnonzero(out.max(axis=0) > 0.5)
    assert len(rows) == 20 and len(cols) == 4


def test_downscaling_averages_areas():
    """Anti-aliasing: fine stripes shrunk 5x become even grey, not a sampled pattern of 0s and 1s."""
    canvas = np.full((240, 240), 255, np.uint8)
    canvas[70:170, 70:170:2] = 0  # 100 x 100 square of 1-px vertical stripes
    out = to_mnist(canvas)
    rows = np.flatnonzero(out.any(axis=1))
    cols = np.flatnonzero(out.any(axis=0))
    inner = out[rows[0] + 1 : rows[-1], cols[0] + 1 : cols[-1]]
    assert inner.size >= 18 * 18
    assert inner.min() > 0.3 and inner.max() < 0.8, (inner.min(), inner.max())


def test_polarity_and_formats_agree(digits):
    dark_on_light = _dark_on_light_canvas(digits[3])
    reference = to_mnist(dark_on_light)
    light_on_dark = 255 - dark_on_light
    np.testing.assert_allclose(to_mnist(light_on_dark), reference, atol=1e-5)
    rgb = np.repeat(dark_on_light[:, :, None], 3, axis=2)
    np.testing.assert_allclose(to_mnist(rgb), reference, atol=1e-5)
    np.testing.assert_allclose(to_mnist(dark_on_light.astype(np.float32) / 255), reference, atol=1e-5)
    # A transparent canvas: black ink whose coverage is in the alpha channel.
    rgba = np.zeros(dark_on_light.shape + (4,), np.uint8)
    rgba[:, :, 3] = 255 - dark_on_light
    np.testing.assert_allclose(to_mnist(rgba), reference, atol=1e-5)


def test_grey_ink_on_grey_paper_is_stretched(digits):
    """A photographed digit: grey pencil on off-white paper reads like full-contrast ink."""
    reference = to_mnist(_dark_on_light_canvas(digits[5]))
    canvas = _dark_on_light_canvas(digits[5]).astype(np.float32)
    photo = np.round(200 - (255 - canvas) / 255 * 110)  # paper at 200, the darkest ink at 90
    np.testing.assert_allclose(to_mnist(photo.astype(np.uint8)), reference, atol=0.02)


@pytest.mark.parametrize(
    "image",
    [
        np.full((280, 280), 255, np.uint8),
        np.zeros((280, 280), np.uint8),
        np.full((280, 280, 4), 0, np.uint8),
        np.random.default_rng(0).integers(245, 256, (280, 280)).astype(np.uint8),
    ],
    ids=["white", "black", "transparent", "faint-noise"],
)
def test_empty_images_raise(image):
    with pytest.raises(EmptyImageError, match="nothing drawn"):
        to_mnist(image)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="shape"):
        to_mnist(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(ValueError):
        to_mnist(np.zeros((0, 5), np.uint8))


def test_small_drawing_is_enlarged():
    tiny = np.full((60, 60), 255, np.uint8)
    tiny[25:35, 28:32] = 0
    out = to_mnist(tiny)
    rows = np.flatnonzero(out.max(axis=1) > 0.5)
    assert len(rows) == 20


def test_load_image_png_and_rgba(tmp_path, digits):
    canvas = _dark_on_light_canvas(digits[0])
    Image.fromarray(canvas).convert("RGB").save(tmp_path / "d.png")
    Image.fromarray(canvas).save(tmp_path / "d.jpg", quality=95)
    rgba = np.zeros(canvas.shape + (4,), np.uint8)
    rgba[:, :, 3] = 255 - canvas
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "t.png")

    grey = load_image(tmp_path / "d.png")
    assert grey.shape == canvas.shape and grey.dtype == np.uint8
    np.testing.assert_array_equal(grey, canvas)
    reference = to_mnist(canvas)
    assert np.abs(to_mnist(load_image(tmp_path / "d.jpg")) - reference).max() < 0.1
    loaded = load_image(tmp_path / "t.png")
    assert loaded.shape == canvas.shape + (4,)
    np.testing.assert_allclose(to_mnist(loaded), reference, atol=1e-5)


def test_load_image_16_bit(tmp_path, digits):
    canvas = _dark_on_light_canvas(digits[0])
    Image.fromarray(canvas.astype(np.uint16) * 257).save(tmp_path / "deep.png")
    loaded = load_image(tmp_path / "deep.png")
    assert loaded.dtype == np.uint8
    np.testing.assert_array_equal(loaded, canvas)


def test_load_image_errors(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "notes.png").write_text("hello")
    with pytest.raises(ImageReadError, match="not an image file"):
        load_image(tmp_path / "notes.png")
    with pytest.raises(ImageReadError, match="folder"):
        load_image(tmp_path)
    good = tmp_path / "cut.png"
    Image.new("L", (300, 300), 255).save(good)
    (tmp_path / "truncated.png").write_bytes(good.read_bytes()[:80])
    with pytest.raises(ImageReadError, match="truncated.png"):
        load_image(tmp_path / "truncated.png")
