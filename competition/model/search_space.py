"""The report's hyperparameter search space (../shared/REPORT.md, model 3), as plain data.

`cnn_kwargs(values)` turns the 7 hyperparameter values into make_cnn's arguments; `build_model(hp)`
only reads hyperparameters and calls it, so tuning and training share one model function.
"""

from __future__ import annotations

from competition.config import TrainConfig
from competition.model.designs import compile_model, make_cnn

# The report does not list its filter combinations: 4 per depth, widening with depth as the
# report's best model does. Index 2 at depth 4 is that model: 755,914 parameters.
FILTER_COMBINATIONS = {
    2: ([32, 64], [64, 64], [64, 128], [128, 128]),
    3: ([32, 64, 64], [32, 64, 128], [64, 64, 128], [64, 128, 128]),
    4: ([32, 32, 64, 64], [32, 64, 64, 128], [64, 64, 128, 128], [64, 128, 128, 256]),
}
# As the report: per number of dense layers, two choices of units.
FC_UNITS_COMBINATIONS = {
    1: ([128], [256]),
    2: ([128, 64], [256, 128]),
    3: ([512, 256, 128], [256, 128, 64]),
}
# The 7 hyperparameters and their values, in the report's names.
SPACE = {
    "conv_block_dropout": [0.125, 0.25, 0.375, 0.5],
    "conv_kernel_size": [5],
    "n_conv_blocks": [2, 3, 4],
    "filter_combination_choice": [0, 1, 2, 3],
    "n_fc_layers": [1, 2, 3],
    "fc_units_combination_choice": [0, 1],
    "fc_dropout": [0.125, 0.25, 0.5],
}
# The report's best model, for reference and tests.
REPORT_BEST = {
    "conv_block_dropout": 0.25,  # not given in the report
    "conv_kernel_size": 5,
    "n_conv_blocks": 4,
    "filter_combination_choice": 2,
    "n_fc_layers": 1,
    "fc_units_combination_choice": 1,
    "fc_dropout": 0.5,  # not given in the report
}


def cnn_kwargs(values: dict) -> dict:
    """make_cnn's arguments for a set of hyperparameter values (extra keys are ignored)."""
    missing = [name for name in SPACE if name not in values]
    if missing:
        raise KeyError(f"hyperparameters missing: {', '.join(missing)}")
    return {
        "conv_filters": FILTER_COMBINATIONS[values["n_conv_blocks"]][values["filter_combination_choice"]],
        "kernel_size": values["conv_kernel_size"],
        "conv_dropout": values["conv_block_dropout"],
        "fc_units": FC_UNITS_COMBINATIONS[values["n_fc_layers"]][values["fc_units_combination_choice"]],
        "fc_dropout": values["fc_dropout"],
    }


def build_model(hp, learning_rate: float = TrainConfig.learning_rate):
    """keras-tuner's hypermodel: declares the space on `hp`, then builds and compiles."""
    values = {name: hp.Choice(name, choices) for name, choices in SPACE.items()}
    return compile_model(make_cnn(**cnn_kwargs(values), name="tuned"), learning_rate)
