"""The reader's pair model: is a piece of ink one digit, or two that touch?

A small convolutional network on the piece as MNIST lays out a digit (28x28; a pair is a wide,
flat shape in it), trained on made pieces of the run's own training digits (edge/pi/written.py's
pair_examples: one digit, or two pushed together until their strokes touch), and exported to int8
beside the digit model as pairs_int8.tflite. edge/pi/touching.py cuts a wide piece only when this
model calls it two digits: the digit model cannot tell, as it is as sure of half a 0 as of an 8
(docs/pi.md, "Where touching's errors come from").
"""

from __future__ import annotations

import time

import numpy as np

from competition.model.designs import precision
from edge.pi.written import pair_examples

EXAMPLES = 120_000  # made pieces, half of them pairs; a tenth held out to report on
EPOCHS = 10  # fewer pieces or epochs called many more single digits pairs (docs/pi.md)
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
HELD_OUT = 0.1


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
    """The pair model trained on `examples` pieces made of `digits` (training digits only);
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
