"""A run's exported TFLite models, as edge.export.tflite writes them and edge.export.check reads them.

    RUN/tflite/model_<variant>.tflite and RUN/tflite/manifest.json (see edge/export/tflite.py)

Needs the competition package (a run's config.json); keras_probabilities needs TensorFlow. For the
training machine, not the Pi.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from competition.config import ROOT, TrainConfig
from competition.data.reading import load_model
from competition.runs.layout import CONFIG_FILE, MODEL_FILE

VARIANTS = ("float32", "dynamic_range", "float16", "int8")
EXPORT_DIR = "tflite"
MANIFEST_FILE = "manifest.json"


def variant_file(variant: str) -> str:
    return f"model_{variant}.tflite"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_config(folder: Path) -> TrainConfig:
    saved = json.loads((folder / CONFIG_FILE).read_text())
    fields = TrainConfig.__dataclass_fields__
    return TrainConfig(**{k: v for k, v in saved.items() if k in fields})


def run_data_dir(folder: Path, data_dir: str | None) -> Path:
    """The data the run was trained on (as its config.json says), unless data_dir is given."""
    chosen = Path(data_dir or run_config(folder).data_dir)
    return chosen if chosen.is_absolute() or chosen.exists() else ROOT / chosen


def keras_probabilities(folder: Path, images: np.ndarray) -> np.ndarray:
    """The run's Keras model on raw pixels: the float reference the variants are checked against."""
    model = load_model(folder / MODEL_FILE)
    return model.predict(images.astype(np.float32), batch_size=256, verbose=0)
