"""Go-to-definition and find-references over the composed, located document.

Definitions: a block call → the block (in the spec, a ``use:`` library or a zoo file); an
``inputs:``/``outputs:`` reference → the item with that ``id``, the block input or the name a
``repeat`` carries that the resolver would bind it to (:mod:`cnnspec.lsp.scopes`); ``${name}``
→ the var, block parameter or loop variable; an ``extends``/``use`` entry → the file.
References: every call of a block, every reference that means the same declaration.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from cnnspec.errors import Loc, SpecPath, format_path
from cnnspec.lsp.locate import Cursor, item_path, kind_of, value_at
from cnnspec.lsp.names import names_at
from cnnspec.lsp.scopes import is_block_input, is_output_reference, root_of, visible_ids
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
    declared = find_id(doc, path, name)
    found = [
        loc for site, loc in _references_to(doc, name, root_of(path)) if find_id(doc, site, name) == declared
    ]
    if include_declaration and declared is not None:
        found.insert(0, declared)
    return found


def _references_to(doc: SourceDoc, name: str, root: SpecPath | None) -> Iterator[tuple[SpecPath, Loc]]:
    """Every reference to ``name`` in the id scope ``root`` (its path and place)."""
    if root is None:
        return
    for path, _kind in layer_items(doc):
        if path[: len(root)] != root:
            continue
        refs = value_at(doc, (*path, "inputs"))
        sites: list[tuple[SpecPath, object]] = [((*path, "inputs"), refs)]
        if isinstance(refs, list):
            sites = [((*path, "inputs", i), ref) for i, ref in enumerate(refs)]
        for site, ref in sites:
            loc = doc.loc(site)
            if ref == name and loc is not None:
                yield site, loc
    where: SpecPath = ("outputs",) if root == ("model",) else (*root[:2], "outputs")
    outputs = value_at(doc, where) if root != ("augmentation",) else None
    sites = [(where, outputs)]
    if isinstance(outputs, list):
        sites = [((*where, i), ref) for i, ref in enumerate(outputs)]
    for site, ref in sites:
        loc = doc.loc(site)
        if ref == name and loc is not None:
            yield site, loc


def find_id(doc: SourceDoc, near: SpecPath, name: str) -> Loc | None:
    """Where the id ``name`` that a reference at ``near`` means is declared: the item's
    ``id:``, a block's declared input, or a name a ``repeat`` carries, by the resolver's
    scoping rules (:mod:`cnnspec.lsp.scopes`). A declaration is its own definition."""
    if (near and near[-1] == "id") or is_block_input(near):
        return doc.loc(near) if value_at(doc, near) == name else None
    declared = visible_ids(doc, near).get(name)
    return declared.loc if declared is not None else None


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
    """The id an ``inputs``/``outputs`` value under the cursor refers to (or declares: a
    block's ``inputs``)."""
    in_inputs = (path and path[-1] == "inputs") or (len(path) >= 2 and path[-2] == "inputs")
    if in_inputs or is_output_reference(path):
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
