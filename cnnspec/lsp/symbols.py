"""The model outline (document symbols): the resolved tree as the user structured it.

A backbone item is one symbol (its id, the backbone spec, the cut point and its output shape)
with the layers it keeps as children. Block calls, ``repeat`` iterations, ``residual`` bodies
and shortcuts and ``parallel`` branches nest; every symbol's detail is its output shape (and a
layer's kind). An item with an ``id`` is named by it (a combinator's kind goes in its detail).
An item's range runs from its first key (``- id:`` above ``repeat:``) to its last line; the
``augmentation`` section's covers its own lines. Elements written elsewhere (a block body, in
this file or a ``use:`` library, a backbone's spec) take the range of the item in this file
that leads to them (the call), so the outline of a spec shows its whole architecture and every
child's range lies within its parent's, as LSP requires.
"""

from __future__ import annotations

from lsprotocol import types

from cnnspec.analysis.report import batched, shape_text
from cnnspec.errors import SpecPath
from cnnspec.ir import (
    Backbone,
    BlockCall,
    Conditional,
    Item,
    Layer,
    ModelIR,
    Parallel,
    Repeat,
    Residual,
    layers_of,
)
from cnnspec.lsp.diagnostics import to_range
from cnnspec.lsp.navigation import layer_items
from cnnspec.lsp.text import UTF16, Lines
from cnnspec.spec.loader import SourceDoc

#: Symbols listed in one outline; a hostile spec can expand to 20,000 layers.
MAX_SYMBOLS = 5_000


