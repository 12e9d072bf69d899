"""A run's Keras model converted to TFLite: float32, dynamic-range, float16 and int8 (calibrated on
its own training digits), each checked for builtin ops, the reader's pair models trained on the
same data placed beside them (competition/training/pair_runs.py: converted here, never trained),
with a manifest (edge/export/exported.py). The library behind `make tflite` (edge/export/tflite.py).
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from common.errors import ProjectError
from common.writing import atomic_path, write_json
from competition.config import MODELS_DIR, PAIR_DESIGNS, PAIR_FINDERS
from competition.data.digits import load_train
from competition.data.reading import load_model, read_json
from competition.model import designs
from competition.runs.layout import CONFIG_FILE, FINGERPRINT_FILE, METRICS_FILE, MODEL_FILE
from competition.training.pair_runs import CALIBRATION_FILE, find_pair_run, pair_runs_dir, summary_line
from edge.export.exported import (
    EXPORT_DIR,
    MANIFEST_FILE,
    VARIANTS,
    run_data_dir,
    sha256,
    variant_file,
)
from edge.pi.touching import PAIR_READER_FILE, PAIRS_FILE


class ExportError(ProjectError):
    """A conversion that would not run on a plain TFLite interpreter."""


CHECK_DIGITS = 500  # digits the export checks its int8 model on: seconds (make check-edge: every one, each variant)


def run_digits(folder: Path, data_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The run's training rows, its validation rows, (N, 28, 28, 1), and their labels."""
    from competition.runs.rows import run_split

    return run_split(folder, load_train(data_dir))


def check_int8(model, int8_file: Path, images: np.ndarray, labels: np.ndarray, what: str) -> dict:
    """The int8 model against the Keras model on `images`: how many labels they agree on, and each
    one's accuracy; said in one line."""
    from edge.pi.classifier import DigitClassifier

    start = time.perf_counter()
    keras_labels = model.predict(images.astype(np.float32), batch_size=256, verbose=0).argmax(axis=1)
    int8_labels = DigitClassifier(int8_file).predict(images).argmax(axis=1)  # as on the Pi
    check = {"digits": len(labels), "of": what, "agreement": float(np.mean(int8_labels == keras_labels)),
             "keras_accuracy": float(np.mean(keras_labels == labels)), "int8_accuracy": float(np.mean(int8_labels == labels))}
    print(f"check: int8 agrees with Keras on {int(round(check['agreement'] * len(labels)))} of {len(labels)} {what}, "
          f"accuracy {check['int8_accuracy']:.4f} (Keras {check['keras_accuracy']:.4f}), "
          f"{time.perf_counter() - start:.1f}s; make check-edge: every variant on every one")
    return check


def calibration_images(digits: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """A random sample of `size` of the run's training rows."""
    pick = np.random.default_rng(seed).choice(len(digits), size=min(size, len(digits)), replace=False)
    return digits[pick].astype(np.float32)


def fold_scales(model):
    """The model with each batch norm's per-channel scale moved into the convolution before it,
    where that is exact: the convolution's activation is ReLU or none and every scale is positive
    (relu(s * z) = s * relu(z)); the batch norm keeps only its offset. Outputs are unchanged.

    Why: with a batch norm after a ReLU convolution (the strong design), TFLite's int8 calibration
    gives the convolution's output the range of the batch norm's, many times wider (a first layer
    on 0..1 pixels, scaled up by 1/sqrt(variance)): a handful of the 256 levels in use, and int8
    far below Keras (docs/edge.md). Folded, the two ranges are one. (The convolution feeding a
    batch norm is found through the layer's input, `_keras_history`: Sequential and functional
    models alike.)"""
    import keras

    folded = keras.models.clone_model(model)
    folded.set_weights(model.get_weights())
    for layer in folded.layers:
        if not isinstance(layer, keras.layers.BatchNormalization) or not layer.scale:
            continue
        source = layer.input._keras_history.operation
        if not isinstance(source, keras.layers.Conv2D) or source.activation not in (
                keras.activations.relu, keras.activations.linear):
            continue
        gamma, beta, mean, variance = (w.numpy() for w in (layer.gamma, layer.beta, layer.moving_mean,
                                                           layer.moving_variance))
        scale = gamma / np.sqrt(variance + layer.epsilon)
        if not (scale > 0).all():
            continue
        source.kernel.assign(source.kernel.numpy() * scale)
        if source.use_bias:
            source.bias.assign(source.bias.numpy() * scale)
        layer.gamma.assign(np.ones_like(gamma))
        layer.beta.assign(beta - mean * scale)
        layer.moving_mean.assign(np.zeros_like(mean))
        layer.moving_variance.assign(np.full_like(variance, 1 - layer.epsilon))
    return folded


def convert(model, variant: str, calibration: np.ndarray | None = None) -> bytes:
    """One TFLite flatbuffer of the Keras model, restricted to builtin ops (int8: its batch norms'
    scales folded first, fold_scales)."""
    import tensorflow as tf

    if variant == "int8":
        model = fold_scales(model)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "dynamic_range":
        # Per-tensor dense weights keep FULLY_CONNECTED at version 9: per-channel makes it version
        # 12, which tflite-runtime 2.14 (the last for Python 3.11 on a Pi) cannot load.
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    elif variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.representative_dataset = lambda: ([image[None]] for image in calibration)
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the converter's notes, and "Saved artifact at /tmp/..."
        return converter.convert()


def model_ops(flatbuffer: bytes) -> list[dict]:
    """Each operator code in a .tflite file: name (builtin or custom) and version."""
    from tensorflow.lite.python import schema_py_generated as schema

    names = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    ops = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())  # the schema keeps both
        if builtin == schema.BuiltinOperator.CUSTOM:
            ops.append({"name": code.CustomCode().decode(), "version": code.Version(), "builtin": False})
        else:
            ops.append({"name": names[builtin], "version": code.Version(), "builtin": True})
    return sorted(ops, key=lambda op: op["name"])


