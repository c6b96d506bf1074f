"""Applying ``textDocument/didChange`` content changes to a document's text, as LSP defines them.

pygls applies a ranged change by splitting the text with :meth:`str.splitlines`, which also
breaks lines at U+2028, U+2029, U+0085, ``\\x0b``, ``\\x0c`` and ``\\x1c``–``\\x1e``; LSP ends a line
only at ``\\n``, ``\\r\\n`` or ``\\r``. A document holding one of those characters (YAML allows them
in quoted strings) would have every later edit land on the wrong line. And a position whose
character is past the end of its line means the line's end (LSP: "defaults back to the line
length"), before its line break, not after it (pygls would insert past the ``\\n`` or between
``\\r`` and ``\\n``).

Here a position is converted to an offset into the text by LSP's own line breaks
(:data:`cnnspec.spec.linebreaks.LINE_BREAK`) and the position encoding agreed with the client
(:class:`cnnspec.lsp.text.Lines`).
"""

from __future__ import annotations

from collections.abc import Iterable

from lsprotocol import types

from cnnspec.lsp.text import UTF16, Lines
from cnnspec.spec.linebreaks import LINE_BREAK


def offset_of(text: str, lines: Lines, position: types.Position) -> int:
    """The code-point offset into ``text`` of the LSP ``position`` (``lines``: ``text`` split
    by :class:`Lines`, in the agreed encoding). A character past the end of its line is the
    line's end, before its line break; a line past the last one is the end of the text; a
    negative line or character (a broken client) is the start of its line or of the text."""
    if position.line < 0:
        return 0
    if position.line >= len(lines.lines):
        return len(text)
    start = _line_start(text, position.line)
    return start + lines.codepoint(position.line, max(position.character, 0))


def _line_start(text: str, line: int) -> int:
    """The offset of the first character of ``line`` (0-based, and less than the number of
    lines: :func:`offset_of` checked it), counting LSP's line breaks only."""
    if line == 0:
        return 0
    for count, match in enumerate(LINE_BREAK.finditer(text), start=1):
        if count == line:
            return match.end()
    return len(text)  # not reached: the caller checked the line exists


def apply_change(text: str, change: types.TextDocumentContentChangeEvent, encoding: str = UTF16) -> str:
    """``text`` after one content change: the whole document, or a range replaced."""
    if not isinstance(change, types.TextDocumentContentChangePartial):
        return change.text
    lines = Lines(text, encoding)
    start = offset_of(text, lines, change.range.start)
    end = offset_of(text, lines, change.range.end)
    if end < start:  # a reversed range (a client's mistake): the text between, as written
        start, end = end, start
    return text[:start] + change.text + text[end:]


def apply_changes(
    text: str, changes: Iterable[types.TextDocumentContentChangeEvent], encoding: str = UTF16
) -> str:
    """``text`` after each change in turn (LSP: each applies to the text the previous left)."""
    for change in changes:
        text = apply_change(text, change, encoding)
    return text
