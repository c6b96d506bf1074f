"""Convolution kinds: conv1d, conv2d, depthwise_conv2d, separable_conv2d, conv2d_transpose."""

from __future__ import annotations

import math
from typing import Any

from cnnspec.layers.arith import conv_length, spatial_names, transpose_length
from cnnspec.layers.params import (
    Param,
    activation,
    choice,
    flag,
    initializer,
    ints,
    positive_int,
)
from cnnspec.layers.registry import Counts, KerasCall, LayerKind, Params, Shape, ShapeError, register


def _common(rank: int, padding: tuple[str, ...] = ("valid", "same")) -> tuple[Param, ...]:
    return (
        ints("kernel_size", doc="size of the convolution window", length=rank),
        ints("strides", 1, "step of the window", length=rank),
        choice("padding", padding, "valid", "`valid` (no padding) or `same` (keep size / stride)"),
        ints("dilation_rate", 1, "spacing between kernel elements", length=rank),
        activation(),
        flag("use_bias", True, "add a learned bias"),
    )


def _init_params(*prefixes: str) -> tuple[Param, ...]:
    out: list[Param] = []
    for prefix in prefixes:
        default = "zeros" if prefix == "bias" else "glorot_uniform"
        out.append(initializer(f"{prefix}_initializer", default, f"{prefix} initializer"))
    for prefix in prefixes:
        out.append(
            Param(
                f"{prefix}_regularizer",
                "regularizer",
                None,
                f"L1/L2 penalty on the {prefix}",
                nullable=True,
            )
        )
    return tuple(out)


def _regularizers(params: Params, args: dict[str, Any]) -> dict[str, Any]:
    for key, value in list(args.items()):
        if key.endswith("_regularizer") and value is not None:
            args[key] = KerasCall("L1L2", tuple(sorted(value.items())))
    return args


def _check_stride_dilation(params: Params) -> None:
    strides = params["strides"]
    dilation = params["dilation_rate"]
    strides = strides if isinstance(strides, (list, tuple)) else [strides]
    dilation = dilation if isinstance(dilation, (list, tuple)) else [dilation]
    if max(strides) > 1 and max(dilation) > 1:
        raise ShapeError(
            "expected strides of 1 when dilation_rate > 1 (Keras does not support both)",
            param="dilation_rate",
        )


