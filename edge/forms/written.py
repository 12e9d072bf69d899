"""Photos of written numbers as a hand and a camera make them, with each digit's own ink as truth.

    from edge.forms.written import WRITTEN_FORMS, write_number
    number = write_number(digits_28x28, form="board", rng=np.random.default_rng(0))
    number.image      # a PIL image of the number, in the form
    number.inks       # each digit's own ink 0..1 as written (scaled, faint, thin), alone

What edge/forms/synthetic.py does not: 2 to 6 digits of heights varying up to 15% either way, gaps from
a sixth of a digit's height up, a baseline that wanders. Forms:
  paper     dark ink on white paper, noise;
  faint     paper, some digits (always the last) faint, thin or both;
  specks    paper with loose fragments (dots and short dashes) beside, above and below digits;
  board     white chalk on a dark board: grainy strokes, erased-chalk clouds, dust, uneven light, JPEG;
  blur      paper, out of focus, JPEG;
  photo     blue ink on cream paper, a shadow across it, turned a little, JPEG;
  touching  paper, one pair of neighbours whose strokes touch.
scripts/read_accuracy.py composes them from a run's validation digits (never trained on), seeded;
the inks are the bound: the same digits cut out perfectly. pair_examples and pair_readings make
what the reader's pair models learn from (edge/export/pairs.py): one digit, or two touching, some
wider or slanted (`shapes`), some bolder and grainy (`strokes`: a chalk stick's), in one of LOOKS, cut
out as the reader cuts a piece. numpy and Pillow only.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
from PIL import Image, ImageFilter

from edge.pi.image import INK_THRESHOLD, PAIR_FIELD, from_ink, pair_field

WRITTEN_FORMS = ("paper", "faint", "specks", "board", "blur", "photo", "touching")
HEIGHTS = (56, 100)  # pixels: a number's typical digit height, drawn from this range per number
HEIGHT_SPREAD = 0.15  # each digit's height within this share of the number's, either way
GAP = (1 / 6, 0.6)  # gaps between neighbours' ink, as shares of the digit height
MARGIN = 0.6  # paper around the number, as a share of the digit height
WIDER = (1.0, 1.4)  # made pieces' wider digits: drawn this many times as wide (a wide 0 or 1 is one digit)
SLANT = 0.15  # made pieces' slant: the top up to this share of the height off the bottom, either way
BOLDER = (0.01, 0.035)  # made pieces' bolder digits: strokes grown by this share of the height on each side
GRAIN = (0.4, 0.75)  # made pieces' grainy ink: each pixel keeps from a draw of this range up to all of its ink
LOOKS = (("written", 0.55), ("turned", 0.15), ("blurred", 0.15), ("chalk", 0.15))  # made pieces' looks:
# a camera's, not paper's alone (pair models that saw paper alone called blurred and turned digits pairs)


@dataclasses.dataclass(frozen=True)
class WrittenNumber:
    image: Image.Image
    inks: list[np.ndarray]  # each digit's own ink 0..1, cropped to it: what a perfect cut would give
    boxes: list[tuple[int, int, int, int]]  # x, y, w, h of each digit's ink before any turn
    touching: tuple[int, ...] = ()  # indices i whose digit touches digit i + 1


def write_number(digits: np.ndarray, form: str, rng: np.random.Generator) -> WrittenNumber:
    """The number `digits` (N, 784 or 28x28 uint8) spell, written and photographed in `form`."""
    if form not in WRITTEN_FORMS:
        raise ValueError(f"unknown form {form!r}; one of {', '.join(WRITTEN_FORMS)}")
    height = float(rng.uniform(*HEIGHTS))
    inks = [written_digit(d, height * float(rng.uniform(1 - HEIGHT_SPREAD, 1 + HEIGHT_SPREAD)), form, rng, last)
            for last, d in zip([False] * (len(digits) - 1) + [True], digits)]
    touching = (int(rng.integers(len(inks) - 1)),) if form == "touching" and len(inks) > 1 else ()
    canvas, boxes = lay_out(inks, height, rng, touching)
    if form in ("specks", "board"):
        add_fragments(canvas, boxes, height, rng, dust=form == "board")
    return WrittenNumber(render(canvas, height, form, rng), inks, boxes, touching)


def written_digit(digit: np.ndarray, height: float, form: str, rng: np.random.Generator,
                  last: bool) -> np.ndarray:
    """One digit's ink 0..1, its ink box's longer side `height` pixels; in `faint`, some faint or thin."""
    field = np.asarray(digit, np.float32).reshape(28, 28) / 255
    rows, cols = np.nonzero(field > 0)
    crop = field[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    scale = height / max(crop.shape)  # as MNIST fits its 20x20 box: a flat digit is as wide as others are tall
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    ink = np.clip(np.asarray(Image.fromarray(crop, "F").resize(size, Image.Resampling.BICUBIC)), 0, 1)
    strength = float(rng.uniform(0.8, 1.0))
    if form == "faint" and (last or rng.random() < 0.3):
        kind = rng.choice(["faint", "thin", "both"])
        if kind in ("thin", "both"):  # a finer pen: strokes a fifth to a half as wide
            ink = np.asarray(Image.fromarray(ink, "F").filter(ImageFilter.MinFilter(3 if height < 75 else 5)))
        if kind in ("faint", "both"):
            strength = float(rng.uniform(0.25, 0.45))
    return (ink * strength).astype(np.float32)


def lay_out(inks: list[np.ndarray], height: float, rng: np.random.Generator,
            touching: tuple[int, ...]) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """The digits in a row on a canvas of ink, gaps of GAP, the baseline wandering; touching pairs
    pushed together until their strokes meet. Returns the canvas and each digit's box."""
    margin = int(MARGIN * height)
    tallest = max(ink.shape[0] for ink in inks)
    tops = [margin + int(0.1 * height + (tallest - ink.shape[0]) * rng.uniform(0.2, 0.8)
                         + rng.uniform(-0.06, 0.06) * height) for ink in inks]
    lefts, x = [], margin
    for k, ink in enumerate(inks):
        if k - 1 in touching:
            x = lefts[-1] + touch_offset(inks[k - 1], ink, tops[k] - tops[k - 1])
        lefts.append(x)
        x += ink.shape[1] + int(rng.uniform(*GAP) * height)
    width = max(left + ink.shape[1] for left, ink in zip(lefts, inks)) + margin
    canvas = np.zeros((max(t + ink.shape[0] for t, ink in zip(tops, inks)) + margin, width), np.float32)
    boxes = []
    for ink, left, top in zip(inks, lefts, tops):
        area = canvas[top:top + ink.shape[0], left:left + ink.shape[1]]
        np.maximum(area, ink, out=area)
        boxes.append((left, top, ink.shape[1], ink.shape[0]))
    return canvas, boxes


