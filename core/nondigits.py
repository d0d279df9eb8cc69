"""Procedural non-digit drawings (scribbles, letters, shapes) as pen trajectories, for the "not a digit" check.

Each drawing is a list of strokes, ``(k, 2)`` float32 arrays of ``(x, y)`` points with y down, exactly what the
app's canvas records and what the drawn-digits ``.npz`` files hold; render them with
:func:`core.strokes.render_strokes` (the canvas geometry) and :func:`core.preprocess.to_mnist` like any drawing.

Families are split in two so that a detector can be fitted on some kinds of drawings and judged on kinds it has
never seen:

- :data:`FIT_FAMILIES`: random scribbles, zigzags, capital letters A E F H K M N W X Y, and the shapes
  square, triangle, star, plus sign and arrow;
- :data:`HELDOUT_FAMILIES`: spirals, hatching (#, grids), other letters (R P V U m w e h k), other shapes
  (heart, hexagon, envelope, house, crossed box) and smiley faces.

Letters that people write as digits or that read as one (O D Q for 0, I l J T for 1 and 7, Z for 2, S for 5,
G b for 6, B for 8, g q for 9) are left out on purpose: nobody can tell a drawn O from a 0.

Every drawing gets a random affine distortion (rotation, shear, aspect), smooth wobble along its strokes, and is
resampled to points about one pen-step apart, like a hand-drawn trace.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Strokes = list[np.ndarray]


# ----------------------------------------------------------------------------------------------- helpers
def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 24) -> np.ndarray:
    t = np.linspace(np.radians(a0), np.radians(a1), n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _poly(*pts: tuple[float, float]) -> np.ndarray:
    return np.asarray(pts, dtype=np.float64)


# Capital and small letters as polylines in a unit box (x right, y down); one array per pen-down stroke.
_LETTERS: dict[str, list[np.ndarray]] = {
    "A": [_poly((0, 1), (0.5, 0), (1, 1)), _poly((0.22, 0.6), (0.78, 0.6))],
    "E": [_poly((1, 0), (0, 0), (0, 1), (1, 1)), _poly((0, 0.5), (0.75, 0.5))],
    "F": [_poly((1, 0), (0, 0), (0, 1)), _poly((0, 0.5), (0.7, 0.5))],
    "H": [_poly((0, 0), (0, 1)), _poly((1, 0), (1, 1)), _poly((0, 0.5), (1, 0.5))],
    "K": [_poly((0, 0), (0, 1)), _poly((1, 0), (0, 0.55), (1, 1))],
    "M": [_poly((0, 1), (0, 0), (0.5, 0.6), (1, 0), (1, 1))],
    "N": [_poly((0, 1), (0, 0), (1, 1), (1, 0))],
    "W": [_poly((0, 0), (0.25, 1), (0.5, 0.35), (0.75, 1), (1, 0))],
    "X": [_poly((0, 0), (1, 1)), _poly((1, 0), (0, 1))],
    "Y": [_poly((0, 0), (0.5, 0.5), (1, 0)), _poly((0.5, 0.5), (0.5, 1))],
    "R": [_poly((0, 1), (0, 0)), _arc(0, 0.27, 0.8, 0.27, -90, 90, 16), _poly((0.3, 0.54), (0.9, 1))],
    "P": [_poly((0, 1), (0, 0)), _arc(0, 0.27, 0.9, 0.27, -90, 90, 16)],
    "V": [_poly((0, 0), (0.5, 1), (1, 0))],
    "U": [np.concatenate([_poly((0, 0)), _arc(0.5, 0.6, 0.5, 0.4, 180, 0, 20), _poly((1, 0))])],
    "m": [
        np.concatenate([_poly((0, 1), (0, 0.3)), _arc(0.25, 0.45, 0.25, 0.2, 180, 360, 10), _poly((0.5, 1))]),
        np.concatenate([_poly((0.5, 0.5)), _arc(0.75, 0.45, 0.25, 0.2, 180, 360, 10), _poly((1, 1))]),
    ],
    "w": [_poly((0, 0.3), (0.2, 1), (0.5, 0.5), (0.8, 1), (1, 0.3))],
    "e": [np.concatenate([_poly((0.05, 0.65), (0.95, 0.65)), _arc(0.5, 0.65, 0.45, 0.35, 0, -300, 28)])],
    "h": [
        _poly((0, 0), (0, 1)),
        np.concatenate([_poly((0, 0.65)), _arc(0.45, 0.65, 0.45, 0.25, 180, 360, 12), _poly((0.9, 1))]),
    ],
    "k": [_poly((0, 0), (0, 1)), _poly((0.8, 0.35), (0, 0.7), (0.85, 1))],
}
LETTERS_FIT = "AEFHKMNWXY"
LETTERS_HELDOUT = "RPVUmwehk"


def _star(rng: np.random.Generator) -> Strokes:
    angles = np.radians(-90 + 144 * np.arange(6))
    return [np.stack([np.cos(angles), np.sin(angles)], axis=1)]


def _regular(k: int, rng: np.random.Generator) -> np.ndarray:
    a = np.radians(rng.uniform(0, 360 / k) + 360 / k * np.arange(k + 1))
    return np.stack([np.cos(a), np.sin(a)], axis=1)


_SHAPES_FIT: dict[str, Callable[[np.random.Generator], Strokes]] = {
    "square": lambda rng: [_poly((0, 0), (1, 0), (1, 1), (0, 1), (0, 0))],
    "triangle": lambda rng: [_poly((0.5, 0), (1, 1), (0, 1), (0.5, 0))],
    "star": _star,
    "plus": lambda rng: [_poly((0.5, 0), (0.5, 1)), _poly((0, 0.5), (1, 0.5))],
    "arrow": lambda rng: [_poly((0, 0.5), (1, 0.5)), _poly((0.65, 0.15), (1, 0.5), (0.65, 0.85))],
}
_SHAPES_HELDOUT: dict[str, Callable[[np.random.Generator], Strokes]] = {
    "heart": lambda rng: [
        np.concatenate(
            [
                _poly((0.5, 1)),
                _arc(0.27, 0.3, 0.25, 0.22, 150, 360, 16),
                _arc(0.73, 0.3, 0.25, 0.22, 180, 390, 16),
                _poly((0.5, 1)),
            ]
        )
    ],
    "hexagon": lambda rng: [_regular(6, rng)],
    "envelope": lambda rng: [
        _poly((0, 0), (1, 0), (1, 0.7), (0, 0.7), (0, 0)),
        _poly((0, 0), (0.5, 0.4), (1, 0)),
    ],
    "house": lambda rng: [_poly((0, 1), (0, 0.4), (0.5, 0), (1, 0.4), (1, 1), (0, 1))],
    "crossed box": lambda rng: [
        _poly((0, 0), (1, 0), (1, 1), (0, 1), (0, 0)),
        _poly((0, 0), (1, 1)),
        _poly((1, 0), (0, 1)),
    ],
}


def _scribble(rng: np.random.Generator) -> Strokes:
    """A random smooth pen path turning this way and that (a doodle, a crossed-out mark)."""
    strokes = []
    for _ in range(rng.integers(1, 3)):
        n = int(rng.integers(60, 160))
        turn = np.cumsum(rng.normal(0, rng.uniform(0.25, 0.6), n))
        heading = rng.uniform(0, 2 * np.pi) + turn
        steps = np.stack([np.cos(heading), np.sin(heading)], axis=1)
        strokes.append(np.cumsum(steps, axis=0))
    return strokes


def _zigzag(rng: np.random.Generator) -> Strokes:
    k = int(rng.integers(4, 9))
    xs = np.linspace(0, 1, k)
    ys = np.where(np.arange(k) % 2 == 0, 0.0, 1.0) * rng.uniform(0.3, 1.0)
    return [np.stack([xs, ys], axis=1)]


def _spiral(rng: np.random.Generator) -> Strokes:
    turns = rng.uniform(2.0, 4.0)
    t = np.linspace(0, turns * 2 * np.pi, int(60 * turns))
    r = 0.1 + t / t[-1]
    sign = rng.choice([-1, 1])
    return [np.stack([r * np.cos(sign * t), r * np.sin(sign * t)], axis=1)]


def _hatch(rng: np.random.Generator) -> Strokes:
    a, b = int(rng.integers(2, 5)), int(rng.integers(2, 5))
    strokes = [_poly((p, 0), (p + rng.uniform(-0.1, 0.1), 1)) for p in np.linspace(0.15, 0.85, a)]
    strokes += [_poly((0, p), (1, p + rng.uniform(-0.1, 0.1))) for p in np.linspace(0.15, 0.85, b)]
    rng.shuffle(strokes)
    return strokes


def _smiley(rng: np.random.Generator) -> Strokes:
    face = _arc(0, 0, 1, 1, 0, 360, 40)
    eyes = [_poly((-0.35, -0.3), (-0.33, -0.28)), _poly((0.35, -0.3), (0.37, -0.28))]
    mouth = _arc(0, 0.05, 0.5, 0.45, 20, 160, 16)
    return [face, *eyes, mouth]


def _letter_family(letters: str) -> Callable[[np.random.Generator], Strokes]:
    def make(rng: np.random.Generator) -> Strokes:
        return [s.copy() for s in _LETTERS[letters[rng.integers(len(letters))]]]

    return make


def _shape_family(
    shapes: dict[str, Callable[[np.random.Generator], Strokes]],
) -> Callable[[np.random.Generator], Strokes]:
    names = sorted(shapes)

    def make(rng: np.random.Generator) -> Strokes:
        return shapes[names[rng.integers(len(names))]](rng)

    return make


FAMILIES: dict[str, Callable[[np.random.Generator], Strokes]] = {
    "scribble": _scribble,
    "zigzag": _zigzag,
    "letters": _letter_family(LETTERS_FIT),
    "shapes": _shape_family(_SHAPES_FIT),
    "spiral": _spiral,
    "hatch": _hatch,
    "other letters": _letter_family(LETTERS_HELDOUT),
    "other shapes": _shape_family(_SHAPES_HELDOUT),
    "smiley": _smiley,
}
FIT_FAMILIES = ("scribble", "zigzag", "letters", "shapes")
HELDOUT_FAMILIES = ("spiral", "hatch", "other letters", "other shapes", "smiley")


# ------------------------------------------------------------------------------------------ hand feel
def _resample(stroke: np.ndarray, step: float) -> np.ndarray:
    """Points about ``step`` apart along the polyline (a pen reports positions as it moves)."""
    seg = np.linalg.norm(np.diff(stroke, axis=0), axis=1)
    length = np.concatenate([[0.0], np.cumsum(seg)])
    if length[-1] <= 0:
        return stroke[:1]
    s = np.linspace(0, length[-1], max(2, int(length[-1] / step) + 1))
    return np.stack([np.interp(s, length, stroke[:, 0]), np.interp(s, length, stroke[:, 1])], axis=1)


def _hand(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    """Random rotation, shear and aspect, then a smooth wobble: the same shape never comes out twice."""
    allpts = np.concatenate(strokes)
    span = float(np.ptp(allpts, axis=0).max()) or 1.0
    centre = (allpts.min(axis=0) + allpts.max(axis=0)) / 2
    angle = np.radians(rng.normal(0, 10))
    shear = rng.normal(0, 0.15)
    aspect = np.exp(rng.normal(0, 0.15))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    affine = rot @ np.array([[aspect, shear], [0, 1 / aspect]])
    out = []
    for stroke in strokes:
        pts = _resample((np.asarray(stroke, dtype=np.float64) - centre) / span, 0.015)
        pts = pts @ affine.T
        # Wobble: low-frequency noise, a few percent of the drawing's size.
        k = len(pts)
        knots = max(2, k // 12)
        for axis in range(2):
            pts[:, axis] += np.interp(np.arange(k), np.linspace(0, k - 1, knots), rng.normal(0, 0.015, knots))
        out.append(pts.astype(np.float32))
    return out


def generate(
    n: int, families: tuple[str, ...] | list[str] = FIT_FAMILIES, seed: int = 0
) -> tuple[list[Strokes], list[str]]:
    """``n`` random non-digit drawings from ``families`` (in turn), and the family of each.

    Parameters
    ----------
    n
        How many drawings.
    families
        Names from :data:`FAMILIES`.
    seed
        Seed of the random generator: the same arguments give the same drawings.

    Returns
    -------
    tuple
        ``(drawings, family_names)``: each drawing a list of float32 ``(k, 2)`` strokes, y down.
    """
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown non-digit families {unknown}; known: {sorted(FAMILIES)}")
    if not families:
        raise ValueError("name at least one family of non-digit drawings")
    rng = np.random.default_rng(seed)
    drawings, names = [], []
    for i in range(n):
        family = families[i % len(families)]
        drawings.append(_hand(FAMILIES[family](rng), rng))
        names.append(family)
    return drawings, names
