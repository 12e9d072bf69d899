"""Is test.csv as hard as the CV's held-out folds? A label-free estimate of a CV's test accuracy.

    python research/estimate_test_accuracy.py --cv models/cv-strong-long-ema [--tta 4]
    python research/estimate_test_accuracy.py --cv models/cv-strong-long-ema --shift_check 20 0.15

A CV estimate predicts the held-back score only if the test digits are like train.csv's. Their
labels are hidden (and stay so), so this asks the models' confidence instead. Each fold's models
(their mean, like pseudo-labelling's labellers: those that held out exactly that fold's rows) are
calibrated on their held-out rows, then read on test.csv's digits:
- DoC, difference of confidences: held-out accuracy + (mean top probability on test - on held-out).
- ATC, average thresholded confidence (Garg et al., ICLR 2022): the top-probability threshold that
  as many held-out digits pass as the models got right; the estimate is the share of test digits
  that pass it.
Both equal the held-out accuracy when test looks like held-out data to the models, and fall as they
are less sure of it. Prints a line per fold and the means; writes <cv>/test_estimate.json
(test_estimate_tta<N>.json with --tta).

--shift_check R S tries the estimators where the truth is known: calibrated on half of each fold's
held-out digits, they estimate the accuracy on the other half, warped by random rotations up to R
degrees and shifts and zooms up to S (the training augmentation's ranges are 10 and 0.1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from common.writing import write_json  # noqa: E402
from competition.data.digits import DataError, load_test, load_train  # noqa: E402
from competition.scoring.folds import scores_file  # noqa: E402
from competition.scoring.probabilities import stacked_probabilities  # noqa: E402
from competition.training.pseudo import labellers  # noqa: E402
from research.cv_folder import add_cv_arguments, held_out_rows  # noqa: E402


def difference_of_confidences(val_probs: np.ndarray, val_labels: np.ndarray, test_probs: np.ndarray) -> float:
    return accuracy(val_probs, val_labels) + float(test_probs.max(axis=1).mean() - val_probs.max(axis=1).mean())


def thresholded_confidence(val_probs: np.ndarray, val_labels: np.ndarray, test_probs: np.ndarray) -> float:
    # The errors sit among the least sure digits, far below the float32 ties at 1.0.
    threshold = np.quantile(val_probs.max(axis=1), 1 - accuracy(val_probs, val_labels))
    return float((test_probs.max(axis=1) > threshold).mean())


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float((probs.argmax(axis=1) == labels).mean())


def estimate_fold(val_probs: np.ndarray, val_labels: np.ndarray, test_probs: np.ndarray) -> dict:
    val_confidence, test_confidence = val_probs.max(axis=1), test_probs.max(axis=1)
    return {"held_out_accuracy": accuracy(val_probs, val_labels),
            "doc": difference_of_confidences(val_probs, val_labels, test_probs),
            "atc": thresholded_confidence(val_probs, val_labels, test_probs),
            "mean_confidence": {"held_out": float(val_confidence.mean()), "test": float(test_confidence.mean())},
            "below_0.9": {"held_out": float((val_confidence < 0.9).mean()),
                          "test": float((test_confidence < 0.9).mean())}}


def test_estimate(models: list[Path], images: np.ndarray, labels: np.ndarray, test: np.ndarray, tta: int) -> dict:
    """A fold's models calibrated on their held-out digits, read on test.csv's."""
    def probs(x: np.ndarray) -> np.ndarray:
        return stacked_probabilities(models, x, tta).mean(axis=0)

    return estimate_fold(probs(images), labels, probs(test))


def shift_check(models: list[Path], images: np.ndarray, labels: np.ndarray, rotation: float, frac: float,
                seed: int) -> dict:
    """The estimates against the truth: calibrated on half the digits, read on the other half warped."""
    import tensorflow as tf

    from competition.model.augment import random_affine

    order = np.random.default_rng(seed).permutation(len(labels))
    calibration, shifted = order[: len(order) // 2], order[len(order) // 2:]
    tf.random.set_seed(seed)
    warped = random_affine(tf.constant(images[shifted].astype(np.float32)), rotation, frac, frac).numpy()
    probs = stacked_probabilities(models, warped, cache=False).mean(axis=0)
    calibrated = stacked_probabilities(models, images[calibration]).mean(axis=0)
    return {"true_accuracy": accuracy(probs, labels[shifted]), **estimate_fold(calibrated, labels[calibration], probs)}


def describe(result: dict) -> str:
    if "true_accuracy" in result:
        return (f"warped half: accuracy {result['true_accuracy']:.5f}, estimated DoC {result['doc']:.5f}, "
                f"ATC {result['atc']:.5f} (calibration half {result['held_out_accuracy']:.5f})")
    return (f"held-out accuracy {result['held_out_accuracy']:.5f}; test estimate DoC {result['doc']:.5f}, "
            f"ATC {result['atc']:.5f}; below 0.9: held-out {result['below_0.9']['held_out']:.4f}, "
            f"test {result['below_0.9']['test']:.4f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_cv_arguments(parser)
    parser.add_argument("--tta", type=int, default=0, help="test-time augmented copies per digit (default: 0)")
    parser.add_argument("--shift_check", type=float, nargs=2, metavar=("DEGREES", "FRACTION"),
                        help="estimate warped held-out digits, whose accuracy is known, instead of test.csv")
    args = parser.parse_args(argv)
    digits = load_train(args.data_dir)
    test = None if args.shift_check else load_test(args.data_dir)  # the check reads held-out digits only
    folds = []
    for fold, held_out in held_out_rows(parser, args.cv, digits.labels):
        try:
            models = labellers(args.cv, held_out)
        except DataError:  # a fold this CV has not trained yet
            continue
        images, labels = digits.images[held_out], digits.labels[held_out]
        result = (shift_check(models, images, labels, *args.shift_check, seed=fold) if args.shift_check
                  else test_estimate(models, images, labels, test.images, args.tta))
        folds.append({"fold": fold, "models": len(models), **result})
        print(f"fold {fold}, {len(models)} model(s): {describe(result)}", flush=True)
    if not folds:
        print(f"{args.cv}: no trained folds", file=sys.stderr)
        return 2
    means = {key: float(np.mean([f[key] for f in folds]))
             for key in ("true_accuracy", "held_out_accuracy", "doc", "atc") if key in folds[0]}
    if args.shift_check:
        print(f"{len(folds)} folds, warped halves: accuracy {means['true_accuracy']:.5f}, "
              f"estimated DoC {means['doc']:.5f}, ATC {means['atc']:.5f}")
        return 0
    out = args.cv / scores_file(args.tta, "test_estimate")
    write_json(out, {"cv": str(args.cv), "tta": args.tta, "test_rows": len(test), "mean": means, "folds": folds})
    print(f"{len(folds)} folds: held-out accuracy {means['held_out_accuracy']:.5f}; test estimate DoC "
          f"{means['doc']:.5f}, ATC {means['atc']:.5f} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
