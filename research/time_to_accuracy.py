"""How much training a CV accuracy costs: CV folders against their training FLOPs and minutes.

    python -m research.time_to_accuracy models/cv-* --out docs/time_to_accuracy.png [--json curve.json]

For each CV folder (made by `make cv`): its configuration, the folds it trained, the single models'
mean accuracy ± std, the training FLOPs of one model (epochs x training rows x
competition.training.speed.training_flops of its design) and its median training minutes and images/s
as cv.json recorded them (so the minutes are of the machine and the parallelism it ran with: say
which). Prints one line per folder, best first, and draws accuracy against FLOPs and against minutes;
folders with fewer than k folds are drawn hollow (a screen, not the CV). The figures and commands:
docs/experiments.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from competition import startup  # noqa: E402

startup.begin()  # before TensorFlow loads: Keras' backend, its start-up lines quieted

from common.writing import write_json  # noqa: E402
from competition.config import TrainConfig  # noqa: E402
from competition.data.reading import read_json  # noqa: E402
from competition.model import designs  # noqa: E402
from competition.scoring.folds import CV_FILE  # noqa: E402
from competition.training import speed  # noqa: E402

TRAIN_ROWS = 42_000  # train.csv's rows: a fold's model trains on (k-1)/k of them


def point(folder: Path) -> dict:
    """One CV folder as a point of the curve."""
    cv = read_json(folder / CV_FILE, ("k", "config", "folds"))
    cfg = TrainConfig(**{key: value for key, value in cv["config"].items() if key in TrainConfig.__dataclass_fields__})
    accuracies = [a for fold in cv["folds"] for a in fold["accuracy"]]
    seconds = [s for fold in cv["folds"] for s in fold["train_seconds"]]
    rates = [r for fold in cv["folds"] for r in fold["train_images_per_second"]]
    rows = TRAIN_ROWS * (cv["k"] - 1) / cv["k"]
    flops = cfg.epochs * rows * speed.training_flops(designs.for_config(cfg))
    return {"name": folder.name.removeprefix("cv-"), "folds": len(cv["folds"]), "k": cv["k"],
            "accuracy": statistics.mean(accuracies),
            "std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
            "fold_accuracies": accuracies, "tflop": flops / 1e12,
            "minutes": statistics.median(seconds) / 60, "images_per_second": statistics.median(rates),
            "settings": {key: getattr(cfg, key) for key in ("arch", "width", "dropout", "epochs", "batch_size",
                                                              "learning_rate", "schedule", "lr_decay", "ema",
                                                              "label_smoothing", "rotation_deg", "shift_frac")}}


def draw(points: list[dict], target: Path, reference: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    for ax, key, label in ((axes[0], "tflop", "training TFLOP of one model (33,600 rows)"),
                           (axes[1], "minutes", "training minutes of one model, as cv.json recorded")):
        for p in points:
            whole = p["folds"] == p["k"]
            ax.errorbar(p[key], p["accuracy"], yerr=p["std"], fmt="o", capsize=3,
                        mfc=None if whole else "white", color="C0" if p["settings"]["arch"] == "strong" else "C1")
            ax.annotate(p["name"], (p[key], p["accuracy"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
        if reference:
            ax.axhline(reference, color="grey", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("CV accuracy of one model (mean ± std over folds)")
    figure.suptitle("Time to accuracy: filled, all 5 folds; hollow, folds 1-2 (a screen); blue strong, orange resnet")
    figure.tight_layout()
    partial = target.with_name(f".{target.name}.tmp")
    figure.savefig(partial, dpi=110, format=target.suffix.lstrip(".") or "png")
    partial.replace(target)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="CV folders (models/cv-<name>)")
    parser.add_argument("--out", type=Path, help="draw the curve into this PNG")
    parser.add_argument("--json", type=Path, help="write the points here")
    parser.add_argument("--reference", type=float, default=0.99524,
                        help="a horizontal line: the accuracy to reach (default: the old fast recipe's CV)")
    args = parser.parse_args(argv)
    missing = [str(f) for f in args.folders if not (f / CV_FILE).is_file()]
    if missing:
        parser.error(f"no {CV_FILE} in {', '.join(missing)}: give folders made by `make cv`")
    points = sorted((point(folder) for folder in args.folders), key=lambda p: -p["accuracy"])
    for p in points:
        s = p["settings"]
        print(f"{p['name']:<16} {p['accuracy']:.5f} ± {p['std']:.5f} ({p['folds']} of {p['k']} folds)  "
              f"{p['tflop']:6.1f} TFLOP  {p['minutes']:5.1f} min  {p['images_per_second']:6,.0f} img/s  "
              f"{s['arch']} x{s['width']:g}, dropout {s['dropout']:g}, {s['epochs']} epochs of batch {s['batch_size']}, "
              f"{s['schedule']} {s['learning_rate']:g}, ema {s['ema']:g}, smoothing {s['label_smoothing']:g}, "
              f"warps {s['rotation_deg']:g} deg / {s['shift_frac']:g}")
    if args.out:
        draw(points, args.out, args.reference)
        print(f"curve: {args.out}")
    if args.json:
        write_json(args.json, {"points": points})
    return 0


if __name__ == "__main__":
    sys.exit(main())
