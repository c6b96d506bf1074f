"""TensorFlow CPU kernels that refuse a tensor Keras builds: oneDNN's rank limit.

TensorFlow's x86 builds run some ops through oneDNN (``TF_ENABLE_ONEDNN_OPTS``, on by default
there), whose softmax kernel takes at most 5 axes, the batch included: a ``dense`` with
``activation: softmax`` (or an ``activation: softmax`` layer) on a rank-5 tensor from a
``reshape`` builds in Keras and is valid for cnnspec, but the first step that runs it fails with
"Input dims must be <= 5 and >=1". TensorFlow's own kernels (``TF_ENABLE_ONEDNN_OPTS=0``) run it,
and so do other machines, so cnnspec does not refuse the spec: it says what happened and what
to do instead of reporting the error as its own bug. TensorFlow is not imported here: an error
of its can only come from a process that has imported it.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

#: oneDNN's check of a kernel's input rank, as TensorFlow words it (mkl_softmax_op.cc).
_LIMIT = re.compile(r"Input dims must be <= (\d+)")
#: Where TensorFlow says the op ran: "Detected at node StatefulPartitionedCall/model_1/dense_1/Softmax"
#: or "[[{{node StatefulPartitionedCall/model_1/dense_1/Softmax}}]]".
_NODE = re.compile(r"(?:Detected at node |\{\{node )([^\s{}]+)")


@dataclass(frozen=True)
class KernelLimit:
    """What a oneDNN kernel refused: the error's message and the hint."""

    message: str
    hint: str


def onednn_limit(exc: BaseException) -> KernelLimit | None:
    """``exc`` said plainly when it is TensorFlow's oneDNN kernel refusing an input of too many
    axes, else ``None``."""
    tf_errors = getattr(sys.modules.get("tensorflow"), "errors", None)
    if tf_errors is None or not isinstance(exc, tf_errors.OpError):
        return None
    text = getattr(exc, "message", None) or str(exc)
    limit = _LIMIT.search(text)
    if limit is None:
        return None
    node = _NODE.search(text)
    path = node.group(1).removeprefix("StatefulPartitionedCall/") if node else None
    op = f"the model's {path.rsplit('/', 1)[-1]} op (node {path})" if path else "an op of the model"
    most = int(limit.group(1))
    return KernelLimit(
        f"TensorFlow's oneDNN CPU kernel cannot run {op}: it takes tensors of at most {most} "
        "axes, the batch included, and Keras gave it more (TensorFlow said: "
        f'"{limit.group(0)}")',
        "run with TF_ENABLE_ONEDNN_OPTS=0 in the environment (TensorFlow's own kernels take any "
        f"rank), or apply the op to a tensor of at most {most - 1} axes besides the batch (a "
        "reshape before it, and one back after)",
    )
