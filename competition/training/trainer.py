"""Training a model into a self-describing run folder: the library behind train, cv, ensemble and best.

`train_model(cfg)` trains one model as a TrainConfig says and writes models/<time>-<name>/: model.keras,
config.json (the resolved config and the machine), data_fingerprint.json, history.csv, metrics.json
and train.log; the folder appears only when the run ends. parallel.py trains the models of a CV, an
ensemble or a recipe with it, several at once.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import sys
import time
from pathlib import Path

import keras
import numpy as np

from common.writing import write_json
from competition.config import ADDED_OFF, COMPUTE_PRECISIONS, NUM_CLASSES, TrainConfig
from competition.data import splits
from competition.data.digits import Digits, load_train
from competition.data.reading import read_json
from competition.model import designs
from competition.model import search_space
from competition.model.augment import Warps, batches_per_epoch, make_dataset
from competition.runs.building import check_room, run_bytes, run_folder
from competition.runs.console import setup_console_logging
from competition.runs.layout import (
    CONFIG_FILE,
    FINGERPRINT_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_FILE,
    ROWS_FILE,
    new_run_id,
)
from competition.scoring.metrics import classification_metrics
from competition.training import checkpoints, hardware
from competition.training.pseudo import pseudo_labelled

# What a CV's fold, an ensemble's member or a recipe's model is reused under when its work resumes:
# every setting that changes what it learns.
IDENTITY = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("name", "models_dir", "threads"))
# What a record lacking a setting did: the setting's default then (precision was float32 before "auto").
RECORDED_DEFAULTS = {**TrainConfig().to_dict(), "precision": "float32"}

log = logging.getLogger("competition")


class EpochLog(keras.callbacks.Callback):
    """One line per epoch with units, for the console and the run's train.log."""

    def __init__(self, epochs: int, n_train: int):
        super().__init__()
        self.epochs, self.n_train = epochs, n_train

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        seconds = time.perf_counter() - self.start
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        val = (f" val_loss {logs['val_loss']:.4f} val_acc {logs['val_accuracy']:.4f}"
               if "val_loss" in logs else "")  # none when training on every row
        log.info(
            f"epoch {epoch + 1}/{self.epochs}: loss {logs.get('loss', float('nan')):.4f} "
            f"acc {logs.get('accuracy', float('nan')):.4f}{val} lr {lr:.0e}, "
            f"{seconds:.1f}s, {self.n_train / seconds:.0f} img/s"
        )


class OneCycle(keras.callbacks.Callback):
    """--schedule onecycle: the learning rate of each step, from Keras's warm-up-then-cosine schedule.
    Set on the optimizer's own rate, so that the model saved has a plain rate like any other."""

    def __init__(self, peak: float, steps: int, warmup: float):
        super().__init__()
        self.schedule = designs.one_cycle(peak, steps, warmup)

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate.assign(self.schedule(self.model.optimizer.iterations))

    def on_epoch_end(self, epoch, logs=None):  # history.csv's rate: the next step's, as LearningRateScheduler logs
        if logs is not None:
            logs["learning_rate"] = float(self.schedule(self.model.optimizer.iterations))


class LastStepWeights(keras.callbacks.Callback):
    """The weights of the last step, kept before fit swaps in their moving average (--ema)."""

    weights = None

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.params["epochs"]:
            self.weights = self.model.get_weights()


def training_data(cfg: TrainConfig, digits: Digits, indices: tuple[np.ndarray, np.ndarray] | None):
    """x_train, x_val, y_train, y_val: cfg's split of digits, or the rows `indices` names (a CV fold's),
    then with --pseudo test.csv's pseudo-labelled digits added to the training rows; and a summary of
    those for the run's metrics (None without)."""
    if indices is None:
        x_train, x_val, y_train, y_val = splits.split(digits, cfg)
    else:
        x_train, y_train = digits.images[indices[0]], digits.labels[indices[0]]
        x_val, y_val = digits.images[indices[1]], digits.labels[indices[1]]
    if not cfg.pseudo:
        return x_train, x_val, y_train, y_val, None
    x_extra, y_extra, pseudo = pseudo_labelled(cfg.pseudo, cfg.data_dir, None if indices is None else indices[1],
                                               cfg.pseudo_min_confidence)
    if indices is None and len(x_val):
        log.warning("pseudo-labels: their labellers may have trained on this run's validation rows; "
                    "its validation accuracy is not an independent estimate")
    return np.concatenate([x_train, x_extra]), x_val, np.concatenate([y_train, y_extra]), y_val, pseudo


