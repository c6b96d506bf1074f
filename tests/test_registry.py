"""Parametrized over the registry: every kind has a schema, shape rule and back-end entry, and
its static shape and parameter count equal Keras' for several configurations."""

from __future__ import annotations

import ast
import functools
import math
from pathlib import Path
from typing import Any

import pytest

from cnnspec.layers.registry import REGISTRY, KerasCall
from cnnspec.spec.schema import json_schema

# kind → [(input shapes without batch axis, params)]; every registered kind must appear here,
# so a new kind cannot land untested.
CONFIGS: dict[str, list[tuple[list[tuple[int, ...]], dict]]] = {
    "conv1d": [
        ([(20, 3)], {"filters": 4, "kernel_size": 3}),
        ([(20, 4)], {"filters": 8, "kernel_size": 5, "strides": 2, "padding": "same", "groups": 2}),
        ([(20, 3)], {"filters": 4, "kernel_size": 3, "padding": "causal", "dilation_rate": 2}),
    ],
    "conv2d": [
        ([(9, 9, 3)], {"filters": 4, "kernel_size": 3}),
        (
            [(9, 7, 4)],
            {"filters": 6, "kernel_size": [3, 1], "strides": [2, 1], "padding": "same", "use_bias": False},
        ),
        ([(12, 12, 4)], {"filters": 8, "kernel_size": 3, "dilation_rate": 2, "groups": 4}),
        ([(8, 8, 2)], {"filters": 3, "kernel_size": 1, "kernel_regularizer": {"l2": 0.001}}),
        (
            [(8, 8, 2)],
            {
                "filters": 3,
                "kernel_size": 1,
                "kernel_initializer": {
                    "variance_scaling": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"}
                },
            },
        ),
    ],
    "depthwise_conv2d": [
        ([(9, 9, 3)], {"kernel_size": 3}),
        (
            [(9, 9, 3)],
            {"kernel_size": 3, "strides": 2, "padding": "same", "depth_multiplier": 2, "use_bias": False},
        ),
    ],
    "separable_conv2d": [
        ([(9, 9, 3)], {"filters": 5, "kernel_size": 3}),
        (
            [(10, 10, 4)],
            {"filters": 6, "kernel_size": 3, "strides": 2, "padding": "same", "depth_multiplier": 2},
        ),
    ],
    "conv2d_transpose": [
        ([(5, 5, 3)], {"filters": 4, "kernel_size": 3, "strides": 2}),
        ([(5, 5, 3)], {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"}),
        ([(5, 6, 3)], {"filters": 2, "kernel_size": 3, "strides": 2, "output_padding": 1}),
        ([(5, 5, 3)], {"filters": 2, "kernel_size": 4, "strides": 2, "padding": "same", "output_padding": 1}),
        ([(5, 5, 3)], {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same", "output_padding": 0}),
    ],
    "max_pool2d": [
        ([(9, 9, 3)], {"pool_size": 2}),
        ([(9, 9, 3)], {"pool_size": 3, "strides": 2, "padding": "same"}),
        ([(9, 8, 3)], {"pool_size": [3, 2], "strides": 1}),
    ],
    "avg_pool2d": [([(9, 9, 3)], {"pool_size": 2}), ([(7, 7, 3)], {"pool_size": 3, "padding": "same"})],
    "global_avg_pool2d": [([(5, 5, 3)], {}), ([(5, 5, 3)], {"keepdims": True})],
    "global_max_pool2d": [([(5, 5, 3)], {}), ([(5, 5, 3)], {"keepdims": True})],
    "batch_norm": [([(5, 5, 3)], {}), ([(7,)], {"center": False}), ([(4, 6)], {"scale": False})],
    "layer_norm": [([(5, 5, 3)], {}), ([(7,)], {"scale": False})],
    "unit_normalization": [
        ([(5, 5, 3)], {}),
        ([(5, 5, 3)], {"axis": [1, 2]}),
        ([(4, 6)], {"axis": 1}),
        ([(5, 5, 3)], {"axis": [-3, -1]}),
    ],
    "normalization": [
        ([(5, 5, 3)], {"mean": [0.5, 0.4, 0.3], "variance": [0.1, 0.2, 0.3]}),
        ([(5, 5, 3)], {}),
        ([(5, 5, 3)], {"adapt": True}),
        ([(5, 5, 3)], {"mean": 0.5, "variance": 0.25, "invert": True}),
        ([(4, 6)], {"axis": 1}),
        ([(4, 6)], {"axis": None}),
    ],
    "group_norm": [([(5, 5, 8)], {"groups": 4}), ([(5, 5, 6)], {"groups": 6, "center": False})],
    "dense": [
        ([(7,)], {"units": 3}),
        ([(7,)], {"units": 2, "bias_initializer": {"constant": {"value": 0.5}}}),
        ([(4, 5)], {"units": 2, "use_bias": False, "activation": "relu"}),
        ([(3, 3, 4)], {"units": 6}),
        (
            [(7,)],
            {
                "units": 2,
                "kernel_initializer": {"variance_scaling": {"scale": 0.5, "distribution": "uniform"}},
            },
        ),
    ],
    "dropout": [
        ([(7,)], {"rate": 0.5}),
        ([(3, 3, 2)], {"rate": 0.1, "seed": 3}),
        ([(3, 3, 2)], {"rate": 0.2, "noise_shape": [None, 1, 1, 1]}),
        ([(3, 3, 2)], {"rate": 0.2, "noise_shape": [None, 1, 1, 2]}),
    ],
    "spatial_dropout2d": [([(3, 3, 2)], {"rate": 0.2})],
    "gaussian_noise": [([(3, 3, 2)], {"stddev": 0.1}), ([(7,)], {"stddev": 0.5, "seed": 3})],
    "gaussian_dropout": [([(3, 3, 2)], {"rate": 0.2}), ([(7,)], {"rate": 0.5, "seed": 3})],
    "alpha_dropout": [
        ([(3, 3, 2)], {"rate": 0.2}),
        ([(3, 3, 2)], {"rate": 0.1, "noise_shape": [None, 1, 1, 2], "seed": 3}),
    ],
    "activity_regularization": [([(3, 3, 2)], {}), ([(7,)], {"l1": 0.01, "l2": 0.001})],
    "flatten": [([(3, 4, 5)], {}), ([(7,)], {})],
    "activation": [([(3, 4, 5)], {"activation": name}) for name in ("relu", "gelu", "hard_swish", "softmax")],
    "relu": [
        ([(3, 4, 5)], {}),
        ([(3, 4, 5)], {"max_value": 6}),
        ([(7,)], {"negative_slope": 0.1, "threshold": 0.5}),
    ],
    "leaky_relu": [([(3, 4, 5)], {}), ([(7,)], {"negative_slope": 0.1})],
    "prelu": [
        ([(3, 4, 5)], {}),
        ([(3, 4, 5)], {"shared_axes": [1, 2]}),
        ([(4, 6)], {"shared_axes": 1, "alpha_initializer": {"constant": {"value": 0.25}}}),
        ([(7,)], {"alpha_regularizer": {"l2": 0.01}}),
    ],
    "softmax": [([(3, 4, 5)], {}), ([(3, 4, 5)], {"axis": 1}), ([(7,)], {"axis": 1})],
    "elu": [([(3, 4, 5)], {}), ([(7,)], {"alpha": 0.5})],
    "identity": [([(3, 4, 5)], {})],
    "reshape": [
        ([(3, 4, 5)], {"target_shape": [12, 5]}),
        ([(3, 4, 5)], {"target_shape": [-1, 2, 2]}),
        ([(5,)], {"target_shape": [1, 1, 5]}),
    ],
    # the first is no identity permutation: the traits' checks see the values move
    "permute": [
        ([(3, 4, 5)], {"dims": [2, 1, 3]}),
        ([(4, 6)], {"dims": [2, 1]}),
        ([(2, 3, 4)], {"dims": [3, 1, 2]}),
    ],
    "upsampling2d": [
        ([(3, 4, 5)], {"size": 2}),
        ([(3, 4, 5)], {"size": [2, 3], "interpolation": "bilinear"}),
    ],
    "zero_padding2d": [
        ([(3, 4, 5)], {"padding": 1}),
        ([(3, 4, 5)], {"padding": [1, 2]}),
        ([(3, 4, 5)], {"padding": [[0, 1], [2, 3]]}),
    ],
    "cropping2d": [([(6, 7, 2)], {"cropping": 1}), ([(6, 7, 2)], {"cropping": [[0, 1], [2, 3]]})],
    "rescaling": [
        ([(4, 4, 3)], {"scale": 0.00392156862745098}),
        ([(4, 4, 3)], {"scale": 2.0, "offset": -1.0}),
    ],
    "resizing": [
        ([(4, 6, 3)], {"height": 8, "width": 5}),
        ([(4, 6, 3)], {"height": 3, "width": 3, "crop_to_aspect_ratio": True}),
    ],
    "add": [([(4, 4, 3), (4, 4, 3)], {}), ([(4, 4, 3), (1, 1, 3), (4, 4, 3)], {})],
    "multiply": [([(4, 4, 3), (1, 1, 3)], {})],
    "subtract": [([(4, 4, 3), (4, 4, 3)], {}), ([(4, 4, 3), (1, 1, 3)], {})],
    "average": [([(4, 4, 3), (4, 4, 3)], {}), ([(4, 4, 3), (1, 1, 3), (4, 4, 3)], {})],
    "max": [([(4, 4, 3), (4, 4, 3)], {}), ([(7,), (7,), (7,)], {})],
    "min": [([(4, 4, 3), (4, 4, 3)], {}), ([(1, 4, 3), (4, 1, 3)], {})],
    "concat": [
        ([(4, 4, 3), (4, 4, 5)], {}),
        ([(4, 2, 3), (4, 3, 3)], {"axis": 2}),
        ([(2, 2, 3), (4, 2, 3)], {"axis": -3}),
    ],
    "random_flip": [([(8, 8, 3)], {"mode": "horizontal"})],
    "random_rotation": [
        ([(8, 8, 3)], {"factor": 0.1}),
        ([(8, 8, 3)], {"factor": [-0.2, 0.3], "fill_mode": "constant"}),
    ],
    "random_zoom": [
        ([(8, 8, 3)], {"height_factor": 0.1}),
        ([(8, 8, 3)], {"height_factor": 0.2, "width_factor": 0.1}),
        ([(8, 8, 3)], {"height_factor": [-0.5, 0.2], "width_factor": 1.0}),
    ],
    "random_translation": [
        ([(8, 8, 3)], {"height_factor": 0.1}),
        ([(8, 8, 3)], {"height_factor": 0.1, "width_factor": 0.2}),
    ],
    # only a crop to the input's own size: Keras 3 does not crop at inference (keras#21868)
    "random_crop": [([(8, 6, 3)], {"height": 8, "width": 6})],
    "random_brightness": [
        ([(8, 8, 3)], {"factor": 0.2}),
        ([(8, 8, 3)], {"factor": 0.2, "value_range": [0, 1]}),
    ],
    "random_contrast": [([(8, 8, 3)], {"factor": 0.2})],
    # colour kinds: RGB only (the first configuration is the one the trait tests run)
    "random_grayscale": [([(8, 8, 3)], {"factor": 1.0}), ([(8, 8, 3)], {})],
    "random_hue": [
        ([(8, 8, 3)], {"factor": 0.5}),
        ([(8, 8, 3)], {"factor": [0.2, 0.4], "value_range": [0, 1]}),
    ],
    "random_saturation": [
        ([(8, 8, 3)], {"factor": [0.1, 0.4]}),
        ([(8, 8, 3)], {"factor": 0.9, "value_range": [0, 1]}),
    ],
    "random_color_jitter": [
        ([(8, 8, 3)], {"brightness_factor": 0.2, "contrast_factor": 0.2, "hue_factor": 0.1}),
        ([(8, 8, 1)], {"brightness_factor": [-0.1, 0.2], "contrast_factor": [0.1, 0.3]}),
    ],
    "random_sharpness": [([(8, 8, 3)], {"factor": [0.8, 1.0]}), ([(8, 8, 1)], {"factor": 0.3})],
    "random_gaussian_blur": [
        ([(8, 8, 3)], {"factor": [1.0, 1.0]}),
        ([(8, 8, 1)], {"sigma": [0.5, 2.0]}),
    ],
    "random_erasing": [
        ([(8, 8, 3)], {"factor": [1.0, 1.0], "scale": [0.2, 0.5]}),
        ([(8, 8, 1)], {"fill_value": 0.0, "value_range": [0, 1]}),
    ],
    "random_invert": [([(8, 8, 3)], {"factor": [1.0, 1.0], "value_range": [0, 1]}), ([(8, 8, 4)], {})],
    "random_posterization": [
        ([(8, 8, 3)], {"factor": 2}),
        ([(8, 8, 1)], {"factor": [3, 3]}),
        ([(8, 8, 3)], {}),
    ],
    "rand_augment": [
        ([(8, 8, 3)], {"num_ops": 3, "factor": 0.8}),
        ([(8, 8, 1)], {"factor": [0.2, 0.6], "value_range": [0, 1], "interpolation": "nearest"}),
    ],
    "random_perspective": [
        ([(8, 8, 3)], {"scale": 0.8}),
        ([(8, 8, 1)], {"factor": [0.2, 0.6], "fill_value": 1.0}),
    ],
    "random_solarization": [
        ([(8, 8, 3)], {"addition_factor": 0.1}),  # threshold 0: every image is inverted
        ([(8, 8, 3)], {"threshold_factor": 0.5}),
        ([(8, 8, 1)], {"addition_factor": [0.1, 0.2], "threshold_factor": [0.3, 0.6], "value_range": [0, 1]}),
    ],
}

CASES = [
    pytest.param(kind, shapes, params, id=f"{kind}-{i}")
    for kind, configs in CONFIGS.items()
    for i, (shapes, params) in enumerate(configs)
]


def test_every_kind_has_test_configurations():
    assert set(REGISTRY) == set(CONFIGS)


@functools.cache
def _schema() -> dict[str, Any]:
    """``json_schema()``, built once for the cases that each look up their kind in it (built
    anew per case, 25 ms each: the schema of every kind's every parameter)."""
    return json_schema()


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_kind_has_schema_docs_and_backend_entry(kind):
    entry = REGISTRY[kind]
    schema = _schema()
    assert kind in schema["$defs"]["kinds"]
    assert entry.doc and entry.keras_class[0].isupper()
    for param in entry.params:
        assert param.doc, f"{kind}.{param.name} has no doc"
        if not param.required:
            assert param.check(param.default) is None, f"{kind}.{param.name} default fails its own check"
    if entry.main is not None:
        assert entry.main in entry.param_index


@pytest.mark.parametrize(("kind", "shapes", "params"), CASES)
def test_configuration_is_valid_and_has_canonical_keras_args(kind, shapes, params):
    entry = REGISTRY[kind]
    for name, value in params.items():
        assert entry.param_index[name].check(value) is None
    full = {**entry.defaults(), **params}
    shape = entry.output_shape(full, shapes)
    assert all(isinstance(d, int) and d > 0 for d in shape)
    args = entry.keras_args(full)
    assert all(isinstance(k, str) for k in args)
    assert all(not isinstance(v, list) for v in args.values())  # tuples/KerasCall only: hashable, repr-able
    assert all(isinstance(v, (int, float, str, bool, tuple, KerasCall)) or v is None for v in args.values())


@pytest.mark.parametrize(("kind", "shapes", "params"), CASES)
def test_weight_shapes_hold_the_parameters_counted(kind, shapes, params):
    """A kind's variables (what ``import --weights`` checks a weights file against) hold its
    parameters, the non-trainable ones last; a kind without weights has none."""
    entry = REGISTRY[kind]
    full = {**entry.defaults(), **params}
    shape = entry.output_shape(full, shapes)
    counts = entry.counts(full, shapes, shape)
    weights = entry.weight_shapes(full, shapes, shape)
    assert sum(math.prod(w) for w in weights) == counts.params
    assert all(isinstance(d, int) and d > 0 for w in weights for d in w)


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "shapes", "params"), CASES)
def test_static_shape_and_params_equal_keras(kind, shapes, params):
    import keras
    import numpy as np

    from cnnspec.backends.keras_builder import make_layer
    from cnnspec.ir import Node
    from cnnspec.layers.registry import Counts

    entry = REGISTRY[kind]
    full = {**entry.defaults(), **params}
    shape = entry.output_shape(full, shapes)
    counts = entry.counts(full, shapes, shape)
    node = Node("layer", kind, full, tuple(f"in{i}" for i in range(len(shapes))), shape, Counts())
    layer = make_layer(node)
    inputs = [keras.Input(s) for s in shapes]
    output = layer(inputs if entry.arity == "many" else inputs[0])
    assert tuple(output.shape[1:]) == shape
    trainable = sum(int(w.numpy().size) for w in layer.trainable_weights)
    non_trainable = sum(int(w.numpy().size) for w in layer.non_trainable_weights)
    assert (trainable, non_trainable) == (counts.trainable, counts.non_trainable)
    # the variables a .weights.h5 file keeps for the layer (its group's vars 0, 1 …), in order
    store: dict[str, Any] = {}
    layer.save_own_variables(store)
    saved = tuple(tuple(store[str(i)].shape) for i in range(len(store)))
    assert sorted(store) == [str(i) for i in range(len(store))]
    assert saved == entry.weight_shapes(full, shapes, shape)
    # the variables Keras keeps as int64 are the kind's counters; every other one is float32
    # (what `import --weights` checks a file's dtypes against)
    dtypes = [np.asarray(store[str(i)]).dtype for i in range(len(store))]
    ints = tuple(i for i, dtype in enumerate(dtypes) if dtype.kind in "iu")
    assert ints == tuple(i for i in entry.counters if i < len(store))
    assert all(str(dtype) == "float32" for i, dtype in enumerate(dtypes) if i not in ints)
    config = layer.get_config()
    rebuilt = type(layer).from_config(config)
    assert rebuilt.get_config() == config
    # as a run's model.keras holds it: the check of a run folder's model sees no difference
    import json

    from cnnspec.reporting.model_match import layer_mismatch

    saved = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    assert layer_mismatch(entry, full, saved) is None


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_kind_builds_frozen(kind):
    """`trainable: false` on any item: its layer builds (SpatialDropout2D's constructor takes no
    `trainable`) and holds no trainable weight."""
    import keras

    from cnnspec.backends.keras_builder import make_layer
    from cnnspec.ir import Node
    from cnnspec.layers.registry import Counts

    shapes, params = _first(kind)
    entry = REGISTRY[kind]
    shape = entry.output_shape(params, shapes)
    node = Node(
        "layer", kind, params, tuple(f"in{i}" for i in range(len(shapes))), shape, Counts(), trainable=False
    )
    layer = make_layer(node)
    inputs = [keras.Input(s) for s in shapes]
    layer(inputs if entry.arity == "many" else inputs[0])
    assert layer.trainable is False and not layer.trainable_weights
    # (SpatialDropout2D writes no `trainable` in its config: it holds no weight to freeze)
    assert layer.get_config().get("trainable", False) is False


# -- traits: what the rest of the package asks a kind, checked over the whole registry ----------
def _first(kind: str) -> tuple[list[tuple[int, ...]], dict]:
    shapes, params = CONFIGS[kind][0]
    return shapes, {**REGISTRY[kind].defaults(), **params}


def _weightless(kind: str) -> bool:
    shapes, params = _first(kind)
    entry = REGISTRY[kind]
    return entry.counts(params, shapes, entry.output_shape(params, shapes)).params == 0


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_declared_traits_are_consistent_with_the_declaration(kind):
    entry = REGISTRY[kind]
    shapes, params = _first(kind)
    out = entry.output_shape(params, shapes)
    if entry.passes_activation:
        # re-laying out one input's values: no activation of its own, no weights, nothing lost
        assert "activation" not in entry.param_index and entry.arity == "one"
        assert _weightless(kind) and math.prod(out) == math.prod(shapes[0])
        assert not entry.preprocessing
    if entry.value_range == "affine":
        assert {"scale", "offset"} <= set(entry.param_index)
    if entry.adapt_param is not None:
        # a switch of the training step, never a Keras keyword, off unless asked for
        flag = entry.param_index[entry.adapt_param]
        assert flag.type == "bool" and flag.keras_name is None and flag.default is False
    if entry.value_range == "keeps":
        assert _weightless(kind) and "activation" not in entry.param_index and entry.arity == "one"
    if entry.kernel_layout is not None:
        layout = entry.kernel_layout
        assert entry.family == "conv" and "kernel_size" in entry.param_index
        assert entry.ranks is not None and len(layout) - 2 == entry.ranks[0] - 1  # spatial axes
        assert ("m" in layout) == ("depth_multiplier" in entry.param_index)
    else:
        assert "kernel_size" not in entry.param_index
    if entry.augmentation:
        assert entry.preprocessing
    if entry.geometric:
        assert entry.augmentation
    if entry.preprocessing:
        assert _weightless(kind) and entry.arity == "one"
    keras_names = {p.keras_name for p in entry.params}
    assert set(entry.keras_always_pass) <= keras_names


def test_pass_through_and_preprocessing_kinds():
    """The kinds the trace, the augmentation section and the filter plots see, spelt out once."""
    assert {k.name for k in REGISTRY.values() if k.passes_activation} == {
        "dropout",
        "spatial_dropout2d",
        "gaussian_noise",
        "gaussian_dropout",
        "alpha_dropout",
        "activity_regularization",
        "flatten",
        "identity",
        "reshape",
    }
    assert {k.name for k in REGISTRY.values() if k.preprocessing and not k.augmentation} == {
        "rescaling",
        "resizing",
    }
    assert {k.name for k in REGISTRY.values() if k.value_range == "affine"} == {"rescaling"}
    assert {k.name for k in REGISTRY.values() if k.geometric} == {
        "random_flip",
        "random_rotation",
        "random_zoom",
        "random_translation",
        "random_crop",
        "random_perspective",
        "rand_augment",
    }


SOFTMAX_HEAD = """\
cnnspec: 1
name: head
input: {shape: [4, 4, 2]}
model:
  - flatten
  - dense: {units: 4, activation: softmax}
"""

#: What to write after the softmax layer for each pass-through kind (some need parameters).
PASS_THROUGH_ITEMS = {
    "dropout": "dropout: 0.5",
    "spatial_dropout2d": None,  # needs a 3-D tensor: covered by the Keras check below
    "gaussian_noise": "gaussian_noise: 0.1",
    "gaussian_dropout": "gaussian_dropout: 0.2",
    "alpha_dropout": "alpha_dropout: 0.1",
    "activity_regularization": "activity_regularization: {l2: 0.01}",
    "flatten": "flatten",
    "identity": "identity",
    "reshape": "reshape: {target_shape: [4]}",
}


def _from_logits(model_tail: str) -> bool:
    from cnnspec.analysis.settings import training_config
    from cnnspec.api import compile_text

    return training_config(compile_text(SOFTMAX_HEAD + model_tail, "head.yaml")).loss.from_logits


def test_identity_after_a_softmax_trains_on_probabilities():
    """Issue 14: the trace stopped at `identity`, so this model trained with from_logits=True."""
    assert _from_logits("  - identity\n") is False
    assert _from_logits("  - identity\n  - dropout: 0.2\n  - identity\n") is False


@pytest.mark.parametrize(
    "kind",
    sorted(k.name for k in REGISTRY.values() if k.passes_activation and PASS_THROUGH_ITEMS.get(k.name)),
)
def test_every_pass_through_kind_keeps_the_softmax_for_the_loss(kind):
    assert set(PASS_THROUGH_ITEMS) == {k.name for k in REGISTRY.values() if k.passes_activation}
    assert _from_logits(f"  - {PASS_THROUGH_ITEMS[kind]}\n") is False


def test_a_kind_that_changes_values_ends_the_trace():
    # a layer after the softmax that is not a pass-through: the output is no longer probabilities
    assert _from_logits("  - rescaling: 2.0\n") is True
    assert _from_logits("  - layer_norm\n") is True


# -- the traits against Keras (slow: builds every kind's layer) ---------------------------------
def _keras_layer(kind: str, params: dict):
    from cnnspec.backends.keras_builder import make_layer
    from cnnspec.ir import Node
    from cnnspec.layers.registry import Counts

    entry = REGISTRY[kind]
    full = {**entry.defaults(), **params}
    if "seed" in entry.param_index:
        full["seed"] = 7  # deterministic randomness
    node = Node("layer", kind, full, ("in",), (), Counts())
    return make_layer(node)


def _run(layer, x, training: bool):
    import numpy as np

    return np.asarray(layer(x, training=training))


#: Configurations the traits are observed with where the kind's first one cannot show them: a
#: spec's random_crop keeps the input's size (Keras 3 does not crop at inference, keras#21868),
#: which crops nothing; the traits describe Keras' RandomCrop, observed as it crops.
TRAIT_SAMPLES: dict[str, tuple[list[tuple[int, ...]], dict]] = {
    "random_crop": ([(8, 8, 3)], {"height": 6, "width": 5}),
}


def _sample(kind: str, low: float = -1.0, high: float = 1.0):
    import numpy as np

    shapes, params = TRAIT_SAMPLES.get(kind, CONFIGS[kind][0])
    x = np.random.default_rng(0).uniform(low, high, (8, *shapes[0])).astype("float32")
    return x, dict(params)


ONE_INPUT = sorted(k.name for k in REGISTRY.values() if k.arity == "one")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ONE_INPUT)
def test_passes_activation_exactly_when_keras_relays_the_values(kind):
    """passes_activation ⇔ in training and at inference the output holds the input's values,
    unchanged and in order (dropout kinds at rate 0, Gaussian noise at stddev 0: the noise of a
    training-only regularizer is allowed)."""
    import numpy as np

    x, params = _sample(kind)
    for amount in ("rate", "stddev"):
        if amount in params:
            params[amount] = 0.0
    layer = _keras_layer(kind, params)
    relays = all(
        y.size == x.size and np.array_equal(y.reshape(-1), x.reshape(-1))
        for y in (_run(layer, x, False), _run(layer, x, True))
    )
    assert relays == REGISTRY[kind].passes_activation


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_preprocessing_and_augmentation_match_keras(kind):
    """preprocessing ⇔ Keras' preprocessing family; augmentation ⇔ one of those that is random
    in training and passes its input through at inference."""
    import keras
    import numpy as np

    entry = REGISTRY[kind]
    cls = getattr(keras.layers, entry.keras_class)
    # Keras' stateful preprocessing layers (those that adapt() to data: Normalization) hold
    # weights; they belong in the model, not in the augmentation section.
    stateless = ".preprocessing." in cls.__module__ and not hasattr(cls, "adapt")
    assert entry.preprocessing == stateless, cls.__module__
    assert hasattr(cls, "adapt") == (entry.adapt_param is not None)
    if not entry.preprocessing:
        assert not entry.augmentation
        return
    x, params = _sample(kind, 0.25, 0.75)
    layer = _keras_layer(kind, params)
    inference, training = _run(layer, x, False), _run(layer, x, True)
    # Keras' RandomCrop passes the input through at inference; a centre crop is accepted too.
    passed = inference.shape == x.shape and np.allclose(inference, x)
    if (
        inference.shape != x.shape
        and inference.ndim == 4
        and all(a <= b for a, b in zip(inference.shape[1:3], x.shape[1:3]))
    ):
        top, left = (x.shape[1] - inference.shape[1]) // 2, (x.shape[2] - inference.shape[2]) // 2
        passed = np.allclose(
            inference, x[:, top : top + inference.shape[1], left : left + inference.shape[2]]
        )
    random = training.shape != inference.shape or not np.allclose(training, inference)
    assert entry.augmentation == (passed and random)


@pytest.mark.slow
@pytest.mark.parametrize("kind", [k for k in ONE_INPUT if not REGISTRY[k].preprocessing])
def test_training_noise_and_batch_statistics_match_keras(kind):
    """training_noise ⇔ random in training and the input itself at inference (the layers a
    nested model called with training=False keeps off, with the augmentations);
    batch_statistics ⇔ another answer in training than at inference, deterministically
    (normalized by the batch, not the averages), and the inference answer once frozen."""
    import numpy as np

    entry = REGISTRY[kind]
    x, params = _sample(kind, 0.25, 0.75)
    for amount in ("rate", "stddev"):
        if amount in params:
            params[amount] = 0.5
    layer = _keras_layer(kind, params)
    inference, training, again = _run(layer, x, False), _run(layer, x, True), _run(layer, x, True)
    changes = training.shape != inference.shape or not np.allclose(training, inference)
    passed = inference.shape == x.shape and np.allclose(inference, x)
    random = changes and not np.allclose(training, again)
    assert entry.training_noise == (passed and random)
    layer.trainable = False  # (a training call moved the averages: compared with their answer now)
    frozen, now = _run(layer, x, True), _run(layer, x, False)
    steady = changes and not random and frozen.shape == now.shape and np.allclose(frozen, now)
    assert entry.batch_statistics == steady


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_xla_matches_keras_supports_jit(kind):
    """xla ⇔ Keras' own ``supports_jit`` of the built layer: what ``runtime.jit_compile``'s
    check relies on (a model with one that is False runs without XLA whatever it asks)."""
    _, params = _first(kind)
    layer = _keras_layer(kind, params)
    assert REGISTRY[kind].xla == getattr(layer, "supports_jit", True)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(k.name for k in REGISTRY.values() if k.augmentation))
