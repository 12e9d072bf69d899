"""The fault suite: corrupt inputs, unwritable and full folders, kills and concurrent commands.

Every case must end the way issue 23 asks: exit code 2 (130 on Ctrl-C), one line `error: ...` on
stderr naming the file and what was wrong, no traceback, and nothing written; after a kill, no
half-written run is visible, what had finished is kept and the next command works.

The table of corrupt files runs each command's main(argv) in this process: an exception that
escaped main would fail the test, so a returned 2 and its stderr prove the one-line error. A few
cases run as real subprocesses too, to see the exit code and stderr exactly as a shell does.
"""

import contextlib
import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from common.errors import ConfigError, DataError, exit_status
from common.writing import write_text
from competition import cv, ensemble, get_data, submit, train, tune
from competition import predict as submission
from competition.config import ROOT
from competition.data import digits as data
from competition.data.digits import DEMO_MARKER
from competition.data.reading import load_model, read_json
from competition.runs.building import TMP_PREFIX, exclusive, remove_killed_runs, run_folder
from competition.runs.layout import HISTORY_FILE, METRICS_FILE, MODEL_FILE

FAST = ["--epochs", "1", "--batch_size", "128", "--threads", "1"]
ROWS = 60  # rows kept of the demo CSVs in corrupted copies: enough to read, quick to write


# Corruptions: each turns a good CSV's bytes into the file a user might really have.
def random_bytes(n: int) -> bytes:  # the same every run: a case must not pass by luck
    return random.Random(0).randbytes(n)


