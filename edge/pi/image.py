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

import contextlib
import io
import re
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from common.digits_csv import IMAGE_SIZE
from common.errors import ProjectError

BOX_SIZE = 20  # MNIST fits each digit in 20x20, leaving a 4-pixel margin
PAIR_FIELD = (28, 56)  # two touching digits side by side, as the reader's pair reader takes them...
PAIR_BOX = (22, 52)  # ...fitted into this box (rows, columns) keeping their aspect, centred
MIN_CONTRAST = 32  # grey levels between background and ink below which the image holds no digit
INK_THRESHOLD = 0.2  # after stretching, fainter pixels count as background (paper grain, noise)
MIN_SIDE = 8  # pixels: a smaller image cannot show a digit's strokes
MAX_PIXELS = 50_000_000  # larger images are refused before decoding (a 50-megapixel photo is ample)
MAX_SIDE = 2048  # pixels: an image is shrunk to this longer side as it is decoded unless told otherwise
MAX_DECODE_BYTES = 256 << 20  # one image's decoding may take this much memory (decode_bytes); more is refused
MIB = 1 << 20
# Pillow keeps these modes in one byte a pixel and every other mode in four (RGB too).
ONE_BYTE_MODES = ("1", "L", "P")
ALPHA_MODES = ("LA", "RGBA", "PA", "La", "RGBa")  # shrunk through a premultiplied full-size copy
# Copies of the full image that a format's decoder holds beside Pillow's (measured: WebP's three);
# a format not listed is assumed as bad as the worst.
DECODER_COPIES = {"PNG": 0, "JPEG": 0, "MPO": 0, "GIF": 0, "BMP": 0, "TIFF": 1, "WEBP": 3}
UNKNOWN_DECODER_COPIES = 3
JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # the first marker after a scan's entropy-coded data


class ImageError(ProjectError):
    """An image that cannot be read, or holds no digit."""


class ImageTooLarge(ImageError):
    """An image whose decoding would take more memory than allowed; refused before decoding."""


def load_digit(path: str | Path) -> np.ndarray:
    """The image file at `path` as an MNIST-like uint8 (28, 28) array of raw pixels 0..255."""
    grey, _ = read_grey(path)
    try:
        return mnist_like(grey)
    except ImageError as err:
        raise ImageError(f"{path}: {err}") from None


def read_grey(source: str | Path | bytes | BinaryIO, name: str | None = None, max_side: int | None = MAX_SIDE,
              max_bytes: int = MAX_DECODE_BYTES) -> tuple[np.ndarray, float]:
    """An image file (a path, its bytes, or an open binary file) as float greyscale 0..255, and
    the file's pixels per pixel of it (above 1 when shrunk).

    EXIF rotation applied, transparency judged (see the module's docstring), shrunk so that its
    longer side is at most max_side (None: not shrunk). An image whose decoding would take more
    than max_bytes of memory (decode_bytes) is refused from its header, before decoding.
    Errors name `name` (default: the path)."""
    label = name or (str(source) if isinstance(source, (str, Path)) else "the image")
    with opened_image(source, label) as (image, data):
        width, height = image.size
        try:
            needed = decode_bytes(image, data, max_side)
            if needed > max_bytes:
                raise ImageTooLarge(f"{label}: {width}x{height} pixels ({image.format} {image.mode}) would take "
                                    f"about {needed / MIB:,.0f} MiB to decode; at most {max_bytes / MIB:,.0f} MiB "
                                    "are taken")
            if max_side and max(image.size) > max_side:
                image.thumbnail((max_side, max_side), Image.Resampling.BOX)  # decoded, then shrunk
            ImageOps.exif_transpose(image, in_place=True)  # phone photos carry their rotation in EXIF
            grey = flatten(image)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            if isinstance(err, ImageError):
                raise
            raise ImageError(f"{label}: not a readable image (PNG, JPEG, ...): {err}") from None
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"{label}: too small, {width}x{height} pixels; a digit needs at least {MIN_SIDE}x{MIN_SIDE}")
    return grey, max(width, height) / max(grey.shape)


@contextlib.contextmanager
def opened_image(source: str | Path | bytes | BinaryIO, label: str) -> Iterator[tuple[Image.Image, bytes]]:
    """The image opened from its header (nothing decoded yet) and the file's bytes; errors name `label`."""
    try:
        if isinstance(source, (str, Path)):
            data = Path(source).read_bytes()
        else:
            data = source if isinstance(source, bytes) else source.read()
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{label}: a folder, not an image file") from None
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageError(f"{label}: not a readable image (PNG, JPEG, ...): {err}") from None
    with image:
        if width * height > MAX_PIXELS:
            raise ImageTooLarge(f"{label}: {width}x{height} pixels is larger than the {MAX_PIXELS:,} taken")
        yield image, data


