"""Merge kinds: add, multiply and concat of two or more tensors (Keras' broadcasting rules)."""

from __future__ import annotations

from cnnspec.layers.params import Param
from cnnspec.layers.registry import LayerKind, Params, Shape, ShapeError, register


def _elementwise_pair(a: Shape, b: Shape) -> Shape:
    # Keras' Merge._compute_elemwise_op_output_shape: size-1 axes broadcast, ranks align right.
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return a
    head = list(a[: len(a) - len(b)])
    for x, y in zip(a[len(a) - len(b) :], b, strict=True):
        if x == 1:
            head.append(y)
        elif y == 1 or x == y:
            head.append(x)
        else:
            raise ShapeError(
                f"expected inputs of the same shape; received {list(a)} and {list(b)}",
                hint="add a 1×1 convolution or a projection shortcut to match the channels",
            )
    return tuple(head)


def _elementwise_shape(params: Params, inputs: list[Shape]) -> Shape:
    if len({len(s) for s in inputs}) > 1:
        ranks = ", ".join(str(list(s)) for s in inputs)
        raise ShapeError(f"expected inputs of the same rank; received {ranks}")
    shape = inputs[0]
    for other in inputs[1:]:
        shape = _elementwise_pair(shape, other)
    return shape


def _concat_shape(params: Params, inputs: list[Shape]) -> Shape:
    rank = len(inputs[0])
    axis = params["axis"]
    # Keras counts the batch axis: axis 1 is the first axis of our batch-less shapes.
    if not (-rank <= axis <= -1 or 1 <= axis <= rank):
        raise ShapeError(
            f"expected axis in [1, {rank}] or [{-rank}, -1] (axis 0 is the batch); received {axis}",
            param="axis",
        )
    axis = axis - 1 if axis > 0 else axis % rank
    for shape in inputs[1:]:
        if len(shape) != rank:
            raise ShapeError(
                f"expected inputs of the same rank; received {list(inputs[0])} and {list(shape)}"
            )
        for i in range(rank):
            if i != axis and shape[i] != inputs[0][i]:
                raise ShapeError(
                    "expected inputs that match on every axis except the concat axis; "
                    f"received {list(inputs[0])} and {list(shape)}",
                    hint="pool or pad the branches to the same height and width",
                )
    total = sum(s[axis] for s in inputs)
    return tuple(total if i == axis else inputs[0][i] for i in range(rank))


register(
    LayerKind(
        "add",
        "merge",
        "Add",
        "Element-wise sum of its inputs.",
        (),
        _elementwise_shape,
        arity="many",
    ),
    LayerKind(
        "multiply",
        "merge",
        "Multiply",
        "Element-wise product of its inputs (e.g. squeeze-and-excitation gating).",
        (),
        _elementwise_shape,
        arity="many",
    ),
    LayerKind(
        "concat",
        "merge",
        "Concatenate",
        "Concatenation along an axis (default: channels).",
        (Param("axis", "int", -1, "axis to concatenate along"),),
        _concat_shape,
        main="axis",
        arity="many",
    ),
)
