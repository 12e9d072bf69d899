"""Turn a photo or scan of one handwritten digit into an MNIST-like 28x28 digit.

MNIST's own recipe: light ink on black; the digit cropped to its ink, scaled to fit a 20x20 box
keeping its aspect ratio (anti-aliased), then placed in a 28x28 field so that its centre of mass is
the centre. Before that, an image of any size and mode is made grey, inverted when it is dark ink
on a light background (paper), and stretched so the background is 0 and the ink 255.

Transparency is judged, not painted over: where most of an image is transparent, its opaque part
is the ink and goes onto paper of the opposite shade (white ink drawn on a transparent canvas
reads as a digit, as black ink does); where most is opaque, transparent holes take the opaque
part's own background shade.

Pillow and numpy only. edge/pi/reader.py finds several digits in one image and uses the same recipe.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from common.digits_csv import IMAGE_SIZE

BOX_SIZE = 20  # MNIST fits each digit in 20x20, leaving a 4-pixel margin
MIN_CONTRAST = 32  # grey levels between background and ink below which the image holds no digit
INK_THRESHOLD = 0.2  # after stretching, fainter pixels count as background (paper grain, noise)
MIN_SIDE = 8  # pixels: a smaller image cannot show a digit's strokes
MAX_PIXELS = 50_000_000  # larger images are refused before decoding (a 50-megapixel photo is ample)


class ImageError(ValueError):
    """An image that cannot be read, or holds no digit."""


def load_digit(path: str | Path) -> np.ndarray:
    """The image file at `path` as an MNIST-like uint8 (28, 28) array of raw pixels 0..255."""
    grey, _ = read_grey(path)
    try:
        return mnist_like(grey)
    except ImageError as err:
        raise ImageError(f"{path}: {err}") from None


def read_grey(source: str | Path | bytes | BinaryIO, name: str | None = None,
              max_side: int | None = None) -> tuple[np.ndarray, float]:
    """An image file (a path, its bytes, or an open binary file) as float greyscale 0..255, and
    the file's pixels per pixel of it (above 1 when shrunk).

    EXIF rotation applied, transparency judged (see the module's docstring), shrunk so that its
    longer side is at most max_side when given. Errors name `name` (default: the path)."""
    label = name or (str(source) if isinstance(source, (str, Path)) else "the image")
    opened = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with Image.open(opened) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageError(f"{label}: {width}x{height} pixels is larger than the {MAX_PIXELS:,} taken")
            if max_side and max(image.size) > max_side:
                image.draft(None, (max_side, max_side))  # JPEG: decode at a fraction of full size
            image = ImageOps.exif_transpose(image)  # phone photos carry their rotation in EXIF
            if max_side and max(image.size) > max_side:
                image.thumbnail((max_side, max_side), Image.Resampling.BOX)
            grey = flatten(image)
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{label}: a folder, not an image file") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        if isinstance(err, ImageError):
            raise
        raise ImageError(f"{label}: not a readable image (PNG, JPEG, ...): {err}") from None
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"{label}: too small, {width}x{height} pixels; a digit needs at least {MIN_SIDE}x{MIN_SIDE}")
    return grey, max(width, height) / max(grey.shape)


def flatten(image: Image.Image) -> np.ndarray:
    """Float greyscale 0..255 of any mode, transparency judged (see the module's docstring)."""
    if not (image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info):
        return np.asarray(image.convert("L"), dtype=np.float32)
    rgba = image.convert("RGBA")
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255
    grey = np.asarray(rgba.convert("RGB").convert("L"), dtype=np.float32)
    opaque = alpha > 0.5
    if opaque.all():
        return grey
    if opaque.mean() >= 0.5:  # an opaque picture with holes: fill them with its own background
        paper = float(np.median(grey[opaque]))
    else:  # strokes on a transparent canvas: put them on paper of the opposite shade
        ink = float((grey * alpha).sum() / max(alpha.sum(), 1e-6))
        paper = 0.0 if ink > 127 else 255.0
    return grey * alpha + paper * (1 - alpha)


def mnist_like(grey: np.ndarray) -> np.ndarray:
    """A greyscale image (H, W) of one digit, any polarity, as MNIST's uint8 (28, 28)."""
    return from_ink(_light_on_dark(np.asarray(grey, dtype=np.float32)))


def from_ink(ink: np.ndarray) -> np.ndarray:
    """Ink 0..1 on a 0 background (H, W), one digit, as MNIST's uint8 (28, 28): cropped, fitted, centred."""
    rows, cols = np.nonzero(ink > INK_THRESHOLD)
    if rows.size == 0:
        raise ImageError("no digit found: the image is empty")
    crop = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    return _centre_by_mass(_fit_box(crop))


def _light_on_dark(grey: np.ndarray) -> np.ndarray:
    """Ink 0..1 on a 0 background, inverting dark-on-light images (judged by the border)."""
    if grey.ndim != 2 or min(grey.shape) < 1:
        raise ImageError(f"expected a 2-D greyscale image, got shape {grey.shape}")
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) > 127:  # light paper: the ink is the dark part
        grey = 255 - grey
        border = 255 - border
    background = float(np.median(border))
    peak = float(grey.max())
    if peak - background < MIN_CONTRAST:
        raise ImageError(f"no digit found: the image is blank (contrast {peak - background:.0f} of 255)")
    ink = np.clip((grey - background) / (peak - background), 0, 1)
    ink[ink < INK_THRESHOLD] = 0
    return ink


def _fit_box(crop: np.ndarray) -> np.ndarray:
    """Scale so the longer side is BOX_SIZE, keeping aspect; anti-aliased, values 0..255."""
    height, width = crop.shape
    scale = BOX_SIZE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = Image.fromarray(np.round(crop * 255).astype(np.uint8))
    return np.asarray(image.resize(size, Image.Resampling.LANCZOS), dtype=np.float32)


def _centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Place digit in a 28x28 field with its centre of mass at the field's centre."""
    height, width = digit.shape
    total = digit.sum()
    ys, xs = np.indices(digit.shape)
    centre_y = (ys * digit).sum() / total if total else (height - 1) / 2
    centre_x = (xs * digit).sum() / total if total else (width - 1) / 2
    middle = (IMAGE_SIZE - 1) / 2
    top = int(np.clip(round(middle - centre_y), 0, IMAGE_SIZE - height))
    left = int(np.clip(round(middle - centre_x), 0, IMAGE_SIZE - width))
    field = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    field[top:top + height, left:left + width] = digit
    return np.clip(np.round(field), 0, 255).astype(np.uint8)
