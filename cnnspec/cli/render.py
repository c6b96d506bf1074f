"""Printing diagnostics: text (with the source line and a caret), JSON, or GitHub annotations.

Every format carries a diagnostic's notes (its block calls and includes): text prints them as
``note:`` lines, JSON as a ``trace`` list of ``{file, line, column, path, message}``, and the
GitHub format inside the annotation's message (one annotation per error)."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from cnnspec.errors import Diagnostic, printable
from cnnspec.jsontext import utf8_text
from cnnspec.spec.linebreaks import LINE_BREAK
from cnnspec.spec.loader import SOURCE_TEXTS

if TYPE_CHECKING:  # Rich is imported when something is printed with it (cli.common.plain_stdout)
    from rich.console import Console


class OutputFormat(StrEnum):
    """Diagnostics' formats: text, JSON, or GitHub annotations (``validate``, ``inspect``)."""

    text = "text"
    json = "json"
    github = "github"


class TextOrJson(StrEnum):
    """The formats of a command that reports results rather than diagnostics."""

    text = "text"
    json = "json"


#: The file whose text :func:`source_line` split last, that text and its lines: the diagnostics of
#: one file are rendered one after another, and each split the whole text again (a thousand
#: errors in a large file, a thousand splits). One file's at a time, so nothing old is kept.
_SPLIT: dict[str, tuple[str, list[str]]] = {}


def source_line(file: str, line: int) -> str | None:
    text = SOURCE_TEXTS.get(file)
    if text is None:
        try:
            path = Path(file)
            if path.is_file() and path.stat().st_size <= 1024 * 1024:
                text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    if text is None:
        return None
    split = _SPLIT.get(file)
    if split is not None and split[0] == text:  # (the text itself, or the same one read again)
        lines = split[1]
    else:
        lines = LINE_BREAK.split(text)  # as the loader counts lines (not str.splitlines: U+2028 …)
        _SPLIT.clear()
        _SPLIT[file] = (text, lines)
    return lines[line - 1] if 0 < line <= len(lines) else None


def _clean(text: str) -> str:
    """Printable text only: control characters in user input never reach the terminal. A file
    name that is not UTF-8 shows each such byte as ``\\xNN`` (:func:`utf8_text`), as cnnspec's
    JSON and CSV write it, not as the lone surrogate Python holds (``\\udce9``)."""
    return printable(utf8_text(text))


def _lines(text: str) -> str:
    """:func:`_clean` of each line: a message's own line breaks stay (a list of bad image
    files, one per line); any other control character is shown escaped."""
    return "\n".join(_clean(line) for line in text.split("\n"))


def safe(text: object) -> str:
    """User text (file names, messages) ready for Rich: control characters shown escaped and
    ``[…]`` never read as markup (``evil[/green].yaml`` would otherwise raise MarkupError)."""
    from rich.markup import escape

    return escape(_clean(str(text)))


def clean(text: object) -> str:
    """User text ready for a plain (not Rich) line: control characters shown escaped."""
    return _clean(str(text))


EXCERPT_WIDTH = 100


