"""Writing styles MNIST lacks, added to training images: slashed zeros, European ones, crossed sevens.

MNIST was written by American Census employees and students. People elsewhere write a zero with a slash, a one
with a flag (and often a base), a seven with a bar across its stem (the drawn-digits README names all three).
A model that never saw them reads a slashed zero as a 4 or 9 and a flagged one as a 7 or 2. This module draws
such strokes onto MNIST digits of the right class, on the device and for whole batches, so a recipe can mix
them into its training set. The strokes are placed relative to each digit's ink bounding box with random
lengths, angles and widths; nothing is fitted to any particular drawn sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F  # noqa: N812

#: Stroke width range in pixels (MNIST strokes are about 2-3 pixels wide on the 28x28 field).
WIDTH = (1.6, 2.6)


def _uniform(
    n: int, lo: float, hi: float, gen: torch.Generator | None, device: torch.device | str
) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=device)


def _segments(size: int, p0: torch.Tensor, p1: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """Antialiased line segments ``p0 -> p1`` (``(N, 2)`` x/y pixel coordinates), ``(N, 1, size, size)``."""
    device = p0.device
    coords = torch.arange(size, device=device, dtype=torch.float32) + 0.5
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    pts = torch.stack([xx, yy], dim=-1).view(1, size, size, 2)
    a, b = p0.view(-1, 1, 1, 2), p1.view(-1, 1, 1, 2)
    ab = b - a
    t = ((pts - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-6)
    closest = a + t.clamp(0, 1).unsqueeze(-1) * ab
    dist = (pts - closest).norm(dim=-1)
    ink: torch.Tensor = (width.view(-1, 1, 1) / 2 + 0.5 - dist).clamp(0, 1).unsqueeze(1)
    return ink


def _ink_boxes(x: torch.Tensor, threshold: float = 0.3) -> torch.Tensor:
    """``(N, 4)`` x0, y0, x1, y1 of each image's ink (pixel edges)."""
    ink = x[:, 0] > threshold
    size = x.shape[-1]
    idx = torch.arange(size, device=x.device)
    cols, rows = ink.any(1), ink.any(2)
    big = torch.full_like(idx, size)
    x0 = torch.where(cols, idx, big).min(1).values
    x1 = torch.where(cols, idx, -1).max(1).values + 1
    y0 = torch.where(rows, idx, big).min(1).values
    y1 = torch.where(rows, idx, -1).max(1).values + 1
    return torch.stack([x0, y0, x1, y1], 1).float()


