"""Nested models written in line: a model used as one layer of another becomes its layers.

Keras' transfer-learning pattern saves a pretrained body as a model inside the model::

    base = keras.applications.MobileNetV2(include_top=False, weights="imagenet")
    base.trainable = False
    outputs = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(base(inputs, training=False)))

A spec has no nested models: its items are layers, blocks and combinators. The nested model's
layers are read as a model of their own (:func:`~cnnspec.importer.graph.read_graph`, so every
check of a model holds for them, nested models inside them included) and spliced into the outer
graph where the call stood: its input layer is dropped (its readers read the call's input), and
the readers of the call read the nested model's output layer. The spec's model then computes
what the source does, layer by layer.

- A layer keeps its name unless the outer model (or another nested model) has it already; then
  it is ``base/conv1`` (Keras names cannot hold ``/``, so no source layer is named so). The
  weights file stores each layer under its nested model's group: :attr:`Node.stored` is that
  path, by which ``--weights`` relabels it.
- ``trainable``: each layer keeps its own saved flag, by which Keras 3 trains its weights.
  Freezing a model (``base.trainable = False``) sets the flag of every layer in it, and a layer
  set trainable again after that trains, in the model as saved and as loaded. A layer saved
  without a flag (a configuration written by hand) takes its nested model's.
- ``base(x, training=False)`` (Keras' advice for a frozen body): a frozen batch norm runs in
  inference mode anyway (Keras defines it so), which the spec keeps; a trainable one, and a
  dropout, noise or augmentation layer, would act otherwise in the spec's training: a note
  names them. Any other fixed argument (``training=True``) is refused, as for a layer.
- Refused, with the JSON path inside the nested model: a nested model called more than once
  (shared weights), with several inputs or outputs, or of a custom class.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from cnnspec.errors import Diagnostic, SpecError
from cnnspec.importer.backbones import PLACEHOLDER_CLASS
from cnnspec.importer.graph import MODEL_CLASSES, Graph, Node, keras_module, read_graph
from cnnspec.layers.registry import LayerKind, kind_of_keras_class
from cnnspec.layers.reverse import shown

#: How many layer names a note lists before "…".
_LISTED = 3


def is_nested_model(node: Node) -> bool:
    """A Keras model saved as a layer of the model (not a custom class of the same name)."""
    return (
        node.class_name in MODEL_CLASSES
        and node.registered_name in (None, node.class_name)
        and keras_module(node.module)
        and isinstance(node.config.get("layers"), list)
    )


def nested_models(graph: Graph) -> list[Node]:
    """The nested models :func:`inline_models` writes in line (not those already refused), each
    with the input size of the tensor it is called on where it was built without one."""
    flagged = {d.path.split(".inbound_nodes")[0] for d in graph.problems}
    return [_called_size(n) for n in graph.nodes if is_nested_model(n) and n.path not in flagged]


def _called_size(node: Node) -> Node:
    """``node`` (a nested model) with its input layer's unknown sizes taken from the shape it is
    called on: keras.applications builds a body without an ``input_shape`` for any size,
    ``(None, None, 3)``, and the model around it fixes the size."""
    called = node.input_shape  # build_config's, batch axis first
    if not isinstance(called, list) or not called or isinstance(called[0], list):
        return node
    layers = node.config["layers"]
    for index, layer in enumerate(layers):
        config = layer.get("config") if isinstance(layer, dict) else None
        if not isinstance(config, dict) or layer.get("class_name") != "InputLayer":
            continue
        batch = config.get("batch_shape")
        if not isinstance(batch, list) or len(batch) != len(called) or None not in batch[1:]:
            return node
        filled = [batch[0], *(c if d is None else d for d, c in zip(batch[1:], called[1:], strict=True))]
        entry = {**layer, "config": {**config, "batch_shape": filled}}
        return replace(node, config={**node.config, "layers": [*layers[:index], entry, *layers[index + 1 :]]})
    return node


def inline_models(graph: Graph, keep: dict[str, Any] | None = None) -> Graph:
    """``graph`` with every nested model written as its layers (the module's rules). A graph
    without nested models is returned as it is. ``keep``: nested models (by name) to be
    written as a zoo backbone item instead (:mod:`cnnspec.importer.backbones`, the value its
    candidate): each stays one layer, an ``Identity`` placeholder with the model's
    ``trainable``, checked and noted as any nested model."""
    nested = {n.name: n for n in nested_models(graph)}
    if not nested:
        return graph
    taken = {n.name for n in graph.nodes}
    nodes: list[Node] = []
    problems = list(graph.problems)
    notes = list(graph.notes)
    output_of: dict[str, str] = {}  # a nested model's name → its output layer's name here
    for node in graph.nodes:
        node.inputs = [output_of.get(i, i) for i in node.inputs]
        if node.name not in nested:
            nodes.append(node)
            continue
        node = replace(nested[node.name], inputs=node.inputs)
        inner = _inner_graph(node)
        refused = _call_refusal(node)
        if refused is not None:
            problems.append(refused)
        # its layers, each with its own flag (Keras 3 trains a weight by its layer's flag,
        # which freezing the model set); a frozen model's flag where a layer has none
        frozen = node.config.get("trainable") is False
        inside = [
            replace(layer, config={**layer.config, "trainable": False})
            if frozen and "trainable" not in layer.config
            else layer
            for layer in inner.nodes
            if layer.name != inner.input_name
        ]
        kept = (keep or {}).get(node.name)
        if kept is not None:  # (its layers are the zoo spec's, checked against the in-line import's)
            nodes.append(_placeholder(node))
            notes.append(
                f"the nested model {shown(node.name)} ({node.class_name}) is the zoo's "
                f"{kept.zoo} (keras.applications.{kept.keras_name}): written as a backbone item"
            )
            notes += _inner_notes(node, inner)
            if node.call_kwargs.get("training") is False:
                notes += _inference_notes(node, inside)
            continue
        problems += inner.problems
        names = _names(node, inner, taken)
        written = [
            replace(
                layer,
                name=names[layer.name],
                inputs=[node.inputs[0] if i == inner.input_name else names[i] for i in layer.inputs],
                stored=f"{node.stored or node.name}/{layer.stored or layer.name}",
            )
            for layer in inside
        ]
        nodes += written
        output_of[node.name] = names[inner.output]
        layers = sum(not n.is_operation for n in inner.nodes) - 1
        renamed = [f"{shown(old)} as {shown(new)}" for old, new in names.items() if old != new]
        notes.append(
            f"the nested model {shown(node.name)} ({node.class_name}) is written as its {layers} "
            f"layer{'s' if layers != 1 else ''}, in line"
            + (f" (named like layers outside it: {', '.join(renamed[:_LISTED])}"
               f"{' …' if len(renamed) > _LISTED else ''})" if renamed else "")
        )  # fmt: skip
        notes += _inner_notes(node, inner)
        if node.call_kwargs.get("training") is False:
            notes += _inference_notes(node, written)
    return graph.rebuilt(nodes, problems, [output_of.get(o, o) for o in graph.outputs], notes)


def _inner_notes(node: Node, inner: Graph) -> list[str]:
    """The notes of the nested model's own reading (its input's dtype, the models nested in it),
    said of it."""
    return [f"in the nested model {shown(node.name)}: {note}" for note in inner.notes]


def _placeholder(node: Node) -> Node:
    """The one layer a nested model kept whole stands as while the spec is structured."""
    trainable = node.config.get("trainable") is not False
    config = {"name": node.name, "trainable": trainable}
    return Node(
        node.name, PLACEHOLDER_CLASS, config, node.inputs, node.path, node.input_shape, "keras.layers"
    )


def _inner_graph(node: Node) -> Graph:
    """The nested model's own graph (its nested models in line too), its JSON paths rooted
    at the nested model's entry; a refusal of it is said of the nested model."""
    try:
        inner = read_graph({"class_name": node.class_name, "config": node.config})
        if len(inner.outputs) > 1:
            raise SpecError.single(
                f"the model has {len(inner.outputs)} outputs; import writes a nested model with one "
                "output in line",
                None,
                "$.config.output_layers",
                code="import",
            )
        inner = inline_models(inner)
    except SpecError as exc:
        raise SpecError([_rooted(d, node) for d in exc.errors or exc.diagnostics], in_order=True) from None
    return inner.rebuilt(
        [replace(n, path=_path(n.path, node)) for n in inner.nodes],
        [_rooted(d, node) for d in inner.problems],
        inner.outputs,
    )


