"""Lint rules: located warnings about specs that compile but would train badly (no TensorFlow).

Each rule takes a :class:`~cnnspec.analysis.compiled.CompiledSpec` and returns warnings; :data:`RULES` lists
them and :func:`lint` runs them all. ``compile_doc`` adds their warnings to
``CompiledSpec.warnings``, so ``cnnspec validate`` (``--strict`` fails on them), ``train``,
``inspect``, ``build`` and ``codegen`` all report the same ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from cnnspec.errors import Diagnostic, Note
from cnnspec.layers import REGISTRY

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.analysis.settings_types import DataConfig
    from cnnspec.ir import Node

Range = tuple[float, float]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


def _range_text(bounds: Range) -> str:
    return f"[{_number(bounds[0])}, {_number(bounds[1])}]"


def _same(a: Range, b: Range) -> bool:
    scale = max(abs(a[0]), abs(a[1]), abs(b[0]), abs(b[1]), 1e-12)
    return all(math.isclose(x, y, rel_tol=1e-4, abs_tol=1e-6 * scale) for x, y in zip(a, b, strict=True))


def _origin(data: DataConfig, compiled: CompiledSpec) -> str:
    """How the pipeline produced its pixel values, in words."""
    from cnnspec.analysis.pixel_scaling import pipeline_scale
    from cnnspec.analysis.settings_types import SOURCE_PIXELS

    source = data.kind
    if data.rescale is None:
        return f"{source} pixels as stored (data.rescale: null)"
    if isinstance(data.rescale, float):
        return f"{source} pixels × {_number(data.rescale)} (data.rescale)"
    integer = SOURCE_PIXELS.get(data.kind, (0.0, True))[1]
    scale = pipeline_scale(data, compiled.ir, integer)
    if scale is None:
        why = "the model has its own rescaling layer" if integer else "they are stored as floats"
        return f"{source} pixels as stored (data.rescale: auto; {why})"
    return f"{source} pixels × 1/255 (data.rescale: auto)"


def value_range_warnings(compiled: CompiledSpec, read: tuple[Range, str] | None = None) -> list[Diagnostic]:
    """Augmentation layers with a ``value_range`` (random_brightness, random_contrast, ...) must
    be told the range of the pixels they receive: Keras assumes [0, 255], and on images scaled
    to [0, 1] random_brightness then adds up to ±factor × 255 and clips, which trains at chance.
    ``read``: the range the pipeline feeds, measured by training once it read data whose range
    is not known before (an ``npz`` file), and how it came about.

    The range is followed from the data source through ``data.rescale`` and any ``rescaling``
    layers before the layer. Nothing is reported when it is not known without reading the data
    (an ``npz`` file, a layer after a convolution) or when the spec has no ``data`` or
    ``training`` section (it does not say how it is fed).
    """
    ir = compiled.ir
    checked = [n for n in (*ir.augmentation, *ir.nodes) if "value_range" in n.params]
    if not checked or not ({"data", "training"} & set(compiled.doc.data)):
        return []
    # Here, not at the top: most specs stop above, and a cold validate need not load it.
    from cnnspec.analysis.pixel_scaling import fed_pixel_range
    from cnnspec.analysis.settings import data_config

    data = data_config(compiled)
    fed = fed_pixel_range(data, ir) if data is not None else None
    if data is None or (fed is None and read is None):
        return []
    if fed is not None:
        origin = _origin(data, compiled)
    elif read is not None:  # the range training read (an npz file: not known before reading)
        fed, origin = read
    else:
        return []
    warnings: list[Diagnostic] = []
    after_augmentation = _walk(ir.augmentation, ir.input_name, fed, origin, warnings)
    _walk(ir.nodes, ir.input_name, after_augmentation, origin, warnings)
    return warnings


def _walk(
    nodes: list[Node], start: str, fed: Range | None, origin: str, warnings: list[Diagnostic]
) -> Range | None:
    """Follow the value range along ``nodes`` (from tensor ``start``); warn at each mismatch.
    Returns the range of the last node's output."""
    ranges: dict[str, tuple[Range, str] | None] = {start: (fed, origin) if fed is not None else None}
    last: tuple[Range, str] | None = ranges[start]
    for node in nodes:
        known = ranges.get(node.inputs[0]) if len(node.inputs) == 1 else None
        out: tuple[Range, str] | None = None
        if known is not None:
            bounds, how = known
            if "value_range" in node.params:
                _check(node, bounds, how, warnings)
            behaviour = REGISTRY[node.kind].value_range
            if behaviour == "affine":
                scale, offset = float(node.params["scale"]), float(node.params.get("offset") or 0.0)
                low, high = sorted((bounds[0] * scale + offset, bounds[1] * scale + offset))
                out = ((low, high), f"{how}, then layer {node.name!r} ({node.kind})")
            elif behaviour == "keeps":
                out = known
        ranges[node.name] = last = out
    return last[0] if last is not None else None


