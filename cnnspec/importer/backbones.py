"""A nested keras.applications model written as a zoo ``backbone`` item.

Keras' transfer-learning pattern nests a keras.applications body in the model
(``base = keras.applications.MobileNetV2(include_top=False)``). Written in line
(:mod:`cnnspec.importer.nested`) it is its hundreds of layers; when the zoo has the same
model, one item says it::

    - backbone: {spec: "zoo:mobilenet_v2", vars: {include_top: false}}
      trainable: false

The nested model's configuration name (``mobilenetv2_1.00_96``: keras.applications names its
models after the function) picks the zoo variants to try (those whose Keras name starts it,
the longest first: ``mobilenetv2`` before ``mobilenet``), with ``include_top: false`` and the
``pooling`` its last layer shows, then with its ``input_shape`` too. A candidate is written
only when the spec it makes compiles to the same model as the in-line import, node for node:
kind, every parameter (defaults included), input shapes, connections and ``trainable``
(:func:`same_model`). Anything else (another width, a body partly frozen, a zoo spec that
orders its layers otherwise) keeps the in-line spec, which is exact. Nothing here imports
TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from cnnspec.importer.graph import Node
from cnnspec.importer.items import Block, Item, Layer, Parallel, Repeat, Residual
from cnnspec.importer.source import import_error
from cnnspec.layers.params import ACTIVATION_ALIASES
from cnnspec.layers.registry import get_kind
from cnnspec.layers.reverse import commutative

#: The kind the item of a nested model to be written as a backbone has while the rest of the
#: spec is structured and folded: one input, one output, no parameters, never taken into a
#: combinator (an ``identity`` layer); :func:`as_backbones` writes the backbone in its place.
PLACEHOLDER_CLASS = "Identity"
#: The spec item kind (:mod:`cnnspec.spec.backbone`).
BACKBONE = "backbone"
#: The pooling a keras.applications body ends in, by its last layer's class (``pooling=…``).
_POOLING = {"GlobalAveragePooling2D": "avg", "GlobalMaxPooling2D": "max"}


@dataclass(frozen=True)
class Candidate:
    """A zoo variant, and the vars with which it may be the nested model."""

    zoo: str
    keras_name: str
    vars: dict[str, Any]

    @property
    def settings(self) -> dict[str, Any]:
        """The backbone item's settings (its ``spec`` and ``vars``)."""
        return {"spec": f"zoo:{self.zoo}", "vars": dict(self.vars)}


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def candidates(nested: list[Node]) -> dict[str, list[Candidate]]:
    """The zoo variants each nested model may be, in the order they are tried (by name)."""
    from cnnspec.analysis.zoo import catalog

    entries = sorted(catalog(), key=lambda entry: -len(_normal(entry.keras_name)))
    found: dict[str, list[Candidate]] = {}
    for node in nested:
        model_name = _normal(str(node.config.get("name") or ""))
        layers = node.config.get("layers") or []
        last = layers[-1].get("class_name") if layers and isinstance(layers[-1], dict) else None
        shape = _input_shape(layers)
        base: dict[str, Any] = {"include_top": False}
        if last in _POOLING:
            base["pooling"] = _POOLING[last]
        options = [base] + ([{**base, "input_shape": shape}] if shape is not None else [])
        found[node.name] = [
            Candidate(entry.name, entry.keras_name, settings)
            for entry in entries
            if _normal(entry.keras_name) and model_name.startswith(_normal(entry.keras_name))
            for settings in options
        ]
    return {name: options for name, options in found.items() if options}


def _input_shape(layers: list[Any]) -> list[int] | None:
    """The nested model's input shape, as its input layer saves it."""
    for layer in layers:
        if isinstance(layer, dict) and layer.get("class_name") == "InputLayer":
            shape = (layer.get("config") or {}).get("batch_shape")
            if isinstance(shape, list) and all(isinstance(d, int) for d in shape[1:]):
                return list(shape[1:])
    return None


def as_backbones(
    items: list[Item], blocks: list[Block], chosen: dict[str, Candidate]
) -> tuple[list[Item], list[Block]]:
    """The items (and block bodies) with each placeholder of a nested model in ``chosen``
    written as its backbone item."""

    def swap(item: Item) -> Item:
        if isinstance(item, Layer) and item.source in chosen and item.kind != BACKBONE:
            return Layer(
                BACKBONE,
                chosen[item.source].settings,
                item.source,
                item.id,
                item.inputs,
                item.trainable,
            )
        if isinstance(item, Residual):
            item.body = [swap(i) for i in item.body]
            item.shortcut = None if item.shortcut is None else [swap(i) for i in item.shortcut]
        elif isinstance(item, Parallel):
            item.branches = [[swap(i) for i in branch] for branch in item.branches]
        elif isinstance(item, Repeat):
            item.layers = [swap(i) for i in item.layers]
        return item

    for block in blocks:
        block.layers = [swap(i) for i in block.layers]
    return [swap(i) for i in items], blocks


