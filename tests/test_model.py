import keras
import numpy as np
import pytest

from competition.model import designs


def layer_kinds(model):
    return [type(layer).__name__ for layer in model.layers]


def test_report_model_layer_for_layer():
    model = designs.report_model()
    assert model.count_params() == 858_122  # the report's figure
    assert layer_kinds(model) == [
        "Rescaling",
        "Conv2D", "MaxPooling2D", "BatchNormalization", "Dropout",
        "Conv2D", "MaxPooling2D", "BatchNormalization", "Dropout",
        "Flatten", "Dense", "Dropout", "Dense",
    ]
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size, c.padding) for c in convs] == [(32, (5, 5), "same"), (64, (5, 5), "same")]
    assert model.get_layer(index=9).output.shape[-1] == 3136  # Flatten, as the report says
    assert [d.rate for d in model.layers if isinstance(d, keras.layers.Dropout)] == [0.25, 0.25, 0.5]
    assert model.layers[-1].activation.__name__ == "softmax"


def test_reports_tuned_model_builds_to_its_parameter_count():
    model = designs.make_cnn(conv_filters=(64, 64, 128, 128), kernel_size=5, fc_units=(256,))
    assert model.count_params() == 755_914
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert non_trainable == 768


def test_model_takes_raw_pixels():
    """Rescaling is inside the model: 0..255 input gives the same output as the scaled maths."""
    model = designs.report_model()
    x = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 1)).astype(np.float32)
    rescale = model.layers[0]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(rescale(x)), x / 255, rtol=1e-6)
    probs = model.predict(x, verbose=0)
    assert probs.shape == (2, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="unknown architecture .vit.; choose from report, strong, resnet, vgg, wresnet"):
        designs.build("vit")


def test_strong_model_is_the_kaggle_design():
    model = designs.build("strong")
    assert model.count_params() == 327_242
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size[0], c.strides[0]) for c in convs] == [
        (32, 3, 1), (32, 3, 1), (32, 5, 2), (64, 3, 1), (64, 3, 1), (64, 5, 2), (128, 4, 1)]
    assert not any(isinstance(layer, keras.layers.MaxPooling2D) for layer in model.layers)
    assert {d.rate for d in model.layers if isinstance(d, keras.layers.Dropout)} == {0.4}


@pytest.mark.parametrize("arch, filters", [("strong", [16, 16, 16, 32, 32, 32, 64]), ("resnet", [16, 24, 24, 24, 48, 48, 48]),
                                           ("vgg", [64] * 9), ("wresnet", [64, 64, 64, 128, 128, 128, 256, 256, 256])])
def test_width_scales_every_layers_filters_and_dropout_is_set(arch, filters):
    model = designs.build(arch, width=0.5, dropout=0.1)
    assert [c.filters for c in model.layers if isinstance(c, keras.layers.Conv2D)] == filters
    assert {d.rate for d in model.layers if isinstance(d, keras.layers.Dropout)} == {0.1}


def test_the_reports_design_refuses_a_width_or_dropout():
    with pytest.raises(ValueError, match="--width and --dropout are for the other designs"):
        designs.build("report", width=0.5)


def test_resnet_model_has_two_residual_blocks_and_global_pooling():
    model = designs.build("resnet")
    assert model.count_params() == 265_770
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert [tuple(add.output.shape[1:]) for add in adds] == [(14, 14, 48), (7, 7, 96)]
    # each shortcut is the identity: the block's input joins its output unchanged
    assert [add.input[0].shape[-1] for add in adds] == [48, 96]
    assert any(isinstance(layer, keras.layers.GlobalAveragePooling2D) for layer in model.layers)
    assert not any(isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.Flatten)) for layer in model.layers)
    x = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0).sum(axis=1), 1, rtol=1e-5)


def convolutions(model):
    return [(c.filters, c.kernel_size[0], c.strides[0]) for c in model.layers if isinstance(c, keras.layers.Conv2D)]


def test_vgg_model_is_nine_normed_convolutions_with_gates_and_both_global_poolings():
    model = designs.build("vgg", width=1 / 16)  # tiny: 8 filters; width 1 is Matuzas77's 128
    assert convolutions(model) == [(8, 3, 1)] * 9
    kinds = layer_kinds(model)
    # batch norm right after every convolution, no bias before it
    assert [kinds[i + 1] for i, kind in enumerate(kinds) if kind == "Conv2D"] == ["BatchNormalization"] * 9
    assert not any(c.use_bias for c in model.layers if isinstance(c, keras.layers.Conv2D))
    gates = [layer for layer in model.layers if isinstance(layer, keras.layers.Multiply)]
    assert [tuple(gate.output.shape[1:]) for gate in gates] == [(28, 28, 8), (14, 14, 8), (7, 7, 8)]
    assert kinds.count("GlobalMaxPooling2D") == 1 and model.get_layer(index=-3).output.shape[-1] == 16  # max + mean
    assert kinds.count("MaxPooling2D") == 2 and "Flatten" not in kinds
    x = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0).sum(axis=1), 1, rtol=1e-5)


def test_wresnet_model_has_a_5x5_stem_and_three_widening_residual_stages():
    model = designs.build("wresnet", width=1 / 16)  # 8, 16, 32 filters; width 1 is ttdoucet's 128, 256, 512
    assert convolutions(model) == [(8, 5, 1), (8, 3, 1), (8, 3, 1), (16, 3, 2), (16, 3, 1), (16, 3, 1),
                                   (32, 3, 2), (32, 3, 1), (32, 3, 1)]
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert [tuple(add.output.shape[1:]) for add in adds] == [(28, 28, 8), (14, 14, 16), (7, 7, 32)]
    assert layer_kinds(model).count("BatchNormalization") == 9
    assert any(isinstance(layer, keras.layers.GlobalAveragePooling2D) for layer in model.layers)


@pytest.mark.parametrize("preset", ["vgg-wide", "wresnet-wide"])
def test_the_wide_presets_train_one_step_and_export_through_the_same_builder(preset, tmp_path):
    from competition.config import PRESETS, TrainConfig

    cfg = TrainConfig(**{**PRESETS[preset], "width": 1 / 16})
    model = designs.compile_model(designs.for_config(cfg), cfg.learning_rate, ema=cfg.ema)
    x = np.random.default_rng(0).integers(0, 256, (8, 28, 28, 1)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(8)]
    before = model.get_weights()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_mixed_bfloat16_computes_in_bfloat16_with_float32_weights_and_output():
    with designs.precision("mixed_bfloat16"):
        model = designs.build("strong")
    assert keras.config.dtype_policy().name == "float32"  # only layers built inside change
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert conv.compute_dtype == "bfloat16" and conv.kernel.dtype == "float32"
    assert model.layers[-1].compute_dtype == "float32"
    x = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1)).astype(np.float32)
    probs = model.predict(x, verbose=0)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)


def test_unknown_precision_is_refused_and_leaves_the_policy_alone():
    with pytest.raises(ValueError, match="unknown precision 'float16'; choose from float32, mixed_bfloat16"):
        with designs.precision("float16"):
            pass
    assert keras.config.dtype_policy().name == "float32"
