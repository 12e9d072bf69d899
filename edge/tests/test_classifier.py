"""DigitClassifier on each exported variant, against the Keras model's own probabilities."""

import numpy as np
import pytest
from conftest import VARIANTS, model_path

from edge.pi.classifier import ClassifierOptions, DigitClassifier

# The largest difference in any probability from the Keras model that each variant may show.
TOLERANCE = {"float32": 1e-5, "float16": 0.01, "dynamic_range": 0.05, "int8": 0.1}


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_agrees_with_keras(fixtures, digits, reference, variant):
    pixels, labels = digits
    probabilities = DigitClassifier(model_path(fixtures, variant)).predict(pixels)
    assert probabilities.shape == (len(pixels), 10) and probabilities.dtype == np.float32
    assert np.abs(probabilities - reference["probabilities"]).max() < TOLERANCE[variant]
    predicted = probabilities.argmax(axis=1)
    assert np.mean(predicted == reference["labels"]) >= 0.95
    assert np.mean(predicted == labels) >= np.mean(reference["labels"] == labels) - 0.03
    assert np.allclose(probabilities.sum(axis=1), 1, atol=0.01)  # int8 output steps are 1/256


def test_int8_model_takes_raw_pixels_through_its_quantization(fixtures, digits):
    classifier = DigitClassifier(model_path(fixtures, "int8"))
    assert classifier.input_dtype == np.uint8
    pixels = digits[0][:8]
    as_float = classifier.predict(pixels.astype(np.float64))
    assert np.array_equal(classifier.predict(pixels), as_float)  # scale 1, zero point 0: no rounding
    assert np.array_equal(classifier._preprocess(pixels).reshape(8, -1), pixels)


@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_single_digits_and_batches_in_every_shape_agree(fixtures, digits, variant):
    classifier = DigitClassifier(model_path(fixtures, variant), ClassifierOptions(top_k=3, batch_size=4))
    pixels = digits[0][:10]
    rows = classifier.predict(pixels)  # batch_size 4: three invokes, resizing the input between them
    assert np.allclose(classifier.predict(pixels.reshape(10, 28, 28)), rows, atol=1e-6)
    assert np.allclose(classifier.predict(pixels.reshape(10, 28, 28, 1)), rows, atol=1e-6)
    batch = classifier.classify_batch(pixels)
    for i, digit in enumerate(pixels):
        for shape in ((784,), (28, 28), (28, 28, 1)):
            one = classifier.classify(digit.reshape(shape))
            assert one.label == batch[i].label == rows[i].argmax()
            assert np.allclose(one.probabilities, rows[i], atol=1e-6)
    top = batch[0].top_k
    assert len(top) == 3 and top[0].label == batch[0].label
    assert top[0].score >= top[1].score >= top[2].score


def test_thread_count_does_not_change_results(fixtures, digits):
    one = DigitClassifier(model_path(fixtures, "int8"), num_threads=1)
    two = DigitClassifier(model_path(fixtures, "int8"), num_threads=2)
    assert one.threads == 1 and two.threads == 2
    assert np.array_equal(one.predict(digits[0][:16]).argmax(1), two.predict(digits[0][:16]).argmax(1))


def test_bad_input_is_a_clear_error(fixtures):
    classifier = DigitClassifier(model_path(fixtures, "int8"))
    with pytest.raises(ValueError, match=r"expected one digit \(784 values or 28x28 pixels\), got shape \(27, 28\)"):
        classifier.classify(np.zeros((27, 28)))
    with pytest.raises(ValueError, match=r"got shape \(3, 100\)"):
        classifier.predict(np.zeros((3, 100)))
    bad = np.zeros((2, 784))
    bad[1, 5] = 300
    with pytest.raises(ValueError, match="digit 1, pixel 5: expected a raw pixel 0..255, got 300"):
        classifier.predict(bad)
    with pytest.raises(ValueError, match="numeric pixels"):
        classifier.predict(np.array([["a"] * 784]))


def test_missing_or_broken_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model file"):
        DigitClassifier(tmp_path / "absent.tflite")
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer")
    with pytest.raises(ValueError, match="broken.tflite: not a TFLite model"):
        DigitClassifier(broken)


def test_no_interpreter_is_one_line_that_says_what_to_do():
    from edge.pi.classifier import no_interpreter_message

    armv7 = no_interpreter_message("armv7l", "3.13.5")
    assert "no TFLite interpreter for armv7l" in armv7 and "64-bit Raspberry Pi OS" in armv7 and "\n" not in armv7
    assert "pip install -r edge/pi/requirements.txt" in no_interpreter_message("aarch64", "3.11.2")
