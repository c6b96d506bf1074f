r"""How lines are counted: cnnspec, the language server and every editor break lines at ``\r\n``,
``\r`` and ``\n`` (:data:`LINE_BREAK`); YAML breaks them at NEL, LINE SEPARATOR and PARAGRAPH
SEPARATOR too (:data:`YAML_ONLY_BREAKS`). :func:`line_mapper` moves a place in YAML's lines to
the same place in ours, so an error after such a character is reported where an editor shows it.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable

from cnnspec.errors import Loc

#: What YAML counts as a line break besides ours (``\r\n``, ``\r``, ``\n``: the LSP's, and
#: every editor's): NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR, which may stand inside a
#: quoted string pasted from elsewhere.
YAML_ONLY_BREAKS = ("\x85", "\u2028", "\u2029")
YAML_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
LINE_BREAK = re.compile("\r\n|\r|\n")


def line_mapper(text: str) -> Callable[[Loc | None], Loc | None]:
    """Maps a location in YAML's lines to the same place in lines broken at ``\r\n``, ``\r``
    and ``\n`` only."""
    yaml_starts = [0, *(m.end() for m in YAML_BREAK.finditer(text))]
    our_starts = [0, *(m.end() for m in LINE_BREAK.finditer(text))]

    def moved(loc: Loc | None) -> Loc | None:
        if loc is None or not 1 <= loc.line <= len(yaml_starts):
            return loc
        offset = yaml_starts[loc.line - 1] + loc.column - 1
        line = bisect.bisect_right(our_starts, offset) - 1
        return Loc(loc.file, line + 1, offset - our_starts[line] + 1)

    return moved
