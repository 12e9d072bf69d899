"""The hyperparameter search behind `make tune`: keras-tuner over the report's space (model/search_space.py).

`search(cfg)` runs, resumes, serves as chief or works for a search in models/search-<name>/:
keras-tuner's state (trials/), search_config.json, results.csv and best_hyperparameters.json,
rewritten after every trial by the SearchMonitor; hyperband_plan is keras-tuner's bracket
arithmetic, for the plan and progress lines. Distributed: keras-tuner's own mode. The process with
KERASTUNER_TUNER_ID=chief holds the oracle and serves it on KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT;
workers (any other id) ask it for trials (cluster/search.py starts such a cluster on this machine).
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import keras
import keras_tuner as kt

from common.errors import FileError
from common.writing import atomic_path, write_json, write_text
from competition.config import ADDED_OFF, SearchConfig
from competition.data.digits import load_train
from competition.data.reading import read_json
from competition.data.splits import split
from competition.model import search_space
from competition.model.augment import Warps, batches_per_epoch, make_dataset
from competition.runs.building import exclusive
from competition.runs.resume import check_same_settings
from competition.training import hardware
from competition.training.trainer import onehot

SEARCH_CONFIG_FILE = "search_config.json"
RESULTS_FILE = "results.csv"
BEST_FILE = "best_hyperparameters.json"
TRIAL_LOG_FILE = "trial_log.json"  # per trial: which tuner ran it, seconds
TUNER_STATE = ("trials/oracle.json", "trials/*.json", "trials/trial_*/trial.json")  # keras-tuner's own files
# Settings that define a search: a rerun must match them to resume it.
IDENTITY = ("tuner", "max_epochs", "factor", "iterations", "max_trials", "val_size", "split_seed", "seed",
            "batch_size", "learning_rate", "augment", "rotation_deg", "shift_frac", "zoom_frac", "shear_deg", "grid_px")


def search_dir(cfg: SearchConfig) -> Path:
    return Path(cfg.models_dir) / f"search-{cfg.name or cfg.tuner}"


def _save_json_whole(path, obj) -> str:
    """keras-tuner's utils.save_json, but written whole (a temporary file renamed over the old):
    its own writes in place, so a kill mid-write left oracle.json or a trial.json cut short, and
    the search could not be resumed."""
    if "://" in str(path):  # a cloud path: keras-tuner's own writer
        return _save_json_in_place(path, obj)
    text = json.dumps(obj)
    write_text(path, text)
    return text


_save_json_in_place = kt.src.utils.save_json


def patch_keras_tuner() -> None:
    """Make keras-tuner write its JSON whole: its oracle, trials and tuner all save through this one
    function. The tune command calls it at start-up; importing this module changes nothing."""
    kt.src.utils.save_json = _save_json_whole


def check_tuner_state(folder: Path) -> None:
    """FileError naming the first of keras-tuner's files in folder that cannot be read, instead of
    its traceback on resuming (a search killed mid-write before they were written whole)."""
    for pattern in TUNER_STATE:
        for path in sorted(folder.glob(pattern)):
            try:
                read_json(path)
            except FileError as err:
                raise FileError(f"{err}; the search cannot resume from it: pass --fresh to start over") from None


def hyperband_plan(max_epochs: int, factor: int, iterations: int = SearchConfig.iterations) -> tuple[int, int]:
    """(trials, epochs) a Hyperband search runs: keras-tuner's bracket arithmetic, summed."""
    brackets, epochs = 0, float(max_epochs)
    while epochs >= 1:
        epochs, brackets = epochs / factor, brackets + 1
    end_size = math.ceil(1 + math.log(max_epochs, factor))
    trials = total_epochs = 0
    for bracket in range(brackets):
        previous = 0
        for round_ in range(bracket + 1):
            size = math.ceil(end_size / (bracket + 1) * factor ** (bracket - round_))
            round_epochs = math.ceil(max_epochs / factor ** (bracket - round_))
            trials += size
            total_epochs += size * (round_epochs - previous)  # later rounds resume from a checkpoint
            previous = round_epochs
    return trials * iterations, total_epochs * iterations


def planned(cfg: SearchConfig) -> tuple[int, int]:
    if cfg.tuner == "hyperband":
        return hyperband_plan(cfg.max_epochs, cfg.factor, cfg.iterations)
    return cfg.max_trials, cfg.max_trials * cfg.max_epochs