def onehot(labels: np.ndarray) -> np.ndarray:
    return np.eye(NUM_CLASSES, dtype=np.float32)[labels]


def callbacks(cfg: TrainConfig, folder: Path, n_train: int, validate: bool) -> list[keras.callbacks.Callback]:
    """The report's callbacks (early stopping, LR on plateau), a per-epoch LR decay (--lr_decay) or a
    per-step one-cycle (--schedule onecycle)."""
    chosen: list[keras.callbacks.Callback] = []
    if cfg.early_stopping and validate:
        chosen.append(keras.callbacks.EarlyStopping(
            monitor="val_loss",
            mode="min",
            patience=cfg.early_stopping_patience,
            min_delta=cfg.early_stopping_min_delta,
            restore_best_weights=True,
        ))
    if cfg.schedule == "onecycle":
        chosen.append(OneCycle(cfg.learning_rate, cfg.epochs * batches_per_epoch(n_train, cfg.batch_size), cfg.warmup))
    elif cfg.lr_decay:
        chosen.append(keras.callbacks.LearningRateScheduler(lambda epoch: cfg.learning_rate * cfg.lr_decay**epoch))
    elif validate:
        chosen.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=cfg.reduce_lr_patience))
    # append: a resumed run's CSVLogger goes on after the rows checkpoints.restore_history put back
    return [*chosen, keras.callbacks.CSVLogger(str(folder / HISTORY_FILE), append=True), EpochLog(cfg.epochs, n_train)]


def model_for(cfg: TrainConfig, values: dict | None = None) -> tuple[keras.Model, dict | None]:
    """The compiled model cfg names, in cfg's precision (a resolved one: float32 or mixed_*),
    and the hyperparameter values it came from (tuned runs): `values`, or read from cfg.hparams."""
    if cfg.precision not in COMPUTE_PRECISIONS:  # decided once, by hardware.resolve, before any model is built
        raise ValueError(f"precision {cfg.precision!r}: resolve it first (hardware.resolve)")
    with designs.precision(cfg.precision):
        if cfg.hparams:
            values = values or tuned_values(cfg.hparams)
            model = designs.make_cnn(**search_space.cnn_kwargs(values), name="tuned")
        else:
            model = designs.for_config(cfg)
    return designs.compile_model(model, cfg.learning_rate, ema=cfg.ema, label_smoothing=cfg.label_smoothing), values


def tuned_values(hparams: str) -> dict:
    """The hyperparameter values of a search's best_hyperparameters.json."""
    return read_json(hparams, ("hyperparameters",))["hyperparameters"]


def as_float32(cfg: TrainConfig, model: keras.Model, values: dict | None = None) -> keras.Model:
    """model with float32 compute: what is saved, scored and exported, whatever precision trained it.
    Mixed precision keeps float32 weights, so they carry over unchanged."""
    if cfg.precision == "float32":
        return model
    twin, _ = model_for(dataclasses.replace(cfg, precision="float32"), values)
    twin.set_weights(model.get_weights())
    twin.optimizer.build(twin.trainable_variables)  # its state too, as a float32 run saves it
    trained = getattr(model.optimizer, "inner_optimizer", model.optimizer)  # mixed_float16's loss scaling wraps it
    for mine, theirs in zip(twin.optimizer.variables, trained.variables, strict=True):
        mine.assign(theirs)
    return twin


def checkpoint_identity(cfg: TrainConfig) -> dict:
    """The settings a run's epoch checkpoints are kept under: IDENTITY, less ADDED_OFF's at their off
    value, so that a run killed before they existed resumes under the code that has them."""
    return {key: getattr(cfg, key) for key in IDENTITY if ADDED_OFF.get(key, object()) != getattr(cfg, key)}


def first_plain_batch(cfg: TrainConfig, resumed: int, steps: int) -> int | None:
    """The first batch of --plain_epochs, counted from the first epoch this process trains (after
    `resumed` epochs of `steps` batches); None: every batch is warped as --augment says."""
    if not cfg.plain_epochs:
        return None
    return max(0, (cfg.epochs - cfg.plain_epochs - resumed) * steps)


