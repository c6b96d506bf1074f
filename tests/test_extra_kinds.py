"""The kinds that let ``cnnspec import`` read common Keras models it used to refuse: the
activation layers ``leaky_relu`` (LeakyReLU), ``prelu`` (PReLU), ``softmax`` (Softmax), the
reshaping ``permute`` (Permute) and the merges ``subtract``, ``average``, ``max`` (Maximum),
``min`` (Minimum). (``max``/``min``, not ``maximum``/``minimum``: a kind name is a key of the
JSON Schema's ``$defs/kinds``, where those two are JSON Schema keywords.)

The fast tests are TensorFlow-free: each kind's tiny spec validates with the shape and
parameter count Keras gives (the numbers written out here), a JSON configuration holding every
new layer imports without a refusal, the bad values are located errors, and a kind name beside
an ``activation:`` value of the same spelling stays unambiguous. The slow ones build each spec
with Keras and compare layer by layer, round-trip a saved ``.keras`` model holding all of them
through ``cnnspec import --weights`` output for output, and hold the softmax kind's
``applies_activation`` trait to what Keras' layer computes.
"""

from __future__ import annotations

from typing import Any

import pytest

from cnnspec.api import compile_text
from cnnspec.errors import SpecError
from cnnspec.importer import import_source
from cnnspec.importer.source import Source
from cnnspec.layers.registry import REGISTRY

#: The kinds this file covers (the registry's other kinds have their own tests).
NEW_KINDS = ("leaky_relu", "prelu", "softmax", "permute", "subtract", "average", "max", "min")


def _spec(shape: list[int], *items: str) -> str:
    body = "".join(f"  - {item}\n" for item in items)
    return f"cnnspec: 1\nname: extra\ninput: {{shape: {shape}}}\nmodel:\n{body}"


#: Two branches of an 8×6×3 input for the merges: ids ``a`` (4 channels) and ``b`` (4 channels).
_BRANCHES = (
    "conv2d: {filters: 4, kernel_size: 1}\n    id: a",
    "conv2d: {filters: 4, kernel_size: 3, padding: same}\n    inputs: [input]\n    id: b",
)

#: kind → (spec, the last layer's output shape, its trainable parameters): Keras' own numbers
#: (the slow test below builds each spec and checks every layer against Keras).
SPECS: dict[str, tuple[str, tuple[int, ...], int]] = {
    "leaky_relu": (_spec([8, 6, 3], "leaky_relu: 0.1"), (8, 6, 3), 0),
    "prelu": (_spec([8, 6, 3], "prelu"), (8, 6, 3), 8 * 6 * 3),
    "prelu-shared": (_spec([8, 6, 3], "prelu: [1, 2]"), (8, 6, 3), 3),
    "prelu-shared-one": (_spec([5, 7], "prelu: {shared_axes: 1, alpha_regularizer: {l2: 0.01}}"), (5, 7), 7),
    "softmax": (_spec([8, 6, 3], "softmax"), (8, 6, 3), 0),
    "softmax-axis": (_spec([8, 6, 3], "softmax: 2"), (8, 6, 3), 0),
    "permute": (_spec([8, 6, 3], "permute: [2, 1, 3]"), (6, 8, 3), 0),
    "permute-channels-first": (_spec([8, 6, 3], "permute: [3, 1, 2]"), (3, 8, 6), 0),
    "subtract": (_spec([8, 6, 3], *_BRANCHES, "subtract:\n    inputs: [a, b]"), (8, 6, 4), 0),
    "average": (_spec([8, 6, 3], *_BRANCHES, "average:\n    inputs: [a, b, a]"), (8, 6, 4), 0),
    "max": (_spec([8, 6, 3], *_BRANCHES, "max:\n    inputs: [a, b]"), (8, 6, 4), 0),
    "min": (_spec([8, 6, 3], *_BRANCHES, "min:\n    inputs: [b, a]"), (8, 6, 4), 0),
}


def test_every_new_kind_is_registered_and_has_a_spec_here():
    assert set(NEW_KINDS) <= set(REGISTRY)
    assert {case.split("-")[0] for case in SPECS} == set(NEW_KINDS)