def _top_and_bottom_x(
    x: torch.Tensor, box: torch.Tensor, threshold: float = 0.3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean x of the ink in the top and bottom two rows of each digit's box."""
    size = x.shape[-1]
    idx = torch.arange(size, device=x.device).float()
    out = []
    for row_of in (box[:, 1], box[:, 3] - 2):
        rows = row_of.long().clamp(0, size - 2)
        band = torch.stack([x[torch.arange(len(x)), 0, rows], x[torch.arange(len(x)), 0, rows + 1]], 1).sum(1)
        band = band * (band > threshold)
        weight = band.sum(1).clamp_min(1e-6)
        centre = (box[:, 0] + box[:, 2]) / 2
        out.append(torch.where(band.sum(1) > 0, (band * (idx + 0.5)).sum(1) / weight, centre))
    return out[0], out[1]


def slash_zeros(x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """A slash from below-left to above-right through each zero, overshooting its box a little."""
    n, dev = len(x), x.device
    box = _ink_boxes(x)
    w, h = box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]
    cx = (box[:, 0] + box[:, 2]) / 2
    lean = _uniform(n, 0.05, 0.4, gen, dev) * w
    over = _uniform(n, 0.05, 0.3, gen, dev) * h
    p0 = torch.stack([cx - lean, box[:, 3] + over], 1)
    p1 = torch.stack([cx + lean, box[:, 1] - over], 1)
    return torch.maximum(x, _segments(x.shape[-1], p0, p1, _uniform(n, *WIDTH, gen, dev)))


#: Steepest flag of a European one, degrees below the horizontal.
FLAG_MAX_ANGLE = 60.0
#: Default shallowest flag (degrees): the value every recipe before ``canvas-flags`` trained with.
FLAG_MIN_ANGLE = 15.0


def european_ones(
    x: torch.Tensor,
    gen: torch.Generator | None = None,
    base: float = 0.4,
    min_angle: float = FLAG_MIN_ANGLE,
) -> torch.Tensor:
    """A flag down-left from the top of each one; a horizontal base under it with probability ``base``.

    The flag leaves the top at ``min_angle`` to :data:`FLAG_MAX_ANGLE` degrees below the horizontal. At 0 the
    shallowest flags are level: a short bar on a straight stem, the one a European writes and an American
    reads as a 7 (whose bar is longer and whose stem slants).
    """
    if not 0.0 <= min_angle <= FLAG_MAX_ANGLE:
        raise ValueError(
            f"the shallowest flag angle must be in [0, {FLAG_MAX_ANGLE:g}] degrees, got {min_angle}"
        )
    n, dev = len(x), x.device
    box = _ink_boxes(x)
    h = box[:, 3] - box[:, 1]
    top_x, bottom_x = _top_and_bottom_x(x, box)
    length = _uniform(n, 0.25, 0.5, gen, dev) * h
    angle = _uniform(n, math.radians(min_angle), math.radians(FLAG_MAX_ANGLE), gen, dev)
    top = torch.stack([top_x, box[:, 1] + 0.5], 1)
    flag_end = top + torch.stack([-length * torch.cos(angle), length * torch.sin(angle)], 1)
    out = torch.maximum(x, _segments(x.shape[-1], top, flag_end, _uniform(n, *WIDTH, gen, dev)))
    half = _uniform(n, 0.15, 0.35, gen, dev) * h
    y = box[:, 3] - 0.5
    p0, p1 = torch.stack([bottom_x - half, y], 1), torch.stack([bottom_x + half, y], 1)
    with_base = (torch.rand(n, generator=gen, device=dev) < base).view(-1, 1, 1, 1)
    return torch.where(
        with_base, torch.maximum(out, _segments(x.shape[-1], p0, p1, _uniform(n, *WIDTH, gen, dev))), out
    )


def crossed_sevens(x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """A short horizontal bar across the middle of each seven's stem."""
    n, dev = len(x), x.device
    box = _ink_boxes(x)
    w, h = box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]
    y = box[:, 1] + _uniform(n, 0.4, 0.6, gen, dev) * h
    size = x.shape[-1]
    rows = y.long().clamp(0, size - 1)
    line = x[torch.arange(n), 0, rows]
    idx = torch.arange(size, device=dev).float() + 0.5
    ink = line * (line > 0.3)
    cx = torch.where(
        ink.sum(1) > 0, (ink * idx).sum(1) / ink.sum(1).clamp_min(1e-6), (box[:, 0] + box[:, 2]) / 2
    )
    half = _uniform(n, 0.2, 0.35, gen, dev) * w.clamp_min(h * 0.5)
    tilt = _uniform(n, -0.08, 0.08, gen, dev) * h
    p0, p1 = torch.stack([cx - half, y + tilt], 1), torch.stack([cx + half, y - tilt], 1)
    return torch.maximum(x, _segments(size, p0, p1, _uniform(n, *WIDTH, gen, dev)))


#: A style draws onto a batch of one digit's images: ``style(images, generator) -> images``.
Style = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]
STYLES: dict[int, Style] = {0: slash_zeros, 1: european_ones, 7: crossed_sevens}


