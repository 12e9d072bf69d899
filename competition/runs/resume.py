"""Work that resumes (searches, CV folds, ensemble members) under the settings it started with."""

from __future__ import annotations

import shutil
from pathlib import Path

from common.errors import ConfigError
from common.writing import write_json
from competition.data.reading import read_json


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

