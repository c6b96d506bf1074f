"""A saved Keras model configuration → a checked graph of layers (JSON in, data out).

Reads the Keras 3 format only (``inbound_nodes`` as ``{"args": …, "kwargs": …}`` with
``__keras_tensor__`` references). Keras 2 / tf.keras configurations, shared layers, dangling
references and cycles are refused with the JSON path of the offending value. A nested model is
one node here; :mod:`cnnspec.importer.nested` reads it with this module and writes it in line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from cnnspec.errors import Diagnostic, SpecError
from cnnspec.importer.source import import_error
from cnnspec.layers.reverse import dtype_policy, shown

#: The most layers a configuration may list (EfficientNetV2-L has ~1,000).
MAX_LAYERS = 20_000
#: The longest name a JSON path spells as ``.name`` (a longer one is quoted, and clipped).
_KEY_LIMIT = 100
#: The name of a model whose configuration gives none.
UNNAMED = "imported"
_KERAS2_HINT = (
    "load the model with Keras 3 and save it again as .keras (model.save('model.keras')), "
    "or import its keras.applications name with keras:NAME"
)


@dataclass
class Node:
    """One layer of the source model."""

    name: str
    class_name: str
    config: dict[str, Any]
    inputs: list[str]
    path: str  # JSON path of the layer entry
    input_shape: Any = None
    module: str | None = None
    registered_name: str | None = None
    constants: list[Any] = field(default_factory=list)  # constant call arguments (raw ops)
    #: the first call's keyword arguments that are not layer outputs (``training``, ``mask``),
    #: as saved; :mod:`cnnspec.importer.mapping` refuses any that changes what the layer does
    call_kwargs: dict[str, Any] = field(default_factory=dict)
    #: a layer of a nested model written in line (:mod:`cnnspec.importer.nested`): where the
    #: weights file keeps it, its models' names and its own (``base/conv1``); None: at the top
    stored: str | None = None

    @property
    def is_operation(self) -> bool:
        """A raw operation (``x + 3.0``) that Keras records in the graph, not a layer."""
        return bool(self.module) and str(self.module).startswith("keras.src.ops")


@dataclass
class Graph:
    """The layers in a topological order, the model input and its outputs."""

    name: str
    nodes: list[Node]
    input_name: str
    input_shape: list[int]
    output: str  # the first output (the only one of most models)
    problems: list[Diagnostic] = field(default_factory=list)  # layers that cannot be expressed
    consumers: dict[str, list[str]] = field(default_factory=dict)
    #: what of the source the spec does not keep, each with its effect (the import report's notes)
    notes: list[str] = field(default_factory=list)
    #: every output layer, in the source model's output order (``[output]`` for one output)
    outputs: list[str] = field(default_factory=list)
    #: the names the source gives its outputs (a dict's keys; None: listed), as ``outputs``
    output_keys: list[str | None] = field(default_factory=list)

    def node(self, name: str) -> Node:
        return self._index[name]

    def rebuilt(
        self,
        nodes: list[Node],
        problems: list[Diagnostic],
        outputs: list[str],
        notes: list[str] | None = None,
    ) -> Graph:
        """This graph with other nodes (a rewrite's), their problems and outputs (and notes);
        its name, input and output names kept."""
        return Graph(
            self.name,
            nodes,
            self.input_name,
            self.input_shape,
            outputs[0],
            problems,
            notes=self.notes if notes is None else notes,
            outputs=outputs,
            output_keys=self.output_keys,
        )

    def __post_init__(self) -> None:
        if not self.outputs:
            self.outputs = [self.output]
        self.output = self.outputs[0]
        self._index = {n.name: n for n in self.nodes}
        self.consumers = {n.name: [] for n in self.nodes}
        for n in self.nodes:
            for source in n.inputs:
                if n.name not in self.consumers[source]:
                    self.consumers[source].append(n.name)


def _history(tensor: Any, path: str) -> tuple[str, int, int]:
    if not (isinstance(tensor, dict) and tensor.get("class_name") == "__keras_tensor__"):
        raise import_error(
            "expected a layer input (a __keras_tensor__ reference); received a constant or another value",
            path,
            hint="layers fed constants or Python values cannot be expressed as spec items",
        )
    config = tensor.get("config")
    history = config.get("keras_history") if isinstance(config, dict) else None
    where = f"{path}.config.keras_history"
    if not (isinstance(history, list) and len(history) == 3 and isinstance(history[0], str)):
        raise import_error("expected keras_history: [layer, node, tensor]", where)
    for i, part in ((1, "node"), (2, "tensor")):
        value = history[i]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise import_error(
                f"expected keras_history: [layer, node, tensor] with a whole {part} index ≥ 0; "
                f"received {shown(value, json.dumps)}",
                f"{where}[{i}]",
                hint="the configuration is truncated or edited by hand",
            )
    return history[0], history[1], history[2]


def _tensors(value: Any, path: str, constants: list[tuple[str, Any]]) -> list[tuple[str, int, int, str]]:
    """The layer inputs in a call's arguments; constant arguments (path, value) go to ``constants``."""
    if isinstance(value, list):
        out = []
        for i, item in enumerate(value):
            out += _tensors(item, f"{path}[{i}]", constants)
        return out
    if not (isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"):
        constants.append((path, value))
        return []
    return [(*_history(value, path), path)]


def _is_tensor(value: Any) -> bool:
    """A layer output (a ``__keras_tensor__`` reference), alone or in a flat list of them (a
    mask per input); not recursive: a hand-edited list nested thousands deep is no tensor."""
    items = value if isinstance(value, list) else [value]
    return any(isinstance(v, dict) and v.get("class_name") == "__keras_tensor__" for v in items)


def _is_keras2(config: dict[str, Any]) -> bool:
    inner = config.get("config")
    layers = inner.get("layers") if isinstance(inner, dict) else None
    nested_lists = isinstance(layers, list) and any(
        isinstance(layer, dict)
        and isinstance(layer.get("inbound_nodes"), list)
        and layer["inbound_nodes"]
        and isinstance(layer["inbound_nodes"][0], list)
        for layer in layers
    )
    return (
        nested_lists
        or config.get("class_name") == "Model"
        or str(config.get("keras_version", "3")).startswith("2")
    )


def _layer_list(config: dict[str, Any]) -> list[Any]:
    inner = config.get("config")
    if not isinstance(inner, dict) or not isinstance(inner.get("layers"), list):
        raise import_error("expected a model configuration with config.layers", "$.config.layers")
    if len(inner["layers"]) > MAX_LAYERS:
        raise import_error(f"{len(inner['layers'])} layers; the limit is {MAX_LAYERS}", "$.config.layers")
    return inner["layers"]


def _entry(layer: Any, path: str) -> tuple[str, str, dict[str, Any]]:
    if not isinstance(layer, dict):
        raise import_error("expected a layer object", path)
    class_name = layer.get("class_name")
    config = layer.get("config")
    if not isinstance(class_name, str) or not isinstance(config, dict):
        raise import_error("expected class_name and config", path)
    name = layer.get("name", config.get("name"))
    if not isinstance(name, str) or not name:
        raise import_error("expected a layer name", f"{path}.name")
    return name, class_name, config


#: Keras' model classes, as a saved configuration names a model used as a layer.
MODEL_CLASSES = ("Functional", "Sequential")


def keras_module(module: object) -> bool:
    """A module of Keras itself (none saved: Keras' own too): a nested Functional is saved under
    keras.src.models.functional. A module that is no text (a hand-edited file) is not."""
    return module is None or (isinstance(module, str) and (module == "keras" or module.startswith("keras.")))


def _custom_model(config: dict[str, Any], class_name: str) -> None:
    """Refuse a model saved as a custom class of Keras' name (``module: mypkg``, a registered
    name), as a nested one is refused: a class is Keras' own only when it is saved under Keras'
    module without a registered name (Keras registers its Functional under its own name). Its
    configuration may list layers, but what its own ``call`` does no configuration says."""
    module, registered = config.get("module"), config.get("registered_name")
    own_module = keras_module(module)
    if own_module and registered in (None, class_name):
        return
    origin = f"{module}.{class_name}" if module else str(registered)
    inner = config.get("config")
    name = inner.get("name") if isinstance(inner, dict) else None
    raise import_error(
        f"the model {_named(str(name or UNNAMED), class_name)} cannot be imported: a custom class "
        f"({shown(origin, str)}), not Keras' own {class_name}",
        "$.registered_name" if own_module else "$.module",
        hint="import reads models of Keras' own classes (keras.Model(inputs, outputs), keras.Sequential) "
        "and never runs a class of the file's; build the model with one of them and save it again",
    )


def _called_shape(inbound: list[Any]) -> Any:
    """The shape of the one tensor a layer's first call reads, as the call saved it: a model
    nested in the model saves no build_config. ``None`` where it is not that."""
    args = inbound[0].get("args") if inbound and isinstance(inbound[0], dict) else None
    tensor = args[0] if isinstance(args, list) and len(args) == 1 else None
    config = tensor.get("config") if isinstance(tensor, dict) else None
    shape = config.get("shape") if isinstance(config, dict) else None
    return shape if isinstance(shape, list) else None


def _input_shape(config: dict[str, Any], path: str) -> list[int]:
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    if not isinstance(shape, list) or len(shape) < 2:
        raise import_error(
            "expected batch_shape [null, ...] on the input layer", f"{path}.config.batch_shape"
        )
    dims = shape[1:]
    for axis, size in enumerate(dims, start=1):
        if size is not None and not (isinstance(size, int) and not isinstance(size, bool) and size > 0):
            # (a size of 0 or below, or no whole number, is no size at all: not "unknown")
            raise import_error(
                f"expected each input size to be a whole number ≥ 1; received {shown(size, json.dumps)} "
                f"in {shown(dims, json.dumps)}, an invalid size",
                f"{path}.config.batch_shape[{axis}]",
                hint="the configuration is truncated or edited by hand",
            )
    if None in dims:
        raise import_error(
            f"expected a fully known input shape; received {shown(dims, str)}",
            f"{path}.config.batch_shape",
            hint="the spec language needs the input size (rebuild the model with a fixed input_shape)",
        )
    return dims


#: The input dtype a spec's model takes (``keras.Input``'s default, ``backend.floatx()``).
_INPUT_DTYPE = "float32"
#: How an InputLayer spells its dtype with the precision it rounds inputs to (``float16`` …);
#: the others hold whole numbers (``uint8``, ``int32``, ``bool``) or no numbers at all.
_FLOAT_DTYPE = re.compile(r"^(b?float\d+|float8_\w+)$")
_WHOLE_DTYPE = re.compile(r"^(u?int\d+|bool)$")
_REBUILD_HINT = "rebuild the model with keras.Input(shape) (dense, float32, any batch size) and save it again"


def _input_notes(config: dict[str, Any], path: str) -> list[str]:
    """What the spec's input does not keep of the source's InputLayer, each said with its
    effect (the import report's notes): a dtype other than float32 (the source casts its inputs
    to it: ``uint8`` rounds and clips them) and a fixed batch size. A sparse or ragged input
    is refused: a spec's model takes one dense tensor, and its layers would compute otherwise."""
    for key, what in (("sparse", "a sparse tensor"), ("ragged", "a ragged tensor")):
        value = config.get(key)
        if value is not None and value is not False:
            raise import_error(
                f"the model input takes {what} ({key}: {shown(value, json.dumps)}); "
                "a spec's model takes a dense tensor",
                f"{path}.config.{key}",
                hint=_REBUILD_HINT,
            )
    notes: list[str] = []
    dtype = config.get("dtype")
    name = dtype_policy(dtype)  # Keras 3 saves a name; a DTypePolicy object is read as one too
    if dtype is not None and not isinstance(name, str):
        raise import_error(
            f"expected the input's dtype as a name such as float32; received {shown(dtype, json.dumps)}",
            f"{path}.config.dtype",
            hint="the configuration is truncated or edited by hand",
        )
    if name is not None and name != _INPUT_DTYPE:
        spelt = shown(name, str)
        if _WHOLE_DTYPE.match(name):
            effect = "does not round or clip its inputs first"
        elif name == "float64":
            effect = "reads float64 inputs at float32 precision"
        elif _FLOAT_DTYPE.match(name):
            effect = f"does not round its inputs to {spelt} first"
        else:
            effect = f"does not convert its inputs to {spelt} first"
        notes.append(
            f"the input's dtype {spelt} is not kept: the spec's model takes {_INPUT_DTYPE} and {effect}"
        )
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    batch = shape[0] if isinstance(shape, list) and shape else None
    if batch is not None:
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise import_error(
                f"expected the batch size null or a whole number ≥ 1; received {shown(batch, json.dumps)}",
                f"{path}.config.batch_shape[0]",
                hint="the configuration is truncated or edited by hand",
            )
        notes.append(
            f"the input's batch size {batch} is not kept: the spec's model takes batches of any size "
            f"(the source's only batches of {batch})"
        )
    return notes


def read_graph(config: dict[str, Any]) -> Graph:
    """Check a configuration's format and references and return its layer graph."""
    if _is_keras2(config):
        raise import_error(
            "this configuration is from Keras 2 / tf.keras (nested-list inbound_nodes or class Model)",
            "$",
            hint=_KERAS2_HINT,
        )
    class_name = config.get("class_name")
    if class_name in MODEL_CLASSES:
        _custom_model(config, class_name)
    if class_name == "Sequential":
        return _sequential(config)
    if class_name is None:  # (a bare get_config is read as its model: Source.__post_init__)
        keys = ", ".join(shown(str(key)) for key in list(config)[:6]) + (", …" if len(config) > 6 else "")
        raise import_error(
            "expected a Keras model configuration (a model.to_json() file, a .keras file's config.json "
            f"or a model.get_config() JSON, with its layers); received an object of keys {keys or 'none'}",
            "$",
            hint="save the model with model.save('model.keras') and import that file",
        )
    if class_name != "Functional":
        raise import_error(
            f"expected a Functional or Sequential model; received class_name {shown(class_name)}",
            "$.class_name",
            hint="subclassed models have no configuration to read; save a functional model",
        )
    layers = _layer_list(config)
    nodes: list[Node] = []
    seen: dict[str, str] = {}
    problems: list[Diagnostic] = []
    for index, layer in enumerate(layers):
        path = f"$.config.layers[{index}]"
        name, layer_class, layer_config = _entry(layer, path)
        if name in seen:
            raise import_error(
                f"layer name {shown(name)} is used twice (first at {seen[name]})", f"{path}.name"
            )
        seen[name] = path
        inbound = layer.get("inbound_nodes") or []
        if not isinstance(inbound, list):
            raise import_error("expected a list", f"{path}.inbound_nodes")
        if len(inbound) > 1:
            # its first call is read as any layer's (so the graph stays whole and every other
            # refused layer is named in the same error); the layer itself is refused
            problems.append(
                _located(
                    f"layer {_named(name, layer_class)} is called {len(inbound)} times (shared weights): "
                    "a spec layer is called once",
                    path,
                )
            )
        inputs: list[str] = []
        constants: list[tuple[str, Any]] = []
        call_kwargs: dict[str, Any] = {}
        if inbound:
            call = inbound[0]
            if not isinstance(call, dict) or "args" not in call:
                raise import_error("expected {args, kwargs}", f"{path}.inbound_nodes[0]", hint=_KERAS2_HINT)
            for source, node_index, tensor_index, tensor_path in _tensors(
                call["args"], f"{path}.inbound_nodes[0].args", constants
            ):
                if node_index != 0 or tensor_index != 0:
                    problems.append(
                        _located(
                            f"layer {_named(name, layer_class)} reads output {tensor_index} of call "
                            f"{node_index} of {shown(source)}: shared layers and multi-output layers cannot "
                            "be expressed",
                            tensor_path,
                        )
                    )
                inputs.append(source)
            if constants:
                problems.append(
                    _located(
                        f"layer {_named(name, layer_class)} is called with a constant, "
                        "not only layer outputs",
                        constants[0][0],
                    )
                )
            kwargs = call.get("kwargs") or {}
            if not isinstance(kwargs, dict):
                problems.append(
                    _located(
                        f"layer {_named(name, layer_class)}: expected its call's keyword arguments as an "
                        f"object; received {shown(kwargs, json.dumps)}",
                        f"{path}.inbound_nodes[0].kwargs",
                    )
                )
            elif any(_is_tensor(v) for v in kwargs.values()):
                problems.append(
                    _located(f"layer {_named(name, layer_class)} takes tensors as keyword arguments", path)
                )
            else:
                call_kwargs = kwargs
        build = layer.get("build_config") or {}
        nodes.append(
            Node(
                name,
                layer_class,
                layer_config,
                inputs,
                path,
                (build.get("input_shape") if isinstance(build, dict) else None)
                or (_called_shape(inbound) if layer_class in MODEL_CLASSES else None),
                layer.get("module"),
                layer.get("registered_name"),
                [value for _, value in constants],
                call_kwargs,
            )
        )
    inner = config["config"]
    inputs_ref = _refs(inner.get("input_layers"), "$.config.input_layers")
    outputs_ref = _refs(inner.get("output_layers"), "$.config.output_layers")
    for ref, path, _ in (*inputs_ref, *outputs_ref):
        if ref not in seen:
            raise import_error(f"{shown(ref)} names no layer of the model", path)
    if len(inputs_ref) != 1:
        raise import_error(
            f"the model has {len(inputs_ref)} inputs; import reads a model with one input",
            "$.config.input_layers",
            hint="a spec has one input (its `input:`): a model with several inputs cannot be written "
            "as a spec",
        )
    if not outputs_ref:
        raise import_error("the model has no outputs", "$.config.output_layers")
    if len(outputs_ref) > 1 and isinstance(inner.get("output_layers"), dict):
        # Keras' order of a dict's outputs (model.outputs, output_names) is by name, not as given
        outputs_ref = sorted(outputs_ref, key=lambda ref: str(ref[2]))
    outputs = [ref for ref, _, _ in outputs_ref]
    for earlier, (ref, path, _) in enumerate(outputs_ref):
        if ref in outputs[:earlier]:
            raise import_error(
                f"the model returns layer {shown(ref)} twice", path, hint="a spec names each output once"
            )
    try:
        ordered = _topological(nodes)
        _check_reach(ordered, inputs_ref[0][0], outputs)
    except SpecError:
        if problems:
            # a refused layer (shared, fed a constant) leaves a reference or a path broken:
            # the refusal is the reason, not the broken graph it leads to
            raise refusal(problems) from None
        raise
    input_node = next(n for n in ordered if n.name == inputs_ref[0][0])
    if input_node.class_name != "InputLayer":
        raise import_error(f"the model input {shown(input_node.name)} is not an InputLayer", input_node.path)
    shape = _input_shape(input_node.config, input_node.path)
    notes = _input_notes(input_node.config, input_node.path)
    for (_, _, key), what, does in ((inputs_ref[0], "input", "takes"), (outputs_ref[0], "output", "returns")):
        if key is not None and (what == "input" or len(outputs_ref) == 1):
            # keras.Model({"img": x}, {"cls": y}): the source's calls use the dict
            notes.append(
                f"the model's {what} is named {shown(key)} (a dict): the spec's model {does} the "
                "tensor itself, not a dict"
            )
    keys = [key for _, _, key in outputs_ref]
    if len(outputs_ref) > 1 and any(key is not None for key in keys):
        listed = ", ".join(shown(key) for key in keys)
        notes.append(
            f"the model's outputs are named {listed} (a dict): the spec's model returns a list in "
            "this order (Keras' order of a dict's outputs, by name), not a dict"
        )
    if len(ordered) < 2:
        raise import_error("expected at least an input and one layer", "$.config.layers")
    return Graph(
        str(inner.get("name") or UNNAMED),
        ordered,
        input_node.name,
        shape,
        outputs[0],
        problems,
        notes=notes,
        outputs=outputs,
        output_keys=keys,
    )


def _named(name: str, class_name: str) -> str:
    """``'conv' (Conv2D)``: a layer as a message names it, each part clipped (:func:`shown`)."""
    return f"{shown(name)} ({shown(class_name, str)})"


def _located(message: str, path: str) -> Diagnostic:
    return Diagnostic(message, None, path, "import", None)


def _layer_index(diagnostic: Diagnostic) -> int:
    head = diagnostic.path.partition("layers[")[2].partition("]")[0]
    return int(head) if head.isdecimal() else 0


def refusal(problems: list[Diagnostic]) -> SpecError:
    """One error naming every layer that cannot be imported (the first says how many), in the
    order of the layers."""
    problems = sorted(problems, key=_layer_index)
    if len(problems) > 1:
        problems[0] = Diagnostic(
            f"{len(problems)} layers cannot be imported; {problems[0].message}",
            None,
            problems[0].path,
            "import",
            "nothing was written",
        )
    return SpecError(problems, in_order=True)


def _refs(value: Any, path: str) -> list[tuple[str, str, str | None]]:
    """A model's inputs or outputs as (layer, JSON path, name): Keras 3 saves one as ``[layer,
    node, tensor]``, several as a list of those, and named ones (``keras.Model({"img": x},
    {"cls": y})``) as an object of them by name (the name: None for unnamed ones)."""
    if isinstance(value, dict):
        out = []
        for key, refs in value.items():
            plain = key.isidentifier() and len(key) <= _KEY_LIMIT
            where = f"{path}.{key}" if plain else f"{path}[{shown(key, json.dumps)}]"
            out += [(layer, at, key) for layer, at, _ in _refs(refs, where)]
        return out
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return [(value[0], f"{path}[0]", None)]
    if not isinstance(value, list):
        raise import_error("expected a list of [layer, node, tensor] (or an object of them by name)", path)
    out = []
    for i, ref in enumerate(value):
        if not (isinstance(ref, list) and ref and isinstance(ref[0], str)):
            raise import_error("expected [layer, node, tensor]", f"{path}[{i}]")
        out.append((ref[0], f"{path}[{i}]", None))
    return out


def _topological(nodes: list[Node]) -> list[Node]:
    """The nodes in an order where every input comes first (the saved order when it is one)."""
    index = {n.name: n for n in nodes}
    for n in nodes:
        for source in n.inputs:
            if source not in index:
                raise import_error(
                    f"layer {shown(n.name)} reads {shown(source)}, which is not a layer of the model",
                    f"{n.path}.inbound_nodes[0].args",
                    hint="the configuration is truncated or edited by hand",
                )
    state: dict[str, int] = {}
    order: list[Node] = []
    for start in nodes:
        if state.get(start.name):
            continue
        stack: list[tuple[Node, int]] = [(start, 0)]
        state[start.name] = 1
        while stack:
            node, i = stack.pop()
            if i < len(node.inputs):
                stack.append((node, i + 1))
                nxt = index[node.inputs[i]]
                mark = state.get(nxt.name, 0)
                if mark == 1:
                    raise import_error(
                        f"layers {shown(node.name)} and {shown(nxt.name)} feed each other (a cycle)",
                        f"{node.path}.inbound_nodes[0].args",
                    )
                if mark == 0:
                    state[nxt.name] = 1
                    stack.append((nxt, 0))
            else:
                state[node.name] = 2
                order.append(node)
    return order


def _check_reach(nodes: list[Node], start: str, ends: list[str]) -> None:
    """Every layer is fed by the model input and leads to an output (a hand-edited or
    truncated configuration may hold layers on neither path)."""
    fed = {start}
    for node in nodes:
        if node.inputs and all(i in fed for i in node.inputs):
            fed.add(node.name)
    leads = set(ends)
    for node in reversed(nodes):
        if node.name in leads:
            leads.update(node.inputs)
    for node in nodes:
        if node.name not in fed:
            raise import_error(
                f"layer {shown(node.name)} is not computed from the model input",
                node.path,
                hint="a second input or a constant source cannot be expressed",
            )
        if node.name not in leads:
            raise import_error(
                f"layer {shown(node.name)} does not lead to a model output",
                node.path,
                hint="remove the unused layer, or make it one of the model's outputs",
            )


def _sequential(config: dict[str, Any]) -> Graph:
    layers = _layer_list(config)
    nodes: list[Node] = []
    shape: list[int] | None = None
    notes: list[str] = []
    previous: str | None = None
    seen: dict[str, str] = {}
    for index, layer in enumerate(layers):
        path = f"$.config.layers[{index}]"
        name, class_name, layer_config = _entry(layer, path)
        if name in seen:
            raise import_error(
                f"layer name {shown(name)} is used twice (first at {seen[name]})", f"{path}.name"
            )
        seen[name] = path
        if class_name == "InputLayer":
            if nodes:
                raise import_error(
                    "expected the InputLayer first; a Sequential model has one input", f"{path}.class_name"
                )
            shape = _input_shape(layer_config, path)
            notes = _input_notes(layer_config, path)
            nodes.append(Node(name, class_name, layer_config, [], path))
            previous = name
            continue
        if previous is None:
            batch = layer_config.get("batch_input_shape") or (config["config"].get("build_input_shape"))
            if batch is None:  # (no InputLayer, no input shape on its first layer, never built)
                raise import_error(
                    "the model has no input shape: it holds no InputLayer, its first layer no "
                    "batch_input_shape, and it was never built (no build_input_shape)",
                    "$.config",
                    hint="start the Sequential with keras.Input(shape), or build the model "
                    "(model.build((None, 32, 32, 3)) or call it once), then save it again",
                )
            shape = _input_shape({"batch_shape": batch}, path)
            notes = _input_notes({"batch_shape": batch}, path)
            previous = _unused_name(layers, "input_layer")
            nodes.append(Node(previous, "InputLayer", {"batch_shape": batch}, [], "$.config"))
            seen[previous] = "$.config"
        build = layer.get("build_config") or {}
        nodes.append(
            Node(
                name,
                class_name,
                layer_config,
                [previous],
                path,
                build.get("input_shape") if isinstance(build, dict) else None,
                layer.get("module"),
                layer.get("registered_name"),
            )
        )
        previous = name
    if shape is None or previous is None or len(nodes) < 2:
        raise import_error("expected at least an input and one layer", "$.config.layers")
    return Graph(
        str(config["config"].get("name") or UNNAMED), nodes, nodes[0].name, shape, previous, notes=notes
    )


def _unused_name(layers: list[Any], base: str) -> str:
    """``base``, or ``base_1``, ``base_2`` …: a name no layer of the configuration has."""
    taken = set()
    for layer in layers:
        if isinstance(layer, dict):
            config = layer.get("config")
            taken.add(layer.get("name", config.get("name") if isinstance(config, dict) else None))
    name, number = base, 0
    while name in taken:
        number += 1
        name = f"{base}_{number}"
    return name
