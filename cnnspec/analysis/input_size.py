"""Why layers the user did not write refuse the input: the smallest square input that fits.

A 32×32 input on a spec that extends ``zoo:inception_v3`` (or holds it as a backbone) fails
deep inside the packaged files, at a pooling layer whose height would be 0. The layer is not
the user's to change, the input is: so such an error gets a note saying how large a square
input the model accepts, found by resolving the spec again at other input sizes (about a
tenth of a second each for the largest zoo model, on an error path only), and where the input
shape was set.
"""

from __future__ import annotations

import copy
from dataclasses import replace

from cnnspec.errors import Diagnostics, Loc, Note, format_path
from cnnspec.layers.params import MAX_SIZE
from cnnspec.spec.loader import SourceDoc
from cnnspec.spec.resolve import Resolver
from cnnspec.spec.varrefs import input_shape_origin

#: Resolutions one explanation may cost: one at the largest side it looks at, doubling from
#: the input up to it (at most 8 times), then halving the gap.
MAX_PROBES = 24
#: How much larger than the refused side the search looks (a side 256 times the input's).
MAX_GROWTH = 2**8
#: Specs whose resolution walked more items and iterations than this get no explanation: each
#: probe resolves the whole spec again (the largest zoo model walks about 1,400).
MAX_STEPS = 5_000
#: The code of the resolver's shape errors (:meth:`Resolver.layer`).
SHAPE = "shape"
#: How the note this module puts on an error begins.
NOTE_START = "the smallest square input this model accepts is "


def explain_small_input(
    doc: SourceDoc,
    diags: Diagnostics,
    input_shape: tuple[int, ...] | None,
    *,
    allow_outside: bool,
    steps: int = 0,
) -> None:
    """Put a note on each shape error located outside ``doc``'s own file (anywhere in a zoo
    model's: all of it is packaged), naming the smallest
    square input the model accepts and where the input shape was set. Nothing happens when
    there is no such error, the input is not an image (height, width, channels), no larger
    square input would fit either (the error is not about size), the sizes that fit are not all
    those from some side up (a U-Net's concatenations want a multiple of 8: "the smallest"
    would mislead), or the spec is too large to resolve again up to :data:`MAX_PROBES` times
    (``steps``: what its resolution walked, :data:`MAX_STEPS`)."""
    # a zoo model validated by name (`validate zoo:vgg16 --set vars.input_shape=…`) is all
    # packaged layers: none of its own file's is the user's to change either
    packaged = doc.zoo_variant is not None
    outside = [
        index
        for index, d in enumerate(diags.items)
        if d.severity == "error"
        and d.code == SHAPE
        and d.loc is not None
        and (packaged or d.loc.file != doc.file)
    ]
    if not outside or input_shape is None or not _is_image_shape(input_shape) or steps > MAX_STEPS:
        return
    height, width, channels = input_shape
    # the shorter side is the one known to fail: a square of the longer one may fit
    side = smallest_square_side(doc, channels, min(height, width), allow_outside=allow_outside)
    if side is None:
        return
    loc, path = input_origin(doc)
    where = f" ({path}, {loc})" if loc is not None else f" ({path})"
    note = Note(
        f"{NOTE_START}{side}×{side}×{channels}; the input is {list(input_shape)}{where}",
        loc,
        path,
    )
    for index in outside:
        diagnostic = diags.items[index]
        diags.items[index] = replace(diagnostic, notes=(note, *diagnostic.notes))


def smallest_square_side(doc: SourceDoc, channels: int, refused: int, *, allow_outside: bool) -> int | None:
    """The smallest side ``s`` above ``refused`` (0: any) for which ``[s, s, channels]`` passes every
    shape check of ``doc``'s model, or ``None`` when none does within :data:`MAX_PROBES`
    resolutions. Where shape checks only get easier as the input grows (valid convolutions and
    poolings), a doubling search and then a bisection find it; the side above it is tried too,
    and a model it does not fit (one that wants a multiple of some stride) gets ``None``."""
    probes = 0
    _, origin = input_origin(doc)  # where each probe writes its shape
    var = origin.removeprefix("vars.") if origin.startswith("vars.") else None

    def fits(side: int) -> bool:
        nonlocal probes
        probes += 1
        return _fits(doc, [side, side, channels], allow_outside, var)

    largest = min(MAX_SIZE, max(refused, 1) * MAX_GROWTH)
    if largest <= refused or not fits(largest):
        return None  # the error is not about size (one probe tells), or no valid size fits
    low, high = refused, max(refused * 2, refused + 1)  # from 0 the first probe is 1
    while high < largest and not fits(high):
        low, high = high, high * 2
    high = min(high, largest)
    while high - low > 1 and probes < MAX_PROBES:
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle
    if high - low != 1 or (high < largest and not fits(high + 1)):
        return None  # not found, or the sizes that fit have gaps: no side is "the smallest"
    return high


def input_origin(doc: SourceDoc) -> tuple[Loc | None, str]:
    """Where the input shape was set (:func:`cnnspec.spec.varrefs.input_shape_origin`), its
    path written out: ``vars.input_shape`` or ``input.shape``."""
    loc, path = input_shape_origin(doc)
    return loc, format_path(path)


def _fits(doc: SourceDoc, shape: list[int], allow_outside: bool, var: str | None = None) -> bool:
    """Whether ``doc``'s model passes every shape check with an input of ``shape``. The shape
    goes where the input shape comes from: the var ``var`` that ``input.shape`` reads
    (:func:`input_origin`) when it holds one whole shape (which other layers may read too),
    else ``input.shape`` itself."""
    data = copy.deepcopy(doc.data)
    declared = data.get("vars")
    if var is not None and isinstance(declared, dict) and _is_image_shape(declared.get(var)):
        declared[var] = shape
    else:
        data["input"] = {**(data.get("input") or {}), "shape": shape}
    probe = doc.with_data(data)
    diags = Diagnostics()
    Resolver(probe, diags, allow_outside=allow_outside).resolve()
    return not any(d.code == SHAPE for d in diags.errors)


def _is_image_shape(shape: object) -> bool:
    return (
        isinstance(shape, tuple | list)
        and len(shape) == 3
        and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
    )
