"""Train K members of one configuration with different seeds and average their probabilities.

    python -m competition.ensemble --k 5 --preset strong                # members share the validation split
    python -m competition.ensemble --k 15 --preset strong --val_size 0  # final members on every row
    python -m competition.ensemble --k 4 --preset strong --jobs 2       # 2 members at once
    python -m competition.ensemble --k 15 --preset strong --cluster auto  # on the running Ray cluster
    python -m competition.predict --run ensemble-strong [--tta 4]   # its submission, as from a run

models/ensemble-<name>/ holds one ordinary run folder per member (member-<i>, seed seed+i-1),
ensemble.json (which members) and metrics.json: the ensemble's validation accuracy, each member's,
the gain over the best member, and how often the members agree. Members that exist are reused, so
an interrupted ensemble continues where it was.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from competition import startup

startup.begin()  # before TensorFlow loads: Keras' backend, its start-up lines quieted

import numpy as np

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
from competition.data import splits
from competition.data.digits import load_test, load_train
from competition.data.reading import read_json
from competition.runs.building import exclusive
from competition.runs.layout import ENSEMBLE_FILE, METRICS_FILE
from competition.runs.resume import open_resumable, recorded
from competition.scoring.metrics import agreement, classification_metrics
from competition.scoring.probabilities import member_probabilities
from competition.training import hardware, parallel, trainer

SETTINGS_FILE = "ensemble_config.json"


def evaluate(folder: Path, member_names: list[str], images: np.ndarray, labels: np.ndarray | None, tta: int) -> dict:
    probs = member_probabilities(folder, images, tta)
    result = {"agreement": agreement(probs)}
    if labels is not None:
        members = [classification_metrics(labels, p)["accuracy"] for p in probs]
        ensemble = classification_metrics(labels, probs.mean(axis=0))
        best = int(np.argmax(members))
        result.update(
            validation=ensemble,
            member_accuracy=dict(zip(member_names, members)),
            best_member=member_names[best],
            gain_over_best_member=ensemble["accuracy"] - members[best],
        )
    return result


def train_ensemble(cfg: TrainConfig, k: int, tta: int = 0, fresh: bool = False, workers: int = 1,
                   cluster: str | None = None, gpus: tuple[int, ...] = ()) -> Path:
    folder = Path(cfg.models_dir) / f"ensemble-{cfg.name}"
    # This machine's, handed to every model trained here.
    setup = dataclasses.replace(hardware.resolve(cfg.precision, cfg.threads), gpus=tuple(gpus))
    precision = hardware.work_precision(cfg.precision, setup, None if fresh else recorded(folder / SETTINGS_FILE, "precision"),
                                        bool(cluster))
    open_resumable(folder, SETTINGS_FILE, {**trainer.recorded_settings(cfg, precision), "k": k}, trainer.IDENTITY,  # k may grow
                   fresh, defaults=trainer.RECORDED_DEFAULTS)

    digits = load_train(cfg.data_dir)
    jobs = [parallel.Job(dataclasses.replace(cfg, seed=cfg.seed + i - 1, precision=precision), folder, f"member-{i}",
                      what=f" (of {k}, seed {cfg.seed + i - 1})") for i in range(1, k + 1)]
    members = parallel.train_all(jobs, workers, setup, cluster, digits)
    names = [member.name for member in members]
    seconds = sum(read_json(member / METRICS_FILE, ("train_seconds",))["train_seconds"] for member in members)
    write_json(folder / ENSEMBLE_FILE, {"members": names, "config": cfg.to_dict()})

    _, x_val, _, y_val = splits.split(digits, cfg)
    if len(x_val):
        result = evaluate(folder, names, x_val, y_val, tta)
    else:  # members saw every row: only their agreement on test.csv can be measured
        result = evaluate(folder, names, load_test(cfg.data_dir).images, None, tta)
    metrics = {"members": len(names), "tta": tta, "demo_data": digits.demo, "train_minutes": round(seconds / 60, 1),
               **result}
    write_json(folder / METRICS_FILE, metrics)

    agree = result["agreement"]
    print(f"ensemble: {len(names)} members, {metrics['train_minutes']} min of training; members all agree on "
          f"{agree['all_agree']:.4f} of {agree['n']} digits (pairs: {agree['mean_pairwise']:.4f})")
    if "validation" in result:
        print(f"ensemble: val accuracy {result['validation']['accuracy']:.5f}, best member "
              f"{max(result['member_accuracy'].values()):.5f} ({result['best_member']}), "
              f"gain {100 * result['gain_over_best_member']:+.3f} points")
    print(f"ensemble: {folder}; its submission: python -m competition.predict --run {folder}")
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=5, help="number of members (default: %(default)s)")
    add_tta_flag(parser)
    parser.add_argument("--fresh", action="store_true", help="delete this ensemble's members and start over")
    add_workers_flag(parser)
    add_gpus_flag(parser)
    add_cluster_flag(parser)
    add_debug_flag(parser)
    cfg, args = parse_train_config(parser, argv)
    check_cluster_jobs(parser, args, 1)
    if args.k < 1 or args.jobs < 1 or args.tta < 0:
        parser.error("--k and --jobs must be at least 1, --tta at least 0")
    cfg = named_after_preset(cfg, args.preset)

    def work():  # two ensembles of one name at once would train the same members twice
        with exclusive(Path(cfg.models_dir) / f"ensemble-{cfg.name}", "an ensemble"):
            return train_ensemble(cfg, args.k, args.tta, args.fresh, args.jobs, args.cluster, args.gpus)

    return exit_status(work, args.debug, interrupted="finished members are kept: the same command continues")


if __name__ == "__main__":
    sys.exit(main())
