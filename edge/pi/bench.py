"""How fast this machine runs exported digit models: a benchmark to run on your own Pi.

    python -m edge.pi.bench model_int8.tflite model_float32.tflite        # 1 thread and every core
    python -m edge.pi.bench RUN/tflite/*.tflite --threads 1 2 4 --runs 500 --json bench.json

Per model file and thread count: milliseconds per digit classified alone (median and p99 over
--runs invokes, after a warm-up), and digits per second in batches of --batch. Before the table:
the interpreter and its version, Python, the machine, and the CPU (model, cores, flags) as
/proc/cpuinfo tells them. The digits are random pixels from a fixed seed: the time does not
depend on what the pixels show. numpy and an interpreter only.
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
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if min(args.runs, args.batch, args.batches, *(args.threads or [1])) < 1:
        parser.error("--runs, --batch, --batches and --threads must be at least 1")
    return exit_status(lambda: benchmark(args.models, args.threads, args.runs, args.batch, args.batches, args.json),
                       args.debug, also=INTERPRETER_ERRORS)


if __name__ == "__main__":
    sys.exit(main())
