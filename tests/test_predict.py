"""Each model's probabilities: with TTA, its mean over each digit and warped copies made here from the seed;
cached beside it and reused only for the same images, TTA and model file."""

import math
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from competition.config import TrainConfig
from competition.data.digits import load_test
from competition.model.augment import transforms_from, warp
from competition.runs.layout import MODEL_FILE
from competition.scoring.probabilities import (
    PREDICTIONS_DIR,
    TTA_ROTATION_DEG,
    TTA_SHIFT_FRAC,
    TTA_ZOOM_FRAC,
    model_probabilities,
    stacked_probabilities,
)


@pytest.fixture
def run_copy(trained_run, tmp_path):
    return shutil.copytree(trained_run, tmp_path / trained_run.name, ignore=shutil.ignore_patterns(PREDICTIONS_DIR))


def refuse_to_load(monkeypatch):
    def fail(path, *args, **kwargs):
        raise AssertionError(f"loaded {path} instead of reading its cached probabilities")
    monkeypatch.setattr(keras.models, "load_model", fail)


def test_probabilities_are_cached_per_image_set_and_tta(run_copy, demo_dir, monkeypatch):
    model_file = run_copy / MODEL_FILE
    images = load_test(demo_dir).images[:50]
    expected = model_probabilities(keras.models.load_model(model_file), images)

    first = stacked_probabilities([model_file, model_file], images)
    assert first.shape == (2, 50, 10)
    np.testing.assert_allclose(first[0], expected, atol=1e-6)
    assert len(list((run_copy / PREDICTIONS_DIR).glob("*.npz"))) == 1

    refuse_to_load(monkeypatch)
    np.testing.assert_array_equal(stacked_probabilities([model_file], images)[0], first[0])
    with pytest.raises(AssertionError, match="instead of reading"):
        stacked_probabilities([model_file], images[:49])  # other digits: not in the cache
    with pytest.raises(AssertionError, match="instead of reading"):
        stacked_probabilities([model_file], images, tta=2)  # TTA's probabilities are cached apart


def test_a_changed_model_file_or_a_corrupt_cache_is_recomputed(run_copy, demo_dir, monkeypatch):
    model_file = run_copy / MODEL_FILE
    images = load_test(demo_dir).images[:20]
    probs = stacked_probabilities([model_file], images)[0]
    cache, = (run_copy / PREDICTIONS_DIR).glob("*.npz")

    stat = model_file.stat()
    os.utime(model_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a retrained model
    with monkeypatch.context() as patch:
        refuse_to_load(patch)
        with pytest.raises(AssertionError, match="instead of reading"):
            stacked_probabilities([model_file], images)

    cache.write_bytes(b"not an npz")
    np.testing.assert_allclose(stacked_probabilities([model_file], images)[0], probs, atol=1e-6)
    cache.write_bytes(cache.read_bytes()[:200])  # cut short, as by a full disk
    np.testing.assert_allclose(stacked_probabilities([model_file], images)[0], probs, atol=1e-6)
    refuse_to_load(monkeypatch)  # rewritten whole, under the new stamp
    np.testing.assert_allclose(stacked_probabilities([model_file], images)[0], probs, atol=1e-6)
    assert not [p for p in cache.parent.iterdir() if p.name.endswith(".tmp")]


def test_without_the_cache_nothing_is_written(run_copy, demo_dir):
    images = load_test(demo_dir).images[:10]
    stacked_probabilities([run_copy / MODEL_FILE], images, cache=False)
    assert not (run_copy / PREDICTIONS_DIR).exists()


def small_model() -> keras.Model:
    """A fixed, untrained model of raw 0..255 digits: its probabilities move when a digit moves."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs)


def tta_views(images: np.ndarray, tta: int, seed: int) -> list[np.ndarray]:
    """The `tta` warped copies TTA should make, computed here: from the seed, one uniform draw
    (angle, zoom, shift x, shift y) per digit and copy, scaled to TTA's ranges (an angle of
    +-TTA_ROTATION_DEG, a zoom of 1 +- TTA_ZOOM_FRAC, shifts of +-TTA_SHIFT_FRAC of the side), then
    applied by the warp that test_augment checks."""
    tf.random.set_seed(seed)
    draws = [tf.random.uniform((len(images), 4)).numpy() for _ in range(tta)]
    angle, zoom, shift = math.radians(TTA_ROTATION_DEG), TTA_ZOOM_FRAC, TTA_SHIFT_FRAC * 28
    low, high = np.array([-angle, 1 - zoom, -shift, -shift]), np.array([angle, 1 + zoom, shift, shift])
    views = []
    for u in draws:
        params = low + u * (high - low)
        views.append(warp(tf.constant(images, tf.float32), transforms_from(tf.constant(params, tf.float32))).numpy())
    return views


def test_tta_averages_the_model_over_each_digit_and_its_warped_copies(demo_dir):
    # milder than training's warps: half its ranges
    assert (TTA_ROTATION_DEG, TTA_SHIFT_FRAC, TTA_ZOOM_FRAC) == (
        TrainConfig.rotation_deg / 2, TrainConfig.shift_frac / 2, TrainConfig.zoom_frac / 2)
    images = load_test(demo_dir).images[:64]
    model = small_model()
    plain = model.predict(images.astype(np.float32), verbose=0)
    views = tta_views(images, tta=3, seed=5)
    assert all(np.abs(view - images).max() > 50 for view in views)  # each copy moved the ink
    expected = (plain + sum(model.predict(view, verbose=0) for view in views)) / 4

    got = model_probabilities(model, images, tta=3, seed=5)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert np.abs(got - plain).max() > 1e-3, "the warped copies changed the probabilities"
    np.testing.assert_allclose(got.sum(axis=1), 1, atol=1e-5)
    assert np.abs(model_probabilities(model, images, tta=3, seed=6) - got).max() > 1e-4, "another seed, other warps"
    np.testing.assert_allclose(model_probabilities(model, images), plain, atol=1e-6)  # tta=0: the digits alone
