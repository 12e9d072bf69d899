"""The training input pipeline: tf.data batches, augmented with one random affine warp per image.

Rotation, zoom and shift are folded into a single 3x3 transform and applied to a whole batch in one
ImageProjectiveTransformV3 op, inside tf.data's parallel map, so it overlaps the training step and
costs one interpolation rather than three. It is never part of the model, so exported models do not
carry it. No flips: a mirrored 2 is not a 2. (Elastic distortion on top was measured worse here and
was removed: docs/experiments.md.)
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from competition.config import IMAGE_SIZE, TrainConfig

CENTRE = (IMAGE_SIZE - 1) / 2


def affine_params(
    batch: int, rotation_deg: float, shift_frac: float, zoom_frac: float, seed: tf.Tensor | None = None
) -> tf.Tensor:
    """Per-image (angle in radians, zoom factor, shift x px, shift y px), uniform in their ranges."""
    lo = tf.constant([-math.radians(rotation_deg), 1 - zoom_frac, -shift_frac * IMAGE_SIZE, -shift_frac * IMAGE_SIZE])
    hi = tf.constant([math.radians(rotation_deg), 1 + zoom_frac, shift_frac * IMAGE_SIZE, shift_frac * IMAGE_SIZE])
    u = tf.random.uniform((batch, 4), seed=seed)
    return lo + u * (hi - lo)


def transforms_from(params: tf.Tensor) -> tf.Tensor:
    """(B, 8) projective transforms mapping each output pixel to the input pixel it samples.

    The forward warp is out = c + zoom * R(angle) (in - c) + shift about the centre c, so the
    inverse the op needs is in = c + R(-angle) (out - c - shift) / zoom.
    """
    angle, zoom, dx, dy = tf.unstack(params, axis=1)
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    a0, a1, b0, b1 = cos, sin, -sin, cos
    ox, oy = CENTRE + dx, CENTRE + dy
    a2 = CENTRE - a0 * ox - a1 * oy
    b2 = CENTRE - b0 * ox - b1 * oy
    zeros = tf.zeros_like(angle)
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def warp(images: tf.Tensor, transforms: tf.Tensor) -> tf.Tensor:
    """Apply (B, 8) transforms to float images (B, 28, 28, 1); outside the frame is 0 (no ink)."""
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.constant([IMAGE_SIZE, IMAGE_SIZE]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def random_affine(images: tf.Tensor, rotation_deg: float, shift_frac: float, zoom_frac: float) -> tf.Tensor:
    params = affine_params(tf.shape(images)[0], rotation_deg, shift_frac, zoom_frac)
    return warp(images, transforms_from(params))


def make_dataset(
    images: np.ndarray,
    onehot: np.ndarray,
    batch_size: int,
    seed: int,
    augment: bool = False,
    rotation_deg: float = TrainConfig.rotation_deg,
    shift_frac: float = TrainConfig.shift_frac,
    zoom_frac: float = TrainConfig.zoom_frac,
    parallel: bool = True,
) -> tf.data.Dataset:
    """Endless shuffled float32 batches of raw 0..255 images and one-hot labels, augmented if asked.

    Each pass over the images (`batches_per_epoch` batches, the last one short) is shuffled anew.
    The dataset repeats so that one iterator serves a whole fit (give fit steps_per_epoch): with a
    fresh iterator per epoch, Keras waited at about half the epoch boundaries for the old iterator's
    tf.data autotuning thread to exit, seconds each time (docs/speed.md).
    parallel=False (map in series, no prefetch) is only for scripts/bench_speed.py to measure against.
    """
    ds = tf.data.Dataset.from_tensor_slices((images, onehot))
    ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).batch(batch_size)

    def prepare(x, y):
        x = tf.cast(x, tf.float32)
        if augment:
            x = random_affine(x, rotation_deg, shift_frac, zoom_frac)
        return x, y

    if not parallel:
        return ds.map(prepare).repeat()
    return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).repeat().prefetch(tf.data.AUTOTUNE)


def batches_per_epoch(n_images: int, batch_size: int) -> int:
    return math.ceil(n_images / batch_size)
