"""Pseudo-labels on the demo set: which models may label, what they label, and runs that learn from them."""

import json

import numpy as np
import pytest
from test_cv_ensemble import quick  # one-epoch flags on the demo set
from test_faults import usage_error_line

from competition import cv, train
from competition.data.digits import DataError, load_test, load_train
from competition.scoring import folds
from competition.scoring.probabilities import stacked_probabilities
from competition.training import pseudo, trainer


def fake_member(folder, name, held_out=None):
    run = folder / name
    run.mkdir(parents=True)
    (run / "model.keras").write_bytes(b"")
    if held_out is not None:
        np.savez(run / "rows.npz", train=np.arange(100, 110), validation=np.array(held_out))
    return run / "model.keras"


def test_labellers_are_the_models_that_held_out_the_same_rows(tmp_path):
    folder = tmp_path / "cv-x"
    a1, a2 = fake_member(folder, "a1", [5, 1, 3]), fake_member(folder, "a2", [1, 3, 5])
    b, full = fake_member(folder, "b", [2, 4]), fake_member(folder, "full")  # full: trained on every row
    (folder / "ensemble.json").write_text(json.dumps({"members": ["a1", "a2", "b", "full"]}))
    assert pseudo.labellers(folder, np.array([3, 5, 1])) == [a1, a2]
    assert pseudo.labellers(folder, np.array([4, 2])) == [b]
    assert pseudo.labellers(folder, None) == [a1, a2, b, full]
    with pytest.raises(DataError, match="none of its 4 models held out this run's 2 rows"):
        pseudo.labellers(folder, np.array([1, 2]))


def test_pseudo_labels_are_the_labellers_confident_predictions(demo_dir, tmp_path):
    assert cv.main([*quick(demo_dir, tmp_path), "--k", "2", "--name", "lab"]) == 0
    digits, test = load_train(demo_dir), load_test(demo_dir)
    held_out = folds.fold_indices(digits.labels, 2, seed=0)[0][1]
    (model,) = pseudo.labellers(tmp_path / "cv-lab", held_out)
    probs = stacked_probabilities([model], test.images)[0]
    threshold = float(np.median(probs.max(axis=1)))

    images, labels, summary = pseudo.pseudo_labelled(str(tmp_path / "cv-lab"), str(demo_dir), held_out, threshold)
    keep = probs.max(axis=1) >= threshold
    assert summary["kept"] == keep.sum() == len(images) and 0 < keep.sum() < len(test)
    assert summary["labellers"] == [str(model.parent)] and summary["test_rows"] == len(test) == 359
    np.testing.assert_array_equal(images, test.images[keep])
    np.testing.assert_array_equal(labels, probs.argmax(axis=1)[keep])
    with pytest.raises(DataError, match="not a run or ensemble folder"):
        pseudo.pseudo_labelled(str(tmp_path), str(demo_dir), None, 0.5)


def test_cv_and_full_row_runs_train_on_pseudo_labels_too(demo_dir, tmp_path, capsys):
    assert cv.main([*quick(demo_dir, tmp_path), "--k", "2", "--name", "lab"]) == 0
    args = [*quick(demo_dir, tmp_path), "--pseudo", "cv-lab", "--pseudo_min_confidence", "0"]
    assert cv.main([*args, "--k", "2", "--name", "ps"]) == 0
    labellers = {f["fold"]: f["runs"][0] for f in json.loads((tmp_path / "cv-lab" / "cv.json").read_text())["folds"]}
    for f in json.loads((tmp_path / "cv-ps" / "cv.json").read_text())["folds"]:
        run = tmp_path / "cv-ps" / f["runs"][0]
        used = json.loads((run / "metrics.json").read_text())["pseudo_labels"]
        # Each fold learns from the same fold's labeller only: it never saw the rows scored here.
        assert [p.rsplit("/", 1)[1] for p in used["labellers"]] == [labellers[f["fold"]]]
        assert used["kept"] == 359 and used["source"] == str((tmp_path / "cv-lab").resolve())
        fingerprint = json.loads((run / "data_fingerprint.json").read_text())
        assert fingerprint["n_pseudo"] == 359 and fingerprint["n_train"] == 1438 - f["n"] + 359
        with np.load(run / "rows.npz") as rows:  # the labelled rows only: reports score those
            assert len(rows["train"]) == 1438 - f["n"]

    full = trainer.train_model(train.parse_args([*args, "--val_size", "0", "--name", "full"]))
    used = json.loads((full / "metrics.json").read_text())["pseudo_labels"]
    assert len(used["labellers"]) == 2  # no rows held out: every model of the folder labels
    assert json.loads((full / "data_fingerprint.json").read_text())["n_train"] == 1438 + 359

    # Labellers of other folds would leak the held-out rows: refused, and nothing is trained.
    assert cv.main([*args, "--k", "3", "--name", "leak"]) == 2
    assert "none of its 2 models held out" in capsys.readouterr().err
    assert not any(p.name.endswith("-fold-1") for p in (tmp_path / "cv-leak").iterdir())


def test_a_missing_labelling_folder_is_refused_naming_it(demo_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        train.parse_args([*quick(demo_dir, tmp_path), "--pseudo", "cv-missing"])
    assert exit_.value.code == 2
    usage_error_line(capsys.readouterr().err, "--pseudo: no run 'cv-missing': expected a folder with model.keras or "
                     f"ensemble.json, as a path or under {tmp_path}")