def make_tuner(cfg: SearchConfig, folder: Path) -> kt.Tuner:
    hypermodel = functools.partial(search_space.build_model, learning_rate=cfg.learning_rate)
    common = dict(objective="val_loss", directory=str(folder), project_name="trials", overwrite=False,
                  seed=cfg.seed)
    if cfg.tuner == "hyperband":
        return kt.Hyperband(hypermodel, max_epochs=cfg.max_epochs, factor=cfg.factor,
                            hyperband_iterations=cfg.iterations, **common)
    if cfg.tuner == "random":
        return kt.RandomSearch(hypermodel, max_trials=cfg.max_trials, **common)
    return kt.BayesianOptimization(hypermodel, max_trials=cfg.max_trials, **common)


class SearchMonitor:
    """Watches the oracle (on the chief, or in a single process): the wall-clock budget, each trial's
    seconds, a progress line per trial, and the results files rewritten after every trial.

    It wraps the oracle's own create_trial/end_trial, which every trial passes through whether it
    runs in this process or on a remote worker.
    """

    def __init__(self, oracle, folder: Path, cfg: SearchConfig):
        self.oracle, self.folder, self.cfg = oracle, folder, cfg
        self.start = time.monotonic()
        self.started: dict[str, float] = {}
        log_path = folder / TRIAL_LOG_FILE
        self.trial_log = read_json(log_path) if log_path.is_file() else {}
        self.epochs_this_session = 0
        self.planned_trials, self.planned_epochs = planned(cfg)
        self._create, self._end = oracle.create_trial, oracle.end_trial
        oracle.create_trial, oracle.end_trial = self.create_trial, self.end_trial

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def over_budget(self) -> bool:
        return self.cfg.budget_minutes > 0 and self.elapsed() > 60 * self.cfg.budget_minutes

    def create_trial(self, tuner_id):
        if self.over_budget() and tuner_id not in self.oracle.ongoing_trials:
            # As the oracle does when it has no more trials: forget the tuner, tell it to stop.
            self.oracle.tuner_ids.discard(tuner_id)
            return kt.engine.trial.Trial(self.oracle.get_space(), trial_id="budget",
                                         status=kt.engine.trial.TrialStatus.STOPPED)
        trial = self._create(tuner_id)
        if trial.status == kt.engine.trial.TrialStatus.RUNNING:
            self.started.setdefault(trial.trial_id, time.monotonic())
            self.trial_log[trial.trial_id] = {"tuner": tuner_id}
        return trial

    def end_trial(self, trial):
        self._end(trial)
        seconds = time.monotonic() - self.started.pop(trial.trial_id, time.monotonic())
        self.trial_log.setdefault(trial.trial_id, {})["seconds"] = round(seconds, 1)
        self.epochs_this_session += trial_epochs(self.oracle.trials[trial.trial_id], self.cfg)
        write_json(self.folder / TRIAL_LOG_FILE, self.trial_log)
        rows = self.write_results()
        self.progress(trial.trial_id, rows)

    def write_results(self) -> list[dict]:
        rows = results_rows(self.oracle, self.cfg, self.trial_log)
        with atomic_path(self.folder / RESULTS_FILE) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["trial"])
            writer.writeheader()
            writer.writerows(rows)
        best = best_trial(self.oracle)
        if best is not None:
            write_json(self.folder / BEST_FILE, best_record(best, self.cfg))
        return rows

    def progress(self, trial_id: str, rows: list[dict]) -> None:
        done = len(rows)
        row = next(r for r in rows if r["trial"] == trial_id)
        best = min((r for r in rows if r["val_loss"] != ""), key=lambda r: r["val_loss"], default=None)
        epochs_done = sum(r["epochs"] for r in rows)
        left = ""
        if self.epochs_this_session:
            seconds = self.elapsed() / self.epochs_this_session * max(self.planned_epochs - epochs_done, 0)
            if self.cfg.budget_minutes > 0:
                seconds = min(seconds, max(60 * self.cfg.budget_minutes - self.elapsed(), 0))
            left = f", ~{seconds / 60:.0f}m left"
        best_text = f"best {best['val_loss']:.4f} (trial {best['trial']})" if best else "no result yet"
        loss = f"val_loss {row['val_loss']:.4f}" if row["val_loss"] != "" else f"status {row['status']}"
        print(f"trial {done} of about {self.planned_trials} (id {trial_id}) done: {loss}, {row['epochs']} epochs, "
              f"{row['seconds']}s; {best_text}; {self.elapsed() / 60:.0f}m elapsed{left}", flush=True)


def trial_epochs(trial, cfg: SearchConfig) -> int:
    values = trial.hyperparameters.values
    if "tuner/epochs" in values:
        return int(values["tuner/epochs"]) - int(values.get("tuner/initial_epoch", 0))
    return cfg.max_epochs


