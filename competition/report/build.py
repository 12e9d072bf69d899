"""Write a run's report: PNG figures and one self-contained HTML page, in RUN/report/.

    python -m competition.report                        # the finished run with the best recorded score
    python -m competition.report --name report-aug      # the newest run of that name
    python -m competition.report --run 20261127-081500-report-aug --data_dir ../shared/data/digit-recognizer

Figures: the class distribution of train.csv, sample digits, learning curves, the confusion matrix,
the misclassified validation digits (worst first), the first conv layer's filters, one digit's
feature maps through every conv and pooling layer, a digit and its augmentations; for a tuned run,
the search's trials and best hyperparameters; when the edge check has run, its table. The page,
report.html, embeds them all and opens from the file with no server and no network.

The validation digits are the run's own split of its own data: the data is checked against the
run's data_fingerprint.json and refused if it differs.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from competition import startup

startup.begin()  # before TensorFlow loads: Keras' backend, its start-up lines quieted

import keras
import numpy as np

from common.errors import ProjectError, add_debug_flag, exit_status
from common.writing import write_text
from competition.cli import add_data_dir, add_models_dir, add_run_flag
from competition.config import MODELS_DIR, NUM_CLASSES
from competition.data.digits import Digits, load_train
from competition.data.reading import load_model, read_csv, read_json
from competition.model.augment import Warps
from competition.report import figures
from competition.report.optional import edge_section, local_path, tuning_section
from competition.report.page import Section, render, table
from competition.runs.choosing import default_model, model_by_id, newest_named
from competition.runs.layout import CONFIG_FILE, FINGERPRINT_FILE, HISTORY_FILE, METRICS_FILE, MODEL_FILE

REPORT_DIR = "report"
PAGE_FILE = "report.html"
N_AUGMENTED = 23  # with the original, a 3 x 8 grid
FEATURE_LAYERS = (keras.layers.Conv2D, keras.layers.MaxPooling2D)


class ReportError(ProjectError):
    """A run or its data that the report cannot describe faithfully."""


def load_data(folder: Path, data_dir: Path) -> Digits:
    """train.csv from data_dir, refused unless it is the data the run was trained on."""
    digits = load_train(data_dir)
    recorded = folder / FINGERPRINT_FILE
    if recorded.is_file():
        expected = read_json(recorded, ("sha256",))["sha256"]
        found = digits.fingerprint()["sha256"]
        if found != expected:
            raise ReportError(f"{digits.source} is not the data {folder.name} was trained on (sha256 {found[:12]}..., "
                              f"{recorded} says {expected[:12]}...): pass --data_dir with that data")
    return digits


def describe(model: keras.Model) -> str:
    """The layers in one line: Conv2D(32, 5x5) → MaxPool → BatchNorm → Dropout(0.25) → ..."""
    parts = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            stride = f", stride {layer.strides[0]}" if max(layer.strides) > 1 else ""
            parts.append(f"Conv2D({layer.filters}, {'x'.join(map(str, layer.kernel_size))}{stride})")
        elif isinstance(layer, keras.layers.Dense):
            parts.append(f"Dense({layer.units}{', softmax' if layer.activation.__name__ == 'softmax' else ''})")
        elif isinstance(layer, keras.layers.Dropout):
            parts.append(f"Dropout({layer.rate:g})")
        else:
            parts.append({"MaxPooling2D": "MaxPool", "BatchNormalization": "BatchNorm"}.get(
                type(layer).__name__, type(layer).__name__))
    return " → ".join(parts)


def layer_outputs(model: keras.Model, image: np.ndarray) -> list[tuple[keras.layers.Layer, np.ndarray]]:
    """One digit through the model in inference mode; the output of every conv and pooling layer.
    A model of the same inputs with those outputs serves any graph: a Sequential's chain or a
    residual network's branches and joins."""
    chosen = [layer for layer in model.layers if isinstance(layer, FEATURE_LAYERS)]
    probe = keras.Model(model.inputs, [layer.output for layer in chosen])
    outputs = probe(image[None].astype(np.float32), training=False)
    return [(layer, keras.ops.convert_to_numpy(x)[0]) for layer, x in zip(chosen, outputs)]


def augment_examples(image: np.ndarray, config: dict, count: int = N_AUGMENTED, seed: int = 0) -> np.ndarray:
    import tensorflow as tf

    tf.random.set_seed(seed)
    batch = tf.constant(np.repeat(image[None].astype(np.float32), count, axis=0))
    return Warps.recorded(config).apply(batch).numpy()


@dataclasses.dataclass
class RunData:
    """What the report shows: a run, its data and its model's predictions on its validation digits."""

    folder: Path
    config: dict
    metrics: dict
    digits: Digits
    model: keras.Model
    x_val: np.ndarray
    y_val: np.ndarray
    probabilities: np.ndarray  # the model's, for x_val
    example: np.ndarray  # the digit shown through the layers and augmented
    example_title: str

    @property
    def validation(self) -> dict:
        return self.metrics.get("validation") or {}  # None for a run without validation rows


