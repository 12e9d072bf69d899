"""Each model's probabilities are cached beside it and reused only for the same images, TTA and model file."""

import os
import shutil

import keras
import numpy as np
import pytest

from competition.data.digits import load_test
from competition.runs.layout import MODEL_FILE
from competition.scoring.probabilities import (
    PREDICTIONS_DIR,
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
