import numpy as np
import tensorflow as tf

from competition.augment import (affine_params, batches_per_epoch, elastic_field, make_dataset, random_affine,
                                 random_distortion, transforms_from, warp, warp_elastic)


def digit():
    image = np.zeros((1, 28, 28, 1), np.float32)
    image[0, 8:20, 12:16, 0] = 255  # a vertical bar: a "1"
    return image


def centre_of_mass(image):
    """(row, column) of the ink's centre in a (28, 28, 1) image."""
    ink = image[..., 0]
    rows, cols = np.indices(ink.shape)
    return (rows * ink).sum() / ink.sum(), (cols * ink).sum() / ink.sum()


def apply(image, angle=0.0, zoom=1.0, dx=0.0, dy=0.0):
    params = tf.constant([[angle, zoom, dx, dy]], tf.float32)
    return warp(tf.constant(image), transforms_from(params)).numpy()


def test_identity_transform_changes_nothing():
    image = digit()
    np.testing.assert_allclose(apply(image), image, atol=1e-4)
    np.testing.assert_allclose(random_affine(tf.constant(image), 0.0, 0.0, 0.0).numpy(), image, atol=1e-4)


def test_shift_moves_the_digit_by_whole_pixels():
    image = digit()
    moved = apply(image, dx=3, dy=-2)
    np.testing.assert_allclose(moved[0, 6:18, 15:19, 0], 255, atol=1e-3)
    assert moved.sum() == image.sum()  # nothing fell off the frame


def test_rotation_turns_a_bar_and_zoom_scales_it():
    bar = digit()
    turned = apply(bar, angle=np.pi / 2)[0, ..., 0]
    rows, cols = np.nonzero(turned > 128)
    assert np.ptp(cols) > np.ptp(rows)  # vertical became horizontal
    big = apply(bar, zoom=1.5)[0, ..., 0]
    assert (big > 128).sum() > 1.8 * (bar[0, ..., 0] > 128).sum()


def test_augmented_batches_stay_in_range_and_differ_from_the_originals():
    images = np.repeat(digit().astype(np.uint8), 64, axis=0)
    labels = np.eye(10, dtype=np.float32)[np.zeros(64, int)]
    x, y = next(iter(make_dataset(images, labels, 64, seed=1, augment=True)))
    x = x.numpy()
    assert x.shape == (64, 28, 28, 1) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 255.001
    assert not np.allclose(x, images)  # each digit was moved
    assert len({round(float(v), 3) for v in x.sum(axis=(1, 2, 3))}) > 32  # by different amounts
    np.testing.assert_array_equal(y.numpy(), labels)
    # Ranges are bounded: the bar's centre stays within the 10% shift and zoom of where it was.
    cy, cx = centre_of_mass(digit()[0])
    for image in x[:16]:
        my, mx = centre_of_mass(image)
        assert abs(my - cy) < 5 and abs(mx - cx) < 5


def test_no_augmentation_passes_pixels_through():
    images = np.random.default_rng(0).integers(0, 256, (10, 28, 28, 1)).astype(np.uint8)
    labels = np.eye(10, dtype=np.float32)
    x, _ = next(iter(make_dataset(images, labels, 10, seed=0, augment=False)))
    assert sorted(x.numpy().sum(axis=(1, 2, 3))) == sorted(images.astype(np.float32).sum(axis=(1, 2, 3)))


def test_one_iterator_serves_every_epoch_each_pass_a_fresh_shuffle():
    """batches_per_epoch batches are one pass over every image (the last batch short); the next
    batches are the next pass, in another order."""
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1) * np.ones((1, 28, 28, 1), np.uint8)
    labels = np.eye(10, dtype=np.float32)
    steps = batches_per_epoch(len(images), 4)
    assert steps == 3
    batches = iter(make_dataset(images, labels, 4, seed=0, augment=False))
    passes = []
    for _ in range(3):
        pass_batches = [next(batches) for _ in range(steps)]
        assert [len(x) for x, _ in pass_batches] == [4, 4, 2]
        order = np.concatenate([x.numpy()[:, 0, 0, 0] for x, _ in pass_batches]).astype(int)
        labels_order = np.concatenate([y.numpy().argmax(axis=1) for _, y in pass_batches])
        np.testing.assert_array_equal(order, labels_order)  # each image kept its label
        assert sorted(order) == list(range(10))
        passes.append(order.tolist())
    assert len({tuple(p) for p in passes}) == 3


def test_elastic_lookup_without_a_field_is_the_affine_warp():
    """warp_elastic samples like ImageProjectiveTransformV3: the same transforms give the same pixels."""
    images = tf.constant(np.random.default_rng(0).integers(0, 256, (8, 28, 28, 1)).astype(np.float32))
    transforms = transforms_from(affine_params(8, 10.0, 0.1, 0.1))
    np.testing.assert_allclose(warp_elastic(images, transforms, tf.zeros((8, 28, 28, 2))).numpy(),
                               warp(images, transforms).numpy(), atol=1e-2)


def test_a_constant_field_shifts_and_a_random_one_bends_smoothly():
    image = tf.constant(digit())
    identity = transforms_from(tf.constant([[0.0, 1.0, 0.0, 0.0]]))
    # Sampling 2 px to the right of every pixel moves the digit 2 px left.
    field = tf.concat([tf.fill((1, 28, 28, 1), 2.0), tf.zeros((1, 28, 28, 1))], axis=-1)
    np.testing.assert_allclose(warp_elastic(image, identity, field).numpy(), apply(digit(), dx=-2), atol=1e-3)

    tf.random.set_seed(0)
    fields = elastic_field(tf.constant(200), 36.0, 6.0).numpy()
    assert 0.7 < fields.std() < 1.2  # about 0.9 px at alpha 36, sigma 6
    # smooth: neighbours move alike (in unblurred noise they would differ by more than its mean size)
    assert np.abs(np.diff(fields, axis=2)).mean() < 0.25 * np.abs(fields).mean()
    bent = random_distortion(tf.repeat(image, 16, axis=0), 0.0, 0.0, 0.0, 36.0, 6.0).numpy()
    assert bent.min() >= 0 and bent.max() <= 255.001
    assert not np.allclose(bent, digit(), atol=1)
    cy, cx = centre_of_mass(digit()[0])
    for one in bent:
        my, mx = centre_of_mass(one)
        assert abs(my - cy) < 4 and abs(mx - cx) < 4  # bent in place (within ~4 sd of the field), not moved away


def test_elastic_alpha_zero_is_the_affine_pipeline_and_positive_bends_batches():
    images = np.repeat(digit().astype(np.uint8), 32, axis=0)
    labels = np.eye(10, dtype=np.float32)[np.zeros(32, int)]
    plain = next(iter(make_dataset(images, labels, 32, seed=1, augment=False, elastic_alpha=36.0)))[0].numpy()
    np.testing.assert_array_equal(plain, images)  # elastic is part of augmentation: off with it
    x, y = next(iter(make_dataset(images, labels, 32, seed=1, augment=True, rotation_deg=0, shift_frac=0,
                                  zoom_frac=0, elastic_alpha=36.0)))
    assert x.shape == (32, 28, 28, 1) and len({round(float(v), 2) for v in x.numpy().sum(axis=(1, 2, 3))}) > 16
    np.testing.assert_array_equal(y.numpy(), labels)