def decode_bytes(image: Image.Image, data: bytes, max_side: int | None) -> int:
    """Peak bytes of decoding an opened image and shrinking it to max_side, from its header: Pillow's
    full-size image (a JPEG drafted to a fraction of it: the draft is set here), a premultiplied copy
    for transparency, the copies some decoders hold, a JPEG's coefficients when it has several scans
    (progressive), the shrinking's intermediates and the float greyscale, plus 5%. Checked against
    the process's peak memory in edge/tests/test_image_memory.py."""
    full_width, full_height = image.size
    if max_side and max(image.size) > max_side:
        image.draft(None, (max_side, max_side))  # JPEG: decode at a fraction of full size
    width, height = image.size
    pixel = 1 if image.mode in ONE_BYTE_MODES else 4
    copies = (2 if image.mode in ALPHA_MODES else 1) + DECODER_COPIES.get(image.format, UNKNOWN_DECODER_COPIES)
    jpeg = image.format in ("JPEG", "MPO")
    coefficients = jpeg_coefficient_bytes(image, data, full_width, full_height) if jpeg else 0
    longer = max(width, height)
    side = min(longer, max_side or longer)
    out_width, out_height = -(-width * side // longer), -(-height * side // longer)
    shrinking = 0
    if side < longer:  # Pillow reduces by a whole factor to within twice the size, then resamples in two passes
        factor = longer // (2 * side)
        rows = -(-height // factor) if factor > 1 else height
        reduced = -(-width // factor) * rows if factor > 1 else 0
        shrinking = (reduced + out_width * rows + out_width * out_height) * pixel
    grey = out_width * out_height * (28 if image.mode in ALPHA_MODES or "transparency" in image.info else 9)
    return int(1.05 * (copies * width * height * pixel + coefficients + shrinking + grey)) + 2 * MIB


def jpeg_coefficient_bytes(image: Image.Image, data: bytes, width: int, height: int) -> int:
    """A JPEG of several scans (progressive, or sequential non-interleaved) is decoded from all of
    its DCT coefficients held at once, 2 bytes each at full size, whatever the draft; one scan is
    decoded a row of blocks at a time."""
    if image.info.get("progressive") or jpeg_scans(data) > 1:
        layers = getattr(image, "layer", None) or [(0, 1, 1, 0)] * len(image.getbands())
        h_max = max(h for _, h, _, _ in layers)
        v_max = max(v for _, _, v, _ in layers)
        blocks = sum(-(-width // (8 * h_max)) * h * -(-height // (8 * v_max)) * v for _, h, v, _ in layers)
        return blocks * 64 * 2
    return 0


def jpeg_scans(data: bytes) -> int:
    """How many scans (SOS markers) a JPEG file has, up to 2; the segments are walked, not searched."""
    at, scans = 2, 0
    while at + 4 <= len(data) and scans < 2:
        if data[at] != 0xFF:
            return scans
        marker = data[at + 1]
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD8:  # fill bytes, markers without a length
            at += 1 if marker == 0xFF else 2
            continue
        if marker == 0xD9:  # end of image
            return scans
        at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
        if marker == 0xDA:  # start of scan: its entropy-coded data runs to the next marker
            scans += 1
            found = JPEG_MARKER.search(data, at)
            if found is None:
                return scans
            at = found.start()
    return scans


def shrink_pixels(pixels: np.ndarray, max_side: int = MAX_SIDE, name: str = "the frame") -> tuple[np.ndarray, float]:
    """Decoded uint8 pixels (H, W) or (H, W, 3), e.g. a camera frame, shrunk as read_grey shrinks a
    file (longer side at most max_side, channels kept in their order), and the pixels per pixel of
    the result; over MAX_PIXELS refused, so that what follows (float copies) stays bounded."""
    height, width = pixels.shape[:2]
    if width * height > MAX_PIXELS:
        raise ImageTooLarge(f"{name}: {width}x{height} pixels is larger than the {MAX_PIXELS:,} taken")
    if max(width, height) <= max_side or pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        return pixels, 1.0
    image = Image.fromarray(np.ascontiguousarray(pixels))
    image.thumbnail((max_side, max_side), Image.Resampling.BOX)
    small = np.asarray(image)
    return small, max(width, height) / max(small.shape[:2])


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
    return _centre_by_mass(_fit_box(_crop_to_ink(ink)))


def pair_field(ink: np.ndarray) -> np.ndarray:
    """Ink 0..1 on a 0 background (H, W), two digits that touch, as uint8 PAIR_FIELD: cropped to
    the ink, fitted into PAIR_BOX keeping its aspect and centred (as edge/export/pairs.py's reader
    learns them). A pair is too wide for MNIST's square field to keep its strokes."""
    pair = _fit_box(_crop_to_ink(ink), PAIR_BOX)
    height, width = pair.shape
    field = np.zeros(PAIR_FIELD, np.uint8)
    top, left = (PAIR_FIELD[0] - height) // 2, (PAIR_FIELD[1] - width) // 2
    field[top:top + height, left:left + width] = pair
    return field


def _crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """Ink 0..1 cut to the box of its pixels over INK_THRESHOLD; an error when there are none."""
    rows, cols = np.nonzero(ink > INK_THRESHOLD)
    if rows.size == 0:
        raise ImageError("no digit found: the image is empty")
    return ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


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


def _fit_box(crop: np.ndarray, box: tuple[int, int] = (BOX_SIZE, BOX_SIZE)) -> np.ndarray:
    """Scale to fit `box` (rows, columns: MNIST's BOX_SIZE square unless told), keeping aspect;
    anti-aliased, values 0..255."""
    height, width = crop.shape
    scale = min(box[0] / height, box[1] / width)
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
