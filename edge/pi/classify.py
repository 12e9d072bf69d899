"""Classify handwritten digits on a Raspberry Pi (or anywhere) with an exported TFLite model.

    python -m edge.pi.classify model_int8.tflite digit.png photo.jpg      # one line per image
    python -m edge.pi.classify model_int8.tflite --csv test.csv             # ImageId,Label to stdout
    python -m edge.pi.classify model_int8.tflite --csv test.csv --out submission.csv --threads 4

Images (PNG, JPEG, ...; any size, colour or grey, dark ink on paper or light on dark) are made
MNIST-like first (edge/pi/image.py). A CSV has the competition's columns: pixel0..pixel783, with a
leading label column allowed (then the accuracy is printed too). Needs numpy, an interpreter
(edge/pi/requirements.txt) and, for images only, Pillow; never TensorFlow.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from common.digits_csv import read_digits_csv, submission_text, write_submission
from common.errors import add_debug_flag, exit_status
from common.writing import writable_folder
from edge.pi.classifier import INTERPRETER_ERRORS, ClassifierOptions, DigitClassifier


def classify_images(model: str, images: list[str], csv: str | None, out: str | None, threads: int | None,
        top_k: int) -> list[int]:
    """Classify the images or the CSV's rows; print results; return the labels."""
    if out:
        writable_folder(Path(out).parent, what=out)  # before the work, so a bad --out costs nothing
    classifier = DigitClassifier(model, ClassifierOptions(num_threads=threads, top_k=top_k))
    start = time.perf_counter()
    if csv:
        pixels, truth = read_digits_csv(csv)
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
        from edge.pi.image import load_digit  # Pillow only when there are images

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
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if bool(args.images) == bool(args.csv):
        parser.error("give image files or --csv FILE (one of the two)")
    if args.out and not args.csv:
        parser.error("--out goes with --csv")
    if args.threads is not None and args.threads < 1 or not 1 <= args.top_k <= 10:
        parser.error("--threads must be at least 1, --top_k 1..10")

    def command() -> None:
        classify_images(args.model, args.images, args.csv, args.out, args.threads, args.top_k)

    return exit_status(command, args.debug, also=INTERPRETER_ERRORS)


if __name__ == "__main__":
    sys.exit(main())
