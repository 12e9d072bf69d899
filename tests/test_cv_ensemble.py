"""Cross-validation and ensembles on the demo set: one epoch per model, real folders and figures."""

import json

import numpy as np
import pandas as pd
import pytest

from competition import cv, ensemble
from competition import predict as submission
from competition.config import TrainConfig
from competition.data.digits import DataError, load_train
from competition.ensemble import agreement
from competition.scoring.metrics import every_member_wrong, size_curve
from competition.runs import rows as run_rows
from competition.scoring.folds import fold_indices
from competition.scoring.probabilities import stacked_probabilities
from competition.training import parallel
from competition.training.hardware import usable_cores


def quick(demo_dir, models_dir):
    return ["--data_dir", str(demo_dir), "--models_dir", str(models_dir), "--epochs", "1", "--batch_size", "128",
            "--learning_rate", "0.003"]


def test_fold_indices_cover_every_row_once_stratified():
    labels = np.repeat(np.arange(10), 20)
    folds = fold_indices(labels, 4, seed=0)
    held_out = np.concatenate([val for _, val in folds])
    assert sorted(held_out) == list(range(200))
    for train_idx, val_idx in folds:
        assert not set(train_idx) & set(val_idx)
        assert np.bincount(labels[val_idx], minlength=10).tolist() == [5] * 10


def test_a_share_of_the_training_rows_keeps_the_held_out_rows_and_the_strata():
    labels = np.repeat(np.arange(10), 40)
    whole, half = fold_indices(labels, 4, seed=0), fold_indices(labels, 4, seed=0, train_share=0.5)
    for (train, held_out), (some, same) in zip(whole, half):
        np.testing.assert_array_equal(same, held_out)
        assert set(some) < set(train) and np.all(np.diff(some) > 0)
        assert np.bincount(labels[some], minlength=10).tolist() == [15] * 10  # half of each digit's 30
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(half, fold_indices(labels, 4, seed=0, train_share=0.5)))


