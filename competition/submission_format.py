"""The file Kaggle takes: `ImageId,Label`, one row per test image, ImageId 1..N in order, labels 0..9.

Checked the same way wherever it is written or read: by `make submission` and `make best` before
they write it, by `make submit` before it sends it, by `make data` on the competition's
sample_submission.csv.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from competition.config import NUM_CLASSES
from competition.errors import ProjectError
from competition.files import shorten
from competition.io import atomic_path

SUBMISSION_FILE = "submission.csv"
HEADER = ["ImageId", "Label"]


class SubmissionError(ProjectError):
    """A submission Kaggle would reject or mis-score."""


def check_submission(frame: pd.DataFrame, n_test: int, source: str = "submission") -> None:
    """Raise SubmissionError unless frame is exactly one valid row per test image, in order."""
    if list(frame.columns) != HEADER:
        raise SubmissionError(f"{source}: header must be {','.join(HEADER)}, got {shorten(','.join(map(str, frame.columns)))}")
    if len(frame) != n_test:
        raise SubmissionError(f"{source}: {len(frame)} rows, expected one per test image ({n_test})")
    for name in HEADER:
        if frame[name].dtype.kind not in "iu":
            raise SubmissionError(f"{source}: column {name} must hold integers, got {frame[name].dtype}")
    ids = frame["ImageId"].to_numpy()
    wrong = np.flatnonzero(ids != np.arange(1, n_test + 1))
    if wrong.size:
        row = wrong[0]
        raise SubmissionError(f"{source}, line {row + 2}: ImageId {ids[row]}, expected {row + 1} (1..{n_test} in order)")
    labels = frame["Label"].to_numpy()
    wrong = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))
    if wrong.size:
        row = wrong[0]
        raise SubmissionError(f"{source}, line {row + 2}: Label {labels[row]}, expected 0..{NUM_CLASSES - 1}")


def write_submission(labels: np.ndarray, out: Path, n_test: int) -> pd.DataFrame:
    frame = pd.DataFrame({"ImageId": np.arange(1, len(labels) + 1), "Label": labels.astype(np.int64)})
    check_submission(frame, n_test, str(out))
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)
    return frame
