"""Shared fixtures: the demo set written to a temp folder, and one tiny trained run."""

import pytest

from competition import startup

startup.begin()  # as every command does: Keras on TensorFlow, its start-up lines quieted

from competition.config import TrainConfig
from competition.data.demo import write_demo_data


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    write_demo_data(folder)
    return folder


@pytest.fixture(scope="session")
def trained_run(demo_dir, tmp_path_factory):
    """One epoch of the report's model with augmentation on the demo set."""
    from competition.training import trainer

    models_dir = tmp_path_factory.mktemp("models")
    cfg = TrainConfig(name="tiny", data_dir=str(demo_dir), models_dir=str(models_dir), epochs=1,
                      augment=True, batch_size=64)
    return trainer.train_model(cfg)
