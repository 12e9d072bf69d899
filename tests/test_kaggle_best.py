"""`make kaggle-best`: a recipe pushed as a Kaggle kernel, watched, fetched, submitted, against the fake Kaggle.

One test runs the generated kernel script for real (the fake's KernelRun: a folder laid out as Kaggle's,
kaggle/input/digit-recognizer and kaggle/working, passed in as paths), one epoch on scikit-learn's digits
in the competition's format; the others give the fake a canned run, so they take a second each.
"""

import ast
import base64
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_faults import usage_error_line
from test_kaggle import FAST, competition_data, kaggle_json, write_secret  # noqa: F401  (fixtures)

from competition import kaggle_best, submit
from competition import predict as submission
from competition.config import PAIR_DESIGNS, RECIPES, ROOT
from competition.kaggle import bootstrap, kernel, plan
from competition.kaggle.client import KaggleClient, KaggleError
from fake_kaggle import KEY, USERNAME, FakeKaggle, digits_competition
from competition.runs.choosing import best_scored

SLUG = f"{USERNAME}/digits-kaggle-best-fast"
T4 = "Tesla T4, 7.5, 15360 MiB"  # a line of nvidia-smi on Kaggle
QUICK = ["--poll_s", "0.01", *FAST]


@pytest.fixture(scope="module")
def digits():
    return digits_competition()


class CannedRun:
    """A kernel run that Kaggle has already made: RUNNING for `polls` status calls, then `ends`."""

    def __init__(self, working: Path, polls: int = 2, ends: str = "COMPLETE", log: list[str] | None = None,
                 failure: str = "Your notebook tried to run but exited with code 2"):
        self.working, self.polls, self.ends, self.failure = working, polls, ends, failure
        self.lines = log or ["kaggle-best: recipe fast, project code abc", "best: member-1: strong seed 0",
                             "kaggle-best: done in 6.0 min"]

    def status(self):
        self.polls -= 1
        if self.polls >= 0:
            return "RUNNING", ""
        return self.ends, self.failure if self.ends == "ERROR" else ""

    def log(self):
        shown = self.lines if self.polls < 0 else self.lines[:1]
        return [{"stream_name": "stdout", "time": float(i), "data": line + "\n"} for i, line in enumerate(shown)]

    def outputs(self):
        return self.working


def canned_outputs(folder: Path, labels: np.ndarray, estimate: float | None = 0.99524) -> Path:
    """What the kernel leaves in /kaggle/working for the fast recipe (its model file a stand-in)."""
    member = folder / "20261203-120000-member-1"
    member.mkdir(parents=True)
    (member / "model.keras").write_bytes(b"not a model: submitting never loads it")
    (member / "metrics.json").write_text(json.dumps({"run_id": member.name, "demo_data": False}))
    (folder / "ensemble.json").write_text(json.dumps({"members": [member.name], "recipe": "fast"}))
    (folder / "metrics.json").write_text(json.dumps({
        "recipe": "fast", "members": [member.name], "demo_data": False, "validation": None, "train_minutes": 2.1,
        "estimate": {"accuracy": estimate, "std": 0.00042, "source": "5-fold CV"} if estimate else None}))
    pd.DataFrame({"ImageId": np.arange(1, len(labels) + 1), "Label": labels}).to_csv(folder / "submission.csv",
                                                                                     index=False)
    (folder / bootstrap.LOG_FILE).write_text("kaggle-best: done\n")
    (folder / bootstrap.RUN_FILE).write_text(json.dumps({"gpu": "Tesla T4, 7.5, 15360 MiB", "minutes": 6.0}))
    (folder / ".recipe-fast.lock").write_text("pid 1")
    return folder


@pytest.fixture
def fake(digits, tmp_path, monkeypatch):
    """The fake Kaggle, its pushed kernels answered by a canned run (test_..._end_to_end runs one for real)."""
    server = FakeKaggle(digits, runner=lambda text, body, competition: CannedRun(
        canned_outputs(tmp_path / f"working-{len(server.calls)}", competition.test_labels)))
    server.__enter__()
    monkeypatch.setenv("KAGGLE_LOCALHOST_PORT", str(server.port))
    yield server
    server.__exit__(None, None, None)


def run(models, *args) -> int:
    return kaggle_best.main(["--recipe", "fast", "--models_dir", str(models), *QUICK, *args])


