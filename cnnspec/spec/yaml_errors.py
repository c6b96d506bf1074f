"""Explaining PyYAML's errors. PyYAML names the token it could not place, where it noticed it. A
new user's mistake is usually elsewhere (a key without a colon a line above, a ``{`` opened lines
before) and of a handful of kinds, so :func:`explain_yaml_error` reads the source text around
PyYAML's marks to say which one, and where, with a hint that shows the fixed line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import yaml

from cnnspec.errors import Loc
from cnnspec.spec.items import ITEM_EXTRAS
from cnnspec.spec.linebreaks import YAML_BREAK, YAML_ONLY_BREAKS, line_mapper

#: The hint when nothing more specific fits.
GENERIC_HINT = "check indentation and quoting"


#: A key as a new user writes it: a word of letters, digits, ``_``, ``-`` and ``.``.
_WORD = re.compile(r"[A-Za-z_][\w.-]*")
#: A layer kind written before a flow collection without its colon: ``conv2d {filters: 8}``.
_KIND_BEFORE_FLOW = re.compile(r"([A-Za-z_][\w.-]*) +([{\[])")
#: ``key:value`` with no space after the colon (YAML reads it as one plain scalar).
_NO_SPACE_AFTER_COLON = re.compile(r"([A-Za-z_][\w.-]*):([^\s:].*)")
_CLOSERS = {"{": "}", "[": "]"}
#: Longest excerpt of the spec a hint quotes: a hint is one line (a minified spec may have
#: lines of a megabyte).
_EXCERPT = 60


@dataclass(frozen=True)
class _Explained:
    """What to report for a YAML error: the message after ``invalid YAML: ``, where (0-based
    line and column in YAML's lines, as PyYAML's marks are) and the hint."""

    problem: str
    line: int
    column: int
    hint: str


def _short(text: str) -> str:
    """``text`` cut to :data:`_EXCERPT` characters around an ellipsis, for a hint."""
    if len(text) <= _EXCERPT:
        return text
    return f"{text[: _EXCERPT // 2]}…{text[-(_EXCERPT // 2 - 1) :]}"


def _without_comment(line: str) -> str:
    """``line`` without its comment and trailing blanks. A ``#`` starts a comment at the start
    of the line or after a blank, outside quotes (``'…'`` and ``"…"`` that start a token)."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            if char == quote and (quote == "'" or line[index - 1] != "\\"):
                quote = ""
        elif char in "'\"" and (index == 0 or line[index - 1] in " \t{[,:"):
            quote = char
        elif char == "#" and (index == 0 or line[index - 1] in " \t"):
            return line[:index].rstrip()
    return line.rstrip()


def _indent(line: str) -> int:
    """How many blanks ``line`` starts with (YAML indents with spaces only)."""
    return len(line) - len(line.lstrip(" "))


def _item_body(text: str) -> tuple[str, bool]:
    """``text`` (a line without its indentation) without the ``- `` that makes it a list item,
    and whether it had one."""
    if text.startswith("- ") or text == "-":
        return text[1:].lstrip(" "), True
    return text, False


def _content_line(lines: list[str], start: int, step: int) -> int | None:
    """The index of the nearest line from ``start`` (going by ``step``) with more than blanks
    and a comment on it."""
    index = start
    while 0 <= index < len(lines):
        if _without_comment(lines[index]).strip():
            return index
        index += step
    return None


def _quoted(text: str) -> str:
    """``text`` as a quoted YAML scalar: double quotes, or single ones when it holds a ``"``
    or a backslash (which double quotes would read as an escape)."""
    if '"' not in text and "\\" not in text:
        return f'"{text}"'
    return "'" + text.replace("'", "''") + "'"


