"""The TensorFlow side of the edge, run beside the trainer, never on the Pi: a run's model to
TFLite (tflite.py, make tflite) and each variant checked against it (check.py, make check-edge)."""
