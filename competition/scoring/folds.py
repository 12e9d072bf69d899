"""Cross-validation's folds: which rows each fold holds out, its models, and their scores.

The library behind `make cv` (competition/cv.py) and `make combine` (competition/combine.py): folds
are stratified over train.csv; a fold's models are the run folders named fold-<i>[-seed-<s>] in a
CV folder; cv.json (cv_tta<N>.json with test-time augmentation) holds each model's held-out
accuracy and training time, the mean and spread over folds, and each fold's ensemble.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from common.writing import write_json
from competition.data.reading import read_json
from competition.runs.layout import CV_SCORES_FILE, METRICS_FILE, MODEL_FILE, is_run
from competition.scoring.metrics import agreement, every_member_wrong, size_curve
from competition.scoring.probabilities import stacked_probabilities

SETTINGS_FILE = "cv_config.json"


def scores_file(tta: int, stem: str = Path(CV_SCORES_FILE).stem) -> str:
    """cv.json scores the held-out digits as they are; cv_tta<N>.json with N augmented copies of each.
    Other per-CV files (the test estimate's) take the same rule under their own stem."""
    return f"{stem}.json" if tta == 0 else f"{stem}_tta{tta}.json"


CV_FILE = scores_file(0)


def fold_indices(labels: np.ndarray, k: int, seed: int, train_share: float = 1.0
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each fold's (training rows, held-out rows). train_share < 1: each fold trains on that
    stratified share of its training rows and holds out the same rows, for accuracy against rows."""
    folds = list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels))
    if train_share >= 1:
        return folds
    return [(np.sort(train_test_split(train, train_size=train_share, stratify=labels[train], random_state=seed)[0]),
             held_out) for train, held_out in folds]


def model_name(fold: int, seed_index: int, seed: int) -> str:
    return f"fold-{fold}" if seed_index == 0 else f"fold-{fold}-seed-{seed}"


def fold_runs(folder: Path) -> dict[int, list[Path]]:
    """Every model of a CV folder, by fold."""
    runs: dict[int, list[Path]] = {}
    for path in sorted(p for p in folder.iterdir() if is_run(p)):
        found = re.search(r"-fold-(\d+)(-seed-\d+)?$", path.name)
        if found:
            runs.setdefault(int(found.group(1)), []).append(path)
    return runs


def spread(values: list[float]) -> dict:
    a = np.array(values)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
            "min": float(a.min()), "max": float(a.max()), "n": len(a)}


def evaluate_fold(runs: list[Path], images: np.ndarray, labels: np.ndarray, tta: int) -> dict:
    """Each model's held-out accuracy and, with several, their ensemble's and their agreement."""
    probs = stacked_probabilities([run / MODEL_FILE for run in runs], images, tta)
    result = {"accuracy": [float((p.argmax(axis=1) == labels).mean()) for p in probs]}
    if len(runs) > 1:
        result["ensemble_accuracy"] = float((probs.mean(axis=0).argmax(axis=1) == labels).mean())
        result["agreement"] = agreement(probs)
        result["by_size"] = size_curve(probs, labels)
        result["every_member_wrong"] = every_member_wrong(probs, labels)
    return result


def summarise(folds: list[dict], members: int | str) -> dict:
    """Single-model and per-fold ensemble figures over folds; `members`: models in each fold's ensemble."""
    single = spread([a for f in folds for a in f["accuracy"]])
    seconds = [s for f in folds for s in f["train_seconds"]]
    summary = {
        "folds": folds,
        "single": single,
        "train_minutes": round(sum(seconds) / 60, 1),
        "minutes_per_model": round(float(np.mean(seconds)) / 60, 1),
        "images_per_second": round(float(np.mean([r for f in folds for r in f["train_images_per_second"]]))),
    }
    if all("ensemble_accuracy" in f for f in folds):
        ensemble = spread([f["ensemble_accuracy"] for f in folds])
        summary["ensemble"] = {
            **ensemble,
            "members": members,
            "gain_over_member_mean": ensemble["mean"] - single["mean"],
            "all_agree": float(np.mean([f["agreement"]["all_agree"] for f in folds])),
            # the curve up to the fewest members a fold has, so every point averages every fold
            "by_size": np.mean([f["by_size"][:min(len(f["by_size"]) for f in folds)] for f in folds], axis=0).tolist(),
            "every_member_wrong": float(np.mean([f["every_member_wrong"] / f["n"] for f in folds])),
        }
    return summary


def score_folds(folder: Path, runs: dict[int, list[Path]], digits, splits, tta: int, members: int | str,
                header: dict) -> dict:
    """Score each fold's models on its held-out rows into cv.json and, with tta, also into
    cv_tta<N>.json, so that the augmented figures sit beside the plain ones instead of replacing
    them. Returns the last summary written (the augmented one, with tta)."""
    for views in sorted({0, tta}):
        results = [fold_result(i, runs[i], digits, splits[i - 1][1], views) for i in sorted(runs)]
        summary = {**header, "tta": views, "demo_data": digits.demo, **summarise(results, members)}
        write_json(folder / scores_file(views), summary)
        report(summary, folder)
    return summary


def fold_result(fold: int, runs: list[Path], digits, held_out: np.ndarray, tta: int) -> dict:
    """One fold's line of cv.json: its models, their training time and held-out scores."""
    trained = [read_json(r / METRICS_FILE, ("train_seconds",)) for r in runs]
    return {"fold": fold, "n": len(held_out), "runs": [r.name for r in runs],
            "train_seconds": [m["train_seconds"] for m in trained],
            "train_images_per_second": [m["train_images_per_second"] for m in trained],
            **evaluate_fold(runs, digits.images[held_out], digits.labels[held_out], tta)}


def report(summary: dict, folder: Path) -> None:
    for f in summary["folds"]:
        line = f"cv: fold {f['fold']}: accuracy {' '.join(f'{a:.5f}' for a in f['accuracy'])}"
        if "ensemble_accuracy" in f:
            line += f", ensemble {f['ensemble_accuracy']:.5f}"
        print(f"{line} ({f['n']} held out), {sum(f['train_seconds']) / 60:.1f} min, "
              f"{np.mean(f['train_images_per_second']):.0f} img/s")
    single, n_folds = summary["single"], len(summary["folds"])
    tta = f", test-time augmentation x{summary['tta']}" if summary["tta"] else ""
    print(f"cv: {n_folds} of {summary['k']} folds, single model: accuracy {single['mean']:.5f} ± {single['std']:.5f} "
          f"(min {single['min']:.5f}, max {single['max']:.5f}, {single['n']} models){tta}")
    if "ensemble" in summary:
        e = summary["ensemble"]
        print(f"cv: each fold's ensemble of {e['members']} models: accuracy {e['mean']:.5f} ± {e['std']:.5f} (min {e['min']:.5f}, "
              f"max {e['max']:.5f}), {100 * e['gain_over_member_mean']:+.3f} points over its members' mean; "
              f"all members agree on {e['all_agree']:.4f} of digits")
        curve = ", ".join(f"{k} {a:.5f}" for k, a in enumerate(e["by_size"], start=1))
        print(f"cv: the average of k members, by k: {curve}; every member wrong on {100 * e['every_member_wrong']:.3f}% "
              f"of digits (an average seldom gets those right: about {1 - e['every_member_wrong']:.5f} at best)")
    print(f"cv: {summary['train_minutes']} min of training ({summary['minutes_per_model']} per model, "
          f"{summary['images_per_second']} img/s) -> "
          f"{folder / scores_file(summary['tta'])}; all the CV's models as one ensemble: "
          f"python -m competition.predict --run {folder}")
