"""The pixels a model was trained on and the scale a command applies to the images it feeds it:
the rescale of an image file (:func:`file_rescale`; a run's pipeline settings are training's
own, :func:`cnnspec.training.pipeline.pipeline_settings`), the range of the training pixels a
run or an export recorded, and the notes a command adds where the images it was given are on
another scale.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnspec.errors import UsageError
from cnnspec.reporting.model_graph import rescales_itself
from cnnspec.reporting.run import Run

if TYPE_CHECKING:
    pass


def file_rescale(
    run: Run, model: Any, integer_pixels: bool = True, pixels: np.ndarray | None = None
) -> float | None:
    """The multiplier for images read from files (0–255 integers) or ``.npy`` arrays.

    With a spec: what the pipeline did to integer-pixel data (``data.rescale``: auto → 1/the
    pixels' full intensity unless the model has its own rescaling layer, which then takes a
    file's pixels as the run's training images came: scaled to [0, 1] for an embedded float
    dataset, :func:`trained_on_unit_floats`; as they are otherwise). Float arrays are taken
    as already scaled. Without a spec: the same, unless the model begins with a Rescaling layer.
    ``pixels``: the integer batch to scale, whose dtype and values tell its depth as training's
    (:func:`pixel_depth`); without it, 8-bit (image files decode to 8-bit pixels).
    """
    if not integer_pixels and (run.config is None or run.config.data.rescale == "auto"):
        return None
    if run.compiled is None or run.config is None:
        return None if rescales_itself(model) else 1.0 / pixel_depth(pixels)
    from cnnspec.analysis.pixel_scaling import model_scales_input
    from cnnspec.training.data_checks import rescale_factor

    auto = run.config.data.rescale == "auto"
    if integer_pixels and auto and model_scales_input(run.compiled.ir) and trained_on_unit_floats(run):
        # the model's rescaling layer saw float images (digits, shapes: [0, 1]), never 0–255: a
        # file's integer pixels are scaled to that range first, or every answer is wrong
        return 1.0 / pixel_depth(pixels)
    # the depth counts only where data.rescale: auto divides by it (a uint16 .npy: by 65535)
    divides = integer_pixels and auto and not model_scales_input(run.compiled.ir)
    stand_in = SimpleNamespace(  # rescale_factor reads only these two
        integer_pixels=integer_pixels, pixel_max=pixel_depth(pixels) if divides else 255.0
    )
    return rescale_factor(run.config, stand_in, run.compiled)  # type: ignore[arg-type]


#: The sources whose images are floats in [0, 1] (cnnspec's embedded datasets): the only ones
#: whose range is known. A float npz may hold 0–255 (what a model's own 1/255 rescaling is for).
UNIT_FLOAT_SOURCES = ("digits", "shapes")


def trained_on_unit_floats(run: Run) -> bool:
    """Whether the run trained on images known to be floats in [0, 1] (an embedded dataset,
    recorded as float in lock.json): a model's rescaling layer of such a run never saw 0–255."""
    data = (run.lock or {}).get("data")
    dtype = data.get("dtype") if isinstance(data, dict) else None
    kind = run.config.data.kind if run.config is not None else None
    return isinstance(dtype, str) and dtype.startswith("float") and kind in UNIT_FLOAT_SOURCES


def trained_pixel_range(run: Run) -> tuple[float, float] | None:
    """The range of the pixels the run trained on, as float ``--data`` or ``.npy`` arrays must
    come to match them (before the ``data.rescale`` a float array gets too): its lock.json's
    ``pixel_range``, [0, 1] for an embedded float dataset of a run trained before it was
    recorded, the scaled range of integer training images (:func:`_integer_trained_range`);
    ``None`` where it is unknown (a float npz may hold 0–255)."""
    if run.recorded_range is not None:
        return run.recorded_range
    data = (run.lock or {}).get("data")
    recorded = range_of_record(data.get("pixel_range") if isinstance(data, dict) else None)
    if recorded is not None:
        return recorded
    if trained_on_unit_floats(run):
        return (0.0, 1.0)
    dtype = data.get("dtype") if isinstance(data, dict) else None
    return _integer_trained_range(run, dtype) if isinstance(dtype, str) else None


