"""Augmentation policies: one kind that draws several operations per batch, Keras' RandAugment
(Cubuk et al., "RandAugment: Practical automated data augmentation with a reduced search
space", 2020).

RandAugment picks ``num_ops`` of its eleven operations per batch (shear, translation, rotation,
brightness, colour degeneration, contrast, sharpness, posterization, solarization, auto
contrast, equalization), each at a strength drawn from ``factor``. Three of them move pixels,
so it is registered as geometric: a segmentation mask goes through Keras' own mask handling
(checked over the registry), which moves it with the shear, translation and rotation and
leaves it alone otherwise."""

from __future__ import annotations

from cnnspec.layers.augment import VALUE_RANGE, augmentation_kind, factor_param, refuse_negative_ranges
from cnnspec.layers.params import choice, positive_int, seed_param
from cnnspec.layers.registry import Params, Shape, ShapeError, register

#: RandAugment's operations (Keras 3's ``RandAugment._AUGMENT_LAYERS``), for its doc and hints.
OPERATIONS = 11


def _rand_augment_shape(params: Params, inputs: list[Shape]) -> Shape:
    refuse_negative_ranges("rand_augment", params, "factor")
    channels = inputs[0][-1]
    if channels not in (1, 3):
        # Keras' RandAugment checks the channels when it is called, in the first training batch
        # ("Invalid channel size: expected 3 (RGB) or 1 (Grayscale)")
        raise ShapeError(
            f"expected RGB or grayscale images (3 or 1 channels) for rand_augment; received "
            f"{channels} channels (input shape {list(inputs[0])})",
            hint="Keras' RandAugment takes 3 (RGB) or 1 (grayscale) channels: apply it to such images",
        )
    return inputs[0]


register(
    augmentation_kind(
        "rand_augment",
        "RandAugment",
        "RandAugment: per batch, num_ops operations drawn from eleven (shear, translation, "
        "rotation, brightness, colour degeneration, contrast, sharpness, posterization, "
        "solarization, auto contrast, equalization), the same for every image of the batch, each "
        "at a strength drawn per image from factor. As Keras builds it, posterization keeps 1 to "
        "max(1, ⌊8 × upper⌋) − 1 bits, which is harsh at small factors. Masks move with the "
        "shear, translation and rotation.",
        (
            VALUE_RANGE,
            positive_int(
                "num_ops", 2, f"operations applied to each batch, drawn from the {OPERATIONS} with repetition"
            ),
            factor_param(
                "factor",
                "strength of every operation, from 0 to 1: a number f draws it from 0 to f, a list "
                "[lower, upper] (each from 0 to 1, lower ≤ upper) from lower to upper",
                1.0,
                0.5,
            ),
            choice(
                "interpolation",
                ("nearest", "bilinear"),
                "bilinear",
                "interpolation of the operations that move pixels",
            ),
            seed_param(),
        ),
        shape_rule=_rand_augment_shape,
        main="factor",
        geometric=True,  # (Keras' supports_jit is True: left as the registry's default)
    ),
)
