"""The text of the JSON and text files cnnspec writes: numbers JSON has no literal for, and file
names that are not UTF-8.

:func:`json_text` is every JSON file's text (NaN as ``"nan"``, NumPy scalars as numbers, a newline
at the end); :func:`utf8_text` and :func:`utf8_safe` write the bytes of a file name that is not
UTF-8 as ``\\xNN``, so that a CSV or JSON file stays UTF-8 (:data:`UNDECODABLE_NOTE` says so).
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Callable
from typing import Any


def json_safe(value: Any) -> Any:
    """``value`` with every number that is not finite (a diverged run's NaN loss) as the text
    ``"nan"``, ``"inf"`` or ``"-inf"``, NumPy scalars as Python numbers and mapping keys as text:
    JSON has no NaN, and Python's ``NaN`` literal is refused by other readers (browsers, jq)."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, numbers.Number) and hasattr(value, "item"):  # (NumPy's scalars)
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


#: A byte of a file name that is no UTF-8 as ``repr`` writes it (``'caf\\udce9.png'``).
_REPR_SURROGATE = re.compile(r"\\udc([89a-f][0-9a-f])")


def library_text(text: str) -> str:
    """A library's message (Pillow's ``cannot identify image file 'caf\\udce9.png'``, which
    quotes the path with ``repr``) with each byte of a name that is not UTF-8 written ``\\xe9``,
    as cnnspec writes the name itself (:func:`utf8_text`)."""
    return utf8_text(_REPR_SURROGATE.sub(r"\\x\1", text))


def utf8_text(text: str) -> str:
    """``text`` as valid UTF-8 text: each byte of a file name that is not UTF-8 (which Python
    holds as a lone surrogate, ``\\udce9`` for the byte 0xE9) written ``\\xe9``, as
    ``backslashreplace`` writes it (``caf\\xe9.png``); any other lone surrogate as ``\\udXXX``.
    Written raw, such a name made a CSV that is no UTF-8 and a JSON string strict readers refuse."""
    if text.isascii() or not any("\ud800" <= ch <= "\udfff" for ch in text):
        return text
    return "".join(
        (f"\\x{ord(ch) - 0xDC00:02x}" if "\udc80" <= ch <= "\udcff" else f"\\u{ord(ch):04x}")
        if "\ud800" <= ch <= "\udfff"
        else ch
        for ch in text
    )


def utf8_safe(value: Any) -> tuple[Any, bool]:
    """``value`` (a JSON document: mappings, lists, text, numbers) with every text made
    :func:`utf8_text`, keys too; and whether any text had to be changed (for a note)."""
    changed = False

    def walk(item: Any) -> Any:
        nonlocal changed
        if isinstance(item, str):
            text = utf8_text(item)
            changed = changed or text != item
            return text
        if isinstance(item, dict):
            return {walk(key) if isinstance(key, str) else key: walk(inner) for key, inner in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(inner) for inner in item]
        return item

    return walk(value), changed


#: The note of a command that wrote a name :func:`utf8_text` escaped.
UNDECODABLE_NOTE = (
    "a file name that is not valid UTF-8 is written with each such byte as \\xNN (caf\\xe9.png for "
    "the Latin-1 name café.png), so the output stays UTF-8"
)


def json_text(document: Any, indent: int = 2, default: Callable[[Any], Any] | None = None) -> str:
    """The text of a JSON file cnnspec writes: ``document`` made :func:`json_safe`, then a newline
    (``default``: as :func:`json.dumps` takes it, for values JSON has no type for)."""
    return json.dumps(json_safe(document), indent=indent, allow_nan=False, default=default) + "\n"