def test_the_pushed_kernel_is_what_kaggle_expects(fake, kaggle_json, tmp_path, capsys):
    assert run(tmp_path / "models") == 0
    [push] = fake.kernels[SLUG]
    sent = push["metadata"]
    assert (sent["slug"], sent["newTitle"], sent["language"], sent["kernelType"]) == (
        SLUG, "digits kaggle-best fast", "python", "script")
    assert (sent["isPrivate"], sent["enableGpu"], sent["enableInternet"]) == (True, True, False)
    assert sent["competitionDataSources"] == ["digit-recognizer"] and sent["machineShape"] == "NvidiaTeslaT4"
    assert not sent.get("datasetDataSources")
    script = push["text"]
    ast.parse(script)  # one Python file
    assert "RECIPE = 'fast'\nEPOCHS = None\n" in script and script.startswith(Path(bootstrap.__file__).read_text())
    packed = ast.literal_eval(script.split("PROJECT_ZIP = (", 1)[1].split("\n)\n", 1)[0].split("\n", 1)[1].join("()"))
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(packed))) as zf:
        names = set(zf.namelist())
        assert zf.read("competition/best.py") == (ROOT / "competition/best.py").read_bytes()
    assert {"common/errors.py", "competition/training/recipes.py", "competition/config.py"} <= names
    assert not [n for n in names if "/tests/" in n or not n.endswith(".py")]
    out = capsys.readouterr().out
    planned = plan.plan_minutes(RECIPES["fast"], "NvidiaTeslaT4")
    assert sent["sessionTimeoutSeconds"] == plan.session_timeout_s(planned.session_minutes) == 30 * 60  # the floor: 2 x 5 min is less
    assert "dockerImage" not in sent  # Kaggle's latest image unless pinned
    assert f"pushed version 1 of {SLUG} (ref /code/{SLUG}, code " in out and f"{fake.url}/code/{SLUG}" in out
    assert "stopped by Kaggle after 30 min" in out

    kernel.write_kernel_folder(tmp_path / "folder", USERNAME, RECIPES["fast"])  # as --build_only writes it
    metadata = json.loads((tmp_path / "folder" / kernel.METADATA_FILE).read_text())
    from slugify import slugify  # the kaggle client's own: a title that does not give the id makes it warn

    assert slugify(metadata["title"]) == metadata["id"].split("/")[1] and metadata["code_file"] == "kaggle_best.py"
    assert (tmp_path / "folder" / "kaggle_best.py").read_text() == script