def excerpt(line: str, column: int) -> tuple[str, int]:
    """At most :data:`EXCERPT_WIDTH` characters of ``line`` around ``column`` (1-based), and the
    column's position inside the excerpt."""
    if len(line) <= EXCERPT_WIDTH:
        return line, column
    start = max(0, min(column - 1 - EXCERPT_WIDTH // 2, len(line) - EXCERPT_WIDTH))
    piece = line[start : start + EXCERPT_WIDTH]
    shift = 0
    if start > 0:
        piece, shift = "…" + piece[1:], 0
    if start + EXCERPT_WIDTH < len(line):
        piece = piece[:-1] + "…"
    return piece, column - start + shift


def written_width(text: str, encoding: str) -> int:
    """The terminal cells ``text`` takes written in ``encoding``: a character it cannot encode
    is written as its escape (``é`` as ``\\xe9`` in ASCII: cnnspec's standard streams replace
    what they cannot encode so, :func:`cnnspec.cli.app.main`), a caret under it was one cell
    where four were shown. A CJK character or an emoji takes two cells."""
    import codecs

    from rich.cells import cell_len

    try:
        if codecs.lookup(encoding).name == "utf-8":
            return cell_len(text)
    except LookupError:
        return cell_len(text)
    width = 0
    for char in text:
        try:
            char.encode(encoding)
        except UnicodeEncodeError:
            width += len(char.encode(encoding, "backslashreplace"))
        else:
            width += cell_len(char)
    return width


def render_text(diagnostics: Sequence[Diagnostic], console: Console) -> None:
    from rich.markup import escape

    for diagnostic in diagnostics:
        color = "red" if diagnostic.severity == "error" else "yellow"
        where = f"{_clean(str(diagnostic.loc))}: " if diagnostic.loc else ""
        path = f"{_clean(diagnostic.path)}: " if diagnostic.path else ""
        console.print(
            f"[bold]{escape(where)}[/bold][bold {color}]{diagnostic.severity}:[/bold {color}] "
            f"{escape(path)}{escape(_lines(diagnostic.message))}",
            highlight=False,
            soft_wrap=True,
        )
        if diagnostic.loc is not None:
            line = source_line(diagnostic.loc.file, diagnostic.loc.line)
            if line is not None:
                raw = line.expandtabs(1)
                # the column in the line as shown: what comes before it, escaped as shown
                column = len(_clean(raw[: max(diagnostic.loc.column - 1, 0)])) + 1
                shown, column = excerpt(_clean(raw), column)
                number = str(diagnostic.loc.line)
                console.print(f" {number} | {escape(shown)}", highlight=False, soft_wrap=True)
                # Under the character in terminal cells (a CJK character or an emoji takes two),
                # and never wrapped: a caret past the console's width stays on its line.
                before = written_width(shown[: max(column - 1, 0)], console.encoding)
                caret = " " * (len(number) + 3 + before) + "^"
                console.print(f" [bold {color}]{caret}[/bold {color}]", highlight=False, soft_wrap=True)
        if diagnostic.hint:
            console.print(
                f"  [cyan]hint:[/cyan] {escape(_clean(diagnostic.hint))}", highlight=False, soft_wrap=True
            )
        for note in diagnostic.notes:
            console.print(
                f"  [bold]note:[/bold] {escape(_clean(note.message))}", highlight=False, soft_wrap=True
            )


def render_github(diagnostics: Sequence[Diagnostic]) -> str:
    """GitHub's workflow commands (``::error file=…,line=…,col=…::message``). Control
    characters of the user's text are shown escaped, as in the text and JSON reports (a key or
    file name with ESC set the title and colours of the terminal a CI log was read in); a
    message's own line breaks stay, %-encoded as GitHub reads them."""

    def escape_data(text: str) -> str:
        # (_lines shows a CR escaped, `\x0d`, as any control character: only line breaks stay)
        return _lines(text).replace("%", "%25").replace("\n", "%0A")

    def escape_prop(text: str) -> str:
        return escape_data(text).replace(":", "%3A").replace(",", "%2C")

    lines = []
    for d in diagnostics:
        props = []
        if d.loc is not None:
            props = [f"file={escape_prop(d.loc.file)}", f"line={d.loc.line}", f"col={d.loc.column}"]
        message = f"{d.path}: {d.message}" if d.path else d.message
        if d.hint:
            message += f" (hint: {d.hint})"
        message += "".join(f"\nnote: {note.message}" for note in d.notes)
        head = f"::{d.severity}" + (" " + ",".join(props) if props else "")
        lines.append(f"{head}::{escape_data(message)}")
    return "\n".join(lines)


def render_json(diagnostics: Sequence[Diagnostic]) -> str:
    import json  # here: a text-format run never needs it

    return json.dumps([d.to_json() for d in diagnostics], indent=2, ensure_ascii=False)
