"""research/gpu_screen.py: its data file holds cv.py's folds, and its augmentation is augment.py's."""

import numpy as np

from competition.data.digits import load_train
from competition.model.augment import transforms_from
from competition.scoring.folds import fold_indices
from research import gpu_screen


def test_prepare_writes_the_cv_folds(demo_dir, tmp_path):
    out = tmp_path / "screen" / "train.npz"
    gpu_screen.prepare(str(demo_dir), out)
    data = np.load(out)
    digits = load_train(demo_dir)
    np.testing.assert_array_equal(data["images"], digits.images[..., 0])
    np.testing.assert_array_equal(data["labels"], digits.labels)
    for k in (5, 10):
        for fold, (_, held_out) in enumerate(fold_indices(digits.labels, k, seed=0)):
            np.testing.assert_array_equal(np.flatnonzero(data[f"fold{k}"] == fold), np.sort(held_out))
    assert not list(out.parent.glob(".*tmp"))


def test_augmentation_matches_the_training_pipeline():
    s = gpu_screen.settings("aug15", 1.0, {})
    u = np.random.default_rng(0).uniform(size=(16, 4)).astype(np.float32)
    size = 28
    lo = np.array([-np.radians(15), 0.85, -0.15 * size, -0.15 * size], np.float32)
    hi = np.array([np.radians(15), 1.15, 0.15 * size, 0.15 * size], np.float32)
    expected = np.asarray(transforms_from(lo + u * (hi - lo)))
    np.testing.assert_allclose(np.asarray(gpu_screen.affine_transforms(u, s)), expected, rtol=1e-5, atol=1e-4)
    assert s["epochs"] == 25 and s["arch"] == "strong" and s["k"] == 5  # the strong preset underneath
