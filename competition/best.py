"""From the data to a checked submission.csv in one command: train a named recipe (make best).

    python -m competition.best --recipe fast                       # one strong model, every row
    python -m competition.best --recipe best-single                # the best single model, TTA x4
    python -m competition.best --recipe best-ensemble --budget_minutes 60
    python -m competition.best --recipe best-ensemble --cluster HEAD:6379   # its members on a Ray cluster
    python -m competition.best --list                              # the recipes and their estimates

Before training it says what it will do and how long that should take here: each member's
configuration trains a few dozen batches to measure this machine's images/s. Members train into
models/recipe-<name>/member-<i>/ (ordinary run folders), several at once where there are cores for
them, each with its share; a member that exists is reused, so an interrupted recipe continues where
it was. --budget_minutes caps an ensemble: it trains only the members that fit, by the measured
estimate of them as they would run (side by side until the last ends), and says so. Then the members' probabilities (with the recipe's test-time augmentation)
are averaged into models/recipe-<name>/submission.csv, checked against test.csv, and metrics.json
records the recipe, its members and what its cross-validation measured, by which `make submit`
ranks it.
"""

from __future__ import annotations

import argparse
import sys

from competition import startup

startup.begin()  # before TensorFlow loads: Keras' backend, its start-up lines quieted

from common.errors import add_debug_flag, exit_status
from competition.cli import (
    add_cluster_flag,
    add_data_dir,
    add_gpus_flag,
    add_models_dir,
    check_cluster_jobs,
)
from competition.config import RECIPES
from competition.runs.building import exclusive
from competition.training.recipes import folder_of, print_recipes, train_recipe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="fast", choices=sorted(RECIPES),
                        help="what to train (default: %(default)s; --list describes each)")
    parser.add_argument("--list", action="store_true", help="list the recipes and their expected accuracy, then stop")
    add_data_dir(parser)
    add_models_dir(parser)
    parser.add_argument("--budget_minutes", type=float, default=0.0,
                        help="train only the members that fit this many minutes by the measured estimate (default: 0, "
                             "no limit)")
    parser.add_argument("--jobs", type=int, default=0,
                        help="members trained at once, each in its own process (default: 0, one per core, or one per "
                             "GPU with --gpus, at most one per member)")
    add_gpus_flag(parser)
    parser.add_argument("--epochs", type=int, default=None,
                        help="train each member this many epochs instead of its preset's, to try the command out "
                             "(the recipe's estimate then does not apply)")
    parser.add_argument("--fresh", action="store_true", help="delete this recipe's models and start over")
    add_cluster_flag(parser)
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    check_cluster_jobs(parser, args, 0)
    if args.list:
        print_recipes()
        return 0
    if args.budget_minutes < 0 or args.jobs < 0 or (args.epochs is not None and args.epochs < 1):
        parser.error("--budget_minutes and --jobs must be 0 or more, --epochs at least 1")
    recipe = RECIPES[args.recipe]

    def work():  # two of the same recipe at once would train its members twice
        from competition.kaggle.plan import elsewhere

        # Here, the plan's minutes on Kaggle's GPUs beside this machine's; on them or on a cluster, its own.
        kaggle = None if args.cluster or args.gpus else elsewhere(recipe, args.epochs)
        with exclusive(folder_of(recipe, args.models_dir), "a recipe"):
            return train_recipe(recipe, args.data_dir, args.models_dir, args.budget_minutes, args.jobs, args.epochs,
                                args.fresh, args.cluster, args.gpus, kaggle)

    return exit_status(work, args.debug, interrupted="finished members are kept: the same command continues")


if __name__ == "__main__":
    sys.exit(main())
