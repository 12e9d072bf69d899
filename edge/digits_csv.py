"""Competition-style CSVs of digits in, ImageId,Label submissions out (numpy only).

    pixels, labels = read_csv("test.csv")      # (N, 784) uint8, and (N,) or None
    write_submission(labels, "submission.csv")  # written whole: a temporary name, then renamed

A CSV has the columns pixel0..pixel783, with a leading label column allowed. A UTF-8 byte-order
mark (as spreadsheet programs write) is taken, as training takes it. Every refusal is an
InputError naming the file, the line, the column and what was expected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.classifier import NUM_PIXELS
from edge.errors import InputError
from edge.files import write_whole

PIXEL_COLUMNS = [f"pixel{i}" for i in range(NUM_PIXELS)]


def read_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
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


def write_submission(labels: np.ndarray, out: str | Path) -> None:
    """ImageId,Label rows, written whole (temporary file, then renamed)."""
    write_whole(Path(out), lambda tmp: tmp.write_text(submission_text(labels)))


def submission_text(labels: np.ndarray) -> str:
    return "ImageId,Label\n" + "".join(f"{i},{label}\n" for i, label in enumerate(labels, start=1))
