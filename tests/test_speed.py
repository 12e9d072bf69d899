"""FLOPs counted by hand for small models, and the benchmark's notebook baseline."""

import keras
import numpy as np

from competition.model import designs
from competition.training import speed


def test_report_model_flops_by_hand():
    # conv 5x5x1x32 at 28x28, conv 5x5x32x64 at 14x14, dense 3136x256, dense 256x10; a multiply-add is 2 FLOPs
    conv1, conv2 = 2 * 28 * 28 * 5 * 5 * 1 * 32, 2 * 14 * 14 * 5 * 5 * 32 * 64
    dense = 2 * 3136 * 256 + 2 * 256 * 10
    model = designs.report_model()
    assert speed.forward_flops(model) == conv1 + conv2 + dense == 22_935_552
    # forward, weight gradients, input gradients; the first layer needs no input gradient
    assert speed.training_flops(model) == 3 * (conv1 + conv2 + dense) - conv1


def test_strided_convolutions_count_their_output_pixels_and_nested_models_count_too():
    inner = keras.Sequential([keras.Input((8, 8, 2)), keras.layers.Conv2D(4, 3, strides=2, padding="same")])
    outer = keras.Sequential([keras.Input((8, 8, 2)), inner, keras.layers.Flatten(), keras.layers.Dense(5)])
    conv, dense = 2 * 4 * 4 * 3 * 3 * 2 * 4, 2 * 64 * 5
    assert speed.forward_flops(outer) == conv + dense
    assert speed.training_flops(outer) == 3 * (conv + dense) - conv


def test_notebook_baseline_is_the_report_model_behind_keras_augmentation_layers():
    notebook = speed.notebook_model()
    assert speed.training_flops(notebook) == speed.training_flops(designs.report_model())
    assert [type(layer).__name__ for layer in notebook.get_layer("augment").layers] == [
        "RandomRotation", "RandomTranslation", "RandomZoom"]
    designs.compile_model(notebook, 1e-4)
    x = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1)).astype("float32")
    history = notebook.fit(x, np.eye(10, dtype="float32")[np.arange(64) % 10], batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_gemm_throughput_is_measured():
    assert 0 < speed.gemm_gflops(n=128, seconds=0.05) < 1e6
