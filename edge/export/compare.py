"""Each exported TFLite variant of a run against its Keras model: accuracy, agreement, size and
latency on the run's own validation digits (or a labelled CSV). The library behind `make check-edge`
(edge/export/check.py).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from common.errors import InputError
from competition.data.digits import load_train
from competition.runs.layout import FINGERPRINT_FILE, MODEL_FILE
from edge.export.exported import (
    EXPORT_DIR,
    MANIFEST_FILE,
    keras_probabilities,
    run_data_dir,
    sha256,
)
from edge.pi.classifier import DigitClassifier

CHECK_FILE = "check.json"



def validation_split(folder: Path, data_dir: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """The run's own validation images and labels (the rows it was validated on), and a description."""
    from competition.runs.rows import run_split

    digits = load_train(run_data_dir(folder, data_dir))
    _, x_val, _, y_val = run_split(folder, digits)
    if len(x_val) == 0:
        raise InputError(f"{folder.name} trained on every row (val_size 0): it has no validation split; "
                         "pass --csv with labelled digits it has not seen")
    source = f"validation split of {digits.source}"
    recorded = folder / FINGERPRINT_FILE
    if recorded.is_file() and json.loads(recorded.read_text())["sha256"] != digits.fingerprint()["sha256"]:
        source += " (NOT the data this run was trained on)"
    return x_val, y_val, source


def latency_ms(classifier: DigitClassifier, images: np.ndarray, runs: int) -> dict:
    """Milliseconds per single-digit classification: median and p99 over `runs` digits."""
    for image in images[:10]:
        classifier.predict(image[None])  # warm-up: allocation, caches
    times = []
    for image in images[np.arange(runs) % len(images)]:
        start = time.perf_counter()
        classifier.predict(image[None])
        times.append(time.perf_counter() - start)
    return {"median": 1000 * float(np.median(times)), "p99": 1000 * float(np.percentile(times, 99))}


def compare_variants(folder: Path, images: np.ndarray, labels: np.ndarray, latency_runs: int = 200) -> dict:
    """Every variant in the run's manifest against its Keras model, on images and labels."""
    export_dir = folder / EXPORT_DIR
    if not (export_dir / MANIFEST_FILE).is_file():
        raise FileNotFoundError(f"{export_dir / MANIFEST_FILE}: no exported models; run `make tflite` first")
    manifest = json.loads((export_dir / MANIFEST_FILE).read_text())
    if manifest["source_sha256"] != sha256(folder / MODEL_FILE):
        raise FileNotFoundError(f"{export_dir}: exported from another {MODEL_FILE}; run `make tflite` again")
    reference = keras_probabilities(folder, images)
    keras_labels = reference.argmax(axis=1)
    all_threads = os.cpu_count() or 1
    rows = [{"variant": "keras", "accuracy": float(np.mean(keras_labels == labels)), "agreement": 1.0,
             "max_prob_diff": 0.0, "bytes": (folder / MODEL_FILE).stat().st_size}]
    for entry in manifest["variants"]:
        path = export_dir / entry["file"]
        probabilities = DigitClassifier(path, num_threads=all_threads).predict(images)
        predicted = probabilities.argmax(axis=1)
        row = {"variant": entry["variant"], "accuracy": float(np.mean(predicted == labels)),
               "agreement": float(np.mean(predicted == keras_labels)),
               "max_prob_diff": float(np.abs(probabilities - reference).max()), "bytes": path.stat().st_size}
        for threads in sorted({1, all_threads}):
            row[f"latency_ms_{threads}_threads"] = latency_ms(DigitClassifier(path, num_threads=threads),
                                                              images, latency_runs)
        rows.append(row)
        print(f"{entry['variant']}: accuracy {row['accuracy']:.5f}, agreement {row['agreement']:.5f}", flush=True)
    return {"run": folder.name, "images": len(images), "threads": sorted({1, all_threads}),
            "interpreter": DigitClassifier(export_dir / manifest["variants"][0]["file"]).backend, "rows": rows}


def table(report: dict) -> str:
    threads = report["threads"]
    head = f"{'variant':<14}{'accuracy':>10}{'agreement':>11}{'max |dp|':>10}{'bytes':>12}" + "".join(
        f"{f'ms p50/p99 {t} thr':>20}" for t in threads)
    lines = [head, "-" * len(head)]
    for row in report["rows"]:
        line = (f"{row['variant']:<14}{row['accuracy']:>10.5f}{row['agreement']:>11.5f}"
                f"{row['max_prob_diff']:>10.1e}{row['bytes']:>12,}")
        for t in threads:
            cell = row.get(f"latency_ms_{t}_threads")
            line += f"{cell['median']:>12.3f} /{cell['p99']:>6.3f}" if cell else f"{'-':>20}"
        lines.append(line)
    return "\n".join(lines)


def int8_drop_points(report: dict) -> float:
    """How many percentage points the int8 model's accuracy lies below the Keras model's."""
    accuracy = {row["variant"]: row["accuracy"] for row in report["rows"]}
    return 100 * (accuracy["keras"] - accuracy["int8"])