def test_geometric_matches_keras_mask_handling(kind):
    """geometric ⇔ Keras moves a segmentation mask with its image (what the joint image/mask
    augmentation relies on): a mask equal to the image, passed as ``segmentation_masks``, comes
    out moved and still equal to the image (nearest sampling for both) and holding only the
    class indices it had; a photometric kind returns the mask untouched."""
    import numpy as np

    entry = REGISTRY[kind]
    x, params = _sample(kind, 0.0, 1.0)
    # nearest sampling for the image as well, and factors large enough to move 8×8 pixels
    for name, value in (("interpolation", "nearest"), ("fill_mode", "constant"), ("height_factor", 0.4)):
        if name in entry.param_index:
            params[name] = value
    layer = _keras_layer(kind, params)
    if kind == "rand_augment":
        # a policy: its photometric operations change the image and not the mask (as the
        # photometric kinds do), so the pairing is checked on its moving operations alone
        # (tests/test_augment_kinds.py checks the others and its default interpolation)
        layer._AUGMENT_LAYERS = ["random_shear", "random_translation", "random_rotation"]
    masks = np.floor(x[..., :1] * 4)  # class indices 0–3, shaped (B, H, W, 1)
    # colour images (channel 0 the mask itself): a colour kind has something to change
    images = np.repeat(masks, x.shape[-1], axis=-1) + np.arange(x.shape[-1]) / 8
    try:
        out = layer({"images": images, "segmentation_masks": masks}, training=True)
    except AttributeError:
        # Keras' RandomGrayscale cannot take the dict (it reads images.shape); cnnspec calls a
        # photometric kind on the images alone (training/joint_augment.py)
        assert kind == "random_grayscale" and not entry.geometric
        assert not np.array_equal(_run(layer, images, True), images)
        return
    moved_images, moved_masks = np.asarray(out["images"]), np.asarray(out["segmentation_masks"])
    if entry.geometric:
        assert moved_masks.shape != masks.shape or not np.array_equal(moved_masks, masks)
        np.testing.assert_array_equal(moved_masks[..., 0], moved_images[..., 0])
        assert set(np.unique(moved_masks)) <= {0.0, 1.0, 2.0, 3.0}
    else:
        np.testing.assert_array_equal(moved_masks, masks)
        assert not np.array_equal(moved_images, images)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(k.name for k in REGISTRY.values() if k.value_range != "unknown"))
