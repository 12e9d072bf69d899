"""Export a trained run to TFLite for the Raspberry Pi: four variants and a manifest.

    python -m edge.export.tflite                          # the best-scored run in models/
    python -m edge.export.tflite --run 20261127-081500-report-aug --calibration_size 1000

Writes into RUN/tflite/:
  model_float32.tflite        the model as trained
  model_dynamic_range.tflite  int8 weights, float activations (quantized on the fly)
  model_float16.tflite        float16 weights
  model_int8.tflite           full integer: int8 weights and activations, uint8 input and output,
                              calibrated on --calibration_size images of the run's training split
  pairs_int8.tflite           the reader's pair finder (one digit or two touching?), trained on
                              --pair_examples pieces made of the run's training digits (edge/export/pairs.py)
  pair_reader_int8.tflite     the reader's pair reader (which two digits touch?), trained on
                              --reader_examples touching pairs made of them
  manifest.json               source run and its sha256, and per variant its bytes, sha256, input
                              and output dtype and quantization (scale, zero point), and its ops;
                              the pair models' figures on made pieces they did not train on

Every variant takes raw 0..255 pixels (N, 28, 28, 1) like model.keras; the int8 model's uint8
input has scale 1 and zero point 0, so raw pixels go in unchanged. Each is checked to hold only
TFLite builtin ops (no Select TF ops), so the plain interpreter on a Pi runs it. The one edge module
that imports TensorFlow.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from competition import startup

startup.begin()  # before TensorFlow loads: Keras' backend, its start-up lines quieted

from common.errors import add_debug_flag, exit_status
from competition.cli import add_data_dir, add_models_dir, add_run_flag
from competition.runs.folders import resolve_run
from edge.export import pairs
from edge.export.convert import export


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_flag(parser)
    add_models_dir(parser)
    add_data_dir(parser, default=None, what="calibration data (default: the run's own, from config.json)")
    parser.add_argument("--calibration_size", type=int, default=500,
                        help="training images that calibrate the int8 model (default: %(default)s)")
    parser.add_argument("--pair_examples", type=int, default=pairs.EXAMPLES,
                        help="made pieces the reader's pair finder trains on; 0: no pair models (default: %(default)s)")
    parser.add_argument("--reader_examples", type=int, default=pairs.READER_EXAMPLES,
                        help="made pairs the reader's pair reader trains on; 0: no pair reader (default: %(default)s)")
    parser.add_argument("--out_dir", default=None, help="where to write (default: RUN/tflite)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.calibration_size < 1:
        parser.error("--calibration_size must be at least 1")
    for flag in ("pair_examples", "reader_examples"):
        if getattr(args, flag) < 0 or 0 < getattr(args, flag) < 20:
            parser.error(f"--{flag} must be 0 (none) or at least 20")

    def command() -> None:
        folder = resolve_run(args.models_dir, args.run, single=True)
        print(f"run: {folder}")
        export(folder, args.data_dir, args.calibration_size, out_dir=Path(args.out_dir) if args.out_dir else None,
               pair_examples=args.pair_examples, reader_examples=args.reader_examples)

    return exit_status(command, args.debug)


if __name__ == "__main__":
    sys.exit(main())
