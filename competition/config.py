"""Paths and defaults for every step: the one place they live.

Command lines override a few keys; the resolved TrainConfig is saved beside every model.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Where the competition's CSVs are read from: --data_dir beats $DIGITS_DATA_DIR beats data/.
DATA_DIR = Path(os.environ.get("DIGITS_DATA_DIR", ROOT / "data"))
DEMO_DATA_DIR = ROOT / "data" / "demo"
# Every run writes its own folder here.
MODELS_DIR = Path(os.environ.get("DIGITS_MODELS_DIR", ROOT / "models"))

IMAGE_SIZE = 28
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE
NUM_CLASSES = 10


@dataclasses.dataclass
class TrainConfig:
    """One training run. Defaults are the report's (../shared/REPORT.md, models 1 and 2)."""

    name: str = "report"  # run folder suffix
    arch: str = "report"  # key of competition.model.ARCHITECTURES
    data_dir: str = str(DATA_DIR)
    models_dir: str = str(MODELS_DIR)
    # Split: train_test_split(test_size=0.1, random_state=15), as the report.
    val_size: float = 0.1
    split_seed: int = 15
    seed: int = 0  # weights init, shuffling, augmentation
    # Optimisation: Adam 1e-4, batch 32, up to 40 epochs.
    epochs: int = 40
    batch_size: int = 32
    learning_rate: float = 1e-4
    # EarlyStopping(val_loss, patience 10, min_delta 0.005, restore best) and
    # ReduceLROnPlateau(val_loss, patience 3), as the report's model 2.
    early_stopping_patience: int = 10
    early_stopping_min_delta: float = 0.005
    reduce_lr_patience: int = 3
    # Augmentation: rotation, shift and zoom, never flips (a flipped 2 is not a 2).
    augment: bool = False
    rotation_deg: float = 10.0
    shift_frac: float = 0.1
    zoom_frac: float = 0.1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
