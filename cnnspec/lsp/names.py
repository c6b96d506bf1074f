"""The names a ``${…}`` expression can read at a place in the spec, and where each is defined.

Vars (``vars:``, including those inherited through ``extends`` and ``use``), the parameters of
the block the place is in, the loop variables of the ``repeat`` items around it, and
``in_channels``/``in_shape`` (the item's input, set by the resolver).
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnspec.errors import Loc, SpecPath
from cnnspec.lsp.locate import value_at
from cnnspec.spec.loader import SourceDoc

#: Names the resolver binds for every layer item: its input's channels and shape.
IMPLICIT = {
    "in_channels": "the number of channels of this item's input",
    "in_shape": "the shape of this item's input (without the batch axis)",
}


@dataclass(frozen=True)
class Name:
    """A name in scope: what it is, where it is defined, and its value or declaration."""

    name: str
    what: str  # "var", "parameter", "loop variable", "implicit"
    loc: Loc | None
    detail: str
    path: SpecPath = ()


def names_at(doc: SourceDoc, path: SpecPath) -> dict[str, Name]:
    """Every name an expression at ``path`` may read (inner scopes win)."""
    found: dict[str, Name] = {}
    for key, text in IMPLICIT.items():
        found[key] = Name(key, "implicit", None, text)
    variables = doc.data.get("vars")
    if isinstance(variables, dict):
        for name, raw in variables.items():
            where = ("vars", name)
            found[name] = Name(name, "var", doc.key_loc(where), _show(raw), where)
    if len(path) >= 2 and path[0] == "blocks" and isinstance(path[1], str):
        params = value_at(doc, ("blocks", path[1], "params"))
        if isinstance(params, dict):
            for name, spec in params.items():
                where = ("blocks", path[1], "params", name)
                found[name] = Name(name, "parameter", doc.key_loc(where), _declaration(spec), where)
    for end in range(len(path)):
        if path[end] == "repeat":
            body = value_at(doc, path[: end + 1])
            var = body.get("as") if isinstance(body, dict) else None
            if isinstance(var, str):
                where = (*path[: end + 1], "as")
                times = body.get("times")
                found[var] = Name(
                    var, "loop variable", doc.loc(where), f"0 … times − 1 (times: {times})", where
                )
    return found


def _declaration(spec: object) -> str:
    if isinstance(spec, str):
        return spec
    if isinstance(spec, dict):
        text = str(spec.get("type", "any"))
        return f"{text} = {_show(spec['default'])}" if "default" in spec else text
    return _show(spec)


def _show(value: object) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def signature(name: str, params: object) -> str:
    """A block's signature as code: ``bottleneck(filters: int, stride: int = 1)``."""
    parts = []
    if isinstance(params, dict):
        parts = [f"{p}: {_declaration(spec)}" for p, spec in params.items()]
    return f"{name}({', '.join(parts)})"
