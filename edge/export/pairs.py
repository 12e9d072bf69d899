"""The reader's pair models: is a piece of ink one digit or two that touch (the finder), and
which two (the reader)?

Two small convolutional networks trained on made pieces of the run's own training digits
(edge/pi/written.py: one digit, or two pushed together until their strokes touch; as written, or
turned, out of focus or chalky as a camera sees them) and exported to int8 beside the digit model:
  pairs_int8.tflite        the finder, on the piece as MNIST lays out a digit (28x28; a pair is a
                           wide, flat shape in it): one digit or two. edge/pi/touching.py cuts a
                           wide piece only when it says two: the digit model cannot tell, as it
                           is as sure of half a 0 as of an 8 (docs/pi.md);
  pair_reader_int8.tflite  the reader, on a pair as a whole (28x56, edge/pi/image.py's
                           pair_field): the left digit's ten probabilities, then the right's.
                           Where strokes cross, no cut leaves each digit whole; the reader sees
                           them whole, and the cut the digit model and it agree on is taken.
"""

from __future__ import annotations

import time

import numpy as np

from competition.model.designs import precision
from edge.pi.image import PAIR_FIELD
from edge.pi.written import pair_examples, pair_readings

EXAMPLES = 240_000  # made pieces, half of them pairs; a tenth held out (120,000 missed more pairs: docs/pi.md)
EPOCHS = 20  # fewer pieces or epochs called many more single digits pairs (docs/pi.md)
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
HELD_OUT = 0.1
READER_EXAMPLES = 480_000  # made pairs for the pair reader (240,000 read 0.8 points fewer pairs right); a tenth held out
READER_EPOCHS = 8


def pair_model():
    """Three convolutions and a dense layer (240,514 parameters), raw 0..255 pixels in, (one
    digit, two digits) probabilities out. Half as wide missed more pairs (docs/pi.md)."""
    import keras

    return keras.Sequential([
        keras.Input((28, 28, 1), name="pixels"), keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(128, 3, activation="relu"), keras.layers.Flatten(), keras.layers.Dropout(0.3),
        keras.layers.Dense(128, activation="relu"), keras.layers.Dense(2, activation="softmax", name="pair"),
    ], name="pairs")


def train_pairs(digits: np.ndarray, examples: int = EXAMPLES, epochs: int = EPOCHS,
                seed: int = 0) -> tuple[object, np.ndarray, dict]:
    """The pair finder trained on `examples` pieces made of `digits` (training digits only);
    also some of its training pieces (to calibrate int8) and its figures on the held-out ones."""
    import keras

    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    pieces, labels = pair_examples(digits, examples, np.random.default_rng(seed))
    pieces = pieces[..., None].astype(np.float32)
    cut = len(labels) - max(2, int(HELD_OUT * len(labels)))
    with precision("float32"):  # the same model on every CPU (it trains in seconds to minutes)
        model = pair_model()
    model.compile(keras.optimizers.Adam(LEARNING_RATE), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(pieces[:cut], labels[:cut], batch_size=BATCH_SIZE, epochs=epochs, verbose=0)
    called = model.predict(pieces[cut:], verbose=0, batch_size=1024).argmax(axis=1)
    truth = labels[cut:]
    figures = {"examples": int(examples), "epochs": int(epochs), "held_out": int(len(truth)),
               "accuracy": float(np.mean(called == truth)),
               "pairs_missed": int(np.sum((called == 0) & (truth == 1))),
               "singles_called_pairs": int(np.sum((called == 1) & (truth == 0))),
               "seconds": round(time.perf_counter() - start, 1)}
    print(f"pairs: {examples:,} made pieces, {epochs} epochs, {figures['seconds']:.0f}s; held out {len(truth):,}: "
          f"accuracy {figures['accuracy']:.4f}, {figures['pairs_missed']} pairs missed, "
          f"{figures['singles_called_pairs']} single digits called pairs")
    return model, pieces[:cut], figures


def pair_reader_model() -> tuple[object, object]:
    """Three convolutions and a dense layer (1,081,108 parameters), raw 0..255 pixels of a pair
    (PAIR_FIELD) in: the model to train, the left digit's and the right's ten probabilities out,
    and the same layers with the two as one tensor (left, then right), as the interpreter reads a
    digit model's."""
    import keras

    pixels = keras.Input((*PAIR_FIELD, 1), name="pixels")
    x = keras.layers.Rescaling(1 / 255)(pixels)
    for filters in (32, 64):
        x = keras.layers.MaxPooling2D()(keras.layers.Conv2D(filters, 3, activation="relu")(x))
    x = keras.layers.Dropout(0.3)(keras.layers.Flatten()(keras.layers.Conv2D(128, 3, activation="relu")(x)))
    x = keras.layers.Dense(256, activation="relu")(x)
    sides = [keras.layers.Dense(10, activation="softmax", name=side)(x) for side in ("left", "right")]
    return (keras.Model(pixels, sides, name="pair_reader"),
            keras.Model(pixels, keras.layers.Concatenate(name="sides")(sides), name="pair_reader_sides"))


def train_pair_reader(digits: np.ndarray, labels: np.ndarray, examples: int = READER_EXAMPLES,
                      epochs: int = READER_EPOCHS, seed: int = 0) -> tuple[object, np.ndarray, dict]:
    """The pair reader trained on `examples` touching pairs made of `digits` (training digits
    only, their `labels`); also some of its training pairs (to calibrate int8) and its figures on
    the held-out ones."""
    import keras

    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    fields, truth = pair_readings(digits, labels, examples, np.random.default_rng(seed))
    fields = fields[..., None].astype(np.float32)
    cut = len(truth) - max(2, int(HELD_OUT * len(truth)))
    with precision("float32"):
        model, sides = pair_reader_model()
    model.compile(keras.optimizers.Adam(LEARNING_RATE), ["sparse_categorical_crossentropy"] * 2)
    model.fit(fields[:cut], [truth[:cut, 0], truth[:cut, 1]], batch_size=BATCH_SIZE, epochs=epochs, verbose=0)
    read = sides.predict(fields[cut:], verbose=0, batch_size=1024)
    right = np.stack([read[:, :10].argmax(axis=1), read[:, 10:].argmax(axis=1)], axis=1) == truth[cut:]
    figures = {"examples": int(examples), "epochs": int(epochs), "held_out": int(len(right)),
               "digits_right": float(right.mean()), "pairs_right": float(right.all(axis=1).mean()),
               "seconds": round(time.perf_counter() - start, 1)}
    print(f"pair reader: {examples:,} made pairs, {epochs} epochs, {figures['seconds']:.0f}s; held out "
          f"{len(right):,}: digits {figures['digits_right']:.4f}, both digits of a pair {figures['pairs_right']:.4f}")
    return sides, fields[:cut], figures