def _expression_at(line: str, start: int, in_flow: bool = False) -> tuple[str, bool]:
    """The ``${…}`` written at ``line[start:]`` to its matching ``}``, and whether it has one.
    Without one it runs to the line's end, or inside a flow collection (``in_flow``) to the
    first ``,``, ``]`` or ``}`` outside its own brackets and quotes: the collection's, not
    the expression's (``{filters: ${w, kernel_size: 3}``)."""
    depth = 0
    index = start + 1
    while index < len(line):
        char = line[index]
        if char in "'\"" and depth > 0:
            index = _after_quoted(line, index)
            continue
        if char in "{[(":
            depth += 1
        elif char in "}])":
            depth -= 1
            if depth == 0 and char == "}":
                return line[start : index + 1], True
            if depth <= 0:
                break  # a `]` or `)` that closes nothing of the expression's
        elif char == "," and depth == 1 and in_flow:
            break
        index += 1
    if in_flow:
        return line[start:index].rstrip(), False
    return _without_comment(line[start:]), False


def _is_closed(text: str, start: int) -> bool:
    """Whether the ``{`` or ``[`` at ``text[start]`` is ever closed: brackets are counted to
    the end of the text, outside comments and quoted scalars, as a flow collection nests."""
    depth = 0
    index = start
    end = len(text)
    while index < end:
        char = text[index]
        before = text[index - 1] if index > start else " "
        if char == "#" and before in " \t\r\n":
            newline = YAML_BREAK.search(text, index)
            index = end if newline is None else newline.start()
            continue
        if char in "'\"" and before in " \t\r\n{[,:":
            index = _after_quoted(text, index)
            continue
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return True
        index += 1
    return False


def _after_quoted(text: str, start: int) -> int:
    """The index after the quoted scalar opened at ``text[start]`` (the text's end when it is
    never closed). A single-quoted ``''`` and a double-quoted ``\\"`` do not close it."""
    quote = text[start]
    index = start + 1
    while index < len(text):
        char = text[index]
        if quote == '"' and char == "\\":
            index += 2
            continue
        if char == quote:
            if quote == "'" and text.startswith("''", index):
                index += 2
                continue
            return index + 1
        index += 1
    return len(text)


def explain_yaml_error(exc: yaml.MarkedYAMLError, text: str, file: str) -> _Explained | None:
    """What to report for PyYAML's ``exc`` on ``text``, read from the text around its marks;
    ``None`` when it has no mark at all."""
    problem = exc.problem or exc.context or "invalid YAML"
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return None
    lines = YAML_BREAK.split(text)
    default = _Explained(problem, mark.line, mark.column, GENERIC_HINT)
    context, at = exc.context_mark, exc.problem_mark
    found: _Explained | None = None
    if at is not None and (found := _long_key(lines, at.line, at.column)) is not None:
        pass
    elif "mapping values are not allowed" in problem and at is not None:
        found = _mapping_value(lines, at.line, at.column, problem)
    elif exc.context == "while scanning a simple key" and context is not None:
        found = _key_without_colon(lines, context.line, context.column, problem)
    elif exc.context in ("while parsing a flow mapping", "while parsing a flow sequence"):
        if context is not None and at is not None:
            found = _flow_error(text, lines, context, at, problem, file)
    elif exc.context == "while parsing a block mapping" and context is not None and at is not None:
        found = _kind_before_flow(lines, context.line, context.column, at.line)
    elif "'\\t'" in problem and at is not None and at.line < len(lines):
        indentation = not lines[at.line][: at.column].strip()
        hint = (
            "YAML does not allow tabs for indentation; use spaces"
            if indentation
            else "use a space instead of the tab"
        )
        found = _Explained(problem, at.line, at.column, hint)
    elif (
        exc.context == "while scanning a quoted scalar" and context is not None and "end of stream" in problem
    ):
        opened = _editor_position(text, file, context.line, context.column)
        quote = '`"`' if text[context.index : context.index + 1] == '"' else "`'`"
        found = _Explained(problem, mark.line, mark.column, f"the {quote} opened at {opened} is never closed")
    return found or default


