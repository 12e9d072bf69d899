"""Touching digits (edge/pi/reader.py's step 7): which pieces of ink are two or more digits, and
where to cut them. With the pair models that make tflite writes beside the digit model
(edge/export/pairs.py): split_pairs, the finder saying which pieces are two digits and the reader
(where there is one) reading the two as a whole, beside the digit model reading each cut piece.
Without them the reader cuts by rules (edge/pi/rules.py), with the same ways to cut a piece
(neck_cut, column_cuts) that this module offers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from edge.pi.classifier import DigitClassifier
from edge.pi.image import PAIR_FIELD, from_ink, pair_field
from edge.pi.ink import components, erode, rank_filter, stroke_width
from edge.pi.pieces import PIECES, Candidate, Part, Piece, PieceSettings, classify_parts, join_pieces

PAIRS_FILE = "pairs_int8.tflite"  # the pair models make tflite writes beside model_int8.tflite: the finder...
PAIR_READER_FILE = "pair_reader_int8.tflite"  # ...and the reader


@dataclasses.dataclass(frozen=True)
class TouchingSettings:
    """Which pieces are touching digits and where they are cut (edge/pi/reader.py's step 7). A share
    `_of_height` is of the digits' height (the median's); a `_probability` is a model's."""

    # Ways to cut a piece (this path's and edge/pi/rules.py's): at a neck, its strokes' cores (ink
    # this share of its peak: soft edges thicken a contact; the second only when the model is unsure
    # of the piece whole), eroded by up to neck_depth_of_stroke of a stroke's width, falling apart
    # into cores neck_core_of_height tall side by side; or at column_cuts columns, evenly across
    # column_span_of_width of its width.
    neck_cores_of_peak: tuple[float, ...] = (0.6, 0.75)
    neck_depth_of_stroke: float = 0.2
    neck_core_of_height: float = 0.5
    column_cuts: int = 11
    column_span_of_width: tuple[float, float] = (0.25, 0.75)
    # The pair models: a piece pair_min_width_of_height wide (two touching 1s are about 0.4) is two
    # digits when the finder gives that pair_sure_probability (0.7 cut more single digits, as many
    # pairs; with the finders merged, 0.9 cut a wide 6 they called 0.95: docs/experiments.md), or
    # pair_leans_probability and the digit model gives it as one less than
    # one_unsure_probability, or pair_maybe_probability when pair_wide_of_height wide (single digits
    # this wide get 0: docs/pi.md); those two only for a piece pair_wider_times_median as wide as
    # the number's other pieces (their median), and cut only where the models are as sure of the
    # pieces as the digit model is of it whole (digits apart stay whole), each piece
    # cut_min_of_height tall (a small 5 beside a 1).
    pair_min_width_of_height: float = 0.3
    pair_sure_probability: float = 0.98
    pair_leans_probability: float = 0.5
    one_unsure_probability: float = 0.9
    pair_wide_of_height: float = 1.4
    pair_maybe_probability: float = 0.03
    pair_wider_times_median: float = 1.3
    cut_min_of_height: float = 0.4
    reader_log_weight: float = 0.5  # the pair reader's log-probabilities count half the digit model's
    # (docs/pi.md: 0.25-2 within 0.6 points)


TOUCHING = TouchingSettings()


@dataclasses.dataclass(frozen=True)
class PairModels:
    """The models for touching digits: the finder (is a piece one digit or two touching: two
    probabilities) and the reader (which two: the left digit's ten probabilities, then the
    right's; None beside exports made before it)."""

    finder: DigitClassifier
    reader: DigitClassifier | None = None


def pair_models_beside(model: str | Path, threads: int | None = None) -> PairModels | None:
    """The pair models exported beside a digit model (PAIRS_FILE and PAIR_READER_FILE in its
    folder), or None without the finder."""
    finder, reader = Path(model).with_name(PAIRS_FILE), Path(model).with_name(PAIR_READER_FILE)
    if not finder.is_file():
        return None
    return PairModels(DigitClassifier(finder, num_threads=threads),
                      DigitClassifier(reader, num_threads=threads, field=PAIR_FIELD) if reader.is_file() else None)


