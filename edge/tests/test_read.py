"""python -m edge.pi.read: numbers in photos, found digit by digit, read left to right."""

import json

import numpy as np
import pytest
from conftest import model_path
from PIL import Image

from edge.pi import read
from edge.pi.classifier import DigitClassifier
from edge.pi.image import PAIR_FIELD, ImageError, from_ink, mnist_like, pair_field
from edge.pi.ink import Box, components
from edge.pi.pieces import cut_out, find_pieces
from edge.pi.reader import ink_map, read_grey_image, read_image
from edge.pi.touching import (PAIR_READER_FILE, PAIRS_FILE, TOUCHING, PairModels, called_two, neck_cut,
                              pair_models_beside, stays_whole, together)
from edge.forms.synthetic import PHOTO_FORMS, compose
from edge.forms.written import (GRAIN, LOOKS, bolder, chalky, fragment, grainy, lay_out, out_of_focus, pair_examples,
                                pair_readings, render, slanted, stretched, turned, written_digit)

LENGTH = 4
READER_FIXTURE_DIGITS = 0.8  # the fixtures' pair reader, trained briefly on demo digits (about 0.93)

PAIR_SURE, PAIR_LEANS = TOUCHING.pair_sure_probability, TOUCHING.pair_leans_probability
ONE_UNSURE, PAIR_MAYBE = TOUCHING.one_unsure_probability, TOUCHING.pair_maybe_probability
PAIR_WIDE, PAIR_WIDER = TOUCHING.pair_wide_of_height, TOUCHING.pair_wider_times_median
PAIR_READER_WEIGHT = TOUCHING.reader_log_weight


@pytest.fixture(scope="module")
def classifier(fixtures):
    return DigitClassifier(model_path(fixtures, "int8"), num_threads=1)


@pytest.fixture(scope="module")
def readable(digits, classifier):
    """Digits the model gets right once MNIST-centred: reading them should cost nothing more."""
    pixels, labels = digits
    centred = np.stack([mnist_like(p.reshape(28, 28)) for p in pixels])
    right = classifier.predict(centred).argmax(axis=1) == labels
    return pixels[right], labels[right]


def numbers(readable, count, seed):
    pixels, labels = readable
    picks = np.random.default_rng(seed).permutation(len(labels))[:count * LENGTH].reshape(count, LENGTH)
    return [(pixels[p], "".join(map(str, labels[p]))) for p in picks]


def png(image, path):
    image.save(path)
    return path


def test_components_are_8_connected_with_boxes_and_areas():
    mask = np.zeros((6, 9), bool)
    mask[1, 1] = mask[2, 2] = mask[3, 1] = True  # one component through diagonals
    mask[1:5, 5:8] = True
    mask[2:4, 6] = False  # a ring is still one component
    labels, boxes, areas = components(mask)
    assert sorted(boxes, key=lambda box: box.x0) == [Box(1, 1, 3, 4), Box(5, 1, 8, 5)] and sorted(areas) == [3, 10]
    assert set(np.unique(labels)) == {0, 1, 2} and (labels > 0).sum() == 13


@pytest.mark.parametrize("form", PHOTO_FORMS)
def test_every_form_is_cut_into_its_digits_and_read(tmp_path, classifier, readable, form):
    texts, truths = [], []
    for k, (pixels, truth) in enumerate(numbers(readable, 5, seed=PHOTO_FORMS.index(form))):
        image = compose(pixels, form, np.random.default_rng(k))
        reading = read_image(classifier, png(image, tmp_path / f"{k}.png"))
        texts.append(reading.text)
        truths.append(truth)
        xs = [d.box.x0 for d in reading.digits]
        assert xs == sorted(xs) and all(d.box.x1 <= image.width for d in reading.digits)
    assert [len(t) for t in texts] == [LENGTH] * 5, texts  # every digit found, nothing else
    right = np.mean([a == b for text, truth in zip(texts, truths) for a, b in zip(text, truth)])
    assert right >= (0.95 if form in ("plain", "paper", "board", "jpeg") else 0.85), (texts, truths)


