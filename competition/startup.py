"""A command's start-up: Keras on TensorFlow, and TensorFlow's start-up without its CUDA probing.

Every command calls `begin()` first, before anything imports TensorFlow; importing the package does
nothing of this (a library user keeps their own settings).

On a machine that has no NVIDIA GPU:

TensorFlow's pip wheel is built with CUDA. Each process that imports it writes, straight to file
descriptor 2 and before its own log level (TF_CPP_MIN_LOG_LEVEL) applies, INFO lines saying it found
no CUDA drivers, and at its first op an ERROR line, "failed call to cuInit". On a CPU-only machine
they only mean "no GPU", yet read as a failure. `install()` makes the process's first
`import tensorflow` run with descriptor 2 captured, up to and including the device probe, and then
passes on everything but those lines: real warnings and errors still show. Where an NVIDIA device
exists, a CUDA error is news, so only INFO lines are dropped.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import re
import sys
import time
from pathlib import Path

from common.stderr import filtered_stderr

# Before absl's logging is set up TensorFlow ignores its own level: these are INFO lines (oneDNN,
# "Could not find cuda drivers") and absl's note about them.
_ALWAYS_NOISE = re.compile(rb"^(I\d{4} |WARNING: All log messages before absl::InitializeLog\(\))")
_CUDA_NOISE = re.compile(rb"^E\d{4} .*failed call to cuInit")


def has_nvidia_device(dev: Path = Path("/dev")) -> bool:
    return (dev / "nvidiactl").exists() or (dev / "nvidia0").exists()


def is_noise(line: bytes, nvidia: bool) -> bool:
    """True for a start-up line that says nothing to this machine's user."""
    return bool(_ALWAYS_NOISE.match(line) or (not nvidia and _CUDA_NOISE.match(line)))


class _QuietLoader(importlib.abc.Loader):
    """TensorFlow's own loader, run inside filtered_stderr with the device probe that calls cuInit."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        nvidia = has_nvidia_device()
        with filtered_stderr(lambda lines: [line for line in lines if not is_noise(line, nvidia)]):
            self._loader.exec_module(module)
            module.config.list_physical_devices()

    def __getattr__(self, name):  # anything else a loader is asked (resources, is_package)
        return getattr(self._loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: this finds the real spec below
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Quiet the first `import tensorflow` of this process (a no-op once it is imported)."""
    if "tensorflow" not in sys.modules and not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


# When the command started, as near as a module can tell: what a worker process pays again before
# its first step (TensorFlow's import, reading the data), which a recipe's plan counts.
STARTED = time.perf_counter()


def begin() -> None:
    """Keras 3 on TensorFlow (the input pipeline is tf.data), TensorFlow's C++ warnings off and its
    errors on, and its first import quieted. Call before TensorFlow is imported; the user's own
    KERAS_BACKEND and TF_CPP_MIN_LOG_LEVEL are kept."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    install()
