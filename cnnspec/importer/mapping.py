"""Each source layer → a registry kind and its non-default parameters; every layer that cannot
be expressed is named in one error (its name, its class and why), before anything is written."""

from __future__ import annotations

from cnnspec.errors import Diagnostic
from cnnspec.importer.graph import Graph, Node, refusal
from cnnspec.layers.reverse import NotExpressible, Reversed, from_keras, shown

#: Modules Keras 3 saves its built-in layers under.
_BUILTIN_MODULES = ("keras.layers", "keras")
#: Keras' model classes: a model used as a layer of another.
_MODEL_CLASSES = ("Functional", "Sequential", "Model")


def _keras_module(module: str | None) -> bool:
    """A module of Keras itself: a nested Functional is saved under keras.src.models.functional."""
    return module is None or module == "keras" or module.startswith("keras.")


def _problem(node: Node) -> str | None:
    """Why a layer is refused before its configuration is even read, or None."""
    if node.class_name == "Lambda":
        return "a Lambda layer runs arbitrary Python code, which a spec cannot hold (and import never runs)"
    # before the custom-class test: Keras saves a nested Functional with its own module and
    # registered name, which that test would call a custom class
    if (
        node.class_name in _MODEL_CLASSES
        and node.registered_name in (None, node.class_name)
        and _keras_module(node.module)
    ):
        return "a nested model; import its layers as one model"
    if node.registered_name not in (None, node.class_name) or (
        node.module is not None and node.module not in _BUILTIN_MODULES
    ):
        origin = f"{node.module}.{node.class_name}" if node.module else str(node.registered_name)
        return f"a custom class or raw operation ({shown(origin, str)}), not a built-in Keras layer"
    return None


def map_layers(graph: Graph) -> dict[str, Reversed]:
    """The kind and parameters of every layer but the input; SpecError naming each refused one."""
    mapped: dict[str, Reversed] = {}
    problems: list[Diagnostic] = list(graph.problems)
    flagged = {d.path.split(".inbound_nodes")[0] for d in problems}
    for node in graph.nodes:
        if node.path in flagged:
            continue
        if node.name == graph.input_name:
            continue
        reason = _problem(node)
        if reason is None:
            try:
                mapped[node.name] = from_keras(node.class_name, node.config, node.input_shape)
            except NotExpressible as exc:
                reason = str(exc)
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                # a hand-edited configuration with a value of the wrong type somewhere
                reason = f"unreadable configuration ({type(exc).__name__}: {shown(exc, str)})"
        if reason is not None:
            problems.append(
                Diagnostic(
                    f"layer {shown(node.name)} ({shown(node.class_name, str)}) cannot be imported: {reason}",
                    None,
                    node.path,
                    "import",
                    None,
                )
            )
    if problems:
        raise refusal(problems)
    return mapped
