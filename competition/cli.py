"""The command lines' flags: one typed --flag per config field, explained, and checked before any work.

Every training command (train, cv, ensemble) parses its TrainConfig here, so a misspelled --arch or
a missing --hparams file is refused before anything is written; tune's SearchConfig takes its flags
from here too. A flag's help is its config field's (competition/config.py); --data_dir,
--models_dir and --run are defined here once for every command.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from common.errors import ConfigError
from competition.config import (
    DATA_DIR,
    MODELS_DIR,
    PRESETS,
    TUNERS,
    SearchConfig,
    TrainConfig,
    help_of,
)


def add_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """One typed --flag per field of a config dataclass, with what it does (the field's help) and its default."""
    for field in dataclasses.fields(cls):
        flag, text = f"--{field.name}", f"{field.metadata['help']} (default: %(default)s)"
        if field.type == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default, help=text)
        else:
            kind = {"int": int, "float": float, "str": str}[field.type]
            parser.add_argument(flag, type=kind, default=field.default, help=text)


def add_data_dir(parser: argparse.ArgumentParser, default: str | None = str(DATA_DIR), what: str | None = None) -> None:
    """--data_dir, as every command that reads the competition's CSVs takes it; `what` for a command
    whose default is the run's own data."""
    parser.add_argument("--data_dir", default=default,
                        help=what or f"{help_of(TrainConfig, 'data_dir')} (default: %(default)s)")


def add_models_dir(parser: argparse.ArgumentParser) -> None:
    """--models_dir, as every command that reads or writes run folders takes it."""
    parser.add_argument("--models_dir", default=str(MODELS_DIR),
                        help=f"{help_of(TrainConfig, 'models_dir')} (default: %(default)s)")


def add_run_flag(parser: argparse.ArgumentParser) -> None:
    """--run, the run folder a command takes: by default the best one by recorded score (runs/choosing.py)."""
    parser.add_argument("--run", default=None,
                        help="run id or folder (default: the finished run with the best recorded score)")


def add_retry_flags(parser: argparse.ArgumentParser, retries: int, backoff_s: float) -> None:
    """--retries and --backoff_s: how a command that calls Kaggle retries network errors, 429 and 5xx."""
    parser.add_argument("--retries", type=int, default=retries,
                        help="tries after the first on network errors and 5xx (default: %(default)s)")
    parser.add_argument("--backoff_s", type=float, default=backoff_s,
                        help="first wait before a retry, doubled each time (default: %(default)s)")


def add_tta_flag(parser: argparse.ArgumentParser, what: str = "when evaluating") -> None:
    """--tta: test-time augmented copies per digit (scoring/probabilities.py)."""
    parser.add_argument("--tta", type=int, default=0,
                        help=f"test-time augmented copies per digit {what} (default: %(default)s)")


def add_workers_flag(parser: argparse.ArgumentParser) -> None:
    """--jobs: how many models of a CV or an ensemble train at once (training/parallel.py)."""
    parser.add_argument("--jobs", type=int, default=1,
                        help="models trained at once, each in its own process with its share of the cores "
                             "(default: %(default)s)")


def add_gpus_flag(parser: argparse.ArgumentParser) -> None:
    """--gpus: the models spread over these GPUs, one per GPU at a time (training/parallel.py)."""
    def indices(text: str) -> tuple[int, ...]:
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not parts or not all(part.isdigit() for part in parts) or len(set(parts)) < len(parts):
            raise argparse.ArgumentTypeError(f"{text!r}: expected distinct GPU indices separated by commas, e.g. 0,1")
        return tuple(int(part) for part in parts)

    parser.add_argument("--gpus", type=indices, default=(), metavar="0,1",
                        help="train the models side by side on these GPUs, one model per GPU at a time, each process "
                             "seeing only its own (CUDA_VISIBLE_DEVICES) (default: none, one process sees them all)")


def add_cluster_flag(parser: argparse.ArgumentParser, precision: str = "each node picks its own precision") -> None:
    """--cluster: the models as tasks on a Ray cluster instead of this machine's processes (training/cluster/);
    `precision`: what its help says of the precision they train in there."""
    # The form only: Ray itself is imported where a cluster is used.
    from competition.training.cluster.connection import parse_address

    def address(text: str) -> str:
        try:
            return parse_address(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    parser.add_argument("--cluster", type=address, default=None, metavar="ADDRESS",
                        help="train the models as tasks on a Ray cluster: local (Ray on this machine's cores), auto "
                             "(the running one: $RAY_ADDRESS, or `ray start`'s on this machine), HOST:PORT or "
                             f"ray://HOST:PORT; {precision} (default: none, this machine's "
                             "processes; docs/cluster.md)")


def check_cluster_jobs(parser: argparse.ArgumentParser, args: argparse.Namespace, default_jobs: int) -> None:
    """--jobs places models on this machine; on a cluster Ray places them (--threads sets each one's CPUs)."""
    if args.cluster and args.jobs != default_jobs:
        parser.error("--jobs is for this machine's processes; with --cluster Ray places the models "
                     "(--threads sets each one's CPUs)")


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
    try:
        cfg = from_flags(args, TrainConfig)  # TrainConfig checks its own settings (TrainConfig.problems)
    except ConfigError as err:
        parser.error(str(err))
    if args.hparams and not Path(args.hparams).is_file():
        parser.error(f"--hparams {args.hparams}: no such file (run `make tune` first)")
    if args.pseudo:  # found now, as a path: CV and ensemble members run with their own models_dir
        from competition.runs.choosing import run_by_id  # here: the flags need no pandas (edge venv scripts)

        try:
            args.pseudo = str(run_by_id(args.models_dir, args.pseudo).folder.resolve())
        except FileNotFoundError as err:
            parser.error(f"--pseudo: {err}")
        cfg = dataclasses.replace(cfg, pseudo=args.pseudo)
    return cfg, args


def parse_search_config(parser: argparse.ArgumentParser, argv: list[str] | None) -> tuple[SearchConfig, argparse.Namespace]:
    """SearchConfig from the command line, checked before anything is written."""
    add_flags(parser, SearchConfig)
    args = parser.parse_args(argv)
    if args.tuner not in TUNERS:
        parser.error(f"--tuner {args.tuner!r}: choose from {', '.join(TUNERS)}")
    return from_flags(args, SearchConfig), args
