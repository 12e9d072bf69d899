"""`make data`, `make submit` and `make submissions` through the real kaggle client, against a fake Kaggle.

The fake (tests/fake_kaggle.py) serves a free port of 127.0.0.1 that it picks, where the client's
LOCALHOST environment and KAGGLE_LOCALHOST_PORT send it: any user runs these, root or not. No network,
no ../shared, a few seconds in all.
"""

import base64
import gzip
import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from competition import get_data, submit
from competition.config import ROOT
from competition.kaggle.client import TOKEN_URL, import_kaggle_api
from fake_kaggle import KEY, TOKEN, USERNAME, FakeKaggle, make_competition
from test_faults import last_error_line, one_error_line

FAST = ["--retries", "2", "--backoff_s", "0.01"]  # three tries, 10 ms then 20 ms apart
FAST_CLIENT = {"retries": 2, "backoff_s": 0.01}
FILES = ["sample_submission.csv", "test.csv", "train.csv"]
RULES_URL = "https://www.kaggle.com/competitions/digit-recognizer/rules"
RUN_ID = "20261127-090000-report-aug"


@pytest.fixture(scope="module")
def competition():
    return make_competition(n_train=40, n_test=25)


@pytest.fixture
def kaggle(competition, monkeypatch):
    server = FakeKaggle(competition).__enter__()
    monkeypatch.setenv("KAGGLE_LOCALHOST_PORT", str(server.port))
    yield server
    server.__exit__(None, None, None)


@pytest.fixture
def kaggle_json(tmp_path, monkeypatch):
    """A user whose only credentials are a kaggle.json (mode 600), away from the real ~/.kaggle."""
    home = tmp_path / "home"
    config_dir = home / ".kaggle"
    config_dir.mkdir(parents=True)
    for name in [n for n in os.environ if (n.startswith("KAGGLE_") and n != "KAGGLE_LOCALHOST_PORT")
                 or n in ("VERBOSE", "VERBOSE_OUTPUT")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "LOCALHOST")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    KaggleApi = import_kaggle_api()
    # The client reads KAGGLE_CONFIG_DIR and KAGGLE_API_ENVIRONMENT once, when `kaggle` is first
    # imported; a test process imports it once for all tests. test_command_line_needs_only_the_environment
    # runs a fresh process with nothing patched.
    monkeypatch.setattr(KaggleApi, "config_dir", str(config_dir))
    monkeypatch.setattr(KaggleApi, "config", str(config_dir / "kaggle.json"))
    monkeypatch.setattr(KaggleApi, "args", ["--local"])
    path = config_dir / "kaggle.json"
    write_secret(path, json.dumps({"username": USERNAME, "key": KEY}))
    return path


def write_secret(path, text, mode=0o600):
    path.write_text(text)
    path.chmod(mode)


def members(competition) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(competition.zip_bytes)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def listing(folder):
    return sorted(p.name for p in folder.iterdir())  # hidden entries (staging, temp files) included


def secrets_in(text: str) -> list[str]:
    basic = base64.b64encode(f"{USERNAME}:{KEY}".encode()).decode()
    return [s for s in (KEY, TOKEN, basic) if s in text]


# make data


def test_download_writes_valid_csvs_then_skips(kaggle, kaggle_json, competition, tmp_path, capsys):
    data = tmp_path / "data"
    assert get_data.main(["--data_dir", str(data), *FAST]) == 0
    assert listing(data) == FILES
    for name, content in members(competition).items():
        assert (data / name).read_bytes() == content
    out = capsys.readouterr().out
    assert f"downloading digit-recognizer from Kaggle as {USERNAME}" in out
    assert f"train.csv                   40 rows {len(members(competition)['train.csv']):>12,} bytes" in out
    assert "test.csv                    25 rows" in out
    assert (kaggle.count("DownloadDataFiles"), kaggle.count("storage")) == (1, 1)

    assert get_data.main(["--data_dir", str(data), *FAST]) == 0  # valid already: no request at all
    assert "already in" in capsys.readouterr().out and kaggle.calls == ["DownloadDataFiles", "storage"]

    assert get_data.main(["--data_dir", str(data), "--force", *FAST]) == 0
    assert kaggle.count("storage") == 2 and listing(data) == FILES


