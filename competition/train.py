"""Train a model on train.csv and write a self-describing run folder under models/.

    python -m competition.train                 # the report's model 1 (no augmentation)
    python -m competition.train --augment       # the report's model 2 (rotation, shift, zoom)
    python -m competition.train --preset strong  # beyond the report: see competition/config.py
    python -m competition.train --epochs 1 --data_dir data/demo

The run folder models/<time>-<name>/ holds model.keras, config.json (the resolved config),
data_fingerprint.json, history.csv (one row per epoch), metrics.json (validation accuracy,
per-class precision/recall/F1, confusion matrix) and train.log. It appears only when the run ends.
"""

from __future__ import annotations

import argparse
import sys

from competition import startup

startup.begin()  # before TensorFlow loads: Keras' backend, its start-up lines quieted

from common.errors import add_debug_flag, debug_requested, exit_status
from competition.cli import parse_train_config
from competition.config import TrainConfig
from competition.training import trainer


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_debug_flag(parser)
    cfg, _ = parse_train_config(parser, argv)
    return cfg


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    return exit_status(lambda: trainer.train_model(cfg), debug_requested(argv), interrupted="no run folder was written")


if __name__ == "__main__":
    sys.exit(main())
