"""`normalization: {adapt: true}`: mean and variance computed from the training split before fit,
by `cnnspec train` and by the generated train.py alike, and stored in the model's weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnnspec.api import compile_spec
from cnnspec.backends.python_emitter import generate_code
from tests.conftest import run_script

pytestmark = pytest.mark.slow

#: A spec over a tiny .npz whose training images all reach the model (no validation split):
#: one normalisation on the input, one after a convolution (adapted on the conv's outputs).
SPEC = """\
cnnspec: 1
name: adapted
input: {shape: [6, 6, 2]}
model:
  - normalization: {adapt: true}
  - conv2d: {filters: 3, kernel_size: 3, padding: same}
  - normalization: {adapt: true}
  - global_avg_pool2d
  - dense: {units: 3, activation: softmax}
data: {source: {npz: data.npz}, validation_split: 0, rescale: 0.5}
training: {epochs: 1, batch_size: 8, seed: 3}
"""


def _data(folder: Path) -> np.ndarray:
    rng = np.random.default_rng(0)
    x_train = rng.normal([3.0, -2.0], [2.0, 0.5], (40, 6, 6, 2)).astype("float32")
    x_test = rng.normal(size=(9, 6, 6, 2)).astype("float32")
    np.savez(
        folder / "data.npz",
        x_train=x_train,
        y_train=np.arange(40) % 3,
        x_test=x_test,
        y_test=np.arange(9) % 3,
    )
    return x_train


def _spec(tmp_path: Path, extra: str = "") -> tuple[Path, np.ndarray]:
    """The spec (with the lines ``extra``) beside its data; the training images."""
    x_train = _data(tmp_path)
    spec = tmp_path / "adapted.yaml"
    spec.write_text(SPEC + extra, encoding="utf-8")
    return spec, x_train


def test_adapt_hook_uses_the_images_as_they_reach_each_layer(tmp_path):
    import keras

    from cnnspec.backends.keras_builder import adapt_layers, adapted_layers, build_model
    from cnnspec.training.pipeline import PipelineSettings, make_dataset

    spec, x_train = _spec(tmp_path)
    ir = compile_spec(spec).ir
    names = adapted_layers(ir)
    assert names == ["normalization_1", "normalization_2"]
    model = build_model(ir)
    y = np.arange(len(x_train)) % 3
    adapt_layers(model, names, make_dataset(x_train, y, PipelineSettings(batch_size=8, rescale=0.5)))
    first, second = (model.get_layer(n) for n in names)
    scaled = x_train * 0.5
    np.testing.assert_allclose(first.adapt_mean.numpy(), scaled.mean(axis=(0, 1, 2)), rtol=1e-4)
    np.testing.assert_allclose(first.adapt_variance.numpy(), scaled.var(axis=(0, 1, 2)), rtol=1e-3)
    upstream = keras.Model(model.inputs[0], second.input)
    features = np.asarray(upstream(scaled, training=False))
    np.testing.assert_allclose(second.adapt_mean.numpy(), features.mean(axis=(0, 1, 2)), rtol=1e-3, atol=1e-5)
    # the statistics are weights: the first layer now standardises the training images
    out = np.asarray(keras.Model(model.inputs[0], first.output)(scaled))
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1, atol=1e-3)
    # runtime.mixed_precision: Keras adapts in the compute dtype (bfloat16 here), and failed
    # (InvalidArgumentError: bfloat16 batches added to float32 sums); a float32 twin adapts, to
    # the very statistics computed without it, cast to the compute dtype where the layer uses them
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = build_model(ir)
    finally:
        keras.config.set_dtype_policy(previous)
    adapt_layers(mixed, names, make_dataset(x_train, y, PipelineSettings(batch_size=8, rescale=0.5)))
    half, half_second = (mixed.get_layer(n) for n in names)
    np.testing.assert_array_equal(half.adapt_mean.numpy(), first.adapt_mean.numpy())
    np.testing.assert_array_equal(half.adapt_variance.numpy(), first.adapt_variance.numpy())
    assert (half.mean.dtype, half_second.mean.dtype) == ("bfloat16", "bfloat16")
    features = np.asarray(keras.Model(mixed.inputs[0], half_second.input)(scaled)).astype("float32")
    np.testing.assert_allclose(
        half_second.adapt_mean.numpy(), features.mean(axis=(0, 1, 2)), rtol=1e-3, atol=1e-5
    )


def _trained_under_mixed_precision(tmp_path: Path) -> tuple[object, np.ndarray]:
    """The spec trained by `cnnspec train` under runtime.mixed_precision (where Keras adapted in
    bfloat16): its compiled spec and the first normalization's adapted mean, checked float32
    statistics computed in float32 (the layer uses them cast)."""
    import keras

    from cnnspec.training.trainer import train

    spec, x_train = _spec(tmp_path, "runtime: {mixed_precision: true}\n")
    expected = (x_train * 0.5).mean(axis=(0, 1, 2))
    compiled = compile_spec(spec)
    result = train(compiled, out=tmp_path / "run")
    model = keras.models.load_model(result.run_dir / "model.keras")
    adapted = model.get_layer("normalization_1")
    assert adapted.dtype_policy.name == "mixed_bfloat16"
    np.testing.assert_allclose(adapted.adapt_mean.numpy(), expected, rtol=1e-4)
    return compiled, adapted.adapt_mean.numpy()


def test_train_adapts_before_fit_under_mixed_precision(tmp_path):
    """Under runtime.mixed_precision too, where it failed (Keras adapted in bfloat16): the
    statistics are float32 weights, computed in float32 (the layer uses them cast). The
    generated script adapts at the same point (it runs in the `full` test below)."""
    compiled, _ = _trained_under_mixed_precision(tmp_path)
    text = generate_code(compiled, script=True, output=tmp_path / "train.py").text
    assert "adapt_layers(model, make_dataset(x_train" in text


@pytest.mark.full
def test_the_generated_script_adapts_as_train_does(tmp_path):
    """The script's adapted statistics are train's, to the bit, under mixed precision too."""
    import keras

    compiled, trains = _trained_under_mixed_precision(tmp_path)
    script = tmp_path / "train.py"
    script.write_text(generate_code(compiled, script=True, output=script).text, encoding="utf-8")
    run_script(script, "--epochs", "1", "--out", str(tmp_path / "script_run"), cwd=tmp_path)
    generated = keras.models.load_model(tmp_path / "script_run" / "model.keras")
    mean = generated.get_layer("normalization_1").adapt_mean.numpy()
    np.testing.assert_array_equal(mean, trains)  # (train's, to the bit)
