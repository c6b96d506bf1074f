"""ImageNet-weight compatibility, offline: the HDF5 layout keras.applications downloads for
``weights="imagenet"`` is written here from a randomly initialised keras.applications model with
Keras' own legacy writer, loaded into the zoo model with
:func:`cnnspec.load_keras_application_weights`, and both models must give the same outputs on a
batch. Small inputs keep it quick; nothing is downloaded."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import cnnspec
from cnnspec.api import build_model, compile_spec
from cnnspec.backends.weights import WeightsFileError
from cnnspec.spec.zoo import variants

# variant → a small input keras.applications accepts for it
SMALL_INPUTS = {
    "mobilenet_v2": (96, 96, 3),
    "resnet50_v2": (64, 64, 3),
    "densenet121": (64, 64, 3),
    "efficientnet_b0": (64, 64, 3),
    "efficientnet_v2_b0": (64, 64, 3),
    "mobilenet_v3_small": (96, 96, 3),
    "inception_v3": (75, 75, 3),
}
#: `make test`'s family: EfficientNet's adapted normalizations take the loader's one special path
#: (their statistics set and the layer finalized), on top of the convolutions, depthwise and
#: squeeze-excite blocks and batch normalizations the other families share. Every family of
#: SMALL_INPUTS (6-8 s each) runs with CNNSPEC_ZOO_WEIGHTS=1 (`make zoo-weights`, part of
#: `make test-full`), to keep `make test` within its time budget.
MAKE_TEST_FAMILIES = ["efficientnet_b0"]
FAMILIES = list(SMALL_INPUTS) if os.environ.get("CNNSPEC_ZOO_WEIGHTS") else MAKE_TEST_FAMILIES


def _keras_weights_file(name: str, input_shape: tuple[int, int, int], path, **kwargs):
    """keras.applications' model of ``name`` with random weights, saved as Keras 2's .h5."""
    import keras

    keras.utils.set_random_seed(0)
    reference = getattr(keras.applications, variants()[name].keras_name)(
        weights=None, input_shape=input_shape, **kwargs
    )
    _adapt_normalizations(reference)
    _save_weights(reference, path)
    return reference


def _save_weights(model, path) -> None:
    """``model``'s weights in Keras 2's .h5 layout, as keras.applications' files hold them."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)


def _adapt_normalizations(model) -> None:
    """Give every adapted normalization (EfficientNet's) a mean and variance other than the
    0 and 1 it is built with, as ImageNet's file has: a loader that assigns the variables without
    letting the layer finalize its state would go on normalising with 0 and 1."""
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if hasattr(layer, "adapt_mean") and hasattr(layer, "finalize_state"):
            layer.adapt_mean.assign(rng.uniform(0.2, 0.6, layer.adapt_mean.shape))
            layer.adapt_variance.assign(rng.uniform(0.04, 0.09, layer.adapt_variance.shape))
            layer.finalize_state()