def touching_line(pairs: PairModels | None) -> str:
    """How the reader finds touching digits, for a model with `pairs` beside it."""
    if pairs is None:
        return f"rules (no {PAIRS_FILE} beside it)"
    if pairs.reader is None:
        return f"the pair finder {PAIRS_FILE} beside it (no {PAIR_READER_FILE}: exported before it)"
    return f"the pair models {PAIRS_FILE} and {PAIR_READER_FILE} beside it"


def split_pairs(classifier: DigitClassifier, pairs: PairModels, ink: np.ndarray, labels: np.ndarray,
                bodies: list[Part], height: float, settings: TouchingSettings = TOUCHING,
                pieces: PieceSettings = PIECES) -> list[Candidate]:
    """Each body as a digit, or, when a body pair_min_width_of_height wide or more is two touching digits
    (called_two: by the finder, the digit model's doubt and its width), as the two pieces the models
    are surest of, each cut_min_of_height of the digits' height or taller: cut at a neck (neck_cut,
    both core levels, where it parts the body in two) or at one of column_cuts columns, weighed by
    the reader's reading of the whole as well (together)."""
    results = classify_parts(classifier, ink, labels, bodies)
    widths = [body.box.width / height for body in bodies]  # part of the digits' height
    wide = [i for i, width in enumerate(widths)
            if width >= settings.pair_min_width_of_height and results[i] is not None]
    called = pairs.finder.predict(np.stack([from_ink(results[i].crop) for i in wide]))[:, 1] if wide else []
    wider = [width / float(np.median(widths[:i] + widths[i + 1:])) if len(widths) > 1 else None
             for i, width in enumerate(widths)]
    two = [i for i, sure in zip(wide, called)
           if called_two(float(sure), results[i].probabilities, widths[i], wider[i], settings)]
    finder = dict(zip(wide, called))
    read = pairs.reader.predict(np.stack([pair_field(results[i].crop) for i in two])) if pairs.reader and two else []
    sides = {i: (reading[:10], reading[10:]) for i, reading in zip(two, read)}  # the reader's left and right digit
    parts, cuts = list(bodies), {}  # body index -> each way to cut it, as indices of its pieces in parts
    for i in two:
        body = bodies[i]
        necks, _ = neck_cut(body.box.cut(ink), np.isin(body.box.cut(labels), body.ids), height, True, settings, pieces)
        necks = necks if necks and len(necks) == 2 else None  # the finder finds two digits: more cores are one
        # grainy or bold digit's (a chalk 0 fell into six "1"s: docs/experiments.md)
        cuts[i] = [list(range(len(parts), len(parts) + len(necks)))] if necks else []
        parts += [dataclasses.replace(body, within=neck) for neck in necks or []]
        cuts[i] += column_cuts(body, parts, settings)
    results += classify_parts(classifier, ink, labels, parts[len(bodies):])
    chosen = []
    for i, body in enumerate(bodies):
        ways = [together([results[k].probabilities for k in way], sides.get(i), settings) + (way,)
                for way in cuts.get(i, []) if all(digit_tall(results[k], height, settings.cut_min_of_height) for k in way)]
        score, probabilities, best = max(ways, key=lambda way: way[0]) if ways else (0.0, [], [])
        if ways and not stays_whole(score, results[i].probabilities, float(finder.get(i, 0.0)), settings):
            chosen += [dataclasses.replace(results[k], probabilities=p) for k, p in zip(best, probabilities)]
        elif results[i] is not None:
            chosen.append(results[i])
    return chosen


def called_two(sure: float, whole: np.ndarray, width: float, wider: float | None = None,
               settings: TouchingSettings = TOUCHING) -> bool:
    """Whether a piece is two digits, by the finder's probability that it is (`sure`), the
    digit model's probabilities for it whole, its width (part of the digits' height) and how many
    times as wide it is as the number's other pieces (`wider`; None: there are none)."""
    if sure >= settings.pair_sure_probability:
        return True
    leans = sure >= settings.pair_leans_probability and float(whole.max()) < settings.one_unsure_probability
    maybe = width >= settings.pair_wide_of_height and sure >= settings.pair_maybe_probability
    return (wider is None or wider >= settings.pair_wider_times_median) and (leans or maybe)


