"""The kinds that let ``cnnspec import`` read the Keras layers it used to refuse: the activation
layer ``elu`` (ELU), ``unit_normalization`` (UnitNormalization), the training-only regularizers
``gaussian_noise``, ``gaussian_dropout``, ``alpha_dropout`` (GaussianNoise, GaussianDropout,
AlphaDropout) and ``activity_regularization`` (ActivityRegularization).

The registry-wide tests (tests/test_registry.py) hold each kind's shapes, weights and traits to
Keras over its configurations there. Here, TensorFlow-free: each kind's tiny spec validates with
the shape and parameter count Keras gives, bad values are located errors, and a JSON
configuration holding every one of these layers imports. Slow, one model each: the built layers
equal Keras' own made with the same arguments and the generated code builds the same model; a
saved ``.keras`` model round-trips through ``cnnspec import --weights`` output for output (at
inference: the noise kinds are the identity there) and activity loss for activity loss.
"""

from __future__ import annotations

from typing import Any

import pytest

from cnnspec.api import compile_text
from cnnspec.errors import SpecError
from cnnspec.importer import import_source
from cnnspec.importer.source import Source
from cnnspec.layers.registry import REGISTRY
from tests.test_extra_kinds import (
    _functional,
    _input_layer,
    _layer,
    _spec,
    assert_one_located_error,
    refused_classes,
    refused_without,
)

#: The kinds this file covers.
NEW_KINDS = (
    "elu",
    "unit_normalization",
    "gaussian_noise",
    "gaussian_dropout",
    "alpha_dropout",
    "activity_regularization",
)
NOISE_KINDS = ("gaussian_noise", "gaussian_dropout", "alpha_dropout")

#: kind → (spec, the last layer's output shape): none has weights or MACs (Keras' numbers; the
#: slow test below builds a model of all of them and checks every layer against Keras).
SPECS: dict[str, tuple[str, tuple[int, ...]]] = {
    "elu": (_spec([8, 6, 3], "elu: 0.5"), (8, 6, 3)),
    "unit_normalization": (_spec([8, 6, 3], "unit_normalization"), (8, 6, 3)),
    "unit_normalization-axes": (_spec([8, 6, 3], "unit_normalization: [1, 2]"), (8, 6, 3)),
    "unit_normalization-negative": (_spec([5, 7], "unit_normalization: {axis: [-2, -1]}"), (5, 7)),
    "gaussian_noise": (_spec([8, 6, 3], "gaussian_noise: 0.1"), (8, 6, 3)),
    "gaussian_dropout": (_spec([7], "gaussian_dropout: {rate: 0.3, seed: 2}"), (7,)),
    "alpha_dropout": (_spec([8, 6, 3], "alpha_dropout: 0.1"), (8, 6, 3)),
    "alpha_dropout-mask": (
        _spec([8, 6, 3], "alpha_dropout: {rate: 0.1, noise_shape: [null, 1, 1, 3]}"),
        (8, 6, 3),
    ),
    "activity_regularization": (_spec([8, 6, 3], "activity_regularization: {l2: 0.01}"), (8, 6, 3)),
}


def test_every_new_kind_is_registered_and_has_a_spec_here():
    assert set(NEW_KINDS) <= set(REGISTRY)
    assert {case.split("-")[0] for case in SPECS} == set(NEW_KINDS)


@pytest.mark.parametrize("case", sorted(SPECS))
def test_the_spec_validates_tensorflow_free_with_keras_shape_and_no_weights(case):
    text, shape = SPECS[case]
    last = compile_text(text).ir.nodes[-1]
    assert last.kind == case.split("-")[0]
    assert last.shape == shape
    assert (last.counts.trainable, last.counts.non_trainable, last.counts.macs) == (0, 0, 0)


