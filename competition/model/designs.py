"""The one model definition that training, tuning and export share.

Five designs, by name (--arch): `report` is the report's CNN, built by `make_cnn`, plain model code
(conv blocks Conv2D -> MaxPool -> BatchNorm -> Dropout, then dense layers, then a softmax) of which
every tuned model is a call too, tuning only picking its arguments; `strong` (stacked 3x3
convolutions, strided convolutions in place of pooling) and `resnet` (residual blocks) are the
narrow designs of the recipes beyond the report; `vgg` and `wresnet` are the wide designs of the
accuracy anchors, at their widths at --width 1. Every model takes raw 0..255 pixels (a Rescaling layer
scales them to [0, 1], the report's MinMaxScaler), so nothing outside it, an exported TFLite file
included, repeats the preprocessing. Its softmax is always float32, so a model built under
`precision("mixed_bfloat16")` trains in bfloat16 but still outputs float32 probabilities.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import keras

from common.errors import ConfigError
from competition.config import COMPUTE_PRECISIONS, IMAGE_SIZE, NUM_CLASSES, TrainConfig


def make_cnn(
    conv_filters: Sequence[int] = (32, 64),
    kernel_size: int = 5,
    conv_dropout: float = 0.25,
    fc_units: Sequence[int] = (256,),
    fc_dropout: float = 0.5,
    name: str = "cnn",
) -> keras.Model:
    layers = [keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="pixels"), keras.layers.Rescaling(1 / 255)]
    for filters in conv_filters:
        layers += [
            keras.layers.Conv2D(filters, kernel_size, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(conv_dropout),
        ]
    layers.append(keras.layers.Flatten())
    for units in fc_units:
        layers += [keras.layers.Dense(units, activation="relu"), keras.layers.Dropout(fc_dropout)]
    layers.append(probability_layer())
    return keras.Sequential(layers, name=name)


def probability_layer() -> keras.layers.Layer:
    # float32 whatever the compute precision: the softmax and the loss need its range.
    return keras.layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="probabilities")


def report_model() -> keras.Model:
    """The report's model 1 and 2: 858,122 parameters."""
    return make_cnn((32, 64), 5, 0.25, (256,), 0.5, name="report")


def scaled(filters: int, width: float) -> int:
    return max(1, round(filters * width))


def conv_bn(x, filters: int, kernel: int = 3, strides: int = 1, relu: bool = True):
    """A convolution with batch norm after it (no bias: the norm's shift is one), then ReLU."""
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.ReLU()(x) if relu else x


def residual(x):
    """Two 3x3 convolutions with batch norm beside an identity shortcut, added, then ReLU."""
    y = conv_bn(conv_bn(x, x.shape[-1]), x.shape[-1], relu=False)
    return keras.layers.ReLU()(keras.layers.Add()([x, y]))


def squeeze_excite(x, ratio: int = 8):
    """Squeeze-and-excitation (Hu et al. 2018): each channel rescaled by a gate computed from the
    whole image's mean of every channel."""
    channels = x.shape[-1]
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    gate = keras.layers.Dense(max(1, channels // ratio), activation="relu")(gate)
    gate = keras.layers.Dense(channels, activation="sigmoid")(gate)
    return keras.layers.Multiply()([x, gate])


def strong_model(width: float = TrainConfig.width, dropout: float = TrainConfig.dropout) -> keras.Model:
    """Beyond the report: the best honest Kaggle design for these digits (C. Deotte, 2018).

    Stacks of 3x3 convolutions with batch norm, a strided 5x5 convolution in place of pooling,
    dropout 0.4; 327,242 parameters. `width` scales every layer's filters (FLOPs by about its square).
    """

    def conv(filters: int, kernel: int, strides: int = 1, padding: str = "valid") -> list[keras.layers.Layer]:
        return [keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding, activation="relu"),
                keras.layers.BatchNormalization()]

    layers = [keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="pixels"), keras.layers.Rescaling(1 / 255)]
    for filters in (scaled(32, width), scaled(64, width)):
        layers += [*conv(filters, 3), *conv(filters, 3), *conv(filters, 5, strides=2, padding="same"),
                   keras.layers.Dropout(dropout)]
    layers += [*conv(scaled(128, width), 4), keras.layers.Flatten(), keras.layers.Dropout(dropout),
               probability_layer()]
    return keras.Sequential(layers, name="strong")


