"""Parametrized over the registry: every kind has a schema, shape rule and back-end entry, and
its static shape and parameter count equal Keras' for several configurations."""

from __future__ import annotations

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
    "group_norm": [([(5, 5, 8)], {"groups": 4}), ([(5, 5, 6)], {"groups": 6, "center": False})],
    "dense": [
        ([(7,)], {"units": 3}),
        ([(4, 5)], {"units": 2, "use_bias": False, "activation": "relu"}),
        ([(3, 3, 4)], {"units": 6}),
    ],
    "dropout": [([(7,)], {"rate": 0.5}), ([(3, 3, 2)], {"rate": 0.1, "seed": 3})],
    "spatial_dropout2d": [([(3, 3, 2)], {"rate": 0.2})],
    "flatten": [([(3, 4, 5)], {}), ([(7,)], {})],
    "activation": [([(3, 4, 5)], {"activation": name}) for name in ("relu", "gelu", "hard_swish", "softmax")],
    "identity": [([(3, 4, 5)], {})],
    "reshape": [([(3, 4, 5)], {"target_shape": [12, 5]}), ([(3, 4, 5)], {"target_shape": [-1, 2, 2]})],
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
    ],
    "random_translation": [
        ([(8, 8, 3)], {"height_factor": 0.1}),
        ([(8, 8, 3)], {"height_factor": 0.1, "width_factor": 0.2}),
    ],
    "random_crop": [([(8, 8, 3)], {"height": 6, "width": 5})],
    "random_brightness": [
        ([(8, 8, 3)], {"factor": 0.2}),
        ([(8, 8, 3)], {"factor": 0.2, "value_range": [0, 1]}),
    ],
    "random_contrast": [([(8, 8, 3)], {"factor": 0.2})],
}

CASES = [
    pytest.param(kind, shapes, params, id=f"{kind}-{i}")
    for kind, configs in CONFIGS.items()
    for i, (shapes, params) in enumerate(configs)
]


def test_every_kind_has_test_configurations():
    assert set(REGISTRY) == set(CONFIGS)


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_kind_has_schema_docs_and_backend_entry(kind):
    entry = REGISTRY[kind]
    schema = json_schema()
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


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "shapes", "params"), CASES)
def test_static_shape_and_params_equal_keras(kind, shapes, params):
    import keras

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
    config = layer.get_config()
    rebuilt = type(layer).from_config(config)
    assert rebuilt.get_config() == config
