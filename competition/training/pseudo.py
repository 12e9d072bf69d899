"""Pseudo-labels: test.csv's digits, labelled by models already trained, as extra training rows.

    python -m competition.cv --k 5 --preset strong --pseudo cv-diverse --name strong-pseudo
    python -m competition.train --preset strong --val_size 0 --pseudo cv-diverse

Semi-supervised learning ("pseudo-labelling"): the labels are the labelling models' own averaged
predictions, never Kaggle's hidden ones, and only digits they label with at least
--pseudo_min_confidence are kept. For an honest CV a fold's model learns only from labellers that
never saw its held-out rows: those of the --pseudo folder that held out exactly the same rows
(their rows.npz), such as the same fold of other CVs. A run with no chosen rows uses every model of
the folder; if it validates on a split, its labellers may have trained on those rows, and its
validation accuracy is then not an independent estimate (it says so in its log).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from competition.data.digits import DataError, load_test
from competition.runs.layout import ROWS_FILE, is_ensemble, is_run
from competition.scoring.probabilities import model_paths, stacked_probabilities

log = logging.getLogger("competition")


def labellers(source: Path, held_out: np.ndarray | None) -> list[Path]:
    """The model files of source (a run or an ensemble/CV folder) that may label a run's extra rows:
    all of them, or with held_out rows, only those that held out exactly these rows."""
    models = model_paths(source)
    if held_out is None:
        return models
    chosen = []
    for path in models:
        rows = path.parent / ROWS_FILE
        if rows.is_file():
            with np.load(rows) as saved:
                if np.array_equal(np.sort(saved["validation"]), np.sort(held_out)):
                    chosen.append(path)
    if not chosen:
        raise DataError(f"{source}: none of its {len(models)} models held out this run's {len(held_out)} rows "
                        f"(per their {ROWS_FILE}); labels from models that trained on them would leak those rows "
                        "into this run's held-out score. Use a CV of the same folds (k, cv_seed).")
    return chosen


def pseudo_labelled(source: str, data_dir: str, held_out: np.ndarray | None,
                    min_confidence: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """test.csv's images whose labellers' mean probability reaches min_confidence, their labels, and
    a summary for the run's metrics. source: a run or ensemble folder."""
    start = time.perf_counter()
    folder = Path(source)
    if not (is_run(folder) or is_ensemble(folder)):
        raise DataError(f"--pseudo {source}: not a run or ensemble folder")
    models = labellers(folder, held_out)
    test = load_test(data_dir)
    probs = stacked_probabilities(models, test.images).mean(axis=0)
    confidence = probs.max(axis=1)
    keep = confidence >= min_confidence
    summary = {"source": str(folder), "labellers": [str(p.parent) for p in models], "test_rows": len(test),
               "kept": int(keep.sum()), "min_confidence": min_confidence,
               "mean_confidence_kept": float(confidence[keep].mean()) if keep.any() else None}
    log.info(f"pseudo-labels: {summary['kept']} of {len(test)} test digits from {len(models)} models of "
             f"{folder.name} (mean probability >= {min_confidence}), {time.perf_counter() - start:.0f}s")
    return test.images[keep], probs.argmax(axis=1)[keep], summary