def test_boxes_are_in_the_files_own_pixels_when_it_is_shrunk(tmp_path, classifier, readable):
    (pixels, truth), = numbers(readable, 1, seed=7)
    small = read_image(classifier, png(compose(pixels, "paper", np.random.default_rng(0), scale=4), tmp_path / "s.png"))
    large = compose(pixels, "paper", np.random.default_rng(0), scale=12)
    assert large.width > 1024  # edge/pi/reader.py's WORK_SIDE: read at a third of its size
    big = read_image(classifier, png(large, tmp_path / "l.png"))
    assert big.text == small.text
    big_boxes, small_boxes = (np.array([d.box.xywh() for d in big.digits]),
                              3 * np.array([d.box.xywh() for d in small.digits]))
    centres = lambda boxes: boxes[:, :2] + boxes[:, 2:] / 2  # noqa: E731
    assert np.abs(centres(big_boxes) - centres(small_boxes)).max() <= 12  # one pixel of a 28x28 digit here
    assert np.abs(big_boxes[:, 2:] / small_boxes[:, 2:] - 1).max() < 0.25  # soft edges cross the ink floor apart


def test_one_digit_alone_reads_as_that_digit(tmp_path, classifier, readable):
    pixels, labels = readable
    for i in range(5):
        page = 255 - np.kron(pixels[i].reshape(28, 28), np.ones((6, 6), np.uint8))
        reading = read_image(classifier, png(Image.fromarray(np.pad(page, 40, constant_values=255)), tmp_path / "d.png"))
        assert reading.text == str(labels[i])


