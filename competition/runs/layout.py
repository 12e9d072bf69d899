"""What a run folder under models/ holds, by file name, and how a run's id and kind are told.

A run is a folder `<timestamp>-<name>` holding model.keras and the files named here beside it; an
ensemble (a recipe, a CV combined) is a folder holding ensemble.json and its members' run folders.
"""

from __future__ import annotations

import time
from pathlib import Path

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
FINGERPRINT_FILE = "data_fingerprint.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
LOG_FILE = "train.log"
ROWS_FILE = "rows.npz"  # the train.csv rows a run trained and validated on, when chosen for it (CV folds)
ENSEMBLE_FILE = "ensemble.json"  # marks an ensemble folder: members' run folders inside
CV_SCORES_FILE = "cv.json"  # a cross-validation's held-out scores (competition/cv.py)
TUNED_NAME = "tuned"  # runs of the searched model, preferred by default


def new_run_id(name: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"


def is_run(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith(".") and (path / MODEL_FILE).is_file()


def is_ensemble(path: Path) -> bool:
    return path.is_dir() and (path / ENSEMBLE_FILE).is_file()

