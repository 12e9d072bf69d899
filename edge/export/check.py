"""What quantization costs: each exported TFLite variant against the run's Keras model.

    python -m edge.export.check                              # newest run, on its own validation split
    python -m edge.export.check --run ID --csv labelled.csv --max_drop 0.3

For the Keras model and each variant in RUN/tflite (make tflite): accuracy, agreement of the
variant's labels with the Keras model's, the largest difference in any probability, size in bytes,
and latency per image (one digit per invoke; median and p99, on 1 thread and on every core). Prints
a table and writes it to RUN/tflite/check.json. Exits 1 if the int8 model's accuracy falls more
than --max_drop percentage points below the Keras model's, 2 on bad input.

Runs on the training machine: the Keras reference needs TensorFlow (edge.export.tflite); the variants run
through edge.pi.classifier, as on the Pi.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from competition import startup

startup.begin()  # before TensorFlow loads: Keras' backend, its start-up lines quieted

from common.digits_csv import read_digits_csv
from common.errors import InputError, add_debug_flag, exit_status
from common.writing import write_json
from competition.cli import add_data_dir, add_models_dir, add_run_flag
from competition.runs.choosing import default_model, model_by_id
from edge.export.compare import (
    CHECK_FILE,
    compare_variants,
    int8_drop_points,
    table,
    validation_split,
)
from edge.export.exported import EXPORT_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_flag(parser)
    add_models_dir(parser)
    add_data_dir(parser, default=None, what="train.csv to split (default: the run's own data)")
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
        chosen = model_by_id(args.models_dir, args.run) if args.run else default_model(args.models_dir)
        if not args.run:
            print(chosen.line())
        folder = chosen.folder
        if args.csv:
            pixels, labels = read_digits_csv(args.csv)
            images = pixels.reshape(-1, 28, 28, 1)  # as the Keras model takes them
            if labels is None:
                raise InputError(f"{args.csv}: no label column; the check needs labelled digits")
            source = args.csv
        else:
            images, labels, source = validation_split(folder, args.data_dir)
        print(f"run: {folder}\ndata: {len(images)} digits, {source}", flush=True)
        report = {**compare_variants(folder, images, labels, args.latency_runs), "data": source, "max_drop": args.max_drop}
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