class _Outline:
    def __init__(self, doc: SourceDoc, file: str, text: str, ir: ModelIR | None, encoding: str) -> None:
        self.doc = doc
        self.file = file
        self.lines = Lines(text, encoding)
        self.ir = ir
        self.nodes = {node.name: node for node in ir.nodes} if ir is not None else {}
        self.count = 0
        #: Above zero while listing a backbone's items: their paths are in the backbone's own
        #: spec, so they must never be looked up in this document (they would match other text).
        self.foreign = 0
        #: The last line (1-based) of each path's own text in this file.
        self.last_line: dict[SpecPath, int] = {}
        #: The first (line, column), 1-based, of each path's own text in this file: an item's
        #: first key (``- id: cells`` above its ``repeat:``).
        self.first: dict[SpecPath, tuple[int, int]] = {}
        for table in (doc.locs, doc.key_locs):
            for path, loc in table.items():
                if loc.file != file:
                    continue
                at = (loc.line, loc.column)
                for end in range(len(path) + 1):
                    prefix = path[:end]
                    if self.last_line.get(prefix, 0) < loc.line:
                        self.last_line[prefix] = loc.line
                    if prefix not in self.first or at < self.first[prefix]:
                        self.first[prefix] = at

    def ranges(
        self, path: SpecPath, fallback: types.Range, within: SpecPath = ()
    ) -> tuple[types.Range, types.Range]:
        """(full range, selection range) of the item at ``path``, or ``fallback`` twice when it
        is not written in the text of the enclosing symbol (the item at ``within``): in
        another file, or in a block's body (a call's children lie within the call)."""
        loc = self.doc.key_loc(path) if path else None
        if loc is None or not self.written(path, within):
            return fallback, fallback
        item = _item(path)
        last = max(self.last_line.get(item, loc.line), loc.line) - 1
        end = types.Position(last, self.lines.units(last, len(self.lines.line(last))))
        selection = to_range(self.lines.span(loc.line, loc.column))
        line, column = min(self.first.get(item, (loc.line, loc.column)), (loc.line, loc.column))
        start = types.Position(line - 1, self.lines.units(line - 1, column - 1))
        return types.Range(start, end), selection

    def written(self, path: SpecPath, within: SpecPath) -> bool:
        """Whether the element at ``path`` is written in this file inside the item ``within``."""
        if self.foreign:
            return False
        loc = self.doc.key_loc(path) if path else None
        return loc is not None and loc.file == self.file and _item(path)[: len(within)] == within

    def shape(self, name: str) -> str:
        if self.ir is not None and name == self.ir.input_name:
            return shape_text(batched(self.ir.input_shape))
        node = self.nodes.get(name)
        return shape_text(batched(node.shape)) if node is not None else "?"

    def items(
        self, items: list[Item], fallback: types.Range, within: SpecPath = ()
    ) -> list[types.DocumentSymbol]:
        out = []
        for index, item in enumerate(items):
            if self.count >= MAX_SYMBOLS:
                out.append(_untold(len(items) - index, fallback))
                break
            symbol = self.item(item, fallback, within)
            if symbol is not None:
                out.append(symbol)
        return out

    def item(self, item: Item, fallback: types.Range, within: SpecPath = ()) -> types.DocumentSymbol | None:
        """The symbol of ``item``, inside the item ``within`` of this file (whose range is
        ``fallback``): LSP wants a child's range within its parent's."""
        if isinstance(item, Conditional):
            return self.item(item.item, fallback, within) if item.item is not None else None
        if _pruned([item], empty=self.foreign > 0):
            return None  # e.g. after a backbone's cut: nothing of it is in the model
        self.count += 1
        full, selection = self.ranges(item.path, fallback, within)
        if self.written(item.path, within):
            within = _item(item.path)
        if isinstance(item, Layer):
            if not item.live:
                return None
            node = item.node
            return types.DocumentSymbol(
                name=node.name,
                detail=f"{node.kind} → {shape_text(batched(node.shape))}",
                kind=types.SymbolKind.Field,
                range=full,
                selection_range=selection,
            )
        if isinstance(item, BlockCall):
            name = f"{item.block} {item.prefix.rstrip('_')}".strip()
            children = self.items(item.body, full, within)
            kind = types.SymbolKind.Function
        elif isinstance(item, Repeat):
            name = f"repeat ×{item.times}"
            children = [
                self.group(f"iteration {i}", iteration, full, within)
                for i, iteration in enumerate(item.iterations)
                if not _pruned(iteration, empty=self.foreign > 0)
            ]
            kind = types.SymbolKind.Array
        elif isinstance(item, Residual):
            name = "residual"
            children = [self.group("body", item.body, full, within)]
            if item.shortcut and not _pruned(item.shortcut, empty=self.foreign > 0):
                children.append(self.group("shortcut", item.shortcut, full, within))
            children += self.items([x for x in (item.merge, item.activation) if x is not None], full, within)
            kind = types.SymbolKind.Struct
        elif isinstance(item, Backbone):
            return self.backbone(item, full, selection, within)
        elif isinstance(item, Parallel):
            name = "parallel"
            children = [
                self.group(f"branch {i}", b, full, within)
                for i, b in enumerate(item.branches)
                if not _pruned(b, empty=self.foreign > 0)
            ]
            children += self.items([x for x in (item.merge, item.activation) if x is not None], full, within)
            kind = types.SymbolKind.Struct
        else:
            return None
        detail = f"→ {self.shape(item.output)}"
        named = item.extras.get("id")
        if named and not isinstance(item, BlockCall):  # a call's name holds its id already
            # named by its id, as a layer is; what it is goes in the detail
            name, detail = str(named), f"{name} {detail}"
        return types.DocumentSymbol(
            name=name,
            detail=detail,
            kind=kind,
            range=full,
            selection_range=selection,
            children=children,
        )

    def backbone(
        self, item: Backbone, full: types.Range, selection: types.Range, within: SpecPath
    ) -> types.DocumentSymbol:
        """A backbone item: named by its id (or the prefix of its layers), its children the
        items of the backbone spec it keeps, all at the item's range (written in another file)."""
        self.foreign += 1
        try:
            children = self.items(item.body, full, within)
        finally:
            self.foreign -= 1
        until = f" up to {item.until}" if item.until else ""
        return types.DocumentSymbol(
            name=str(item.extras.get("id") or item.prefix.rstrip("_") or "backbone"),
            detail=f"backbone {item.spec}{until} → {self.shape(item.output)}",
            kind=types.SymbolKind.Module,
            range=full,
            selection_range=selection,
            children=children,
        )

    def group(
        self,
        name: str,
        items: list[Item],
        full: types.Range,
        within: SpecPath = (),
        selection: types.Range | None = None,
    ) -> types.DocumentSymbol:
        """A list of items (an iteration, a body, a branch: at their container's range; the
        augmentation section: its own, selecting its key)."""
        return types.DocumentSymbol(
            name=name,
            kind=types.SymbolKind.Namespace,
            range=full,
            selection_range=selection or full,
            children=self.items(items, full, within),
        )


