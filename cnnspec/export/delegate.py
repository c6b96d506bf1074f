"""Whether LiteRT's default CPU delegate (XNNPACK) prepares a ``.tflite`` file, and if not, which
layer of the model it fails on.

LiteRT applies XNNPACK to every file by default. An op that XNNPACK declines runs on the
built-in kernels, but some it takes and then fails to prepare (in LiteRT 1.x / TensorFlow 2.21:
a MEAN over a tensor of more than 6 axes, the batch included), and then the default interpreter
refuses the whole file ("Node number N (TfLiteXNNPackDelegate) failed to prepare"). Keras makes
such a MEAN for a ``layer_norm`` of a rank-6 tensor (from a reshape), or a ``group_norm`` of a
rank-5 one (it splits the channels into one more axis). The file itself is right (the built-in
kernels run it), but a default interpreter, the user's or cnnspec's own runtime, would not load
it: the export refuses it, naming the layer, before it is published.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.training.onednn import layer_of_node
from cnnspec.training.runtime import native_stderr_silenced

#: How LiteRT names an op its delegate failed on: "failed to delegate MEAN node #5".
_FAILED = re.compile(r"failed to delegate (\w+) node #(\d+)")
#: The most axes (the batch included) of a tensor XNNPACK takes (its ``XNN_MAX_TENSOR_DIMS``).
XNNPACK_AXES = 6
#: What LiteRT says when a delegate failed to prepare: the interpreter then refuses the file.
_PREPARE = re.compile(r"\(TfLite\w*Delegate\) failed to prepare")


def _interpreter(path: Path, *, delegates: bool) -> Any:
    """LiteRT's interpreter of ``path`` (TensorFlow's where LiteRT is not installed), with its
    default delegates or with the built-in kernels alone."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        import tensorflow as tf

        plain = tf.lite.experimental.OpResolverType
        kind = plain.AUTO if delegates else plain.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "tf.lite.Interpreter is deprecated": still in TF 2.21
            return tf.lite.Interpreter(model_path=str(path), experimental_op_resolver_type=kind)
    kind = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    return Interpreter(model_path=str(path), experimental_op_resolver_type=kind)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on descriptor 2
    if os.environ.get("CNNSPEC_TF_LOGS"):
        yield
        return
    with native_stderr_silenced():
        yield


def _layer_of(tensor: str, layers: Sequence[str]) -> str | None:
    """The Keras layer whose op made ``tensor`` (``model_1/layer_norm_1_1/moments/mean``), as
    :func:`~cnnspec.training.onednn.layer_of_node` finds it for a TensorFlow node."""
    return layer_of_node(tensor, layers)


def _described(path: Path, text: str, layers: Sequence[str]) -> str:
    """What the delegate failed on, from its message ``text``: each op with its layer and the
    axes of its input, read from the file through the built-in kernels (which load it)."""
    failed = [(op, int(node)) for op, node in _FAILED.findall(text)]
    parts: list[str] = []
    most = 0  # the most axes of a failed op's input
    try:
        with _quiet():
            plain = _interpreter(path, delegates=False)
            ops = {int(op["index"]): op for op in plain._get_ops_details()}
            tensors = {int(t["index"]): t for t in plain.get_tensor_details()}
    except Exception:  # (what the file holds is a courtesy: the refusal stands without it)
        ops, tensors = {}, {}
    for op, node in failed:
        details = ops.get(node)
        if details is None or not len(details["inputs"]) or not len(details["outputs"]):
            parts.append(f"a {op}")
            continue
        axes = len(tensors[int(details["inputs"][0])]["shape"])
        most = max(most, axes)
        layer = _layer_of(str(tensors[int(details["outputs"][0])]["name"]), layers)
        where = f"layer `{layer}`'s" if layer is not None else "a"
        parts.append(f"{where} {op} over a tensor of {axes} axes, the batch included")
    named = ", ".join(dict.fromkeys(parts)) or "an op of the model"
    said = f"LiteRT's default CPU delegate (XNNPACK) cannot prepare {named}"
    if most > XNNPACK_AXES:
        said += (
            f" (XNNPACK takes at most {XNNPACK_AXES}), so a default LiteRT interpreter would refuse "
            "the file; give the layer fewer axes (a reshape before it that joins two), or export "
            "it with -f onnx"
        )
    else:
        said += ", so a default LiteRT interpreter would refuse the file; export it with -f onnx"
    return said


def delegate_failure(path: Path, layers: Sequence[str]) -> str | None:
    """``None`` when LiteRT's default interpreter runs the ``.tflite`` file ``path`` (once, on
    zeros); else what its delegate failed on (``layers``: the Keras model's layer names, to
    name the one). Any other failure is raised as the interpreter raised it."""
    try:
        with _quiet():
            interpreter = _interpreter(path, delegates=True)
            interpreter.allocate_tensors()
            # XNNPACK prepares its ops at the first run, not when the tensors are allocated
            for given in interpreter.get_input_details():
                interpreter.set_tensor(given["index"], np.zeros(given["shape"], given["dtype"]))
            interpreter.invoke()
    except (RuntimeError, ValueError) as exc:
        text = str(exc)
        if not _PREPARE.search(text) and not _FAILED.search(text):
            raise
        return _described(path, text, layers)
    return None
