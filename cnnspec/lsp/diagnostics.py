"""cnnspec diagnostics → LSP diagnostics: ranges from locations, hint and call stack as
related information.

A diagnostic located in the document gets the range of the token at its location. One located
in another file (a block library the spec uses, the base it ``extends``) is shown in the
document at the first place of its call stack or include chain that lies there (the block call,
the ``use:`` entry), with its own location first in the related information; and it is shown
in that other file too, when the editor has it open (:func:`for_document`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from lsprotocol import types

from cnnspec.analysis.input_size import NOTE_START
from cnnspec.errors import Diagnostic, Loc, Note
from cnnspec.lsp.documents import Documents, path_of, source_text
from cnnspec.lsp.fixes import fix_for
from cnnspec.lsp.text import UTF16, Lines, Span

SOURCE = "cnnspec"
#: A file's URI as the editor knows it (the server's: the URI it opened the file under).
UriOf = Callable[[Path], str]
#: The top-level keys whose entries include other files (the notes of the include chain).
_INCLUDE_KEYS = frozenset({"use", "extends"})
_SEVERITY = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning}


#: Warnings about what the spec writes but nothing uses: editors fade such text out.
UNNECESSARY = frozenset({"unused-var", "unused-param", "unused-block", "dead-layer", "unused-setting"})


def to_range(span: Span) -> types.Range:
    return types.Range(
        types.Position(span.start_line, span.start_char), types.Position(span.end_line, span.end_char)
    )


def loc_range(loc: Loc, text: str | None = None, encoding: str = UTF16) -> types.Range:
    """The range of the token at ``loc``, in ``text`` or the text the loader read for it."""
    text = text if text is not None else source_text(loc.file)
    return to_range(Lines(text or "", encoding).span(loc.line, loc.column))


def file_uri(path: Path) -> str:
    """The plain ``file:`` URI of ``path`` (for files the editor has not opened)."""
    return path.as_uri()


def location(loc: Loc, encoding: str = UTF16, uri_of: UriOf = file_uri) -> types.Location:
    """``loc`` as an LSP location; its URI from ``uri_of``, so that a file the editor opened
    (through a symbolic link, or an ``untitled:`` buffer) is named as the editor named it."""
    return types.Location(uri_of(path_of(loc.file)), loc_range(loc, None, encoding))


def _root(path: str) -> str:
    """The top-level key of a formatted spec path (``blocks`` for ``blocks.b.layers[0]``)."""
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _anchor(notes: Sequence[Note], file: str) -> Loc | None:
    """Where in ``file`` to show a diagnostic located in another file, from its ``notes``.

    The notes are the include chain (``use:``/``extends`` entries), then the first call stack
    innermost first, then what each later call of the same mistake adds (only its notes not
    listed yet: for a block called twice, the second call site). So the first note here made
    outside ``blocks`` is the outermost frame of the first call stack (``model[0]``), even
    when the failing block was reached through another library block. Without one (this file
    is a library whose blocks call the failing one), the first call made here; without any
    call, the first include entry (the ``use:`` entry). The note of the smallest input the
    model accepts, which points at the input shape, is no step on the way to the error."""
    here = [
        n for n in notes if n.loc is not None and n.loc.file == file and not n.message.startswith(NOTE_START)
    ]
    calls = [n for n in here if _root(n.path) not in _INCLUDE_KEYS]
    top = [n for n in calls if _root(n.path) != "blocks"]
    for found in (top, calls, here):
        if found:
            return found[0].loc
    return None


def convert(
    diagnostic: Diagnostic,
    file: str,
    text: str,
    encoding: str = UTF16,
    uri_of: UriOf = file_uri,
    lines: Lines | None = None,
) -> types.Diagnostic:
    """One diagnostic as the editor shows it in ``file`` (whose current text is ``text``),
    positions in ``encoding``'s code units, URIs from ``uri_of``. ``lines``: ``text`` split
    already, in ``encoding`` (:func:`for_document` splits a document once for all its
    diagnostics: up to a hundred, in a text of up to a mebibyte)."""
    lines = lines if lines is not None else Lines(text, encoding)
    loc = diagnostic.loc
    anchor = loc if loc is not None and loc.file == file else None
    related: list[types.DiagnosticRelatedInformation] = []
    prefix = ""
    if loc is not None and anchor is None:
        # Located elsewhere: shown where this document leads to it (its first call here).
        anchor = _anchor(diagnostic.notes, file)
        prefix = f"{loc}: "
        related.append(
            types.DiagnosticRelatedInformation(location(loc, encoding, uri_of), "the error is here")
        )
    where = (
        to_range(lines.span(anchor.line, anchor.column))
        if anchor is not None
        else types.Range(types.Position(0, 0), types.Position(0, lines.units(0, len(text))))
    )
    fix = fix_for(diagnostic, file, text, lines) if anchor is loc else None
    if fix is not None and lines.line(fix.line)[fix.end : fix.end + 1] == ".":
        # a hint that corrects one part of a dotted key (`head_dropot` of `head_dropot.rate`):
        # the range is that part, which the fix replaces
        where = types.Range(
            types.Position(fix.line, lines.units(fix.line, fix.start)),
            types.Position(fix.line, lines.units(fix.line, fix.end)),
        )

    def place(at: Loc | None) -> types.Location:
        """Where related information at ``at`` points: in this document, ranged in its text as
        the diagnostic is (the loader's copy of it lacks a byte-order mark, and a later load
        of the file from the disk replaces it); in another file, in the text read for it."""
        if at is not None and at.file != file:
            return location(at, encoding, uri_of)
        # (this document's URI only now: a name no file can have, with a NUL, has none)
        uri = uri_of(path_of(file))
        if at is None or at == anchor:
            return types.Location(uri, where)
        return types.Location(uri, to_range(lines.span(at.line, at.column)))

    if diagnostic.hint:
        related.append(types.DiagnosticRelatedInformation(place(loc), f"hint: {diagnostic.hint}"))
    for note in diagnostic.notes:
        related.append(types.DiagnosticRelatedInformation(place(note.loc), f"note: {note.message}"))
    path = f"{diagnostic.path}: " if diagnostic.path else ""
    return types.Diagnostic(
        range=where,
        message=f"{prefix}{path}{diagnostic.message}",
        severity=_SEVERITY.get(diagnostic.severity, types.DiagnosticSeverity.Error),
        code=diagnostic.code,
        source=SOURCE,
        related_information=related or None,
        tags=[types.DiagnosticTag.Unnecessary] if diagnostic.code in UNNECESSARY else None,
    )


def for_document(
    documents: Documents, path: Path, encoding: str = UTF16, uri_of: UriOf = file_uri
) -> list[types.Diagnostic]:
    """Everything to publish for the open document ``path``: its own check, and the problems
    the checks of other open specs found in it (it is a library or base they include)."""
    analysis = documents.analyses.get(path)
    text = documents.text(path) or ""
    if analysis is None:
        return []
    file = analysis.name
    found: list[Diagnostic] = list(analysis.diagnostics)
    seen = {d.key() for d in found}
    for other in documents.dependents(path):
        for diagnostic in documents.analyses[other].diagnostics:
            if diagnostic.loc is not None and diagnostic.loc.file == file and diagnostic.key() not in seen:
                seen.add(diagnostic.key())
                found.append(diagnostic)
    lines = Lines(text, encoding)
    return [convert(d, file, text, encoding, uri_of, lines) for d in found]
