"""Core kinds: dense, dropout and the other training-only regularizers, activation layers,
reshaping, padding/cropping, scaling and resizing.

The activation layers (``relu``, ``leaky_relu``, ``prelu``, ``elu``, ``softmax``) are Keras' layer
classes of those names. Their kind names coexist with the ``activation:`` values of the same
spelling without ambiguity: a kind is only ever a layer item's key (``- softmax``, Keras'
``Softmax`` layer), an activation value only ever a parameter's value (``activation: softmax``
on a dense, or ``- activation: softmax``, Keras' ``Activation`` layer), as ``- relu`` and
``activation: relu`` always have.
"""

from __future__ import annotations

import math
from typing import Any

from cnnspec.layers.params import (
    ACTIVATIONS,
    Param,
    choice,
    flag,
    initializer,
    number,
    positive_int,
    seed_param,
)
from cnnspec.layers.registry import (
    Counts,
    KerasCall,
    LayerKind,
    Params,
    Shape,
    ShapeError,
    register,
    same_shape,
)

INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos3", "lanczos5", "area")


def _resize_export_gap(config: dict[str, Any], fmt: str) -> str | None:
    """What ONNX or TFLite lacks for a resize (``resizing``, or ``upsampling2d`` of another
    interpolation than nearest: TensorFlow's ResizeArea, ResizeBicubic and the lanczos kernels'
    ScaleAndTranslate): tf2onnx approximates area with another Resize mode, and maps bicubic on
    ONNX's cubic mode, whose answers differ (by about 1e-3 at a factor that is no whole number),
    and leaves ScaleAndTranslate as it is; TFLite has bilinear and nearest resizes only."""
    interpolation = str(config.get("interpolation", "bilinear"))
    if fmt == "onnx" and interpolation == "area":
        return "ONNX's Resize has no area interpolation (the converter approximates it)"
    if fmt == "onnx" and interpolation == "bicubic":
        return "ONNX's cubic Resize does not compute TensorFlow's bicubic (the converter maps one onto it)"
    if fmt == "onnx" and interpolation.startswith("lanczos"):
        return f"ONNX's Resize has no {interpolation} interpolation"
    if fmt == "tflite" and interpolation not in ("bilinear", "nearest"):
        return f"TFLite has no {interpolation} resize (its resizes are bilinear and nearest)"
    return None


def _dense_shape(params: Params, inputs: list[Shape]) -> Shape:
    return (*inputs[0][:-1], params["units"])


def _dense_counts(params: Params, inputs: list[Shape], output: Shape) -> Counts:
    fan_in = inputs[0][-1]
    units = params["units"]
    weights = fan_in * units + (units if params["use_bias"] else 0)
    return Counts(weights, 0, fan_in * units * math.prod(inputs[0][:-1]))


def _dense_weights(params: Params, inputs: list[Shape], output: Shape) -> tuple[Shape, ...]:
    units = params["units"]
    return ((inputs[0][-1], units), *(((units,),) if params["use_bias"] else ()))


def _dense_args(params: Params) -> dict[str, Any]:
    # Only the parameters given, as the registry's own rule does: a kind's defaults alone
    # (spec-level `defaults:`, written as one partial by codegen) have no `units`.
    args = {p.name: p.normalize(params[p.name]) for p in DENSE_PARAMS if p.name in params}
    for key in ("kernel_regularizer", "bias_regularizer"):
        if args.get(key) is not None:
            args[key] = KerasCall("L1L2", tuple(sorted(args[key].items())))
    return args


DENSE_PARAMS = (
    positive_int("units", doc="number of outputs"),
    choice("activation", ACTIVATIONS, None, "activation applied to the output", nullable=True),
    flag("use_bias", True, "add a learned bias"),
    initializer("kernel_initializer", "glorot_uniform", "kernel initializer"),
    initializer("bias_initializer", "zeros", "bias initializer"),
    Param("kernel_regularizer", "regularizer", None, "L1/L2 penalty on the kernel", nullable=True),
    Param("bias_regularizer", "regularizer", None, "L1/L2 penalty on the bias", nullable=True),
)


def _flatten_shape(params: Params, inputs: list[Shape]) -> Shape:
    return (math.prod(inputs[0]),)


