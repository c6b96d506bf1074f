"""What a rename works with: the kinds of names it renames (:data:`ID`, :data:`BLOCK`, :data:`VAR`,
:data:`PARAMETER`, :data:`LOOP`), a renamable :class:`Symbol`, the :class:`Replacement` of a
range of text, the refusal (:class:`RenameError`), and the texts of the files a rename reads
(the open documents first, else the file on disk).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cnnspec.errors import Loc
from cnnspec.lsp.documents import path_of, source_text
from cnnspec.lsp.scopes import Automatic
from cnnspec.spec.linebreaks import LINE_BREAK
from cnnspec.spec.loader import SourceDoc

#: The text of a file by its name as locations spell it (``None``: unknown).
TextOf = Callable[[str], str | None]
#: Another open spec (its composed document) and the automatic names of its block calls.
Other = tuple[SourceDoc, Automatic | None]

#: What can be renamed.
ID, BLOCK, VAR, PARAMETER, LOOP = "id", "block", "var", "parameter", "loop variable"


class RenameError(Exception):
    """A rename refused, with the reason the editor shows."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Replacement:
    """Replace code points ``start``…``end`` of 0-based ``line`` of ``file`` with ``text``."""

    file: str
    line: int
    start: int
    end: int
    text: str


#: The range of a symbol before it is matched to a place under the cursor
#: (:func:`~cnnspec.lsp.rename_target.located`).
NOWHERE = Replacement("", 0, 0, 0, "")


@dataclass(frozen=True)
class Symbol:
    """A renamable name: what it is, its name, where it is declared, the block of a parameter,
    and the range of the name under the cursor (its ``text``: the name)."""

    what: str
    name: str
    declared: Loc
    at: Replacement
    block: str | None = None


# -- reading the text ---------------------------------------------------------------------------
def default_text(file: str) -> str | None:
    """The text of ``file`` the loader last read (that of the locations), else the disk's."""
    text = source_text(file)
    if text is not None:
        return text
    try:
        return path_of(file).read_text("utf-8")
    except (OSError, UnicodeDecodeError, ValueError):
        return None


class Texts:
    """The lines of each file, read once through ``text_of``."""

    def __init__(self, text_of: TextOf) -> None:
        self.text_of = text_of
        self.cache: dict[str, list[str] | None] = {}

    def line(self, file: str, line: int) -> str | None:
        if file not in self.cache:
            text = self.text_of(file)
            self.cache[file] = LINE_BREAK.split(text) if text is not None else None
        lines = self.cache[file]
        return lines[line] if lines is not None and 0 <= line < len(lines) else None

    def start(self, loc: Loc, written: str) -> int | None:
        """The code-point column where ``written`` starts at ``loc`` (plain, or just inside a
        quote), else ``None`` (escaped, folded or another text)."""
        line = self.line(loc.file, loc.line - 1)
        column = loc.column - 1
        if line is None:
            return None
        if line.startswith(written, column):
            return column
        if line[column : column + 1] in ("'", '"') and line.startswith(written, column + 1):
            return column + 1
        return None


def loc_text(loc: Loc) -> str:
    return f"{loc.file}:{loc.line}:{loc.column}"


def loc_said(loc: Loc | None) -> str:
    return loc_text(loc) if loc is not None else "composed"
