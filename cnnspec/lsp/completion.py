"""Completion beyond the JSON Schema: what only the compiler knows at the cursor.

- inside ``${…}``: the vars, block parameters, loop variables and ``in_channels``/``in_shape``
  visible there;
- in ``inputs:``: the ids the resolver accepts there (defined earlier, in the same scope,
  with a block's named inputs);
- at a new list item (``- ``), by the list the indentation puts it in: in a layer list the
  layer kinds (with snippets for their required parameters), the blocks (with their required
  arguments) and the combinators; under ``augmentation`` its kinds only; in another list the
  names the schema gives its items (metrics, callbacks), else the keys of its mapping items (a
  ``training.phases`` entry), else nothing;
- at a key, in the mapping the indentation (or the innermost ``{`` of the line) puts it in: a
  layer's or block call's parameters, a combinator's own keys, a layer item's ``id``/``inputs``/…,
  or the keys the schema lists for any other mapping (``training: {epochs: 2, |``);
- at a parameter's value: its choices (``true``/``false`` for a boolean); at a setting's value
  outside a layer item (``training``'s ``optimizer``, ``loss``, ``task``): the schema's ``enum``
  names, ``true``/``false`` where it takes a boolean;
- after ``zoo:``: the zoo's models (``spec:``, ``extends:``), or its block libraries (``use:``);
- at a backbone's ``until:``: the cut points of the spec it names (a zoo model or a file in
  the spec's folder), then the names of its layers, which cut inside its items too;
- in a ``freeze:``/``unfreeze:`` list (``training``'s or a phase's; flow ``[a, b]`` or block
  ``- a``): the names a pattern may be (:mod:`cnnspec.lsp.patterns`: the model's items and
  block calls, hierarchical names such as ``stage3.block2`` or ``st[1].inner``, the layers),
  each with what it is and how many layers it covers, those the typed prefix allows (``/``
  for ``.`` as freezing reads it), not those the list already names; the typed prefix is
  replaced whole, and a name with brackets is quoted in a flow list.

When the text does not load (invalid YAML, a missing ``use:`` file), the kinds and the
parameters (and values) of the kind written on the lines above are still offered, from the
text alone; ids and names in scope come from the lines above the cursor when they load.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import Any

from cnnspec.errors import SpecError, SpecPath
from cnnspec.ir import ModelIR
from cnnspec.layers.registry import REGISTRY, combinator_merges
from cnnspec.lsp.locate import Cursor, item_path, kind_of, path_at, value_at
from cnnspec.lsp.names import IMPLICIT, names_at, signature
from cnnspec.lsp.patterns import PATTERN_KEYS, PATTERN_MAPS, PatternNames, model_ir, pattern_list
from cnnspec.lsp.scopes import block_inputs, is_block_input, visible_ids
from cnnspec.lsp.text import in_expression
from cnnspec.spec import varchoices, zoo
from cnnspec.spec.backbone import cut_points
from cnnspec.spec.compose import Reader, with_libraries
from cnnspec.spec.loader import SourceDoc, load_text

COMBINATORS = {
    "residual": "residual: {body: [$1], shortcut: ${2:auto}}",
    "parallel": "parallel: {branches: [[$1], [$2]], merge: ${3:concat}}",
    "repeat": "repeat: {times: ${1:2}, as: ${2:i}, layers: [$3]}",
    "backbone": "backbone: {spec: ${1:zoo:resnet50}, until: ${2:conv4}}",
}
#: The combinators with a ``merge:`` field (its values: :func:`combinator_merges`).
_MERGING = ("residual", "parallel")
_NEW_ITEM = re.compile(r"^\s*-\s+[A-Za-z0-9_]*$")
#: (``*+`` takes the list whole, never giving it back: an `inputs: [a…]` closed before the
#: cursor retried the rest of the list from each of its characters, 23 s at 100,000 of them.)
_INPUTS = re.compile(r"\binputs:\s*(?:\[[^\]]*+)?[A-Za-z0-9_]*$")
#: ``outputs: [a, |`` at the top level: the ids the model's end sees.
_OUTPUTS = re.compile(r"^outputs:\s*(?:\[[^\]]*+)?[A-Za-z0-9_]*$")
_KEY_POSITION = re.compile(r"(?:[{,]\s*|^\s+)[A-Za-z0-9_]*$")
#: A mapping value being typed: ``padding: sa`` (group 1: the key).
_VALUE = re.compile(r"(?:^|[\s{,])([A-Za-z_][A-Za-z0-9_]*)[ \t]*:[ \t]+[A-Za-z0-9_]*$")
#: A backbone's ``until:`` being typed (group 1): a cut's name may hold dots and slashes
#: (``conv4.bottleneck_1``, ``stem/bn``), which :data:`_VALUE`'s word does not.
_UNTIL = re.compile(r"(?:^|[\s{,])until[ \t]*:[ \t]+([A-Za-z0-9_./]*)$")
#: A ``zoo:`` reference being typed, as a value or a list element.
_ZOO_REF = re.compile(r"(?:^|[\s\[{,:\"'-])zoo:[A-Za-z0-9_/.-]*$")
#: Each key on a line that a value or list follows (``use: [``, ``spec:``).
_VALUE_KEY = re.compile(r"(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]*)[ \t]*:(?=[ \t\[{\"']|$)")


@dataclass(frozen=True)
class Suggestion:
    """One completion: its label, what it is (``var``, ``id``, ``kind``, ``block``,
    ``combinator``, ``parameter``, ``value``, ``layer``), a detail line, a snippet to insert
    (``None``: the label), and its rank: the editor lists lower ranks first (a backbone's cut
    points before its hundreds of layer names), each rank by label."""

    label: str
    what: str
    detail: str = ""
    snippet: str | None = None
    rank: int = 0
    #: How many code points before the cursor the suggestion replaces (``None``: the editor's
    #: word there): a pattern such as ``stage3.block2`` spans what editors take for several words.
    replace: int | None = None
    #: The plain text inserted over ``replace`` (``None``: the label); a name with brackets
    #: in a flow list is quoted there (``"st[1].inner"``), or YAML would read a nested list.
    insert: str | None = None


def complete(
    doc: SourceDoc | None,
    cursor: Cursor | None,
    line_text: str,
    column: int,
    above: Sequence[str] = (),
    known: SourceDoc | None = None,
    file: Path | None = None,
    reader: Reader | None = None,
    ir: ModelIR | None = None,
) -> list[Suggestion]:
    """Suggestions at 0-based code-point ``column`` of ``line_text``.

    ``doc`` is the located document of the text (``None`` when the text does not load: then
    only what the text itself says is offered: layer kinds at a new item, the parameters of the
    kind written on the lines ``above``). ``known`` is a document that loaded earlier, whose
    blocks are offered when ``doc`` is ``None`` (names only, never its positions). ``file`` is
    the spec's own path, the folder a backbone's spec file is read from (default: ``doc``'s);
    ``reader``: the text of a file open in the editor (unsaved), else None (read from disk);
    ``ir``: the compiled model of ``doc`` (else it is resolved when its names are asked for)."""
    before = line_text[:column]
    path: SpecPath = cursor.path if cursor is not None and doc is not None else ()
    expression = in_expression(line_text, column)
    scoped = doc
    if doc is None and (expression or _INPUTS.search(before) or _NEW_ITEM.match(before)):
        # What needs positions (a scope) reads the text above the cursor, which may load when
        # the whole text does not: its positions are the text's own.
        scoped, path = _partial(above, line_text, column)
    if expression:
        names = names_at(scoped, path) if scoped is not None else {}
        if known is not None:  # vars it reads through `use:`/`extends` (names only)
            names = {**names_at(known, ()), **names}
        if not names:
            return [Suggestion(name, "var", f"implicit: {text}") for name, text in IMPLICIT.items()]
        return [Suggestion(n.name, "var", f"{n.what}: {n.detail}") for n in names.values()]
    typing = pattern_typed(before, above)
    if typing is not None:
        written = _written_patterns(doc, path)
        return pattern_suggestions(doc if doc is not None else known, ir, *typing, written)
    keyed = scale_key_typed(before, above)
    if keyed is not None:  # a key of a learning_rate_scale: a pattern too
        token, quote, others = keyed
        return pattern_suggestions(doc if doc is not None else known, ir, token, quote, True, others)
    bound = call_input_keys(doc, path, line_text, column, above, known if known is not None else scoped)
    if bound is not None:  # a key of a block call's `inputs:` mapping: the block's inputs
        return bound
    if _INPUTS.search(before) or (path and "inputs" in path[-2:]):
        # Never ids of `known`: which ids come before the cursor is a matter of positions.
        return ids_in(scoped, path) if scoped is not None else []
    if _OUTPUTS.search(before) or (path and path[0] == "outputs"):  # (as the model's end reads them)
        return ids_in(scoped, ("outputs", 0)) if scoped is not None else []
    if _NEW_ITEM.match(before):
        return new_item_suggestions(
            before, above, doc if doc is not None else _named_by(known, scoped, above, file, reader)
        )
    zoo_names = zoo_suggestions(before, above)
    if zoo_names is not None:
        return zoo_names
    cut = _UNTIL.search(before)
    if cut is not None:
        where = file if file is not None else Path(doc.file) if doc is not None else None
        found = until_suggestions(doc, path, line_text, above, where, reader)
        typed = cut.group(1)
        # several words to an editor (`conv4.bott`): each suggestion replaces all of them
        return [replace(s, replace=len(typed)) for s in found] if "." in typed or "/" in typed else found
    value = _VALUE.search(before)
    if value is not None:
        return value_suggestions(
            doc, path, before[: value.start(1)], value.group(1), above, line_text[column:], known
        )
    if not _KEY_POSITION.search(before):
        return []
    keys = key_suggestions(before, above, line_text[column:], doc if doc is not None else known)
    if keys is not None:
        return keys
    item = item_path(path)
    if doc is not None and item is not None:
        return parameter_suggestions(doc, item)
    if doc is None:
        written = written_kind(before, above, line_text[column:])
        if written is not None:
            partial = _partial(above, line_text, column)[0]
            return _parameters(written[0], written[1], _named_by(known, partial, above, file, reader))
    return []


#: A line that starts a top-level section (``model:``, ``blocks:``).
_SECTION = re.compile(r"[A-Za-z_\"']")


def _named_by(
    known: SourceDoc | None,
    partial: SourceDoc | None,
    above: Sequence[str],
    file: Path | None = None,
    reader: Reader | None = None,
) -> SourceDoc | None:
    """The document whose blocks a text that does not load is completed with: the last one
    that loaded (``known``: composed, so its libraries' blocks too), else the lines above the
    cursor (``partial``, :func:`_partial`), else the sections above the cursor's (a half-typed
    item above it, ``- mine: {``, keeps the lines above from loading): a document that never
    loaded since it was opened still gets the blocks it declares above the cursor, and those
    of the libraries its ``use:`` there names (read beside ``file``, the spec's path)."""
    if known is not None:
        return known
    found = partial
    if found is None:
        starts = [row for row, line in enumerate(above) if _SECTION.match(line)]
        if len(starts) < 2:
            return None  # (no section before the cursor's)
        try:
            found = load_text("\n".join(above[: starts[-1]]), _PARTIAL)
        except SpecError:
            return None
    if file is None or str(file).startswith("<"):  # (an untitled buffer: no folder to read from)
        return found
    return with_libraries(found, file, reader)


#: The file name of a document loaded from the text above the cursor (see :func:`_partial`).
_PARTIAL = "<completion>"


def _partial(above: Sequence[str], line_text: str, column: int) -> tuple[SourceDoc | None, SpecPath]:
    """The text above the cursor as a document, when it loads, and the path at the cursor in it.

    A mistake below the cursor (an unclosed ``{`` on a later line), or the unfinished line the
    cursor is on, keeps the whole text from loading; the lines above (with the cursor's line, or
    without it) usually load, and their positions are those of the text itself: an ``inputs:``
    reference or a ``${…}`` still gets the ids and names of its scope. At most two YAML parses
    of the text above, only while the whole text does not load (the parser caches texts)."""
    for lines in ([*above, line_text], list(above)):
        if not lines:
            continue
        try:
            doc = load_text("\n".join(lines), _PARTIAL)
        except SpecError:
            continue
        cursor = path_at(doc, _PARTIAL, len(above) + 1, column + 1)
        return doc, cursor.path if cursor is not None else ()
    return None, ()


#: A key being typed in a flow mapping of ``inputs:`` (``inputs: {left: a, |``): each entry
#: before it has its value (no ``:`` after the cursor's word).
_FLOW_INPUT_KEY = re.compile(r"\binputs:[ \t]*\{(?:[^{}\[\],:]*:[^{}\[\],]*,)*[ \t]*[A-Za-z0-9_]*$")
#: A key being typed on a line of its own (a block mapping's): indentation, then a word.
_BLOCK_KEY = re.compile(r"[ \t]+[A-Za-z0-9_]*")
#: A line holding only the key ``inputs:`` (a block mapping follows); group 1: up to the key.
_INPUTS_LINE = re.compile(r"([ \t]*(?:-[ \t]+)?)inputs:[ \t]*(?:#.*)?")
#: A line's key (after its indentation, or a list item's dash); group 1: up to the key.
_LINE_KEY = re.compile(r"([ \t]*(?:-[ \t]+)?)([A-Za-z_][A-Za-z0-9_]*)[ \t]*:")
#: A list item's first key: its kind (``- pair:``, ``- flatten``); group 1: up to the key.
_ITEM_KIND = re.compile(r"([ \t]*-[ \t]+)([A-Za-z_][A-Za-z0-9_]*)[ \t]*(?::|$)")
#: A flow mapping's key (``left`` of ``{left: a, right: b}``).
_FLOW_KEY = re.compile(r"(?:^|[{,])[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*:")


def call_input_keys(
    doc: SourceDoc | None,
    path: SpecPath,
    line_text: str,
    column: int,
    above: Sequence[str],
    known: SourceDoc | None,
) -> list[Suggestion] | None:
    """At a key of a block call's ``inputs:`` mapping (``inputs: {left: a, |``, or a key on a
    line of its own under ``inputs:``): the block's inputs that no key binds yet, which the
    resolver accepts there (an id would be an unknown input); ``None`` elsewhere (a value, a
    list, a layer's ``inputs:``: ids). The block is read from ``doc``, else ``known`` (a
    document that loaded earlier), else the text above the cursor."""
    before = line_text[:column]
    flow = _FLOW_INPUT_KEY.search(before)
    if flow is not None:
        lead = line_text[: flow.start()]
        if lead.strip(" \t-"):
            return None  # (`- pair: {…}, inputs: {…` on one line: no key column to read)
        indent, rows = len(lead), list(above)
        mapping = line_text[line_text.index("{", flow.start()) + 1 :].split("}", 1)[0]
        bound = [m.group(1) for m in _FLOW_KEY.finditer("," + mapping)]
    elif _BLOCK_KEY.fullmatch(before):
        found = _inputs_line(above, len(before) - len(before.lstrip(" \t")))
        if found is None:
            return None
        row, indent, bound = found
        rows = list(above[: row + 1])
    else:
        return None
    kind = _item_kind(doc, path, rows, indent)
    # (the text not loading: the blocks of the last document that did, else of the text above)
    blocks = doc if doc is not None else known if known is not None else _partial(above, "", 0)[0]
    inputs = block_inputs(blocks, kind) if blocks is not None and kind is not None else []
    if not inputs:
        return None  # (not a call of a block this document knows: ids, as before)
    if doc is not None and (item := item_path(path)) is not None:
        written = value_at(doc, (*item, "inputs"))  # (keys below the cursor too)
        bound += [str(key) for key in written] if isinstance(written, dict) else []
    taken = set(bound) - {_word_around(line_text, column)}  # (the key being typed is not bound)
    return [Suggestion(d.name, "parameter", d.detail) for d in inputs if d.name not in taken]


def _inputs_line(above: Sequence[str], indent: int) -> tuple[int, int, list[str]] | None:
    """For a key typed at ``indent`` under the lines ``above``: the row of the ``inputs:`` line
    whose block mapping it is in, the column of that key, and the keys written above the
    cursor at ``indent`` (its siblings); ``None`` when the mapping is not an ``inputs:``."""
    siblings: list[str] = []
    for row in range(len(above) - 1, -1, -1):
        line = above[row]
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        lead = len(line) - len(line.lstrip(" \t"))
        if lead == indent and line.lstrip(" \t").startswith("-"):
            return None  # (a list's item at the cursor's column: no mapping's key)
        if lead >= indent:
            key = _LINE_KEY.match(line)
            if lead == indent and key is not None and len(key.group(1)) == indent:
                siblings.append(key.group(2))
            continue
        found = _INPUTS_LINE.fullmatch(line)
        return (row, len(found.group(1)), siblings) if found is not None else None
    return None


def _item_kind(doc: SourceDoc | None, path: SpecPath, above: Sequence[str], indent: int) -> str | None:
    """The kind of the item whose ``inputs:`` key is at column ``indent`` of the last of the
    lines ``above`` (or of the cursor's line): the located document's at ``path``, else the
    text's: the list item above whose first key is at that column (``- pair:``)."""
    item = item_path(path) if doc is not None else None
    kind = kind_of(doc, item) if doc is not None and item is not None else None
    if kind is not None:
        return kind
    for line in reversed(above):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        found = _ITEM_KIND.match(line)
        if found is not None and len(found.group(1)) == indent:
            return found.group(2)
        if len(line) - len(line.lstrip(" \t")) < indent:
            return None  # (a line further out that starts no item of this column: left it)
    return None


def _word_around(line: str, column: int) -> str:
    """The name the cursor is in (or just after) on ``line``."""
    start = column
    while start > 0 and (line[start - 1].isalnum() or line[start - 1] == "_"):
        start -= 1
    end = column
    while end < len(line) and (line[end].isalnum() or line[end] == "_"):
        end += 1
    return line[start:end]


def ids_in(doc: SourceDoc, path: SpecPath) -> list[Suggestion]:
    """The ids an ``inputs:`` reference at ``path`` may name: those the resolver would accept
    there (:func:`cnnspec.lsp.scopes.visible_ids`: defined before the item, in its scope)."""
    if is_block_input(path):
        return []  # declaring a block's inputs: new names
    return [Suggestion(d.name, "id", d.detail) for d in visible_ids(doc, path).values()]


def item_suggestions(doc: SourceDoc | None) -> list[Suggestion]:
    """Layer kinds, blocks and combinators, each with a snippet of what it requires."""
    found = [Suggestion(kind.name, "kind", kind.doc, _kind_snippet(kind.name)) for kind in REGISTRY.values()]
    blocks = doc.data.get("blocks") if doc is not None else None
    if isinstance(blocks, dict):
        for name, body in blocks.items():
            params = body.get("params") if isinstance(body, dict) else None
            found.append(
                Suggestion(str(name), "block", signature(str(name), params), _block_snippet(name, params))
            )
    found += [Suggestion(name, "combinator", "combinator", snippet) for name, snippet in COMBINATORS.items()]
    return found


#: One step of a path read from the text's indentation: a key, or ``None`` for a list item
#: (which one does not matter to the schema).
Step = str | None
#: The reference of the schema's layer item: a list of it is a layer list.
_LAYER_REF = "#/$defs/layer"
#: The kind keys of a layer item that are no registered kind: the combinators and ``backbone``.
_COMBINATOR_NAMES = frozenset([*COMBINATORS, "backbone"])


@functools.cache
def _schema() -> dict[str, Any]:
    """The spec's JSON Schema (what ``cnnspec validate`` checks; built once, about 10 ms)."""
    from cnnspec.spec.schema import json_schema

    return json_schema()


def _resolve(node: object) -> list[tuple[dict[str, Any], bool]]:
    """The alternatives of the schema ``node`` (``$ref`` followed, ``anyOf``/``oneOf``
    flattened), each with whether it is the layer item (reached through its ``$ref``)."""
    found: list[tuple[dict[str, Any], bool]] = []
    pending: list[tuple[object, bool]] = [(node, False)]
    while pending:
        current, layer = pending.pop(0)
        if not isinstance(current, dict):
            continue
        ref = current.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: object = _schema()
            for part in ref[2:].split("/"):
                target = target.get(part) if isinstance(target, dict) else None
            pending.append((target, layer or ref == _LAYER_REF))
            continue
        alternatives = current.get("anyOf") or current.get("oneOf")
        if isinstance(alternatives, list):
            pending.extend((alternative, layer) for alternative in alternatives)
            continue
        found.append((current, layer))
    return found


def _schema_at(chain: Sequence[Step]) -> list[tuple[dict[str, Any], bool]]:
    """The schema alternatives of the value at ``chain`` (keys from the top, ``None`` for a
    list item), each with whether it is a layer item; empty where the schema says nothing."""
    current = _resolve(_schema())
    for step in chain:
        following: list[object] = []
        for node, _ in current:
            properties = node.get("properties")
            if step is None:
                following.append(node.get("items"))
            elif isinstance(properties, dict) and step in properties:
                following.append(properties[step])
            elif isinstance(node.get("additionalProperties"), dict):
                following.append(node["additionalProperties"])
        current = [found for value in following for found in _resolve(value)]
    return current


def _is_item(chain: Sequence[Step]) -> bool:
    """Whether ``chain`` ends at a layer item (of the model, a block, a combinator's list)."""
    return any(layer for _, layer in _schema_at(chain))


@functools.cache
def _item_properties() -> dict[str, Any]:
    """The schema of the keys a layer item takes besides its kind (``id``, ``inputs``,
    ``when``, …): the layer item's properties that are neither kinds nor combinators."""
    for node, layer in _resolve({"$ref": _LAYER_REF}):
        properties = node.get("properties")
        if layer and isinstance(properties, dict):
            return {k: v for k, v in properties.items() if k not in REGISTRY and k not in _COMBINATOR_NAMES}
    return {}


def _keys_in(nodes: Sequence[tuple[dict[str, Any], bool]], present: set[str]) -> list[Suggestion]:
    """The properties of the schema ``nodes`` not in ``present``, each once, in schema order."""
    keys: dict[str, Suggestion] = {}
    for node, _ in nodes:
        properties = node.get("properties")
        for name, value in properties.items() if isinstance(properties, dict) else ():
            if name not in present:
                keys.setdefault(name, Suggestion(name, "parameter", _described(value), f"{name}: $1"))
    return list(keys.values())


def indentation_path(before: str, above: Sequence[str]) -> tuple[list[Step], set[str]] | None:
    """From the text alone: the path of the block mapping (or block list) the cursor's line
    belongs to, by indentation, and the keys already written in that mapping.

    ``before`` is the cursor's line up to the cursor: blank up to a key being typed (the
    mapping's path), or ``- `` and a word (a new list item: the list's path and ``None``).
    Lines above at a smaller indent open the mappings and lists around it. ``None`` where the
    text is not plain block style there (a multi-line flow collection, a scalar that ends
    the mapping): the caller falls back on the located document."""
    lead = _INDENT.match(before)
    assert lead is not None  # the pattern matches any text
    dashes = lead.group(2).count("-")
    chain: list[Step] = [None] * dashes
    present: set[str] = set()
    level = len(lead.group(1)) if dashes else len(lead.group(0))
    in_list = bool(dashes)  # the level is a list's dash column: its key may sit at it too
    # The walk passes every earlier item of the cursor's list on its way to the list's key, so
    # it reads further than the other look-backs (a flat or imported model is thousands of
    # lines; a regular expression a line). Cut short before the top, it cannot say: ``None``.
    lines = list(islice(reversed(above), _INDENT_LOOK_BACK + 1))
    for line in lines[:_INDENT_LOOK_BACK]:
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped == "---":
            continue
        match = _INDENT.match(line)
        assert match is not None
        start, column = len(match.group(1)), len(match.group(0))  # the dash's, the key's column
        dashes_at = [start + i for i, ch in enumerate(match.group(2)) if ch == "-"]
        if in_list and level in dashes_at:  # an earlier item of the cursor's list (`- - a`)
            outer = dashes_at[: dashes_at.index(level)]  # the items the list is in, if any
            chain += [None] * len(outer)
            level = outer[0] if outer else level
            continue
        if column > level:
            continue  # a deeper value (of a key above, or of an earlier item of the list)
        if column == level and not in_list:
            key = _sibling_key(line[column:])
            if key is None:
                return None
            present.add(key)
        else:  # a line that opens what the cursor is in
            opening = _OPENING_KEY.fullmatch(line[column:])
            if opening is None:
                return None  # a value written on the line: the cursor's text is not inside it
            chain.append(opening.group(1))
        if start < column:  # the mapping is a list item: the list is one level up
            chain += [None] * match.group(2).count("-")
            level, in_list = start, True
        elif column < level or in_list:
            level, in_list = column, False
        if level == 0 and not in_list:
            break
    else:
        if len(lines) > _INDENT_LOOK_BACK:
            return None  # the look-back ended before the top level: it cannot say
    # (the top level reached, or the document's start: where every path begins)
    return chain[::-1], present


def _sibling_key(text: str) -> str | None:
    """The key a line of a block mapping starts with (``name:``, or quoted: ``"st[1].c": 0.1``,
    a pattern of a learning_rate_scale, a dotted search.space path); ``None`` for no key."""
    found = _MAPPING_KEY.match(text) or _QUOTED_KEY.match(text)
    return found.group("key") if found is not None else None


def new_item_suggestions(before: str, above: Sequence[str], doc: SourceDoc | None) -> list[Suggestion]:
    """At a new list item (``- ``): what the list takes. A layer list (``model``, a block's or
    a combinator's): the layer kinds, blocks and combinators; ``augmentation``: its kinds,
    blocks and ``repeat`` (one line of layers: no branches, no other kinds); another
    list: the names the schema lists for its items (metrics, callbacks), else nothing."""
    found = indentation_path(before, above)
    if found is None:
        return item_suggestions(doc)  # not plain block style: a layer list, most likely
    chain = found[0]
    if _is_item(chain):
        if chain[:1] == ["augmentation"]:  # (an item of its own, or of a repeat in it)
            # its kinds, and blocks and repeats of them: the augmentation is one line of layers
            # (residual and parallel branch, which the resolver refuses there)
            return [s for s in item_suggestions(doc) if _augments(s)]
        return item_suggestions(doc)
    # the names its items may be, else the keys of a mapping item (a phase: `- epochs: …`)
    return _named_items(chain) or _keys_in(_schema_at(chain), set())


def _augments(suggestion: Suggestion) -> bool:
    """Whether an item suggestion may stand in ``augmentation``: a random augmentation kind, a
    block (the resolver checks what it makes), or ``repeat``."""
    if suggestion.what == "kind":
        return REGISTRY[suggestion.label].augmentation
    return suggestion.what == "block" or suggestion.label == "repeat"


def _named_items(chain: Sequence[Step]) -> list[Suggestion]:
    """The names an item at ``chain`` may be, by the schema: its ``enum`` values and the keys
    of its one-key mappings (``top_k_accuracy: {k: 3}``), each once."""
    found: dict[str, Suggestion] = {}
    for node, _ in _schema_at(chain):
        for value in node.get("enum") or ():
            if isinstance(value, str):
                found.setdefault(value, Suggestion(value, "value", _described(node)))
        properties = node.get("properties")
        if node.get("maxProperties") == 1 and isinstance(properties, dict):
            for name, value in properties.items():
                found.setdefault(name, Suggestion(name, "value", _described(value), f"{name}: {{$1}}"))
    return list(found.values())


def _described(node: object) -> str:
    """The ``description`` of a schema node, or an empty detail."""
    text = node.get("description") if isinstance(node, dict) else None
    return text if isinstance(text, str) else ""


def key_suggestions(
    before: str, above: Sequence[str], after: str, doc: SourceDoc | None
) -> list[Suggestion] | None:
    """At a key position, the keys of the mapping the key belongs to, not written yet: of a
    layer kind its parameters, of a block call its arguments, of a combinator its own keys
    (``shortcut``, ``merge``, …), of a layer item its ``id``/``inputs``/…, of any other
    mapping what the schema lists. The mapping is the innermost open ``{`` of the line, else
    the one the cursor's indentation puts it in (never the last value above the cursor: a
    blank line under a residual's body is the residual's, not the body's last layer's).
    ``None`` where the text does not say (the caller falls back on the located document)."""
    if _open_brace(before):
        written = written_kind(before, above, after)
        if written is not None and _is_kind_key(written[0], doc):
            return _keys_of_kind(written[0], written[1], doc)
        flow = line_chain(before, above)
        if flow is None or _in_item(flow[0]):
            return None  # (`- {id: a, |`: the located document knows better)
        chain, present, _ = flow  # a section's mapping (`training: {epochs: 2, |`): the schema's
        return _keys_in(_schema_at(chain), present | _flow_keys(after))
    if not re.fullmatch(r"\s+[A-Za-z0-9_]*", before):
        return None
    found = indentation_path(before, above)
    if found is None:
        return None
    chain, present = found
    if _is_item(chain):  # a sibling of the item's kind: the item's other keys
        return [
            Suggestion(k, "parameter", _described(v), f"{k}: $1")
            for k, v in _item_properties().items()
            if k not in present
        ]
    if chain and isinstance(chain[-1], str) and _is_item(chain[:-1]):
        return _keys_of_kind(chain[-1], present, doc)
    return _keys_in(_schema_at(chain), present)


def _open_brace(before: str) -> bool:
    """Whether the cursor is inside a flow mapping opened on its line."""
    text = _QUOTED.sub('""', _EXPRESSION.sub('""', before))
    depth: list[str] = []
    for ch in text:
        if ch in "[{":
            depth.append(ch)
        elif ch in "]}" and depth:
            depth.pop()
    return bool(depth) and depth[-1] == "{"


def _is_kind_key(key: str, doc: SourceDoc | None) -> bool:
    """Whether ``key`` names a layer kind, a combinator or a block of ``doc``."""
    blocks = doc.data.get("blocks") if doc is not None else None
    return key in REGISTRY or key in _COMBINATOR_NAMES or (isinstance(blocks, dict) and key in blocks)


def _keys_of_kind(kind: str, present: set[str], doc: SourceDoc | None) -> list[Suggestion]:
    """The keys of the mapping under a layer item's kind key ``kind`` not in ``present``: a
    combinator's own keys (from the schema), a layer kind's parameters, a block's arguments."""
    if kind in _COMBINATOR_NAMES:
        return _keys_in(_schema_at(["model", None, kind]), present)
    return _parameters(kind, present, doc)


def parameter_suggestions(doc: SourceDoc, item: SpecPath) -> list[Suggestion]:
    """The parameters of the layer kind or block of ``item`` not written yet."""
    kind = kind_of(doc, item)
    written = value_at(doc, (*item, kind)) if kind is not None else None
    present = {str(k) for k in written} if isinstance(written, dict) else set()
    return _parameters(kind, present, doc) if kind is not None else []


def _parameters(kind: str, present: set[str], doc: SourceDoc | None) -> list[Suggestion]:
    """The parameters of the layer kind or block ``kind`` not in ``present``."""
    registered = REGISTRY.get(kind)
    if registered is not None:
        return [
            Suggestion(p.name, "parameter", p.doc or p.type, f"{p.name}: $1")
            for p in registered.params
            if p.name not in present
        ]
    blocks = doc.data.get("blocks") if doc is not None else None
    body = blocks.get(kind) if isinstance(blocks, dict) else None
    params = body.get("params") if isinstance(body, dict) else None
    if isinstance(params, dict):
        return [
            Suggestion(str(name), "parameter", f"{kind} argument", f"{name}: $1")
            for name in params
            if str(name) not in present
        ]
    return []


def zoo_suggestions(before: str, above: Sequence[str]) -> list[Suggestion] | None:
    """After ``zoo:`` (``spec: zoo:|``, ``extends: zoo:|``, ``use: [zoo:|``): the packaged
    zoo's models (as ``cnnspec zoo`` lists them), or under ``use:`` its block libraries
    (``blocks/NAME``); ``None`` where the cursor is not after ``zoo:``. Each is written as it
    follows ``zoo:`` (the prefix is already typed) over all that is typed after ``zoo:``
    (``replace``): an editor's word before the cursor ends at ``/``, so ``zoo:blocks/he``
    became ``zoo:blocks/blocks/head``. The zoo is listed once per process."""
    ref = _ZOO_REF.search(before)
    if ref is None:
        return None
    typed = len(before) - (before.rindex("zoo:") + len("zoo:"))
    key = _key_of_value(before[: ref.start() + 1], above)
    if key == "use":
        libraries = zoo.block_libraries()
        return [
            Suggestion(f"{zoo.BLOCKS}{name}", "value", "zoo block library", replace=typed)
            for name in libraries
        ]
    if key in ("spec", "extends"):
        return [
            Suggestion(
                v.name,
                "value",
                f"{v.family} ({v.keras_name})" if v.keras_name else v.family,
                replace=typed,
            )
            for v in zoo.variants().values()
        ]
    return []


#: The ``spec:`` of a backbone item, written on a line (``{spec: zoo:resnet50, until: ``).
_BACKBONE_SPEC = re.compile(r"\bspec:[ \t]*[\"']?([^\s,}\"']+)")


def until_suggestions(
    doc: SourceDoc | None,
    path: SpecPath,
    line_text: str,
    above: Sequence[str],
    file: Path | None = None,
    reader: Reader | None = None,
) -> list[Suggestion]:
    """At a backbone's ``until:``: the cut points of the spec the item names
    (:func:`cnnspec.spec.backbone.cut_points`), read from the document when it loads, else
    from the item's lines (its line, then the lines above up to the item's ``- ``). A spec
    file is read only inside the folder of ``file`` (the spec being edited), as the resolver
    reads it, through ``reader`` (its unsaved text when it is open in the editor)."""
    ref = None
    item = item_path(path) if doc is not None else None
    body: object = None
    if doc is not None and item is not None:
        body = value_at(doc, (*item, "backbone"))
        ref = body.get("spec") if isinstance(body, dict) else None
    if not isinstance(ref, str):
        for line in [line_text, *islice(reversed(above), _LOOK_BACK)]:
            found = _BACKBONE_SPEC.search(line)
            if found is not None or re.match(r"\s*-\s", line):
                ref = found.group(1) if found is not None else None
                break
    if not isinstance(ref, str):
        return []
    model = backbone_doc(ref, file, reader)
    if model is None:
        return []
    if doc is not None and item is not None and isinstance(body, dict) and body.get("vars") is not None:
        set_backbone_vars(model, doc, body["vars"], (*item, "backbone", "vars"))
    points = cut_points(model)
    found = [Suggestion(point, "id", f"cut point of {ref}") for point in points]
    layers, inside = _cut_names(model, points)
    found += [Suggestion(name, "id", f"block call inside {ref}", rank=1) for name in inside]
    return found + [
        Suggestion(name, "layer", f"layer of {ref}", rank=2) for name in layers if name not in points
    ]


def set_backbone_vars(model: SourceDoc, doc: SourceDoc, raw: object, path: SpecPath) -> None:
    """Put the backbone item's ``vars`` (at ``path`` of ``doc``) over ``model``'s own, as the
    resolver does (:func:`cnnspec.spec.backbone.set_vars`, its expressions over ``doc``'s vars):
    ``vars: {n: 3}`` names three iterations' layers. A var it cannot set keeps the model's
    value (the mistake is the spec's diagnostic)."""
    from cnnspec.errors import Diagnostics
    from cnnspec.spec.backbone import set_vars
    from cnnspec.spec.resolve import Resolver

    resolver = Resolver(doc, Diagnostics())
    with contextlib.suppress(SpecError):  # (it reports into its diagnostics; a limit may raise)
        set_vars(resolver, model, raw, path, resolver.resolve_vars())


def _cut_names(model: SourceDoc, points: Sequence[str]) -> tuple[list[str], list[str]]:
    """What else ``until:`` takes in ``model`` (a backbone's spec at the item's vars), in model
    order: the names of its layers, where no id reaches (EfficientNet's
    ``block6a_expand_activation`` inside a repeat); and the block calls as its layers group
    (MobileNetV3's ``expanded_conv_2``, ``expanded_conv_3.squeeze_excite``), which cut at the
    call's output. None where the spec does not compile (its errors are its
    own file's diagnostics). Resolving is TF-free and fast (EfficientNetB7's 815 layers: about
    0.2 s)."""
    from cnnspec.spec.backbone import block_names
    from cnnspec.spec.resolve import resolve

    try:
        nodes = resolve(model).nodes
    except SpecError:
        return [], []
    return [node.name for node in nodes], [name for name in block_names(nodes) if name not in points]


def backbone_doc(ref: str, file: Path | None, reader: Reader | None = None) -> SourceDoc | None:
    """The document a backbone's ``spec:`` names, or ``None`` (not found, not loading, or a
    file outside the folder of ``file``)."""
    from cnnspec.spec.compose import load_spec

    target: str | Path = ref
    if not zoo.is_zoo_ref(ref):
        if file is None or str(file).startswith("<"):
            return None
        folder = file.resolve().parent
        target = (folder / ref).resolve()
        if not target.is_relative_to(folder) or not (target.is_file() or (reader and reader(target))):
            return None
    try:
        return load_spec(target, (), reader=reader)
    except (SpecError, OSError):
        return None


def _key_of_value(before: str, above: Sequence[str]) -> str | None:
    """The key whose value (or list element) the end of ``before`` is in: written on the line
    (``use: [a.yaml, zoo:``), or for an element of a block-style list (``- zoo:``), the key
    that opens the list on a line above."""
    keys = _VALUE_KEY.findall(before)
    if keys:
        return str(keys[-1])
    if not re.match(r"\s*-\s", before):
        return None
    indent = len(before) - len(before.lstrip())
    for line in islice(reversed(above), _LOOK_BACK):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        start = len(line) - len(line.lstrip())
        if start < indent or (start == indent and not stripped.startswith("-")):
            opening = _OPENING_KEY.fullmatch(stripped)
            return opening.group(1) if opening is not None else None
    return None


def value_suggestions(
    doc: SourceDoc | None,
    path: SpecPath,
    outside: str,
    key: str,
    above: Sequence[str],
    after: str = "",
    known: SourceDoc | None = None,
) -> list[Suggestion]:
    """The values of parameter ``key`` when they are a fixed set: a registered parameter's
    ``choices``, ``true``/``false`` for a boolean (a layer's, or a block's ``bool`` parameter),
    the merge kinds for a ``residual``'s or ``parallel``'s ``merge``. The kind is the item's
    at ``path`` in ``doc``, else the one the text names (``outside``: the line before ``key``,
    ``above``/``after`` as for :func:`written_kind`)."""
    source = doc if doc is not None else known
    if source is not None and path[:1] == ("vars",) and path[1:2] == (key,):
        choices = varchoices.declared(source.data).get(key)
        return [Suggestion(varchoices.shown(c), "value", f"var_choices.{key}") for c in choices or ()]
    kind = None
    item = item_path(path) if doc is not None else None
    if doc is not None and item is not None:
        kind = kind_of(doc, item)
    if kind is None:
        written = written_kind(outside, above, after)
        kind = written[0] if written is not None else None
    if kind is None or not _is_kind_key(kind, source):
        return schema_values(outside, above, key)  # a section's setting (`training: {loss: |`)
    if kind in _MERGING and key == "merge":
        # the registry's combining kinds, as the schema's enum and the resolver list them
        return [Suggestion(name, "value", f"{kind}.merge") for name in combinator_merges()]
    registered = REGISTRY.get(kind)
    if registered is not None:
        param = registered.param_index.get(key)
        if param is None:
            return []
        if param.choices:
            return [Suggestion(choice, "value", f"{kind}.{key}") for choice in param.choices]
        return _booleans(f"{kind}.{key}") if param.type == "bool" else []
    blocks = source.data.get("blocks") if source is not None else None
    body = blocks.get(kind) if isinstance(blocks, dict) else None
    params = body.get("params") if isinstance(body, dict) else None
    declared = params.get(key) if isinstance(params, dict) else None
    if isinstance(declared, dict):
        declared = declared.get("type")
    return _booleans(f"{kind} argument {key}") if declared == "bool" else []


def _booleans(detail: str) -> list[Suggestion]:
    return [Suggestion("true", "value", detail), Suggestion("false", "value", detail)]


def schema_values(outside: str, above: Sequence[str], key: str) -> list[Suggestion]:
    """The values the schema fixes for ``key`` outside a layer item (``training``'s
    ``optimizer``/``loss``/``task``, ``data``'s ``source``): its ``enum`` strings, then
    ``true``/``false`` where it takes a boolean; ``outside``: the line before ``key``."""
    flow = line_chain(outside, above)
    if flow is None or _in_item(flow[0]):
        return []  # (a layer item's values are its kind's: the registry's, not the schema's)
    chain = [*flow[0], key]
    found: dict[str, Suggestion] = {}
    nodes = _schema_at(chain)
    detail = ".".join(step for step in chain if step is not None)
    for node, _ in nodes:
        for value in node.get("enum") or ():
            if isinstance(value, str):
                found.setdefault(value, Suggestion(value, "value", _described(node) or detail))
    if any(node.get("type") == "boolean" for node, _ in nodes):
        found.update({s.label: s for s in _booleans(detail) if s.label not in found})
    return list(found.values())


#: What :func:`line_chain` reads on a line: a key, an opening or closing bracket, a comma.
_FLOW_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)[ \t]*:(?=\s|$|[{\[])|[\[\]{},]")


def line_chain(before: str, above: Sequence[str]) -> tuple[list[Step], set[str], str | None] | None:
    """The path of the mapping (or list) the end of ``before`` is in, the keys written in it,
    and the key whose value the cursor is at (``None``: none, after a ``,`` or a bracket):
    the block mapping the line's indentation puts it in (:func:`indentation_path`), then
    the flow collections opened on the line (``training: {optimizer: {adam: {|`` →
    ``training.optimizer.adam``; a ``[`` adds a list item). ``None`` where the text does
    not say."""
    text = _QUOTED.sub('""', _EXPRESSION.sub('""', before))
    lead = _INDENT.match(text)
    assert lead is not None  # the pattern matches any text
    found = indentation_path(lead.group(0), above)
    if found is None:
        return None
    chain, present = list(found[0]), set(found[1])
    frames: list[tuple[int, set[str]]] = []  # per open bracket: the steps it added, the outer keys
    key: str | None = None
    for token in _FLOW_TOKEN.finditer(text, lead.end()):
        mark = token.group()
        if token.group(1) is not None:
            key = token.group(1)
            present.add(key)
        elif mark in "[{":
            steps = ([key] if key is not None else []) + ([None] if mark == "[" else [])
            chain += steps
            frames.append((len(steps), present))
            present, key = set(), None
        elif mark in "]}":
            if not frames:
                return None  # a bracket closed that the line did not open
            added, present = frames.pop()
            del chain[len(chain) - added :]
            key = None
        else:
            key = None
    return chain, present, key


def _in_item(chain: Sequence[Step]) -> bool:
    """Whether ``chain`` is at or in a layer item (whose keys and values are its kind's)."""
    return any(_is_item(chain[:end]) for end in range(1, len(chain) + 1))


def _flow_keys(after: str) -> set[str]:
    """The keys written after the cursor in the flow mapping it is in (not offered again)."""
    inner = _rest_of_mapping(_QUOTED.sub('""', _EXPRESSION.sub('""', after)))
    while (nested := re.search(r"[\[{][^\[\]{}]*[\]}]", inner)) is not None:
        inner = inner[: nested.start()] + inner[nested.end() :]
    return set(_KEYS.findall("," + inner))


_EXPRESSION = re.compile(r"\$\{[^}]*\}?")
_QUOTED = re.compile(r"\"(?:[^\"\\]|\\.)*\"?|'(?:[^']|'')*'?")
#: (A key starts where no word character stands before it: a search from every letter of a
#: long word backtracked over the rest of it each time, 23 s on a 100,000-character line.)
_KEY_BEFORE = re.compile(r"(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]*)[ \t]*:[ \t]*$")
_KEYS = re.compile(r"(?:^|[{,])\s*([A-Za-z_][A-Za-z0-9_]*)\s*:")
_INDENT = re.compile(r"^([ \t]*)((?:-[ \t]+)*)")
_MAPPING_KEY = re.compile(r"(?P<key>[A-Za-z_][A-Za-z0-9_]*)[ \t]*:(?:[ \t]|$)")
_QUOTED_KEY = re.compile(r"""(?P<quote>["'])(?P<key>[^"']*)(?P=quote)[ \t]*:(?:[ \t]|$)""")
_OPENING_KEY = re.compile(r"(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]*)[ \t]*:[ \t]*(?:#.*)?$")
#: Lines read upwards for the kind of a block-style mapping.
_LOOK_BACK = 500
#: How far :func:`indentation_path` reads back for the key of the cursor's list or mapping.
_INDENT_LOOK_BACK = 20_000


def written_kind(before: str, above: Sequence[str], after: str = "") -> tuple[str, set[str]] | None:
    """From the text alone: the kind whose parameter mapping the cursor is in, and the keys
    written in it; ``before``/``after``: the cursor's line before and after the cursor,
    ``above``: the lines before it. ``- conv2d: {filters: 3, |`` (a flow mapping on the line)
    or a block mapping::

        - dense:
            units: 4
            |
    """
    text = _QUOTED.sub('""', _EXPRESSION.sub('""', before))
    stack: list[tuple[str, int]] = []
    for index, ch in enumerate(text):
        if ch in "[{":
            stack.append((ch, index))
        elif ch in "]}" and stack:
            stack.pop()
    if stack:
        bracket, start = stack[-1]
        key = _KEY_BEFORE.search(text[:start])
        if bracket != "{" or key is None:
            return None
        inner = text[start + 1 :] + "," + _rest_of_mapping(_QUOTED.sub('""', _EXPRESSION.sub('""', after)))
        while (nested := re.search(r"[\[{][^\[\]{}]*[\]}]", inner)) is not None:
            inner = inner[: nested.start()] + inner[nested.end() :]
        return key.group(1), set(_KEYS.findall(inner))
    if before.strip() and not re.fullmatch(r"\s+[A-Za-z0-9_]*", before):
        return None
    indent = len(before) - len(before.lstrip())
    present: set[str] = set()
    for line in islice(reversed(above), _LOOK_BACK):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        start = len(_INDENT.match(line)[0])  # type: ignore[index]  # the key's column
        if start > indent:
            continue  # a deeper value of a key already written
        rest = line[start:]
        if start == indent:
            key = _sibling_key(rest)
            if key is None:
                return None
            present.add(key)
            continue
        opening = _OPENING_KEY.fullmatch(rest)
        return (opening.group(1), present) if opening is not None else None
    return None


def _rest_of_mapping(after: str) -> str:
    """``after`` up to the brace that closes the mapping the cursor is in."""
    depth = 0
    for index, ch in enumerate(after):
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth < 0:
                return after[:index]
    return after


def _kind_snippet(name: str) -> str:
    required = [p.name for p in REGISTRY[name].params if p.required]
    return _snippet(name, required)


def _block_snippet(name: object, params: object) -> str:
    required = []
    if isinstance(params, dict):
        required = [
            str(p) for p, spec in params.items() if not (isinstance(spec, dict) and "default" in spec)
        ]
    return _snippet(str(name), required)


def _snippet(name: str, required: list[str]) -> str:
    if not required:
        return name
    fields = ", ".join(f"{p}: ${{{i}:{p}}}" for i, p in enumerate(required, start=1))
    return f"{name}: {{{fields}}}"


#: A block-style list item being typed: its dash, an opening quote, the text typed so far.
_BLOCK_ITEM = re.compile(r"^[ \t]*-[ \t]+([\"']?)(\S*)$")
#: A character of a pattern's name before a ``[`` that belongs to it (``st[1]``).
_NAME_CHAR = re.compile(r"[A-Za-z0-9_.\]/*?]")
#: An unclosed ``[`` of the name being typed (its ``]`` closes it, not the list).
_IN_NAME = re.compile(r"\[[^\]]*$")
#: What a plain scalar of a flow collection cannot hold (YAML would end it or nest a list).
_FLOW_UNSAFE = re.compile(r"[\[\]{},#]")


def pattern_typed(before: str, above: Sequence[str]) -> tuple[str, str, bool] | None:
    """Whether the cursor is in a freeze/unfreeze pattern list, from the text alone (the list
    is often not valid YAML while it is typed): the pattern typed so far, the quote it
    opened (``"``, ``'`` or empty), and whether the list is a flow list (``freeze: [a, |``)
    rather than a block one (``- |`` under ``freeze:`` of ``training`` or of a phase)."""
    flow = _flow_collection(before)
    if flow is not None:
        start, quote, token = flow
        key = _KEY_BEFORE.search(before[:start])
        return (token, quote, True) if key is not None and key.group(1) in PATTERN_KEYS else None
    item = _BLOCK_ITEM.match(before)
    if item is None or _key_of_value(before, above) not in PATTERN_KEYS:
        return None  # (the list's key, read back only to it: the full path only for a pattern list)
    found = indentation_path(before, above)
    if found is None or not found[0] or found[0][-1] is not None:
        return None
    chain = found[0][:-1]
    in_training = chain[:1] == ["training"] and (len(chain) == 2 or chain[1:3] == ["phases", None])
    if not in_training or len(chain) not in (2, 4) or chain[-1] not in PATTERN_KEYS:
        return None
    return item.group(2), item.group(1), False


#: A key being typed on a line of its own in a block mapping: its opening quote, its text.
_BLOCK_KEY = re.compile(r"^[ \t]+([\"']?)([^\s:\"']*)$")


def scale_key_typed(before: str, above: Sequence[str]) -> tuple[str, str, set[str]] | None:
    """Whether the cursor is at a key being typed in a ``learning_rate_scale`` mapping (of
    ``training`` or of a phase; its keys are patterns), from the text alone: the key typed so
    far, the quote it opened, and the keys the mapping already has (block style; a flow
    mapping's are not read back). ``None`` at a value, or in any other mapping."""
    flow = _flow_collection(before, brackets="{")
    if flow is not None:
        start, quote, token = flow
        key = _KEY_BEFORE.search(before[:start])
        entry = before[start + 1 :].rsplit(",", 1)[-1]  # the mapping's entry being typed
        # at its key while no colon ends it (one inside the quote the key opened is the key's)
        at_key = ":" not in (entry if not quote else entry[: entry.rfind(quote)])
        return (token, quote, set()) if key is not None and key.group(1) in PATTERN_MAPS and at_key else None
    typed = _BLOCK_KEY.match(before)
    found = indentation_path(before, above) if typed is not None else None
    if typed is None or found is None:
        return None
    chain, present = found
    if not chain or chain[-1] not in PATTERN_MAPS:
        return None
    if chain[:-1] != ["training"] and (len(chain) != 4 or chain[:3] != ["training", "phases", None]):
        return None
    return typed.group(2), typed.group(1), present


def _flow_collection(before: str, brackets: str = "[") -> tuple[int, str, str] | None:
    """The innermost flow collection open at the end of ``before``, when it is a list (or, with
    ``brackets="{"``, a mapping): where its ``[`` is, the quote the element being typed opened,
    and the element's text so far; ``None`` in the other kind of collection, outside any
    collection, or in a comment. A ``[`` right after
    a name's character is read as part of the name being typed (``st[1``: YAML would open a
    nested list there, which no pattern list holds; the quote the completion inserts fixes it)."""
    stack: list[int] = []
    quote, start, index = "", 0, 0
    while index < len(before):
        ch = before[index]
        if quote:
            if ch == "\\" and quote == '"':
                index += 1  # an escaped character
            elif ch == quote and before[index + 1 : index + 2] == quote == "'":
                index += 1  # '' in a single-quoted scalar
            elif ch == quote:
                quote = ""
        elif ch in "\"'" and before[:index].rstrip()[-1:] in ("", "[", ",", "{", ":"):
            quote, start = ch, index  # a quote only starts a scalar at the start of one
        elif ch in "[{" and (ch == "{" or not _NAME_CHAR.match(before[index - 1 : index])):
            stack.append(index)
            start = index + 1
        elif ch in "]}" and stack and not (ch == "]" and _IN_NAME.search(before[start:index])):
            stack.pop()
        elif ch == "#" and (index == 0 or before[index - 1] in " \t"):
            return None
        if not quote and (ch in ", \t"):
            start = index + 1
        index += 1
    if not stack or before[stack[-1]] not in brackets:
        return None
    if quote:
        return stack[-1], quote, before[start + 1 :]
    return stack[-1], "", before[start:]


def _written_patterns(doc: SourceDoc | None, path: SpecPath) -> set[str]:
    """The patterns the list at the cursor already holds (from the located document)."""
    where = pattern_list(path) if doc is not None else None
    items = value_at(doc, where) if doc is not None and where is not None else None
    return {item for item in items if isinstance(item, str)} if isinstance(items, list) else set()


def pattern_suggestions(
    doc: SourceDoc | None,
    ir: ModelIR | None,
    typed: str,
    quote: str,
    flow: bool,
    written: Collection[str] = (),
) -> list[Suggestion]:
    """The names a freeze/unfreeze pattern may be (:class:`cnnspec.lsp.patterns.PatternNames`:
    the model's ``ir``, else ``doc``'s model) that start with ``typed`` (``/`` read as ``.``,
    and kept as typed), except those the list already has; each replaces ``typed`` (inside
    the ``quote`` the user opened), quoted in a ``flow`` list when it has brackets."""
    model = model_ir(doc, ir)
    if model is None:
        return []
    prefix = typed.replace("/", ".")
    found = []
    for candidate in PatternNames(model).candidates():
        name = candidate.name
        if not name.startswith(prefix) or (name in written and name != typed):
            continue
        label = typed + name[len(prefix) :]  # as the user spells it (`st[0]/inner`)
        insert = f'"{label}"' if flow and not quote and _FLOW_UNSAFE.search(label) else label
        what = "layer" if candidate.what == "layer" else "id"
        found.append(Suggestion(label, what, candidate.detail, None, candidate.rank, len(typed), insert))
    return found
