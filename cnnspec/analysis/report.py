"""Inspection reports: per-layer rows and totals, as plain data (JSON) for the CLI and tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cnnspec.errors import Diagnostics, Loc, format_path
from cnnspec.ir import ModelIR
from cnnspec.layers.registry import Counts

BYTES_PER_PARAM = 4
#: Models with more parameters are refused before anything is built (``--max-params`` raises it).
DEFAULT_MAX_PARAMS = 500_000_000


def batched(shape: tuple[int, ...] | None) -> list[int | None] | None:
    """A shape with the batch axis as ``None`` (JSON ``null``), as Keras prints it."""
    return None if shape is None else [None, *shape]


def shape_text(shape: list[int | None] | list[list[int | None] | None] | None) -> str:
    """A batched shape as Keras prints it: ``(None, 28, 28, 1)``; ``?`` when unknown.

    A list of shapes, the :func:`summary` ``output_shape`` of a model with several outputs, is
    each shape so, comma-separated: ``(None, 16, 16, 2), (None, 1)`` (not Python's lists)."""
    if shape is None:
        return "?"
    # A shape's axes are ints or None; a list of shapes holds lists (a whole shape unknown: None)
    if any(isinstance(d, (list, tuple)) for d in shape):
        return ", ".join(shape_text(s) for s in shape)  # type: ignore[arg-type]
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def summary(
    ir: ModelIR, frozen: Iterable[str] | None = None, rate_scale: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """The ``inspect --format json`` document.

    ``frozen``: the layers frozen when training starts (default: those ``trainable: false``
    freezes). Their weights count as frozen and, as Keras counts them, non-trainable.
    ``rate_scale``: the factors of the learning rate when training starts
    (``learning_rate_scale``): where there are some, every layer has its ``learning_rate_scale``
    (1 for the rate itself).

    Shapes are batched (:func:`batched`: a list with ``null`` for the batch axis, ``null`` for
    a shape unknown). ``output_shape`` is the model's one output shape, or, for a model with
    several outputs, a list of them, one per output in the model's order (consumers read
    both forms: it stays so). Each layer's ``file`` and ``line`` are where the spec wrote it,
    ``file`` written as the diagnostics' ``file`` is (a zoo model's or backbone's packaged
    file when the layer came from there); both ``null`` when unknown."""
    frozen_names = {n.name for n in ir.nodes if not n.trainable} if frozen is None else set(frozen)
    totals = ir.totals_with(frozen_names)
    frozen_total = sum(n.counts.trainable for n in ir.nodes if n.name in frozen_names)
    outputs = [batched(s) for s in ir.output_shapes]
    return {
        "name": ir.name,
        "input_shape": batched(ir.input_shape),
        "output_shape": outputs[0] if len(outputs) == 1 else outputs,
        "total_params": totals.params,
        "trainable_params": totals.trainable,
        "non_trainable_params": totals.non_trainable,
        "frozen_params": frozen_total,
        "macs": totals.macs,
        "layers": [
            {
                "name": node.name,
                "kind": node.kind,
                "group": "/".join(node.group),
                "inputs": list(node.inputs),
                "output_shape": batched(node.shape),
                "params": node.counts.params,
                "trainable_params": 0 if node.name in frozen_names else node.counts.trainable,
                "frozen_params": node.counts.trainable if node.name in frozen_names else 0,
                "macs": node.counts.macs,
                # `line` alone could point into an extended zoo model or a backbone's file
                "file": node.loc.file if node.loc else None,
                "line": node.loc.line if node.loc else None,
                # The effective parameters: written, per-kind `defaults:`, then the kind's own.
                "config": _plain(node.params),
                **({"learning_rate_scale": rate_scale.get(node.name, 1.0)} if rate_scale else {}),
            }
            for node in ir.nodes
        ],
    }


def _plain(value: Any) -> Any:
    """A parameter value as JSON data (tuples as lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def check_size(ir: ModelIR, max_params: int, diags: Diagnostics, loc: Loc | None = None) -> None:
    """Refuse models over ``max_params`` before anything is built."""
    total: Counts = ir.totals
    if total.params > max_params:
        size = total.params * BYTES_PER_PARAM
        diags.error(
            f"expected at most {max_params:,} parameter{'s' if max_params != 1 else ''}; this model "
            f"has {total.params:,} (about {human_bytes(size)} as float32)",
            loc,
            format_path(("model",)),
            code="too-large",
            hint="raise the limit with --max-params if you mean it",
        )


def human_bytes(size: float) -> str:
    """``512 B``, ``3.4 MB``: decimal units, and a power of ten past petabytes (the size of a
    model refused as too large read "184460061941461184.0 TB")."""
    scaled = size
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if scaled < 1000:
            return f"{scaled:.1f} {unit}" if unit != "B" else f"{int(scaled)} B"
        scaled /= 1000
    return f"{size:.1e} bytes"


#: The units of :func:`human_count`, smallest first.
COUNT_UNITS = (("k", 10**3), ("M", 10**6), ("G", 10**9), ("T", 10**12))


def human_count(value: int) -> str:
    """``value`` (a count of parameters or MACs) with two decimals in the smallest unit that
    keeps the rounded number under 1000: 999.99k, and 1.00M for 999,995 (not ``1000.00k``);
    1.29T. Counts under 1,000 are written in full."""
    if value < 1000:
        return str(value)
    for unit, scale in COUNT_UNITS[:-1]:
        text = f"{value / scale:.2f}"
        # the rounded text decides: 999.995k rounds up to a thousand, which is the next unit's
        if float(text) < 1000:
            return f"{text}{unit}"
    unit, scale = COUNT_UNITS[-1]
    return f"{value / scale:.2f}{unit}"