def test_kernel_script_runs_locally_as_on_kaggle_then_submits(digits, kaggle_json, tmp_path, monkeypatch, capsys):
    """The generated script of best-ensemble-v1 (three members: the third waits for a free GPU), run for
    real by the fake in a folder laid out as Kaggle's (its two T4s faked: the CPU trains in their place),
    one epoch a member: two members at a time, one per GPU; its output fetched whole, then
    `make submission` and `make submit` take it as any recipe."""
    models, slug = tmp_path / "models", f"{USERNAME}/digits-kaggle-best-best-ensemble-v1"
    with FakeKaggle(digits, queued_polls=1) as server:
        monkeypatch.setenv("KAGGLE_LOCALHOST_PORT", str(server.port))
        assert kaggle_best.main(["--recipe", "best-ensemble-v1", "--models_dir", str(models), *FAST, "--epochs", "1",
                                 "--poll_s", "0.5"]) == 0
        ran_in = server.kernels[slug][0]["run"]
        working = ran_in.working
        out = capsys.readouterr().out
        assert ("on two Tesla T4s (NvidiaTeslaT4): 3 models of about 0 min at most each, 2 at a time, one per GPU: "
                "about 4 min of session") in out  # one epoch of each: under a minute
        log = (working / bootstrap.LOG_FILE).read_text()
        assert "kaggle-best: running on Kaggle's own tensorflow" in log
        assert ", 2 GPUs: faked GPU 0 (the tests' fake Kaggle: the CPU trains); faked GPU 1" in log
        # The fake mounts the competition where Kaggle does now, and the kernel found it there unaided.
        assert ran_in.input == ran_in.root / "input" / "competitions" / "digit-recognizer"
        assert (f"kaggle-best: $ python -m competition.best --recipe best-ensemble-v1 --data_dir {ran_in.input} "
                f"--models_dir {working} --gpus 0,1 --epochs 1") in log
        assert "best: machine: " in log and "best: member-1: resnet-long-ema seed 0, 1 epochs" in log
        assert "2 at a time, one per GPU (GPUs 0, 1, one process each)" in log
        # Each member in a process that saw one GPU from its start; the first two together, the third on
        # the GPU freed first.
        lines = log.splitlines()
        started = {name: next(i for i, line in enumerate(lines) if line.startswith(f"{name}: training"))
                   for name in ("member-1", "member-2", "member-3")}
        on = {name: lines[i].rsplit("CUDA_VISIBLE_DEVICES=", 1)[1].rstrip(")") for name, i in started.items()}
        assert on["member-1"] == "0" and on["member-2"] == "1" and on["member-3"] in ("0", "1")
        first_done = min(i for i, line in enumerate(lines) if line.startswith(("[member-1] ", "[member-2] "))
                         and "saved" in line)
        assert started["member-2"] < first_done < started["member-3"]
        members = sorted(p.name for p in working.iterdir() if "-member-" in p.name)
        assert len(members) == 3 and sorted(p.name for p in working.iterdir() if not p.name.startswith(".")) == sorted(
            [bootstrap.LOG_FILE, bootstrap.RUN_FILE, "ensemble.json", "metrics.json", "recipe_config.json",
             "submission.csv", *members])

        target = models / "recipe-best-ensemble-v1-kaggle"
        assert "kaggle-best: RUNNING" in out and f"files -> {target}" in out
        assert f"make submit RUN=recipe-best-ensemble-v1-kaggle" in out
        assert sorted(p.name for p in models.iterdir()) == [kernel.STATE_FOLDER, target.name]  # nothing half-made
        assert list((models / kernel.STATE_FOLDER).iterdir()) == []  # fetched: nothing to attach to
        [member] = [p for p in target.iterdir() if p.name.endswith("-member-1")]
        assert (member / "model.keras").read_bytes() == next(working.glob("*-member-1/model.keras")).read_bytes()
        assert (target / "submission.csv").read_bytes() == (working / "submission.csv").read_bytes()
        ran = json.loads((target / bootstrap.RUN_FILE).read_text())
        assert ran["recipe"] == "best-ensemble-v1" and ran["epochs"] == 1 and ran["versions"]["keras"] and ran["gpus"] == 2

        data = competition_data(digits, tmp_path)
        assert submission.main(["--data_dir", str(data), "--models_dir", str(models), "--out",
                                str(tmp_path / "again.csv")]) == 0
        assert pd.read_csv(tmp_path / "again.csv").shape == (len(digits.test_labels), 2)
        assert submit.main(["--data_dir", str(data), "--models_dir", str(models), *QUICK]) == 0
        [sent] = server.submissions
        assert sent["description"].startswith("recipe-best-ensemble-v1-kaggle") and sent["status"] == "COMPLETE"
        assert "submit: public score" in capsys.readouterr().out


def test_ctrl_c_leaves_the_kernel_running_and_the_next_run_attaches(fake, kaggle_json, tmp_path, monkeypatch,
                                                                   capsys):
    models = tmp_path / "models"

    watch = kernel.watch

    def watch_then_ctrl_c(client, state, poll_s):
        client.kernel_status(state["slug"])
        raise KeyboardInterrupt

    monkeypatch.setattr(kernel, "watch", watch_then_ctrl_c)
    assert run(models) == 130
    err = capsys.readouterr().err
    assert "interrupted: the kernel keeps running on Kaggle; the same command attaches to it" in err
    state = json.loads(kernel.state_path(RECIPES["fast"], models).read_text())
    assert (state["slug"], state["version"]) == (SLUG, 1) and not (models / "recipe-fast-kaggle").exists()

    monkeypatch.setattr(kernel, "watch", watch)
    assert run(models) == 0
    assert f"attaching to version 1 of {SLUG}" in capsys.readouterr().out
    assert fake.count("SaveKernel") == 1 and (models / "recipe-fast-kaggle" / "submission.csv").is_file()
    assert not kernel.state_path(RECIPES["fast"], models).exists()
    assert not (models / "recipe-fast-kaggle" / ".recipe-fast.lock").exists()


def test_a_kernel_that_errors_shows_its_last_lines_and_one_line_why(fake, kaggle_json, tmp_path, capsys):
    lines = ["kaggle-best: recipe fast", "Traceback (most recent call last):", "ValueError: train.csv: no rows",
             "kaggle-best: error: make best stopped with exit status 2 after 0.4 min (its last lines above)"]
    fake.runner = lambda text, body, competition: CannedRun(tmp_path / "nothing", ends="ERROR", log=lines)
    assert run(tmp_path / "models") == 1
    err = capsys.readouterr().err
    assert "  | ValueError: train.csv: no rows" in err
    [why] = [line for line in err.splitlines() if line.startswith("error:")]
    assert why.startswith(f"error: kernel {SLUG} version 1 ended ERROR on Kaggle: make best stopped with exit status 2")
    assert not (tmp_path / "models" / "recipe-fast-kaggle").exists()
    assert not kernel.state_path(RECIPES["fast"], tmp_path / "models").exists()  # the next run pushes anew


