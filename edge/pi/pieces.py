"""Which ink is one digit: the pieces of a number (components joined when they share their columns,
noise, shadows and fragments told apart), each cut out as a digit alone is and classified, and the
fragments attached to a digit or dropped (edge/pi/reader.py's steps 5, 6 and 8)."""

from __future__ import annotations

import dataclasses

import numpy as np

from edge.pi.classifier import DigitClassifier
from edge.pi.image import INK_THRESHOLD, ImageError, from_ink
from edge.pi.ink import Box, components, ink_runs, rank_filter, stroke_width



@dataclasses.dataclass(frozen=True)
class PieceSettings:
    """Which ink is which digit, and what is no number (steps 5, 6 and 8 of edge/pi/reader.py). A
    share `_of_height` is of the digits' height (the median's), `_of_typical` of a digit's ink
    pixels (the median's), `_of_core` of the boldest ink (1)."""

    min_area_per_side: float = 0.3  # ink pixels per pixel of a piece's longer side; fewer: a chain of noise
    border_min_peak_of_core: float = 0.6  # a piece at the image's border fainter than this is a shadow's edge
    min_area_frac_of_largest: float = 0.01  # components with less ink than this share of the largest are noise...
    noise_area_frac_of_largest: float = 0.0025  # ...and those under this are removed before a pixel's gap is bridged
    join_frac_of_narrower: float = 0.5  # pieces sharing this share of the narrower one's columns are one digit
    fragment_of_height: float = 0.65  # pieces shorter than this...
    fragment_area_of_typical: float = 0.35  # ...with less ink than this (a flat 2 has more) are no digit alone:
    attach_gap_of_height: float = 0.35  # they may join a digit this close, else are dropped
    promote_area_of_typical: float = 0.2  # fragments joined into a digit's height with this much ink are one...
    faint_area_of_typical: float = 0.04  # ...or with this much, when all fainter than faint_peak_of_core
    faint_peak_of_core: float = 0.6  # (a faint, thin digit)
    alone_of_height: float = 0.4  # a fragment this tall and alone_width_of_height wide that joins no digit is
    alone_width_of_height: float = 0.3  # one (a flat, thin 5) when the model gives it alone_min_probability
    alone_min_probability: float = 0.9
    attach_gain_probability: float = 0.02  # the model must be this much surer of a digit with a fragment to keep it
    # What no written number is, and the bounds that keep a reading's time bounded (docs/pi.md, "No number"):
    max_ink_runs: int = 30_000  # runs of ink along the rows (numbers: under 1,000; noise, weaves: 100,000s)...
    max_marks: int = 150  # ...or separate marks kept as ink (pages of dots, grids of specks) beyond: refused
    max_digit_pieces: int = 40  # marks of a digit's size before those sharing columns are joined (a digit may be
    max_digits: int = 20  # in pieces), and digits after, a number may have; more is a page of marks, refused
    min_stroke_of_side: float = 0.02  # a piece whose strokes are thinner than this share of its longer side is
    # texture, no digit (a ruled line, a weave, a noise blob: under 0.012; digits' pieces: over 0.035)
    max_texture_frac_of_ink: float = 0.5  # an image with more of its ink in texture than this (ruled lines aside) is refused


PIECES = PieceSettings()


