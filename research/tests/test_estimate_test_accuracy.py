"""research/estimate_test_accuracy.py: label-free estimates of a CV's accuracy on test.csv."""

import json

import numpy as np
import pytest

from competition.data.digits import load_train
from competition.scoring import folds
from competition.scoring.probabilities import stacked_probabilities
from research import estimate_test_accuracy as estimate


def probs_with(confidences: list[float], predicted: int = 0) -> np.ndarray:
    """One row per confidence: that probability on `predicted`, the rest spread over the other classes."""
    c = np.array(confidences)[:, None]
    probs = np.repeat((1 - c) / 9, 10, axis=1)
    probs[:, predicted] = c[:, 0]
    return probs


def test_estimates_follow_the_confidence_on_test():
    # held out: 990 sure and right, 10 unsure and wrong (label 1, predicted 0)
    val = probs_with([0.99] * 990 + [0.6] * 10)
    labels = np.array([0] * 990 + [1] * 10)
    assert estimate.accuracy(val, labels) == pytest.approx(0.99)
    # test like the held-out rows: both estimates are the held-out accuracy
    assert estimate.thresholded_confidence(val, labels, val) == pytest.approx(0.99)
    assert estimate.difference_of_confidences(val, labels, val) == pytest.approx(0.99)
    # 5 times as many unsure digits on test: ATC counts those below the threshold, DoC the lost confidence
    test = probs_with([0.99] * 950 + [0.6] * 50)
    assert estimate.thresholded_confidence(val, labels, test) == pytest.approx(0.95)
    assert estimate.difference_of_confidences(val, labels, test) == pytest.approx(0.99 + 0.9705 - 0.9861)
    result = estimate.estimate_fold(val, labels, test)
    assert result["below_0.9"] == pytest.approx({"held_out": 0.01, "test": 0.05})


def test_cli_estimates_each_trained_fold_of_a_cv(tiny_cv, demo_dir, tmp_path, capsys):
    folder = tiny_cv
    scored = {f["fold"]: f["accuracy"][0] for f in json.loads((folder / "cv.json").read_text())["folds"]}
    capsys.readouterr()

    assert estimate.main(["--cv", str(folder), "--data_dir", str(demo_dir)]) == 0
    saved = json.loads((folder / "test_estimate.json").read_text())
    assert [f["fold"] for f in saved["folds"]] == [1, 3]  # fold 2 is not trained: skipped
    assert saved["test_rows"] == 359 and saved["tta"] == 0
    for f in saved["folds"]:
        assert f["held_out_accuracy"] == pytest.approx(scored[f["fold"]]) and f["models"] == 1
        assert 0 <= f["atc"] <= 1 and f["doc"] <= 1
    assert saved["mean"]["atc"] == pytest.approx(np.mean([f["atc"] for f in saved["folds"]]))
    assert "2 folds: held-out accuracy" in capsys.readouterr().out

    # with no warp the check's "shifted" half is its own held-out digits: its accuracy is theirs
    assert estimate.main(["--cv", str(folder), "--data_dir", str(demo_dir), "--shift_check", "0", "0"]) == 0
    assert "2 folds, warped halves" in capsys.readouterr().out
    digits = load_train(demo_dir)
    _, held_out = folds.fold_indices(digits.labels, 3, seed=0)[0]
    models = [next(folder.glob("*-fold-1")) / "model.keras"]
    half = np.random.default_rng(1).permutation(len(held_out))[len(held_out) // 2:]
    check = estimate.shift_check(models, digits.images[held_out], digits.labels[held_out], 0, 0, seed=1)
    probs = stacked_probabilities(models, digits.images[held_out][half])[0]
    assert check["true_accuracy"] == pytest.approx(estimate.accuracy(probs, digits.labels[held_out][half]))

    with pytest.raises(SystemExit) as exit:  # not a CV folder
        estimate.main(["--cv", str(tmp_path), "--data_dir", str(demo_dir)])
    assert exit.value.code == 2 and "no cv.json there" in capsys.readouterr().err
