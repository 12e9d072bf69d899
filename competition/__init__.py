"""Kaggle "Digit Recognizer": the report's training, tuning and submission as a package.

Importing it does nothing: each command calls competition.startup.begin() before TensorFlow loads.
"""
