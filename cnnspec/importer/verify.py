"""Check an imported spec against its source before anything is written (no TensorFlow).

The spec is compiled by the front end; its layers, in the order the resolver makes them, line
up one to one with the source layers the items stand for. Each pair must have the same Keras
class, the same input shapes (Keras saves every layer's input shape in ``build_config``), read
the counterparts of the same layers (in the same order, but for add and multiply), and, when it
has trainable weights, be frozen in both or in neither; and the spec's model returns the
counterparts of the source's outputs, in the source's order. The pairing also names each source
layer's counterpart in the spec's model, which ``--weights`` uses to relabel the weights file.

A mismatch is cnnspec's (the hint asks for the model) unless the source contradicts itself: an
input size edited by hand leaves the layers that read the input saved reading the old one, and
a layer's size edited by hand (a convolution's ``filters``) the layers that read it.
"""

from __future__ import annotations

from typing import Any

from cnnspec.importer.graph import Graph
from cnnspec.importer.items import Item, source_names
from cnnspec.importer.source import import_error
from cnnspec.layers.registry import get_kind
from cnnspec.layers.reverse import commutative, shown


def _shapes(saved: Any) -> list[tuple[int | None, ...]] | None:
    """build_config's input_shape (one shape or a list of them) without the batch axis."""
    if not isinstance(saved, list) or not saved:
        return None
    if isinstance(saved[0], list):
        # (a list of shapes throughout, else not a shape Keras saves: nothing to compare)
        return [tuple(s[1:]) for s in saved] if all(isinstance(s, list) and s for s in saved) else None
    return [tuple(saved[1:])]


def _fits(saved: list[tuple[int | None, ...]], shapes: list[tuple[int, ...]]) -> bool:
    """The spec's input shapes are the saved ones, a size saved unknown (``None``: a nested
    body built for any size, :func:`cnnspec.importer.nested.nested_models`) taking any value."""
    return len(saved) == len(shapes) and all(
        len(a) == len(b) and all(x is None or x == y for x, y in zip(a, b, strict=True))
        for a, b in zip(saved, shapes, strict=True)
    )


def align(compiled: Any, items: list[Item], graph: Graph) -> dict[str, str]:
    """Source layer name → the spec model's layer name; a located error on any mismatch."""
    order = [name for item in items for name in source_names(item)]
    nodes = [n for n in compiled.ir.nodes if n.name != compiled.ir.input_name]
    if len(order) != len(nodes):
        # a source that contradicts itself can make the spec's model another (a residual whose
        # two sides a hand-edited size made differ gets a projection): the layers paired until
        # the two part say so first
        _pair(compiled, list(zip(order, nodes, strict=False)), graph, prefix=True)
        raise import_error(
            f"the imported spec has {len(nodes)} layers; the source has {len(order)}",
            "$.config.layers",
            hint="please report this model: import could not reproduce it",
        )
    pairs = _pair(compiled, list(zip(order, nodes, strict=True)), graph)
    _check_outputs(compiled, graph, pairs)
    return pairs


class _Parted(Exception):
    """The spec's layers and the source's part (:func:`_pair` of a prefix only)."""


def _pair(compiled: Any, layers: list[tuple[str, Any]], graph: Graph, prefix: bool = False) -> dict[str, str]:
    """Pair each source layer with the spec's layer in its place (:func:`align`'s checks).
    ``prefix``: the spec has another number of layers; pair until they part, raising only
    where the source contradicts itself."""
    pairs: dict[str, str] = {}

    def mismatch(message: str, path: str) -> Exception:
        return _Parted() if prefix else import_error(message, path, hint=_REPORT)

    try:
        for source_name, node in layers:
            source = graph.node(source_name)
            kind = get_kind(node.kind)
            if kind is None or kind.keras_class != source.class_name:
                raise mismatch(
                    f"layer {shown(source_name)} ({shown(source.class_name, str)}) came out as "
                    f"{node.name!r} ({node.kind})",
                    source.path,
                )
            saved = _shapes(source.input_shape)
            if saved is not None and not _fits(saved, [tuple(s) for s in node.input_shapes]):
                # (a source that contradicts itself is said so first)
                _check_input_sizes(graph)
                _check_saved_shapes(graph, source_name, saved, node, pairs)
                raise mismatch(
                    f"layer {shown(source_name)} reads shapes {shown(saved, str)} in the source, "
                    f"{list(node.input_shapes)} in the spec",
                    f"{source.path}.build_config",
                )
            frozen = source.config.get("trainable") is False
            if node.counts.trainable and node.trainable == frozen:  # (weightless layers: either way)
                raise mismatch(
                    f"layer {shown(source_name)} is {'frozen' if frozen else 'trainable'} in the source, "
                    f"its counterpart {node.name!r} not in the spec",
                    f"{source.path}.config.trainable",
                )
            expected = [
                compiled.ir.input_name if i == graph.input_name else pairs.get(i) for i in source.inputs
            ]
            actual = list(node.inputs)
            if commutative(kind):
                expected, actual = sorted(map(str, expected)), sorted(map(str, actual))
            if actual != expected:
                raise mismatch(
                    f"layer {shown(source_name)} reads {shown(source.inputs)} in the source; its "
                    f"counterpart {node.name!r} reads {list(node.inputs)} in the spec",
                    f"{source.path}.inbound_nodes",
                )
            pairs[source_name] = node.name
    except _Parted:
        pass
    return pairs


