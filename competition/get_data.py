"""Put the competition's CSVs in data/: downloaded from Kaggle, or copied from a local zip or folder.

    python -m competition.get_data                                       # from Kaggle (credentials: README)
    python -m competition.get_data --source ../shared/data/digit-recognizer
    python -m competition.get_data --source ~/Downloads/digit-recognizer.zip --force

Writes plain train.csv, test.csv and sample_submission.csv (from the competition's zip, or from a
folder of .csv or .csv.gz files), checks them as training does (sample_submission.csv as a
submission), and prints rows and bytes. Everything is staged in a hidden folder inside data/ and
renamed into place only once all of it is valid, so a failed or interrupted fetch leaves data/ as it
was. Files already there and valid are kept unless --force.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

from competition import startup

startup.begin()  # before TensorFlow loads: Keras' backend, its start-up lines quieted

from common.digits_csv import SubmissionError, check_submission
from common.errors import DataError, add_debug_flag, exit_status
from common.writing import pid_alive
from competition.cli import add_data_dir, add_retry_flags
from competition.data.digits import COMPETITION_ZIP, load_test, load_train
from competition.data.reading import MEMBER_SEP, read_csv, unreadable
from competition.kaggle.client import BACKOFF_S, RETRIES, KaggleClient

REQUIRED = ("train.csv", "test.csv")
SAMPLE = "sample_submission.csv"  # in the competition's zip; not needed to train, so optional elsewhere
STAGING_PREFIX = ".get_data-"  # + the fetch's process id


def check_folder(folder: Path) -> list[tuple[str, int, int]]:
    """(name, rows, bytes) of each plain CSV in folder, after the pipeline's checks; DataError if bad."""
    train, test = load_train(folder), load_test(folder)
    found = [("train.csv", len(train)), ("test.csv", len(test))]
    if (folder / SAMPLE).is_file():
        try:
            check_submission(read_csv(folder / SAMPLE), len(test), str(folder / SAMPLE))
        except SubmissionError as err:
            raise DataError(str(err)) from None
        found.append((SAMPLE, len(test)))
    return [(name, rows, (folder / name).stat().st_size) for name, rows in found]


def installed(data_dir: Path) -> list[tuple[str, int, int]] | None:
    """The competition's files in data_dir when all three are there, plain and valid; else None."""
    if not all((data_dir / name).is_file() for name in (*REQUIRED, SAMPLE)):
        return None
    try:
        return check_folder(data_dir)
    except DataError as err:
        print(f"data: {err}; fetching again")
        return None