def fit(cfg: TrainConfig, folder: Path, model: keras.Model, x_train, y_train, x_val, y_val,
        backup: Path) -> tuple[dict, list | None]:
    """Train model in place (history.csv goes to folder), checkpointed after every epoch in `backup`
    and resumed from its last finished epoch if a killed run left one there; return a summary of
    the fit and, with --ema, the last step's weights (the model then holds their average).
    Early stopping counts its patience afresh after a resume."""
    validate = len(x_val) > 0
    resumed = checkpoints.resume(backup, folder / HISTORY_FILE, cfg.epochs)
    steps = batches_per_epoch(len(x_train), cfg.batch_size)
    train_ds = make_dataset(x_train, onehot(y_train), cfg.batch_size, cfg.seed, Warps.of(cfg),
                            plain_from=first_plain_batch(cfg, resumed, steps))
    fit_callbacks = callbacks(cfg, folder, len(x_train), validate)
    last_step = LastStepWeights() if cfg.ema else None
    fit_callbacks += [last_step] if last_step else []
    fit_callbacks.append(checkpoints.EpochBackup(backup, folder / HISTORY_FILE))  # last: after CSVLogger's row
    start = time.perf_counter()
    history = model.fit(
        train_ds,
        steps_per_epoch=steps,
        validation_data=(x_val.astype(np.float32), onehot(y_val)) if validate else None,
        epochs=cfg.epochs,
        callbacks=fit_callbacks,
        shuffle=False,  # the dataset shuffles itself
        # no progress bar in parallel.train_all's workers: they share the terminal
        verbose=1 if sys.stdout.isatty() and multiprocessing.parent_process() is None else 0,
    )
    seconds = time.perf_counter() - start
    epochs_now = len(history.history.get("loss", []))
    epochs_run = resumed + epochs_now
    summary = {
        "epochs_run": epochs_run,
        "train_seconds": round(seconds, 1),  # this process's; a resumed run's earlier epochs are not counted
        "train_images_per_second": round(epochs_now * len(x_train) / seconds, 1),
        "parameters": model.count_params(),
        **({"resumed_from_epoch": resumed} if resumed else {}),
    }
    stoppers = [c for c in fit_callbacks if isinstance(c, keras.callbacks.EarlyStopping)]
    if stoppers:  # its best epoch is the one whose weights were kept
        summary.update(restored_epoch=stoppers[0].best_epoch + 1, stopped_early=stoppers[0].stopped_epoch > 0)
    if validate and epochs_now:
        val_losses = history.history["val_loss"]
        summary.update(lowest_val_loss=float(np.min(val_losses)), lowest_val_loss_epoch=resumed + int(np.argmin(val_losses)) + 1)
    log.info(f"train: {epochs_run} epochs, {seconds:.0f}s, {summary['train_images_per_second']:.0f} img/s")
    return summary, last_step.weights if last_step else None


def score(model: keras.Model, x_val, y_val) -> dict:
    """classification_metrics of model's predictions for the validation images."""
    return classification_metrics(y_val, model.predict(x_val.astype(np.float32), batch_size=256, verbose=0))


