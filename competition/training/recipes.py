"""Named recipes (competition/config.py's RECIPES), trained from the data to a checked submission.csv.

A recipe is a list of members (a preset and how many seeds of it), the rows they train on, the
test-time augmentation of its submission, and what its cross-validation measured.
`train_recipe(recipe, ...)` is `make best`: it plans (a short measured calibration of each member's
configuration, the budget), trains the missing members into models/recipe-<name>/member-<i>/
(ordinary run folders, several at once where there are cores for them), then `finish` averages
their probabilities into a checked submission.csv and writes metrics.json with the recipe's
estimate. The figures behind the estimates: docs/experiments.md.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from common.digits_csv import SUBMISSION_FILE, write_submission
from common.errors import ConfigError
from common.writing import write_json
from competition.config import (
    COMPETITION_TRAIN_ROWS,
    PRESETS,
    RECIPES,
    Recipe,
    TrainConfig,
)
from competition.data import splits
from competition.data.digits import load_test, load_train
from competition.data.reading import read_json
from competition.model import designs
from competition.runs.choosing import newest_named
from competition.runs.layout import ENSEMBLE_FILE, METRICS_FILE
from competition.runs.resume import open_resumable, recorded
from competition.scoring.metrics import classification_metrics
from competition.scoring.probabilities import member_probabilities
from competition import startup
from competition.training import hardware, parallel, speed, trainer


@dataclasses.dataclass(frozen=True)
class Member:
    name: str  # its run folder's name in the recipe folder: member-<i>
    preset: str
    cfg: TrainConfig


def members(recipe: Recipe, data_dir: str, models_dir: str, epochs: int | None = None) -> list[Member]:
    """Each model of recipe, configured: its preset, seed 0, 1, ... per preset, the recipe's rows.
    epochs replaces the presets' (a quick trial; the recipe's estimate then no longer applies)."""
    found = []
    for preset, seeds in recipe.members:
        for seed in range(seeds):
            name = f"member-{len(found) + 1}"
            settings = {**PRESETS[preset], **({"epochs": epochs} if epochs else {})}
            cfg = TrainConfig(**settings, name=name, data_dir=data_dir, models_dir=models_dir, seed=seed,
                              val_size=recipe.val_size)
            found.append(Member(name, preset, cfg))
    return found


def minutes(cfg: TrainConfig, rows: int, images_per_second: float) -> float:
    """Training minutes of one member at a measured rate (early stopping can only shorten it)."""
    return cfg.epochs * rows * (1 - cfg.val_size) / images_per_second / 60


def overhead_minutes(start_seconds: float, calibration_seconds: float, test_rows: int, tta: int,
                     images_per_second: float) -> float:
    """What a member costs beyond its epochs, from what this command measured: a process's start
    (TensorFlow's import and the data, as this one took), its first steps (tracing and the input
    pipeline's warm-up, as long as the calibration took) and its predictions of test.csv (a forward
    pass is about a third of a training step's FLOPs)."""
    predict = test_rows * (1 + tta) / (3 * images_per_second)
    return (start_seconds + calibration_seconds + predict) / 60


def training_flops(cfgs: list[TrainConfig], rows: int = COMPETITION_TRAIN_ROWS) -> float:
    """FLOPs that training models of these configs takes on `rows` rows of train.csv
    (speed.training_flops an image, times the images of every epoch): what a machine's speed divides."""
    return sum(cfg.epochs * rows * (1 - cfg.val_size) * speed.training_flops(designs.for_config(cfg)) for cfg in cfgs)


def recipe_flops(recipe: Recipe, rows: int = COMPETITION_TRAIN_ROWS) -> float:
    return training_flops([member.cfg for member in members(recipe, "", "")], rows)


def within_budget(planned: list[float], budget_minutes: float) -> int:
    """How many members, in order, fit budget_minutes if trained one after another (0 budget: all).
    At least one: a recipe always has its first model."""
    if budget_minutes <= 0:
        return len(planned)
    total, count = 0.0, 0
    for minutes_each in planned:
        total += minutes_each
        if total > budget_minutes and count:
            break
        count += 1
    return count


SETTINGS_FILE = "recipe_config.json"


def folder_of(recipe: Recipe, models_dir: str | Path) -> Path:
    return Path(models_dir) / f"recipe-{recipe.name}"


def default_jobs(count: int, machine: hardware.Hardware) -> int:
    """Members at once: one a core at most. On 2 cores two 1-thread trainings do more images/s
    together than one 2-thread training (docs/speed.md)."""
    return max(1, min(count, machine.cores))


def gpu_plan(workers: int, gpus: tuple[int, ...]) -> str:
    """How the models share the GPUs, in words."""
    listed = ", ".join(map(str, gpus))
    if workers > 1 and len(gpus) > 1:
        return f"{min(workers, len(gpus))} at a time, one per GPU (GPUs {listed}, one process each)"
    idle = f" (GPUs {listed}: the other{'s' * (len(gpus) > 2)} idle)" if len(gpus) > 1 else ""
    return f"one at a time, on one of the {len(gpus)} GPU{'s' * (len(gpus) > 1)}{idle}"


def trained(folder: Path, name: str) -> bool:
    try:
        newest_named(folder, name)
    except FileNotFoundError:
        return False
    return True


def plan(chosen: list, folder: Path, digits, budget_minutes: float, setup: hardware.Setup,
         test_rows: int = 0, tta: int = 0) -> tuple[list, list[float], list[float]]:
    """The members to train now (those not trained yet, within the budget), each one's training
    minutes, from a short measured calibration of each distinct configuration, and each one's
    minutes beyond training (overhead_minutes)."""
    onehot = trainer.onehot(digits.labels)
    started = time.perf_counter() - startup.STARTED
    rates: dict[str, float] = {}
    calibrations: dict[str, float] = {}
    estimated, overheads = [], []
    for member in chosen:
        if trained(folder, member.name):
            estimated.append(0.0)
            overheads.append(0.0)
            continue
        if member.preset not in rates:
            start = time.perf_counter()
            rates[member.preset] = speed.training_rate(dataclasses.replace(member.cfg, precision=setup.precision),
                                                        digits.images, onehot)
            calibrations[member.preset] = time.perf_counter() - start
            print(f"best: calibrated {member.preset}: {rates[member.preset]:,.0f} images/s here "
                  f"({calibrations[member.preset]:.0f}s)", flush=True)
        estimated.append(minutes(member.cfg, len(digits), rates[member.preset]))
        overheads.append(overhead_minutes(started, calibrations[member.preset], test_rows, tta, rates[member.preset]))
    keep = within_budget([e + o for e, o in zip(estimated, overheads)], budget_minutes)
    return chosen[:keep], estimated[:keep], overheads[:keep]


def train_recipe(recipe: Recipe, data_dir: str, models_dir: str, budget_minutes: float = 0.0, jobs: int = 0,
        epochs: int | None = None, fresh: bool = False, cluster: str | None = None, gpus: tuple[int, ...] = ()) -> Path:
    """gpus: the GPUs' indices to spread the members over, one per GPU at a time (Kaggle's two T4s)."""
    folder = folder_of(recipe, models_dir)
    digits, test = load_train(data_dir), load_test(data_dir)  # both checked before anything trains
    everyone = members(recipe, data_dir, str(folder), epochs)
    # The recipe's presets all ask for "auto".
    setup = dataclasses.replace(hardware.resolve(everyone[0].cfg.precision), gpus=tuple(gpus))
    threads = hardware.apply_threads(setup.threads)  # before the calibration's first op
    rows = f"all {len(digits):,} rows" if recipe.val_size == 0 else f"a {1 - recipe.val_size:.0%} split"
    print(f"best: recipe {recipe.name}: {recipe.summary}; {len(everyone)} model{'s' * (len(everyone) > 1)} on {rows} "
          f"of {digits.source}" + (f", TTA x{recipe.tta}" if recipe.tta else ""), flush=True)
    print(f"best: machine: {hardware.describe_machine(setup.machine)}; precision {setup.precision} ({setup.reason}), "
          f"{threads} threads", flush=True)
    before = None if fresh else (recorded(folder / SETTINGS_FILE, "members") or [{}])[0].get("precision")
    precision = hardware.work_precision(everyone[0].cfg.precision, setup, before, bool(cluster))
    everyone = [dataclasses.replace(m, cfg=dataclasses.replace(m.cfg, precision=precision)) for m in everyone]
    open_resumable(folder, SETTINGS_FILE, {"recipe": recipe.name, "members": [
        {key: value for key, value in trainer.recorded_settings(m.cfg, precision).items() if key in trainer.IDENTITY}
        for m in everyone]}, ("recipe", "members"), fresh)

    chosen, estimated, overheads = plan(everyone, folder, digits, budget_minutes, setup, len(test), recipe.tta)
    if budget_minutes and estimated and estimated[0] > budget_minutes:
        raise ConfigError(f"recipe {recipe.name}'s first model needs about {_minutes(estimated[0])} here, over "
                         f"--budget_minutes {budget_minutes:g}; raise the budget or pick a faster recipe "
                         "(python -m competition.best --list)")
    to_train = sum(1 for e in estimated if e)
    workers = jobs or (max(1, min(to_train, len(gpus))) if gpus else default_jobs(to_train, setup.machine))
    for member, each in zip(chosen, estimated):
        print(f"best: {member.name}: {member.preset} seed {member.cfg.seed}, {member.cfg.epochs} epochs, "
              + (f"about {_minutes(each)}" if each else "trained already"), flush=True)
    total = sum(estimated)
    flops = f", {training_flops([m.cfg for m in chosen], len(digits)) / 1e12:,.1f} TFLOP"
    extra = f" + {_minutes(sum(overheads))} of start-up and predictions"
    if cluster:
        print(f"best: about {_minutes(total)} of training{flops}{extra} at this machine's speed, shared among the "
              f"cluster's nodes at {cluster}", flush=True)
    elif gpus:
        print(f"best: about {_minutes(total)} of training{flops}{extra} at the calibration's speed, "
              + gpu_plan(workers, gpus), flush=True)
    else:
        side_by_side = " (the sum of their times: side by side they may end sooner, docs/speed.md)" if workers > 1 else ""
        print(f"best: about {_minutes(total)} of training{flops}{extra}, {workers} at a time{side_by_side}", flush=True)
    if len(chosen) < len(everyone):
        print(f"best: --budget_minutes {budget_minutes:g} fits {len(chosen)} of the recipe's {len(everyone)} models: "
              "the ensemble stops there (run again with a larger budget to add the rest)", flush=True)

    start = time.perf_counter()
    jobs_to_run = [parallel.Job(m.cfg, folder, m.name, what=f" ({m.preset}, seed {m.cfg.seed})") for m in chosen]
    runs = parallel.train_all(jobs_to_run, workers, setup, cluster, digits)
    write_json(folder / ENSEMBLE_FILE, {"members": [r.name for r in runs], "recipe": recipe.name})
    # The recipes' estimates are cross-validations of the competition's train.csv, trained as the recipe says.
    estimate = recipe.estimate(len(runs)) if not epochs and len(digits) == COMPETITION_TRAIN_ROWS else None
    return finish(recipe, folder, runs, digits, test, chosen[0].cfg, estimate, time.perf_counter() - start)


def finish(recipe: Recipe, folder: Path, runs: list[Path], digits, test, split: TrainConfig, estimate,
           seconds: float) -> Path:
    """The submission of the trained members, checked, and the folder's metrics.json."""
    labels = member_probabilities(folder, test.images, recipe.tta).mean(axis=0).argmax(axis=1)
    target = folder / SUBMISSION_FILE
    write_submission(labels, target, len(test))
    validation = None
    if recipe.val_size:  # the members share their config's split: score their ensemble on it
        _, x_val, _, y_val = splits.split(digits, split)
        validation = classification_metrics(y_val, member_probabilities(folder, x_val).mean(axis=0))
    trained = [read_json(r / METRICS_FILE, ("train_seconds",)) for r in runs]
    write_json(folder / METRICS_FILE, {
        "recipe": recipe.name, "members": [r.name for r in runs], "tta": recipe.tta,
        "demo_data": digits.demo, "validation": validation,
        "estimate": dataclasses.asdict(estimate) if estimate else None,
        "train_minutes": round(sum(m["train_seconds"] for m in trained) / 60, 1),
        "wall_minutes": round(seconds / 60, 1)})
    counts = np.bincount(labels, minlength=10)
    print(f"best: {target} ({len(labels):,} rows, checked against test.csv) from {len(runs)} "
          f"model{'s' * (len(runs) > 1)}" + (f", TTA x{recipe.tta}" if recipe.tta else "")
          + f"; labels 0..9: {' '.join(map(str, counts))}")
    if validation:
        print(f"best: validation accuracy {validation['accuracy']:.5f} "
              f"({validation['errors']} errors in {validation['n']})")
    if estimate:
        spread = f" ± {estimate.std:.5f}" if estimate.std else ""
        print(f"best: expected accuracy about {estimate.accuracy:.5f}{spread} ({estimate.source})")
    elif digits.demo:
        print("best: DEMO data (scikit-learn digits): this submission is not for Kaggle")
    else:
        print(f"best: no expected accuracy: the recipe's CV is of the competition's {COMPETITION_TRAIN_ROWS:,} rows "
              "trained as the recipe says")
    print(f"best: send it with `make submit RUN={folder.name}` (plain `make submit` picks the best recorded score)")
    return target


def _minutes(value: float) -> str:
    return f"{value:.1f} min" if value < 10 else f"{value:.0f} min"


def print_recipes() -> None:
    for recipe in RECIPES.values():
        estimate = recipe.estimate(sum(seeds for _, seeds in recipe.members))
        models_ = " + ".join(f"{seeds} x {preset}" if seeds > 1 else preset for preset, seeds in recipe.members)
        print(f"{recipe.name:<14} {estimate.accuracy:.5f}  {recipe_flops(recipe) / 1e12:5.0f} TFLOP  {models_}"
              + (f", TTA x{recipe.tta}" if recipe.tta else "") + f": {recipe.summary}")