def same_model(compiled: Any, reference: Any, reference_names: dict[str, str]) -> dict[str, str]:
    """The source layer → spec layer names of ``compiled`` when it is the model ``reference``
    (the in-line import, whose names are ``reference_names``) node for node; a SpecError where
    they differ.

    Both are the same graph whatever order each lists its layers in (a zoo spec may write a
    residual's body before the shortcut keras.applications saves first): the nodes are paired
    from the outputs back to the input, each pair's inputs in order (by their signatures where
    the merge is commutative, ``x + f(x)`` being ``f(x) + x``), and every pair must have the
    same kind, parameters, input shapes and (with weights) ``trainable``, and every node one
    partner."""
    ours, theirs = _Graph(compiled.ir), _Graph(reference.ir)
    if len(ours.nodes) != len(theirs.nodes):
        raise _differs(f"{len(ours.nodes)} layers against {len(theirs.nodes)}")
    if len(compiled.ir.outputs) != len(reference.ir.outputs):
        raise _differs("the outputs")
    partner: dict[str, str] = {}  # our node → its reference node
    work = list(zip(compiled.ir.outputs, reference.ir.outputs, strict=True))
    while work:
        one, other = work.pop()
        if one in partner:
            if partner[one] != other:  # (a node two readers pair with different nodes)
                raise _differs(f"the connections of {one!r}")
            continue
        if ours.signature[one] != theirs.signature[other]:
            raise _differs(f"{ours.label(one)} against {theirs.label(other)}")
        partner[one] = other
        work += list(zip(ours.ordered_inputs(one), theirs.ordered_inputs(other), strict=True))
    partner = {one: other for one, other in partner.items() if one != ours.input}
    if len(set(partner.values())) != len(partner) or len(partner) != len(ours.nodes):
        raise _differs("layers that lead to no output")
    ours_of = {other: one for one, other in partner.items()}
    return {source: ours_of[spec] for source, spec in reference_names.items() if spec in ours_of}


class _Graph:
    """A compiled model's nodes (the input's too), each with a signature: a digest of its
    kind, parameters, input shapes and ``trainable`` and, recursively, of its inputs'
    signatures (sorted for a commutative merge). Equal signatures: the same computation."""

    def __init__(self, ir: Any) -> None:
        self.input = ir.input_name
        self.nodes = {node.name: node for node in ir.nodes if node.name != self.input}
        self.signature: dict[str, str] = {self.input: "input"}
        for node in ir.nodes:  # (in an order where every input comes first)
            if node.name == self.input:
                continue
            inputs = [self.signature[i] for i in node.inputs]
            if self._commutative(node):
                inputs.sort()
            own = (node.kind, _params(node), _plain(node.input_shapes))
            trainable = node.trainable if node.counts.params else None  # (weightless: either)
            text = json.dumps([own, trainable, inputs], default=str, sort_keys=True)
            self.signature[node.name] = hashlib.sha256(text.encode()).hexdigest()

    @staticmethod
    def _commutative(node: Any) -> bool:
        kind = get_kind(node.kind)
        return kind is not None and commutative(kind)

    def ordered_inputs(self, name: str) -> list[str]:
        """The node's inputs in the order they pair in: as written, or by signature."""
        if name == self.input:
            return []
        node = self.nodes[name]
        inputs = list(node.inputs)
        return sorted(inputs, key=self.signature.__getitem__) if self._commutative(node) else inputs

    def label(self, name: str) -> str:
        node = self.nodes.get(name)
        return "the input" if node is None or name == self.input else f"{node.kind} {name!r}"


def _params(node: Any) -> Any:
    """A node's parameters as compared: each in the registry's canonical form (its
    :meth:`~cnnspec.layers.params.Param.normalize`: a padding of ``1`` is ``[[1, 1], [1, 1]]``),
    then :func:`_plain`, an activation by its one name (``swish`` is ``silu``) and an ``axis``
    counted from the front (Keras' ``axis=3`` of a 4-D tensor is ``axis=-1``): the zoo writes
    one, an imported layer the other."""
    params = _canonical(node.kind, dict(node.params))
    if isinstance(params.get("activation"), str):
        params["activation"] = ACTIVATION_ALIASES.get(params["activation"], params["activation"])
    rank = len(node.input_shapes[0]) + 1 if node.input_shapes else None
    axis = params.get("axis")
    if rank is not None and axis is not None:
        axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
        if all(isinstance(a, int) and not isinstance(a, bool) and -rank <= a < rank for a in axes):
            fronted = [a % rank for a in axes]
            params["axis"] = fronted if isinstance(axis, (list, tuple)) else fronted[0]
    return _plain(params)


def _canonical(kind_name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with each of the kind's parameters in its canonical form, as the back ends
    receive it (a compiled spec's values are valid: the front end checked them)."""
    kind = get_kind(kind_name)
    if kind is None:
        return params
    out = {}
    for key, value in params.items():
        param = kind.param_index.get(key)
        try:
            out[key] = value if param is None else param.normalize(value)
        except (TypeError, ValueError, KeyError, IndexError):
            out[key] = value  # (not a value the type reads: compared as written)
    return out


def _plain(value: Any) -> Any:
    """Tuples as lists and numbers as floats, recursively: a zoo spec's resolved values compare
    with an import's (``relu: 6`` is Keras' ``max_value=6.0``)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _differs(what: str) -> Exception:
    return import_error(f"the backbone spec is not the nested model: {what} differ")


__all__ = ["BACKBONE", "PLACEHOLDER_CLASS", "Candidate", "as_backbones", "candidates", "same_model"]
