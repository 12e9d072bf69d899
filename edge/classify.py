"""Classify handwritten digits on a Raspberry Pi (or anywhere) with an exported TFLite model.

    python -m edge.classify model_int8.tflite digit.png photo.jpg      # one line per image
    python -m edge.classify model_int8.tflite --csv test.csv             # ImageId,Label to stdout
    python -m edge.classify model_int8.tflite --csv test.csv --out submission.csv --threads 4

Images (PNG, JPEG, ...; any size, colour or grey, dark ink on paper or light on dark) are made
MNIST-like first (edge/image.py). A CSV has the competition's columns: pixel0..pixel783, with a
leading label column allowed (then the accuracy is printed too). Needs numpy, an interpreter
(edge/requirements.txt) and, for images only, Pillow; never TensorFlow.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from edge.classifier import NUM_PIXELS, ClassifierOptions, DigitClassifier

PIXEL_COLUMNS = [f"pixel{i}" for i in range(NUM_PIXELS)]


class InputError(ValueError):
    """A CSV or image that is not what the classifier takes."""


def read_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Pixels (N, 784) uint8 and labels (N,) or None from a competition-style CSV."""
    path = Path(path)
    try:
        with open(path) as handle:
            header = handle.readline().strip().split(",")
            columns = header[1:] if header[:1] == ["label"] else header
            if columns != PIXEL_COLUMNS:
                raise InputError(f"{path}, line 1 (header): expected [label,]pixel0,...,pixel783, "
                                 f"got {len(header)} columns starting {','.join(header[:3])}")
            values = [_parse_row(path, number, line, len(header)) for number, line in enumerate(handle, start=2)
                      if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot be read: {err}") from None
    if not values:
        raise InputError(f"{path}: no data rows after the header; expected at least one")
    table = np.stack(values)
    labels = table[:, 0] if len(header) == NUM_PIXELS + 1 else None
    return table[:, -NUM_PIXELS:].astype(np.uint8), labels


def _parse_row(path: Path, number: int, line: str, width: int) -> np.ndarray:
    fields = line.strip().split(",")
    if len(fields) != width:
        raise InputError(f"{path}, line {number}: {len(fields)} values, expected {width}")
    try:
        row = np.array(fields, dtype=np.int64)
    except ValueError:
        column = next(i for i, f in enumerate(fields) if not f.strip().lstrip("+-").isdigit())
        raise InputError(f"{path}, line {number}, column {column + 1}: expected an integer, "
                         f"got {fields[column]!r}") from None
    limits = np.full(width, 255)
    if width == NUM_PIXELS + 1:
        limits[0] = 9
    bad = np.flatnonzero((row < 0) | (row > limits))
    if bad.size:
        column = bad[0]
        raise InputError(f"{path}, line {number}, column {column + 1}: expected 0..{limits[column]}, "
                         f"got {row[column]}")
    return row


def write_submission(labels: np.ndarray, out: str | Path) -> None:
    """ImageId,Label rows, written whole (temporary file, then renamed)."""
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(submission_text(labels))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def submission_text(labels: np.ndarray) -> str:
    return "ImageId,Label\n" + "".join(f"{i},{label}\n" for i, label in enumerate(labels, start=1))


def run(model: str, images: list[str], csv: str | None, out: str | None, threads: int | None,
        top_k: int) -> list[int]:
    """Classify the images or the CSV's rows; print results; return the labels."""
    classifier = DigitClassifier(model, ClassifierOptions(num_threads=threads, top_k=top_k))
    start = time.perf_counter()
    if csv:
        pixels, truth = read_csv(csv)
        labels = classifier.predict(pixels).argmax(axis=1)
        seconds = time.perf_counter() - start
        if out:
            write_submission(labels, out)
        else:
            sys.stdout.write(submission_text(labels))
        summary = f"{len(labels)} digits from {csv} in {seconds:.2f}s ({1000 * seconds / len(labels):.2f} ms/digit)"
        if truth is not None:
            summary += f", accuracy {np.mean(labels == truth):.4f} against its label column"
        print(summary + (f" -> {out}" if out else ""), file=sys.stderr)
    else:
        from edge.image import load_digit  # Pillow only when there are images

        results = [classifier.classify(load_digit(path)) for path in images]
        for path, result in zip(images, results):
            top = ", ".join(f"{c.label} {c.score:.3f}" for c in result.top_k)
            print(f"{path}: {result.label}  (top {top_k}: {top})")
        labels = [r.label for r in results]
    print(f"model: {model} on {classifier.backend}, {classifier.threads} threads", file=sys.stderr)
    return [int(label) for label in labels]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="an exported .tflite file (make tflite)")
    parser.add_argument("images", nargs="*", help="image files, one digit each")
    parser.add_argument("--csv", default=None, help="a CSV of digits (pixel0..pixel783, optional label first)")
    parser.add_argument("--out", default=None, help="with --csv: write ImageId,Label here (default: stdout)")
    parser.add_argument("--threads", type=int, default=None, help="interpreter threads (default: every core)")
    parser.add_argument("--top_k", type=int, default=3, help="best labels shown per image (default: %(default)s)")
    args = parser.parse_args(argv)
    if bool(args.images) == bool(args.csv):
        parser.error("give image files or --csv FILE (one of the two)")
    if args.out and not args.csv:
        parser.error("--out goes with --csv")
    if args.threads is not None and args.threads < 1 or not 1 <= args.top_k <= 10:
        parser.error("--threads must be at least 1, --top_k 1..10")
    try:
        run(args.model, args.images, args.csv, args.out, args.threads, args.top_k)
    except (InputError, FileNotFoundError, ValueError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
