"""Image files made MNIST-like: any size, mode and polarity in; a centred 28x28 digit out."""

import numpy as np
import pytest
from conftest import model_path
from PIL import Image

from edge.pi.classifier import DigitClassifier
from edge.pi.image import ImageError, load_digit, mnist_like, read_grey


def paper_photo(digit: np.ndarray, scale: int = 9, seed: int = 0) -> np.ndarray:
    """A digit as a phone would see it: big, dark ink on grey-white paper, off centre, noisy."""
    big = np.kron(digit.reshape(28, 28).astype(np.float32), np.ones((scale, scale)))
    page = np.full((big.shape[0] + 60, big.shape[1] + 100), 0.0, np.float32)
    page[20:20 + big.shape[0], 70:70 + big.shape[1]] = big  # shifted right and down
    noise = np.random.default_rng(seed).normal(0, 6, page.shape)
    return np.clip(225 - page * (190 / 255) + noise, 0, 255).astype(np.uint8)  # ink ~35, paper ~225


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(image.shape)
    return (ys * image).sum() / image.sum(), (xs * image).sum() / image.sum()


def test_paper_photo_comes_back_as_the_mnist_digit(tmp_path, digits):
    digit = digits[0][0]
    path = tmp_path / "photo.jpg"
    Image.fromarray(paper_photo(digit)).convert("RGB").save(path, quality=90)
    result = load_digit(path)
    assert result.shape == (28, 28) and result.dtype == np.uint8
    assert result.max() > 200 and result[0].max() == 0 and result[:, 0].max() == 0  # light ink, dark margin
    rows, cols = np.nonzero(result > 40)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 <= 21  # fitted to the 20x20 box (plus anti-aliasing)
    assert np.allclose(centre_of_mass(result.astype(float)), 13.5, atol=0.6)  # centred by mass, as MNIST
    # The same as the clean digit put through the same recipe: paper, noise, size and offset are gone.
    assert np.corrcoef(result.ravel(), mnist_like(digit.reshape(28, 28)).ravel())[0, 1] > 0.9


def test_photos_classify_as_the_clean_digits_do(tmp_path, fixtures, digits):
    """The demo digits are centred by their box, MNIST's by mass: compare like with like."""
    classifier = DigitClassifier(model_path(fixtures, "int8"))
    clean, from_photos = [], []
    for i, digit in enumerate(digits[0][:40]):
        path = tmp_path / f"{i}.png"
        Image.fromarray(paper_photo(digit, scale=3 + i % 5, seed=i)).save(path)
        from_photos.append(classifier.classify(load_digit(path)).label)
        clean.append(classifier.classify(mnist_like(digit.reshape(28, 28))).label)
    assert np.mean(np.array(from_photos) == np.array(clean)) >= 0.9


def test_light_ink_on_dark_is_not_inverted_and_colour_is_greyed(tmp_path, digits):
    digit = digits[0][1].reshape(28, 28)
    red = np.zeros((28 * 4, 28 * 4, 3), np.uint8)
    red[..., 0] = np.kron(digit, np.ones((4, 4), np.uint8))  # red ink on black, RGB
    path = tmp_path / "red.png"
    Image.fromarray(red).save(path)
    assert np.corrcoef(load_digit(path).ravel(), mnist_like(digit).ravel())[0, 1] > 0.95


def test_wide_digit_keeps_its_aspect():
    stroke = np.zeros((50, 200), np.float32)
    stroke[20:30, 10:190] = 255  # a dash, 18 times wider than tall
    result = mnist_like(stroke)
    rows, cols = np.nonzero(result)
    assert np.ptp(cols) + 1 == 20 and np.ptp(rows) + 1 <= 3


def test_blank_unreadable_and_missing_images_are_clear_errors(tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("L", (64, 64), 250).save(blank)
    with pytest.raises(ImageError, match="blank.png: no digit found"):
        load_digit(blank)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ImageError, match="notes.png: not a readable image"):
        load_digit(text)
    with pytest.raises(ImageError, match="absent.png: no such file"):
        load_digit(tmp_path / "absent.png")


def test_light_ink_on_a_transparent_canvas_reads_as_the_digit(tmp_path, digits):
    """Drawing apps: white (or black) strokes whose alpha is the ink, on a fully transparent canvas."""
    digit = np.kron(digits[0][2].reshape(28, 28), np.ones((4, 4), np.uint8))
    for colour in (255, 0):
        rgba = np.zeros(digit.shape + (4,), np.uint8)
        rgba[..., :3] = colour
        rgba[..., 3] = digit  # the stroke's coverage
        path = tmp_path / f"ink{colour}.png"
        Image.fromarray(rgba, "RGBA").save(path)
        assert np.corrcoef(load_digit(path).ravel(), mnist_like(digit).ravel())[0, 1] > 0.95, colour


def test_an_opaque_picture_with_transparent_holes_keeps_its_paper(tmp_path, digits):
    page = paper_photo(digits[0][3], scale=4)
    rgba = np.dstack([page] * 3 + [np.full(page.shape, 255, np.uint8)])
    rgba[:10, :10, 3] = 0  # a transparent corner, with black under it
    rgba[:10, :10, :3] = 0
    path = tmp_path / "holes.png"
    Image.fromarray(rgba, "RGBA").save(path)
    assert np.corrcoef(load_digit(path).ravel(), mnist_like(page).ravel())[0, 1] > 0.95


def test_a_tiny_image_is_too_small_not_blank(tmp_path):
    path = tmp_path / "dot.png"
    Image.new("L", (1, 1), 255).save(path)
    with pytest.raises(ImageError, match=r"dot.png: too small, 1x1 pixels"):
        load_digit(path)



def test_exif_rotation_is_applied_also_to_a_shrunk_image(tmp_path):
    """The rotation is applied after shrinking (no full-size copy): the result is turned all the same."""
    pixels = np.zeros((300, 200), np.uint8)
    pixels[:50] = 255  # a light band along the top edge of the stored image
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "turned.jpg"
    Image.fromarray(pixels).save(path, exif=exif)
    for max_side in (None, 150):
        grey, scale = read_grey(path, max_side=max_side)
        side = max_side or 300
        assert grey.shape == (round(side * 2 / 3), side) and scale == 300 / side
        right, left = grey[:, -grey.shape[1] // 10:], grey[:, : grey.shape[1] // 2]
        assert right.mean() > 200 and left.mean() < 30  # the band is on the right once turned
