"""research/pseudo_calibration.py: how many of a CV's held-out errors fall below a confidence threshold."""

import numpy as np
import pytest

from competition.data.digits import load_train
from competition.scoring import folds
from competition.scoring.probabilities import stacked_probabilities
from research import pseudo_calibration


def test_counts_each_trained_folds_digits_and_errors_below_the_threshold(tiny_cv, demo_dir, capsys):
    assert pseudo_calibration.main(["--cv", str(tiny_cv), "--data_dir", str(demo_dir), "--min_confidence", "0.5"]) == 0
    out = capsys.readouterr().out
    digits = load_train(demo_dir)
    totals = np.zeros(4, int)
    for fold in (1, 3):  # fold 2 is not trained: skipped
        _, held_out = folds.fold_indices(digits.labels, 3, seed=0)[fold - 1]
        models = [next(tiny_cv.glob(f"*-fold-{fold}")) / "model.keras"]
        probs = stacked_probabilities(models, digits.images[held_out]).mean(axis=0)
        wrong = probs.argmax(axis=1) != digits.labels[held_out]
        below = probs.max(axis=1) < 0.5
        right = f"kept digits {1 - wrong[~below].mean():.5f} right" if (~below).any() else "no digit kept"
        assert (f"fold {fold}: 1 models, accuracy {1 - wrong.mean():.5f}; below 0.5: {below.sum()} digits "
                f"holding {wrong[below].sum()} of {wrong.sum()} errors; {right}") in out
        totals += [len(wrong), wrong.sum(), below.sum(), (wrong & below).sum()]
    assert "fold 2" not in out
    assert f"all folds: {totals[2]} of {totals[0]} digits below 0.5, holding {totals[3]} of {totals[1]} errors" in out

    # with no threshold every digit is kept, and the kept digits' accuracy is the folds' accuracy
    assert pseudo_calibration.main(["--cv", str(tiny_cv), "--data_dir", str(demo_dir), "--min_confidence", "0"]) == 0
    assert (f"all folds: 0 of {totals[0]} digits below 0.0, holding 0 of {totals[1]} errors; "
            f"kept digits {1 - totals[1] / totals[0]:.5f} right") in capsys.readouterr().out


def test_refuses_a_folder_without_a_cv(tmp_path, demo_dir, capsys):
    with pytest.raises(SystemExit) as exit:
        pseudo_calibration.main(["--cv", str(tmp_path), "--data_dir", str(demo_dir)])
    assert exit.value.code == 2 and "no cv.json there" in capsys.readouterr().err