def _zoo_model(name: str, input_shape: tuple[int, int, int], *overrides: str):
    """The zoo's model of ``name``, named otherwise: these tests load files of the weights=None
    model's layout, which the loader would otherwise take for the variant's ImageNet file (and
    fold EfficientNet's extra rescaling in, as ImageNetCase's tests check)."""
    shape = ", ".join(map(str, input_shape))
    return build_model(
        compile_spec(f"zoo:{name}", [f"vars.input_shape=[{shape}]", "name=layout", *overrides])
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_keras_applications_weights_load_and_give_identical_outputs(name, tmp_path):
    import keras

    keras.backend.clear_session()
    input_shape = SMALL_INPUTS[name]
    path = tmp_path / f"{name}.h5"
    reference = _keras_weights_file(name, input_shape, path)
    model = _zoo_model(name, input_shape)
    assert cnnspec.load_keras_application_weights(model, path) is model
    batch = np.random.default_rng(0).uniform(-1, 1, (2, *input_shape)).astype("float32")
    # the outputs, and what the classifier reads: with random weights the softmax is near 1/1000
    # for every class whatever the input, so its equality alone let a wrong normalization
    # through. One direct call of each model in inference mode gives both (predict() would
    # first trace a graph of each model: DenseNet121 3.9 s against 0.7 s)
    (ours, ours_read), (theirs, theirs_read) = (
        keras.Model(m.input, [m.output, m.layers[-1].input])(batch, training=False)
        for m in (model, reference)
    )
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    np.testing.assert_allclose(ours_read, theirs_read, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_a_weights_file_that_does_not_fit_is_refused_naming_the_layer(tmp_path):
    import keras

    keras.backend.clear_session()
    path = tmp_path / "mobilenet_v2_10.h5"
    reference = _keras_weights_file("mobilenet_v2", (96, 96, 3), path, classes=10)
    model = _zoo_model("mobilenet_v2", (96, 96, 3))  # 1000 classes
    before = [w.numpy().copy() for w in model.weights]
    with pytest.raises(WeightsFileError) as caught:
        cnnspec.load_keras_application_weights(model, path)
    message = str(caught.value)
    assert "'predictions' in the file" in message and "(1280, 10)" in message and "(1280, 1000)" in message
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, model.weights)), "nothing assigned"
    # an include_top mismatch names the first layer that differs on both sides, as a classes
    # mismatch does (it said only "holds weights for 105 layers; the model has 104 …"). The
    # headless model's variables are left unfilled (a stateless scope that does not initialize
    # them: shapes and dtypes only): the refusal compares layouts, and an assignment would fail.
    with keras.StatelessScope(initialize_variables=False):
        headless_model = _zoo_model("mobilenet_v2", (96, 96, 3), "vars.include_top=false")
    with pytest.raises(WeightsFileError) as caught:
        cnnspec.load_keras_application_weights(headless_model, path)
    assert str(caught.value) == (
        f"{path} holds weights for 105 layers; the model has 104 layers with weights: the first that "
        "differs is layer #104 with weights, 'predictions' in the file, which the model lacks; the "
        "layers before it fit, the last 'Conv_1_bn' in the file and the model's 'batch_norm_2'"
    )
    # keras.applications' MobileNetV2(include_top=False) is its model up to `out_relu`, layer for
    # layer: saved from that part of the model above, its file is the one Keras' own headless model
    # writes (the same layers, weights and values: the same seed; only the input layer's automatic
    # name differs, which holds no weights), without building MobileNetV2 a second time.
    headless = tmp_path / "mobilenet_v2_notop.h5"
    _save_weights(keras.Model(reference.input, reference.get_layer("out_relu").output), headless)
    with pytest.raises(WeightsFileError) as caught:
        cnnspec.load_keras_application_weights(model, headless)
    assert str(caught.value) == (
        f"{headless} holds weights for 104 layers; the model has 105 layers with weights: the first "
        "that differs is layer #104 with weights, the model's 'predictions' (Dense), which the file "
        "lacks; the layers before it fit, the last 'Conv_1_bn' in the file and the model's 'batch_norm_2'"
    )
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, model.weights)), "nothing assigned"
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(WeightsFileError, match="cannot read"):
        cnnspec.load_keras_application_weights(model, tmp_path / "junk.h5")


@pytest.mark.slow
def test_the_api_builds_a_zoo_model_by_name():
    import keras

    keras.backend.clear_session()
    # built in a stateless scope that does not initialize its variables: Keras gives each weight
    # its shape and dtype and never fills it (the figures need no values; filling 3.5 M of them
    # from their initializers was most of this test's time)
    with keras.StatelessScope(initialize_variables=False):
        model = cnnspec.build_model("zoo:mobilenet_v2")
    assert model.count_params() == 3_538_984 and tuple(model.output.shape) == (None, 1000)


#: :func:`efficientnet_b0_imagenet`'s model, by the path of its file: built once per process.
_IMAGENET_B0: dict[Path, Any] = {}


