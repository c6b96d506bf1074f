"""``cnnspec validate --fix`` and ``--diff``: the quick fixes the language server offers
(:mod:`cnnspec.lsp.fixes`: "did you mean `relu`?", a missing colon), made in the spec files
named on the command line.

A file is checked with its text as fixed so far (the composer reads it through a reader, as an
editor's unsaved buffer), its own diagnostics' fixes are made, and it is checked again, until
no fix is left (:func:`cnnspec.lsp.fixes.fix_rounds`, which the editor's "fix all" runs too: a
fix can uncover the next mistake, a kind spelt right only then has its parameters checked).
Only the file's own text changes, token by token: comments, quoting and line breaks stay. The
file is then replaced atomically, with its permissions (through a symbolic link, its target),
or, for ``--diff``, left as it is and the change printed. A file included by ``extends`` or
``use`` is fixed when it is named itself.
"""

from __future__ import annotations

import difflib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cnnspec.errors import Diagnostic, UsageError
from cnnspec.lsp.fixes import Fix, fix_rounds, fixes_of

#: How a file is checked: its diagnostics, errors or warnings, with ``reader`` supplying its
#: text as fixed so far.
Check = Callable[[Callable[[Path], str | None]], list[Diagnostic]]


@dataclass
class Fixed:
    """A file's text before and after its fixes, and the fixes made (with the line each was
    made on, 1-based, as the user reads the file)."""

    path: Path
    before: str
    after: str
    made: list[Fix] = field(default_factory=list)
    #: The diagnostics of ``after`` from the fixes' last check (``None``: the rounds ran out
    #: before ``after`` was checked), which ``validate --diff`` reports without checking again.
    checked: list[Diagnostic] | None = None
    #: Fixes the check of ``after`` still offers: the rounds (:data:`~cnnspec.lsp.fixes.MAX_ROUNDS`)
    #: ran out first, on a file of more than a few thousand fixes.
    unmade: int = 0

    @property
    def changed(self) -> bool:
        return self.after != self.before

    def diff(self) -> str:
        """The change as a unified diff of the file's path, its line breaks as they are."""
        lines = difflib.unified_diff(
            self.before.splitlines(keepends=True),
            self.after.splitlines(keepends=True),
            fromfile=str(self.path),
            tofile=str(self.path),
        )
        return "".join(
            line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
        )


def read_text(path: Path) -> str:
    """The file's text exactly (its line breaks not translated), as UTF-8."""
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"expected {path} to be UTF-8 text; {exc.reason} at byte {exc.start}") from None


def fix_file(path: Path, check: Check) -> Fixed:
    """``path``'s text with every fix its checks offer made (nothing written)."""
    before = read_text(path)
    target = path.resolve()
    last: dict[str, list[Diagnostic]] = {}  # the text checked last, and what its check found

    def diagnose(text: str) -> tuple[list[Diagnostic], str | None]:
        diagnostics = check(lambda asked: text if asked.resolve() == target else None)
        last.clear()
        last[text] = diagnostics
        # the name the diagnostics give the file (a symbolic link's is its target's)
        named = {d.loc.file for d in diagnostics if d.loc is not None and _same(d.loc.file, target)}
        return diagnostics, named.pop() if len(named) == 1 else None

    after, made = fix_rounds(before, diagnose)
    unmade = 0
    if made and after not in last:  # the rounds ran out: what the text as fixed still offers
        found, name = diagnose(after)
        unmade = len(fixes_of(found, name, after)) if name is not None else 0
    return Fixed(path, before, after, made, last.get(after), unmade)


def _same(name: str, target: Path) -> bool:
    try:
        return Path(name).resolve() == target
    except (OSError, RuntimeError, ValueError):
        return False


def other_links(path: Path) -> int:
    """How many other hard links the file ``path`` (a symbolic link: its target) has. The
    atomic write puts a new file in its place: those links would keep the old text, and the
    file the user sees under one name would differ from the same file under another."""
    try:
        return max(os.stat(path).st_nlink - 1, 0)
    except OSError:
        return 0


def write_fixed(fixed: Fixed) -> Path:
    """Replace the file with its fixed text atomically, keeping its permissions; a symbolic
    link keeps pointing at its target, which is what changes. Returns the path written."""
    from cnnspec.fileio import atomic_path

    target = fixed.path.resolve()
    mode = stat.S_IMODE(os.stat(target).st_mode)
    data = fixed.after.encode("utf-8")
    with atomic_path(target, needed=len(data)) as temp, open(temp, "xb") as handle:
        handle.write(data)
        os.fchmod(handle.fileno(), mode)
        handle.flush()
        os.fsync(handle.fileno())
    return target
