"""Each source layer → a registry kind and its non-default parameters; every layer that cannot
be expressed is named in one error (its name, its class and why), before anything is written."""

from __future__ import annotations

import json

from cnnspec.errors import Diagnostic
from cnnspec.importer.graph import Graph, Node, keras_module, refusal
from cnnspec.layers.reverse import NotExpressible, Reversed, from_keras, shown

#: Modules Keras 3 saves its built-in layers under.
_BUILTIN_MODULES = ("keras.layers", "keras")
#: Keras' model classes: a model used as a layer of another.
_MODEL_CLASSES = ("Functional", "Sequential", "Model")

#: The ``training`` value Keras records in an ordinary call's ``inbound_nodes[*].kwargs``.
#: ``Layer.__call__`` fills in a non-None default of its ``call``'s ``training`` argument and
#: saves it with the call: ``Dropout.call(inputs, training=False)`` is saved as
#: ``{"training": false}``, an image augmentation layer's ``call(data, training=True)`` as
#: ``{"training": true}``. A class not listed defaults to None, which Keras does not record. Any
#: other saved value was passed by hand (``Dropout(0.5)(x, training=True)``: Monte Carlo dropout)
#: and changes what ``model(x)`` computes, which a spec item cannot say.
TRAINING_DEFAULTS: dict[str, bool] = {
    **dict.fromkeys(
        (
            "Dropout",
            "SpatialDropout1D",
            "SpatialDropout2D",
            "SpatialDropout3D",
            "GaussianNoise",
            "GaussianDropout",
            "AlphaDropout",
        ),
        False,
    ),
    # keras.src.layers.preprocessing.image_preprocessing.BaseImagePreprocessingLayer's subclasses
    **dict.fromkeys(
        (
            "RandAugment",
            "RandomBrightness",
            "RandomColorJitter",
            "RandomContrast",
            "RandomCrop",
            "RandomErasing",
            "RandomFlip",
            "RandomGaussianBlur",
            "RandomGrayscale",
            "RandomHue",
            "RandomInvert",
            "RandomPerspective",
            "RandomPosterization",
            "RandomRotation",
            "RandomSaturation",
            "RandomSharpness",
            "RandomTranslation",
            "RandomZoom",
            "Resizing",
            "Solarization",
        ),
        True,
    ),
}


def _problem(node: Node) -> str | None:
    """Why a layer is refused before its configuration is even read, or None."""
    if node.class_name == "Lambda":
        return "a Lambda layer runs arbitrary Python code, which a spec cannot hold (and import never runs)"
    # before the custom-class test: Keras saves a nested Functional with its own module and
    # registered name, which that test would call a custom class
    if (
        node.class_name in _MODEL_CLASSES
        and node.registered_name in (None, node.class_name)
        and keras_module(node.module)
    ):
        # (a Functional or Sequential one is written in line before: cnnspec.importer.nested)
        return "a nested model whose configuration lists no layers (a subclassed model)"
    if node.registered_name not in (None, node.class_name) or (
        node.module is not None and node.module not in _BUILTIN_MODULES
    ):
        origin = f"{node.module}.{node.class_name}" if node.module else str(node.registered_name)
        if node.registered_name not in (None, node.class_name):  # (the name it is registered under)
            origin += f", registered as {node.registered_name}"
        return f"a custom class or raw operation ({shown(origin, str)}), not a built-in Keras layer"
    return None


def _call_problem(node: Node) -> tuple[str, str] | None:
    """The first keyword argument of a layer's call that changes what it does, as (why, its JSON
    path), or None. Keras saves ``mask: null`` and the layer's own ``training`` default with an
    ordinary call (:data:`TRAINING_DEFAULTS`); ``null`` is the same as not passing it."""
    for key, value in node.call_kwargs.items():
        if value is None:
            continue  # Keras resolves a None argument as if it were not passed
        if key == "training" and value is TRAINING_DEFAULTS.get(node.class_name):
            continue  # the default Keras records itself
        # the path names the key unless it is too long to print (a hostile 5 MB key)
        where = "" if len(key) > _KEY_LIMIT else f".{key}" if key.isidentifier() else f"[{json.dumps(key)}]"
        return (
            f"it is called with the fixed argument {shown(key, str)}={shown(value, json.dumps)}, "
            "which a spec item cannot express",
            f"{node.path}.inbound_nodes[0].kwargs{where}",
        )
    return None


#: The longest keyword a JSON path names.
_KEY_LIMIT = 100
_CALL_HINT = (
    "a spec calls each layer with its inputs only (training is set by fit, evaluate and predict); "
    "call the layer without the argument and save the model again"
)


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
        reason, where, hint = _problem(node), node.path, None
        if reason is None:
            try:
                mapped[node.name] = from_keras(node.class_name, node.config, node.input_shape)
            except NotExpressible as exc:
                reason = str(exc)
            except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
                # a hand-edited configuration with a value of the wrong type somewhere, or an
                # integer of thousands of digits where Keras keeps a float
                reason = f"unreadable configuration ({type(exc).__name__}: {shown(exc, str)})"
        if reason is None:
            # checked once the layer itself is importable: a class no kind builds is named
            # as that, not by the arguments it was called with
            called = _call_problem(node)
            if called is not None:
                (reason, where), hint = called, _CALL_HINT
                del mapped[node.name]
        if reason is not None:
            problems.append(
                Diagnostic(
                    f"layer {shown(node.name)} ({shown(node.class_name, str)}) cannot be imported: {reason}",
                    None,
                    where,
                    "import",
                    hint,
                )
            )
    if problems:
        raise refusal(problems)
    return mapped
