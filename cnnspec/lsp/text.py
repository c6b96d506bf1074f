"""Positions: cnnspec's 1-based line:column (code points) ↔ LSP's 0-based positions, counted in
the code units the client and server agreed on (UTF-16 by default; Neovim offers UTF-8).

A :class:`~cnnspec.errors.Loc` marks where a value starts; an editor wants a range. The range
of a location is the YAML token that starts there (a plain or quoted scalar, a ``${…}``
expression, a flow collection on its line), so a squiggle covers ``fliters`` or ``"${w * 2}"``,
not one character.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cnnspec.spec.linebreaks import LINE_BREAK

_PLAIN = re.compile(r"(?:[^\s,\[\]{}#:]|:(?=[^\s,\[\]{}]))+")
_DOUBLE = re.compile(r'"(?:[^"\\]|\\.)*"?')
_SINGLE = re.compile(r"'(?:[^']|'')*'?")
#: One part of a dotted name: where a location inside one ends.
_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_CLOSING = {"[": "]", "{": "}"}


BOM = "\ufeff"

#: The position encodings of LSP 3.17 (``PositionEncodingKind``).
UTF8, UTF16, UTF32 = "utf-8", "utf-16", "utf-32"


def _units(ch: str, encoding: str) -> int:
    """How many code units of ``encoding`` the character ``ch`` takes."""
    if encoding == UTF8:
        return len(ch.encode("utf-8", "surrogatepass"))
    if encoding == UTF32:
        return 1
    return 2 if ord(ch) > 0xFFFF else 1


@dataclass(frozen=True, slots=True)
class Span:
    """A range in a document: 0-based lines, columns in code units of the agreed encoding."""

    start_line: int
    start_char: int
    end_line: int
    end_char: int


class Lines:
    """A document's text split into lines, for converting positions (``encoding``: the
    position encoding agreed with the client)."""

    def __init__(self, text: str, encoding: str = UTF16) -> None:
        self.lines = LINE_BREAK.split(text)  # \r\n, \r or \n, as LSP counts lines
        self.encoding = encoding
        #: The code units of a byte-order mark before the first line: YAML's columns (and so
        #: cnnspec's, and the line this class gives) start after it, the editor's before it.
        self.mark = 0
        if self.lines[0].startswith(BOM):
            self.lines[0] = self.lines[0][1:]
            self.mark = _units(BOM, encoding)

    def line(self, index: int) -> str:
        return self.lines[index] if 0 <= index < len(self.lines) else ""

    def units(self, line: int, column: int) -> int:
        """Offset in code units of code-point ``column`` (0-based) on ``line``."""
        text = self.line(line)[:column]
        lead = self.mark if line == 0 else 0
        if self.encoding == UTF32 or text.isascii():
            return lead + len(text)
        return lead + sum(_units(ch, self.encoding) for ch in text)

    def codepoint(self, line: int, character: int) -> int:
        """Code-point column of the code-unit offset ``character`` on ``line``."""
        text = self.line(line)
        if line == 0:
            character = max(character - self.mark, 0)
        if self.encoding == UTF32 or text.isascii():
            return min(character, len(text))
        units = 0
        for index, ch in enumerate(text):
            if units >= character:
                return index
            units += _units(ch, self.encoding)
        return len(text)

    def token_end(self, line: int, column: int) -> int:
        """Code-point column just past the token that starts at ``column`` (0-based)."""
        text = self.line(line)
        if column >= len(text):
            return column
        first = text[column]
        if text.startswith("${", column):
            close = text.find("}", column)
            return close + 1 if close >= 0 else len(text.rstrip())
        if first in _CLOSING:
            close = _matching(text, column)
            return close + 1 if close is not None else len(text.rstrip())
        if column > 0 and text[column - 1] == "." and (part := _PART.match(text, column)) is not None:
            # a location inside a dotted name (`widht` of `vars.widht`): that part alone
            plain = _PLAIN.match(text, column)
            if plain is not None and plain.end() >= part.end():
                return part.end()
        for pattern in (_DOUBLE, _SINGLE, _PLAIN):
            match = pattern.match(text, column)
            if match and match.end() > column:
                return match.end()
        return column + 1

    def span(self, line: int, column: int) -> Span:
        """The range of the token at 1-based ``line``:``column`` (a :class:`~cnnspec.errors.Loc`)."""
        row, col = max(line - 1, 0), max(column - 1, 0)
        end = self.token_end(row, col)
        text = self.line(row)
        if end <= col or col >= len(text.rstrip()):
            # an empty value at the line's end (`- add:`, `- add:  `): the word before it, not
            # nothing or the blanks after it
            stop = min(col, len(text.rstrip()))
            begin = stop
            while begin > 0 and not text[begin - 1].isspace():
                begin -= 1
            if begin < stop:
                col, end = begin, stop
        return Span(row, self.units(row, col), row, self.units(row, end))


def _matching(text: str, start: int) -> int | None:
    """Index of the bracket closing the one at ``start`` on the same line (quotes skipped)."""
    depth = 0
    quote: str | None = None
    for index in range(start, len(text)):
        ch = text[index]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 0:
                return index
    return None


def word_at(text: str, column: int) -> tuple[str, int, int] | None:
    """The identifier around code-point ``column`` of a line: (word, start, end)."""
    for match in re.finditer(r"[A-Za-z_][A-Za-z0-9_]*", text):
        if match.start() <= column <= match.end():
            return match.group(), match.start(), match.end()
    return None


def in_expression(text: str, column: int) -> bool:
    """Whether code-point ``column`` of a line lies inside a ``${…}`` expression."""
    start = text.rfind("${", 0, column)
    if start < 0:
        return False
    close = text.find("}", start)
    return close == -1 or close >= column