def last_step_metrics(model: keras.Model, last_step: list, x_val, y_val) -> dict:
    """Accuracy and loss of the float32 model with the last step's weights in place of the average."""
    averaged = model.get_weights()
    model.set_weights(last_step)
    try:
        scored = score(model, x_val, y_val)
    finally:
        model.set_weights(averaged)
    return {key: scored[key] for key in ("accuracy", "errors", "loss")}


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a model's data and outputs are: one description, for a model trained here or on a cluster's
    node (which has no data files or search folder of its own). Every field empty: cfg says it all."""

    digits: Digits | None = None  # train.csv as the command read and checked it; None: read cfg.data_dir
    rows: tuple[np.ndarray, np.ndarray] | None = None  # train rows, validation rows (a CV fold); None: cfg's split
    hyperparameters: dict | None = None  # the tuned values of cfg.hparams; None: read from its search folder
    into: str | Path | None = None  # where the run is built; None: cfg.models_dir (config.json records cfg's paths)


def train_model(cfg: TrainConfig, setup: hardware.Setup | None = None, placement: Placement = Placement()) -> Path:
    """Train as cfg says, from and into where placement says; return the finished run folder.

    `setup` is the precision and threads a command resolved for this machine; without it they are
    resolved here, from cfg.
    """
    digits, indices, hyperparameters, into = (placement.digits, placement.rows, placement.hyperparameters,
                                              placement.into)
    setup_console_logging()
    setup = setup or hardware.resolve(cfg.precision, cfg.threads)
    cfg, why, machine = dataclasses.replace(cfg, precision=setup.precision), setup.reason, setup.machine
    threads = hardware.apply_threads(setup.threads)
    keras.utils.set_random_seed(cfg.seed)
    model, hyperparameters = model_for(cfg, hyperparameters)
    models_dir = into or cfg.models_dir
    # A full or read-only models folder found now, from the model's size, rather than after the training.
    check_room(models_dir, run_bytes(model.count_params(), bool(cfg.ema)), "this run")
    run_id = new_run_id(cfg.name)
    backup = checkpoints.folder_for(models_dir, cfg.name, checkpoint_identity(cfg), indices)
    with checkpoints.held(backup), run_folder(models_dir, run_id) as folder:
        log.info(f"machine: {hardware.describe_machine(machine)}; precision {cfg.precision} ({why}), "
                 f"{threads} thread{'s' * (threads != 1)}")
        start = time.perf_counter()
        digits = load_train(cfg.data_dir) if digits is None else digits
        x_train, x_val, y_train, y_val, pseudo = training_data(cfg, digits, indices)
        kind = "DEMO data (scikit-learn digits, not the competition's)" if digits.demo else "competition data"
        extra = f" ({pseudo['kept']} of them pseudo-labelled test digits)" if pseudo else ""
        log.info(f"data: {len(x_train)} train{extra} / {len(x_val)} val images from {digits.source} [{kind}], "
                 f"{time.perf_counter() - start:.1f}s")

        what = f"tuned model from {cfg.hparams}" if cfg.hparams else f"arch {cfg.arch}"
        log.info(f"run: {run_id}, {what} ({model.count_params():,} parameters), "
                 f"augment {'on' if cfg.augment else 'off'}, up to {cfg.epochs} epochs of batch {cfg.batch_size}, "
                 f"{cfg.precision}")
        write_json(folder / CONFIG_FILE, {**cfg.to_dict(), "run_id": run_id, "hyperparameters": hyperparameters,
                                          "keras": keras.__version__, "backend": keras.backend.backend(),
                                          "precision_reason": why, "hardware": hardware.record(machine, threads)})
        write_json(folder / FINGERPRINT_FILE, {**digits.fingerprint(), "n_train": len(x_train), "n_val": len(x_val),
                                                "n_pseudo": pseudo["kept"] if pseudo else 0})
        if indices is not None:  # rows no config can redo: kept, so that reports and edge checks use the same
            np.savez(folder / ROWS_FILE, train=indices[0], validation=indices[1])

        summary, last_step = fit(cfg, folder, model, x_train, y_train, x_val, y_val, backup)
        model = as_float32(cfg, model, hyperparameters)
        model.save(folder / MODEL_FILE)
        metrics = None
        if len(x_val):
            metrics = score(model, x_val, y_val)
            if last_step is not None:  # what the average gained over the weights it averaged
                summary["last_step_validation"] = last_step_metrics(model, last_step, x_val, y_val)
                log.info(f"ema: val accuracy {metrics['accuracy']:.5f} averaged, "
                         f"{summary['last_step_validation']['accuracy']:.5f} at the last step")
            kept = f" (weights of epoch {summary['restored_epoch']})" if "restored_epoch" in summary else ""
            log.info(f"eval{kept}: val accuracy {metrics['accuracy']:.5f} ({metrics['errors']} errors in "
                     f"{metrics['n']}), val loss {metrics['loss']:.4f}, most confused "
                     f"{metrics['most_confused']['true']}->{metrics['most_confused']['predicted']}")
        write_json(folder / METRICS_FILE, {"run_id": run_id, "demo_data": digits.demo, "validation": metrics, **summary,
                                           **({"pseudo_labels": pseudo} if pseudo else {})})
    final = Path(models_dir) / run_id
    if into is None:  # a node's own folder is not where the run ends up: the driver says where
        log.info(f"saved: {final}")
    return final


def recorded_settings(cfg: TrainConfig, precision: str) -> dict:
    """cfg as resumable work records it (CV folds, ensemble members, a recipe's models): with the
    precision its models train in (hardware.work_precision), so that work is not continued in another."""
    return {**cfg.to_dict(), "precision": precision}