def _path(path: str, node: Node) -> str:
    """A JSON path of the nested model's configuration (``$.config.layers[2]``) as a path of
    the whole file (``$.config.layers[1].config.layers[2]``)."""
    return node.path + path[1:] if path.startswith("$") else node.path


def _rooted(diagnostic: Diagnostic, node: Node) -> Diagnostic:
    prefix = f"nested model {shown(node.name)}: "
    message = diagnostic.message if diagnostic.message.startswith(prefix) else prefix + diagnostic.message
    return replace(diagnostic, message=message, path=_path(diagnostic.path, node))


def _names(node: Node, inner: Graph, taken: set[str]) -> dict[str, str]:
    """Each inner layer's name in the outer graph: its own, or ``model/name`` where that is
    taken (``model/name_2`` … should that be too); reserves them in ``taken``."""
    names: dict[str, str] = {}
    for layer in inner.nodes:
        if layer.name == inner.input_name:
            continue
        name = layer.name
        if name in taken:
            name = base = f"{node.name}/{layer.name}"
            number = 1
            while name in taken:
                number += 1
                name = f"{base}_{number}"
        taken.add(name)
        names[layer.name] = name
    return names


def _call_refusal(node: Node) -> Diagnostic | None:
    """A keyword argument of the nested model's call that a spec cannot hold: anything but
    ``training=False`` (noted) and ``None`` values (Keras' unset arguments)."""
    for key, value in node.call_kwargs.items():
        if value is None or (key == "training" and value is False):
            continue
        where = f".{key}" if key.isidentifier() and len(key) <= 100 else ""
        return Diagnostic(
            f"layer {shown(node.name)} ({shown(node.class_name, str)}) cannot be imported: the nested "
            f"model is called with the fixed argument {shown(key, str)}={shown(value, json.dumps)}, "
            "which a spec item cannot express",
            None,
            f"{node.path}.inbound_nodes[0].kwargs{where}",
            "import",
            "call the nested model with its input only (or training=False) and save the model again",
        )
    return None


