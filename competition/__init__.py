"""Kaggle "Digit Recognizer": the report's training, tuning and submission as a package."""

import os

# Keras 3 on TensorFlow (the input pipeline is tf.data); quiet TensorFlow's C++ start-up chatter.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
