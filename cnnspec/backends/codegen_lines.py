"""Long lines in generated code, folded so that it passes ``ruff check``'s line length (E501).

The templates keep their own lines short, but a line can carry text of any length from the
spec: a data path in a ``--help`` text, a var's string value, the spec file's name in the
header comment. ``ruff format`` cannot split a string or a comment, so this pass does it:

- a long string literal becomes an implicit concatenation in parentheses, one piece per line,
  split at spaces (``ast.parse`` folds it into the one constant: the value is unchanged). A
  piece that is a single word longer than the line stays whole on its own line, which ruff
  accepts (it ignores a line of one word, such as a long path).
- a long full-line comment is wrapped at spaces onto comment lines of its indentation; a word
  that alone is too long is cut, as a comment's text is read, not run.

Only what is long is touched; a module of short lines comes back as it went in.
"""

from __future__ import annotations

import ast
import io
import re
import textwrap
import token
import tokenize

from cnnspec.backends.codegen_values import py_string

#: Ruff's (and the project's) line length for generated code.
LINE_LENGTH = 110
#: The least text a wrapped comment line holds, however deep its indentation.
MIN_COMMENT_ROOM = 40
#: The extra indentation of the pieces of a folded string.
INDENT = "    "
#: A plain one-line string literal (f-strings, bytes, raw and triple-quoted strings are left).
_PLAIN_STRING = re.compile(r"""[uU]?(?:"(?!"")|'(?!''))""")
#: Tokens that only lay the code out (skipped when looking for a string's neighbours).
_LAYOUT = {token.NL, token.NEWLINE, token.COMMENT, token.INDENT, token.DEDENT}


def fold_long_lines(text: str, width: int = LINE_LENGTH) -> str:
    """``text`` (Python source) with every line longer than ``width`` that holds a plain string
    literal or is a full-line comment folded (see the module's docstring)."""
    for _ in range(text.count("\n") + 1):  # each round folds a line at least; a bound, not a loop guard
        folded = _fold_round(text, width)
        if folded is None:
            return text
        text = folded
    return text


def _fold_round(text: str, width: int) -> str | None:
    """``text`` with each of its foldable long lines folded once, or None when there is none.
    The lines are folded from the last up, all from one reading of the tokens: a fold replaces
    its own line only, so the lines above keep their numbers (one tokenization of a whole
    script per round, not one per long line). A line still too long is folded again in the next
    round (a concatenation's other parts)."""
    lines = text.splitlines(keepends=True)
    if all(len(line.rstrip("\r\n")) <= width for line in lines):
        return None
    strings, inside = _strings_by_line(text)
    changed = False
    for number in range(len(lines), 0, -1):
        folded = _fold_line(lines[number - 1], number, width, strings, inside)
        if folded is not None:
            lines[number - 1] = folded
            changed = True
    return "".join(lines) if changed else None


def _fold_line(
    line: str,
    number: int,
    width: int,
    strings: dict[int, list[tuple[tokenize.TokenInfo, str]]],
    inside: set[int],
) -> str | None:
    """The text that replaces line ``number`` (``line``, with its ending) folded, or None when it
    is short enough or cannot be folded."""
    body = line.rstrip("\r\n")
    if len(body) <= width or number in inside or len(body.split()) == 1:  # ruff allows one word
        return None
    ending = line[len(body) :]
    indent = " " * _indent(body)
    if body.lstrip().startswith("#"):
        wrapped = _wrap_comment(body, width)
        return "".join(part + ending for part in wrapped) if wrapped != [body] else None
    if number not in strings:
        return None
    longest, place = max(strings[number], key=lambda found: len(found[0].string))
    start, end = longest.start[1], longest.end[1]
    if place == "joined":  # a part of a concatenation in brackets: more parts in place
        pieces = _string_pieces(longest.string, width - len(indent))
        if len(pieces) < 2:
            return None
        parts = f"{ending}{indent}".join(pieces)
        return f"{body[:start]}{parts}{body[end:]}{ending}"
    # in parentheses of its own, unless it is a call's only argument (ruff's UP034)
    pieces = _string_pieces(longest.string, width - len(indent) - len(INDENT))
    inner = "".join(f"{indent}{INDENT}{piece}{ending}" for piece in pieces)
    opening, closing = ("", "") if place == "argument" else ("(", ")")
    return f"{body[:start]}{opening}{ending}{inner}{indent}{closing}{body[end:]}{ending}"


def _strings_by_line(text: str) -> tuple[dict[int, list[tuple[tokenize.TokenInfo, str]]], set[int]]:
    """The plain one-line string literals of each line, each with its place: ``"joined"`` (a
    part of an implicit concatenation inside brackets), ``"argument"`` (alone in brackets, a
    call's only argument) or ``""``; and the lines inside multi-line tokens (docstrings), which
    are never folded."""
    strings: dict[int, list[tuple[tokenize.TokenInfo, str]]] = {}
    inside: set[int] = set()
    tokens = [tok for tok in tokenize.generate_tokens(io.StringIO(text).readline) if tok.type not in _LAYOUT]
    depth = 0  # of brackets: a newline inside them continues the expression
    for position, tok in enumerate(tokens):
        if tok.start[0] != tok.end[0]:
            inside.update(range(tok.start[0] + 1, tok.end[0] + 1))
        elif tok.type == token.STRING and _PLAIN_STRING.match(tok.string):
            before = tokens[position - 1].string if position else ""
            after = tokens[position + 1] if position + 1 < len(tokens) else None
            place = ""
            if depth > 0 and (
                tokens[position - 1].type == token.STRING or (after and after.type == token.STRING)
            ):
                place = "joined"
            elif before == "(" and after is not None and after.string == ")":
                place = "argument"
            strings.setdefault(tok.start[0], []).append((tok, place))
        if tok.type == token.OP and tok.string in "([{":
            depth += 1
        elif tok.type == token.OP and tok.string in ")]}":
            depth -= 1
    return strings, inside


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _string_pieces(literal: str, room: int) -> list[str]:
    """The literals of the pieces of the string ``literal``, each at most ``room`` characters
    where it can be: words (split at spaces, which stay in the pieces) packed greedily, a word
    longer than ``room`` alone."""
    value = ast.literal_eval(literal)
    pieces: list[str] = []
    current = ""
    for part in re.split(r"( )", value):
        if not part:
            continue
        if current and len(py_string(current + part)) > room:
            pieces.append(current)
            current = ""
        current += part
    if current:
        pieces.append(current)
    return [py_string(piece) for piece in pieces]


def _wrap_comment(line: str, width: int) -> list[str]:
    """The full-line comment ``line`` wrapped at spaces into lines of at most ``width``
    characters, each starting with the comment's indentation and ``# ``; a word longer than
    a line is cut (a comment is read, not run)."""
    indent = " " * _indent(line)
    # (at least a few words a line: code nested deep enough is indented past the width itself)
    room = max(width - len(indent) - 2, MIN_COMMENT_ROOM)
    out = textwrap.wrap(line.strip()[1:].strip(), room, break_long_words=True, break_on_hyphens=False)
    return [f"{indent}# {part}" for part in out] or [line]
