"""Classify 28x28 digits with an exported TFLite model, on the lightest interpreter installed.

    from edge.pi.classifier import DigitClassifier
    classifier = DigitClassifier("model_int8.tflite", num_threads=4)
    result = classifier.classify(row_of_784_pixels)      # or a 28x28 array
    result.label, result.probabilities, result.top_k

Inputs are raw pixels 0..255, as in the competition's CSVs: the model itself scales them, so
nothing here repeats the training preprocessing. Quantized models (uint8/int8 input or output) are
handled with the tensors' scale and zero point, `real = scale * (q - zero_point)`.

Imports no TensorFlow unless neither ai-edge-litert nor tflite-runtime is installed. The lines an
interpreter writes on a normal start (ai-edge-litert's "INFO: Created TensorFlow Lite XNNPACK
delegate for CPU.", TensorFlow's INFO lines and CUDA probe) are dropped; warnings and errors show.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import re
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from common.digits_csv import IMAGE_SIZE, NUM_CLASSES, NUM_PIXELS
from common.errors import InputError
from common.stderr import filtered_stderr

# What a missing interpreter (ImportError) or a model it refuses (RuntimeError) raises: the user's to fix.
INTERPRETER_ERRORS = (ImportError, RuntimeError)
WHEEL_MACHINES = ("aarch64", "arm64", "x86_64", "AMD64")  # where the interpreters publish wheels
# A normal start's lines on descriptor 2: TFLite's INFO lines, absl's INFO records (I0000 ...) and
# its note about them, the CUDA probe's error where there is no GPU (tf.lite runs on the CPU anyway).
START_UP_NOISE = re.compile(rb"^(INFO: |I\d{4} |WARNING: All log messages before absl::InitializeLog\(\))"
                            rb"|^E\d{4} .*failed call to cuInit")
LOG_RECORD = re.compile(rb"^([IWEF]\d{4} |[A-Z]+: )")  # a new line of a log; others continue the one before


def without_start_up_noise(lines: Iterable[bytes]) -> list[bytes]:
    """The lines of an interpreter's start on descriptor 2 less START_UP_NOISE and the lines that
    continue it."""
    kept, dropping = [], False
    for line in lines:
        if START_UP_NOISE.match(line) or (dropping and not LOG_RECORD.match(line)):
            dropping = True
        else:
            dropping = False
            kept.append(line)
    return kept


def quiet_start_up() -> contextlib.AbstractContextManager:
    """Descriptor 2 while an interpreter is imported and started, replayed without its start-up noise."""
    return filtered_stderr(without_start_up_noise)


def load_interpreter_class() -> tuple[type, str]:
    """The Interpreter class of ai-edge-litert, else tflite-runtime, else tf.lite; and its name."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai_edge_litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite_runtime"
    except ImportError:
        pass
    try:
        import tensorflow as tf  # the heavy last resort, e.g. on the training machine
    except ImportError:
        raise ImportError(no_interpreter_message(platform.machine(), platform.python_version())) from None
    return tf.lite.Interpreter, "tensorflow"


def no_interpreter_message(machine: str, python: str) -> str:
    """Why no interpreter could be imported, and what to do, in one line."""
    if machine not in WHEEL_MACHINES:  # e.g. armv7l (32-bit Raspberry Pi OS), armv6l (Pi Zero, Pi 1)
        return (f"no TFLite interpreter for {machine}: ai-edge-litert and tflite-runtime publish wheels for 64-bit "
                f"ARM (aarch64) and x86-64 only; install 64-bit Raspberry Pi OS (a Pi 3, 4, 5 or Zero 2)")
    return (f"no TFLite interpreter installed for Python {python}: `pip install -r edge/pi/requirements.txt` "
            "(ai-edge-litert, or tflite-runtime for Python 3.11 and older)")


@dataclasses.dataclass
class ClassifierOptions:
    """How to run the model. num_threads None means every core."""

    num_threads: int | None = None
    top_k: int = 3
    batch_size: int = 256  # digits per invoke when classifying many


@dataclasses.dataclass(frozen=True)
class Category:
    label: int
    score: float


@dataclasses.dataclass(frozen=True)
class Classification:
    """One digit: the predicted label, all ten probabilities, and the best top_k."""

    label: int
    probabilities: np.ndarray  # float32 (10,)
    top_k: list[Category]