def resnet_model(width: float = TrainConfig.width, dropout: float = TrainConfig.dropout) -> keras.Model:
    """A small residual network: a second design whose errors differ from the strong model's.

    A 3x3 stem, then at 14x14 and at 7x7 a strided 3x3 convolution and a residual block (two 3x3
    convolutions with batch norm and an identity shortcut), global average pooling, dropout 0.4;
    265,770 parameters and about 1.4x the strong model's multiply-adds. Ensembles of one design
    saturate because their members miss the same digits; members of another design help more.
    """

    pixels = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="pixels")
    x = conv_bn(keras.layers.Rescaling(1 / 255)(pixels), scaled(32, width))
    for filters in (scaled(48, width), scaled(96, width)):
        x = residual(conv_bn(x, filters, strides=2))
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(dropout)(x)
    return keras.Model(pixels, probability_layer()(x), name="resnet")


def vgg_model(width: float = TrainConfig.width, dropout: float = TrainConfig.dropout) -> keras.Model:
    """Built for accuracy, after Matuzas77/MNIST-0.17: nine 3x3 convolutions of 128 filters at
    width 1, batch norm after every one, three at each of 28x28, 14x14 and 7x7 (max pooling between),
    a squeeze-and-excitation gate after each three, then global max and average pooling side by
    side. Its FLOPs at each width: docs/experiments.md."""
    filters = scaled(128, width)
    pixels = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="pixels")
    x = keras.layers.Rescaling(1 / 255)(pixels)
    for stage in range(3):
        if stage:
            x = keras.layers.MaxPooling2D(2)(x)
        for _ in range(3):
            x = conv_bn(x, filters)
        x = squeeze_excite(x)
    x = keras.layers.Concatenate()([keras.layers.GlobalMaxPooling2D()(x), keras.layers.GlobalAveragePooling2D()(x)])
    x = keras.layers.Dropout(dropout)(x)
    return keras.Model(pixels, probability_layer()(x), name="vgg")


def wresnet_model(width: float = TrainConfig.width, dropout: float = TrainConfig.dropout) -> keras.Model:
    """Built for accuracy, after ttdoucet/mnist: a 5x5 stem of 128 filters at width 1, then a
    residual block at 28x28 (128), 14x14 (256) and 7x7 (512), each entered by a strided 3x3
    convolution, global average pooling: the resnet design, wider and one stage longer."""

    pixels = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="pixels")
    x = conv_bn(keras.layers.Rescaling(1 / 255)(pixels), scaled(128, width), kernel=5)
    x = residual(x)
    for filters in (scaled(256, width), scaled(512, width)):
        x = residual(conv_bn(x, filters, strides=2))
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(dropout)(x)
    return keras.Model(pixels, probability_layer()(x), name="wresnet")


# Architectures selectable by name (--arch), in config.ARCH_NAMES' order.
ARCHITECTURES = {"report": report_model, "strong": strong_model, "resnet": resnet_model, "vgg": vgg_model,
                 "wresnet": wresnet_model}


def build(arch: str, width: float = TrainConfig.width, dropout: float = TrainConfig.dropout) -> keras.Model:
    """The design `arch`; all but report with their filters scaled by `width` and their dropout."""
    if arch not in ARCHITECTURES:
        raise ConfigError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    if arch == "report":
        if (width, dropout) != (TrainConfig.width, TrainConfig.dropout):
            raise ConfigError("the report's design has its own widths and dropout: --width and --dropout are for "
                             "the other designs")
        return report_model()
    return ARCHITECTURES[arch](width, dropout)


def for_config(cfg) -> keras.Model:
    """The design a TrainConfig names (its arch, width and dropout)."""
    return build(cfg.arch, cfg.width, cfg.dropout)


@contextlib.contextmanager
def precision(name: str) -> Iterator[None]:
    """Layers built inside compute in `name` (Keras fixes a layer's dtype policy when it is made)."""
    if name not in COMPUTE_PRECISIONS:
        raise ConfigError(f"unknown precision {name!r}; choose from {', '.join(COMPUTE_PRECISIONS)}")
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def one_cycle(peak: float, steps: int, warmup: float) -> keras.optimizers.schedules.LearningRateSchedule:
    """--schedule onecycle's rate at each of `steps` steps: a rise from peak / 25 to `peak` over
    `warmup` of them, then a cosine to zero (Keras' warm-up-then-cosine schedule)."""
    rise = int(round(steps * warmup))
    return keras.optimizers.schedules.CosineDecay(peak / 25, decay_steps=max(steps - rise, 1), warmup_target=peak,
                                                  warmup_steps=rise)


