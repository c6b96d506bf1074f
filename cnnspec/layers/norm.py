"""Normalisation kinds: batch, layer and group normalisation (over the channel axis), unit (L2)
normalisation over chosen axes, and feature-wise standardisation."""

from __future__ import annotations

from typing import Any

from cnnspec.layers.params import Param, flag, number, positive_int
from cnnspec.layers.registry import Counts, LayerKind, Params, Shape, ShapeError, register, same_shape


def _affine(params: Params, channels: int) -> int:
    return channels * (int(params["center"]) + int(params["scale"]))


def _batch_counts(params: Params, inputs: list[Shape], output: Shape) -> Counts:
    channels = inputs[0][-1]
    return Counts(_affine(params, channels), 2 * channels, 0)


def _affine_counts(params: Params, inputs: list[Shape], output: Shape) -> Counts:
    return Counts(_affine(params, inputs[0][-1]), 0, 0)


def _affine_weights(params: Params, inputs: list[Shape], output: Shape) -> tuple[Shape, ...]:
    # gamma, then beta: the order of Keras' build (each only when the layer has it)
    channels = (inputs[0][-1],)
    return (channels,) * (int(params["scale"]) + int(params["center"]))


def _batch_weights(params: Params, inputs: list[Shape], output: Shape) -> tuple[Shape, ...]:
    # gamma and beta (trainable) first, then the moving mean and variance
    return (*_affine_weights(params, inputs, output), (inputs[0][-1],), (inputs[0][-1],))


def _group_shape(params: Params, inputs: list[Shape]) -> Shape:
    channels = inputs[0][-1]
    groups = params["groups"]
    if groups > channels:
        raise ShapeError(
            f"expected groups ({groups}) at most the number of channels ({channels})",
            param="groups",
        )
    if channels % groups:
        raise ShapeError(
            f"expected the number of channels ({channels}) to be a multiple of groups ({groups})",
            param="groups",
        )
    return inputs[0]


_AFFINE = (
    flag("center", True, "learn an offset (beta)"),
    flag("scale", True, "learn a scale (gamma)"),
)

BATCH_PARAMS = (
    number("momentum", 0.99, "momentum of the moving averages", minimum=0, maximum=1),
    number("epsilon", 0.001, "added to the variance", minimum=0, exclusive_minimum=True),
    *_AFFINE,
)
LAYER_PARAMS = (
    number("epsilon", 0.001, "added to the variance", minimum=0, exclusive_minimum=True),
    *_AFFINE,
)
GROUP_PARAMS = (
    positive_int("groups", 32, "number of channel groups"),
    number("epsilon", 0.001, "added to the variance", minimum=0, exclusive_minimum=True),
    *_AFFINE,
)


def _unit_axes(params: Params, shape: Shape) -> tuple[int, ...]:
    """UnitNormalization's ``axis`` as indices into the batch-less ``shape``, each checked: an
    axis of the input (Keras would also take 0, the batch axis, which mixes the samples of a
    batch), named once."""
    axis = params["axis"]
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    rank = len(shape)
    found: list[int] = []
    for value in axes:
        if not (-rank <= value <= -1 or 1 <= value <= rank):
            raise ShapeError(
                f"expected axis in [1, {rank}] or [{-rank}, -1] (axis 0 is the batch) for an input "
                f"of shape {list(shape)}; received {value}",
                param="axis",
            )
        index = value - 1 if value > 0 else value % rank
        if index in found:
            raise ShapeError(
                f"expected different axes; {value} is the same axis of the {rank}-D input as one "
                f"before it (received {list(axes)})",
                param="axis",
            )
        found.append(index)
    return tuple(found)


def _unit_shape(params: Params, inputs: list[Shape]) -> Shape:
    _unit_axes(params, inputs[0])
    return inputs[0]


def _normalization_axis(params: Params, shape: Shape) -> int | None:
    """The kept axis as an index into the batch-less ``shape`` (``None``: one mean overall)."""
    axis = params["axis"]
    if axis is None:
        return None
    rank = len(shape)
    # Keras counts the batch axis: axis 1 is the first axis of our batch-less shapes.
    if not (-rank <= axis <= -1 or 1 <= axis <= rank):
        raise ShapeError(
            f"expected axis in [1, {rank}] or [{-rank}, -1] (axis 0 is the batch), or null; received {axis}",
            param="axis",
        )
    return axis - 1 if axis > 0 else axis % rank


def _normalization_shape(params: Params, inputs: list[Shape]) -> Shape:
    shape = inputs[0]
    axis = _normalization_axis(params, shape)
    mean, variance = params["mean"], params["variance"]
    if (mean is None) != (variance is None):
        missing = "variance" if variance is None else "mean"
        raise ShapeError(
            "expected both mean and variance, or neither", param=missing, hint="give both, or use adapt: true"
        )
    if mean is not None and params["adapt"]:
        raise ShapeError(
            "expected either mean/variance or adapt: true, not both",
            param="adapt",
            hint="adapt computes mean and variance from the training split",
        )
    size = 1 if axis is None else shape[axis]
    for name in ("mean", "variance"):
        value = params[name]
        if isinstance(value, (list, tuple)) and len(value) not in (1, size):
            if axis is None:  # one mean over everything: a list per channel needs its axis
                raise ShapeError(
                    f"expected {name} to be a number or a list of 1 with axis: null (one value for "
                    f"the whole input); received a list of {len(value)}",
                    param=name,
                    hint=f"a {name} per channel needs axis: -1",
                )
            raise ShapeError(
                f"expected {name} to be a number or a list of {size} (the size of axis "
                f"{params['axis']}); received a list of {len(value)}",
                param=name,
            )
    lengths = {len(v) for v in (mean, variance) if isinstance(v, (list, tuple)) and len(v) != 1}
    if len(lengths) > 1:  # a list of 1 and a list of `size` are not different lengths (see below)
        raise ShapeError(
            f"expected mean and variance of the same length; received a list of {len(mean)} and "
            f"a list of {len(variance)}",
            param="variance",
            hint="one number (or a list of 1) is used for every position",
        )
    return shape