def range_of_record(recorded: Any) -> tuple[float, float] | None:
    """A pixel range as a record keeps it (``[low, high]``, finite numbers), else ``None``."""
    if (
        isinstance(recorded, list)
        and len(recorded) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in recorded)
        and all(math.isfinite(v) for v in recorded)
    ):
        return float(recorded[0]), float(recorded[1])
    return None


def _integer_trained_range(run: Run, dtype: str) -> tuple[float, float] | None:
    """The range a float array must have to be fed as the run's integer training images
    (lock.json's ``dtype``: image files and 8-bit arrays are uint8) were: ``data.rescale: auto``
    divided them by their depth into [0, 1] but takes float arrays as they are, so [0, 1]; a
    model that rescales itself, a numeric ``data.rescale`` (applied to floats too) or ``null``
    saw them as stored, so [0, their depth]. ``None``: no spec, a float or unknown dtype, or a
    depth the dtype does not tell (int64 pixels under a numeric rescale)."""
    from cnnspec.analysis.pixel_scaling import PIXEL_MAX_OF_DTYPE, model_scales_input

    try:
        integer = np.issubdtype(np.dtype(dtype), np.integer)
    except TypeError:  # a damaged record: the range is unknown
        return None
    if not integer or run.config is None or run.compiled is None:
        return None
    auto = run.config.data.rescale == "auto"
    if auto and not model_scales_input(run.compiled.ir):
        return (0.0, 1.0)
    # auto trained other integer dtypes only on 0–255 values (integer_pixel_max refuses others)
    depth = PIXEL_MAX_OF_DTYPE.get(dtype, 255.0 if auto else None)
    return (0.0, depth) if depth is not None else None


def float_scale_notes(
    run: Run, found: tuple[float, float] | None, what: str, scored: str = "the figures on them"
) -> list[str]:
    """The note of float pixels ranging ``found`` (their lowest and highest finite values:
    :func:`~cnnspec.training.data_arrays.pixel_range`; ``what``: ``--data X``, ``the .npy arrays``)
    far outside the range the run trained on (:func:`trained_pixel_range`): float arrays are
    taken as already scaled, so 0–255 pixels given to a run trained on [0, 1] were scored as
    they are, their figures meaningless, unsaid. Far: beyond the trained range by half its width."""
    trained = trained_pixel_range(run)
    if trained is None or found is None:
        return []
    low, high = found
    lowest, highest = trained
    margin = 0.5 * max(highest - lowest, 1e-6)
    if lowest - margin <= low and high <= highest + margin:
        return []
    fix = "divide them by 255 (pixels of 0–255)" if high > 1.5 and highest <= 1.5 else "scale them"
    return [
        f"the pixels of {what} range {low:g} to {high:g}, far outside the {lowest:g} to {highest:g} "
        f"{run.name} trained on: float pixels are taken as already on the run's scale, so {scored} "
        f"may be meaningless; {fix} to the run's range"
    ]


def pixel_depth(pixels: np.ndarray | None) -> float:
    """The value of a full-intensity pixel of integer ``pixels``, as training tells it from an npz
    file's images (:func:`~cnnspec.analysis.pixel_scaling.integer_pixel_max`): 255 for 8-bit, 65535 for
    uint16 (``None``: image files, 8-bit). A :class:`UsageError` when neither dtype nor values tell."""
    from cnnspec.analysis.pixel_scaling import integer_pixel_max

    if pixels is None:
        return 255.0
    low, high = (float(pixels.min()), float(pixels.max())) if pixels.size else (0.0, 0.0)
    depth = integer_pixel_max(pixels.dtype.name, low, high)
    if depth is None:
        raise UsageError(
            f"expected 8-bit (0–255) or uint16 integer pixels, as training takes them; received "
            f"{pixels.dtype.name} from {low:g} to {high:g}",
            "store the array as uint8 or uint16, or as floats scaled as the training images were",
        )
    return depth
