"""``cnnspec import``: a saved Keras model → a readable spec.

source (read the configuration) → graph (check it) → mapping (each layer → a registry kind)
→ structure (combinators) → fold (blocks and repeats) → writer (YAML). Only ``keras:NAME`` and
``--weights`` import Keras; the rest is JSON in, text out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnnspec.errors import SpecError
from cnnspec.importer.fold import fold
from cnnspec.importer.graph import Graph, read_graph
from cnnspec.importer.mapping import map_layers
from cnnspec.importer.rewrite import hard_sigmoids
from cnnspec.importer.source import Source, import_error, read_source
from cnnspec.importer.structure import Structurer, spec_id
from cnnspec.importer.verify import align
from cnnspec.importer.writer import spec_text
from cnnspec.layers.reverse import Reversed


@dataclass
class Imported:
    """An imported spec and what the import found."""

    text: str
    name: str
    source: Source
    source_layers: int
    blocks: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # source layer → the spec model's layer
    rewritten: int = 0  # raw-op hard sigmoids written as one activation layer

    @property
    def lines(self) -> int:
        return len(self.text.splitlines())


def import_source(source: str | Source, *, weights_file: str | None = None, folding: bool = True) -> Imported:
    """Import SOURCE (a ``.keras`` file, a JSON config or ``keras:NAME``) as spec text.

    The spec is compiled and checked layer by layer against the source before it is returned
    (:mod:`cnnspec.importer.verify`); should a folded spec not reproduce the source, the
    unfolded one is used. ``weights_file``: the name the spec's top-level ``weights:`` refers to
    (the caller writes it). ``folding``: find blocks and repeats.
    """
    read = source if isinstance(source, Source) else read_source(source)
    try:
        graph = read_graph(read.config)
    except RecursionError:
        raise import_error("the configuration is nested too deeply", "$.config.layers") from None
    layers = sum(not n.is_operation for n in graph.nodes)
    graph, aliases = hard_sigmoids(graph)
    mapped = map_layers(graph)
    name = spec_id(graph.name).lower()
    chosen = flat = _attempt(read, graph, mapped, name, weights_file, False, layers)
    if folding:
        try:
            folded = _attempt(read, graph, mapped, name, weights_file, True, layers)
        except SpecError:
            folded = None  # a fold that does not reproduce the source is not written
        # folding that finds nothing worth naming makes a longer spec, not a more readable one
        if folded is not None and folded.lines < flat.lines:
            chosen = folded
    chosen.rewritten = len(aliases) // 2
    for operation, layer in aliases.items():
        if layer in chosen.names:  # a dropped operation's output is that layer's now
            chosen.names[operation] = chosen.names[layer]
    return chosen


def _attempt(
    read: Source,
    graph: Graph,
    mapped: dict[str, Reversed],
    name: str,
    weights_file: str | None,
    folding: bool,
    layers: int,
) -> Imported:
    from cnnspec.analysis.passes import compile_text

    items = Structurer(graph, mapped).items()
    blocks = fold(items) if folding else []
    header = [
        f"Imported by `cnnspec import` from {read.path.name if read.path else read.label}: "
        f"{layers} Keras layers"
        + (f", {len(blocks)} block{'s' if len(blocks) > 1 else ''}." if blocks else "."),
    ]
    # checked without the weights key: the file it names is written after the check
    checked = spec_text(name, graph.input_shape, blocks, items, header)
    names = align(compile_text(checked, f"{name}.yaml"), items, graph)
    text = (
        spec_text(name, graph.input_shape, blocks, items, header, weights_file) if weights_file else checked
    )
    return Imported(text, name, read, layers, [b.name for b in blocks], names)


__all__ = ["Imported", "import_source"]
