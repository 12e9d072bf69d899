"""Read a written number: find each digit in a photo or scan, make it MNIST-like, classify, left to right.

    from edge.pi.reader import read_image
    reading = read_image(classifier, "photo.jpg")     # or read_grey_image(classifier, grey_array)
    reading.text, reading.weakest, reading.digits[0].label, .probability, .box  # box: x, y, w, h

The steps, each cheap enough for a Pi:
  1. grey, at most WORK_SIDE pixels on its longer side (edge/pi/image.py: EXIF rotation, transparency);
  2. polarity: the ink is the tail of the grey levels farther from the median (paper dominates);
  3. uneven lighting: the background is a grey opening (min then max filter, wider than a stroke)
     on a small copy, smoothed and scaled back; the ink is what rises above it (dark ink: as a
     share of the paper's brightness there, since light multiplies paper and ink alike);
  4. ink pixels: Otsu's threshold on that ink, refused below MIN_CONTRAST (a blank image);
  5. digits: 8-connected components of the ink, specks dropped, pieces that share most of their
     columns joined (a 5's loose bar), pieces far shorter than the tallest joined to the digit
     beside them (a 9's loose tick) or, alone, dropped (a smudge);
  6. each digit's own ink, cropped, through MNIST's recipe (edge/pi/image.py), classified in one batch.
Digits must not touch; a slight rotation is left to the model, trained with rotations.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFilter

from edge.pi.classifier import DigitClassifier
from edge.pi.image import MIN_CONTRAST, ImageError, from_ink, read_grey

WORK_SIDE = 1024  # pixels: larger photos are shrunk first (a digit still spans far more than 28)
SMALL_SIDE = 64  # the background is estimated on a copy whose shorter side is this
OPENING_FRACTION = 0.25  # opening window, of the shorter side: wider than a stroke of a digit that fills it
MIN_AREA_FRACTION = 0.02  # components with less ink than this part of the largest one are specks
JOIN_OVERLAP = 0.5  # pieces sharing this part of the narrower one's columns are one digit
MIN_HEIGHT_FRACTION = 0.5  # pieces shorter than this part of the tallest are no digit on their own:
ATTACH_GAP = 0.3  # they join the digit beside them when this close (part of the tallest), else are dropped


@dataclasses.dataclass(frozen=True)
class Digit:
    label: int
    probability: float
    box: tuple[int, int, int, int]  # x, y, width, height in the image's own pixels
    probabilities: np.ndarray  # all ten


@dataclasses.dataclass(frozen=True)
class Reading:
    digits: list[Digit]

    @property
    def text(self) -> str:
        return "".join(str(d.label) for d in self.digits)

    @property
    def weakest(self) -> float:
        """The least sure digit's probability (0 when there are no digits)."""
        return min((d.probability for d in self.digits), default=0.0)

    def as_dict(self) -> dict:
        return {"text": self.text, "weakest": round(self.weakest, 4) if self.digits else None, "digits": [
            {"label": d.label, "probability": round(d.probability, 4), "box": list(d.box)} for d in self.digits]}


def read_image(classifier: DigitClassifier, source: str | Path | bytes | BinaryIO,
               name: str | None = None) -> Reading:
    """The number in an image file (path, bytes or binary file); errors name the file or `name`."""
    label = name or (str(source) if isinstance(source, (str, Path)) else "the image")
    grey, scale = read_grey(source, name=label, max_side=WORK_SIDE)
    try:
        return read_grey_image(classifier, grey, scale)
    except ImageError as err:
        raise ImageError(f"{label}: {err}") from None


def read_grey_image(classifier: DigitClassifier, grey: np.ndarray, scale: float = 1.0) -> Reading:
    """The number in a float greyscale image (H, W); boxes multiplied by `scale`."""
    ink = ink_map(grey)
    pieces = find_digits(ink)
    if not pieces:
        raise ImageError("no digit found: the ink is only specks")
    batch = np.stack([from_ink(crop) for crop, _ in pieces])
    probabilities = classifier.predict(batch)
    digits = []
    for (_, (x, y, w, h)), p in zip(pieces, probabilities):
        label = int(np.argmax(p))
        box = tuple(int(round(v * scale)) for v in (x, y, w, h))
        digits.append(Digit(label, float(p[label]), box, p))
    return Reading(digits)


