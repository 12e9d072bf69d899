"""The search as a user runs it: killed and resumed, and spread over a chief and two workers."""

import csv
import os
import signal
import subprocess
import sys
import time

from test_faults import one_error_line

from competition.config import ROOT


def tune_command(demo_dir, models_dir, *extra):
    return [sys.executable, "-m", "competition.tune", "--data_dir", str(demo_dir), "--models_dir", str(models_dir),
            "--threads", "1", *extra]


def read_results(folder):
    path = folder / "results.csv"
    if not path.is_file():
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def test_killed_search_resumes_where_it_was(demo_dir, tmp_path):
    # Hyperband, max_epochs 2, factor 2: 5 trials, 7 epochs in all.
    command = tune_command(demo_dir, tmp_path, "--max_epochs", "2", "--factor", "2")
    folder = tmp_path / "search-hyperband"
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while not read_results(folder) and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.2)
        os.kill(first.pid, signal.SIGKILL)  # as hard as a crash: mid-way through the next trial
        first.wait()
    before = read_results(folder)
    assert 1 <= len(before) < 5, (tmp_path / "first.log").read_text()[-2000:]

    second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming, {len(before)} trials already completed" in second.stdout
    after = read_results(folder)
    assert len(after) == 5 and all(row["status"] == "COMPLETED" for row in after)
    # Finished trials were kept, not rerun: same results, and the rerun ran only the rest.
    assert after[: len(before)] == before
    assert second.stdout.count(" done: ") == 5 - len(before)
    assert (folder / "best_hyperparameters.json").is_file()


def test_settings_of_an_existing_search_must_match(demo_dir, tmp_path):
    (tmp_path / "search-hyperband").mkdir()
    (tmp_path / "search-hyperband" / "search_config.json").write_text('{"tuner": "hyperband", "max_epochs": 40}')
    result = subprocess.run(tune_command(demo_dir, tmp_path, "--max_epochs", "2"), cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    one_error_line(result.stderr, str(tmp_path / "search-hyperband"), "other settings (max_epochs 40 -> 2", "--fresh")


def test_chief_and_two_workers_share_one_search(demo_dir, tmp_path):
    command = tune_command(demo_dir, tmp_path, "--tuner", "random", "--max_trials", "4", "--max_epochs", "1",
                           "--jobs", "2")  # the Makefile's --workers, named as in cv and ensemble
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    folder = tmp_path / "search-random"
    logs = "".join(p.read_text()[-1500:] for p in folder.glob("worker-*.log"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:] + logs
    assert "cluster: chief + 2 workers" in result.stdout
    rows = read_results(folder)  # written by the chief, which holds the oracle
    assert len(rows) == 4 and all(row["status"] == "COMPLETED" for row in rows)
    assert {row["tuner"] for row in rows} == {"tuner0", "tuner1"}  # both workers ran trials
    assert (folder / "worker-0.log").is_file() and (folder / "worker-1.log").is_file()
