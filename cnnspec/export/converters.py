"""Each format written from the Keras model: a SavedModel (``model.export``), TFLite bytes from it
(float, ``float16``, ``dynamic`` or a calibrated ``int8``), and ONNX through tf2onnx; and what a
converter or runtime lacks, said in words (extra ONNX inputs, ops onnxruntime cannot run, the
gaps of the model's layers for the format).
"""

from __future__ import annotations

import contextlib
import gc
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.export.artifact_runs import inference_calls, quiet_native
from cnnspec.layers import kind_of_keras_class
from cnnspec.training.modelfile import all_layers


def write_saved_model(model: Any, path: Path) -> None:
    with quiet_native(), inference_calls(model):
        model.export(str(path), format="tf_saved_model", verbose=False)


def tflite_bytes(model: Any, quantize: str | None, calibration: np.ndarray | None = None) -> bytes:
    """The ``.tflite`` bytes of ``model``: float, or quantized (``dynamic``: int8 weights;
    ``float16``: float16 weights; ``int8``: every op and the input and output int8, the
    activation ranges calibrated on ``calibration``, images as the model takes them)."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="cnnspec-export-") as scratch:
        saved = Path(scratch) / "saved_model"
        write_saved_model(model, saved)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        if quantize is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            if quantize == "float16":
                converter.target_spec.supported_types = [tf.float16]
            if quantize == "int8":
                assert calibration is not None and len(calibration)
                images = calibration

                def representative() -> Iterator[list[np.ndarray]]:
                    for image in images:  # one image at a time, as the converter's examples feed it
                        yield [image[np.newaxis]]

                converter.representative_dataset = representative
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                converter.inference_input_type = tf.int8
                converter.inference_output_type = tf.int8
        with quiet_native(), _older_objects_frozen():
            return bytes(converter.convert())


@contextlib.contextmanager
def _older_objects_frozen() -> Iterator[None]:
    """The objects the process holds before a TFLite conversion kept out of the garbage
    collector's walks while it runs (``gc.freeze``), and handed back after it. TensorFlow's
    converter ends with a full ``gc.collect()`` to free the SavedModel it loaded, which walked
    every object of the process, TensorFlow's modules and the caller's models among them: half a
    second to a second of each conversion in a process that has built a few models. What the
    conversion makes is collected as before, so the same garbage goes and the file is the same.
    (The freeze is process-wide: a conversion on another thread meanwhile collects less until
    this one ends, and one ending first hands everything back early; neither changes a result.)"""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def layer_names(model: Any) -> list[str]:
    """The names of ``model``'s layers, those of nested models included."""
    return [layer.name for layer in all_layers(model)]


def write_onnx(model: Any, path: Path) -> None:
    """Convert ``model`` to ``path`` through tf2onnx, the eager tensors its layers hold traced as
    constants (:mod:`cnnspec.export.constants`: tf2onnx takes them for inputs otherwise)."""
    from cnnspec.export.constants import tensors_as_constants

    with quiet_native(), tensors_as_constants(model), inference_calls(model):
        model.export(str(path), format="onnx", verbose=False)


