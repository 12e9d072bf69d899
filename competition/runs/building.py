"""Run folders built whole, the locks that keep two processes apart, and the disk checked first.

A run is built in a hidden `.tmp-<id>` folder and renamed to `<id>` once everything is in it, so a
crash or Ctrl-C never leaves a folder that looks like a finished run. While it is built, its process
holds a lock on `.tmp-<id>.lock` beside it; a `.tmp-<id>` whose lock nobody holds was left by a
process that was killed (kill -9, a power cut), and the next command that looks in the folder
removes it. Work that two commands must not do at once in one folder (a CV, an ensemble, a search)
takes `exclusive(folder)`: the second one is refused with a message naming the first.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

from common.errors import BusyError, ProjectError
from competition.runs.console import log
from competition.runs.layout import LOG_FILE

TMP_PREFIX = ".tmp-"
LOCK_SUFFIX = ".lock"
# A run's bytes on disk beside its model: logs, history, metrics, predictions; and some to spare.
RUN_SLACK_BYTES = 2 * 2**20


@contextlib.contextmanager
def run_folder(models_dir: str | Path, run_id: str) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it becomes models_dir/run_id. The run's log
    lines go to its train.log meanwhile."""
    with _building(models_dir, run_id) as tmp:
        handler = logging.FileHandler(tmp / LOG_FILE)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
        try:
            yield tmp
        finally:
            log.removeHandler(handler)
            handler.close()


def run_files(run: Path) -> dict[str, bytes]:
    """A finished run folder's files by relative path: what place_run writes elsewhere."""
    return {str(path.relative_to(run)): path.read_bytes() for path in sorted(run.rglob("*")) if path.is_file()}


def place_run(models_dir: str | Path, run_id: str, files: dict[str, bytes]) -> Path:
    """Write a run folder trained elsewhere (a cluster's node: its files by relative path) as
    models_dir/run_id, whole or not at all, as run_folder writes one trained here."""
    with _building(models_dir, run_id) as tmp:
        for relative, data in files.items():
            target = tmp / relative
            if tmp.resolve() not in target.resolve().parents:  # a name from another machine stays inside the run
                raise ProjectError(f"run {run_id}: its file {relative!r} is outside its folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    return Path(models_dir) / run_id


@contextlib.contextmanager
def _building(models_dir: str | Path, run_id: str) -> Iterator[Path]:
    """The hidden .tmp-<id> folder a run is built in, locked; renamed to <id> when the block ends
    well, removed when it does not."""
    models = Path(models_dir)
    models.mkdir(parents=True, exist_ok=True)
    remove_killed_runs(models)
    final = models / run_id
    if final.exists():
        raise FileExistsError(f"{final} exists already")
    tmp = models / f"{TMP_PREFIX}{run_id}"
    # The lock before the folder: a .tmp folder whose lock is free belongs to no living process.
    with lock_held(_lock_path(tmp)) as held:
        if held is None:
            raise BusyError(f"{tmp} is being written by another process: a run of the same name started "
                            "in the same second; start this one again")
        tmp.mkdir()
        try:
            yield tmp
            os.replace(tmp, final)
        except OSError as err:
            if err.filename is None:  # a write that failed (no space left) names no file: name the folder
                err.filename = str(models)
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # a failed run leaves nothing behind


def _lock_path(tmp: Path) -> Path:
    return tmp.with_name(tmp.name + LOCK_SUFFIX)


@contextlib.contextmanager
def lock_held(lock: Path) -> Iterator[int | None]:
    """An exclusive flock on the file `lock` for the block: its descriptor, or None when another
    process holds it. The kernel releases it when the process ends, however it ends; the file is
    removed when the block ends, so that locks leave nothing behind."""
    fd = _acquire(lock)
    try:
        yield fd
    finally:
        if fd is not None:
            lock.unlink(missing_ok=True)  # before the release: whoever waits then makes a new file
            os.close(fd)


def _acquire(lock: Path) -> int | None:
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                return fd
        os.close(fd)  # its last holder removed it as we opened it: lock the file that is there now


def remove_killed_runs(models_dir: str | Path) -> list[Path]:
    """Remove the .tmp-<id> folders in models_dir that no living process is writing (their lock is
    free): runs killed before they finished. Each is named on stderr; one that cannot be removed
    (a read-only folder), or that has no lock file at all (made by a version of this project before
    the locks, whose process may still be running), is reported instead. Returns those removed."""
    removed = []
    folder = Path(models_dir)
    if not folder.is_dir():
        return removed
    for tmp in sorted(p for p in folder.iterdir() if p.name.startswith(TMP_PREFIX) and p.is_dir()):
        if not _lock_path(tmp).exists():
            print(f"note: {tmp} is an unfinished run without a lock (from an older version of this project): "
                  "delete it by hand once no training is running", file=sys.stderr)
            continue
        try:
            with lock_held(_lock_path(tmp)) as held:
                if held is None:
                    continue  # a run in progress in another process
                shutil.rmtree(tmp)
        except FileNotFoundError:
            continue  # it finished (renamed) while we looked
        except OSError as err:
            print(f"note: {tmp} was left by a run that was killed; it cannot be removed ({err.strerror}): "
                  "delete it by hand", file=sys.stderr)
            continue
        print(f"note: removed {tmp}, left by a run that was killed before it finished", file=sys.stderr)
        removed.append(tmp)
    return removed


@contextlib.contextmanager
def exclusive(folder: str | Path, what: str = "") -> Iterator[Path]:
    """Hold `folder` for this process for the block: a lock file beside it (so that deleting the
    folder, as --fresh does, keeps the lock) that names the holder. BusyError if another process holds
    it, saying which. `what` names the work in that message (e.g. "a cross-validation")."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = folder.with_name(f".{folder.name}{LOCK_SUFFIX}")
    with lock_held(lock) as fd:
        if fd is None:
            holder = ""
            with contextlib.suppress(OSError):  # it may end as we look
                holder = lock.read_text().strip()
            holder = holder or "another process"
            raise BusyError(f"{folder} is in use by {holder}{f' ({what})' if what else ''}: wait until it ends, "
                            "or give this one another --name")
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} ({Path(sys.argv[0]).name}, since {time.strftime('%H:%M:%S')})".encode())
        yield folder


def check_room(folder: str | Path, needed_bytes: int, what: str) -> None:
    """Before a long job: ProjectError unless folder is (or can be made) a folder this process can
    write to, with needed_bytes free, so that a full or read-only disk is found now, not at the end."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ProjectError(f"{folder}: a file, not a folder: {what} needs a folder there")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as err:  # permission denied, a read-only file system: said of the folder
        raise OSError(err.errno, err.strerror, str(folder)) from None
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise ProjectError(f"{folder}: {free / 2**20:.1f} MB free, {what} needs about "
                           f"{needed_bytes / 2**20:.1f} MB: free some space or pass --models_dir elsewhere")


def run_bytes(parameters: int, ema: bool = False) -> int:
    """What a run writes, about: model.keras holds float32 weights and Adam's two moments (three
    copies; four with --ema's average), plus logs and predictions."""
    return parameters * 4 * (4 if ema else 3) + RUN_SLACK_BYTES

