"""Class probabilities from a run folder or an ensemble folder, with optional test-time augmentation.

An ensemble folder (made by competition.ensemble) holds ensemble.json and one run folder per member;
its probabilities are the mean of its members'. With tta > 0, each model also sees `tta` randomly
warped copies of every digit (milder than training's augmentation) and their probabilities are
averaged with the original's.

Each model's probabilities are kept beside it, in <run>/predictions/, keyed by a hash of the images
and the TTA settings, and reused while the model file is unchanged: labelling test.csv for
pseudo-labels, a CV's held-out scores and a submission then load each model at most once per image
set. Delete that folder (or pass cache=False) to recompute.
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from pathlib import Path

import numpy as np

from common.writing import atomic_path
from competition.data.reading import load_model, read_json
from competition.runs.layout import ENSEMBLE_FILE, MODEL_FILE

log = logging.getLogger("competition")
PREDICTIONS_DIR = "predictions"

# Test-time warps: half the training ranges, so each copy stays a clean digit.
TTA_ROTATION_DEG, TTA_SHIFT_FRAC, TTA_ZOOM_FRAC = 5.0, 0.05, 0.05


def model_paths(folder: Path) -> list[Path]:
    """The model files behind a run folder (one) or an ensemble folder (its members')."""
    ensemble = folder / ENSEMBLE_FILE
    if ensemble.is_file():
        members = read_json(ensemble, keys=("members",))["members"]
        return [folder / member / MODEL_FILE for member in members]
    return [folder / MODEL_FILE]


def model_probabilities(model, images: np.ndarray, tta: int = 0, seed: int = 0) -> np.ndarray:
    x = images.astype(np.float32)
    probs = model.predict(x, batch_size=256, verbose=0)
    if tta:
        import tensorflow as tf

        from competition.model.augment import random_affine

        tf.random.set_seed(seed)
        for _ in range(tta):
            warped = random_affine(tf.constant(x), TTA_ROTATION_DEG, TTA_SHIFT_FRAC, TTA_ZOOM_FRAC).numpy()
            probs += model.predict(warped, batch_size=256, verbose=0)
        probs /= tta + 1
    return probs


def images_key(images: np.ndarray) -> str:
    """A short content hash of an image array: the same digits give the same key."""
    digest = hashlib.sha1(f"{images.dtype}{images.shape}".encode())
    digest.update(np.ascontiguousarray(images).data)
    return digest.hexdigest()[:16]


def _cache_path(model_file: Path, key: str, tta: int) -> Path:
    # TTA's warps are part of the key: changing their ranges must not reuse old probabilities.
    warps = f"-tta{tta}-{TTA_ROTATION_DEG:g}-{TTA_SHIFT_FRAC:g}-{TTA_ZOOM_FRAC:g}" if tta else ""
    return model_file.parent / PREDICTIONS_DIR / f"{key}{warps}.npz"


def _model_stamp(model_file: Path) -> np.ndarray:
    stat = model_file.stat()
    return np.array([stat.st_size, stat.st_mtime_ns], dtype=np.int64)


def _cached(cache: Path, stamp: np.ndarray) -> np.ndarray | None:
    try:
        with np.load(cache) as saved:
            return saved["probs"] if np.array_equal(saved["model_stamp"], stamp) else None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # absent or unreadable: recompute
        return None


def _store(cache: Path, probs: np.ndarray, stamp: np.ndarray) -> None:
    try:
        with atomic_path(cache) as tmp, open(tmp, "wb") as f:
            np.savez(f, probs=probs, model_stamp=stamp)
    except OSError as err:  # a read-only run folder still predicts, just without the cache
        log.warning(f"predictions not cached in {cache.parent}: {err}")


def stacked_probabilities(model_files: list[Path], images: np.ndarray, tta: int = 0,
                          cache: bool = True) -> np.ndarray:
    """(models, N, 10): each model file's probabilities, from its predictions/ cache when there."""
    key = images_key(images) if cache else ""
    stacked = []
    for path in model_files:
        stamp, target = _model_stamp(path), _cache_path(path, key, tta)
        probs = _cached(target, stamp) if cache else None
        if probs is None:
            probs = model_probabilities(load_model(path), images, tta)
            if cache:
                _store(target, probs, stamp)
        stacked.append(probs)
    return np.stack(stacked)


def member_probabilities(folder: Path, images: np.ndarray, tta: int = 0) -> np.ndarray:
    """(members, N, 10): each model's probabilities."""
    return stacked_probabilities(model_paths(folder), images, tta)


def probabilities(folder: Path, images: np.ndarray, tta: int = 0) -> np.ndarray:
    """(N, 10): the run's probabilities, or the mean of an ensemble's members'."""
    return member_probabilities(folder, images, tta).mean(axis=0)
