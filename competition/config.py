"""Paths and defaults for every step: the one place they live.

Command lines override a few keys; the resolved TrainConfig is saved beside every model.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from competition.hardware import usable_cores

ROOT = Path(__file__).resolve().parent.parent

# Where the competition's CSVs are read from: --data_dir beats $DIGITS_DATA_DIR beats data/.
DATA_DIR = Path(os.environ.get("DIGITS_DATA_DIR", ROOT / "data"))
DEMO_DATA_DIR = ROOT / "data" / "demo"
# The competition data beside the checkout: the default of the scripts that measure on it.
SHARED_DATA_DIR = ROOT.parent / "shared" / "data" / "digit-recognizer"
# Every run writes its own folder here.
MODELS_DIR = Path(os.environ.get("DIGITS_MODELS_DIR", ROOT / "models"))

IMAGE_SIZE = 28
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE
NUM_CLASSES = 10
# Compute precisions (--precision). Weights stay float32 in both; mixed_bfloat16 runs the
# convolutions in bfloat16. "auto" picks bfloat16 only where the hardware runs it natively
# (competition/hardware.py): elsewhere it is emulated and slower than float32.
COMPUTE_PRECISIONS = ("float32", "mixed_bfloat16")
PRECISIONS = ("auto", *COMPUTE_PRECISIONS)

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
    # Elastic distortion on top (augment only): field scale alpha (0 = off) and smoothing sigma in
    # pixels. Ciresan et al. (2010) used alpha 36, sigma 6 for these digits: about 0.9 px a pixel.
    elastic_alpha: float = 0.0
    elastic_sigma: float = 6.0
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


def add_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """One typed --flag per field of a config dataclass, its default shown in --help."""
    for field in dataclasses.fields(cls):
        flag = f"--{field.name}"
        if field.type == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default,
                                help="(default: %(default)s)")
        else:
            kind = {"int": int, "float": float, "str": str}[field.type]
            parser.add_argument(flag, type=kind, default=field.default, help="(default: %(default)s)")


def add_workers_flag(parser: argparse.ArgumentParser) -> None:
    """--jobs: how many models of a CV or an ensemble train at once (competition.train.run_all)."""
    parser.add_argument("--jobs", type=int, default=1,
                        help="models trained at once, each in its own process with its share of the cores "
                             "(default: %(default)s)")


def threads_each(workers: int) -> int:
    """Intra-op threads for each of `workers` processes on this machine: the cores shared, not oversubscribed."""
    return max(1, usable_cores() // workers)


def from_flags(args: argparse.Namespace, cls: type):
    names = {field.name for field in dataclasses.fields(cls)}
    return cls(**{key: value for key, value in vars(args).items() if key in names})


def named_after_preset(cfg: TrainConfig, preset: str | None) -> TrainConfig:
    """cfg, its name defaulting to the preset's (folders such as models/cv-strong)."""
    return cfg if cfg.name != TrainConfig.name else dataclasses.replace(cfg, name=preset or "report")


def parse_train_config(parser: argparse.ArgumentParser, argv: list[str] | None) -> tuple[TrainConfig, argparse.Namespace]:
    """TrainConfig from the command line: --preset NAME sets defaults, other flags override them."""
    add_flags(parser, TrainConfig)
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="start from a named configuration (default: the report's)")
    known, _ = parser.parse_known_args(argv)
    if known.preset:
        parser.set_defaults(**PRESETS[known.preset])
    args = parser.parse_args(argv)
    if args.precision not in PRECISIONS:
        parser.error(f"--precision {args.precision!r}: choose from {', '.join(PRECISIONS)}")
    if not 0 <= args.ema < 1:
        parser.error(f"--ema {args.ema}: a momentum in [0, 1); 0 is off")
    if args.ema and args.early_stopping:  # its restored best epoch would silently replace the average
        parser.error("--ema needs --no-early_stopping (use --lr_decay, as the strong preset does)")
    if args.pseudo:  # found now, as a path: CV and ensemble members run with their own models_dir
        from competition.runs import resolve_run  # runs imports data, which imports this module

        try:
            args.pseudo = str(resolve_run(args.models_dir, args.pseudo).resolve())
        except FileNotFoundError as err:
            parser.error(f"--pseudo: {err}")
    return from_flags(args, TrainConfig), args
