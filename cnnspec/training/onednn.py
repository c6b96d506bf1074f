"""TensorFlow CPU kernels that refuse a tensor Keras builds: oneDNN's rank limit.

TensorFlow's x86 builds run some ops through oneDNN (``TF_ENABLE_ONEDNN_OPTS``, on by default
there), whose softmax kernel takes at most 5 axes, the batch included: a ``dense`` with
``activation: softmax`` (or an ``activation: softmax`` layer) on a rank-5 tensor from a
``reshape`` builds in Keras and is valid for cnnspec, but the first step that runs it fails with
"Input dims must be <= 5 and >=1". TensorFlow's own kernels (``TF_ENABLE_ONEDNN_OPTS=0``) run it,
and so do other machines, so cnnspec does not refuse the spec: it says what happened and what
to do instead of reporting the error as its own bug. TensorFlow is not imported here: an error
of its can only come from a process that has imported it.

TensorFlow names the op by its node path (``softmax5_1/dense_1_1/Softmax``); where the model is
at hand (train, evaluate, predict, export), the path is mapped back to its Keras layer, named
after the spec's layer id by the builder, and so to where the spec writes it
(:func:`spec_layers`, :func:`layers_named`).
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cnnspec.training.modelfile import all_layers

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


class KernelRefusal(Exception):
    """A oneDNN refusal of a command's model, said with the layer (:func:`layers_named`)."""

    def __init__(self, limit: KernelLimit) -> None:
        super().__init__(limit.message)
        self.limit = limit


def layer_of_node(node: str, layers: Sequence[str]) -> str | None:
    """The Keras layer whose op TensorFlow names ``node`` (``model_1/layer_norm_1_1/moments/mean``:
    a scope per name, each with TensorFlow's ``_1`` when it opened again): the longest of
    ``layers`` that a scope of the path is, with or without such a suffix; ``None`` when none
    is."""
    for scope in node.split("/"):
        found = [name for name in layers if re.fullmatch(re.escape(name) + r"(_\d+)?", scope)]
        if found:
            return max(found, key=len)
    return None


def spec_layers(model: Any, ir: Any | None = None) -> dict[str, str]:
    """How to name each Keras layer of ``model`` in a message: ``layer `dense_1```, and where
    ``ir`` (the model's spec, as :class:`~cnnspec.ir.ModelIR`) has a node of that name (the
    builder names each layer after its node), its place in the spec (``spec.yaml:6:5,
    model[1].dense``). The model's own name is left out: it is a scope of every node path."""
    nodes = {node.name: node for node in ir.nodes} if ir is not None else {}
    named: dict[str, str] = {}
    for layer in all_layers(model):
        node = nodes.get(layer.name)
        where = [str(part) for part in (getattr(node, "loc", None), getattr(node, "path", "")) if part]
        named[layer.name] = f"layer `{layer.name}`" + (f" ({', '.join(where)})" if where else "")
    named.pop(getattr(model, "name", None), None)
    return named


@contextlib.contextmanager
def layers_named(
    model: Any, ir: Any | None = None, traced: Callable[[], object] | None = None
) -> Iterator[None]:
    """Run the block; a oneDNN refusal within it is raised as a :class:`KernelRefusal` that
    names the layer of ``model`` (:func:`spec_layers`) where TensorFlow named its node.

    A model called eagerly (``model(x)``) fails with no node named ("[Op:Softmax]", and Keras
    names only the class: "when calling Dense.call()"); ``traced``, when given, runs the model
    again as a graph (``model.predict_on_batch``), once, whose refusal names the node."""
    try:
        yield
    except Exception as exc:
        named = spec_layers(model, ir)
        limit = onednn_limit(exc, named)
        if limit is None:
            raise
        if traced is not None and _NODE.search(_text(exc)) is None:
            try:
                traced()
            except Exception as again:  # (the same refusal, with its node: else the first stands)
                limit = onednn_limit(again, named) or limit
        raise KernelRefusal(limit) from None


def _text(exc: BaseException) -> str:
    """What a TensorFlow error says (an ``OpError``'s message)."""
    return getattr(exc, "message", None) or str(exc)


def onednn_limit(exc: BaseException, layers: Mapping[str, str] | None = None) -> KernelLimit | None:
    """``exc`` said plainly when it is TensorFlow's oneDNN kernel refusing an input of too many
    axes, else ``None``. ``layers``: how to name each Keras layer of the model
    (:func:`spec_layers`), for the one the node path leads to; the path itself otherwise."""
    tf_errors = getattr(sys.modules.get("tensorflow"), "errors", None)
    if tf_errors is None or not isinstance(exc, tf_errors.OpError):
        return None
    text = _text(exc)
    limit = _LIMIT.search(text)
    if limit is None:
        return None
    node = _NODE.search(text)
    path = node.group(1).removeprefix("StatefulPartitionedCall/") if node else None
    layer = layer_of_node(path, list(layers or ())) if path else None
    if path and layer is not None:  # (the layer says where; its node path adds nothing for the user)
        op = f"the {path.rsplit('/', 1)[-1]} op of {(layers or {})[layer]}"
    elif path:
        op = f"the model's {path.rsplit('/', 1)[-1]} op (node {path})"
    else:
        op = "an op of the model"
    most = int(limit.group(1))
    return KernelLimit(
        f"TensorFlow's oneDNN CPU kernel cannot run {op}: it takes tensors of at most {most} "
        "axes, the batch included, and Keras gave it more (TensorFlow said: "
        f'"{limit.group(0)}")',
        "run with TF_ENABLE_ONEDNN_OPTS=0 in the environment (TensorFlow's own kernels take any "
        f"rank), or apply the op to a tensor of at most {most - 1} axes besides the batch (a "
        "reshape before it, and one back after)",
    )
