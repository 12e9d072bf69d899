"""Descriptor 2 filtered while a block runs: the start-up lines of C++ libraries (TensorFlow, the
TFLite interpreters) go there, past sys.stderr, and only the user's lines should be shown.

    with filtered_stderr(lambda lines: [line for line in lines if not noisy(line)]):
        import tensorflow
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator


@contextlib.contextmanager
def filtered_stderr(keep: Callable[[Iterable[bytes]], Iterable[bytes]]) -> Iterator[None]:
    """Descriptor 2 captured while the block runs, then replayed as the lines `keep` returns."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = b"".join(keep(captured))
            if kept:
                os.write(2, kept)
