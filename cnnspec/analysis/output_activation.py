"""The activation a model output ends in, traced back through the layers that pass it on
(:func:`trace_activation`), TF-free: over a spec's IR here (:func:`output_activation`), over a
Keras model's graph in :mod:`cnnspec.reporting.model_graph`. Whether an output gives probabilities or
logits decides its loss, its metrics and how its answers are read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from cnnspec.layers import REGISTRY

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.layers.registry import LayerKind


Traced = TypeVar("Traced")
#: How far :func:`trace_activation` walks back (a real head has a few pass-through layers; the
#: bound only guards a cyclic oddity of a hand-made graph).
_TRACE_LIMIT = 256


def trace_activation(
    start: Traced | None,
    activation: Callable[[Traced], str | None],
    kind: Callable[[Traced], LayerKind | None],
    source: Callable[[Traced], Traced | None],
    last_axis: Callable[[Traced], int | None],
) -> str | None:
    """The activation an output ends with, by the one rule a spec and a model file share: the
    layer that computes it says (``activation(layer)``: its own activation, ``None`` for a
    linear one), and a layer whose registry kind ``passes_activation`` (dropout, flatten,
    reshape …: the values of its input, unchanged) says what its input's layer says
    (``source(layer)``: that layer, ``None`` where there is none). ``kind(layer)``: the
    registry's kind (``None``: one cnnspec does not know, which passes nothing on). A softmax
    followed by a flatten read as logits was applied a second time by predict.

    ``last_axis(layer)``: the size of the last axis of the layer's output (``None``: unknown).
    A softmax is a distribution over its last axis; through a flatten or reshape that changes
    that axis (``(4, 4, 3)`` flattened to 48 values) the output is no distribution over the
    classes, so it is read as none. Row-major reshapes that keep the last axis's size keep its
    groups (``(4, 4, 3)`` → ``(16, 3)``)."""
    layer = start
    end = last_axis(start) if start is not None else None
    for _ in range(_TRACE_LIMIT):
        if layer is None:
            return None
        found = activation(layer)
        if found == "softmax" and (end is None or last_axis(layer) != end):
            return None
        if found is not None:
            return found
        layer_kind = kind(layer)
        if layer_kind is None or not layer_kind.passes_activation:
            return None
        layer = source(layer)
    return None


def output_activation(compiled: CompiledSpec, name: str) -> str | None:
    """The activation that produced the output ``name``, looking through layers that pass
    their input's activation on (dropout, reshape, ...: :func:`trace_activation`, the rule a
    model file's outputs are read by too); ``None`` when there is none."""
    by_name = {n.name: n for n in compiled.ir.nodes}

    def own(node: Any) -> str | None:
        kind = REGISTRY.get(node.kind)
        if kind is not None:  # its activation setting, or the activation the layer is (softmax)
            return kind.output_activation(node.params, list(node.input_shapes))
        act = node.params.get("activation")
        return act if isinstance(act, str) and act not in ("linear", "identity") else None

    return trace_activation(
        by_name.get(name),
        own,
        lambda node: REGISTRY.get(node.kind),
        lambda node: by_name.get(node.inputs[0]) if node.inputs else None,
        lambda node: node.shape[-1] if node.shape else None,
    )


def output_info(compiled: CompiledSpec) -> tuple[int, str | None]:
    """Units of the model's (first) output and the activation that produced it, if known."""
    ir = compiled.ir
    if not ir.outputs or not ir.nodes:
        return 0, None
    shape = ir.shape_of(ir.outputs[0]) or ()
    units = int(shape[-1]) if shape else 0
    return units, output_activation(compiled, ir.outputs[0])
