"""The training input pipeline: tf.data batches, augmented with one random affine warp per image.

Rotation, zoom and shift are folded into a single 3x3 transform and applied to a whole batch in one
ImageProjectiveTransformV3 op, inside tf.data's parallel map, so it overlaps the training step and
costs one interpolation rather than three. Optionally each image is also bent by an elastic
distortion (Simard et al. 2003: a random displacement field, smoothed by a Gaussian of width sigma
and scaled by alpha), sampled together with the affine warp in one bilinear lookup. It is never part
of the model, so exported models do not carry it. No flips: a mirrored 2 is not a 2.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from competition.config import IMAGE_SIZE

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


def gaussian_blur(fields: tf.Tensor, sigma: float) -> tf.Tensor:
    """Each channel of (B, H, W, C) blurred by a normalised Gaussian, zeros beyond the frame."""
    radius = max(1, round(2 * sigma))
    taps = np.exp(-np.arange(-radius, radius + 1) ** 2 / (2 * sigma**2))
    taps = tf.constant(taps / taps.sum(), tf.float32)
    channels = fields.shape[-1]
    rows = tf.tile(tf.reshape(taps, (-1, 1, 1, 1)), (1, 1, channels, 1))
    cols = tf.tile(tf.reshape(taps, (1, -1, 1, 1)), (1, 1, channels, 1))
    fields = tf.nn.depthwise_conv2d(fields, rows, (1, 1, 1, 1), "SAME")
    return tf.nn.depthwise_conv2d(fields, cols, (1, 1, 1, 1), "SAME")


def elastic_field(batch: tf.Tensor, alpha: float, sigma: float) -> tf.Tensor:
    """(B, 28, 28, 2) displacements in pixels (x, y): uniform noise in [-1, 1], blurred, times alpha.
    alpha 36 and sigma 6 move pixels about 0.9 px (standard deviation), smoothly; alpha 34 and
    sigma 4 (Simard's) about 1.4 px."""
    noise = tf.random.uniform((batch, IMAGE_SIZE, IMAGE_SIZE, 2), -1.0, 1.0)
    return alpha * gaussian_blur(noise, sigma)


def sample(images: tf.Tensor, xs: tf.Tensor, ys: tf.Tensor) -> tf.Tensor:
    """Bilinear lookup of (B, 28, 28, 1) images at (B, 28, 28) input coordinates; 0 outside the frame.

    Written here because TensorFlow has no dense-warp op (tensorflow-addons' dense_image_warp is gone),
    and keras.ops.image.elastic_transform (Keras 3.15) draws the same noise for x and y, so it only
    ever moves pixels diagonally, and loops over the batch in Python.
    """
    padded = tf.pad(images[..., 0], [[0, 0], [1, 1], [1, 1]])  # a border of no ink to fall back on
    size = IMAGE_SIZE + 2
    flat = tf.reshape(padded, (tf.shape(images)[0], size * size))
    xs = tf.clip_by_value(xs + 1, 0, size - 1)
    ys = tf.clip_by_value(ys + 1, 0, size - 1)
    x0, y0 = tf.floor(xs), tf.floor(ys)
    wx, wy = xs - x0, ys - y0
    x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    x1, y1 = tf.minimum(x0 + 1, size - 1), tf.minimum(y0 + 1, size - 1)

    def at(y, x):
        return tf.gather(flat, tf.reshape(y * size + x, (tf.shape(xs)[0], -1)), batch_dims=1)

    shape = tf.shape(xs)
    top = tf.reshape(at(y0, x0), shape) * (1 - wx) + tf.reshape(at(y0, x1), shape) * wx
    bottom = tf.reshape(at(y1, x0), shape) * (1 - wx) + tf.reshape(at(y1, x1), shape) * wx
    return ((1 - wy) * top + wy * bottom)[..., None]


def warp_elastic(images: tf.Tensor, transforms: tf.Tensor, field: tf.Tensor) -> tf.Tensor:
    """warp(images, transforms) with each output pixel's input coordinates moved by field: one lookup."""
    grid = tf.range(IMAGE_SIZE, dtype=tf.float32)
    x, y = tf.meshgrid(grid, grid)  # x varies along a row
    a0, a1, a2, b0, b1, b2 = (transforms[:, i, None, None] for i in range(6))
    xs = a0 * x + a1 * y + a2 + field[..., 0]
    ys = b0 * x + b1 * y + b2 + field[..., 1]
    return sample(images, xs, ys)


def random_distortion(images: tf.Tensor, rotation_deg: float, shift_frac: float, zoom_frac: float,
                      elastic_alpha: float = 0.0, elastic_sigma: float = 6.0) -> tf.Tensor:
    """random_affine, bent by an elastic distortion when elastic_alpha > 0."""
    if elastic_alpha <= 0:
        return random_affine(images, rotation_deg, shift_frac, zoom_frac)
    batch = tf.shape(images)[0]
    transforms = transforms_from(affine_params(batch, rotation_deg, shift_frac, zoom_frac))
    return warp_elastic(images, transforms, elastic_field(batch, elastic_alpha, elastic_sigma))


def make_dataset(
    images: np.ndarray,
    onehot: np.ndarray,
    batch_size: int,
    seed: int,
    augment: bool = False,
    rotation_deg: float = 10.0,
    shift_frac: float = 0.1,
    zoom_frac: float = 0.1,
    parallel: bool = True,
    elastic_alpha: float = 0.0,
    elastic_sigma: float = 6.0,
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
            x = random_distortion(x, rotation_deg, shift_frac, zoom_frac, elastic_alpha, elastic_sigma)
        return x, y

    if not parallel:
        return ds.map(prepare).repeat()
    return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).repeat().prefetch(tf.data.AUTOTUNE)


def batches_per_epoch(n_images: int, batch_size: int) -> int:
    return math.ceil(n_images / batch_size)