def test_value_range_matches_keras(kind):
    """keeps: outputs stay within the inputs' range [0.25, 0.75] (training and inference, a
    value_range that matches); affine: output = input × scale + offset."""
    import numpy as np

    entry = REGISTRY[kind]
    x, params = _sample(kind, 0.25, 0.75)
    if "value_range" in entry.param_index:
        params["value_range"] = [0.25, 0.75]
    layer = _keras_layer(kind, params)
    for training in (False, True):
        y = _run(layer, x, training)
        if entry.value_range == "keeps":
            assert y.min() >= 0.25 - 1e-5 and y.max() <= 0.75 + 1e-5, (training, y.min(), y.max())
        else:
            full = {**entry.defaults(), **params}
            np.testing.assert_allclose(y, x * full["scale"] + full["offset"], rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_kernel_layout_matches_the_weights_keras_stores(kind):
    import keras

    entry = REGISTRY[kind]
    if entry.kernel_layout is None:
        shapes, params = CONFIGS[kind][0]
        layer = _keras_layer(kind, params)
        batched = [(None, *shape) for shape in shapes]
        layer.build(batched if entry.arity == "many" else batched[0])
        kernels = [w for w in layer.weights if w.path.split("/")[-1] in ("kernel", "depthwise_kernel")]
        assert all(len(w.shape) < 3 for w in kernels)  # no convolution kernel (dense's is 2-D)
        return
    sizes = {"h": 3, "w": 2, "i": 4, "o": 5, "m": 2}
    rank = len(entry.kernel_layout) - 2
    params = {"kernel_size": [3, 2] if rank == 2 else 2}
    for name, value in (("filters", 5), ("depth_multiplier", 2)):
        if name in entry.param_index:
            params[name] = value
    layer = _keras_layer(kind, params)
    layer(keras.Input((9,) * rank + (4,)))
    kernel = getattr(layer, "depthwise_kernel", None)
    kernel = layer.kernel if kernel is None else kernel
    assert tuple(kernel.shape) == tuple(sizes[axis] for axis in entry.kernel_layout)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(k.name for k in REGISTRY.values() if k.keras_always_pass))