def test_the_traits_say_what_each_kind_does():
    """The regularizers relay an activation to the loss (the identity at inference, as dropout
    is); only activity_regularization, the identity in training too, keeps the value range."""
    relays = {k for k in NEW_KINDS if REGISTRY[k].passes_activation}
    assert relays == {*NOISE_KINDS, "activity_regularization"}
    keeps = {k for k in NEW_KINDS if REGISTRY[k].value_range == "keeps"}
    assert keeps == {"activity_regularization"}
    assert not any(REGISTRY[k].preprocessing or REGISTRY[k].augmentation for k in NEW_KINDS)
    # elu is an activation layer, but ELU's output is no activation the loss reads
    elu = REGISTRY["elu"]
    assert elu.output_activation(elu.defaults(), [(4,)]) is None


def test_a_softmax_before_each_regularizer_still_trains_on_probabilities():
    from cnnspec.analysis.settings import training_config

    for item in (
        "gaussian_noise: 0.1",
        "gaussian_dropout: 0.2",
        "alpha_dropout: 0.1",
        "activity_regularization",
    ):
        text = _spec([8], "dense: {units: 4, activation: softmax}", item)
        assert training_config(compile_text(text, "head.yaml")).loss.from_logits is False, item


@pytest.mark.parametrize(
    ("item", "path", "said"),
    [
        ("gaussian_noise: 1.5", "model[0].gaussian_noise", "expected a number ≥ 0 and ≤ 1"),
        ("gaussian_dropout: -0.1", "model[0].gaussian_dropout", "expected a number ≥ 0 and < 1"),
        # Keras makes both with rate 1, then divides by zero in training
        ("gaussian_dropout: 1", "model[0].gaussian_dropout", "expected a number ≥ 0 and < 1"),
        ("alpha_dropout: {rate: 1.0}", "model[0].alpha_dropout.rate", "expected a number ≥ 0 and < 1"),
        ("alpha_dropout: {rate: 0.1, seed: -1}", "model[0].alpha_dropout.seed", "non-negative integer"),
        (
            "alpha_dropout: {rate: 0.1, noise_shape: [null, 2, 1, 1]}",
            "model[0].alpha_dropout.noise_shape",
            "expected each noise_shape entry after the batch axis to be null, 1 or the input's size",
        ),
        ("activity_regularization: {l1: -0.01}", "model[0].activity_regularization.l1", "≥ 0"),
        ("elu: {alpha: fast}", "model[0].elu.alpha", "expected a number"),
        ("unit_normalization: [1, 4]", "model[0].unit_normalization", "expected axis in [1, 3] or [-3, -1]"),
        ("unit_normalization: {axis: 0}", "model[0].unit_normalization.axis", "axis 0 is the batch"),
        ("unit_normalization: [1, -3]", "model[0].unit_normalization", "-3 is the same axis"),
        ("unit_normalization: {axis: [2, 2]}", "model[0].unit_normalization.axis[1]", "not listed before it"),
        ("unit_normalization: {axis: []}", "model[0].unit_normalization.axis", "a non-empty list"),
    ],
)
def test_a_bad_parameter_is_one_located_error(item, path, said):
    assert_one_located_error(item, path, said)


# -- cnnspec import, TensorFlow-free ----------------------------------------------------------------
def _called_in_inference(layer: dict[str, Any]) -> dict[str, Any]:
    """As Keras saves a call of a layer whose ``call`` defaults ``training`` to False."""
    layer["inbound_nodes"][0]["kwargs"] = {"training": False}
    return layer


def _all_new_layers() -> dict[str, Any]:
    """A Functional model of a 6×4×2 input holding every new layer (configurations as Keras
    3.15's ``get_config`` writes them)."""
    layers = [
        _input_layer(),
        _called_in_inference(_layer("GaussianNoise", "noise", ["in"], stddev=0.1, seed=None)),
        _layer("ELU", "elu", ["noise"], alpha=0.5),
        _layer("UnitNormalization", "unit", ["elu"], axis=[1, 2]),
        _called_in_inference(_layer("GaussianDropout", "gdrop", ["unit"], rate=0.2, seed=7)),
        _called_in_inference(
            _layer("AlphaDropout", "adrop", ["gdrop"], rate=0.1, seed=None, noise_shape=[None, 1, 1, 2])
        ),
        _layer("ActivityRegularization", "reg", ["adrop"], l1=0.0, l2=0.01),
        _layer("UnitNormalization", "channels", ["reg"], axis=-1),
    ]
    return _functional("noise", layers, "channels")