def _normalization_counts(params: Params, inputs: list[Shape], output: Shape) -> Counts:
    # Given mean/variance are constants in Keras (no weights); otherwise the layer holds mean,
    # variance (one per position of the kept axis) and a scalar count, all non-trainable, which
    # adapt() fills in (or an ImageNet weight file does).
    if params["mean"] is not None:
        return Counts(0, 0, 0)
    axis = _normalization_axis(params, inputs[0])
    size = 1 if axis is None else inputs[0][axis]
    return Counts(0, 2 * size + 1, 0)


def _normalization_weights(params: Params, inputs: list[Shape], output: Shape) -> tuple[Shape, ...]:
    # mean, variance (the kept axis, or scalars for axis: null) and the scalar count; none for a
    # given mean and variance (constants: see _normalization_counts)
    if params["mean"] is not None:
        return ()
    axis = _normalization_axis(params, inputs[0])
    kept = () if axis is None else (inputs[0][axis],)
    return (kept, kept, ())


def _normalization_args(params: Params) -> dict[str, Any]:
    # Everything but `adapt` (a training step, not a Keras argument) goes to Keras; mean and
    # variance in the shapes Keras needs (see _mean_and_variance).
    args = {p.name: p.normalize(params[p.name]) for p in NORMALIZATION_PARAMS if p.keras_name is not None}
    if "mean" in args and "variance" in args:
        args["mean"], args["variance"] = _mean_and_variance(args["mean"], args["variance"], args.get("axis"))
    return args


def _mean_and_variance(mean: Any, variance: Any, axis: int | None) -> tuple[Any, Any]:
    """Keras wants mean and variance of one shape, and a scalar for ``axis: null``: the spec may
    write one number (or a list of 1) beside a list — ImageNet's per-channel means with one
    variance — which stands for that number at every position."""
    if axis is None:  # one mean overall: the shape rule allowed only lists of 1
        return _scalar(mean), _scalar(variance)
    mean, variance = _scalar(mean), _scalar(variance)
    if isinstance(mean, tuple) and not isinstance(variance, tuple) and variance is not None:
        variance = (variance,) * len(mean)
    elif isinstance(variance, tuple) and not isinstance(mean, tuple) and mean is not None:
        mean = (mean,) * len(variance)
    return mean, variance


def _scalar(value: Any) -> Any:
    """A list of one number as that number (Keras' rank rule: a list needs an axis)."""
    return value[0] if isinstance(value, tuple) and len(value) == 1 else value


NORMALIZATION_PARAMS = (
    Param(
        "axis",
        "int",
        -1,
        "the axis with its own mean and variance (Keras counts the batch axis as 0); null: one overall",
        nullable=True,
    ),
    Param(
        "mean",
        "floats",
        None,
        "the mean to subtract: one number, or one per position of `axis`",
        nullable=True,
    ),
    Param(
        "variance", "floats", None, "the variance to divide by (its square root)", minimum=0, nullable=True
    ),
    flag(
        "adapt",
        False,
        "compute mean and variance from the training split before fit (Keras' adapt()); stored in the model",
        keras=None,
    ),
    flag("invert", False, "undo the normalisation instead (x · sqrt(variance) + mean)"),
)

# None of these kinds declares `ranks`: Keras builds and runs each on an input of any rank (its
# axis or axes counted from either end), a rank-5 tensor from a reshape included.
register(
    LayerKind(
        "batch_norm",
        "norm",
        "BatchNormalization",
        "Batch normalisation over the last (channel) axis.",
        BATCH_PARAMS,
        same_shape,
        _batch_counts,
        batch_statistics=True,
        weight_rule=_batch_weights,
    ),
    LayerKind(
        "layer_norm",
        "norm",
        "LayerNormalization",
        "Layer normalisation over the last axis.",
        LAYER_PARAMS,
        same_shape,
        _affine_counts,
        weight_rule=_affine_weights,
    ),
    LayerKind(
        "unit_normalization",
        "norm",
        "UnitNormalization",
        "Scales the input to an L2 norm of 1 over `axis` (each position of the other axes on its "
        "own): x / max(sqrt(sum(x²)), 1e-12). No weights.",
        (
            Param(
                "axis",
                "signed_axes",
                -1,
                "the axis, or list of axes, to normalise over, as Keras counts them (1: the first "
                "axis of the input; -1: the last)",
            ),
        ),
        _unit_shape,
        main="axis",
    ),
    LayerKind(
        "group_norm",
        "norm",
        "GroupNormalization",
        "Group normalisation: channels split into groups, each normalised.",
        GROUP_PARAMS,
        _group_shape,
        _affine_counts,
        main="groups",
        weight_rule=_affine_weights,
    ),
    LayerKind(
        "normalization",
        "norm",
        "Normalization",
        "Feature-wise standardisation (x − mean) / sqrt(variance): mean and variance given, or "
        "computed from the training split before fit (`adapt: true`). Without either it holds "
        "mean 0 and variance 1 as weights (an ImageNet weight file fills them in, as for "
        "keras.applications' EfficientNet).",
        NORMALIZATION_PARAMS,
        _normalization_shape,
        _normalization_counts,
        _normalization_args,
        adapt_param="adapt",
        weight_rule=_normalization_weights,
        counters=(2,),  # (mean, variance, then `count`: an int64 Keras counts adapted values in)
    ),
)
