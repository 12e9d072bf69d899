"""Run folders under models/: each run is self-describing and appears whole or not at all.

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

from common.errors import BusyError, ConfigError, ProjectError
from common.writing import write_json
from competition.data.reading import read_json

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
FINGERPRINT_FILE = "data_fingerprint.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
LOG_FILE = "train.log"
ROWS_FILE = "rows.npz"  # the train.csv rows a run trained and validated on, when chosen for it (CV folds)
ENSEMBLE_FILE = "ensemble.json"  # marks an ensemble folder: members' run folders inside
CV_SCORES_FILE = "cv.json"  # a cross-validation's held-out scores (competition/cv.py)
TUNED_NAME = "tuned"  # runs of the searched model, preferred by default

TMP_PREFIX = ".tmp-"
LOCK_SUFFIX = ".lock"
# A run's bytes on disk beside its model: logs, history, metrics, predictions; and some to spare.
RUN_SLACK_BYTES = 2 * 2**20

log = logging.getLogger("competition")


def new_run_id(name: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"


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


def is_run(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith(".") and (path / MODEL_FILE).is_file()


def is_ensemble(path: Path) -> bool:
    return path.is_dir() and (path / ENSEMBLE_FILE).is_file()


def resolve_run(models_dir: str | Path, run: str | None = None, name: str | None = None, single: bool = False,
                say=print) -> Path:
    """A run folder: `run` (a path, or an id under models_dir); else the newest run called `name`;
    else the finished run or ensemble with the best recorded score (best_scored: said through `say`,
    with why); else the newest tuned run (`make train-best`); else the newest run.
    single: a folder of one model is wanted (to report on, to export), so an ensemble of one member
    (the fast and best-single recipes) stands for that member, and larger ensembles are passed over."""
    models = Path(models_dir)
    remove_killed_runs(models)
    if run:
        for candidate in (Path(run), models / run):
            if is_run(candidate) or is_ensemble(candidate):
                return (sole_member(candidate) or candidate) if single else candidate
        raise FileNotFoundError(f"no run {run!r}: expected a folder with {MODEL_FILE} or {ENSEMBLE_FILE}, "
                                f"as a path or under {models}")
    runs = sorted(p for p in models.iterdir() if is_run(p)) if models.is_dir() else []
    if name:
        runs = [p for p in runs if p.name.endswith(f"-{name}")]
    elif (picked := best_scored(models, single)) is not None:
        say(f"run: {picked[0]} ({picked[1]}; RUN=<id> picks another)")
        return picked[0]
    if not runs and not name:  # nothing scored and no single run: the newest ensemble or recipe
        ensembles = sorted((p for p in models.iterdir() if is_ensemble(p) and (single is False or sole_member(p))),
                           key=lambda p: (p / ENSEMBLE_FILE).stat().st_mtime) if models.is_dir() else []
        if ensembles:
            picked = sole_member(ensembles[-1]) if single else ensembles[-1]
            say(f"run: {picked} (the newest finished ensemble; none has a recorded score; RUN=<id> picks another)")
            return picked
    if not runs:
        what = f"run named {name!r}" if name else "trained run"
        raise FileNotFoundError(f"no {what} in {models}: run `make best` or `make train` (or `make demo`) first")
    tuned = [p for p in runs if p.name.endswith(f"-{TUNED_NAME}")]
    return (tuned or runs)[-1]  # ids start with a timestamp, so the last is the newest


def sole_member(folder: Path) -> Path | None:
    """The run folder of an ensemble of exactly one member; None for anything else."""
    if not is_ensemble(folder):
        return None
    try:
        members = read_json(folder / ENSEMBLE_FILE)["members"]
    except (ProjectError, KeyError, TypeError):
        return None
    return folder / members[0] if len(members) == 1 and is_run(folder / members[0]) else None


def recorded_score(folder: Path) -> tuple[float, str, bool] | None:
    """The accuracy a finished run, ensemble, CV or recipe folder recorded for itself, what that
    figure is, and whether it was of demo data; None when it recorded none (models of every row
    outside a recipe) or its record cannot be read."""
    try:
        metrics = read_json(folder / METRICS_FILE) if (folder / METRICS_FILE).is_file() else {}
        demo = bool(metrics.get("demo_data"))
        if metrics.get("validation"):
            return float(metrics["validation"]["accuracy"]), "validation accuracy", demo
        if metrics.get("estimate"):
            return float(metrics["estimate"]["accuracy"]), f"expected accuracy, {metrics['estimate']['source']}", demo
        if (folder / CV_SCORES_FILE).is_file():
            scores = read_json(folder / CV_SCORES_FILE)
            part = scores.get("ensemble") or scores["single"]
            return float(part["mean"]), f"{scores['k']}-fold CV accuracy", bool(scores.get("demo_data"))
    except (ProjectError, KeyError, TypeError, ValueError):
        return None
    return None


def best_scored(models_dir: str | Path, single: bool = False) -> tuple[Path, str] | None:
    """The finished run or ensemble under models_dir with the highest recorded score, and a sentence
    saying why; runs of the competition's data before demo ones. None when none has a score."""
    folder = Path(models_dir)
    scored = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.name.startswith(".") or not (is_run(path) or is_ensemble(path)):
            continue
        target = (sole_member(path) if is_ensemble(path) else path) if single else path
        found = recorded_score(path)
        if target is not None and found is not None:
            scored.append((found, path, target))
    pool = [s for s in scored if not s[0][2]] or scored
    if not pool:
        return None
    (score, what, _), source, target = max(pool, key=lambda s: (s[0][0], s[1].name))  # ties: the newest
    via = f", its model {target.name}" if target != source else ""
    among = (f"the best recorded score of {len(pool)} finished runs and ensembles" if len(pool) > 1
             else "the only finished run or ensemble with a recorded score")
    return target, f"picked {source.name}{via}: {among}, {what} {score:.5f}"


