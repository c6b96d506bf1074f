"""Augmentation kinds: Keras' random preprocessing layers (active in training only)."""

from __future__ import annotations

from typing import Any

from cnnspec.layers.params import Param, choice, number, positive_int, seed_param
from cnnspec.layers.registry import LayerKind, Params, Shape, ShapeError, register

FILL_MODES = ("reflect", "wrap", "constant", "nearest")


def factor_param(
    name: str, doc: str, maximum: float | None = None, default: Any = ..., *, keras_one_sided: bool = False
) -> Param:
    """A factor parameter (a number from 0 to ``maximum``, or a list [lower, upper]); required
    unless ``default`` is given (``None``: nullable). ``keras_one_sided``: see :class:`Param`."""
    kwargs: dict[str, Any] = {"minimum": 0, "maximum": maximum, "keras_one_sided": keras_one_sided}
    if default is not ...:
        return Param(name, "factor", default, doc, nullable=default is None, **kwargs)
    return Param(name, "factor", doc=doc, **kwargs)


def _zoom(name: str, doc: str, default: Any = ...) -> Param:
    """RandomZoom's factors: each value in (-1, 1] (Keras refuses the others at build time)."""
    if default is not ...:
        return Param(name, "zoom", default, doc, nullable=default is None, minimum=0, maximum=1)
    return Param(name, "zoom", doc=doc, minimum=0, maximum=1)


#: What a factor's list must be (params.py checks it): said in each factor's description, as the
#: reference's type column only says "or a list [lower, upper]".
LIST_RULE = "a list [lower, upper] by lower to upper (lower ≤ upper, each from -1 to 1)"

_FILL = (
    choice("fill_mode", FILL_MODES, "reflect", "how points outside the image are filled"),
    choice("interpolation", ("nearest", "bilinear"), "bilinear", "interpolation method"),
    number("fill_value", 0.0, "value used with fill_mode: constant"),
)


def _translation_args(params: Params) -> dict[str, Any]:
    # Only the parameters given (a kind's defaults alone, as codegen writes spec-level
    # `defaults:` into one partial, have no height_factor): the width follows a given height.
    args = {p.name: p.normalize(params[p.name]) for p in TRANSLATION_PARAMS if p.name in params}
    if args.get("width_factor") is None and "height_factor" in args:
        args["width_factor"] = args["height_factor"]
    return args


TRANSLATION_PARAMS = (
    factor_param(
        "height_factor",
        f"vertical shift as a fraction of the height: a number f shifts by -f to f, {LIST_RULE}",
        1.0,
    ),
    factor_param(
        "width_factor",
        "horizontal shift as a fraction of the width (default: as height); a number or a list as "
        "for height_factor",
        1.0,
        None,
    ),
    *_FILL,
    seed_param(),
)


def _crop_shape(params: Params, inputs: list[Shape]) -> Shape:
    h, w, c = inputs[0]
    height, width = params["height"], params["width"]
    # Keras 3's RandomCrop returns its input unchanged when training=False (keras-team/keras#21868,
    # open), not the center crop it documents: a crop that changes the size trains on one shape
    # and meets another at validation and prediction. Only a crop to the input's size is safe.
    if (height, width) != (h, w):
        raise ShapeError(
            f"expected a crop to the input's own size ({h}×{w}); received {height}×{width}: Keras 3 "
            "passes images through RandomCrop unchanged at inference (keras-team/keras#21868), so "
            f"the model would see {h}×{w} images when it predicts and {height}×{width} when it trains",
            param="height" if height != h else "width",
            hint="crop or resize the images beforehand, or use `resizing` in the model",
        )
    return (height, width, c)


def _contrast_shape(params: Params, inputs: list[Shape]) -> Shape:
    # RandomContrast reads a list as the amounts [lower, upper] (1 − lower to 1 + upper), both
    # from 0 to 1: Keras refuses a negative upper when it builds the layer, and a negative lower
    # would invert the range.
    refuse_negative_ranges("random_contrast", params, "factor", hint=CONTRAST_HINT)
    return inputs[0]


def _perspective_shape(params: Params, inputs: list[Shape]) -> Shape:
    refuse_negative_ranges("random_perspective", params, "factor")
    return inputs[0]


#: What a contrast range's negative end is told (random_contrast, random_color_jitter).
CONTRAST_HINT = "the contrast is scaled by 1 − lower to 1 + upper: write both as amounts ≥ 0"
#: What a range's negative end is told by default: a number f is the range [0, f].
AMOUNT_HINT = "a number f stands for [0, f]; write both ends of a range as amounts ≥ 0"


def refuse_negative_ranges(kind: str, params: Params, *names: str, hint: str = AMOUNT_HINT) -> None:
    """Refuse a ``[lower, upper]`` with a negative value for the named amounts (probabilities,
    blur or sharpness amounts, solarization thresholds): Keras accepts a list unless it lies
    wholly outside its bounds, and then draws the negative values too — a probability below 0,
    the square root of a negative patch size (NaN pixels), a sharpness past "blurred"."""
    for name in names:
        value = params.get(name)
        if isinstance(value, (list, tuple)) and any(x < 0 for x in value):
            raise ShapeError(
                f"expected {kind}'s {name} [lower, upper] with both from 0 to 1; received "
                f"[{', '.join(str(x) for x in value)}]",
                param=name,
                hint=hint,
            )


