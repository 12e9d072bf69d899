import json

import keras_tuner as kt
import pytest

from competition.config import TrainConfig
from competition.model import search_space
from competition.model.designs import make_cnn
from competition.training.trainer import model_for
from competition.training.tuning import hyperband_plan


def test_space_is_the_reports_seven_hyperparameters():
    assert list(search_space.SPACE) == [
        "conv_block_dropout", "conv_kernel_size", "n_conv_blocks", "filter_combination_choice",
        "n_fc_layers", "fc_units_combination_choice", "fc_dropout",
    ]
    assert search_space.SPACE["conv_block_dropout"] == [0.125, 0.25, 0.375, 0.5]
    assert search_space.SPACE["fc_dropout"] == [0.125, 0.25, 0.5]
    assert all(len(search_space.FILTER_COMBINATIONS[n]) == 4 for n in (2, 3, 4))
    assert search_space.FC_UNITS_COMBINATIONS[3] == ([512, 256, 128], [256, 128, 64])


def test_reports_best_configuration_builds_to_755914_parameters():
    kwargs = search_space.cnn_kwargs(search_space.REPORT_BEST)
    assert kwargs["conv_filters"] == [64, 64, 128, 128] and kwargs["fc_units"] == [256]
    assert make_cnn(**kwargs).count_params() == 755_914


def test_every_point_of_the_space_builds():
    hp = kt.HyperParameters()
    model = search_space.build_model(hp)
    assert set(hp.values) == set(search_space.SPACE)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-4)
    for depth, combos in search_space.FILTER_COMBINATIONS.items():
        for choice in range(4):
            values = {**search_space.REPORT_BEST, "n_conv_blocks": depth, "filter_combination_choice": choice,
                      "n_fc_layers": 3, "fc_units_combination_choice": 0}
            model = make_cnn(**search_space.cnn_kwargs(values))
            assert model.output_shape == (None, 10)


def test_missing_hyperparameters_are_named():
    with pytest.raises(KeyError, match="fc_dropout"):
        search_space.cnn_kwargs({k: v for k, v in search_space.REPORT_BEST.items() if k != "fc_dropout"})


def test_hyperband_plan_matches_the_reports_90_trials():
    assert hyperband_plan(40, 3, 1)[0] == 90  # the report's search: 90 trials
    assert hyperband_plan(9, 3, 1) == (23, 75)  # the default, about an hour here
    assert hyperband_plan(9, 3, 2) == (46, 150)


def test_training_builds_the_searched_model_from_its_json(tmp_path):
    path = tmp_path / "best_hyperparameters.json"
    path.write_text(json.dumps({"hyperparameters": search_space.REPORT_BEST}))
    model, values = model_for(TrainConfig(hparams=str(path), precision="float32"))
    assert model.count_params() == 755_914 and values == search_space.REPORT_BEST
