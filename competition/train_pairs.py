"""Train the reader's pair models, once per data set: two finders (is a piece of ink one digit or
two that touch? the second has seen bold, grainy digits too) and the reader (which two?), as runs
under models/pair-models/.

    python -m competition.train_pairs                                  # all three, on data/ (or --data_dir)
    python -m competition.train_pairs --run 20261127-081500-report-aug  # on the data that run trained on
    python -m competition.train_pairs --design pair_finder --examples 8000 --epochs 4   # small, to try
    python -m competition.train_pairs --cluster HEAD:6379               # each model a task on a Ray cluster

Each run folder models/pair-models/<time>-<design>/ holds model.keras, config.json,
data_fingerprint.json, history.csv, metrics.json (figures on pieces made of validation digits),
calibration.npy and train.log; one line per phase and per epoch, with the time left. A finished run
of the same data and settings is reused, not retrained (--retrain trains anew); one killed
mid-training goes on from its last finished epoch when the same command runs again. With
--cluster, they train at once as tasks on a Ray cluster (docs/cluster.md), their folders written
here. `make tflite` then converts the newest of each trained on the exported run's data, the two
finders merged into one model (competition/training/pair_runs.py, edge/export/convert.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from competition import startup

startup.begin()  # before TensorFlow loads: Keras' backend, its start-up lines quieted

from common.errors import add_debug_flag, debug_requested, exit_status
from competition.cli import add_cluster_flag, add_flags, from_flags
from competition.config import PAIR_DESIGNS, PAIR_PRESETS, ROOT, PairConfig
from competition.data.reading import read_json
from competition.runs.choosing import default_model, model_by_id
from competition.runs.layout import CONFIG_FILE


def parse_args(argv: list[str] | None = None) -> tuple[PairConfig, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     conflict_handler="resolve")  # --design below takes one or more
    add_flags(parser, PairConfig)
    parser.add_argument("--design", nargs="+", choices=PAIR_DESIGNS, default=list(PAIR_DESIGNS), dest="designs",
                        help="the pair models to train (default: all)")
    parser.add_argument("--run", default=None, help="train on the data this run (id or folder) trained on, in "
                                                    "place of --data_dir (default: none)")
    parser.add_argument("--retrain", action="store_true",
                        help="train anew even where a finished run of the same data and settings exists")
    add_cluster_flag(parser, precision="float32 on every node, as here")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    presets = ", ".join(f"{d} {p['examples']:,} pieces, {p['epochs']} epochs" for d, p in PAIR_PRESETS.items())
    if args.examples < 0 or args.epochs < 0 or 0 < args.examples < 20:
        parser.error(f"--examples (0 or at least 20) and --epochs must not be negative; 0: the presets ({presets})")
    if args.batch_size < 1 or args.calibration < 1 or not 0 < args.val_size < 1 or not 0 < args.held_out < 1:
        parser.error("--batch_size and --calibration at least 1, --val_size and --held_out in (0, 1)")
    for flag in ("shapes", "strokes"):
        if not (getattr(args, flag) == -1 or 0 <= getattr(args, flag) <= 1):
            parser.error(f"--{flag} is a share, 0 to 1 (or -1: the design's preset)")
    return from_flags(args, PairConfig), args


def run_data_dir(models_dir: str, run: str) -> str:
    """The data a digit run trained on, as its config.json says (a relative path: from the checkout)."""
    chosen = model_by_id(models_dir, run) if run else default_model(models_dir)
    if not run:
        print(chosen.line())
    folder = chosen.folder
    data_dir = Path(read_json(folder / CONFIG_FILE, ("data_dir",))["data_dir"])
    print(f"run: {folder}: its data {data_dir}")
    return str(data_dir if data_dir.is_absolute() or data_dir.exists() else ROOT / data_dir)


def main(argv: list[str] | None = None) -> int:
    base, args = parse_args(argv)

    def command() -> None:
        from competition.data.digits import load_train
        from competition.training import pair_runs

        data_dir = run_data_dir(base.models_dir, args.run) if args.run else base.data_dir
        digits = load_train(data_dir)
        sha256 = digits.fingerprint()["sha256"]
        wanted = []
        for design in args.designs:
            cfg = pair_runs.resolved(dataclasses.replace(base, design=design, data_dir=data_dir))
            found = None if args.retrain else pair_runs.find_pair_run(cfg.models_dir, design, sha256, cfg.to_dict())
            if found:
                print(f"{design}: {found} was trained on this data with these settings: reused (--retrain trains anew)")
            else:
                wanted.append(cfg)
        if args.cluster and wanted:
            from competition.training.cluster import pairs

            pairs.train_all(wanted, args.cluster, digits)
        else:
            for cfg in wanted:
                pair_runs.train_pair_run(cfg, digits)

    return exit_status(command, debug_requested(argv), interrupted="no run folder was written for the unfinished model")


if __name__ == "__main__":
    sys.exit(main())