def _check(node: Node, bounds: Range, how: str, warnings: list[Diagnostic]) -> None:
    value = node.params["value_range"]
    try:
        given = (float(value[0]), float(value[1]))
    except (TypeError, ValueError, IndexError):
        return  # the schema reports a malformed value_range
    if bounds[0] >= bounds[1]:
        # a scale of 0 makes every pixel one value: no value_range fits (Keras needs lower <
        # upper), so the warning points at the scale instead of suggesting [v, v]
        warnings.append(
            Diagnostic(
                f"expected pixels of more than one value for {node.kind}'s value_range; received "
                f"the constant {_number(bounds[0])}: {how}",
                loc=node.loc,
                path=node.path,
                code="value-range",
                hint="a scale of 0 maps every pixel to one value: give the rescaling a scale other than 0",
                severity="warning",
            )
        )
        return
    if _same(given, bounds):
        return
    default = next((p.default for p in REGISTRY[node.kind].params if p.name == "value_range"), None)
    note = " (Keras' default)" if default is not None and _same(given, tuple(map(float, default))) else ""
    warnings.append(
        Diagnostic(
            f"expected value_range {_range_text(bounds)}, the range of its input: {how}; "
            f"received {_range_text(given)}{note}",
            loc=node.loc,
            path=node.path,
            code="value-range",
            hint=f"set value_range: {_range_text(bounds)} on this {node.kind} layer",
            severity="warning",
        )
    )


def class_count_warnings(compiled: CompiledSpec) -> list[Diagnostic]:
    """A softmax with more units than the data has classes (``data.classes``, relabelled 0 …
    n-1, or a named dataset's: :func:`~cnnspec.analysis.datafit.known_classes`) keeps outputs
    no image is labelled with, which can still win the argmax after a short run. Fewer units
    than a named dataset's classes, or a list of one class, is an error (validate's and
    train's); fewer than ``data.classes`` lists of a folder, CSV or npz file is warned of (its
    data may yet refuse an entry, or find one class listed twice).

    Only a single output of one value per class (rank 1, more than one unit: one sigmoid unit
    goes with binary_crossentropy, which the loss checks) is compared."""
    ir = compiled.ir
    if len(ir.outputs) != 1 or not ir.nodes or ("data" not in compiled.doc.data):
        return []
    shape = ir.output_shapes[0]
    if shape is None or len(shape) != 1 or shape[0] is None or shape[0] <= 1:
        return []
    from cnnspec.analysis.datafit import known_classes, output_loc
    from cnnspec.analysis.settings import data_config

    data = data_config(compiled)
    known = known_classes(compiled, data) if data is not None else None
    units, count = int(shape[0]), known.count if known is not None else 0
    # (fewer units than an exact count is an error; data.classes of a source whose classes only
    # its data names may yet be refused or find a class listed twice: either way, said here)
    if known is None or count < 2 or units == count or (known.exact and units < count):
        return []
    node = ir.node(ir.outputs[0])
    where = ("data", "classes") if data is not None and data.classes else ("data", "source")
    listed = compiled.doc.loc(where)
    what = "data.classes lists" if where[-1] == "classes" else f"the {data.kind if data else ''} data has"
    said = f"{what} {count} classes{f' ({listed})' if listed else ''}"
    return [
        Diagnostic(
            f"expected {count} output units, one per class of the data; the model has {units} "
            f"outputs for {count} classes",
            loc=output_loc(compiled, node, units) or listed,  # (at a --set that gave the width)
            path=node.path,
            code="class-count",
            hint=f"set the last dense layer to units: {count}",
            severity="warning",
            notes=(Note(said, listed, ".".join(where)),),
        )
    ]


def cpu_gap_warnings(compiled: CompiledSpec) -> list[Diagnostic]:
    """A layer TensorFlow's own CPU kernels cannot run with its parameters (the registry's
    ``cpu_gap``): the model builds, and fails in its first batch on a machine without a GPU
    whose oneDNN is off, where ``train`` refuses it; oneDNN's kernels and a GPU's run it. One
    warning per layer."""
    warnings = []
    for node in compiled.ir.nodes:
        gap = REGISTRY[node.kind].cpu_refusal(node.params)
        if gap is not None:
            phrase, hint = gap
            warnings.append(
                Diagnostic(
                    f"{phrase}: on a CPU with oneDNN off (TF_ENABLE_ONEDNN_OPTS=0, the default of "
                    "some CPUs) and no GPU, this layer fails in its first batch (train refuses it "
                    "there before the data is loaded)",
                    loc=node.loc,
                    path=node.path,
                    code="cpu-kernel",
                    hint=hint,
                    severity="warning",
                )
            )
    return warnings


#: Every lint rule, in the order their warnings are reported.
RULES: tuple[Callable[[CompiledSpec], list[Diagnostic]], ...] = (
    value_range_warnings,
    class_count_warnings,
    cpu_gap_warnings,
)


def lint(compiled: CompiledSpec) -> list[Diagnostic]:
    """The warnings of every rule in :data:`RULES`."""
    return [warning for rule in RULES for warning in rule(compiled)]
