"""Merge kinds: element-wise add, multiply, average, max and min of two or more tensors, subtract
of exactly two (Keras' broadcasting rules, inputs of different ranks included), and concat."""

from __future__ import annotations

from collections.abc import Sequence

from cnnspec.layers.params import Param
from cnnspec.layers.registry import LayerKind, Params, Shape, ShapeError, register

#: What each axis of a batch-less tensor of a given rank is called, for messages.
AXIS_NAMES = {
    1: ("features",),
    2: ("steps", "channels"),
    3: ("height", "width", "channels"),
    4: ("depth", "height", "width", "channels"),
}


def mismatch(a: Shape, b: Shape, axes: list[int]) -> tuple[str, str]:
    """Name the ``axes`` where ``a`` and ``b`` differ (``which differ in height and width
    (8×8 vs 4×4)``) and the hint that fits: positions (strides, padding, pooling) differ, or
    channels (a 1×1 projection), or both."""
    rank = len(a)
    names = AXIS_NAMES.get(rank) or tuple(f"axis {i + 1}" for i in range(rank))
    if rank == 1:
        return (
            f"which differ in features ({a[0]} vs {b[0]})",
            f"give both inputs the same size, e.g. a dense layer with units: {max(a[0], b[0])}",
        )
    positions = [i for i in axes if i != rank - 1]
    parts, hints = [], []
    if positions:
        where = " and ".join(names[i] for i in positions)
        sizes = " vs ".join("×".join(str(s[i]) for i in positions) for s in (a, b))
        parts.append(f"{where} ({sizes})")
        hints.append(
            f"the paths change the {where} differently: give them the same strides and pooling, "
            "and padding: same where a 'valid' layer shrinks one"
        )
    if rank - 1 in axes:
        parts.append(f"channels ({a[-1]} vs {b[-1]})")
        hints.append(
            f"project one input to the other's channels with a 1×1 convolution (conv2d: {{filters: "
            f"{max(a[-1], b[-1])}, kernel_size: 1}}); in a residual, shortcut: projection does this"
        )
    return "which differ in " + " and in ".join(parts), "; ".join(hints)


def _conflicts(a: Shape, b: Shape) -> list[int]:
    """The axes (of the longer shape) where ``a`` and ``b`` do not broadcast, lined up on their
    last axes as Keras' Merge lines them up: neither size 1 and the two sizes unequal."""
    long, short = (a, b) if len(a) >= len(b) else (b, a)
    offset = len(long) - len(short)
    return [
        offset + i
        for i, (x, y) in enumerate(zip(long[offset:], short, strict=True))
        if x != y and 1 not in (x, y)
    ]


def _broadcast(a: Shape, b: Shape) -> Shape:
    """The shape of an element-wise merge of ``a`` and ``b`` (batch-less, known to broadcast),
    as Keras' Merge computes it (``_compute_elemwise_op_output_shape``): the shapes lined up on
    their last axes, the longer one's leading axes kept, an axis of size 1 stretched to the
    other's size. Inputs of different ranks are as valid as in NumPy: Merge.call expands the
    shorter one's axes after the batch axis, which lines them up the same way (``[3]`` scales
    each channel of an ``[8, 8, 3]`` map)."""
    long, short = (a, b) if len(a) >= len(b) else (b, a)
    offset = len(long) - len(short)
    return (*long[:offset], *(y if x == 1 else x for x, y in zip(long[offset:], short, strict=True)))


def _refusal(inputs: list[Shape], first: int, second: int, axes: list[int]) -> ShapeError:
    """The error of ``inputs[first]`` and ``inputs[second]``, which differ on ``axes`` (of the
    longer). Of two inputs, the message shows their shapes; of more, it also names which two
    (by position here, by layer where the resolver renders it with labels), since the user
    wrote those shapes, not the shape merged so far."""
    a, b = inputs[first], inputs[second]
    positions = [f"input {index + 1}" for index in range(len(inputs))]

    def received(labels: Sequence[str]) -> str:
        if len(inputs) == 2:
            return f"received {list(a)} and {list(b)}"
        return f"received {list(a)} from {labels[first]} and {list(b)} from {labels[second]}"

    if len(a) == len(b):
        which, hint = mismatch(a, b, axes)
        head = "expected inputs whose shapes broadcast (on each axis, equal sizes or a size of 1); "
        hint = f"{hint}; or give one input size 1 on those axes, which broadcasts it over the other"
        return ShapeError(
            f"{head}{received(positions)}, {which}",
            hint=hint,
            render=lambda labels: f"{head}{received(labels)}, {which}",
        )
    which, hint = _rank_mismatch(a, b, axes)
    head = (
        "expected inputs whose shapes broadcast (Keras lines up their last axes and stretches an "
        "axis of size 1); "
    )
    return ShapeError(
        f"{head}{received(positions)}, which differ in {which}",
        hint=hint,
        render=lambda labels: f"{head}{received(labels)}, which differ in {which}",
    )


