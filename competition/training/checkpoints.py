"""Epoch checkpoints of a training in progress: a run that is killed (a closed laptop, a lost
cluster node, a Kaggle session cut) resumes from its last finished epoch when the same command runs
again.

A run's folder appears only when the run ends (runs/building.run_folder), so what a killed run had
learnt is kept beside it, in models_dir/.resume-<name>-<key>/: Keras' BackupAndRestore writes the
weights and the optimizer's state (its step count, so a one-cycle rate goes on where it was, its
moments and the weights' moving average) after every epoch, and the finished epochs' rows of
history.csv are kept with them. The key hashes everything that changes what the run learns (its
settings, its precision and the rows it trains on), so only the same run resumes from it. The
folder is removed once the run's own folder is in place; one left by a run never started again
can be deleted by hand.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Iterator

import keras
import numpy as np

from common.errors import BusyError
from common.writing import write_whole
from competition.runs.building import lock_held
from competition.runs.layout import HISTORY_FILE

PREFIX = ".resume-"
LOCK_FILE = "lock"
EPOCH_FILE = "training_metadata.json"  # BackupAndRestore's own record of the epochs finished
SLACK_BYTES = 2**20  # h5's own structure and the history beside the weights

log = logging.getLogger("competition")


def folder_for(models_dir: str | Path, name: str, identity: dict, rows=None) -> Path:
    """Where the run named `name` with these settings (and these train/validation rows) keeps its
    checkpoints."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    for part in rows or ():
        digest.update(np.ascontiguousarray(part).tobytes())
    return Path(models_dir) / f"{PREFIX}{name}-{digest.hexdigest()[:12]}"


@contextlib.contextmanager
def held(folder: Path) -> Iterator[Path]:
    """The checkpoint folder for this process for the block (two runs of the same settings at once
    would overwrite each other's); removed when the block ends well, or fails before an epoch is
    kept, so that a run refused at its start leaves nothing."""
    folder.mkdir(parents=True, exist_ok=True)
    with lock_held(folder / LOCK_FILE) as fd:
        if fd is None:
            raise BusyError(f"{folder} is in use: a run with the same settings is training; wait until it ends")
        try:
            yield folder
        except BaseException:
            if not epochs_done(folder):
                shutil.rmtree(folder, ignore_errors=True)
            raise
    shutil.rmtree(folder, ignore_errors=True)


def epochs_done(folder: Path) -> int:
    """Epochs a killed run of these settings finished (0: none)."""
    try:
        return int(json.loads((folder / EPOCH_FILE).read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


class EpochBackup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that also keeps the finished epochs' rows of history.csv beside the weights
    (`restore_history` puts them back before the next fit). Goes last among the callbacks, so the
    rows it copies hold the epoch just finished."""

    def __init__(self, folder: Path, history: Path):
        # double_checkpoint: a kill while the weights are written leaves the previous epoch's to load
        super().__init__(str(folder), double_checkpoint=True, delete_checkpoint=False)
        self.folder, self.history = folder, history

    def _save_model(self):
        # Room first: h5py, out of space mid-write, also prints a traceback from its clean-up, after
        # the error itself. Twice the state: the previous epoch's copy is kept beside it.
        state = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize
                    for v in [*self.model.weights, *self.model.optimizer.variables])
        disk = os.statvfs(self.folder)
        if disk.f_bavail * disk.f_frsize < 2 * state + SLACK_BYTES:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        try:
            super()._save_model()
        except RuntimeError as err:  # h5py's word for a write that failed: said as the OS error it was
            found = re.search(r"errno = (\d+)", str(err))
            code = int(found.group(1)) if found else errno.EIO
            raise OSError(code, os.strerror(code)) from err

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.history.is_file():
            write_whole(self.folder / HISTORY_FILE, lambda tmp: shutil.copyfile(self.history, tmp))


def restore_history(folder: Path, history: Path) -> None:
    """The finished epochs' history.csv rows, where the resumed run's CSVLogger appends to them."""
    kept = folder / HISTORY_FILE
    if kept.is_file():
        shutil.copyfile(kept, history)


def resume(folder: Path, history: Path, epochs: int) -> int:
    """Epochs a killed run of these settings finished (0: none); with some, its history.csv rows put
    back and a line that says so."""
    done = epochs_done(folder)
    if done:
        restore_history(folder, history)
        log.info(f"resume: {done} of {epochs} epochs were finished by a run of these settings that was "
                 f"stopped ({folder.name}); training on from epoch {min(done + 1, epochs)}")
    return done