def extra_onnx_inputs(path: Path, inputs: int) -> list[str]:
    """The inputs of the ONNX file ``path`` beyond the model's ``inputs`` (tf2onnx lists the
    model's first): tensors of the graph that the converter took for inputs (see
    :mod:`cnnspec.export.constants`)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initialized = {tensor.name for tensor in graph.initializer}
    return [given.name for given in graph.input if given.name not in initialized][inputs:]


def extra_inputs_said(extra: list[str], model: Any, path: Path) -> str:
    """Why an ONNX file asking for ``extra`` inputs is refused, naming their layers."""
    from cnnspec.training.onednn import layer_of_node

    names = layer_names(model)
    layers = list(dict.fromkeys(layer_of_node(name, names) for name in extra))
    named = ", ".join(f"`{layer}`" for layer in layers if layer is not None) or "the model"
    return (
        f"the onnx converter took values that layer(s) {named} hold ({', '.join(extra[:3])}) for "
        "inputs of the model: the file would ask for them beside its own inputs, and no runtime "
        f"would run it. Nothing was written to {path}; export it with -f tflite or -f savedmodel"
    )


#: Why an ONNX export of a model with gelu fails (the converter passes Keras' erfc on as is).
GELU_WHY = (
    " (the model's gelu: Keras computes it with erfc, which ONNX has no operator for; "
    "-f tflite exports it, or use another activation such as silu)"
)


def foreign_onnx_ops(path: Path) -> list[tuple[str, str]]:
    """The nodes of the ONNX file ``path`` whose op is none of ONNX's own (``(node name, op)``):
    TensorFlow ops tf2onnx left as they were, such as the ``StatefulPartitionedCall`` of a
    grouped convolution (``conv2d`` with ``groups`` > 1, which tf2onnx 1.17 does not convert).
    No ONNX runtime loads such a file. Ops of other domains (``com.microsoft``) are left to the
    runtime."""
    import onnx
    import onnx.defs

    graph = onnx.load(str(path), load_external_data=False).graph
    return [
        (node.name, node.op_type)
        for node in graph.node
        if node.domain in ("", "ai.onnx") and not onnx.defs.has(node.op_type, node.domain)
    ]


def foreign_ops_said(foreign: list[tuple[str, str]], model: Any, path: Path) -> str:
    """Why an ONNX file with ops ONNX does not have is refused, naming their layers (a grouped
    convolution's limit said as such: the layer's ``groups``)."""
    from cnnspec.training.onednn import layer_of_node

    layers = {layer.name: layer for layer in all_layers(model) if layer is not model}
    names = list(dict.fromkeys(layer_of_node(name, list(layers)) for name, _ in foreign))
    named = ", ".join(f"`{name}`" for name in names if name is not None) or "the model"
    ops = ", ".join(dict.fromkeys(op for _, op in foreign))
    grouped = [name for name in names if name is not None and (getattr(layers[name], "groups", 1) or 1) > 1]
    why = " (a convolution with groups > 1, which tf2onnx does not convert)" if grouped else ""
    if any(op == "Erfc" for _, op in foreign):
        why += GELU_WHY
    # a layer the kinds know ONNX lacks (a lanczos resize): named with the formats that have it
    gaps = gaps_said(model, "onnx", None)
    return (
        f"the onnx export would not run: the converter left TensorFlow's {ops} op of layer(s) "
        f"{named} in the graph, which is no ONNX op and which no ONNX runtime loads{why}{gaps}. "
        f"Nothing was written to {path}" + ("" if gaps else "; export it with -f tflite or -f savedmodel")
    )


def gaps_said(model: Any, fmt: str, ir: Any | None) -> str:
    """``: layer `resizing_1` (spec.yaml:5:5, model[0].resizing) needs what … lacks``: the
    layers of ``model`` that the format can't run as Keras does (their kind's ``export_gap``),
    for a failed conversion or verification; empty when none is known."""
    from cnnspec.training.onednn import spec_layers

    named = spec_layers(model, ir)

    def gaps_of(form: str) -> list[str]:
        found = []
        for layer in all_layers(model):
            kind = kind_of_keras_class(type(layer).__name__)
            gap = kind.export_gap if kind is not None else None
            reason = gap(layer.get_config(), form) if gap is not None else None
            if reason is not None and layer.name in named:
                found.append(f"{named[layer.name]}: {reason}")
        return found

    gaps = gaps_of(fmt)
    if not gaps:
        return ""
    others = [form for form in ("tflite", "onnx") if form != fmt and not gaps_of(form)] + ["savedmodel"]
    other = " or ".join(f"-f {form}" for form in others)
    return (
        f"; {'; '.join(gaps[:3])}{' …' if len(gaps) > 3 else ''} (export it with {other}, or "
        "change the layer)"
    )
