"""The edge side runs without TensorFlow: it is not installed here, and nothing asks for it."""

import importlib.util
import os
import subprocess
import sys

from conftest import ROOT, model_path

from edge.pi.classifier import DigitClassifier, load_interpreter_class


def test_tensorflow_is_not_installed_here():
    assert importlib.util.find_spec("tensorflow") is None
    assert importlib.util.find_spec("keras") is None


def test_classifier_runs_on_the_expected_lightweight_interpreter(fixtures, digits):
    expected = os.environ.get("EDGE_EXPECT_INTERPRETER")
    assert expected in ("ai_edge_litert", "tflite_runtime"), "set EDGE_EXPECT_INTERPRETER (make test-edge does)"
    assert load_interpreter_class()[1] == expected
    classifier = DigitClassifier(model_path(fixtures, "int8"))
    assert classifier.backend == expected
    classifier.predict(digits[0][:4])
    assert not any(name.split(".")[0] in ("tensorflow", "keras") for name in sys.modules)


def test_edge_modules_import_nothing_heavy():
    code = ("import sys, edge.pi.classifier, edge.pi.classify, edge.pi.image, edge.pi.read, edge.pi.reader, edge.pi.serve, edge.pi.bench, edge.pi.camera; "
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'pandas', 'competition', 'cv2')]; "
            "print(heavy); assert not heavy")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
