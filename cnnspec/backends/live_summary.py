"""The inspect summary computed from a live Keras model (for `build --summary` and tests)."""

from __future__ import annotations

import math
from typing import Any

from cnnspec.ir import ModelIR


def _count(weights: list[Any]) -> int:
    return sum(math.prod(w.shape) for w in weights)


def live_summary(model: Any, ir: ModelIR) -> dict[str, Any]:
    """Same keys as :func:`cnnspec.analysis.report.summary`, but shapes and parameter counts
    are read from the built model; MACs and groups come from the IR (Keras has neither)."""
    rows = []
    for node in ir.nodes:
        layer = model.get_layer(node.name)
        output = layer.output
        rows.append(
            {
                "name": node.name,
                "kind": node.kind,
                "group": "/".join(node.group),
                "inputs": list(node.inputs),
                "output_shape": list(output.shape),
                "params": layer.count_params(),
                "trainable_params": _count(layer.trainable_weights),
                "macs": node.counts.macs,
                "file": node.loc.file if node.loc else None,
                "line": node.loc.line if node.loc else None,
            }
        )
    outputs = model.outputs
    shapes = [list(o.shape) for o in outputs]
    return {
        "name": model.name,
        "input_shape": list(model.inputs[0].shape),
        "output_shape": shapes[0] if len(shapes) == 1 else shapes,
        "total_params": model.count_params(),
        "trainable_params": _count(model.trainable_weights),
        "non_trainable_params": _count(model.non_trainable_weights),
        "macs": ir.totals.macs,
        "layers": rows,
    }
