"""The data: every file the trainer reads (reading.py), the competition's CSVs checked (digits.py),
train/validation splits (splits.py)."""
