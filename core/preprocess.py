"""Turn a drawn or photographed digit into an MNIST-style ``(28, 28)`` input.

The steps follow how MNIST itself was made (LeCun et al.): the digit is cropped to its ink, scaled with
anti-aliasing so that the longer side of its bounding box is 20 pixels (aspect ratio kept), and pasted into a
28x28 field so that its centre of mass lies at the centre, the shift rounded to whole pixels. The result holds
ink bright (up to 1.0) on a black background (0.0), the input every model of this project expects.

Both polarities are accepted: the background level is taken as the median of the image border, so black ink on
a white canvas and white chalk on a dark board give the same result.
"""

from __future__ import annotations

import math
import os
import struct

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.fileio import NotARegularFileError, open_regular_file

#: Side of the box the digit's longer side is scaled to, and of the output field (MNIST's numbers).
DIGIT_BOX = 20
FIELD = 28
#: Pixel index (row and column) where the centre of mass lands; MNIST's test set averages 14.0 on both axes.
CENTRE = FIELD // 2
#: Ink strength (0..1, relative to the background/ink contrast) below which a pixel counts as background.
INK_THRESHOLD = 0.1
#: The ink must reach at least this strength somewhere, else the image counts as empty.
MIN_INK = 0.2

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, what PIL's convert("L") uses


class EmptyImageError(ValueError):
    """Raised when an image holds no ink to classify (nothing drawn yet)."""


class ImageReadError(ValueError):
    """Raised when an image file cannot be read (missing, unreadable, or not an image)."""


#: Largest image :func:`load_image` decodes, in pixels (a 48-megapixel phone photo fits); checked from the file's
#: header before decoding, so a small file that would expand to gigabytes (a "decompression bomb") is refused.
MAX_PIXELS = 50_000_000
#: Longer side above which a decoded image is reduced (by whole-pixel averaging) before preprocessing: the digit
#: ends up 20 pixels tall, so more detail only costs memory and time.
MAX_SIDE = 4096