def curve(
    x: torch.Tensor, gen: torch.Generator | None = None, amplitude: tuple[float, float] = (0.08, 0.25)
) -> torch.Tensor:
    """Each image bent sideways along its height: half into an arc like ``(`` or ``)``, half into an S.

    Row ``y`` of the ink box moves ``a * (1 - u**2)`` (arc) or ``a * sin(pi u / 2)`` (S) pixels, ``u`` running
    from -1 at the box's top to 1 at its bottom, ``|a|`` a random ``amplitude`` share of the box's height and
    its sign random. Pen-drawn ones are often such single curved strokes; MNIST's are straight.
    """
    n, _, size, _ = x.shape
    dev = x.device
    box = _ink_boxes(x)
    cy = (box[:, 1] + box[:, 3]) / 2
    h = (box[:, 3] - box[:, 1]).clamp_min(1.0)
    sign = torch.where(torch.rand(n, generator=gen, device=dev) < 0.5, -1.0, 1.0)
    a = _uniform(n, *amplitude, gen, dev) * h * sign
    s_shape = torch.rand(n, generator=gen, device=dev) < 0.5
    coords = torch.arange(size, device=dev, dtype=torch.float32) + 0.5
    u = ((coords.view(1, -1) - cy.view(-1, 1)) / (h.view(-1, 1) / 2)).clamp(-1.2, 1.2)
    shift = torch.where(s_shape.view(-1, 1), torch.sin(math.pi / 2 * u), 1 - u**2) * a.view(-1, 1)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    # grid_sample reads the input at the grid: a row shifted right by d samples d pixels to its left.
    gx = (xx.view(1, size, size) - shift.view(n, size, 1)) * 2 / size - 1
    gy = (yy * 2 / size - 1).expand(n, size, size)
    grid = torch.stack([gx, gy], -1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False).clamp(0, 1)


def curve_ones(
    images: torch.Tensor, labels: torch.Tensor, share: float, gen: torch.Generator | None = None
) -> torch.Tensor:
    """A copy of ``images`` where ``share`` of the ones (flagged or not) are bent by :func:`curve`."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"the share of curved ones must be in [0, 1], got {share}")
    out = images.clone()
    sel = torch.nonzero(
        (torch.rand(len(images), generator=gen, device=images.device) < share) & (labels == 1)
    )
    sel = sel.flatten()
    if len(sel):
        out[sel] = renormalize(curve(images[sel], gen))
    return out


def renormalize(x: torch.Tensor, box_side: float = 20.0) -> torch.Tensor:
    """Scale and shift each image as MNIST was made: ink box's longer side ``box_side``, centre of mass centred.

    A stroke added beyond a digit's box (a slash overshooting a zero) changes both; digits drawn in the app go
    through the same normalisation (``core.preprocess.to_mnist``), so the styled digit must too.
    """
    n, _, h, w = x.shape
    box = _ink_boxes(x)
    side = torch.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]).clamp_min(1.0)
    scale = box_side / side
    mass = x[:, 0].sum((1, 2)).clamp_min(1e-6)
    coords = torch.arange(w, device=x.device, dtype=x.dtype) + 0.5
    cx = (x[:, 0].sum(1) * coords).sum(1) / mass
    cy = (x[:, 0].sum(2) * coords).sum(1) / mass
    zero = torch.zeros_like(scale)
    theta = torch.stack(
        [
            torch.stack([1 / scale, zero, 2 * cx / w - 1], 1),
            torch.stack([zero, 1 / scale, 2 * cy / h - 1], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False).clamp(0, 1)


def add_styles(
    images: torch.Tensor,
    labels: torch.Tensor,
    probability: float,
    gen: torch.Generator | None = None,
    flag_min_angle: float = FLAG_MIN_ANGLE,
) -> torch.Tensor:
    """A copy of ``images`` where each 0, 1 and 7 gets its European style with ``probability``.

    ``flag_min_angle`` is the shallowest flag of the ones (:func:`european_ones`).
    """
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"style probability must be in [0, 1], got {probability}")
    out = images.clone()
    pick = torch.rand(len(images), generator=gen, device=images.device) < probability
    styles: dict[int, Style] = {**STYLES, 1: partial(european_ones, min_angle=flag_min_angle)}
    for digit, style in styles.items():
        sel = torch.nonzero(pick & (labels == digit)).flatten()
        if len(sel):
            out[sel] = renormalize(style(images[sel], gen))
    return out
