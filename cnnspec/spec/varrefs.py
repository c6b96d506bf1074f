"""Which vars the ``${…}`` expressions of a spec read, found without evaluating anything.

The resolver orders ``vars`` by these references, and warns about a var that nothing reads:
most often a misspelt name (``clases: 10`` in a spec that extends a zoo model) that would
otherwise leave the value it meant to change as it was, without a word."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import Any

from cnnspec.spec.expr import EMBEDDED_EXPRESSION, FULL_EXPRESSION, ExpressionError, names_in

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def var_refs(value: Any, names: Mapping[str, Any]) -> set[str]:
    """The names of ``names`` that ``${…}`` expressions inside ``value`` read."""
    refs: set[str] = set()
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
            bodies = [full.group(1)] if full is not None and whole else EMBEDDED_EXPRESSION.findall(item)
            for body in bodies:
                if names.keys().isdisjoint(_WORD.findall(body)):
                    continue  # names no var: no need to parse it
                with contextlib.suppress(ExpressionError):  # evaluation reports it, located
                    refs.update(names_in(body))
    return refs & names.keys()


def unread_vars(data: Mapping[str, Any]) -> list[str]:
    """The vars of a composed spec that no expression reads, in declaration order.

    Every section counts (the model, blocks, training, data, search…), and so does another
    var, but not the var's own value. The scan is static: a var read only in a skipped item
    or by a block whose parameter shadows it still counts as read, so a warning built on
    this never cries wolf."""
    raw = data.get("vars")
    if not isinstance(raw, dict) or not raw:
        return []
    names = {name: None for name in raw if isinstance(name, str)}
    read = var_refs([value for key, value in data.items() if key != "vars"], names)
    for name, value in raw.items():
        read |= var_refs(value, names) - {name}
    return [name for name in names if name not in read]


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