class DigitClassifier:
    """A .tflite digit model on the lightest interpreter installed; raw 0..255 pixels in. `field`:
    the input a model of another shape takes (the reader's pair reader, 28x56)."""

    def __init__(self, model_path: str | Path, options: ClassifierOptions | None = None,
                 num_threads: int | None = None, field: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE)):
        self.options = options or ClassifierOptions()
        if num_threads is not None:
            self.options = dataclasses.replace(self.options, num_threads=num_threads)
        if not 1 <= self.options.top_k <= NUM_CLASSES:
            raise InputError(f"top_k must be 1..{NUM_CLASSES}, got {self.options.top_k}")
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such model file (export one with `make tflite`)")
        self.threads = self.options.num_threads or os.cpu_count() or 1
        with quiet_start_up(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite's deprecation notice, when it is the fallback
            interpreter_class, self.backend = load_interpreter_class()
            try:
                self._interpreter = interpreter_class(model_path=str(path), num_threads=self.threads)
            except ValueError as err:
                raise InputError(f"{path}: not a TFLite model this interpreter can load: {err}") from None
            try:
                self._interpreter.allocate_tensors()  # the XNNPACK delegate is made here
            except RuntimeError as err:  # e.g. an op version newer than this runtime knows
                raise InputError(f"{path}: {self.backend} cannot run this model: {err}".strip()) from None
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        shape = tuple(int(n) for n in self._input["shape"][1:])
        if shape != (*field, 1):
            raise InputError(f"{path}: input shape {shape}, expected a (batch, {field[0]}, {field[1]}, 1) "
                             + ("digit model" if field == (IMAGE_SIZE, IMAGE_SIZE) else "model"))
        self.field = field
        self._batch = 0
        self._lock = threading.Lock()  # one interpreter runs one invoke at a time (edge.pi.serve's threads share it)

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(self._input["dtype"])

    def classify(self, digit: np.ndarray) -> Classification:
        """One digit: 784 raw pixels, or a 28x28 (or 28x28x1) array of them."""
        pixels = np.asarray(digit)
        if pixels.size != NUM_PIXELS:
            raise InputError(f"expected one digit (784 values or 28x28 pixels), got shape {pixels.shape}")
        return self.classify_batch(pixels.reshape(1, NUM_PIXELS))[0]

    def classify_batch(self, digits: np.ndarray) -> list[Classification]:
        """Many digits: (N, 784) rows or (N, 28, 28[, 1]) arrays of raw pixels."""
        return [self._postprocess(p) for p in self.predict(digits)]

    def predict(self, digits: np.ndarray) -> np.ndarray:
        """Float probabilities (N, 10; a pair reader's N, 20) for a batch, invoked batch_size at a time."""
        batch = _as_batch(digits, self.field)
        size = self.options.batch_size
        with self._lock:
            parts = [self._invoke(self._preprocess(batch[i:i + size])) for i in range(0, len(batch), size)]
        return np.concatenate(parts) if parts else np.zeros((0, NUM_CLASSES), np.float32)

    def _preprocess(self, batch: np.ndarray) -> np.ndarray:
        """Raw 0..255 pixels to the model's input tensor, quantized if the model takes integers."""
        pixels = batch.astype(np.float32).reshape(-1, *self.field, 1)
        dtype = self.input_dtype
        if dtype == np.float32:
            return pixels
        scale, zero_point = self._input["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(pixels / scale + zero_point), info.min, info.max).astype(dtype)

    def _invoke(self, tensor: np.ndarray) -> np.ndarray:
        if len(tensor) != self._batch:  # the models take any batch size; resize only when it changes
            self._interpreter.resize_tensor_input(self._input["index"], list(tensor.shape))
            self._interpreter.allocate_tensors()
            self._batch = len(tensor)
        self._interpreter.set_tensor(self._input["index"], tensor)
        self._interpreter.invoke()
        out = self._interpreter.get_tensor(self._output["index"])
        if out.dtype != np.float32:
            scale, zero_point = self._output["quantization"]
            out = scale * (out.astype(np.float32) - zero_point)
        return out.astype(np.float32)

    def _postprocess(self, probabilities: np.ndarray) -> Classification:
        order = np.argsort(-probabilities, kind="stable")[: self.options.top_k]
        return Classification(
            label=int(order[0]),
            probabilities=probabilities,
            top_k=[Category(int(i), float(probabilities[i])) for i in order],
        )


def _as_batch(digits: np.ndarray, field: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE)) -> np.ndarray:
    """(N, 784) rows from (N, 784), (N, 28, 28) or (N, 28, 28, 1) (or another `field`); raw pixels
    checked 0..255."""
    array = np.asarray(digits)
    if array.dtype.kind not in "uif":
        raise InputError(f"expected numeric pixels 0..255, got dtype {array.dtype}")
    pixels = field[0] * field[1]
    if array.ndim not in (2, 3, 4) or int(np.prod(array.shape[1:])) != pixels:
        raise InputError(f"expected a batch of digits, (N, {pixels}) or (N, {field[0]}, {field[1]}[, 1]), "
                         f"got shape {array.shape}")
    rows = array.reshape(len(array), pixels)
    bad = ~np.isfinite(rows) | (rows < 0) | (rows > 255)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InputError(f"digit {row}, pixel {col}: expected a raw pixel 0..255, got {rows[row, col]}")
    return rows
