"""The command lines' flags: one typed --flag per config field, explained, and checked before any work.

Every training command (train, cv, ensemble) parses its TrainConfig here, so a misspelled --arch or
a missing --hparams file is refused before anything is written; tune's SearchConfig takes its flags
from here too.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from competition.config import ARCH_NAMES, PRECISIONS, PRESETS, TrainConfig
from competition.runs import resolve_run

HELP = {
    "name": "suffix of the run's folder (models/<time>-<name>; cv-<name>, ensemble-<name>)",
    "arch": f"the model design: {', '.join(ARCH_NAMES)}",
    "data_dir": "folder with train.csv and test.csv (plain, .gz, or the competition's zip)",
    "models_dir": "folder the run folders go to",
    "val_size": "share of train.csv held out for validation; 0 trains on every row",
    "split_seed": "seed of the train/validation split (15: the report's)",
    "seed": "seed of the weights, the shuffling and the augmentation",
    "epochs": "epochs to train, at most (early stopping may end sooner)",
    "batch_size": "images per training step",
    "learning_rate": "Adam's learning rate (the first epoch's, with --lr_decay)",
    "early_stopping": "stop when validation loss stops improving, keeping the best epoch's weights",
    "early_stopping_patience": "epochs without improvement before early stopping stops",
    "early_stopping_min_delta": "smallest fall in validation loss that counts as an improvement",
    "reduce_lr_patience": "epochs without improvement before the learning rate is cut (without --lr_decay)",
    "lr_decay": "multiply the learning rate by this each epoch (0: cut it on plateaus instead)",
    "ema": "keep a moving average of the weights with this momentum and save it (0: off; 0.999 ~ 1,000 steps)",
    "precision": f"compute precision, one of {', '.join(PRECISIONS)}; auto: bfloat16 only where the hardware "
                 "runs it natively",
    "augment": "warp each training image randomly: rotation, shift, zoom (never flips)",
    "rotation_deg": "largest rotation of --augment, in degrees",
    "shift_frac": "largest shift of --augment, as a share of the side",
    "zoom_frac": "largest zoom in or out of --augment, as a share",
    "pseudo": "a run, ensemble or CV folder whose models label test.csv's digits to train on too",
    "pseudo_min_confidence": "keep a pseudo-labelled digit when its labellers' mean probability reaches this",
    "hparams": "a search's best_hyperparameters.json: train that model instead of --arch",
    "threads": "TensorFlow threads; 0: every core this process may use",
}
# A search's flags: its own, and the training ones it shares.
SEARCH_HELP = {
    **HELP,
    "name": "the search lives in models/search-<name>/ (default: the tuner's name)",
    "augment": "warp each training image randomly, as training does",
    "tuner": "hyperband, random or bayesian",
    "max_epochs": "Hyperband: epochs of the longest trials; the others: epochs of every trial",
    "factor": "Hyperband's reduction factor between rounds",
    "iterations": "Hyperband iterations (whole sweeps of its brackets)",
    "max_trials": "random and bayesian search: trials to run",
    "budget_minutes": "start no trial after this many minutes (0: no limit); running it again resumes",
}


def add_flags(parser: argparse.ArgumentParser, cls: type, texts: dict[str, str] = HELP) -> None:
    """One typed --flag per field of a config dataclass, with what it does and its default."""
    for field in dataclasses.fields(cls):
        flag, text = f"--{field.name}", f"{texts[field.name]} (default: %(default)s)"
        if field.type == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default, help=text)
        else:
            kind = {"int": int, "float": float, "str": str}[field.type]
            parser.add_argument(flag, type=kind, default=field.default, help=text)


def add_workers_flag(parser: argparse.ArgumentParser) -> None:
    """--jobs: how many models of a CV or an ensemble train at once (training.run_all)."""
    parser.add_argument("--jobs", type=int, default=1,
                        help="models trained at once, each in its own process with its share of the cores "
                             "(default: %(default)s)")


def from_flags(args: argparse.Namespace, cls: type):
    names = {field.name for field in dataclasses.fields(cls)}
    return cls(**{key: value for key, value in vars(args).items() if key in names})


def named_after_preset(cfg: TrainConfig, preset: str | None) -> TrainConfig:
    """cfg, its name defaulting to the preset's (folders such as models/cv-strong)."""
    return cfg if cfg.name != TrainConfig.name else dataclasses.replace(cfg, name=preset or "report")


def parse_train_config(parser: argparse.ArgumentParser, argv: list[str] | None) -> tuple[TrainConfig, argparse.Namespace]:
    """TrainConfig from the command line: --preset NAME sets defaults, other flags override them;
    every value checked here, before the command writes anything."""
    add_flags(parser, TrainConfig)
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="start from a named configuration, flags then override it (default: the report's)")
    known, _ = parser.parse_known_args(argv)
    if known.preset:
        parser.set_defaults(**PRESETS[known.preset])
    args = parser.parse_args(argv)
    if args.arch not in ARCH_NAMES:
        parser.error(f"--arch {args.arch!r}: choose from {', '.join(ARCH_NAMES)}")
    if args.precision not in PRECISIONS:
        parser.error(f"--precision {args.precision!r}: choose from {', '.join(PRECISIONS)}")
    if args.epochs < 1 or args.batch_size < 1 or not 0 <= args.val_size < 1:
        parser.error("--epochs and --batch_size must be at least 1, --val_size in [0, 1)")
    if not 0 <= args.ema < 1:
        parser.error(f"--ema {args.ema}: a momentum in [0, 1); 0 is off")
    if args.ema and args.early_stopping:  # its restored best epoch would silently replace the average
        parser.error("--ema needs --no-early_stopping (use --lr_decay, as the strong preset does)")
    if args.hparams and not Path(args.hparams).is_file():
        parser.error(f"--hparams {args.hparams}: no such file (run `make tune` first)")
    if args.pseudo:  # found now, as a path: CV and ensemble members run with their own models_dir
        try:
            args.pseudo = str(resolve_run(args.models_dir, args.pseudo).resolve())
        except FileNotFoundError as err:
            parser.error(f"--pseudo: {err}")
    return from_flags(args, TrainConfig), args
