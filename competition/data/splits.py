"""Which rows of train.csv a model trains and is validated on: the report's split.

`split(digits, cfg)` is the report's train_test_split; the rows a finished run used are found by
competition/runs/rows.py.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from competition.config import TrainConfig
from competition.data.digits import Digits


def split(digits: Digits, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The report's split: train_test_split(test_size=0.1, random_state=15). val_size 0: all rows train."""
    if cfg.val_size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return digits.images, digits.images[empty], digits.labels, digits.labels[empty]
    return train_test_split(digits.images, digits.labels, test_size=cfg.val_size, random_state=cfg.split_seed)