def _tuple(value: Any, rank: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * rank


def _transpose_cpu_gap(params: Params) -> tuple[str, str] | None:
    """TensorFlow's own CPU kernel of a transposed convolution (Conv2DBackpropInput) refuses a
    dilation rate over 1 ("Current CPU implementations do not yet support dilation rates larger
    than 1"); oneDNN's kernel (on by default on CPUs with AVX-512) and GPU kernels take it."""
    if max(_tuple(params["dilation_rate"], 2)) <= 1:
        return None
    return (
        "TensorFlow's own CPU kernel takes no transposed convolution with dilation_rate over 1",
        "run with TF_ENABLE_ONEDNN_OPTS=1 (oneDNN's kernel takes it) or on a GPU; or write "
        "dilation_rate: 1, or upsample first (upsampling2d) and follow with a conv2d of this "
        "dilation_rate",
    )


def _conv_shape(rank: int) -> Any:
    def rule(params: Params, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        _check_stride_dilation(params)
        groups = params.get("groups", 1)
        channels = shape[-1]
        if channels % groups:
            raise ShapeError(
                f"expected input channels ({channels}) divisible by groups ({groups})",
                param="groups",
            )
        if params["filters"] % groups:
            raise ShapeError(
                f"expected filters ({params['filters']}) divisible by groups ({groups})",
                param="groups",
            )
        kernel = _tuple(params["kernel_size"], rank)
        strides = _tuple(params["strides"], rank)
        dilation = _tuple(params["dilation_rate"], rank)
        names = spatial_names(rank)
        spatial = tuple(
            conv_length(shape[i], kernel[i], strides[i], dilation[i], params["padding"], names[i])
            for i in range(rank)
        )
        return (*spatial, params["filters"])

    return rule


def _conv_counts(rank: int) -> Any:
    def rule(params: Params, inputs: list[Shape], output: Shape) -> Counts:
        kernel = math.prod(_tuple(params["kernel_size"], rank))
        channels = inputs[0][-1] // params.get("groups", 1)
        filters = params["filters"]
        weights = kernel * channels * filters + (filters if params["use_bias"] else 0)
        return Counts(weights, 0, kernel * channels * filters * math.prod(output[:-1]))

    return rule


def _bias(params: Params, size: int) -> tuple[Shape, ...]:
    """The bias's shape when the layer has one (``use_bias``), after the kernels."""
    return ((size,),) if params["use_bias"] else ()


def _conv_weights(rank: int) -> Any:
    def rule(params: Params, inputs: list[Shape], output: Shape) -> tuple[Shape, ...]:
        channels = inputs[0][-1] // params.get("groups", 1)
        kernel = (*_tuple(params["kernel_size"], rank), channels, params["filters"])
        return (kernel, *_bias(params, params["filters"]))

    return rule


CONV2D_PARAMS = (
    positive_int("filters", doc="number of output channels"),
    *_common(2),
    positive_int("groups", 1, "split input channels into this many groups"),
    *_init_params("kernel", "bias"),
)


def _plain_args(kind_params: tuple[Param, ...]) -> Any:
    def rule(params: Params) -> dict[str, Any]:
        args = {
            p.keras_name: p.normalize(params[p.name])
            for p in kind_params
            if p.keras_name is not None and p.name in params
        }
        return _regularizers(params, args)

    return rule


CONV1D_PARAMS = (
    positive_int("filters", doc="number of output channels"),
    *_common(1, ("valid", "same", "causal")),
    positive_int("groups", 1, "split input channels into this many groups"),
    *_init_params("kernel", "bias"),
)


def _depthwise_shape(params: Params, inputs: list[Shape]) -> Shape:
    # strides and dilation together are fine here (Keras' TensorFlow backend splits the
    # depthwise convolution in two), unlike in conv1d/conv2d and the transposed ones
    shape = inputs[0]
    kernel = _tuple(params["kernel_size"], 2)
    strides = _tuple(params["strides"], 2)
    dilation = _tuple(params["dilation_rate"], 2)
    if strides[0] != strides[1] and max(dilation) == 1:
        # TensorFlow's own depthwise kernels (DepthwiseConv2dNative, its CPU's and GPU's) take
        # one stride for both axes: the model built and then failed at its first call. Only
        # oneDNN's CPU kernel (on by default with AVX-512) takes two: refused, since such a
        # model would run on no GPU and on no CPU with oneDNN off. With a dilation Keras runs
        # the kernel at stride 1 and subsamples, so any strides run.
        raise ShapeError(
            f"expected the same stride in height and width; received strides {list(strides)} "
            "(TensorFlow's depthwise convolution takes one stride for both unless dilated)",
            param="strides",
            hint=f"to shrink one axis only, write strides: 1 and follow with max_pool2d: "
            f"{{pool_size: {list(strides)}}}",
        )
    spatial = tuple(
        conv_length(shape[i], kernel[i], strides[i], dilation[i], params["padding"], n)
        for i, n in enumerate(("height", "width"))
    )
    return (*spatial, shape[-1] * params["depth_multiplier"])


def _depthwise_counts(params: Params, inputs: list[Shape], output: Shape) -> Counts:
    kernel = math.prod(_tuple(params["kernel_size"], 2))
    out_channels = inputs[0][-1] * params["depth_multiplier"]
    weights = kernel * out_channels + (out_channels if params["use_bias"] else 0)
    return Counts(weights, 0, kernel * out_channels * math.prod(output[:-1]))


def _depthwise_weights(params: Params, inputs: list[Shape], output: Shape) -> tuple[Shape, ...]:
    channels, multiplier = inputs[0][-1], params["depth_multiplier"]
    kernel = (*_tuple(params["kernel_size"], 2), channels, multiplier)
    return (kernel, *_bias(params, channels * multiplier))


def _depthwise_window(kernel_doc: str, multiplier_doc: str) -> tuple[Param, ...]:
    """The window parameters shared by depthwise and separable convolutions."""
    return (
        ints("kernel_size", doc=kernel_doc),
        ints("strides", 1, "step of the window"),
        choice("padding", ("valid", "same"), "valid", "`valid` or `same`"),
        positive_int("depth_multiplier", 1, multiplier_doc),
        ints("dilation_rate", 1, "spacing between kernel elements"),
        activation(),
        flag("use_bias", True, "add a learned bias"),
    )


DEPTHWISE_PARAMS = (
    *_depthwise_window("size of the convolution window", "output channels per input channel"),
    *_init_params("depthwise", "bias"),
)


def _separable_shape(params: Params, inputs: list[Shape]) -> Shape:
    spatial = _depthwise_shape(params, inputs)[:-1]
    return (*spatial, params["filters"])


def _separable_counts(params: Params, inputs: list[Shape], output: Shape) -> Counts:
    kernel = math.prod(_tuple(params["kernel_size"], 2))
    mid = inputs[0][-1] * params["depth_multiplier"]
    filters = params["filters"]
    weights = kernel * mid + mid * filters + (filters if params["use_bias"] else 0)
    positions = math.prod(output[:-1])
    return Counts(weights, 0, (kernel * mid + mid * filters) * positions)


def _separable_weights(params: Params, inputs: list[Shape], output: Shape) -> tuple[Shape, ...]:
    channels, multiplier, filters = inputs[0][-1], params["depth_multiplier"], params["filters"]
    depthwise = (*_tuple(params["kernel_size"], 2), channels, multiplier)
    return (depthwise, (1, 1, channels * multiplier, filters), *_bias(params, filters))


SEPARABLE_PARAMS = (
    positive_int("filters", doc="number of output channels"),
    *_depthwise_window("size of the depthwise window", "depthwise channels per input channel"),
    *_init_params("depthwise", "pointwise", "bias"),
)


def _transpose_shape(params: Params, inputs: list[Shape]) -> Shape:
    shape = inputs[0]
    _check_stride_dilation(params)
    kernel = _tuple(params["kernel_size"], 2)
    strides = _tuple(params["strides"], 2)
    dilation = _tuple(params["dilation_rate"], 2)
    output_padding = params.get("output_padding")
    pads = _tuple(output_padding, 2) if output_padding is not None else (None, None)
    for pad, stride in zip(pads, strides, strict=True):
        if pad is not None and pad >= stride:
            raise ShapeError(
                f"expected output_padding ({pad}) smaller than strides ({stride})",
                param="output_padding",
            )
    names = spatial_names(2)
    spatial = tuple(
        transpose_length(shape[i], kernel[i], strides[i], dilation[i], params["padding"], pads[i], names[i])
        for i in range(2)
    )
    return (*spatial, params["filters"])


def _transpose_counts(params: Params, inputs: list[Shape], output: Shape) -> Counts:
    kernel = math.prod(_tuple(params["kernel_size"], 2))
    channels = inputs[0][-1]
    filters = params["filters"]
    weights = kernel * channels * filters + (filters if params["use_bias"] else 0)
    return Counts(weights, 0, kernel * channels * filters * math.prod(inputs[0][:-1]))


def _transpose_weights(params: Params, inputs: list[Shape], output: Shape) -> tuple[Shape, ...]:
    filters = params["filters"]  # (Keras keeps the kernel as (h, w, filters, channels))
    kernel = (*_tuple(params["kernel_size"], 2), filters, inputs[0][-1])
    return (kernel, *_bias(params, filters))


TRANSPOSE_PARAMS = (
    positive_int("filters", doc="number of output channels"),
    ints("kernel_size", doc="size of the convolution window"),
    ints("strides", 1, "upsampling factor"),
    choice("padding", ("valid", "same"), "valid", "`valid` or `same`"),
    Param(
        "output_padding",
        "ints",
        None,
        "extra rows/columns added to one side of the output",
        minimum=0,
        nullable=True,
    ),
    ints(
        "dilation_rate",
        1,
        "spacing between kernel elements (over 1: on a GPU, or a CPU with oneDNN on; TensorFlow's own "
        "CPU kernel has none)",
    ),
    activation(),
    flag("use_bias", True, "add a learned bias"),
    *_init_params("kernel", "bias"),
)


register(
    LayerKind(
        "conv1d",
        "conv",
        "Conv1D",
        "1-D convolution over (length, channels).",
        CONV1D_PARAMS,
        _conv_shape(1),
        _conv_counts(1),
        _plain_args(CONV1D_PARAMS),
        main="filters",
        ranks=(2,),
        kernel_layout="wio",
        weight_rule=_conv_weights(1),
        spatial=True,
    ),
    LayerKind(
        "conv2d",
        "conv",
        "Conv2D",
        "2-D convolution over (height, width, channels).",
        CONV2D_PARAMS,
        _conv_shape(2),
        _conv_counts(2),
        _plain_args(CONV2D_PARAMS),
        main="filters",
        ranks=(3,),
        kernel_layout="hwio",
        weight_rule=_conv_weights(2),
        spatial=True,
    ),
    LayerKind(
        "depthwise_conv2d",
        "conv",
        "DepthwiseConv2D",
        "Depthwise 2-D convolution: one filter (or depth_multiplier filters) per channel.",
        DEPTHWISE_PARAMS,
        _depthwise_shape,
        _depthwise_counts,
        _plain_args(DEPTHWISE_PARAMS),
        main="kernel_size",
        ranks=(3,),
        kernel_layout="hwim",
        weight_rule=_depthwise_weights,
        spatial=True,
    ),
    LayerKind(
        "separable_conv2d",
        "conv",
        "SeparableConv2D",
        "Depthwise convolution followed by a 1×1 pointwise convolution.",
        SEPARABLE_PARAMS,
        _separable_shape,
        _separable_counts,
        _plain_args(SEPARABLE_PARAMS),
        main="filters",
        ranks=(3,),
        kernel_layout="hwim",
        weight_rule=_separable_weights,
        spatial=True,
    ),
    LayerKind(
        "conv2d_transpose",
        "conv",
        "Conv2DTranspose",
        "Transposed 2-D convolution (learned upsampling).",
        TRANSPOSE_PARAMS,
        _transpose_shape,
        _transpose_counts,
        _plain_args(TRANSPOSE_PARAMS),
        main="filters",
        ranks=(3,),
        kernel_layout="hwoi",
        weight_rule=_transpose_weights,
        spatial=True,
        cpu_gap=_transpose_cpu_gap,
    ),
)
