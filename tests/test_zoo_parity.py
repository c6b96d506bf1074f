"""Every zoo variant equals ``keras.applications.<keras_name>(include_top=True, weights=None)``.

Parametrized over every variant the zoo lists (:func:`cnnspec.spec.zoo.variants`), so a family
added to ``cnnspec/zoo`` joins on its own. Our model is built under
``keras.backend.clear_session()`` and compared by a fingerprint that needs no inference (see
:mod:`tests.zoo_golden`): total, trainable and non-trainable parameters, output shape, the layer
count and the count per Keras class, the weight shapes in ``model.weights`` order (the order
ImageNet weight files load in), and the multiset of layer configurations without names. The
static analysis must agree with the built model layer by layer. Nothing is downloaded.

keras.applications' side is the committed golden fixture ``tests/fixtures/zoo/keras_applications.json``
(building it again costs as much CPU as building ours): ``make zoo-golden`` rewrites it,
``make zoo-golden-check`` rebuilds Keras' models and fails when the fixture differs.

Every variant is compared TF-free, from the static analysis alone (a second in all): its counts,
output shape, layers by Keras class and weight shapes against Keras' fingerprint. The build in
Keras, which also compares every layer's configuration and the weights' order, runs in `make test`
for the smallest variant of each zoo file (the family's definition, which the other variants
only size), and for every variant in `make test-long` (make test-full): about 20 s of CPU, the
build of 21 larger models, are a second proof of what the static comparison and the smallest
family member prove.
"""

from __future__ import annotations

import json
from collections import Counter
from importlib.metadata import version
from typing import Any

import pytest

from cnnspec.api import build_model, compile_spec
from cnnspec.layers.registry import get_kind
from cnnspec.spec.zoo import variants
from tests.conftest import layers_by_name
from tests.zoo_golden import fingerprint, load, shape_text

VARIANTS = list(variants())
KERAS_VERSION, GOLDEN_PRINTS = load()
REGENERATE = "run `make zoo-golden` (rebuilds keras.applications' side) and commit the fixture"

#: The one place the zoo cannot be Keras layer for layer: keras.applications' MobileNetV3 writes the
#: hard sigmoid of its squeeze-and-excitation as ``ReLU(6.)(x + 3.) * (1. / 6.)``, raw ops around a
#: ReLU layer; with standard layers only it is one ``Activation("hard_sigmoid")`` (the same function,
#: the same layer count). Variant → (Keras' layer class and config, ours, how many): exactly these
#: layers are swapped in Keras' fingerprint before comparing, so any other difference still fails.
SUBSTITUTES: dict[str, tuple[tuple[str, dict[str, Any]], tuple[str, dict[str, Any]], int]] = {
    name: (
        ("ReLU", {"max_value": 6.0, "negative_slope": 0.0, "threshold": 0.0}),
        ("Activation", {"activation": "hard_sigmoid"}),
        count,
    )
    for name, count in (("mobilenet_v3_small", 9), ("mobilenet_v3_large", 8))
}


def _signature_text(cls: str, config: dict[str, Any]) -> str:
    """A (class, config) pair as :func:`tests.zoo_golden.signature` writes it."""
    canonical = {k: float(v) if isinstance(v, int) else v for k, v in config.items()}
    return json.dumps([cls, canonical], sort_keys=True)


def test_the_golden_fixture_covers_the_zoo_with_the_locked_keras():
    """A new variant, a changed keras_name or another Keras release needs the fixture rewritten."""
    assert version("keras") == KERAS_VERSION, REGENERATE
    assert list(GOLDEN_PRINTS) == VARIANTS, REGENERATE
    for name, variant in variants().items():
        assert GOLDEN_PRINTS[name]["keras_name"] == variant.keras_name, REGENERATE


def _smallest_of_each_file() -> set[str]:
    """The variant of fewest parameters of each zoo file (ResNet-50 of resnet.yaml, ...), and
    every variant without a golden fingerprint (its tests fail, saying to write the fixture)."""
    smallest: dict[Any, str] = {}
    unknown = {name for name in variants() if name not in GOLDEN_PRINTS}
    for name, variant in variants().items():
        if name in unknown:
            continue
        kept = smallest.get(variant.file)
        if kept is None or GOLDEN_PRINTS[name]["params"] < GOLDEN_PRINTS[kept]["params"]:
            smallest[variant.file] = name
    return set(smallest.values()) | unknown


#: built in Keras by `make test`; the others by `make test-long` (the module docstring)
BUILT_IN_MAKE_TEST = _smallest_of_each_file()


