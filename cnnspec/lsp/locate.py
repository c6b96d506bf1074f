"""From a cursor to the spec: the spec path under it, the item it is in, the tree elements of
that item, and the ``${…}`` name under it.

The loader keeps a location for every key and value, so the path under the cursor is the one
whose key or value starts last at or before it (the deepest on a tie: ``- conv2d: {…}`` starts
the item and its kind key at the same column).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from cnnspec.errors import Loc, SpecPath
from cnnspec.ir import BlockCall, Conditional, Item, ModelIR, walk
from cnnspec.spec import loader
from cnnspec.spec.items import ITEM_EXTRAS
from cnnspec.spec.loader import SourceDoc


@dataclass(frozen=True)
class Cursor:
    """What lies under the cursor: a spec path, and whether it is on the key of that path."""

    path: SpecPath
    on_key: bool
    loc: Loc


def path_at(doc: SourceDoc, file: str, line: int, column: int) -> Cursor | None:
    """The spec path at 1-based ``line``:``column`` (code points) of ``file``."""
    best: tuple[tuple[int, int, int, int], Cursor] | None = None
    here = (line, column)
    for table, on_key in ((doc.locs, False), (doc.key_locs, True)):
        for path, loc in table.items():
            if loc.file != file or (loc.line, loc.column) > here:
                continue
            rank = (loc.line, loc.column, len(path), int(on_key))
            if best is None or rank > best[0]:
                best = (rank, Cursor(path, on_key, loc))
    return best[1] if best is not None else None


def item_path(path: SpecPath) -> SpecPath | None:
    """The layer item (``model[3]``, ``blocks.b.layers[0]``, …) that ``path`` lies in: the
    longest prefix that ends in a list index of a layer list."""
    for end in range(len(path), 0, -1):
        if isinstance(path[end - 1], int) and _is_layer_list(path[: end - 1]):
            return path[:end]
    return None


_LIST_KEYS = ("model", "augmentation", "layers", "body", "shortcut")


def _is_layer_list(path: SpecPath) -> bool:
    if not path:
        return False
    last = path[-1]
    if last in _LIST_KEYS:
        return True
    return len(path) >= 2 and isinstance(last, int) and path[-2] == "branches"


def kind_of(doc: SourceDoc, item: SpecPath) -> str | None:
    """The kind key of the item at ``item`` (a layer kind, block or combinator)."""
    value = loader.value_at(doc.data, item)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        keys = [k for k in value if k not in ITEM_EXTRAS]
        return keys[0] if len(keys) == 1 else None
    return None


def value_at(doc: SourceDoc, path: SpecPath) -> object:
    """The composed document's value at ``path`` (``None`` when there is none)."""
    return loader.value_at(doc.data, path)


class TreeIndex:
    """The resolved tree's elements by the spec path of their kind key (``model[3].conv2d``):
    a layer inside a block has one element per call. ``frozen``: the layers frozen when
    training starts (``CompiledSpec.frozen_at_start``), whose weights count as non-trainable."""

    def __init__(self, ir: ModelIR, frozen: frozenset[str] = frozenset()) -> None:
        self.ir = ir
        self.frozen = frozen
        self.by_path: dict[SpecPath, list[Item]] = {}
        self.calls: dict[str, list[BlockCall]] = {}
        self.nodes = {node.name: node for node in ir.nodes}
        tree = ir.tree
        if tree is None:
            return
        for element in walk([*tree.body, *tree.augmentation]):
            if isinstance(element, Conditional):
                continue
            self.by_path.setdefault(element.path, []).append(element)
            if isinstance(element, BlockCall):
                self.calls.setdefault(element.block, []).append(element)

    def at(self, doc: SourceDoc, path: SpecPath) -> tuple[SpecPath, list[Item]] | None:
        """The elements of the innermost item around ``path`` (elements are recorded under
        the path of the item's kind key: ``model[3].conv2d``, also for a bare ``- flatten``)."""
        for end in range(len(path), 0, -1):
            prefix = path[:end]
            found = self.by_path.get(prefix)
            if not found and isinstance(prefix[-1], int):
                kind = kind_of(doc, prefix)
                found = self.by_path.get((*prefix, kind)) if kind is not None else None
                prefix = (*prefix, kind)
            if found:
                return prefix, found
        return None

    def elements(self) -> Iterator[tuple[SpecPath, list[Item]]]:
        return iter(self.by_path.items())