def _trait(node: Node, trait: str) -> bool:
    """Whether the registry kind of the node's Keras class has ``trait``."""
    kind: LayerKind | None = kind_of_keras_class(node.class_name)
    return kind is not None and bool(getattr(kind, trait))


def _listed(layers: list[Node]) -> str:
    names = ", ".join(shown(n.name) for n in layers[:_LISTED])
    return names + (f" and {len(layers) - _LISTED} more" if len(layers) > _LISTED else "")


def _inference_notes(node: Node, layers: list[Node]) -> list[str]:
    """What ``base(x, training=False)`` makes the source's layers do that the spec's do not."""
    notes = []
    norms = [n for n in layers if _trait(n, "batch_statistics") and n.config.get("trainable") is not False]
    if norms:
        notes.append(
            f"the source calls {shown(node.name)} with training=False, so its {len(norms)} trainable "
            f"batch norm(s) ({_listed(norms)}) normalize with their moving statistics while it trains; "
            "the spec's normalize each batch by its own (write trainable: false on them to keep "
            "the moving statistics, and their scale and offset, fixed)"
        )
    # (dropout, noise, random augmentation: the layers a call with training=False keeps off)
    random = [n for n in layers if _trait(n, "training_noise") or _trait(n, "augmentation")]
    if random:
        notes.append(
            f"the source calls {shown(node.name)} with training=False, so its {_listed(random)} "
            f"{'acts' if len(random) == 1 else 'act'} in training as in inference (no dropout, noise "
            "or augmentation); the spec's drop, add noise or augment while it trains (predictions "
            "are the same)"
        )
    return notes


__all__ = ["MODEL_CLASSES", "inline_models", "is_nested_model", "nested_models"]
