"""Write the offline demo set in the competition's format, from the digits scikit-learn ships.

    python -m competition.demo_data [--out data/demo]

What it holds: competition/data/demo.py.
"""

from __future__ import annotations

import argparse
import sys

from competition import startup

startup.begin()  # as every command: Keras' backend, TensorFlow's start-up lines quieted

from common.errors import add_debug_flag, exit_status
from competition.config import DEMO_DATA_DIR
from competition.data.demo import write_demo_data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default=str(DEMO_DATA_DIR), help="folder to write (default: %(default)s)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    return exit_status(lambda: write_and_say(args.out), args.debug)


def write_and_say(out: str) -> None:
    counts = write_demo_data(out)
    print(f"demo-data: {counts['train']} train / {counts['test']} test rows (scikit-learn digits, "
          f"upscaled to 28x28) -> {out}")


if __name__ == "__main__":
    sys.exit(main())
