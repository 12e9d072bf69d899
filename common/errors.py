"""How every command fails: one line `error: ...` on stderr and a non-zero exit.

    from common.errors import add_debug_flag, exit_status
    parser = argparse.ArgumentParser(...); add_debug_flag(parser); args = parser.parse_args(argv)
    return exit_status(lambda: run(args), args.debug)

Exit codes: 2 for what the user can fix here (the project's errors, which name the file and what
was wrong, and the operating system's refusals: no such file, permission denied, not a folder, no
space left); 1 when a service the command needs (Kaggle) cannot be reached or refuses; 130 on
Ctrl-C. `--debug` shows the traceback instead of the line. Both the trainer and the Pi runtime
fail this way; this module needs nothing but the standard library.
"""

from __future__ import annotations

import argparse
import errno
import sys
from typing import Callable

EXIT_BAD_INPUT = 2
EXIT_REMOTE = 1
EXIT_INTERRUPTED = 130
# What OSError's own words leave out: the usual cause, in the user's terms.
OS_HINTS = {
    errno.ENOSPC: "no space left on the device (the disk is full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.ENOTDIR: "a file is in the way where a folder is needed",
    errno.EEXIST: "a file is in the way where a folder is needed",
}


class ProjectError(ValueError):
    """The base of every error of the project: input, a setting, or a state of the models folder that
    the user must fix, or a service that refused; the message names the file and what was wrong. Only
    these and the operating system's refusals become one line; any other exception is a bug and
    shows its traceback. (A ValueError, as the checks that predate it raised.)"""


class DataError(ProjectError):
    """Input data that is not what the competition serves."""


class FileError(ProjectError):
    """A file that cannot be read as what it should be: corrupt, cut short, or another kind of file."""


class BusyError(ProjectError):
    """Another command is using a folder that two commands must not share."""


class ConfigError(ProjectError):
    """A training configuration whose settings contradict each other or are out of range."""


class InputError(ProjectError):
    """A file or value that an edge command does not take; the message names it."""


class RemoteError(ProjectError):
    """A service the command needs could not be reached, or refused; the message says what to do."""


SHOWN = 60  # characters of a bad value shown in a message


def shorten(text: str, limit: int = SHOWN) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def describe(err: BaseException) -> str:
    """One line for an error: an OSError as `FILE: what happened`, others as their message."""
    if isinstance(err, OSError) and err.errno is not None:
        what = OS_HINTS.get(err.errno) or err.strerror or str(err)
        if err.filename is None:  # a write to an open file: the operating system does not say which
            return what
        target = f" -> {err.filename2}" if err.filename2 is not None else ""
        return f"{err.filename}{target}: {what}"
    return " ".join(str(err).split()) or type(err).__name__


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="on an error, show its traceback instead of one line")


def debug_requested(argv: list[str] | None) -> bool:
    """--debug among the arguments, for a main whose parser returns a config rather than the flags."""
    return "--debug" in (sys.argv[1:] if argv is None else argv)


def exit_status(work: Callable[[], object], debug: bool = False, interrupted: str = "",
                also: tuple[type[BaseException], ...] = ()) -> int:
    """A command's exit status: work()'s when it returns an int (a command that runs others), else
    0 when it finishes; on failure one line on stderr and the code for what went wrong (see the
    module docstring). `interrupted` says, after Ctrl-C, what state the command left (e.g. that no
    run folder was written); `also` names further exceptions that are the user's to fix (the Pi's
    missing or refused interpreter)."""
    try:
        result = work()
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"interrupted{': ' + interrupted if interrupted else ''}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RemoteError as err:
        if debug:
            raise
        print(f"error: {describe(err)}", file=sys.stderr)
        return EXIT_REMOTE
    except (ProjectError, OSError, *also) as err:  # anything else is a bug: its traceback shows
        if debug:
            raise
        print(f"error: {describe(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return result if type(result) is int else 0