@pytest.mark.parametrize("call, fault", [("DownloadDataFiles", 500), ("storage", 503), ("storage", "cut")])
def test_download_retries_after_a_failure(kaggle, kaggle_json, competition, tmp_path, capsys, call, fault):
    kaggle.fail(call, fault)
    data = tmp_path / "data"
    assert get_data.main(["--data_dir", str(data), *FAST]) == 0
    assert kaggle.count(call) == 2
    assert "try 2 of 3 in 0.0s" in capsys.readouterr().err
    assert (data / "train.csv").read_bytes() == members(competition)["train.csv"]


def test_cut_download_leaves_data_as_it_was(kaggle, kaggle_json, tmp_path, capsys):
    data = tmp_path / "data"
    assert get_data.main(["--data_dir", str(data), *FAST]) == 0
    before = {name: (data / name).read_bytes() for name in FILES}
    kaggle.fail("storage", "cut", "cut", "cut")
    assert get_data.main(["--data_dir", str(data), "--force", *FAST]) == 1
    last_error_line(capsys.readouterr().err,
                    "download: gave up after 3 tries (last: network error, ChunkedEncodingError: Connection broken")
    assert listing(data) == FILES  # no partial zip, no staging folder
    assert {name: (data / name).read_bytes() for name in FILES} == before

    kaggle.fail("storage", "cut", "cut", "cut")
    fresh = tmp_path / "fresh"
    assert get_data.main(["--data_dir", str(fresh), *FAST]) == 1
    last_error_line(capsys.readouterr().err,
                    "download: gave up after 3 tries (last: network error, ChunkedEncodingError: Connection broken")
    assert listing(fresh) == []


def test_kaggle_unreachable_is_retried_then_a_clear_error(kaggle, kaggle_json, tmp_path, capsys):
    kaggle.__exit__(None, None, None)  # nothing listens on its port now
    assert get_data.main(["--data_dir", str(tmp_path / "data"), *FAST]) == 1
    err = capsys.readouterr().err
    last_error_line(err, "download: gave up after 3 tries")
    assert err.count("network error, ConnectionError: [Errno 111] Connection refused; try") == 2
    assert "error: download: gave up after 3 tries" in err and not (tmp_path / "data" / "train.csv").exists()


def test_wrong_key_is_401_and_says_so(kaggle, kaggle_json, tmp_path, capsys):
    write_secret(kaggle_json, json.dumps({"username": USERNAME, "key": "wrong-key-0000"}))
    assert get_data.main(["--data_dir", str(tmp_path / "data"), *FAST]) == 1
    out, err = capsys.readouterr()
    last_error_line(err, f"Kaggle refused the credentials from {kaggle_json} (401 Unauthorized)")
    assert TOKEN_URL in err and kaggle.count("DownloadDataFiles") == 1  # not retried
    assert not (tmp_path / "data" / "train.csv").exists() and "wrong-key-0000" not in out + err


def test_rules_not_accepted_is_403_with_the_rules_url(kaggle, kaggle_json, competition, tmp_path, capsys):
    kaggle.rules_accepted = False
    assert get_data.main(["--data_dir", str(tmp_path / "data"), *FAST]) == 1
    last_error_line(capsys.readouterr().err, "(403 Forbidden): this account has not accepted its rules",
                    f"Accept them at {RULES_URL}, then run this again")

    data, models = competition_data(competition, tmp_path), tmp_path / "models"
    make_run(models, competition.test_labels)
    assert submit.main(["--data_dir", str(data), "--models_dir", str(models), *FAST]) == 1
    last_error_line(capsys.readouterr().err, RULES_URL)
    assert kaggle.submissions == []


def test_missing_credentials_say_where_to_get_and_put_them(kaggle, kaggle_json, tmp_path, capsys):
    kaggle_json.unlink()
    assert get_data.main(["--data_dir", str(tmp_path / "data"), *FAST]) == 1
    err = capsys.readouterr().err
    last_error_line(err, "no Kaggle credentials found", TOKEN_URL)
    assert "export KAGGLE_API_TOKEN=" in err and f"save it as {kaggle_json} and run: chmod 600" in err
    assert kaggle.calls == []