def test_cv_reports_mean_and_spread_and_reuses_folds(demo_dir, tmp_path, capsys):
    assert cv.main([*quick(demo_dir, tmp_path), "--k", "3", "--folds", "1", "2", "--name", "t"]) == 0
    summary = json.loads((tmp_path / "cv-t" / "cv.json").read_text())
    accuracies = [a for f in summary["folds"] for a in f["accuracy"]]
    assert [f["fold"] for f in summary["folds"]] == [1, 2] and len(accuracies) == 2
    assert summary["single"]["mean"] == pytest.approx(np.mean(accuracies))
    assert summary["single"]["std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert sum(f["n"] for f in summary["folds"]) in (958, 959)  # two thirds of 1,438 rows held out
    assert "ensemble" not in summary  # one seed: nothing to ensemble per fold
    for f in summary["folds"]:  # the held-out accuracy is the one training measured on the same rows
        run = json.loads((tmp_path / "cv-t" / f["runs"][0] / "metrics.json").read_text())
        assert run["validation"]["accuracy"] == pytest.approx(f["accuracy"][0]) and run["validation"]["n"] == f["n"]
    # Each fold's run keeps its rows, so that reports and edge checks find them again (its config's
    # 90/10 split would be other rows, most of them trained on).
    digits = load_train(demo_dir)
    folds = fold_indices(digits.labels, 3, seed=0)
    for f in summary["folds"]:
        folder = tmp_path / "cv-t" / f["runs"][0]
        with np.load(folder / "rows.npz") as rows:
            np.testing.assert_array_equal(rows["validation"], folds[f["fold"] - 1][1])
            np.testing.assert_array_equal(rows["train"], folds[f["fold"] - 1][0])
        x_train, x_val, _, y_val = run_rows.run_split(folder, digits)
        assert len(x_train) + len(x_val) == 1438 and len(x_val) == f["n"]
        np.testing.assert_array_equal(y_val, digits.labels[folds[f["fold"] - 1][1]])
    capsys.readouterr()

    assert cv.main([*quick(demo_dir, tmp_path), "--k", "3", "--name", "t"]) == 0  # the third fold only
    out = capsys.readouterr().out
    assert out.count("already trained, reusing") == 2 and "3 of 3 folds" in out
    assert len(json.loads((tmp_path / "cv-t" / "cv.json").read_text())["folds"]) == 3

    assert cv.main([*quick(demo_dir, tmp_path), "--k", "3", "--name", "t", "--seed", "9"]) == 2  # other settings
    assert "--fresh" in capsys.readouterr().err

    # A CV recorded before a setting existed resumes: the missing key counts as its default ...
    record = tmp_path / "cv-t" / "cv_config.json"
    settings = json.loads(record.read_text())
    del settings["pseudo_min_confidence"]
    record.write_text(json.dumps(settings))
    assert cv.main([*quick(demo_dir, tmp_path), "--k", "3", "--name", "t"]) == 0
    assert capsys.readouterr().out.count("already trained, reusing") == 3
    # ... and the new setting, set otherwise, is a change
    assert cv.main([*quick(demo_dir, tmp_path), "--k", "3", "--name", "t", "--pseudo_min_confidence", "0.95"]) == 2
    assert "pseudo_min_confidence 0.9 -> 0.95" in capsys.readouterr().err
    # A share of the rows is another CV: it needs its own name (or --fresh); a share must be in (0, 1].
    assert cv.main([*quick(demo_dir, tmp_path), "--k", "3", "--name", "t", "--train_share", "0.5"]) == 2
    assert "train_share 1.0 -> 0.5" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cv.main([*quick(demo_dir, tmp_path), "--k", "3", "--name", "t", "--train_share", "0"])


def test_cv_with_seeds_measures_each_folds_ensemble_and_is_one_itself(demo_dir, tmp_path, capsys):
    assert cv.main([*quick(demo_dir, tmp_path), "--k", "2", "--name", "s"]) == 0
    capsys.readouterr()
    assert cv.main([*quick(demo_dir, tmp_path), "--k", "2", "--name", "s", "--seeds", "2"]) == 0  # seeds grow
    out = capsys.readouterr().out
    assert out.count("already trained, reusing") == 2 and "the average of k members, by k: 1 " in out
    folder = tmp_path / "cv-s"
    summary = json.loads((folder / "cv.json").read_text())
    assert [f["runs"][1].endswith("fold-%d-seed-1" % f["fold"]) for f in summary["folds"]] == [True, True]
    assert [json.loads((folder / f["runs"][1] / "config.json").read_text())["seed"] for f in summary["folds"]] == [1, 1]
    ensemble_accuracy = [f["ensemble_accuracy"] for f in summary["folds"]]
    assert summary["ensemble"]["mean"] == pytest.approx(np.mean(ensemble_accuracy))
    assert summary["ensemble"]["gain_over_member_mean"] == pytest.approx(
        summary["ensemble"]["mean"] - summary["single"]["mean"])
    assert summary["single"]["n"] == 4 and summary["ensemble"]["members"] == 2
    assert summary["images_per_second"] > 0 and all(len(f["train_images_per_second"]) == 2 for f in summary["folds"])
    assert all(0 <= f["agreement"]["all_agree"] <= 1 for f in summary["folds"])
    # the curve's last point is each fold's whole ensemble, its first the members' mean
    assert summary["ensemble"]["by_size"] == pytest.approx([summary["single"]["mean"], summary["ensemble"]["mean"]])
    assert 0 <= summary["ensemble"]["every_member_wrong"] <= 1 - summary["ensemble"]["mean"] + 1e-9
    assert len(json.loads((folder / "ensemble.json").read_text())["members"]) == 4
    # --tta scores into a file of its own: cv.json keeps the plain figures
    assert cv.main([*quick(demo_dir, tmp_path), "--k", "2", "--name", "s", "--seeds", "2", "--tta", "2"]) == 0
    assert json.loads((folder / "cv.json").read_text()) == summary
    augmented = json.loads((folder / "cv_tta2.json").read_text())
    assert summary["tta"] == 0 and augmented["tta"] == 2
    assert [f["runs"] for f in augmented["folds"]] == [f["runs"] for f in summary["folds"]]
    digits = load_train(demo_dir)
    for f, (_, held_out) in zip(augmented["folds"], fold_indices(digits.labels, 2, seed=0)):
        probs = stacked_probabilities([folder / r / "model.keras" for r in f["runs"]], digits.images[held_out], 2)
        labels = digits.labels[held_out]
        assert f["accuracy"] == pytest.approx([(p.argmax(axis=1) == labels).mean() for p in probs])
        assert f["ensemble_accuracy"] == pytest.approx((probs.mean(axis=0).argmax(axis=1) == labels).mean())
    capsys.readouterr()
    assert cv.main([*quick(demo_dir, tmp_path), "--k", "2", "--name", "s", "--seeds", "2", "--folds", "2"]) == 0
    assert capsys.readouterr().out.count("already trained, reusing") == 2  # evaluates fold 2 only ...
    assert [f["fold"] for f in json.loads((folder / "cv.json").read_text())["folds"]] == [2]
    assert len(json.loads((folder / "ensemble.json").read_text())["members"]) == 4  # ... the ensemble keeps all

    out = tmp_path / "submission.csv"
    assert submission.main(["--run", str(folder), "--data_dir", str(demo_dir), "--out", str(out)]) == 0
    assert "ensemble of 4" in capsys.readouterr().out and len(pd.read_csv(out)) == 359


def test_cv_trains_models_at_once_in_workers_sharing_the_cores(demo_dir, tmp_path, capfd):
    assert cv.main([*quick(demo_dir, tmp_path), "--k", "2", "--name", "p", "--jobs", "2"]) == 0
    out = capfd.readouterr().out
    # each worker's lines name its model (they share one console); its own log is the run's train.log
    assert "[fold-1] epoch 1/1" in out and "[fold-2] epoch 1/1" in out
    folder = tmp_path / "cv-p"
    summary = json.loads((folder / "cv.json").read_text())
    assert [f["fold"] for f in summary["folds"]] == [1, 2]
    for f in summary["folds"]:
        run = folder / f["runs"][0]
        assert json.loads((run / "config.json").read_text())["threads"] == max(1, usable_cores() // 2)
        assert json.loads((run / "metrics.json").read_text())["validation"]["accuracy"] == pytest.approx(f["accuracy"][0])
        assert "epoch 1/1" in (run / "train.log").read_text()

    assert cv.main([*quick(demo_dir, tmp_path), "--k", "2", "--name", "p", "--jobs", "2"]) == 0
    out = capfd.readouterr().out
    assert out.count("already trained, reusing") == 2 and ": training" not in out


def test_a_worker_failure_reaches_the_caller_and_leaves_no_run(tmp_path):
    cfg = TrainConfig(data_dir=str(tmp_path / "nowhere"), epochs=1)
    jobs = [parallel.Job(cfg, tmp_path / "models", name) for name in ("a", "b")]
    with pytest.raises(DataError, match="no train.csv"):
        parallel.train_all(jobs, workers=2)
    assert not [p for p in (tmp_path / "models").glob("*") if not p.name.startswith(".")]


def test_agreement_counts_unanimous_digits():
    probs = np.zeros((3, 4, 10))
    probs[:, :, 1] = 1  # all say 1 ...
    probs[2, 3] = np.eye(10)[7]  # ... except member 3 on digit 4
    assert agreement(probs) == {"all_agree": 0.75, "mean_pairwise": pytest.approx((1 + 0.75 + 0.75) / 3), "n": 4}


def test_the_size_curve_averages_every_subset_and_counts_digits_none_gets_right():
    labels = np.array([0, 1, 2, 3])
    right, wrong = np.eye(10)[labels], np.eye(10)[(labels + 1) % 10]
    probs = np.stack([right, right, wrong * 0.9 + right * 0.1])  # the third is wrong on every digit
    probs[:2, 3] = 0.6 * np.eye(10)[5] + 0.4 * np.eye(10)[3]  # the first two miss digit 4 too, for a 5
    # k=1: (3/4 + 3/4 + 0) / 3. k=2 and k=3: right on the first three digits (the good members' 1 outweighs
    # the third's 0.9), wrong on the fourth (a pair with the third says 4 at 0.45, the rest say 5)
    assert size_curve(probs, labels) == pytest.approx([0.5, 0.75, 0.75])
    assert every_member_wrong(probs, labels) == 1
    # more subsets than `most`: a random draw of them, the same for the same seed
    many = np.repeat(probs, 4, axis=0)
    assert size_curve(many, labels, most=5) == size_curve(many, labels, most=5)


def test_ensemble_averages_members_and_submits(demo_dir, tmp_path, capsys):
    assert ensemble.main([*quick(demo_dir, tmp_path), "--k", "2", "--name", "e"]) == 0
    folder = tmp_path / "ensemble-e"
    metrics = json.loads((folder / "metrics.json").read_text())
    members = metrics["member_accuracy"]
    assert len(members) == 2 and metrics["members"] == 2
    assert metrics["gain_over_best_member"] == pytest.approx(metrics["validation"]["accuracy"] - max(members.values()))
    assert 0 <= metrics["agreement"]["all_agree"] <= 1 and metrics["agreement"]["n"] == 144
    seeds = [json.loads((folder / m / "config.json").read_text())["seed"] for m in members]
    assert seeds == [0, 1]
    capsys.readouterr()

    # grows: reuses 2, trains the third in a worker process
    assert ensemble.main([*quick(demo_dir, tmp_path), "--k", "3", "--name", "e", "--jobs", "2"]) == 0
    assert capsys.readouterr().out.count("already trained, reusing") == 2
    assert len(json.loads((folder / "ensemble.json").read_text())["members"]) == 3

    out = tmp_path / "submission.csv"
    assert submission.main(["--run", str(folder), "--data_dir", str(demo_dir), "--out", str(out), "--tta", "1"]) == 0
    printed = capsys.readouterr().out
    assert "ensemble of 3" in printed and "test-time augmentation x1" in printed
    frame = pd.read_csv(out)
    assert len(frame) == 359 and frame["Label"].between(0, 9).all()


def test_combine_scores_two_cvs_of_the_same_folds_as_one_ensemble(demo_dir, tmp_path, capsys):
    from competition import combine

    assert cv.main([*quick(demo_dir, tmp_path), "--k", "2", "--name", "a"]) == 0
    assert cv.main([*quick(demo_dir, tmp_path), "--k", "2", "--name", "b", "--seed", "5", "--batch_size", "64"]) == 0
    assert cv.main([*quick(demo_dir, tmp_path), "--k", "3", "--folds", "1", "--name", "c"]) == 0
    capsys.readouterr()
    args = ["--data_dir", str(demo_dir), "--models_dir", str(tmp_path)]
    assert combine.main(["cv-a", str(tmp_path / "cv-b"), "--name", "ab", *args]) == 0
    folder = tmp_path / "cv-ab"
    summary = json.loads((folder / "cv.json").read_text())
    assert [f["fold"] for f in summary["folds"]] == [1, 2] and summary["ensemble"]["members"] == 2
    for f in summary["folds"]:  # fold i of each CV, scored on the rows both held out
        assert [r.split("-fold-")[1] for r in f["runs"]] == [str(f["fold"])] * 2
        for name, accuracy in zip(f["runs"], f["accuracy"]):
            source = "cv-a" if (tmp_path / "cv-a" / name).is_dir() else "cv-b"
            trained = json.loads((tmp_path / source / name / "metrics.json").read_text())["validation"]
            assert trained["accuracy"] == pytest.approx(accuracy) and trained["n"] == f["n"]
    assert summary["ensemble"]["mean"] == pytest.approx(np.mean([f["ensemble_accuracy"] for f in summary["folds"]]))
    members = json.loads((folder / "ensemble.json").read_text())["members"]
    assert len(members) == 4 and all((folder / m / "model.keras").is_file() for m in members)
    assert "each fold's ensemble of 2 models" in capsys.readouterr().out

    out = tmp_path / "submission.csv"
    assert submission.main(["--run", "cv-ab", "--models_dir", str(tmp_path), "--data_dir", str(demo_dir),
                            "--out", str(out)]) == 0
    assert "ensemble of 4" in capsys.readouterr().out and len(pd.read_csv(out)) == 359

    # models trained on every row join the submission, not the CV (they held nothing out)
    assert ensemble.main([*quick(demo_dir, tmp_path), "--k", "1", "--name", "all", "--val_size", "0"]) == 0
    assert combine.main(["cv-a", "cv-b", "--also", "ensemble-all", "--name", "ab-all", *args]) == 0
    with_all = tmp_path / "cv-ab-all"
    members = json.loads((with_all / "ensemble.json").read_text())["members"]
    assert len(members) == 5 and (with_all / members[-1]).resolve().parent == (tmp_path / "ensemble-all").resolve()
    assert json.loads((with_all / "cv.json").read_text())["folds"] == summary["folds"]
    capsys.readouterr()
    assert submission.main(["--run", "cv-ab-all", "--models_dir", str(tmp_path), "--data_dir", str(demo_dir),
                            "--out", str(out)]) == 0
    assert "ensemble of 5" in capsys.readouterr().out

    # --folds: only the folds both screened, in its CV and its ensemble
    assert combine.main(["cv-a", "cv-b", "--folds", "2", "--name", "ab2", *args]) == 0
    assert [f["fold"] for f in json.loads((tmp_path / "cv-ab2" / "cv.json").read_text())["folds"]] == [2]
    assert json.loads((tmp_path / "cv-ab2" / "ensemble.json").read_text())["members"] == [
        m for m in json.loads((folder / "ensemble.json").read_text())["members"] if m.endswith("fold-2")]
    assert combine.main(["cv-a", "cv-b", "--folds", "2", "3", "--name", "ab3", *args]) == 2
    assert "--folds: no models of fold 3" in capsys.readouterr().err

    assert combine.main(["cv-a", "cv-c", "--name", "ac", *args]) == 2  # 2 folds vs 3: other rows held out
    assert "not the same folds" in capsys.readouterr().err
    assert combine.main(["cv-a", "ensemble-x", "--name", "ax", *args]) == 2
    assert "not a cross-validation folder" in capsys.readouterr().err
    assert combine.main(["cv-a", "--also", "nothing-here", "--name", "an", *args]) == 2
    assert "not a run or an ensemble" in capsys.readouterr().err
    assert not any((tmp_path / f"cv-{name}").exists() for name in ("ac", "ax", "an"))
