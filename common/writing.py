"""Files written whole: to a temporary name beside the target, then renamed over it.

    with atomic_path("out/model.keras") as tmp: model.save(tmp)
    write_whole(Path("out/a.png"), lambda tmp: image.save(tmp, "PNG"))
    writable_folder(Path("out"), what="out/submission.csv")   # made, or refused naming the file in the way

A crash, or a power cut (the file and the rename are fsynced), leaves the old file or the new one,
never half of one; the temporary file of a writer that
was killed (`.<name>.<pid>.tmp`, its pid gone) is removed by the next write of that file. The
trainer and the Pi runtime both write this way (standard library only).
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
from pathlib import Path
from typing import Callable, Iterator

from common.errors import InputError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on error it is removed."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as err:  # with exist_ok, only a file where a folder should be
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), err.filename) from None
    _remove_killed_writes(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        _sync(tmp)  # the bytes on disk before the name points at them
        os.replace(tmp, target)
        _sync(target.parent)  # and the rename itself, so a power cut keeps the old file or the new one
    except OSError as err:
        if err.filename is None:  # a write() that failed (no space left) says no file: name the target
            err.filename = str(target)
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _sync(path: Path) -> None:
    """fsync a file, or a folder's entries; where a file system cannot (some network mounts), the
    rename is still atomic for processes, only not across a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _remove_killed_writes(target: Path) -> None:
    for tmp in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        pid = tmp.name[len(target.name) + 2 : -len(".tmp")]
        if pid.isdigit() and not pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (a temporary file's writer)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def writable_folder(folder: Path, what: str) -> None:
    """Make `folder` (for writing `what`), or say which part of its path is a file."""
    for part in (folder, *folder.parents):
        if part.exists():
            if not part.is_dir():
                raise InputError(f"{what}: cannot be written: a file is in the way where a folder is needed "
                                 f"({part} is a file, not a folder)")
            break
    folder.mkdir(parents=True, exist_ok=True)


def write_whole(target: str | Path, write: Callable[[Path], object]) -> None:
    """write(tmp) on a temporary name beside target, then renamed over it; its folder checked first."""
    target = Path(target)
    writable_folder(target.parent, what=str(target))
    with atomic_path(target) as tmp:
        write(tmp)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")


def _jsonable(obj):
    # numpy scalars and arrays, which metrics are full of
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
