"""Go-to-definition and find-references over the composed, located document.

Definitions: a block call → the block (in the spec, a ``use:`` library or a zoo file); an
``inputs:``/``outputs:`` reference, a ``carry:``/``next:`` value → the item with that ``id``,
the block input or the name a ``repeat`` carries that the resolver would bind it to
(:mod:`cnnspec.lsp.scopes`); a hierarchical name (``c0.x``, ``c0[1]``, ``cells[1].h``) → the
item of its first segment, and through block calls (and a repeat's layers) the id its other
segments name; ``${name}`` → the var, block parameter or loop variable; an ``extends``/``use``
entry → the file; a backbone item (its kind key or its ``spec:``) → the backbone's spec file,
its ``until:`` → the id (or hierarchical name) of the backbone spec's model that its segment
under the cursor leads to (``double_1`` of ``double_1.c``: the call item; its ``c``: the id in
the block), else the layer of that name (a zoo model, or a spec file of the spec's folder); a
``freeze``/``unfreeze`` pattern (``training``'s or a phase's, :mod:`cnnspec.lsp.patterns`) on a
segment another follows (``blk`` of ``blk.c``) → what that segment names; elsewhere → what
declares the name: a layer's ``id:`` (else its kind), a block call or backbone item (its
``id:``, else its kind key; a call in a library or a backbone's spec: that call), a repeat or
iteration (``st``, ``st[1]``: the repeat's id); a glob → every model item (or layer) whose
layers it covers, in model order (:func:`definitions`; :func:`definition` gives the first); a
``search.space`` key → the var's key under ``vars:``, the setting's key or the layer parameter
it sets (the key read as the search reads it), nothing when the document does not write it.
References (of a block or an id; a var's are :mod:`cnnspec.lsp.references`, by rename's
scoping): every call of a block, every reference that means the same declaration: in
``inputs`` (a list, a single id, or a block call's mapping by name), ``outputs``, ``carry`` and
``next`` values and ``next`` keys, hierarchical names by their first segment, and for an id of
the model the freeze/unfreeze patterns that name it exactly (a glob names no id; from such a
pattern, the id's references: of the id its segment under the cursor leads to, as a rename
there reads it, :mod:`cnnspec.lsp.segments`). Each is located
at the start of its written text, so its range is the whole token (``c0.x``, ``"c0[1]"``): the
text the reader sees refer to the id.

A block call without an ``id`` is named automatically (``double_1``), and ``double_1.c``
reaches the id ``c`` inside it as ``d2.c`` does through ``id: d2``. Given the automatic names
of the compiled tree (:func:`automatic_names`; the counter is the resolver's, not the text's),
such a name's first segment is the call item (its kind key) and its later segments are
followed into the block like an id's: definition goes to ``c`` in the block, references of
``double_1.c`` are every use of the call's automatic name, declared at the call.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cnnspec.errors import Loc, SpecError, SpecPath, format_path
from cnnspec.fileio import user_path
from cnnspec.ir import BlockCall, ModelIR, Node, walk
from cnnspec.layers.registry import REGISTRY
from cnnspec.lsp.locate import Cursor, item_path, kind_of, value_at
from cnnspec.lsp.names import names_at
from cnnspec.lsp.patterns import PatternNames, model_ir, pattern_at, written_patterns
from cnnspec.lsp.scopes import (
    Automatic,
    is_block_input,
    is_output_reference,
    root_of,
    split_name,
    visible_ids,
)
from cnnspec.lsp.segments import lookup, prefix_at, segment_at
from cnnspec.lsp.text import in_expression, word_at
from cnnspec.spec.backbone import KIND as BACKBONE
from cnnspec.spec.compose import Reader
from cnnspec.spec.loader import SourceDoc, display_name
from cnnspec.spec.zoo import is_zoo_ref, resolve_ref

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


def automatic_names(doc: SourceDoc, ir: ModelIR) -> dict[SpecPath, frozenset[str]]:
    """The automatic names of the block calls of ``ir`` made by an item without an ``id``,
    by the item's path in ``doc`` (the document ``ir`` was compiled from). A call's prefix is
    its scope's prefix, its local name and ``_``, the local name being ``{block}_{n}``, so
    the name is read off the prefix's end; the counter is the resolver's (one per scope and
    block, over the iterations of a repeat without an id), which the text cannot tell."""
    tree = ir.tree
    if tree is None:
        return {}
    found: dict[SpecPath, set[str]] = {}
    for element in walk([*tree.body, *tree.augmentation]):
        if not isinstance(element, BlockCall) or len(element.path) < 2:
            continue
        item = element.path[:-1]
        if value_at(doc, (*item, "id")) is not None:
            continue  # named by its id: no automatic name
        name = element.prefix[:-1]
        match = re.search(rf"(?:^|_)({re.escape(element.block)}_\d+)$", name)
        if match is not None:
            found.setdefault(item, set()).add(match.group(1))
    return {item: frozenset(names) for item, names in found.items()}


def definition(
    doc: SourceDoc,
    cursor: Cursor,
    line_text: str,
    column: int,
    automatic: Automatic | None = None,
    *,
    ir: ModelIR | None = None,
    reader: Reader | None = None,
) -> Target | None:
    """Where the thing under the cursor is defined: the first of :func:`definitions`."""
    found = definitions(doc, cursor, line_text, column, automatic, ir=ir, reader=reader)
    return found[0] if found else None


def definitions(
    doc: SourceDoc,
    cursor: Cursor,
    line_text: str,
    column: int,
    automatic: Automatic | None = None,
    *,
    ir: ModelIR | None = None,
    reader: Reader | None = None,
) -> list[Target]:
    """Where the thing under the cursor is defined (``column``: 0-based code points;
    ``automatic``: the automatic names of the block calls, :func:`automatic_names`): one place,
    or for a glob freeze/unfreeze pattern every item it covers (none: nothing to go to).
    ``ir``: the compiled model of ``doc`` (else ``doc`` is resolved when a pattern needs its
    names); ``reader``: the editor's text of an open file (a backbone's spec, unsaved)."""
    path = cursor.path
    word = word_at(line_text, column)
    if word is not None and in_expression(line_text, column):
        name = names_at(doc, path).get(word[0])
        return [Target(name.loc.file, name.loc)] if name is not None and name.loc is not None else []
    pattern = pattern_at(doc, path, cursor.on_key)
    if pattern is not None:
        found_all = _pattern_definitions(doc, cursor, pattern, line_text, column, automatic, ir)
        return [Target(loc.file, loc) for loc in found_all]
    if is_until(doc, cursor):
        found = _until_definition(doc, cursor, line_text, column, reader)
        return [Target(found.file, found)] if found is not None else []
    var = backbone_var(doc, cursor, reader)
    if var is not None:
        return [Target(var[1].file, var[1])]
    if len(path) == 3 and path[:2] == ("search", "space") and isinstance(path[2], str):
        found = _space_definition(doc, path[2])
        return [Target(found.file, found)] if found is not None else []
    target = _definition(doc, cursor, automatic, line_text, column)
    return [target] if target is not None else []


def _pattern_definitions(
    doc: SourceDoc,
    cursor: Cursor,
    pattern: str,
    line_text: str,
    column: int,
    automatic: Automatic | None,
    ir: ModelIR | None,
) -> list[Loc]:
    """Where the freeze/unfreeze ``pattern`` under the cursor is declared. On a segment that
    another follows (``blk`` of ``blk.c``, the index of ``st[1].inner``): what the pattern read
    up to it names, as rename and references read it (:mod:`cnnspec.lsp.segments`): the id it
    leads to (``st[1]``: the repeat ``st``), else the group of that name (one the compiler
    names); elsewhere (its last segment, a glob): what the whole pattern names."""
    segment = None if _GLOB.search(pattern) else segment_at(pattern, cursor, line_text, column, index=True)
    named = pattern
    if segment is not None and segment[1] < len(pattern):
        named = lookup(pattern[: segment[1]])
        found = find_reference(doc, ("outputs",), named, automatic)
        if found is not None:
            return [found]
    model = model_ir(doc, ir)
    names = PatternNames(model) if model is not None else None
    return names.declarations(doc, named) if names is not None else []


def _definition(
    doc: SourceDoc, cursor: Cursor, automatic: Automatic | None, line_text: str, column: int
) -> Target | None:
    """The definition of what is under the cursor outside an expression, a pattern, an
    ``until:`` and a search space key: a file, a block, an id (of a hierarchical reference,
    the one its segment under the cursor leads to), a carried name."""
    path = cursor.path
    included = _included_file(doc, cursor) or _backbone_file(doc, cursor)
    if included is not None:
        return Target(included)
    block = block_at(doc, cursor)
    if block is not None:
        loc = doc.key_loc(("blocks", block))
        return Target(loc.file, loc) if loc is not None else None
    if carry_key_at(cursor):
        loc = doc.key_loc(path)  # a carried name's declaration is its own definition
        return Target(loc.file, loc) if loc is not None else None
    ref = reference_at(doc, cursor)
    if ref is not None:
        segment = _reference_segment(doc, cursor, ref, line_text, column)
        found = find_reference(doc, path, segment, automatic) if segment is not None else None
        found = found or find_reference(doc, path, ref, automatic)
        return Target(found.file, found) if found is not None else None
    return None


def references(
    doc: SourceDoc,
    cursor: Cursor,
    include_declaration: bool = True,
    automatic: Automatic | None = None,
    *,
    line_text: str = "",
    column: int | None = None,
) -> list[Loc]:
    """Every use of the block or id under the cursor (and its definition when asked); with
    ``automatic`` (:func:`automatic_names`), a block call's automatic name counts as the
    call's id, declared at its kind key. Given the cursor's ``column`` (0-based code points of
    ``line_text``), a hierarchical freeze/unfreeze pattern is read by its segment under the
    cursor (``blk`` of ``blk.c``: the id ``blk``); without, by its whole name."""
    block = block_at(doc, cursor)
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
    referred = _referred(doc, cursor, automatic, line_text, column)
    if referred is None:
        return []
    path, name, declared = referred
    if declared is not None:  # (`st[1]` read up to an index: the id `st`)
        name = _id_name(doc, path, name, declared, automatic) or name
    return id_references(doc, path, name, declared, include_declaration, automatic)


def id_references(
    doc: SourceDoc,
    path: SpecPath,
    name: str,
    declared: Loc | None,
    include_declaration: bool = True,
    automatic: Automatic | None = None,
) -> list[Loc]:
    """Every use of the id ``name`` declared at ``declared`` that a reference at ``path`` (its
    scope) reads, the freeze/unfreeze patterns naming it, and its declaration when asked (what
    :func:`references` lists for an id under the cursor; an ``until:`` reads the model's scope,
    ``("outputs",)``)."""
    found = [
        loc
        for site, ref, loc in reference_sites(doc, root_of(path))
        if (
            _may_name(ref, name)
            and referred_id(doc, site, ref, automatic) == name
            and find_id(doc, site, name, automatic) == declared
        )
        or _names_inside(doc, site, ref, name, declared, automatic)
    ]
    if declared is not None:
        found += [loc for loc in _patterns_naming(doc, declared, automatic) if loc not in found]
    if include_declaration and declared is not None:
        found.insert(0, declared)
    return list(dict.fromkeys(found))  # (a YAML alias reads one place twice: `inputs: *ins`)


def declaration(
    doc: SourceDoc,
    cursor: Cursor,
    automatic: Automatic | None = None,
    *,
    line_text: str = "",
    column: int | None = None,
) -> tuple[str, Loc] | None:
    """The id under the cursor whose references :func:`references` lists (not a block's
    name) and where it is declared: a hierarchical name's first segment, a call's automatic
    name (with ``automatic``: declared at the call's kind key), a pattern's segment under the
    cursor (given its ``column``, as :func:`references`); ``None`` when there is none, or it
    is declared nowhere the text says."""
    referred = _referred(doc, cursor, automatic, line_text, column)
    if referred is None or referred[2] is None:
        return None
    path, name, declared = referred
    named = _id_name(doc, path, name, declared, automatic)
    return (named, declared) if named is not None else None


def _id_name(
    doc: SourceDoc, path: SpecPath, name: str, declared: Loc, automatic: Automatic | None
) -> str | None:
    """The id that ``name`` (an id, or a dotted name read up to a segment: ``stem.inner``,
    ``st[1]``) leads to at ``declared``: ``inner``, ``st``; ``None`` when none of its segments
    leads there."""
    if split_name(name) is None or find_id(doc, path, name, automatic) == declared:
        return name
    # a dotted name (`stem.inner`): the segment that leads to the declaration
    for match in re.finditer(r"[.\[]|$", name):
        if find_reference(doc, path, name[: match.start()], automatic) == declared:
            return re.sub(r"\[\d+\]$", "", name[: match.start()]).rsplit(".", 1)[-1]
    return None


def _referred(
    doc: SourceDoc,
    cursor: Cursor,
    automatic: Automatic | None,
    line_text: str = "",
    column: int | None = None,
) -> tuple[SpecPath, str, Loc | None] | None:
    """The id under the cursor: the path its scope is read from, its name, its declaration
    (a pattern's: that of its segment under the cursor, given the cursor's ``column``)."""
    path = cursor.path
    declared: Loc | None
    pattern = pattern_at(doc, path, cursor.on_key)
    if pattern is not None:  # a freeze/unfreeze pattern: the model's id it names, if it is one
        path = ("outputs",)  # (read where the model's ids are all visible)
        # read up to the segment under the cursor (`blk` of `blk.c`), as a rename there reads it
        segment = prefix_at(pattern, cursor, line_text, column) if column is not None else None
        name: str | None = segment if segment is not None else pattern.replace("/", ".")
        # an id, or one reached through a dotted name (`stem.inner`: the `inner` of the call)
        declared = find_id(doc, path, name, automatic) or find_reference(doc, path, name, automatic)
        if declared is None:
            return None
    elif carry_key_at(cursor):  # a carried name: declared by its key
        name = str(path[-1])
        declared = doc.key_loc(path)
    else:
        name = reference_at(doc, cursor)
        if name is None and path and path[-1] == "id":
            value = value_at(doc, path)
            name = value if isinstance(value, str) else None
        if name is None:
            return None
        segment = _reference_segment(doc, cursor, name, line_text, column)
        if segment is not None:  # `st` or `inner` of `st[1].inner`: what the segment leads to
            declared = find_id(doc, path, segment, automatic) or find_reference(doc, path, segment, automatic)
            if declared is not None:
                return path, segment, declared
        name = referred_id(doc, path, name, automatic)
        declared = find_id(doc, path, name, automatic)
    return path, name, declared


def _reference_segment(
    doc: SourceDoc, cursor: Cursor, ref: str, line_text: str, column: int | None
) -> str | None:
    """A hierarchical reference (``st[1].inner`` in an ``inputs:``) read up to its segment
    under the cursor, as a rename there reads it (:mod:`cnnspec.lsp.segments`); ``None`` for
    a plain name, without the cursor's ``column``, or off its segments (on its quote)."""
    if column is None or split_name(ref) is None:
        return None
    return prefix_at(ref, cursor, line_text, column)


#: What makes a pattern a glob: `*`, `?`, or a `[` that opens no iteration index.
_GLOB = re.compile(r"[*?]|\[(?!\d+\])")


def _patterns_naming(doc: SourceDoc, declared: Loc, automatic: Automatic | None) -> list[Loc]:
    """The freeze/unfreeze patterns (and ``learning_rate_scale`` keys) that name the id
    declared at ``declared``: itself (``head``), or through a segment of a hierarchical name
    (``stem`` and ``inner`` of ``stem.inner``, ``/`` for ``.`` as freezing reads them). A glob
    names no id: which ids it covers is a matter of the compiled names, not of references."""
    found = []
    for _, pattern, loc in written_patterns(doc):
        if _GLOB.search(pattern):  # (`st[1].inner` is a name: an iteration, no character class)
            continue
        dotted = pattern.replace("/", ".")
        ends = [m.start() for m in re.finditer(r"[.\[]", dotted)] + [len(dotted)]
        if any(find_reference(doc, ("outputs",), dotted[:end], automatic) == declared for end in ends):
            found.append(loc)
    return found


def _may_name(ref: str, name: str) -> bool:
    """Whether ``ref`` is ``name`` or a hierarchical name under it, judged from the text
    alone (a cheap test before the scope lookups)."""
    return ref == name or (ref.startswith(name) and ref[len(name) : len(name) + 1] in (".", "["))


def _names_inside(
    doc: SourceDoc, site: SpecPath, ref: str, name: str, declared: Loc | None, automatic: Automatic | None
) -> bool:
    """Whether the hierarchical ``ref`` at ``site`` names the declaration through a later
    segment (``loop[1].m`` means the ``m`` in the repeat ``loop``'s layers)."""
    split = split_name(ref)
    return split is not None and name in split[1] and find_reference(doc, site, ref, automatic) == declared


def referred_id(doc: SourceDoc, near: SpecPath, ref: str, automatic: Automatic | None = None) -> str:
    """The id the reference ``ref`` at ``near`` names: itself when an id of that name is in
    scope, else the first segment of a hierarchical name (``c0.x``, ``c0[1]`` → ``c0``; with
    ``automatic``, ``double_1.c`` → the call's automatic name ``double_1``)."""
    split = split_name(ref)
    if split is None or find_id(doc, near, ref) is not None:
        return ref
    return split[0]


def find_reference(
    doc: SourceDoc, near: SpecPath, ref: str, automatic: Automatic | None = None
) -> Loc | None:
    """Where the reference ``ref`` at ``near`` is defined: an id (:func:`find_id`), or for a
    hierarchical name, the item of its first segment followed as far as the spec's own text
    allows (:func:`_inside`): ``c0.x`` → the id ``x`` in the body of the block ``c0`` calls;
    with ``automatic``, ``double_1.c`` → the id ``c`` in the block of the call named
    ``double_1`` automatically."""
    name = referred_id(doc, near, ref, automatic)
    found = find_id(doc, near, name, automatic)
    split = split_name(ref)
    if found is None or name == ref or split is None:
        return found
    return _inside(doc, found, split[1], automatic)


def _inside(doc: SourceDoc, loc: Loc, rest: list[str | int], automatic: Automatic | None = None) -> Loc:
    """The declaration the segments ``rest`` name inside the item whose ``id:`` is at ``loc``:
    in a call of a block of this document, ``.name`` is an id of the block's body (or its
    input) and ``[i]`` its ``i``-th output; in an item with a ``layers`` list (a repeat),
    ``[i]`` picks an iteration (the same text) and ``.name`` an id of its layers. Where the
    text says no more (a block of another file, a generated id), the last place found."""
    blocks = doc.data.get("blocks")
    item = item_declared_at(doc, loc)
    segments = list(rest)
    while segments and item is not None:
        kind = kind_of(doc, item)
        segment = segments.pop(0)
        found: Loc | None = None
        if kind is not None and isinstance(blocks, dict) and kind in blocks:
            outputs = value_at(doc, ("blocks", kind, "outputs"))
            listed = [outputs] if isinstance(outputs, str) else outputs if isinstance(outputs, list) else []
            name = segment
            if isinstance(segment, int):
                name = listed[segment] if 0 <= segment < len(listed) else None
            if isinstance(name, str):
                found = find_id(doc, ("blocks", kind, "outputs"), name, automatic)
        else:
            layers = value_at(doc, (*item, kind, "layers")) if kind is not None else None
            if not isinstance(layers, list):
                break
            if isinstance(segment, int):
                continue  # one iteration: its ids are those the layers' text declares
            found = find_id(doc, (*item, kind, "layers", len(layers)), segment, automatic)
        if found is None:
            break
        loc = found
        item = item_declared_at(doc, found)
    return loc


def item_declared_at(doc: SourceDoc, loc: Loc) -> SpecPath | None:
    """The layer item whose ``id:`` is written at ``loc``, or whose kind key is (the
    declaration of a block call's automatic name); ``None``: another declaration, a block
    input or a carried name, which has no inside to follow."""
    return next(
        (
            path
            for path, kind in layer_items(doc)
            if doc.loc((*path, "id")) == loc or (kind is not None and doc.key_loc((*path, kind)) == loc)
        ),
        None,
    )


def reference_sites(doc: SourceDoc, root: SpecPath | None) -> Iterator[tuple[SpecPath, str, Loc]]:
    """Every reference written in the id scope ``root``: its path, its text and its place.
    ``inputs`` (a single id, a list, or a block call's mapping: its values), ``carry`` and
    ``next`` values (the keys of ``next`` too: they name carried names), and ``outputs``."""
    if root is None:
        return
    for path, kind in layer_items(doc):
        if path[: len(root)] != root:
            continue
        yield from _written_refs(doc, (*path, "inputs"))
        if kind is None or not isinstance(value_at(doc, (*path, kind)), dict):
            continue
        yield from _written_refs(doc, (*path, kind, "carry"), mapping_only=True)
        yield from _written_refs(doc, (*path, kind, "next"), mapping_only=True)
        rule = value_at(doc, (*path, kind, "next"))
        for key in rule if isinstance(rule, dict) else ():
            loc = doc.key_loc((*path, kind, "next", key))
            if isinstance(key, str) and loc is not None:
                yield (*path, kind, "next", key), key, loc
    if root != ("augmentation",):
        yield from _written_refs(doc, ("outputs",) if root == ("model",) else (*root[:2], "outputs"))


def _written_refs(
    doc: SourceDoc, where: SpecPath, mapping_only: bool = False
) -> Iterator[tuple[SpecPath, str, Loc]]:
    """The references written at ``where``: a string, a list's strings or a mapping's string
    values (``mapping_only``: only a mapping's, as ``carry``/``next`` are mappings)."""
    value = value_at(doc, where)
    sites: list[tuple[SpecPath, object]]
    if isinstance(value, dict):
        sites = [((*where, key), ref) for key, ref in value.items() if isinstance(key, str)]
    elif mapping_only:
        return
    elif isinstance(value, list):
        sites = [((*where, i), ref) for i, ref in enumerate(value)]
    else:
        sites = [(where, value)]
    for site, ref in sites:
        loc = doc.loc(site)
        if isinstance(ref, str) and loc is not None:
            yield site, ref, loc


def find_id(doc: SourceDoc, near: SpecPath, name: str, automatic: Automatic | None = None) -> Loc | None:
    """Where the id ``name`` that a reference at ``near`` means is declared: the item's
    ``id:``, a block's declared input, or a name a ``repeat`` carries, by the resolver's
    scoping rules (:mod:`cnnspec.lsp.scopes`); with ``automatic``, also a block call's
    automatic name, at the call's kind key. A declaration is its own definition."""
    if (near and near[-1] == "id") or is_block_input(near):
        return doc.loc(near) if value_at(doc, near) == name else None
    declared = visible_ids(doc, near, automatic).get(name)
    return declared.loc if declared is not None else None


def block_at(doc: SourceDoc, cursor: Cursor) -> str | None:
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


def reference_at(doc: SourceDoc, cursor: Cursor) -> str | None:
    """The id an ``inputs``/``outputs`` value, a ``carry``/``next`` value or a ``next`` key
    under the cursor refers to (or declares: a block's ``inputs``)."""
    path = cursor.path
    in_inputs = (path and path[-1] == "inputs") or (len(path) >= 2 and path[-2] == "inputs")
    if in_inputs or is_output_reference(path):
        value = value_at(doc, path)
        return value if isinstance(value, str) else None
    rule = _rule_of(path)
    if rule is None or (cursor.on_key and rule == "carry"):
        return None
    if cursor.on_key:  # a `next` key: the carried name it updates
        return str(path[-1])
    value = value_at(doc, path)
    return value if isinstance(value, str) else None


def _rule_of(path: SpecPath) -> str | None:
    """``carry`` or ``next`` when ``path`` is an entry of an item's ``carry:``/``next:``
    mapping (``model[3].repeat.carry.x``), else ``None``."""
    item = item_path(path)
    if item is None or len(path) != len(item) + 3 or not isinstance(path[-1], str):
        return None
    rule = path[len(item) + 1]
    return rule if rule in ("carry", "next") else None


def carry_key_at(cursor: Cursor) -> bool:
    """Whether the cursor is on a key of a ``carry:`` mapping (a carried name's declaration)."""
    return cursor.on_key and _rule_of(cursor.path) == "carry"


def _backbone_file(doc: SourceDoc, cursor: Cursor) -> str | None:
    """The spec file of the backbone item under the cursor (on its kind key or its ``spec:``):
    a ``zoo:`` name's family file, or a file relative to the spec that names it (a
    ``family.yaml#variant`` reference: the family file), as the compiler reads it."""
    path = cursor.path
    item = item_path(path)
    if (
        item is None
        or kind_of(doc, item) != BACKBONE
        or path[len(item) :] not in ((BACKBONE,), (BACKBONE, "spec"))
    ):
        return None
    where = (*item, BACKBONE, "spec")
    ref = value_at(doc, where)
    if not isinstance(ref, str) or not ref.strip():
        return None
    if is_zoo_ref(ref):
        try:
            return display_name(resolve_ref(ref)[0])
        except SpecError:
            return None  # an unknown zoo name: its diagnostic says so
    loc = doc.loc(where)
    base = Path(loc.file).resolve().parent if loc is not None and not loc.file.startswith("<") else Path.cwd()
    file = user_path(ref.split("#", 1)[0])
    file = file if file.is_absolute() else base / file
    return display_name(file) if file.is_file() else None


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


def is_until(doc: SourceDoc, cursor: Cursor) -> bool:
    """Whether the cursor is on the value of a backbone item's ``until:``."""
    item = item_path(cursor.path)
    return (
        not cursor.on_key
        and item is not None
        and kind_of(doc, item) == BACKBONE
        and cursor.path[len(item) :] == (BACKBONE, "until")
    )


def backbone_var(doc: SourceDoc, cursor: Cursor, reader: Reader | None = None) -> tuple[str, Loc] | None:
    """On a key under a backbone item's ``vars:`` (``width`` of ``vars: {width: 8}``): the var
    of the backbone's spec it sets and where that spec declares it (the spec read as
    :func:`_until_definition` reads it, through ``reader``); ``None`` elsewhere, or when the
    spec cannot be read or declares no such var (the item's diagnostic says so)."""
    from cnnspec.lsp.completion import backbone_doc

    path = cursor.path
    item = item_path(path)
    if (
        not cursor.on_key
        or item is None
        or kind_of(doc, item) != BACKBONE
        or len(path) != len(item) + 3
        or path[len(item) : -1] != (BACKBONE, "vars")
        or not isinstance(path[-1], str)
    ):
        return None
    ref, loc = value_at(doc, (*item, BACKBONE, "spec")), doc.loc((*item, BACKBONE, "spec"))
    if not isinstance(ref, str):
        return None
    model = backbone_doc(ref, Path(loc.file) if loc is not None else None, reader)
    declared = model.key_locs.get(("vars", path[-1])) if model is not None else None
    return (path[-1], declared) if declared is not None else None


def _until_definition(
    doc: SourceDoc, cursor: Cursor, line_text: str, column: int, reader: Reader | None
) -> Loc | None:
    """Where the segment under the cursor of the backbone's ``until:`` leads (as rename and
    references read it, :mod:`cnnspec.lsp.segments`: ``double_1`` of ``double_1.c`` → the call
    item, its ``c`` → the id inside the block), else where the whole ``until:`` cuts: the id
    (or hierarchical name) of the backbone spec's model as the resolver looks it up (in the
    model's scope after its last item), else the layer of that name (a cut inside an item), in
    the backbone's spec at the item's ``vars``. The spec is read as completion reads it (a zoo
    model, or a file of the spec's folder, through ``reader``)."""
    from cnnspec.lsp.completion import backbone_doc, set_backbone_vars
    from cnnspec.spec.resolve import resolve

    path = cursor.path
    until = value_at(doc, path)
    body = value_at(doc, path[:-1])
    ref = body.get("spec") if isinstance(body, dict) else None
    if not isinstance(until, str) or not isinstance(ref, str) or not isinstance(body, dict):
        return None
    loc = doc.loc((*path[:-1], "spec"))
    file = Path(loc.file) if loc is not None and not loc.file.startswith("<") else None
    model = backbone_doc(ref, file, reader)
    if model is None:
        return None
    if body.get("vars") is not None:
        set_backbone_vars(model, doc, body["vars"], (*path[:-1], "vars"))
    try:
        ir: ModelIR | None = resolve(model)
    except SpecError:
        ir = None  # its ids are still in its text; its layers' names are not
    automatic = automatic_names(model, ir) if ir is not None else None
    segment = prefix_at(until, cursor, line_text, column)
    found = find_reference(model, ("outputs",), segment if segment is not None else until, automatic)
    if found is not None:
        return found
    node = cut_layer(ir, until) if ir is not None else None
    return node.loc if node is not None else None


def cut_layer(ir: ModelIR, until: str) -> Node | None:
    """The layer of a backbone's model ``ir`` that ``until:`` cuts at when it names no id: a
    layer of that name (the compiler's), else a block call (or other group) as inspect groups
    the layers: its output layer."""
    from cnnspec.spec.backbone import instance_output

    name = until if any(node.name == until for node in ir.nodes) else instance_output(ir.nodes, 0, until)
    return next((node for node in ir.nodes if node.name == name), None)


def _space_definition(doc: SourceDoc, key: str) -> Loc | None:
    """The place the ``search.space`` key ``key`` sets (``vars.width``: the var's key under
    ``vars:``; ``training.batch_size``: that key; ``head_dropout.rate``: the parameter, or
    the layer's main parameter written alone, ``dropout: 0.3``); ``None`` when the document
    does not write it (the search adds it) or the key leads nowhere (its diagnostic says so).

    The key is read as the search reads it (:func:`cnnspec.spec.search.space_target`): where a
    key leads does not depend on its space, so a space being typed does not hide it."""
    from cnnspec.spec.search import space_target

    target = space_target(doc, key)
    if target is None:
        return None
    # (the tables themselves: `doc.loc` falls back on an ancestor, which is no definition)
    found = doc.key_locs.get(target) or doc.locs.get(target)
    if found is not None or len(target) < 2:
        return found
    kind, written = target[-2], value_at(doc, target[:-1])
    registered = REGISTRY.get(str(kind))
    main = registered is not None and registered.main == target[-1]
    scalar = written is not None and not isinstance(written, (dict, list))
    return doc.locs.get(target[:-1]) if main and scalar else None