def check_builtin_ops(flatbuffer: bytes, label: str) -> list[dict]:
    ops = model_ops(flatbuffer)
    custom = [op["name"] for op in ops if not op["builtin"]]
    if custom:
        raise ExportError(f"{label}: custom or Select TF ops {', '.join(custom)}: a plain TFLite "
                          "interpreter cannot run it")
    return ops


def tensor_info(detail: dict) -> dict:
    scale, zero_point = detail["quantization"]
    return {"dtype": np.dtype(detail["dtype"]).name, "shape": [int(d) for d in detail["shape_signature"]],
            "scale": float(scale), "zero_point": int(zero_point)}


def io_details(flatbuffer: bytes) -> tuple[dict, dict]:
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    return tensor_info(interpreter.get_input_details()[0]), tensor_info(interpreter.get_output_details()[0])


def training_data_sha256(folder: Path) -> str | None:
    """The sha256 of the data the run trained on, as its data_fingerprint.json records it."""
    recorded = folder / FINGERPRINT_FILE
    return read_json(recorded).get("sha256") if recorded.is_file() else None


def place_pair_model(runs: list[Path], target: Path, calibration_size: int) -> dict:
    """Pair runs' models as one int8 model at `target` (two finders merged into one:
    designs.pair_finders_merged), calibrated on `calibration_size` of the training pieces they kept,
    an equal share of each; its manifest entry: the file and each source run with its held-out figures."""
    start = time.perf_counter()
    models = [load_model(run / MODEL_FILE) for run in runs]
    model = models[0] if len(models) == 1 else designs.pair_finders_merged(models)
    share = -(-calibration_size // len(runs))
    calibration = np.concatenate([np.load(run / CALIBRATION_FILE)[:share] for run in runs])[:calibration_size]
    flatbuffer = convert(model, "int8", calibration.astype(np.float32))
    check_builtin_ops(flatbuffer, target.stem)
    with atomic_path(target) as tmp:
        tmp.write_bytes(flatbuffer)
    sources, said = [], []
    for run in runs:
        config, metrics = read_json(run / CONFIG_FILE), read_json(run / METRICS_FILE)
        sources.append({"run": run.name, "design": config["design"], "examples": config["examples"],
                        "epochs": config["epochs"], "held_out": metrics["held_out"]})
        said.append(f"{run} ({summary_line(config['design'], metrics['held_out'])})")
    merged = f", {len(runs)} merged (a pair as far as the less sure says so)" if len(runs) > 1 else ""
    print(f"{target.stem}: {len(flatbuffer):,} bytes, int8{merged}, from {'; '.join(said)}, "
          f"{time.perf_counter() - start:.1f}s -> {target}")
    return {"file": target.name, "bytes": len(flatbuffer), "sha256": sha256(target), "runs": sources}


def place_pair_models(folder: Path, out: Path, models_dir: Path | None, calibration_size: int) -> dict:
    """The newest pair runs in models_dir/pair-models trained on the run's data, converted beside
    the export (the finders merged into one, then the reader, which is asked only of what the
    finder found); an older export's pair models are removed first. Where one is missing, one line
    says how to train it and what the reader does without it. Their manifest entries by name (None: none)."""
    for stale in (PAIRS_FILE, PAIR_READER_FILE):  # an older export's would be used beside these variants
        (out / stale).unlink(missing_ok=True)
    data = training_data_sha256(folder)
    found = {design: find_pair_run(models_dir, design, data) if models_dir and data else None
             for design in PAIR_DESIGNS}
    entries = {"pairs": None, "pair_reader": None}
    into = f" MODELS_DIR={models_dir}" if models_dir and Path(models_dir).resolve() != MODELS_DIR.resolve() else ""
    command = f"`make pair-models RUN={folder}{into}`"
    finders = [found[design] for design in PAIR_FINDERS if found[design]]
    if found["pair_finder"] is None:
        print(f"pair models: none trained on this run's data in {pair_runs_dir(models_dir or '<models_dir>')}; "
              f"{command} trains them (once per data set, about 3 hours on 2 cores: docs/edge.md); without them "
              "the reader cuts touching digits by rules")
        return entries
    if len(finders) < len(PAIR_FINDERS):
        print(f"pair finder of bold strokes: none trained on this run's data; {command} trains it; without it "
              "the one finder cuts more digits that touch nothing in two (chalk most: docs/edge.md)")
    entries["pairs"] = place_pair_model(finders, out / PAIRS_FILE, calibration_size)
    if found["pair_reader"] is None:
        print(f"pair reader: none trained on this run's data; {command} trains it; without it the digit model "
              "alone reads the cut pieces of a pair")
    else:
        entries["pair_reader"] = place_pair_model([found["pair_reader"]], out / PAIR_READER_FILE, calibration_size)
    return entries


def export(folder: Path, data_dir: str | None = None, calibration_size: int = 500,
           variants: tuple[str, ...] = VARIANTS, out_dir: Path | None = None,
           pairs_from: str | Path | None = None) -> Path:
    """Write the variants, the reader's pair models (the newest pair runs under
    `pairs_from`/pair-models trained on the run's data: converted, never trained here) and
    manifest.json for a run folder, a line per phase; return the manifest's path."""
    import tensorflow as tf

    began = time.perf_counter()
    out = out_dir or folder / EXPORT_DIR
    model = load_model(folder / MODEL_FILE)  # a corrupt or cut file is an error naming it
    calibration, data, check = None, None, None
    if "int8" in variants:
        start = time.perf_counter()
        data = run_data_dir(folder, data_dir)
        x_train, x_val, y_train, y_val = run_digits(folder, data)
        calibration = calibration_images(x_train, calibration_size)
        checked = ((x_val[:CHECK_DIGITS], y_val[:CHECK_DIGITS], "validation digits") if len(x_val) else
                   (x_train[-CHECK_DIGITS:], y_train[-CHECK_DIGITS:], "training digits (it has no validation rows)"))
        print(f"calibration: {len(calibration)} of the run's training digits from {data}, "
              f"{time.perf_counter() - start:.1f}s")
    entries = []
    for variant in variants:
        start = time.perf_counter()
        flatbuffer = convert(model, variant, calibration)
        ops = check_builtin_ops(flatbuffer, variant)
        target = out / variant_file(variant)
        with atomic_path(target) as tmp:
            tmp.write_bytes(flatbuffer)
        inputs, outputs = io_details(flatbuffer)
        entries.append({"variant": variant, "file": target.name, "bytes": len(flatbuffer), "sha256": sha256(target),
                        "input": inputs, "output": outputs, "ops": ops})
        quantized = f" (scale {inputs['scale']:g}, zero point {inputs['zero_point']})" if inputs["scale"] else ""
        print(f"{variant}: {len(flatbuffer):,} bytes, input {inputs['dtype']}{quantized}, {len(ops)} builtin ops, "
              f"{time.perf_counter() - start:.1f}s -> {target}")
        if variant == "int8":
            check = check_int8(model, target, *checked)
    pair_entries = place_pair_models(folder, out, Path(pairs_from) if pairs_from else None, calibration_size)
    manifest = {
        "source_run": folder.name,
        "source_model": str(folder / MODEL_FILE),
        "source_sha256": sha256(folder / MODEL_FILE),
        "tensorflow": tf.__version__,
        "calibration": None if calibration is None else {
            "images": len(calibration), "data_dir": str(data), "from": "the run's training split, sample seed 0"},
        "variants": entries,
        "int8_check": check,
        **pair_entries,
    }
    write_json(out / MANIFEST_FILE, manifest)
    placed = sum(entry is not None for entry in pair_entries.values())
    print(f"export: {len(entries)} variants and {placed} pair models in {time.perf_counter() - began:.1f}s; "
          f"manifest: {out / MANIFEST_FILE}")
    return out / MANIFEST_FILE
