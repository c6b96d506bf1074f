"""The Keras model and each exported file run on the same inputs, for the verification: the model
as float32 (a mixed-precision model's serving graph), the seeded batch of the model's input dtype
(:func:`sample_batch`), the model traced in inference mode (:func:`inference_calls`), and a
SavedModel, a TFLite file (the LiteRT interpreter) and an ONNX file (onnxruntime) run on it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

VERIFY_BATCH = 8
VERIFY_SEED = 0


def _is_mixed(policy: Any) -> bool:
    name = getattr(policy, "name", policy)
    return isinstance(name, str) and name.startswith("mixed_")


def float32_model(model: Any) -> tuple[Any, str | None]:
    """``model`` itself when it computes in float32, else a float32 copy with its weights.

    Returns the model and the mixed policy it was trained with (``None`` when it was float32).
    """
    policies = {layer.dtype_policy.name for layer in model.layers if _is_mixed(layer.dtype_policy)}
    if not policies:
        return model, None
    import keras

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("class_name") == "DTypePolicy" and _is_mixed(node.get("config", {}).get("name")):
                return "float32"
            return {k: strip(v) for k, v in node.items()}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    config = strip(keras.saving.serialize_keras_object(model))
    copy = keras.saving.deserialize_keras_object(config, safe_mode=True)
    copy.set_weights(model.get_weights())
    return copy, sorted(policies)[0]


def _integer_range(dtype: np.dtype[Any]) -> tuple[int, int]:
    """The values a verification batch draws for an integer input of ``dtype``: its whole range
    up to 16 bits (a uint8 input's pixels 0–255), else 0–255 (an int32 input's range would be
    no image's)."""
    limits = np.iinfo(dtype)
    return (int(limits.min), int(limits.max)) if dtype.itemsize <= 2 else (0, 255)


def _input_dtypes(model: Any) -> list[np.dtype[Any]]:
    """The dtype each input of ``model`` takes (float32 where Keras names none)."""
    dtypes = []
    for tensor in model.inputs:
        try:
            dtypes.append(np.dtype(str(getattr(tensor, "dtype", None) or "float32")))
        except TypeError:  # (a dtype NumPy has no name for, e.g. bfloat16: fed as float32)
            dtypes.append(np.dtype("float32"))
    return dtypes


def sample_batch(model: Any, batch: int = VERIFY_BATCH, seed: int = VERIFY_SEED) -> list[np.ndarray]:
    """Seeded inputs, one array per model input: uniform [0, 1) floats, or for an integer input
    (a model built on ``uint8`` pixels) uniform integers of its range in its dtype, which the
    converted graph takes (onnxruntime and LiteRT refuse float32 for a uint8 input)."""
    rng = np.random.default_rng(seed)
    out = []
    for tensor, dtype in zip(model.inputs, _input_dtypes(model)):
        shape = [d if d is not None else 32 for d in tuple(tensor.shape)[1:]]
        if np.issubdtype(dtype, np.integer):
            low, high = _integer_range(dtype)
            out.append(rng.integers(low, high, (batch, *shape), endpoint=True).astype(dtype))
        else:
            out.append(rng.random((batch, *shape)).astype("float32"))
    return out


def sample_said(model: Any, batch: int) -> str:
    """What :func:`sample_batch` feeds, as the record's ``verify_data`` says it."""
    said = f"{batch} seeded uniform [0, 1) inputs (seed {VERIFY_SEED})"
    integers = [(d, _integer_range(d)) for d in _input_dtypes(model) if np.issubdtype(d, np.integer)]
    if integers:
        dtype, (low, high) = integers[0]
        said = f"{batch} seeded uniform {dtype.name} inputs in [{low}, {high}] (seed {VERIFY_SEED})"
    return said


def keras_outputs(model: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
    import keras

    result = model(inputs[0] if len(inputs) == 1 else inputs, training=False)
    items = result if isinstance(result, (list, tuple)) else [result]
    return [np.asarray(keras.ops.convert_to_numpy(item), dtype="float32") for item in items]


def _ordered(outputs: dict[str, Any]) -> list[np.ndarray]:
    """Signature outputs (``output_0``, ``output_1``, …) in the model's output order (the
    order the TFLite runtime serves them in too: one rule, :func:`signature_order`)."""
    from cnnspec.export.runtimes import signature_order

    return [np.asarray(outputs[name]) for name in signature_order(outputs)]


def run_saved_model(path: Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Reload a SavedModel with ``tf.saved_model.load`` and call its ``serve`` endpoint."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    tensors = [tf.constant(x) for x in inputs]
    result = loaded.serve(*tensors) if len(tensors) > 1 else loaded.serve(tensors[0])
    if isinstance(result, dict):
        return _ordered({k: v.numpy() for k, v in result.items()})
    items = result if isinstance(result, (list, tuple)) else [result]
    return [np.asarray(item.numpy()) for item in items]


def tflite_interpreter(model_path: Path) -> tuple[Any, str]:
    """The LiteRT interpreter (``ai_edge_litert``) when installed, else TensorFlow's own."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter(model_path=str(model_path)), "ai_edge_litert"
    except ImportError:
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "tf.lite.Interpreter is deprecated": still in TF 2.21
            return tf.lite.Interpreter(model_path=str(model_path)), "tf.lite"


def run_tflite(path: Path, inputs: list[np.ndarray]) -> tuple[list[np.ndarray], str]:
    """Run a .tflite model's ``serving_default`` signature on ``inputs`` (batch resized).

    A full-integer export (``--quantize int8``) is fed and read as the runtime sessions feed and
    read it (:func:`~cnnspec.export.runtimes.quantize_input`, ``dequantize_output``): float
    inputs quantized with each input tensor's scale and zero point, outputs dequantized."""
    from cnnspec.export.runtimes import dequantize_output, quantize_input

    with quiet_native():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
        interpreter, name = tflite_interpreter(path)
        runner = interpreter.get_signature_runner()
        given = runner.get_input_details()
        feeds = {n: quantize_input(x, given[n]) for n, x in zip(list(given), inputs)}
        outputs = runner(**feeds)
        details = runner.get_output_details()
    return _ordered({k: dequantize_output(v, details.get(k)) for k, v in outputs.items()}), name


def run_onnx(path: Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run an .onnx model with onnxruntime (CPU)."""
    import onnxruntime

    with contextlib.suppress(AttributeError):
        onnxruntime.disable_telemetry_events()
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {spec.name: x for spec, x in zip(session.get_inputs(), inputs)}
    return [np.asarray(out) for out in session.run(None, feeds)]


@contextlib.contextmanager
def quiet_native() -> Iterator[None]:
    """Drop converter chatter (MLIR, tf2onnx) unless ``CNNSPEC_TF_LOGS=1``."""
    if os.environ.get("CNNSPEC_TF_LOGS"):
        yield
        return
    from cnnspec.training.runtime import native_stderr_silenced

    loggers = [logging.getLogger(name) for name in ("tf2onnx", "absl", "tensorflow")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with native_stderr_silenced(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@contextlib.contextmanager
def inference_calls(model: Any) -> Iterator[None]:
    """Within the block, ``model.__call__`` (the endpoint Keras' ``model.export`` traces, for
    every format) calls the model with ``training=False``.

    Keras traces ``model.__call__`` without a ``training`` argument, so each layer falls back
    on its own default: augmentation layers (``random_flip``, ``random_rotation``, …) default
    to ``training=True`` and were traced as random ops in the served graph (a SavedModel that
    flips its inputs at random, StatelessRandom* ops that neither tf2onnx nor the TFLite
    converter takes). A serving graph is the model in inference mode, as ``model.predict``
    runs it. The attribute is set on the instance (an explicit ``model.__call__`` reads it
    before the class's method) and removed afterwards, whatever happened."""
    method = type(model).__call__

    def serve(*args: Any, **kwargs: Any) -> Any:
        kwargs["training"] = False
        return method(model, *args, **kwargs)

    object.__setattr__(model, "__call__", serve)  # (past Keras' and TF's attribute tracking)
    try:
        yield
    finally:
        object.__delattr__(model, "__call__")