def test_short_quota_refuses_in_one_line_and_force_pushes(fake, kaggle_json, tmp_path, capsys):
    fake.gpu_used_s = fake.gpu_total_s - 60  # a minute left
    assert run(tmp_path / "models") == 2
    out, err = capsys.readouterr()
    assert ("on two Tesla T4s (NvidiaTeslaT4): 1 model of about 1 min on one of the 2 GPUs (the other idle): about 5 min "
            "of session (4 min to start, 1 min of training), 1 GPU-minutes of training (a guess: not measured on "
            "Kaggle yet)") in out
    [line] = err.strip().splitlines()
    assert line.startswith("error: GPU quota: 1 min of 30.0 h left this week, renewed Sat 05 Dec 00:00 UTC; the "
                           "recipe needs about 5 min on two Tesla T4s (a guess")
    assert line.endswith("not pushed (--force pushes anyway; Kaggle stops a kernel when the quota ends)")
    assert fake.count("SaveKernel") == 0
    assert run(tmp_path / "models", "--force") == 0
    assert "(--force: pushing anyway)" in capsys.readouterr().out and fake.count("SaveKernel") == 1


@pytest.mark.parametrize("case, expected", [
    ("wrong key", "GPU quota: Kaggle refused the credentials from"),
    ("no GPU for this account", "push: Kaggle refused the push (HTTP 403: Phone verification is required to use "
                                "accelerators): a kernel can be pushed only to this account's own slugs, and Kaggle "
                                "lends GPUs only to accounts with a verified phone number"),
    ("rules not accepted", "push: Kaggle did not attach the competition's data (digit-recognizer) to the kernel: "
                           "accept the competition's rules at https://www.kaggle.com/competitions/digit-recognizer/rules"),
])
def test_refusals_are_one_line(fake, kaggle_json, tmp_path, capsys, case, expected):
    if case == "wrong key":
        write_secret(kaggle_json, json.dumps({"username": USERNAME, "key": "wrong-key-0000"}))
    fake.gpu_allowed = case != "no GPU for this account"
    fake.rules_accepted = case != "rules not accepted"
    assert run(tmp_path / "models") == 1
    out, err = capsys.readouterr()
    assert [line for line in err.splitlines() if line.startswith("error:")] == [err.strip()]
    assert expected in err and KEY not in out + err and "Traceback" not in err
    assert not kernel.state_path(RECIPES["fast"], tmp_path / "models").exists()


def test_a_cut_download_is_retried_then_gives_up_leaving_nothing_half_made(fake, kaggle_json, tmp_path, capsys):
    models = tmp_path / "models"
    fake.fail("output", "cut")
    assert run(models) == 0 and "try 2 of 3" in capsys.readouterr().err  # cut once: fetched again whole

    fake.fail("output", "cut", "cut", "cut")
    assert run(models, "--new") == 1
    err = capsys.readouterr().err
    assert "gave up after 3 tries (last: network error, ChunkedEncodingError: Connection broken" in err
    assert sorted(p.name for p in models.iterdir()) == [kernel.STATE_FOLDER, "recipe-fast-kaggle"]  # the first, kept
    assert kernel.state_path(RECIPES["fast"], models).exists()  # still to fetch: the next run attaches
    assert run(models) == 0 and fake.count("SaveKernel") == 2
    assert "attaching to version 2" in capsys.readouterr().out


def test_plain_make_submit_picks_the_kaggle_recipe_when_its_estimate_is_best(tmp_path):
    labels = np.zeros(5, dtype=int)
    canned_outputs(tmp_path / "recipe-fast", labels, estimate=0.99524)
    canned_outputs(tmp_path / "recipe-best-single-kaggle", labels, estimate=0.99638)
    picked, why = best_scored(tmp_path).folder, best_scored(tmp_path).reason
    assert picked.name == "recipe-best-single-kaggle" and "expected accuracy, 5-fold CV 0.99638" in why
    canned_outputs(tmp_path / "recipe-best-ensemble", labels, estimate=0.99700)
    assert best_scored(tmp_path).folder.name == "recipe-best-ensemble"


