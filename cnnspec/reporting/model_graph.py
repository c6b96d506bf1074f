"""A loaded Keras model read as a graph, without running it: its input shape, its layers in
order (nested models included), its convolutions, a layer found by name, each output's shape and
the activation it ends in (traced back through the layers that pass it on), the loss its
archive recorded, and whether the model rescales its own pixels. :class:`OutputKind` says how
a classifier's outputs are read (a binary unit or classes, logits or probabilities).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnspec.analysis.tasks import (
    keras_classification_loss,
    keras_loss_name,
    keras_loss_task,
    keras_regression_loss,
    losses_by_name,
    saved_loss,
)
from cnnspec.errors import UsageError, did_you_mean
from cnnspec.layers import REGISTRY, LayerKind, kind_of_keras_class
from cnnspec.training.modelfile import all_layers

#: Keras classes of the convolutions with a height × width kernel (the ones filter plots draw).
CONV_CLASSES = tuple(
    k.keras_class
    for k in REGISTRY.values()
    if k.kernel_layout is not None and k.kernel_layout.startswith("hw")
)


@dataclass
class OutputKind:
    """How to read the model's outputs: one sigmoid unit (binary) or classes; logits or not."""

    binary: bool = False
    from_logits: bool = False


def input_shape(model: Any) -> tuple[int, ...]:
    """The model's sample shape (without the batch axis); an export record's ``sample_shape``."""
    if hasattr(model, "sample_shape"):
        return tuple(int(d) for d in model.sample_shape)
    shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise UsageError(f"expected a model with a fixed input shape; received {(None, *shape)}")
    return tuple(int(d) for d in shape)


def layer_kind(layer: Any) -> LayerKind | None:
    """The registry's kind of a Keras layer (``None`` for classes cnnspec does not build)."""
    return kind_of_keras_class(type(layer).__name__)


def rescales_itself(model: Any) -> bool:
    """Whether the model rescales the pixel values itself: every path from its input meets a
    ``Rescaling`` before any layer with weights, by the rule
    :func:`~cnnspec.analysis.pixel_scaling.model_scales_input` reads a spec with
    (:func:`~cnnspec.analysis.pixel_scaling.scales_every_path`), on the model's graph: a nested
    model (a preprocessing ``Sequential`` inside, a keras.applications backbone that rescales
    its own input) scales where its own graph does, random augmentation layers pass the pixels
    on. The order of ``model.layers`` never decides: a branch that convolves the raw input
    sees unscaled pixels wherever Keras lists it."""
    from cnnspec.analysis.pixel_scaling import PixelRole, scales_every_path

    graph = _layer_graph(model)
    if graph is None:
        return False

    def role(layer: Any) -> PixelRole:
        if layer is _INPUT or type(layer).__name__ == "InputLayer":
            return "input"
        if _is_model(layer):  # a nested model: what its own graph does to the pixels
            if rescales_itself(layer):
                return "scales"
            return "weights" if getattr(layer, "weights", None) else "passes"
        kind = layer_kind(layer)
        if kind is not None and kind.value_range == "affine":
            return "scales"
        # (an op of a functional graph that is no layer, keras.ops.add …: no weights)
        return "weights" if getattr(layer, "weights", None) else "passes"

    outputs, parents = graph
    return scales_every_path(outputs, parents, role)


#: The model input of a graph read from a layer list (:func:`_layer_graph`): the first layer's
#: parent.
_INPUT = object()


def _layer_graph(model: Any) -> tuple[list[Any], Any] | None:
    """``model``'s layer graph as :func:`~cnnspec.analysis.pixel_scaling.scales_every_path` walks
    it: its output layers, and a function giving the layers that feed a layer (read from the
    tensors of the layer's calls, ``_keras_history``). A model whose graph cannot be read
    (never called) is read as the chain of its layers, in order; ``None`` without layers."""
    try:
        tensors = list(model.outputs or [])
    except (AttributeError, ValueError):
        tensors = []
    outputs = [history[0] for t in tensors if (history := getattr(t, "_keras_history", None))]
    if outputs and len(outputs) == len(tensors):

        def parents(layer: Any) -> list[Any]:
            found = []
            for node in getattr(layer, "_inbound_nodes", None) or []:
                for tensor in getattr(node, "input_tensors", None) or []:
                    history = getattr(tensor, "_keras_history", None)
                    if history:
                        found.append(history[0])
            return found

        return outputs, parents
    layers = list(getattr(model, "layers", None) or [])
    if not layers:
        return None
    before = {id(layer): layers[index - 1] if index else _INPUT for index, layer in enumerate(layers)}
    return [layers[-1]], lambda layer: [before[id(layer)]] if id(layer) in before else []


