"""Which vars the ``${…}`` expressions of a spec read, found without evaluating anything.

The resolver orders ``vars`` by these references, and warns about a var that nothing reads:
most often a misspelt name (``clases: 10`` in a spec that extends a zoo model) that would
otherwise leave the value it meant to change as it was, without a word."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cnnspec.errors import Loc, format_path
from cnnspec.spec.expr import EMBEDDED_EXPRESSION, FULL_EXPRESSION, ExpressionError, names_in

if TYPE_CHECKING:
    from cnnspec.spec.loader import SourceDoc

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def input_shape_origin(doc: SourceDoc) -> tuple[Loc | None, tuple[str, ...]]:
    """Where ``doc``'s input shape was set, as a location and a spec path: the var
    ``input.shape`` reads when it is ``${var}`` (set in the spec, a file it extends, or
    ``--set vars.input_shape=…``: a zoo model's shape is never its packaged file's mistake),
    else ``input.shape`` itself."""
    raw = (doc.data.get("input") or {}).get("shape")
    declared = doc.data.get("vars") or {}
    read = sorted(var_refs(raw, declared)) if isinstance(declared, dict) else []
    if len(read) == 1:
        return doc.locs.get(("vars", read[0])), ("vars", read[0])
    return doc.loc(("input", "shape")), ("input", "shape")


def var_refs(value: Any, names: Mapping[str, Any]) -> set[str]:
    """The names of ``names`` that ``${…}`` expressions inside ``value`` read."""
    refs: set[str] = set()
    for body in expression_bodies(value):
        if names.keys().isdisjoint(_WORD.findall(body)):
            continue  # names no var: no need to parse it
        with contextlib.suppress(ExpressionError):  # evaluation reports it, located
            refs.update(names_in(body))
    return refs & names.keys()


def names_read(value: Any) -> set[str]:
    """Every name that the ``${…}`` expressions inside ``value`` read."""
    refs: set[str] = set()
    for body in expression_bodies(value):
        with contextlib.suppress(ExpressionError):  # evaluation reports it, located
            refs.update(names_in(body))
    return refs


def expression_bodies(value: Any) -> Iterator[str]:
    """The body of each ``${…}`` expression inside ``value``."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, str) and "${" in item:
            full = FULL_EXPRESSION.match(item)
            whole = full is not None and "${" not in full.group(1)
            yield from [full.group(1)] if full is not None and whole else EMBEDDED_EXPRESSION.findall(item)


@dataclass(frozen=True)
class Shadow:
    """A name declared inside the spec that hides a var of that name where it is visible: a
    block parameter in its block (the body, the block's ``defaults``, the defaults of the
    parameters declared after it), a repeat's loop variable (``as:``) in its ``layers`` and
    ``next``. A ``${w}`` there reads it, never the var."""

    what: str  # "the parameter `w` of block `b`" / "the loop variable of the repeat at model[0]"
    path: tuple[str | int, ...]  # where it is declared (blocks.b.params.w, model[0].repeat.as)


def unread_vars(data: Mapping[str, Any]) -> dict[str, tuple[Shadow, ...]]:
    """The vars of a composed spec that no expression reads, in declaration order, each with
    the names that hide it where it is written (empty: no ``${…}`` names it at all; else every
    ``${name}`` reads a block parameter or a loop variable of that name instead, so setting the
    var, ``--set vars.name=…`` included, changes nothing).

    Every section counts (the model, blocks, training, data, search…), and so does another
    var, but not the var's own value. The scan is static: a var read only in a skipped item,
    or by a block that is never called, still counts as read, so a warning built on this never
    cries wolf."""
    raw = data.get("vars")
    if not isinstance(raw, dict) or not raw:
        return {}
    names = {name: None for name in raw if isinstance(name, str)}
    read: set[str] = set()
    hidden: dict[str, dict[Shadow, None]] = {}
    _scoped_refs({key: value for key, value in data.items() if key != "vars"}, names, read, hidden)
    for name, value in raw.items():
        read |= var_refs(value, names) - {name}
    return {name: tuple(hidden.get(name, ())) for name in names if name not in read}


def when_vars(data: Mapping[str, Any]) -> set[str]:
    """The vars that a ``when:`` reading vars alone reads (``when: "${depth > 4}"``, not
    ``"${i == 2}"`` of a loop variable, a block parameter or ``in_shape``): such a condition
    has one value wherever it is, so code generation decides it and writes no ``if``."""
    raw = data.get("vars")
    if not isinstance(raw, dict) or not raw:
        return set()
    names = {name for name in raw if isinstance(name, str)}
    found: set[str] = set()
    stack: list[tuple[Any, tuple[str | int, ...], Mapping[str, Shadow]]] = [
        ({key: value for key, value in data.items() if key != "vars"}, (), {})
    ]
    while stack:
        item, path, shadows = stack.pop()
        if isinstance(item, list):
            stack.extend((entry, (*path, index), shadows) for index, entry in enumerate(item))
        elif isinstance(item, dict):
            condition = item.get("when")
            read = names_read(condition) if isinstance(condition, str) else set()
            if read and read <= names and read.isdisjoint(shadows):
                found |= read
            stack.extend(_scoped_parts(item, path, shadows))
    return found


def unread_params(block: Any, name: str) -> dict[str, tuple[Shadow, ...]]:
    """The parameters of block ``name`` (its declaration ``block``) that no expression of the
    block reads, in declaration order, each with the loop variables that hide it where it is
    written (empty: no ``${…}`` names it at all; else every ``${param}`` reads a repeat's loop
    variable of that name instead, so the argument a call passes changes nothing).

    A parameter is read by the block's body and ``defaults`` and by the defaults of the other
    parameters; the scan is static, as :func:`unread_vars`'s is."""
    if not isinstance(block, dict) or not isinstance(block.get("params"), dict):
        return {}
    params = block["params"]
    names = {pname: None for pname in params if isinstance(pname, str)}
    if not names:
        return {}
    read: set[str] = set()
    hidden: dict[str, dict[Shadow, None]] = {}
    root = ("blocks", name)
    _scoped_refs({key: value for key, value in block.items() if key != "params"}, names, read, hidden, root)
    for pname, declaration in params.items():
        # A default reading a parameter declared after it is refused where it is written
        # (Resolver.reads_later), not also warned of: that parameter counts as read. A default
        # reading its own name reads the var of that name, not the parameter.
        read |= var_refs(declaration, {other: None for other in names if other != pname})
    return {pname: tuple(hidden.get(pname, ())) for pname in names if pname not in read}


def _scoped_refs(
    sections: Mapping[Any, Any],
    names: Mapping[str, Any],
    read: set[str],
    hidden: dict[str, dict[Shadow, None]],
    root: tuple[str | int, ...] = (),
) -> None:
    """Add to ``read`` the names of ``names`` that ``${…}`` expressions inside a spec's
    ``sections`` (at ``root``: the spec's top, or a block) read, and to ``hidden`` (name → its
    shadows, in order) the ones they name where a block parameter or a loop variable of that
    name is visible instead."""
    stack: list[tuple[Any, tuple[str | int, ...], Mapping[str, Shadow]]] = [(dict(sections), root, {})]
    while stack:  # (no recursion: nesting may be as deep as the loader allows)
        item, path, shadows = stack.pop()
        if isinstance(item, str):
            for name in var_refs(item, names) if "${" in item else ():
                if name in shadows:
                    hidden.setdefault(name, {})[shadows[name]] = None
                else:
                    read.add(name)
        elif isinstance(item, list):  # (pushed last first: the shadows come in the spec's order)
            stack.extend(reversed([(entry, (*path, index), shadows) for index, entry in enumerate(item)]))
        elif isinstance(item, dict):
            stack.extend(reversed(_scoped_parts(item, path, shadows)))


def _scoped_parts(
    item: dict[Any, Any], path: tuple[str | int, ...], shadows: Mapping[str, Shadow]
) -> list[tuple[Any, tuple[str | int, ...], Mapping[str, Shadow]]]:
    """The values of mapping ``item`` (at ``path``) with the names visible in each: a repeat's
    ``layers`` and ``next`` see its loop variable; a block (a mapping of the ``blocks``
    section, seen from the spec's top) sees its parameters."""
    parts: list[tuple[Any, tuple[str | int, ...], Mapping[str, Shadow]]] = []
    repeat = item.get("repeat")
    loop = repeat.get("as") if isinstance(repeat, dict) else None
    for key, inner in item.items():
        where = (*path, key)
        if key == "blocks" and not path and isinstance(inner, dict):
            for block, body in inner.items():
                parts.extend(_block_parts(body, (*where, block), block, shadows))
        elif key == "repeat" and isinstance(loop, str) and isinstance(inner, dict):
            declared = Shadow(f"the loop variable of the repeat at {format_path(path)}", (*where, "as"))
            inside = {**shadows, loop: declared}
            for field, part in inner.items():
                parts.append((part, (*where, field), inside if field in ("layers", "next") else shadows))
        else:
            parts.append((inner, where, shadows))
    return parts


def _block_parts(
    body: Any, path: tuple[str | int, ...], block: Any, shadows: Mapping[str, Shadow]
) -> list[tuple[Any, tuple[str | int, ...], Mapping[str, Shadow]]]:
    """A block's values with the names visible in each: its parameters everywhere in it but in
    ``params``, where a default sees the parameters declared before it."""
    if not isinstance(body, dict):
        return [(body, path, shadows)]
    params = body.get("params")
    params = params if isinstance(params, dict) else {}
    own = {
        name: Shadow(f"the parameter `{name}` of block `{block}`", (*path, "params", name))
        for name in params
        if isinstance(name, str)
    }
    parts: list[tuple[Any, tuple[str | int, ...], Mapping[str, Shadow]]] = []
    for key, inner in body.items():
        if key != "params" or not params:
            parts.append((inner, (*path, key), {**shadows, **own}))
            continue
        before: dict[str, Shadow] = dict(shadows)
        for name, declaration in params.items():
            parts.append((declaration, (*path, key, name), dict(before)))
            if name in own:
                before[name] = own[name]
    return parts


#: The sections a ``backbone`` item takes from the spec it names: its model and what the model
#: calls. Its ``input`` is not one (the item's input feeds the backbone), nor training or data.
BACKBONE_SECTIONS = ("model", "blocks", "defaults")


def vars_read_by(data: Mapping[str, Any], sections: tuple[str, ...]) -> set[str]:
    """The vars that ``sections`` of ``data`` read, directly or through other vars."""
    raw = data.get("vars")
    if not isinstance(raw, dict):
        return set()
    names = {name: None for name in raw if isinstance(name, str)}
    read = var_refs([data.get(section) for section in sections], names)
    todo = list(read)
    while todo:
        for name in var_refs(raw.get(todo.pop()), names) - read:
            read.add(name)
            todo.append(name)
    return read
