"""Characters the pictures' font has no glyph for, said once per command in cnnspec's words.

Matplotlib warns once per missing glyph and per place it met it, raw ("…/plots.py:327:
UserWarning: Glyph 29483 (\\N{CJK UNIFIED IDEOGRAPH-732B}) missing from font(s) DejaVu Sans."
and the source line after it): class names in Chinese gave a dozen such lines in the middle of
a run's output, naming cnnspec's source, not the names or what to do. :func:`install` makes the
first of a command a note, which says what is drawn instead and how to get the glyphs, and the
others silent. Installed by the CLI for every command (matplotlib is imported only by those that
draw); library users keep Python's own warnings.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

#: Matplotlib's warning of a character its fonts cannot draw.
MISSING_GLYPH = re.compile(r"Glyph (\d+) \(.*\) missing from font\(s\) (.+?)\.?$", re.DOTALL)

_said = False


def install() -> None:
    """Say a missing glyph once, as a note, for the command now starting (the hook stays
    installed in a process that runs several: a test's, each said once again)."""
    global _said
    _said = False
    current = warnings.showwarning
    if getattr(current, "cnnspec_glyphs", False):
        return
    previous = current

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        found = MISSING_GLYPH.match(str(message))
        if found is None:
            previous(message, category, filename, lineno, file, line)
            return
        _note(chr(int(found.group(1))), found.group(2))

    show.cnnspec_glyphs = True  # type: ignore[attr-defined]
    warnings.showwarning = show


def note_text(character: str, fonts: str) -> str:
    """The note of ``character``, which the pictures' ``fonts`` cannot draw."""
    return (
        f"the pictures' font ({fonts}) has no glyph for {character!r} (U+{ord(character):04X}), "
        "so the pictures draw it and any other such character of a name as an empty box (the "
        "text outputs show them); install a font that has them (for Chinese, Japanese or Korean, "
        "e.g. Noto Sans CJK), then remove matplotlib's font cache (fontlist-*.json in its cache "
        "folder) so that it finds the font"
    )


def _note(character: str, fonts: str) -> None:
    global _said
    if _said:
        return
    _said = True
    from cnnspec.training.progress import Display

    Display("quiet").warn(note_text(character, fonts))
