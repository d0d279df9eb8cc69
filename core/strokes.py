"""Pen trajectories (the drawn-digits ``.npz`` sets): loading, rendering like the app's canvas, evaluation.

Rendering geometry (the one the app is judged with, see the data set's README; the GUI's canvas tests replay
the same strokes, so keep both in step):

- canvas ``size`` x ``size`` pixels (280 by default), white background, black ink; continuous coordinates
  with ``(0, 0)`` at the top-left corner of the top-left pixel, x to the right, y down;
- the sample's bounding box (of the pen's centre line, all strokes together) is scaled uniformly so that its
  longer side is ``fill`` (60%) of the canvas, and its centre goes to the canvas centre ``(size/2, size/2)``;
  the inked area is therefore ``fill * size + pen_width`` pixels on its longer side;
- each stroke is a polyline of width ``pen_width`` (18 px) with round caps and round joins, i.e. the set of
  points within ``pen_width / 2`` of the polyline; a stroke that never moves becomes a dot of that diameter;
- antialiasing: drawn at ``SUPERSAMPLE`` (4x) resolution and reduced with a box filter (area averaging);
  PIL snaps shapes to its pixel grid, so positions hold to within 1/8 px.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw

from core.fileio import open_regular_file
from core.preprocess import to_mnist

if TYPE_CHECKING:
    from core.inference import LogitModel

CANVAS_SIZE = 280
PEN_WIDTH = 18.0
FILL = 0.6
SUPERSAMPLE = 4


class StrokesFormatError(ValueError):
    """Raised when a strokes ``.npz`` file is missing or does not follow the documented format."""


@dataclass(frozen=True)
class DrawnSample:
    """One digit written with a pen.

    Attributes
    ----------
    strokes
        Pen-down traces, each a ``(k, 2)`` float32 array of ``(x, y)`` points, y pointing down.
    label
        The digit (0-9).
    writer, institution
        Who wrote it and where (empty when the file has no such fields).
    """

    strokes: list[np.ndarray]
    label: int
    writer: str = ""
    institution: str = ""


#: Largest total of uncompressed arrays :func:`load_drawn` reads (the development set holds about 2 MB).
MAX_NPZ_BYTES = 256 * 1024 * 1024
_REQUIRED = ("points", "stroke_offsets", "sample_stroke_offsets", "labels")
# What np.load and zipfile raise on a damaged or foreign file besides OSError/ValueError.
_NPZ_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    KeyError,
    RuntimeError,
    NotImplementedError,
    zipfile.BadZipFile,
    zlib.error,
)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` (no pickles), refusing one that would expand past :data:`MAX_NPZ_BYTES`."""
    try:
        file = open_regular_file(path)
    except FileNotFoundError:
        raise StrokesFormatError(f"{path}: no such strokes file") from None
    except OSError as exc:
        raise StrokesFormatError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    with file:
        try:
            data = np.load(file, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise StrokesFormatError(f"{path}: a single .npy array, not an .npz of strokes")
            with data:
                expanded = sum(info.file_size for info in data.zip.infolist()) if data.zip else 0
                if expanded > MAX_NPZ_BYTES:
                    raise StrokesFormatError(
                        f"{path}: its arrays would take {expanded:,} bytes, more than the {MAX_NPZ_BYTES:,} accepted"
                    )
                return {
                    key: data[key]
                    for key in data.files
                    if key in _REQUIRED or key in ("writer", "institution")
                }
        except StrokesFormatError:
            raise
        except _NPZ_ERRORS as exc:
            raise StrokesFormatError(
                f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})"
            ) from None


def _offsets(path: Path, arrays: dict[str, Any], key: str, end: int, what: str) -> np.ndarray:
    """``arrays[key]`` checked as offsets: whole numbers from 0 to ``end``, each step at least 1 (nothing empty)."""
    offsets: np.ndarray = arrays[key]
    if offsets.ndim != 1 or offsets.dtype.kind not in "iu" or len(offsets) < 1:
        raise StrokesFormatError(
            f"{path}: {key} must be a 1-D array of whole numbers, not {offsets.dtype} {offsets.shape}"
        )
    offsets = offsets.astype(np.int64)
    if offsets[0] != 0 or offsets[-1] != end:
        raise StrokesFormatError(f"{path}: {key} must run from 0 to {end}, not {offsets[0]} to {offsets[-1]}")
    if np.any(np.diff(offsets) < 1):
        raise StrokesFormatError(f"{path}: {key} holds an empty {what} (offsets must rise by at least 1)")
    return offsets