def test_keras_always_pass_keywords_have_no_matching_keras_default(kind):
    """Each keyword generated code always passes: leaving it out fails or changes the layer."""
    import keras

    entry = REGISTRY[kind]
    cls = getattr(keras.layers, entry.keras_class)
    _, params = CONFIGS[kind][0]
    full = entry.keras_args({**entry.defaults(), **params})
    reference = cls(name="probe", **full).get_config()
    for keyword in entry.keras_always_pass:
        reduced = {k: v for k, v in full.items() if k != keyword}
        try:
            config = cls(name="probe", **reduced).get_config()
        except TypeError:
            continue
        assert config != reference, keyword


# -- no code outside cnnspec/layers/ tests a kind's name -----------------------------------------
PACKAGE = Path(__file__).resolve().parent.parent / "cnnspec"
KIND_NAMES = frozenset(REGISTRY) | frozenset(k.keras_class for k in REGISTRY.values())
#: Expressions that stand for a layer's kind: ``node.kind``, ``kind``, ``type(layer).__name__``,
#: ``kind.keras_class``, a Keras ``class_name``.
_KIND_ATTRS = frozenset({"kind", "keras_class", "__name__", "class_name"})
_KIND_VARS = frozenset({"kind", "kind_name", "class_name"})


def _name_tests(source: str) -> list[tuple[int, str]]:
    """Comparisons (``==``, ``!=``, ``in``, ``not in``) and table lookups that test a kind
    expression against a registered kind name or Keras class: written out, or held by a name
    bound in the same function or module (``early = [n.kind …]; "rescaling" in early``,
    ``KEEP = frozenset({("AveragePooling2D", …)})``, ``{"conv2d": …}.get(node.kind)``)."""
    tree = ast.parse(source)
    scopes: dict[ast.AST, dict[str, list[ast.AST]]] = {}
    #: The comparisons, subscripts and ``.get`` calls, with the function (or module) each is in:
    #: gathered by the one walk that indexes the bindings (the scan of the whole package walked
    #: its trees twice, most of this test's seconds).
    tests: list[tuple[ast.AST, ast.AST]] = []

    def index(scope: ast.AST) -> None:
        table = scopes.setdefault(scope, {})
        stack = list(ast.iter_child_nodes(scope))
        while stack:
            node = stack.pop()
            kind = type(node)
            if kind in (ast.Compare, ast.Subscript, ast.Call):
                tests.append((node, scope))
            if kind in (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda):
                index(node)
                continue
            if kind in (ast.Assign, ast.AnnAssign) and node.value is not None:
                for target in node.targets if kind is ast.Assign else [node.target]:
                    if isinstance(target, ast.Name):
                        table.setdefault(target.id, []).append(node.value)
            # ast.iter_child_nodes inlined, the Load and Store marks left out (a third of the
            # nodes, none a test or a binding): the walk of the package's 4 MB is the test's
            # second cost after parsing it
            for field in node._fields:
                value = getattr(node, field, None)
                if isinstance(value, list):
                    stack.extend([item for item in value if isinstance(item, ast.AST)])
                elif isinstance(value, ast.AST) and not isinstance(value, ast.expr_context):
                    stack.append(value)

    index(tree)

    def bindings(name: str, scope: ast.AST) -> list[ast.AST]:
        return scopes[scope].get(name) or scopes[tree].get(name) or []

    def held(expr: ast.AST, scope: ast.AST, seen: frozenset[str] = frozenset()) -> set[str]:
        """Registered names an expression holds as values (not as lookup keys)."""
        if isinstance(expr, ast.Constant):
            return {expr.value} & KIND_NAMES if isinstance(expr.value, str) else set()
        if isinstance(expr, (ast.Tuple, ast.List, ast.Set)):
            parts = list(expr.elts)
        elif isinstance(expr, ast.Dict):
            parts = [k for k in expr.keys if k is not None]
        elif isinstance(expr, ast.BinOp):
            parts = [expr.left, expr.right]
        elif isinstance(expr, ast.IfExp):
            parts = [expr.body, expr.orelse]
        elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
            parts = list(expr.args) if expr.func.id in ("frozenset", "set", "tuple", "list", "dict") else []
        elif isinstance(expr, ast.Name) and expr.id not in seen:
            return set().union(*(held(v, scope, seen | {expr.id}) for v in bindings(expr.id, scope)))
        else:
            parts = []
        return set().union(*(held(part, scope, seen) for part in parts))

    def is_kind(expr: ast.AST, scope: ast.AST, seen: frozenset[str] = frozenset()) -> bool:
        for sub in ast.walk(expr):
            if isinstance(sub, ast.Attribute) and sub.attr in _KIND_ATTRS:
                return True
            if isinstance(sub, ast.Name) and sub.id in _KIND_VARS:
                return True
            if isinstance(sub, ast.Name) and sub.id not in seen:
                values = bindings(sub.id, scope)
                if any(is_kind(v, scope, seen | {sub.id}) for v in values):
                    return True
        return False

    found = []
    for node, scope in tests:
        pairs: list[tuple[ast.AST, ast.AST]] = []
        if isinstance(node, ast.Compare) and all(
            isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)) for op in node.ops
        ):
            operands = [node.left, *node.comparators]
            pairs = [(a, b) for a in operands for b in operands if a is not b]
        elif isinstance(node, ast.Subscript):
            pairs = [(node.slice, node.value)]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            pairs = [(arg, node.func.value) for arg in node.args[:1]]
        for kind_side, table_side in pairs:
            if (hit := held(table_side, scope)) and is_kind(kind_side, scope):
                found.append((node.lineno, ", ".join(sorted(hit))))
                break
    return sorted(found)