def touch_offset(left: np.ndarray, right: np.ndarray, dy: int) -> int:
    """How far right of the left digit's left edge the right digit goes so that their strokes just
    overlap (a few pixels of ink in common), the right one `dy` pixels lower."""
    a, b = left > 0.3, right > 0.3
    top, bottom = max(0, dy), max(max(0, dy), min(a.shape[0], dy + b.shape[0]))  # the rows both have
    a, b = a[top:bottom], b[top - dy:bottom - dy]
    for x in range(left.shape[1], 0, -1):  # slide in from just apart until the strokes share pixels
        span = min(b.shape[1], a.shape[1] - x)  # a narrow right digit (a 1) may end inside the left one
        if np.count_nonzero(a[:, x:x + span] & b[:, :span]) >= 6:
            return x
    return left.shape[1] // 2


def pair_examples(digits: np.ndarray, count: int, rng: np.random.Generator,
                  shapes: float = 0.0, strokes: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """`count` pieces of ink as MNIST-like uint8 (count, 28, 28), half of them one digit of `digits`
    (N, 784 or 28x28) and half two pushed together until their strokes touch (label 1), `shapes` and
    `strokes` as made_piece takes them: what the reader's pair finder learns from."""
    crops, labels = np.zeros((count, 28, 28), np.uint8), np.arange(count) % 2
    for k, pair in enumerate(labels):
        crops[k] = from_ink(made_piece(digits, 1 + pair, rng, shapes, strokes)[0])
    return crops, labels


def pair_readings(digits: np.ndarray, labels: np.ndarray, count: int, rng: np.random.Generator,
                  shapes: float = 0.0, strokes: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """`count` pairs of `digits` pushed together until their strokes touch, as the reader's pair
    reader takes them (uint8 (count, *PAIR_FIELD), edge/pi/image.py's pair_field), `shapes` and
    `strokes` as made_piece takes them, and their two labels (count, 2), left first: what the pair
    reader learns from."""
    fields, pairs = np.zeros((count, *PAIR_FIELD), np.uint8), np.zeros((count, 2), np.int64)
    for k in range(count):
        ink, picked = made_piece(digits, 2, rng, shapes, strokes)
        fields[k], pairs[k] = pair_field(ink), labels[picked]
    return fields, pairs


def made_piece(digits: np.ndarray, count: int, rng: np.random.Generator,
               shapes: float = 0.0, strokes: float = 0.0) -> tuple[np.ndarray, list[int]]:
    """One (count 1) or two (2) digits drawn from `digits`, written as write_number writes them
    (heights, faint or thin strokes; two pushed together until their strokes touch), `shapes` of
    the digits drawn wider and of the pieces slanted (hands do both), `strokes` of the digits drawn
    bolder and of the pieces grainy (a chalk stick does both; for either, 0: none, and no draw from rng),
    in one of LOOKS (as written, or turned, out of focus or chalky as render makes them) and cut
    out as the reader cuts a piece: its ink over its peak, fainter than INK_THRESHOLD dropped; and
    which digits they were."""
    height = float(rng.uniform(*HEIGHTS))
    form = "faint" if rng.random() < 0.3 else "paper"
    picked, inks = [], []
    for _ in range(count):
        picked.append(int(rng.integers(len(digits))))
        ink = written_digit(digits[picked[-1]], height * float(rng.uniform(1 - HEIGHT_SPREAD, 1 + HEIGHT_SPREAD)),
                            form, rng, last=False)
        if shapes and rng.random() < shapes:
            ink = stretched(ink, float(rng.uniform(*WIDER)))
        if strokes and rng.random() < strokes:
            ink = bolder(ink, float(rng.uniform(*BOLDER)) * height)
        inks.append(ink)
    canvas, _ = lay_out(inks, height, rng, (0,) if count == 2 else ())
    if shapes and rng.random() < shapes:
        canvas = slanted(canvas, float(rng.uniform(-SLANT, SLANT)))
    if strokes and rng.random() < strokes:
        canvas = grainy(canvas, rng)
    look = LOOKS[rng.choice(len(LOOKS), p=[share for _, share in LOOKS])][0]
    if look == "turned":
        canvas = turned(canvas, rng)
    elif look == "blurred":
        canvas = out_of_focus(canvas, height, rng)
    elif look == "chalk":
        canvas = chalky(canvas, rng)
    ink = canvas / canvas.max()
    ink[ink < INK_THRESHOLD] = 0
    return ink, picked


def add_fragments(canvas: np.ndarray, boxes: list[tuple[int, int, int, int]], height: float,
                  rng: np.random.Generator, dust: bool) -> None:
    """Loose fragments that touch no digit: dots and short dashes beside, above or below digits
    (specks), or a little chalk dust anywhere (board)."""
    ink_near = np.asarray(Image.fromarray((canvas > 0.05).astype(np.uint8) * 255).filter(
        ImageFilter.MaxFilter(2 * int(0.04 * height) + 1))) > 0
    count = int(rng.integers(0, 4)) if dust else int(rng.integers(1, 4))
    for _ in range(count * 10):
        if count == 0:
            break
        x, y, w, h = boxes[int(rng.integers(len(boxes)))]
        if dust:
            cx, cy = rng.uniform(0, canvas.shape[1]), rng.uniform(0, canvas.shape[0])
            radius, length = rng.uniform(0.01, 0.03) * height, 0.0
        else:
            side = rng.choice(["right", "left", "above", "below"])
            cx = {"right": x + w + rng.uniform(0.06, 0.3) * height, "left": x - rng.uniform(0.06, 0.3) * height}.get(
                side, x + rng.uniform(0, w))
            cy = {"above": y - rng.uniform(0.06, 0.25) * height, "below": y + h + rng.uniform(0.06, 0.25) * height}.get(
                side, y + rng.uniform(0.1, 0.9) * h)
            radius = rng.uniform(0.02, 0.06) * height
            length = rng.uniform(0.08, 0.3) * height if rng.random() < 0.4 else 0.0
        blob = fragment(radius, length, float(rng.uniform(0, np.pi)), float(rng.uniform(0.5, 1.0)))
        top, left = int(cy - blob.shape[0] / 2), int(cx - blob.shape[1] / 2)
        if top < 1 or left < 1 or top + blob.shape[0] >= canvas.shape[0] or left + blob.shape[1] >= canvas.shape[1]:
            continue
        if ink_near[top:top + blob.shape[0], left:left + blob.shape[1]][blob > 0].any():
            continue  # it would touch a digit: a fragment is loose
        area = canvas[top:top + blob.shape[0], left:left + blob.shape[1]]
        np.maximum(area, blob, out=area)
        count -= 1


def fragment(radius: float, length: float, angle: float, strength: float) -> np.ndarray:
    """A dot (length 0) or a short dash of `radius`, ink 0..1, soft-edged."""
    half = int(np.ceil(radius + length / 2)) + 2
    ys, xs = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)
    along = np.clip(xs * np.cos(angle) + ys * np.sin(angle), -length / 2, length / 2)
    distance = np.hypot(xs - along * np.cos(angle), ys - along * np.sin(angle))
    return (np.clip(radius + 0.5 - distance, 0, 1) * strength).astype(np.float32)


def render(ink: np.ndarray, height: float, form: str, rng: np.random.Generator) -> Image.Image:
    """Ink 0..1 on a page or board, lit, photographed and saved in `form`."""
    shape = ink.shape
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    if form == "photo":
        ink = turned(ink, rng)
    if form == "blur":
        ink = out_of_focus(ink, height, rng)
    noise = rng.normal(0, 4, shape + (1,))
    if form == "board":
        chalk_ink = chalky(ink, rng)
        clouds = smooth_noise(shape, 0.8 * height, rng) * rng.uniform(0.04, 0.12)  # erased chalk
        board = np.array([38, 58, 48]) if rng.random() < 0.6 else np.array([32, 34, 36])
        chalk = np.array([235, 235, 228])
        cover = np.clip(chalk_ink + clouds, 0, 1)[..., None]
        pixels = board + cover * (chalk - board) + noise
        light = 1 - 0.4 * np.clip((xs / shape[1]) * rng.uniform(0.5, 1.5), 0, 1) * rng.choice([-1, 1])
        pixels = pixels * np.clip(light, 0.55, 1.25)[..., None]
    else:
        paper, pen = ((np.array([246, 234, 204]), np.array([30, 48, 150])) if form == "photo" else
                      (np.array([238, 238, 234]), np.array([25, 25, 32])))
        pixels = paper + ink[..., None] * (pen - paper) + noise
        if form == "photo":  # a hand's or phone's shadow across a corner, soft-edged
            angle = rng.uniform(0, 2 * np.pi)
            along = (xs - shape[1] / 2) * np.cos(angle) + (ys - shape[0] / 2) * np.sin(angle)
            edge = rng.uniform(0.2, 0.45) * min(shape)
            shade = 1 - rng.uniform(0.3, 0.5) / (1 + np.exp(-(along - edge) / (0.15 * height)))
            pixels = pixels * shade[..., None]
    image = Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8), "RGB")
    if form in ("board", "blur", "photo"):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=int(rng.integers(60, 86)))
        image = Image.open(io.BytesIO(buffer.getvalue()))
    return image


