"""Export a trained run to TFLite for the Raspberry Pi: four variants and a manifest.

    python -m edge.export.tflite                          # the best-scored run in models/
    python -m edge.export.tflite --run 20261127-081500-report-aug --calibration_size 1000

Writes into RUN/tflite/, a line per phase, in about a minute on 2 cores:
  model_float32.tflite        the model as trained
  model_dynamic_range.tflite  int8 weights, float activations (quantized on the fly)
  model_float16.tflite        float16 weights
  model_int8.tflite           full integer: int8 weights and activations, uint8 input and output,
                              calibrated on --calibration_size images of the run's training split
  pairs_int8.tflite           the reader's pair finder (one digit or two touching?) and pair reader
  pair_reader_int8.tflite     (which two?): the newest pair runs trained on the run's data (same
                              data sha256) under MODELS_DIR/pair-models/, converted; never trained
                              here: `make pair-models` trains them once per data set. Without them
                              a line says so, and the reader cuts touching digits by rules
  manifest.json               source run and its sha256, and per variant its bytes, sha256, input
                              and output dtype and quantization (scale, zero point), and its ops;
                              the int8 check (its labels against Keras' on 500 validation digits);
                              the pair models' source runs and their held-out figures

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
from competition.runs.choosing import default_model, model_by_id
from edge.export.convert import export


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_flag(parser)
    add_models_dir(parser)
    add_data_dir(parser, default=None, what="calibration data (default: the run's own, from config.json)")
    parser.add_argument("--calibration_size", type=int, default=500,
                        help="training images that calibrate the int8 model (default: %(default)s)")
    parser.add_argument("--out_dir", default=None, help="where to write (default: RUN/tflite)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.calibration_size < 1:
        parser.error("--calibration_size must be at least 1")

    def command() -> None:
        chosen = model_by_id(args.models_dir, args.run) if args.run else default_model(args.models_dir)
        if not args.run:
            print(chosen.line())
        folder = chosen.folder
        print(f"run: {folder}")
        export(folder, args.data_dir, args.calibration_size, out_dir=Path(args.out_dir) if args.out_dir else None,
               pairs_from=args.models_dir)

    return exit_status(command, args.debug)


if __name__ == "__main__":
    sys.exit(main())
