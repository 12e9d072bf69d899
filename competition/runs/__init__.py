"""Run folders by job: what a run folder holds (layout.py), building one whole and the locks
(building.py), work that resumes (resume.py), which run a command takes (choosing.py), the console
and log lines (console.py), a run's rows (rows.py)."""
