"""End to end on the demo set: one epoch, a run folder, a checked submission."""

import csv
import json

import numpy as np
import pandas as pd
import pytest
from test_faults import usage_error_line

from common.digits_csv import SubmissionError, check_submission
from competition import predict as submission
from competition import train
from competition.config import TrainConfig
from competition.data import splits
from competition.runs import rows
from competition.runs.choosing import best_scored, newest, newest_named, run_by_id
from competition.training import trainer


def test_run_folder_holds_everything(trained_run, demo_dir):
    files = {p.name for p in trained_run.iterdir()}
    assert {"model.keras", "config.json", "data_fingerprint.json", "history.csv", "metrics.json",
            "train.log"} <= files
    assert not [p for p in trained_run.parent.iterdir() if p.name.startswith(".tmp")]

    config = json.loads((trained_run / "config.json").read_text())
    assert config["augment"] is True and config["epochs"] == 1 and config["data_dir"] == str(demo_dir)
    assert config["backend"] == "tensorflow"

    fingerprint = json.loads((trained_run / "data_fingerprint.json").read_text())
    assert fingerprint["demo"] is True and fingerprint["rows"] == 1438
    assert fingerprint["n_train"] + fingerprint["n_val"] == 1438 and len(fingerprint["sha256"]) == 64

    with open(trained_run / "history.csv") as f:
        history = list(csv.DictReader(f))
    assert len(history) == 1 and {"loss", "val_loss", "val_accuracy", "val_f1"} <= set(history[0])

    metrics = json.loads((trained_run / "metrics.json").read_text())
    val = metrics["validation"]
    matrix = np.array(val["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == val["n"] == fingerprint["n_val"]
    assert val["errors"] == matrix.sum() - np.trace(matrix) and val["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())
    assert sum(c["support"] for c in val["per_class"].values()) == val["n"]
    assert metrics["demo_data"] is True and metrics["epochs_run"] == 1

    log = (trained_run / "train.log").read_text()
    assert "DEMO data" in log and "epoch 1/1" in log and "val accuracy" in log and "val_acc 0." in log


def test_validation_split_is_the_reports(demo_dir):
    """train_test_split(test_size=0.1, random_state=15): same split every time, 10% held out."""
    from competition.data.digits import load_train

    digits = load_train(demo_dir)
    a = splits.split(digits, TrainConfig())
    b = splits.split(digits, TrainConfig())
    assert len(a[1]) == int(np.ceil(0.1 * len(digits)))
    np.testing.assert_array_equal(a[3], b[3])
    c = splits.split(digits, TrainConfig(split_seed=16))
    assert not np.array_equal(a[3], c[3])


def test_submission_from_newest_run(trained_run, demo_dir, tmp_path, capsys):
    out = tmp_path / "submission.csv"
    assert submission.main(["--data_dir", str(demo_dir), "--models_dir", str(trained_run.parent),
                            "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["ImageId", "Label"]
    assert frame["ImageId"].tolist() == list(range(1, 360))  # the demo test set's 359 rows
    assert frame["Label"].between(0, 9).all()
    printed = capsys.readouterr().out
    assert str(trained_run / "model.keras") in printed and str(out) in printed and "DEMO" in printed
    assert "demo test accuracy:" in printed
    # One epoch on 1,294 digits already beats chance on the demo test labels.
    truth = pd.read_csv(demo_dir / "test_labels.csv")
    assert (frame["Label"] == truth["Label"]).mean() > 0.2


def test_unscored_runs_are_chosen_tuned_then_newest(tmp_path):
    def make(name):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.keras").write_bytes(b"")

    for name in ("20260101-000000-a", "20260102-000000-b", ".tmp-20260103-000000-c"):
        make(name)
    (tmp_path / "20260104-000000-no-model").mkdir()
    assert best_scored(tmp_path) is None  # no metrics.json: nothing scored
    assert newest(tmp_path).folder.name == "20260102-000000-b"
    make("20260101-120000-tuned")
    chosen = newest(tmp_path)
    assert chosen.folder.name == "20260101-120000-tuned"  # tuned beats newer untuned
    assert chosen.reason == "the newest tuned run; none has a recorded score"
    assert newest_named(tmp_path, "a").folder.name == "20260101-000000-a"
    assert run_by_id(tmp_path, "20260102-000000-b").folder.name == "20260102-000000-b"
    with pytest.raises(FileNotFoundError, match="no run 'zzz'"):
        run_by_id(tmp_path, "zzz")
    with pytest.raises(FileNotFoundError, match="no run named 'demo'"):
        newest_named(tmp_path, "demo")
    with pytest.raises(FileNotFoundError, match="make train"):
        newest(tmp_path / "empty")


@pytest.mark.parametrize(
    "frame, message",
    [
        (pd.DataFrame({"ImageId": [1, 2], "Label": [3, 4]}), r"2 rows, expected one per test image \(3\)"),
        (pd.DataFrame({"Id": [1, 2, 3], "Label": [3, 4, 5]}), r"header must be ImageId,Label"),
        (pd.DataFrame({"ImageId": [1, 3, 2], "Label": [3, 4, 5]}), r"line 3: ImageId 3, expected 2"),
        (pd.DataFrame({"ImageId": [1, 2, 3], "Label": [3, 10, 5]}), r"line 3: Label 10, expected 0..9"),
        (pd.DataFrame({"ImageId": [1, 2, 3], "Label": [3.0, 1.5, 5.0]}), r"Label must hold integers"),
    ],
)
def test_check_submission_refuses_what_kaggle_would(frame, message):
    with pytest.raises(SubmissionError, match=message):
        check_submission(frame, 3)


def test_check_submission_accepts_a_valid_one():
    check_submission(pd.DataFrame({"ImageId": [1, 2, 3], "Label": [0, 9, 5]}), 3)


def test_all_rows_with_a_decaying_learning_rate(demo_dir, tmp_path):
    """--val_size 0 --lr_decay 0.5: every row trains, no validation, the rate halves each epoch."""
    cfg = TrainConfig(name="all", arch="strong", data_dir=str(demo_dir), models_dir=str(tmp_path), epochs=2,
                      batch_size=128, learning_rate=1e-3, lr_decay=0.5, val_size=0.0)
    folder = trainer.train_model(cfg)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["validation"] is None and metrics["epochs_run"] == 2
    assert json.loads((folder / "data_fingerprint.json").read_text())["n_train"] == 1438
    history = pd.read_csv(folder / "history.csv")
    assert history["learning_rate"].tolist() == pytest.approx([1e-3, 5e-4])
    assert "val_loss" not in history.columns or history["val_loss"].isna().all()
    epochs = [line for line in (folder / "train.log").read_text().splitlines() if " epoch " in line]
    assert len(epochs) == 2 and not any("val_" in line for line in epochs)  # no validation, no "nan" columns


def test_one_cycle_rises_to_its_peak_then_falls_to_zero_with_smoothed_labels(demo_dir, tmp_path):
    """--schedule onecycle --warmup 0.5: the first epoch's steps rise to the peak, the second's fall to
    zero; label smoothing keeps the loss above the plain cross-entropy's floor."""
    import keras

    cfg = TrainConfig(name="cycle", arch="strong", data_dir=str(demo_dir), models_dir=str(tmp_path), epochs=2,
                      batch_size=128, learning_rate=2e-3, schedule="onecycle", warmup=0.5, label_smoothing=0.2,
                      width=0.5, val_size=0.0, early_stopping=False)
    folder = trainer.train_model(cfg)
    history = pd.read_csv(folder / "history.csv")
    assert history["learning_rate"].tolist() == pytest.approx([2e-3, 0.0], abs=1e-9)
    model = keras.saving.load_model(folder / "model.keras")
    assert model.loss.label_smoothing == 0.2
    assert [c.filters for c in model.layers if isinstance(c, keras.layers.Conv2D)][0] == 16
    assert json.loads((folder / "config.json").read_text())["schedule"] == "onecycle"


@pytest.mark.parametrize("epochs, plain, resumed, first", [
    (20, 0, 0, None),  # no --plain_epochs: every batch warped
    (20, 1, 0, 19 * 7),  # the 20th epoch's first batch
    (20, 2, 5, 13 * 7),  # resumed after 5 epochs: the batches count from epoch 6
    (20, 2, 19, 0),  # resumed inside the plain epochs: plain from the start
])
def test_the_plain_epochs_start_where_the_run_goes_on_from(epochs, plain, resumed, first):
    cfg = TrainConfig(augment=True, epochs=epochs, plain_epochs=plain)
    assert trainer.first_plain_batch(cfg, resumed, steps=7) == first


def test_settings_added_later_key_the_checkpoints_only_when_on():
    """A run killed before shear, the last plain epochs and the grid bend existed resumes under the
    code that has them: at their off values they are left out of its checkpoints' key."""
    before = trainer.checkpoint_identity(TrainConfig(augment=True))
    assert not {"shear_deg", "plain_epochs", "grid_px"} & before.keys() and "rotation_deg" in before
    on = trainer.checkpoint_identity(TrainConfig(augment=True, epochs=5, shear_deg=10, plain_epochs=1, grid_px=1))
    assert (on["shear_deg"], on["plain_epochs"], on["grid_px"]) == (10, 1, 1)
    assert {key: on[key] for key in before} == {**before, "epochs": 5}


def test_a_run_with_plain_epochs_warps_all_but_its_last(demo_dir, tmp_path, monkeypatch):
    made = []

    def recording(*args, **kwargs):
        made.append((args, kwargs))
        return trainer_make_dataset(*args, **kwargs)

    trainer_make_dataset = trainer.make_dataset
    monkeypatch.setattr(trainer, "make_dataset", recording)
    cfg = TrainConfig(name="plain", arch="strong", width=0.25, data_dir=str(demo_dir), models_dir=str(tmp_path),
                      epochs=2, batch_size=128, augment=True, shear_deg=10, plain_epochs=1, val_size=0.0)
    folder = trainer.train_model(cfg)
    (args, kwargs), = made
    assert args[4].shear_deg == 10 and kwargs["plain_from"] == 12  # 1,438 digits: 12 batches of 128 an epoch
    assert json.loads((folder / "config.json").read_text())["plain_epochs"] == 1


def right_at_last_epoch(folder, n: int) -> int:
    """Validation digits the run's last epoch got right, by history.csv: counted as digits, so that a
    bound on them cannot fail on a float's last bit."""
    return round(pd.read_csv(folder / "history.csv")["val_accuracy"].iloc[-1] * n)


def test_mixed_precision_run_saves_the_float32_model_it_scored(demo_dir, tmp_path):
    """--precision mixed_bfloat16 trains in bfloat16; model.keras is float32, with the trained
    weights and optimizer state, and it is the model metrics.json scored."""
    import keras

    from competition.data.digits import load_train

    cfg = TrainConfig(name="bf16", data_dir=str(demo_dir), models_dir=str(tmp_path), epochs=1,
                      precision="mixed_bfloat16")
    folder = trainer.train_model(cfg)
    assert json.loads((folder / "config.json").read_text())["precision"] == "mixed_bfloat16"
    assert "mixed_bfloat16" in (folder / "train.log").read_text()

    model = keras.saving.load_model(folder / "model.keras")
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    _, x_val, y_train, y_val = splits.split(load_train(demo_dir), cfg)
    assert int(model.optimizer.iterations) == int(np.ceil(len(y_train) / cfg.batch_size))  # one epoch's steps
    predicted = model.predict(x_val.astype(np.float32), verbose=0).argmax(axis=1)
    metrics = json.loads((folder / "metrics.json").read_text())["validation"]
    assert metrics["accuracy"] == pytest.approx((predicted == y_val).mean())
    # The trained weights, not a fresh twin's: it learned, and within bfloat16 rounding (a few of
    # 144 digits) it scores what the bfloat16 model scored at the end of its epoch.
    assert metrics["accuracy"] > 0.2
    assert abs(metrics["n"] - metrics["errors"] - right_at_last_epoch(folder, metrics["n"])) <= 3


def test_ema_saves_the_moving_average_and_scores_the_last_step_too(demo_dir, tmp_path):
    """--ema: model.keras holds the weights' moving average (float32 after bfloat16 training);
    metrics.json scores it and, beside it, the last step's weights, which history.csv also scored."""
    import keras

    from competition.data.digits import load_train

    cfg = TrainConfig(name="ema", arch="strong", data_dir=str(demo_dir), models_dir=str(tmp_path), epochs=2,
                      batch_size=64, learning_rate=1e-3, lr_decay=0.9, early_stopping=False, ema=0.9,
                      precision="mixed_bfloat16")
    folder = trainer.train_model(cfg)
    metrics = json.loads((folder / "metrics.json").read_text())
    model = keras.saving.load_model(folder / "model.keras")
    assert model.optimizer.use_ema and model.optimizer.ema_momentum == 0.9
    _, x_val, _, y_val = splits.split(load_train(demo_dir), cfg)
    predicted = model.predict(x_val.astype(np.float32), verbose=0).argmax(axis=1)
    assert metrics["validation"]["accuracy"] == pytest.approx((predicted == y_val).mean())
    # the saved weights are the optimizer's average, not the last step's
    averages = {id(v): a for v, a in zip(model.trainable_variables, model.optimizer._model_variables_moving_average)}
    assert all(np.array_equal(v.numpy(), averages[id(v)].numpy()) for v in model.trainable_variables)
    last = metrics["last_step_validation"]
    assert set(last) == {"accuracy", "errors", "loss"} and last["loss"] != metrics["validation"]["loss"]
    assert abs(metrics["validation"]["n"] - last["errors"] - right_at_last_epoch(folder, metrics["validation"]["n"])) <= 3
    assert "ema: val accuracy" in (folder / "train.log").read_text()


@pytest.mark.parametrize("flags, message", [
    (["--ema", "1"], "--ema 1.0: a momentum in [0, 1)"),
    (["--ema", "0.99"], "--ema needs --no-early_stopping"),
])
def test_ema_flags_are_checked(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(flags)
    assert exit_info.value.code == 2
    usage_error_line(capsys.readouterr().err, message)
    assert train.parse_args(["--preset", "strong", "--ema", "0.999"]).ema == 0.999


def test_unknown_precision_is_refused_on_the_command_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(["--precision", "float16"])
    assert exit_info.value.code == 2
    usage_error_line(capsys.readouterr().err, "--precision 'float16': choose from auto, float32, mixed_bfloat16")


def test_resnet_in_bfloat16_trains_and_saves_float32(demo_dir, tmp_path):
    """The residual design (a functional model, not a Sequential) goes through the same run folder:
    trained in bfloat16 with augmentation, saved float32 with its trained weights."""
    import keras

    from competition.data.digits import load_train

    cfg = TrainConfig(name="res", arch="resnet", data_dir=str(demo_dir), models_dir=str(tmp_path), epochs=2,
                      batch_size=64, learning_rate=3e-3, augment=True,
                      precision="mixed_bfloat16")
    folder = trainer.train_model(cfg)
    config = json.loads((folder / "config.json").read_text())
    assert (config["arch"], config["augment"], config["precision"]) == ("resnet", True, "mixed_bfloat16")
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["parameters"] == 265_770
    model = keras.saving.load_model(folder / "model.keras")
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    _, x_val, _, y_val = splits.split(load_train(demo_dir), cfg)
    predicted = model.predict(x_val.astype(np.float32), verbose=0).argmax(axis=1)
    assert metrics["validation"]["accuracy"] == pytest.approx((predicted == y_val).mean())
    # it learned (chance is 0.1); on training batches, since 44 steps leave batch norm's moving averages raw
    assert pd.read_csv(folder / "history.csv")["accuracy"].iloc[-1] > 0.3


def test_run_split_refuses_rows_it_cannot_find_again(trained_run, demo_dir, tmp_path):
    """A run without rows.npz whose recorded validation size is not its config's split (a CV fold of
    an older version) is refused, not evaluated on rows it trained on; rows past the data too."""
    import shutil

    from competition.data.digits import DataError, load_train

    digits = load_train(demo_dir)
    x_train, x_val, _, _ = rows.run_split(trained_run, digits)  # the report's split: 1,294 / 144
    assert (len(x_train), len(x_val)) == (1294, 144)
    run = tmp_path / trained_run.name
    shutil.copytree(trained_run, run)
    fingerprint = json.loads((run / "data_fingerprint.json").read_text())
    (run / "data_fingerprint.json").write_text(json.dumps({**fingerprint, "n_val": 479}))
    with pytest.raises(DataError, match="validated on 479 rows, but its config's split .* gives 144"):
        rows.run_split(run, digits)
    np.savez(run / "rows.npz", train=np.arange(5, 1438), validation=np.arange(5))
    assert [len(part) for part in rows.run_split(run, digits)] == [1433, 5, 1433, 5]
    np.savez(run / "rows.npz", train=np.arange(10), validation=np.array([2000]))
    with pytest.raises(DataError, match="past the 1438"):
        rows.run_split(run, digits)
