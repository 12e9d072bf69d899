"""Search the report's hyperparameter space with keras-tuner; resumable, optionally distributed.

    python -m competition.tune                          # Hyperband, about an hour on 2 cores
    python -m competition.tune --fresh                  # forget the search and start over
    python -m competition.tune --workers 2              # a chief oracle + 2 workers on this machine
    python -m competition.tune --max_epochs 40 --factor 3 --budget_minutes 0   # the report's 90 trials

The search lives in models/search-<name>/: keras-tuner's state (trials/), search_config.json,
results.csv (trial, hyperparameters, val_loss, val_accuracy, epochs, seconds) and
best_hyperparameters.json, rewritten after every trial. Stopping it (Ctrl-C, kill -9) and running
the same command again continues where it was; only the trial that was running is redone.

Distributed: keras-tuner's own mode (competition/training/tuning.py).
"""

from __future__ import annotations

import argparse
import sys

from competition import startup

startup.begin()  # before TensorFlow loads

from common.errors import add_debug_flag, exit_status  # noqa: E402
from competition.cli import parse_search_config  # noqa: E402
from competition.training import tuning  # noqa: E402
from competition.training.cluster.search import run_cluster  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fresh", action="store_true", help="delete the search folder and start over")
    # --jobs as in cv and ensemble; --workers in keras-tuner's words
    parser.add_argument("--workers", "--jobs", dest="workers", type=int, default=0,
                        help="run a chief and this many workers on this machine (default: 0, one process)")
    add_debug_flag(parser)
    cfg, args = parse_search_config(parser, argv)
    tuning.patch_keras_tuner()  # its state written whole, so that a killed search resumes
    if args.workers:
        return exit_status(lambda: run_cluster(cfg, args.workers, args.fresh), args.debug)
    return exit_status(lambda: tuning.search(cfg, fresh=args.fresh), args.debug,
                       interrupted="run the same command again to resume")


if __name__ == "__main__":
    sys.exit(main())
