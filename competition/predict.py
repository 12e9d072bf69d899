"""Predict test.csv with a trained run and write a checked Kaggle submission.

    python -m competition.predict                       # the finished run with the best recorded score
    python -m competition.predict --name report-aug     # the newest run of that name
    python -m competition.predict --run 20261127-0930-report-aug --out submission.csv

Writes `ImageId,Label` (ImageId 1..N, one row per test image, labels 0..9) into the run's folder
unless --out says otherwise, and prints where it wrote and which model made it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from competition import startup

startup.begin()  # before TensorFlow loads: Keras' backend, its start-up lines quieted

import numpy as np

from common.digits_csv import SUBMISSION_FILE, write_submission
from common.errors import add_debug_flag, exit_status
from competition.cli import add_data_dir, add_models_dir, add_run_flag, add_tta_flag
from competition.config import NUM_CLASSES
from competition.data.digits import DEMO_TEST_LABELS, load_test
from competition.data.reading import read_csv, read_json
from competition.runs.choosing import default_run, newest_named, run_by_id
from competition.runs.layout import METRICS_FILE, MODEL_FILE
from competition.scoring.probabilities import model_paths, probabilities


def predict_run(run: str | None, data_dir: str, models_dir: str, out: str | None, name: str | None = None,
        tta: int = 0) -> Path:
    chosen = run_by_id(models_dir, run) if run else newest_named(models_dir, name) if name else default_run(models_dir)
    if not (run or name):
        print(chosen.line())
    folder = chosen.folder
    metrics_path = folder / METRICS_FILE  # read first: a bad one is refused before anything is written
    validation = read_json(metrics_path).get("validation") if metrics_path.is_file() else None
    test = load_test(data_dir)
    labels = probabilities(folder, test.images, tta).argmax(axis=1)
    target = Path(out) if out else folder / SUBMISSION_FILE
    write_submission(labels, target, len(test))

    val_acc = validation["accuracy"] if validation else None
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    models = model_paths(folder)
    what = f"{folder / MODEL_FILE}" if len(models) == 1 else f"ensemble of {len(models)} in {folder}"
    print(f"model: {what}" + (f" (val accuracy {val_acc:.5f})" if val_acc is not None else "")
          + (f", test-time augmentation x{tta}" if tta else ""))
    print(f"submission: {len(labels)} rows from {test.source} -> {target}")
    print(f"labels 0..9: {' '.join(map(str, counts))}")
    if test.demo:
        print("note: DEMO data (scikit-learn digits): this submission is not for Kaggle")
        truth = Path(data_dir) / DEMO_TEST_LABELS
        if truth.is_file():  # only the demo set has its test labels; the competition hides them
            accuracy = (read_csv(truth)["Label"].to_numpy() == labels).mean()
            print(f"demo test accuracy: {accuracy:.4f} against {truth}")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_flag(parser)
    parser.add_argument("--name", default=None, help="the newest run with this name, e.g. report-aug or demo")
    add_data_dir(parser)
    add_models_dir(parser)
    parser.add_argument("--out", default=None, help="where to write (default: RUN/submission.csv)")
    add_tta_flag(parser, "in the submission")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    return exit_status(lambda: predict_run(args.run, args.data_dir, args.models_dir, args.out, args.name, args.tta), args.debug)


if __name__ == "__main__":
    sys.exit(main())
