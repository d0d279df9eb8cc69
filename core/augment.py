"""Random affine jitter for whole batches on the training device (no per-sample Python work).

Small shifts, rotations and scalings, plus optional stroke-thickness changes, make the models robust to digits
drawn by people (other stroke widths, positions and slants than MNIST's) and regularise the teacher the way
Hinton et al. (2012, 2015) did with 2-pixel jitter.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

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
    """

    shift: float = 2.0
    rotate: float = 10.0
    scale: float = 0.1
    shear: float = 10.0
    thickness: float = 0.0

    def to_dict(self) -> dict:
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
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if cfg.thickness > 0:
        out = _random_thickness(out, cfg.thickness, generator)
    return out


def _random_thickness(x: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Dilate (grey max filter) or erode (min filter) a random fraction ``p`` of the images."""
    n = x.shape[0]
    r = torch.rand(n, generator=generator, device=x.device).view(n, 1, 1, 1)
    dilated = F.max_pool2d(x, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-x, 3, stride=1, padding=1)
    # A 3x3 max filter is a strong change for MNIST's thin strokes; blend half-way for a +-1 px effect.
    out = torch.where(r < p / 2, 0.5 * (x + dilated), x)
    return torch.where((r >= p / 2) & (r < p), 0.5 * (x + eroded), out)
