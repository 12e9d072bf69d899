import keras
import numpy as np
import pytest

from competition.model import designs as models


def layer_kinds(model):
    return [type(layer).__name__ for layer in model.layers]


def test_report_model_layer_for_layer():
    model = models.report_model()
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
    model = models.make_cnn(conv_filters=(64, 64, 128, 128), kernel_size=5, fc_units=(256,))
    assert model.count_params() == 755_914
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert non_trainable == 768


def test_model_takes_raw_pixels():
    """Rescaling is inside the model: 0..255 input gives the same output as the scaled maths."""
    model = models.report_model()
    x = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 1)).astype(np.float32)
    rescale = model.layers[0]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(rescale(x)), x / 255, rtol=1e-6)
    probs = model.predict(x, verbose=0)
    assert probs.shape == (2, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="unknown architecture .vit.; choose from report, strong, resnet"):
        models.build("vit")


def test_strong_model_is_the_kaggle_design():
    model = models.build("strong")
    assert model.count_params() == 327_242
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size[0], c.strides[0]) for c in convs] == [
        (32, 3, 1), (32, 3, 1), (32, 5, 2), (64, 3, 1), (64, 3, 1), (64, 5, 2), (128, 4, 1)]
    assert not any(isinstance(layer, keras.layers.MaxPooling2D) for layer in model.layers)
    assert {d.rate for d in model.layers if isinstance(d, keras.layers.Dropout)} == {0.4}


@pytest.mark.parametrize("arch, filters", [("strong", [16, 16, 16, 32, 32, 32, 64]), ("resnet", [16, 24, 24, 24, 48, 48, 48])])
def test_width_scales_every_layers_filters_and_dropout_is_set(arch, filters):
    model = models.build(arch, width=0.5, dropout=0.1)
    assert [c.filters for c in model.layers if isinstance(c, keras.layers.Conv2D)] == filters
    assert {d.rate for d in model.layers if isinstance(d, keras.layers.Dropout)} == {0.1}


def test_the_reports_design_refuses_a_width_or_dropout():
    with pytest.raises(ValueError, match="--width and --dropout are for strong and resnet"):
        models.build("report", width=0.5)


def test_resnet_model_has_two_residual_blocks_and_global_pooling():
    model = models.build("resnet")
    assert model.count_params() == 265_770
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert [tuple(add.output.shape[1:]) for add in adds] == [(14, 14, 48), (7, 7, 96)]
    # each shortcut is the identity: the block's input joins its output unchanged
    assert [add.input[0].shape[-1] for add in adds] == [48, 96]
    assert any(isinstance(layer, keras.layers.GlobalAveragePooling2D) for layer in model.layers)
    assert not any(isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.Flatten)) for layer in model.layers)
    x = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0).sum(axis=1), 1, rtol=1e-5)


def test_mixed_bfloat16_computes_in_bfloat16_with_float32_weights_and_output():
    with models.precision("mixed_bfloat16"):
        model = models.build("strong")
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
        with models.precision("float16"):
            pass
    assert keras.config.dtype_policy().name == "float32"
