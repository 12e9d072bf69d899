"""Several cross-validations of the same folds as one ensemble: its CV and its submission.

    python -m competition.combine cv-strong cv-strong-bf16 --name strong-all --tta 4
    python -m competition.combine cv-strong-bf16 --also ensemble-strong-full --name final  # + models of every row
    python -m competition.combine cv-a cv-b --folds 1 2 --name ab        # only the folds both screened
    python -m competition.predict --run cv-strong-all --tta 4

The CV folders (under --models_dir, or paths) must share k and the fold assignment (cv_seed). Each
fold's ensemble averages that fold's models from every folder, all of which held out the same rows,
so the CV scores the combined ensemble as `cv --seeds` scores one configuration's seeds. The result
is a folder models/cv-<name>/ with ensemble.json (every model of every folder, as paths relative to
it) and cv.json (per fold: each model's and the ensemble's held-out accuracy, agreement, training
time; with --tta N also cv_tta<N>.json), which `make submission RUN=cv-<name>` predicts with like any
ensemble. --also adds the models of other runs or ensembles to its submission but not to its CV:
members trained on every row (`make ensemble ... --val_size 0`) have no held-out rows to be scored on.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from competition import startup

startup.begin()  # before TensorFlow loads: Keras' backend, its start-up lines quieted

from common.errors import InputError, add_debug_flag, exit_status
from common.writing import write_json
from competition.cli import add_data_dir, add_models_dir, add_tta_flag
from competition.data.digits import load_train
from competition.data.reading import read_json
from competition.runs.building import exclusive
from competition.runs.layout import ENSEMBLE_FILE
from competition.scoring.folds import (
    SETTINGS_FILE,
    fold_indices,
    fold_runs,
    score_folds,
)
from competition.scoring.probabilities import model_paths


def cv_settings(folder: Path) -> dict:
    path = folder / SETTINGS_FILE
    if not path.is_file():
        raise InputError(f"{folder}: not a cross-validation folder (no {SETTINGS_FILE}; make one with `make cv`)")
    return read_json(path, ("k", "cv_seed"))


def models_of(folder: Path) -> list[Path]:
    """The run folders of a run or an ensemble folder."""
    found = [path.parent for path in model_paths(folder)]
    missing = [str(path) for path in found if not path.is_dir()]
    if missing:
        raise InputError(f"{folder}: not a run or an ensemble with all its members ({', '.join(missing)} missing)")
    return found


def combine_cvs(folders: list[Path], out: Path, data_dir: str, tta: int = 0, also: list[Path] = (),
                folds: list[int] | None = None) -> dict:
    settings = [cv_settings(f) for f in folders]
    extra = [model for folder in also for model in models_of(folder)]
    k, cv_seed = settings[0]["k"], settings[0]["cv_seed"]
    for folder, s in zip(folders, settings):
        if (s["k"], s["cv_seed"]) != (k, cv_seed):
            raise InputError(f"{folder}: k {s['k']}, cv_seed {s['cv_seed']}; {folders[0]} has k {k}, cv_seed {cv_seed}: "
                             "not the same folds")
    runs: dict[int, list[Path]] = {}
    for folder in folders:
        for fold, found in fold_runs(folder).items():
            runs.setdefault(fold, []).extend(found)
    if folds:
        missing = sorted(set(folds) - runs.keys())
        if missing:
            raise InputError(f"--folds: no models of fold {', '.join(map(str, missing))} in {', '.join(map(str, folders))}")
        runs = {fold: found for fold, found in runs.items() if fold in folds}
    if not runs:
        raise InputError(f"no trained folds in {', '.join(map(str, folders))}")

    digits = load_train(data_dir)
    splits = fold_indices(digits.labels, k, cv_seed)
    counts = sorted({len(r) for r in runs.values()})
    members = counts[0] if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    out.mkdir(parents=True, exist_ok=True)
    every = [os.path.relpath(r, out) for r in [*(r for fold in sorted(runs) for r in runs[fold]), *extra]]
    write_json(out / ENSEMBLE_FILE, {"members": every, "combines": [str(f) for f in folders],
                                     "also": [str(f) for f in also]})
    header = {"k": k, "cv_seed": cv_seed, "combines": [str(f) for f in folders], "also": [str(f) for f in also]}
    return score_folds(out, runs, digits, splits, tta, members, header)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", help="CV folders: names under --models_dir (cv-strong) or paths")
    parser.add_argument("--name", required=True, help="the combined ensemble goes to <models_dir>/cv-<name>/")
    add_data_dir(parser)
    add_models_dir(parser)
    add_tta_flag(parser, "when evaluating")
    parser.add_argument("--folds", type=int, nargs="+", default=None,
                        help="only these folds (default: every fold with models), e.g. the screened ones")
    parser.add_argument("--also", nargs="+", default=[],
                        help="runs or ensembles whose models join the submission but not the CV (trained on every row)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.tta < 0:
        parser.error("--tta must be at least 0")
    def located(name: str) -> Path:  # a path, or a name under --models_dir
        return Path(name) if Path(name).is_dir() else Path(args.models_dir) / name

    folders, also = [located(f) for f in args.folders], [located(f) for f in args.also]
    out = Path(args.models_dir) / f"cv-{args.name}"
    if out in folders + also:
        parser.error(f"--name {args.name}: that is one of the folders being combined")

    def work():
        with exclusive(out, "a combination of cross-validations"):
            return combine_cvs(folders, out, args.data_dir, args.tta, also, args.folds)

    return exit_status(work, args.debug)


if __name__ == "__main__":
    sys.exit(main())
