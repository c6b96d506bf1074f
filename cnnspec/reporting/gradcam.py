"""Grad-CAM: where in an image a layer's feature maps raise one class's score.

Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
Localization" (ICCV 2017): each channel k of the layer's maps A (h, w, channels) is weighted
by the mean over the map of the score's gradient, α_k = mean_ij ∂y/∂A_ij^k, and the map is
ReLU(Σ_k α_k A^k): the places whose features push the class's score up. The score y is the
class's logit, read before the output layer's softmax or sigmoid (the paper's choice: a
probability's gradient vanishes where the model is sure); where no activation can be set
aside (a separate Softmax layer), its log-probability, and the picture says which.

For ``cnnspec visualize TARGET gradcam``; TensorFlow is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnspec.errors import UsageError
from cnnspec.reporting.model_graph import OutputKind

#: The output activations whose input is the class scores (set aside for the gradient).
SQUASHING = ("softmax", "sigmoid")


@dataclass(frozen=True)
class ClassMap:
    """A Grad-CAM map at the layer's resolution, and what it was computed from."""

    heat: np.ndarray  # (height, width) in [0, 1]; all 0 when nothing in the layer raises the score
    peak: float  # the map's largest value before it was scaled to [0, 1] (0: nothing raises it)
    score: str  # what was differentiated: "logit" or "log-probability"


def spatial_layers(model: Any) -> list[str]:
    """The layers whose output is a stack of maps (batch, height, width, channels) larger than
    one pixel, in model order: the layers a class map can be drawn on (not the output itself,
    a segmentation's map: its own scores weighed by their gradient say nothing more)."""
    names = []
    output = _output_layer(model)
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer" or layer is output:
            continue
        shape = getattr(layer.output, "shape", None) if hasattr(layer, "output") else None
        if shape is not None and len(shape) == 4 and (shape[1] or 0) * (shape[2] or 0) > 1:
            names.append(layer.name)
    return names


def call_output(layer: Any) -> Any:
    """The tensor ``layer`` gives in the model that calls it. For a plain layer that is
    ``layer.output``; a nested model's ``output`` is the one of its own graph instead (not
    connected to the outer model's input: a probe built on it fails), so the output of its
    one call, Keras' record of which is its first inbound node, is taken."""
    nodes = getattr(layer, "_inbound_nodes", None)
    if hasattr(layer, "layers") and nodes:
        tensors = getattr(nodes[0], "output_tensors", None)
        if tensors:
            return tensors[0]
    return layer.output


def _output_layer(model: Any) -> Any | None:
    """The layer that produces the model's one output (``None`` when it cannot be told)."""
    outputs = getattr(model, "outputs", None) or []
    if not outputs:
        return None
    output = outputs[0]
    for layer in reversed(getattr(model, "layers", [])):
        if getattr(layer, "output", None) is output:
            return layer
    return None


@contextmanager
def _scores_out(model: Any, kind: OutputKind) -> Iterator[str]:
    """While inside, the model's output is its class scores: the output layer's softmax or
    sigmoid is set aside (and put back after). Yields what the output then is: ``logit``, or
    ``probability`` when there is no activation to set aside (a model trained on logits has
    none: ``logit``)."""
    if kind.from_logits:
        yield "logit"
        return
    layer = _output_layer(model)
    activation = getattr(layer, "activation", None)
    if getattr(activation, "__name__", None) not in SQUASHING:
        yield "probability"
        return
    from cnnspec.training.runtime import import_keras

    layer.activation = import_keras().activations.linear
    try:
        yield "logit"
    finally:
        layer.activation = activation


def class_map(model: Any, layer_name: str, batch: np.ndarray, class_index: int, kind: OutputKind) -> ClassMap:
    """The Grad-CAM map of ``layer_name`` for class ``class_index`` of the one image in
    ``batch`` (scaled as the model takes it). A binary model (one sigmoid unit) has two
    classes: class 1's score is the unit's logit, class 0's its negative. A segmentation
    model's score is the class's, averaged over every pixel of its map."""
    from cnnspec.training.runtime import import_keras

    keras = import_keras()  # (first: TensorFlow's start-up chatter turned down)
    import tensorflow as tf

    probe = keras.Model(model.inputs[0], [call_output(model.get_layer(layer_name)), model.outputs[0]])
    with _scores_out(model, kind) as output:
        x = tf.convert_to_tensor(np.asarray(batch, dtype="float32"))
        with tf.GradientTape() as tape:
            # every operation after the input is recorded, frozen weights (trainable: false) too
            tape.watch(x)
            maps, out = probe(x, training=False)
            out = tf.cast(out, "float32")
            # a segmentation map (batch, height, width, classes): each pixel's score, averaged
            # over the image (Seg-Grad-CAM, Vinogradova et al. 2020, with the whole image as region)
            pixels = len(out.shape) == 4
            out = tf.reshape(out, (-1, out.shape[-1]))
            if out.shape[-1] == 1:  # one sigmoid unit: class 1 is the unit, class 0 its negation
                unit = out[:, 0]
                if output == "probability":
                    score = tf.math.log(unit if class_index == 1 else 1.0 - unit)
                else:
                    score = unit if class_index == 1 else -unit
            elif output == "probability":
                score = tf.math.log(out[:, class_index])
            else:
                score = out[:, class_index]
            if pixels:
                score = tf.reduce_mean(score)
        try:
            gradients = tape.gradient(score, maps)
        except LookupError as exc:  # an op TensorFlow can't differentiate (ResizeArea)
            raise UsageError(_no_gradient(probe, x, exc)) from None
    if gradients is None:  # (cannot happen with the input watched; say so rather than crash)
        raise UsageError(f"expected the class score to depend on {layer_name}'s output; it does not")
    features = np.asarray(tf.cast(maps, "float32"))[0]
    weights = np.asarray(tf.cast(gradients, "float32"))[0].mean(axis=(0, 1))
    heat = np.maximum((features * weights).sum(axis=-1), 0.0)
    peak = float(heat.max()) if heat.size else 0.0
    if not np.isfinite(peak):
        raise UsageError(
            f"the class map of {layer_name} is not finite numbers (the model's outputs or "
            "gradients are NaN or infinite: its training diverged?)"
        )
    scaled = heat / peak if peak > 0 else np.zeros_like(heat)
    return ClassMap(scaled, peak, "log-probability" if output == "probability" else "logit")


def _no_gradient(probe: Any, x: Any, exc: LookupError) -> str:
    """Why there is no class map of a model with an op that TensorFlow has no gradient for
    (``LookupError: gradient registry has no entry for: ResizeArea``), naming the layers that
    hold the op: its graph is traced again, which costs nothing beside a failed map."""
    import tensorflow as tf

    from cnnspec.training.onednn import layer_of_node

    text = str(exc)
    op = text.rsplit(":", 1)[-1].strip() if "no entry for" in text else ""
    layers: list[str] = []
    if op:
        try:
            graph = tf.function(lambda t: probe(t, training=False)).get_concrete_function(x).graph
            names = [layer.name for layer in probe.layers]
            found = (layer_of_node(o.name, names) for o in graph.get_operations() if o.type == op)
            layers = [name for name in dict.fromkeys(found) if name is not None]
        except Exception:  # (naming the layer is a courtesy: the reason stands without it)
            layers = []
    held = f" of layer(s) {', '.join(f'`{name}`' for name in layers)}" if layers else ""
    what = f"the {op} op{held}" if op else "one of its ops"
    return (
        f"TensorFlow has no gradient for {what}, so Grad-CAM can't weigh the feature maps "
        f"(LookupError: {text})"
    )
