"""Drawn-digit trajectories: loading, canvas rendering geometry, evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.export import export_onnx
from core.inference import OnnxClassifier
from core.models import build_model, get_preset
from core.strokes import StrokesFormatError, canvas_transform, evaluate_drawn, load_drawn, render_strokes


@pytest.fixture(scope="module")
def samples(drawn_digits_path):
    return load_drawn(drawn_digits_path)


def _ink(img: np.ndarray) -> np.ndarray:
    return (255 - img.astype(np.float64)) / 255


def _ink_box(img: np.ndarray, level: int = 128) -> tuple[int, int, int, int]:
    rows = np.flatnonzero((img < level).any(axis=1))
    cols = np.flatnonzero((img < level).any(axis=0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def test_load_drawn(samples):
    assert len(samples) == 2741
    assert {s.label for s in samples} == set(range(10))
    for s in samples[:50]:
        assert s.strokes and all(st.ndim == 2 and st.shape[1] == 2 and len(st) >= 1 for st in s.strokes)
        assert s.writer and s.institution


def test_render_shape_dtype_and_geometry(samples):
    for sample in samples[:40]:
        img = render_strokes(sample.strokes)
        assert img.shape == (280, 280) and img.dtype == np.uint8
        assert img.min() == 0 and img[0, 0] == 255 and img[-1, -1] == 255
        top, bottom, left, right = _ink_box(img)
        # The pen's centre line spans 60% of the canvas on its longer side; the ink adds the pen's width.
        assert max(bottom - top, right - left) == pytest.approx(0.6 * 280 + 18, abs=1.5)
        # Centred: the bounding box's centre is the canvas centre.
        assert (top + bottom) / 2 == pytest.approx(140, abs=1.0)
        assert (left + right) / 2 == pytest.approx(140, abs=1.0)


def test_transform_maps_bounding_box_to_60_percent():
    strokes = [np.array([[10.0, 5.0], [30.0, 5.0]]), np.array([[20.0, -5.0], [20.0, 15.0]])]
    scale, offset = canvas_transform(strokes)
    corners = np.array([[10.0, -5.0], [30.0, 15.0]]) * scale + offset
    np.testing.assert_allclose(corners, [[56.0, 56.0], [224.0, 224.0]])


def test_round_caps_and_dots():
    line = render_strokes([np.array([[0.0, 0.0], [1.0, 0.0]])])
    # A capsule: 168 x 18 rectangle plus a full disc of diameter 18 from the two round caps.
    assert _ink(line).sum() == pytest.approx(168 * 18 + math.pi * 9**2, rel=0.01)
    top, bottom, left, right = _ink_box(line)
    assert (bottom - top, right - left) == (18, 186)

    dot = render_strokes([np.array([[3.0, 4.0]])])
    assert _ink(dot).sum() == pytest.approx(math.pi * 9**2, rel=0.02)
    ys, xs = np.mgrid[:280, :280]
    ink = _ink(dot)
    # Pixel i covers [i, i + 1): its centre is at i + 0.5 in canvas coordinates.
    assert (ink * ys).sum() / ink.sum() + 0.5 == pytest.approx(140, abs=0.15)
    assert (ink * xs).sum() / ink.sum() + 0.5 == pytest.approx(140, abs=0.15)


def test_round_joins():
    """A sharp V keeps a rounded tip: the ink at the apex reaches pen_width/2 beyond the vertex, no more."""
    v = render_strokes([np.array([[0.0, 0.0], [1.0, 2.0], [2.0, 0.0]])], size=280)
    bottom = _ink_box(v)[1]
    assert bottom == pytest.approx(140 + 84 + 9, abs=1)


def test_render_options(samples):
    small = render_strokes(samples[0].strokes, size=140, pen_width=9.0, fill=0.5)
    assert small.shape == (140, 140)
    top, bottom, left, right = _ink_box(small)
    assert max(bottom - top, right - left) == pytest.approx(0.5 * 140 + 9, abs=1.5)
    antialiased = render_strokes(samples[0].strokes)
    assert ((antialiased > 0) & (antialiased < 255)).any()


def test_bad_strokes_file(tmp_path):
    with pytest.raises(StrokesFormatError, match="no such"):
        load_drawn(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, points=np.zeros((5, 2), np.float32), labels=np.zeros(1, np.uint8))
    with pytest.raises(StrokesFormatError, match="missing arrays"):
        load_drawn(bad)
    inconsistent = tmp_path / "inconsistent.npz"
    np.savez(
        inconsistent,
        points=np.zeros((5, 2), np.float32),
        stroke_offsets=np.array([0, 3, 9]),
        sample_stroke_offsets=np.array([0, 2]),
        labels=np.zeros(1, np.uint8),
    )
    with pytest.raises(StrokesFormatError, match="stroke_offsets must run from 0 to 5, not 0 to 9"):
        load_drawn(inconsistent)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(StrokesFormatError, match="not a readable"):
        load_drawn(tmp_path / "text.npz")


class _AlwaysThree:
    def logits(self, x):
        out = np.zeros((len(x), 10), np.float32)
        out[:, 3] = 1.0
        return out


def test_evaluate_drawn_bookkeeping(drawn_digits_path, samples):
    result = evaluate_drawn(_AlwaysThree(), drawn_digits_path, limit=120)
    picks = np.linspace(0, len(samples) - 1, 120).round().astype(int)
    labels = np.array([samples[i].label for i in picks])
    assert result["n"] == 120
    assert result["accuracy"] == pytest.approx(float((labels == 3).mean()))
    confusion = np.array(result["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 120
    np.testing.assert_array_equal(confusion[:, 3], np.bincount(labels, minlength=10))
    assert result["per_digit"][3] == 1.0
    assert all(acc == 0.0 for d, acc in result["per_digit"].items() if d != 3)


def test_evaluate_drawn_with_a_trained_student(mnist, drawn_digits_path, tmp_path):
    torch.manual_seed(0)
    model = build_model(get_preset("paper").student)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = mnist.train_images[:5000], mnist.train_labels[:5000]
    for idx in torch.randperm(5000).split(64):
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    export_onnx(model.eval(), tmp_path / "s.onnx", metadata={})
    result = evaluate_drawn(OnnxClassifier(tmp_path / "s.onnx"), drawn_digits_path, limit=300)
    # About 0.85 on MNIST after one epoch on 5,000 images; drawn digits land well above chance (0.1).
    assert result["accuracy"] > 0.5, result