def stretched(ink: np.ndarray, wider: float) -> np.ndarray:
    """A digit's ink drawn `wider` times as wide."""
    size = (max(1, round(ink.shape[1] * wider)), ink.shape[0])
    return np.clip(np.asarray(Image.fromarray(ink, "F").resize(size, Image.Resampling.BICUBIC)), 0, 1)


def bolder(ink: np.ndarray, grow: float) -> np.ndarray:
    """Ink whose strokes are `grow` pixels bolder on each side (at least one), its box grown with them."""
    grow = max(1, round(grow))
    grown = Image.fromarray(np.pad(ink, grow), "F").filter(ImageFilter.MaxFilter(2 * grow + 1))
    return np.asarray(grown, np.float32)


def slanted(ink: np.ndarray, slant: float) -> np.ndarray:
    """Ink slanted: its top row `slant` of its height right of its bottom row (left when negative)."""
    shift = abs(slant) * ink.shape[0]
    image = Image.fromarray(ink, "F").transform((ink.shape[1] + int(shift) + 1, ink.shape[0]), Image.Transform.AFFINE,
                                                (1, slant, -shift if slant > 0 else 0, 0, 1, 0),
                                                resample=Image.Resampling.BICUBIC)
    return np.clip(np.asarray(image, np.float32), 0, 1)


