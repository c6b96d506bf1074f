"""Completion beyond the JSON Schema: what only the compiler knows at the cursor.

- inside ``${…}``: the vars, block parameters, loop variables and ``in_channels``/``in_shape``
  visible there;
- in ``inputs:``: the ids the resolver accepts there (defined earlier, in the same scope,
  with a block's named inputs);
- at a new layer item (``- ``): the layer kinds (with snippets for their required parameters),
  the blocks (with their required arguments) and the combinators;
- inside a layer's or block call's mapping: its parameters;
- at a parameter's value: its choices (``true``/``false`` for a boolean);
- after ``zoo:``: the zoo's models (``spec:``, ``extends:``), or its block libraries (``use:``);
- at a backbone's ``until:``: the cut points of the spec it names (a zoo model or a file in
  the spec's folder), then the names of its layers, which cut inside its items too.

When the text does not load (invalid YAML, a missing ``use:`` file), the kinds and the
parameters (and values) of the kind written on the lines above are still offered, from the
text alone; ids and names in scope come from the lines above the cursor when they load.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from cnnspec.errors import SpecError, SpecPath
from cnnspec.layers.registry import REGISTRY, combinator_merges
from cnnspec.lsp.locate import Cursor, item_path, kind_of, path_at, value_at
from cnnspec.lsp.names import IMPLICIT, names_at, signature
from cnnspec.lsp.scopes import is_block_input, visible_ids
from cnnspec.lsp.text import in_expression
from cnnspec.spec import zoo
from cnnspec.spec.backbone import cut_points
from cnnspec.spec.compose import Reader
from cnnspec.spec.loader import SourceDoc, load_text

COMBINATORS = {
    "residual": "residual: {body: [$1], shortcut: ${2:auto}}",
    "parallel": "parallel: {branches: [[$1], [$2]], merge: ${3:concat}}",
    "repeat": "repeat: {times: ${1:2}, as: ${2:i}, layers: [$3]}",
}
#: The combinators with a ``merge:`` field (its values: :func:`combinator_merges`).
_MERGING = ("residual", "parallel")
_NEW_ITEM = re.compile(r"^\s*-\s+[A-Za-z0-9_]*$")
_INPUTS = re.compile(r"\binputs:\s*(?:\[[^\]]*)?[A-Za-z0-9_]*$")
_KEY_POSITION = re.compile(r"(?:[{,]\s*|^\s+)[A-Za-z0-9_]*$")
#: A mapping value being typed: ``padding: sa`` (group 1: the key).
_VALUE = re.compile(r"(?:^|[\s{,])([A-Za-z_][A-Za-z0-9_]*)[ \t]*:[ \t]+[A-Za-z0-9_]*$")
#: A ``zoo:`` reference being typed, as a value or a list element.
_ZOO_REF = re.compile(r"(?:^|[\s\[{,:\"'-])zoo:[A-Za-z0-9_/.-]*$")
#: Each key on a line that a value or list follows (``use: [``, ``spec:``).
_VALUE_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)[ \t]*:(?=[ \t\[{\"']|$)")


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


def complete(
    doc: SourceDoc | None,
    cursor: Cursor | None,
    line_text: str,
    column: int,
    above: Sequence[str] = (),
    known: SourceDoc | None = None,
    file: Path | None = None,
    reader: Reader | None = None,
) -> list[Suggestion]:
    """Suggestions at 0-based code-point ``column`` of ``line_text``.

    ``doc`` is the located document of the text (``None`` when the text does not load: then
    only what the text itself says is offered: layer kinds at a new item, the parameters of the
    kind written on the lines ``above``). ``known`` is a document that loaded earlier, whose
    blocks are offered when ``doc`` is ``None`` (names only, never its positions). ``file`` is
    the spec's own path, the folder a backbone's spec file is read from (default: ``doc``'s);
    ``reader``: the text of a file open in the editor (unsaved), else None (read from disk)."""
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
    if _INPUTS.search(before) or (path and "inputs" in path[-2:]):
        # Never ids of `known`: which ids come before the cursor is a matter of positions.
        return ids_in(scoped, path) if scoped is not None else []
    if _NEW_ITEM.match(before):
        return item_suggestions(doc if doc is not None else known)
    zoo_names = zoo_suggestions(before, above)
    if zoo_names is not None:
        return zoo_names
    value = _VALUE.search(before)
    if value is not None and value.group(1) == "until":
        where = file if file is not None else Path(doc.file) if doc is not None else None
        return until_suggestions(doc, path, line_text, above, where, reader)
    if value is not None:
        return value_suggestions(
            doc, path, before[: value.start(1)], value.group(1), above, line_text[column:], known
        )
    if not _KEY_POSITION.search(before):
        return []
    item = item_path(path)
    if doc is not None and item is not None:
        return parameter_suggestions(doc, item)
    if doc is None:
        written = written_kind(before, above, line_text[column:])
        if written is not None:
            return _parameters(written[0], written[1], known)
    return []


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
    follows ``zoo:`` (the prefix is already typed). The zoo is listed once per process."""
    ref = _ZOO_REF.search(before)
    if ref is None:
        return None
    key = _key_of_value(before[: ref.start() + 1], above)
    if key == "use":
        libraries = zoo.block_libraries()
        return [Suggestion(f"{zoo.BLOCKS}{name}", "value", "zoo block library") for name in libraries]
    if key in ("spec", "extends"):
        return [
            Suggestion(v.name, "value", f"{v.family} ({v.keras_name})" if v.keras_name else v.family)
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
    model = _backbone_doc(ref, file, reader)
    if model is None:
        return []
    points = cut_points(model)
    found = [Suggestion(point, "id", f"cut point of {ref}") for point in points]
    return found + [
        Suggestion(name, "layer", f"layer of {ref}", rank=1)
        for name in _layer_names(model)
        if name not in points
    ]


def _layer_names(model: SourceDoc) -> list[str]:
    """The names of the layers of ``model`` (a backbone's spec at its own vars), in model order:
    ``until:`` takes them too, where no id reaches (EfficientNet's ``block6a_expand_activation``
    inside a repeat). None where the spec does not compile (its errors are its own file's
    diagnostics). Resolving is TF-free and fast (EfficientNetB7's 815 layers: about 0.2 s)."""
    from cnnspec.spec.resolve import resolve

    try:
        return [node.name for node in resolve(model).nodes]
    except SpecError:
        return []


def _backbone_doc(ref: str, file: Path | None, reader: Reader | None = None) -> SourceDoc | None:
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
    kind = None
    item = item_path(path) if doc is not None else None
    if doc is not None and item is not None:
        kind = kind_of(doc, item)
    if kind is None:
        written = written_kind(outside, above, after)
        kind = written[0] if written is not None else None
    if kind is None:
        return []
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
    source = doc if doc is not None else known
    blocks = source.data.get("blocks") if source is not None else None
    body = blocks.get(kind) if isinstance(blocks, dict) else None
    params = body.get("params") if isinstance(body, dict) else None
    declared = params.get(key) if isinstance(params, dict) else None
    if isinstance(declared, dict):
        declared = declared.get("type")
    return _booleans(f"{kind} argument {key}") if declared == "bool" else []


def _booleans(detail: str) -> list[Suggestion]:
    return [Suggestion("true", "value", detail), Suggestion("false", "value", detail)]


_EXPRESSION = re.compile(r"\$\{[^}]*\}?")
_QUOTED = re.compile(r"\"(?:[^\"\\]|\\.)*\"?|'(?:[^']|'')*'?")
_KEY_BEFORE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)[ \t]*:[ \t]*$")
_KEYS = re.compile(r"(?:^|[{,])\s*([A-Za-z_][A-Za-z0-9_]*)\s*:")
_INDENT = re.compile(r"^([ \t]*)((?:-[ \t]+)*)")
_MAPPING_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)[ \t]*:(?:[ \t]|$)")
_OPENING_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)[ \t]*:[ \t]*(?:#.*)?$")
#: Lines read upwards for the kind of a block-style mapping.
_LOOK_BACK = 500


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
            key = _MAPPING_KEY.match(rest)
            if key is None:
                return None
            present.add(key.group(1))
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
