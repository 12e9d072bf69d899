"""Training throughput of the report's model with and without augmentation (images per second).

    python scripts/bench_train.py [--data_dir ../shared/data/digit-recognizer] [--steps 200]

Each mode trains a fresh model: one warm-up epoch (graph tracing), then timed epochs of --steps
batches; modes alternate over --repeats rounds so drift in machine load hits both alike. It also
times the input pipeline alone, to show what augmentation costs by itself.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from competition import model as models  # noqa: E402  (first: it sets the Keras backend)
from competition.augment import make_dataset  # noqa: E402
from competition.config import SHARED_DATA_DIR, TrainConfig  # noqa: E402
from competition.data import load_train  # noqa: E402
from competition.train import onehot  # noqa: E402

import keras  # noqa: E402



class Timer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def train_rate(images, labels, augment: bool, cfg: TrainConfig, steps: int, epochs: int) -> float:
    keras.utils.set_random_seed(cfg.seed)
    model = models.compile_model(models.build(cfg.arch), cfg.learning_rate)
    ds = make_dataset(images, labels, cfg.batch_size, cfg.seed, augment,
                      cfg.rotation_deg, cfg.shift_frac, cfg.zoom_frac)
    timer = Timer()
    model.fit(ds, steps_per_epoch=steps, epochs=epochs + 1, callbacks=[timer], verbose=0)
    per_epoch = timer.seconds[1:]  # the first epoch traces the graph
    return steps * cfg.batch_size / statistics.median(per_epoch)


def pipeline_rate(images, labels, augment: bool, cfg: TrainConfig, steps: int) -> float:
    ds = make_dataset(images, labels, cfg.batch_size, cfg.seed, augment,
                      cfg.rotation_deg, cfg.shift_frac, cfg.zoom_frac)
    it = iter(ds)
    next(it)
    start = time.perf_counter()
    for _ in range(steps):
        next(it)
    return steps * cfg.batch_size / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=str(SHARED_DATA_DIR), help="(default: %(default)s)")
    parser.add_argument("--steps", type=int, default=200, help="batches per timed epoch (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per measurement (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=2, help="alternating rounds (default: %(default)s)")
    parser.add_argument("--batch_size", type=int, default=32, help="(default: %(default)s)")
    args = parser.parse_args(argv)

    cfg = TrainConfig(batch_size=args.batch_size)
    digits = load_train(args.data_dir)
    images, labels = digits.images, onehot(digits.labels)
    print(f"data: {len(images)} images from {digits.source}; batch {cfg.batch_size}, {args.steps} steps an epoch")

    for augment in (False, True):
        rate = pipeline_rate(images, labels, augment, cfg, 10 * args.steps)
        print(f"pipeline alone, augment {'on ' if augment else 'off'}: {rate:,.0f} img/s")

    rates = {False: [], True: []}
    for round_ in range(args.repeats):
        for augment in (False, True):
            rate = train_rate(images, labels, augment, cfg, args.steps, args.epochs)
            rates[augment].append(rate)
            print(f"round {round_ + 1}, augment {'on ' if augment else 'off'}: {rate:,.0f} img/s")
    plain, augmented = statistics.median(rates[False]), statistics.median(rates[True])
    print(f"training: plain {plain:,.0f} img/s, augmented {augmented:,.0f} img/s "
          f"= {100 * augmented / plain:.0f}% of plain (target >= 90%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