def test_versions_outside_the_range_stop_the_kernel_in_one_line_at_its_start(tmp_path, monkeypatch, capsys):
    tested = {"tensorflow": "2.21.0", "keras": "3.15.1"}
    versions = {"tensorflow": "2.18.0", "keras": "3.8.0", "numpy": "1.26.4", "pandas": "2.2.3", "scikit-learn": "1.2.2"}
    errors, notes = bootstrap.check_versions(versions, tested)
    assert errors == ["scikit-learn 1.2.2 (the project needs scikit-learn>=1.3,<2.0)"]
    assert notes == ["tensorflow 2.18.0", "keras 3.8.0"]
    assert bootstrap.check_versions({**versions, "scikit-learn": "1.5.0", "keras": None}, tested)[0] == [
        "keras is not installed (the project needs keras>=3.5,<4.0)"]
    assert bootstrap.version_tuple("2.18.0rc1") == (2, 18, 0) and bootstrap.version_tuple("3.10") == (3, 10)

    monkeypatch.setattr(bootstrap, "installed_versions", lambda: {**versions, "keras": "2.15.0"})
    monkeypatch.setattr(bootstrap, "list_gpus", lambda: [T4, T4])
    monkeypatch.setattr(bootstrap.sys, "stdout", bootstrap.sys.stdout)  # run() tees it; undone after
    monkeypatch.setattr(bootstrap.sys, "stderr", bootstrap.sys.stderr)
    assert bootstrap.run_recipe("fast", "", "abc", tested, None, tmp_path) == 3
    log = (tmp_path / "working" / bootstrap.LOG_FILE).read_text().splitlines()
    assert len(log) == 2 and log[0].startswith("kaggle-best: recipe fast, project code abc, Python ")
    assert log[0].endswith(f", 2 GPUs: {T4}; {T4}")
    assert log[1].startswith("kaggle-best: error: Kaggle's image has keras 2.15.0 (the project needs keras>=3.5,<4.0); "
                             "scikit-learn 1.2.2")


def test_the_kernel_finds_the_data_where_kaggle_mounts_it(tmp_path, monkeypatch, capsys):
    """/kaggle/input/competitions/<slug> first (Kaggle's layout now), then input/<slug>, then a walk that
    follows links; nothing there: one line and a non-zero exit, before anything is unpacked."""
    current, old = tmp_path / "input/competitions/digit-recognizer", tmp_path / "input/digit-recognizer"
    for folder in (current, old):
        folder.mkdir(parents=True)
        (folder / "train.csv").write_text("label\n")
    assert bootstrap.find_input(tmp_path / "input") == current
    (current / "train.csv").unlink()
    assert bootstrap.find_input(tmp_path / "input") == old
    (old / "train.csv").unlink()
    elsewhere = tmp_path / "mounted/somewhere"
    elsewhere.mkdir(parents=True)
    (elsewhere / "train.csv").write_text("label\n")
    (tmp_path / "input/datasets").mkdir()
    (tmp_path / "input/datasets/digits").symlink_to(elsewhere, target_is_directory=True)
    assert bootstrap.find_input(tmp_path / "input") == tmp_path / "input/datasets/digits"
    assert bootstrap.find_input(tmp_path / "nothing") is None

    monkeypatch.setenv(bootstrap.ROOT_VARIABLE, str(tmp_path / "empty"))
    assert bootstrap.kaggle_root() == tmp_path / "empty"
    monkeypatch.delenv(bootstrap.ROOT_VARIABLE)
    assert bootstrap.kaggle_root() == Path("/kaggle")  # what the kernel reads on Kaggle
    monkeypatch.setattr(bootstrap, "installed_versions", lambda: {n: "2.0" for n in bootstrap.ACCEPTED})
    monkeypatch.setattr(bootstrap, "check_versions", lambda installed, tested: ([], []))
    monkeypatch.setattr(bootstrap, "list_gpus", lambda: [T4, T4])
    monkeypatch.setattr(bootstrap.sys, "stdout", bootstrap.sys.stdout)
    monkeypatch.setattr(bootstrap.sys, "stderr", bootstrap.sys.stderr)
    assert bootstrap.run_recipe("fast", "", "abc", {}, None, tmp_path / "empty") == 4
    last = (tmp_path / "empty/working" / bootstrap.LOG_FILE).read_text().splitlines()[-1]
    assert last.startswith(f"kaggle-best: error: no train.csv under {tmp_path / 'empty/input'} (looked in "
                           "competitions/digit-recognizer, digit-recognizer, then every folder)")


