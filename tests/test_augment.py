import numpy as np
import tensorflow as tf

from competition.model.augment import (
    Warps,
    affine_params,
    batches_per_epoch,
    grid_field,
    grid_weights,
    make_dataset,
    random_affine,
    transforms_from,
    warp,
    warp_bent,
)


def digit():
    image = np.zeros((1, 28, 28, 1), np.float32)
    image[0, 8:20, 12:16, 0] = 255  # a vertical bar: a "1"
    return image


def centre_of_mass(image):
    """(row, column) of the ink's centre in a (28, 28, 1) image."""
    ink = image[..., 0]
    rows, cols = np.indices(ink.shape)
    return (rows * ink).sum() / ink.sum(), (cols * ink).sum() / ink.sum()


def apply(image, angle=0.0, zoom=1.0, dx=0.0, dy=0.0, shear=0.0):
    params = tf.constant([[angle, zoom, dx, dy, shear]], tf.float32)
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


def test_shear_slants_a_bar_by_its_tangent_and_keeps_its_middle():
    bar = digit()  # rows 8..19, columns 12..15
    slanted = apply(bar, shear=np.radians(20))[0]
    top, bottom = slanted[8:11], slanted[17:20]
    _, top_x = centre_of_mass(top)
    _, bottom_x = centre_of_mass(bottom)
    # x += tan(shear) * (y - centre): 9 rows apart, the bottom's ink sits tan(20°) * 9 px further right
    assert abs((bottom_x - top_x) - np.tan(np.radians(20)) * 9) < 0.3
    np.testing.assert_allclose(centre_of_mass(slanted), centre_of_mass(bar[0]), atol=0.3)
    # the old four-number form (no shear) is the same warp as a shear of 0
    np.testing.assert_allclose(warp(tf.constant(bar), transforms_from(tf.constant([[0.3, 1.1, 1.0, -2.0]]))).numpy(),
                               apply(bar, angle=0.3, zoom=1.1, dx=1.0, dy=-2.0), atol=1e-4)


def test_random_shears_stay_in_their_range():
    params = affine_params(2000, 0.0, 0.0, 0.0, shear_deg=10).numpy()
    shears = np.degrees(params[:, 4])
    assert shears.min() >= -10 and shears.max() <= 10 and shears.std() > 4  # uniform over [-10, 10]
    assert affine_params(50, 0.0, 0.0, 0.0).shape == (50, 4)  # no shear: the draws of before it existed


def test_augmented_batches_stay_in_range_and_differ_from_the_originals():
    images = np.repeat(digit().astype(np.uint8), 64, axis=0)
    labels = np.eye(10, dtype=np.float32)[np.zeros(64, int)]
    x, y = next(iter(make_dataset(images, labels, 64, seed=1, warps=Warps())))
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
    x, _ = next(iter(make_dataset(images, labels, 10, seed=0, warps=None)))
    assert sorted(x.numpy().sum(axis=(1, 2, 3))) == sorted(images.astype(np.float32).sum(axis=(1, 2, 3)))


def test_one_iterator_serves_every_epoch_each_pass_a_fresh_shuffle():
    """batches_per_epoch batches are one pass over every image (the last batch short); the next
    batches are the next pass, in another order."""
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1) * np.ones((1, 28, 28, 1), np.uint8)
    labels = np.eye(10, dtype=np.float32)
    steps = batches_per_epoch(len(images), 4)
    assert steps == 3
    batches = iter(make_dataset(images, labels, 4, seed=0, warps=None))
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


def test_batches_from_plain_from_on_are_the_digits_as_they_are():
    """The last epochs of --plain_epochs: every batch before plain_from is warped, every one after is not."""
    images = np.repeat(digit().astype(np.uint8), 8, axis=0)
    labels = np.eye(10, dtype=np.float32)[np.zeros(8, int)]
    batches = iter(make_dataset(images, labels, 4, seed=0, warps=Warps(shear_deg=10), plain_from=4))
    for step in range(8):
        x, _ = next(batches)
        as_they_are = np.allclose(x.numpy(), images[:4], atol=1e-3)
        assert as_they_are == (step >= 4), step


def test_the_bent_lookup_samples_as_the_affine_op_does():
    """warp_bent with no bend is warp (TensorFlow's op) for any affine; a field of +2 px in x reads
    two pixels to the right, so the digit moves two pixels left."""
    image = digit()
    images = tf.constant(np.repeat(image, 6, axis=0))
    transforms = transforms_from(affine_params(6, 15.0, 0.1, 0.2, shear_deg=10))
    still = tf.zeros((6, 28, 28, 2))
    np.testing.assert_allclose(warp_bent(images, transforms, still).numpy(), warp(images, transforms).numpy(),
                               atol=1e-3)
    identity = transforms_from(tf.constant([[0.0, 1.0, 0.0, 0.0]]))
    right = tf.concat([tf.fill((1, 28, 28, 1), 2.0), tf.zeros((1, 28, 28, 1))], axis=-1)
    moved = warp_bent(tf.constant(image), identity, right).numpy()
    np.testing.assert_allclose(moved[0, 8:20, 10:14, 0], 255, atol=1e-3)
    assert moved.sum() == image.sum()


def test_the_grid_bend_keeps_the_frame_and_stays_within_its_pixels():
    weights = grid_weights()
    np.testing.assert_allclose(weights.sum(axis=1), 1, atol=1e-6)  # every pixel follows its grid lines in full
    field = grid_field(500, 1.0).numpy()
    assert field.shape == (500, 28, 28, 2)
    frame = np.concatenate([field[:, 0], field[:, -1], field[:, :, 0], field[:, :, -1]])
    np.testing.assert_array_equal(frame, 0)  # the frame's points stay where they are
    assert np.abs(field).max() <= 1.0 and field[:, 14, 14].std(axis=0).min() > 0.3  # x and y each drawn
    # smooth: neighbours move alike (a point at most 1 px off over a 6.75-px cell)
    assert np.abs(np.diff(field, axis=1)).max() <= 2 / 6.75 + 1e-6


def test_warps_with_a_grid_bend_move_the_ink_a_little_and_keep_it():
    images = tf.constant(np.repeat(digit(), 32, axis=0))
    tf.random.set_seed(0)
    bent = Warps(rotation_deg=0, shift_frac=0, zoom_frac=0, grid_px=1.5).apply(images).numpy()
    assert not np.allclose(bent, images.numpy(), atol=1)
    ink = bent.sum(axis=(1, 2, 3)) / images.numpy()[0].sum()
    assert abs(ink.mean() - 1) < 0.05 and np.all(np.abs(ink - 1) < 0.3)  # a 4-px bar stretched or squeezed locally
    for image in bent:
        np.testing.assert_allclose(centre_of_mass(image), centre_of_mass(digit()[0]), atol=1.5)


def test_warps_in_words_and_from_a_saved_config():
    assert Warps().describe() == "rotation ±10°, shift ±10%, zoom ±10%"
    assert Warps(shear_deg=10, grid_px=1).describe().endswith("zoom ±10%, shear ±10°, grid bend ±1 px")
    old_run = {"rotation_deg": 12.0, "shift_frac": 0.1, "zoom_frac": 0.15}  # from before shear and the bend
    assert Warps.recorded(old_run) == Warps(rotation_deg=12.0, zoom_frac=0.15, shear_deg=0.0, grid_px=0.0)
