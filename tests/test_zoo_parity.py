"""Every zoo variant equals ``keras.applications.<keras_name>(include_top=True, weights=None)``.

Parametrized over every variant the zoo lists (:func:`cnnspec.spec.zoo.variants`), so a family
added to ``cnnspec/zoo`` joins on its own. Both models are built under
``keras.backend.clear_session()`` and compared by a fingerprint that needs no inference: total,
trainable and non-trainable parameters, output shape, the layer count and the count per Keras
class, the weight shapes in ``model.weights`` order (the order ImageNet weight files load in),
and the multiset of layer configurations without names. The static analysis must agree with the
built model layer by layer. Nothing is downloaded (``weights=None``).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pytest

from cnnspec.api import build_model, compile_spec
from cnnspec.spec.zoo import variants

VARIANTS = list(variants())

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


def _canonical(value: Any) -> Any:
    """Config values as Keras spells them either way: 6 and 6.0, (1, 1) and [1, 1], axis 3 and -1."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, (list, tuple)):
        return tuple(_canonical(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _canonical(v)) for k, v in value.items()))
    return repr(value)


def _signature(layer: Any) -> tuple[str, Any]:
    """A layer's class and configuration without its name."""
    config = {k: v for k, v in layer.get_config().items() if k not in ("name", "trainable", "dtype")}
    if config.get("axis") == 3:
        config["axis"] = -1  # the channel axis of a rank-4 tensor
    return type(layer).__name__, _canonical(config)


def fingerprint(model: Any) -> dict[str, Any]:
    """What the zoo format promises to equal, cheap to compute on a built model."""
    return {
        "params": model.count_params(),
        "trainable": sum(math.prod(w.shape) for w in model.trainable_weights),
        "non_trainable": sum(math.prod(w.shape) for w in model.non_trainable_weights),
        "output_shape": tuple(model.output.shape),
        "layers": len(model.layers),
        "classes": Counter(type(layer).__name__ for layer in model.layers),
        "weight_shapes": [tuple(w.shape) for w in model.weights],
        "configs": Counter(_signature(layer) for layer in model.layers[1:]),
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", VARIANTS)
def test_variant_equals_keras_applications(name):
    import keras

    variant = variants()[name]
    keras.backend.clear_session()
    theirs = fingerprint(getattr(keras.applications, variant.keras_name)(include_top=True, weights=None))
    keras.backend.clear_session()
    compiled = compile_spec(f"zoo:{name}")
    model = build_model(compiled)
    ours = fingerprint(model)
    if name in SUBSTITUTES:
        (keras_class, keras_config), (our_class, our_config), count = SUBSTITUTES[name]
        theirs["classes"].subtract({keras_class: count})
        theirs["classes"].update({our_class: count})
        theirs["classes"] = +theirs["classes"]
        theirs["configs"].subtract({(keras_class, _canonical(keras_config)): count})
        theirs["configs"].update({(our_class, _canonical(our_config)): count})
        assert min(theirs["configs"].values()) >= 0, "Keras has fewer of the substituted layers"
        theirs["configs"] = +theirs["configs"]

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
    # the static analysis agrees with the built model, layer by layer
    assert compiled.ir.totals.params == theirs["params"]
    for node in compiled.ir.nodes:
        layer = model.get_layer(node.name)
        assert tuple(layer.output.shape[1:]) == node.shape, node.name
        assert layer.count_params() == node.counts.params, node.name
