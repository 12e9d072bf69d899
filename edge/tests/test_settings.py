"""Each of the reader's thresholds moves a decision: one field of a stage's settings varied on a tiny
made image (or the numbers a decision weighs), the default's decision and the varied one's differ."""

import dataclasses

import numpy as np
import pytest

from edge.pi.image import ImageError
from edge.pi.ink import Box
from edge.pi.pieces import PIECES, Candidate, Part, find_pieces
from edge.pi.reader import InkSettings, ink_map
from edge.pi.rules import RULES, takes_neck, takes_split
from edge.pi.touching import TOUCHING, called_two, column_cuts, neck_cut, stays_whole, together


def digit(ink: np.ndarray, x: int, y: int = 20, height: int = 40, width: int = 8, value: float = 1.0) -> None:
    """A bar of ink: a 1 as far as find_pieces can tell."""
    ink[y:y + height, x:x + width] = value


def pieces(ink: np.ndarray, **changed) -> tuple[int, int] | str:
    """How many bodies and fragments find_pieces makes of `ink` with PIECES changed so; or its refusal."""
    try:
        _, bodies, fragments, _ = find_pieces(ink, 0.5, dataclasses.replace(PIECES, **changed))
    except ImageError as err:
        return str(err).split(":")[0]
    return len(bodies), len(fragments)


def number(count: int, gap: int = 30) -> np.ndarray:
    ink = np.zeros((80, 20 + gap * count), np.float32)
    for k in range(count):
        digit(ink, 10 + gap * k)
    return ink


def test_the_bounds_on_marks_and_digits_refuse_a_number_just_past_them():
    five = number(5)
    assert pieces(five) == (5, 0)
    for field in ("max_marks", "max_digit_pieces", "max_digits"):
        assert pieces(five, **{field: 4}) == "no number found", field
    assert pieces(five, max_ink_runs=5 * 40 - 1) == "no number found"  # a bar of 40 rows: 40 runs


def test_a_short_mark_is_a_fragment_by_its_height_and_ink():
    ink = number(3)
    digit(ink, 100, y=44, height=12, width=14)  # a short blob beside them: a fragment by its height
    assert pieces(ink) == (3, 1)
    assert pieces(ink, fragment_of_height=0.25) == (4, 0)  # tall enough to be a digit
    ink = number(3)
    digit(ink, 100, y=40, height=20, width=3)  # taller, with little ink: a fragment by its ink
    assert pieces(ink) == (3, 1)
    assert pieces(ink, fragment_area_of_typical=0.1) == (4, 0)


def test_pieces_sharing_columns_join_by_the_overlap_share():
    ink = np.zeros((100, 60), np.float32)
    digit(ink, 10, y=10, height=40, width=10)
    digit(ink, 18, y=55, height=40, width=10)  # below it: 4 of the 12 columns of their boxes (a bridge pixel wider) shared
    assert pieces(ink) == (2, 0)
    assert pieces(ink, join_frac_of_narrower=0.3) == (1, 0)


def test_small_and_faint_marks_are_noise_by_their_share_of_the_largest():
    ink = number(2)
    ink[5:9, 70:74] = 1.0  # 16 pixels: 5% of a digit's 320
    assert pieces(ink) == (2, 1)
    assert pieces(ink, min_area_frac_of_largest=0.06) == (2, 0)
    ink = number(2)
    digit(ink, 0, width=4, value=0.55)  # at the border, fainter than border_min_peak_of_core
    assert pieces(ink) == (2, 0) and pieces(ink, border_min_peak_of_core=0.5) == (3, 0)


def test_texture_is_strokes_thin_for_their_extent_and_refused_past_its_share():
    ink = number(6)
    ink[70, :] = 1.0  # a ruled line: strokes of 1 pixel along 200
    assert pieces(ink) == (6, 0)
    assert pieces(ink, min_stroke_of_side=0.001) == (6, 1)  # a line thick enough to be ink (a fragment)
    lattice = np.zeros((200, 400), np.float32)
    digit(lattice, 20, y=60, height=80, width=10)
    lattice[::4, 100:] = lattice[:, 100::4] = 1.0  # ruled lines crossed: 97% of the ink
    assert pieces(lattice) == "no number found"
    assert pieces(lattice, max_texture_frac_of_ink=0.99) == (1, 0)