_REPORT = "please report this model: import could not reproduce it"


def _check_input_sizes(graph: Graph) -> None:
    """Refuse a source whose layers that read the model input were saved reading another size
    than its input layer's ``batch_shape`` says (an input size edited by hand in config.json):
    the spec is built from the input's size, so its layers cannot read what the source's saved
    shapes say, through no fault of the import."""
    wanted = tuple(graph.input_shape)
    node = graph.node(graph.input_name)
    # (a Sequential model without an InputLayer: its size is the model's, saved at $.config)
    where = f" ({node.path}.config.batch_shape)" if node.path != "$.config" else ""
    for layer in graph.nodes:
        saved = _shapes(layer.input_shape)
        if saved is None or len(saved) != len(layer.inputs):
            continue  # (no saved shapes, or not one per input: nothing to compare)
        for name, shape in zip(layer.inputs, saved, strict=True):
            if name == graph.input_name and not _fits([shape], [wanted]):
                raise import_error(
                    f"the source contradicts itself: its input {shown(node.name)} takes "
                    f"{list(wanted)}{where}, but layer "
                    f"{shown(layer.name)} was saved reading {shown(list(shape), str)} from it "
                    "(its build_config)",
                    f"{layer.path}.build_config",
                    hint="an input size edited by hand: set batch_shape back, or remove the "
                    "build_config of the layers (Keras saves both right when the model is built at "
                    "the new size and saved again)",
                )


def _check_saved_shapes(
    graph: Graph, source_name: str, saved: list[tuple[int | None, ...]], node: Any, pairs: dict[str, str]
) -> None:
    """Refuse a source whose layer was saved (its ``build_config``) reading another shape than
    the layer it reads gives as configured: a size edited by hand in config.json (a
    convolution's ``filters``), the build_config of its readers still reading the old one. The
    spec's model is built from the configuration, each layer's output by the registry's rules
    (checked against Keras'); its layers before this one read what the source's were saved
    reading, and this one reads the counterparts of the same layers, so the saved shape and
    the configuration cannot both be right. Says nothing where the spec's layer reads other
    layers (the import's fault, said by the caller)."""
    source = graph.node(source_name)
    if len(saved) != len(source.inputs):
        return
    spec_shapes = dict(zip(node.inputs, (tuple(s) for s in node.input_shapes), strict=False))
    for name, shape in zip(source.inputs, saved, strict=True):
        counterpart = pairs.get(name)
        if name == graph.input_name or counterpart not in spec_shapes:
            return  # (the input's size: _check_input_sizes; another layer read: not the file's)
        if _fits([shape], [spec_shapes[counterpart]]):
            continue
        reads = graph.node(name)
        raise import_error(
            f"the source contradicts itself: layer {shown(source_name)} was saved reading "
            f"{shown(list(shape), str)} from {shown(name)} (its build_config), but "
            f"{shown(name)} ({shown(reads.class_name, str)}) gives {list(spec_shapes[counterpart])} "
            "as configured",
            f"{source.path}.build_config",
            hint=f"a configuration edited by hand: set the values of {shown(name)} (or of the layers "
            "before it) back, or remove the build_config of the layers that read it (Keras saves "
            "both right when the model is built and saved again); a file as Keras saved it: please "
            "report this model",
        )


def _check_outputs(compiled: Any, graph: Graph, pairs: dict[str, str]) -> None:
    """The spec's model returns the counterparts of the source's outputs, in their order."""
    expected = [
        compiled.ir.input_name if name == graph.input_name else pairs.get(name) for name in graph.outputs
    ]
    actual = list(compiled.ir.outputs)
    if actual != expected:
        raise import_error(
            f"the source returns {shown(graph.outputs)}; the imported spec returns {actual}, "
            f"not their counterparts {expected} in this order",
            "$.config.output_layers",
            hint="please report this model: import could not reproduce it",
        )
