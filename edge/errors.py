"""How every edge command fails: one line `error: ...` naming the file and what was wrong, exit 2.

    from edge.errors import InputError, add_debug_flag, run_command
    parser = argparse.ArgumentParser(...); add_debug_flag(parser); args = parser.parse_args(argv)
    return run_command(lambda: run(args), args.debug)

Bad input (InputError, ImageError and the classifier's ValueErrors) and the operating system's
refusals (OSError: no such file, permission denied, not a folder, no space) become one line on
stderr and exit code 2; `--debug` shows the traceback instead. Ctrl-C exits 130 without one.
"""

from __future__ import annotations

import argparse
import errno
import sys
from typing import Callable

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
# What OSError's strerror does not say: the usual cause, in the user's terms.
OS_HINTS = {
    errno.EEXIST: "a file is in the way where a folder is needed",
    errno.ENOTDIR: "a file is in the way where a folder is needed",
    errno.ENOSPC: "the disk is full",
    errno.EACCES: "permission denied",
    errno.EROFS: "the file system is read-only",
}


class InputError(ValueError):
    """A file or value that is not what an edge command takes; the message names it."""


def describe(err: BaseException) -> str:
    """One line for an error: OSErrors as `FILE: what happened`, others as their message."""
    if isinstance(err, OSError) and err.filename is not None:
        what = OS_HINTS.get(err.errno) or err.strerror or str(err)
        return f"{err.filename}: {what}"
    return " ".join(str(err).split()) or type(err).__name__


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")


def run_command(function: Callable[[], int | None], debug: bool = False) -> int:
    """function()'s exit code (0 for None); bad input and OS failures as one line and exit 2."""
    try:
        return function() or 0
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, OSError, ImportError, RuntimeError) as err:
        if debug:
            raise
        print(f"error: {describe(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
