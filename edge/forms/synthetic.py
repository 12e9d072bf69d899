"""Photos of written numbers composed from 28x28 digits, in the forms a camera or scanner gives.

    from edge.forms.synthetic import PHOTO_FORMS, compose
    image = compose(digits_28x28, form="uneven", rng=np.random.default_rng(0))   # a PIL image

The digits sit in a row, left to right, close but not touching, each scaled up and jittered.
Forms: plain (light ink on black, as MNIST), paper (dark ink on white, noise), board (light chalk
on a dark green board), uneven (paper under a lighting ramp and vignette), colour (blue ink on
yellow paper), jpeg (paper saved at JPEG quality 50), rotated (paper turned up to 8 degrees),
all (uneven, colour, rotated and JPEG at once). frame() puts one in a 640x480 camera frame. For
the edge tests, scripts/read_accuracy.py and scripts/camera_video.py; numpy and Pillow only.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

PHOTO_FORMS = ("plain", "paper", "board", "uneven", "colour", "jpeg", "rotated", "all")
MARGIN = 12  # pixels of paper around the row at scale 1 (28x28 digits)


def ink_row(digits: np.ndarray, rng: np.random.Generator, scale: int = 4) -> np.ndarray:
    """Ink 0..1 (H, W): the digits side by side, their 28x28 fields overlapping up to 4 pixels
    (their ink stays apart: MNIST leaves 4 empty pixels on each side), each shifted up or down."""
    fields = [np.asarray(d, np.float32).reshape(28, 28) / 255 for d in digits]
    offsets = [0]
    for _ in fields[1:]:
        offsets.append(offsets[-1] + 28 + int(rng.integers(-4, 5)))
    width = offsets[-1] + 28 + 2 * MARGIN
    row = np.zeros((28 + 2 * MARGIN, width), np.float32)
    for field, left in zip(fields, offsets):
        top = MARGIN + int(rng.integers(-4, 5))
        area = row[top:top + 28, MARGIN + left:MARGIN + left + 28]
        np.maximum(area, field, out=area)
    return np.kron(row, np.ones((scale, scale), np.float32))


def compose(digits: np.ndarray, form: str, rng: np.random.Generator, scale: int = 4) -> Image.Image:
    """One photo of the number the digits spell, in `form` (see PHOTO_FORMS)."""
    return render(ink_row(digits, rng, scale), form, rng)


def render(ink: np.ndarray, form: str, rng: np.random.Generator) -> Image.Image:
    """Ink 0..1 (H, W) as a photo in `form`: paper or board, light, colour, turn and JPEG."""
    if form not in PHOTO_FORMS:
        raise ValueError(f"unknown form {form!r}; one of {', '.join(PHOTO_FORMS)}")
    if form in ("rotated", "all"):  # the page turns under the camera: ink, paper and light alike
        angle = float(rng.uniform(-8, 8))
        turned = Image.fromarray(ink, "F").rotate(angle, resample=Image.Resampling.BICUBIC)
        ink = np.clip(np.asarray(turned, np.float32), 0, 1)
    if form == "plain":
        return Image.fromarray(np.round(ink * 255).astype(np.uint8))
    noise = rng.normal(0, 5, ink.shape + (1,))
    if form == "board":
        board, chalk = np.array([40, 70, 50]), np.array([235, 235, 225])
        pixels = board + ink[..., None] * (chalk - board) + noise
    else:
        paper, pen = (np.array([250, 235, 120]), np.array([30, 40, 160])) if form in ("colour", "all") else (
            np.array([235, 235, 230]), np.array([25, 25, 30]))
        pixels = paper + ink[..., None] * (pen - paper) + noise
    if form in ("uneven", "all"):
        height, width = ink.shape
        ys, xs = np.mgrid[0:height, 0:width]
        ramp = 1 - 0.55 * xs / width  # light from the left
        vignette = 1 - 0.25 * (((ys - height / 2) / height) ** 2 + ((xs - width / 2) / width) ** 2) * 2
        pixels = pixels * (ramp * vignette)[..., None]
    image = Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8), "RGB")
    if form in ("jpeg", "all"):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=50)
        image = Image.open(io.BytesIO(buffer.getvalue()))
    return image


def frame(digits: np.ndarray | None, rng: np.random.Generator, size: tuple[int, int] = (640, 480),
          form: str = "paper") -> np.ndarray:
    """A camera frame (H, W, 3) in B, G, R order, as OpenCV gives: the whole frame in `form`, the
    number (scale 3) in its middle, or no number for None."""
    width, height = size
    ink = np.zeros((height, width), np.float32)
    if digits is not None:
        row = ink_row(digits, rng, scale=3)[:height, :width]
        top, left = (height - row.shape[0]) // 2, (width - row.shape[1]) // 2
        ink[top:top + row.shape[0], left:left + row.shape[1]] = row
    return np.asarray(render(ink, form, rng).convert("RGB"))[..., ::-1].copy()