def _with_substitutes(name: str, theirs: dict[str, Any]) -> dict[str, Any]:
    """Keras' fingerprint of ``name`` with :data:`SUBSTITUTES`' layers swapped for ours."""
    theirs = dict(theirs)
    theirs["classes"] = Counter(theirs["classes"])
    theirs["configs"] = Counter(theirs["configs"])
    if name in SUBSTITUTES:
        (keras_class, keras_config), (our_class, our_config), count = SUBSTITUTES[name]
        theirs["classes"].subtract({keras_class: count})
        theirs["classes"].update({our_class: count})
        theirs["classes"] = +theirs["classes"]
        theirs["configs"].subtract({_signature_text(keras_class, keras_config): count})
        theirs["configs"].update({_signature_text(our_class, our_config): count})
        assert min(theirs["configs"].values()) >= 0, "Keras has fewer of the substituted layers"
        theirs["configs"] = +theirs["configs"]
    return theirs


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_counts_as_keras_applications_statically(name):
    """The static analysis of every variant, no TensorFlow: its parameters (trainable or not),
    output shape, layers by Keras class (the input layer included) and the multiset of its
    weights' shapes are Keras' fingerprint's."""
    if name not in GOLDEN_PRINTS:
        pytest.fail(f"no golden fingerprint for {name!r}: {REGENERATE}")
    theirs = _with_substitutes(name, GOLDEN_PRINTS[name])
    ir = compile_spec(f"zoo:{name}").ir
    classes: Counter[str] = Counter({"InputLayer": 1})
    shapes: Counter[str] = Counter()
    for node in ir.nodes:
        kind = get_kind(node.kind)
        assert kind is not None, node.kind
        classes[kind.keras_class] += 1
        weights = kind.weight_shapes(node.params, list(node.input_shapes), node.shape)
        shapes.update(shape_text(shape) for shape in weights)
    assert (ir.totals.params, ir.totals.trainable, ir.totals.non_trainable) == (
        theirs["params"],
        theirs["trainable"],
        theirs["non_trainable"],
    )
    assert [None, *ir.nodes[-1].shape] == theirs["output_shape"]
    assert sum(classes.values()) == theirs["layers"]
    assert classes == theirs["classes"], (
        f"only ours: {classes - theirs['classes']}; only Keras: {theirs['classes'] - classes}"
    )
    assert shapes == Counter(theirs["weight_shapes"]), (
        f"only ours: {shapes - Counter(theirs['weight_shapes'])}; "
        f"only Keras: {Counter(theirs['weight_shapes']) - shapes}"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [name if name in BUILT_IN_MAKE_TEST else pytest.param(name, marks=pytest.mark.full) for name in VARIANTS],
)
def test_variant_equals_keras_applications(name):
    import keras

    if name not in GOLDEN_PRINTS:
        pytest.fail(f"no golden fingerprint for {name!r}: {REGENERATE}")
    theirs = _with_substitutes(name, GOLDEN_PRINTS[name])
    keras.backend.clear_session(free_memory=False)  # (no weights were filled: nothing to collect)
    compiled = compile_spec(f"zoo:{name}")
    # Built in a stateless scope that does not initialize its variables, Keras creates each
    # weight with its shape and dtype and never fills it: the fingerprint needs no values, and
    # filling them from their initializers was most of this test's time (efficientnet_v2_l's
    # build: 5.0 s → 1.2 s of CPU). A plain StatelessScope fills them all as it exits.
    with keras.StatelessScope(initialize_variables=False):
        model = build_model(compiled)
    ours = fingerprint(model)
    ours["classes"] = Counter(ours["classes"])
    ours["configs"] = Counter(ours["configs"])
    for key in ("params", "trainable", "non_trainable", "output_shape", "layers"):
        assert ours[key] == theirs[key], key
    assert ours["classes"] == theirs["classes"], (
        f"only ours: {ours['classes'] - theirs['classes']}; only Keras: {theirs['classes'] - ours['classes']}"
    )
    if ours["weight_shapes"] != theirs["weight_shapes"]:
        first = next(
            (i for i, (a, b) in enumerate(zip(ours["weight_shapes"], theirs["weight_shapes"])) if a != b),
            min(len(ours["weight_shapes"]), len(theirs["weight_shapes"])),
        )
        pytest.fail(
            f"weight shapes differ from weight {first}: ours {ours['weight_shapes'][first : first + 4]}, "
            f"Keras {theirs['weight_shapes'][first : first + 4]}"
        )
    assert ours["configs"] == theirs["configs"], (
        f"only ours: {ours['configs'] - theirs['configs']}; only Keras: {theirs['configs'] - ours['configs']}"
    )
    # the static analysis agrees with the built model, layer by layer (looked up by name in one
    # table: model.get_layer lists the model's layers anew on every call, quadratic in a
    # thousand layers, a sixth of this test's time)
    assert compiled.ir.totals.params == theirs["params"]
    layers = layers_by_name(model)
    for node in compiled.ir.nodes:
        layer = layers[node.name]
        assert tuple(layer.output.shape[1:]) == node.shape, node.name
        assert layer.count_params() == node.counts.params, node.name


@pytest.mark.parametrize(
    ("channels", "kinds"),
    [
        (1, ["rescaling", "conv2d"]),
        (4, ["rescaling", "conv2d"]),
        (3, ["rescaling", "normalization", "conv2d"]),
    ],
)
def test_efficientnet_v2_b_standardises_only_rgb_as_keras_does(channels, kinds):
    """The B models' ImageNet mean and variance are per RGB channel: keras.applications scales any
    other channel count to [-1, 1] instead. A grey input was refused at the zoo file's
    normalization (its three means)."""
    compiled = compile_spec("zoo:efficientnet_v2_b0", [f"vars.input_shape=[32, 32, {channels}]"])
    assert [node.kind for node in compiled.ir.nodes[: len(kinds)]] == kinds
    params = compiled.ir.nodes[0].params
    if channels == 3:
        assert params["scale"] == pytest.approx(1 / 255)
    else:
        assert params["scale"] == pytest.approx(1 / 128) and params["offset"] == -1.0


@pytest.mark.slow
def test_a_grey_efficientnet_v2_b0_equals_keras_applications():
    import keras

    keras.backend.clear_session(free_memory=False)
    with keras.StatelessScope(initialize_variables=False):
        theirs = keras.applications.EfficientNetV2B0(weights=None, input_shape=(32, 32, 1), classes=3)
        ours = build_model(
            compile_spec("zoo:efficientnet_v2_b0", ["vars.input_shape=[32, 32, 1]", "vars.classes=3"])
        )
    mine, keras_print = fingerprint(ours), fingerprint(theirs)
    for key in ("params", "trainable", "non_trainable", "output_shape", "layers", "weight_shapes"):
        assert mine[key] == keras_print[key], key
    assert Counter(mine["configs"]) == Counter(keras_print["configs"])
