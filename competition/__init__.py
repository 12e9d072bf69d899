"""Kaggle "Digit Recognizer": the report's training, tuning and submission as a package."""

import os

from competition import quiet_tensorflow

# Keras 3 on TensorFlow (the input pipeline is tf.data); TensorFlow's C++ warnings off, its errors on.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
quiet_tensorflow.install()
