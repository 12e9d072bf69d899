"""K-fold cross-validation of a training configuration: held-out accuracy, its mean and spread.

    python -m competition.cv --k 5 --preset strong
    python -m competition.cv --k 5 --preset strong --folds 1 2     # some folds now, the rest later

Folds are stratified over train.csv (--cv_seed). Each fold is an ordinary run folder, named fold-<i>,
under models/cv-<name>/, so an interrupted CV continues: finished folds are reused. cv.json holds
per-fold accuracy and training time, the mean, standard deviation, min and max.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

from competition import train
from competition.config import TrainConfig, named_after_preset, parse_train_config
from competition.data import DataError, load_train
from competition.io import write_json
from competition.runs import METRICS_FILE, open_resumable

CV_FILE = "cv.json"
SETTINGS_FILE = "cv_config.json"
# Settings a fold may be reused under: everything that changes what it learns.
IDENTITY = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("name", "models_dir", "threads"))


def fold_indices(labels: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels))


def summarise(folds: list[dict]) -> dict:
    accuracy = np.array([f["accuracy"] for f in folds])
    return {
        "folds": folds,
        "mean_accuracy": float(accuracy.mean()),
        "std_accuracy": float(accuracy.std(ddof=1)) if len(accuracy) > 1 else 0.0,
        "min_accuracy": float(accuracy.min()),
        "max_accuracy": float(accuracy.max()),
        "train_minutes": round(sum(f["train_seconds"] for f in folds) / 60, 1),
    }


def run(cfg: TrainConfig, k: int, folds: list[int] | None = None, cv_seed: int = 0, fresh: bool = False) -> dict:
    folder = Path(cfg.models_dir) / f"cv-{cfg.name}"
    open_resumable(folder, SETTINGS_FILE, {**cfg.to_dict(), "k": k, "cv_seed": cv_seed}, (*IDENTITY, "k", "cv_seed"),
                   fresh)

    labels = load_train(cfg.data_dir).labels
    splits = fold_indices(labels, k, cv_seed)
    results = []
    for i in folds or range(1, k + 1):
        train_rows, held_out = splits[i - 1]
        run_folder = train.run_or_reuse(cfg, folder, f"fold-{i}", splits[i - 1],
                                        f" (of {k}: {len(train_rows)} train / {len(held_out)} held out)")
        metrics = json.loads((run_folder / METRICS_FILE).read_text())
        results.append({"fold": i, "run": run_folder.name, "accuracy": metrics["validation"]["accuracy"],
                        "n": metrics["validation"]["n"], "train_seconds": metrics["train_seconds"]})
    summary = {"k": k, "cv_seed": cv_seed, "config": cfg.to_dict(), **summarise(results)}
    write_json(folder / CV_FILE, summary)
    for f in results:
        print(f"cv: fold {f['fold']}: accuracy {f['accuracy']:.5f} ({f['n']} held out), {f['train_seconds'] / 60:.1f} min")
    print(f"cv: {len(results)} of {k} folds: accuracy {summary['mean_accuracy']:.5f} ± {summary['std_accuracy']:.5f} "
          f"(min {summary['min_accuracy']:.5f}, max {summary['max_accuracy']:.5f}), "
          f"{summary['train_minutes']} min of training -> {folder / CV_FILE}")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=5, help="number of folds (default: %(default)s)")
    parser.add_argument("--folds", type=int, nargs="*", default=None, help="which folds, 1..k (default: all)")
    parser.add_argument("--cv_seed", type=int, default=0, help="seed of the fold assignment (default: %(default)s)")
    parser.add_argument("--fresh", action="store_true", help="delete this CV's folds and start over")
    cfg, args = parse_train_config(parser, argv)
    if args.k < 2 or any(not 1 <= f <= args.k for f in args.folds or []):
        parser.error("--k must be at least 2 and --folds between 1 and k")
    cfg = named_after_preset(cfg, args.preset)
    try:
        run(cfg, args.k, args.folds, args.cv_seed, args.fresh)
    except (DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
