"""Paths and defaults for every step: the one place they live.

Command lines override them (competition/cli.py); the resolved TrainConfig is saved beside every
model.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Where the competition's CSVs are read from: --data_dir beats $DIGITS_DATA_DIR beats data/.
DATA_DIR = Path(os.environ.get("DIGITS_DATA_DIR", ROOT / "data"))
DEMO_DATA_DIR = ROOT / "data" / "demo"
# The competition data beside the checkout: the default of the scripts that measure on it.
SHARED_DATA_DIR = ROOT.parent / "shared" / "data" / "digit-recognizer"
# Every run writes its own folder here.
MODELS_DIR = Path(os.environ.get("DIGITS_MODELS_DIR", ROOT / "models"))

COMPETITION_TRAIN_ROWS = 42_000  # train.csv's rows: what the recipes' cross-validations measured on
IMAGE_SIZE = 28
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE
NUM_CLASSES = 10
# Compute precisions (--precision). Weights stay float32 in both; mixed_bfloat16 runs the
# convolutions in bfloat16. "auto" picks bfloat16 only where the hardware runs it natively
# (competition/hardware.py): elsewhere it is emulated and slower than float32.
COMPUTE_PRECISIONS = ("float32", "mixed_bfloat16")
PRECISIONS = ("auto", *COMPUTE_PRECISIONS)
# The model designs (--arch): competition/model.py builds each.
ARCH_NAMES = ("report", "strong", "resnet")

@dataclasses.dataclass
class TrainConfig:
    """One training run. Defaults are the report's (../shared/REPORT.md, models 1 and 2)."""

    name: str = "report"  # run folder suffix
    arch: str = "report"  # key of competition.model.ARCHITECTURES
    data_dir: str = str(DATA_DIR)
    models_dir: str = str(MODELS_DIR)
    # Split: train_test_split(test_size=0.1, random_state=15), as the report.
    val_size: float = 0.1  # 0: train on every row, no validation
    split_seed: int = 15
    seed: int = 0  # weights init, shuffling, augmentation
    # Optimisation: Adam 1e-4, batch 32, up to 40 epochs.
    epochs: int = 40
    batch_size: int = 32
    learning_rate: float = 1e-4
    # EarlyStopping(val_loss, patience 10, min_delta 0.005, restore best) and
    # ReduceLROnPlateau(val_loss, patience 3), as the report's model 2.
    early_stopping: bool = True
    early_stopping_patience: int = 10
    early_stopping_min_delta: float = 0.005
    reduce_lr_patience: int = 3
    lr_decay: float = 0.0  # > 0: learning rate x lr_decay each epoch, in place of ReduceLROnPlateau
    # > 0: keep a moving average of the weights with this momentum (0.999: about the last 1,000
    # steps) and save it in place of the last step's weights; metrics.json scores both.
    ema: float = 0.0
    precision: str = "auto"  # one of PRECISIONS; the saved model is float32 either way
    # Augmentation: rotation, shift and zoom, never flips (a flipped 2 is not a 2).
    augment: bool = False
    rotation_deg: float = 10.0
    shift_frac: float = 0.1
    zoom_frac: float = 0.1
    # Semi-supervised (competition/pseudo.py): test.csv's digits, labelled by the models of this run or
    # ensemble/CV folder, train too; kept where their mean probability reaches pseudo_min_confidence.
    pseudo: str = ""
    pseudo_min_confidence: float = 0.9

    hparams: str = ""  # a search's best_hyperparameters.json: train that model instead of --arch
    threads: int = 0  # TensorFlow intra-op threads; 0 = every core this process may use

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Named starting points for TrainConfig (--preset); explicit flags still override them.
PRESETS = {
    "report": {},
    # Beyond the report: the strong architecture, trained with a learning rate that decays each
    # epoch and no early stopping, as the best honest Kaggle solutions do. Batch 64 and no XLA are
    # the fastest settings measured on a 2-core CPU; its CV and minutes: docs/experiments.md.
    "strong": dict(arch="strong", augment=True, epochs=25, batch_size=64, learning_rate=1e-3, lr_decay=0.9,
                   early_stopping=False),
}
# Twice the epochs, the decay's square root so the last epoch's learning rate is the preset's: one
# model better on the held-out folds at twice the minutes; 4x the epochs gained nothing more
# (docs/experiments.md).
PRESETS["strong-long"] = dict(PRESETS["strong"], epochs=50, lr_decay=0.9 ** 0.5)
# The report's model 2, as `make train-aug` trains it.
PRESETS["report-aug"] = dict(augment=True)
# The long recipe with the weights' moving average saved in place of the last step's, and its
# residual twin: the members of the best recipes (competition/recipes.py).
PRESETS["strong-long-ema"] = dict(PRESETS["strong-long"], ema=0.999)
PRESETS["resnet-long-ema"] = dict(PRESETS["strong-long-ema"], arch="resnet")


@dataclasses.dataclass
class SearchConfig:
    """A keras-tuner search of the report's space (../shared/REPORT.md, model 3).

    The defaults finish in about an hour on a 2-core CPU: Hyperband with max_epochs 9 and factor 3
    plans 23 trials and 75 epochs. The report's own search (90 trials, 5.5 hours for its author) is
    --max_epochs 40 --factor 3 --iterations 1 --budget_minutes 0.
    """

    name: str = ""  # the search lives in models/search-<name>/; default: the tuner's name
    tuner: str = "hyperband"  # hyperband | random | bayesian
    data_dir: str = str(DATA_DIR)
    models_dir: str = str(MODELS_DIR)
    max_epochs: int = 9  # Hyperband: epochs of the longest trials; others: epochs of every trial
    factor: int = 3  # Hyperband's reduction factor
    iterations: int = 1  # Hyperband iterations (whole sweeps of its brackets)
    max_trials: int = 20  # random and bayesian only
    budget_minutes: float = 60.0  # start no trial after this long (0: no limit); a rerun resumes
    val_size: float = 0.1
    split_seed: int = 15
    seed: int = 0
    batch_size: int = 32
    learning_rate: float = 1e-4
    augment: bool = True  # as in training
    rotation_deg: float = 10.0
    shift_frac: float = 0.1
    zoom_frac: float = 0.1
    threads: int = 0  # TensorFlow intra-op threads; 0 = every core this process may use

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
