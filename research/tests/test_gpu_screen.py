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


def test_the_wide_designs_screen_over_their_own_presets_with_the_trainers_one_cycle():
    from competition.training.trainer import OneCycle

    s = gpu_screen.settings("vgg_full", 1.0, {})
    assert (s["arch"], s["width"], s["dropout"], s["epochs"]) == ("vgg", 1.0, 0.25, 20)
    assert s["schedule"] == "onecycle" and s["ema"] == 0.999 and s["k"] == 5
    assert gpu_screen.settings("wresnet_half", 0.5, {})["epochs"] == 10
    steps = 525  # 33,600 training rows a fold, batch 64
    ours, trainers = gpu_screen.rate_schedule(s, steps), OneCycle(s["learning_rate"], s["epochs"] * steps, s["warmup"])
    for step in (0, 1000, 2100, 5000, s["epochs"] * steps):
        assert float(ours(step)) == float(trainers.schedule(step))
    assert np.isclose(float(ours(2100)), s["learning_rate"], rtol=1e-6)  # the peak (float32), then zero
    assert float(ours(s["epochs"] * steps)) == 0.0
    decaying = gpu_screen.settings("base", 1.0, {})  # the strong preset: a decay an epoch
    assert abs(float(gpu_screen.rate_schedule(decaying, steps)(2 * steps)) - 1e-3 * 0.9 ** 2) < 1e-9