#: The kind-name tests issue 14 removed, as they were written: the scan must find each one.
OLD_NAME_TESTS = [
    '_RANGE_KEEPING = frozenset({k.name for k in R.values() if k.augmentation} | {"resizing"})\n'
    "def f(node):\n    return node.kind in _RANGE_KEEPING\n",
    'def f(node):\n    return node.kind == "rescaling"\n',
    'def f(node):\n    return node.kind in ("dropout", "reshape", "flatten")\n',
    'def f(ir):\n    early = [n.kind for n in ir.nodes[:3]]\n    return "rescaling" in early\n',
    'def f(item):\n    allowed = {"rescaling", "resizing"}\n    kind = next(iter(item))\n'
    "    return kind not in allowed\n",
    'CONV_CLASSES = ("Conv2D", "SeparableConv2D")\n'
    "def f(model):\n    return [l for l in model.layers if type(l).__name__ in CONV_CLASSES]\n",
    'def f(layer):\n    return type(layer).__name__ == "Rescaling"\n',
    'def f(k, class_name):\n    if class_name == "Conv2DTranspose":\n        return k\n',
    'KEEP = frozenset({("AveragePooling2D", "pool_size")})\n'
    "def f(kind, name):\n    return (kind.keras_class, name) in KEEP\n",
    'LAYOUT = {"conv2d_transpose": "hwoi"}\ndef f(node):\n    return LAYOUT.get(node.kind)\n',
]


