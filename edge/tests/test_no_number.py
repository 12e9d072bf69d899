"""No number is an answer: images that hold no written number are refused, in bounded work; and
the test tools that make them (edge/tests/nonnumbers.py) and numbers whose digits never touch
(edge/tests/apart.py)."""

import dataclasses
import io

import numpy as np
import pytest
from conftest import model_path
from PIL import Image

from edge.pi import read
from edge.pi.budget import Budget, DeadlinePassed
from edge.pi.classifier import DigitClassifier
from edge.pi.image import ImageError
from edge.pi.ink import Box, components, ink_runs
from edge.pi.pieces import PIECES, find_pieces, texture
from edge.pi.reader import READER, read_image
from edge.forms.synthetic import compose
from edge.pi.touching import pair_models_beside
from edge.tests.apart import LOOKS, MIN_GAP_PX, write_apart
from edge.tests.nonnumbers import KINDS, non_number, non_numbers

SIZES = ((320, 240), (1024, 768))  # a small one, read as it is, and one the reader works at whole

MAX_INK_RUNS, MAX_MARKS, MAX_DIGIT_PIECES, MAX_DIGITS = (PIECES.max_ink_runs, PIECES.max_marks, PIECES.max_digit_pieces,
                                                         PIECES.max_digits)
MIN_STROKE_SHARE, MAX_TEXTURE_SHARE = PIECES.min_stroke_of_side, PIECES.max_texture_frac_of_ink
MAX_DIGIT_PX = READER.max_digit_px


@pytest.fixture(scope="module")
def reader(fixtures):
    model = model_path(fixtures, "int8")
    return DigitClassifier(model, num_threads=1), pair_models_beside(model, 1)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_non_number_is_refused(reader, kind):
    classifier, pairs = reader
    for seed, size in enumerate(SIZES):
        image = non_number(kind, size, np.random.default_rng(seed))
        with pytest.raises(ImageError, match=r"^the image: no (number|digit) found: "):
            read_image(classifier, png(image), name="the image", pairs=pairs)


def test_the_generator_is_seeded_and_takes_turns(reader):
    first, again = non_numbers(7, seed=3, sizes=((64, 48),)), non_numbers(7, seed=3, sizes=((64, 48),))
    assert [kind for kind, _ in first] == list(KINDS)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for (_, a), (_, b) in zip(first, again))
    assert {image.size for _, image in first} == {(64, 48)}


def test_a_non_number_exits_as_a_bad_image_does(tmp_path, fixtures, capsys):
    path = tmp_path / "weave.png"
    non_number("woven", (640, 480), np.random.default_rng(0)).save(path)
    assert read.main([str(model_path(fixtures, "int8")), str(path)]) == 2
    err = capsys.readouterr().err
    assert f"error: {path}: no number found" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_runs_of_ink_are_counted_along_rows():
    mask = np.zeros((3, 8), bool)
    mask[0, 0:2] = mask[0, 4:6] = mask[1, :] = True  # 2 runs, 1 run, none
    assert ink_runs(mask) == 3


def test_too_many_runs_are_refused_before_any_labelling(monkeypatch):
    ink = np.zeros((40, 40), np.float32)
    ink[::2, ::2] = 1.0  # 400 runs of one pixel
    labelled = []
    monkeypatch.setattr("edge.pi.pieces.components", lambda mask: labelled.append(1) or components(mask))
    with pytest.raises(ImageError, match="400 separate runs along the rows, over the 399"):
        find_pieces(ink, 0.5, dataclasses.replace(PIECES, max_ink_runs=399))
    assert labelled == []  # refused before the labelling loop runs
    assert MAX_INK_RUNS >= 10_000  # numbers have under 1,000 (docs/pi.md)


def test_more_marks_than_a_number_has_are_refused_before_they_are_joined(monkeypatch):
    ink = np.zeros((200, 200), np.float32)
    for y in range(5, 200, 10):
        for x in range(5, 200, 10):
            ink[y:y + 3, x:x + 3] = 1.0  # 400 specks, far enough apart not to be bridged
    joined = []
    monkeypatch.setattr("edge.pi.pieces.join_pieces", lambda *args: joined.append(1) or [])
    with pytest.raises(ImageError, match=f"400 separate marks, over the {MAX_MARKS}"):
        find_pieces(ink, 0.5)
    assert joined == []


def test_more_digit_sized_pieces_than_a_number_has_are_refused():
    ink = np.zeros((60, 60 * (MAX_DIGITS + 1)), np.float32)
    for k in range(MAX_DIGITS + 1):
        ink[10:50, 60 * k + 20:60 * k + 28] = 1.0  # a row of 1s, each 40 pixels tall
    with pytest.raises(ImageError, match=f"{MAX_DIGITS + 1} digit-sized pieces, over the {MAX_DIGITS}"):
        find_pieces(ink, 0.5)
    _, bodies, _, _ = find_pieces(ink[:, :60 * MAX_DIGITS], 0.5)
    assert len(bodies) == MAX_DIGITS


def test_texture_is_strokes_thin_for_their_extent():
    labels = np.zeros((200, 200), np.int32)
    labels[100:102, :] = 1  # a ruled line: strokes 2 pixels wide over 200
    labels[20:60, 20:28] = 2  # a 1: strokes 8 wide over 40
    assert texture(labels, Box(0, 100, 200, 102), [1]) and not texture(labels, Box(20, 20, 28, 60), [2])
    assert 2 / 200 < MIN_STROKE_SHARE < 8 / 40


