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
from edge.pi.pieces import Candidate, Part, classify_parts
from edge.pi.touching import column_cuts, digit_tall, neck_cut

NECK_WIDTH = 0.5  # pieces this wide (part of the digits' height) are searched for a neck between digits;
NECK_UNSURE = 0.95  # both core levels only for a piece SPLIT_WIDTH wide the model is less sure of than this;
NECK_SURE, NECK_LOSS = 0.6, 0.05  # the pieces stand when the model gives each this much and all together
NECK_APART = 0.95  # no more than this below the whole (each this much when the cores were apart before any erosion)
SPLIT_WIDTH = 0.8  # pieces at least this wide (part of the digits' height) may be two touching digits
WIDE = 1.3  # ...and at least this wide are two when the model is this sure of both halves together:
SPLIT_SURE = 0.99
SPLIT_GAIN = 0.6  # narrower ones, when it is this much surer of both halves together than of the whole


def split_by_rules(classifier: DigitClassifier, ink: np.ndarray, labels: np.ndarray, bodies: list[Part],
                   height: float) -> list[Candidate]:
    """Each body as a digit, or as two or more when it is ink of
    touching digits: cut at a neck (a contact thinner than their strokes) when the model is about
    as sure of the pieces as of the whole, else, when too wide for one digit, at the column where
    the model is surest of both halves."""
    results = classify_parts(classifier, ink, labels, bodies)
    parts = list(bodies)
    necks, cuts = {}, {}  # body index -> (depth, the neck's pieces' indices in parts); -> halves' indices per column
    for i, body in enumerate(bodies):
        width = body.box.width
        if width < NECK_WIDTH * height:
            continue
        unsure = width >= SPLIT_WIDTH * height and (results[i] is None or results[i].sure < NECK_UNSURE)
        pieces, depth = neck_cut(body.box.cut(ink), np.isin(body.box.cut(labels), body.ids), height, unsure)
        if pieces:
            necks[i] = (depth, list(range(len(parts), len(parts) + len(pieces))))
            parts += [dataclasses.replace(body, within=piece) for piece in pieces]
        unsure = results[i] is None or results[i].sure < 1 - SPLIT_GAIN  # what takes_split could cut
        if not (width >= WIDE * height or (width >= SPLIT_WIDTH * height and unsure)):
            continue
        cuts[i] = column_cuts(body, parts)
    results += classify_parts(classifier, ink, labels, parts[len(bodies):])
    chosen = []
    for i, body in enumerate(bodies):
        whole = results[i]
        depth, pieces = necks.get(i, (0.0, []))
        neck = [results[k] for k in pieces]
        if neck and all(digit_tall(r, height) for r in neck) and takes_neck(
                [r.sure for r in neck], whole, depth):  # each piece a digit's height
            chosen += [results[k] for k in pieces]
            continue
        best = None
        for left, right in cuts.get(i, []):
            a, b = results[left], results[right]
            if not (digit_tall(a, height) and digit_tall(b, height)):
                continue
            score = float(np.log(a.sure) + np.log(b.sure))
            if best is None or score > best[0]:
                best = (score, left, right)
        if best and takes_split(best[0], whole, body, height):
            chosen += [results[best[1]], results[best[2]]]
        elif whole is not None:
            chosen.append(whole)
    return chosen


def takes_neck(sure: list[float], whole: Candidate | None, depth: float) -> bool:
    """Whether pieces cut at a neck `depth` deep, the model's top probabilities `sure`, beat the
    whole: each NECK_SURE (NECK_APART when their cores were apart before any erosion: a faint
    join, not a thin one), together no more than NECK_LOSS below the whole."""
    if whole is None:
        return True
    least = NECK_APART if depth == 0 else NECK_SURE
    return min(sure) >= least and float(np.prod(sure)) >= float(whole.sure) - NECK_LOSS


def takes_split(score: float, whole: Candidate | None, body: Part, height: float) -> bool:
    """Whether two halves whose top probabilities multiply to exp(score) beat the whole: a piece
    WIDE or wider when the model is fairly sure of both, a narrower one only when it is far surer
    of them than of the whole (the model is often sure of two touching digits as one)."""
    if whole is None:
        return True
    if body.box.width >= WIDE * height:
        return score >= np.log(SPLIT_SURE)
    return float(np.exp(score)) > float(whole.sure) + SPLIT_GAIN
