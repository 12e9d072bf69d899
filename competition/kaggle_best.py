"""Train a recipe on Kaggle's GPUs (two T4s) from here: push it as a Kaggle kernel, watch it, bring its output back.

    python -m competition.kaggle_best --recipe fast          # make kaggle-best RECIPE=fast
    python -m competition.kaggle_best --recipe best-ensemble --force   # even past the GPU quota left
    python -m competition.kaggle_best --recipe fast --pair_models      # and the reader's pair models after it

It says its plan on Kaggle's two T4s (each model's minutes, two at a time, the session's minutes and the
GPU-minutes: guesses where not measured there) and this week's GPU quota left (too little: it stops,
unless --force), then pushes a private script kernel that carries this checkout's code, with the
competition's data attached, the GPUs on and a session timeout from the plan; there `make best`'s own
command trains the recipe, one model per GPU (competition/kaggle/bootstrap.py). The version pushed and
its URL are printed, then that version's status and its log's last line every --poll_s. Ctrl-C stops
the watching, not the kernel: the same command attaches to it again (models/.kaggle-best/<recipe>.json
remembers it; --new pushes another). Once it completes, its output (submission.csv, metrics.json, the
members' run folders, kaggle-best.log) lands whole in models/recipe-<name>-kaggle/, for make
submission, submit, report and tflite. docs/kaggle.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from competition import startup

startup.begin()  # before TensorFlow loads: Keras' backend, its start-up lines quieted

from common.errors import add_debug_flag, exit_status
from competition.cli import add_models_dir
from competition.config import RECIPES
from competition.kaggle.client import BACKOFF_S, RETRIES, KaggleClient
from competition.kaggle.kernel import POLL_S, kaggle_best, write_kernel_folder
from competition.kaggle.plan import DEFAULT_GPU, GPUS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="fast", choices=sorted(RECIPES),
                        help="what to train (default: %(default)s; python -m competition.best --list)")
    add_models_dir(parser)
    parser.add_argument("--accelerator", default=DEFAULT_GPU, choices=sorted(GPUS),
                        help="Kaggle's machine_shape for the kernel (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="each member this many epochs instead of its preset's, to try it out (the recipe's "
                             "estimate then does not apply)")
    parser.add_argument("--docker_image", default=None,
                        help="pin the kernel to this Kaggle image (e.g. gcr.io/kaggle-gpu-images/python:<tag>; "
                             "default: Kaggle's latest)")
    parser.add_argument("--pair_models", action="store_true",
                        help="also train the reader's pair models on the same data after the recipe (make "
                             "pair-models' command; with --epochs, a trial's few pieces), fetched into "
                             "models/pair-models/ for make tflite")
    parser.add_argument("--force", action="store_true", help="push even when the GPU quota left looks too short")
    parser.add_argument("--new", action="store_true",
                        help="push a new version even when one pushed before has not been fetched")
    parser.add_argument("--build_only", metavar="FOLDER", default=None,
                        help="write the kernel's folder (kernel-metadata.json, kaggle_best.py) here and stop; "
                             "`kaggle kernels push -p FOLDER` pushes it by hand")
    parser.add_argument("--username", default=None, help="with --build_only: the account in the kernel's id "
                                                         "(default: the signed-in one)")
    parser.add_argument("--poll_s", type=float, default=POLL_S, help="seconds between polls (default: %(default)s)")
    parser.add_argument("--retries", type=int, default=RETRIES,
                        help="tries after the first on network errors and 5xx (default: %(default)s)")
    parser.add_argument("--backoff_s", type=float, default=BACKOFF_S,
                        help="first wait before a retry, doubled each time (default: %(default)s)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.poll_s <= 0 or args.retries < 0 or args.backoff_s < 0 or (args.epochs is not None and args.epochs < 1):
        parser.error("--poll_s must be above 0, --retries and --backoff_s 0 or more, --epochs at least 1")
    recipe = RECIPES[args.recipe]

    def work():
        if args.build_only:
            username = args.username or KaggleClient(retries=args.retries, backoff_s=args.backoff_s).username
            digest = write_kernel_folder(Path(args.build_only), username, recipe, args.epochs, args.accelerator,
                                         args.docker_image, args.pair_models)
            print(f"kaggle-best: {args.build_only}: the kernel of recipe {recipe.name} (code {digest})")
            return None
        client = KaggleClient(retries=args.retries, backoff_s=args.backoff_s)
        return kaggle_best(recipe, args.models_dir, args.accelerator, args.epochs, args.force, args.new,
                           args.poll_s, client, args.docker_image, args.pair_models)

    return exit_status(work, args.debug, interrupted="the kernel keeps running on Kaggle; the same command "
                                                     "attaches to it and fetches its output")


if __name__ == "__main__":
    sys.exit(main())
