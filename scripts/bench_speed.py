"""What makes CPU training fast: images/s of one architecture under each choice, measured.

    python scripts/bench_speed.py --arch strong                    # batch sizes, XLA, threads
    python scripts/bench_speed.py --arch strong --batch_sizes 64 256 --no-xla

For each setting a fresh model trains a warm-up epoch (tracing, compiling), then --epochs timed
epochs of --steps batches from the augmented tf.data pipeline; the median images/s is printed, one
line per setting, and all of them as JSON with --out. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from competition import model as models  # noqa: E402  (first: it sets the Keras backend)
from competition.augment import make_dataset  # noqa: E402
from competition.data import load_train  # noqa: E402
from competition.train import onehot  # noqa: E402
from bench_train import Timer  # noqa: E402  (scripts/ is on the path when run as a script)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

SHARED_DATA = ROOT.parent / "shared" / "data" / "digit-recognizer"


def rate(arch: str, images, labels, batch_size: int, xla: bool, steps: int, epochs: int) -> float:
    keras.utils.set_random_seed(0)
    model = models.build(arch)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"],
                  jit_compile=xla)
    ds = make_dataset(images, labels, batch_size, seed=0, augment=True).repeat()
    timer = Timer()
    model.fit(ds, steps_per_epoch=steps, epochs=epochs + 1, callbacks=[timer], verbose=0)
    return steps * batch_size / statistics.median(timer.seconds[1:])  # the first epoch traces


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="strong", choices=sorted(models.ARCHITECTURES), help="(default: %(default)s)")
    parser.add_argument("--data_dir", default=str(SHARED_DATA), help="(default: %(default)s)")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[32, 64, 128, 256],
                        help="(default: %(default)s)")
    parser.add_argument("--xla", action=argparse.BooleanOptionalAction, default=True,
                        help="also time XLA-compiled steps (default: %(default)s)")
    parser.add_argument("--images", type=int, default=6400, help="images per timed epoch (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per setting (default: %(default)s)")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)

    digits = load_train(args.data_dir)
    images, labels = digits.images, onehot(digits.labels)
    threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    print(f"data: {len(images)} images from {digits.source}; arch {args.arch}; {threads} intra-op threads")
    results = []
    for xla in ([False, True] if args.xla else [False]):
        for batch_size in args.batch_sizes:
            steps = max(args.images // batch_size, 10)
            value = rate(args.arch, images, labels, batch_size, xla, steps, args.epochs)
            results.append({"arch": args.arch, "batch_size": batch_size, "xla": xla, "images_per_second": round(value)})
            print(f"batch {batch_size:4d}, xla {'on ' if xla else 'off'}: {value:7,.0f} img/s "
                  f"({42000 / value / 60:.1f} min an epoch of 42,000)", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