def conv_layers(model: Any) -> list[Any]:
    """The model's 2-D convolutions, in order."""
    return [layer for layer in all_layers(model) if type(layer).__name__ in CONV_CLASSES]


def find_layer(model: Any, name: str, choices: list[str], what: str) -> Any:
    """The layer called ``name``; an unknown name lists the valid ones. A layer inside a nested
    model (``keras.applications`` called as one layer) is not one: the hint says how to reach it."""
    if name not in choices:
        listing = ", ".join(choices[:40]) + (" …" if len(choices) > 40 else "")
        hint = did_you_mean(name, choices)
        inside = _nested_holding(model, name)
        if inside is not None:
            hint = (
                f"{name!r} is a layer of the nested model {inside!r}, which is one layer here; "
                f"`cnnspec import MODEL.keras -o m.yaml --weights` writes its layers in line, and "
                "`cnnspec build m.yaml -o flat.keras` makes a model file that has them (named as the "
                "spec names them)"
            )
        raise UsageError(
            f"expected the name of a {what}; received {name!r}. Valid: {listing or 'none'}",
            hint,
        )
    return model.get_layer(name)


def _nested_holding(model: Any, name: str) -> str | None:
    """The name of the nested model (at any depth) that has a layer ``name``, or None."""
    for layer in getattr(model, "layers", []):
        inner = getattr(layer, "layers", None)
        if not inner:
            continue
        if any(getattr(each, "name", None) == name for each in inner) or _nested_holding(layer, name):
            return str(layer.name)
    return None


#: The largest ``config.json`` read from a model archive for its recorded losses (a model's
#: config is kilobytes; a hostile archive must not make this read gigabytes)
_MAX_ARCHIVE_CONFIG = 16 * 1024 * 1024
#: What a refusal to guess a model's task tells the user to do.
TASK_SPEC_HINT = (
    "pass --spec SPEC, a spec that describes the model (its outputs and training.task or "
    "training.outputs.NAME.task), or use the model in its run folder"
)


@dataclass(frozen=True)
class ModelOutput:
    """One output of a model without a spec, as the task rules read an output: its name (the
    Keras output name), shape without the batch axis, activation and the regression loss the
    model file records for it (``None``: none recorded, or another loss). ``unread_loss``: the
    Keras name of a recorded loss that is neither a classification nor a regression loss
    cnnspec knows (:func:`~cnnspec.analysis.tasks.keras_loss_task`): no task is guessed for
    such an output (``None``: the loss, if any, says a task). ``classification_loss``: the Keras
    name of a recorded classification loss, and ``rebuilt_loss`` the stand-in spec's
    ``training.loss`` for it where cnnspec builds it as Keras does
    (:func:`~cnnspec.analysis.tasks.keras_classification_loss`; ``None``: crossentropy stands in).
    """

    name: str
    shape: tuple[int | None, ...]
    activation: str | None
    loss: str | None = None
    unread_loss: str | None = None
    classification_loss: str | None = None
    rebuilt_loss: str | dict[str, Any] | None = None


def archive_config(path: Path) -> dict[str, Any]:
    """The ``config.json`` of the Keras archive ``path`` as a dict (``{}`` when it cannot be
    read): read as JSON from the zip, no TensorFlow, no layer is built."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("config.json")
            if info.file_size > _MAX_ARCHIVE_CONFIG:
                return {}
            config = json.loads(archive.read(info))
    except (OSError, KeyError, ValueError, RecursionError, zipfile.BadZipFile):
        return {}
    return config if isinstance(config, dict) else {}


def recorded_loss_entries(config: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The saved loss entry (a name or a serialized Keras loss, as ``compile_config`` holds it;
    ``None``: none) a model archive's ``config`` records for each output in ``names`` (the
    outputs' layer names, ``output_names``). Keras saves the loss of a compiled model: one
    for every output, a dict by output name, or a list in order.

    A model whose outputs are a dict (``keras.Model(i, {"zeta": a, "alpha": b})``) is scored
    by the dict's keys, which Keras matches to the dict's outputs and never to layer names:
    every key is translated through the functional config's ``output_layers``, which maps it
    to its ``[layer, node, tensor]``. Read by key, a ``Dense(1)`` head compiled with ``mse``
    found no loss (a binary classifier), and a key that is another output's layer name
    (``{"b": Dense(name="a"), "a": Dense(name="b")}``) gave each output the other's loss."""
    loss = saved_loss(config)
    if losses_by_name(loss):
        inner = config.get("config")
        wanted = inner.get("output_layers") if isinstance(inner, dict) else None
        if isinstance(wanted, dict):  # dict outputs: the loss's keys are the dict's keys
            by_layer = {
                where[0]: loss[key]
                for key, where in wanted.items()
                if key in loss and isinstance(where, list) and where and isinstance(where[0], str)
            }
        else:  # list outputs: the loss's keys are the output names
            by_layer = dict(loss)
        return {name: by_layer.get(name) for name in names}
    if isinstance(loss, list):
        return {name: loss[index] if index < len(loss) else None for index, name in enumerate(names)}
    return dict.fromkeys(names, loss)


