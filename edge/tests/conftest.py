"""The edge suite: runs where TensorFlow is absent, on files the main environment built.

`make test-edge` builds build/edge-fixtures (scripts/edge_fixtures.py: a model trained on the demo
set, its four TFLite variants, its validation digits and the Keras model's probabilities for them),
then runs this suite in .venv-litert (ai-edge-litert, numpy 2) and .venv-tflite (tflite-runtime
2.14, numpy<2). $EDGE_EXPECT_INTERPRETER names the interpreter each one must be using.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(os.environ.get("EDGE_FIXTURES", ROOT / "build" / "edge-fixtures"))
VARIANTS = ("float32", "dynamic_range", "float16", "int8")


@pytest.fixture(scope="session")
def fixtures() -> Path:
    if not (FIXTURES / "manifest.json").is_file():
        pytest.fail(f"{FIXTURES}: no edge fixtures; `make test-edge` builds them (scripts/edge_fixtures.py)")
    return FIXTURES


@pytest.fixture(scope="session")
def digits(fixtures):
    """The fixture run's validation digits: pixels (N, 784) uint8 and labels (N,)."""
    table = np.loadtxt(fixtures / "digits.csv", delimiter=",", skiprows=1, dtype=np.int64)
    return table[:, 1:].astype(np.uint8), table[:, 0]


@pytest.fixture(scope="session")
def reference(fixtures) -> dict:
    """The Keras model's probabilities (N, 10) and labels for the same digits."""
    saved = json.loads((fixtures / "reference.json").read_text())
    return {"probabilities": np.array(saved["keras_probabilities"], np.float32),
            "labels": np.array(saved["keras_labels"])}


def model_path(fixtures: Path, variant: str) -> Path:
    return fixtures / f"model_{variant}.tflite"