def test_kaggle_json_readable_by_others_is_a_warning(kaggle, kaggle_json, tmp_path, capsys):
    kaggle_json.chmod(0o644)
    assert get_data.main(["--data_dir", str(tmp_path / "data"), *FAST]) == 0
    err = capsys.readouterr().err
    assert f"warning: {kaggle_json} holds a Kaggle secret and is readable by other users; " \
           f"run: chmod 600 {kaggle_json}" in err


def test_access_token_from_the_environment(kaggle, kaggle_json, tmp_path, monkeypatch, capsys):
    kaggle_json.unlink()
    monkeypatch.setenv("KAGGLE_API_TOKEN", TOKEN)
    assert get_data.main(["--data_dir", str(tmp_path / "data"), *FAST]) == 0
    assert kaggle.count("IntrospectToken") == 1 and listing(tmp_path / "data") == FILES

    monkeypatch.setenv("KAGGLE_API_TOKEN", "KGAT_revoked-token")
    assert get_data.main(["--data_dir", str(tmp_path / "other"), *FAST]) == 1
    out, err = capsys.readouterr()
    last_error_line(err, "did not accept the credentials from KAGGLE_API_TOKEN")
    assert "KGAT_revoked-token" not in out + err and not secrets_in(out + err)


def test_no_key_or_token_is_ever_printed(kaggle, kaggle_json, competition, tmp_path, monkeypatch, capsys):
    kaggle_json.chmod(0o644)
    kaggle.fail("DownloadDataFiles", 500, 500, 500, 401)
    for _ in range(2):  # retries run out; then a 401
        get_data.main(["--data_dir", str(tmp_path / "data"), *FAST])
    kaggle.rules_accepted = False
    get_data.main(["--data_dir", str(tmp_path / "data"), *FAST])
    kaggle.rules_accepted = True
    data, models = competition_data(competition, tmp_path), tmp_path / "models"
    make_run(models, competition.test_labels)
    assert submit.main(["--data_dir", str(data), "--models_dir", str(models), "--poll_s", "0.01", *FAST]) == 0
    assert submit.main(["--list", *FAST]) == 0
    # As if started with VERBOSE=1, which makes the client print every request's headers.
    monkeypatch.setattr(import_kaggle_api(), "args", ["--local", "--verbose"])
    assert submit.main(["--list", *FAST]) == 0
    out, err = capsys.readouterr()
    assert "public score 1.00000" in out and "(403 Forbidden)" in err and "(401 Unauthorized)" in err
    assert secrets_in(out + err) == []


# make data SOURCE=...: no Kaggle


def test_source_folder_of_gz_and_csv(competition, tmp_path, capsys):
    source = tmp_path / "source"
    source.mkdir()
    files = members(competition)
    (source / "train.csv.gz").write_bytes(gzip.compress(files["train.csv"]))
    (source / "test.csv.gz").write_bytes(gzip.compress(files["test.csv"]))
    (source / "sample_submission.csv").write_bytes(files["sample_submission.csv"])
    data = tmp_path / "data"
    assert get_data.main(["--data_dir", str(data), "--source", str(source)]) == 0
    assert listing(data) == FILES and all((data / n).read_bytes() == files[n] for n in FILES)
    assert f"data: 3 files from {source} -> {data}" in capsys.readouterr().out


def test_source_zip_and_bad_sources(competition, tmp_path, capsys):
    archive = tmp_path / "digit-recognizer.zip"
    archive.write_bytes(competition.zip_bytes)
    data = tmp_path / "data"
    assert get_data.main(["--data_dir", str(data), "--source", str(archive)]) == 0
    assert listing(data) == FILES

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train.csv").write_bytes(members(competition)["train.csv"].replace(b"\n3,", b"\n12,", 1))
    (bad / "test.csv").write_bytes(members(competition)["test.csv"])
    assert get_data.main(["--data_dir", str(tmp_path / "out"), "--source", str(bad)]) == 2
    one_error_line(capsys.readouterr().err, str(bad / "train.csv"), "column label: expected an integer 0..9, got 12")
    assert listing(tmp_path / "out") == []

    assert get_data.main(["--data_dir", str(tmp_path / "out"), "--source", str(tmp_path / "nowhere")]) == 2
    one_error_line(capsys.readouterr().err, str(tmp_path / "nowhere"), "no such file or folder")


