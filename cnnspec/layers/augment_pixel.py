"""Pixel-value augmentation kinds that work on any number of channels: Keras' random
sharpness, Gaussian blur, erasing, inversion, posterization and solarization. None moves pixels
(a segmentation mask is left as it is), and each clips to or maps within ``value_range``."""

from __future__ import annotations

from typing import Any

from cnnspec.layers.augment import VALUE_RANGE, augmentation_kind, factor_param, refuse_negative_ranges
from cnnspec.layers.params import Param, number, seed_param
from cnnspec.layers.registry import Params, Shape, ShapeError, register


def _probability(doc: str) -> Param:
    """The ``factor`` of the kinds that apply themselves to some images only (Keras' (0, 1)
    bounds: a probability range, drawn per image)."""
    return factor_param(
        "factor",
        f"probability range of {doc}, drawn per image: a number f draws it from 0 to f, a list "
        "[lower, upper] (each from 0 to 1, lower ≤ upper) from lower to upper — on average "
        "(lower + upper) / 2 of the images",
        1.0,
        1.0,
    )


def _sharpness_shape(params: Params, inputs: list[Shape]) -> Shape:
    refuse_negative_ranges("random_sharpness", params, "factor")
    return inputs[0]


def _blur_shape(params: Params, inputs: list[Shape]) -> Shape:
    refuse_negative_ranges("random_gaussian_blur", params, "factor", "sigma")
    # Keras bounds sigma as a factor from 0 to 1 but reads a list's upper end freely: a number
    # above 1, or a list whose lower end is, is refused when Keras builds the layer.
    sigma = params.get("sigma")
    low = min(sigma) if isinstance(sigma, (list, tuple)) else sigma
    if isinstance(low, (int, float)) and low > 1:
        raise ShapeError(
            f"expected random_gaussian_blur's sigma at most 1, or a list [lower, upper] with lower "
            f"≤ 1; received {sigma}",
            param="sigma",
            hint="for more blur, write a range such as [0.5, 2.0] (Keras takes an upper end above 1)",
        )
    return inputs[0]


def _erasing_shape(params: Params, inputs: list[Shape]) -> Shape:
    refuse_negative_ranges("random_erasing", params, "factor", "scale")
    return inputs[0]


def _invert_shape(params: Params, inputs: list[Shape]) -> Shape:
    refuse_negative_ranges("random_invert", params, "factor")
    low, high = params.get("value_range") or (0, 255)
    if low != 0:
        # Keras inverts as high − x, which maps [low, high] onto itself only when low is 0
        raise ShapeError(
            f"expected random_invert's value_range to start at 0; received [{low}, {high}]: Keras "
            f"computes {high} − x, which maps [{low}, {high}] to [0, {high - low}]",
            param="value_range",
            hint="feed images scaled to [0, 1] or [0, 255] and say so in value_range",
        )
    return inputs[0]


def _posterization_shape(params: Params, inputs: list[Shape]) -> Shape:
    factor = params.get("factor")
    values = factor if isinstance(factor, (list, tuple)) else [factor]
    if any(isinstance(x, (int, float)) and (x < 1 or x != int(x)) for x in values):
        # Keras draws the bit count with randint: a fraction fails in the first training batch
        raise ShapeError(
            f"expected random_posterization's factor whole numbers of bits from 1 to 8; received {factor}",
            param="factor",
            hint="write e.g. 4 or [4, 8]",
        )
    return inputs[0]


def _posterization_args(params: Params) -> dict[str, Any]:
    # Keras takes whole numbers only (its randint refuses 4.0); the factor type reads floats
    args = {p.keras_name: p.normalize(params[p.name]) for p in POSTERIZATION_PARAMS if p.name in params}
    factor = args.get("factor")
    if isinstance(factor, tuple):
        args["factor"] = tuple(int(x) for x in factor)
    elif factor is not None:
        args["factor"] = int(factor)
    return args


def _solarization_shape(params: Params, inputs: list[Shape]) -> Shape:
    refuse_negative_ranges("random_solarization", params, "addition_factor", "threshold_factor")
    return inputs[0]


