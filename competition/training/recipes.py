"""Named recipes (competition/config.py's RECIPES), trained from the data to a checked submission.csv.

A recipe is a list of members (a preset and how many seeds of it), the rows they train on, the
test-time augmentation of its submission, and what its cross-validation measured.
`train_recipe(recipe, ...)` is `make best`, in two steps: `plan_recipe` measures what the plan needs
here (which members exist, a short calibration of each member's configuration) and makes the plan
(planning.py: members, precision, threads, processes or cluster, minutes, FLOPs), which is printed;
`run_plan` trains the missing members into models/recipe-<name>/member-<i>/ (ordinary run
folders, several at once where there are cores for them), then `finish` averages
their probabilities into a checked submission.csv and writes metrics.json with the recipe's
estimate. The figures behind the estimates: docs/experiments.md.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from common.digits_csv import SUBMISSION_FILE, write_submission
from common.writing import write_json
from competition.config import (
    COMPETITION_TRAIN_ROWS,
    RECIPES,
    Recipe,
    TrainConfig,
)
from competition.data import splits
from competition.data.digits import load_test, load_train
from competition.data.reading import read_json
from competition.runs.choosing import newest_named
from competition.runs.layout import ENSEMBLE_FILE, METRICS_FILE
from competition.runs.resume import open_resumable, recorded
from competition.scoring.metrics import classification_metrics
from competition.scoring.probabilities import member_probabilities
from competition import startup
from competition.training import hardware, parallel, speed, trainer
from competition.training.planning import (
    Member,
    NodeSpeed,
    Plan,
    make_plan,
    members,
    overhead_minutes,
    recipe_flops,
)


SETTINGS_FILE = "recipe_config.json"


def folder_of(recipe: Recipe, models_dir: str | Path) -> Path:
    return Path(models_dir) / f"recipe-{recipe.name}"


def trained(folder: Path, name: str) -> bool:
    try:
        newest_named(folder, name)
    except FileNotFoundError:
        return False
    return True


def calibrate(everyone: list[Member], folder: Path, digits, setup: hardware.Setup, test_rows: int, tta: int
              ) -> tuple[set[str], dict[str, float], dict[str, float]]:
    """The facts a plan needs that only this machine can give: which members are trained already, and
    for each preset still to train its images/s here (a short measured calibration) and its minutes
    beyond training (overhead_minutes)."""
    onehot = trainer.onehot(digits.labels)
    started = time.perf_counter() - startup.STARTED
    done = {m.name for m in everyone if trained(folder, m.name)}
    configs: dict[str, TrainConfig] = {}
    for member in everyone:
        if member.name not in done:
            configs.setdefault(member.preset, member.cfg)
    rates: dict[str, float] = {}
    overheads: dict[str, float] = {}
    for preset, rate, seconds in speed.preset_rates(configs, setup.precision, digits.images, onehot):
        rates[preset], overheads[preset] = rate, overhead_minutes(started, seconds, test_rows, tta, rate)
        print(f"best: calibrated {preset}: {rate:,.0f} images/s here ({seconds:.0f}s)", flush=True)
    return done, rates, overheads


def plan_recipe(recipe: Recipe, data_dir: str, folder: Path, digits, test_rows: int, budget_minutes: float = 0.0, jobs: int = 0,
                epochs: int | None = None, fresh: bool = False, cluster: str | None = None,
                gpus: tuple[int, ...] = ()) -> Plan:
    """This machine's plan for recipe (planning.make_plan over what calibrate measured), its record
    opened: a recipe's models continue only as they began."""
    everyone = members(recipe, data_dir, str(folder), epochs)
    # The recipe's presets all ask for "auto".
    setup = dataclasses.replace(hardware.resolve(everyone[0].cfg.precision), gpus=tuple(gpus))
    setup = dataclasses.replace(setup, threads=hardware.apply_threads(setup.threads))  # before the calibration's first op
    before = None if fresh else (recorded(folder / SETTINGS_FILE, "members") or [{}])[0].get("precision")
    precision = hardware.work_precision(everyone[0].cfg.precision, setup, before, bool(cluster))
    open_resumable(folder, SETTINGS_FILE, {"recipe": recipe.name, "members": [
        {key: value for key, value in trainer.recorded_settings(m.cfg, precision).items() if key in trainer.IDENTITY}
        for m in everyone]}, ("recipe", "members"), fresh)
    done, rates, overheads = calibrate(everyone, folder, digits, setup, test_rows, recipe.tta)
    node = calibrate_node(cluster, [m for m in everyone if m.name not in done], digits) if cluster else None
    return make_plan(recipe, everyone, done, rates, overheads, setup, precision, len(digits), budget_minutes, jobs,
                     cluster, node)