@pytest.mark.parametrize("case", sorted(SPECS))
def test_the_spec_validates_tensorflow_free_with_keras_shape_and_parameters(case):
    text, shape, params = SPECS[case]
    compiled = compile_text(text)
    last = compiled.ir.nodes[-1]
    assert last.kind == case.split("-")[0]
    assert last.shape == shape
    assert (last.counts.trainable, last.counts.non_trainable, last.counts.macs) == (params, 0, 0)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(SPECS))
def test_the_built_model_has_the_inferred_shapes_and_parameters_layer_by_layer(case):
    from cnnspec.api import build_model

    compiled = compile_text(SPECS[case][0])
    model = build_model(compiled)
    for node in compiled.ir.nodes:
        layer = model.get_layer(node.name)
        assert tuple(layer.output.shape[1:]) == node.shape, node.name
        assert layer.count_params() == node.counts.params, node.name
        trainable = sum(int(w.numpy().size) for w in layer.trainable_weights)
        assert trainable == node.counts.trainable, node.name


# -- the spec language stays unambiguous --------------------------------------------------------
def test_a_kind_and_an_activation_value_of_the_same_spelling_are_told_apart():
    """``- softmax`` is Keras' Softmax layer, ``- activation: softmax`` its Activation layer and
    ``activation: softmax`` a dense layer's own: as ``- relu`` beside ``activation: relu``."""
    text = _spec(
        [8],
        "dense: {units: 4, activation: leaky_relu}",
        "leaky_relu",
        "activation: softmax",
        "softmax",
    )
    kinds = [(n.kind, n.params.get("activation")) for n in compile_text(text).ir.nodes]
    assert kinds == [
        ("dense", "leaky_relu"),
        ("leaky_relu", None),
        ("activation", "softmax"),
        ("softmax", None),
    ]


def test_the_softmax_kind_says_its_output_is_a_softmax_over_the_last_axis_only():
    softmax = REGISTRY["softmax"]
    assert softmax.output_activation({"axis": -1}, [(8, 6, 3)]) == "softmax"
    assert softmax.output_activation({"axis": 3}, [(8, 6, 3)]) == "softmax"  # 1-based: the last
    assert softmax.output_activation({"axis": 1}, [(8, 6, 3)]) is None  # a spatial softmax
    # a kind with an activation parameter says that one; a linear one is none
    dense = REGISTRY["dense"]
    assert dense.output_activation({"activation": "sigmoid"}, [(4,)]) == "sigmoid"
    assert dense.output_activation({"activation": "linear"}, [(4,)]) is None
    assert all(
        REGISTRY[k].output_activation(REGISTRY[k].defaults(), [(4,)]) is None
        for k in ("leaky_relu", "permute")
    )


def test_a_model_ending_in_the_softmax_kind_trains_on_probabilities():
    from cnnspec.analysis.settings import training_config

    text = _spec([8], "dense: 4", "softmax")
    assert training_config(compile_text(text, "head.yaml")).loss.from_logits is False


# -- bad values: located errors -------------------------------------------------------------------
def _errors(text: str) -> list[Any]:
    with pytest.raises(SpecError) as caught:
        compile_text(text)
    return [d for d in caught.value.errors if d.severity == "error"]


@pytest.mark.parametrize(
    ("item", "path", "said"),
    [
        ("permute: [1, 3, 4]", "model[0].permute[2]", "expected an axis from 1 to 3"),
        ("permute: [1, 1, 2]", "model[0].permute[1]", "expected an axis not listed before it"),
        ("permute: [0, 1, 2]", "model[0].permute[0]", "1-based: 0 is the batch"),
        ("permute: {dims: [2, 1]}", "model[0].permute.dims", "expected dims to order all 3 axes"),
        ("prelu: [1, 4]", "model[0].prelu", "expected shared_axes among the input's axes 1 to 3"),
        ("prelu: {shared_axes: [2, 2]}", "model[0].prelu.shared_axes[1]", "not listed before it"),
        ("softmax: {axis: 0}", "model[0].softmax.axis", "axis 0 is the batch"),
        ("leaky_relu: -0.1", "model[0].leaky_relu", "expected a number ≥ 0"),
    ],
)
def test_a_bad_parameter_is_one_located_error(item, path, said):
    assert_one_located_error(item, path, said)


