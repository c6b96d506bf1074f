"""The segments of a hierarchical name, and the one under the cursor.

A reference (``c0.x``, ``loop[1].m``), a freeze/unfreeze pattern (``blk.c``, the
``learning_rate_scale`` key ``"blk/c"``) and a backbone item's ``until:`` (``double_1.c``) name
an id through segments: each name segment, read with the ones before it, leads to a
declaration of its own (``blk`` to the call item, ``c`` to the id inside the block it calls).
Every feature asked on such a name reads the segment under the cursor this one way, so that
they agree: rename edits that segment (:mod:`cnnspec.lsp.rename`), references list its uses
(:mod:`cnnspec.lsp.references`) and definition goes to its declaration
(:mod:`cnnspec.lsp.navigation`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from cnnspec.lsp.locate import Cursor

#: A segment of a hierarchical reference or pattern: a name (``.``/``/`` separated) or an index
#: (``[1]``, ``[${i}]``).
_SEGMENT = re.compile(r"\[(?:\d+|\$\{[^{}]*\})\]|[^.\[\]/$]+")
#: An index written as an expression (``enc[${levels - 1 - i}]``): every iteration has the same
#: ids, so a name is looked up through the first.
_EXPRESSION_INDEX = re.compile(r"\[\$\{[^{}]*\}\]")


def segments(ref: str) -> Iterator[tuple[int, int, bool]]:
    """The segments of a reference or pattern: (start, end, whether it is a name)."""
    for match in _SEGMENT.finditer(ref):
        text = match.group()
        yield match.start(), match.end(), not text.startswith("[")


def lookup(ref: str) -> str:
    """A reference or pattern as :func:`cnnspec.lsp.navigation.find_reference` reads it: dots
    for a pattern's slashes, an expression index as iteration 0."""
    return _EXPRESSION_INDEX.sub("[0]", ref.replace("/", "."))


def segment_at(
    ref: str, cursor: Cursor, line_text: str, column: int, *, index: bool = False
) -> tuple[int, int] | None:
    """The name segment of ``ref`` (the value or key written at the cursor's location) under
    the cursor: its start and end in ``ref``; a cursor just past a name is on it (as an editor
    puts it after typing). With ``index``, an index (``[1]``) under the cursor (or just past
    it) counts too, after a name: a name a cursor is just past wins over the index it touches.
    ``None`` on an index (without ``index``), a separator between no names, or outside
    ``ref``. ``column``: 0-based code points of ``line_text``."""
    offset = column - (cursor.loc.column - 1)
    if line_text[cursor.loc.column - 1 : cursor.loc.column] in ("'", '"'):
        offset -= 1  # (the name starts after its quote)
    under = [(start, end, name) for start, end, name in segments(ref) if start <= offset <= end]
    found = [(start, end) for start, end, name in under if name] + [
        (start, end) for start, end, name in under if index and not name
    ]
    return found[0] if found else None


def prefix_at(ref: str, cursor: Cursor, line_text: str, column: int) -> str | None:
    """``ref`` read up to the end of its segment under the cursor, as a lookup reads it
    (:func:`lookup`): ``blk`` on ``blk`` of ``"blk/c"``, ``blk.c`` on its ``c``, ``st[1]`` on
    the index of ``st[1].inner`` (that iteration of the repeat ``st``); ``None`` where the
    cursor is on no segment (:func:`segment_at`)."""
    segment = segment_at(ref, cursor, line_text, column, index=True)
    return lookup(ref[: segment[1]]) if segment is not None else None