def _layer_activation(layer: Any, inputs: list[tuple[Any, ...]]) -> str | None:
    """The activation a Keras layer ends with (``None`` for a linear one or a layer without an
    activation): its ``activation`` setting, else what its registry kind's
    :meth:`~cnnspec.layers.registry.LayerKind.output_activation` says of it (a ``Softmax``
    layer over the last axis gives ``softmax``); ``inputs``: its input shapes without the
    batch axis."""
    config = layer.get_config() if hasattr(layer, "get_config") else {}
    activation = config.get("activation") if isinstance(config, dict) else None
    if isinstance(activation, dict):  # a serialized activation function
        activation = activation.get("config", {}).get("name") or activation.get("class_name")
    if isinstance(activation, str) and activation not in ("linear", ""):
        return activation
    kind = layer_kind(layer)
    if kind is None or not isinstance(config, dict):
        return None
    # (the Keras config holds the kind's own settings under their names: a Softmax's axis)
    return kind.output_activation({**config, "activation": None}, inputs)


def _innermost(tensor: Any) -> Any:
    """The tensor a layer computes for the model output ``tensor``, looked for inside nested
    models: a ``Sequential`` (or functional model) used as a layer is the tensor's
    ``_keras_history`` layer, and has no ``activation`` of its own, so its softmax was read as
    logits and applied a second time; its own output tensor (of the output the tensor is,
    recursively) says. ``None`` for a tensor no layer made."""
    history = getattr(tensor, "_keras_history", None)
    for _ in range(64):  # nested models nest finitely; the bound only guards a cyclic oddity
        if not history:
            return None
        layer = history[0]
        inner = getattr(layer, "outputs", None) if _is_model(layer) else None
        if not inner:
            return tensor
        index = history[2] if len(history) > 2 and isinstance(history[2], int) else 0
        tensor = inner[index] if 0 <= index < len(inner) else inner[-1]
        history = getattr(tensor, "_keras_history", None)
    return tensor


def _input_tensor(tensor: Any) -> Any:
    """The first input of the layer call that computed ``tensor`` (``None``: none known), in
    the graph the tensor belongs to (:func:`_innermost` of it, so that a nested model's output
    steps back into the nested model)."""
    tensor = _innermost(tensor)
    history = getattr(tensor, "_keras_history", None) if tensor is not None else None
    if not history:
        return None
    nodes = getattr(history[0], "_inbound_nodes", None) or []
    index = history[1] if len(history) > 1 and isinstance(history[1], int) else 0
    inputs = getattr(nodes[index], "input_tensors", None) if 0 <= index < len(nodes) else None
    return inputs[0] if inputs else None


def _tensor_layer(tensor: Any) -> Any:
    """The layer that computes ``tensor`` (inside nested models: :func:`_innermost`)."""
    inner = _innermost(tensor)
    history = getattr(inner, "_keras_history", None) if inner is not None else None
    return history[0] if history else None


