"""The project's logger, "competition": one summary line per phase on the console, and each run's
train.log while it is built (building.run_folder adds that)."""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("competition")


class _Console(logging.StreamHandler):
    """Writes to whatever sys.stdout is now (pytest and notebooks swap it)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _):
        pass


def setup_console_logging(prefix: str = "") -> None:
    """One summary line per phase on the console, each after `prefix`; run_folder() adds the run's
    log file."""
    if not any(isinstance(h, _Console) for h in log.handlers):
        console = _Console()
        console.setFormatter(logging.Formatter(f"{prefix}%(message)s"))
        log.addHandler(console)
    log.setLevel(logging.INFO)
    log.propagate = False
