"""Pooling kinds: max/average pooling and their global forms."""

from __future__ import annotations

from cnnspec.layers.arith import pool_length
from cnnspec.layers.params import Param, choice, flag, ints
from cnnspec.layers.registry import LayerKind, Params, Shape, register


def _pool_shape(params: Params, inputs: list[Shape]) -> Shape:
    shape = inputs[0]
    pool = params["pool_size"]
    pool = tuple(pool) if isinstance(pool, (list, tuple)) else (pool, pool)
    strides = params["strides"]
    if strides is None:
        strides = pool
    strides = tuple(strides) if isinstance(strides, (list, tuple)) else (strides, strides)
    spatial = tuple(
        pool_length(shape[i], pool[i], strides[i], params["padding"], name)
        for i, name in enumerate(("height", "width"))
    )
    return (*spatial, shape[-1])


POOL_PARAMS = (
    ints("pool_size", 2, "size of the pooling window"),
    Param(
        "strides",
        "ints",
        None,
        "step of the window (default: pool_size)",
        minimum=1,
        nullable=True,
    ),
    choice("padding", ("valid", "same"), "valid", "`valid` or `same`"),
)


def _global_shape(params: Params, inputs: list[Shape]) -> Shape:
    shape = inputs[0]
    return (1, 1, shape[-1]) if params["keepdims"] else (shape[-1],)


GLOBAL_PARAMS = (flag("keepdims", False, "keep the spatial axes with size 1"),)


# A maximum or an average of values lies within their range.
def _pool(name: str, cls: str, doc: str, keras_always_pass: tuple[str, ...] = ()) -> LayerKind:
    return LayerKind(
        name,
        "pooling",
        cls,
        doc,
        POOL_PARAMS,
        _pool_shape,
        main="pool_size",
        ranks=(3,),
        value_range="keeps",
        spatial=True,
        keras_always_pass=keras_always_pass,
    )


def _global(name: str, cls: str, doc: str) -> LayerKind:
    return LayerKind(
        name, "pooling", cls, doc, GLOBAL_PARAMS, _global_shape, ranks=(3,), value_range="keeps", spatial=True
    )


register(
    _pool("max_pool2d", "MaxPooling2D", "Maximum over each pooling window."),
    # Keras' AveragePooling2D has no default pool_size (MaxPooling2D's is 2).
    _pool("avg_pool2d", "AveragePooling2D", "Average over each pooling window.", ("pool_size",)),
    _global("global_avg_pool2d", "GlobalAveragePooling2D", "Average over height and width."),
    _global("global_max_pool2d", "GlobalMaxPooling2D", "Maximum over height and width."),
)