def test_a_kernel_without_a_gpu_stops_at_once_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(bootstrap.sys, "stdout", bootstrap.sys.stdout)
    monkeypatch.setattr(bootstrap.sys, "stderr", bootstrap.sys.stderr)
    monkeypatch.setattr(bootstrap.subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(FileNotFoundError("nvidia-smi")))
    monkeypatch.delenv(bootstrap.FAKE_GPUS_VARIABLE, raising=False)
    assert bootstrap.list_gpus() == []  # no nvidia-smi
    monkeypatch.setenv(bootstrap.FAKE_GPUS_VARIABLE, "2")  # the fake Kaggle's hook
    assert len(bootstrap.list_gpus()) == 2 and bootstrap.list_gpus()[1].startswith("faked GPU 1")
    monkeypatch.setenv(bootstrap.FAKE_GPUS_VARIABLE, "0")
    assert bootstrap.run_recipe("fast", "not even unpacked", "abc", {}, None, tmp_path) == 5
    log = (tmp_path / "working" / bootstrap.LOG_FILE).read_text().splitlines()
    assert log[0].endswith(", 0 GPUs: none") and len(log) == 2
    assert log[1].startswith("kaggle-best: error: this kernel sees no GPU (nvidia-smi lists none): stopped rather than "
                             "train on the CPU against the GPU quota")


def test_a_kernel_gone_from_kaggle_says_so_in_one_line(fake, kaggle_json, tmp_path, capsys):
    models = tmp_path / "models"
    state = kernel.state_path(RECIPES["fast"], models)
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"slug": SLUG, "version": 3, "url": "u", "pushed_at": "t", "code": "c"}))
    assert run(models) == 1
    assert capsys.readouterr().err.strip() == (f"error: kernel {SLUG}: no such kernel for this account (HTTP 404): a "
                                               "wrong slug, another account's kernel, or deleted on Kaggle; --new "
                                               "pushes another")
    for status in (401, 403):  # what Kaggle answers for a slug this account may not see
        fake.fail("GetKernelSessionStatus", status)
        assert run(models) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: kernel {SLUG}: no such kernel for this account (HTTP {status})")
        assert "phone" not in err and "credentials" not in err
    assert run(models, "--new") == 0 and fake.count("SaveKernel") == 1


NBCONVERT_TAIL = ["[NbConvertApp] Converting notebook __notebook__.ipynb to notebook",
                  "[NbConvertApp] Writing 12345 bytes to __notebook__.ipynb",
                  "[NbConvertApp] Converting notebook __notebook__.ipynb to html",
                  "[NbConvertApp] Writing 300000 bytes to __results__.html"]


@pytest.mark.parametrize("lines, failure, why", [
    (["kaggle-best: recipe fast", "kaggle-best: $ python -m competition.best --recipe fast", *NBCONVERT_TAIL],
     "Your notebook tried to allocate more memory than is available.",
     "Your notebook tried to allocate more memory than is available."),
    (["kaggle-best: recipe fast", "kaggle-best: $ python -m competition.best --recipe fast", *NBCONVERT_TAIL], "",
     "its last line: $ python -m competition.best --recipe fast"),
    (["kaggle-best: error: this kernel sees no GPU", *NBCONVERT_TAIL], "Your notebook tried to run but exited",
     "this kernel sees no GPU"),
])
def test_a_failure_reason_is_never_nbconverts(fake, kaggle_json, tmp_path, capsys, lines, failure, why):
    fake.runner = lambda text, body, competition: CannedRun(tmp_path / "nothing", ends="ERROR", log=lines,
                                                            failure=failure)
    assert kernel.failure_reason(lines, failure) == why
    assert run(tmp_path / "models") == 1
    err = capsys.readouterr().err
    assert "NbConvertApp" not in err and "__results__" not in err
    assert f"ended ERROR on Kaggle: {why} (its log" in err


def test_a_code_file_over_700_kb_is_refused_before_pushing(fake, kaggle_json, tmp_path, monkeypatch, capsys):
    script, _ = kernel.kernel_script(RECIPES["fast"])
    assert len(script.encode()) < kernel.MAX_CODE_BYTES == 700_000  # the project's code fits, with room
    monkeypatch.setattr(kernel, "MAX_CODE_BYTES", len(script.encode()) - 1)
    assert run(tmp_path / "models") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the kernel's code file would be ") and "kB Kaggle is known to take: not pushed" in err
    assert len(err.splitlines()) == 1 and fake.count("SaveKernel") == 0


def test_the_session_timeout_follows_the_estimate_within_kaggles_limit():
    assert plan.session_timeout_s(5) == 30 * 60
    assert plan.session_timeout_s(100) == 200 * 60
    assert plan.session_timeout_s(500) == 12 * 3600  # Kaggle stops a GPU session at 12 h anyway