def test_a_configuration_with_every_new_layer_imports_without_a_refusal():
    text = import_source(Source("noise", _all_new_layers()), folding=False).text
    for item in (
        "- gaussian_noise: 0.1",
        "- elu: 0.5",
        "- unit_normalization: {axis: [1, 2]}",
        "- gaussian_dropout: {rate: 0.2, seed: 7}",
        "- alpha_dropout: {rate: 0.1, noise_shape: [null, 1, 1, 2]}",
        "- activity_regularization: {l2: 0.01}",
    ):
        assert item in text, text
    assert text.rstrip().endswith("- unit_normalization"), text  # the default axis: the bare kind
    compiled = compile_text(text)
    assert [n.kind for n in compiled.ir.nodes] == [
        "gaussian_noise",
        "elu",
        "unit_normalization",
        "gaussian_dropout",
        "alpha_dropout",
        "activity_regularization",
        "unit_normalization",
    ]
    (unit,) = [n for n in compiled.ir.nodes[:3] if n.kind == "unit_normalization"]
    assert REGISTRY["unit_normalization"].keras_args(unit.params) == {"axis": (1, 2)}


def test_a_training_argument_passed_by_hand_is_still_refused():
    """Monte Carlo noise (``GaussianNoise(0.1)(x, training=True)``) changes what model(x) computes."""
    config = _all_new_layers()
    config["config"]["layers"][1]["inbound_nodes"][0]["kwargs"] = {"training": True}
    with pytest.raises(SpecError) as caught:
        import_source(Source("noise", config))
    (diagnostic,) = caught.value.diagnostics
    assert "layer 'noise' (GaussianNoise) cannot be imported" in diagnostic.message


def test_a_rate_keras_cannot_train_with_is_refused_by_name():
    config = _all_new_layers()
    config["config"]["layers"][4]["config"]["rate"] = 1.0
    with pytest.raises(SpecError) as caught:
        import_source(Source("noise", config))
    (diagnostic,) = caught.value.diagnostics
    assert "layer 'gdrop' (GaussianDropout) cannot be imported: rate: expected a number ≥ 0 and < 1" in (
        diagnostic.message
    )


def test_the_layers_were_refused_before_these_kinds(monkeypatch):
    """What import said of each of these classes without its kind."""
    refused = refused_classes(refused_without(monkeypatch, NEW_KINDS, _all_new_layers()))
    assert refused == {
        "GaussianNoise",
        "ELU",
        "UnitNormalization",
        "GaussianDropout",
        "AlphaDropout",
        "ActivityRegularization",
    }


# -- TensorFlow: one model of every new kind --------------------------------------------------------
#: A spec holding each new kind with parameters that differ from the defaults, and what Keras'
#: own class is made with for each of its layers (written out here, not from the registry).
MODEL_SPEC = _spec(
    [8, 6, 3],
    "conv2d: {filters: 4, kernel_size: 3, padding: same}",
    "gaussian_noise: {stddev: 0.1, seed: 3}",
    "elu: 0.5",
    "unit_normalization: [1, 2]",
    "gaussian_dropout: 0.2",
    "alpha_dropout: {rate: 0.1, noise_shape: [null, 1, 1, 4], seed: 5}",
    "activity_regularization: {l1: 0.01, l2: 0.001}",
    "unit_normalization",
    "flatten",
    "dense: 3",
)
KERAS_OWN: list[tuple[str, dict[str, Any]]] = [
    ("GaussianNoise", {"stddev": 0.1, "seed": 3}),
    ("ELU", {"alpha": 0.5}),
    ("UnitNormalization", {"axis": [1, 2]}),
    ("GaussianDropout", {"rate": 0.2}),
    ("AlphaDropout", {"rate": 0.1, "noise_shape": (None, 1, 1, 4), "seed": 5}),
    ("ActivityRegularization", {"l1": 0.01, "l2": 0.001}),
    ("UnitNormalization", {}),
]


