"""The reader's pair models as ordinary runs: the library behind `make pair-models`
(competition/train_pairs.py) and the pair models make tflite places beside an export.

`train_pair_run(cfg)` makes pieces of a data set's training digits with the reader's own generator
(edge/forms/written.py: one digit, or two pushed together until their strokes touch, as written,
turned, out of focus or chalky; cfg.shapes of them wider or slanted, cfg.strokes bolder or grainy),
trains cfg.design on them and writes a run folder MODELS_DIR/pair-models/<time>-<design>/ as
trainer.py writes a digit run's: model.keras (raw 0..255 pixels in; the reader's two outputs as
one tensor, left then right), config.json, data_fingerprint.json, history.csv, train.log,
metrics.json (its figures on pieces made of the validation digits, which no training piece is made
of) and calibration.npy (training pieces that calibrate its int8 export). `find_pair_run` finds a
finished one by data and, to reuse it, settings: a finished run is reused, never retrained. A run
killed mid-training goes on from its last finished epoch when the same command runs again
(training/checkpoints.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import keras
import numpy as np

from common.errors import ConfigError, ProjectError
from common.writing import write_json
from competition.config import PAIR_DESIGNS, PAIR_FINDERS, PAIR_PRESETS, PAIR_RUNS_DIR, PairConfig
from competition.data import splits
from competition.data.digits import Digits, load_train
from competition.data.reading import read_json
from competition.model import designs
from competition.runs.building import check_room, run_bytes, run_folder
from competition.runs.console import setup_console_logging
from competition.runs.layout import CONFIG_FILE, FINGERPRINT_FILE, HISTORY_FILE, METRICS_FILE, MODEL_FILE, new_run_id
from competition.training import checkpoints, hardware
from edge.pi.image import PAIR_FIELD
from edge.forms.written import pair_examples, pair_readings

CALIBRATION_FILE = "calibration.npy"  # uint8 training pieces, (N, H, W, 1): what its int8 export is calibrated on
CHUNKS = 10  # pieces are made in tenths, each reported, so that a long making shows its pace
SHARED_FROM = 10_000  # pieces: fewer are made in this process (starting a worker takes seconds)
# What a finished pair run is reused under: every setting that changes what it learns (the data is
# its sha256, compared apart).
IDENTITY = tuple(f.name for f in dataclasses.fields(PairConfig) if f.name not in ("data_dir", "models_dir", "threads"))
# Settings added after runs were made: what a run whose config.json lacks one made its pieces with.
ADDED_LATER = {"shapes": 0.0, "strokes": 0.0}

log = logging.getLogger("competition")


def resolved(cfg: PairConfig) -> PairConfig:
    """cfg with its design's preset examples and epochs where it leaves them 0, shapes, strokes and
    seed where -1."""
    if cfg.design not in PAIR_DESIGNS:
        raise ConfigError(f"unknown pair design {cfg.design!r}; choose from {', '.join(PAIR_DESIGNS)}")
    preset = PAIR_PRESETS[cfg.design]
    return dataclasses.replace(cfg, examples=cfg.examples or preset["examples"], epochs=cfg.epochs or preset["epochs"],
                               **{key: preset[key] if getattr(cfg, key) < 0 else getattr(cfg, key)
                                  for key in ("shapes", "strokes", "seed")})


def finds(design: str) -> bool:
    """Whether `design` is a finder (one digit or two?), not the reader (which two?)."""
    return design in PAIR_FINDERS


def pair_runs_dir(models_dir: str | Path) -> Path:
    return Path(models_dir) / PAIR_RUNS_DIR


def find_pair_run(models_dir: str | Path, design: str, sha256: str, settings: dict | None = None) -> Path | None:
    """The newest finished pair run of `design` trained on the data whose fingerprint is `sha256`
    (and, given `settings`, with the same IDENTITY settings); None if there is none."""
    folder = pair_runs_dir(models_dir)
    runs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and (p / MODEL_FILE).is_file()) if folder.is_dir() else []
    for run in reversed(runs):  # ids start with a timestamp: newest first
        try:
            config, fingerprint = read_json(run / CONFIG_FILE), read_json(run / FINGERPRINT_FILE)
        except (ProjectError, FileNotFoundError):
            continue  # not a finished pair run of this project
        if config.get("design") != design or fingerprint.get("sha256") != sha256:
            continue
        if settings is None or all(config.get(key, ADDED_LATER.get(key)) == settings[key] for key in IDENTITY):
            return run
    return None


def made(design: str, digits: np.ndarray, labels: np.ndarray, count: int, seed: tuple[int, ...], what: str,
         workers: int = 1, shapes: float = 0.0, strokes: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """`count` pieces of `design` made of `digits` (uint8 (count, H, W, 1), `shapes` of their digits
    wider and of them slanted, `strokes` bolder and grainy: edge/forms/written.py's made_piece) and
    their labels, in CHUNKS parts, each from its own seed (`seed` + its index: the same pieces
    however many `workers` make them), each a progress line with the time left. Making is Python and
    Pillow per piece, one core each: workers > 1 make parts in processes of their own."""
    step = -(-count // CHUNKS)
    step += step % 2  # even parts: the finder's pieces alternate one digit, two digits
    sizes = [min(step, count - begin) for begin in range(0, count, step)]
    jobs = [(digits, size, np.random.default_rng([*seed, k]), shapes, strokes) if finds(design)
            else (digits, labels, size, np.random.default_rng([*seed, k]), shapes, strokes)
            for k, size in enumerate(sizes)]
    make = pair_examples if finds(design) else pair_readings
    start, parts, done = time.perf_counter(), [], 0
    with contextlib.ExitStack() as stack:
        if workers > 1 and count >= SHARED_FROM:  # spawned: forking a process that runs TensorFlow is unsafe
            pool = stack.enter_context(ProcessPoolExecutor(min(workers, len(jobs)), get_context("spawn")))
            results = pool.map(make, *zip(*jobs))
        else:
            results = (make(*job) for job in jobs)
        for size, part in zip(sizes, results):
            parts.append(part)
            done += size
            seconds = time.perf_counter() - start
            if done < count and count >= SHARED_FROM:
                log.info(f"{what}: {done:,}/{count:,} made, {seconds:.0f}s, about {seconds * (count - done) / done:.0f}s left")
    pieces = np.concatenate([p[0] for p in parts])[..., None]
    truth = np.concatenate([p[1] for p in parts])
    seconds = time.perf_counter() - start
    log.info(f"{what}: {count:,} made, {seconds:.1f}s ({count / seconds:,.0f}/s)")
    return pieces, truth


class EpochLog(keras.callbacks.Callback):
    """One line per epoch with units and the time left, for the console and the run's train.log."""

    def __init__(self, epochs: int, n_train: int):
        super().__init__()
        self.epochs, self.n_train, self.times = epochs, n_train, []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.times.append(time.perf_counter() - self.start)
        left = (self.epochs - epoch - 1) * float(np.mean(self.times))
        figures = " ".join(f"{key} {value:.4f}" for key, value in logs.items()
                           if key in ("loss", "val_loss") or key.endswith("accuracy"))  # not each side's loss
        log.info(f"epoch {epoch + 1}/{self.epochs}: {figures}, {self.times[-1]:.1f}s, "
                 f"{self.n_train / self.times[-1]:,.0f} pieces/s, about {left / 60:.1f} min left")


def build(cfg: PairConfig) -> keras.Model:
    """cfg's design, compiled, float32 (the same model on every machine: it trains in minutes)."""
    with designs.precision("float32"):
        if finds(cfg.design):
            model = designs.pair_finder_model()
            metrics = ["accuracy"]
        else:
            model = designs.pair_reader_model(PAIR_FIELD)  # as edge/pi/image.py's pair_field lays a pair out
            metrics = {"left": ["accuracy"], "right": ["accuracy"]}
    loss = "sparse_categorical_crossentropy"
    model.compile(keras.optimizers.Adam(cfg.learning_rate), loss if finds(cfg.design) else [loss] * 2,
                  metrics=metrics)
    return model


def targets(cfg: PairConfig, truth: np.ndarray):
    """What fit takes for `truth`: the finder's labels, or the reader's left and right digits."""
    return truth if finds(cfg.design) else (truth[:, 0], truth[:, 1])


def held_out_figures(design: str, model: keras.Model, pieces: np.ndarray, truth: np.ndarray) -> dict:
    """The saved model's figures on the held-out pieces (made of validation digits)."""
    probabilities = model.predict(pieces, verbose=0, batch_size=1024)
    if finds(design):
        called = probabilities.argmax(axis=1)
        return {"pieces": len(truth), "accuracy": float(np.mean(called == truth)),
                "pairs_missed": int(np.sum((called == 0) & (truth == 1))),
                "singles_called_pairs": int(np.sum((called == 1) & (truth == 0)))}
    right = np.stack([probabilities[:, :10].argmax(axis=1), probabilities[:, 10:].argmax(axis=1)], axis=1) == truth
    return {"pieces": len(truth), "digits_right": float(right.mean()), "pairs_right": float(right.all(axis=1).mean())}


def summary_line(design: str, figures: dict) -> str:
    """A pair model's held-out figures in words."""
    if finds(design):
        return (f"held out {figures['pieces']:,} pieces of validation digits: accuracy {figures['accuracy']:.4f}, "
                f"{figures['pairs_missed']} pairs missed, {figures['singles_called_pairs']} single digits called pairs")
    return (f"held out {figures['pieces']:,} pairs of validation digits: digits {figures['digits_right']:.4f}, "
            f"both digits of a pair {figures['pairs_right']:.4f}")


def train_pair_run(cfg: PairConfig, digits: Digits | None = None, setup: hardware.Setup | None = None) -> Path:
    """Train cfg.design as cfg says (its preset where cfg leaves examples or epochs 0); return the
    finished run folder under models_dir/pair-models/."""
    setup_console_logging()
    cfg = resolved(cfg)
    if not 0 < cfg.val_size < 1 or not 0 < cfg.held_out < 1:
        raise ProjectError("a pair run holds out validation digits and pieces: val_size and held_out in (0, 1)")
    setup = setup or hardware.resolve("float32", cfg.threads)
    threads = hardware.apply_threads(setup.threads)
    digits = load_train(cfg.data_dir) if digits is None else digits
    x_train, x_val, y_train, y_val = splits.split(digits, cfg)
    keras.utils.set_random_seed(cfg.seed)
    models_dir = pair_runs_dir(cfg.models_dir)
    model = build(cfg)
    check_room(models_dir, run_bytes(model.count_params()), "this pair run")
    run_id = new_run_id(cfg.design)
    # A killed run's finished epochs, kept under its settings and data (checkpoints.py), as a digit run's are.
    fingerprint = digits.fingerprint()  # a hash of every pixel: once
    backup = checkpoints.folder_for(models_dir, cfg.design, {**{key: getattr(cfg, key) for key in IDENTITY},
                                                            "data": fingerprint["sha256"]})
    with checkpoints.held(backup), run_folder(models_dir, run_id) as folder:
        log.info(f"machine: {hardware.describe_machine(setup.machine)}; float32, {threads} thread{'s' * (threads != 1)}")
        kind = "DEMO data" if digits.demo else "competition data"
        log.info(f"run: {run_id}, {cfg.design}: {cfg.examples:,} pieces made of {len(x_train):,} training digits "
                 f"of {digits.source} [{kind}], {cfg.epochs} epochs of batch {cfg.batch_size}")
        write_json(folder / CONFIG_FILE, {**cfg.to_dict(), "run_id": run_id, "keras": keras.__version__,
                                          "hardware": hardware.record(setup.machine, threads)})
        write_json(folder / FINGERPRINT_FILE, {**fingerprint, "n_train": len(x_train), "n_val": len(x_val)})
        pieces, truth = made(cfg.design, x_train, y_train, cfg.examples, (cfg.seed, 0), "training pieces", threads,
                             cfg.shapes, cfg.strokes)
        held = max(2, int(cfg.held_out * cfg.examples))
        held_pieces, held_truth = made(cfg.design, x_val, y_val, held, (cfg.seed, 1), "held-out pieces", threads,
                                         cfg.shapes, cfg.strokes)
        np.save(folder / CALIBRATION_FILE, pieces[:cfg.calibration])
        resumed = checkpoints.resume(backup, folder / HISTORY_FILE, cfg.epochs)  # on the same pieces: same seeds
        start = time.perf_counter()
        history = model.fit(pieces, targets(cfg, truth), batch_size=cfg.batch_size, epochs=cfg.epochs,
                            validation_data=(held_pieces, targets(cfg, held_truth)),
                            callbacks=[keras.callbacks.CSVLogger(str(folder / HISTORY_FILE), append=True),
                                       EpochLog(cfg.epochs, len(pieces)),
                                       checkpoints.EpochBackup(backup, folder / HISTORY_FILE)],  # last: after the row
                            verbose=1 if sys.stdout.isatty() else 0)
        seconds = time.perf_counter() - start
        epochs_now = len(history.history.get("loss", []))
        saved = model if finds(cfg.design) else designs.pair_reader_sides(model)
        saved.save(folder / MODEL_FILE)
        figures = held_out_figures(cfg.design, saved, held_pieces, held_truth)
        log.info(f"train: {epochs_now} epochs, {seconds:.0f}s, {epochs_now * len(pieces) / max(seconds, 1e-9):,.0f} "
                 f"pieces/s; {summary_line(cfg.design, figures)}")
        write_json(folder / METRICS_FILE, {"run_id": run_id, "design": cfg.design, "demo_data": digits.demo,
                                           "held_out": figures, "train_seconds": round(seconds, 1),
                                           "parameters": saved.count_params(),
                                           **({"resumed_from_epoch": resumed} if resumed else {})})
    final = models_dir / run_id
    log.info(f"saved: {final}")
    return final
