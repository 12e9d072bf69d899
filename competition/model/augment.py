"""The training input pipeline: tf.data batches, augmented with one random affine warp per image.

Rotation, zoom, shear and shift are folded into a single 3x3 transform and applied to a whole batch
in one ImageProjectiveTransformV3 op, inside tf.data's parallel map, so it overlaps the training
step and costs one interpolation rather than four. It is never part of the model, so exported models
do not carry it. No flips: a mirrored 2 is not a 2. The last epochs of a run may see the digits as
they are (Matuzas77's last un-augmented epoch). With --grid_px the affine warp is also bent, as
ttdoucet's Augmentor distortion bends it: the inner points of a 4x4 grid each moved a little, the image
following them smoothly, sampled with the affine warp in one bilinear lookup. (Simard's denser
elastic field was measured worse on the narrow designs and is gone: docs/experiments.md.)
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from competition.config import IMAGE_SIZE, TrainConfig

CENTRE = (IMAGE_SIZE - 1) / 2
GRID_CELLS = 4  # Augmentor's grid, as ttdoucet's: 3x3 inner points


@dataclasses.dataclass(frozen=True)
class Warps:
    """The ranges of the random warp each training image gets (--augment's settings)."""

    rotation_deg: float = TrainConfig.rotation_deg
    shift_frac: float = TrainConfig.shift_frac
    zoom_frac: float = TrainConfig.zoom_frac
    shear_deg: float = TrainConfig.shear_deg
    grid_px: float = TrainConfig.grid_px

    @classmethod
    def of(cls, cfg) -> Warps | None:
        """The warps a TrainConfig or SearchConfig asks for; None without --augment."""
        return cls(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls)}) if cfg.augment else None

    @classmethod
    def recorded(cls, config: dict) -> Warps:
        """The warps a run's saved config.json records; a run from before a setting existed had it off."""
        return cls(**{f.name: config.get(f.name, f.default) for f in dataclasses.fields(cls)})

    def describe(self) -> str:
        """The ranges in words, e.g. "rotation ±10°, shift ±10%, zoom ±10%"; shear and bend when on."""
        words = [f"rotation ±{self.rotation_deg:g}°", f"shift ±{100 * self.shift_frac:g}%",
                 f"zoom ±{100 * self.zoom_frac:g}%"]
        words += [f"shear ±{self.shear_deg:g}°"] * bool(self.shear_deg)
        words += [f"grid bend ±{self.grid_px:g} px"] * bool(self.grid_px)
        return ", ".join(words)

    def apply(self, images: tf.Tensor) -> tf.Tensor:
        if not self.grid_px:
            return random_affine(images, self.rotation_deg, self.shift_frac, self.zoom_frac, self.shear_deg)
        batch = tf.shape(images)[0]
        params = affine_params(batch, self.rotation_deg, self.shift_frac, self.zoom_frac, self.shear_deg)
        return warp_bent(images, transforms_from(params), grid_field(batch, self.grid_px))


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


def grid_weights() -> np.ndarray:
    """(28, GRID_CELLS + 1): how much each grid line pulls each pixel row (or column), linear
    between the two lines around it: 1 on a line, 0 from the next one on."""
    lines = np.linspace(0, IMAGE_SIZE - 1, GRID_CELLS + 1)
    spacing = lines[1] - lines[0]
    pixels = np.arange(IMAGE_SIZE)[:, None]
    return np.maximum(0.0, 1 - np.abs(pixels - lines[None]) / spacing).astype(np.float32)


def grid_field(batch: tf.Tensor, grid_px: float) -> tf.Tensor:
    """(B, 28, 28, 2) displacements in pixels (x, y): each inner point of a GRID_CELLS x GRID_CELLS
    grid over the image moved uniformly up to grid_px each way, the frame's points kept still, and
    every pixel moved as the points around it, bilinearly (Augmentor's random distortion)."""
    inner = tf.random.uniform((batch, GRID_CELLS - 1, GRID_CELLS - 1, 2), -grid_px, grid_px)
    points = tf.pad(inner, [[0, 0], [1, 1], [1, 1], [0, 0]])
    weights = tf.constant(grid_weights())
    return tf.einsum("ik,bklc,jl->bijc", weights, points, weights)


def sample(images: tf.Tensor, xs: tf.Tensor, ys: tf.Tensor) -> tf.Tensor:
    """Bilinear lookup of (B, 28, 28, 1) images at (B, 28, 28) input coordinates; 0 outside the frame.

    Written here because TensorFlow has no dense-warp op (tensorflow-addons' dense_image_warp is
    gone), and keras.ops.image.elastic_transform draws one noise for x and y and loops over the batch.
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
        return tf.reshape(tf.gather(flat, tf.reshape(y * size + x, (tf.shape(xs)[0], -1)), batch_dims=1),
                          tf.shape(xs))

    top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
    bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
    return ((1 - wy) * top + wy * bottom)[..., None]


def warp_bent(images: tf.Tensor, transforms: tf.Tensor, field: tf.Tensor) -> tf.Tensor:
    """warp(images, transforms) with each output pixel's input point moved by field: one lookup."""
    grid = tf.range(IMAGE_SIZE, dtype=tf.float32)
    x, y = tf.meshgrid(grid, grid)  # x varies along a row
    a0, a1, a2, b0, b1, b2 = (transforms[:, i, None, None] for i in range(6))
    return sample(images, a0 * x + a1 * y + a2 + field[..., 0], b0 * x + b1 * y + b2 + field[..., 1])


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
