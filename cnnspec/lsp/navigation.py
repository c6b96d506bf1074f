"""Go-to-definition and find-references over the composed, located document.

Definitions: a block call → the block (in the spec, a ``use:`` library or a zoo file); an
``inputs:``/``outputs:`` reference → the item with that ``id``; ``${name}`` → the var, block
parameter or loop variable; an ``extends``/``use`` entry → the file. References: every call of
a block, every reference to an id (in the scope the id is visible in).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from cnnspec.errors import Loc, SpecPath, format_path
from cnnspec.lsp.locate import Cursor, item_path, kind_of, value_at
from cnnspec.lsp.names import names_at
from cnnspec.lsp.text import in_expression, word_at
from cnnspec.spec.loader import SourceDoc

#: Keys of a combinator whose values are layer lists (``branches``: a list of them).
_SUBLISTS = ("body", "shortcut", "layers")


@dataclass(frozen=True)
class Target:
    """A place to jump to: a location, or the start of a whole file (``loc`` is ``None``)."""

    file: str
    loc: Loc | None = None


def layer_items(doc: SourceDoc) -> Iterator[tuple[SpecPath, str | None]]:
    """Every layer item of the document, anywhere (model, augmentation, block bodies and the
    lists of combinators), with its kind key."""
    roots: list[SpecPath] = [("model",), ("augmentation",)]
    blocks = doc.data.get("blocks")
    if isinstance(blocks, dict):
        roots += [("blocks", name, "layers") for name in blocks if isinstance(name, str)]
    stack = list(reversed(roots))
    while stack:
        list_path = stack.pop()
        items = value_at(doc, list_path)
        if not isinstance(items, list):
            continue
        for index in range(len(items)):
            path = (*list_path, index)
            kind = kind_of(doc, path)
            yield path, kind
            body = value_at(doc, (*path, kind)) if kind is not None else None
            if isinstance(body, dict):
                stack.extend((*path, kind, key) for key in _SUBLISTS if isinstance(body.get(key), list))
                branches = body.get("branches")
                if isinstance(branches, list):
                    stack.extend((*path, kind, "branches", i) for i in range(len(branches)))


def id_scope(path: SpecPath) -> SpecPath:
    """The id scope of a path: a block's body, or the spec itself."""
    return path[:2] if len(path) >= 2 and path[0] == "blocks" else ()


def definition(doc: SourceDoc, cursor: Cursor, line_text: str, column: int) -> Target | None:
    """Where the thing under the cursor is defined (``column``: 0-based code points)."""
    path = cursor.path
    word = word_at(line_text, column)
    if word is not None and in_expression(line_text, column):
        name = names_at(doc, path).get(word[0])
        return Target(name.loc.file, name.loc) if name is not None and name.loc is not None else None
    included = _included_file(doc, cursor)
    if included is not None:
        return Target(included)
    block = _block_at(doc, cursor)
    if block is not None:
        loc = doc.key_loc(("blocks", block))
        return Target(loc.file, loc) if loc is not None else None
    ref = _reference_at(doc, path)
    if ref is not None:
        found = find_id(doc, path, ref)
        return Target(found.file, found) if found is not None else None
    return None


def references(doc: SourceDoc, cursor: Cursor, include_declaration: bool = True) -> list[Loc]:
    """Every use of the block or id under the cursor (and its definition when asked)."""
    block = _block_at(doc, cursor)
    if block is not None:
        found = [
            loc
            for path, kind in layer_items(doc)
            if kind == block and (loc := doc.key_loc((*path, kind))) is not None
        ]
        definition_loc = doc.key_loc(("blocks", block))
        if include_declaration and definition_loc is not None:
            found.insert(0, definition_loc)
        return found
    path = cursor.path
    name = _reference_at(doc, path)
    if name is None and path and path[-1] == "id":
        value = value_at(doc, path)
        name = value if isinstance(value, str) else None
    if name is None:
        return []
    scope = id_scope(path)
    found = list(_references_to(doc, name, scope))
    declared = find_id(doc, path, name)
    if include_declaration and declared is not None:
        found.insert(0, declared)
    return found


def _references_to(doc: SourceDoc, name: str, scope: SpecPath) -> Iterator[Loc]:
    for path, _kind in layer_items(doc):
        if id_scope(path) != scope:
            continue
        refs = value_at(doc, (*path, "inputs"))
        if refs == name:
            loc = doc.loc((*path, "inputs"))
            if loc is not None:
                yield loc
        elif isinstance(refs, list):
            for i, ref in enumerate(refs):
                loc = doc.loc((*path, "inputs", i))
                if ref == name and loc is not None:
                    yield loc
    outputs = doc.data.get("outputs")
    if not scope and isinstance(outputs, list):
        for i, ref in enumerate(outputs):
            loc = doc.loc(("outputs", i))
            if ref == name and loc is not None:
                yield loc


def find_id(doc: SourceDoc, near: SpecPath, name: str) -> Loc | None:
    """The ``id: name`` visible from ``near``: in the same layer list first, then enclosing
    lists, then anywhere in the same scope (a block's body or the spec)."""
    scope = id_scope(near)
    candidates = [
        p for p, _ in layer_items(doc) if id_scope(p) == scope and value_at(doc, (*p, "id")) == name
    ]
    if not candidates:
        return None
    item = item_path(near)

    def closeness(path: SpecPath) -> int:
        shared = 0
        for a, b in zip(path, item or near):
            if a != b:
                break
            shared += 1
        return shared

    best = max(candidates, key=closeness)
    return doc.loc((*best, "id"))


def _block_at(doc: SourceDoc, cursor: Cursor) -> str | None:
    """The block named under the cursor: a call's kind key, or the key of its definition."""
    path = cursor.path
    blocks = doc.data.get("blocks")
    if not isinstance(blocks, dict):
        return None
    if len(path) == 2 and path[0] == "blocks" and cursor.on_key:
        return str(path[1])
    item = item_path(path)
    if item is None or len(path) > len(item) + 1:
        return None
    kind = kind_of(doc, item)
    if kind in blocks and ((len(path) == len(item) + 1 and path[-1] == kind) or len(path) == len(item)):
        return kind
    return None


def _reference_at(doc: SourceDoc, path: SpecPath) -> str | None:
    """The id an ``inputs``/``outputs`` value under the cursor refers to."""
    if (
        (path and path[-1] == "inputs")
        or (len(path) >= 2 and path[-2] == "inputs")
        or (path and path[0] == "outputs")
    ):
        value = value_at(doc, path)
        return value if isinstance(value, str) else None
    return None


def _included_file(doc: SourceDoc, cursor: Cursor) -> str | None:
    """The file an ``extends``/``use`` entry under the cursor names (as the composer recorded
    it, so ``zoo:`` names resolve the way the compiler resolves them)."""
    path = cursor.path
    if not path or path[0] not in ("extends", "use"):
        return None
    text = format_path(path)
    return next(
        (
            file
            for file, (loc, where) in doc.includes.items()
            if where == text and loc.file == cursor.loc.file
        ),
        None,
    )