@pytest.mark.slow
def test_the_built_layers_are_keras_own_and_the_generated_code_builds_the_same_model(tmp_path):
    """Each new layer's configuration equals Keras' own class made with the same arguments;
    every layer has the inferred shape and parameter count; the generated module builds the
    same model (names, classes, configurations, weights and outputs)."""

    import keras

    from cnnspec.api import build_model
    from cnnspec.backends.python_emitter import generate_code
    from tests.conftest import FIXTURES, load_module

    compiled = compile_text(MODEL_SPEC)
    model = build_model(compiled)
    for node in compiled.ir.nodes:
        layer = model.get_layer(node.name)
        assert tuple(layer.output.shape[1:]) == node.shape, node.name
        assert layer.count_params() == node.counts.params, node.name
    new = [n for n in compiled.ir.nodes if n.kind in NEW_KINDS]
    assert len(new) == len(KERAS_OWN)
    for node, (class_name, kwargs) in zip(new, KERAS_OWN, strict=True):
        layer = model.get_layer(node.name)
        own = getattr(keras.layers, class_name)(name=node.name, **kwargs)
        assert type(layer) is type(own), node.name
        assert layer.get_config() == own.get_config(), node.name

    compare = load_module(FIXTURES / "codegen" / "compare_models.py", "compare_models").compare
    spec_path = tmp_path / "noise.yaml"
    spec_path.write_text(MODEL_SPEC, encoding="utf-8")
    module_path = tmp_path / "noise_model.py"
    module_path.write_text(generate_code(compiled).text, encoding="utf-8")
    result = compare(str(spec_path), load_module(module_path, "generated_noise_model"), True)
    assert result["ok"], result["problems"]


@pytest.mark.slow
def test_a_saved_model_with_every_new_layer_round_trips_output_for_output(tmp_path):
    import keras
    import numpy as np

    from cnnspec.api import build_model
    from cnnspec.importer.output import run_import
    from tests.test_import import assert_same_model

    inputs = keras.Input((8, 6, 3), name="image")
    conv = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    noise = keras.layers.GaussianNoise(0.2, seed=4, name="noise")(conv)
    elu = keras.layers.ELU(alpha=0.7, name="elu")(noise)
    unit = keras.layers.UnitNormalization(axis=(1, 2), name="unit")(elu)
    gdrop = keras.layers.GaussianDropout(0.3, name="gdrop")(unit)
    adrop = keras.layers.AlphaDropout(0.2, noise_shape=(None, 1, 1, 4), name="adrop")(gdrop)
    reg = keras.layers.ActivityRegularization(l1=0.02, l2=0.01, name="reg")(adrop)
    channels = keras.layers.UnitNormalization(name="channels")(reg)
    flat = keras.layers.Flatten(name="flat")(channels)
    source = keras.Model(inputs, keras.layers.Dense(5, name="dense")(flat), name="noise")
    path = tmp_path / "noise.keras"
    source.save(path)
    out = tmp_path / "noise.yaml"
    imported = run_import(str(path), out, weights=True)
    text = out.read_text(encoding="utf-8")
    for kind in NEW_KINDS:
        assert f"- {kind}" in text, text
    model = build_model(compile_text(text.replace("weights: noise.weights.h5\n", "")))
    model.load_weights(tmp_path / "noise.weights.h5")
    assert_same_model(source, model, imported.names)
    assert model.count_params() == source.count_params()
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(0).normal(size=(4, 8, 6, 3)).astype("float32")
    # the activity regularizer's loss, (l1·Σ|x| + l2·Σx²) / batch of its input
    reg_input = np.asarray(keras.Model(loaded.inputs[0], loaded.get_layer("adrop").output)(x))
    expected = (0.02 * np.abs(reg_input).sum() + 0.01 * np.square(reg_input).sum()) / len(x)
    # at inference (the noise kinds pass their input through), output for output
    np.testing.assert_allclose(model(x, training=False), loaded(x, training=False), rtol=1e-6, atol=1e-7)
    losses = [float(sum(m.losses)) for m in (model, loaded)]
    np.testing.assert_allclose(losses, [expected, expected], rtol=1e-5)
