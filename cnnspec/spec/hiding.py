"""A spec's block that hides a ``use:`` library's block of the same name, and the warning that
says so where it changes what the spec builds.

The spec's own definition wins, in the library's blocks too: a library block that calls the
hidden name (``zoo:blocks/resnet``'s ``basic_residual`` calls ``projection`` for its shortcut)
builds with the spec's. That changes the model only where the spec calls such a block, from
``model`` or through other blocks it calls (in a dormant place too: a false ``when``, a
``repeat`` of 0 times, as ``unused-block`` counts calls); a spec that defines its own
``projection`` beside the library and never calls ``basic_residual`` builds nothing else, and
gets no word. A library checked alone has no ``model``: every block of it is for others to
call, so each caller counts there.

Composition records each hiding (:class:`HiddenBlock`, on :attr:`SourceDoc.hidden
<cnnspec.spec.loader.SourceDoc.hidden>`); the warnings are made once the document is whole
(:func:`hidden_block_warnings`): an ``extends`` child's ``model`` decides what its base's
hiding changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cnnspec.errors import Diagnostic, Loc, format_path

if TYPE_CHECKING:
    from cnnspec.spec.loader import SourceDoc

#: Keys of a layer item that hold no layers (ids of other layers).
_NOT_LAYERS = frozenset({"inputs"})


@dataclass(frozen=True)
class HiddenBlock:
    """The spec's block ``name`` (its key at ``loc``) hides that of the library ``ref`` (as
    ``use:`` names it), which the library's blocks ``callers`` call."""

    name: str
    ref: str
    callers: tuple[str, ...]
    loc: Loc | None


def hiding(
    name: str, ref: str, library_blocks: dict[str, Any], own: dict[str, Any], loc: Loc | None
) -> HiddenBlock:
    """The record of the spec's block ``name`` hiding the library ``ref``'s (whose blocks are
    ``library_blocks``; ``own``: the spec's blocks): the library's other blocks that call it,
    less those the spec hides too (they never build as the library wrote them)."""
    callers = tuple(
        other
        for other, block in library_blocks.items()
        if other != name
        and other not in own
        and isinstance(block, dict)
        and name in direct_calls(block.get("layers"))
    )
    return HiddenBlock(name, ref, callers, loc)


def hidden_block_warnings(doc: SourceDoc, *, library: bool = False) -> list[Diagnostic]:
    """The ``hidden-block`` warnings of the whole document ``doc``: one per block of its own
    that hides a library block which a block it calls calls (``library``: a library checked
    alone, whose blocks are all called, by others), naming those callers."""
    blocks = doc.data.get("blocks")
    blocks = blocks if isinstance(blocks, dict) else {}
    reached = None if library else called_blocks(doc.data.get("model"), blocks)
    found: list[Diagnostic] = []
    for hidden in doc.hidden:
        callers = [
            caller
            for caller in hidden.callers
            if reached is None
            # (as the document is now: an `extends` child or a --set may have changed the caller)
            or (caller in reached and hidden.name in direct_calls(_layers(blocks.get(caller))))
        ]
        if callers:
            found.append(_warning(hidden, callers))
    return found


def _warning(hidden: HiddenBlock, callers: list[str]) -> Diagnostic:
    name = hidden.name
    listed = ", ".join(f"`{c}`" for c in callers)
    which = (
        f"which its block {listed} calls: {callers[0]} builds"
        if len(callers) == 1
        else f"which its blocks {listed} call: they build"
    )
    return Diagnostic(
        f"block `{name}` hides {hidden.ref}'s `{name}`, {which} with this one",
        hidden.loc,
        format_path(("blocks", name)),
        code="hidden-block",
        hint=f"rename this block to keep the library's, e.g. `my_{name}`",
        severity="warning",
    )


def called_blocks(layers: Any, blocks: dict[str, Any]) -> set[str]:
    """The names of ``blocks`` that the layer list ``layers`` calls, and those the blocks it
    calls call in turn, wherever the call is written (a false ``when`` included)."""
    found: set[str] = set()
    stack = [layers]
    while stack:  # (no recursion: blocks may call blocks as deep as the loader allows)
        for name in direct_calls(stack.pop()):
            if name in blocks and name not in found:
                found.add(name)
                stack.append(_layers(blocks[name]))
    return found


def direct_calls(layers: Any) -> set[str]:
    """The names the layer list ``layers`` calls anywhere in it, without following blocks: a
    bare name or an item's keys (its kind's), in the list or in any list nested in its items (a
    residual's body and shortcut, a parallel's branches, a repeat's layers). Layer kinds and
    item keys (``id``, ``when``) are among them: callers keep those that name blocks."""
    names: set[str] = set()
    if not isinstance(layers, list):
        return names
    # (value, whether a mapping there is a layer item, whose keys call, or an item's settings)
    stack: list[tuple[Any, bool]] = [(layers, False)]
    while stack:
        value, item = stack.pop()
        if isinstance(value, list):
            for entry in value:
                if isinstance(entry, str):
                    names.add(entry)
                elif isinstance(entry, list | dict):  # (a list in a list: a parallel's branch)
                    stack.append((entry, True))
        elif isinstance(value, dict):
            for key, inner in value.items():
                if key in _NOT_LAYERS:
                    continue
                if item and isinstance(key, str):
                    names.add(key)
                if isinstance(inner, list | dict):
                    stack.append((inner, False))
    return names


def _layers(block: Any) -> Any:
    """A block's ``layers`` (``None`` for a block that is no mapping: the schema's to report)."""
    return block.get("layers") if isinstance(block, dict) else None
