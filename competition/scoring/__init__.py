"""Scoring: a run's probabilities for an image set, cached (probabilities.py), and the
classification metrics (metrics.py)."""
