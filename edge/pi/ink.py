"""Image primitives the reader is built of, in numpy alone (a Pi has no SciPy or OpenCV to spare):
the background of uneven light, a square min/max filter, erosion, a stroke's width, Otsu's
threshold, 8-connected components and their boxes (Box: the reader's one box convention)."""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image, ImageFilter



@dataclasses.dataclass(frozen=True)
class Box:
    """A rectangle of pixels: columns x0 to x1 and rows y0 to y1, ends exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def longer(self) -> int:
        return max(self.width, self.height)

    def at_edge(self, shape: tuple[int, int]) -> bool:
        """Whether it touches the border of an image of `shape` (rows, columns)."""
        return self.x0 == 0 or self.y0 == 0 or self.x1 == shape[1] or self.y1 == shape[0]

    def merged(self, other: Box) -> Box:
        """The box around both."""
        return Box(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1))

    def shared_columns(self, other: Box) -> int:
        """How many columns both span (negative: the gap between them)."""
        return min(self.x1, other.x1) - max(self.x0, other.x0)

    def scaled(self, factor: float) -> Box:
        """In pixels `factor` times as large: corner and sides each rounded (the sides stay as the
        unscaled sides round)."""
        x0, y0 = round(self.x0 * factor), round(self.y0 * factor)
        return Box(x0, y0, x0 + round(self.width * factor), y0 + round(self.height * factor))

    def cut(self, image: np.ndarray) -> np.ndarray:
        """The part of an image (rows, columns, ...) inside the box."""
        return image[self.y0:self.y1, self.x0:self.x1]

    def xywh(self) -> list[int]:
        """[x, y, width, height]: the box as edge.pi.read's JSON and the server give it."""
        return [self.x0, self.y0, self.width, self.height]


def background(grey: np.ndarray, small_side_px: int, opening_of_side: float) -> np.ndarray:
    """The local background of light ink on a darker ground: a grey opening of a copy whose shorter
    side is `small_side_px`, smoothed; the opening's window `opening_of_side` of that side."""
    height, width = grey.shape
    shrink = max(1.0, min(height, width) / small_side_px)
    small_size = (max(1, round(width / shrink)), max(1, round(height / shrink)))
    small = Image.fromarray(np.round(grey).astype(np.uint8)).resize(small_size, Image.Resampling.BOX)
    window = 2 * int(opening_of_side * min(small_size) / 2) + 1
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


def erode(mask: np.ndarray) -> np.ndarray:
    """A mask less a pixel all round (a 3 x 3 square)."""
    return rank_filter(np.pad(mask, 1), 3, np.minimum)[1:-1, 1:-1]


def stroke_width(mask: np.ndarray) -> float:
    """The mean width of a mask's strokes, in pixels: a stroke of width t and length L has area tL
    and 2L pixels at its edge."""
    return 2 * int(mask.sum()) / max(int((mask & ~erode(mask)).sum()), 1)


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


def ink_runs(mask: np.ndarray) -> int:
    """How many runs of True a boolean mask has along its rows (what components() loops over)."""
    return int(np.count_nonzero(mask[:, 0])) + int(np.count_nonzero(mask[:, 1:] & ~mask[:, :-1]))


def components(mask: np.ndarray) -> tuple[np.ndarray, list[Box], list[int]]:
    """8-connected components of a boolean mask: a label image (0 = none, k = component k), and
    per component k (index k - 1) its box and its pixel count.

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
    boxes = [Box(*(int(v) for v in box)) for box in zip(x0, y0, x1, y1)]
    areas = np.bincount(index, weights=ends - starts, minlength=count).astype(int).tolist()
    return labels, boxes, areas