def load(folder: Path, data_dir: str | None) -> RunData:
    """The run's config, metrics, model and data, and the rows it was validated on."""
    from competition.runs.rows import run_split

    config = read_json(folder / CONFIG_FILE)
    metrics = read_json(folder / METRICS_FILE) if (folder / METRICS_FILE).is_file() else {}
    digits = load_data(folder, Path(data_dir) if data_dir else local_path(config["data_dir"]))
    x_train, x_val, y_train, y_val = run_split(folder, digits)
    model = load_model(folder / MODEL_FILE)
    probabilities = (model.predict(x_val.astype(np.float32), batch_size=256, verbose=0) if len(x_val)
                     else np.zeros((0, NUM_CLASSES), np.float32))  # Keras cannot predict on no rows
    if len(x_val):
        example, label, p, where = x_val[0], y_val[0], probabilities[0], "validation"
    else:
        example, label, where = x_train[0], y_train[0], "training"
        p = model.predict(example[None].astype(np.float32), verbose=0)[0]
    title = f"{where} digit #1, label {label}, predicted {p.argmax()} ({p.max():.2f})"
    return RunData(folder, config, metrics, digits, model, x_val, y_val, probabilities, example, title)


def header(run: RunData) -> dict:
    config, metrics, digits, val = run.config, run.metrics, run.digits, run.validation
    n_val = len(run.x_val)
    augment = f"on: {Warps.recorded(config).describe()}" if config.get("augment") else "off"
    restored = metrics.get("restored_epoch")  # older runs recorded only the lowest-loss epoch
    confused = val.get("most_confused", {})
    scores = {"validation": "none: this run trained on every row (val_size 0)"}
    if val:
        scores = {
            "accuracy": f"{val['accuracy']:.5f}" if "accuracy" in val else "?",
            "loss (cross-entropy)": f"{val['loss']:.4f}" if "loss" in val else "?",
            "errors": f"{val.get('errors', '?')} of {val.get('n', '?')}",
            "macro F1": f"{val['macro_f1']:.5f}" if "macro_f1" in val else "?",
            "most confused": f"true {confused['true']} → predicted {confused['predicted']} ({confused['count']}x)"
                             if confused else "?",
            "per epoch": "loss, accuracy, F1 (micro, threshold 0.5), precision, recall; train and validation",
        }
    return {
        "Data": {
            "kind": "DEMO set (scikit-learn digits)" if digits.demo else "competition data (Kaggle train.csv)",
            "train.csv": digits.source,
            "rows": len(digits),
            "split": f"{len(digits) - n_val:,} train / {n_val:,} validation "
                     f"(val_size {config['val_size']}, split_seed {config['split_seed']})",
            "sha256": digits.fingerprint()["sha256"][:16] + "...",
        },
        "Model": {
            "run": run.folder.name,
            "model": f"tuned, from {config['hparams']}" if config.get("hparams") else f"arch {config.get('arch')}",
            "layers": describe(run.model),
            "parameters": run.model.count_params(),
            "training": f"Adam {config['learning_rate']:g}, batch {config['batch_size']}, "
                        f"{metrics.get('epochs_run', '?')} epochs, "
                        + (f"weights of epoch {restored}" if restored else "weights of the last epoch"),
            "augmentation": augment,
            "Keras": f"{config.get('keras', '?')} ({config.get('backend', '?')})",
        },
        "Metrics (validation, from metrics.json)": scores,
    }


def analysis_sections(save, run: RunData) -> list[Section]:
    """The figures every run has; `save(fig, filename)` writes one and returns its path."""
    digits, config, folder = run.digits, run.config, run.folder
    sections = [Section("data", "Data", figures=[
        (save(figures.class_distribution(digits.labels, digits.source), "class_distribution.png"),
         "How many digits of each label train.csv holds."),
        (save(figures.sample_digits(digits.images, digits.labels), "sample_digits.png"),
         "Random digits of each label, as the model sees them (28x28, 0..255)."),
    ])]
    if (folder / HISTORY_FILE).is_file():
        restored = run.metrics.get("restored_epoch")
        sections.append(Section("curves", "Learning curves", figures=[
            (save(figures.learning_curves(read_csv(folder / HISTORY_FILE), restored), "learning_curves.png"),
             "Train against validation per epoch, from history.csv. Train metrics are measured during the epoch "
             "(on augmented digits when augmentation is on), validation metrics after it.")]))
    sections += validation_sections(save, run)

    conv = [layer for layer in run.model.layers if isinstance(layer, keras.layers.Conv2D)]
    if conv:
        kernel = keras.ops.convert_to_numpy(conv[0].kernel)
        sections.append(Section("filters", "Learned filters", figures=[
            (save(figures.conv_filters(kernel, conv[0].name), "conv_filters.png"),
             "The first conv layer's kernels: what each filter responds to in the raw digit.")]))

    image, digit = run.example, run.example_title
    maps = [(save(figures.feature_maps(image, activation, f"{i}. {layer.name} ({type(layer).__name__})", digit),
                  f"feature_maps_{i}_{type(layer).__name__.lower()}.png"), f"Layer {i}: {layer.name}, {type(layer).__name__}.")
            for i, (layer, activation) in enumerate(layer_outputs(run.model, image), start=1)]
    sections.append(Section("feature-maps", "Feature maps", f"The {digit}, through every conv and pooling layer "
                            "(inference mode); each layer on one colour scale.", figures=maps))

    settings = Warps.recorded(config).describe()
    used = "This run trained on such digits." if config.get("augment") else \
        "This run trained without augmentation; these are the warps --augment would apply with its settings."
    sections.append(Section("augmentation", "Augmentation", used, figures=[
        (save(figures.augmentations(image, augment_examples(image, config)[..., 0], settings), "augmentations.png"),
         f"Random rotation, shift and zoom in one affine warp (competition/model/augment.py): {settings}. Never flips.")]))
    return sections


