"""Recipes: one command from the data to a checked submission, and the default run chosen by its score."""

import json
import signal
import subprocess
import sys

import pandas as pd
import pytest
from test_faults import ROOT, one_error_line, start, tmp_runs, wait_for

from competition import best
from competition.config import RECIPES, Estimate
from competition.runs.choosing import best_model, best_scored, model_by_id, newest, newest_model
from competition.runs.layout import is_run
from competition.training import speed


def recipe_folder_runs(folder):
    return sorted(p.name for p in folder.iterdir() if (p / "model.keras").is_file())


def test_fast_recipe_end_to_end_then_resumes(demo_dir, tmp_path, capsys):
    argv = ["--recipe", "fast", "--data_dir", str(demo_dir), "--models_dir", str(tmp_path), "--epochs", "1"]
    assert best.main(argv) == 0
    out = capsys.readouterr().out
    assert "best: recipe fast: one strong model three quarters wide" in out and "calibrated strong-fast:" in out
    assert "member-1: strong-fast seed 0, 1 epochs" in out and "about" in out
    folder = tmp_path / "recipe-fast"
    frame = pd.read_csv(folder / "submission.csv")
    assert list(frame.columns) == ["ImageId", "Label"] and frame["ImageId"].tolist() == list(range(1, 360))
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["recipe"] == "fast" and metrics["tta"] == 0 and metrics["demo_data"] is True
    assert metrics["estimate"] is None  # demo data, and 1 epoch: the recipe's CV does not describe it
    assert json.loads((folder / "ensemble.json").read_text())["members"] == recipe_folder_runs(folder)
    member = folder / recipe_folder_runs(folder)[0]
    assert json.loads((member / "config.json").read_text())["val_size"] == 0.0

    assert best.main(argv) == 0  # again: the member is reused, nothing trains
    out = capsys.readouterr().out
    assert "trained already" in out and "calibrated" not in out and len(recipe_folder_runs(folder)) == 1


# `python -m competition.best` as a shell runs it, with one recipe more: two of the report's small model
# (the recipes of config.py have one member, or three slow ones), and a fixed calibration (measuring
# takes a minute on a busy machine, and this test needs no estimate).
TWO_MEMBERS = """
import runpy, sys

from competition.config import RECIPES, Recipe
from competition.training import speed

RECIPES["two-small"] = Recipe("two-small", "two of the report's model", (("report", 2),), val_size=0.0, tta=0,
                              estimates={})
speed.training_rate = lambda cfg, images, onehot: 1000.0
sys.argv[0] = "competition.best"
runpy.run_module("competition.best", run_name="__main__", alter_sys=True)
"""


def member_runs(folder, name):
    """The finished runs of a member (not the hidden .tmp-<id> of one in progress)."""
    return sorted(p for p in folder.glob(f"*-{name}") if is_run(p)) if folder.is_dir() else []


def files_of(run):
    """Each file of a run, with what says it was never rewritten: its inode, its mtime and its bytes
    (less the predictions that scoring caches beside a model)."""
    return {p.relative_to(run): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in run.rglob("*")
            if p.is_file() and p.parent.name != "predictions"}


def test_a_recipe_killed_between_members_keeps_the_first_and_trains_only_the_second(demo_dir, tmp_path):
    """`make best` killed (SIGKILL) as soon as its first member's run folder is in place; the same
    command again reuses that folder untouched and trains only the member it lacked."""
    command = [sys.executable, "-c", TWO_MEMBERS, "--recipe", "two-small", "--data_dir", str(demo_dir),
               "--models_dir", str(tmp_path), "--epochs", "1", "--jobs", "1"]  # one member after the other
    folder = tmp_path / "recipe-two-small"
    log = tmp_path / "first.log"
    first = start(command, log)
    try:
        wait_for(first, lambda: member_runs(folder, "member-1"), log)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    (kept,) = member_runs(folder, "member-1")
    assert member_runs(folder, "member-2") == [], log.read_text()[-2000:]
    assert not (folder / "submission.csv").exists() and not (folder / "ensemble.json").exists()
    inode, before = kept.stat().st_ino, files_of(kept)

    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    out = again.stdout.splitlines()
    assert "best: member-1: report seed 0, 1 epochs, trained already" in out, again.stdout
    assert f"member-1: already trained, reusing {kept.name}" in out
    assert [line for line in out if ": training" in line] == ["member-2: training (report, seed 1)"], \
        "only the member the killed run had not finished"
    assert member_runs(folder, "member-1") == [kept] and kept.stat().st_ino == inode, "the same folder"
    assert files_of(kept) == before, "member-1's files as the killed run left them"
    (second,) = member_runs(folder, "member-2")
    assert json.loads((folder / "ensemble.json").read_text())["members"] == [kept.name, second.name]
    assert len(pd.read_csv(folder / "submission.csv")) == 359 and tmp_runs(folder) == []