def check_same_settings(path: Path, settings: dict, keys: tuple[str, ...], defaults: dict | None = None) -> bool:
    """For work that resumes (searches, folds, ensembles): True when path records the same settings
    for `keys`, False when there is no record yet; ConfigError naming the differences otherwise.
    A key the record lacks (a setting added since) counts as its value in `defaults`: the work was
    done the way that default does it."""
    if not path.is_file():
        return False
    saved = {**(defaults or {}), **read_json(path)}
    changed = [key for key in keys if saved.get(key) != settings.get(key)]
    if changed:
        diffs = ", ".join(f"{key} {saved.get(key)} -> {settings.get(key)}" for key in changed)
        raise ConfigError(f"{path.parent} holds work with other settings ({diffs}): "
                         "pass --fresh to start over, or --name for a new one")
    return True


def recorded(path: Path, key: str):
    """The value a settings file (cv_config.json, ...) records for key; None without the file or the key."""
    return read_json(path).get(key) if path.is_file() else None


def open_resumable(folder: Path, settings_file: str, settings: dict, keys: tuple[str, ...], fresh: bool,
                   defaults: dict | None = None) -> bool:
    """Start or resume work kept in folder (CV folds, ensemble members): --fresh deletes it first;
    settings must match those recorded for `keys` (see check_same_settings); the current ones are
    recorded. True if resuming."""
    if fresh and folder.exists():
        shutil.rmtree(folder)
    resuming = check_same_settings(folder / settings_file, settings, keys, defaults)
    write_json(folder / settings_file, settings)
    return resuming


class _Console(logging.StreamHandler):
    """Writes to whatever sys.stdout is now (pytest and notebooks swap it)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _):
        pass


def setup_console_logging(prefix: str = "") -> None:
    """One summary line per phase on the console, each after `prefix`; run_folder() adds the run's
    log file."""
    if not any(isinstance(h, _Console) for h in log.handlers):
        console = _Console()
        console.setFormatter(logging.Formatter(f"{prefix}%(message)s"))
        log.addHandler(console)
    log.setLevel(logging.INFO)
    log.propagate = False
