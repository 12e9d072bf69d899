"""The interpreter's start-up lines are dropped from the edge commands' stderr; real errors stay."""

import os
import subprocess
import sys

import numpy as np
from conftest import ROOT, model_path
from PIL import Image

from edge.pi.classifier import quiet_start_up


def test_a_command_prints_no_interpreter_start_up_lines(tmp_path, fixtures):
    image = tmp_path / "one.png"
    pixels = np.full((60, 60), 255, np.uint8)
    pixels[10:50, 27:33] = 0  # a stroke: a 1
    Image.fromarray(pixels).save(image)
    done = subprocess.run([sys.executable, "-m", "edge.pi.classify", str(model_path(fixtures, "int8")), str(image)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("model: ") and "XNNPACK" not in done.stderr, done.stderr


def test_warnings_and_errors_written_during_the_start_still_show(capfd):
    with quiet_start_up():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
                    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                    b"I0000 00:00:1.0 1 cpu_feature_guard.cc:227] This TensorFlow binary is optimized\n"
                    b"To enable the following instructions: AVX2, in other operations, rebuild TensorFlow\n"
                    b"E0000 00:00:1.0 1 cuda_executor.cc:1] failed call to cuInit: UNKNOWN ERROR (303)\n"
                    b"W0000 00:00:1.0 1 op_kernel.cc:1] a real warning\n"
                    b"ERROR: Didn't find op for builtin opcode 'FOO'\n")
    assert capfd.readouterr().err == ("W0000 00:00:1.0 1 op_kernel.cc:1] a real warning\n"
                                      "ERROR: Didn't find op for builtin opcode 'FOO'\n")