def load_drawn(path: str | os.PathLike[str]) -> list[DrawnSample]:
    """Read a drawn-digits ``.npz`` (``points``, ``stroke_offsets``, ``sample_stroke_offsets``, ``labels``).

    Raises
    ------
    StrokesFormatError
        The file is missing, not a regular file, not an ``.npz``, too large, or its arrays are inconsistent
        (wrong keys, types or shapes, offsets out of range, empty strokes or samples, NaN points, labels not 0-9).
    """
    path = Path(path)
    arrays = _read_npz(path)
    missing = set(_REQUIRED) - set(arrays)
    if missing:
        raise StrokesFormatError(f"{path}: missing arrays {sorted(missing)}")

    points, labels = arrays["points"], arrays["labels"]
    if points.ndim != 2 or points.shape[1:] != (2,) or points.dtype.kind not in "iuf":
        raise StrokesFormatError(
            f"{path}: points must be an (N, 2) array of numbers, not {points.dtype} {points.shape}"
        )
    points = points.astype(np.float32)
    if not np.isfinite(points).all():
        raise StrokesFormatError(f"{path}: points hold NaN or infinite values")
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or np.any(labels > 9) or np.any(labels < 0):
        raise StrokesFormatError(f"{path}: labels must be a 1-D array of digits 0-9")
    n = len(labels)
    strokes_at = _offsets(path, arrays, "stroke_offsets", len(points), "stroke")
    samples_at = _offsets(path, arrays, "sample_stroke_offsets", len(strokes_at) - 1, "sample")
    if len(samples_at) != n + 1:
        raise StrokesFormatError(
            f"{path}: sample_stroke_offsets has {len(samples_at)} entries for {n} labels"
        )
    extras = {}
    for key in ("writer", "institution"):
        values = arrays.get(key, np.full(n, ""))
        if values.shape != (n,):
            raise StrokesFormatError(f"{path}: {key} has shape {values.shape}, expected ({n},)")
        extras[key] = values

    strokes = [points[strokes_at[s] : strokes_at[s + 1]] for s in range(len(strokes_at) - 1)]
    return [
        DrawnSample(
            strokes=strokes[samples_at[i] : samples_at[i + 1]],
            label=int(labels[i]),
            writer=str(extras["writer"][i]),
            institution=str(extras["institution"][i]),
        )
        for i in range(n)
    ]


def canvas_transform(
    strokes: list[np.ndarray], size: int = CANVAS_SIZE, fill: float = FILL
) -> tuple[float, np.ndarray]:
    """Scale and offset mapping sample units to canvas pixels: ``canvas = points * scale + offset``."""
    allpts = np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes])
    lo, hi = allpts.min(axis=0), allpts.max(axis=0)
    extent = float((hi - lo).max())
    scale = fill * size / extent if extent > 0 else 1.0
    offset = size / 2 - (lo + hi) / 2 * scale
    return scale, offset


def render_strokes(
    strokes: list[np.ndarray],
    size: int = CANVAS_SIZE,
    pen_width: float = PEN_WIDTH,
    fill: float = FILL,
) -> np.ndarray:
    """Draw a sample's strokes as the app's canvas would (geometry in the module docstring).

    Parameters
    ----------
    strokes
        ``(k, 2)`` arrays of ``(x, y)`` points in any units, y down.
    size
        Canvas side in pixels.
    pen_width
        Pen diameter in canvas pixels.
    fill
        Fraction of the canvas taken by the longer side of the strokes' bounding box.

    Returns
    -------
    numpy.ndarray
        ``(size, size)`` uint8, black (0) ink on white (255), antialiased.
    """
    if not strokes:
        raise ValueError("a sample needs at least one stroke")
    scale, offset = canvas_transform(strokes, size, fill)
    ss = SUPERSAMPLE
    r = pen_width * ss / 2 - 0.5
    width = max(1, round(pen_width * ss))
    big = Image.new("L", (size * ss, size * ss), 255)
    draw = ImageDraw.Draw(big)
    for stroke in strokes:
        # PIL puts pixel centres at integer coordinates, hence the half-pixel shift.
        pts = (np.asarray(stroke, dtype=np.float64).reshape(-1, 2) * scale + offset) * ss - 0.5
        keep = np.ones(len(pts), dtype=bool)
        keep[1:] = np.any(np.diff(pts, axis=0) != 0, axis=1)  # zero-length segments add nothing
        pts = pts[keep]
        coords = [tuple(p) for p in pts.tolist()]
        for a, b in zip(coords[:-1], coords[1:]):
            draw.line([a, b], fill=0, width=width)
        for x, y in coords:  # round caps and joins: a disc of the pen's diameter at every vertex
            # PIL's ellipse box is inclusive at both ends: shrink it by half a pixel each side.
            draw.ellipse([x - r, y - r, x + r, y + r], fill=0)
    return np.asarray(big.reduce(ss))