def test_cli_prints_lines_json_and_annotates(tmp_path, fixtures, readable, capsys):
    (pixels, truth), = numbers(readable, 1, seed=3)
    photo = png(compose(pixels, "board", np.random.default_rng(0)), tmp_path / "board.jpg")
    model = str(model_path(fixtures, "int8"))
    assert read.main([model, str(photo)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{photo}: {truth}  (weakest digit 0.")
    out = tmp_path / "annotated"
    assert read.main([model, str(photo), "--json", "--annotate", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["file"] == str(photo) and result["text"] == truth and list(result) == ["file", "text", "weakest",
                                                                                         "digits"]
    assert [d["label"] for d in result["digits"]] == [int(c) for c in truth]
    assert all(len(d["box"]) == 4 and 0 < d["probability"] <= 1 for d in result["digits"])
    assert result["weakest"] == min(d["probability"] for d in result["digits"])
    assert sorted(p.name for p in out.iterdir()) == ["board.png"]
    assert Image.open(out / "board.png").size == Image.open(photo).size


def test_bad_images_are_one_line_after_the_good_ones(tmp_path, fixtures, readable, capsys):
    (pixels, truth), = numbers(readable, 1, seed=4)
    good = png(compose(pixels, "paper", np.random.default_rng(0)), tmp_path / "good.png")
    blank = png(Image.new("L", (200, 80), 240), tmp_path / "blank.png")
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:300])
    model = str(model_path(fixtures, "int8"))
    assert read.main([model, str(good), str(blank)]) == 2
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{good}: {truth}") and "error: " + str(blank) + ": no digit found" in captured.err
    assert read.main([model, str(cut)]) == 2
    assert f"error: {cut}: not a readable image" in capsys.readouterr().err
    with pytest.raises(ImageError, match="tiny.png: too small"):
        read_image(DigitClassifier(model), png(Image.new("L", (1, 1)), tmp_path / "tiny.png"))


# The failure classes of issue 31, each as one small made image whose text is asserted.
HEIGHT = 84  # pixels: each digit's 28x28 field scaled 3x (its ink's longer side about 60)


def first_of(readable, label, skip=0):
    pixels, labels = readable
    return pixels[np.flatnonzero(labels == label)[skip]]


def page(fields, form="paper", strengths=None, touching=(), seed=0):
    """Digits (N, 784) written in a row by edge/forms/written.py (no fragments), as a PIL image."""
    rng = np.random.default_rng(seed)
    inks = [written_digit(f, 60.0, "paper", rng, last=False) for f in fields]
    if strengths:
        inks = [ink * s for ink, s in zip(inks, strengths)]
    canvas, _ = lay_out(inks, 60.0, rng, touching)
    return render(canvas, 60.0, form, rng)


def test_a_faint_thin_last_digit_is_read(tmp_path, classifier, readable):
    fields = [first_of(readable, k) for k in (3, 8, 7, 7, 0)]
    faint = page(fields, strengths=[1, 1, 1, 1, 0.3])
    reading = read_image(classifier, png(faint, tmp_path / "faint.png"))
    assert reading.text == "38770"


def test_a_stray_stroke_and_a_dot_beside_an_8_are_dropped(tmp_path, classifier, readable):
    rng = np.random.default_rng(0)
    inks = [written_digit(first_of(readable, k), 60.0, "paper", rng, last=False) for k in (8, 3)]
    canvas, boxes = lay_out(inks, 60.0, rng, ())
    x, y, w, h = boxes[0]
    for blob, (top, left) in ((fragment(2.5, 30.0, 1.5, 1.0), (y - 2, x - 30)),  # a stray stroke, 10 px left
                              (fragment(3.0, 0.0, 0.0, 1.0), (y - 14, x + w // 2))):  # a dot above it
        area = canvas[top:top + blob.shape[0], left:left + blob.shape[1]]
        np.maximum(area, blob, out=area)
    reading = read_image(classifier, png(render(canvas, 60.0, "paper", rng), tmp_path / "speck.png"))
    assert reading.text == "83"


def test_a_white_on_dark_number_is_read(tmp_path, classifier, readable):
    fields = [first_of(readable, k) for k in (3, 1, 4)]
    reading = read_image(classifier, png(page(fields, form="board"), tmp_path / "board.png"))
    assert reading.text == "314"


def test_a_chalk_digit_reaches_the_model_as_the_same_digit_alone_does(readable):
    """The reader's crop of a digit on a board is what edge/pi/image.py makes of it alone."""
    board = np.asarray(page([first_of(readable, 4)], form="board").convert("L"), np.float32)
    ink, faintest = ink_map(board)
    labels, bodies, _, _ = find_pieces(ink, faintest)
    assert len(bodies) == 1
    crop, _ = cut_out(ink, labels, bodies[0])
    read, alone = from_ink(crop).astype(float), mnist_like(board).astype(float)
    assert np.abs(read - alone).mean() < 8  # grey levels of 255: threshold, stroke width and centre agree
    assert abs((read > 127).sum() - (alone > 127).sum()) <= 0.1 * (alone > 127).sum()


def test_two_touching_digits_are_cut_apart(tmp_path, fixtures, classifier, readable, capsys):
    fields = [first_of(readable, k) for k in (2, 0, 5)]
    image = page(fields, touching=(0,))
    reading = read_image(classifier, png(image, tmp_path / "touching.png"))
    assert reading.text == "205"
    assert [d.split for d in reading.digits] == [True, True, False]
    assert read.main([str(model_path(fixtures, "int8")), str(tmp_path / "touching.png"), "--json"]) == 0
    assert [d["split"] for d in json.loads(capsys.readouterr().out)["digits"]] == [True, True, False]


@pytest.mark.parametrize("pair", [(1, 1), (3, 1), (5, 8)])
def test_digits_touching_at_a_point_are_cut_at_the_neck(tmp_path, classifier, readable, pair):
    """Pairs too narrow for a column cut (1.1-1.5 digit heights, where single digits reach 1.2),
    which the model reads as one digit whole (11 as 0, 31 and 58 as 8)."""
    image = page([first_of(readable, k) for k in pair], touching=(0,))
    reading = read_image(classifier, png(image, tmp_path / "pair.png"))
    assert reading.text == "".join(map(str, pair))
    assert [d.split for d in reading.digits] == [True, True]


def test_a_neck_thinner_than_the_strokes_parts_two_digits_and_a_ring_stays_whole():
    ink = np.zeros((50, 60), np.float32)
    ink[5:45, 10:20] = ink[5:45, 36:46] = 1.0  # two strokes 10 wide...
    ink[24:26, 20:36] = 1.0  # ...joined by a bar 2 high
    pieces, depth = neck_cut(ink, ink > 0, 40.0, unsure=False)
    assert len(pieces) == 2 and 0 < depth <= 0.2
    assert pieces[0][5:45, 10:20].all()
    assert pieces[1][5:45, 36:46].all()
    assert not (pieces[0] & pieces[1]).any() and ((pieces[0] | pieces[1]) == (ink > 0)).all()
    ring = np.zeros((50, 50), np.float32)
    ys, xs = np.mgrid[0:50, 0:50]
    ring[(np.hypot(ys - 25, xs - 25) < 20) & (np.hypot(ys - 25, xs - 25) >= 12)] = 1.0
    assert neck_cut(ring, ring > 0, 40.0, unsure=True) == (None, 0.0)


class Answers:
    """A model double: each input's probabilities by `answer` (a 28x28 uint8 input -> ten or two)."""

    def __init__(self, answer):
        self.answer = answer

    def predict(self, inputs):
        return np.stack([self.answer(x.reshape(28, 28)) for x in inputs]).astype(np.float32)


def test_the_pair_path_cuts_a_piece_in_two_never_into_the_cores_of_a_grainy_stroke():
    """Three bars joined by thin bridges fall into three cores at a neck; the finder says "two" and
    the digit model is surest of each bar alone, yet the finder's pieces are two: a column cut."""
    grey = np.full((80, 100), 255.0, np.float32)
    for x in (30, 44, 58):
        grey[20:60, x:x + 8] = 0.0
    grey[39, 38:44] = grey[41, 52:58] = 0.0  # bridges a pixel thick
    assert len(neck_cut(255 - grey[20:60, 30:66], grey[20:60, 30:66] < 128, 40.0, unsure=True)[0]) == 3

    def digit(x):
        bars = (x > 127).sum(axis=0) >= 10  # columns of a bar (not of a bridge)
        one = np.count_nonzero(np.diff(bars.astype(int)) == 1) + bars[0] == 1  # one bar alone: a sure 1
        return np.eye(10)[1] * 0.99 + 0.001 if one else np.full(10, 0.1)

    finder = Answers(lambda x: np.array([0.0, 1.0]))
    reading = read_grey_image(Answers(digit), grey, pairs=PairModels(finder))
    assert len(reading.digits) == 2 and all(d.split for d in reading.digits)


@pytest.fixture(scope="module")
def pairs(fixtures):
    """The reader's pair models, exported beside the fixture model (trained on made demo pieces)."""
    models = pair_models_beside(model_path(fixtures, "int8"), threads=1)
    assert models is not None and models.reader is not None, "make tflite (edge_fixtures.py) writes both"
    return models


def test_pair_examples_are_half_single_digits_half_touching_pairs_laid_out_wider(readable):
    pieces, labels = pair_examples(readable[0], 60, np.random.default_rng(0))
    assert pieces.shape == (60, 28, 28) and pieces.dtype == np.uint8 and list(labels[:4]) == [0, 1, 0, 1]
    columns = (pieces > 127).any(axis=1).sum(axis=1)
    rows = (pieces > 127).any(axis=2).sum(axis=1)
    wide = columns / rows  # MNIST's box keeps a piece's shape: a pair lies flat
    assert np.median(wide[labels == 1]) > 1.4 * np.median(wide[labels == 0])


def test_the_pair_model_tells_two_touching_digits_from_one(readable, pairs):
    pieces, labels = pair_examples(readable[0], 200, np.random.default_rng(1))
    called = pairs.finder.predict(pieces)[:, 1] >= PAIR_SURE
    assert np.mean(called == labels) >= 0.9
    assert np.sum(called & (labels == 0)) <= 2  # a single digit called two is cut: the costlier mistake


def test_shaped_pieces_have_wider_single_digits_and_none_at_shapes_0(readable):
    plain = pair_examples(readable[0], 120, np.random.default_rng(2))
    assert all(np.array_equal(a, b) for a, b in zip(plain, pair_examples(readable[0], 120, np.random.default_rng(2), 0.0)))
    shaped, labels = pair_examples(readable[0], 120, np.random.default_rng(2), 1.0)

    def aspect(pieces):
        return (pieces > 127).any(axis=1).sum(axis=1) / (pieces > 127).any(axis=2).sum(axis=1)

    singles = np.median(aspect(shaped[labels == 0])) / np.median(aspect(plain[0][plain[1] == 0]))
    assert 1.1 < singles < 1.45  # every digit drawn 1.0 to 1.4 times as wide, and slanted


def test_stroked_pieces_have_bolder_single_digits_and_none_at_strokes_0(readable):
    plain = pair_examples(readable[0], 120, np.random.default_rng(2), 0.3)
    assert all(np.array_equal(a, b) for a, b in zip(plain, pair_examples(readable[0], 120, np.random.default_rng(2), 0.3, 0.0)))
    ys, xs = np.mgrid[0:28, 0:28]
    ring = np.where(np.abs(np.hypot((ys - 14) / 10, (xs - 14) / 7) - 1) < 0.08, 255, 0).astype(np.uint8)[None]  # a thin 0
    thin, labels = pair_examples(ring, 120, np.random.default_rng(3), 0.0)
    stroked, _ = pair_examples(ring, 120, np.random.default_rng(3), 0.0, 1.0)

    def ink(pieces):  # MNIST's box fits the piece: bolder strokes cover more of it
        return np.median((pieces[labels == 0] > 60).mean(axis=(1, 2)))

    assert ink(stroked) > 1.4 * ink(thin)  # 1 to 3.5 % of the height bolder on each side


def test_bolder_ink_grows_each_side_of_a_stroke_and_its_box_and_grainy_ink_skips():
    bar = np.zeros((40, 10), np.float32)
    bar[:, 4:6] = 1.0
    bold = bolder(bar, 2.4)  # two pixels a side
    assert bold.shape == (44, 14) and (bold[2:42, 4:10] == 1.0).all() and bold[:, :4].max() == 0
    assert bolder(bar, 0.2).shape == (42, 12)  # at least one
    grain = grainy(bar, np.random.default_rng(0))
    stroke = grain[bar > 0]
    assert stroke.min() >= GRAIN[0] and stroke.max() <= 1.0 and stroke.std() > 0.05 and not grain[bar == 0].any()


def test_stretched_and_slanted_ink_keeps_its_height_and_leans():
    bar = np.zeros((40, 10), np.float32)
    bar[:, 4:6] = 1.0  # an upright stroke
    wide = stretched(bar, 1.4)
    assert wide.shape == (40, 14) and np.isclose(wide.sum(), 1.4 * bar.sum(), rtol=0.05)
    for slant in (0.15, -0.15):
        leaning = slanted(bar, slant)
        assert leaning.shape == (40, 10 + 6 + 1)
        top, bottom = (np.nonzero(leaning[row] > 0.5)[0].mean() for row in (2, 37))
        assert np.isclose(abs(top - bottom), 0.15 * 35, atol=1.0) and np.sign(top - bottom) == np.sign(slant)  # > 0: /


def test_pair_readings_are_touching_pairs_wide_with_both_labels(readable):
    pixels, labels = readable
    fields, pairs = pair_readings(pixels, labels, 40, np.random.default_rng(0))
    assert fields.shape == (40, *PAIR_FIELD) and fields.dtype == np.uint8 and pairs.shape == (40, 2)
    assert set(np.unique(pairs)) <= set(labels.tolist()) and len({tuple(p) for p in pairs}) > 20
    columns = (fields > 127).any(axis=1).sum(axis=1)
    rows = (fields > 127).any(axis=2).sum(axis=1)
    assert np.median(columns / rows) > 1.0  # two digits side by side (one alone is taller than wide)


def test_made_pieces_look_as_a_camera_sees_them_turned_out_of_focus_or_chalky():
    bar = np.zeros((60, 120), np.float32)
    bar[28:32, 20:100] = 1.0  # a flat stroke 4 pixels thick
    rng = np.random.default_rng(0)
    tilted = turned(bar, rng)
    assert np.ptp(np.nonzero(tilted > 0.5)[0]) > 4 and np.isclose(tilted.sum(), bar.sum(), rtol=0.05)
    soft = out_of_focus(bar, 60.0, rng)  # 0.9 to 2.1 pixels of blur
    assert soft.max() < 0.95 and (soft > 0.05).sum() > 1.3 * (bar > 0).sum()
    assert np.isclose(soft.sum(), bar.sum(), rtol=0.01)
    chalk = chalky(bar, rng)
    stroke = chalk[bar > 0]
    assert stroke.min() >= 0.35 - 1e-6 and stroke.max() <= 1.0 and stroke.std() > 0.05 and not chalk[bar == 0].any()
    names = [name for name, _ in LOOKS]
    assert names[0] == "written" and set(names[1:]) == {"turned", "blurred", "chalk"} and np.isclose(
        sum(share for _, share in LOOKS), 1.0)


def test_a_pair_field_keeps_the_pairs_shape_centred_in_its_box():
    ink = np.zeros((60, 200), np.float32)
    ink[10:50, 20:140] = 1.0  # 40 x 120: three times as wide as tall
    field = pair_field(ink)
    rows, cols = np.nonzero(field > 127)
    assert field.shape == PAIR_FIELD and cols.max() - cols.min() + 1 == 52 and 16 <= rows.max() - rows.min() + 1 <= 18
    assert abs((cols.min() + cols.max()) / 2 - 27.5) <= 1 and abs((rows.min() + rows.max()) / 2 - 13.5) <= 1
    with pytest.raises(ImageError, match="empty"):
        pair_field(np.zeros((5, 5), np.float32))


def test_a_piece_is_two_by_the_finder_with_the_digit_models_doubt_or_its_width():
    whole = lambda top: np.array([top] + [(1 - top) / 9] * 9, np.float32)  # noqa: E731
    assert called_two(PAIR_SURE, whole(0.996), 1.0) and not called_two(PAIR_LEANS - 0.01, whole(0.3), 1.0)
    assert called_two(PAIR_LEANS + 0.01, whole(ONE_UNSURE - 0.01), 1.0)  # the finder leans, the digit model doubts
    assert not called_two(PAIR_LEANS + 0.01, whole(ONE_UNSURE + 0.01), 1.0)
    assert called_two(PAIR_MAYBE + 0.01, whole(0.996), PAIR_WIDE + 0.05)  # too wide for one digit
    assert not called_two(PAIR_MAYBE + 0.01, whole(0.996), PAIR_WIDE - 0.05)
    assert not called_two(PAIR_MAYBE - 0.01, whole(0.3), PAIR_WIDE + 0.5)  # the finder sure it is one
    # beside other digits, doubt and width count only for a piece PAIR_WIDER times as wide as they are
    assert not called_two(PAIR_LEANS + 0.01, whole(ONE_UNSURE - 0.01), 1.0, PAIR_WIDER - 0.05)
    assert called_two(PAIR_LEANS + 0.01, whole(ONE_UNSURE - 0.01), 1.0, PAIR_WIDER + 0.05)
    assert not called_two(PAIR_MAYBE + 0.01, whole(0.996), PAIR_WIDE + 0.05, PAIR_WIDER - 0.05)
    assert called_two(PAIR_SURE, whole(0.996), 1.0, 0.5)  # the finder sure: however narrow beside the others


def test_a_piece_the_finder_doubts_stays_whole_unless_its_cut_is_surer():
    whole = lambda top: np.array([top] + [(1 - top) / 9] * 9, np.float32)  # noqa: E731
    assert stays_whole(np.log(0.5), whole(0.9), PAIR_SURE - 0.01)
    assert not stays_whole(np.log(0.95), whole(0.9), PAIR_SURE - 0.01)
    assert not stays_whole(np.log(0.1), whole(0.99), PAIR_SURE)  # the finder sure: cut


def test_two_cut_pieces_are_read_with_the_pair_reader_and_other_ways_by_the_digit_model():
    digit = lambda **p: np.array([p.get(str(k), 0.0) for k in range(10)], np.float32)  # noqa: E731
    left, right = digit(**{"7": 0.6, "1": 0.4}), digit(**{"4": 0.9, "9": 0.1})
    reader = (digit(**{"1": 0.98, "7": 0.02}), digit(**{"4": 0.5, "9": 0.5}))
    score, (a, b) = together([left, right], reader)
    assert a.argmax() == 1 and b.argmax() == 4  # the reader sure of a 1 where the cut left a 7 likelier
    assert np.isclose(a.sum(), 1) and np.isclose(b.sum(), 1)
    expected = (np.log(0.4) + PAIR_READER_WEIGHT * np.log(0.98) - PAIR_READER_WEIGHT * np.log(0.98)
                + np.log(0.9) + PAIR_READER_WEIGHT * np.log(0.5) - PAIR_READER_WEIGHT * np.log(0.5))
    assert score == pytest.approx(expected, abs=1e-4)  # scored against the reader's own best reading
    assert together([left, right], None) == (pytest.approx(np.log(0.6) + np.log(0.9)), [left, right])
    three = [left, right, digit(**{"5": 1.0})]
    assert together(three, reader)[0] == pytest.approx(np.log(0.6) + np.log(0.9) + np.log(1.0))


def test_the_pair_reader_reads_both_digits_of_made_pairs(readable, pairs):
    pixels, labels = readable
    fields, truth = pair_readings(pixels, labels, 200, np.random.default_rng(1))
    read = pairs.reader.predict(fields)
    right = np.stack([read[:, :10].argmax(axis=1), read[:, 10:].argmax(axis=1)], axis=1) == truth
    assert right.mean() >= READER_FIXTURE_DIGITS


@pytest.mark.parametrize("fields, touching, text, split", [
    ((2, 0, 5), (0,), "205", [True, True, False]),
    ((2, 4), (0,), "24", [True, True]),  # these three the rules read as one digit (4, 8, 4)
    ((3, 8), (0,), "38", [True, True]),
    ((6, 8), (0,), "68", [True, True]),
    ((2, 0, 5), (), "205", [False, False, False]),  # apart: nothing to cut
])
def test_the_pair_model_finds_the_touching_pair_and_the_digit_model_where_to_cut(
        tmp_path, classifier, readable, pairs, fields, touching, text, split):
    image = page([first_of(readable, k) for k in fields], touching=touching)
    reading = read_image(classifier, png(image, tmp_path / "pair.png"), pairs=pairs)
    assert reading.text == text
    assert [d.split for d in reading.digits] == split


def test_read_uses_the_pair_models_beside_the_model_and_rules_without_one(tmp_path, fixtures, readable, capsys):
    image = png(page([first_of(readable, k) for k in (2, 0, 5)], touching=(0,)), tmp_path / "touching.png")
    assert read.main([str(model_path(fixtures, "int8")), str(image)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{image}: 205") and f"by the pair models {PAIRS_FILE} and {PAIR_READER_FILE} beside it" in err
    finder = tmp_path / "finder" / "model_int8.tflite"
    finder.parent.mkdir()
    for name in (finder.name, PAIRS_FILE):
        (finder.parent / name).write_bytes((model_path(fixtures, "int8").parent / name).read_bytes())
    assert read.main([str(finder), str(image)]) == 0
    assert f"by the pair finder {PAIRS_FILE} beside it (no {PAIR_READER_FILE}" in capsys.readouterr().err
    alone = tmp_path / "alone" / "model_int8.tflite"
    alone.parent.mkdir()
    alone.write_bytes(model_path(fixtures, "int8").read_bytes())
    assert read.main([str(alone), str(image)]) == 0
    assert f"by rules (no {PAIRS_FILE} beside it)" in capsys.readouterr().err