def validation_sections(save, run: RunData) -> list[Section]:
    """The confusion matrix and the misclassified digits, recomputed from the model's predictions."""
    if not len(run.y_val):
        return [Section("confusion", "Confusion matrix and misclassified digits",
                        "None: this run has no validation rows (val_size 0), so nothing was held out to count.")]
    y_val, probabilities, val = run.y_val, run.probabilities, run.validation
    predicted = probabilities.argmax(axis=1)
    matrix = np.bincount(y_val * NUM_CLASSES + predicted, minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, -1)
    note = ""
    if "confusion_matrix" in val and not np.array_equal(val["confusion_matrix"], matrix):
        note = (" Warning: predicting again gave a different matrix from metrics.json's (other data, other "
                "hardware?); the figures show this prediction, the header metrics.json's.")
    per_class = [{"label": label, **values} for label, values in val.get("per_class", {}).items()]
    errors = int((predicted != y_val).sum())
    return [
        Section("confusion", "Confusion matrix", figures=[
            (save(figures.confusion_matrix(matrix), "confusion_matrix.png"),
             "Rows: true label, columns: predicted label, on the validation digits." + note)],
            html="<h3>Per class (metrics.json)</h3>" + table(per_class) if per_class else ""),
        Section("errors", "Misclassified digits", figures=[
            (save(figures.misclassified(run.x_val, y_val, probabilities), "misclassified.png"),
             f"{errors} misclassified of {len(y_val):,} validation digits; worst first (the highest probability "
             f"given to a wrong label); at most {figures.MAX_MISCLASSIFIED} shown.")]),
    ]


def build_report(run: str | None = None, models_dir: str | Path = MODELS_DIR, data_dir: str | None = None,
        name: str | None = None) -> Path:
    """Write RUN/report/ (figures and report.html); return the page's path."""
    start = time.perf_counter()
    models_dir = Path(models_dir)
    if run:  # the report is of one model: a recipe of one member stands for it
        chosen = model_by_id(models_dir, run)
    else:
        chosen = newest_named(models_dir, name) if name else default_model(models_dir)
    if not (run or name):
        print(chosen.line())
    folder = chosen.folder
    data = load(folder, data_dir)
    print(f"run: {folder}\ndata: {data.digits.source} ({'DEMO' if data.digits.demo else 'competition'} data), "
          f"{len(data.x_val):,} validation digits", flush=True)

    out = folder / REPORT_DIR
    out.mkdir(exist_ok=True)
    written: list[Path] = []

    def save(fig, filename: str) -> Path:
        written.append(figures.save(fig, out / filename))
        return written[-1]

    sections = analysis_sections(save, data)
    sections += [s for s in (tuning_section(data.config, save), edge_section(folder, models_dir)) if s]
    for stale in set(out.glob("*.png")) - set(written):
        stale.unlink()  # from an earlier report of this run, with other layers or sections

    demo = data.digits.demo
    kind = ("DEMO data: scikit-learn digits, not the competition's. For trying the tool only." if demo
            else "Competition data: Kaggle's Digit Recognizer train.csv.")
    page = render(f"Report: {folder.name}",
                  f"Written {time.strftime('%Y-%m-%d %H:%M')} by competition.report from {folder}",
                  ("demo" if demo else "competition", kind), header(data), sections)
    path = out / PAGE_FILE
    write_text(path, page)
    print(f"report: {len(written)} figures, page {len(page.encode()) / 1e6:.1f} MB -> {path}, "
          f"{time.perf_counter() - start:.1f}s")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_flag(parser)
    parser.add_argument("--name", default=None, help="the newest run with this name, e.g. report-aug or demo")
    add_models_dir(parser)
    add_data_dir(parser, default=None, what="folder with train.csv (default: the run's own data_dir)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    return exit_status(lambda: build_report(args.run, args.models_dir, args.data_dir, args.name), args.debug)


if __name__ == "__main__":
    sys.exit(main())