#: The longest key PyYAML reads (a "simple key": YAML's limit, 1024 characters on one line).
MAX_KEY_LENGTH = 1024
#: What ends a key's word before it on its line: a space, a flow mark or a comma.
_KEY_STOPS = frozenset(" \t{}[],")
#: What may stand before a key on its line: indentation and list items' dashes.
_KEY_PLACE = re.compile(r"\s*(?:-\s+)*")


def _long_key(lines: list[str], line: int, column: int) -> _Explained | None:
    """A key longer than YAML reads before the ``:`` at ``line``, ``column``: PyYAML said
    "mapping values are not allowed here" (or, in a flow mapping, "expected ',' or '}'") with
    the hint to check indentation and quoting, which were right."""
    source = lines[line] if line < len(lines) else ""
    if source[column : column + 1] != ":":
        return None
    # the word before the `:`, read backwards (a regex anchored at its end tried every start of a
    # one-line spec of a megabyte: quadratic, a hostile file's check ran for minutes)
    start = column
    while start > 0 and source[start - 1] not in _KEY_STOPS:
        start -= 1
    length = column - start
    if length <= MAX_KEY_LENGTH:
        return None
    before = source[:start]
    if not (_KEY_PLACE.fullmatch(before) or before.rstrip().endswith(("{", ","))):
        return None  # (in a value: `description: text … : more`, whose `: ` is the mistake)
    return _Explained(
        f"a key of {length} characters; YAML reads keys of at most {MAX_KEY_LENGTH}",
        line,
        start,
        "shorten the key",
    )


def _editor_position(text: str, file: str, line: int, column: int) -> str:
    """``LINE:COL`` (1-based) in an editor's lines of the place at 0-based ``line``, ``column``
    in YAML's: a hint names it as the message's location is named (see
    :func:`cnnspec.spec.loader.load_text`)."""
    loc = (
        line_mapper(text)(Loc(file, line + 1, column + 1))
        if any(ch in text for ch in YAML_ONLY_BREAKS)
        else None
    )
    return f"{loc.line}:{loc.column}" if loc is not None else f"{line + 1}:{column + 1}"


#: A place a hint names, as :func:`_editor_position` writes it (``the `{` opened at 2:8``).
_NAMED_POSITION = re.compile(r"(opened at )(\d+):(\d+)")


def moved_hint(hint: str | None, move: Callable[[Loc], Loc]) -> str | None:
    """``hint`` with each place it names (see :func:`_editor_position`) moved as ``move`` moves a
    location: a text parsed inside another (a ``--set`` value after the key put before it)
    is reported in the other's lines and columns, and so must its hint be."""
    if hint is None:
        return None

    def moved(match: re.Match[str]) -> str:
        loc = move(Loc("", int(match.group(2)), int(match.group(3))))
        return f"{match.group(1)}{loc.line}:{loc.column}"

    return _NAMED_POSITION.sub(moved, hint)