def render_inputs(samples: list[DrawnSample]) -> np.ndarray:
    """Samples rendered like the canvas and preprocessed like the app: ``(N, 1, 28, 28)`` float32 model inputs."""
    out = np.empty((len(samples), 1, 28, 28), dtype=np.float32)
    for i, sample in enumerate(samples):
        out[i, 0] = to_mnist(render_strokes(sample.strokes))
    return out


def evaluate_drawn(
    classifier: LogitModel,
    npz_path: str | os.PathLike[str],
    limit: int | None = None,
) -> dict[str, Any]:
    """Accuracy of a classifier on drawn digits rendered like the canvas and preprocessed like the app.

    Parameters
    ----------
    classifier
        Anything with ``logits(x)`` taking ``(N, 1, 28, 28)`` float32 and returning ``(N, 10)``
        (e.g. :class:`core.inference.OnnxClassifier`).
    npz_path
        A drawn-digits ``.npz`` file.
    limit
        Evaluate only this many samples, evenly spaced through the file (the file is ordered by writer,
        so the first ones would all come from a few people).

    Returns
    -------
    dict
        ``accuracy`` (float), ``n`` (int), ``per_digit`` (``{digit: accuracy}`` for the digits present) and
        ``confusion`` (10x10 list of counts, rows the true digit, columns the prediction).
    """
    samples = load_drawn(npz_path)
    if limit is not None and limit < len(samples):
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        picks = np.linspace(0, len(samples) - 1, limit).round().astype(int)
        samples = [samples[i] for i in picks]

    inputs = np.empty((len(samples), 1, 28, 28), dtype=np.float32)
    for i, sample in enumerate(samples):
        inputs[i, 0] = to_mnist(render_strokes(sample.strokes))
    labels = np.array([s.label for s in samples], dtype=np.int64)
    predictions = np.asarray(classifier.logits(inputs)).argmax(axis=1)

    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    per_digit = {d: float(confusion[d, d] / confusion[d].sum()) for d in range(10) if confusion[d].sum() > 0}
    return {
        "accuracy": float(np.trace(confusion) / len(samples)),
        "n": len(samples),
        "per_digit": per_digit,
        "confusion": confusion.tolist(),
    }


def save_drawn(samples: list[DrawnSample], path: str | os.PathLike[str]) -> Path:
    """Write samples as a drawn-digits ``.npz`` (the format :func:`load_drawn` reads), atomically.

    Raises
    ------
    ValueError
        A sample has no strokes, an empty stroke, or a label outside 0-9.
    """
    from core.fileio import atomic_path

    points, stroke_offsets, sample_offsets = [], [0], [0]
    for i, sample in enumerate(samples):
        if not sample.strokes or any(len(s) == 0 for s in sample.strokes):
            raise ValueError(f"sample {i} has an empty stroke or no stroke at all")
        if not 0 <= int(sample.label) <= 9:
            raise ValueError(f"sample {i}: label {sample.label} is not a digit 0-9")
        for stroke in sample.strokes:
            pts = np.asarray(stroke, dtype=np.float32).reshape(-1, 2)
            points.append(pts)
            stroke_offsets.append(stroke_offsets[-1] + len(pts))
        sample_offsets.append(len(stroke_offsets) - 1)
    arrays: dict[str, np.ndarray] = {
        "points": np.concatenate(points) if points else np.zeros((0, 2), dtype=np.float32),
        "stroke_offsets": np.asarray(stroke_offsets, dtype=np.int64),
        "sample_stroke_offsets": np.asarray(sample_offsets, dtype=np.int64),
        "labels": np.asarray([s.label for s in samples], dtype=np.uint8),
        "institution": np.asarray([s.institution for s in samples], dtype=str),
        "writer": np.asarray([s.writer for s in samples], dtype=str),
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]  # the stubs also feed **arrays to allow_pickle
    return path
