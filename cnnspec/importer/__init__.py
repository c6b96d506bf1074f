"""``cnnspec import``: a saved Keras model → a readable spec.

source (read the configuration) → graph (check it) → mapping (each layer → a registry kind)
→ structure (combinators) → fold (blocks and repeats) → writer (YAML). Only ``keras:NAME`` and
``--weights`` import Keras; the rest is JSON in, text out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cnnspec.importer.fold import fold
from cnnspec.importer.graph import read_graph
from cnnspec.importer.mapping import map_layers
from cnnspec.importer.source import Source, read_source
from cnnspec.importer.structure import Structurer, spec_id
from cnnspec.importer.writer import spec_text


@dataclass
class Imported:
    """An imported spec and what the import found."""

    text: str
    name: str
    source: Source
    source_layers: int
    blocks: list[str] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return len(self.text.splitlines())


def import_source(source: str | Source, *, weights_file: str | None = None, folding: bool = True) -> Imported:
    """Import SOURCE (a ``.keras`` file, a JSON config or ``keras:NAME``) as spec text.

    ``weights_file``: the name the spec's top-level ``weights:`` refers to (written by the caller).
    ``folding``: find blocks and repeats (off: one item per layer or combinator).
    """
    read = source if isinstance(source, Source) else read_source(source)
    graph = read_graph(read.config)
    mapped = map_layers(graph)
    items = Structurer(graph, mapped).items()
    blocks = fold(items) if folding else []
    name = spec_id(graph.name).lower()
    header = [
        f"Imported by `cnnspec import` from {read.label}: {len(graph.nodes) - 1} layers"
        + (f", {len(blocks)} blocks." if blocks else "."),
    ]
    text = spec_text(name, graph.input_shape, blocks, items, header, weights_file)
    return Imported(text, name, read, len(graph.nodes), [b.name for b in blocks])


__all__ = ["Imported", "import_source"]
