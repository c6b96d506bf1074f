"""The ids an ``inputs:`` or ``outputs:`` reference can name at a place in the spec, by the
resolver's scoping rules (:class:`cnnspec.spec.scope.Scope`), read from the written text:

- a block body sees its declared inputs (``blocks: b: inputs: [x, skip]``; ``input`` only when
  it declares none), its own ids and nothing outside it; the model sees ``input`` (and the
  name in ``input: {name: …}``) and its ids;
- an id is visible after its item, never in it or before it;
- the lists of a combinator see the ids before the combinator; a ``residual``'s shortcut also
  sees the ids of its body; a ``parallel`` branch does not see the other branches; a
  ``repeat``'s layers see the names it ``carry``-s, which stay visible after it;
- ids inside a combinator's lists are not visible after it.

Generated ids (``id: "c${i}"``) and hierarchical names (``c0.x``, ``cells[1].h``) are not
listed: only the names written as they are. A hierarchical name refers to the id of its first
segment (:func:`split_name`), looked up like any other; a repeat's ``next:`` values are read in
the iteration's scope after its layers (:func:`reading_place`).

A block call without an ``id`` has an automatic name (``double_1``: the block's name and a
counter), which the resolver exports like an id: ``double_1.c`` reaches the id ``c`` inside
the call. Its counter depends on what the resolver walked (repeats, ``when:``), so it is read
from the compiled tree (:data:`Automatic`), never counted from the text; given those names,
:func:`visible_ids` lists them where the call's ``id`` would be visible. Only for the first
segment of a hierarchical name: a bare automatic name is no reference.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from cnnspec.errors import Loc, SpecPath
from cnnspec.ir import INPUT
from cnnspec.lsp.locate import item_path, kind_of, value_at
from cnnspec.spec.loader import SourceDoc

#: The automatic names of the block calls made without an ``id``, by the path of the calling
#: item (``("model", 2)`` → ``{"double_1"}``; a call in a repeat without an id has one name
#: per iteration).
Automatic = Mapping[SpecPath, Collection[str]]

#: One segment after the first of a hierarchical name: ``.name`` or ``[index]``.
_SEGMENT = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


def split_name(ref: str) -> tuple[str, list[str | int]] | None:
    """A hierarchical reference as its first segment (an id) and the rest: ``c0.x`` →
    (``c0``, [``x``]), ``cells[1].h`` → (``cells``, [1, ``h``]); ``None`` when ``ref`` is not
    one (a plain id, or text the resolver would not read as a name)."""
    cut = min((i for i in (ref.find("."), ref.find("[")) if i > 0), default=-1)
    if cut <= 0:
        return None
    rest: list[str | int] = []
    at = cut
    while at < len(ref):
        match = _SEGMENT.match(ref, at)
        if match is None:
            return None
        rest.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        at = match.end()
    return ref[:cut], rest


def reading_place(doc: SourceDoc, near: SpecPath) -> SpecPath:
    """Where the resolver reads the reference at ``near``: a ``next:`` value is read in the
    iteration's scope after the repeat's layers (its carried names and inner ids), so it is
    looked up as if written just past the last of them; any other place is itself."""
    item = item_path(near)
    if item is None or len(near) != len(item) + 3 or near[len(item) + 1] != "next":
        return near
    body = (*item, near[len(item)])
    layers = value_at(doc, (*body, "layers"))
    return (*body, "layers", len(layers) if isinstance(layers, list) else 0)


@dataclass(frozen=True)
class Declared:
    """An id in scope: its name, where it is declared (``None``: the implicit ``input``)."""

    name: str
    loc: Loc | None
    detail: str


def block_inputs(doc: SourceDoc, block: str) -> list[Declared]:
    """The inputs a block declares (``inputs: [x, skip]`` or ``inputs: x``), with their places."""
    declared = value_at(doc, ("blocks", block, "inputs"))
    paths: list[tuple[object, SpecPath]]
    if isinstance(declared, str):
        paths = [(declared, ("blocks", block, "inputs"))]
    elif isinstance(declared, list):
        paths = [(name, ("blocks", block, "inputs", i)) for i, name in enumerate(declared)]
    else:
        return []
    return [
        Declared(name, doc.loc(path), f"input of block `{block}`")
        for name, path in paths
        if isinstance(name, str)
    ]


def is_block_input(path: SpecPath) -> bool:
    """Whether ``path`` is (in) a block's ``inputs:`` declaration."""
    return len(path) in (3, 4) and path[0] == "blocks" and path[2] == "inputs"


