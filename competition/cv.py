"""K-fold cross-validation of a training configuration, optionally several seeds per fold.

    python -m competition.cv --k 5 --preset strong
    python -m competition.cv --k 5 --preset strong --folds 1 2     # some folds now, the rest later
    python -m competition.cv --k 5 --preset strong --seeds 2       # 2 models per fold: an ensemble's CV
    python -m competition.cv --k 5 --preset strong --jobs 2        # 2 models at once: more images/s in all
    python -m competition.cv --k 5 --preset strong --cluster HEAD:6379  # the folds on a Ray cluster
    python -m competition.cv --k 5 --preset strong --train_share 0.5 --name half  # half of each fold's rows
    python -m competition.predict --run cv-strong               # all its models as one ensemble

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
import sys
from pathlib import Path

from competition import startup

startup.begin()  # before TensorFlow loads: Keras' backend, its start-up lines quieted

from common.errors import add_debug_flag, exit_status
from common.writing import write_json
from competition.cli import (
    add_cluster_flag,
    add_gpus_flag,
    add_tta_flag,
    add_workers_flag,
    check_cluster_jobs,
    named_after_preset,
    parse_train_config,
)
from competition.config import TrainConfig
from competition.data.digits import load_train
from competition.runs.building import exclusive
from competition.runs.layout import ENSEMBLE_FILE, is_run
from competition.runs.resume import open_resumable, recorded
from competition.scoring.folds import (
    SETTINGS_FILE,
    fold_indices,
    model_name,
    score_folds,
)
from competition.training import hardware, parallel, trainer


def cross_validate(cfg: TrainConfig, k: int, folds: list[int] | None = None, cv_seed: int = 0, seeds: int = 1, tta: int = 0,
        fresh: bool = False, workers: int = 1, cluster: str | None = None, gpus: tuple[int, ...] = (),
        train_share: float = 1.0) -> dict:
    folder = Path(cfg.models_dir) / f"cv-{cfg.name}"
    # This machine's, handed to every model trained here.
    setup = dataclasses.replace(hardware.resolve(cfg.precision, cfg.threads), gpus=tuple(gpus))
    precision = hardware.work_precision(cfg.precision, setup, None if fresh else recorded(folder / SETTINGS_FILE, "precision"),
                                        bool(cluster))
    settings = {**trainer.recorded_settings(cfg, precision), "k": k, "cv_seed": cv_seed, "seeds": seeds,
                "train_share": train_share}
    open_resumable(folder, SETTINGS_FILE, settings, (*trainer.IDENTITY, "k", "cv_seed", "train_share"),
                   fresh, defaults={**trainer.RECORDED_DEFAULTS, "train_share": 1.0})  # seeds may grow

    digits = load_train(cfg.data_dir)
    splits = fold_indices(digits.labels, k, cv_seed, train_share)
    chosen = folds or list(range(1, k + 1))
    jobs = {}  # (fold, seed) -> its model; every fold's first model before any second: single-model CV first
    for s in range(seeds):
        for i in chosen:
            train_rows, held_out = splits[i - 1]
            what = f" (of {k}, seed {cfg.seed + s}: {len(train_rows)} train / {len(held_out)} held out)"
            jobs[i, s] = parallel.Job(dataclasses.replace(cfg, seed=cfg.seed + s, precision=precision), folder,
                                      model_name(i, s, cfg.seed + s), splits[i - 1], what)
    trained = dict(zip(jobs, parallel.train_all(list(jobs.values()), workers, setup, cluster, digits)))
    runs = {i: [trained[i, s] for s in range(seeds)] for i in chosen}
    # Every model of this CV, those of folds not chosen now included: all were trained as cfg says.
    members = sorted(p.name for p in folder.iterdir() if is_run(p))
    write_json(folder / ENSEMBLE_FILE, {"members": members, "config": cfg.to_dict()})

    return score_folds(folder, runs, digits, splits, tta, seeds,
                       {"k": k, "cv_seed": cv_seed, "seeds": seeds, "train_share": train_share, "config": cfg.to_dict()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=5, help="number of folds (default: %(default)s)")
    parser.add_argument("--folds", type=int, nargs="*", default=None, help="which folds, 1..k (default: all)")
    parser.add_argument("--cv_seed", type=int, default=0, help="seed of the fold assignment (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="models per fold, seeds seed..seed+N-1; > 1 also measures their ensemble (default: 1)")
    parser.add_argument("--train_share", type=float, default=1.0,
                        help="train each fold's model on this stratified share of its training rows, the same rows "
                             "held out: accuracy against rows (default: all)")
    add_tta_flag(parser)
    parser.add_argument("--fresh", action="store_true", help="delete this CV's models and start over")
    add_workers_flag(parser)
    add_gpus_flag(parser)
    add_cluster_flag(parser)
    add_debug_flag(parser)
    cfg, args = parse_train_config(parser, argv)
    check_cluster_jobs(parser, args, 1)
    if args.k < 2 or any(not 1 <= f <= args.k for f in args.folds or []):
        parser.error("--k must be at least 2 and --folds between 1 and k")
    if args.seeds < 1 or args.tta < 0 or args.jobs < 1 or not 0 < args.train_share <= 1:
        parser.error("--seeds and --jobs must be at least 1, --tta at least 0, --train_share in (0, 1]")
    cfg = named_after_preset(cfg, args.preset)

    def work():  # two CVs of one name at once would train the same folds twice and race on cv.json
        with exclusive(Path(cfg.models_dir) / f"cv-{cfg.name}", "a cross-validation"):
            return cross_validate(cfg, args.k, args.folds, args.cv_seed, args.seeds, args.tta, args.fresh, args.jobs,
                                  args.cluster, args.gpus, args.train_share)

    return exit_status(work, args.debug, interrupted="finished folds are kept: the same command continues")


if __name__ == "__main__":
    sys.exit(main())