def _mapping_value(lines: list[str], line: int, column: int, problem: str) -> _Explained | None:
    """PyYAML's "mapping values are not allowed here": a ``: `` it could not take as a key's.

    On a line with a key before it, the value holds a second ``: ``: an unquoted expression,
    a nested mapping written inline (``dropout: rate: 0.3``) or text to quote. With none,
    this line's key is fine and the line above made its value a plain scalar that runs on
    into it: a kind without its colon (``- flatten`` above ``id:``), ``key:value`` or a key
    without any colon."""
    if line >= len(lines):
        return None
    source = lines[line]
    head, in_item = _item_body(source[:column].lstrip(" "))
    key, separator, value = head.partition(": ")
    if separator:
        value = value.strip()
        name = _short(key.strip())
        # what follows the second `: ` (an ellipsis when the value goes on the lines below)
        rest = _short(_without_comment(source[column + 1 :]).strip() or "…")
        if _KIND_BEFORE_FLOW.match(key.strip()):
            # `- conv2d {filters: 8, kernel_size: 3}`: the key is `conv2d {filters`
            key_start = column - len(head) + len(key) - len(key.lstrip(" "))
            found = _kind_before_flow(lines, line, key_start, line)
            if found is not None:
                return found
        if value.startswith("${"):
            expression, _ = _expression_at(source, source.find("${", column - len(head) + len(key)))
            hint = f"quote the expression: `{_short(_quoted(expression))}`"
        elif _WORD.fullmatch(value) and _WORD.fullmatch(key.strip()):
            nested = f"{name}: {{{_short(value)}: {rest}}}"
            hint = (
                f"write `{nested}` or `{name}: {rest}`"
                if in_item
                else f"write `{nested}` to nest a mapping, or quote the text: "
                f"`{name}: {_quoted(_short(f'{value}: {rest}'))}`"
            )
        else:
            hint = f"quote a value that contains `: `: `{name}: {_quoted(_short(f'{value}: {rest}'))}`"
        return _Explained(problem, line, column, hint)
    above = _content_line(lines, line - 1, -1)
    if above is None:
        return None
    written = _without_comment(lines[above])
    body, item = _item_body(written.lstrip(" "))
    key = head.strip()
    if item and _WORD.fullmatch(body):
        if key in ITEM_EXTRAS:
            hint = (
                "to give a layer `id`, `inputs` or `when`, write its kind with a colon "
                "(`- flatten:`) and put those keys on the following lines"
            )
        else:
            hint = (
                f"write the kind with a colon (`- {body}:`) and indent its parameters further than `{body}`"
            )
        return _Explained(problem, line, column, hint)
    if item or not _starts_a_key(lines, above):
        return None
    start = _indent(written)
    spaced = _missing_space(body, above, start)
    if spaced is not None:
        return spaced
    word = _WORD.match(body)
    if ":" in body or word is None:
        return None
    rest = body[word.end() :].strip()
    if len(rest.split()) > 1:
        # several words: text running on from a `key:` above, not a key without its colon
        return _quote_running_text(lines, above, line, column, problem)
    fixed = f"{word.group()}: {_short(rest)}" if rest else f"{word.group()}:"
    return _Explained(f"missing `:` after `{word.group()}`", above, start + word.end(), f"write `{fixed}`")


def _missing_space(text: str, line: int, column: int) -> _Explained | None:
    """``key:value`` written at ``line``, ``column`` (``epochs:40``): a key without the space
    YAML needs after its colon, located at the colon; ``None`` for other text."""
    spaced = _NO_SPACE_AFTER_COLON.fullmatch(text)
    if spaced is None:
        return None
    name, after = spaced.groups()
    return _Explained(
        f"missing space after `:` in `{_short(text)}`",
        line,
        column + len(name),
        f"YAML needs a space after the colon: `{name}: {_short(after)}`",
    )


def _quote_running_text(
    lines: list[str], first: int, line: int, column: int, problem: str
) -> _Explained | None:
    """PyYAML's location, for a plain value that starts at ``lines[first]`` below a bare
    ``key:`` and holds the ``: `` at ``line``, ``column``: the hint quotes the whole value.
    ``None`` (the generic hint) when no bare key is above it."""
    above = _content_line(lines, first - 1, -1)
    if above is None:
        return None
    body, _ = _item_body(_without_comment(lines[above]).lstrip(" "))
    key = body[:-1]
    if not body.endswith(":") or not _WORD.fullmatch(key):
        return None
    words = [_without_comment(lines[index]).strip() for index in range(first, line + 1)]
    value = " ".join(word for word in words if word)
    return _Explained(
        problem, line, column, f"quote a value that contains `: `: `{key}: {_quoted(_short(value))}`"
    )


def _starts_a_key(lines: list[str], index: int) -> bool:
    """Whether the line at ``index`` starts a mapping entry rather than continuing the plain
    value of the line above it (``description: a long`` then ``  text``): a line after a key
    with a value that is less indented continues that value."""
    above = _content_line(lines, index - 1, -1)
    if above is None:
        return True
    written = _without_comment(lines[above])
    body, item = _item_body(written.lstrip(" "))
    start = _indent(written) + (len(written.lstrip(" ")) - len(body) if item else 0)
    if start >= _indent(lines[index]):
        return True
    return body.endswith(":") or body.endswith((": |", ": >", ": |-", ": >-"))


