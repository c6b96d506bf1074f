"""Pixel scaling, TF-free, shared by the pipeline, the generated script and the lint: whether the
model rescales its input on every path (:func:`scales_every_path`, :func:`model_scales_input`),
the largest value of a file's integer pixels, and the scale the pipeline applies
(:func:`pipeline_scale`) and the range it feeds the model (:func:`fed_pixel_range`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Literal, TypeVar

from cnnspec.analysis.settings_types import SOURCE_PIXELS, DataConfig
from cnnspec.layers import REGISTRY

if TYPE_CHECKING:
    from cnnspec.ir import ModelIR


#: A layer of a model graph as the TF-free graph rules walk it (a spec's IR node or name, a
#: Keras layer or tensor): only handed back to the caller's functions (and hashed, by
#: :func:`scales_every_path`).
Step = TypeVar("Step", bound=Hashable)


#: A layer's part in :func:`scales_every_path`: the model's input, a layer that rescales values
#: (a registry kind whose ``value_range`` is ``affine``), one with weights, or one that does
#: neither (a random augmentation, a pooling, a merge …).
PixelRole = Literal["input", "scales", "weights", "passes"]


def scales_every_path(
    outputs: Iterable[Step], parents: Callable[[Step], Iterable[Step]], role: Callable[[Step], PixelRole]
) -> bool:
    """Whether a model graph scales its pixels itself, the one rule a spec
    (:func:`model_scales_input`) and a model file
    (:func:`cnnspec.reporting.model_graph.rescales_itself`) are read by: every path from the input
    meets a rescaling before any layer with weights (or an output). A branch that convolves the
    raw input while another rescales it sees unscaled pixels: the list order of the layers,
    which differs between a spec and the file built from it, never decides.

    ``outputs``: the model's output layers; ``parents(layer)``: the layers feeding it;
    ``role(layer)``: its :data:`PixelRole`. Walked backwards from every output and every layer
    with weights (those the outputs reach), through the layers that only pass values on: the
    pixels are the model's to scale unless such a walk reaches the input."""
    seen: set[Step] = set()
    todo = list(outputs)
    ends = list(todo)
    while todo:  # every layer the outputs reach, once (a graph may branch and merge)
        layer = todo.pop()
        if layer in seen:
            continue
        seen.add(layer)
        if role(layer) == "weights":
            ends.append(layer)
        todo.extend(parents(layer))
    walked: set[Step] = set()
    scaled = False
    for end in ends:
        # an output is walked from itself (it may be a rescaling, or pass the input on);
        # a layer with weights from what feeds it
        todo = [end] if role(end) != "weights" else list(parents(end))
        while todo:
            layer = todo.pop()
            if layer in walked:
                continue
            walked.add(layer)
            part = role(layer)
            if part == "input":
                return False  # unscaled pixels reach weights, or an output
            if part == "scales":
                scaled = True
            elif part == "passes":
                todo.extend(parents(layer))
            # (a layer with weights is an end of its own: its inputs are walked from it)
    return scaled


def model_scales_input(ir: ModelIR) -> bool:
    """The model scales its own input: a layer that rescales values (``rescaling``) on every
    path from the input before any layer with weights (:func:`scales_every_path`: after any
    number of random augmentation layers written in ``model:``; a rescaling after a
    convolution scales features, not pixels, and a branch that convolves the raw input sees
    unscaled pixels). ``data.rescale: auto`` then leaves the pixels as stored. (The
    ``augmentation`` section takes random layers alone: a rescaling there would scale the
    training images only, and is refused.) The same rule reads a bare model file
    (:func:`cnnspec.reporting.model_graph.rescales_itself`)."""
    by_name = {node.name: node for node in ir.nodes}

    def role(name: str) -> PixelRole:
        node = by_name.get(name)
        if node is None:  # the input (or a name no node has: unscaled, as the input is)
            return "input"
        kind = REGISTRY.get(node.kind)
        if kind is not None and kind.value_range == "affine":
            return "scales"
        return "weights" if node.counts.params else "passes"

    return scales_every_path(ir.outputs, lambda name: by_name[name].inputs if name in by_name else (), role)


#: ``data.rescale: auto``: the value of a full-intensity pixel, by the integer dtypes that say it.
PIXEL_MAX_OF_DTYPE: dict[str, float] = {"uint8": 255.0, "int8": 255.0, "uint16": 65535.0}


def integer_pixel_max(dtype: str, low: float, high: float) -> float | None:
    """The value of a full-intensity pixel in integer images of ``dtype`` (its name, as NumPy
    writes it) whose values lie in [``low``, ``high``]: what ``data.rescale: auto`` divides by.

    uint8 and int8 are 8-bit (255), uint16 16-bit (65535). Any other integer dtype (int16,
    int32, int64, uint32, …) says nothing of the depth, and 8-bit values are often stored so
    (NumPy's default integer is int64): 255 when every value lies in 0–255, else ``None`` (the
    caller asks for an explicit ``data.rescale``).
    """
    known = PIXEL_MAX_OF_DTYPE.get(dtype)
    if known is not None:
        return known
    return 255.0 if low >= 0 and high <= 255 else None


def pipeline_scale(
    data: DataConfig, ir: ModelIR, integer_pixels: bool, pixel_max: float = 255.0
) -> float | None:
    """The pixel multiplier the input pipeline applies (``None``: the values as stored).

    ``data.rescale``: a number is used as given, ``null`` never scales, ``auto`` maps integer
    pixels to [0, 1] (× 1/``pixel_max``: 255 for 8-bit images, 65535 for uint16, see
    :func:`integer_pixel_max`) unless the model scales its own input.
    """
    if data.rescale is None:
        return None
    if isinstance(data.rescale, float):
        return data.rescale
    if model_scales_input(ir):
        return None
    return 1.0 / pixel_max if integer_pixels else None


def fed_pixel_range(data: DataConfig, ir: ModelIR) -> tuple[float, float] | None:
    """The range of the pixel values the pipeline feeds the augmentation and the model, when it
    is known without reading the data (``None`` for ``npz`` files, except with an explicit
    ``data.rescale`` of 1/255, which states 8-bit pixels)."""
    known = SOURCE_PIXELS.get(data.kind)
    if known is None:
        if isinstance(data.rescale, float) and math.isclose(data.rescale, 1.0 / 255.0, rel_tol=1e-4):
            return (0.0, 1.0)
        return None
    top, integer = known
    scale = pipeline_scale(data, ir, integer)
    return (0.0, top * scale) if scale is not None else (0.0, top)