def compile_model(model: keras.Model, learning_rate: float, jit_compile: bool | str = "auto",
                  ema: float = 0.0, label_smoothing: float = 0.0) -> keras.Model:
    """The report's compile: Adam, categorical cross-entropy, accuracy, precision, recall, F1.

    ema > 0: Adam also keeps a moving average of the weights, which fit swaps in at its end.
    label_smoothing > 0: the loss aims at 1 - label_smoothing for the true digit, not 1.

    jit_compile "auto" means no XLA on a CPU-only machine, where scripts/bench_speed.py measured it
    slower (docs/speed.md).
    """
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, use_ema=ema > 0, ema_momentum=ema or 0.99),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        metrics=[
            "accuracy",
            keras.metrics.Precision(name="precision"),  # threshold 0.5 on the softmax, as the report
            keras.metrics.Recall(name="recall"),
            keras.metrics.F1Score(average="micro", threshold=0.5, name="f1"),
        ],
        jit_compile=jit_compile,
    )
    return model


# ---- The reader's pair models (issue 43): designs of ordinary runs, trained by competition.train_pairs ----
# Kept in one block at the end of the module, apart from the digit designs above.

def pair_finder_model() -> keras.Model:
    """Is a piece of ink one digit or two that touch? Three convolutions and a dense layer (240,514
    parameters), a piece as MNIST lays out a digit (28x28, raw 0..255 pixels) in, (one digit, two
    digits) probabilities out. Half as wide missed more pairs (docs/experiments.md, "The pair model")."""
    return keras.Sequential([
        keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="pixels"), keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(128, 3, activation="relu"), keras.layers.Flatten(), keras.layers.Dropout(0.3),
        keras.layers.Dense(128, activation="relu"), keras.layers.Dense(2, activation="softmax", name="pair"),
    ], name="pair_finder")


def pair_reader_model(field: tuple[int, int]) -> keras.Model:
    """Which two digits touch? Three convolutions and a dense layer (1,081,108 parameters at 28x56),
    raw 0..255 pixels of a pair laid out in `field` (the reader's PAIR_FIELD) in, the left digit's
    ten probabilities and the right's out, as two outputs to train."""
    pixels = keras.Input((*field, 1), name="pixels")
    x = keras.layers.Rescaling(1 / 255)(pixels)
    for filters in (32, 64):
        x = keras.layers.MaxPooling2D()(keras.layers.Conv2D(filters, 3, activation="relu")(x))
    x = keras.layers.Dropout(0.3)(keras.layers.Flatten()(keras.layers.Conv2D(128, 3, activation="relu")(x)))
    x = keras.layers.Dense(256, activation="relu")(x)
    sides = [keras.layers.Dense(NUM_CLASSES, activation="softmax", name=side)(x) for side in ("left", "right")]
    return keras.Model(pixels, sides, name="pair_reader")


def pair_reader_sides(model: keras.Model) -> keras.Model:
    """The trained pair reader's layers with its two outputs as one tensor (left, then right): what
    is saved and exported, as the interpreter reads a digit model's one output."""
    return keras.Model(model.inputs, keras.layers.Concatenate(name="sides")(model.outputs), name="pair_reader")


def pair_finders_merged(finders: list[keras.Model]) -> keras.Model:
    """Trained finders as one model that make tflite exports: the same pixels into each, a piece
    two digits as far as the least sure of them says so ((one digit, two digits) = (the largest
    first probability, the smallest second), which still sum to 1)."""
    pixels = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="pixels")
    # Each under a name of its own: trained apart, both are called "pair_finder".
    called = [keras.Model(finder.inputs, finder.outputs[0], name=f"finder_{k}")(pixels)
              for k, finder in enumerate(finders)]
    one, two = keras.layers.Maximum()(called)[:, :1], keras.layers.Minimum()(called)[:, 1:]
    return keras.Model(pixels, keras.layers.Concatenate(name="pair")([one, two]), name="pair_finders")