def test_status_and_output_read_the_pushed_version_not_the_latest(fake, kaggle_json, tmp_path, monkeypatch, capsys):
    """Version 1 pushed, the watching stopped; version 2 pushed since (from another checkout): attaching
    reads version 1's status and output, by the label the client writes ("v1")."""
    models, watch = tmp_path / "models", kernel.watch
    monkeypatch.setattr(kernel, "watch", lambda client, state, poll_s: (_ for _ in ()).throw(KeyboardInterrupt))
    assert run(models) == 130
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == ("interrupted: the kernel keeps running on Kaggle; the same command attaches to it "
                                    "and fetches its output")
    assert "Traceback" not in err
    state = json.loads(kernel.state_path(RECIPES["fast"], models).read_text())
    assert (state["version"], state["ref"], state["timeout_s"]) == (1, f"/code/{SLUG}", 1800)
    monkeypatch.setattr(kernel, "watch", watch)
    assert run(tmp_path / "elsewhere") == 0
    first, second = fake.kernels[SLUG]
    polled = second["polls"]
    capsys.readouterr()
    assert run(models) == 0
    assert "attaching to version 1 of" in capsys.readouterr().out
    assert first["polls"] > 0 and second["polls"] == polled
    client = KaggleClient()
    assert client.kernel_status(SLUG, 2)[0] == "COMPLETE"
    with pytest.raises(KaggleError, match=r"no such kernel for this account \(HTTP 404\)"):
        client.kernel_status(SLUG, 3)


def test_a_kernel_stuck_in_queued_says_what_to_do_once(fake, kaggle_json, tmp_path, monkeypatch, capsys):
    fake.queued_polls = 40
    monkeypatch.setattr(kernel, "QUEUED_NOTICE_S", 0.1)
    assert run(tmp_path / "models") == 0
    out = capsys.readouterr().out
    [notice] = [line for line in out.splitlines() if "still QUEUED" in line]
    assert notice.startswith("kaggle-best: still QUEUED after 0 min: Kaggle has not started version 1. Open "
                             f"{fake.url}/code/{SLUG}: if it shows no running session, cancel it there")
    assert "run this again with --new" in notice


def test_an_image_pinned_and_the_quota_held_by_running_sessions(fake, kaggle_json, tmp_path, capsys):
    fake.gpu_reserved_s = 2 * 3600
    image = "gcr.io/kaggle-gpu-images/python:v160"
    assert run(tmp_path / "models", "--docker_image", image) == 0
    [push] = fake.kernels[SLUG]
    assert push["metadata"]["dockerImage"] == image
    out = capsys.readouterr().out
    assert "GPU quota: 24.5 h of 30.0 h left this week (2.0 h held by sessions still running)" in out  # 30 - 3.5 - 2
    assert f"image {image}" in out


def test_a_single_model_says_it_uses_one_of_the_two_gpus_and_gpus_are_checked(capsys):
    from competition import best
    from competition.training import planning

    assert planning.gpu_plan(1, (0, 1)) == "one at a time, on one of the 2 GPUs (GPUs 0, 1: the other idle)"
    assert planning.gpu_plan(2, (0, 1)) == "2 at a time, one per GPU (GPUs 0, 1, one process each)"
    planned = plan.plan_minutes(RECIPES["best-ensemble-v1"], "NvidiaTeslaT4")
    assert planned.at_once == 2 and len(planned.member_minutes) == 3
    # Two at a time: the residual network on one GPU, the two strong models after each other on the other.
    first, second, third = planned.member_minutes
    assert planned.session_minutes == pytest.approx(plan.START_MINUTES + max(first, second + third))
    assert planned.gpu_minutes == pytest.approx(first + second + third)
    assert list(plan.GPUS) == ["NvidiaTeslaT4"]  # the P100 is retired on Kaggle
    for wrong in ("0,0", "a", ""):
        with pytest.raises(SystemExit) as exit_:
            best.main(["--gpus", wrong])
        assert exit_.value.code == 2
        usage_error_line(capsys.readouterr().err, f"argument --gpus: '{wrong}': expected distinct GPU indices "
                         "separated by commas, e.g. 0,1")