def test_ruled_lines_are_dropped_and_the_number_on_them_read(reader, digits):
    classifier, pairs = reader
    pixels, labels = digits
    page = np.full((240, 480), 245, np.float32)
    page[[20, 21, 200, 201], :] = 150  # blue-grey rules above and below the line written on (a rule through
    for k in range(3):  # the digits is ink they touch: one piece with them)
        digit = 255 - np.kron(pixels[k].reshape(28, 28), np.ones((4, 4))).astype(np.float32)
        page[50:162, 40 + 130 * k:152 + 130 * k] = np.minimum(page[50:162, 40 + 130 * k:152 + 130 * k], digit)
    reading = read_image(classifier, png(Image.fromarray(page.astype(np.uint8))), pairs=pairs)
    assert len(reading.text) == 3


def test_a_budget_refuses_the_inputs_past_it_before_they_are_classified():
    budget = Budget(5)
    budget.spend(3)
    with pytest.raises(ImageError, match="over 5 model inputs"):
        budget.spend(3)
    budget.spend(2)
    assert budget.left == 0


def test_a_reading_spends_its_model_inputs_and_no_more(reader, digits, monkeypatch):
    classifier, pairs = reader
    photo = png(compose(digits[0][:4], "paper", np.random.default_rng(0)))
    spent = []
    monkeypatch.setattr(Budget, "spend", lambda self, count, spend=Budget.spend: spent.append(count) or spend(self, count))
    assert len(read_image(classifier, photo, pairs=pairs).text) == 4
    assert 4 <= sum(spent) <= 100  # four digits, a few ways to cut any the finder calls two
    with pytest.raises(ImageError, match="over 3 model inputs"):
        read_image(classifier, photo, pairs=pairs, settings=dataclasses.replace(READER, max_model_inputs=3))


def test_a_reading_past_its_deadline_stops(reader, digits):
    classifier, pairs = reader
    photo = png(compose(digits[0][:4], "paper", np.random.default_rng(0)))
    with pytest.raises(DeadlinePassed):
        read_image(classifier, photo, pairs=pairs, deadline=0.0)  # time.monotonic() is long past 0


def test_apart_numbers_never_touch(digits):
    """(How often the reader cuts their digits is read_accuracy's cut%: the fixtures' pair finder,
    trained on 8,000 pieces, is no judge of it.)"""
    pixels, labels = digits
    for k, look in enumerate(LOOKS):
        number = write_apart(pixels[4 * k:4 * k + 4], look, np.random.default_rng(k))
        lefts = [x for x, _, _, _ in number.boxes]
        rights = [x + w for x, _, w, _ in number.boxes]
        assert all(left - right >= MIN_GAP_PX for right, left in zip(rights, lefts[1:])) and number.touching == ()
        assert [ink.shape for ink in number.inks] == [(h, w) for _, _, w, h in number.boxes]
        assert rights[-1] < number.image.width and number.image.mode == "RGB"


def test_digits_taller_than_the_bound_are_read_from_a_copy_shrunk_to_it(reader, digits, monkeypatch):
    classifier, pairs = reader
    pixels, labels = digits
    page = np.full((700, 1100), 240, np.uint8)
    for k in range(2):  # two digits 476 pixels tall, far apart
        page[100:576, 40 + 500 * k:516 + 500 * k] = 255 - np.kron(pixels[k].reshape(28, 28), np.ones((17, 17), np.uint8))
    heights = []
    monkeypatch.setattr("edge.pi.reader.find_pieces", lambda ink, faintest, settings: heights.append(find_pieces(ink, faintest))
                        or heights[-1])
    reading = read_image(classifier, png(Image.fromarray(page)), pairs=pairs)
    assert len(reading.text) == 2 and len(heights) == 2
    assert heights[0][3] > MAX_DIGIT_PX >= heights[1][3] - 2  # the copy's digits: MAX_DIGIT_PX, a bridge pixel either way
    assert all(300 < d.box.height < 500 for d in reading.digits)  # boxes in the file's own pixels


def test_more_digit_sized_marks_than_a_number_has_are_refused_before_joining():
    ink = np.zeros((160, 620), np.float32)
    for k in range(20):  # 20 columns of two bars 40 pixels tall: 20 digits once joined, 40 marks before
        ink[10:50, 20 + 30 * k:28 + 30 * k] = ink[60:100, 20 + 30 * k:28 + 30 * k] = 1.0
    _, bodies, _, _ = find_pieces(ink, 0.5)
    assert len(bodies) == MAX_DIGITS == 20 and MAX_DIGIT_PIECES == 40
    ink[110:150, 20:28] = 1.0  # a 41st
    with pytest.raises(ImageError, match=f"41 marks of a digit's size, over the {MAX_DIGIT_PIECES}"):
        find_pieces(ink, 0.5)


def test_an_image_mostly_texture_is_refused_and_ruled_lines_do_not_count():
    ink = np.zeros((200, 400), np.float32)
    ink[60:140, 20:30] = 1.0  # a 1, 800 pixels of ink
    ink[::4, 100:400] = 1.0  # 50 ruled lines, 15,000 pixels: thin boxes, not counted
    _, bodies, _, _ = find_pieces(ink, 0.5)
    assert [(b.box.x0, b.box.y0) for b in bodies] == [(19, 59)]  # the 1 alone (its box one bridge pixel wider)
    ink[:, 100:400:4] = 1.0  # the lines crossed: one lattice, texture that spreads over 300x200
    with pytest.raises(ImageError, match=r"of the ink is texture"):
        find_pieces(ink, 0.5)
    assert MAX_TEXTURE_SHARE == 0.5