def efficientnet_b0_imagenet(factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """keras.applications.EfficientNetB0(weights="imagenet") at 64×64 without its top, built by
    Keras itself with its download answered by a file of random weights and adapted
    normalizations (:func:`_keras_weights_file`), and that file. The file is saved once per test
    session (:func:`tests.test_report_support.made_once`) and the model built once per process:
    this file's ImageNet test and test_zoo_cuts' layer cut both compare with them (two
    EfficientNetB0 builds and a file each), and neither changes them."""
    import keras
    from keras.src.utils import file_utils

    from tests.test_report_support import made_once

    name = "efficientnetb0_notop.h5"

    def save(folder: Path) -> None:
        _keras_weights_file("efficientnet_b0", (64, 64, 3), folder / name, include_top=False)

    path = made_once(factory, "efficientnet-b0-imagenet-64", save) / name
    if path not in _IMAGENET_B0:
        with pytest.MonkeyPatch.context() as patched:
            patched.setattr(file_utils, "get_file", lambda *args, **kwargs: str(path))
            _IMAGENET_B0[path] = keras.applications.EfficientNetB0(
                include_top=False, weights="imagenet", input_shape=(64, 64, 3)
            )
    return path, _IMAGENET_B0[path]


class ImageNetCase:
    """:func:`efficientnet_b0_imagenet`'s model and file, and the zoo's spec of it, for both of
    the checks below, which do not change it. Keras' download stays answered with the file while
    the test runs (the generated script's loader builds keras.applications' model too)."""

    def __init__(self, factory, tmp_path, monkeypatch) -> None:
        from keras.src.utils import file_utils

        monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
        self.shape = (64, 64, 3)
        self.path, self.reference = efficientnet_b0_imagenet(factory)
        monkeypatch.setattr(file_utils, "get_file", lambda *args, **kwargs: str(self.path))
        self.compiled = compile_spec(
            "zoo:efficientnet_b0", ["vars.input_shape=[64, 64, 3]", "vars.include_top=false"]
        )
        self.images = np.random.default_rng(2).uniform(0, 255, (2, *self.shape)).astype("float32")
        self.expected = np.asarray(self.reference(self.images))

    def error(self, model) -> float:
        """The largest difference from the ImageNet model's outputs, relative to their scale
        (random weights give small outputs)."""
        outputs = np.asarray(model(self.images))
        return float(np.abs(outputs - self.expected).max() / np.abs(self.expected).max())


@pytest.mark.slow
@pytest.mark.full
def test_efficientnet_imagenet_computes_what_keras_imagenet_model_computes(
    tmp_path_factory, tmp_path, monkeypatch
):
    """keras.applications.EfficientNetB0(weights="imagenet") has one layer more than its
    weights=None model (a per-channel Rescaling after the Normalization, with no weights); its
    file loaded by `imagenet` into the zoo model (built as weights=None builds it) gives the
    ImageNet model's outputs: the factor is folded into the normalization's variance. The
    generated script folds it too. (One test for both: under pytest-xdist two tests may run in
    two processes, each making the case, a fixture's share notwithstanding.)"""
    case = ImageNetCase(tmp_path_factory, tmp_path, monkeypatch)
    _imagenet_folds_in_cnnspec(case)
    _the_generated_script_loads_efficientnet_imagenet_as_cnnspec_train_does(case, tmp_path)


def _imagenet_folds_in_cnnspec(case: ImageNetCase) -> None:
    """`imagenet` (the transfer loader) and the API fold the factor; the file loaded as it is
    answers otherwise."""
    import keras

    from cnnspec.training import transfer, transfer_loads

    extra = [layer.scale for layer in case.reference.layers if isinstance(layer, keras.layers.Rescaling)]
    assert len(extra) == 2 and isinstance(extra[1], (list, tuple))  # (the test is not vacuous)
    model = build_model(case.compiled)
    loads = transfer_loads.spec_loads(case.compiled, "imagenet")
    for plan in transfer_loads.plan_loads(model, loads, fetch=lambda found: case.path):
        transfer.apply_plan(model, plan)
    assert case.error(model) < 1e-4
    # the API folds it too: for a model built as the zoo variant (by its name), or when told
    # whose file it is. (The same model for all: each load sets every weight from the file, and
    # scrambled weights in between show that a load is not left over from the last. The
    # normalization's mean and variance tensors, which it derives from its variables only when
    # it is built or told to, are scrambled with them: a load that assigned the variables without
    # letting the layer derive them again would normalise with 0.5 and 0.5, not with what the
    # load before it left.)
    for keras_name in (None, "EfficientNetB0", "efficientnet_b0"):
        for weight in model.weights:
            weight.assign(np.full(weight.shape, 0.5, dtype=weight.dtype))
        for layer in model.layers:
            if isinstance(layer, keras.layers.Normalization):
                layer.finalize_state()
        loaded = cnnspec.load_keras_application_weights(model, case.path, keras_name)
        assert loaded is model and case.error(loaded) < 1e-4, keras_name
    for wrong, said in (
        ("EfficientNetBO", "received 'EfficientNetBO'"),
        ("ResNet50", "expected keras_name 'Eff"),
    ):
        with pytest.raises(WeightsFileError, match=said):  # a typo, another family: not silently unfolded
            cnnspec.load_keras_application_weights(model, case.path, wrong)
    # the file loaded as it is (into a model of another name: the layout of the model
    # keras.applications builds without ImageNet weights) answers otherwise: the test can tell
    renamed = _zoo_model("efficientnet_b0", case.shape, "vars.include_top=false")
    assert case.error(cnnspec.load_keras_application_weights(renamed, case.path)) > 0.1


def _the_generated_script_loads_efficientnet_imagenet_as_cnnspec_train_does(
    case: ImageNetCase, tmp_path: Path
) -> None:
    """The script's load_by_position, given keras.applications' own ImageNet model (the one it
    builds), folds the same factor: a backbone of it computes what that model computes."""
    import importlib.util

    import keras

    from cnnspec.api import compile_text
    from cnnspec.backends.python_emitter import generate_code

    spec = compile_text(
        "cnnspec: 1\nname: b0\ninput: {shape: [64, 64, 3]}\nmodel:\n"
        "  - backbone: {spec: 'zoo:efficientnet_b0', vars: {include_top: false}, weights: imagenet}\n"
        "    id: body\n  - global_avg_pool2d: {}\n    id: pool\n"
        "  - dense: {units: 10, activation: softmax}\n",
        "b0.yaml",
    )
    script = tmp_path / "train.py"
    script.write_text(generate_code(spec, script=True, output=script).text, encoding="utf-8")
    assert "variance_scale=(0.229, 0.224, 0.225)" in script.read_text(encoding="utf-8")
    loader = importlib.util.spec_from_file_location("generated_b0_train", script)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    model = module.build_model()
    module.load_starting_weights(model)
    (body_output,) = next(node for node in spec.ir.nodes if node.name == "pool").inputs
    assert case.error(keras.Model(model.inputs, model.get_layer(body_output).output)) < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("keras_name", sorted({v.keras_name for v in variants().values()}))
def test_the_least_imagenet_input_is_keras_applications_own(keras_name):
    """validate refuses `imagenet` for an input smaller than keras.applications builds its model
    without the top for (cnnspec.spec.weights.IMAGENET_MIN_SIZES, TensorFlow-free); the table is
    Keras' own: one pixel less is refused by it, naming that size. (The refusal comes before the
    model is built, so this builds nothing.)"""
    import keras

    from cnnspec.spec.weights import IMAGENET_LEAST_SIZE, IMAGENET_MIN_SIZES

    least = IMAGENET_MIN_SIZES.get(keras_name, IMAGENET_LEAST_SIZE)
    constructor = getattr(keras.applications, keras_name)
    with pytest.raises(ValueError, match=f"at least {least}x{least}"):
        constructor(include_top=False, weights=None, input_shape=(least - 1, least, 3))