def test_the_kernels_log_is_followed_live_where_kaggle_streams_it(fake, kaggle_json, tmp_path, capsys):
    fake.runner = lambda text, body, competition: CannedRun(
        canned_outputs(tmp_path / "working", competition.test_labels), polls=4,
        log=["kaggle-best: recipe fast, project code abc", "[NbConvertApp] Executing notebook with kernel: python3",
             "best: member-1: strong-fast seed 0, 11 epochs", "kaggle-best: done in 6.0 min"])
    assert run(tmp_path / "models") == 0
    out = capsys.readouterr().out
    followed = [line for line in out.splitlines() if line.startswith("kaggle-best: | ")]
    assert followed == ["kaggle-best: | kaggle-best: recipe fast, project code abc",
                        "kaggle-best: | best: member-1: strong-fast seed 0, 11 epochs",
                        "kaggle-best: | kaggle-best: done in 6.0 min"], "each line once, in order, Jupyter's left out"
    assert fake.count("logs/stream") >= 1 and "kaggle-best: RUNNING" in out


def test_without_a_log_stream_the_status_lines_go_on(fake, kaggle_json, tmp_path, capsys):
    fake.fail("logs/stream", 404)
    assert run(tmp_path / "models") == 0
    out = capsys.readouterr().out
    assert "kaggle-best: no live log (kernel " in out and "its status every" in out
    assert "kaggle-best: RUNNING" in out and not [line for line in out.splitlines() if line.startswith("kaggle-best: | ")]
    assert (tmp_path / "models" / "recipe-fast-kaggle" / "submission.csv").is_file()


def test_the_kernel_trains_the_pair_models_after_the_recipe_and_they_land_where_make_tflite_looks(
        digits, kaggle_json, tmp_path, monkeypatch, capsys):
    from competition.config import PAIR_RUNS_DIR
    from competition.training.pair_runs import find_pair_run

    models = tmp_path / "models"
    with FakeKaggle(digits) as server:
        monkeypatch.setenv("KAGGLE_LOCALHOST_PORT", str(server.port))
        assert run(models, "--epochs", "1", "--pair_models") == 0
        working = server.kernels[SLUG][0]["run"].working
    out = capsys.readouterr().out
    assert "then the pair models, about 0 min on one GPU" in out  # a trial: 2,000 pieces, one epoch
    log = (working / bootstrap.LOG_FILE).read_text()
    assert log.index("$ python -m competition.best --recipe fast") < log.index(
        "$ python -m competition.train_pairs --data_dir ") and "--epochs 1 --examples 2000" in log
    assert json.loads((working / bootstrap.RUN_FILE).read_text())["pair_models"] is True
    target = models / "recipe-fast-kaggle"
    assert not (target / PAIR_RUNS_DIR).exists(), "moved out of the recipe's folder"
    [member] = [p for p in target.iterdir() if p.name.endswith("-member-1")]
    sha = json.loads((member / "data_fingerprint.json").read_text())["sha256"]
    for design in PAIR_DESIGNS:  # as make tflite finds them: by the exported run's data
        found = find_pair_run(models, design, sha)
        assert found and found.parent == models / PAIR_RUNS_DIR
        trained = working / PAIR_RUNS_DIR / found.name
        assert (found / "model.keras").read_bytes() == (trained / "model.keras").read_bytes()
        config = json.loads((found / "config.json").read_text())
        assert config["examples"] == 2000 and config["epochs"] == 1
    assert "kaggle-best: the pair models " in out and f"-> {models / PAIR_RUNS_DIR}" in out


def test_make_best_says_every_recipes_minutes_on_kaggle_and_none_for_presets_without_a_rate():
    import dataclasses

    for recipe in RECIPES.values():  # a recipe added without a T4 rate for its presets fails here
        line = plan.elsewhere(recipe)
        assert line.startswith("on Kaggle's two Tesla T4s instead (make kaggle-best): ") and "a guess" in line
    assert plan.elsewhere(dataclasses.replace(RECIPES["fast"], members=(("report", 2),))) is None


def test_the_plan_adds_the_pair_models_minutes_after_the_recipe():
    alone, both = (plan.plan_minutes(RECIPES["best-ensemble"], plan.DEFAULT_GPU, None, pairs) for pairs in (False, True))
    assert both.pair_minutes == pytest.approx(plan.pair_minutes()) and alone.pair_minutes == 0
    assert both.session_minutes == pytest.approx(alone.session_minutes + both.pair_minutes)
    assert both.gpu_minutes == pytest.approx(alone.gpu_minutes + both.pair_minutes)
    made = sum(p["examples"] * 1.1 / plan.PAIR_MAKING_RATES[d] for d, p in plan.PAIR_PRESETS.items())
    trained = sum(p["examples"] * p["epochs"] / plan.PAIR_RATES[d] for d, p in plan.PAIR_PRESETS.items())
    assert plan.pair_minutes() == pytest.approx((made + trained) / 60)
