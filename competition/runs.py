"""Run folders under models/: each run is self-describing and appears whole or not at all.

A run is built in a hidden `.tmp-<id>` folder and renamed to `<id>` once everything is in it, so a
crash or Ctrl-C never leaves a folder that looks like a finished run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from competition.data import DataError
from competition.io import write_json

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
FINGERPRINT_FILE = "data_fingerprint.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
LOG_FILE = "train.log"
ROWS_FILE = "rows.npz"  # the train.csv rows a run trained and validated on, when chosen for it (CV folds)
ENSEMBLE_FILE = "ensemble.json"  # marks an ensemble folder: members' run folders inside
TUNED_NAME = "tuned"  # runs of the searched model, preferred by default

log = logging.getLogger("competition")


def new_run_id(name: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"


@contextlib.contextmanager
def run_folder(models_dir: str | Path, run_id: str) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it becomes models_dir/run_id."""
    models = Path(models_dir)
    models.mkdir(parents=True, exist_ok=True)
    final = models / run_id
    if final.exists():
        raise FileExistsError(f"{final} exists already")
    tmp = models / f".tmp-{run_id}"
    tmp.mkdir()
    handler = logging.FileHandler(tmp / LOG_FILE)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    try:
        yield tmp
        log.removeHandler(handler)
        handler.close()
        os.replace(tmp, final)
    finally:
        log.removeHandler(handler)
        handler.close()
        shutil.rmtree(tmp, ignore_errors=True)  # a failed run leaves nothing behind


def is_run(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith(".") and (path / MODEL_FILE).is_file()


def is_ensemble(path: Path) -> bool:
    return path.is_dir() and (path / ENSEMBLE_FILE).is_file()


def resolve_run(models_dir: str | Path, run: str | None = None, name: str | None = None) -> Path:
    """A run folder: `run` (a path, or an id under models_dir); else the newest run called `name`;
    else the newest tuned run (`make train-best`); else the newest run."""
    models = Path(models_dir)
    if run:
        for candidate in (Path(run), models / run):
            if is_run(candidate) or is_ensemble(candidate):
                return candidate
        raise FileNotFoundError(f"no run {run!r}: expected a folder with {MODEL_FILE} or {ENSEMBLE_FILE}, "
                                f"as a path or under {models}")
    runs = sorted(p for p in models.iterdir() if is_run(p)) if models.is_dir() else []
    if name:
        runs = [p for p in runs if p.name.endswith(f"-{name}")]
    if not runs:
        what = f"run named {name!r}" if name else "trained run"
        raise FileNotFoundError(f"no {what} in {models}: run `make train` (or `make demo`) first")
    tuned = [p for p in runs if p.name.endswith(f"-{TUNED_NAME}")]
    return (tuned or runs)[-1]  # ids start with a timestamp, so the last is the newest


def check_same_settings(path: Path, settings: dict, keys: tuple[str, ...], defaults: dict | None = None) -> bool:
    """For work that resumes (searches, folds, ensembles): True when path records the same settings
    for `keys`, False when there is no record yet; ValueError naming the differences otherwise.
    A key the record lacks (a setting added since) counts as its value in `defaults`: the work was
    done the way that default does it."""
    if not path.is_file():
        return False
    saved = {**(defaults or {}), **json.loads(path.read_text())}
    changed = [key for key in keys if saved.get(key) != settings.get(key)]
    if changed:
        diffs = ", ".join(f"{key} {saved.get(key)} -> {settings.get(key)}" for key in changed)
        raise ValueError(f"{path.parent} holds work with other settings ({diffs}): "
                         "pass --fresh to start over, or --name for a new one")
    return True


def open_resumable(folder: Path, settings_file: str, settings: dict, keys: tuple[str, ...], fresh: bool,
                   defaults: dict | None = None) -> bool:
    """Start or resume work kept in folder (CV folds, ensemble members): --fresh deletes it first;
    settings must match those recorded for `keys` (see check_same_settings); the current ones are
    recorded. True if resuming."""
    if fresh and folder.exists():
        shutil.rmtree(folder)
    resuming = check_same_settings(folder / settings_file, settings, keys, defaults)
    write_json(folder / settings_file, settings)
    return resuming


class _Console(logging.StreamHandler):
    """Writes to whatever sys.stdout is now (pytest and notebooks swap it)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _):
        pass


def setup_console_logging(prefix: str = "") -> None:
    """One summary line per phase on the console, each after `prefix`; run_folder() adds the run's
    log file."""
    if not any(isinstance(h, _Console) for h in log.handlers):
        console = _Console()
        console.setFormatter(logging.Formatter(f"{prefix}%(message)s"))
        log.addHandler(console)
    log.setLevel(logging.INFO)
    log.propagate = False


def exit_status(work: Callable[[], object]) -> int:
    """A command's exit status: 0 when work() finishes; 2, the reason on stderr, when the data or the
    settings are wrong (a malformed CSV, folders that do not match)."""
    try:
        work()
    except (DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
