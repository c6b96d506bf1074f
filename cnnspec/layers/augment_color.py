"""Colour augmentation kinds: Keras' random layers that work on RGB images only (grayscale,
hue, saturation, colour jitter). Each refuses other channel counts statically, with the rule in
:func:`~cnnspec.layers.augment.require_rgb`, instead of failing in the first training batch."""

from __future__ import annotations

from cnnspec.layers.augment import (
    CONTRAST_HINT,
    LIST_RULE,
    VALUE_RANGE,
    augmentation_kind,
    factor_param,
    refuse_negative_ranges,
    require_rgb,
)
from cnnspec.layers.params import number, seed_param
from cnnspec.layers.registry import Params, Shape, ShapeError, register

_HUE_DOC = (
    "hue shift range, in half turns of the colour wheel: a number f shifts each image's hue by up "
    "to f/2 of a turn, either way; a list [lower, upper] (each from 0 to 1, lower ≤ upper) draws "
    "the amount from lower to upper"
)
_SATURATION_DOC = (
    "saturation factor range: a drawn v scales the saturation by v / (1 − v) — 0 grays the image, "
    "0.5 keeps it, above 0.5 saturates; a list [lower, upper] (lower ≤ upper, each from -1 to 1) "
    "draws v from lower to upper, a number f from -f to f (Keras' reading: a negative v grays "
    "the image). Above 0.5, value_range must end at 1 at most (images scaled to [0, 1])"
)
_CONTRAST_DOC = (
    "contrast range, as random_contrast's factor: a number f scales the contrast by 1 − f to "
    "1 + f, a list [lower, upper] by 1 − lower to 1 + upper (lower ≤ upper, both from 0 to 1); "
    "null: no contrast change"
)


def _refuse_saturation_beyond_gray_scale(kind: str, params: Params, name: str) -> None:
    """Keras multiplies the HSV saturation (always from 0 to 1) by v / (1 − v) and clips it to
    value_range, not to [0, 1]: at [0, 255] a v above 0.5 gives saturations above 1, which turn
    into negative pixel values (thousands below 0 at v near 1). At [0, 1] the clip is right."""
    factor, value_range = params.get(name), params.get("value_range")
    if factor is None or not isinstance(value_range, (list, tuple)):
        return
    upper = max(factor) if isinstance(factor, (list, tuple)) else factor
    if upper > 0.5 and max(value_range) > 1:
        raise ShapeError(
            f"expected {kind}'s {name} at most 0.5 with value_range "
            f"[{', '.join(str(x) for x in value_range)}]; received {factor}: Keras clips the raised "
            "saturation to value_range instead of to 1, so it would give negative pixel values",
            param=name,
            hint="to raise saturation, feed images scaled to [0, 1] and set value_range: [0, 1]",
        )


def _grayscale_shape(params: Params, inputs: list[Shape]) -> Shape:
    require_rgb("random_grayscale", inputs)
    return inputs[0]


def _hue_shape(params: Params, inputs: list[Shape]) -> Shape:
    require_rgb("random_hue", inputs)
    refuse_negative_ranges("random_hue", params, "factor")
    return inputs[0]


def _saturation_shape(params: Params, inputs: list[Shape]) -> Shape:
    require_rgb("random_saturation", inputs)
    _refuse_saturation_beyond_gray_scale("random_saturation", params, "factor")
    return inputs[0]


#: The factors of which random_color_jitter needs one (its ``one_of`` trait).
_JITTER_FACTORS = ("brightness_factor", "contrast_factor", "saturation_factor", "hue_factor")


def _color_jitter_shape(params: Params, inputs: list[Shape]) -> Shape:
    kind = "random_color_jitter"
    factors = _JITTER_FACTORS
    if all(params.get(name) is None for name in factors):
        # Keras builds it and changes nothing: surely not what the spec meant
        raise ShapeError(
            f"expected at least one of {', '.join(factors)} for {kind}; received none, which "
            "leaves the images unchanged",
            hint="e.g. random_color_jitter: {brightness_factor: 0.2, contrast_factor: 0.2}",
        )
    # brightness and contrast work on any channels; saturation and hue convert to HSV
    for name in ("saturation_factor", "hue_factor"):
        if params.get(name) is not None:
            require_rgb(kind, inputs, param=name)
    refuse_negative_ranges(kind, params, "contrast_factor", hint=CONTRAST_HINT)
    refuse_negative_ranges(kind, params, "hue_factor")
    _refuse_saturation_beyond_gray_scale(kind, params, "saturation_factor")
    return inputs[0]


register(
    augmentation_kind(
        "random_grayscale",
        "RandomGrayscale",
        "Random conversion of RGB images to grayscale (the luminance in all 3 channels).",
        (
            # a probability, not a range: Keras compares it with a number (a list fails)
            number(
                "factor",
                0.5,
                "probability that an image is converted (0: never, 1: always)",
                minimum=0,
                maximum=1,
            ),
            seed_param(),
        ),
        shape_rule=_grayscale_shape,
        main="factor",
    ),
    augmentation_kind(
        "random_hue",
        "RandomHue",
        "Random hue shift of RGB images.",
        (factor_param("factor", _HUE_DOC, 1.0), VALUE_RANGE, seed_param()),
        shape_rule=_hue_shape,
        main="factor",
    ),
    augmentation_kind(
        "random_saturation",
        "RandomSaturation",
        "Random saturation change of RGB images.",
        (factor_param("factor", _SATURATION_DOC, 1.0), VALUE_RANGE, seed_param()),
        shape_rule=_saturation_shape,
        main="factor",
        # more saturation spreads a pixel's channels apart: below the input's lowest value
        value_range="unknown",
    ),
    augmentation_kind(
        "random_color_jitter",
        "RandomColorJitter",
        "Random brightness, contrast, saturation and hue changes, in that order, each applied "
        "when its factor is given (saturation and hue: RGB images only).",
        (
            VALUE_RANGE,
            factor_param(
                "brightness_factor",
                "brightness range as a fraction of value_range, as random_brightness's factor: a "
                f"number f shifts by -f to f, {LIST_RULE}; null: no brightness change",
                1.0,
                None,
            ),
            # given to Keras' RandomContrast, which reads a number f as (0, f)
            factor_param("contrast_factor", _CONTRAST_DOC, 1.0, None, keras_one_sided=True),
            factor_param("saturation_factor", f"{_SATURATION_DOC}; null: no saturation change", 1.0, None),
            factor_param("hue_factor", f"{_HUE_DOC}; null: no hue change", 1.0, None),
            seed_param(),
        ),
        shape_rule=_color_jitter_shape,
        one_of=_JITTER_FACTORS,
        # as random_saturation: a raised saturation leaves the input's range
        value_range="unknown",
    ),
)