def test_budget_stops_an_ensemble_early_and_says_so(demo_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(speed, "training_rate", lambda cfg, images, onehot: 100.0)  # 1,438 rows: 0.24 min an epoch
    argv = ["--recipe", "best-ensemble", "--data_dir", str(demo_dir), "--models_dir", str(tmp_path), "--epochs", "1"]
    assert best.main([*argv, "--budget_minutes", "0.1"]) == 2
    one_error_line(capsys.readouterr().err, "recipe best-ensemble's first model needs about 0.2 min here, over "
                   "--budget_minutes 0.1")
    assert best.main([*argv, "--budget_minutes", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "fits 1 of the recipe's 2 models: the ensemble stops there" in out
    # The whole recipe on Kaggle's GPUs, the rates' source said: each model at 1 epoch of 42,000 rows.
    assert ("best: on Kaggle's two Tesla T4s instead (make kaggle-best): 2 models of about " in out
            and "2 at a time, one per GPU" in out and "(a guess: not measured on Kaggle yet)" in out)
    folder = tmp_path / "recipe-best-ensemble"
    assert len(recipe_folder_runs(folder)) == 1 and len(json.loads((folder / "metrics.json").read_text())["members"]) == 1


def test_a_partial_ensemble_is_estimated_by_what_its_members_measured():
    recipe = RECIPES["best-ensemble-v1"]
    assert recipe.estimate(3).accuracy == 0.99638 and recipe.estimate(2) == recipe.estimate(1)
    assert RECIPES["best-ensemble"].estimate(2).accuracy == 0.99667
    assert all(isinstance(r.estimate(1), Estimate) for r in RECIPES.values())


def fake_run(folder, metrics=None, demo=False):
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(b"")
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps({"demo_data": demo, **metrics}))
    return folder


def test_the_default_run_is_the_best_scored_not_the_newest(tmp_path):
    fake_run(tmp_path / "20261201-000000-report-aug", {"validation": {"accuracy": 0.9919}})
    fake_run(tmp_path / "20261201-010000-demo", {"validation": {"accuracy": 0.999}}, demo=True)  # other data
    fake_run(tmp_path / "20261201-020000-strong", {"validation": None})  # every row trained: no score
    recipe = tmp_path / "recipe-best-single"
    member = fake_run(recipe / "20261201-030000-member-1", {"validation": None})
    (recipe / "ensemble.json").write_text(json.dumps({"members": [member.name]}))
    (recipe / "metrics.json").write_text(json.dumps({"estimate": {"accuracy": 0.99638, "std": 0.0004,
                                                                  "source": "5-fold CV"}}))
    cv = tmp_path / "cv-strong"
    cv.mkdir()
    (cv / "ensemble.json").write_text(json.dumps({"members": []}))
    (cv / "cv.json").write_text(json.dumps({"k": 5, "single": {"mean": 0.99524}}))
    broken = fake_run(tmp_path / "20261201-040000-broken")
    (broken / "metrics.json").write_text("{not json")

    chosen = best_scored(tmp_path)
    assert chosen.folder == recipe
    assert "picked recipe-best-single" in chosen.reason and "expected accuracy, 5-fold CV 0.99638" in chosen.reason
    assert chosen.line().startswith(f"run: {recipe} (picked") and chosen.line().endswith("RUN=<id> picks another)")
    assert best_model(tmp_path).folder == member  # its one model, to export or report
    assert model_by_id(tmp_path, "recipe-best-single").folder == member
    (recipe / "metrics.json").unlink()
    assert best_scored(tmp_path).folder == cv and "5-fold CV accuracy 0.99524" in best_scored(tmp_path).reason
    assert best_model(tmp_path).folder.name.endswith("report-aug")  # a CV is many models


def test_demo_runs_are_ranked_when_there_is_nothing_else(tmp_path):
    fake_run(tmp_path / "20261201-000000-demo", {"validation": {"accuracy": 0.95}}, demo=True)
    fake_run(tmp_path / "20261201-010000-demo", {"validation": {"accuracy": 0.97}}, demo=True)
    assert best_scored(tmp_path).folder.name == "20261201-010000-demo"


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_names_presets_that_exist(name):
    from competition.config import PRESETS

    assert all(preset in PRESETS for preset, _ in RECIPES[name].members)


def test_with_nothing_scored_the_newest_ensemble_is_taken(tmp_path):
    """A recipe trained with --epochs has no estimate: make submit still finds it, and says why."""
    import os

    for name, when in (("recipe-fast", 100), ("ensemble-old", 50)):
        member = fake_run(tmp_path / name / "20261201-000000-member-1", {"validation": None})
        (tmp_path / name / "ensemble.json").write_text(json.dumps({"members": [member.name]}))
        os.utime(tmp_path / name / "ensemble.json", (when, when))
    assert best_scored(tmp_path) is None
    chosen = newest(tmp_path)
    assert chosen.folder == tmp_path / "recipe-fast"
    assert "the newest finished ensemble; none has a recorded score" in chosen.reason
    assert newest_model(tmp_path).folder.parent == tmp_path / "recipe-fast"


def test_the_submission_message_names_the_estimate_of_a_model_of_every_row(tmp_path):
    from competition.submit import default_message

    run = fake_run(tmp_path / "20261201-000000-strong", {"validation": None})
    assert default_message(run) == run.name
    (run / "metrics.json").write_text(json.dumps({"validation": None, "estimate": {"accuracy": 0.99524}}))
    assert default_message(run) == f"{run.name} (CV estimate 0.99524)"


def test_the_fast_recipes_train_a_fraction_of_the_old_ones_flops():
    """On the configs themselves (FLOPs an image x images, counted from the designs): issue 29's bound,
    a quarter, on its 6-epoch recipe; `fast`, longer to stay above 0.995 in float32, under half."""
    from competition.config import PRESETS, TrainConfig
    from competition.model import designs
    from competition.training import planning

    old = RECIPES["fast-v1"]
    assert planning.recipe_flops(RECIPES["fast-short"]) <= planning.recipe_flops(old) / 4
    assert planning.recipe_flops(RECIPES["fast"]) <= planning.recipe_flops(old) / 2
    strong = TrainConfig(**PRESETS["strong"], val_size=0.0)
    by_hand = strong.epochs * 42_000 * speed.training_flops(designs.for_config(strong))
    assert planning.recipe_flops(old) == pytest.approx(by_hand) == pytest.approx(95.1e12, rel=1e-3)


def test_best_single_trains_at_most_half_of_the_old_ones_flops():
    from competition.training import planning

    old, new = RECIPES["best-single-v1"], RECIPES["best-single"]
    assert planning.recipe_flops(new) / planning.recipe_flops(old) <= 0.5 + 1e-9  # 25 epochs of 50: exactly half
    assert new.tta == old.tta == 4 and new.val_size == old.val_size == 0.0


def test_the_plan_counts_each_members_start_up_and_predictions_beside_its_epochs():
    from competition.training import planning

    # 12 s to start, 30 s of calibration, 28,000 test digits x (1 + TTA 4) forward at 3 x 500 images/s
    assert planning.overhead_minutes(12, 30, 28_000, 4, 500) == pytest.approx((12 + 30 + 140_000 / 1_500) / 60)
    assert planning.overhead_minutes(12, 30, 28_000, 0, 500) < planning.overhead_minutes(12, 30, 28_000, 4, 500)