POSTERIZATION_PARAMS = (
    Param(
        "factor",
        "factor",
        [4, 8],
        "bits kept per channel (of the image mapped to 0–255), drawn per image: a number f keeps "
        "1 to f − 1 bits (1: exactly 1), a list [lower, upper] of whole numbers from 1 to 8 keeps "
        "lower to upper − 1 bits (exactly lower when they are equal); Keras has no default",
        minimum=1,
        maximum=8,
    ),
    VALUE_RANGE,
    seed_param(),
)

register(
    augmentation_kind(
        "random_sharpness",
        "RandomSharpness",
        "Random sharpening or softening.",
        (
            factor_param(
                "factor",
                "sharpness range: a drawn v blends the image with a smoothed copy by 1 − 2v — 0 "
                "smooths, 0.5 keeps, 1 sharpens; a number f draws v from 0 to f, a list [lower, "
                "upper] (each from 0 to 1, lower ≤ upper) from lower to upper",
                1.0,
            ),
            VALUE_RANGE,
            seed_param(),
        ),
        shape_rule=_sharpness_shape,
        main="factor",
    ),
    augmentation_kind(
        "random_gaussian_blur",
        "RandomGaussianBlur",
        "Random Gaussian blur, with a 3×3 kernel.",
        (
            _probability("blurring an image"),
            # (Keras' kernel_size stays at its 3×3 default: a kernel_size parameter is a
            # convolution's, with a kernel layout, throughout the registry's traits)
            Param(
                "sigma",
                "factor",
                1.0,
                "range of the kernel's standard deviation, drawn per batch: a number s (at most 1) "
                "draws it from 0 to s, a list [lower, upper] (lower ≤ upper, lower from 0 to 1) "
                "from lower to upper",
                minimum=0,
            ),
            VALUE_RANGE,
            seed_param(),
        ),
        shape_rule=_blur_shape,
        main="factor",
    ),
    augmentation_kind(
        "random_erasing",
        "RandomErasing",
        "Random erasing (cutout): fills a random rectangle of the image.",
        (
            _probability("erasing a patch"),
            factor_param(
                "scale",
                "range of the patch's size: each side is √u of the image's, u drawn from lower "
                "to upper (each from 0 to 1, lower ≤ upper) for the height and the width apart; "
                "a number s stands for [0, s]",
                1.0,
                [0.02, 0.33],
            ),
            number(
                "fill_value",
                None,
                "value the patch is filled with, clipped to value_range; null: Gaussian noise "
                "times value_range's upper end, clipped",
                nullable=True,
            ),
            VALUE_RANGE,
            seed_param(),
        ),
        shape_rule=_erasing_shape,
        main="factor",
    ),
    augmentation_kind(
        "random_invert",
        "RandomInvert",
        "Random inversion: x becomes value_range's upper end − x (value_range must start at 0).",
        (_probability("inverting an image"), VALUE_RANGE, seed_param()),
        shape_rule=_invert_shape,
        main="factor",
        # upper − x: the range is kept only when it starts at 0 (which the shape rule requires)
        value_range="unknown",
    ),
    augmentation_kind(
        "random_posterization",
        "RandomPosterization",
        "Random posterization: fewer bits per channel.",
        POSTERIZATION_PARAMS,
        shape_rule=_posterization_shape,
        args_rule=_posterization_args,
        main="factor",
        keras_always_pass=("factor",),  # Keras has no default
    ),
    augmentation_kind(
        "random_solarization",
        "Solarization",
        "Random solarization: pixels above a threshold are inverted (in the 0–255 scale), after "
        "adding an amount. With both factors 0 (the defaults) every image is inverted in training.",
        (
            factor_param(
                "addition_factor",
                "range of the amount added before thresholding, as a fraction of 255: a number f "
                "draws it from 0 to f × 255, a list [lower, upper] (each from 0 to 1) from lower "
                "to upper × 255",
                1.0,
                0.0,
            ),
            factor_param(
                "threshold_factor",
                "range of the threshold above which pixels are inverted, as a fraction of 255: a "
                "number f draws it from 0 to f × 255, a list [lower, upper] (each from 0 to 1) "
                "from lower to upper × 255",
                1.0,
                0.0,
            ),
            VALUE_RANGE,
            seed_param(),
        ),
        shape_rule=_solarization_shape,
        main="threshold_factor",
    ),
)
