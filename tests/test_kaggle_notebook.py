"""The kernel as Kaggle runs it: the pushed script as the one cell of a notebook, executed by nbconvert
in a Jupyter kernel of .venv-kaggle (Kaggle's TensorFlow 2.19, Keras 3.13, numpy 2.1, pandas 2.3,
scikit-learn 1.6, as near as PyPI allows: tests/requirements-kaggle.txt; Python is this machine's 3.11,
Kaggle's is 3.12), in a folder laid out as Kaggle's /kaggle, against the fake Kaggle; its output fetched
and submitted. `make test` installs .venv-kaggle and names it in DIGITS_KAGGLE_RUNTIME: then a missing
one fails; a plain pytest without it skips these.
"""

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from test_kaggle import FAST, competition_data, kaggle_json  # noqa: F401  (fixtures)
from test_kaggle_best import QUICK, SLUG, digits  # noqa: F401  (fixtures)

from competition import kaggle_best, submit
from competition.config import ROOT
from competition.kaggle import bootstrap
from fake_kaggle import FakeKaggle, NotebookRun

REQUIRED = os.environ.get("DIGITS_KAGGLE_RUNTIME")
RUNTIME = Path(REQUIRED or ROOT / ".venv-kaggle" / "bin" / "python").absolute()  # the notebook runs elsewhere
KAGGLE_VERSIONS = {"tensorflow": "2.19", "keras": "3.13", "numpy": "2.1", "pandas": "2.3", "scikit-learn": "1.6"}


@pytest.fixture(scope="module")
def runtime():
    if not RUNTIME.exists():
        message = f"{RUNTIME}: no Kaggle-like environment (make .venv-kaggle/.installed makes it)"
        pytest.fail(message) if REQUIRED else pytest.skip(message)
    return RUNTIME


def notebook_runner(runtime, gpu: bool = True):
    return lambda text, body, competition: NotebookRun(text, {**body, "enableGpu": gpu and body["enableGpu"]},
                                                       competition, runtime)


def test_the_kernel_runs_as_a_notebook_on_kaggles_libraries_then_submits(runtime, digits, kaggle_json, tmp_path,
                                                                        monkeypatch, capsys):
    models = tmp_path / "models"
    with FakeKaggle(digits, runner=notebook_runner(runtime)) as server:
        monkeypatch.setenv("KAGGLE_LOCALHOST_PORT", str(server.port))
        assert kaggle_best.main(["--recipe", "fast", "--models_dir", str(models), *QUICK, "--epochs", "1",
                                 "--poll_s", "0.5"]) == 0
        [pushed] = server.kernels[SLUG]
        ran_in = pushed["run"]
        # Run the way Kaggle runs a script: one cell, executed in a Jupyter kernel, then rendered.
        [cell] = json.loads((ran_in.source / "__notebook__.ipynb").read_text())["cells"]
        assert "".join(cell["source"]) == pushed["text"] and (ran_in.source / "__results__.html").is_file()
        outputs = cell["outputs"]  # the kit's lines, in the notebook as in the log; no error
        assert {output["output_type"] for output in outputs} == {"stream"}
        assert "kaggle-best: done in " in "".join("".join(output["text"]) for output in outputs)
        lines = [event["data"].rstrip("\n") for event in ran_in.log()]
        assert "[NbConvertApp] Writing" in lines[-1] and "__results__.html" in lines[-1]  # as Kaggle's log ends
        log = (ran_in.working / bootstrap.LOG_FILE).read_text()
        assert "kaggle-best: running on Kaggle's own tensorflow 2.19." in log
        assert f"--data_dir {ran_in.input} " in log and "best: member-1: strong-fast seed 0, 1 epochs" in log
        versions = json.loads((ran_in.working / bootstrap.RUN_FILE).read_text())["versions"]
        assert {name: ".".join(v.split(".")[:2]) for name, v in versions.items()} == KAGGLE_VERSIONS

        out = capsys.readouterr().out
        assert f"files -> {models / 'recipe-fast-kaggle'}" in out
        data = competition_data(digits, tmp_path)
        assert submit.main(["--data_dir", str(data), "--models_dir", str(models), *QUICK]) == 0
        [sent] = server.submissions
        assert sent["description"].startswith("recipe-fast-kaggle") and sent["status"] == "COMPLETE"
        labels = pd.read_csv(models / "recipe-fast-kaggle" / "submission.csv")["Label"].to_numpy()
        assert float(sent["publicScore"]) == pytest.approx((labels == digits.test_labels).mean(), abs=1e-5)


def test_a_notebook_that_stops_is_an_error_with_the_kits_reason_not_nbconverts(runtime, digits, kaggle_json, tmp_path,
                                                                              monkeypatch, capsys):
    """A kernel without its GPU: the cell's sys.exit(5) fails the notebook (Kaggle marks it ERROR), and
    the reason given is the kit's own line, though nbconvert's lines end the log."""
    with FakeKaggle(digits, runner=notebook_runner(runtime, gpu=False)) as server:
        monkeypatch.setenv("KAGGLE_LOCALHOST_PORT", str(server.port))
        assert kaggle_best.main(["--recipe", "fast", "--models_dir", str(tmp_path / "models"), *QUICK]) == 1
        lines = [event["data"].rstrip("\n") for event in server.kernels[SLUG][0]["run"].log()]
        assert "NbConvertApp" in lines[-1]
    err = capsys.readouterr().err
    [why] = [line for line in err.splitlines() if line.startswith("error:")]
    assert why.startswith(f"error: kernel {SLUG} version 1 ended ERROR on Kaggle: this kernel sees no GPU "
                          "(nvidia-smi lists none)")
    assert "NbConvertApp" not in err
