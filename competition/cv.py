"""K-fold cross-validation of a training configuration, optionally several seeds per fold.

    python -m competition.cv --k 5 --preset strong
    python -m competition.cv --k 5 --preset strong --folds 1 2     # some folds now, the rest later
    python -m competition.cv --k 5 --preset strong --seeds 2       # 2 models per fold: an ensemble's CV
    python -m competition.cv --k 5 --preset strong --jobs 2        # 2 models at once: more images/s in all
    python -m competition.submission --run cv-strong               # all its models as one ensemble

Folds are stratified over train.csv (--cv_seed). Each model is an ordinary run folder under
models/cv-<name>/ (fold-<i> for the first seed, fold-<i>-seed-<s> for the others), so an interrupted
CV continues: finished models are reused, and --seeds can grow. cv.json holds each model's held-out
accuracy and training time; the single-model mean, standard deviation, min and max; with --seeds > 1
the same for each fold's ensemble of its seeds, its gain and how often its members agree. With
--tta N, cv_tta<N>.json holds the same scored with test-time augmentation, beside cv.json. The CV
folder is also an ensemble (ensemble.json) of all its models, each trained on (k-1)/k of the rows:
those of folds left out of this invocation (--folds) too.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

from competition import train
from competition.config import TrainConfig, add_workers_flag, named_after_preset, parse_train_config
from competition.data import load_train
from competition.io import write_json
from competition.metrics import agreement
from competition.predict import stacked_probabilities
from competition.errors import add_debug_flag, exit_status
from competition.runs import ENSEMBLE_FILE, METRICS_FILE, MODEL_FILE, exclusive, is_run, open_resumable

SETTINGS_FILE = "cv_config.json"
# Settings a fold may be reused under: everything that changes what it learns.
IDENTITY = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("name", "models_dir", "threads"))


def scores_file(tta: int, stem: str = "cv") -> str:
    """cv.json scores the held-out digits as they are; cv_tta<N>.json with N augmented copies of each.
    Other per-CV files (the test estimate's) take the same rule under their own stem."""
    return f"{stem}.json" if tta == 0 else f"{stem}_tta{tta}.json"


CV_FILE = scores_file(0)


def fold_indices(labels: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels))


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
        }
    return summary


def run(cfg: TrainConfig, k: int, folds: list[int] | None = None, cv_seed: int = 0, seeds: int = 1, tta: int = 0,
        fresh: bool = False, workers: int = 1) -> dict:
    folder = Path(cfg.models_dir) / f"cv-{cfg.name}"
    settings = {**cfg.to_dict(), "k": k, "cv_seed": cv_seed, "seeds": seeds}
    open_resumable(folder, SETTINGS_FILE, settings, (*IDENTITY, "k", "cv_seed"), fresh,  # seeds may grow
                   defaults=TrainConfig().to_dict())

    digits = load_train(cfg.data_dir)
    splits = fold_indices(digits.labels, k, cv_seed)
    chosen = folds or list(range(1, k + 1))
    jobs = {}  # (fold, seed) -> its model; every fold's first model before any second: single-model CV first
    for s in range(seeds):
        for i in chosen:
            train_rows, held_out = splits[i - 1]
            what = f" (of {k}, seed {cfg.seed + s}: {len(train_rows)} train / {len(held_out)} held out)"
            jobs[i, s] = train.Job(dataclasses.replace(cfg, seed=cfg.seed + s), folder, model_name(i, s, cfg.seed + s),
                                   splits[i - 1], what)
    trained = dict(zip(jobs, train.run_all(list(jobs.values()), workers)))
    runs = {i: [trained[i, s] for s in range(seeds)] for i in chosen}
    # Every model of this CV, those of folds not chosen now included: all were trained as cfg says.
    members = sorted(p.name for p in folder.iterdir() if is_run(p))
    write_json(folder / ENSEMBLE_FILE, {"members": members, "config": cfg.to_dict()})

    return score_folds(folder, runs, digits, splits, tta, seeds,
                       {"k": k, "cv_seed": cv_seed, "seeds": seeds, "config": cfg.to_dict()})


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
    trained = [json.loads((r / METRICS_FILE).read_text()) for r in runs]
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
    print(f"cv: {summary['train_minutes']} min of training ({summary['minutes_per_model']} per model, "
          f"{summary['images_per_second']} img/s) -> "
          f"{folder / scores_file(summary['tta'])}; all the CV's models as one ensemble: "
          f"python -m competition.submission --run {folder}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=5, help="number of folds (default: %(default)s)")
    parser.add_argument("--folds", type=int, nargs="*", default=None, help="which folds, 1..k (default: all)")
    parser.add_argument("--cv_seed", type=int, default=0, help="seed of the fold assignment (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="models per fold, seeds seed..seed+N-1; > 1 also measures their ensemble (default: 1)")
    parser.add_argument("--tta", type=int, default=0,
                        help="test-time augmented copies per digit when evaluating (default: %(default)s)")
    parser.add_argument("--fresh", action="store_true", help="delete this CV's models and start over")
    add_workers_flag(parser)
    add_debug_flag(parser)
    cfg, args = parse_train_config(parser, argv)
    if args.k < 2 or any(not 1 <= f <= args.k for f in args.folds or []):
        parser.error("--k must be at least 2 and --folds between 1 and k")
    if args.seeds < 1 or args.tta < 0 or args.jobs < 1:
        parser.error("--seeds and --jobs must be at least 1, --tta at least 0")
    cfg = named_after_preset(cfg, args.preset)

    def work():  # two CVs of one name at once would train the same folds twice and race on cv.json
        with exclusive(Path(cfg.models_dir) / f"cv-{cfg.name}", "a cross-validation"):
            return run(cfg, args.k, args.folds, args.cv_seed, args.seeds, args.tta, args.fresh, args.jobs)

    return exit_status(work, args.debug, interrupted="finished folds are kept: the same command continues")


if __name__ == "__main__":
    sys.exit(main())
