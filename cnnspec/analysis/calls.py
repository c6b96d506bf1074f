"""Where a layer came from, after resolution: the block calls and backbone items around it.

The resolver puts the call stack on the errors it finds while it walks (``in block 'b' called
from model[4] (x.yaml:21:5)``). A check that runs on the resolved model (:mod:`cnnspec.analysis
.tasks`) finds a layer, not a walk: its location is the layer's line inside a block or a
backbone spec, which alone does not say which call brought it in. :func:`call_notes` finds
the same notes again in the structured tree, innermost first, as the resolver gives them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cnnspec.errors import Note, call_note, format_path
from cnnspec.ir import Backbone, BlockCall, Item, Layer

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec


def call_notes(compiled: CompiledSpec, layer: str) -> tuple[Note, ...]:
    """The notes of the block calls and backbones around the layer named ``layer``, innermost
    first; ``()`` at model level (or for a name the tree does not hold)."""
    found = _stack(compiled.ir.tree.body, layer, (), compiled.doc)
    return found or ()


def _stack(items: list[Item], layer: str, around: tuple[Note, ...], doc: Any) -> tuple[Note, ...] | None:
    """``around`` extended by the calls between ``items`` and the layer, or ``None`` when the
    layer is not among them. ``doc``: the document ``items`` are written in (a backbone's own
    spec inside one), which locates a backbone item."""
    for item in items:
        if isinstance(item, Layer):
            if item.node.name == layer:
                return around
            continue
        inner_doc = doc
        if isinstance(item, BlockCall):
            # the item's path, as the resolver's notes give it (not the block's key inside it)
            site = item.path[:-1] if item.path and item.path[-1] == item.block else item.path
            inner = (call_note(item.block, site, item.loc), *around)
        elif isinstance(item, Backbone):
            inner, inner_doc = (backbone_note(item, doc), *around), item.doc or doc
        else:
            inner = around
        found = _stack(list(item.children()), layer, inner, inner_doc)
        if found is not None:
            return found
    return None


def backbone_note(item: Backbone, doc: Any) -> Note:
    """``in backbone 'zoo:resnet50' at model[0] (inner.yaml:5:15)``: where ``doc`` (the document
    that writes it; ``None``: unlocated) has the backbone item ``item``."""
    item_path = format_path(item.path[:-1])  # (…, "backbone"): the item is the mapping holding it
    loc = doc.loc(item.path) if doc is not None else None
    return Note(f"in backbone {item.spec!r} at {item_path}" + (f" ({loc})" if loc else ""), loc, item_path)