def output_activation_of(tensor: Any) -> str | None:
    """The activation a model output ``tensor`` ends with, by the rule a spec's outputs are read
    by (:func:`~cnnspec.analysis.output_activation.trace_activation`): its layer's, or, through layers
    whose registry kind passes the activation on (a dropout, flatten or reshape after a softmax
    dense), the activation of the layer before them. Read at the last layer alone, a softmax
    followed by a flatten was taken for logits and predict applied softmax a second time."""
    from cnnspec.analysis.output_activation import trace_activation

    def own(step: Any) -> str | None:
        layer = _tensor_layer(step)
        if layer is None:
            return None
        source = _input_tensor(step)
        shapes = [tuple(source.shape[1:])] if getattr(source, "shape", None) is not None else []
        return _layer_activation(layer, shapes)

    def kind(step: Any) -> LayerKind | None:
        layer = _tensor_layer(step)
        return layer_kind(layer) if layer is not None else None

    def last_axis(step: Any) -> int | None:
        shape = getattr(_innermost(step), "shape", None)
        return shape[-1] if shape else None

    return trace_activation(tensor, own, kind, _input_tensor, last_axis)


def _is_model(layer: Any) -> bool:
    """Whether ``layer`` is a Keras model (a ``Sequential`` or functional model used as a
    layer), by its class's ancestry: no Keras import here, and a plain layer's ``outputs``
    attribute, where it has one, is not a graph to descend into."""
    return any(
        klass.__name__ in ("Model", "Functional", "Sequential") and klass.__module__.startswith("keras")
        for klass in type(layer).__mro__
    )


def model_outputs(model: Any, path: Path | None = None) -> list[ModelOutput]:
    """Each output of a Keras model, as :func:`spec_for_model` and :func:`model_tasks` read it
    (``path``: the model's file, whose recorded losses tell a regression head; the activation
    is the one the output ends with: :func:`output_activation_of`)."""
    layers = [getattr(t, "_keras_history", (None,))[0] for t in model.outputs]
    names = list(getattr(model, "output_names", None) or [])
    if len(names) != len(layers):
        names = [getattr(layer, "name", f"output_{i}") for i, layer in enumerate(layers)]
    entries = recorded_loss_entries(archive_config(path), names) if path is not None else {}
    outputs: list[ModelOutput] = []
    for name, tensor in zip(names, model.outputs):
        entry = entries.get(name)
        # a loss no task rule reads (a custom one): named, so the refusal can say which
        unread = None
        task = keras_loss_task(entry)
        if task == "unknown":  # (a string as the file spells it)
            unread = entry if isinstance(entry, str) else keras_loss_name(entry) or repr(entry)[:60]
        outputs.append(
            ModelOutput(
                name,
                tuple(None if d is None else int(d) for d in tensor.shape[1:]),
                output_activation_of(tensor),
                keras_regression_loss(entry),
                unread,
                keras_loss_name(entry) if task == "classification" else None,
                keras_classification_loss(entry),
            )
        )
    return outputs


def archive_single_classifier(path: Path) -> bool:
    """Whether the Keras archive ``path`` is plainly a single classifier, told from its
    ``config.json`` alone (no TensorFlow: predict's export path, for a record written before
    records said the task, ``output.task``): one output, a dense layer
    whose units, activation and recorded loss the task rules
    (:func:`~cnnspec.analysis.tasks.infer_task`) read as a classifier. ``False`` where the file
    does not say (another output layer: its shape needs Keras to tell)."""
    from cnnspec.analysis.tasks import infer_task

    config = archive_config(path)
    inner = config.get("config") if isinstance(config.get("config"), dict) else {}
    layers = [layer for layer in inner.get("layers") or [] if isinstance(layer, dict)]
    wanted = inner.get("output_layers")
    if isinstance(wanted, list) and wanted and not isinstance(wanted[0], list):
        wanted = [wanted]  # one output is saved as [name, node, tensor]
    if config.get("class_name") == "Sequential" and layers:
        output = layers[-1]
    elif isinstance(wanted, list) and len(wanted) == 1 and isinstance(wanted[0], list) and wanted[0]:
        output = next((lay for lay in layers if (lay.get("config") or {}).get("name") == wanted[0][0]), {})
    else:
        return False
    params = output.get("config") if isinstance(output.get("config"), dict) else {}
    units = params.get("units")
    if output.get("class_name") != "Dense" or not isinstance(units, int):
        return False
    activation = params.get("activation")
    activation = activation if isinstance(activation, str) and activation != "linear" else None
    name = str(params.get("name"))
    entry = recorded_loss_entries(config, [name])[name]
    if keras_loss_task(entry) == "unknown":
        return False  # a loss no task rule reads: no classifier is guessed (model_tasks refuses)
    return infer_task((units,), activation, keras_regression_loss(entry)) == "classification"
