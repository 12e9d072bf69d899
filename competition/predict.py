"""Class probabilities from a run folder or an ensemble folder, with optional test-time augmentation.

An ensemble folder (made by competition.ensemble) holds ensemble.json and one run folder per member;
its probabilities are the mean of its members'. With tta > 0, each model also sees `tta` randomly
warped copies of every digit (milder than training's augmentation) and their probabilities are
averaged with the original's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from competition.runs import ENSEMBLE_FILE, MODEL_FILE

# Test-time warps: half the training ranges, so each copy stays a clean digit.
TTA_ROTATION_DEG, TTA_SHIFT_FRAC, TTA_ZOOM_FRAC = 5.0, 0.05, 0.05


def model_paths(folder: Path) -> list[Path]:
    """The model files behind a run folder (one) or an ensemble folder (its members')."""
    ensemble = folder / ENSEMBLE_FILE
    if ensemble.is_file():
        members = json.loads(ensemble.read_text())["members"]
        return [folder / member / MODEL_FILE for member in members]
    return [folder / MODEL_FILE]


def model_probabilities(model, images: np.ndarray, tta: int = 0, seed: int = 0) -> np.ndarray:
    x = images.astype(np.float32)
    probs = model.predict(x, batch_size=256, verbose=0)
    if tta:
        import tensorflow as tf

        from competition.augment import random_affine

        tf.random.set_seed(seed)
        for _ in range(tta):
            warped = random_affine(tf.constant(x), TTA_ROTATION_DEG, TTA_SHIFT_FRAC, TTA_ZOOM_FRAC).numpy()
            probs += model.predict(warped, batch_size=256, verbose=0)
        probs /= tta + 1
    return probs


def stacked_probabilities(model_files: list[Path], images: np.ndarray, tta: int = 0) -> np.ndarray:
    """(models, N, 10): each model file's probabilities."""
    import keras  # heavy: imported only when predicting

    return np.stack([model_probabilities(keras.models.load_model(path), images, tta) for path in model_files])


def member_probabilities(folder: Path, images: np.ndarray, tta: int = 0) -> np.ndarray:
    """(members, N, 10): each model's probabilities."""
    return stacked_probabilities(model_paths(folder), images, tta)


def probabilities(folder: Path, images: np.ndarray, tta: int = 0) -> np.ndarray:
    """(N, 10): the run's probabilities, or the mean of an ensemble's members'."""
    return member_probabilities(folder, images, tta).mean(axis=0)