def test_subtract_of_three_inputs_is_a_located_error_with_a_hint():
    errors = _errors(_spec([8, 6, 3], *_BRANCHES, "subtract:\n    inputs: [a, b, a]"))
    assert len(errors) == 1, [e.message for e in errors]
    assert errors[0].path == "model[2].subtract"
    assert errors[0].message == "`subtract` merges exactly two tensors; received 3 inputs"
    assert errors[0].hint == "give the layers to merge ids and list them: inputs: [a, b] (in that order)"
    assert errors[0].loc is not None and errors[0].loc.line == 10  # the `- subtract:` line


@pytest.mark.parametrize("kind", ["subtract", "average", "max", "min"])
def test_a_merge_of_one_input_is_refused_as_for_add(kind):
    errors = _errors(_spec([8, 6, 3], *_BRANCHES, f"{kind}:\n    inputs: [a]"))
    assert [e.path for e in errors] == [f"model[2].{kind}"]
    takes = "exactly two" if kind == "subtract" else "two or more"  # (before: subtract said "or more")
    assert errors[0].message == f"`{kind}` merges {takes} tensors; received 1 input"


# -- cnnspec import, TensorFlow-free: every new layer from a saved configuration --------------------
def _tensor(source: str) -> dict[str, Any]:
    return {"class_name": "__keras_tensor__", "config": {"keras_history": [source, 0, 0]}}


def _input_layer() -> dict[str, Any]:
    """The Functional's input ``in`` of a 6×4×2 image, as Keras 3 saves it."""
    return {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "name": "in",
        "config": {"name": "in", "batch_shape": [None, 6, 4, 2], "dtype": "float32"},
        "inbound_nodes": [],
    }


def assert_one_located_error(item: str, path: str, said: str) -> None:
    """``item``, the one layer of a 8×6×3 model, is one error at ``path`` that says ``said``."""
    errors = _errors(_spec([8, 6, 3], item))
    assert len(errors) == 1, [e.message for e in errors]
    assert errors[0].path == path
    assert said in errors[0].message, errors[0].message


def _layer(class_name: str, name: str, reads: list[str], **config: Any) -> dict[str, Any]:
    """A layer as Keras 3 saves it in a Functional's config (dtype policy included)."""
    policy = {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": "float32"},
        "registered_name": None,
    }
    args: list[Any] = [[_tensor(r) for r in reads]] if len(reads) > 1 else [_tensor(reads[0])]
    return {
        "module": "keras.layers",
        "class_name": class_name,
        "registered_name": None,
        "name": name,
        "config": {"name": name, "trainable": True, "dtype": policy, **config},
        "inbound_nodes": [{"args": args, "kwargs": {}}],
    }


def _functional(name: str, layers: list[dict[str, Any]], output: str) -> dict[str, Any]:
    """A Functional's saved configuration: ``layers`` (the first the input ``in``), one output."""
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": name,
            "layers": layers,
            "input_layers": [["in", 0, 0]],
            "output_layers": [[output, 0, 0]],
        },
    }