@pytest.mark.parametrize("source", OLD_NAME_TESTS)
def test_the_scan_finds_each_old_kind_name_test(source):
    assert _name_tests(source)


def test_the_scan_leaves_language_keywords_and_data_sources_alone():
    """Merge modes and shortcut modes share names with kinds but are the language's own words."""
    assert not _name_tests('def f(mode, merge):\n    return mode == "identity" or merge == "concat"\n')
    assert not _name_tests('def f(data):\n    return data.kind == "directory"\n')
    assert not _name_tests("def f(kind):\n    return REGISTRY[kind].passes_activation\n")


def test_no_code_outside_layers_tests_a_kind_name():
    """What a kind does is a trait on its registry entry (issue 14), never a list of names."""
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if (PACKAGE / "layers") in path.parents:
            continue
        for line, names in _name_tests(path.read_text(encoding="utf-8")):
            problems.append(f"{path.relative_to(PACKAGE.parent)}:{line}: tests {names}")
    assert not problems, "\n".join(problems)


ZOOM_ACCEPTED = [0.0, 0.3, 1.0, [-0.99, 1.0], [-0.5, 0.2]]
ZOOM_REFUSED = [2.0, -0.1, [-1.5, 0.2], [-1.0, 0.0], [0.3, 0.1], [0.1, 1.5]]


