"""The one place the project reads the files it takes: CSVs (plain, .gz, inside a zip), Keras
models, and the JSON files of a run folder.

Every failure of a read becomes the project's own error naming the file and what was wrong (cut
short, not that kind of file, not text, not JSON, a missing key) instead of the library's exception
(EOFError, zlib.error, `ValueError: File not found` for a file that exists). A missing file stays a
FileNotFoundError: callers say what to run to make it.
"""

from __future__ import annotations

import gzip
import json
import zipfile
import zlib
from pathlib import Path

import pandas as pd

from common.errors import DataError, FileError, shorten

MEMBER_SEP = "::"  # "archive.zip::train.csv": a CSV inside a zip
SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "bars"}  # what spreadsheets export instead of commas


def read_csv(source: str | Path, **options) -> pd.DataFrame:
    """A CSV as a DataFrame: a path (.gz read as gzip) or "archive.zip::member", `options` passed to
    pandas.read_csv (dtype=...); DataError if it cannot be read as one, FileNotFoundError if it is
    not there."""
    source = str(source)
    try:
        if MEMBER_SEP in source:
            archive, member = source.split(MEMBER_SEP, 1)
            with zipfile.ZipFile(archive) as zf, zf.open(member) as handle:
                frame = pd.read_csv(handle, **options)
        else:
            frame = pd.read_csv(source, **options)
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile) as err:
        raise unreadable(source, err) from None
    check_separator(frame, source)
    return frame


def unreadable(source: str | Path, err: BaseException) -> DataError:
    """The DataError for a CSV (or its .gz or zip) that `err` stopped from being read."""
    if isinstance(err, pd.errors.EmptyDataError):
        return DataError(f"{source}: the file is empty; expected a header line and data rows")
    if isinstance(err, pd.errors.ParserError):
        return DataError(f"{source}: not a well-formed CSV: {err}")
    if isinstance(err, gzip.BadGzipFile):
        return DataError(f"{source}: not a gzip file ({err}), though its name ends in .gz")
    if isinstance(err, (EOFError, zlib.error, zipfile.BadZipFile)):
        return DataError(f"{source}: cut short or corrupt ({err}): an interrupted download? Fetch it again")
    if isinstance(err, UnicodeDecodeError):
        return DataError(f"{source}: not a text file (byte {err.start} is not UTF-8): expected a CSV")
    if isinstance(err, OSError):
        return DataError(f"{source}: cannot be read: {err.strerror or err}")
    return DataError(f"{source}: cannot be read as CSV: {err}")


def check_separator(frame: pd.DataFrame, source: str) -> None:
    """DataError when the header is one column that another separator splits: a CSV saved with
    semicolons or tabs (a European spreadsheet's default) reads as a single 6.9 KB column name."""
    if len(frame.columns) != 1:
        return
    name = str(frame.columns[0])
    for sep, what in SEPARATORS.items():
        if sep in name:
            raise DataError(f"{source}, line 1 (header): columns are separated by {what} ({sep!r}); "
                            f"expected commas (','), as Kaggle's CSVs are. Header starts {shorten(name)!r}")


def read_json(path: str | Path, keys: tuple[str, ...] = ()):
    """A JSON file's content; FileError if it is not valid JSON (a file cut short) or, for an
    object, lacks one of `keys`; FileNotFoundError if it is not there."""
    path = Path(path)
    try:
        content = json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except json.JSONDecodeError as err:
        raise FileError(f"{path}: not valid JSON ({err}): cut short or edited by hand?") from None
    except UnicodeDecodeError as err:
        raise FileError(f"{path}: not a text file (byte {err.start} is not UTF-8): expected JSON") from None
    except OSError as err:
        raise FileError(f"{path}: cannot be read: {err.strerror or err}") from None
    missing = [key for key in keys if not isinstance(content, dict) or key not in content]
    if missing:
        raise FileError(f"{path}: no {', '.join(map(repr, missing))} in it: not the file this project writes there")
    return content


def load_model(path: str | Path):
    """The Keras model saved at path; FileError if the file is not one (random bytes, cut short,
    another kind of file), FileNotFoundError if there is none."""
    import keras  # heavy: imported only when a model is read

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "no such file: expected a model saved by training", str(path))
    if path.is_dir():
        raise FileError(f"{path}: a folder, expected a .keras file")
    try:
        with zipfile.ZipFile(path) as zf:  # a .keras file is a zip: check it whole before Keras reads it
            bad = zf.testzip()
            names = set(zf.namelist())
    except zipfile.BadZipFile:
        raise FileError(f"{path}: not a Keras model file (not a zip archive: cut short, or another kind "
                        f"of file); {path.stat().st_size:,} bytes") from None
    except (OSError, EOFError, zlib.error) as err:
        raise FileError(f"{path}: cannot be read ({err})") from None
    if bad is not None:
        raise FileError(f"{path}: corrupt: member {bad} fails its checksum")
    if "config.json" not in names:
        raise FileError(f"{path}: a zip, but not a Keras model (no config.json inside)")
    try:
        return keras.models.load_model(path)
    # What Keras and h5py raise on a bad file inside a sound zip: a missing key, a wrong type, a short h5.
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, OSError, EOFError, zlib.error,
            zipfile.BadZipFile) as err:
        raise FileError(f"{path}: cannot be loaded as a Keras model ({type(err).__name__}: "
                        f"{shorten(' '.join(str(err).split()), 200)})") from err