def _untold(count: int, where: types.Range) -> types.DocumentSymbol:
    """The last symbol of a list the outline stops in (:data:`MAX_SYMBOLS`): how many of its
    items are not listed. Without it the outline of a spec of 5,000 layers simply ended, its
    last items (the pooling and the head) missing as if the spec had none."""
    return types.DocumentSymbol(
        name=f"… {count:,} more item(s) not listed: the outline stops at {MAX_SYMBOLS:,} symbols",
        kind=types.SymbolKind.Null,
        range=where,
        selection_range=where,
    )


def _pruned(items: list[Item], empty: bool = False) -> bool:
    """Whether ``items`` hold layers and none of them is live: all after a backbone's cut
    (their container would be an empty "→ ?" symbol). A list without layers (a ``repeat`` of
    0 times) is as written, unless ``empty`` (in a backbone: a pooling head after the cut
    that its vars leave empty is not part of what the spec takes)."""
    layers = [layer.live for layer in layers_of(items)]
    return not any(layers) if layers or empty else False


def _item(path: SpecPath) -> SpecPath:
    """The item a kind key's path (``model[3].conv2d``) belongs to: ``model[3]``; a section's
    path (``augmentation``) is its own."""
    return path[:-1] if len(path) > 1 and isinstance(path[-1], str) else path


def outline(
    doc: SourceDoc, file: str, text: str, ir: ModelIR | None, encoding: str = UTF16
) -> list[types.DocumentSymbol]:
    """The document symbols of the spec ``file`` (its current ``text``): the resolved tree when
    it compiled, else its layer items as written (without shapes)."""
    builder = _Outline(doc, file, text, ir, encoding)
    whole = types.Range(types.Position(0, 0), types.Position(0, 0))
    if ir is not None and ir.tree is not None:
        symbols = builder.items(ir.tree.body, whole)
        if ir.tree.augmentation:
            full, selection = builder.ranges(("augmentation",), whole)
            symbols.insert(0, builder.group("augmentation", ir.tree.augmentation, full, selection=selection))
        return _apart(symbols)
    written = []
    untold = 0
    for path, kind in layer_items(doc):
        if len(path) != 2 or path[0] != "model" or kind is None:
            continue
        if builder.count >= MAX_SYMBOLS:
            untold += 1
            continue
        builder.count += 1
        full, selection = builder.ranges((*path, kind), whole)
        written.append(
            types.DocumentSymbol(
                name=kind, kind=types.SymbolKind.Field, range=full, selection_range=selection
            )
        )
    if untold:
        written.append(_untold(untold, written[-1].range))
    return _apart(written)


def _at(position: types.Position) -> tuple[int, int]:
    return (position.line, position.character)


def _apart(
    symbols: list[types.DocumentSymbol], end: types.Position | None = None
) -> list[types.DocumentSymbol]:
    """``symbols`` (siblings, in the text's order) with no range reaching into the next one's,
    nor past ``end`` (their parent's), and their children so, all the way down. A range ends
    where its item's last line ends, so the items of a flow-style list on one line
    (``model: [{conv2d: …}, relu]``) each ran to the line's end over the items after it: the
    editor's breadcrumbs and "select enclosing" named the wrong item there. A range that only
    stands for its item elsewhere (the fallback of a block's body, empty) is left alone."""
    ordered = sorted(
        (s for s in symbols if _at(s.range.start) < _at(s.range.end)), key=lambda s: _at(s.range.start)
    )
    # the first start after each symbol's (a later sibling may start where it does): found from
    # the end once, not by scanning the siblings after each symbol (quadratic in a long model)
    following: list[types.Position | None] = [None] * len(ordered)
    for index in range(len(ordered) - 2, -1, -1):
        start, after = ordered[index].range.start, ordered[index + 1].range.start
        following[index] = after if _at(after) > _at(start) else following[index + 1]
    for index, symbol in enumerate(ordered):
        limits = [p for p in (end, following[index]) if p is not None]
        for limit in limits:
            if _at(limit) < _at(symbol.range.end):
                symbol.range = types.Range(symbol.range.start, limit)
        if _at(symbol.range.end) < _at(symbol.selection_range.end):  # (the name stays inside)
            symbol.selection_range = types.Range(symbol.selection_range.start, symbol.range.end)
        if symbol.children:
            _apart(symbol.children, symbol.range.end)
    return symbols
