"""What the trainer (competition/) and the Pi runtime (edge/pi/) share, with numpy alone: how a command
fails (errors.py), files written whole (writing.py) and the competition's CSV format (digits_csv.py)."""