def ink_map(grey: np.ndarray) -> np.ndarray:
    """Ink 0..1 on a 0 background, either polarity, lighting flattened; fainter than Otsu's threshold is 0."""
    grey = np.asarray(grey, dtype=np.float32)
    low, median, high = np.percentile(grey[::2, ::2], [1, 50, 99])  # every 4th pixel is plenty for these
    dark_ink = median - low > high - median
    if dark_ink:
        grey = 255 - grey
    ground = background(grey)
    ink = np.clip(grey - ground, 0, None)
    if dark_ink:  # light falls on paper and ink alike: the ink is the share of the paper's light it takes
        ink *= 255 / np.maximum(255 - ground, MIN_CONTRAST)
    threshold = otsu(ink)
    strong = ink[ink > threshold]
    core = float(np.percentile(strong, 90)) if strong.size else 0.0  # the strokes' cores, as MNIST's 255
    if core < MIN_CONTRAST:
        raise ImageError(f"no digit found: the image is blank (contrast {ink.max():.0f} of 255)")
    ink = np.clip(ink / core, 0, 1)
    ink[ink < threshold / core] = 0
    return ink


def background(grey: np.ndarray) -> np.ndarray:
    """The local background of light ink on a darker ground: a grey opening of a small copy, smoothed."""
    height, width = grey.shape
    shrink = max(1.0, min(height, width) / SMALL_SIDE)
    small_size = (max(1, round(width / shrink)), max(1, round(height / shrink)))
    small = Image.fromarray(np.round(grey).astype(np.uint8)).resize(small_size, Image.Resampling.BOX)
    window = 2 * int(OPENING_FRACTION * min(small_size) / 2) + 1
    if window >= 3:
        opened = rank_filter(rank_filter(np.asarray(small), window, np.minimum), window, np.maximum)
        small = Image.fromarray(opened).filter(ImageFilter.GaussianBlur(window / 2))
    return np.asarray(small.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def rank_filter(image: np.ndarray, size: int, extreme: np.ufunc) -> np.ndarray:
    """The min (np.minimum) or max (np.maximum) over each size x size square, edges repeated.

    Done as two passes of one dimension (a square's extreme is the extreme of its rows' extremes):
    a few milliseconds less per camera frame than Pillow's MinFilter/MaxFilter, which sort each
    square."""
    pad = size // 2
    for axis in (0, 1):
        widths = [(pad, pad) if a == axis else (0, 0) for a in (0, 1)]
        windows = np.lib.stride_tricks.sliding_window_view(np.pad(image, widths, mode="edge"), size, axis=axis)
        image = extreme.reduce(windows, axis=-1)
    return image


def otsu(values: np.ndarray) -> float:
    """Otsu's threshold of non-negative values: the split that best separates two classes."""
    histogram, edges = np.histogram(values, bins=256, range=(0, max(float(values.max()), 1e-6)))
    weights = histogram.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(weights)
    above = below[-1] - below
    mean_below = np.cumsum(weights * centres) / np.maximum(below, 1)
    mean_above = ((weights * centres).sum() - np.cumsum(weights * centres)) / np.maximum(above, 1)
    between = below * above * (mean_below - mean_above) ** 2
    return float(edges[1:][int(np.argmax(between))])


def find_digits(ink: np.ndarray) -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """Each digit's own ink (cropped to its box) and its box (x, y, w, h), left to right."""
    labels, boxes, areas = components(ink > 0)
    if not boxes:
        return []
    pieces = [k for k, area in enumerate(areas) if area >= MIN_AREA_FRACTION * max(areas)]  # specks out first
    groups = join_pieces([boxes[k] for k in pieces], [areas[k] for k in pieces], [k + 1 for k in pieces])
    tallest = max(box[3] - box[1] for box, _, _ in groups)
    kept = [g for g in groups if g[0][3] - g[0][1] >= MIN_HEIGHT_FRACTION * tallest]
    for box, area, ids in groups:  # a short piece (a loose tick or bar) belongs to the digit beside it
        if box[3] - box[1] < MIN_HEIGHT_FRACTION * tallest:
            gaps = [max(box[0] - other[2], other[0] - box[2], 0) for other, _, _ in kept]
            k = int(np.argmin(gaps))
            if gaps[k] <= ATTACH_GAP * tallest:
                other, other_area, other_ids = kept[k]
                kept[k] = (merged(box, other), area + other_area, other_ids + ids)
    digits = []
    for (x0, y0, x1, y1), _, members in sorted(kept, key=lambda g: (g[0][0] + g[0][2]) / 2):
        own = np.isin(labels[y0:y1, x0:x1], members)
        digits.append((np.where(own, ink[y0:y1, x0:x1], 0), (x0, y0, x1 - x0, y1 - y0)))
    return digits


def components(mask: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int, int]], list[int]]:
    """8-connected components of a boolean mask: a label image (0 = none, k = component k), and
    per component k (index k - 1) its box (x0, y0, x1, y1), ends exclusive, and its pixel count.

    Run-length labelling: each row's runs of ink are joined (union-find) to the runs of the row
    above that touch them, diagonals included; a Python loop over runs, not pixels."""
    height, width = mask.shape
    padded = np.zeros((height, width + 2), np.int8)
    padded[:, 1:-1] = mask
    steps = np.diff(padded, axis=1)
    rows, starts = np.nonzero(steps == 1)
    _, ends = np.nonzero(steps == -1)  # both in row-major order, so the k-th start pairs with the k-th end
    parent = list(range(len(rows)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    row_first = np.searchsorted(rows, np.arange(height + 1))  # runs of row r: row_first[r]..row_first[r+1]
    for r in range(1, height):
        first, above_end = row_first[r - 1], row_first[r]  # the row above's runs, sorted, disjoint
        for i in range(row_first[r], row_first[r + 1]):
            while first < above_end and ends[first] < starts[i]:  # wholly left of run i: of no later run
                first += 1
            j = first
            while j < above_end and starts[j] <= ends[i]:  # touching run i, diagonals included
                a, b = root(i), root(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
                j += 1
    _, index = np.unique([root(i) for i in range(len(rows))], return_inverse=True)
    index = index.reshape(-1)
    count = int(index.max()) + 1 if len(index) else 0
    labels = np.zeros((height, width), np.int32)
    for k, r, s, e in zip(index + 1, rows, starts, ends):
        labels[r, s:e] = k
    x0, y0 = np.full(count, width), np.full(count, height)
    x1, y1 = np.zeros(count, np.int64), np.zeros(count, np.int64)
    np.minimum.at(x0, index, starts)
    np.minimum.at(y0, index, rows)
    np.maximum.at(x1, index, ends)
    np.maximum.at(y1, index, rows + 1)
    boxes = [tuple(int(v) for v in box) for box in zip(x0, y0, x1, y1)]
    areas = np.bincount(index, weights=ends - starts, minlength=count).astype(int).tolist()
    return labels, boxes, areas


def join_pieces(boxes: list[tuple[int, int, int, int]], areas: list[int],
                ids: list[int]) -> list[tuple[tuple, int, list[int]]]:
    """Components that share most of the narrower one's columns, as one digit: (box, area, ids)."""
    groups = [(box, area, [k]) for box, area, k in zip(boxes, areas, ids)]
    joined = True
    while joined:
        joined = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                (a, area_a, ka), (b, area_b, kb) = groups[i], groups[j]
                shared = min(a[2], b[2]) - max(a[0], b[0])
                if shared >= JOIN_OVERLAP * min(a[2] - a[0], b[2] - b[0]):
                    groups[i] = (merged(a, b), area_a + area_b, ka + kb)
                    del groups[j]
                    joined = True
                    break
            if joined:
                break
    return groups


def merged(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The box (x0, y0, x1, y1) around two boxes."""
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])
