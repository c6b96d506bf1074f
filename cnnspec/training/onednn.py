"""TensorFlow CPU kernels that refuse a tensor Keras builds: oneDNN's rank limit, and the
dilated transposed convolution TensorFlow's own kernels do not run.

TensorFlow's x86 builds run some ops through oneDNN (``TF_ENABLE_ONEDNN_OPTS``, on by default
there), whose softmax kernel takes at most 5 axes, the batch included: a ``dense`` with
``activation: softmax`` (or an ``activation: softmax`` layer) on a rank-5 tensor from a
``reshape`` builds in Keras and is valid for cnnspec, but the first step that runs it fails with
"Input dims must be <= 5 and >=1". TensorFlow's own kernels (``TF_ENABLE_ONEDNN_OPTS=0``) run it,
and so do other machines, so cnnspec does not refuse the spec: it says what happened and what
to do instead of reporting the error as its own bug. TensorFlow is not imported here: an error
of its can only come from a process that has imported it.

The other way round, TensorFlow's own CPU kernel of a transposed convolution takes no
``dilation_rate`` above 1 ("Current CPU implementations do not yet support dilation rates larger
than 1"), where oneDNN's kernel and GPUs run it. TensorFlow leaves oneDNN off on some x86 CPUs
(an AMD EPYC with AVX2 and no AVX-512, seen here), so the same spec trains on one machine and
stops on the next: said the same way, with ``TF_ENABLE_ONEDNN_OPTS=1`` as the way on.

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
#: TensorFlow's own CPU kernel refusing a dilated transposed convolution (conv_grad_input_ops.h).
_DILATION = re.compile(r"Current CPU implementations do not yet support dilation rates larger than 1")
#: Where TensorFlow says the op ran: "Detected at node StatefulPartitionedCall/model_1/dense_1/Softmax"
#: or "[[{{node StatefulPartitionedCall/model_1/dense_1/Softmax}}]]".
_NODE = re.compile(r"(?:Detected at node |\{\{node )([^\s{}]+)")


@dataclass(frozen=True)
class KernelLimit:
    """What a CPU kernel refused: the error's message, the hint, and the environment setting
    with which TensorFlow picks kernels that run it (the resume command ``train`` prints)."""

    message: str
    hint: str
    setting: str = "TF_ENABLE_ONEDNN_OPTS=0"


class KernelRefusal(Exception):
    """A CPU kernel's refusal of a command's model, said with the layer (:func:`layers_named`)."""

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
    """Run the block; a kernel's refusal within it is raised as a :class:`KernelRefusal` that
    names the layer of ``model`` (:func:`spec_layers`) where TensorFlow named its node.

    A model called eagerly (``model(x)``) fails with no node named ("[Op:Softmax]", and Keras
    names only the class: "when calling Dense.call()"); ``traced``, when given, runs the model
    again as a graph (``model.predict_on_batch``), once, whose refusal names the node."""
    try:
        yield
    except Exception as exc:
        named = spec_layers(model, ir)
        limit = kernel_limit(exc, named)
        if limit is None:
            raise
        if traced is not None and _NODE.search(_text(exc)) is None:
            try:
                traced()
            except Exception as again:  # (the same refusal, with its node: else the first stands)
                limit = kernel_limit(again, named) or limit
        raise KernelRefusal(limit) from None


def _text(exc: BaseException) -> str:
    """What a TensorFlow error says (an ``OpError``'s message)."""
    return getattr(exc, "message", None) or str(exc)


def kernel_limit(exc: BaseException, layers: Mapping[str, str] | None = None) -> KernelLimit | None:
    """``exc`` said plainly when it is a TensorFlow CPU kernel refusing an op of the model
    (oneDNN's rank limit, or TensorFlow's own kernel and a dilated transposed convolution),
    else ``None``. ``layers``: how to name each Keras layer of the model (:func:`spec_layers`),
    for the one the node path leads to; the path itself otherwise."""
    tf_errors = getattr(sys.modules.get("tensorflow"), "errors", None)
    if tf_errors is None or not isinstance(exc, tf_errors.OpError):
        return None
    text = _text(exc)
    limit, dilation = _LIMIT.search(text), _DILATION.search(text)
    if limit is None and dilation is None:
        return None
    op = _op_named(text, layers or {})
    if dilation is not None:
        return KernelLimit(
            f"TensorFlow's own CPU kernel (oneDNN off) cannot run {op}: it takes no dilation_rate "
            f'above 1 in a transposed convolution (TensorFlow said: "{dilation.group(0)}")',
            "run with TF_ENABLE_ONEDNN_OPTS=1 in the environment (oneDNN's kernel runs it; "
            "TensorFlow turns oneDNN on by itself only on some CPUs), on a GPU, or with "
            "dilation_rate 1 on the transposed convolution",
            setting="TF_ENABLE_ONEDNN_OPTS=1",
        )
    assert limit is not None
    most = int(limit.group(1))
    return KernelLimit(
        f"TensorFlow's oneDNN CPU kernel cannot run {op}: it takes tensors of at most {most} "
        "axes, the batch included, and Keras gave it more (TensorFlow said: "
        f'"{limit.group(0)}")',
        "run with TF_ENABLE_ONEDNN_OPTS=0 in the environment (TensorFlow's own kernels take any "
        f"rank), or apply the op to a tensor of at most {most - 1} axes besides the batch (a "
        "reshape before it, and one back after)",
    )


def _op_named(text: str, layers: Mapping[str, str]) -> str:
    """The op a TensorFlow error ``text`` names by its node path, said with its layer where
    ``layers`` has the one the path leads to."""
    node = _NODE.search(text)
    path = node.group(1).removeprefix("StatefulPartitionedCall/") if node else None
    layer = layer_of_node(path, list(layers)) if path else None
    if path and layer is not None:  # (the layer says where; its node path adds nothing for the user)
        return f"the {path.rsplit('/', 1)[-1]} op of {layers[layer]}"
    if path:
        return f"the model's {path.rsplit('/', 1)[-1]} op (node {path})"
    return "an op of the model"
