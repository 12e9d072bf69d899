"""Read a written number: find each digit in a photo or scan, make it MNIST-like, classify, left to right.

    from edge.pi.reader import read_image
    from edge.pi.touching import pair_models_beside
    pairs = pair_models_beside("model_int8.tflite")   # the pair models beside it (make tflite), or None
    reading = read_image(classifier, "photo.jpg", pairs=pairs)  # or read_grey_image(classifier, grey_array)
    reading.text, reading.weakest, reading.digits[0].label, .probability, .box, .split  # box: edge.pi.ink.Box

The steps, each cheap enough for a Pi:
  1. grey, at most WORK_SIDE pixels on its longer side (edge/pi/image.py: EXIF rotation, transparency);
  2. polarity: the ink is the tail of the grey levels farther from the median (paper dominates);
  3. uneven lighting: the background is a grey opening (min then max filter, wider than a stroke)
     on a small copy, smoothed and scaled back; the ink is what rises above it (dark ink: as a
     share of the paper's brightness there, since light multiplies paper and ink alike);
  4. ink pixels: everything well above the paper's noise (not Otsu's threshold, which a faint
     digit can fall under), refused below MIN_CONTRAST (a blank image);
  5. pieces: 8-connected components of the ink (gaps of a pixel bridged), noise and faint pieces
     at the border (a shadow's edge) out, texture out (strokes thin for their extent: ruled lines,
     a weave), pieces that share most of their columns joined; a piece short beside the number's
     digits (their median height), or short and light, is a fragment. No number is found (refused)
     where the ink is mostly texture, or has more runs, marks or digit-sized pieces than a number
     has (noise, a page of dots, a grid of specks): edge/pi/pieces.py's bounds;
  6. each digit's own ink (and the pixel beside its strokes under the noise floor: a faint digit
     keeps its strokes' width), stretched to its own peak and cut at INK_THRESHOLD as edge/pi/image.py
     does for one digit alone (a faint digit or chalk reaches the model as bold ink does), through
     MNIST's recipe, classified in one batch with the alternatives the next step weighs:
  7. touching digits (Digit.split): with the pair models (edge/pi/touching.py: small models trained
     on made pieces of one digit and of two touching ones, edge/export/pairs.py), a wide piece the
     finder calls two digits is cut where the models are surest of every piece, at a neck or a
     column: the digit model reading each piece, the pair reader the two as a whole (split_pairs).
     Without them (a model exported before there was one), by rules (edge/pi/rules.py): a piece
     whose strokes' cores, eroded a little, fall apart into digit-tall parts side by side (a
     contact thinner than the strokes) is cut there, each pixel to the part it grows back into,
     when the model is about as sure of the parts as of the whole; else a piece too wide for one
     digit is cut at the column where the model is surest of both halves, when it is sure enough;
  8. fragments: one beside a digit joins it when the model is surer of the digit with it (a 5's
     loose bar, a 4's stroke), else it is a digit alone if wide and sure enough (a flat 5), else
     dropped (a speck, a stray stroke).
A slight rotation is left to the model, trained with rotations. Steps 6 to 8 classify at most
max_model_inputs pieces, pairs and ways to cut them (edge/pi/budget.py): with the bounds of step 5,
every image the reader takes is read in bounded time (docs/pi.md, "No number, in bounded time").
Every threshold of every step is a field of ReaderSettings (one settings object per stage, its
units in its names), handed down from read_image's `settings`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from edge.pi.budget import Bounded, Budget
from edge.pi.classifier import DigitClassifier
from edge.pi.image import MIN_CONTRAST, ImageError, read_grey
from edge.pi.ink import Box, background, otsu
from edge.pi.pieces import PIECES, PieceSettings, attach_fragments, find_pieces
from edge.pi.rules import RULES, RuleSettings, split_by_rules
from edge.pi.touching import TOUCHING, PairModels, TouchingSettings, split_pairs

WORK_SIDE = 1024  # pixels: larger photos are shrunk first (a digit still spans far more than 28)


@dataclasses.dataclass(frozen=True)
class InkSettings:
    """Which pixels are ink (steps 2 to 4)."""

    background_side_px: int = 64  # the background is estimated on a copy whose shorter side is this...
    opening_of_side: float = 0.25  # ...opened over this share of it (wider than a stroke of a digit that fills it)
    noise_sigmas: float = 6  # ink is what rises this many of the paper's noise deviations above it...
    low_frac_of_otsu: float = 0.3  # ...and at least this share of Otsu's threshold (JPEG and grain are not Gaussian)
    faintest_times_floor: float = 1.5  # a digit's peak is at least this many times that floor (noise barely crosses it)


INK = InkSettings()


@dataclasses.dataclass(frozen=True)
class ReaderSettings:
    """Every tuned threshold of the reader, each stage's in one object; the defaults are the
    reader's (docs/pi.md gives the figures behind them)."""

    ink: InkSettings = INK
    pieces: PieceSettings = PIECES
    touching: TouchingSettings = TOUCHING  # the pair models' path, and the ways to cut a piece both paths share
    rules: RuleSettings = RULES  # without the pair models
    max_digit_px: int = 160  # digits taller than this are read from a copy shrunk to it: a 28x28 model sees no
    # more, and each piece's cost (cut out, cut apart, grown back) stays bounded
    max_model_inputs: int = 600  # inputs to the models (digits, pieces, pairs) one reading may classify


