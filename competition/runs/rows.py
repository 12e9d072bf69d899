"""The rows of train.csv a finished run trained and was validated on.

`run_split(folder, digits)` reads the rows a CV fold recorded (rows.npz), else redoes its config's
split, so that the run's report, its edge check and its int8 calibration use the digits it was, and
was not, trained on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.errors import DataError
from competition.config import TrainConfig
from competition.data.digits import Digits
from competition.data.reading import read_json
from competition.data.splits import split
from competition.runs.layout import CONFIG_FILE, FINGERPRINT_FILE, ROWS_FILE


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
