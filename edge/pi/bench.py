"""How fast this machine runs exported digit models: a benchmark to run on your own Pi.

    python -m edge.pi.bench model_int8.tflite model_float32.tflite        # 1 thread and every core
    python -m edge.pi.bench RUN/tflite/*.tflite --threads 1 2 4 --runs 500 --json bench.json

Per model file and thread count: milliseconds per digit classified alone (median and p99 over
--runs invokes, after a warm-up), and digits per second in batches of --batch. Before the table:
the interpreter and its version, Python, the machine, and the CPU (model, cores, flags) as
/proc/cpuinfo tells them. The digits are random pixels from a fixed seed: the time does not
depend on what the pixels show. numpy and an interpreter only.

    python -m edge.pi.bench model_int8.tflite --read page.png number.jpg --threads 1

--read times reading images instead, as edge.pi.read reads them (the pair models beside the first
model, one thread count; Pillow too): per image its size, what it read (the number, or "refused"
and why) and the seconds it took, wall and this process's CPU, after one untimed reading of the
first; the slowest last.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from common.errors import add_debug_flag, exit_status
from common.writing import writable_folder, write_whole
from edge.pi.classifier import (
    INTERPRETER_ERRORS,
    NUM_PIXELS,
    ClassifierOptions,
    DigitClassifier,
)

DISTRIBUTIONS = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime", "tensorflow": "tensorflow"}
ARM_PARTS = {"0xd03": "Cortex-A53 (Pi 3)", "0xd08": "Cortex-A72 (Pi 4)", "0xd0b": "Cortex-A76 (Pi 5)"}
WARM_UP = 10


def cpu_info(path: str = "/proc/cpuinfo") -> dict:
    """The CPU's model, core count and feature flags, from /proc/cpuinfo where there is one."""
    fields: dict[str, str] = {}
    try:
        for line in Path(path).read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    model = fields.get("model name") or ARM_PARTS.get(fields.get("CPU part", ""), fields.get("CPU part", ""))
    board = fields.get("Model", "")
    return {"machine": platform.machine(), "model": " ".join(filter(None, [model, board and f"on {board}"])) or "?",
            "cores": os.cpu_count() or 1, "flags": (fields.get("flags") or fields.get("Features") or "").split()}


def interpreter_version(backend: str) -> str:
    try:
        return importlib.metadata.version(DISTRIBUTIONS[backend])
    except importlib.metadata.PackageNotFoundError:
        return "?"


def bench(model: str, threads: int, digits: np.ndarray, runs: int, batch: int, batches: int) -> dict:
    """One model on `threads` threads: ms per single digit (median, p99) and digits/s in batches."""
    classifier = DigitClassifier(model, ClassifierOptions(num_threads=threads, batch_size=batch))
    for row in digits[:WARM_UP]:
        classifier.predict(row[None])
    times = []
    for row in digits[np.arange(runs) % len(digits)]:
        start = time.perf_counter()
        classifier.predict(row[None])
        times.append(time.perf_counter() - start)
    block = digits[np.arange(batch) % len(digits)]
    classifier.predict(block)  # warm-up at the batch size (the tensors are resized once)
    start = time.perf_counter()
    for _ in range(batches):
        classifier.predict(block)
    seconds = time.perf_counter() - start
    return {"model": model, "threads": threads, "backend": classifier.backend,
            "ms_median": 1000 * float(np.median(times)), "ms_p99": 1000 * float(np.percentile(times, 99)),
            "digits_per_s_batched": batch * batches / seconds, "batch": batch, "runs": runs}


def benchmark(models: list[str], threads: list[int] | None, runs: int, batch: int, batches: int,
        out: str | None) -> None:
    if out:
        writable_folder(Path(out).parent, what=out)
    digits = np.random.default_rng(0).integers(0, 256, (max(runs, WARM_UP), NUM_PIXELS), dtype=np.uint8)
    counts = threads or sorted({1, os.cpu_count() or 1})
    rows = []
    for model in models:
        for count in counts:
            rows.append(bench(model, count, digits, runs, batch, batches))
            if len(rows) == 1:
                print(header(rows[0]["backend"]), flush=True)
                print(f"{'model':<40}{'threads':>8}{'ms median':>11}{'ms p99':>9}{'digits/s':>11}  (batch {batch})")
            row = rows[-1]
            print(f"{Path(model).name:<40}{count:>8}{row['ms_median']:>11.3f}{row['ms_p99']:>9.3f}"
                  f"{row['digits_per_s_batched']:>11,.0f}", flush=True)
    if out:
        report = {"interpreter": rows[0]["backend"], "version": interpreter_version(rows[0]["backend"]),
                  "python": platform.python_version(), "cpu": cpu_info(), "rows": rows}
        write_whole(Path(out), lambda tmp: tmp.write_text(json.dumps(report, indent=1) + "\n"))


