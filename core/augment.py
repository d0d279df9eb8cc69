"""Random affine jitter for whole batches on the training device (no per-sample Python work).

Small shifts, rotations and scalings, plus optional stroke-thickness changes and elastic distortions, make the
models robust to digits drawn by people (other stroke widths, positions, slants and wobbles than MNIST's) and
regularise the teacher the way Hinton et al. (2012, 2015) did with 2-pixel jitter. The elastic distortion is
Simard, Steinkraus and Platt's (2003, "Best practices for convolutional neural networks applied to visual
document analysis"): a random displacement field smoothed by a Gaussian, folded into the same sampling grid as
the affine transform, so one ``grid_sample`` does both.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transform; each sample draws its own parameters uniformly.

    Attributes
    ----------
    shift
        Maximum translation in pixels (each axis).
    rotate
        Maximum rotation in degrees.
    scale
        Maximum relative scale change (0.1 means 0.9x to 1.1x).
    shear
        Maximum shear in degrees (slant).
    thickness
        Probability of thickening or thinning the strokes by one pixel (half each).
    elastic
        Largest displacement of the elastic distortion, in pixels (0 disables it). Each image draws its own
        strength uniformly up to this value.
    elastic_sigma
        Smoothness of the elastic displacement field: standard deviation of its Gaussian, in pixels.
    """

    shift: float = 2.0
    rotate: float = 10.0
    scale: float = 0.1
    shear: float = 10.0
    thickness: float = 0.0
    elastic: float = 0.0
    elastic_sigma: float = 4.0

    def __post_init__(self) -> None:
        for name in ("shift", "rotate", "scale", "shear", "elastic"):
            if getattr(self, name) < 0:
                raise ValueError(f"augmentation {name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.thickness <= 1.0:
            raise ValueError(f"augmentation thickness is a probability in [0, 1], got {self.thickness}")
        if not self.elastic_sigma > 0:
            raise ValueError(f"elastic_sigma must be > 0, got {self.elastic_sigma}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


def random_affine(
    x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Apply an independent random affine transform to each image of ``x`` (``(N, 1, H, W)``, values in [0, 1])."""
    n, _, h, w = x.shape
    dev = x.device

    def uniform(limit: float) -> torch.Tensor:
        return (torch.rand(n, generator=generator, device=dev) * 2 - 1) * limit

    angle = uniform(math.radians(cfg.rotate))
    shear = uniform(math.radians(cfg.shear))
    scale = 1.0 + uniform(cfg.scale)
    # affine_grid maps output coordinates to input coordinates in [-1, 1]: invert the scale, shift by 2*px/size.
    tx = uniform(cfg.shift) * 2 / w
    ty = uniform(cfg.shift) * 2 / h
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin + torch.tan(shear) * cos, tx], dim=1),
            torch.stack([sin, cos, ty], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if cfg.elastic > 0:
        grid = grid + _elastic_field(n, h, w, cfg, generator, dev)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if cfg.thickness > 0:
        out = _random_thickness(out, cfg.thickness, generator)
    return out


def _gaussian_kernel(sigma: float, device: torch.device) -> torch.Tensor:
    radius = max(1, math.ceil(2.5 * sigma))
    t = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def _elastic_field(
    n: int, h: int, w: int, cfg: AugmentConfig, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """``(N, H, W, 2)`` smooth random displacements in ``affine_grid`` units (at most ``cfg.elastic`` pixels)."""
    noise = torch.rand(n * 2, 1, h, w, generator=generator, device=device) * 2 - 1
    k = _gaussian_kernel(cfg.elastic_sigma, device)
    pad = len(k) // 2
    # Separable Gaussian blur; replicate padding keeps the field's strength up to the border.
    field = F.conv2d(F.pad(noise, (pad, pad, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    field = F.conv2d(F.pad(field, (0, 0, pad, pad), mode="replicate"), k.view(1, 1, -1, 1))
    field = field.view(n, 2, h, w)
    # Normalise each field so its largest displacement is the drawn strength (in pixels), then to grid units.
    peak = field.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    strength = torch.rand(n, 1, 1, 1, generator=generator, device=device) * cfg.elastic
    field = field / peak * strength
    scale = torch.tensor([2.0 / w, 2.0 / h], device=device).view(1, 2, 1, 1)
    return (field * scale).permute(0, 2, 3, 1)


def _random_thickness(x: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Dilate (grey max filter) or erode (min filter) a random fraction ``p`` of the images."""
    n = x.shape[0]
    r = torch.rand(n, generator=generator, device=x.device).view(n, 1, 1, 1)
    dilated = F.max_pool2d(x, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-x, 3, stride=1, padding=1)
    # A 3x3 max filter is a strong change for MNIST's thin strokes; blend half-way for a +-1 px effect.
    out = torch.where(r < p / 2, 0.5 * (x + dilated), x)
    return torch.where((r >= p / 2) & (r < p), 0.5 * (x + eroded), out)


# ------------------------------------------------------------------------------------ re-drawing at the pen
#
# MNIST's strokes were written with pens of many widths and blurred by its scanning and resampling; the app's
# canvas draws every stroke with one round pen, crisp and antialiased, about 1.9 px wide once the digit is
# scaled to MNIST's 20-pixel box (18 px pen on a digit whose longer side is 60% of 280 px plus the pen).
# :func:`restroke` re-draws MNIST digits that way: the ink is thinned to its one-pixel centre line (Zhang and
# Suen 1984, "A fast parallel algorithm for thinning digital patterns") at twice the resolution, and the centre
# line is drawn again with a round pen of a chosen width, then area-averaged back to 28x28.

#: Neighbours P2..P9 of Zhang and Suen, clockwise from north, as (dy, dx).
_NEIGHBOURS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


def _thinning_tables() -> torch.Tensor:
    """``(2, 256)`` uint8: whether a pixel with neighbourhood code ``c`` is removed in sub-iteration 1 or 2."""
    table = torch.zeros(2, 256, dtype=torch.uint8)
    for code in range(256):
        p = [(code >> i) & 1 for i in range(8)]
        count = sum(p)
        transitions = sum(p[i] == 0 and p[(i + 1) % 8] == 1 for i in range(8))
        p2, p4, p6, p8 = p[0], p[2], p[4], p[6]
        removable = 2 <= count <= 6 and transitions == 1
        table[0, code] = removable and p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0
        table[1, code] = removable and p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0
    return table


_THINNING = _thinning_tables()


def _neighbour_codes(b: torch.Tensor) -> torch.Tensor:
    """8-bit code of each pixel's eight neighbours (bit i set when neighbour P(i+2) is ink)."""
    h, w = b.shape[-2:]
    p = F.pad(b, (1, 1, 1, 1))
    code = torch.zeros_like(b)
    for i, (dy, dx) in enumerate(_NEIGHBOURS):
        code |= p[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] << i
    return code


def thin(binary: torch.Tensor, max_iterations: int = 50) -> torch.Tensor:
    """Zhang-Suen thinning of a batch of binary images ``(N, 1, H, W)`` to one-pixel-wide centre lines."""
    b = binary.to(torch.uint8)
    table = _THINNING.to(b.device)
    for _ in range(max_iterations):
        changed = False
        for step in (0, 1):
            remove = table[step][_neighbour_codes(b).long()] & b
            if remove.any():
                b = b & (1 - remove)
                changed = True
        if not changed:
            break
    return b


def _dilate_disc(b: torch.Tensor, radius: float) -> torch.Tensor:
    """Binary dilation with a disc of ``radius`` pixels (max over the disc's offsets)."""
    k = math.ceil(radius)
    h, w = b.shape[-2:]
    p = F.pad(b, (k, k, k, k))
    out = torch.zeros_like(b)
    for dy in range(-k, k + 1):
        for dx in range(-k, k + 1):
            if dy * dy + dx * dx <= radius * radius + 1e-6:
                out = torch.maximum(out, p[..., k + dy : k + dy + h, k + dx : k + dx + w])
    return out


#: Pen widths (pixels at 28x28) :func:`restroke` chooses from; the canvas pen is about 1.9 px there.
PEN_WIDTHS = (1.5, 1.75, 2.0, 2.25, 2.5)


def restroke(
    x: torch.Tensor, generator: torch.Generator | None = None, widths: tuple[float, ...] = PEN_WIDTHS
) -> torch.Tensor:
    """Re-draw each digit of ``x`` (``(N, 1, 28, 28)`` in [0, 1]) along its centre line with a round pen.

    Each image gets a pen width drawn uniformly from ``widths`` (pixels at the input's resolution). Thinning
    and drawing happen at twice the resolution, and the result is area-averaged back, so edges are
    antialiased like the canvas's.
    """
    if len(x) == 0:
        return x.clone()
    up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    centre = thin(up > 0.5)
    pick = torch.randint(len(widths), (len(x),), generator=generator, device=x.device)
    out = torch.zeros_like(x)
    for i, width in enumerate(widths):
        sel = torch.nonzero(pick == i).flatten()
        if len(sel):
            # A disc of radius w at twice the resolution is a pen of diameter w at the input's.
            out[sel] = F.avg_pool2d(_dilate_disc(centre[sel], float(width)).to(x.dtype), 2)
    return out