def _key_without_colon(lines: list[str], line: int, column: int, problem: str) -> _Explained | None:
    """PyYAML's "could not find expected ':'": it read a key at its context mark (a word at the
    indentation of a mapping's keys) and noticed the missing colon only at the next token,
    often lines below after comments. ``key:value`` is a key without the space after its
    colon; a word is a list item without its ``- `` when an item beside it is one at its
    indentation and no line below is indented further (its children), else a key without its
    colon."""
    if line >= len(lines):
        return None
    written = _without_comment(lines[line][column:])
    spaced = _missing_space(written, line, column)
    if spaced is not None:
        return spaced
    below = _content_line(lines, line + 1, 1)
    # lines indented further below the word are its children: it is a key, not a list item
    has_children = below is not None and _indent(_without_comment(lines[below])) > column
    for index in (_content_line(lines, line - 1, -1), below):
        if index is None or has_children:
            continue
        neighbour = _without_comment(lines[index])
        if _indent(neighbour) == column and _item_body(neighbour.lstrip(" "))[1]:
            return _Explained(problem, line, column, f"start each list item with `- `: `- {_short(written)}`")
    word = _WORD.match(written)
    if word is None:
        return _Explained(problem, line, column, GENERIC_HINT)
    rest = written[word.end() :].strip()
    fixed = f"{word.group()}: {_short(rest)}" if rest else f"{word.group()}:"
    return _Explained(problem, line, column, f"add a colon after the key: `{fixed}`")


def _flow_error(
    text: str, lines: list[str], context: yaml.Mark, at: yaml.Mark, problem: str, file: str
) -> _Explained | None:
    """PyYAML's "expected ',' or '}'" inside ``{…}`` or ``[…]``: an unquoted ``${…}`` (whose ``{``
    opens a mapping) or a bracket never closed, which PyYAML notices lines later. The
    location stays PyYAML's (the first token that cannot belong); the hint names the bracket's."""
    if at.line < len(lines) and 0 < at.column < len(lines[at.line]):
        source = lines[at.line]
        if source[at.column] == "{" and source[at.column - 1] == "$":
            expression, closed = _expression_at(source, at.column - 1, in_flow=True)
            if closed:
                hint = f"quote the expression: `{_short(_quoted(expression))}`"
            else:
                hint = (
                    f"`{_short(expression)}` is missing its closing `}}`; quote the expression: "
                    f"`{_short(_quoted(expression + '}'))}`"
                )
            return _Explained(problem, at.line, at.column, hint)
    opener = text[context.index : context.index + 1]
    if opener in _CLOSERS and not _is_closed(text, context.index):
        opened = _editor_position(text, file, context.line, context.column)
        return _Explained(
            problem,
            at.line,
            at.column,
            f"the `{opener}` opened at {opened} is never closed; close it with `{_CLOSERS[opener]}`",
        )
    return None


def _kind_before_flow(lines: list[str], line: int, column: int, problem_line: int) -> _Explained | None:
    """PyYAML's "expected <block end>, but found ','" on the line of a block mapping whose key is a
    word, a blank and ``{``: a layer kind without its colon (``- conv2d {filters: 8, …}``, read
    as the plain key ``conv2d {filters``). Reported where the colon belongs."""
    if line != problem_line or line >= len(lines):
        return None
    found = _KIND_BEFORE_FLOW.match(lines[line], column)
    if found is None:
        return None
    kind, bracket = found.groups()
    return _Explained(
        f"missing `:` after `{kind}`",
        line,
        column + len(kind),  # where the colon belongs, as for a key written without one
        f"write `{kind}: {bracket}…{_CLOSERS[bracket]}`: a key needs `: ` before its value",
    )