def turned(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink on a page turned a little under the camera."""
    page = Image.fromarray(ink, "F").rotate(float(rng.uniform(-6, 6)), resample=Image.Resampling.BICUBIC)
    return np.clip(np.asarray(page, np.float32), 0, 1)


def out_of_focus(ink: np.ndarray, height: float, rng: np.random.Generator) -> np.ndarray:
    """Ink seen out of focus (digits `height` pixels tall)."""
    return gaussian(ink, rng.uniform(0.015, 0.035) * height)


def chalky(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink as chalk: it skips on the board's grain."""
    grain = gaussian(rng.uniform(0, 1, ink.shape).astype(np.float32), 0.7)
    return ink * np.clip(0.45 + 1.6 * (grain - 0.5) + 0.55, 0.35, 1.0)


def grainy(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink as a chalk stick's grain leaves it: each pixel keeps a share of it, drawn from a range
    whose low end (GRAIN) is drawn per piece, up to all of it."""
    return ink * rng.uniform(float(rng.uniform(*GRAIN)), 1.0, ink.shape).astype(np.float32)


def smooth_noise(shape: tuple[int, int], size: float, rng: np.random.Generator) -> np.ndarray:
    """Noise 0..1 whose blobs are about `size` pixels across (a small random grid, scaled up)."""
    small = rng.uniform(0, 1, (max(2, int(shape[0] / size) + 2), max(2, int(shape[1] / size) + 2))).astype(np.float32)
    return np.asarray(Image.fromarray(small, "F").resize(shape[::-1], Image.Resampling.BICUBIC)).clip(0, 1)


def gaussian(array: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of a float array (Pillow blurs no float images), edges repeated."""
    radius = max(1, int(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    for axis in (0, 1):
        padded = np.pad(array, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        array = np.apply_along_axis(np.convolve, axis, padded, kernel, mode="valid")
    return array.astype(np.float32)