# make submit, make submissions


def competition_data(competition, tmp_path):
    data = tmp_path / "competition"
    data.mkdir(exist_ok=True)
    for name, content in members(competition).items():
        (data / name).write_bytes(content)
    return data


def make_run(models, labels, run_id=RUN_ID, accuracy=0.98765, demo=False):
    """A run folder as training and `make submission` leave it; submitting never loads the model."""
    folder = models / run_id
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(b"")
    (folder / "metrics.json").write_text(json.dumps(
        {"run_id": run_id, "demo_data": demo, "validation": {"accuracy": accuracy}}))
    pd.DataFrame({"ImageId": np.arange(1, len(labels) + 1), "Label": labels}).to_csv(
        folder / "submission.csv", index=False)
    return folder


def test_submit_polls_until_scored_and_records_the_score(kaggle, kaggle_json, competition, tmp_path, capsys):
    data, models = competition_data(competition, tmp_path), tmp_path / "models"
    labels = competition.test_labels.copy()
    labels[:5] = (labels[:5] + 1) % 10  # 20 of 25 right
    folder = make_run(models, labels)
    assert submit.main(["--data_dir", str(data), "--models_dir", str(models), "--poll_s", "0.01", *FAST]) == 0

    out = capsys.readouterr().out
    message = f"{RUN_ID} (val accuracy 0.98765)"
    assert f"submit: {folder / 'submission.csv'} (25 rows, checked against test.csv) to digit-recognizer" in out
    assert out.count("submit: scoring, PENDING after") == kaggle.polls_until_scored == 2
    assert f"submit: public score 0.80000 (ref 51000001, {message!r})" in out
    [sent] = kaggle.submissions
    assert sent["description"] == message and sent["totalBytes"] == (folder / "submission.csv").stat().st_size
    assert kaggle.calls == ["StartSubmissionUpload", "upload", "CreateSubmission"] + ["GetSubmission"] * 3
    [record] = json.loads((folder / "kaggle_submissions.json").read_text())
    assert (record["ref"], record["status"], record["public_score"], record["message"]) == (
        51000001, "COMPLETE", "0.80000", message)

    assert submit.main(["--list", *FAST]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["ref", "date", "(UTC)", "status", "public", "description"]
    assert table[1].split()[0] == "51000001" and table[1].split()[3:5] == ["COMPLETE", "0.80000"]
    assert table[1].endswith(message)
    # The fake's limit is 5 a day, one made; all 11 of its leaderboard teams score above 0.8.
    assert table[2].startswith("submissions: 4 of 5 left today (1 made; Kaggle's day ends at 00:00 UTC, in ")
    assert table[3] == ("leaderboard: your best public score 0.80000 places you #12 on the public leaderboard "
                        "(11 teams score higher)")


def test_the_leaderboard_is_paged_only_as_far_as_needed(kaggle, kaggle_json, monkeypatch):
    from competition.kaggle import client as kaggle_client

    monkeypatch.setattr(kaggle_client, "LEADERBOARD_PAGE", 3)
    client = kaggle_client.KaggleClient(**FAST_CLIENT)
    assert client.teams_above(0.9967) == (5, True)  # page 1 all above; page 2 ends at 0.9967: stop
    assert kaggle.count("GetLeaderboard") == 2
    assert client.teams_above(0.5) == (11, True) and client.teams_above(0.99, pages=2) == (6, False)
    assert client.daily_limit() == 5


def test_submit_message_override_and_a_500_retried(kaggle, kaggle_json, competition, tmp_path, capsys):
    data, models = competition_data(competition, tmp_path), tmp_path / "models"
    make_run(models, competition.test_labels)
    kaggle.fail("StartSubmissionUpload", 500)
    assert submit.main(["--data_dir", str(data), "--models_dir", str(models), "--message", "model 2, it's \"v2\"",
                        "--poll_s", "0.01", *FAST]) == 0
    assert [s["description"] for s in kaggle.submissions] == ["model 2, it's \"v2\""]
    assert kaggle.count("StartSubmissionUpload") == 2 and "public score 1.00000" in capsys.readouterr().out


def test_submit_gives_up_waiting_after_the_timeout(kaggle, kaggle_json, competition, tmp_path, capsys):
    data, models = competition_data(competition, tmp_path), tmp_path / "models"
    folder = make_run(models, competition.test_labels)
    kaggle.polls_until_scored = 1000
    assert submit.main(["--data_dir", str(data), "--models_dir", str(models), "--timeout_s", "0.2",
                        "--poll_s", "0.05", *FAST]) == 1
    last_error_line(capsys.readouterr().err, "submission 51000001 is still PENDING after 0s")
    assert json.loads((folder / "kaggle_submissions.json").read_text())[0]["status"] == "PENDING"


def broken(frame):
    return {
        "header": frame.rename(columns={"Label": "label"}),
        "missing row": frame.iloc[:-1],
        "order": frame.iloc[[1, 0, *range(2, len(frame))]],
        "label 10": frame.assign(Label=frame["Label"].where(frame.index != 3, 10)),
    }


@pytest.mark.parametrize("case, expected", [
    ("header", "header must be ImageId,Label, got ImageId,label"),
    ("missing row", "24 rows, expected one per test image (25)"),
    ("order", "line 2: ImageId 2, expected 1 (1..25 in order)"),
    ("label 10", "line 5: Label 10, expected 0..9"),
])
def test_invalid_submission_is_never_sent(kaggle, kaggle_json, competition, tmp_path, capsys, case, expected):
    data, models = competition_data(competition, tmp_path), tmp_path / "models"
    folder = make_run(models, competition.test_labels)
    good = pd.read_csv(folder / "submission.csv")
    broken(good)[case].to_csv(folder / "submission.csv", index=False)
    assert submit.main(["--data_dir", str(data), "--models_dir", str(models), *FAST]) == 2
    one_error_line(capsys.readouterr().err, str(folder / "submission.csv"), expected)
    assert kaggle.calls == [] and not (folder / "kaggle_submissions.json").exists()


def test_demo_runs_are_not_submitted(kaggle, kaggle_json, competition, tmp_path, capsys):
    data, models = competition_data(competition, tmp_path), tmp_path / "models"
    make_run(models, competition.test_labels, demo=True)
    assert submit.main(["--data_dir", str(data), "--models_dir", str(models), *FAST]) == 2
    one_error_line(capsys.readouterr().err, "was trained on DEMO data")
    assert kaggle.calls == []


# the command lines as `make` runs them


def test_command_line_needs_only_the_environment(kaggle, tmp_path):
    """A fresh process, nothing patched: KAGGLE_API_ENVIRONMENT, KAGGLE_LOCALHOST_PORT and
    KAGGLE_USERNAME/KAGGLE_KEY do it all."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KAGGLE_CONFIG_DIR": str(tmp_path / "kaggle"),
           "KAGGLE_USERNAME": USERNAME, "KAGGLE_KEY": KEY, **kaggle.environment()}
    result = subprocess.run([sys.executable, "-m", "competition.get_data", "--data_dir", str(tmp_path / "data")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "data: 3 files from Kaggle (digit-recognizer.zip" in result.stdout
    assert listing(tmp_path / "data") == FILES and not secrets_in(result.stdout + result.stderr)


def test_help_shows_defaults(capsys):
    for main in (get_data.main, submit.main):
        with pytest.raises(SystemExit) as exit_:
            main(["--help"])
        assert exit_.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines where it likes
    assert "--backoff_s BACKOFF_S first wait before a retry, doubled each time (default: 2.0)" in out
    assert "(default: 4)" in out and "stop waiting for the score after this long (default: 600.0)" in out