def stays_whole(score: float, whole: np.ndarray, sure: float, settings: TouchingSettings = TOUCHING) -> bool:
    """Whether a piece called two by the digit model's doubt or its width, the finder less than
    pair_sure_probability sure of it (`sure`), stays whole: its best cut (`score`, together's log-probability)
    less sure than the digit model is of it whole (`whole`, its probabilities)."""
    return sure < settings.pair_sure_probability and score < float(np.log(whole.max()))


def together(pieces: list[np.ndarray], sides: tuple[np.ndarray, np.ndarray] | None,
             settings: TouchingSettings = TOUCHING) -> tuple[float, list]:
    """How sure the models are of a way to cut a piece (a log-probability) and each of its
    pieces' probabilities: the digit model's alone, or, for two pieces the reader read (`sides`),
    the digit model's times the reader's for that side to the reader_log_weight, scored against
    the reader's own best reading (a way the reader cannot read, of three pieces, is not marked
    down for it)."""
    if sides is None or len(pieces) != 2:
        return float(sum(np.log(p.max()) for p in pieces)), pieces
    tiny = np.float32(1e-6)  # an int8 output's zero
    joint = [np.log(p + tiny) + settings.reader_log_weight * np.log(side + tiny) for p, side in zip(pieces, sides)]
    score = sum(float(j.max() - settings.reader_log_weight * np.log(side.max() + tiny)) for j, side in zip(joint, sides))
    return score, [(np.exp(j - j.max()) / np.exp(j - j.max()).sum()).astype(np.float32) for j in joint]


def column_cuts(body: Part, parts: list[Part], settings: TouchingSettings = TOUCHING) -> list[tuple[int, int]]:
    """The body's two halves at each of column_cuts columns (column_span_of_width of its width),
    appended to `parts`; their indices there."""
    x0, x1 = body.box.x0, body.box.x1
    cuts = []
    spread = np.linspace(*settings.column_span_of_width, settings.column_cuts)
    for c in sorted({int(round(x0 + f * (x1 - x0))) for f in spread}):
        cuts.append((len(parts), len(parts) + 1))
        parts += [body.columns(x0, c), body.columns(c, x1)]
    return cuts


def digit_tall(result: Candidate | None, height: float, least: float) -> bool:
    """Whether a classified piece has ink and is a digit's height (`least` of the digits')."""
    return result is not None and result.box.height >= least * height


def neck_cut(region: np.ndarray, own: np.ndarray, height: float, unsure: bool, settings: TouchingSettings = TOUCHING,
             pieces: PieceSettings = PIECES) -> tuple[list[np.ndarray] | None, float]:
    """A piece's ink `own` (a mask over `region`, its ink) as two or more digits side by side, when
    its strokes' cores (ink of a neck_cores_of_peak part of its peak, the first only unless the model is
    `unsure` of the whole; unsure, also not eroded), eroded by up to neck_depth_of_stroke of a
    stroke's width, leave digit-tall parts (each a group of cores above one another) whose columns
    barely overlap: digits touching at a point. Each pixel goes to the part it grows back into.
    Also the depth they parted at (erosions, in stroke widths). None when there is no such neck."""
    peak = region[own].max()
    for level in settings.neck_cores_of_peak if unsure else settings.neck_cores_of_peak[:1]:
        cores = own & (region >= level * peak)
        stroke = stroke_width(cores)
        eroded = cores
        for step in range(0 if unsure else 1, int(settings.neck_depth_of_stroke * stroke) + 1):
            eroded = erode(eroded) if step else eroded
            labels, boxes, areas = components(eroded)
            groups = [g for g in join_pieces([Piece(b, a, (k + 1,)) for k, (b, a) in enumerate(zip(boxes, areas))],
                                             pieces.join_frac_of_narrower)
                      if g.box.height >= settings.neck_core_of_height * height]
            if len(groups) >= 2:
                return grow_back(labels, [g.ids for g in sorted(groups, key=lambda g: g.box.x0)], own), step / stroke
            if not groups:
                break
    return None, 0.0


def grow_back(labels: np.ndarray, groups: list[tuple[int, ...]], own: np.ndarray) -> list[np.ndarray]:
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
