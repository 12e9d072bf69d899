"""Which rows of train.csv a model trains and is validated on: the report's split, or a run's own rows.

`split(digits, cfg)` is the report's train_test_split; `run_split(folder, digits)` finds the rows a
finished run used (a CV fold records them in rows.npz), so that its report, its edge check and its
int8 calibration use the digits it was, and was not, trained on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from competition.config import TrainConfig
from competition.data import DataError, Digits
from competition.files import read_json
from competition.runs import CONFIG_FILE, FINGERPRINT_FILE, ROWS_FILE


def split(digits: Digits, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The report's split: train_test_split(test_size=0.1, random_state=15). val_size 0: all rows train."""
    if cfg.val_size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return digits.images, digits.images[empty], digits.labels, digits.labels[empty]
    return train_test_split(digits.images, digits.labels, test_size=cfg.val_size, random_state=cfg.split_seed)


def run_split(folder: Path, digits: Digits) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rows of digits that the run in folder trained and was validated on: those it recorded
    (a CV fold's), else its config's split. digits must be the data it trained on."""
    rows = folder / ROWS_FILE
    if rows.is_file():
        with np.load(rows) as saved:
            train_rows, val_rows = saved["train"], saved["validation"]
        if max(train_rows.max(initial=-1), val_rows.max(initial=-1)) >= len(digits.labels):
            raise DataError(f"{rows} names rows past the {len(digits.labels)} of {digits.source}: not this run's data")
        return (digits.images[train_rows], digits.images[val_rows],
                digits.labels[train_rows], digits.labels[val_rows])
    config = read_json(folder / CONFIG_FILE, ("val_size", "split_seed"))
    x_train, x_val, y_train, y_val = split(digits, TrainConfig(val_size=config["val_size"],
                                                               split_seed=config["split_seed"]))
    recorded = folder / FINGERPRINT_FILE
    n_val = read_json(recorded).get("n_val", len(x_val)) if recorded.is_file() else len(x_val)
    if n_val != len(x_val):
        raise DataError(f"{folder.name} was validated on {n_val} rows, but its config's split (val_size "
                        f"{config['val_size']}, split_seed {config['split_seed']}) gives {len(x_val)}: its rows were "
                        f"chosen elsewhere (a cross-validation fold trained before runs kept {ROWS_FILE}), "
                        "so they cannot be found again")
    return x_train, x_val, y_train, y_val
