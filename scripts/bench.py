"""How fast this machine trains: against its own matmul limit, and against a notebook (`make bench`).

    python scripts/bench.py [--data_dir DIR] [--images 6400] [--epochs 2] [--out bench.json]

All in one process, on the cores it may use, one after another:
  1. the machine: CPU model, cores, instruction sets, GPU, library versions;
  2. its limit: the float32 throughput of a 2048 x 2048 matrix product (and bfloat16's, where
     training uses it);
  3. training images/s of
     - the notebook baseline: the report's model trained as a notebook does it with Keras 3 (numpy
       arrays into fit, augmentation by Keras' RandomRotation / RandomTranslation / RandomZoom layers,
       batch 32, float32; Keras 3 has no ImageDataGenerator, which the report used),
     - the same model trained the project's way (`make train-aug`: tf.data, one fused affine warp,
       batch 32, --precision auto), and without augmentation (`make train`),
     - each model the recipes train (`make best RECIPE=...`), as its preset trains it (vgg x0.5 as
       best-ensemble's vgg-matuzas), and the wide residual design's preset (wresnet-wide);
     each with its training GFLOP/s (competition/training/speed.py counts the FLOPs) and the share of the
     matmul limit of the precision it trains in (bfloat16's for mixed_bfloat16); the fast recipe's
     model also at batch 32-256 and in float32;
  4. each recipe's training FLOPs and its minutes at those rates on the competition's 42,000 rows.
Each model trains warm-up epochs (tracing, and the batches prepared meanwhile), then --epochs timed
epochs of --images images, in --repeats rounds that alternate the models; the median counts, and
the limit is the best matmul measured between rounds. Images come from --data_dir (train.csv),
else the offline demo set. Run it on an otherwise idle machine; the last line is the summary, the
JSON (--out) has everything.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
from pathlib import Path

from competition import startup  # noqa: E402

startup.begin()  # before TensorFlow loads: Keras' backend, its start-up lines quieted

import keras  # noqa: E402

from competition.cli import add_data_dir  # noqa: E402
from competition.config import COMPETITION_TRAIN_ROWS, PRESETS, RECIPES, TrainConfig  # noqa: E402
from competition.data.demo import write_demo_data  # noqa: E402
from competition.data.digits import DataError, load_train  # noqa: E402
from competition.model import designs  # noqa: E402
from competition.training import hardware, planning, speed
from competition.training.trainer import onehot  # noqa: E402


BATCH_SIZES = (32, 64, 128, 256)  # the fast recipe's model is also timed at each
WIDE_PRESETS = ("wresnet-wide",)  # the design built for accuracy not yet in a recipe (vgg is, in best-ensemble)
# The matmul a precision's convolutions run in: its training is a share of that limit, not float32's.
LIMIT_DTYPE = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}


def notebook_rate(x, y, images: int, epochs: int) -> tuple[float, keras.Model]:
    keras.utils.set_random_seed(0)
    model = designs.compile_model(speed.notebook_model(), 1e-4)
    x, y = x[:images].astype("float32"), y[:images]
    seconds = speed.median_epoch_seconds(
        lambda n, timer: model.fit(x, y, batch_size=32, epochs=n, callbacks=[timer], verbose=0), epochs)
    return images / seconds, model


def project_rate(x, y, cfg: TrainConfig, images: int, epochs: int) -> tuple[float, keras.Model]:
    keras.utils.set_random_seed(0)
    rate = speed.training_rate(cfg, x, y, steps=max(images // cfg.batch_size, 10), epochs=epochs)
    return rate, designs.for_config(cfg)  # the design, for its FLOPs


def describe(cfg: TrainConfig) -> str:
    width = f" x{cfg.width:g} wide" if cfg.width != 1 else ""
    return f"{cfg.arch} model{width}, batch {cfg.batch_size}, {cfg.precision}"


def recipe_presets() -> list[str]:
    """The presets the recipes train, in the recipes' order, then the wide designs'; the report's
    model is the project rows."""
    found = [preset for recipe in RECIPES.values() for preset, _ in recipe.members if preset != "report-aug"]
    return list(dict.fromkeys([*found, *WIDE_PRESETS]))


def recipe_minutes(rates: dict[str, float]) -> list[dict]:
    """Each recipe's training FLOPs on the competition's rows and its minutes at the rates measured here."""
    lines = []
    for recipe in RECIPES.values():
        if recipe.members[0][0] == "report-aug":  # early stopping: its epochs are not known ahead
            continue
        chosen = planning.members(recipe, "", "")
        rows = COMPETITION_TRAIN_ROWS * (1 - recipe.val_size)
        seconds = sum(member.cfg.epochs * rows / rates[member.preset] for member in chosen)
        models_ = " + ".join(f"{seeds} x {preset}" if seeds > 1 else preset for preset, seeds in recipe.members)
        lines.append({"recipe": recipe.name, "tflop": round(planning.training_flops([m.cfg for m in chosen]) / 1e12, 1),
                      "minutes": round(seconds / 60, 1), "models": models_})
    return lines


def training_images(data_dir: str) -> tuple[object, str]:
    try:
        return load_train(data_dir), ""
    except DataError:
        demo = Path(tempfile.mkdtemp(prefix="bench-demo-"))
        write_demo_data(demo)
        return load_train(demo), f" (no train.csv in {data_dir}: the offline demo set)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_dir(parser)
    parser.add_argument("--images", type=int, default=6400, help="images per timed epoch (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per model (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds over the models, the median counts (default: %(default)s)")
    parser.add_argument("--out", default=None, help="also write every figure as JSON here")
    args = parser.parse_args(argv)
    if args.images < 320 or args.epochs < 1 or args.repeats < 1:
        parser.error("--images must be at least 320, --epochs and --repeats at least 1")

    machine = hardware.detect()
    threads = hardware.apply_threads(machine.cores)  # before any op: TensorFlow fixes its pools then
    precision, why = hardware.choose_precision("auto", machine)
    print(f"machine: {hardware.describe_machine(machine)}; {threads} threads", flush=True)
    digits, note = training_images(args.data_dir)
    x, y = digits.images, onehot(digits.labels)
    print(f"data: {len(x):,} images from {digits.source}{note}; {args.epochs} timed epochs of {args.images:,} a model, "
          f"{args.repeats} rounds")

    report = TrainConfig(augment=True, precision=precision)
    runs = [  # name, what, the precision it trains in, how to measure it
        ("notebook", "report model, numpy arrays, Keras augmentation layers, batch 32, float32", "float32",
         lambda: notebook_rate(x, y, args.images, args.epochs)),
        ("project", f"report model, tf.data + fused affine warp, batch 32, {precision}", precision,
         lambda: project_rate(x, y, report, args.images, args.epochs)),
        ("project, no augmentation", f"report model, tf.data, batch 32, {precision}", precision,
         lambda: project_rate(x, y, TrainConfig(precision=precision), args.images, args.epochs)),
    ]
    fast = RECIPES["fast"].members[0][0]
    for preset in recipe_presets():  # each model the recipes train, as they train it
        cfg = TrainConfig(**{**PRESETS[preset], "precision": precision})
        runs.append((preset, describe(cfg), precision,
                     lambda cfg=cfg: project_rate(x, y, cfg, args.images, args.epochs)))
    # The fast recipe's model at other batch sizes and, where training uses bfloat16, in float32: what
    # a step's size and precision buy on this machine.
    fast_cfg = TrainConfig(**{**PRESETS[fast], "precision": precision})
    variants = [dataclasses.replace(fast_cfg, batch_size=b) for b in BATCH_SIZES if b != fast_cfg.batch_size]
    variants += [dataclasses.replace(fast_cfg, precision="float32")] if precision != "float32" else []
    for cfg in variants:
        name = f"{fast}, batch {cfg.batch_size}" if cfg.batch_size != fast_cfg.batch_size else f"{fast}, float32"
        runs.append((name, describe(cfg), cfg.precision,
                     lambda cfg=cfg: project_rate(x, y, cfg, args.images, args.epochs)))
    # Rounds alternate the models, so that drift in a shared machine's speed hits all alike; the
    # limit is the best matmul measured between them.
    dtypes = list(dict.fromkeys(["float32", *(LIMIT_DTYPE[run[2]] for run in runs)]))
    limits = {dtype: [speed.gemm_gflops(dtype=dtype)] for dtype in dtypes}
    rates: dict[str, list[float]] = {name: [] for name, *_ in runs}
    flops = {}
    for round_ in range(args.repeats):
        for name, _, _, measure in runs:
            rate, model = measure()
            rates[name].append(rate)
            flops[name] = speed.training_flops(model)
        for dtype in dtypes:
            limits[dtype].append(speed.gemm_gflops(dtype=dtype))
        measured = ", ".join(f"{name} {rates[name][-1]:,.0f}" for name, *_ in runs)
        print(f"round {round_ + 1} of {args.repeats}: {measured} img/s", flush=True)
    limit = {dtype: max(values) for dtype, values in limits.items()}
    print("limit: 2048x2048 matmul " + ", ".join(f"{gflops:,.1f} GFLOP/s in {dtype}" for dtype, gflops in limit.items())
          + f" (the best of {args.repeats + 1})", flush=True)
    rows = []
    for name, what, trained_in, _ in runs:
        rate = statistics.median(rates[name])
        gflops = rate * flops[name] / 1e9
        dtype = LIMIT_DTYPE[trained_in]
        rows.append({"name": name, "what": what, "images_per_second": round(rate, 1),
                     "rounds": [round(r, 1) for r in rates[name]],
                     "training_mflop_per_image": round(flops[name] / 1e6, 2), "gflops": round(gflops, 2),
                     "limit_dtype": dtype, "fraction_of_limit": round(gflops / limit[dtype], 4),
                     "fraction_of_float32_limit": round(gflops / limit["float32"], 4)})
        print(f"{name:<26} {rate:7,.0f} img/s x {flops[name] / 1e6:6.1f} MFLOP = {gflops:6.1f} GFLOP/s, "
              f"{gflops / limit[dtype]:6.1%} of the {dtype} limit  ({what})", flush=True)

    by_name = {row["name"]: row for row in rows}
    recipes_here = recipe_minutes({name: row["images_per_second"] for name, row in by_name.items()})
    width = max(len(line["recipe"]) for line in recipes_here)
    for line in recipes_here:
        print(f"recipe {line['recipe']:<{width}} {line['tflop']:5.0f} TFLOP of training, about {line['minutes']:5.1f} min "
              f"here ({line['models']})", flush=True)
    ratio = by_name["project"]["images_per_second"] / by_name["notebook"]["images_per_second"]
    fast = by_name[fast]
    summary = (f"bench: the project trains the report's model at {ratio:.1f}x the notebook's speed; the fast recipe's "
               f"model reaches {fast['fraction_of_limit']:.0%} of this machine's {fast['limit_dtype']} matmul "
               f"limit ({precision}: {why})")
    print(summary)
    if args.out:
        Path(args.out).write_text(json.dumps({"hardware": hardware.record(machine, threads), "precision": precision,
                                              "precision_reason": why, "limit_gflops": limit, "rows": rows,
                                              "notebook_ratio": round(ratio, 2), "recipes": recipes_here,
                                              "summary": summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
