"""Files the edge commands write: whole or not at all, in folders checked before the work starts.

    writable_folder(Path("out"), what="out/submission.csv")   # made, or refused naming the file in the way
    write_whole(Path("out/a.png"), lambda tmp: image.save(tmp, "PNG"))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from edge.errors import InputError


def writable_folder(folder: Path, what: str) -> None:
    """Make `folder` (for writing `what`), or say which part of its path is a file."""
    for part in (folder, *folder.parents):
        if part.exists():
            if not part.is_dir():
                raise InputError(f"{what}: cannot be written: {part} is a file, not a folder")
            break
    folder.mkdir(parents=True, exist_ok=True)


def write_whole(target: Path, write: Callable[[Path], object]) -> None:
    """write(tmp) on a temporary name beside target, then renamed over it: a crash leaves the old or the new."""
    target = Path(target)
    writable_folder(target.parent, what=str(target))
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
