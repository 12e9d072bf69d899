"""What training costs and what the machine can do: a model's FLOPs per image, a matmul's throughput.

`make bench` (scripts/bench.py) multiplies a model's training FLOPs per image by the images/s it
trains at and divides by the float32 GEMM throughput that the same process measures: the fraction
of the machine's matrix-multiply limit that training reaches. Only convolutions and dense layers
are counted, the matrix products; batch norm, ReLU, pooling and dropout are elementwise,
memory-bound and add few FLOPs.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import statistics
import time
from collections.abc import Iterator

import keras
import numpy as np

from competition.config import TrainConfig
from competition.model import designs
from competition.model.augment import Warps, make_dataset


class EpochTimer(keras.callbacks.Callback):
    """Seconds of each epoch of a fit."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def weighted_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The convolutions and dense layers of model, nested models included, in the order they run."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += weighted_layers(layer)
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            found.append(layer)
    return found


def layer_flops(layer: keras.layers.Layer) -> int:
    """Forward FLOPs for one image (a multiply-add is 2)."""
    kernel = tuple(layer.kernel.shape)
    positions = math.prod(layer.output.shape[1:-1])  # output pixels of a convolution; 1 after Flatten
    return 2 * positions * math.prod(kernel)  # Conv2D: kh * kw * (in / groups) * out; Dense: in * out


def forward_flops(model: keras.Model) -> int:
    return sum(layer_flops(layer) for layer in weighted_layers(model))


def training_flops(model: keras.Model) -> int:
    """FLOPs of one image's training step: the forward pass, then for each layer the gradient of its
    weights and of its input, each as costly as its forward product; except the first layer's input
    gradient, which nothing needs (the input is the image) and TensorFlow's graph prunes."""
    flops = [layer_flops(layer) for layer in weighted_layers(model)]
    return 3 * sum(flops) - (flops[0] if flops else 0)


def gemm_gflops(n: int = 2048, dtype: str = "float32", seconds: float = 1.0) -> float:
    """GFLOP/s of an n x n matrix product in TensorFlow on this process's threads: the fastest of
    repeats over about `seconds`, after a warm-up (a limit: what the machine does at best)."""
    import tensorflow as tf

    a = tf.cast(tf.random.uniform((n, n), seed=0), dtype)
    b = tf.cast(tf.random.uniform((n, n), seed=1), dtype)
    product = tf.function(lambda x, y: tf.reduce_sum(tf.cast(tf.matmul(x, y), tf.float32)))
    product(a, b).numpy()  # traces, and warms the kernels and caches
    times: list[float] = []
    while len(times) < 3 or sum(times) < seconds:
        start = time.perf_counter()
        product(a, b).numpy()  # the sum forces the product to finish and adds n^2, under 0.1% of 2n^3
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


# Epochs a fit runs before it is timed: one traces the step, one uses up the batches that the
# parallel pipeline prepared meanwhile (timed, they make training look faster than it is).
WARMUP_EPOCHS = 2


def median_epoch_seconds(fit, epochs: int) -> float:
    """fit(n, callback) trains n epochs; the median seconds of the `epochs` after the warm-up."""
    timer = EpochTimer()
    fit(WARMUP_EPOCHS + epochs, timer)
    return statistics.median(timer.seconds[WARMUP_EPOCHS:])


def training_rate(cfg: TrainConfig, images: np.ndarray, onehot: np.ndarray, steps: int = 50, epochs: int = 1) -> float:
    """Images/s at which cfg trains here: a fresh model in cfg's (settled) precision on cfg's
    pipeline, epochs of `steps` batches, the median after the warm-up."""
    with designs.precision(cfg.precision):
        model = designs.compile_model(designs.for_config(cfg), cfg.learning_rate, ema=cfg.ema,
                                     label_smoothing=cfg.label_smoothing)
    ds = make_dataset(images, onehot, cfg.batch_size, cfg.seed, Warps.of(cfg))
    seconds = median_epoch_seconds(lambda n, timer: model.fit(ds, steps_per_epoch=steps, epochs=n, callbacks=[timer],
                                                              shuffle=False, verbose=0), epochs)
    # Free the trial's tf.data pipeline now: left to a later garbage collection (at the end of the
    # real training, measured), its teardown waited up to a minute for its idle autotuning thread.
    model = ds = None
    gc.collect()
    return steps * cfg.batch_size / seconds


def preset_rates(configs: dict[str, TrainConfig], precision: str, images: np.ndarray, onehot: np.ndarray
                 ) -> Iterator[tuple[str, float, float]]:
    """Each preset's training_rate, its cfg in `precision`, as each is measured: (preset, images/s,
    the seconds its measuring took)."""
    for preset, cfg in configs.items():
        start = time.perf_counter()
        rate = training_rate(dataclasses.replace(cfg, precision=precision), images, onehot)
        yield preset, rate, time.perf_counter() - start


def notebook_model() -> keras.Model:
    """The report's model behind Keras 3's own augmentation layers, the report's ranges: rotation
    ±10° (a fraction of a turn), shift and zoom ±10%."""
    augment = keras.Sequential([keras.layers.RandomRotation(10 / 360), keras.layers.RandomTranslation(0.1, 0.1),
                                keras.layers.RandomZoom(0.1)], name="augment")
    pixels = keras.Input((28, 28, 1), name="pixels")
    return keras.Model(pixels, designs.report_model()(augment(pixels)), name="notebook")
