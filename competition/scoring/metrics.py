"""Validation metrics for metrics.json: accuracy, per-class precision/recall/F1, confusion matrix;
an ensemble's agreement, and what more of its members buy."""

from __future__ import annotations

import itertools
import math

import numpy as np
from sklearn.metrics import confusion_matrix, log_loss, precision_recall_fscore_support

from competition.config import NUM_CLASSES


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    classes = list(range(NUM_CLASSES))
    predicted = probabilities.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=classes, zero_division=0
    )
    matrix = confusion_matrix(labels, predicted, labels=classes)
    errors = matrix - np.diag(np.diag(matrix))
    true_cls, pred_cls = np.unravel_index(errors.argmax(), errors.shape)
    return {
        "n": int(len(labels)),
        "accuracy": float((predicted == labels).mean()),
        "loss": float(log_loss(labels, probabilities, labels=classes)),
        "errors": int((predicted != labels).sum()),
        "macro_f1": float(f1.mean()),
        "per_class": {
            str(c): {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(classes, precision, recall, f1, support)
        },
        "most_confused": {"true": int(true_cls), "predicted": int(pred_cls), "count": int(errors.max())},
        "confusion_matrix": matrix.tolist(),  # rows: true label, columns: predicted
    }


def agreement(member_probs: np.ndarray) -> dict:
    """How alike the members' labels are: all agree, and the mean agreement of each pair."""
    labels = member_probs.argmax(axis=2)  # (members, N)
    pairs = [float((a == b).mean()) for a, b in itertools.combinations(labels, 2)]
    return {
        "all_agree": float((labels == labels[0]).all(axis=0).mean()),
        "mean_pairwise": float(np.mean(pairs)) if pairs else 1.0,
        "n": int(labels.shape[1]),
    }


def size_curve(member_probs: np.ndarray, labels: np.ndarray, most: int = 64, seed: int = 0) -> list[float]:
    """Accuracy of the average of k of the members, for k = 1 .. all: the mean over every k-subset,
    or over `most` drawn at random where there are more (a fold of 15 models has 6,435 subsets of 7)."""
    rng = np.random.default_rng(seed)
    n = len(member_probs)
    curve = []
    for k in range(1, n + 1):
        subsets = (itertools.combinations(range(n), k) if math.comb(n, k) <= most
                   else (rng.choice(n, k, replace=False) for _ in range(most)))
        curve.append(float(np.mean([(member_probs[list(s)].mean(axis=0).argmax(axis=1) == labels).mean()
                                    for s in subsets])))
    return curve


def every_member_wrong(member_probs: np.ndarray, labels: np.ndarray) -> int:
    """Digits no member labels right: an average of them almost never does either."""
    return int((member_probs.argmax(axis=2) != labels).all(axis=0).sum())
