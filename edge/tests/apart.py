"""Photos of numbers whose digits never touch, made apart from edge/forms/written.py (whose digits the
reader's pair models learn from), so that a reader is judged on a generator it was not tuned on.
A test tool, never installed.

    from edge.tests.apart import LOOKS, write_apart
    number = write_apart(digits_28x28, "board", np.random.default_rng(0))
    number.image, number.inks, number.boxes     # as edge/forms/written.py's WrittenNumber; touching is ()

Unlike written.py: heights within 25% either way, some digits drawn up to 40% wider (wide digits
tempt a reader to cut them), gaps from 3 pixels to half a digit's height, a slant per number.
Looks: paper (dark ink on white), blue (blue ink on cream, JPEG), board (white chalk on a dark
board, grain, JPEG). numpy and Pillow only.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
from PIL import Image

LOOKS = ("paper", "blue", "board")
HEIGHTS = (40, 110)  # pixels: the number's typical digit height
HEIGHT_SPREAD = 0.25  # each digit's height within this share of the number's, either way
WIDER = (1.0, 1.4)  # a digit's width stretched by this much (a third of the digits)
GAP = (0.04, 0.5)  # gaps between neighbours' ink boxes, as shares of the digit height...
MAX_ASPECT = 1.3  # no digit wider than this many times its height
MIN_GAP_PX = 3  # ...and never under this: the digits never touch


@dataclasses.dataclass(frozen=True)
class ApartNumber:
    image: Image.Image
    inks: list[np.ndarray]  # each digit's own ink 0..1, cropped to it
    boxes: list[tuple[int, int, int, int]]  # x, y, w, h of each digit's ink
    touching: tuple[int, ...] = ()  # never any


def write_apart(digits: np.ndarray, look: str, rng: np.random.Generator) -> ApartNumber:
    """The number `digits` (N, 784 or 28x28 uint8) spell, its digits apart, photographed in `look`."""
    if look not in LOOKS:
        raise ValueError(f"unknown look {look!r}; one of {', '.join(LOOKS)}")
    height = float(rng.uniform(*HEIGHTS))
    slant = float(rng.uniform(-0.15, 0.15))
    inks = [digit_ink(d, height * float(rng.uniform(1 - HEIGHT_SPREAD, 1 + HEIGHT_SPREAD)), slant, rng)
            for d in digits]
    margin = int(0.6 * height)
    lefts, x = [], margin
    for ink in inks:
        lefts.append(x)
        x += ink.shape[1] + max(MIN_GAP_PX, int(rng.uniform(*GAP) * height))
    tallest = max(ink.shape[0] for ink in inks)
    tops = [margin + int((tallest - ink.shape[0]) * rng.uniform(0.2, 0.8) + rng.uniform(-0.08, 0.08) * height)
            for ink in inks]
    canvas = np.zeros((max(t + ink.shape[0] for t, ink in zip(tops, inks)) + margin, x - MIN_GAP_PX + margin),
                      np.float32)
    boxes = []
    for ink, left, top in zip(inks, lefts, tops):
        canvas[top:top + ink.shape[0], left:left + ink.shape[1]] = ink
        boxes.append((left, top, ink.shape[1], ink.shape[0]))
    return ApartNumber(photograph(canvas, look, rng), inks, boxes)


def digit_ink(digit: np.ndarray, height: float, slant: float, rng: np.random.Generator) -> np.ndarray:
    """One digit's ink 0..1, `height` pixels tall, sometimes wider, slanted; cropped to its ink."""
    field = np.asarray(digit, np.float32).reshape(28, 28) / 255
    rows, cols = np.nonzero(field > 0.1)
    crop = field[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    scale = height / crop.shape[0]
    wider = float(rng.uniform(*WIDER)) if rng.random() < 1 / 3 else 1.0
    size = (max(2, min(round(crop.shape[1] * scale * wider), round(MAX_ASPECT * height))), max(2, round(height)))
    image = Image.fromarray(crop, "F").resize(size, Image.Resampling.BICUBIC)
    shift = abs(slant) * size[1]
    image = image.transform((size[0] + int(shift) + 1, size[1]), Image.Transform.AFFINE,
                            (1, slant, -shift if slant > 0 else 0, 0, 1, 0), resample=Image.Resampling.BICUBIC)
    ink = np.clip(np.asarray(image, np.float32), 0, 1) * float(rng.uniform(0.8, 1.0))
    rows, cols = np.nonzero(ink > 0.05)
    return ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def photograph(ink: np.ndarray, look: str, rng: np.random.Generator) -> Image.Image:
    """Ink 0..1 on paper or a board, with grain and uneven light; JPEG but for paper."""
    height, width = ink.shape
    light = 1 + float(rng.uniform(-0.15, 0.15)) * (np.arange(width, dtype=np.float32) / width - 0.5)[None, :, None]
    noise = rng.normal(0, 5, (height, width, 1))
    if look == "board":
        grain = np.clip(rng.uniform(0.55, 1.0, ink.shape), 0, 1).astype(np.float32)
        ground, pen = np.array([36, 52, 44]), np.array([232, 232, 225])
        pixels = ground + (ink * grain)[..., None] * (pen - ground)
    else:
        ground, pen = ((np.array([244, 236, 210]), np.array([35, 55, 160])) if look == "blue"
                       else (np.array([240, 240, 238]), np.array([20, 20, 28])))
        pixels = ground + ink[..., None] * (pen - ground)
    image = Image.fromarray(np.clip(np.round(pixels * light + noise), 0, 255).astype(np.uint8), "RGB")
    if look == "paper":
        return image
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=int(rng.integers(65, 90)))
    return Image.open(io.BytesIO(buffer.getvalue()))
