"""What makes CPU training fast: images/s of one architecture under each choice, measured.

    python scripts/bench_speed.py --arch strong                 # every choice below, about 5 minutes
    python scripts/bench_speed.py --arch strong --only batch threads

The baseline is how `--preset strong` trains on this machine: batch 64, the precision `auto` picks
(bfloat16 compute where the CPU runs it natively, else float32), steps run by TensorFlow's graph
executor (no XLA), every usable core, the augmented tf.data pipeline (parallel map, prefetch), the
project's metrics.
Each other setting changes one choice from it. For each, a fresh model trains a warm-up epoch
(tracing, compiling), then --epochs timed epochs of --images images; the median images/s is printed,
one line per setting, and all of them as JSON with --out. Thread counts need a fresh TensorFlow, so
each runs in its own process; `parallel` runs the baseline in one process per core at once, one
thread each (how `--jobs` trains a CV or an ensemble), and adds up their images/s. Run it on an
otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from competition import startup  # noqa: E402

startup.begin()  # before TensorFlow loads: Keras' backend, its start-up lines quieted

import keras  # noqa: E402

from competition.cli import add_data_dir  # noqa: E402
from competition.config import COMPUTE_PRECISIONS, PRESETS, SHARED_DATA_DIR  # noqa: E402
from competition.data.digits import load_train  # noqa: E402
from competition.model import designs  # noqa: E402
from competition.model.augment import Warps, make_dataset  # noqa: E402
from competition.training import hardware
from competition.training.speed import EpochTimer  # noqa: E402
from competition.training.trainer import onehot  # noqa: E402

STRONG = PRESETS["strong"]
MACHINE = hardware.detect()
BASELINE = {"batch_size": STRONG["batch_size"], "precision": hardware.choose_precision("auto", MACHINE)[0],
            "xla": False, "pipeline": "parallel", "metrics": "project"}
# One choice changed at a time.
CHOICES = {
    "batch": [{"batch_size": b} for b in (32, 128, 256) if b != BASELINE["batch_size"]],
    "precision": [{"precision": p} for p in COMPUTE_PRECISIONS if p != BASELINE["precision"]],
    "xla": [{"xla": True}],
    "pipeline": [{"pipeline": "serial"}, {"pipeline": "no augmentation"}, {"pipeline": "grid bend"}],
    "metrics": [{"metrics": "accuracy only"}],
}
THREADS = (1, 2)


def rate(arch: str, images, labels, setting: dict, images_per_epoch: int, epochs: int) -> float:
    keras.utils.set_random_seed(0)
    with designs.precision(setting["precision"]):
        model = designs.build(arch)
    if setting["metrics"] == "project":  # accuracy, precision, recall, F1, as every run
        designs.compile_model(model, 1e-3, jit_compile=setting["xla"])
    else:
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"],
                      jit_compile=setting["xla"])
    batch = setting["batch_size"]
    warps = {"no augmentation": None, "grid bend": Warps(grid_px=1.0)}.get(setting["pipeline"], Warps())
    ds = make_dataset(images, labels, batch, seed=0, warps=warps, parallel=setting["pipeline"] != "serial")
    steps = max(images_per_epoch // batch, 10)
    timer = EpochTimer()
    model.fit(ds, steps_per_epoch=steps, epochs=epochs + 1, callbacks=[timer], shuffle=False, verbose=0)
    return steps * batch / statistics.median(timer.seconds[1:])  # the first epoch traces


def describe(setting: dict, threads: int) -> str:
    return (f"batch {setting['batch_size']}, {setting['precision']}, xla {'on' if setting['xla'] else 'off'}, "
            f"{threads} threads, pipeline {setting['pipeline']}, metrics {setting['metrics']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="strong", choices=sorted(designs.ARCHITECTURES), help="(default: %(default)s)")
    add_data_dir(parser, default=str(SHARED_DATA_DIR))
    parser.add_argument("--only", nargs="+", choices=["baseline", *CHOICES, "threads", "parallel"], default=None,
                        help="measure the baseline and only these choices (default: all)")
    parser.add_argument("--threads", type=int, default=0,
                        help="intra-op threads of this process (0: every core it may use)")
    parser.add_argument("--images", type=int, default=6400, help="images per timed epoch (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per setting (default: %(default)s)")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    threads = hardware.apply_threads(args.threads or MACHINE.cores)
    print(f"machine: {hardware.describe_machine(MACHINE)}", flush=True)
    digits = load_train(args.data_dir)
    images, labels = digits.images, onehot(digits.labels)
    print(f"data: {len(images)} images from {digits.source}; arch {args.arch}; {threads} intra-op threads")
    settings = [BASELINE] + [{**BASELINE, **change} for name in args.only or CHOICES if name in CHOICES
                             for change in CHOICES[name]]
    results = []
    for setting in settings:
        value = rate(args.arch, images, labels, setting, args.images, args.epochs)
        results.append({**setting, "threads": threads, "images_per_second": round(value)})
        print(f"{describe(setting, threads)}: {value:6,.0f} img/s ({value / results[0]['images_per_second']:.0%} of "
              f"the first), {42000 / value / 60:.1f} min an epoch of 42,000", flush=True)

    def baseline_in(threads: int, out: Path) -> list[str]:  # a fresh process: TensorFlow fixes its threads at start
        return [sys.executable, __file__, "--arch", args.arch, "--data_dir", args.data_dir, "--only", "baseline",
                "--threads", str(threads), "--images", str(args.images), "--epochs", str(args.epochs), "--out", str(out)]

    if not args.threads and (args.only is None or "threads" in args.only):
        with tempfile.TemporaryDirectory() as tmp:
            for n in THREADS:
                out = Path(tmp) / f"threads{n}.json"
                subprocess.run(baseline_in(n, out), check=True)
                results += json.loads(out.read_text())["results"]
    if not args.threads and (args.only is None or "parallel" in args.only):
        # As `--jobs N` trains a CV or an ensemble: one process a core, one thread each, all at once.
        n = MACHINE.cores
        with tempfile.TemporaryDirectory() as tmp:
            outs = [Path(tmp) / f"worker{i}.json" for i in range(n)]
            workers = [subprocess.Popen(baseline_in(1, out)) for out in outs]
            if any(worker.wait() for worker in workers):
                raise SystemExit("a parallel worker failed")
            value = sum(json.loads(out.read_text())["results"][0]["images_per_second"] for out in outs)
        results.append({**BASELINE, "threads": 1, "processes": n, "images_per_second": value})
        print(f"{n} processes at once, 1 thread each: {value:6,.0f} img/s in all "
              f"({value / results[0]['images_per_second']:.0%} of the first)", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"hardware": hardware.record(MACHINE, threads), "results": results},
                                             indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