@dataclasses.dataclass(frozen=True)
class Piece:
    """Components `ids` taken as one mark: their box and their ink pixels (`area`)."""

    box: Box
    area: int
    ids: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Part:
    """Which ink is one digit: components `ids` (their box), only the pixels `within` (a mask over
    the box) when cut from touching ink, with the fragments `extra` (their box `extra_box`) attached."""

    ids: tuple[int, ...]
    box: Box
    within: np.ndarray | None = dataclasses.field(default=None, compare=False)
    extra: tuple[int, ...] = ()
    extra_box: Box | None = None

    def columns(self, start: int, end: int) -> Part:
        """This part's ink between image columns start and end."""
        within = np.zeros((self.box.height, self.box.width), bool)
        within[:, max(0, start - self.box.x0):max(0, end - self.box.x0)] = True
        return dataclasses.replace(self, within=within)


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A part read as one digit: its ink as cut out (`crop`, before MNIST's recipe), the crop's box
    and the model's ten probabilities for it."""

    part: Part
    crop: np.ndarray = dataclasses.field(compare=False)
    box: Box
    probabilities: np.ndarray = dataclasses.field(compare=False)

    @property
    def sure(self) -> np.float32:
        """The model's top probability."""
        return self.probabilities.max()


def find_pieces(ink: np.ndarray, faintest: float,
                settings: PieceSettings = PIECES) -> tuple[np.ndarray, list[Part], list[Part], float]:
    """The components' label image; the digits' pieces (bodies) and the fragments, each joined
    with those sharing most of their columns; and the digits' height (pixels)."""
    mask = ink > 0
    runs = ink_runs(mask)
    if runs > settings.max_ink_runs:
        raise ImageError(f"no number found: the ink is {runs:,} separate runs along the rows, over the "
                         f"{settings.max_ink_runs:,} a written number may have (noise or a texture?)")
    labels, boxes, areas = components(mask)
    if not boxes:
        return labels, [], [], 0.0
    peaks = np.zeros(len(boxes) + 1, np.float32)
    np.maximum.at(peaks, labels[mask], ink[mask])
    textured, largest = texture_and_largest(labels, boxes, areas, settings)
    spread = sum(areas[k - 1] for k in textured
                 if min(boxes[k - 1].width, boxes[k - 1].height) >= settings.min_stroke_of_side * boxes[k - 1].longer)
    if spread > settings.max_texture_frac_of_ink * sum(areas):  # ruled lines (boxes as thin as their strokes) do not count
        raise ImageError(f"no number found: {spread / sum(areas):.0%} of the ink is texture, strokes thinner than "
                         f"{settings.min_stroke_of_side:.0%} of their extent (noise, a weave, hatching?)")
    noise = np.flatnonzero((np.array(areas) < settings.noise_area_frac_of_largest * largest) | (peaks[1:] < faintest)) + 1
    mask &= ~np.isin(labels, [*noise, *textured])  # noise and faint residue (a shadow's edge) out first: no bridge chains them
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
    edge = [box.at_edge(ink.shape) for box in boxes]
    textured, largest = texture_and_largest(labels, boxes, areas, settings)
    kept = [k for k, area in enumerate(areas)
            if area >= settings.min_area_frac_of_largest * largest and peaks[k + 1] >= faintest
            and k + 1 not in textured
            and not (edge[k] and peaks[k + 1] < settings.border_min_peak_of_core)  # a shadow's or the page's edge, not ink
            and area >= settings.min_area_per_side * boxes[k].longer]  # JPEG's block edges
    if len(kept) > settings.max_marks:
        raise ImageError(f"no number found: {len(kept):,} separate marks, over the {settings.max_marks} a written number "
                         "may have (a page of dots or specks?)")
    kept = [k for k in kept if not texture(labels, boxes[k], [k + 1], settings)]
    if not kept:
        return labels, [], [], 0.0
    heights = [boxes[k].height for k in kept]
    height = float(np.median([h for h in heights if h >= settings.fragment_of_height * max(heights)]))
    typical = float(np.median([areas[k] for k, h in zip(kept, heights) if h >= settings.fragment_of_height * height]))
    small = [k for k, h in zip(kept, heights) if h < settings.fragment_of_height * height
             and (areas[k] < settings.fragment_area_of_typical * typical or h < settings.alone_of_height * height)]
    fragments = join_pieces([Piece(boxes[k], areas[k], (k + 1,)) for k in small], settings.join_frac_of_narrower)
    promoted = [g.box.height >= settings.fragment_of_height * height and (
        g.area >= settings.promote_area_of_typical * typical or (g.area >= settings.faint_area_of_typical * typical
                                                                  and max(peaks[k] for k in g.ids) < settings.faint_peak_of_core))
                for g in fragments]
    # ...a digit in pieces (a faint one may have little ink), not a dot above a dash
    bodies = [g for g, up in zip(fragments, promoted) if up]
    fragments = [g for g, up in zip(fragments, promoted) if not up]
    tall = [k for k in kept if k not in small]
    if len(tall) + len(bodies) > settings.max_digit_pieces:
        raise ImageError(f"no number found: {len(tall) + len(bodies)} marks of a digit's size, over the "
                         f"{settings.max_digit_pieces} a written number may have (a page of dots or specks?)")
    bodies = join_pieces([Piece(boxes[k], areas[k], (k + 1,)) for k in tall] + bodies, settings.join_frac_of_narrower)
    bodies = [g for g in bodies if not texture(labels, g.box, g.ids, settings)]  # specks joined in a column
    if len(bodies) > settings.max_digits:
        raise ImageError(f"no number found: {len(bodies)} digit-sized pieces, over the {settings.max_digits} a written "
                         "number may have (a page of marks?)")
    return labels, [Part(g.ids, g.box) for g in bodies], [Part(g.ids, g.box) for g in fragments], height


def texture_and_largest(labels: np.ndarray, boxes: list[Box], areas: list[int],
                        settings: PieceSettings = PIECES) -> tuple[set[int], int]:
    """The largest components that are texture (their labels), largest first until one is not,
    at most max_marks of them; and the area of the largest that is not (what noise is judged
    against: a weave's or a ruled page's ink is no digit's to dwarf its specks)."""
    textured = set()
    for k in np.argsort(areas, kind="stable")[::-1][:settings.max_marks]:
        if not texture(labels, boxes[k], [int(k) + 1], settings):
            return textured, areas[k]
        textured.add(int(k) + 1)
    return textured, max((a for k, a in enumerate(areas) if k + 1 not in textured), default=0)


def texture(labels: np.ndarray, box: Box, ids: list[int] | tuple[int, ...], settings: PieceSettings = PIECES) -> bool:
    """Whether components `ids` (their box) have strokes thinner than min_stroke_of_side of the box's
    longer side: lines, a weave, noise, no digit's strokes."""
    return stroke_width(np.isin(box.cut(labels), ids)) < settings.min_stroke_of_side * box.longer


def cut_out(ink: np.ndarray, labels: np.ndarray, part: Part) -> tuple[np.ndarray, Box] | None:
    """A part's own ink, stretched to its own peak and cut at INK_THRESHOLD as edge/pi/image.py does
    for one digit alone, cropped to it; and its box. None when it has no ink."""
    box = part.box.merged(part.extra_box) if part.extra_box else part.box
    x0, y0, x1, y1 = max(0, box.x0 - 1), max(0, box.y0 - 1), min(ink.shape[1], box.x1 + 1), min(ink.shape[0], box.y1 + 1)
    region = labels[y0:y1, x0:x1]
    own = np.isin(region, part.ids)
    if part.within is not None:
        bx, by = part.box.x0 - x0, part.box.y0 - y0
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
    return values, Box(int(x0 + left), int(y0 + top), int(x0 + right), int(y0 + bottom))


def classify_parts(classifier: DigitClassifier, ink: np.ndarray, labels: np.ndarray,
                   parts: list[Part]) -> list[Candidate | None]:
    """Each part cut out and read by the model, in one batch; None for a part without ink."""
    crops = [cut_out(ink, labels, part) for part in parts]
    found = [c for c in crops if c is not None and (c[0] > INK_THRESHOLD).any()]
    probabilities = iter(classifier.predict(np.stack([from_ink(c[0]) for c in found])) if found else [])
    return [Candidate(part, c[0], c[1], next(probabilities)) if c is not None and (c[0] > INK_THRESHOLD).any()
            else None for part, c in zip(parts, crops)]


def attach_fragments(classifier: DigitClassifier, ink: np.ndarray, labels: np.ndarray,
                     digits: list[Candidate], fragments: list[Part], height: float,
                     settings: PieceSettings = PIECES) -> list[Candidate]:
    """Each fragment joined to the digit beside it when the model is surer of that digit with it
    (or as sure, for one within the digit's columns: a 5's bar); else a digit of its own when
    alone_of_height tall, alone_width_of_height wide and the model gives it alone_min_probability;
    else dropped."""
    trials = []  # (fragment index, digit index, the part with it)
    for f, fragment in enumerate(fragments):
        for d, digit in enumerate(digits):
            gap = max(fragment.box.x0 - digit.box.x1, digit.box.x0 - fragment.box.x1, 0)
            rise = max(fragment.box.y0 - digit.box.y1, digit.box.y0 - fragment.box.y1, 0)
            if gap <= settings.attach_gap_of_height * height and rise <= settings.attach_gap_of_height * height:
                trials.append((f, d, dataclasses.replace(digit.part, extra=digit.part.extra + fragment.ids,
                                                         extra_box=fragment.box)))
    alone = [f for f, fragment in enumerate(fragments) if fragment.box.height >= settings.alone_of_height * height
             and fragment.box.width >= settings.alone_width_of_height * height]
    trials += [(f, None, fragments[f]) for f in alone]
    if not trials:
        return digits
    results = classify_parts(classifier, ink, labels, [t[2] for t in trials])
    standing = {f: result for (f, d, _), result in zip(trials, results)
                if d is None and result is not None and result.sure >= settings.alone_min_probability}
    best = {}  # fragment -> (gain, digit index)
    for (f, d, _), result in zip(trials, results):
        if result is None or d is None:
            continue
        fragment = fragments[f]
        inside = fragment.box.shared_columns(digits[d].box) >= settings.join_frac_of_narrower * fragment.box.width
        gain = float(result.sure - digits[d].sure) + (2 * settings.attach_gain_probability if inside else 0.0)
        if gain > settings.attach_gain_probability and gain > best.get(f, (-1.0, 0))[0]:
            best[f] = (gain, d)
    extras = {}
    for f, (_, d) in best.items():
        extras.setdefault(d, []).append(fragments[f])
    changed = []
    for d, attached in extras.items():
        part = digits[d].part
        box = attached[0].box
        for fragment in attached[1:]:
            box = box.merged(fragment.box)
        changed.append((d, dataclasses.replace(part, extra=sum((a.ids for a in attached), ()), extra_box=box)))
    results = classify_parts(classifier, ink, labels, [part for _, part in changed])
    digits = list(digits)
    for (d, part), result in zip(changed, results):
        if result is not None:
            digits[d] = result
    return digits + [digit for f, digit in standing.items() if f not in best]


def join_pieces(pieces: list[Piece], overlap_frac: float) -> list[Piece]:
    """Pieces that share `overlap_frac` of the narrower one's columns or more, joined as one digit."""
    groups = list(pieces)
    joined = True
    while joined:
        joined = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                a, b = groups[i], groups[j]
                if a.box.shared_columns(b.box) >= overlap_frac * min(a.box.width, b.box.width):
                    groups[i] = Piece(a.box.merged(b.box), a.area + b.area, a.ids + b.ids)
                    del groups[j]
                    joined = True
                    break
            if joined:
                break
    return groups
