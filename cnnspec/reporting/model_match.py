"""Whether a run folder's ``model.keras`` is the model its spec builds, read without TensorFlow.

A run folder is its spec (``resolved.yaml``) and the model training saved beside it. Every
command that opens a run folder reads the task, the class names and the output activation
from the spec and the answers from the model: a model file copied in from another run (a
segmentation model into a digits run, a logits head into a softmax run) would be served with
the wrong reading and no error. :func:`model_mismatches` compares the archive's
``config.json`` with the spec's resolved graph: the Keras builder makes each layer from its IR
node's kind and arguments, so the model training saved has

* the spec's input shape,
* as many outputs as the spec, and
* for each output, in order, a layer of the output node's Keras class with the node's plain
  arguments (units, filters, activation, padding …) in its config.

The layers inside are not compared, nor are names: a run trained by an earlier cnnspec may
name them otherwise (the zoo's stems became block calls), and its model is still its spec's.

Only the archive's ``config.json`` is read (a few kilobytes, not the weights): the check costs
milliseconds whatever the model's size, so every command can afford it (no hash of the weights
is needed to tell another model apart, and a model the user retrained from the same spec passes).
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any

from cnnspec.ir import ModelIR
from cnnspec.layers import REGISTRY, LayerKind
from cnnspec.layers.params import ACTIVATION_ALIASES

#: How many differences a refusal lists (the first ones tell the story).
SHOWN = 4


def read_config(path: Path) -> dict[str, Any] | None:
    """The model archive's top-level ``config.json`` (``None`` when it can't be read: the loader
    refuses such a file with its own message)."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return config if isinstance(config, dict) else None


def _same(spec_value: Any, saved: Any) -> bool:
    """Whether a plain argument of the spec equals the saved config's value; values of other
    shapes (a kernel size 3 saved as ``[3, 3]``, initializer objects) are not compared."""
    if isinstance(spec_value, bool) or isinstance(saved, bool):
        return not (isinstance(spec_value, bool) and isinstance(saved, bool)) or spec_value == saved
    if isinstance(spec_value, (int, float)) and isinstance(saved, (int, float)):
        return math.isclose(spec_value, saved, rel_tol=1e-6, abs_tol=1e-12)
    if isinstance(spec_value, str) and isinstance(saved, str):  # (Keras saves swish as silu)
        return _word(spec_value) == _word(saved)
    return True


def _word(text: str) -> str:
    """A string argument as Keras reads it: its case aside, an activation alias as its function."""
    return ACTIVATION_ALIASES.get(text.lower(), text.lower())


def layer_mismatch(kind: LayerKind, params: dict[str, Any], saved: dict[str, Any]) -> str | None:
    """How a saved layer (its ``class_name`` and ``config``) differs from the layer ``kind``
    builds with ``params``, in words (``None``: no difference seen)."""
    if saved.get("class_name") != kind.keras_class:
        return f"is a {saved.get('class_name')}, the spec's a {kind.keras_class}"
    config = saved.get("config") or {}
    for key, value in kind.keras_args(params).items():
        if key in config and not _same(value, config[key]):
            return f"has {key} {_shown(config[key])}, the spec's {_shown(value)}"
    return None


def _shown(value: Any) -> str:
    return "none" if value is None else json.dumps(value) if not isinstance(value, str) else value


def model_mismatches(path: Path, ir: ModelIR) -> list[str]:
    """How the model file ``path`` differs from the model ``ir`` builds, in words (empty: it is
    that model, or its config is not a functional model's that can be compared)."""
    config = read_config(path)
    body = (config or {}).get("config")
    if not isinstance(body, dict) or not isinstance(body.get("layers"), list):
        return []  # (a Sequential or subclassed model: not what training saves; not compared)
    layers = {
        str(layer.get("name")): layer
        for layer in body["layers"]
        if isinstance(layer, dict) and isinstance(layer.get("config"), dict)
    }
    problems: list[str] = []
    inputs = [layer for layer in layers.values() if layer.get("class_name") == "InputLayer"]
    if len(inputs) == 1:
        shape = inputs[0]["config"].get("batch_shape")
        if isinstance(shape, list) and shape[1:] != list(ir.input_shape):
            problems.append(f"its input is {_shape(shape[1:])}, the spec's {_shape(list(ir.input_shape))}")
    outputs = _names(body.get("output_layers"))
    if len(outputs) != len(ir.outputs):
        problems.append(f"its outputs are {', '.join(outputs) or 'none'}, the spec's {', '.join(ir.outputs)}")
        return problems[:SHOWN]
    # Each output's layer against the spec's, in order: its class, units and activation decide
    # how every command reads the answers. Compared by place, not by name, and nothing inside
    # the model: a run trained by an earlier cnnspec may name its layers otherwise (the zoo's
    # ResNet stem became a block call, renaming its layers), and its model is still its spec's.
    nodes = {node.name: node for node in ir.nodes}
    for saved, wanted in zip(outputs, ir.outputs, strict=True):
        layer, node = layers.get(saved), nodes.get(wanted)
        if layer is None or node is None:
            continue
        differs = layer_mismatch(REGISTRY[node.kind], node.params, layer)
        if differs is not None:
            named = saved if saved == wanted else f"{saved} (the spec's {wanted})"
            problems.append(f"its output layer {named} {differs}")
    return problems[:SHOWN]


def _names(entries: Any) -> list[str]:
    """The layer names of a saved ``output_layers``: ``[name, 0, 0]`` for one output (as Keras
    saves a single one), ``[[name, 0, 0], …]`` for several."""
    if not isinstance(entries, list) or not entries:
        return []
    if isinstance(entries[0], str):
        return [entries[0]]
    return [str(entry[0]) for entry in entries if isinstance(entry, list) and entry]


def _shape(shape: list[Any]) -> str:
    return "×".join("?" if size is None else str(size) for size in shape)