def calibrate_node(cluster: str, to_train: list[Member], digits) -> NodeSpeed | None:
    """The same calibration on one of the cluster's nodes, as a member would train there (None: all trained)."""
    if not to_train:
        return None
    from competition.training.cluster import models as on_cluster  # Ray: only where a cluster is asked for

    configs = {m.preset: m.cfg for m in reversed(to_train)}  # the first member's cfg per preset
    node = on_cluster.measure_node(cluster, configs, digits, len(to_train))
    for preset, rate in node.rates.items():
        print(f"best: calibrated {preset} on the cluster's node {node.node}: {rate:,.0f} images/s there "
              f"({node.precision})", flush=True)
    return node


def train_recipe(recipe: Recipe, data_dir: str, models_dir: str, budget_minutes: float = 0.0, jobs: int = 0,
        epochs: int | None = None, fresh: bool = False, cluster: str | None = None, gpus: tuple[int, ...] = (),
        elsewhere: str | None = None) -> Path:
    """`make best`: the recipe planned, the plan printed (with `elsewhere`, a line on its time on
    other machines), then run. gpus: the GPUs' indices to spread the members over, one per GPU at a
    time (Kaggle's two T4s)."""
    folder = folder_of(recipe, models_dir)
    digits, test = load_train(data_dir), load_test(data_dir)  # both checked before anything trains
    rows = f"all {len(digits):,} rows" if recipe.val_size == 0 else f"a {1 - recipe.val_size:.0%} split"
    count = sum(seeds for _, seeds in recipe.members)
    print(f"best: recipe {recipe.name}: {recipe.summary}; {count} model{'s' * (count > 1)} on {rows} "
          f"of {digits.source}" + (f", TTA x{recipe.tta}" if recipe.tta else ""), flush=True)
    plan = plan_recipe(recipe, data_dir, folder, digits, len(test), budget_minutes, jobs, epochs, fresh, cluster, gpus)
    setup = plan.setup
    print(f"best: machine: {hardware.describe_machine(setup.machine)}; precision {setup.precision} ({setup.reason}), "
          f"{setup.threads} threads", flush=True)
    for line in plan.lines():
        print(f"best: {line}", flush=True)
    if elsewhere:
        print(f"best: {elsewhere}", flush=True)
    return run_plan(plan, folder, digits, test, epochs)


def run_plan(plan: Plan, folder: Path, digits, test, epochs: int | None = None) -> Path:
    """The plan's members trained (those trained already reused), then finished into the submission."""
    start = time.perf_counter()
    each = [dataclasses.replace(p.member.cfg, threads=p.member.cfg.threads or plan.threads) for p in plan.members]
    jobs_to_run = [parallel.Job(cfg, folder, p.member.name, what=f" ({p.member.preset}, seed {cfg.seed})")
                   for p, cfg in zip(plan.members, each)]
    runs = parallel.train_all(jobs_to_run, plan.workers, plan.setup, plan.cluster, digits)
    write_json(folder / ENSEMBLE_FILE, {"members": [r.name for r in runs], "recipe": plan.recipe.name})
    # The recipes' estimates are cross-validations of the competition's train.csv, trained as the recipe says.
    estimate = plan.recipe.estimate(len(runs)) if not epochs and len(digits) == COMPETITION_TRAIN_ROWS else None
    return finish(plan.recipe, folder, runs, digits, test, plan.members[0].member.cfg, estimate,
                  time.perf_counter() - start)


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


def print_recipes() -> None:
    width = max(map(len, RECIPES))
    for recipe in RECIPES.values():
        estimate = recipe.estimate(sum(seeds for _, seeds in recipe.members))
        models_ = " + ".join(f"{seeds} x {preset}" if seeds > 1 else preset for preset, seeds in recipe.members)
        print(f"{recipe.name:<{width}} {estimate.accuracy:.5f}  {recipe_flops(recipe) / 1e12:5.0f} TFLOP  {models_}"
              + (f", TTA x{recipe.tta}" if recipe.tta else "") + f": {recipe.summary}")
