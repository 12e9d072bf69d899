"""Read and validate the competition's CSVs as Kaggle serves them.

train.csv is `label,pixel0..pixel783`, test.csv `pixel0..pixel783`; each may be plain (`train.csv`),
gzipped (`train.csv.gz`) or inside the competition zip (`digit-recognizer.zip`). Everything is
checked before anything trains, and bad input raises DataError naming the file, the line and the
column.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from common.digits_csv import (  # noqa: F401
    IMAGE_SIZE,
    NUM_CLASSES,
    NUM_PIXELS,
    PIXEL_COLUMNS,
    TEST_COLUMNS,
    TRAIN_COLUMNS,
)
from common.errors import DataError, shorten
from competition.data.reading import read_csv

COMPETITION_ZIP = "digit-recognizer.zip"
# A folder holding this file was made by `make demo-data`: every run on it says so.
DEMO_MARKER = "DEMO_DATA.md"
DEMO_TEST_LABELS = "test_labels.csv"  # the demo set can score itself; Kaggle's test labels are hidden


@dataclass
class Digits:
    """Images as uint8 (N, 28, 28, 1), raw 0..255; labels int64 (N,) or None for test.csv."""

    images: np.ndarray
    labels: np.ndarray | None
    source: str  # the file it was read from, for messages and run configs
    demo: bool  # built by `make demo-data`, not the competition's data

    def __len__(self) -> int:
        return len(self.images)

    def fingerprint(self) -> dict:
        """Identifies the data by content, whatever its container (csv, gz, zip)."""
        digest = hashlib.sha256(self.images.tobytes())
        if self.labels is not None:
            digest.update(self.labels.astype(np.int64).tobytes())
        return {"source": self.source, "rows": len(self), "sha256": digest.hexdigest(), "demo": self.demo}


def find_csv(data_dir: str | Path, name: str) -> str:
    """Path of `name` (train.csv, test.csv) in data_dir: plain, .gz, or inside the competition zip."""
    folder = Path(data_dir)
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return str(candidate)
    archive = folder / COMPETITION_ZIP
    if archive.is_file():
        try:
            with zipfile.ZipFile(archive) as zf:
                if name in zf.namelist():
                    return f"{archive}::{name}"
        except (zipfile.BadZipFile, OSError) as err:
            raise DataError(f"{archive}: cannot be read: {err}: cut short or corrupt? Fetch it again") from None
    raise DataError(
        f"{folder}: no {name}, {name}.gz or {COMPETITION_ZIP} containing {name}. "
        "Run `make data` (Kaggle) or `make demo-data` (offline demo set), or pass --data_dir."
    )


def load_train(data_dir: str | Path) -> Digits:
    return _load(find_csv(data_dir, "train.csv"), TRAIN_COLUMNS, data_dir)


def load_test(data_dir: str | Path) -> Digits:
    return _load(find_csv(data_dir, "test.csv"), TEST_COLUMNS, data_dir)


def is_demo(data_dir: str | Path) -> bool:
    return (Path(data_dir) / DEMO_MARKER).is_file()


def _load(source: str, columns: list[str], data_dir: str | Path) -> Digits:
    frame = read_csv(source)
    values = validate(frame, columns, source)
    labels = values[:, 0].astype(np.int64) if columns[0] == "label" else None
    pixels = values[:, -NUM_PIXELS:].astype(np.uint8)
    images = pixels.reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 1)
    return Digits(images=images, labels=labels, source=source, demo=is_demo(data_dir))


def validate(frame: pd.DataFrame, columns: list[str], source: str) -> np.ndarray:
    """The frame's values as int64 after checking header, types, ranges and completeness."""
    header = list(frame.columns)
    if header != columns:
        position = next((i for i, (a, b) in enumerate(zip(header, columns)) if a != b), min(len(header), len(columns)))
        got = header[position] if position < len(header) else "(end of header)"
        want = columns[position] if position < len(columns) else "(end of header)"
        raise DataError(
            f"{source}, line 1 (header), column {position + 1}: expected {want!r}, got {shorten(got)!r} "
            f"(expected {len(columns)} columns: {columns[0]}, ..., {columns[-1]}; got {len(header)})"
        )
    if frame.empty:
        raise DataError(f"{source}: no data rows after the header; expected at least one")

    missing = frame.isna().to_numpy()
    if missing.any():
        row, col = np.argwhere(missing)[0]
        raise DataError(f"{_where(source, row, columns[col])}: missing value; the data must be complete")

    for col, name in enumerate(columns):
        if frame[name].dtype.kind not in "iu":
            row = _first_non_integer(frame[name])
            raise DataError(
                f"{_where(source, row, name)}: expected an integer, got {str(frame[name].iloc[row])!r}"
            )

    values = frame.to_numpy(dtype=np.int64)
    limits = np.array([NUM_CLASSES - 1 if name == "label" else 255 for name in columns])
    bad = (values < 0) | (values > limits)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(
            f"{_where(source, row, columns[col])}: expected an integer 0..{limits[col]}, got {values[row, col]}"
        )
    return values


def _first_non_integer(series: pd.Series) -> int:
    """Row of the first value that is not a whole number (e.g. 1.5 or 'abc')."""
    if series.dtype.kind == "f":
        bad = (series != np.floor(series)).to_numpy()
    else:
        bad = ~series.astype(str).str.strip().str.fullmatch(r"[+-]?\d+").to_numpy(dtype=bool)
    hits = np.flatnonzero(bad)
    return int(hits[0]) if hits.size else 0  # a column of whole numbers written as decimals ("3.0")


def _where(source: str, row: int, column: str) -> str:
    # Line numbers as an editor shows them: the header is line 1, data row 0 is line 2.
    return f"{source}, line {row + 2}, column {column}"
