"""A family file (one with ``variants:``) checked as ``cnnspec validate`` and ``cnnspec lsp``
check it: each variant, since one that compiles says nothing of the others' vars, and what
they found merged, the same mistake in several variants said once.
"""

from __future__ import annotations

from pathlib import Path

from cnnspec.errors import Diagnostic, Note, SpecError, UsageError
from cnnspec.paths import is_file
from cnnspec.spec.compose import Reader, load_spec, resolve_path
from cnnspec.spec.loader import display_name, load_file, load_text
from cnnspec.spec.scope import IDENTIFIER


def family_variants(file: Path, allow_outside: bool = False, reader: Reader | None = None) -> list[Path]:
    """What checking ``file`` checks: each variant of a family file (``fam.yaml#name``, in its
    table's order), else the file itself (also a file that does not load: its check says why).
    ``reader`` may give the file's text instead of the disk (an editor's unsaved buffer)."""
    resolved = resolve_path(file)
    text = reader(resolved) if reader is not None and resolved is not None else None
    if text is None and not is_file(file):  # (fam.yaml#name, a folder, a missing file)
        return [file]
    try:
        own = load_text(text, display_name(file)) if text is not None else load_file(file)
        if "variants" not in own.data:
            return [file]  # one model (extending a family's variant with vars of its own: that one)
        # composed: a family that extends a family has the base's variants too
        table = load_spec(file, allow_outside=allow_outside, reader=reader).data.get("variants")
    except (SpecError, UsageError, OSError):
        return [file]
    if not isinstance(table, dict) or len(table) < 2:
        return [file]
    if not all(isinstance(name, str) and IDENTIFIER.fullmatch(name) for name in table):
        return [file]  # (the schema says which name is none)
    return [Path(f"{file}#{name}") for name in table]


def variant_notes(
    files: list[Path], families: list[int], found: list[list[Diagnostic]]
) -> list[list[Diagnostic]]:
    """``found`` (each of ``files``' diagnostics; ``families``: the file named each belongs to)
    with a note on each diagnostic that only some variants of a family file have, naming them
    (the shared ones are said once, for all): an error of the `deep` variant alone read as the
    file's."""
    having: dict[tuple[object, ...], list[str]] = {}
    size: dict[int, int] = {}
    for file, family, diagnostics in zip(files, families, found, strict=True):
        size[family] = size.get(family, 0) + 1
        for diagnostic in diagnostics:
            having.setdefault((family, *diagnostic.key()), []).append(str(file).rpartition("#")[2])
    noted = []
    for file, family, diagnostics in zip(files, families, found, strict=True):
        kept = []
        for diagnostic in diagnostics:
            names = having[(family, *diagnostic.key())]
            if size[family] > 1 and len(names) < size[family]:
                which = f"variant{'s' if len(names) > 1 else ''} {', '.join(names)}"
                where = str(file).rpartition("#")[0]
                diagnostic = diagnostic.with_notes([Note(f"in {which} of {where}", None, "")])
            kept.append(diagnostic)
        noted.append(kept)
    return noted


def unsaid(
    diagnostics: list[Diagnostic], said: dict[tuple[object, ...], None], family: int
) -> list[Diagnostic]:
    """The diagnostics not reported already for the same file named (``family``; ``said``,
    which they join): the same one from each variant of a family file is reported once."""
    fresh = []
    for diagnostic in diagnostics:
        key = (family, *diagnostic.key())
        if key not in said:
            said[key] = None
            fresh.append(diagnostic)
    return fresh