def results_rows(oracle, cfg: SearchConfig, trial_log: dict) -> list[dict]:
    rows = []
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        if trial.status in ("RUNNING", "IDLE"):
            continue
        values = trial.hyperparameters.values
        metrics = trial.metrics
        rows.append({
            "trial": trial_id,
            **{name: values.get(name) for name in search_space.SPACE},
            "val_loss": trial.score if trial.score is not None else "",
            "val_accuracy": metrics.get_last_value("val_accuracy") if metrics.exists("val_accuracy") else "",
            "epochs": trial_epochs(trial, cfg),
            "seconds": trial_log.get(trial_id, {}).get("seconds", ""),
            "tuner": trial_log.get(trial_id, {}).get("tuner", ""),
            "status": trial.status,
        })
    return rows


def best_trial(oracle):
    best = oracle.get_best_trials(1)
    return best[0] if best else None


def best_record(trial, cfg: SearchConfig) -> dict:
    values = {name: trial.hyperparameters.values[name] for name in search_space.SPACE}
    return {
        "hyperparameters": values,
        "model": {key: list(v) if isinstance(v, (list, tuple)) else v
                  for key, v in search_space.cnn_kwargs(values).items()},
        "val_loss": trial.score,
        "trial": trial.trial_id,
        "tuner": cfg.tuner,
    }


def search(cfg: SearchConfig, fresh: bool = False) -> Path:
    """Run (or resume, or serve as chief, or work for) a search; return its folder. The chief (or
    the single process) holds the folder: a second search of it at once is refused, as its oracle
    would overwrite the first one's."""
    role = os.environ.get("KERASTUNER_TUNER_ID", "")
    if "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in role:
        return _search(cfg, fresh, role, worker=True)
    with exclusive(search_dir(cfg), "a search"):
        return _search(cfg, fresh, role, worker=False)


def _search(cfg: SearchConfig, fresh: bool, role: str, worker: bool) -> Path:
    folder = search_dir(cfg)
    if fresh and not worker and folder.exists():
        shutil.rmtree(folder)
    resuming = False if worker else check_same_settings(folder / SEARCH_CONFIG_FILE, cfg.to_dict(), IDENTITY, ADDED_OFF)
    folder.mkdir(parents=True, exist_ok=True)
    if not worker:
        write_json(folder / SEARCH_CONFIG_FILE, cfg.to_dict())
        check_tuner_state(folder)

    hardware.apply_threads(hardware.choose_threads(cfg.threads, hardware.detect(gpu=False)))
    keras.utils.set_random_seed(cfg.seed)
    digits = load_train(cfg.data_dir)
    x_train, x_val, y_train, y_val = split(digits, cfg)
    train_ds = make_dataset(x_train, onehot(y_train), cfg.batch_size, cfg.seed, Warps.of(cfg))
    val = (x_val.astype("float32"), onehot(y_val))

    tuner = make_tuner(cfg, folder)
    trials, epochs = planned(cfg)
    kind = "DEMO data" if digits.demo else "competition data"
    print(f"search: {cfg.tuner} in {folder} ({role or 'single process'}), {len(x_train)} train / "
          f"{len(x_val)} val images [{kind}]; plan about {trials} trials, {epochs} epochs"
          + (f", budget {cfg.budget_minutes:g} min" if cfg.budget_minutes > 0 else ""), flush=True)
    monitor = None
    if not worker:
        done = sum(t.status == "COMPLETED" for t in tuner.oracle.trials.values())
        if resuming:
            print(f"search: resuming, {done} trials already completed", flush=True)
        monitor = SearchMonitor(tuner.oracle, folder, cfg)
    tuner.search(train_ds, steps_per_epoch=batches_per_epoch(len(x_train), cfg.batch_size), validation_data=val,
                 epochs=cfg.max_epochs, shuffle=False,
                 verbose=1 if sys.stdout.isatty() and not worker else 0)

    if monitor is not None:
        rows = monitor.write_results()
        completed = [r for r in rows if r["status"] == "COMPLETED"]
        print(f"search: {len(completed)} trials completed ({len(rows) - len(completed)} not) in "
              f"{monitor.elapsed() / 60:.1f} min this session"
              + ("; stopped by the time budget, run again to continue" if monitor.over_budget() else ""))
        best = best_trial(tuner.oracle)
        if best is not None:
            record = best_record(best, cfg)
            print(f"best: val_loss {record['val_loss']:.4f} (trial {record['trial']}): "
                  f"{json.dumps(record['hyperparameters'])}")
            print(f"wrote {folder / RESULTS_FILE} and {folder / BEST_FILE}")
    return folder
