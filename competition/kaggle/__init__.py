"""Kaggle: the project's one way to it (client.py)."""
