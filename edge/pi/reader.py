"""Read a written number: find each digit in a photo or scan, make it MNIST-like, classify, left to right.

    from edge.pi.reader import pair_model_beside, read_image
    pairs = pair_model_beside("model_int8.tflite")   # pairs_int8.tflite beside it (make tflite), or None
    reading = read_image(classifier, "photo.jpg", pairs=pairs)  # or read_grey_image(classifier, grey_array)
    reading.text, reading.weakest, reading.digits[0].label, .probability, .box, .split  # box: x, y, w, h

The steps, each cheap enough for a Pi:
  1. grey, at most WORK_SIDE pixels on its longer side (edge/pi/image.py: EXIF rotation, transparency);
  2. polarity: the ink is the tail of the grey levels farther from the median (paper dominates);
  3. uneven lighting: the background is a grey opening (min then max filter, wider than a stroke)
     on a small copy, smoothed and scaled back; the ink is what rises above it (dark ink: as a
     share of the paper's brightness there, since light multiplies paper and ink alike);
  4. ink pixels: everything well above the paper's noise (not Otsu's threshold, which a faint
     digit can fall under), refused below MIN_CONTRAST (a blank image);
  5. pieces: 8-connected components of the ink (gaps of a pixel bridged), noise and faint pieces
     at the border (a shadow's edge) out, pieces that share most of their columns joined; a piece
     short beside the number's digits (their median height), or short and light, is a fragment;
  6. each digit's own ink (and the pixel beside its strokes under the noise floor: a faint digit
     keeps its strokes' width), stretched to its own peak and cut at INK_THRESHOLD as edge/pi/image.py
     does for one digit alone (a faint digit or chalk reaches the model as bold ink does), through
     MNIST's recipe, classified in one batch with the alternatives the next step weighs:
  7. touching digits (Digit.split): with the pair model (a small model trained on made pieces of
     one digit and of two touching ones, edge/export/pairs.py), a wide piece it calls two digits is
     cut where the model is surest of every piece, at a neck or a column (split_pairs). Without it
     (a model exported before there was one), by rules: a piece whose strokes' cores, eroded a
     little, fall apart into digit-tall parts side by side (a contact thinner than the strokes)
     is cut there, each pixel to the part it grows back into, when the model is about as sure of
     the parts as of the whole; else a piece too wide for one digit is cut at the column where
     the model is surest of both halves, when it is sure enough of them;
  8. fragments: one beside a digit joins it when the model is surer of the digit with it (a 5's
     loose bar, a 4's stroke), else it is a digit alone if wide and sure enough (a flat 5), else
     dropped (a speck, a stray stroke).
A slight rotation is left to the model, trained with rotations.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFilter

from edge.pi.classifier import DigitClassifier
from edge.pi.image import INK_THRESHOLD, MIN_CONTRAST, ImageError, from_ink, read_grey

WORK_SIDE = 1024  # pixels: larger photos are shrunk first (a digit still spans far more than 28)
SMALL_SIDE = 64  # the background is estimated on a copy whose shorter side is this
OPENING_FRACTION = 0.25  # opening window, of the shorter side: wider than a stroke of a digit that fills it
NOISE_SIGMAS = 6  # ink is what rises this many of the paper's noise deviations above it...
LOW_FRACTION = 0.3  # ...and at least this part of Otsu's threshold (JPEG and grain are not Gaussian)
FAINTEST = 1.5  # a digit's peak is at least this many times that floor (noise barely crosses it)
SPARSE = 0.3  # a piece with fewer ink pixels than this part of its length is a chain of noise, no stroke
BORDER_PEAK = 0.6  # a piece at the image's border fainter than this (of the boldest ink) is a shadow's edge
MIN_AREA_FRACTION = 0.01  # components with less ink than this part of the largest one are noise
NOISE_AREA = 0.0025  # ...and those under this part are removed before a pixel's gap is bridged
JOIN_OVERLAP = 0.5  # pieces sharing this part of the narrower one's columns are one digit
FRAGMENT_HEIGHT = 0.65  # pieces shorter than this part of the digits' height (the median's)...
FRAGMENT_AREA = 0.35  # ...with less ink than this part of a digit's (a flat 2 has more) are no digit alone:
ATTACH_GAP = 0.35  # they may join a digit this close (part of the digits' height), else are dropped
PROMOTE_AREA = 0.2  # fragments joined into a digit's height with this part of its ink are one...
FAINT_AREA, FAINT_PEAK = 0.04, 0.6  # ...or with this part, when all fainter than this (a faint, thin digit)
ALONE_HEIGHT = 0.4  # a fragment this tall and ALONE_WIDTH wide that joins no digit is one (a flat, thin 5)
ALONE_WIDTH = 0.3  # when the model is ALONE_SURE of it
ALONE_SURE = 0.9
ATTACH_GAIN = 0.02  # the model must be this much surer of the digit with a fragment to keep it
NECK_WIDTH = 0.5  # pieces this wide (part of the digits' height) are searched for a neck between digits:
NECK_CORES = (0.6, 0.75)  # their strokes' cores (ink this part of the piece's peak: soft edges thicken a contact),
NECK_UNSURE = 0.95  # the second only for a piece SPLIT_WIDTH wide the model is less sure of than this...
NECK_DEPTH = 0.2  # ...eroded by up to this part of a stroke's width fall apart into digit-tall cores side by side
NECK_CORE_HEIGHT = 0.5  # (cores this part of the digits' height); the pieces stand when the model gives
NECK_SURE, NECK_LOSS = 0.6, 0.05  # each this much and all together no more than this below the whole
NECK_APART = 0.95  # (each this much when the cores were apart before any erosion)
SPLIT_WIDTH = 0.8  # pieces at least this wide (part of the digits' height) may be two touching digits
WIDE = 1.3  # ...and at least this wide are two when the model is this sure of both halves together:
SPLIT_SURE = 0.99
SPLIT_GAIN = 0.6  # narrower ones, when it is this much surer of both halves together than of the whole
PAIRS_FILE = "pairs_int8.tflite"  # the pair model make tflite writes beside model_int8.tflite
PAIR_WIDTH = 0.3  # a piece this wide (part of the digits' height: two touching 1s are about 0.4) is two
PAIR_SURE = 0.9  # digits when the pair model gives that this much (0.7 cut more single digits, as many pairs)
SPLIT_CUTS = 11  # columns tried, evenly from SPLIT_SPAN[0] to SPLIT_SPAN[1] of the piece's width
SPLIT_SPAN = (0.25, 0.75)


@dataclasses.dataclass(frozen=True)
class Digit:
    label: int
    probability: float
    box: tuple[int, int, int, int]  # x, y, width, height in the image's own pixels
    probabilities: np.ndarray  # all ten
    split: bool = False  # cut out of ink it touched (another digit)


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
            {"label": d.label, "probability": round(d.probability, 4), "box": list(d.box), "split": d.split}
            for d in self.digits]}


def pair_model_beside(model: str | Path, threads: int | None = None) -> DigitClassifier | None:
    """The pair model exported beside a digit model (PAIRS_FILE in its folder), or None."""
    path = Path(model).with_name(PAIRS_FILE)
    return DigitClassifier(path, num_threads=threads) if path.is_file() else None


def read_image(classifier: DigitClassifier, source: str | Path | bytes | BinaryIO,
               name: str | None = None, pairs: DigitClassifier | None = None) -> Reading:
    """The number in an image file (path, bytes or binary file); errors name the file or `name`."""
    label = name or (str(source) if isinstance(source, (str, Path)) else "the image")
    grey, scale = read_grey(source, name=label, max_side=WORK_SIDE)
    try:
        return read_grey_image(classifier, grey, scale, pairs)
    except ImageError as err:
        raise ImageError(f"{label}: {err}") from None


def read_grey_image(classifier: DigitClassifier, grey: np.ndarray, scale: float = 1.0,
                    pairs: DigitClassifier | None = None) -> Reading:
    """The number in a float greyscale image (H, W); boxes multiplied by `scale`; touching digits
    found by the pair model `pairs` when given, else by rules."""
    ink, faintest = ink_map(grey)
    labels, bodies, fragments, height = find_pieces(ink, faintest)
    if not bodies:
        raise ImageError("no digit found: the ink is only specks")
    if pairs is not None:
        chosen = split_pairs(classifier, pairs, ink, labels, bodies, height)
    else:
        chosen = split_touching(classifier, ink, labels, bodies, height)
    chosen = attach_fragments(classifier, ink, labels, chosen, fragments, height)
    digits = []
    for part, (crop, (x, y, w, h)), p in sorted(chosen, key=lambda c: c[1][1][0] + c[1][1][2] / 2):
        label = int(np.argmax(p))
        box = tuple(int(round(v * scale)) for v in (x, y, w, h))
        digits.append(Digit(label, float(p[label]), box, p, split=part.within is not None))
    return Reading(digits)


def ink_map(grey: np.ndarray) -> tuple[np.ndarray, float]:
    """Ink on a 0 background, either polarity, lighting flattened, in units of the strokes' cores
    (1: the boldest ink; a faint digit's peak is less); what is not well above the paper's noise
    is negated (no ink to find pieces by: `ink > 0` is the ink; cut_out takes it back beside a
    digit's strokes). Also the faintest peak a digit's ink may have, in the same units."""
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
    paper = ink[::2, ::2]
    paper = paper[paper < threshold]
    middle, quartile = np.percentile(paper, [50, 75]) if paper.size else (0.0, 0.0)
    noise = (quartile - middle) / 0.6745  # a Gaussian's quartile is 0.6745 deviations from its middle
    floor = min(threshold, max(middle + NOISE_SIGMAS * noise, LOW_FRACTION * threshold))
    ink /= core
    ink[ink < floor / core] *= -1  # no ink to find pieces by, but a faint digit's soft edge when it is cut out
    return ink, max(FAINTEST * floor, MIN_CONTRAST) / core


@dataclasses.dataclass(frozen=True)
class Part:
    """Which ink is one digit: components `ids` (their box), only the pixels `within` (a mask over
    the box) when cut from touching ink, with the fragments `extra` attached."""

    ids: tuple[int, ...]
    box: tuple[int, int, int, int]  # x0, y0, x1, y1, ends exclusive
    within: np.ndarray | None = dataclasses.field(default=None, compare=False)
    extra: tuple[int, ...] = ()
    extra_box: tuple[int, int, int, int] | None = None

    def columns(self, start: int, end: int) -> Part:
        """This part's ink between image columns start and end."""
        x0, y0, x1, y1 = self.box
        within = np.zeros((y1 - y0, x1 - x0), bool)
        within[:, max(0, start - x0):max(0, end - x0)] = True
        return dataclasses.replace(self, within=within)


def find_pieces(ink: np.ndarray, faintest: float) -> tuple[np.ndarray, list[Part], list[Part], float]:
    """The components' label image; the digits' pieces (bodies) and the fragments, each joined
    with those sharing most of their columns; and the digits' height (pixels)."""
    mask = ink > 0
    labels, boxes, areas = components(mask)
    if not boxes:
        return labels, [], [], 0.0
    peaks = np.zeros(len(boxes) + 1, np.float32)
    np.maximum.at(peaks, labels[mask], ink[mask])
    noise = np.flatnonzero((np.array(areas) < NOISE_AREA * max(areas)) | (peaks[1:] < faintest)) + 1
    mask &= ~np.isin(labels, noise)  # noise and faint residue (a shadow's edge) out first: no bridge chains them
    bridged = mask.copy()  # a stroke broken by a pixel or two (faint, thin ink) stays one piece
    bridged[1:] |= mask[:-1]
    bridged[:-1] |= mask[1:]
    bridged[:, 1:] |= bridged[:, :-1].copy()
    bridged[:, :-1] |= bridged[:, 1:].copy()
    labels, boxes, _ = components(bridged)
    labels[~mask] = 0
    areas = np.bincount(labels[mask], minlength=len(boxes) + 1)[1:].tolist()  # ink pixels, not bridges
    peaks = np.zeros(len(boxes) + 1, np.float32)
    np.maximum.at(peaks, labels[labels > 0], ink[labels > 0])
    rows, cols = ink.shape
    edge = [box[0] == 0 or box[1] == 0 or box[2] == cols or box[3] == rows for box in boxes]
    kept = [k for k, area in enumerate(areas) if area >= MIN_AREA_FRACTION * max(areas) and peaks[k + 1] >= faintest
            and not (edge[k] and peaks[k + 1] < BORDER_PEAK)  # a shadow's or the page's edge, not ink
            and area >= SPARSE * max(boxes[k][2] - boxes[k][0], boxes[k][3] - boxes[k][1])]  # JPEG's block edges
    if not kept:
        return labels, [], [], 0.0
    heights = [boxes[k][3] - boxes[k][1] for k in kept]
    height = float(np.median([h for h in heights if h >= FRAGMENT_HEIGHT * max(heights)]))
    typical = float(np.median([areas[k] for k, h in zip(kept, heights) if h >= FRAGMENT_HEIGHT * height]))
    small = [k for k, h in zip(kept, heights) if h < FRAGMENT_HEIGHT * height
             and (areas[k] < FRAGMENT_AREA * typical or h < ALONE_HEIGHT * height)]
    fragments = join_pieces([boxes[k] for k in small], [areas[k] for k in small], [[k + 1] for k in small])
    promoted = [g[0][3] - g[0][1] >= FRAGMENT_HEIGHT * height and (g[1] >= PROMOTE_AREA * typical or (
        g[1] >= FAINT_AREA * typical and max(peaks[k] for k in g[2]) < FAINT_PEAK)) for g in fragments]
    # ...a digit in pieces (a faint one may have little ink), not a dot above a dash
    bodies = [g for g, up in zip(fragments, promoted) if up]
    fragments = [g for g, up in zip(fragments, promoted) if not up]
    tall = [k for k in kept if k not in small]
    bodies = join_pieces([boxes[k] for k in tall] + [g[0] for g in bodies], [areas[k] for k in tall] + [g[1] for g in bodies],
                         [[k + 1] for k in tall] + [g[2] for g in bodies])
    as_part = lambda group: Part(tuple(group[2]), group[0])  # noqa: E731
    return labels, [as_part(g) for g in bodies], [as_part(g) for g in fragments], height


def cut_out(ink: np.ndarray, labels: np.ndarray, part: Part) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """A part's own ink, stretched to its own peak and cut at INK_THRESHOLD as edge/pi/image.py does
    for one digit alone, cropped to it; and its box (x, y, w, h). None when it has no ink."""
    x0, y0, x1, y1 = merged(part.box, part.extra_box) if part.extra_box else part.box
    x0, y0, x1, y1 = max(0, x0 - 1), max(0, y0 - 1), min(ink.shape[1], x1 + 1), min(ink.shape[0], y1 + 1)
    region = labels[y0:y1, x0:x1]
    own = np.isin(region, part.ids)
    if part.within is not None:
        bx, by = part.box[0] - x0, part.box[1] - y0
        inside = np.zeros_like(own)
        inside[by:by + part.within.shape[0], bx:bx + part.within.shape[1]] = part.within
        own &= inside
    if part.extra:
        own |= np.isin(region, part.extra)
    rows, cols = np.nonzero(own)
    if rows.size == 0:
        return None
    own |= rank_filter(own, 3, np.maximum) & (region == 0)  # ink under the noise floor beside the strokes
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    values = np.where(own, np.abs(ink[y0:y1, x0:x1]), 0)[top:bottom, left:right]
    values = values / values.max()
    values[values < INK_THRESHOLD] = 0
    return values, (int(x0 + left), int(y0 + top), int(right - left), int(bottom - top))


def classify_parts(classifier: DigitClassifier, ink: np.ndarray, labels: np.ndarray,
                   parts: list[Part]) -> list[tuple[tuple[np.ndarray, tuple], np.ndarray] | None]:
    """Each part's (crop, box) and the model's ten probabilities for it, in one batch; None for a
    part without ink."""
    crops = [cut_out(ink, labels, part) for part in parts]
    found = [c for c in crops if c is not None and (c[0] > INK_THRESHOLD).any()]
    probabilities = iter(classifier.predict(np.stack([from_ink(c[0]) for c in found])) if found else [])
    return [(c, next(probabilities)) if c is not None and (c[0] > INK_THRESHOLD).any() else None for c in crops]


def split_touching(classifier: DigitClassifier, ink: np.ndarray, labels: np.ndarray, bodies: list[Part],
                   height: float) -> list[tuple[Part, tuple, np.ndarray]]:
    """Each body as a digit (part, (crop, box), probabilities), or as two or more when it is ink of
    touching digits: cut at a neck (a contact thinner than their strokes) when the model is about
    as sure of the pieces as of the whole, else, when too wide for one digit, at the column where
    the model is surest of both halves."""
    results = classify_parts(classifier, ink, labels, bodies)
    parts = list(bodies)
    necks, cuts = {}, {}  # body index -> (depth, the neck's pieces' indices in parts); -> halves' indices per column
    for i, body in enumerate(bodies):
        x0, y0, x1, y1 = body.box
        if x1 - x0 < NECK_WIDTH * height:
            continue
        unsure = x1 - x0 >= SPLIT_WIDTH * height and (results[i] is None or results[i][1].max() < NECK_UNSURE)
        pieces, depth = neck_cut(ink[y0:y1, x0:x1], np.isin(labels[y0:y1, x0:x1], body.ids), height, unsure)
        if pieces:
            necks[i] = (depth, list(range(len(parts), len(parts) + len(pieces))))
            parts += [dataclasses.replace(body, within=piece) for piece in pieces]
        unsure = results[i] is None or results[i][1].max() < 1 - SPLIT_GAIN  # what takes_split could cut
        if not (x1 - x0 >= WIDE * height or (x1 - x0 >= SPLIT_WIDTH * height and unsure)):
            continue
        cuts[i] = column_cuts(body, parts)
    results += classify_parts(classifier, ink, labels, parts[len(bodies):])
    chosen = []
    for i, body in enumerate(bodies):
        whole = results[i]
        depth, pieces = necks.get(i, (0.0, []))
        neck = [results[k] for k in pieces]
        if neck and all(digit_tall(r, height) for r in neck) and takes_neck(
                [r[1].max() for r in neck], whole, depth):  # each piece a digit's height
            chosen += [(parts[k], *results[k]) for k in pieces]
            continue
        best = None
        for left, right in cuts.get(i, []):
            a, b = results[left], results[right]
            if not (digit_tall(a, height) and digit_tall(b, height)):
                continue
            score = float(np.log(a[1].max()) + np.log(b[1].max()))
            if best is None or score > best[0]:
                best = (score, left, right)
        if best and takes_split(best[0], whole, body, height):
            chosen += [(parts[best[1]], *results[best[1]]), (parts[best[2]], *results[best[2]])]
        elif whole is not None:
            chosen.append((body, *whole))
    return chosen


def split_pairs(classifier: DigitClassifier, pairs: DigitClassifier, ink: np.ndarray, labels: np.ndarray,
                bodies: list[Part], height: float) -> list[tuple[Part, tuple, np.ndarray]]:
    """Each body as a digit, or, when the pair model gives a body PAIR_WIDTH wide or more PAIR_SURE
    of being two touching digits, as the pieces the digit model is surest of, every one a digit's
    height: cut at a neck (neck_cut, both core levels) or at one of SPLIT_CUTS columns."""
    results = classify_parts(classifier, ink, labels, bodies)
    wide = [i for i, body in enumerate(bodies) if body.box[2] - body.box[0] >= PAIR_WIDTH * height
            and results[i] is not None]
    called = pairs.predict(np.stack([from_ink(results[i][0][0]) for i in wide]))[:, 1] if wide else []
    parts, cuts = list(bodies), {}  # body index -> each way to cut it, as indices of its pieces in parts
    for i in (i for i, sure in zip(wide, called) if sure >= PAIR_SURE):
        body = bodies[i]
        x0, y0, x1, y1 = body.box
        pieces, _ = neck_cut(ink[y0:y1, x0:x1], np.isin(labels[y0:y1, x0:x1], body.ids), height, unsure=True)
        cuts[i] = [list(range(len(parts), len(parts) + len(pieces)))] if pieces else []
        parts += [dataclasses.replace(body, within=piece) for piece in pieces or []]
        cuts[i] += column_cuts(body, parts)
    results += classify_parts(classifier, ink, labels, parts[len(bodies):])
    chosen = []
    for i, body in enumerate(bodies):
        ways = [way for way in cuts.get(i, []) if all(digit_tall(results[k], height) for k in way)]
        if ways:
            best = max(ways, key=lambda way: sum(np.log(results[k][1].max()) for k in way))
            chosen += [(parts[k], *results[k]) for k in best]
        elif results[i] is not None:
            chosen.append((body, *results[i]))
    return chosen


def column_cuts(body: Part, parts: list[Part]) -> list[tuple[int, int]]:
    """The body's two halves at each of SPLIT_CUTS columns (SPLIT_SPAN of its width), appended to
    `parts`; their indices there."""
    x0, _, x1, _ = body.box
    cuts = []
    for c in sorted({int(round(x0 + f * (x1 - x0))) for f in np.linspace(*SPLIT_SPAN, SPLIT_CUTS)}):
        cuts.append((len(parts), len(parts) + 1))
        parts += [body.columns(x0, c), body.columns(c, x1)]
    return cuts


def digit_tall(result: tuple | None, height: float) -> bool:
    """Whether a classified piece has ink and is a digit's height (FRAGMENT_HEIGHT of the digits')."""
    return result is not None and result[0][1][3] >= FRAGMENT_HEIGHT * height


def neck_cut(region: np.ndarray, own: np.ndarray, height: float,
             unsure: bool) -> tuple[list[np.ndarray] | None, float]:
    """A piece's ink `own` (a mask over `region`, its ink) as two or more digits side by side, when
    its strokes' cores (ink of a NECK_CORES part of its peak, the first only unless the model is
    `unsure` of the whole; unsure, also not eroded), eroded by up to NECK_DEPTH of a
    stroke's width, leave digit-tall parts (each a group of cores above one another) whose columns
    barely overlap: digits touching at a point. Each pixel goes to the part it grows back into.
    Also the depth they parted at (erosions, in stroke widths). None when there is no such neck."""
    peak = region[own].max()
    for level in NECK_CORES if unsure else NECK_CORES[:1]:
        cores = own & (region >= level * peak)
        stroke = stroke_width(cores)
        eroded = cores
        for step in range(0 if unsure else 1, int(NECK_DEPTH * stroke) + 1):
            eroded = erode(eroded) if step else eroded
            labels, boxes, areas = components(eroded)
            groups = [g for g in join_pieces(boxes, areas, [[k + 1] for k in range(len(boxes))])
                      if g[0][3] - g[0][1] >= NECK_CORE_HEIGHT * height]
            if len(groups) >= 2:
                return grow_back(labels, [g[2] for g in sorted(groups, key=lambda g: g[0][0])], own), step / stroke
            if not groups:
                break
    return None, 0.0


def stroke_width(mask: np.ndarray) -> float:
    """The mean width of a mask's strokes, in pixels: a stroke of width t and length L has area tL
    and 2L pixels at its edge."""
    return 2 * int(mask.sum()) / max(int((mask & ~erode(mask)).sum()), 1)


def grow_back(labels: np.ndarray, groups: list[list[int]], own: np.ndarray) -> list[np.ndarray]:
    """The pixels of `own` each group of components (of `labels`) reaches growing within it, a
    pixel a step; the rest (other components: a 5's bar) go to the group nearest in columns."""
    grown = np.zeros(own.shape, np.int32)
    for n, ids in enumerate(groups, 1):
        grown[np.isin(labels, ids)] = n
    for _ in range(own.shape[0]):
        reach = rank_filter(grown, 3, np.maximum)
        new = own & (grown == 0) & (reach > 0)
        if not new.any():
            break
        grown[new] = reach[new]
    rest = own & (grown == 0)
    if rest.any():
        middles = np.array([np.nonzero(grown == n)[1].mean() for n in range(1, len(groups) + 1)])
        grown[rest] = 1 + np.abs(np.nonzero(rest)[1][:, None] - middles).argmin(axis=1)
    return [grown == n for n in range(1, len(groups) + 1)]


def erode(mask: np.ndarray) -> np.ndarray:
    """A mask less a pixel all round (a 3 x 3 square)."""
    return rank_filter(np.pad(mask, 1), 3, np.minimum)[1:-1, 1:-1]


def takes_neck(sure: list[float], whole: tuple | None, depth: float) -> bool:
    """Whether pieces cut at a neck `depth` deep, the model's top probabilities `sure`, beat the
    whole: each NECK_SURE (NECK_APART when their cores were apart before any erosion: a faint
    join, not a thin one), together no more than NECK_LOSS below the whole."""
    if whole is None:
        return True
    least = NECK_APART if depth == 0 else NECK_SURE
    return min(sure) >= least and float(np.prod(sure)) >= float(whole[1].max()) - NECK_LOSS


def takes_split(score: float, whole: tuple | None, body: Part, height: float) -> bool:
    """Whether two halves whose top probabilities multiply to exp(score) beat the whole: a piece
    WIDE or wider when the model is fairly sure of both, a narrower one only when it is far surer
    of them than of the whole (the model is often sure of two touching digits as one)."""
    if whole is None:
        return True
    if body.box[2] - body.box[0] >= WIDE * height:
        return score >= np.log(SPLIT_SURE)
    return float(np.exp(score)) > float(whole[1].max()) + SPLIT_GAIN


def attach_fragments(classifier: DigitClassifier, ink: np.ndarray, labels: np.ndarray,
                     digits: list[tuple[Part, tuple, np.ndarray]], fragments: list[Part],
                     height: float) -> list[tuple[Part, tuple, np.ndarray]]:
    """Each fragment joined to the digit beside it when the model is surer of that digit with it
    (or as sure, for one within the digit's columns: a 5's bar); else a digit of its own when
    ALONE_HEIGHT tall, ALONE_WIDTH wide and the model ALONE_SURE of it; else dropped."""
    trials = []  # (fragment index, digit index, the part with it)
    for f, fragment in enumerate(fragments):
        for d, (part, (_, (x, y, w, h)), _) in enumerate(digits):
            gap = max(fragment.box[0] - (x + w), x - fragment.box[2], 0)
            rise = max(fragment.box[1] - (y + h), y - fragment.box[3], 0)
            if gap <= ATTACH_GAP * height and rise <= ATTACH_GAP * height:
                trials.append((f, d, dataclasses.replace(part, extra=part.extra + fragment.ids,
                                                         extra_box=fragment.box)))
    alone = [f for f, fragment in enumerate(fragments) if fragment.box[3] - fragment.box[1] >= ALONE_HEIGHT * height
             and fragment.box[2] - fragment.box[0] >= ALONE_WIDTH * height]
    trials += [(f, None, fragments[f]) for f in alone]
    if not trials:
        return digits
    results = classify_parts(classifier, ink, labels, [t[2] for t in trials])
    standing = {f: (part, *result) for (f, d, part), result in zip(trials, results)
                if d is None and result is not None and result[1].max() >= ALONE_SURE}
    best = {}  # fragment -> (gain, digit index)
    for (f, d, _), result in zip(trials, results):
        if result is None or d is None:
            continue
        (_, (x, _, w, _)), before = digits[d][1], digits[d][2]
        fragment = fragments[f]
        inside = min(fragment.box[2], x + w) - max(fragment.box[0], x) >= JOIN_OVERLAP * (fragment.box[2] - fragment.box[0])
        gain = float(result[1].max() - before.max()) + (2 * ATTACH_GAIN if inside else 0.0)
        if gain > ATTACH_GAIN and gain > best.get(f, (-1.0, 0))[0]:
            best[f] = (gain, d)
    extras = {}
    for f, (_, d) in best.items():
        extras.setdefault(d, []).append(fragments[f])
    changed = []
    for d, attached in extras.items():
        part = digits[d][0]
        box = attached[0].box
        for fragment in attached[1:]:
            box = merged(box, fragment.box)
        changed.append((d, dataclasses.replace(part, extra=sum((a.ids for a in attached), ()), extra_box=box)))
    results = classify_parts(classifier, ink, labels, [part for _, part in changed])
    digits = list(digits)
    for (d, part), result in zip(changed, results):
        if result is not None:
            digits[d] = (part, *result)
    return digits + [digit for f, digit in standing.items() if f not in best]


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
                ids: list[list[int]]) -> list[tuple[tuple, int, list[int]]]:
    """Pieces (each of components `ids`) that share most of the narrower one's columns, as one
    digit: (box, area, ids)."""
    groups = [(box, area, list(k)) for box, area, k in zip(boxes, areas, ids)]
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
