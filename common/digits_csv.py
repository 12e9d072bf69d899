"""The competition's CSV format, checked the same way wherever a file of it is read or written (numpy only).

    pixels, labels = read_digits_csv("test.csv")                # (N, 784) uint8, and (N,) or None
    write_submission(labels, "submission.csv", n_test)   # checked, then written whole

train.csv is `label,pixel0..pixel783`, test.csv `pixel0..pixel783`; a submission is `ImageId,Label`,
one row per test image, ImageId 1..N in order, labels 0..9. The submission is checked by `make
submission` and `make best` before they write it, by `make submit` before it sends it, by `make data`
on the competition's sample_submission.csv, and written by the Pi's `edge.pi.classify --out`. The trainer
reads the big CSVs with pandas (competition/data/digits.py, against these columns); read_digits_csv here is
the Pi's reader, without pandas. A UTF-8 byte-order mark (as spreadsheet programs write) is taken.
Every refusal names the file, the line, the column and what was expected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.errors import InputError, ProjectError, shorten
from common.writing import write_whole

IMAGE_SIZE = 28
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE
NUM_CLASSES = 10
PIXEL_COLUMNS = [f"pixel{i}" for i in range(NUM_PIXELS)]
TRAIN_COLUMNS = ["label", *PIXEL_COLUMNS]
TEST_COLUMNS = PIXEL_COLUMNS
SUBMISSION_FILE = "submission.csv"
HEADER = ["ImageId", "Label"]


class SubmissionError(ProjectError):
    """A submission Kaggle would reject or mis-score."""


def check_submission(table, n_test: int, source: str = "submission") -> None:
    """Raise SubmissionError unless table (columns by name, in order: a dict of arrays or a pandas
    DataFrame) is exactly one valid row per test image, in order."""
    columns = [str(name) for name in table]
    if columns != HEADER:
        raise SubmissionError(f"{source}: header must be {','.join(HEADER)}, got {shorten(','.join(columns))}")
    ids, labels = (np.asarray(table[name]) for name in HEADER)
    if len(ids) != n_test:
        raise SubmissionError(f"{source}: {len(ids)} rows, expected one per test image ({n_test})")
    for name, values in zip(HEADER, (ids, labels)):
        if values.dtype.kind not in "iu":
            raise SubmissionError(f"{source}: column {name} must hold integers, got {values.dtype}")
    wrong = np.flatnonzero(ids != np.arange(1, n_test + 1))
    if wrong.size:
        row = wrong[0]
        raise SubmissionError(f"{source}, line {row + 2}: ImageId {ids[row]}, expected {row + 1} (1..{n_test} in order)")
    wrong = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))
    if wrong.size:
        row = wrong[0]
        raise SubmissionError(f"{source}, line {row + 2}: Label {labels[row]}, expected 0..{NUM_CLASSES - 1}")


def write_submission(labels: np.ndarray, out: str | Path, n_test: int | None = None) -> None:
    """ImageId,Label rows for labels, checked against n_test test images (when given), written whole."""
    labels = np.asarray(labels).astype(np.int64)
    check_submission({"ImageId": np.arange(1, len(labels) + 1), "Label": labels},
                     len(labels) if n_test is None else n_test, str(out))
    write_whole(Path(out), lambda tmp: tmp.write_text(submission_text(labels)))


def submission_text(labels: np.ndarray) -> str:
    return "ImageId,Label\n" + "".join(f"{i},{label}\n" for i, label in enumerate(labels, start=1))


def read_digits_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Pixels (N, 784) uint8 and labels (N,) or None from a competition-style CSV."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            header_line = handle.readline()
            header = header_line.rstrip("\r\n").split(",")
            _check_header(path, header_line, header)
            values = [_parse_row(path, number, line, len(header)) for number, line in enumerate(handle, start=2)
                      if line.strip()]
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: a folder, not a CSV file") from None
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text (byte {err.start}): is it a CSV?") from None
    except OSError as err:
        raise InputError(f"{path}: cannot be read: {err.strerror or err}") from None
    if not values:
        raise InputError(f"{path}: no data rows after the header; expected at least one")
    table = np.stack(values)
    labels = table[:, 0] if len(header) == NUM_PIXELS + 1 else None
    return table[:, -NUM_PIXELS:].astype(np.uint8), labels


def _check_header(path: Path, line: str, header: list[str]) -> None:
    columns = header[1:] if header[:1] == ["label"] else header
    if columns == PIXEL_COLUMNS:
        return
    where = f"{path}, line 1 (header)"
    if len(header) == 1 and line.count(";") > 1:
        raise InputError(f"{where}: columns separated by ';'; expected ',' as the separator")
    if not line.strip():
        raise InputError(f"{where}: empty; expected [label,]pixel0,...,pixel783")
    offset = len(header) - len(columns)
    expected = (["label"] if offset else []) + PIXEL_COLUMNS
    for i, (got, want) in enumerate(zip(header, expected)):
        if got != want:  # repr shows what looks alike: spaces, quotes, invisible characters
            raise InputError(f"{where}, column {i + 1}: expected {want!r}, got {got[:40]!r} "
                             f"(expected [label,]pixel0,...,pixel783)")
    raise InputError(f"{where}: {len(header)} columns, expected {NUM_PIXELS} or {NUM_PIXELS + 1} "
                     "([label,]pixel0,...,pixel783)")


def _parse_row(path: Path, number: int, line: str, width: int) -> np.ndarray:
    fields = line.strip().split(",")
    if len(fields) != width:
        raise InputError(f"{path}, line {number}: {len(fields)} values, expected {width}")
    try:
        row = np.array(fields, dtype=np.int64)
    except (ValueError, OverflowError):
        column = next(i for i, f in enumerate(fields) if not f.strip().lstrip("+-").isdigit() or len(f) > 18)
        raise InputError(f"{path}, line {number}, column {column + 1}: expected an integer, "
                         f"got {fields[column][:40]!r}") from None
    limits = np.full(width, 255)
    if width == NUM_PIXELS + 1:
        limits[0] = 9
    bad = np.flatnonzero((row < 0) | (row > limits))
    if bad.size:
        column = bad[0]
        raise InputError(f"{path}, line {number}, column {column + 1}: expected 0..{limits[column]}, "
                         f"got {row[column]}")
    return row
