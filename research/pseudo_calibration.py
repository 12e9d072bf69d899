"""How right are pseudo-labels at each confidence? A CV folder's models label their own held-out folds.

    python research/pseudo_calibration.py --cv models/cv-diverse [--min_confidence 0.9]

For each fold, the models that held out its rows (competition.training.pseudo.labellers: the same ones that
label a pseudo-labelled fold's test digits) predict those rows; it prints how many digits fall below
--min_confidence, how many of the ensemble's errors they hold, and the accuracy of the digits kept.
"""

from __future__ import annotations

import argparse
import sys

from competition.data.digits import DataError, load_train  # noqa: E402
from competition.scoring.probabilities import stacked_probabilities  # noqa: E402
from competition.training.pseudo import labellers  # noqa: E402
from research.cv_folder import add_cv_arguments, held_out_rows  # noqa: E402


def kept(digits: int, errors: int) -> str:
    return f"kept digits {1 - errors / digits:.5f} right" if digits else "no digit kept"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_cv_arguments(parser)
    parser.add_argument("--min_confidence", type=float, default=0.9,
                        help="the pseudo-labelling threshold to examine (default: %(default)s)")
    args = parser.parse_args(argv)
    digits = load_train(args.data_dir)
    totals = {"digits": 0, "errors": 0, "below": 0, "errors_below": 0}
    for fold, held_out in held_out_rows(parser, args.cv, digits.labels):
        try:
            models = labellers(args.cv, held_out)
        except DataError:  # a fold this CV has not trained yet
            continue
        probs = stacked_probabilities(models, digits.images[held_out]).mean(axis=0)
        wrong = probs.argmax(axis=1) != digits.labels[held_out]
        below = probs.max(axis=1) < args.min_confidence
        print(f"fold {fold}: {len(models)} models, accuracy {1 - wrong.mean():.5f}; below {args.min_confidence}: "
              f"{below.sum()} digits holding {wrong[below].sum()} of {wrong.sum()} errors; "
              f"{kept(int((~below).sum()), int(wrong[~below].sum()))}", flush=True)
        for key, value in zip(totals, (len(wrong), wrong.sum(), below.sum(), (wrong & below).sum())):
            totals[key] += int(value)
    if not totals["digits"]:
        print(f"{args.cv}: no trained folds", file=sys.stderr)
        return 2
    print(f"all folds: {totals['below']} of {totals['digits']} digits below {args.min_confidence}, holding "
          f"{totals['errors_below']} of {totals['errors']} errors; "
          f"{kept(totals['digits'] - totals['below'], totals['errors'] - totals['errors_below'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