def _zeros() -> dict[str, Any]:
    return {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": None}


def _all_new_layers(**prelu: Any) -> dict[str, Any]:
    """A Functional model of a 6×4×2 input that holds every new layer (configurations as Keras
    3.15 writes them: ``get_config`` of each class)."""
    layers = [
        _input_layer(),
        _layer("LeakyReLU", "leaky", ["in"], negative_slope=0.2),
        _layer(
            "PReLU",
            "prelu",
            ["in"],
            **{
                "alpha_initializer": _zeros(),
                "alpha_regularizer": None,
                "alpha_constraint": None,
                "shared_axes": [1, 2],
                **prelu,
            },
        ),
        _layer("Subtract", "diff", ["leaky", "prelu"]),
        _layer("Average", "mean", ["leaky", "prelu", "diff"]),
        _layer("Maximum", "high", ["mean", "in"]),
        _layer("Minimum", "low", ["high", "leaky"]),
        _layer("Permute", "swap", ["low"], dims=[2, 1, 3]),
        _layer("Softmax", "spatial", ["swap"], axis=1),
        _layer("Flatten", "flat", ["spatial"], data_format="channels_last"),
        _layer("Softmax", "probs", ["flat"], axis=-1),
    ]
    return _functional("extra", layers, "probs")


def test_a_configuration_with_every_new_layer_imports_without_a_refusal():
    imported = import_source(Source("extra", _all_new_layers()))
    text = imported.text
    for item in (
        "- leaky_relu: 0.2",
        "- prelu: {shared_axes: [1, 2]}",
        "- subtract",
        "- average",
        "- max",
        "- min",
        "- permute: {dims: [2, 1, 3]}",
        "- softmax: 1",
    ):
        assert item in text, text
    assert text.rstrip().endswith("- softmax"), text  # the default axis written as the bare kind
    compiled = compile_text(text)
    kinds = [n.kind for n in compiled.ir.nodes]
    assert sorted(set(NEW_KINDS) - set(kinds)) == []
    assert compiled.ir.nodes[-1].shape == (48,)


def test_subtract_keeps_its_input_order_on_import():
    """A difference is not commutative: the spec lists ``leaky`` then ``prelu`` as Keras did."""
    text = import_source(Source("extra", _all_new_layers())).text
    compiled = compile_text(text)
    (diff,) = [n for n in compiled.ir.nodes if n.kind == "subtract"]
    by_name = {n.name: n for n in compiled.ir.nodes}
    assert [by_name[i].kind for i in diff.inputs] == ["leaky_relu", "prelu"]


@pytest.mark.parametrize(
    ("prelu", "said"),
    [
        (
            {
                "alpha_constraint": {
                    "module": "keras.constraints",
                    "class_name": "NonNeg",
                    "config": {},
                    "registered_name": None,
                }
            },
            "`alpha_constraint: ",
        ),
        (
            {
                "alpha_initializer": {
                    "module": "keras.initializers",
                    "class_name": "RandomNormal",
                    "config": {"mean": 0.0, "stddev": 0.3, "seed": None},
                    "registered_name": None,
                }
            },
            "`alpha_initializer: ",
        ),
    ],
    ids=["constraint", "initializer"],
)
def test_a_prelu_setting_the_spec_cannot_write_is_refused_by_name(prelu, said):
    with pytest.raises(SpecError) as caught:
        import_source(Source("extra", _all_new_layers(**prelu)))
    (diagnostic,) = caught.value.diagnostics
    assert "layer 'prelu' (PReLU) cannot be imported: " in diagnostic.message
    assert said in diagnostic.message


def refused_without(monkeypatch: pytest.MonkeyPatch, kinds: Any, config: dict[str, Any]) -> list[Any]:
    """What import says of ``config`` with the kinds ``kinds`` forgotten (the registry of
    before): its diagnostics. Only the importer's lookup forgets them: the registry itself, and
    whatever is cached from it (the schema), stays whole for the other tests."""
    from cnnspec.layers import reverse
    from cnnspec.layers.registry import kind_of_keras_class

    def without_new_kinds(class_name: str) -> Any:
        kind = kind_of_keras_class(class_name)
        return None if kind is not None and kind.name in kinds else kind

    monkeypatch.setattr(reverse, "kind_of_keras_class", without_new_kinds)
    with pytest.raises(SpecError) as caught:
        import_source(Source("before", config))
    assert all("no layer kind builds Keras" in d.message for d in caught.value.diagnostics)
    return list(caught.value.diagnostics)


def refused_classes(diagnostics: list[Any]) -> set[str]:
    """The Keras class each refusal names (``layer 'x' (ClassName) cannot be imported``)."""
    return {d.message.split("(")[1].split(")")[0] for d in diagnostics}


def test_the_layers_were_refused_before_these_kinds(monkeypatch):
    """What import said of each of these classes without its kind."""
    refused = refused_classes(refused_without(monkeypatch, NEW_KINDS, _all_new_layers()))
    assert refused == {
        "LeakyReLU",
        "PReLU",
        "Subtract",
        "Average",
        "Maximum",
        "Minimum",
        "Permute",
        "Softmax",
    }


# -- TensorFlow: a saved .keras model round-trips output for output -------------------------------
def _keras_model() -> Any:
    import keras
    import numpy as np

    inputs = keras.Input((8, 6, 3), name="image")
    conv = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    leaky = keras.layers.LeakyReLU(negative_slope=0.2, name="leaky")(conv)
    prelu = keras.layers.PReLU(shared_axes=[1, 2], name="prelu")(conv)
    prelu_all = keras.layers.PReLU(name="prelu_all")(conv)
    diff = keras.layers.Subtract(name="diff")([leaky, prelu])
    mean = keras.layers.Average(name="mean")([leaky, prelu_all, diff])
    high = keras.layers.Maximum(name="high")([mean, conv])
    low = keras.layers.Minimum(name="low")([high, prelu])
    swap = keras.layers.Permute((2, 1, 3), name="swap")(low)
    spatial = keras.layers.Softmax(axis=1, name="spatial")(swap)
    flat = keras.layers.Flatten(name="flat")(spatial)
    dense = keras.layers.Dense(5, name="dense")(flat)
    outputs = keras.layers.Softmax(name="probs")(dense)
    model = keras.Model(inputs, outputs, name="extra")
    # learned slopes that are not PReLU's zeros, so that a mix-up of the layers' weights shows
    rng = np.random.default_rng(1)
    for name in ("prelu", "prelu_all"):
        layer = model.get_layer(name)
        layer.set_weights([rng.uniform(0.05, 0.5, w.shape).astype("float32") for w in layer.get_weights()])
    return model


@pytest.mark.slow
def test_a_saved_model_with_every_new_layer_round_trips_output_for_output(tmp_path):
    import keras
    import numpy as np

    from cnnspec.api import build_model
    from cnnspec.importer.output import run_import
    from tests.test_import import assert_same_model

    source = _keras_model()
    path = tmp_path / "extra.keras"
    source.save(path)
    out = tmp_path / "extra.yaml"
    imported = run_import(str(path), out, weights=True)
    text = out.read_text(encoding="utf-8")
    for kind in NEW_KINDS:
        assert f"- {kind}" in text, text
    model = build_model(compile_text(text.replace("weights: extra.weights.h5\n", "")))
    model.load_weights(tmp_path / "extra.weights.h5")
    assert_same_model(source, model, imported.names)
    x = np.random.default_rng(0).normal(size=(4, 8, 6, 3)).astype("float32")
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(
        model.predict(x, verbose=0), loaded.predict(x, verbose=0), rtol=1e-6, atol=1e-7
    )
    assert model.count_params() == source.count_params()


@pytest.mark.slow
@pytest.mark.parametrize("axis", [-1, 3, 1, 2])
def test_applies_activation_matches_what_keras_softmax_computes(axis):
    """``output_activation`` says softmax exactly when Keras' layer gives a distribution over
    the last axis (sums of one there) of an 8×6×3 input."""
    import numpy as np

    from cnnspec.backends.keras_builder import make_layer
    from cnnspec.ir import Node
    from cnnspec.layers.registry import Counts

    kind = REGISTRY["softmax"]
    params = {**kind.defaults(), "axis": axis}
    layer = make_layer(Node("layer", "softmax", params, ("in",), (8, 6, 3), Counts()))
    x = np.random.default_rng(0).normal(size=(2, 8, 6, 3)).astype("float32")
    sums = np.asarray(layer(x)).sum(axis=-1)
    assert (kind.output_activation(params, [(8, 6, 3)]) == "softmax") == bool(
        np.allclose(sums, 1.0, atol=1e-5)
    )


@pytest.mark.parametrize(
    ("written", "meant"), [("maximum", "max"), ("minimum", "min"), ("Subtract", "subtract")]
)
def test_keras_spellings_of_the_merges_get_a_did_you_mean(written, meant):
    errors = _errors(_spec([8, 6, 3], *_BRANCHES, f"{written}:\n    inputs: [a, b]"))
    assert [e.message for e in errors] == [f"unknown layer kind '{written}'"]
    assert errors[0].hint == f"did you mean `{meant}`?"