def require_rgb(kind: str, inputs: list[Shape], param: str | None = None) -> None:
    """Refuse input images that do not have 3 channels, for the colour kinds: Keras converts
    the images to HSV (hue, saturation) or grayscale, and its conversions fail in the first
    training batch on 4 channels (on 1, grayscale is a no-op and HSV fails)."""
    channels = inputs[0][-1]
    if channels != 3:
        raise ShapeError(
            f"expected RGB images (3 channels) for {kind}; received {channels} channel"
            f"{'' if channels == 1 else 's'} (input shape {list(inputs[0])})",
            param=param,
            hint=(
                "a colour augmentation has nothing to change in grayscale images: remove it"
                if channels == 1
                else "Keras' colour conversions take exactly 3 channels: apply it to RGB images"
            ),
        )


#: The pixel range a value augmentation is told (shared by every kind that has one).
VALUE_RANGE = Param(
    "value_range",
    "pair",
    [0, 255],
    "range of pixel values (Keras' default is [0, 255]; use [0, 1] for scaled images)",
)


def augmentation_kind(name: str, cls: str, doc: str, params: tuple[Param, ...], **kw: Any) -> LayerKind:
    """An augmentation kind: a weightless preprocessing layer on images, random in training."""
    # Geometric augmentation moves pixels (reflect fill by default) and the value augmentations
    # clip to value_range, so the range of the values is kept (given a matching value_range).
    # (a kind that does not keep the range says so: `value_range="unknown"` in ``kw``)
    traits: dict[str, Any] = {"value_range": "keeps", **kw}
    return LayerKind(
        name,
        "augment",
        cls,
        doc,
        params,
        ranks=(3,),
        preprocessing=True,
        augmentation=True,
        **traits,
    )


register(
    augmentation_kind(
        "random_flip",
        "RandomFlip",
        "Random horizontal and/or vertical flips.",
        (
            choice(
                "mode",
                ("horizontal", "vertical", "horizontal_and_vertical"),
                "horizontal_and_vertical",
                "which flips to apply",
            ),
            seed_param(),
        ),
        main="mode",
        geometric=True,
    ),
    augmentation_kind(
        "random_rotation",
        "RandomRotation",
        "Random rotation by a fraction of a full turn.",
        # Keras refuses a single factor outside [-1, 1] when it builds the layer (mid-run, in
        # `augmentation:`); beyond a full turn a range says nothing more.
        (
            factor_param(
                "factor",
                f"rotation range as a fraction of 2π: a number f turns by -f to f, {LIST_RULE}",
                1.0,
            ),
            *_FILL,
            seed_param(),
        ),
        main="factor",
        geometric=True,
        xla=False,  # Keras' supports_jit = False
    ),
    augmentation_kind(
        "random_zoom",
        "RandomZoom",
        "Random zoom in or out.",
        (
            _zoom("height_factor", "zoom range for the height"),
            _zoom("width_factor", "zoom range for the width (default: keep aspect ratio)", None),
            *_FILL,
            seed_param(),
        ),
        main="height_factor",
        geometric=True,
        xla=False,  # Keras' supports_jit = False
    ),
    augmentation_kind(
        "random_translation",
        "RandomTranslation",
        "Random shifts.",
        TRANSLATION_PARAMS,
        args_rule=_translation_args,
        main="height_factor",
        # Keras requires width_factor; ours defaults to height_factor, so it is always passed.
        keras_always_pass=("width_factor",),
        geometric=True,
        xla=False,  # Keras' supports_jit = False
    ),
    augmentation_kind(
        "random_crop",
        "RandomCrop",
        "Random crop to height × width. Only the input's own size is accepted, which leaves "
        "images unchanged: Keras 3 passes images through RandomCrop unchanged at inference "
        "(keras-team/keras#21868), so a smaller crop would train and predict on different shapes.",
        (positive_int("height", doc="crop height"), positive_int("width", doc="crop width"), seed_param()),
        shape_rule=_crop_shape,
        geometric=True,
        xla=False,  # Keras' supports_jit = False
    ),
    augmentation_kind(
        "random_perspective",
        "RandomPerspective",
        "Random perspective distortion: the image's corners shift by up to scale / 2 of its size "
        "(moves pixels: masks move with their images; the uncovered area takes fill_value).",
        (
            factor_param(
                "factor",
                "probability range of distorting an image, drawn per image: a number f draws it "
                "from 0 to f, a list [lower, upper] (each from 0 to 1, lower ≤ upper) from lower "
                "to upper",
                1.0,
                1.0,
            ),
            number(
                "scale",
                1.0,
                "how far the corners may shift, a fraction of the image's size",
                minimum=0,
                maximum=1,
            ),
            choice("interpolation", ("nearest", "bilinear"), "bilinear", "interpolation method"),
            number("fill_value", 0.0, "value of the area the distorted image leaves uncovered"),
            seed_param(),
        ),
        shape_rule=_perspective_shape,
        geometric=True,
        xla=False,  # Keras' supports_jit = False
        # the uncovered area is fill_value, which may lie outside the images' own range
        value_range="unknown",
    ),
    augmentation_kind(
        "random_brightness",
        "RandomBrightness",
        "Random brightness shift.",
        (
            factor_param(
                "factor",
                f"brightness range as a fraction of value_range: a number f shifts by -f to f, {LIST_RULE}",
                1.0,
            ),
            VALUE_RANGE,
            seed_param(),
        ),
        main="factor",
    ),
    augmentation_kind(
        "random_contrast",
        "RandomContrast",
        "Random contrast change.",
        (
            # Keras' RandomContrast reads a number f as (0, f): a scale from 1 to 1 + f only
            factor_param(
                "factor",
                "contrast range; a number f scales the contrast by 1 − f to 1 + f, a list [lower, "
                "upper] by 1 − lower to 1 + upper (lower ≤ upper, both from 0 to 1)",
                1.0,
                keras_one_sided=True,
            ),
            VALUE_RANGE,
            seed_param(),
        ),
        shape_rule=_contrast_shape,
        main="factor",
    ),
)