def time_readings(model: str, images: list[str], threads: int, out: str | None) -> None:
    """Each image read as edge.pi.read reads it, timed; the slowest last (see the module's doc)."""
    from PIL import Image  # the reader's own dependency: the classification table needs none

    from edge.pi.image import ImageError
    from edge.pi.reader import read_image
    from edge.pi.touching import pair_models_beside, touching_line

    if out:
        writable_folder(Path(out).parent, what=out)
    classifier = DigitClassifier(model, ClassifierOptions(num_threads=threads))
    pairs = pair_models_beside(model, threads)
    print(header(classifier.backend), flush=True)
    print(f"reading with {Path(model).name}, {threads} thread{'s' * (threads != 1)}; touching digits by "
          f"{touching_line(pairs)}")
    print(f"{'image':<32}{'pixels':>11}{'s wall':>8}{'s CPU':>7}  read as")
    rows = []
    for k, path in enumerate([images[0], *images]):  # the first once untimed: the interpreter's first calls
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            text = read_image(classifier, path, pairs=pairs).text
        except ImageError as err:  # no number in it, or not an image it reads
            text = f"refused: {str(err).removeprefix(f'{path}: ')}"
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if k == 0:
            continue
        try:
            with Image.open(path) as image:  # its header alone, outside the timing: the size for the table
                size = image.size
        except (OSError, ValueError):
            size = (0, 0)
        rows.append({"image": path, "width": size[0], "height": size[1], "read": text, "seconds": wall, "cpu_seconds": cpu})
        row = rows[-1]
        print(f"{Path(path).name:<32}{f'{size[0]}x{size[1]}':>11}{row['seconds']:>8.2f}{row['cpu_seconds']:>7.2f}  "
              f"{text}", flush=True)
    slowest = max(rows, key=lambda row: row["seconds"])
    print(f"slowest: {Path(slowest['image']).name}, {slowest['seconds']:.2f} s ({slowest['cpu_seconds']:.2f} s of CPU)")
    if out:
        report = {"interpreter": classifier.backend, "version": interpreter_version(classifier.backend),
                  "python": platform.python_version(), "cpu": cpu_info(), "threads": threads, "readings": rows}
        write_whole(Path(out), lambda tmp: tmp.write_text(json.dumps(report, indent=1) + "\n"))


def header(backend: str) -> str:
    cpu = cpu_info()
    flags = " ".join(cpu["flags"]) or "?"
    return (f"interpreter: {backend} {interpreter_version(backend)}, Python {platform.python_version()}\n"
            f"cpu: {cpu['model']}, {cpu['machine']}, {cpu['cores']} cores\nflags: {flags}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="exported .tflite files (make tflite)")
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="thread counts to try (default: 1 and every core)")
    parser.add_argument("--runs", type=int, default=300, help="single-digit invokes timed (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=256, help="digits per batched invoke (default: %(default)s)")
    parser.add_argument("--batches", type=int, default=10, help="batched invokes timed (default: %(default)s)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the figures here")
    parser.add_argument("--read", nargs="+", default=None, metavar="IMAGE",
                        help="time reading these images with the first model instead, on the first --threads count "
                             "(default 1)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if min(args.runs, args.batch, args.batches, *(args.threads or [1])) < 1:
        parser.error("--runs, --batch, --batches and --threads must be at least 1")
    if args.read:
        return exit_status(lambda: time_readings(args.models[0], args.read, (args.threads or [1])[0], args.json),
                           args.debug, also=INTERPRETER_ERRORS)
    return exit_status(lambda: benchmark(args.models, args.threads, args.runs, args.batch, args.batches, args.json),
                       args.debug, also=INTERPRETER_ERRORS)


if __name__ == "__main__":
    sys.exit(main())
