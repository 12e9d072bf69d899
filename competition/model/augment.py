"""The training input pipeline: tf.data batches, augmented with one random affine warp per image.

Rotation, zoom, shear and shift are folded into a single 3x3 transform and applied to a whole batch
in one ImageProjectiveTransformV3 op, inside tf.data's parallel map, so it overlaps the training
step and costs one interpolation rather than four. It is never part of the model, so exported models
do not carry it. No flips: a mirrored 2 is not a 2. The last epochs of a run may see the digits as
they are (Matuzas77's last un-augmented epoch). (Elastic distortion on top was measured worse on the
narrow designs and was removed: docs/experiments.md.)
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from competition.config import IMAGE_SIZE, TrainConfig

CENTRE = (IMAGE_SIZE - 1) / 2


@dataclasses.dataclass(frozen=True)
class Warps:
    """The ranges of the random warp each training image gets (--augment's settings)."""

    rotation_deg: float = TrainConfig.rotation_deg
    shift_frac: float = TrainConfig.shift_frac
    zoom_frac: float = TrainConfig.zoom_frac
    shear_deg: float = TrainConfig.shear_deg

    @classmethod
    def of(cls, cfg) -> Warps | None:
        """The warps a TrainConfig or SearchConfig asks for; None without --augment."""
        return cls(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls)}) if cfg.augment else None

    def apply(self, images: tf.Tensor) -> tf.Tensor:
        return random_affine(images, self.rotation_deg, self.shift_frac, self.zoom_frac, self.shear_deg)


def affine_params(
    batch: int, rotation_deg: float, shift_frac: float, zoom_frac: float, shear_deg: float = 0.0,
    seed: tf.Tensor | None = None,
) -> tf.Tensor:
    """Per-image (angle in radians, zoom factor, shift x px, shift y px), uniform in their ranges,
    and with a shear its angle in radians too. Without one, four numbers an image, so that every
    warp made before shear existed (a recipe's training, TTA) draws what it drew then."""
    shift, rotation, shear = shift_frac * IMAGE_SIZE, math.radians(rotation_deg), math.radians(shear_deg)
    ranges = [(-rotation, rotation), (1 - zoom_frac, 1 + zoom_frac), (-shift, shift), (-shift, shift)]
    ranges += [(-shear, shear)] * (shear_deg > 0)
    lo, hi = (tf.constant(bounds) for bounds in zip(*ranges))
    u = tf.random.uniform((batch, len(ranges)), seed=seed)
    return lo + u * (hi - lo)


def transforms_from(params: tf.Tensor) -> tf.Tensor:
    """(B, 8) projective transforms mapping each output pixel to the input pixel it samples, from
    affine_params' (B, 4), or (B, 5) with a shear.

    The forward warp is out = c + zoom * R(angle) S(shear) (in - c) + shift about the centre c, where
    S slides each row sideways by tan(shear) times its height (x += tan(shear) y), so the inverse the
    op needs is in = c + S(-shear) R(-angle) (out - c - shift) / zoom.
    """
    angle, zoom, dx, dy, *sheared = tf.unstack(params, axis=1)
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    slide = tf.tan(sheared[0]) if sheared else tf.zeros_like(angle)
    a0, a1, b0, b1 = cos + slide * sin, sin - slide * cos, -sin, cos
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


def random_affine(images: tf.Tensor, rotation_deg: float, shift_frac: float, zoom_frac: float,
                  shear_deg: float = 0.0) -> tf.Tensor:
    params = affine_params(tf.shape(images)[0], rotation_deg, shift_frac, zoom_frac, shear_deg)
    return warp(images, transforms_from(params))


def make_dataset(
    images: np.ndarray,
    onehot: np.ndarray,
    batch_size: int,
    seed: int,
    warps: Warps | None = None,
    parallel: bool = True,
    plain_from: int | None = None,
) -> tf.data.Dataset:
    """Endless shuffled float32 batches of raw 0..255 images and one-hot labels, warped if asked.

    Each pass over the images (`batches_per_epoch` batches, the last one short) is shuffled anew.
    With plain_from, the batches from that one on (counted from 0) are not warped: a run's last
    epochs on the digits as they are.
    The dataset repeats so that one iterator serves a whole fit (give fit steps_per_epoch): with a
    fresh iterator per epoch, Keras waited at about half the epoch boundaries for the old iterator's
    tf.data autotuning thread to exit, seconds each time (docs/speed.md).
    parallel=False (map in series, no prefetch) is only for scripts/bench_speed.py to measure against.
    """
    ds = tf.data.Dataset.from_tensor_slices((images, onehot))
    ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).batch(batch_size).repeat().enumerate()

    def prepare(step, batch):
        x, y = batch
        x = tf.cast(x, tf.float32)
        if warps is None:
            return x, y
        if plain_from is None:
            return warps.apply(x), y
        return tf.cond(step < plain_from, lambda: warps.apply(x), lambda: x), y

    if not parallel:
        return ds.map(prepare)
    return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def batches_per_epoch(n_images: int, batch_size: int) -> int:
    return math.ceil(n_images / batch_size)
