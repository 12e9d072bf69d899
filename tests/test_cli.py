"""Command lines: bad input means a clear message, a non-zero exit and nothing written."""

import dataclasses
import re
import subprocess
import sys

import pytest
from test_faults import one_error_line, usage_error_line

from common.errors import ConfigError
from competition import predict as submission
from competition import train
from competition.config import PRESETS, ROOT, TrainConfig
from competition.demo_data import main as demo_main


def test_train_on_bad_data_writes_nothing(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("label,pixel0\n1,2\n")
    models = tmp_path / "models"
    code = train.main(["--data_dir", str(data), "--models_dir", str(models), "--epochs", "1"])
    assert code == 2
    one_error_line(capsys.readouterr().err, f"{data / 'train.csv'}, line 1 (header), column 3: expected 'pixel1'")
    assert not models.exists() or not any(models.iterdir())


def test_submission_without_a_run_says_what_to_do(tmp_path, demo_dir, capsys):
    out = tmp_path / "submission.csv"
    code = submission.main(["--data_dir", str(demo_dir), "--models_dir", str(tmp_path / "models"),
                            "--out", str(out)])
    assert code == 2 and not out.exists()
    one_error_line(capsys.readouterr().err, str(tmp_path / "models"), "make train")


@pytest.mark.parametrize("argv, message", [
    (["--arch", "vit"], "--arch 'vit': choose from report, strong, resnet"),
    (["--epochs", "0"], "--epochs and --batch_size must be at least 1"),
    (["--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
])
def test_bad_flags_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        train.parse_args(argv)
    assert exit_.value.code == 2
    usage_error_line(capsys.readouterr().err, message)


@pytest.mark.parametrize("argv, message", [
    (["--schedule", "cosine"], "--schedule 'cosine': choose from epoch, onecycle"),
    (["--preset", "strong", "--schedule", "onecycle"], "--schedule onecycle sets every step's rate"),
    (["--label_smoothing", "1"], "--warmup and --label_smoothing must be in [0, 1)"),
    (["--width", "0.5"], "--width and --dropout are for every --arch but report"),
    (["--arch", "strong", "--dropout", "1"], "--width must be above 0, --dropout in [0, 1)"),
])
def test_schedule_smoothing_width_and_dropout_flags_are_checked(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        train.parse_args(argv)
    assert exit_.value.code == 2
    usage_error_line(capsys.readouterr().err, message)


def test_flags_override_config_typed():
    cfg = train.parse_args(["--epochs", "3", "--learning_rate", "0.001", "--augment", "--seed", "7"])
    assert (cfg.epochs, cfg.learning_rate, cfg.augment, cfg.seed) == (3, 0.001, True, 7)
    assert train.parse_args(["--no-augment"]).augment is False


def test_help_shows_defaults():
    result = subprocess.run([sys.executable, "-m", "competition.train", "--help"], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    assert "--batch_size BATCH_SIZE" in result.stdout and "(default: 32)" in result.stdout


def test_demo_data_cli(tmp_path, capsys):
    assert demo_main(["--out", str(tmp_path)]) == 0
    assert "1438 train / 359 test" in capsys.readouterr().out
    assert (tmp_path / "train.csv").is_file() and not list(tmp_path.glob(".*.tmp"))


def test_preset_sets_defaults_that_flags_override():
    cfg = train.parse_args(["--preset", "strong", "--epochs", "3"])
    assert (cfg.arch, cfg.augment, cfg.early_stopping, cfg.epochs) == ("strong", True, False, 3)
    assert cfg.lr_decay > 0 and cfg.learning_rate == 1e-3
    assert train.parse_args([]).arch == "report"


def test_long_preset_ends_at_the_strong_presets_learning_rate():
    strong, long = train.parse_args(["--preset", "strong"]), train.parse_args(["--preset", "strong-long"])
    assert long.epochs == 2 * strong.epochs and long.arch == strong.arch and long.augment
    # the same last-epoch learning rate, reached over twice the epochs
    assert long.lr_decay ** long.epochs == pytest.approx(strong.lr_decay ** strong.epochs)
    assert train.parse_args(["--preset", "strong-long", "--lr_decay", "0.8"]).lr_decay == 0.8


def test_every_training_and_search_flag_is_explained():
    """--help says what each flag does, in words, not only its default."""
    import argparse
    import dataclasses

    from competition.cli import parse_search_config, parse_train_config
    from competition.config import SearchConfig, TrainConfig

    for cls in (TrainConfig, SearchConfig):  # the help sits on the field it explains
        assert all(len(f.metadata["help"].split()) >= 2 for f in dataclasses.fields(cls)), cls
    result = subprocess.run([sys.executable, "-m", "competition.train", "--help"], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    text = " ".join(result.stdout.split())
    assert "--batch_size BATCH_SIZE images per training step (default: 32)" in text
    assert "--ema EMA keep a moving average of the weights" in text
    for parse in (parse_train_config, parse_search_config):
        parser = argparse.ArgumentParser()
        parse(parser, [])
        assert [a.option_strings[0] for a in parser._actions if a.help.startswith("(default")] == []


def test_architecture_names_are_the_models_that_exist():
    from competition.config import ARCH_NAMES
    from competition.model.designs import ARCHITECTURES

    assert tuple(ARCHITECTURES) == ARCH_NAMES


@pytest.mark.parametrize("flags, message", [
    (["--arch", "resnett"], "--arch 'resnett': choose from report, strong, resnet"),
    (["--hparams", "models/search-nowhere/best_hyperparameters.json"], "no such file (run `make tune` first)"),
])
def test_a_cv_with_a_bad_flag_writes_nothing_and_the_corrected_command_runs(flags, message, demo_dir, tmp_path,
                                                                             capsys):
    from competition import cv

    quick = ["--data_dir", str(demo_dir), "--models_dir", str(tmp_path), "--k", "2", "--folds", "1", "--epochs", "1",
             "--name", "c"]
    with pytest.raises(SystemExit) as exit_:
        cv.main([*quick, *flags])
    assert exit_.value.code == 2
    usage_error_line(capsys.readouterr().err, message)
    assert list(tmp_path.iterdir()) == []
    if "--arch" in flags:  # nothing recorded, so the corrected command is not refused as "other settings"
        assert cv.main([*quick, "--arch", "resnet"]) == 0


@pytest.mark.parametrize("settings, message", [
    (dict(schedule="onecycle"), "--schedule onecycle sets every step's rate"),
    (dict(ema=0.999), "--ema needs --no-early_stopping"),
    (dict(arch="report", width=0.5), "--width and --dropout are for every --arch but report"),
    (dict(arch="vit"), "--arch 'vit': choose from report"),
    (dict(epochs=0), "--epochs and --batch_size must be at least 1"),
    (dict(shear_deg=90), "--shear_deg 90: degrees in [0, 90)"),
    (dict(grid_px=-1), "--grid_px -1: pixels in [0, 4)"),
    (dict(plain_epochs=1, epochs=5), "--plain_epochs needs --augment"),
    (dict(plain_epochs=5, epochs=5, augment=True), "must leave at least one warped epoch"),
])
def test_a_train_config_checks_its_own_settings_however_it_is_made(settings, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainConfig(**settings)
    with pytest.raises(ConfigError, match=re.escape(message)):  # a recipe's members are made by replace
        dataclasses.replace(TrainConfig(), **settings)


def test_every_preset_holds_together():
    for name, settings in PRESETS.items():
        assert TrainConfig(**settings).problems() == [], name