@pytest.mark.parametrize(
    ("value", "accepted"), [(v, True) for v in ZOOM_ACCEPTED] + [(v, False) for v in ZOOM_REFUSED]
)
def test_random_zoom_takes_the_factors_keras_takes(value, accepted):
    """Each value in (-1, 1]: a factor Keras refuses when it builds the layer (mid-run, after
    validate said ok) is refused by the spec's check."""
    (param,) = [p for p in REGISTRY["random_zoom"].params if p.name == "height_factor"]
    assert (param.check(value) is None) == accepted


@pytest.mark.slow
def test_the_zoom_factors_refused_are_those_keras_refuses():
    import keras

    for value in ZOOM_ACCEPTED + ZOOM_REFUSED:
        try:
            keras.layers.RandomZoom(height_factor=value)
            built = True
        except ValueError:
            built = False
        # what cnnspec accepts builds; what Keras refuses, cnnspec refused first (it is stricter
        # only where a spec would be unclear: a negative single number, a reversed range)
        if value in ZOOM_ACCEPTED:
            assert built, value
        if not built:
            assert value in ZOOM_REFUSED, value


DILATED = sorted(k.name for k in REGISTRY.values() if "dilation_rate" in k.param_index)


#: Each dilated kind's layer with dilation_rate 2, forward and backward on the CPU (the first
#: batch of a training), in a process of TensorFlow's own kernels: whether it ran, by kind.
_OWN_KERNELS_RUN = """
import json
import numpy as np
import tensorflow as tf
from tests.test_registry import DILATED, _first, _keras_layer

ran = {}
for kind in DILATED:
    shapes, params = _first(kind)
    params = {**params, "strides": 1, "dilation_rate": 2}
    rank = len(shapes[0])
    x = tf.constant(np.random.default_rng(0).normal(size=(2, *([12] * (rank - 1)), shapes[0][-1])), "float32")
    layer = _keras_layer(kind, params)
    with tf.device("/CPU:0"):
        try:
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(layer(x))
            tape.gradient(loss, layer.trainable_variables)
            ran[kind] = True
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
            ran[kind] = False
print(json.dumps(ran))
"""


@pytest.mark.slow
@pytest.mark.xdist_group("own_kernels")  # (one oneDNN-off server: with_own_kernels)
def test_cpu_gap_is_what_tensorflows_own_cpu_kernels_refuse():
    """cpu_gap (validate's warning, train's refusal where this machine's kernels fail on it:
    cnnspec.training.runtime.cpu_runs) ⇔ TensorFlow's own CPU kernels refuse the layer with
    dilation_rate 2: a transposed convolution's has no dilation, the others run. (oneDNN's
    kernel, on by default with AVX-512, runs all of them: asked in a process of its own.)"""
    import json

    from tests.conftest import with_own_kernels

    ran = json.loads(with_own_kernels(_OWN_KERNELS_RUN).strip().splitlines()[-1])
    assert sorted(ran) == DILATED
    for kind in DILATED:
        entry = REGISTRY[kind]
        _shapes, params = _first(kind)
        gap = entry.cpu_refusal({**entry.defaults(), **params, "strides": 1, "dilation_rate": 2})
        assert (gap is not None) == (not ran[kind]), (kind, gap, ran[kind])
