"""Shared fixtures: the demo set written to a temp folder, and one tiny trained run."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest

from competition.config import TrainConfig
from competition.demo_data import write_demo_data


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    write_demo_data(folder)
    return folder


@pytest.fixture(scope="session")
def trained_run(demo_dir, tmp_path_factory):
    """One epoch of the report's model with augmentation on the demo set."""
    from competition import training

    models_dir = tmp_path_factory.mktemp("models")
    cfg = TrainConfig(name="tiny", data_dir=str(demo_dir), models_dir=str(models_dir), epochs=1,
                      augment=True, batch_size=64)
    return training.run(cfg)
