"""Constants a layer holds as eager tensors, traced as constants for the ONNX converter.

Some Keras layers keep values that are not weights as eager ``tf.Tensor`` attributes, read by
their ``call``: Keras' ``Normalization`` (cnnspec's ``normalization``) holds its mean and
variance so, reshaped to the input's rank from the given numbers or from its ``mean`` and
``variance`` weights (``finalize_state``). A ``tf.function`` traced over such a layer captures
each tensor as a placeholder input of its graph, fed from outside at every call. tf2onnx 1.17
(``convert.from_function``, which ``model.export(format="onnx")`` drives) takes every
non-resource input of the graph for a model input: the ONNX file then asks for
``…/normalization_1/Sub/y:0`` beside the image, and onnxruntime refuses to run it ("Required
inputs … are missing from input feed"), at any rank. Captured variables are frozen to
constants by the converter; captured tensors are not.

Held as NumPy arrays while the model is traced, the same values become ``Const`` ops of the
graph, which every converter takes: the layer computes the same numbers (the export is
verified against the model's own outputs). No layer is named here: every eager tensor an
attribute of a layer holds is one the traced graph would capture.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from cnnspec.training.modelfile import all_layers


@contextlib.contextmanager
def tensors_as_constants(model: Any) -> Iterator[int]:
    """Within the block, every eager tensor (not a variable) that a layer of ``model`` holds
    as an attribute is its NumPy value, so that a trace makes it a constant; yields how many
    were replaced. Each is put back afterwards, whatever happened, so the model is left as it
    was (the values are the same: only what a trace captures differs)."""
    import tensorflow as tf

    replaced: list[tuple[Any, str, Any]] = []
    try:
        for layer in all_layers(model):  # (an ensemble's members' too)
            for attribute, value in list(vars(layer).items()):
                if (
                    isinstance(value, tf.Tensor)
                    and not isinstance(value, tf.Variable)
                    and hasattr(value, "numpy")  # (eager: a graph tensor has no value to hold)
                ):
                    replaced.append((layer, attribute, value))
                    setattr(layer, attribute, value.numpy())
        yield len(replaced)
    finally:
        for layer, attribute, value in reversed(replaced):
            setattr(layer, attribute, value)
