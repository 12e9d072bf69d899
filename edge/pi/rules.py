"""Touching digits without the pair models (edge/pi/reader.py's step 7 for a model exported
without pairs_int8.tflite beside it): rules on the piece's shape and the digit model's doubt.

Kept apart from edge/pi/touching.py, the one path the reader takes when the pair models are
there, so that neither is read to change the other: a model exported without the pair models
(make tflite says so, "by rules") still reads touching digits, less well (docs/pi.md). A piece
is cut at a neck (a contact thinner than the strokes) when the model is about as sure of the
pieces as of the whole, else, when too wide for one digit, at the column where the model is
surest of both halves."""

from __future__ import annotations

import dataclasses

import numpy as np

from edge.pi.classifier import DigitClassifier
from edge.pi.pieces import PIECES, Candidate, Part, PieceSettings, classify_parts
from edge.pi.touching import TOUCHING, TouchingSettings, column_cuts, digit_tall, neck_cut

@dataclasses.dataclass(frozen=True)
class RuleSettings:
    """When the rules cut a piece. A share `_of_height` is of the digits' height (the median's); a
    `_probability` is the digit model's."""

    neck_min_width_of_height: float = 0.5  # pieces this wide are searched for a neck between digits,
    neck_unsure_probability: float = 0.95  # at both core levels when split_min_width_of_height wide and the
    # model gives it less than this; the pieces at a neck stand when the model gives each
    neck_sure_probability: float = 0.6  # this much (neck_apart_probability when the cores were apart before
    neck_apart_probability: float = 0.95  # any erosion: a faint join, not a thin one) and all together no
    neck_loss_probability: float = 0.05  # more than this below the whole
    split_min_width_of_height: float = 0.8  # pieces this wide may be two touching digits...
    wide_of_height: float = 1.3  # ...and this wide are two when the model gives both halves together
    split_sure_probability: float = 0.99  # this much;
    split_gain_probability: float = 0.6  # narrower ones, when it is this much surer of both halves together
    # than of the whole (the model is often sure of two touching digits as one)


RULES = RuleSettings()


def split_by_rules(classifier: DigitClassifier, ink: np.ndarray, labels: np.ndarray, bodies: list[Part],
                   height: float, settings: RuleSettings = RULES, touching: TouchingSettings = TOUCHING,
                   pieces: PieceSettings = PIECES) -> list[Candidate]:
    """Each body as a digit, or as two or more when it is ink of touching digits: cut at a neck (a
    contact thinner than their strokes) when the model is about as sure of the pieces as of the
    whole, else, when too wide for one digit, at the column where the model is surest of both
    halves. Each piece cut from a body is a digit's height (pieces.fragment_of_height or taller)."""
    results = classify_parts(classifier, ink, labels, bodies)
    parts = list(bodies)
    necks, cuts = {}, {}  # body index -> (depth, the neck's pieces' indices in parts); -> halves' indices per column
    for i, body in enumerate(bodies):
        width = body.box.width
        if width < settings.neck_min_width_of_height * height:
            continue
        unsure = width >= settings.split_min_width_of_height * height and (
            results[i] is None or results[i].sure < settings.neck_unsure_probability)
        found, depth = neck_cut(body.box.cut(ink), np.isin(body.box.cut(labels), body.ids), height, unsure,
                                touching, pieces)
        if found:
            necks[i] = (depth, list(range(len(parts), len(parts) + len(found))))
            parts += [dataclasses.replace(body, within=piece) for piece in found]
        unsure = results[i] is None or results[i].sure < 1 - settings.split_gain_probability  # what takes_split could cut
        if width >= settings.wide_of_height * height or (width >= settings.split_min_width_of_height * height and unsure):
            cuts[i] = column_cuts(body, parts, touching)
    results += classify_parts(classifier, ink, labels, parts[len(bodies):])
    tall = lambda result: digit_tall(result, height, pieces.fragment_of_height)  # noqa: E731
    chosen = []
    for i, body in enumerate(bodies):
        whole = results[i]
        depth, cut = necks.get(i, (0.0, []))
        neck = [results[k] for k in cut]
        if neck and all(tall(r) for r in neck) and takes_neck([r.sure for r in neck], whole, depth, settings):
            chosen += neck
            continue
        best = None
        for left, right in cuts.get(i, []):
            a, b = results[left], results[right]
            if not (tall(a) and tall(b)):
                continue
            score = float(np.log(a.sure) + np.log(b.sure))
            if best is None or score > best[0]:
                best = (score, left, right)
        if best and takes_split(best[0], whole, body, height, settings):
            chosen += [results[best[1]], results[best[2]]]
        elif whole is not None:
            chosen.append(whole)
    return chosen


def takes_neck(sure: list[float], whole: Candidate | None, depth: float, settings: RuleSettings = RULES) -> bool:
    """Whether pieces cut at a neck `depth` deep, the model's top probabilities `sure`, beat the
    whole: each neck_sure_probability (neck_apart_probability when their cores were apart before
    any erosion: a faint join, not a thin one), together no more than neck_loss_probability below
    the whole."""
    if whole is None:
        return True
    least = settings.neck_apart_probability if depth == 0 else settings.neck_sure_probability
    return min(sure) >= least and float(np.prod(sure)) >= float(whole.sure) - settings.neck_loss_probability


def takes_split(score: float, whole: Candidate | None, body: Part, height: float,
                settings: RuleSettings = RULES) -> bool:
    """Whether two halves whose top probabilities multiply to exp(score) beat the whole: a piece
    wide_of_height or wider when the model is fairly sure of both, a narrower one only when it is
    far surer of them than of the whole (the model is often sure of two touching digits as one)."""
    if whole is None:
        return True
    if body.box.width >= settings.wide_of_height * height:
        return score >= np.log(settings.split_sure_probability)
    return float(np.exp(score)) > float(whole.sure) + settings.split_gain_probability
