"""Screen training recipes on a GPU: a k-fold CV of each of several configurations in minutes.

On this project's 2-core CPU one 5-fold CV of the strong preset takes 40-60 minutes, so only a few
ideas can be tried in a session. This script answers "which change moves the CV accuracy?" on a lent
GPU, then `make cv` confirms the winner on the CPU with the real pipeline. It trains every fold and
seed of a configuration at once (the models are vmapped over one jitted epoch), with the project's one
model definition (competition.model.designs) under Keras's JAX backend. The training pipeline's affine
augmentation (competition/model/augment.py, tf.data) is ported to keras.ops here, same parameters and
transform; there is no TensorFlow on the GPU machine.

    python -m research.gpu_screen prepare            # here, once: .screen/train.npz with cv.py's folds
    python -m research.gpu_screen run --out DIR      # on the GPU: DIR/screen.json, probs.npz, screen.log
    python -m research.gpu_screen run --out DIR --only base,smooth --epochs_scale 0.2 --rows 2500 --group 1

The GPU machine needs keras (3.15), jax and numpy; the last line is a quick check on a CPU with jax.

Each configuration is a few TrainConfig keys over a preset (VARIANTS: the strong preset unless it
names another; the wide designs of issue 45 over theirs, at the anchors' widths); a configuration
is skipped when, at the last one's speed, it would end after --minutes. screen.json holds, per configuration, each
fold's accuracy for every model, the mean and spread of single models and of each fold's seed
ensemble, and images/s; its "all" entry is each fold's ensemble of every 5-fold model trained.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SCREEN_DATA = ROOT / ".screen" / "train.npz"

from competition.config import IMAGE_SIZE, PRESETS  # noqa: E402  (keras is imported later, once run picks its backend)

LONG = {key: PRESETS["strong-long"][key] for key in ("epochs", "lr_decay")}  # twice the epochs, same final rate

# Overrides of the strong preset; k and seeds say how many models (k x seeds, trained together).
VARIANTS = {
    "base": dict(seeds=2),  # the strong preset, as `make cv K=5 ARGS="--preset strong"`
    "long50": dict(seeds=2, **LONG),  # --preset strong-long
    # --ema 0.999: scored on both the average and the last step's weights of the same models
    "long50_ema": dict(seeds=2, **LONG, ema=0.999),
    "k10": dict(k=10),  # 37,800 training rows a fold: how much the row count moves the estimate
    "smooth": dict(label_smoothing=0.1),
    "long100": dict(seeds=2, epochs=100, lr_decay=0.9 ** 0.25),
    "long200": dict(epochs=200, lr_decay=0.9 ** 0.125),
    "resnet": dict(arch="resnet"),
    "aug15": dict(rotation_deg=15.0, shift_frac=0.15, zoom_frac=0.15),
    # The designs built for accuracy (issue 45), one-cycle to zero and the weights' average: the quarter
    # width the CPU screened (folds 1-2: 0.99613, its last step 0.99631), then toward the anchors' widths.
    "vgg_quarter": dict(preset="vgg-wide", width=0.25),
    "vgg_half": dict(preset="vgg-wide"),
    "vgg_full": dict(preset="vgg-wide", width=1.0),  # Matuzas77's 128 filters: 22.5x strong's FLOPs
    "wresnet_half": dict(preset="wresnet-wide"),
    "wresnet_full": dict(preset="wresnet-wide", width=1.0),  # ttdoucet's: 53.7x
}


def prepare(data_dir: str, out: Path = SCREEN_DATA) -> None:
    from common.writing import atomic_path
    from competition.data.digits import load_train
    from competition.scoring.folds import fold_indices

    digits = load_train(data_dir)
    folds = {}
    for k in (5, 10):
        fold_of = np.empty(len(digits.labels), np.int8)
        for fold, (_, held_out) in enumerate(fold_indices(digits.labels, k, seed=0)):
            fold_of[held_out] = fold
        folds[f"fold{k}"] = fold_of
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, images=digits.images[..., 0], labels=digits.labels, **folds)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {len(digits.labels)} rows)")


def affine_transforms(u, s: dict):
    """competition/model/augment.py's affine_params + transforms_from in keras.ops, from uniform draws u (B, 4).

    One random rotation, zoom and shift per image, as (B, 8) transforms for keras.ops.image.affine_transform
    (the same convention as TensorFlow's projective transform op that augment.py calls).
    """
    import keras

    ops, size = keras.ops, IMAGE_SIZE
    turn, scale, shift = math.radians(s["rotation_deg"]), s["zoom_frac"], s["shift_frac"] * size
    lo = np.array([-turn, 1 - scale, -shift, -shift])
    hi = np.array([turn, 1 + scale, shift, shift])
    angle, zoom, dx, dy = ops.unstack(lo.astype("float32") + u * (hi - lo).astype("float32"), axis=1)
    centre = (size - 1) / 2
    a0, a1 = ops.cos(angle) / zoom, ops.sin(angle) / zoom
    b0, b1 = -a1, a0
    ox, oy = centre + dx, centre + dy
    zeros = ops.zeros_like(angle)
    return ops.stack([a0, a1, centre - a0 * ox - a1 * oy, b0, b1, centre - b0 * ox - b1 * oy, zeros, zeros], axis=1)


def settings(name: str, epochs_scale: float, override: dict) -> dict:
    from competition.config import PRESETS, TrainConfig

    variant = dict(VARIANTS[name])
    s = dict(TrainConfig(**PRESETS[variant.pop("preset", "strong")]).to_dict(), k=5, seeds=1, label_smoothing=0.0)
    s.update(variant)
    s.update(override)
    s["epochs"] = max(1, round(s["epochs"] * epochs_scale))
    return s


def rate_schedule(s: dict, steps: int):
    """The learning rate of each step, as the trainer sets it: its one-cycle (designs.one_cycle) or
    a decay an epoch of `steps` steps."""
    import keras

    from competition.model import designs

    if s["schedule"] == "onecycle":
        return designs.one_cycle(s["learning_rate"], s["epochs"] * steps, s["warmup"])
    return keras.optimizers.schedules.ExponentialDecay(s["learning_rate"], steps, s["lr_decay"], staircase=True)


def screen(args) -> int:
    os.environ["KERAS_BACKEND"] = "jax"
    import jax
    import jax.numpy as jnp
    import keras

    from competition.config import NUM_CLASSES
    from competition.model import designs

    if keras.backend.backend() != "jax":
        raise SystemExit("gpu_screen run needs KERAS_BACKEND=jax (keras was imported with another backend)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log_file = open(out / "screen.log", "a")

    def log(line: str) -> None:
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    data = np.load(args.data)
    rows = args.rows or len(data["labels"])
    images = jnp.asarray(data["images"][:rows, :, :, None], jnp.float32)
    labels = np.asarray(data["labels"][:rows])
    onehot = jnp.asarray(np.eye(NUM_CLASSES, dtype=np.float32)[labels])
    log(f"devices {jax.devices()}; {rows} rows; budget {args.minutes} min")
    def augment(key, x, s):
        transforms = affine_transforms(jax.random.uniform(key, (x.shape[0], 4)), s)
        return keras.ops.image.affine_transform(x, transforms, interpolation="bilinear", fill_mode="constant")

    results = json.loads((out / "screen.json").read_text()) if (out / "screen.json").exists() else {}
    saved = dict(np.load(out / "probs.npz")) if (out / "probs.npz").exists() else {}
    started = time.perf_counter()
    rate, compile_s = 0.0, 0.0  # images/s and compile seconds of the last configuration, to plan the next
    names = args.only.split(",") if args.only else list(VARIANTS)
    for name in names:
        if name in results:
            log(f"{name}: done before, kept")
            continue
        s = settings(name, args.epochs_scale, json.loads(args.override))
        fold_of = np.asarray(data[f"fold{s['k']}"][:rows])
        members = [(fold, seed) for fold in range(args.folds or s["k"]) for seed in range(s["seeds"])]
        n_train = min(int((fold_of != f).sum()) for f, _ in members)
        n_val = min(int((fold_of == f).sum()) for f, _ in members)
        steps = n_train // s["batch_size"]
        # Every model takes the same number of rows, so the stacked index arrays line up.
        train_idx = jnp.asarray(np.stack([np.flatnonzero(fold_of != f)[:n_train] for f, _ in members]))
        val_idx = np.stack([np.flatnonzero(fold_of == f)[:n_val] for f, _ in members])

        work = len(members) * s["epochs"] * steps * s["batch_size"]
        spent = time.perf_counter() - started
        if rate and spent + compile_s + work / rate > args.minutes * 60:
            log(f"{name}: skipped, about {(compile_s + work / rate) / 60:.1f} min would pass the budget "
                f"({spent / 60:.1f} of {args.minutes} min spent)")
            continue

        # "auto" as the trainer resolves it where bfloat16 is native (a GPU); float32 on a CPU check.
        precision = s["precision"] if s["precision"] != "auto" else (
            "float32" if jax.default_backend() == "cpu" else "mixed_bfloat16")

        def fresh(seed: int):
            keras.utils.set_random_seed(seed)
            with designs.precision(precision):
                return designs.build(s["arch"], s["width"], s["dropout"])

        template = fresh(0)
        schedule = rate_schedule(s, steps)
        optimizer = keras.optimizers.Adam(schedule, use_ema=s["ema"] > 0, ema_momentum=s["ema"] or 0.99)
        optimizer.build(template.trainable_variables)
        # where the optimizer's state keeps the weights' moving average (--ema), in trainable order
        average_at = [next(i for i, v in enumerate(optimizer.variables) if v is a)
                      for a in getattr(optimizer, "_model_variables_moving_average", [])]
        stack = lambda values: [jnp.stack(v) for v in zip(*values)]  # noqa: E731

        def initial(group: list[tuple[int, int]]):
            built = [fresh(1000 * seed + fold) for fold, seed in group]
            return (stack([[v.value for v in m.trainable_variables] for m in built]),
                    stack([[v.value for v in m.non_trainable_variables] for m in built]),
                    stack([[v.value for v in optimizer.variables] for _ in built]))

        def loss_fn(tv, ntv, x, y):
            probs, ntv = template.stateless_call(tv, ntv, x, training=True)
            loss = keras.losses.categorical_crossentropy(y, probs, label_smoothing=s["label_smoothing"])
            return loss.mean(), ntv

        def plan(idx, key):
            """One epoch's shuffled batches of row indices and a key for each step's augmentation."""
            perm_key, step_key = jax.random.split(key)
            batches = jax.random.permutation(perm_key, idx)[: steps * s["batch_size"]].reshape(steps, -1)
            return batches, jax.random.split(step_key, steps)

        def step(state, inputs):
            tv, ntv, ov = state
            batch, key = inputs
            x = augment(key, images[batch], s)
            (loss, ntv), grads = jax.value_and_grad(loss_fn, has_aux=True)(tv, ntv, x, onehot[batch])
            tv, ov = optimizer.stateless_apply(ov, grads, tv)
            return (tv, ntv, ov), loss

        def scanned_epoch(state, idx, key):
            state, losses = jax.lax.scan(step, state, plan(idx, key))
            return state, losses.mean()

        def predict(state, x, averaged: bool):
            tv, ntv, ov = state
            if averaged:
                tv = [ov[i] for i in average_at]
            return template.stateless_call(tv, ntv, x, training=False)[0]

        weights = [True, False] if average_at else [False]  # the average first, scored as the model

        group_size = args.group or len(members)
        if group_size > 1 or jax.default_backend() != "cpu":
            # All models of a group in one program: one jitted, vmapped scan over the epoch's steps.
            train_epoch = jax.jit(jax.vmap(scanned_epoch))
            predict_all = {a: jax.jit(jax.vmap(functools.partial(predict, averaged=a))) for a in weights}
        else:
            # A quick check on a CPU (--group 1): XLA runs a scan's convolutions about 12x slower than
            # the same step jitted alone, so step one model at a time from Python.
            step_1, plan_1 = jax.jit(step), jax.jit(plan)
            def one(tree):
                return jax.tree.map(lambda v: v[0], tree)

            def add(tree):
                return jax.tree.map(lambda v: v[None], tree)

            def train_epoch(state, idx, key):
                state, losses = one(state), []
                for inputs in zip(*plan_1(idx[0], key[0])):
                    state, loss = step_1(state, inputs)
                    losses.append(loss)
                return add(state), jnp.mean(jnp.stack(losses))[None]

            def alone(averaged):
                predict_1 = jax.jit(functools.partial(predict, averaged=averaged))
                return lambda state, x: add(predict_1(one(state), x[0]))

            predict_all = {a: alone(a) for a in weights}
        keys = jax.random.split(jax.random.PRNGKey(len(results)), (s["epochs"], len(members)))
        log(f"{name}: {len(members)} models ({s['k']} folds x {s['seeds']} seeds) of {n_train} rows, "
            f"{s['epochs']} epochs of {steps} steps; {json.dumps(VARIANTS[name])}")
        t0 = time.perf_counter()
        probs, last_step = [], []
        for g in range(0, len(members), group_size):
            at = slice(g, g + group_size)
            state = initial(members[at])
            for e in range(s["epochs"]):
                state, loss = train_epoch(state, train_idx[at], keys[e, at])
                loss = np.asarray(loss)
                if g == 0 and e == 0:
                    first = time.perf_counter() - t0
                if e == 0 or (e + 1) % max(1, s["epochs"] // 5) == 0:
                    log(f"  models {g + 1}-{g + len(loss)} epoch {e + 1}/{s['epochs']}: loss {loss.mean():.4f}, "
                        f"{time.perf_counter() - t0:.0f} s")
            for averaged, kept in zip(weights, (probs, last_step)):
                kept.append(np.concatenate([np.asarray(predict_all[averaged](state, images[jnp.asarray(val_idx[at, i:i + 1050])]))
                                            for i in range(0, n_val, 1050)], axis=1))
        seconds = time.perf_counter() - t0
        probs = np.concatenate(probs)

        correct = probs.argmax(-1) == labels[val_idx]
        single = correct.mean(1)
        per_fold = {}
        for m, (fold, _) in enumerate(members):
            per_fold.setdefault(fold, []).append(m)
        ensembles = [float((probs[ms].mean(0).argmax(-1) == labels[val_idx[ms[0]]]).mean()) for ms in per_fold.values()]
        images_per_s = len(members) * steps * s["batch_size"] * (s["epochs"] - 1) / max(seconds - first, 1e-9)
        results[name] = dict(
            settings=s, members=[list(m) for m in members], single=single.round(5).tolist(),
            single_mean=float(single.mean()), single_std=float(single.std(ddof=1)) if len(single) > 1 else 0.0,
            fold_ensemble=[round(a, 5) for a in ensembles], fold_ensemble_mean=float(np.mean(ensembles)),
            fold_ensemble_std=float(np.std(ensembles, ddof=1)) if len(ensembles) > 1 else 0.0,
            seconds=round(seconds, 1), compile_and_first_epoch_s=round(first, 1), images_per_s=round(images_per_s))
        if last_step:  # the same models' last-step weights: what the average gained, model by model
            last = (np.concatenate(last_step).argmax(-1) == labels[val_idx]).mean(1)
            results[name].update(last_step_single=last.round(5).tolist(), last_step_single_mean=float(last.mean()))
        rate, compile_s = images_per_s, first
        for m, (fold, seed) in enumerate(members):
            saved[f"{name}/{fold}/{seed}"] = probs[m].astype(np.float16)
            saved[f"idx{s['k']}/{fold}"] = val_idx[m]
        summarise_all(results, saved, labels)
        write(out, results, saved)
        r = results[name]
        last = f" (last-step weights {r['last_step_single_mean']:.5f})" if last_step else ""
        log(f"{name}: single {r['single_mean']:.5f} ± {r['single_std']:.5f}{last}, fold ensemble "
            f"{r['fold_ensemble_mean']:.5f} ± {r['fold_ensemble_std']:.5f}; {seconds:.0f} s "
            f"({first:.0f} s compile + first epoch), {images_per_s:.0f} img/s")
    if "all" in results:
        everything = results["all"]
        log(f"all 5-fold models per fold: {everything['fold_ensemble_mean']:.5f} "
            f"± {everything['fold_ensemble_std']:.5f}")
    return 0


def summarise_all(results: dict, saved: dict, labels: np.ndarray) -> None:
    """Each fold's ensemble of every 5-fold model trained so far (the ceiling of all of them together)."""
    accs = []
    for fold in range(5):
        probs = [v for key, v in saved.items() if key.count("/") == 2 and key.split("/")[1] == str(fold)
                 and results.get(key.split("/")[0], {}).get("settings", {}).get("k") == 5]
        if probs:
            mean = np.mean(np.stack(probs).astype(np.float32), axis=0)
            accs.append(float((mean.argmax(-1) == labels[saved[f"idx5/{fold}"]]).mean()))
    if accs:
        results["all"] = dict(fold_ensemble=[round(a, 5) for a in accs], fold_ensemble_mean=float(np.mean(accs)),
                              fold_ensemble_std=float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0)


def write(out: Path, results: dict, saved: dict) -> None:
    from common.writing import atomic_path

    with atomic_path(out / "probs.npz") as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **saved)
    with atomic_path(out / "screen.json") as tmp:
        tmp.write_text(json.dumps(results, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="pack train.csv and cv.py's 5- and 10-fold split into .screen/train.npz")
    p.add_argument("--data_dir", default=None)
    p.add_argument("--out", default=str(SCREEN_DATA))
    r = sub.add_parser("run", help="train and score the configurations (KERAS_BACKEND=jax)")
    r.add_argument("--out", required=True)
    r.add_argument("--data", default=str(SCREEN_DATA))
    r.add_argument("--only", default="", help=f"comma-separated, in order; default all: {','.join(VARIANTS)}")
    r.add_argument("--minutes", type=float, default=8.0, help="start no configuration after this long")
    r.add_argument("--epochs_scale", type=float, default=1.0, help="epochs x this (a quick check)")
    r.add_argument("--group", type=int, default=0, help="models trained at once (vmapped); 0: all of a configuration")
    r.add_argument("--folds", type=int, default=0, help="the first N folds only (a quick check)")
    r.add_argument("--rows", type=int, default=0, help="first N rows only (a quick check)")
    r.add_argument("--override", default="{}",
                   help='settings over every configuration, e.g. \'{"precision": "float32"}\'')
    args = parser.parse_args(argv)
    if args.command == "prepare":
        from competition.config import SHARED_DATA_DIR

        prepare(args.data_dir or str(SHARED_DATA_DIR), Path(args.out))
        return 0
    return screen(args)


if __name__ == "__main__":
    sys.exit(main())
