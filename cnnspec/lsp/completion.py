"""Completion beyond the JSON Schema: what only the compiler knows at the cursor.

- inside ``${…}``: the vars, block parameters, loop variables and ``in_channels``/``in_shape``
  visible there;
- in ``inputs:``: the ids defined in the same scope;
- at a new layer item (``- ``): the layer kinds (with snippets for their required parameters),
  the blocks (with their required arguments) and the combinators;
- inside a layer's or block call's mapping: its parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cnnspec.errors import SpecPath
from cnnspec.layers.registry import REGISTRY
from cnnspec.lsp.locate import Cursor, item_path, kind_of, value_at
from cnnspec.lsp.names import names_at, signature
from cnnspec.lsp.navigation import id_scope, layer_items
from cnnspec.lsp.text import in_expression
from cnnspec.spec.loader import SourceDoc

COMBINATORS = {
    "residual": "residual: {body: [$1], shortcut: ${2:auto}}",
    "parallel": "parallel: {branches: [[$1], [$2]], merge: ${3:concat}}",
    "repeat": "repeat: {times: ${1:2}, as: ${2:i}, layers: [$3]}",
}
_NEW_ITEM = re.compile(r"^\s*-\s+[A-Za-z0-9_]*$")
_INPUTS = re.compile(r"\binputs:\s*(?:\[[^\]]*)?[A-Za-z0-9_]*$")
_KEY_POSITION = re.compile(r"(?:[{,]\s*|^\s+)[A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Suggestion:
    """One completion: its label, what it is (``var``, ``id``, ``kind``, ``block``,
    ``combinator``, ``parameter``), a detail line, and a snippet to insert (``None``: the label)."""

    label: str
    what: str
    detail: str = ""
    snippet: str | None = None


def complete(doc: SourceDoc, cursor: Cursor | None, line_text: str, column: int) -> list[Suggestion]:
    """Suggestions at 0-based code-point ``column`` of ``line_text``."""
    before = line_text[:column]
    path: SpecPath = cursor.path if cursor is not None else ()
    if in_expression(line_text, column):
        return [Suggestion(n.name, "var", f"{n.what}: {n.detail}") for n in names_at(doc, path).values()]
    if _INPUTS.search(before) or (path and "inputs" in path[-2:]):
        return ids_inid_scope(doc, path)
    if _NEW_ITEM.match(before):
        return item_suggestions(doc)
    item = item_path(path)
    if item is not None and _KEY_POSITION.search(before):
        return parameter_suggestions(doc, item)
    return []


def ids_inid_scope(doc: SourceDoc, path: SpecPath) -> list[Suggestion]:
    scope = id_scope(path)
    seen: dict[str, Suggestion] = {"input": Suggestion("input", "id", "the model's (or block's) input")}
    for item, kind in layer_items(doc):
        value = value_at(doc, (*item, "id"))
        if id_scope(item) == scope and isinstance(value, str) and value not in seen:
            seen[value] = Suggestion(value, "id", f"{kind} ({_where(doc, item)})")
    return list(seen.values())


def item_suggestions(doc: SourceDoc) -> list[Suggestion]:
    """Layer kinds, blocks and combinators, each with a snippet of what it requires."""
    found = [Suggestion(kind.name, "kind", kind.doc, _kind_snippet(kind.name)) for kind in REGISTRY.values()]
    blocks = doc.data.get("blocks")
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
    present = set(written) if isinstance(written, dict) else set()
    registered = REGISTRY.get(kind or "")
    if registered is not None:
        return [
            Suggestion(p.name, "parameter", p.doc or p.type, f"{p.name}: $1")
            for p in registered.params
            if p.name not in present
        ]
    blocks = doc.data.get("blocks")
    body = blocks.get(kind) if isinstance(blocks, dict) and kind else None
    params = body.get("params") if isinstance(body, dict) else None
    if isinstance(params, dict):
        return [
            Suggestion(str(name), "parameter", f"{kind} argument", f"{name}: $1")
            for name in params
            if name not in present
        ]
    return []


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


def _where(doc: SourceDoc, item: SpecPath) -> str:
    loc = doc.loc(item)
    return f"line {loc.line}" if loc is not None else "?"