def cut_gzip(text: bytes) -> bytes:  # a download cut short
    packed = gzip.compress(text)
    return packed[: len(packed) // 2]


def semicolons(text: bytes) -> bytes:  # a spreadsheet's export in a comma-decimal locale
    return text.replace(b",", b";")


def cut_mid_row(text: bytes) -> bytes:  # a plain CSV cut short
    return text[: len(text) * 2 // 3]


CORRUPT_CSV = {  # name: (file name, bytes from the good CSV's, words the message must hold)
    "gz cut short": (".gz", cut_gzip, "cut short or corrupt"),
    "gz that is not gzip": (".gz", lambda text: text, "not a gzip file"),
    "semicolon separators": ("", semicolons, "separated by semicolons"),
    "random bytes": ("", lambda text: random_bytes(5000), "not a text file"),
    "empty": ("", lambda text: b"", "the file is empty"),
    "cut mid-row": ("", cut_mid_row, "missing value"),
}


def head(path: Path, rows: int = ROWS) -> bytes:
    return b"".join(path.read_bytes().splitlines(keepends=True)[: rows + 1])


def data_with(folder: Path, demo_dir: Path, name: str, kind: str, demo: bool = True) -> Path:
    """A data folder of short demo CSVs in which `name` (train.csv or test.csv) is corrupted as `kind`;
    the path of the corrupted file."""
    folder.mkdir(parents=True, exist_ok=True)
    for good in ("train.csv", "test.csv"):
        if good != name:
            (folder / good).write_bytes(head(demo_dir / good))
    if demo:
        shutil.copy(demo_dir / DEMO_MARKER, folder)
    suffix, corrupt, _ = CORRUPT_CSV[kind]
    bad = folder / f"{name}{suffix}"
    bad.write_bytes(corrupt(head(demo_dir / name)))
    return bad


def cut_zip(folder: Path, demo_dir: Path) -> Path:
    """The competition's zip, cut short, as the only copy of the data."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "digit-recognizer.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ("train.csv", "test.csv"):
            zf.writestr(name, head(demo_dir / name))
    archive.write_bytes(archive.read_bytes()[:-200])
    return archive


def one_error_line(err: str, *words: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def usage_error_line(err: str, *words: str) -> str:
    """A flag refused by argparse (exit code 2): its usage, then one line `PROG: error: ...` holding
    words, and no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert lines and lines[0].startswith("usage: ") and [line for line in lines if "error:" in line] == lines[-1:], err
    assert ": error: " in lines[-1], err
    for word in words:
        assert word in lines[-1], (word, lines[-1])
    return lines[-1]


def last_error_line(err: str, *words: str) -> str:
    """A failure after progress on stderr (a retry's notes): its last line is the one `error: ...`,
    holding words, and no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert lines and [line for line in lines if line.startswith("error: ")] == lines[-1:], err
    for word in words:
        assert word in lines[-1], (word, lines[-1])
    return lines[-1]


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def run_copy(trained_run, tmp_path):
    """A copy of the session's trained run, alone in a models folder, to break as a case needs."""
    return Path(shutil.copytree(trained_run, tmp_path / "models" / trained_run.name,
                                ignore=shutil.ignore_patterns("predictions")))


# --- every kind of corrupt CSV, for every command that reads it ---------------------------------

@pytest.mark.parametrize("kind", CORRUPT_CSV)
def test_train_refuses_a_corrupt_train_csv(kind, demo_dir, tmp_path, capsys):
    bad = data_with(tmp_path / "data", demo_dir, "train.csv", kind)
    models = tmp_path / "models"
    code = train.main(["--data_dir", str(bad.parent), "--models_dir", str(models), *FAST])
    assert code == 2
    one_error_line(capsys.readouterr().err, str(bad), CORRUPT_CSV[kind][2])
    assert listing(models) == [], "nothing written, no .tmp folder left"


@pytest.mark.parametrize("kind", CORRUPT_CSV)
def test_submission_refuses_a_corrupt_test_csv(kind, run_copy, demo_dir, tmp_path, capsys):
    bad = data_with(tmp_path / "data", demo_dir, "test.csv", kind)
    out = tmp_path / "out" / "submission.csv"
    code = submission.main(["--data_dir", str(bad.parent), "--models_dir", str(run_copy.parent), "--out", str(out)])
    assert code == 2
    one_error_line(capsys.readouterr().err, str(bad), CORRUPT_CSV[kind][2])
    assert not out.parent.exists()


def kaggle_ready_run(models: Path) -> Path:
    """A run folder as `make submit` finds it: trained on the competition's data, its submission made."""
    folder = models / "20260101-000000-report"
    folder.mkdir(parents=True)
    (folder / MODEL_FILE).write_bytes(b"")  # not read by submit
    (folder / "metrics.json").write_text(json.dumps({"demo_data": False, "validation": {"accuracy": 0.99}}))
    return folder


@pytest.mark.parametrize("kind", CORRUPT_CSV)
def test_submit_refuses_a_corrupt_test_csv_before_sending(kind, demo_dir, tmp_path, capsys):
    bad = data_with(tmp_path / "data", demo_dir, "test.csv", kind, demo=False)
    folder = kaggle_ready_run(tmp_path / "models")
    (folder / "submission.csv").write_text("ImageId,Label\n" + "".join(f"{i},0\n" for i in range(1, ROWS + 1)))
    code = submit.main(["--data_dir", str(bad.parent), "--models_dir", str(folder.parent)])
    assert code == 2
    one_error_line(capsys.readouterr().err, str(bad), CORRUPT_CSV[kind][2])


@pytest.mark.parametrize("kind", [k for k in CORRUPT_CSV if not CORRUPT_CSV[k][0]])
def test_submit_refuses_a_corrupt_submission_csv(kind, demo_dir, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "test.csv").write_bytes(head(demo_dir / "test.csv"))
    folder = kaggle_ready_run(tmp_path / "models")
    good = b"ImageId,Label\n" + b"".join(b"%d,0\n" % i for i in range(1, ROWS + 1))
    (folder / "submission.csv").write_bytes(CORRUPT_CSV[kind][1](good))
    code = submit.main(["--data_dir", str(data), "--models_dir", str(folder.parent)])
    assert code == 2
    # a cut row reads as a short file or a missing label, whichever the cut gives
    words = [str(folder / "submission.csv")] + ([] if kind == "cut mid-row" else [CORRUPT_CSV[kind][2]])
    one_error_line(capsys.readouterr().err, *words)


@pytest.mark.parametrize("kind", ["gz cut short", "gz that is not gzip", "semicolon separators"])
def test_get_data_names_the_users_file_not_its_staging_copy(kind, demo_dir, tmp_path, capsys):
    bad = data_with(tmp_path / "source", demo_dir, "train.csv", kind)
    data = tmp_path / "data"
    code = get_data.main(["--data_dir", str(data), "--source", str(bad.parent)])
    assert code == 2
    line = one_error_line(capsys.readouterr().err, str(bad), CORRUPT_CSV[kind][2])
    assert get_data.STAGING_PREFIX not in line
    assert listing(data) == [], "data/ as it was: nothing staged is left"


def test_a_cut_zip_is_refused_by_train_and_get_data(demo_dir, tmp_path, capsys):
    archive = cut_zip(tmp_path / "data", demo_dir)
    assert train.main(["--data_dir", str(archive.parent), "--models_dir", str(tmp_path / "models"), *FAST]) == 2
    one_error_line(capsys.readouterr().err, str(archive), "cut short or corrupt")
    assert get_data.main(["--data_dir", str(tmp_path / "out"), "--source", str(archive)]) == 2
    one_error_line(capsys.readouterr().err, str(archive), "not a readable zip")
    assert listing(tmp_path / "models") == [] and listing(tmp_path / "out") == []


def test_a_semicolon_header_is_named_briefly(demo_dir, tmp_path):
    bad = data_with(tmp_path, demo_dir, "train.csv", "semicolon separators")
    with pytest.raises(DataError) as info:
        data.load_train(bad.parent)
    assert "separated by semicolons (';'); expected commas" in str(info.value)
    assert len(str(info.value)) < 400, "not the whole 6.9 KB header"


# Reads that bypass competition/data/reading.py, each to be moved onto it; a new one fails this test.
DIRECT_READS = {
    "keras.models.load_model(": {"competition/report/build.py"},
    "pd.read_csv(": {"competition/report/build.py", "competition/report/optional.py"},
}
OWN_EXIT_PATH: set[str] = set()  # commands allowed their own exit path: none


def sources(*folders: str) -> dict[str, str]:
    return {str(path.relative_to(ROOT)): path.read_text() for folder in folders for path in (ROOT / folder).rglob("*.py")
            if "tests" not in path.parts}


@pytest.mark.parametrize("call", DIRECT_READS)
def test_files_are_read_through_the_one_reader(call):
    found = {name for name, text in sources("competition", "edge").items() if call in text} - {"competition/data/reading.py"}
    assert found <= DIRECT_READS[call], f"read {call[:-1]} through competition.data.reading instead: {found - DIRECT_READS[call]}"


def test_every_command_ends_through_the_one_exit_path():
    commands = {name: text for name, text in sources("competition").items() if "def main(" in text}
    without = {name for name, text in commands.items() if "exit_status(" not in text} - OWN_EXIT_PATH
    assert len(commands) >= 10 and not without, f"return common.errors.exit_status(...) from main: {without}"


# --- corrupt models and run-folder files --------------------------------------------------------

CORRUPT_MODEL = {  # name: (bytes from the good model.keras's, words the message must hold)
    "random bytes": (lambda good: random_bytes(20_000), "not a Keras model file"),
    "cut in half": (lambda good: good[: len(good) // 2], "not a Keras model file"),
    "empty": (lambda good: b"", "not a Keras model file"),
    "a zip of something else": (lambda good: zip_of({"notes.txt": b"hello"}), "not a Keras model"),
    "a flipped byte": (lambda good: flip_middle_byte(good), "corrupt"),
}


def zip_of(members: dict[str, bytes]) -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buffer.getvalue()


def flip_middle_byte(good: bytes) -> bytes:
    with zipfile.ZipFile(__import__("io").BytesIO(good)) as zf:
        info = max(zf.infolist(), key=lambda i: i.compress_size)  # inside the weights
    middle = info.header_offset + len(info.filename) + 30 + info.compress_size // 2
    return good[:middle] + bytes([good[middle] ^ 0xFF]) + good[middle + 1 :]


@pytest.mark.parametrize("kind", CORRUPT_MODEL)
def test_submission_refuses_a_corrupt_model(kind, run_copy, demo_dir, tmp_path, capsys):
    model = run_copy / MODEL_FILE
    model.write_bytes(CORRUPT_MODEL[kind][0](model.read_bytes()))
    out = tmp_path / "submission.csv"
    code = submission.main(["--data_dir", str(demo_dir), "--models_dir", str(run_copy.parent), "--out", str(out)])
    assert code == 2
    line = one_error_line(capsys.readouterr().err, str(model), CORRUPT_MODEL[kind][1])
    assert "File not found" not in line
    assert not out.exists() and not (run_copy / "predictions").exists()


def test_load_model_reads_a_sound_model_and_says_when_there_is_none(trained_run, tmp_path):
    assert load_model(trained_run / MODEL_FILE).count_params() > 0
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_model(tmp_path / MODEL_FILE)


@pytest.mark.parametrize("name", ["metrics.json", "ensemble.json"])
def test_submission_refuses_a_cut_json_of_the_run(name, run_copy, demo_dir, tmp_path, capsys):
    path = run_copy / name
    text = json.dumps({"members": ["a", "b"]} if name == "ensemble.json" else {"validation": {"accuracy": 0.5}})
    path.write_text(text[: len(text) // 2])
    if name == "ensemble.json":
        (run_copy / MODEL_FILE).unlink()  # an ensemble folder holds members, not a model
    code = submission.main(["--data_dir", str(demo_dir), "--models_dir", str(run_copy.parent), "--run",
                            str(run_copy), "--out", str(tmp_path / "s.csv")])
    assert code == 2
    one_error_line(capsys.readouterr().err, str(path), "not valid JSON")
    assert not (tmp_path / "s.csv").exists()


@pytest.mark.parametrize("command", ["cv", "ensemble"])
def test_cv_and_ensemble_refuse_a_cut_settings_file(command, demo_dir, tmp_path, capsys):
    folder = tmp_path / f"{command}-x"
    folder.mkdir()
    (folder / f"{command}_config.json").write_text('{"k": 2, "epo')
    main = cv.main if command == "cv" else ensemble.main
    code = main(["--k", "2", "--name", "x", "--data_dir", str(demo_dir), "--models_dir", str(tmp_path), *FAST])
    assert code == 2
    one_error_line(capsys.readouterr().err, str(folder / f"{command}_config.json"), "not valid JSON")
    assert listing(folder) == [f"{command}_config.json"]


def test_read_json_names_a_missing_key(tmp_path):
    (tmp_path / "ensemble.json").write_text('{"config": {}}')
    with pytest.raises(ValueError, match="ensemble.json: no 'members' in it"):
        read_json(tmp_path / "ensemble.json", keys=("members",))


# --- keras-tuner's state ----------------------------------------------------------------------

def test_keras_tuner_state_is_written_whole(tmp_path, monkeypatch):
    import keras_tuner as kt

    from competition.training import tuning

    tuning.patch_keras_tuner()  # as `make tune` does at start-up

    path = tmp_path / "trials" / "oracle.json"
    kt.src.utils.save_json(str(path), {"ongoing_trials": {}, "n": 1})
    assert json.loads(path.read_text())["n"] == 1

    def killed_mid_write(self, text, *args, **kwargs):  # as a kill at that point leaves it
        Path.write_bytes(self, text[:10].encode())
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        kt.src.utils.save_json(str(path), {"ongoing_trials": {}, "n": 2})
    monkeypatch.undo()
    assert json.loads(path.read_text())["n"] == 1, "the last good copy, whole"
    assert listing(path.parent) == ["oracle.json"]


def test_tune_refuses_an_unreadable_oracle_json_naming_it(demo_dir, tmp_path, capsys):
    oracle = tmp_path / "search-random" / "trials" / "oracle.json"
    oracle.parent.mkdir(parents=True)
    oracle.write_text('{"ongoing_trials": {"0')  # as keras-tuner's own writer left it after a kill
    code = tune.main(["--tuner", "random", "--max_trials", "1", "--max_epochs", "1", "--data_dir", str(demo_dir),
                      "--models_dir", str(tmp_path)])
    assert code == 2
    one_error_line(capsys.readouterr().err, str(oracle), "not valid JSON", "--fresh")


# --- output folders that cannot take the output -------------------------------------------------

@pytest.fixture
def tmpfs(tmp_path):
    """A mount of `size`: a small disk that fills, or one remounted read-only. Needs root."""
    mounted = []

    def mount(size: str, read_only: bool = False) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root")
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                                capture_output=True, text=True)
        if result.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounted.append(point)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_train_refuses_a_models_folder_that_is_a_file(demo_dir, tmp_path, capsys):
    models = tmp_path / "models"
    models.write_text("")
    assert train.main(["--data_dir", str(demo_dir), "--models_dir", str(models), *FAST]) == 2
    one_error_line(capsys.readouterr().err, str(models), "a file, not a folder")
    assert train.main(["--data_dir", str(demo_dir), "--models_dir", str(models / "sub"), *FAST]) == 2
    one_error_line(capsys.readouterr().err, str(models))


def test_train_refuses_a_read_only_models_folder(tmpfs, demo_dir, capsys):
    models = tmpfs("1m", read_only=True)
    assert train.main(["--data_dir", str(demo_dir), "--models_dir", str(models), *FAST]) == 2
    one_error_line(capsys.readouterr().err, str(models), "read-only")


def test_train_refuses_a_full_disk_before_training(tmpfs, demo_dir, capsys):
    models = tmpfs("1m")
    assert train.main(["--data_dir", str(demo_dir), "--models_dir", str(models), *FAST]) == 2
    line = one_error_line(capsys.readouterr().err, str(models), "MB free, this run needs about")
    assert "train:" not in capsys.readouterr().out, line  # refused before the first epoch
    assert listing(models) == []


def test_a_disk_that_fills_during_training_is_one_line_and_leaves_nothing(tmpfs, demo_dir, monkeypatch, capsys):
    models = tmpfs("2m")  # room for the logs, not for the model
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(2**40, 0, 2**40))
    assert train.main(["--data_dir", str(demo_dir), "--models_dir", str(models), *FAST]) == 2
    one_error_line(capsys.readouterr().err, f"{models}: no space left")
    assert listing(models) == [], "the half-written run is removed"


def test_submission_to_a_full_disk_leaves_no_partial_file(tmpfs, run_copy, demo_dir, capsys):
    disk = tmpfs("64k")
    with contextlib.suppress(OSError), open(disk / "filler", "wb", buffering=0) as filler:
        while True:
            filler.write(b"x" * 4096)
    out = disk / "submission.csv"
    code = submission.main(["--data_dir", str(demo_dir), "--models_dir", str(run_copy.parent), "--out", str(out)])
    assert code == 2
    one_error_line(capsys.readouterr().err, str(out), "no space left")
    assert listing(disk) == ["filler"]


def test_submission_out_under_a_file(run_copy, demo_dir, tmp_path, capsys):
    (tmp_path / "a_file").write_text("")
    out = tmp_path / "a_file" / "submission.csv"
    code = submission.main(["--data_dir", str(demo_dir), "--models_dir", str(run_copy.parent), "--out", str(out)])
    assert code == 2
    one_error_line(capsys.readouterr().err, str(tmp_path / "a_file"), "a file is in the way")


# --- the one exit path --------------------------------------------------------------------------

def test_exit_status_maps_errors_to_one_line_and_codes(capsys):
    def raising(err):
        def work():
            raise err
        return work

    assert exit_status(raising(KeyboardInterrupt()), interrupted="no run folder was written") == 130
    assert capsys.readouterr().err == "interrupted: no run folder was written\n"
    assert exit_status(raising(PermissionError(13, "Permission denied", "/x/models"))) == 2
    assert capsys.readouterr().err == "error: /x/models: Permission denied\n"
    assert exit_status(raising(submit.KaggleError("sign in: refused"))) == 1
    assert capsys.readouterr().err == "error: sign in: refused\n"
    assert exit_status(lambda: 3) == 3 and exit_status(lambda: Path(".")) == 0
    with pytest.raises(PermissionError):
        exit_status(raising(PermissionError(13, "Permission denied", "/x")), debug=True)
    # The project's own errors are the user's to fix: one line. Anything else is a bug, whose
    # traceback must show, even when it is a ValueError (numpy's, Keras') that reads like bad input.
    assert exit_status(raising(ConfigError("--epochs and --batch_size must be at least 1"))) == 2
    assert capsys.readouterr().err == "error: --epochs and --batch_size must be at least 1\n"
    with pytest.raises(ValueError, match="operands could not be broadcast"):
        exit_status(raising(ValueError("operands could not be broadcast together with shapes (3,) (4,)")))
    with pytest.raises(KeyError):
        exit_status(raising(KeyError("val_loss")))


def test_every_error_class_of_the_project_derives_from_one_base():
    import ast

    from common.errors import ProjectError

    found = {}
    for path in [*ROOT.glob("common/*.py"), *ROOT.glob("competition/**/*.py"), *ROOT.glob("edge/pi/*.py"),
                 *ROOT.glob("edge/export/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                found[node.name] = path
    assert found, "no error classes found: the search is wrong"
    for name, path in found.items():
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        cls = getattr(__import__(module, fromlist=[name]), name)
        assert issubclass(cls, ProjectError), f"{module}.{name} is not a ProjectError"


def test_debug_shows_the_traceback(demo_dir, tmp_path):
    bad = data_with(tmp_path / "data", demo_dir, "test.csv", "gz cut short")
    command = [sys.executable, "-m", "competition.predict", "--data_dir", str(bad.parent),
               "--models_dir", str(tmp_path / "models")]
    (tmp_path / "models" / "20260101-000000-a").mkdir(parents=True)
    (tmp_path / "models" / "20260101-000000-a" / MODEL_FILE).write_bytes(b"")
    plain = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 2
    one_error_line(plain.stderr, str(bad), "cut short")
    debug = subprocess.run([*command, "--debug"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "DataError" in debug.stderr


# --- kills: nothing half-written is visible, nothing finished is lost, the next command works ----

def start(command: list[str], log: Path) -> subprocess.Popen:
    with open(log, "w") as f:
        return subprocess.Popen(command, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)


def wait_for(process: subprocess.Popen, ready, log: Path, timeout_s: float = 240) -> None:
    """Return once ready() is true, while process still runs."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert process.poll() is None, f"it ended before the kill point:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)


def kill_when(process: subprocess.Popen, ready, log: Path) -> None:
    """SIGKILL process as soon as ready() is true."""
    wait_for(process, ready, log)
    process.send_signal(signal.SIGKILL)
    process.wait()


def tmp_runs(folder: Path) -> list[Path]:
    return [p for p in folder.glob(f"{TMP_PREFIX}*") if p.is_dir()] if folder.is_dir() else []


def visible(folder: Path) -> list[str]:
    return [name for name in listing(folder) if not name.startswith(".")]


@pytest.mark.parametrize("point", ["started", "model saved"])
def test_killed_training_leaves_no_run_and_its_litter_is_removed(point, demo_dir, tmp_path, capsys):
    models = tmp_path / "models"
    command = [sys.executable, "-m", "competition.train", "--data_dir", str(demo_dir), "--models_dir", str(models),
               "--name", "killed", *FAST]
    marker = (lambda: tmp_runs(models)) if point == "started" else \
        (lambda: any((t / MODEL_FILE).is_file() for t in tmp_runs(models)))
    kill_when(start(command, tmp_path / "train.log"), marker, tmp_path / "train.log")
    assert visible(models) == [] and len(tmp_runs(models)) == 1, "no visible run; the hidden one is litter"

    # The next command that looks removes it, and works.
    code = train.main(["--data_dir", str(demo_dir), "--models_dir", str(models), "--name", "next", *FAST])
    assert code == 0
    assert "left by a run that was killed" in capsys.readouterr().err
    assert tmp_runs(models) == [] and [name.endswith("-next") for name in visible(models)] == [True]
    assert not [p for p in models.iterdir() if p.name.endswith(".lock")]


def test_a_run_in_progress_is_not_taken_for_litter(tmp_path, capsys):
    with run_folder(tmp_path, "20260101-000000-live") as folder:
        assert remove_killed_runs(tmp_path) == [] and folder.is_dir()
    dead = tmp_path / f"{TMP_PREFIX}20260101-000000-dead"  # its lock file, but no process holds it: killed
    dead.mkdir()
    dead.with_name(dead.name + ".lock").write_text("")
    old = tmp_path / f"{TMP_PREFIX}20260101-000000-old"  # no lock file: an older version's, maybe running
    old.mkdir()
    assert remove_killed_runs(tmp_path) == [dead]
    assert listing(tmp_path) == [old.name, "20260101-000000-live"]
    assert f"{old} is an unfinished run without a lock" in capsys.readouterr().err


def test_a_killed_cv_keeps_its_finished_folds_and_refuses_a_second_one_meanwhile(demo_dir, tmp_path, capsys):
    flags = ["--k", "2", "--name", "k", "--data_dir", str(demo_dir), "--models_dir", str(tmp_path), *FAST]
    folder = tmp_path / "cv-k"
    first = start([sys.executable, "-m", "competition.cv", *flags], tmp_path / "cv.log")

    wait_for(first, lambda: visible_runs(folder) and tmp_runs(folder), tmp_path / "cv.log")  # fold 2 begun
    # While it runs, a second CV of the same name is refused, naming the first.
    assert cv.main(flags) == 2
    one_error_line(capsys.readouterr().err, str(folder), "in use by pid", str(first.pid))
    kill_when(first, lambda: True, tmp_path / "cv.log")
    finished = visible_runs(folder)
    assert [p.name.endswith("-fold-1") for p in finished] == [True]

    assert cv.main(flags) == 0
    captured = capsys.readouterr()
    assert f"fold-1: already trained, reusing {finished[0].name}" in captured.out
    assert "left by a run that was killed" in captured.err
    assert tmp_runs(folder) == [] and len(visible_runs(folder)) == 2 and (folder / "cv.json").is_file()
    assert not list(tmp_path.glob("*.lock")) and not list(folder.glob("*.lock"))


def test_a_killed_cvs_models_end_with_it_and_resume_from_their_epochs(demo_dir, tmp_path, capsys):
    flags = ["--k", "2", "--name", "k", "--data_dir", str(demo_dir), "--models_dir", str(tmp_path), "--jobs", "2",
             "--epochs", "200", "--batch_size", "128", "--threads", "1", "--no-early_stopping"]
    folder = tmp_path / "cv-k"
    epochs = lambda: sorted(json.loads(p.read_text())["epoch"]  # noqa: E731
                            for p in folder.glob(".resume-*/training_metadata.json") if p.stat().st_size)
    first = start([sys.executable, "-m", "competition.cv", *flags], tmp_path / "cv.log")
    wait_for(first, lambda: len(epochs()) == 2, tmp_path / "cv.log")  # both folds past an epoch
    kill_when(first, lambda: True, tmp_path / "cv.log")
    # The folds' processes end with the command (their run locks free), long before 200 epochs would.
    deadline = time.monotonic() + 60
    while len(remove_killed_runs(folder)) < 2 and tmp_runs(folder):
        assert time.monotonic() < deadline, "a fold's process trains on after its command was killed"
        time.sleep(0.2)
    assert tmp_runs(folder) == [] and visible_runs(folder) == []
    assert len(epochs()) == 2 and min(epochs()) >= 1, "each fold's finished epochs are kept to resume from"


def visible_runs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and (p / MODEL_FILE).is_file()) \
        if folder.is_dir() else []


@pytest.mark.parametrize("command", ["ensemble", "tune"])
def test_a_second_command_on_a_held_folder_is_refused(command, demo_dir, tmp_path, capsys):
    folder = tmp_path / ("ensemble-x" if command == "ensemble" else "search-x")
    flags = ["--data_dir", str(demo_dir), "--models_dir", str(tmp_path), "--name", "x", "--max_epochs" if
             command == "tune" else "--epochs", "1"]
    with exclusive(folder, "the first"):
        code = ensemble.main(["--k", "1", *flags]) if command == "ensemble" else tune.main(flags)
    assert code == 2
    one_error_line(capsys.readouterr().err, str(folder), "in use by pid", str(os.getpid()))
    assert not folder.exists()


def test_a_submission_while_an_ensemble_trains_a_member_works_and_leaves_it_alone(trained_run, demo_dir, tmp_path,
                                                                                   capsys):
    folder = tmp_path / "ensemble-x"
    member = shutil.copytree(trained_run, folder / "20260101-000000-member-1", ignore=shutil.ignore_patterns("predictions"))
    (folder / "ensemble.json").write_text(json.dumps({"members": [member.name]}))
    with run_folder(folder, "20260101-000001-member-2") as training:  # the next member, in progress
        code = submission.main(["--data_dir", str(demo_dir), "--models_dir", str(tmp_path), "--run", str(folder),
                                "--out", str(tmp_path / "s.csv")])
        assert code == 0 and training.is_dir(), capsys.readouterr().err
    assert len((tmp_path / "s.csv").read_text().splitlines()) == 1 + 359


# `python -m competition.predict` as a shell runs it, paused inside its write of the submission's temporary
# file: mid-write (half the text on disk), or with the file written and fsynced but not yet renamed.
# `paused` is written once it waits there, for the test to kill it.
PAUSED_WRITER = """
import os, pathlib, runpy, sys, time

point, paused = sys.argv[1], pathlib.Path(sys.argv[2])
del sys.argv[1:3]

def temporary(path):
    return os.path.basename(path).startswith(".submission.csv.") and str(path).endswith(".tmp")

def wait_to_be_killed():
    paused.write_text("paused")
    time.sleep(600)

if point == "mid-write":
    write_text = pathlib.Path.write_text

    def half_then_wait(self, text, *args, **kwargs):
        if not temporary(self):
            return write_text(self, text, *args, **kwargs)
        with open(self, "w") as f:
            f.write(text[: len(text) // 2])
            f.flush()
            wait_to_be_killed()

    pathlib.Path.write_text = half_then_wait
else:
    replace = os.replace

    def wait_then_replace(src, dst, *args, **kwargs):
        if temporary(src):
            wait_to_be_killed()
        return replace(src, dst, *args, **kwargs)

    os.replace = wait_then_replace
sys.argv[0] = "competition.predict"
runpy.run_module("competition.predict", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("earlier", [True, False], ids=["an earlier file", "no earlier file"])
@pytest.mark.parametrize("point", ["mid-write", "before the rename"])
def test_killed_submission_leaves_the_old_file_or_none_and_the_next_one_works(point, earlier, run_copy, demo_dir,
                                                                              tmp_path, capsys):
    """common/writing.py's promise: a writer killed while its temporary file exists leaves the old file
    (byte for byte) or none, never the temporary's bytes under the target's name; the temporary file it
    leaves (.submission.csv.<pid>.tmp) is removed by the next write of that file."""
    out_dir = tmp_path / "out"
    out = out_dir / "submission.csv"
    old = b"ImageId,Label\n1,7\n"  # not the new file: 1 row, not 359
    if earlier:
        write_text(out, old.decode())
    paused = tmp_path / "paused"
    flags = ["--data_dir", str(demo_dir), "--models_dir", str(run_copy.parent), "--out", str(out)]
    log = tmp_path / "s.log"
    writer = start([sys.executable, "-c", PAUSED_WRITER, point, str(paused), *flags], log)
    temporary = out_dir / f".submission.csv.{writer.pid}.tmp"
    try:
        wait_for(writer, lambda: paused.exists() and temporary.exists(), log)
    finally:  # killed there, or wherever a failed wait left it
        writer.kill()
        writer.wait()
    assert writer.returncode == -signal.SIGKILL

    left = temporary.read_text()  # killed while it existed: the new text, half or whole
    assert left.startswith("ImageId,Label\n") and (left.count("\n") < 1 + 359 if point == "mid-write" else
                                                   left.count("\n") == 1 + 359), left[-200:]
    if earlier:
        assert out.read_bytes() == old, "the old file, byte for byte"
    else:
        assert not out.exists(), "no file rather than part of one"
    assert listing(out_dir) == sorted(["submission.csv"] * earlier + [temporary.name])

    # The next write of the file removes the killed one's temporary file, and writes the whole new one.
    assert submission.main(flags) == 0, capsys.readouterr().err
    lines = out.read_text().splitlines()
    assert lines[0] == "ImageId,Label" and [row.split(",")[0] for row in lines[1:]] == [str(i) for i in range(1, 360)]
    assert listing(out_dir) == ["submission.csv"], "no temporary file left"


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    litter = tmp_path / f".metrics.json.{dead.stdout.strip()}.tmp"
    litter.write_text('{"half')
    write_text(tmp_path / "metrics.json", "{}")
    assert listing(tmp_path) == ["metrics.json"]


def test_a_write_is_on_disk_before_its_rename_and_the_rename_too(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def fsync(fd):  # which path each fsync was of, read back from the descriptor
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))  # Linux, as every machine of the project
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    write_text(tmp_path / "metrics.json", "{}")
    assert len(synced) == 2 and synced[1] == tmp_path.resolve()  # then the folder: the rename
    assert synced[0].name.startswith(".metrics.json.") and synced[0].name.endswith(".tmp")  # the bytes, first
    assert (tmp_path / "metrics.json").read_text() == "{}"


def test_a_killed_fetch_leaves_data_as_it_was_and_its_staging_is_removed(demo_dir, tmp_path, capsys):
    data = tmp_path / "data"
    stale = data / f"{get_data.STAGING_PREFIX}999999999-abc"
    stale.mkdir(parents=True)
    assert get_data.main(["--data_dir", str(data), "--source", str(demo_dir)]) == 0
    assert not stale.exists() and "left by a fetch that was killed" in capsys.readouterr().out


def test_killed_search_as_its_first_trial_starts_resumes_and_finishes(demo_dir, tmp_path, capsys):
    flags = ["--tuner", "random", "--max_trials", "2", "--max_epochs", "1", "--threads", "1", "--data_dir",
             str(demo_dir), "--models_dir", str(tmp_path)]
    folder = tmp_path / "search-random"
    first = start([sys.executable, "-m", "competition.tune", *flags], tmp_path / "tune.log")
    kill_when(first, lambda: list(folder.glob("trials/trial_*/trial.json")), tmp_path / "tune.log")
    for path in folder.glob("trials/**/*.json"):  # keras-tuner's state, whole wherever the kill fell
        json.loads(path.read_text())

    assert tune.main(flags) == 0
    results = (folder / "results.csv").read_text().splitlines()
    assert len(results) == 1 + 2 and all(",COMPLETED" in row for row in results[1:])
    assert (folder / "best_hyperparameters.json").is_file()


def test_read_csv_passes_pandas_options(tmp_path):
    from competition.data.reading import read_csv

    (tmp_path / "results.csv").write_text("trial,val_loss\n0001,0.5\n")
    assert read_csv(tmp_path / "results.csv", dtype={"trial": str})["trial"].tolist() == ["0001"]


def test_a_training_killed_in_an_epoch_resumes_from_its_last_finished_one(demo_dir, tmp_path, capsys):
    models = tmp_path / "models"
    flags = ["--data_dir", str(demo_dir), "--models_dir", str(models), "--name", "long", "--epochs", "4",
             "--batch_size", "16", "--threads", "1", "--schedule", "onecycle", "--learning_rate", "0.003",
             "--no-early_stopping", "--ema", "0.9"]
    checkpoint = lambda: [json.loads(p.read_text())["epoch"]  # noqa: E731
                          for p in models.glob(".resume-long-*/training_metadata.json") if p.stat().st_size]
    log = tmp_path / "first.log"
    first = start([sys.executable, "-m", "competition.train", *flags], log)
    wait_for(first, lambda: checkpoint() == [1], log)
    time.sleep(0.3)  # into the second epoch, which takes seconds
    first.send_signal(signal.SIGKILL)
    first.wait()
    done = checkpoint()[0]
    assert 1 <= done < 4 and visible(models) == [], log.read_text()[-2000:]

    assert train.main(flags) == 0
    out = capsys.readouterr().out
    assert f"resume: {done} of 4 epochs were finished" in out and f"training on from epoch {done + 1}" in out
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith("epoch ")] == \
        [f"epoch {n}/4" for n in range(done + 1, 5)], "only the epochs the killed run had not finished"
    (run,) = [models / name for name in visible(models)]
    history = (run / HISTORY_FILE).read_text().splitlines()
    assert history[0].startswith("epoch") and [row.split(",")[0] for row in history[1:]] == ["0", "1", "2", "3"]
    metrics = json.loads((run / METRICS_FILE).read_text())
    assert metrics["epochs_run"] == 4 and metrics["resumed_from_epoch"] == done
    assert not list(models.glob(".resume-*")), "the checkpoints go once the run is in place"
