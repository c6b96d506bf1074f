"""``var_choices``: the values a var may take, checked where each value was set.

A family reads some vars only through comparisons (``when: "${pooling == 'avg'}"``), so a
value none of them expects (``--set vars.pooling=mean``) is no error anywhere else: it quietly
builds another model, as keras.applications quietly ignores an unknown ``pooling``. With
``var_choices: {pooling: [null, avg, max]}`` such a value is a located error at the ``--set``
option, the extending file's ``vars:`` entry, the backbone item's ``vars:`` or the variants
table row that set it, and the search space may only draw the listed values.

The checks are pure functions over the composed document; the resolver and the search check
report what they return (``problems`` of :class:`Problem`)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cnnspec.errors import SpecPath, describe_value, did_you_mean

#: The top-level key (kept here: the schema, the composer and the resolver name it).
KEY = "var_choices"


@dataclass(frozen=True)
class Problem:
    """A located problem: ``message`` at ``path`` (at its key with ``key``), with ``hint``."""

    message: str
    path: SpecPath
    hint: str | None = None
    key: bool = False


def declared(data: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The well-formed ``var_choices`` entries of a composed spec (the schema reports others)."""
    raw = data.get(KEY) if isinstance(data, Mapping) else None  # (the editor's text may be a list)
    if not isinstance(raw, dict):
        return {}
    return {
        name: list(options)
        for name, options in raw.items()
        if isinstance(name, str) and isinstance(options, list)
    }


def same(a: Any, b: Any) -> bool:
    """Whether ``a`` is the choice ``b``: equal numbers are one (``1`` and ``1.0``: an
    expression may compute either), but a boolean is never a number and ``null`` only itself;
    lists compare element by element the same way."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isfinite(a) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) or isinstance(b, dict):
        return False  # (a var holds no mapping: the schema refuses one)
    return type(a) is type(b) and a == b


def allowed(value: Any, options: Sequence[Any]) -> bool:
    """Whether ``value`` is one of ``options``."""
    return any(same(value, option) for option in options)


def shown(value: Any) -> str:
    """A choice as YAML writes it: ``null``, ``true``, ``avg``, ``3``, ``[224, 224, 3]``."""
    if isinstance(value, str):
        plain = value and value.strip() == value and value[0].isalpha() and value.isprintable()
        return value if plain and value not in ("null", "true", "false") else json.dumps(value)
    try:
        return json.dumps(value)
    except (TypeError, ValueError):  # (the editor shows a document the schema refused: a date)
        return str(value)


def listing(options: Sequence[Any]) -> str:
    """``null, avg or max`` (``nothing``: an empty list, which only the editor shows)."""
    texts = [shown(option) for option in options]
    if len(texts) < 2:
        return texts[0] if texts else "nothing"
    return ", ".join(texts[:-1]) + " or " + texts[-1]


def refusal(name: str, value: Any, options: Sequence[Any]) -> Problem | None:
    """The problem of var ``name`` holding ``value`` (located at the var), or ``None``."""
    if allowed(value, options):
        return None
    words = [option for option in options if isinstance(option, str)]
    close = did_you_mean(value, words) if isinstance(value, str) else None
    return Problem(
        f"expected var {name!r} to be {listing(options)} (its var_choices); received {describe_value(value)}",
        ("vars", name),
        close or f"set it to one of {listing(options)}",
    )


def declaration_problems(data: Mapping[str, Any]) -> Iterator[Problem]:
    """Problems of the declaration itself: a choice list for a var the spec does not declare,
    an expression among the choices (they are literal values, compared as written), and a
    variants table row that sets a var to a value its choices leave out (reported at the row,
    whichever variant is built)."""
    choices = declared(data)
    raw_vars = data.get("vars")
    names = [name for name in raw_vars if isinstance(name, str)] if isinstance(raw_vars, dict) else []
    for name, options in choices.items():
        if name not in names:
            yield Problem(
                f"var_choices names {name!r}, a var the spec does not declare",
                (KEY, name),
                did_you_mean(name, names) or "declare it under `vars:`, or remove its choices",
                key=True,
            )
        for index, option in enumerate(options):
            if isinstance(option, str) and "${" in option:
                yield Problem(
                    "expected a literal value among the choices; received an expression",
                    (KEY, name, index),
                    "write the value itself: choices are compared with the var's value as written",
                )
    table = data.get("variants")
    for variant, row in table.items() if isinstance(table, dict) else ():
        overrides = row.get("vars") if isinstance(row, dict) else None
        for name, value in overrides.items() if isinstance(overrides, dict) else ():
            if name in choices and isinstance(value, (str, int, float, bool, list, type(None))):
                found = refusal(name, value, choices[name])
                if found is not None and not (isinstance(value, str) and "${" in value):
                    yield Problem(found.message, ("variants", variant, "vars", name), found.hint)


def search_problem(name: str, kind: str, items: Sequence[Any], data: Mapping[str, Any]) -> Problem | None:
    """For a ``search.space`` entry that sets ``vars.NAME``: a choice its var_choices leave
    out (located at the choice), or a numeric range over a var with choices (the search would
    draw values between them). ``None`` when the var has no choices or the entry fits them."""
    options = declared(data).get(name)
    if options is None:
        return None
    at: SpecPath = ("search", "space", f"vars.{name}", kind)
    if kind != "choice":
        return Problem(
            f"expected {{choice: [...]}} for var {name!r}, which takes only {listing(options)} "
            "(its var_choices)",
            at,
            "list the values to try: {choice: [" + ", ".join(shown(o) for o in options) + "]}",
        )
    for index, item in enumerate(items):
        found = refusal(name, item, options)
        if found is not None:
            return Problem(found.message, (*at, index), found.hint)
    return None