def extract_zip(archive: Path, out: Path, shown: str | None = None) -> dict[str, str]:
    """The competition's CSVs from its zip into out, by name whatever folder they sit in; for each,
    where it came from, as messages name it (`shown` names the archive, default its path)."""
    shown = shown or str(archive)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = {Path(m).name: m for m in zf.namelist() if Path(m).name in (*REQUIRED, SAMPLE)}
            missing = [name for name in REQUIRED if name not in members]
            if missing:
                raise DataError(f"{shown}: no {' or '.join(missing)} inside (it holds: "
                                f"{', '.join(zf.namelist()) or 'nothing'})")
            for name, member in members.items():
                with zf.open(member) as src, open(out / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except (zipfile.BadZipFile, EOFError, zlib.error) as err:
        raise DataError(f"{shown}: not a readable zip ({err}): cut short or corrupt? Fetch it again") from None
    return {name: f"{shown}{MEMBER_SEP}{member}" for name, member in members.items()}


def copy_folder(source: Path, out: Path) -> dict[str, str]:
    """name.csv or name.csv.gz from source into out as plain name.csv; for each, the file it came from."""
    origins = {}
    for name in (*REQUIRED, SAMPLE):
        plain, packed = source / name, source / f"{name}.gz"
        try:
            if plain.is_file():
                shutil.copyfile(plain, out / name)
                origins[name] = str(plain)
            elif packed.is_file():
                with gzip.open(packed) as src, open(out / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                origins[name] = str(packed)
            elif name in REQUIRED:
                raise DataError(f"{source}: no {name} or {name}.gz")
        except (gzip.BadGzipFile, EOFError, zlib.error) as err:  # other OSErrors name their file themselves
            raise unreadable(packed, err) from None
    return origins


def checked(staging: Path, origins: dict[str, str]) -> list[tuple[str, int, int]]:
    """check_folder(staging), its errors naming the user's files rather than their staged copies,
    which are gone by the time the message is read."""
    try:
        return check_folder(staging)
    except DataError as err:
        message = str(err)
        for name, origin in origins.items():
            message = message.replace(str(staging / name), origin)
        raise DataError(message) from None


def fetch(data_dir: str | Path, source: str | None = None, force: bool = False,
        retries: int = RETRIES, backoff_s: float = BACKOFF_S) -> list[tuple[str, int, int]]:
    data = Path(data_dir)
    if not force and (files := installed(data)):
        print(f"data: already in {data} and valid (--force fetches again)")
        _print_files(files)
        return files

    start = time.perf_counter()
    data.mkdir(parents=True, exist_ok=True)
    # Staged beside its destination so that the renames below stay on one file system; named after
    # this process, so that the next fetch knows a staging folder whose process is gone as litter.
    with tempfile.TemporaryDirectory(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=_without_killed_fetches(data)) as tmp:
        staging = Path(tmp)
        if source is None:
            client = KaggleClient(retries=retries, backoff_s=backoff_s)
            print(f"data: downloading {client.competition} from Kaggle as {client.username} ...")
            archive = staging / "download" / COMPETITION_ZIP
            size = client.download_data(archive)
            origin = f"Kaggle ({COMPETITION_ZIP}, {size:,} bytes in {time.perf_counter() - start:.1f}s)"
            origins = extract_zip(archive, staging, shown=f"{COMPETITION_ZIP} as downloaded from Kaggle")
        elif Path(source).is_file():
            origins = extract_zip(Path(source), staging)
            origin = source
        elif Path(source).is_dir():
            origins = copy_folder(Path(source), staging)
            origin = source
        else:
            raise DataError(f"{source}: no such file or folder; expected the competition's zip or a folder "
                            "with train.csv and test.csv (plain or .gz)")
        files = checked(staging, origins)
        for name, _, _ in files:
            (staging / name).replace(data / name)
    print(f"data: {len(files)} files from {origin} -> {data} ({time.perf_counter() - start:.1f}s)")
    _print_files(files)
    return files


def _without_killed_fetches(data: Path) -> Path:
    """data, once the staging folders of fetches that were killed (their process gone) are removed."""
    for stale in data.glob(f"{STAGING_PREFIX}*"):
        pid = stale.name[len(STAGING_PREFIX):].split("-")[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
            print(f"data: removed {stale}, left by a fetch that was killed")
    return data


def _print_files(files: list[tuple[str, int, int]]) -> None:
    for name, rows, size in files:
        print(f"  {name:<22} {rows:>7,} rows {size:>12,} bytes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_dir(parser)
    parser.add_argument("--source", default=None,
                        help="a local copy instead of Kaggle: the competition's zip, or a folder of .csv or "
                             ".csv.gz files (default: download from Kaggle)")
    parser.add_argument("--force", action="store_true", help="fetch even when valid files are there already")
    add_retry_flags(parser, RETRIES, BACKOFF_S)
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.retries < 0 or args.backoff_s < 0:
        parser.error("--retries and --backoff_s must be 0 or more")
    return exit_status(lambda: fetch(args.data_dir, args.source, args.force, args.retries, args.backoff_s),
                       args.debug, interrupted=f"{args.data_dir} is as it was")


if __name__ == "__main__":
    sys.exit(main())
