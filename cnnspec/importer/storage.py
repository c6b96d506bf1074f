"""Where a ``.keras`` file's ``model.weights.h5`` keeps each layer of its configuration.

Keras 3 does not store a model's layers by their names (names are often generated, and differ
between two builds of one model): ``saving_lib._save_container_state`` stores the layers of a
Functional or Sequential model, in ``model.layers`` order, under ``layers/<class>``, the layer's
class in snake case (``Conv2D`` → ``conv2d``), with ``_1``, ``_2`` … for the second, third …
layer of that class; a nested model's layers under its own group
(``layers/functional/layers/conv2d``). Keras' own ``load_model`` reads them back by that
path alone: a layer renamed in ``config.json`` still gets its weights. The name Keras writes
beside them (the ``name`` attribute of the ``vars`` group) is the layer's name when it was
saved, which an edited configuration no longer has.

``model.layers`` is the configuration's ``layers`` list, as Keras writes it (a Functional's
``get_config`` lists its operations in the order ``model.layers`` has them; a Sequential's
lists its layers in order, its InputLayer first, which is not stored: its class is no other
layer's), less the raw operations (``x + 3.0``), which are no layers. No TensorFlow.
"""

from __future__ import annotations

import re
from typing import Any

from cnnspec.importer.graph import MODEL_CLASSES


def snake_case(class_name: str) -> str:
    """A class's name as Keras' ``naming.to_snake_case`` writes it (``BatchNormalization`` →
    ``batch_normalization``, ``Conv2D`` → ``conv2d``)."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def storage_names(config: dict[str, Any]) -> dict[str, str]:
    """Each layer group of the weights file, as its path below the top ``layers`` group
    (``conv2d_1``; a nested model's layer ``functional/conv2d``, its models' groups joined by
    ``/``) → the layer stored there, as :attr:`~cnnspec.importer.Imported.stored` names it
    (its name; ``base/conv1`` in the nested model ``base``). ``config``: the model's
    ``{class_name, config}``."""
    inner = config.get("config")
    return _stored_in(inner.get("layers") if isinstance(inner, dict) else None, "", "")


def _stored_in(layers: Any, file_scope: str, name_scope: str) -> dict[str, str]:
    found: dict[str, str] = {}
    used: dict[str, int] = {}  # Keras' _get_unique_name: a class's count so far
    for entry in layers if isinstance(layers, list) else ():
        if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
            continue  # (read_graph refuses such an entry)
        if str(entry.get("module") or "").startswith("keras.src.ops"):
            continue  # a raw operation: not in model.layers (graph.Node.is_operation)
        config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
        name = entry.get("name", config.get("name"))
        key = snake_case(entry["class_name"])
        if key in used:
            used[key] += 1
            key = f"{key}_{used[key]}"
        else:
            used[key] = 0
        if not isinstance(name, str):
            continue
        found[file_scope + key] = name_scope + name
        if entry["class_name"] in MODEL_CLASSES and isinstance(config.get("layers"), list):
            found.update(_stored_in(config["layers"], f"{file_scope}{key}/", f"{name_scope}{name}/"))
    return found


__all__ = ["snake_case", "storage_names"]
