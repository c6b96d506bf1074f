"""Normalisation kinds: batch, layer and group normalisation (over the channel axis)."""

from __future__ import annotations

from cnnspec.layers.params import flag, number, positive_int
from cnnspec.layers.registry import Counts, LayerKind, Params, Shape, ShapeError, register, same_shape


def _affine(params: Params, channels: int) -> int:
    return channels * (int(params["center"]) + int(params["scale"]))


def _batch_counts(params: Params, inputs: list[Shape], output: Shape) -> Counts:
    channels = inputs[0][-1]
    return Counts(_affine(params, channels), 2 * channels, 0)


def _affine_counts(params: Params, inputs: list[Shape], output: Shape) -> Counts:
    return Counts(_affine(params, inputs[0][-1]), 0, 0)


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

_ANY_RANK: tuple[int, ...] = (1, 2, 3, 4)

register(
    LayerKind(
        "batch_norm",
        "norm",
        "BatchNormalization",
        "Batch normalisation over the last (channel) axis.",
        BATCH_PARAMS,
        same_shape,
        _batch_counts,
        ranks=_ANY_RANK,
    ),
    LayerKind(
        "layer_norm",
        "norm",
        "LayerNormalization",
        "Layer normalisation over the last axis.",
        LAYER_PARAMS,
        same_shape,
        _affine_counts,
        ranks=_ANY_RANK,
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
        ranks=_ANY_RANK,
    ),
)
