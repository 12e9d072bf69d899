"""What quantization costs: each exported TFLite variant against the run's Keras model.

    python -m edge.check                              # newest run, on its own validation split
    python -m edge.check --run ID --csv labelled.csv --max_drop 0.3

For the Keras model and each variant in RUN/tflite (make tflite): accuracy, agreement of the
variant's labels with the Keras model's, the largest difference in any probability, size in bytes,
and latency per image (one digit per invoke; median and p99, on 1 thread and on every core). Prints
a table and writes it to RUN/tflite/check.json. Exits 1 if the int8 model's accuracy falls more
than --max_drop percentage points below the Keras model's, 2 on bad input.

Runs on the training machine: the Keras reference needs TensorFlow (edge.export); the variants run
through edge.classifier, as on the Pi.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from competition.config import MODELS_DIR
from competition.data import load_train
from competition.errors import add_debug_flag, exit_status
from competition.io import write_json
from competition.runs import FINGERPRINT_FILE, MODEL_FILE, resolve_run
from edge.classifier import DigitClassifier
from edge.digits_csv import read_csv
from edge.errors import InputError
from edge.exported import EXPORT_DIR, MANIFEST_FILE, keras_probabilities, run_data_dir, sha256

CHECK_FILE = "check.json"


def validation_split(folder: Path, data_dir: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """The run's own validation images and labels (the rows it was validated on), and a description."""
    from competition.splits import run_split

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


def evaluate(folder: Path, images: np.ndarray, labels: np.ndarray, latency_runs: int = 200) -> dict:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default=None, help="run id or folder (default: the finished run with the best recorded score)")
    parser.add_argument("--models_dir", default=str(MODELS_DIR),
                        help="folder of the run folders (default: %(default)s)")
    parser.add_argument("--data_dir", default=None, help="train.csv to split (default: the run's own data)")
    parser.add_argument("--csv", default=None, help="check on this labelled CSV instead of the validation split")
    parser.add_argument("--max_drop", type=float, default=0.3,
                        help="int8 accuracy may fall this many percentage points below Keras (default: %(default)s)")
    parser.add_argument("--latency_runs", type=int, default=200, help="digits timed per variant (default: %(default)s)")
    parser.add_argument("--out", default=None, help="JSON report (default: RUN/tflite/check.json)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.latency_runs < 1 or args.max_drop < 0:
        parser.error("--latency_runs must be at least 1 and --max_drop at least 0")

    def command() -> int:
        folder = resolve_run(args.models_dir, args.run, single=True)
        if args.csv:
            images, labels = read_csv(args.csv)
            if labels is None:
                raise InputError(f"{args.csv}: no label column; the check needs labelled digits")
            source = args.csv
        else:
            images, labels, source = validation_split(folder, args.data_dir)
        print(f"run: {folder}\ndata: {len(images)} digits, {source}", flush=True)
        report = {**evaluate(folder, images, labels, args.latency_runs), "data": source, "max_drop": args.max_drop}
        drop = int8_drop_points(report)
        report["int8_drop_points"] = drop
        report["passed"] = drop <= args.max_drop
        out = Path(args.out) if args.out else folder / EXPORT_DIR / CHECK_FILE
        write_json(out, report)
        print(f"\n{table(report)}\n\ninterpreter: {report['interpreter']}; report: {out}")
        if not report["passed"]:
            print(f"FAIL: int8 accuracy is {drop:.2f} points below the Keras model's (allowed {args.max_drop})",
                  file=sys.stderr)
            return 1
        if abs(drop) < 0.005:
            side = "the same as"
        else:
            side = f"{drop:.2f} points below" if drop > 0 else f"{-drop:.2f} points above"
        print(f"ok: int8 accuracy is {side} the Keras model's (a drop of up to {args.max_drop} is allowed)")
        return 0

    return exit_status(command, args.debug)


if __name__ == "__main__":
    sys.exit(main())
