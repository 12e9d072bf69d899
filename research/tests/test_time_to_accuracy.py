"""The time-to-accuracy curve: a CV folder's point, its FLOPs counted from its design."""

import json

import pytest

from competition.config import PRESETS, TrainConfig
from competition.model import designs
from competition.training import speed
from research import time_to_accuracy


def write_cv(folder, settings: dict, accuracies: list[float]):
    folder.mkdir()
    cfg = TrainConfig(**settings).to_dict()
    folds = [{"fold": i + 1, "n": 8400, "runs": [f"r{i}"], "train_seconds": [120.0 + i],
              "train_images_per_second": [1400.0], "accuracy": [a]} for i, a in enumerate(accuracies)]
    (folder / "cv.json").write_text(json.dumps({"k": 5, "cv_seed": 0, "config": cfg, "folds": folds}))


def test_a_cv_folder_becomes_a_point_and_the_curve_is_drawn(tmp_path, capsys):
    short = {**PRESETS["strong-short"]}
    write_cv(tmp_path / "cv-short", short, [0.9940, 0.9936])
    write_cv(tmp_path / "cv-old", PRESETS["strong"], [0.9952, 0.9952, 0.9950, 0.9955, 0.9953])
    png = tmp_path / "curve.png"
    assert time_to_accuracy.main([str(tmp_path / "cv-short"), str(tmp_path / "cv-old"), "--out", str(png),
                                  "--json", str(tmp_path / "curve.json")]) == 0
    points = json.loads((tmp_path / "curve.json").read_text())["points"]
    assert [p["name"] for p in points] == ["old", "short"]  # best first
    flops = 6 * 33_600 * speed.training_flops(designs.for_config(TrainConfig(**short))) / 1e12
    assert points[1]["tflop"] == pytest.approx(flops) and points[1]["folds"] == 2
    assert points[1]["accuracy"] == pytest.approx(0.9938) and points[1]["minutes"] == pytest.approx(120.5 / 60)
    assert png.stat().st_size > 10_000 and "(2 of 5 folds)" in capsys.readouterr().out


def test_a_folder_without_a_cv_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        time_to_accuracy.main([str(tmp_path)])
    assert exit_.value.code == 2 and "no cv.json" in capsys.readouterr().err
