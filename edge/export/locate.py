"""Print the path of a run's exported int8 model, for the Makefile's edge targets (make read, serve, camera, bench-edge).

    python -m edge.export.locate                 # the run with the best recorded score
    python -m edge.export.locate --run ID

The path goes to stdout; which run was picked, and why, to stderr. A run not exported yet is
refused in one line that says to run `make tflite` first.
"""

from __future__ import annotations

import argparse
import sys

from competition import startup

startup.begin()  # as every command of the trainer's side

from common.errors import add_debug_flag, exit_status
from competition.cli import add_models_dir, add_run_flag
from competition.runs.choosing import default_model, model_by_id
from edge.export.exported import EXPORT_DIR, variant_file


def exported_model(models_dir: str, run: str | None, variant: str = "int8") -> str:
    """The run's exported model of that variant; FileNotFoundError naming what to run if it is missing."""
    chosen = model_by_id(models_dir, run) if run else default_model(models_dir)
    if not run:  # on stderr, as the model's line below
        print(chosen.line(), file=sys.stderr)
    folder = chosen.folder
    model = folder / EXPORT_DIR / variant_file(variant)
    if not model.is_file():
        raise FileNotFoundError(f"{model}: not exported yet; run `make tflite RUN={folder.name}` first "
                                "(or pass MODEL=<file.tflite>)")
    print(f"model: {model} (MODEL=<file.tflite> picks another)", file=sys.stderr)
    return str(model)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_flag(parser)
    add_models_dir(parser)
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    return exit_status(lambda: print(exported_model(args.models_dir, args.run)), args.debug)


if __name__ == "__main__":
    sys.exit(main())
