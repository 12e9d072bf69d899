"""What the research scripts share: a CV folder named by --cv, and its folds' held-out rows."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from competition.cli import add_data_dir
from competition.config import SHARED_DATA_DIR
from competition.data.reading import read_json
from competition.scoring.folds import CV_FILE, fold_indices


def add_cv_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cv", type=Path, required=True, help="a CV or combine folder (models/cv-<name>)")
    add_data_dir(parser, default=str(SHARED_DATA_DIR))


def held_out_rows(parser: argparse.ArgumentParser, folder: Path, labels: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(fold, its held-out rows) for each fold of the CV in folder; a usage error if it is none."""
    if not (folder / CV_FILE).is_file():
        parser.error(f"--cv {folder}: no {CV_FILE} there; give a folder made by `make cv` or `make combine`")
    settings = read_json(folder / CV_FILE, ("k", "cv_seed"))  # cv and combine both write them
    return [(fold, held_out) for fold, (_, held_out) in
            enumerate(fold_indices(labels, settings["k"], settings["cv_seed"]), 1)]