def is_output_reference(path: SpecPath) -> bool:
    """Whether ``path`` is (in) the spec's or a block's ``outputs:`` list."""
    return (bool(path) and path[0] == "outputs") or (
        len(path) >= 3 and path[0] == "blocks" and path[2] == "outputs"
    )


def root_of(path: SpecPath) -> SpecPath | None:
    """The layer list whose id scope ``path`` lies in: ``model``, ``augmentation`` or a
    block's ``layers``."""
    if not path:
        return None
    if path[0] in ("model", "outputs"):
        return ("model",)
    if path[0] == "augmentation":
        return ("augmentation",)
    if len(path) >= 2 and path[0] == "blocks" and isinstance(path[1], str):
        return ("blocks", path[1], "layers")
    return None


def visible_ids(doc: SourceDoc, near: SpecPath, automatic: Automatic | None = None) -> dict[str, Declared]:
    """The ids a reference at ``near`` may name, in the order they are defined (a later
    definition of a name replaces an earlier one, as the resolver's lookup does); with
    ``automatic``, also the automatic names of the block calls before it, each declared at
    its call's kind key (the first segment of ``double_1.c``)."""
    near = reading_place(doc, near)
    root = root_of(near)
    if root is None:
        return {}
    found: dict[str, Declared] = {}
    if root[0] == "blocks":
        named = block_inputs(doc, str(root[1]))
        for declared in named:
            _add(found, declared)
        if not named:
            _add(found, Declared(INPUT, None, f"the input of block `{root[1]}`"))
    else:
        _add(found, Declared(INPUT, doc.key_loc(("input",)), "the model's input"))
        name = value_at(doc, ("input", "name"))
        if root == ("model",) and isinstance(name, str):
            _add(found, Declared(name, doc.loc(("input", "name")), "the model's input"))
    item = item_path(near)
    if item is not None and item[: len(root)] == root:
        rest: SpecPath = item[len(root) :]
    elif is_output_reference(near):
        rest = ()  # after the whole list
    else:
        return found  # a block's `inputs:` declaration: its names only
    lists = root
    while True:
        items = value_at(doc, lists)
        if not isinstance(items, list):
            return found
        stop = rest[0] if rest and isinstance(rest[0], int) else len(items)
        for index in range(min(stop, len(items))):
            _declare(found, doc, (*lists, index), automatic)
        if len(rest) < 4 or not isinstance(rest[1], str):
            return found  # the item itself: what is before it
        body: SpecPath = (*lists, rest[0], rest[1])
        key = rest[2]
        if key == "branches":
            lists, rest = (*body, "branches", rest[3]), rest[4:]
            continue
        if key == "shortcut":  # the shortcut's scope is inside the residual's, after its body
            inner = value_at(doc, (*body, "body"))
            for index in range(len(inner) if isinstance(inner, list) else 0):
                _declare(found, doc, (*body, "body", index), automatic)
        if key == "layers" and rest[1] == "repeat":
            _carried(found, doc, body)
        lists, rest = (*body, key), rest[3:]


def _add(found: dict[str, Declared], declared: Declared) -> None:
    found.pop(declared.name, None)
    found[declared.name] = declared


def _declare(
    found: dict[str, Declared], doc: SourceDoc, item: SpecPath, automatic: Automatic | None = None
) -> None:
    """What the item at ``item`` leaves in its scope: the names a repeat carries, its id, or
    (with ``automatic``) the automatic names of the block call it makes without an id."""
    kind = kind_of(doc, item)
    if kind == "repeat":
        _carried(found, doc, (*item, kind))
    value = value_at(doc, (*item, "id"))
    if isinstance(value, str) and "${" not in value:
        loc = doc.loc((*item, "id"))
        where = f"line {loc.line}" if loc is not None else "?"
        _add(found, Declared(value, loc, f"{kind or 'item'} ({where})"))
    elif value is None and automatic is not None and kind is not None:
        loc = doc.key_loc((*item, kind))  # no id to point at: the call's kind key
        for name in sorted(automatic.get(item, ())):
            _add(found, Declared(name, loc, f"automatic name of a call of block `{kind}`"))


def _carried(found: dict[str, Declared], doc: SourceDoc, repeat: SpecPath) -> None:
    carry = value_at(doc, (*repeat, "carry"))
    if isinstance(carry, dict):
        for name in carry:
            if isinstance(name, str):
                _add(found, Declared(name, doc.key_loc((*repeat, "carry", name)), "carried by the repeat"))
