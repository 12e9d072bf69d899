"""The main suite's demo set, and one tiny CV (folds 1 and 3 of 3 trained) for the scripts that read one."""

import json

import pytest

from tests.conftest import demo_dir  # noqa: F401  (a fixture: the demo set written to a temp folder)


@pytest.fixture(scope="session")
def tiny_cv(demo_dir, tmp_path_factory):  # noqa: F811
    """models/cv-e: the report's model, 1 epoch, folds 1 and 3 of a 3-fold CV; fold 2 is left untrained."""
    from competition import cv

    models_dir = tmp_path_factory.mktemp("models")
    args = ["--data_dir", str(demo_dir), "--models_dir", str(models_dir), "--epochs", "1", "--batch_size", "128"]
    assert cv.main([*args, "--k", "3", "--folds", "1", "3", "--name", "e"]) == 0
    folder = models_dir / "cv-e"
    assert sorted(f["fold"] for f in json.loads((folder / "cv.json").read_text())["folds"]) == [1, 3]
    return folder