def test_ink_is_what_rises_above_the_papers_noise():
    grey = np.random.default_rng(0).normal(200, 2, (60, 60)).astype(np.float32)
    grey[20:40, 20:24] -= 100  # a bold bar
    grey[20:40, 40:44] -= 20  # a faint one
    ink, faintest = ink_map(grey)
    assert (ink[20:40, 40:44] > 0).mean() > 0.9
    varied, _ = ink_map(grey, InkSettings(noise_sigmas=20))
    assert (varied[20:40, 40:44] > 0).mean() < 0.1
    assert ink_map(grey, InkSettings(faintest_times_floor=3))[1] > faintest


def whole(sure: float) -> np.ndarray:
    return np.array([sure] + [(1 - sure) / 9] * 9, np.float32)


@pytest.mark.parametrize("field, value, args", [
    ("pair_sure_probability", 0.8, (0.85, whole(0.99), 1.0, 1.0)),  # the finder sure enough alone
    ("pair_leans_probability", 0.4, (0.45, whole(0.5), 1.0, 2.0)),  # the finder leans, the model doubts
    ("one_unsure_probability", 0.4, (0.6, whole(0.5), 1.0, 2.0)),
    ("pair_maybe_probability", 0.1, (0.05, whole(0.99), 1.5, 2.0)),  # wide enough for two
    ("pair_wide_of_height", 1.6, (0.05, whole(0.99), 1.5, 2.0)),
    ("pair_wider_times_median", 1.1, (0.6, whole(0.5), 1.0, 1.2)),  # wider than the number's others
])
def test_each_pair_threshold_moves_whether_a_piece_is_two(field, value, args):
    varied = dataclasses.replace(TOUCHING, **{field: value})
    assert called_two(*args, TOUCHING) != called_two(*args, varied)


def test_a_cut_is_kept_by_the_finders_sureness_and_weighed_by_the_pair_reader():
    assert stays_whole(np.log(0.5), whole(0.9), 0.85)
    assert not stays_whole(np.log(0.5), whole(0.9), 0.85, dataclasses.replace(TOUCHING, pair_sure_probability=0.8))
    pieces_, sides = [whole(0.6), whole(0.9)], (whole(0.3), whole(0.9))
    assert together(pieces_, sides)[0] != together(pieces_, sides, dataclasses.replace(TOUCHING, reader_log_weight=1.0))[0]


def candidate(sure: float, width: int = 10) -> Candidate:
    box = Box(0, 0, width, 40)
    return Candidate(Part((1,), box), np.ones((40, width), np.float32), box, whole(sure))


@pytest.mark.parametrize("field, value, sure, depth, of_whole", [
    ("neck_sure_probability", 0.8, [0.7, 0.99], 0.5, 0.6),
    ("neck_apart_probability", 0.6, [0.7, 0.99], 0.0, 0.6),  # cores apart before any erosion
    ("neck_loss_probability", 0.2, [0.8, 0.9], 0.5, 0.8),
])
def test_each_neck_rule_moves_whether_the_pieces_stand(field, value, sure, depth, of_whole):
    varied = dataclasses.replace(RULES, **{field: value})
    assert takes_neck(sure, candidate(of_whole), depth) != takes_neck(sure, candidate(of_whole), depth, varied)


@pytest.mark.parametrize("field, value, score, width", [
    ("wide_of_height", 1.2, np.log(0.995), 50),  # 1.25 of the height: not wide by default, wide at 1.2
    ("split_sure_probability", 0.9, np.log(0.95), 60),
    ("split_gain_probability", 0.4, np.log(0.95), 40),
])
def test_each_column_rule_moves_whether_the_halves_stand(field, value, score, width):
    varied = dataclasses.replace(RULES, **{field: value})
    body = Part((1,), Box(0, 0, width, 40))
    assert takes_split(score, candidate(0.5), body, 40.0) != takes_split(score, candidate(0.5), body, 40.0, varied)


def test_a_neck_is_found_in_cores_of_a_digits_height_and_columns_are_tried_as_many_as_set():
    region = np.zeros((40, 30), np.float32)
    region[:, 2:10] = region[:, 16:24] = 1.0  # two bars...
    region[20, 10:16] = 0.5  # ...touching by a thin, faint stroke
    own = region > 0
    found, _ = neck_cut(region, own, 40.0, False)
    assert found is not None and len(found) == 2
    assert neck_cut(region, own, 40.0, False, dataclasses.replace(TOUCHING, neck_core_of_height=1.1))[0] is None
    body = Part((1,), Box(0, 0, 30, 40))
    assert len(column_cuts(body, [], TOUCHING)) == 11
    assert len(column_cuts(body, [], dataclasses.replace(TOUCHING, column_cuts=3))) == 3