def _reshape_shape(params: Params, inputs: list[Shape]) -> Shape:
    target = list(params["target_shape"])
    total = math.prod(inputs[0])
    known = math.prod(d for d in target if d != -1)
    if -1 in target:
        if total % known:
            raise ShapeError(
                f"expected {list(inputs[0])} ({total} values) to divide into {target}",
                param="target_shape",
            )
        target[target.index(-1)] = total // known
    elif known != total:
        raise ShapeError(
            f"expected target_shape with {total} values (input {list(inputs[0])}); "
            f"received {target} ({known} values)",
            param="target_shape",
        )
    return tuple(target)


def _upsampling_shape(params: Params, inputs: list[Shape]) -> Shape:
    size = params["size"]
    size = tuple(size) if isinstance(size, (list, tuple)) else (size, size)
    h, w, c = inputs[0]
    return (h * size[0], w * size[1], c)


def _padding_pairs(value: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    return Param("p", "padding").normalize(value)


def _zero_padding_shape(params: Params, inputs: list[Shape]) -> Shape:
    (top, bottom), (left, right) = _padding_pairs(params["padding"])
    h, w, c = inputs[0]
    return (h + top + bottom, w + left + right, c)


def _cropping_shape(params: Params, inputs: list[Shape]) -> Shape:
    (top, bottom), (left, right) = _padding_pairs(params["cropping"])
    h, w, c = inputs[0]
    if top + bottom >= h or left + right >= w:
        raise ShapeError(
            f"expected cropping smaller than the input's height and width ({h}×{w}); "
            f"received {[[top, bottom], [left, right]]}",
            param="cropping",
        )
    return (h - top - bottom, w - left - right, c)


def _resizing_shape(params: Params, inputs: list[Shape]) -> Shape:
    return (params["height"], params["width"], inputs[0][-1])


def _yaml_list(values: Any) -> str:
    return "[" + ", ".join("null" if v is None else str(v) for v in values) + "]"


def _dropout_shape(params: Params, inputs: list[Shape]) -> Shape:
    noise = params.get("noise_shape")
    shape = inputs[0]
    if noise is None:
        return shape
    if len(noise) != len(shape) + 1:
        raise ShapeError(
            f"expected noise_shape with {len(shape) + 1} entries (the batch axis, then "
            f"{list(shape)}); received {_yaml_list(noise)}",
            param="noise_shape",
        )
    for size, dim in zip(noise[1:], shape, strict=True):
        if size is not None and size not in (1, dim):
            raise ShapeError(
                f"expected each noise_shape entry after the batch axis to be null, 1 or the "
                f"input's size ({_yaml_list(shape)}); received {_yaml_list(noise)}",
                param="noise_shape",
            )
    return shape


def _spatial_dropout_shape(params: Params, inputs: list[Shape]) -> Shape:
    return inputs[0]


def _axis_index(axis: int, shape: Shape) -> int:
    """An ``axis`` as Keras counts it (0 the batch, 1 the first of the input, -1 the last) → an
    index into the batch-less ``shape``; a :class:`ShapeError` at ``axis`` when there is none."""
    rank = len(shape)
    if not (-rank <= axis <= -1 or 1 <= axis <= rank):
        raise ShapeError(
            f"expected axis in [1, {rank}] or [{-rank}, -1] (axis 0 is the batch) for an input of "
            f"shape {list(shape)}; received {axis}",
            param="axis",
        )
    return axis - 1 if axis > 0 else axis % rank


def _softmax_shape(params: Params, inputs: list[Shape]) -> Shape:
    _axis_index(params["axis"], inputs[0])
    return inputs[0]


def _softmax_activation(params: Params, inputs: list[Shape]) -> str | None:
    # Only over the last axis is the output a distribution over the classes (what a loss's
    # from_logits asks); over another axis (a spatial softmax) it is not.
    shape = inputs[0] if inputs else ()
    axis = params.get("axis", -1)
    last = axis == -1 or (bool(shape) and axis == len(shape))  # Keras' 1-based last axis
    return "softmax" if last else None


def _shared_axes(params: Params, shape: Shape) -> tuple[int, ...]:
    """PReLU's ``shared_axes`` as indices into the batch-less ``shape`` (each checked)."""
    axes = Param("shared_axes", "axes").normalize(params.get("shared_axes"))
    if axes is None:
        return ()
    rank = len(shape)
    for axis in axes:
        if axis > rank:
            raise ShapeError(
                f"expected shared_axes among the input's axes 1 to {rank} (shape {list(shape)}, "
                f"1-based: 0 is the batch); received {axis}",
                param="shared_axes",
            )
    return tuple(axis - 1 for axis in axes)


def _prelu_shape(params: Params, inputs: list[Shape]) -> Shape:
    _shared_axes(params, inputs[0])
    return inputs[0]


def _prelu_counts(params: Params, inputs: list[Shape], output: Shape) -> Counts:
    # One learned slope per input position, shared (size 1) along each of shared_axes: Keras'
    # PReLU.build. Elementwise, like an activation: no MACs (the registry counts none for
    # activations and batch normalisation either).
    shared = _shared_axes(params, inputs[0])
    alphas = math.prod(1 if i in shared else size for i, size in enumerate(inputs[0]))
    return Counts(alphas, 0, 0)


def _prelu_weights(params: Params, inputs: list[Shape], output: Shape) -> tuple[Shape, ...]:
    shared = _shared_axes(params, inputs[0])  # (one alpha tensor: size 1 along each shared axis)
    return (tuple(1 if i in shared else size for i, size in enumerate(inputs[0])),)


def _prelu_args(params: Params) -> dict[str, Any]:
    args = {p.name: p.normalize(params[p.name]) for p in PRELU_PARAMS if p.name in params}
    if args.get("alpha_regularizer") is not None:
        args["alpha_regularizer"] = KerasCall("L1L2", tuple(sorted(args["alpha_regularizer"].items())))
    return args


PRELU_PARAMS = (
    initializer("alpha_initializer", "zeros", "initializer of the learned slopes (zeros: a ReLU at first)"),
    Param("alpha_regularizer", "regularizer", None, "L1/L2 penalty on the slopes", nullable=True),
    Param(
        "shared_axes",
        "axes",
        None,
        "axes (1-based, as Keras counts them) along which one slope is shared, e.g. [1, 2]: one "
        "slope per channel of an image; null: one slope per input value",
        nullable=True,
    ),
)


def _permute_shape(params: Params, inputs: list[Shape]) -> Shape:
    dims = list(params["dims"])
    shape = inputs[0]
    if len(dims) != len(shape):
        raise ShapeError(
            f"expected dims to order all {len(shape)} axes of the input {list(shape)} (a "
            f"permutation of 1 to {len(shape)}); received {dims}",
            param="dims",
        )
    return tuple(shape[d - 1] for d in dims)


def noise_shape_param(example: str) -> Param:
    """The ``noise_shape`` of the dropout kinds (Keras' own argument), with an ``example``."""
    return Param(
        "noise_shape",
        "noise_shape",
        None,
        f"shape of the dropout mask, batch axis first, e.g. {example}; null entries take the "
        "input's size. The batch entry is null (or 1: one mask for the whole batch), never a "
        "fixed batch size",
        nullable=True,
    )


register(
    LayerKind(
        "dense",
        "core",
        "Dense",
        "Fully connected layer over the last axis.",
        DENSE_PARAMS,
        _dense_shape,
        _dense_counts,
        _dense_args,
        main="units",
        weight_rule=_dense_weights,
        # No `ranks`: Keras' Dense takes any rank (with the batch axis, at least 2) and acts on
        # the last axis, so a rank-5 tensor from a reshape is as valid as an image.
        per_position=True,
    ),
    LayerKind(
        "dropout",
        "core",
        "Dropout",
        "Randomly zeroes a fraction of the inputs during training.",
        (
            number("rate", doc="fraction of inputs to drop", minimum=0, maximum=1),
            noise_shape_param("[null, 1, 1, 1] to drop whole samples (per-sample drop-connect)"),
            seed_param(),
        ),
        _dropout_shape,
        main="rate",
        passes_activation=True,
        training_noise=True,
    ),
    LayerKind(
        "spatial_dropout2d",
        "core",
        "SpatialDropout2D",
        "Drops whole feature maps (channels) during training.",
        (
            number("rate", doc="fraction of channels to drop", minimum=0, maximum=1),
            seed_param(),
        ),
        _spatial_dropout_shape,
        main="rate",
        ranks=(3,),
        passes_activation=True,
        training_noise=True,
    ),
    # The noise regularizers below are the input unchanged at inference and noise around it in
    # training, as dropout is: an activation before one is still the model's output activation
    # for the loss (passes_activation), and none keeps the value range (noise leaves it).
    # activity_regularization is the identity in both (its penalty goes to the loss): it keeps it.
    LayerKind(
        "gaussian_noise",
        "core",
        "GaussianNoise",
        "Adds zero-centred Gaussian noise of standard deviation `stddev` during training; at "
        "inference the input unchanged.",
        (
            # Keras' GaussianNoise refuses a deviation outside [0, 1] when it is made.
            number("stddev", doc="standard deviation of the noise", minimum=0, maximum=1),
            seed_param(),
        ),
        main="stddev",
        passes_activation=True,
        training_noise=True,
    ),
    LayerKind(
        "gaussian_dropout",
        "core",
        "GaussianDropout",
        "Multiplies the input by 1-centred Gaussian noise of standard deviation sqrt(rate / (1 − "
        "rate)) during training; at inference the input unchanged.",
        (
            # Keras takes rate 1 when the layer is made, then divides by 1 − rate in training.
            number(
                "rate", doc="drop probability, as dropout's", minimum=0, maximum=1, exclusive_maximum=True
            ),
            seed_param(),
        ),
        main="rate",
        passes_activation=True,
        training_noise=True,
    ),
    LayerKind(
        "alpha_dropout",
        "core",
        "AlphaDropout",
        "Dropout that keeps the mean and variance of its input (for `selu` networks): dropped "
        "values are set to SELU's negative saturation, then all are scaled and shifted, during "
        "training; at inference the input unchanged.",
        (
            # Keras takes rate 1 when the layer is made, then fails in training (0 ** -0.5).
            number("rate", doc="fraction of inputs to drop", minimum=0, maximum=1, exclusive_maximum=True),
            noise_shape_param("[null, 1, 1, 3] for one mask per channel"),
            seed_param(),
        ),
        _dropout_shape,
        main="rate",
        passes_activation=True,
        training_noise=True,
    ),
    LayerKind(
        "activity_regularization",
        "core",
        "ActivityRegularization",
        "Passes its input through unchanged and adds (l1 × sum(|x|) + l2 × sum(x²)) / batch size "
        "of it to the training loss (Keras' activity regularizer).",
        (
            # Keras' L1L2 refuses a negative amount when the layer is made.
            number("l1", 0.0, "L1 penalty on the input's values", minimum=0),
            number("l2", 0.0, "L2 penalty on the input's values", minimum=0),
        ),
        passes_activation=True,
        value_range="keeps",  # its output is its input
    ),
    LayerKind(
        "flatten",
        "core",
        "Flatten",
        "Flattens everything but the batch axis.",
        (),
        _flatten_shape,
        passes_activation=True,
        value_range="keeps",
    ),
    LayerKind(
        "activation",
        "core",
        "Activation",
        "Applies an activation function.",
        (choice("activation", ACTIVATIONS, doc="the activation function"),),
        main="activation",
    ),
    LayerKind(
        "relu",
        "core",
        "ReLU",
        "Rectified linear unit as a layer of its own, with an optional cap (``max_value: 6`` is "
        "ReLU6, as MobileNet builds it), leak below ``threshold`` and threshold.",
        (
            # Keras' ReLU refuses a negative value of any of the three when it is built.
            number("max_value", None, "cap on the output (null: none)", minimum=0, nullable=True),
            number("negative_slope", 0.0, "slope below the threshold", minimum=0),
            number("threshold", 0.0, "values below this are zeroed (or leak)", minimum=0),
        ),
        main="max_value",
    ),
    LayerKind(
        "leaky_relu",
        "core",
        "LeakyReLU",
        "Leaky ReLU as a layer of its own: x below 0 becomes negative_slope × x. Its default slope "
        "is Keras' LeakyReLU layer's, 0.3 (the `activation: leaky_relu` function's is 0.2).",
        # Keras' LeakyReLU refuses a negative (or null) slope when it is made.
        (number("negative_slope", 0.3, "slope below zero", minimum=0),),
        main="negative_slope",
    ),
    LayerKind(
        "prelu",
        "core",
        "PReLU",
        "Parametric ReLU: x below 0 becomes alpha × x with alpha learned, one per input value or "
        "shared along shared_axes.",
        PRELU_PARAMS,
        _prelu_shape,
        _prelu_counts,
        _prelu_args,
        main="shared_axes",
        weight_rule=_prelu_weights,
    ),
    LayerKind(
        "elu",
        "core",
        "ELU",
        "Exponential linear unit as a layer of its own: x below 0 becomes alpha × (exp(x) − 1). "
        "The same as `activation: elu` at the default alpha, 1.",
        # Keras' ELU takes any alpha (no check); a negative one is no ELU, but Keras builds it.
        (number("alpha", 1.0, "scale of the negative part (the value approached as x → −∞ is −alpha)"),),
        main="alpha",
    ),
    LayerKind(
        "softmax",
        "core",
        "Softmax",
        "Softmax as a layer of its own (Keras' Softmax), over `axis`: the same as `activation: "
        "softmax` over the last axis.",
        (
            Param(
                "axis",
                "int",
                -1,
                "axis to normalise over, as Keras counts it (1: the first axis of the input; -1: the last)",
            ),
        ),
        _softmax_shape,
        main="axis",
        applies_activation=_softmax_activation,
    ),
    LayerKind(
        "identity",
        "core",
        "Identity",
        "Passes its input through unchanged.",
        (),
        passes_activation=True,
        value_range="keeps",
    ),
    LayerKind(
        "reshape",
        "core",
        "Reshape",
        "Reshapes to target_shape (one axis may be -1).",
        (Param("target_shape", "shape", doc="the new shape without the batch axis"),),
        _reshape_shape,
        main="target_shape",
        passes_activation=True,
        value_range="keeps",
    ),
    LayerKind(
        "permute",
        "core",
        "Permute",
        "Reorders the axes of the input (the batch axis stays first).",
        (
            Param(
                "dims",
                "permutation",
                doc="the input's axes in their new order, 1-based (the batch axis left out): [2, 1, 3] "
                "swaps height and width of an image",
            ),
        ),
        _permute_shape,
        main="dims",
        # Every output value is an input value (only their order changes), so it keeps the
        # range; the order changes, so it is no pass-through for the output-activation trace.
        value_range="keeps",
    ),
    LayerKind(
        "upsampling2d",
        "core",
        "UpSampling2D",
        "Repeats rows and columns by `size`.",
        (
            Param("size", "ints", 2, "upsampling factors for rows and columns", minimum=1),
            choice("interpolation", INTERPOLATIONS, "nearest", "interpolation method"),
        ),
        _upsampling_shape,
        main="size",
        ranks=(3,),
        value_range="keeps",  # nearest repeats values, bilinear averages neighbours
        spatial=True,
        export_gap=_resize_export_gap,
    ),
    LayerKind(
        "zero_padding2d",
        "core",
        "ZeroPadding2D",
        "Pads rows and columns with zeros.",
        (Param("padding", "padding", 1, "rows/columns to add"),),
        _zero_padding_shape,
        main="padding",
        ranks=(3,),
    ),
    LayerKind(
        "cropping2d",
        "core",
        "Cropping2D",
        "Crops rows and columns from the edges.",
        (Param("cropping", "padding", doc="rows/columns to remove"),),
        _cropping_shape,
        main="cropping",
        ranks=(3,),
        value_range="keeps",
    ),
    LayerKind(
        "rescaling",
        "core",
        "Rescaling",
        "Multiplies by `scale` and adds `offset` (e.g. 1/255 to map pixels to [0, 1]).",
        (number("scale", doc="multiplier"), number("offset", 0.0, "added after scaling")),
        same_shape,
        main="scale",
        value_range="affine",
        preprocessing=True,
    ),
    LayerKind(
        "resizing",
        "core",
        "Resizing",
        "Resizes images to height × width.",
        (
            positive_int("height", doc="output height"),
            positive_int("width", doc="output width"),
            choice("interpolation", INTERPOLATIONS, "bilinear", "interpolation method"),
            flag("crop_to_aspect_ratio", False, "crop instead of distorting the aspect ratio"),
        ),
        _resizing_shape,
        ranks=(3,),
        # Bilinear (the default), nearest and area stay within the range; bicubic and lanczos
        # can overshoot slightly at edges, which the value_range lint does not need to see.
        value_range="keeps",
        preprocessing=True,
        spatial=True,
        export_gap=_resize_export_gap,
    ),
)