# Errors PIL's decoders raise on malformed files besides OSError/ValueError (found by tests/test_properties.py).
_DECODER_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    ZeroDivisionError,
    MemoryError,
    Image.DecompressionBombError,
)


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file into a uint8 array for :func:`to_mnist`.

    Parameters
    ----------
    path
        A PNG, JPEG, BMP, ... file that PIL can open, at most :data:`MAX_PIXELS` pixels. EXIF orientation (phone
        photos) is applied; images with a side longer than :data:`MAX_SIDE` are reduced by a whole factor.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` uint8 for images without transparency, ``(H, W, 4)`` uint8 RGBA for images with it.

    Raises
    ------
    ImageReadError
        The file is missing, unreadable, not a regular file, too large, or not an image PIL can decode.
    """
    try:
        file = open_regular_file(path)
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a folder, not an image file") from None
    except NotARegularFileError:
        raise ImageReadError(
            f"{path}: not a regular file (a pipe, socket or device cannot be an image)"
        ) from None
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot open the file ({exc.strerror or exc})") from None
    with file:
        try:
            with Image.open(file) as img:
                pixels = img.size[0] * img.size[1]
                if pixels > MAX_PIXELS:
                    raise ImageReadError(
                        f"{path}: image of {img.size[0]} x {img.size[1]} = {pixels:,} pixels is larger than "
                        f"the limit of {MAX_PIXELS:,} pixels"
                    )
                return _decode(img)
        except ImageReadError:
            raise
        except UnidentifiedImageError:
            raise ImageReadError(f"{path}: not an image file (use PNG or JPEG)") from None
        except Image.DecompressionBombError:
            raise ImageReadError(f"{path}: image larger than the limit of {MAX_PIXELS:,} pixels") from None
        except _DECODER_ERRORS as exc:  # truncated or corrupt data, a mode PIL cannot convert
            raise ImageReadError(f"{path}: cannot read the image ({type(exc).__name__}: {exc})") from None


def _decode(img: Image.Image) -> np.ndarray:
    """Decode an opened image into ``(H, W)`` grey or ``(H, W, 4)`` RGBA uint8, reduced to :data:`MAX_SIDE`."""
    img = ImageOps.exif_transpose(img)
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):  # 16-bit or float grey (scans)
        grey = np.asarray(img, dtype=np.float64)
        if not np.isfinite(grey).all():
            raise ValueError("the image holds NaN or infinite values")
        top = 65535.0 if img.mode.startswith("I;16") else max(float(grey.max()), 1.0)
        decoded = Image.fromarray(np.round(np.clip(grey / top, 0, 1) * 255).astype(np.uint8))
    else:
        has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
        decoded = img.convert("RGBA" if has_alpha else "L")
    if max(decoded.size) > MAX_SIDE:
        decoded = decoded.reduce(math.ceil(max(decoded.size) / MAX_SIDE))
    return np.asarray(decoded)


def _to_grey(image: np.ndarray) -> np.ndarray:
    """Grey levels in [0, 1] (float32) of a grey, RGB or RGBA image stored as uint8 or float."""
    img = np.asarray(image)
    if img.dtype == np.uint8:
        img = img.astype(np.float32) * np.float32(1 / 255)
    elif np.issubdtype(img.dtype, np.integer) or np.issubdtype(img.dtype, np.floating):
        img = img.astype(np.float32, copy=False)
        if img.size and np.nanmax(img) > 1.0:  # float or 16-bit data stored as 0..255 (or 0..65535)
            img = img / np.float32(65535 if np.nanmax(img) > 255 else 255)
    else:
        raise TypeError(f"image must hold numbers, not {img.dtype}")

    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        return img
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f"image must be (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA, not shape {img.shape}")
    grey = img[:, :, :3] @ _LUMA
    if img.shape[2] == 4:
        alpha = img[:, :, 3]
        if alpha.min() < 1.0:
            # Transparent areas are background: put the image on a backdrop that contrasts with its ink.
            covered = alpha.sum()
            ink_level = float((grey * alpha).sum() / covered) if covered > 0 else 0.0
            backdrop = np.float32(1.0 if ink_level < 0.5 else 0.0)
            grey = grey * alpha + backdrop * (1 - alpha)
    return grey


def _border_median(grey: np.ndarray) -> float:
    """Median of the outermost rows and columns: the background level of a digit that does not touch them."""
    border = np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]])
    return float(np.median(border))


def ink_map(image: np.ndarray) -> np.ndarray:
    """Ink strength in [0, 1] per pixel, background 0, whatever the polarity of ``image``.

    The background level ``b`` is the median of the image border. On a light background (``b >= 0.5``) ink is
    ``(b - grey) / b``; on a dark one ``(grey - b) / (1 - b)``; both clipped to [0, 1].
    """
    grey = _to_grey(image)
    if grey.ndim != 2 or min(grey.shape) < 1:
        raise ValueError(f"image must have at least one pixel, not shape {grey.shape}")
    if not np.isfinite(grey).all():
        raise ValueError("image holds NaN or infinite values")
    background = _border_median(grey)
    ink: np.ndarray
    if background >= 0.5:
        ink = (np.float32(background) - grey) * np.float32(1 / background)
    else:
        ink = (grey - np.float32(background)) * np.float32(1 / (1 - background))
    np.clip(ink, 0.0, 1.0, out=ink)
    return ink


def _resize(patch: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize a float patch; area averaging when shrinking (anti-aliasing), bilinear when enlarging."""
    shrinking = width <= patch.shape[1] and height <= patch.shape[0]
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    out = Image.fromarray(patch, mode="F").resize((width, height), resample=resample)
    return np.asarray(out, dtype=np.float32)


def to_mnist(image: np.ndarray) -> np.ndarray:
    """Preprocess one digit image the way MNIST was made.

    Parameters
    ----------
    image
        ``(H, W)`` grey, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA, uint8 (0..255) or float (0..1), any size,
        dark ink on a light background or light ink on a dark one. The digit should not touch the border
        (the border tells the background level).

    Returns
    -------
    numpy.ndarray
        ``(28, 28)`` float32 in [0, 1], ink bright on black, longer side of the ink 20 px, centre of mass at
        pixel (14, 14) to within half a pixel (unless the digit would have to leave the field).

    Raises
    ------
    EmptyImageError
        No ink stronger than ``MIN_INK`` (nothing drawn).
    """
    ink = ink_map(image)
    peak = float(ink.max())
    if peak < MIN_INK:
        raise EmptyImageError("nothing drawn")
    ink *= np.float32(1 / peak)  # full contrast, like MNIST's ink which reaches 255

    rows = np.flatnonzero((ink > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > INK_THRESHOLD).any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    crop[crop <= INK_THRESHOLD] = 0.0  # faint noise around the digit must not pull the centre of mass

    h, w = crop.shape
    scale = DIGIT_BOX / max(h, w)
    new_w = min(DIGIT_BOX, max(1, round(w * scale)))
    new_h = min(DIGIT_BOX, max(1, round(h * scale)))
    digit = np.clip(_resize(np.ascontiguousarray(crop), new_w, new_h), 0.0, 1.0)

    mass = float(digit.sum())
    ys, xs = np.arange(new_h, dtype=np.float32), np.arange(new_w, dtype=np.float32)
    com_y = float(digit.sum(axis=1) @ ys) / mass
    com_x = float(digit.sum(axis=0) @ xs) / mass
    top = int(round(CENTRE - com_y))
    left = int(round(CENTRE - com_x))
    return _paste(digit, top, left)


def _paste(digit: np.ndarray, top: int, left: int) -> np.ndarray:
    """Place ``digit`` into a black 28x28 field at ``(top, left)``, clipping whatever falls outside."""
    out = np.zeros((FIELD, FIELD), dtype=np.float32)
    h, w = digit.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, FIELD), min(left + w, FIELD)
    if y1 > y0 and x1 > x0:
        out[y0:y1, x0:x1] = digit[y0 - top : y1 - top, x0 - left : x1 - left]
    return out