def _rank_mismatch(a: Shape, b: Shape, axes: list[int]) -> tuple[str, str]:
    """The differing axes of inputs of different ranks that do not broadcast (``axes`` index
    the longer shape, neither size 1 there) and the hint: how the shorter one lines up."""
    long, short = (a, b) if len(a) > len(b) else (b, a)
    offset = len(long) - len(short)
    names = AXIS_NAMES.get(len(long)) or tuple(f"axis {i + 1}" for i in range(len(long)))

    def size(shape: Shape, axis: int) -> int:
        return shape[axis - (len(long) - len(shape))]

    which = " and in ".join(f"{names[i]} ({size(a, i)} vs {size(b, i)})" for i in axes)
    if len(short) == 1:
        lines_up = f"the last axis of the {len(long)}-D one (size {long[-1]}): give it that size, or 1"
    else:
        lines_up = (
            f"the last {len(short)} axes of the {len(long)}-D one ({list(long[offset:])}): give "
            "each axis that size, or 1"
        )
    return which, f"the {len(short)}-D input lines up with {lines_up}"


def _elementwise_shape(params: Params, inputs: list[Shape]) -> Shape:
    # Keras folds the inputs from the first; broadcasting is associative and a fold fails
    # exactly when two of the inputs do not broadcast (on an axis, every size other than 1 must
    # be the same), so the refusal names the first such pair, in Keras' order, as written.
    for second in range(1, len(inputs)):
        for first in range(second):
            axes = _conflicts(inputs[first], inputs[second])
            if axes:
                raise _refusal(inputs, first, second, axes)
    shape = inputs[0]
    for other in inputs[1:]:
        shape = _broadcast(shape, other)
    return shape


def _subtract_shape(params: Params, inputs: list[Shape]) -> Shape:
    # Keras' Subtract.build refuses any other number of inputs: first minus second has no
    # reading for three.
    if len(inputs) != 2:
        raise ShapeError(
            f"expected exactly two inputs (the first minus the second); received {len(inputs)}",
            hint="list two ids: inputs: [a, b] computes a - b",
        )
    return _elementwise_shape(params, inputs)


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
        differing = [i for i in range(rank) if i != axis and shape[i] != inputs[0][i]]
        if differing:
            which, hint = mismatch(inputs[0], shape, differing)
            raise ShapeError(
                "expected inputs that match on every axis except the concat axis; "
                f"received {list(inputs[0])} and {list(shape)}, {which}",
                hint=hint,
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
        combines="elementwise",
    ),
    LayerKind(
        "multiply",
        "merge",
        "Multiply",
        "Element-wise product of its inputs (e.g. squeeze-and-excitation gating).",
        (),
        _elementwise_shape,
        arity="many",
        combines="elementwise",
    ),
    LayerKind(
        "subtract",
        "merge",
        "Subtract",
        "Element-wise difference of exactly two inputs: the first minus the second.",
        (),
        _subtract_shape,
        arity="many",
        max_inputs=2,
        # no `combines`: its two inputs play different roles, so no combinator merges with it
    ),
    LayerKind(
        "average",
        "merge",
        "Average",
        "Element-wise mean of its inputs.",
        (),
        _elementwise_shape,
        arity="many",
        combines="elementwise",
    ),
    # `max` and `min`, not Keras' `maximum`/`minimum`: a kind name is a key of the JSON Schema's
    # `$defs/kinds`, itself a schema, where `maximum` and `minimum` are JSON Schema keywords
    # (the schema would no longer be valid); the short names follow `max_pool2d` and `concat`.
    LayerKind(
        "max",
        "merge",
        "Maximum",
        "Element-wise maximum of its inputs.",
        (),
        _elementwise_shape,
        arity="many",
        combines="elementwise",
    ),
    LayerKind(
        "min",
        "merge",
        "Minimum",
        "Element-wise minimum of its inputs.",
        (),
        _elementwise_shape,
        arity="many",
        combines="elementwise",
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
        combines="axis",
    ),
)