READER = ReaderSettings()


@dataclasses.dataclass(frozen=True)
class Digit:
    label: int
    probability: float
    box: Box  # in the image's own pixels
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
            {"label": d.label, "probability": round(d.probability, 4), "box": d.box.xywh(), "split": d.split}
            for d in self.digits]}


def read_image(classifier: DigitClassifier, source: str | Path | bytes | BinaryIO,
               name: str | None = None, pairs: PairModels | None = None, deadline: float | None = None,
               settings: ReaderSettings = READER) -> Reading:
    """The number in an image file (path, bytes or binary file); errors name the file or `name`.
    Past `deadline` (time.monotonic() seconds), DeadlinePassed."""
    label = name or (str(source) if isinstance(source, (str, Path)) else "the image")
    grey, scale = read_grey(source, name=label, max_side=WORK_SIDE)
    try:
        return read_grey_image(classifier, grey, scale, pairs, deadline, settings)
    except ImageError as err:
        raise ImageError(f"{label}: {err}") from None


def read_grey_image(classifier: DigitClassifier, grey: np.ndarray, scale: float = 1.0,
                    pairs: PairModels | None = None, deadline: float | None = None,
                    settings: ReaderSettings = READER) -> Reading:
    """The number in a float greyscale image (H, W); boxes multiplied by `scale`; touching digits
    found by the pair models `pairs` when given, else by rules. At most max_model_inputs model
    inputs (edge/pi/budget.py), and DeadlinePassed past `deadline`."""
    budget = Budget(settings.max_model_inputs, deadline)  # every model call spends it: the reading's time is bounded
    budget.check_deadline()
    ink, faintest = ink_map(grey, settings.ink)
    classifier = Bounded(classifier, budget)
    if pairs is not None:
        pairs = PairModels(Bounded(pairs.finder, budget), pairs.reader and Bounded(pairs.reader, budget))
    labels, bodies, fragments, height = find_pieces(ink, faintest, settings.pieces)
    if height > settings.max_digit_px:  # read from a copy whose digits are max_digit_px tall
        factor = settings.max_digit_px / height
        size = (max(1, round(grey.shape[1] * factor)), max(1, round(grey.shape[0] * factor)))
        grey = np.asarray(Image.fromarray(np.asarray(grey, np.float32), "F").resize(size, Image.Resampling.BOX))
        scale /= factor
        ink, faintest = ink_map(grey, settings.ink)
        labels, bodies, fragments, height = find_pieces(ink, faintest, settings.pieces)
    budget.check_deadline()
    if not bodies:
        raise ImageError("no digit found: the ink is only specks, lines or texture")
    if pairs is not None:
        chosen = split_pairs(classifier, pairs, ink, labels, bodies, height, settings.touching, settings.pieces)
    else:
        chosen = split_by_rules(classifier, ink, labels, bodies, height, settings.rules, settings.touching,
                                settings.pieces)
    chosen = attach_fragments(classifier, ink, labels, chosen, fragments, height, settings.pieces)
    digits = []
    for candidate in sorted(chosen, key=lambda c: c.box.x0 + c.box.width / 2):
        p = candidate.probabilities
        label = int(np.argmax(p))
        digits.append(Digit(label, float(p[label]), candidate.box.scaled(scale), p, split=candidate.part.within is not None))
    return Reading(digits)


def ink_map(grey: np.ndarray, settings: InkSettings = INK) -> tuple[np.ndarray, float]:
    """Ink on a 0 background, either polarity, lighting flattened, in units of the strokes' cores
    (1: the boldest ink; a faint digit's peak is less); what is not well above the paper's noise
    is negated (no ink to find pieces by: `ink > 0` is the ink; cut_out takes it back beside a
    digit's strokes). Also the faintest peak a digit's ink may have, in the same units."""
    grey = np.asarray(grey, dtype=np.float32)
    low, median, high = np.percentile(grey[::2, ::2], [1, 50, 99])  # every 4th pixel is plenty for these
    dark_ink = median - low > high - median
    if dark_ink:
        grey = 255 - grey
    ground = background(grey, settings.background_side_px, settings.opening_of_side)
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
    floor = min(threshold, max(middle + settings.noise_sigmas * noise, settings.low_frac_of_otsu * threshold))
    ink /= core
    ink[ink < floor / core] *= -1  # no ink to find pieces by, but a faint digit's soft edge when it is cut out
    return ink, max(settings.faintest_times_floor * floor, MIN_CONTRAST) / core
