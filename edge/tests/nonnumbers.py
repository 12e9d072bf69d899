"""Images that hold no written number, seeded: what the reader must refuse (a test tool, never installed).

    from edge.tests.nonnumbers import KINDS, non_number, non_numbers
    image = non_number("dots", (1024, 1024), np.random.default_rng(0))   # a PIL image
    for kind, image in non_numbers(count=28, seed=0): ...                # every kind in turn, sizes drawn

Kinds:
  noise     uniform grey noise, grains of 1 to 4 pixels;
  dots      scattered dark dots covering 1% to 20% of white paper;
  specks    a grid of small specks (3x3 pixels and about), slightly jittered;
  woven     a basket weave: blocks of stripes, alternately across and along;
  blank     paper with uneven light and grain, sometimes JPEG;
  ruled     an empty ruled page (blue lines, sometimes a red margin);
  hatching  cross-hatching: two families of diagonal lines.
Each is dark on light or, a quarter of the time (not blank or ruled), light on dark. numpy and Pillow only.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

KINDS = ("noise", "dots", "specks", "woven", "blank", "ruled", "hatching")
SIZES = ((320, 240), (640, 480), (1024, 768), (1024, 1024), (2048, 1536), (2048, 2048))  # width, height
DOT_DENSITY = (0.01, 0.2)  # share of the page the dots cover
INVERTED = 0.25  # share of the textured kinds drawn light on dark


def non_number(kind: str, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """One image of `kind` (see KINDS), `size` = (width, height) pixels."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    width, height = size
    if kind == "ruled":
        return ruled(width, height, rng)
    grey = {"noise": noise, "dots": dots, "specks": specks, "woven": woven, "blank": blank,
            "hatching": hatching}[kind](width, height, rng)
    if kind != "blank" and rng.random() < INVERTED:
        grey = 255 - grey
    image = Image.fromarray(np.clip(np.round(grey), 0, 255).astype(np.uint8))
    if kind == "blank" and rng.random() < 0.5:
        return jpeg(image, int(rng.integers(60, 95)))
    return image


def non_numbers(count: int, seed: int, sizes: tuple[tuple[int, int], ...] = SIZES) -> list[tuple[str, Image.Image]]:
    """`count` images, the kinds in turn, each of a size drawn from `sizes`."""
    rng = np.random.default_rng(seed)
    return [(KINDS[k % len(KINDS)], non_number(KINDS[k % len(KINDS)], sizes[int(rng.integers(len(sizes)))], rng))
            for k in range(count)]


def noise(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    grain = int(rng.integers(1, 5))
    small = rng.uniform(0, 255, (-(-height // grain), -(-width // grain)))
    return np.repeat(np.repeat(small, grain, 0), grain, 1)[:height, :width]


def dots(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    radius = int(rng.integers(0, 3))  # dots of 1, 3 or 5 pixels across
    cover = float(rng.uniform(*DOT_DENSITY))
    centres = rng.random((height, width)) < cover / (2 * radius + 1) ** 2
    if radius:
        centres = np.asarray(Image.fromarray(centres.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(2 * radius + 1))) > 0
    return paper(width, height, rng) - centres * rng.uniform(120, 220)


def specks(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    step = int(rng.integers(6, 31))
    side = int(rng.integers(2, 5))
    grey = paper(width, height, rng)
    jitter = max(1, step // 6)
    for y in range(step // 2, height - side, step):
        for x in range(step // 2, width - side, step):
            dy, dx = rng.integers(-jitter, jitter + 1, 2)
            top, left = max(0, y + dy), max(0, x + dx)
            grey[top:top + side, left:left + side] -= 160
    return grey


def woven(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    block = int(rng.integers(8, 40))
    stripe = max(2.0, block / float(rng.uniform(2, 4)))
    ys, xs = np.mgrid[:height, :width]
    across = ((ys // block + xs // block) % 2).astype(bool)
    along = np.where(across, ys, xs)
    threads = 0.5 + 0.5 * np.sin(2 * np.pi * along / stripe)
    return 200 - float(rng.uniform(60, 140)) * threads + rng.normal(0, 6, (height, width))


def blank(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    return paper(width, height, rng)


def hatching(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    image = Image.fromarray(np.clip(paper(width, height, rng), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    step, line = int(rng.integers(6, 24)), int(rng.integers(1, 4))
    ink = int(rng.integers(20, 90))
    for slope in (1, -1):
        for start in range(-height, width + height, step):
            draw.line([(start, 0), (start + slope * height, height)], fill=ink, width=line)
    return np.asarray(image, np.float32)


def ruled(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    grey = paper(width, height, rng)
    image = Image.fromarray(np.clip(np.stack([grey, grey, grey * 0.97], -1), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    step = int(rng.integers(max(12, height // 40), max(13, height // 12)))
    line = max(1, step // 20)
    for y in range(int(rng.integers(step, 2 * step)), height, step):
        draw.line([(0, y), (width, y)], fill=(120, 150, 210), width=line)
    if rng.random() < 0.5:
        x = int(width * rng.uniform(0.08, 0.15))
        draw.line([(x, 0), (x, height)], fill=(220, 90, 90), width=line)
    return image


def paper(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """White paper under uneven light, with grain (float grey)."""
    ys, xs = np.mgrid[:height, :width] / max(width, height)
    light = 235 + float(rng.uniform(-25, 10)) * (xs * rng.uniform(-1, 1) + ys * rng.uniform(-1, 1))
    return light + rng.normal(0, float(rng.uniform(1, 6)), (height, width))


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))
