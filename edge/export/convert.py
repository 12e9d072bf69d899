"""A run's Keras model converted to TFLite: float32, dynamic-range, float16 and int8 (calibrated on
its own training digits), each checked for builtin ops, with a manifest (edge/export/exported.py).
The library behind `make tflite` (edge/export/tflite.py).
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
from competition.data.digits import load_train
from competition.data.reading import load_model
from competition.runs.folders import MODEL_FILE
from edge.export import pairs
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


def training_digits(folder: Path, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The run's training rows (never its validation images), (N, 28, 28, 1), and their labels."""
    from competition.runs.rows import run_split

    x_train, _, y_train, _ = run_split(folder, load_train(data_dir))
    return x_train, y_train


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


def write_int8(model, examples: np.ndarray, figures: dict, target: Path, calibration_size: int) -> dict:
    """One of the pair models as int8 at `target` (calibrated on `calibration_size` of its
    training `examples`); its manifest entry."""
    flatbuffer = convert(model, "int8", examples[:calibration_size])
    check_builtin_ops(flatbuffer, target.stem)
    with atomic_path(target) as tmp:
        tmp.write_bytes(flatbuffer)
    print(f"{target.stem}: {len(flatbuffer):,} bytes, int8 -> {target}")
    return {"file": target.name, "bytes": len(flatbuffer), "sha256": sha256(target), **figures}


def export(folder: Path, data_dir: str | None = None, calibration_size: int = 500,
           variants: tuple[str, ...] = VARIANTS, out_dir: Path | None = None,
           pair_examples: int = pairs.EXAMPLES, pair_epochs: int = pairs.EPOCHS,
           reader_examples: int = pairs.READER_EXAMPLES, reader_epochs: int = pairs.READER_EPOCHS) -> Path:
    """Write the variants, the reader's pair models (edge/export/pairs.py: the finder, none when
    pair_examples is 0; the reader, none when reader_examples is 0 or there is no finder) and
    manifest.json for a run folder; return the manifest's path."""
    import tensorflow as tf

    out = out_dir or folder / EXPORT_DIR
    model = load_model(folder / MODEL_FILE)  # a corrupt or cut file is an error naming it
    calibration, data, digits, labels = None, None, None, None
    reader_examples = reader_examples if pair_examples else 0  # a reader is asked only of what a finder found
    if "int8" in variants or pair_examples:
        data = run_data_dir(folder, data_dir)
        digits, labels = training_digits(folder, data)
    if "int8" in variants:
        calibration = calibration_images(digits, calibration_size)
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
    pair_entry = reader_entry = None
    for stale in (PAIRS_FILE, PAIR_READER_FILE):  # an older export's would be used beside these variants
        (out / stale).unlink(missing_ok=True)
    if pair_examples:
        pair_entry = write_int8(*pairs.train_pairs(digits, pair_examples, pair_epochs), out / PAIRS_FILE,
                                calibration_size)
    if reader_examples:
        reader_entry = write_int8(*pairs.train_pair_reader(digits, labels, reader_examples, reader_epochs),
                                  out / PAIR_READER_FILE, calibration_size)
    manifest = {
        "source_run": folder.name,
        "source_model": str(folder / MODEL_FILE),
        "source_sha256": sha256(folder / MODEL_FILE),
        "tensorflow": tf.__version__,
        "calibration": None if calibration is None else {
            "images": len(calibration), "data_dir": str(data), "from": "the run's training split, sample seed 0"},
        "variants": entries,
        "pairs": pair_entry,
        "pair_reader": reader_entry,
    }
    write_json(out / MANIFEST_FILE, manifest)
    print(f"manifest: {out / MANIFEST_FILE}")
    return out / MANIFEST_FILE
