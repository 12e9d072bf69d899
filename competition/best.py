"""From the data to a checked submission.csv in one command: train a named recipe (make best).

    python -m competition.best --recipe fast                       # one strong model, every row
    python -m competition.best --recipe best-single                # the best single model, TTA x4
    python -m competition.best --recipe best-ensemble --budget_minutes 60
    python -m competition.best --list                              # the recipes and their estimates

Before training it says what it will do and how long that should take here: each member's
configuration trains a few dozen batches to measure this machine's images/s. Members train into
models/recipe-<name>/member-<i>/ (ordinary run folders), several at once where there are cores for
them, each with its share; a member that exists is reused, so an interrupted recipe continues where
it was. --budget_minutes caps an ensemble: it trains only the members that fit, by the measured
estimate, and says so. Then the members' probabilities (with the recipe's test-time augmentation)
are averaged into models/recipe-<name>/submission.csv, checked against test.csv, and metrics.json
records the recipe, its members and what its cross-validation measured, by which `make submit`
ranks it.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from competition import hardware, speed, splits, training
from competition.config import COMPETITION_TRAIN_ROWS, DATA_DIR, MODELS_DIR, TrainConfig
from competition.data import load_test, load_train
from competition.errors import add_debug_flag, exit_status
from competition.files import read_json
from competition.io import write_json
from competition.metrics import classification_metrics
from competition.predict import member_probabilities
from competition.recipes import RECIPES, Recipe, members, minutes, within_budget
from competition.runs import (
    ENSEMBLE_FILE,
    METRICS_FILE,
    exclusive,
    open_resumable,
    resolve_run,
)
from competition.submission_format import SUBMISSION_FILE, write_submission

SETTINGS_FILE = "recipe_config.json"


def folder_of(recipe: Recipe, models_dir: str | Path) -> Path:
    return Path(models_dir) / f"recipe-{recipe.name}"


def default_jobs(count: int, machine: hardware.Hardware) -> int:
    """Members at once: one a core at most. On 2 cores two 1-thread trainings do more images/s
    together than one 2-thread training (docs/speed.md)."""
    return max(1, min(count, machine.cores))


def trained(folder: Path, name: str) -> bool:
    try:
        resolve_run(folder, name=name)
    except FileNotFoundError:
        return False
    return True


def plan(chosen: list, folder: Path, digits, budget_minutes: float,
         machine: hardware.Hardware) -> tuple[list, list[float]]:
    """The members to train now (those not trained yet, within the budget) and each one's minutes,
    from a short measured calibration of each distinct configuration."""
    onehot = training.onehot(digits.labels)
    rates: dict[str, float] = {}
    estimated = []
    for member in chosen:
        if trained(folder, member.name):
            estimated.append(0.0)
            continue
        if member.preset not in rates:
            start = time.perf_counter()
            rates[member.preset] = speed.training_rate(training.settled(member.cfg, machine)[0], digits.images, onehot)
            print(f"best: calibrated {member.preset}: {rates[member.preset]:,.0f} images/s here "
                  f"({time.perf_counter() - start:.0f}s)", flush=True)
        estimated.append(minutes(member.cfg, len(digits), rates[member.preset]))
    keep = within_budget(estimated, budget_minutes)
    return chosen[:keep], estimated[:keep]


def run(recipe: Recipe, data_dir: str, models_dir: str, budget_minutes: float = 0.0, jobs: int = 0,
        epochs: int | None = None, fresh: bool = False) -> Path:
    folder = folder_of(recipe, models_dir)
    digits, test = load_train(data_dir), load_test(data_dir)  # both checked before anything trains
    machine = hardware.detect()
    threads = hardware.apply_threads(machine.cores)  # before the calibration's first op
    everyone = members(recipe, data_dir, str(folder), epochs)
    precision, why = hardware.choose_precision(everyone[0].cfg.precision, machine)
    rows = f"all {len(digits):,} rows" if recipe.val_size == 0 else f"a {1 - recipe.val_size:.0%} split"
    print(f"best: recipe {recipe.name}: {recipe.summary}; {len(everyone)} model{'s' * (len(everyone) > 1)} on {rows} "
          f"of {digits.source}" + (f", TTA x{recipe.tta}" if recipe.tta else ""), flush=True)
    print(f"best: machine: {hardware.describe(machine)}; precision {precision} ({why}), {threads} threads", flush=True)
    open_resumable(folder, SETTINGS_FILE, {"recipe": recipe.name, "members": [
        {key: value for key, value in training.recorded_settings(m.cfg, machine).items() if key in training.IDENTITY}
        for m in everyone]}, ("recipe", "members"), fresh)

    chosen, estimated = plan(everyone, folder, digits, budget_minutes, machine)
    if budget_minutes and estimated and estimated[0] > budget_minutes:
        raise ValueError(f"recipe {recipe.name}'s first model needs about {_minutes(estimated[0])} here, over "
                         f"--budget_minutes {budget_minutes:g}; raise the budget or pick a faster recipe "
                         "(python -m competition.best --list)")
    workers = jobs or default_jobs(sum(1 for e in estimated if e), machine)
    for member, each in zip(chosen, estimated):
        print(f"best: {member.name}: {member.preset} seed {member.cfg.seed}, {member.cfg.epochs} epochs, "
              + (f"about {_minutes(each)}" if each else "trained already"), flush=True)
    total = sum(estimated)
    side_by_side = " (the sum of their times: side by side they may end sooner, docs/speed.md)" if workers > 1 else ""
    print(f"best: about {_minutes(total)} of training, {workers} at a time{side_by_side}", flush=True)
    if len(chosen) < len(everyone):
        print(f"best: --budget_minutes {budget_minutes:g} fits {len(chosen)} of the recipe's {len(everyone)} models: "
              "the ensemble stops there (run again with a larger budget to add the rest)", flush=True)

    start = time.perf_counter()
    jobs_to_run = [training.Job(m.cfg, folder, m.name, what=f" ({m.preset}, seed {m.cfg.seed})") for m in chosen]
    runs = training.run_all(jobs_to_run, workers)
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
        print(f"{recipe.name:<14} {estimate.accuracy:.5f}  {models_}" + (f", TTA x{recipe.tta}" if recipe.tta else "")
              + f": {recipe.summary}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="fast", choices=sorted(RECIPES),
                        help="what to train (default: %(default)s; --list describes each)")
    parser.add_argument("--list", action="store_true", help="list the recipes and their expected accuracy, then stop")
    parser.add_argument("--data_dir", default=str(DATA_DIR),
                        help="folder with train.csv and test.csv (default: %(default)s)")
    parser.add_argument("--models_dir", default=str(MODELS_DIR),
                        help="where models/recipe-<name>/ goes (default: %(default)s)")
    parser.add_argument("--budget_minutes", type=float, default=0.0,
                        help="train only the members that fit this many minutes by the measured estimate (default: 0, "
                             "no limit)")
    parser.add_argument("--jobs", type=int, default=0,
                        help="members trained at once, each in its own process (default: 0, one per core, at most "
                             "one per member)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="train each member this many epochs instead of its preset's, to try the command out "
                             "(the recipe's estimate then does not apply)")
    parser.add_argument("--fresh", action="store_true", help="delete this recipe's models and start over")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.list:
        print_recipes()
        return 0
    if args.budget_minutes < 0 or args.jobs < 0 or (args.epochs is not None and args.epochs < 1):
        parser.error("--budget_minutes and --jobs must be 0 or more, --epochs at least 1")
    recipe = RECIPES[args.recipe]

    def work():  # two of the same recipe at once would train its members twice
        with exclusive(folder_of(recipe, args.models_dir), "a recipe"):
            return run(recipe, args.data_dir, args.models_dir, args.budget_minutes, args.jobs, args.epochs, args.fresh)

    return exit_status(work, args.debug, interrupted="finished members are kept: the same command continues")


if __name__ == "__main__":
    sys.exit(main())
