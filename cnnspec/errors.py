"""Diagnostics: located errors and warnings, collected per stage and reported together.

Every user mistake becomes a :class:`Diagnostic` that knows the file, line and column it came
from, the spec path (``model[3].conv2d.filters``), an "expected …; received …" message and a
hint. A stage collects them in a :class:`Diagnostics` list and raises :class:`SpecError` once,
so the user sees every error of the file, not only the first.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]
PathPart = str | int
SpecPath = tuple[PathPart, ...]


@dataclass(frozen=True, slots=True)
class Loc:
    """A position in a source file; ``line`` and ``column`` are 1-based."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


MAX_PATH_PARTS = 12


def format_path(path: Sequence[PathPart]) -> str:
    """Render a spec path the way users write it: ``model[3].conv2d.filters``.

    Very deep paths (hostile nesting) keep their first and last parts around an ellipsis.
    """
    if len(path) > MAX_PATH_PARTS:
        tail = format_path(path[-4:])
        return f"{format_path(path[:4])}…{'' if tail.startswith('[') else '.'}{tail}"
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One located problem in a spec."""

    message: str
    loc: Loc | None = None
    path: str = ""
    code: str = "invalid"
    hint: str | None = None
    severity: Severity = "error"

    def sort_key(self) -> tuple[int, str, int, int, str]:
        loc = self.loc
        return (
            0 if self.severity == "error" else 1,
            loc.file if loc else "",
            loc.line if loc else 0,
            loc.column if loc else 0,
            self.message,
        )

    def headline(self) -> str:
        """``file:line:col: error: path: message`` — the first line of the text report."""
        where = f"{self.loc}: " if self.loc else ""
        path = f"{self.path}: " if self.path else ""
        return f"{where}{self.severity}: {path}{self.message}"

    def to_json(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "file": self.loc.file if self.loc else None,
            "line": self.loc.line if self.loc else None,
            "column": self.loc.column if self.loc else None,
            "path": self.path,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }


#: Collection stops after this many errors (and drops warnings beyond as many): a hostile file
#: with thousands of mistakes fails fast instead of spending seconds on hints nobody reads.
MAX_DIAGNOSTICS = 200


@dataclass
class Diagnostics:
    """An ordered, de-duplicated collection of diagnostics for one stage (at most
    :data:`MAX_DIAGNOSTICS` errors, then one "too many errors" error)."""

    items: list[Diagnostic] = field(default_factory=list)
    _seen: set[Diagnostic] = field(default_factory=set, init=False, repr=False, compare=False)
    _counts: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for diagnostic in self.items:
            self._seen.add(diagnostic)
            self._counts[diagnostic.severity] = self._counts.get(diagnostic.severity, 0) + 1

    def add(self, diagnostic: Diagnostic) -> None:
        severity = diagnostic.severity
        if diagnostic in self._seen or self._counts.get(severity, 0) >= MAX_DIAGNOSTICS:
            return
        self._seen.add(diagnostic)
        self.items.append(diagnostic)
        self._counts[severity] = self._counts.get(severity, 0) + 1
        if severity == "error" and self._counts[severity] == MAX_DIAGNOSTICS:
            self.items.append(
                Diagnostic(
                    f"too many errors; stopped after the first {MAX_DIAGNOSTICS}",
                    diagnostic.loc,
                    diagnostic.path,
                    "too-many-errors",
                    "fix these and run again",
                )
            )

    @property
    def full(self) -> bool:
        """True once :data:`MAX_DIAGNOSTICS` errors were collected: stages may stop early."""
        return self._counts.get("error", 0) >= MAX_DIAGNOSTICS

    def error(
        self,
        message: str,
        loc: Loc | None = None,
        path: Sequence[PathPart] | str = "",
        *,
        code: str = "invalid",
        hint: str | None = None,
    ) -> None:
        text_path = path if isinstance(path, str) else format_path(path)
        self.add(Diagnostic(message, loc, text_path, code, hint, "error"))

    def warning(
        self,
        message: str,
        loc: Loc | None = None,
        path: Sequence[PathPart] | str = "",
        *,
        code: str = "warning",
        hint: str | None = None,
    ) -> None:
        text_path = path if isinstance(path, str) else format_path(path)
        self.add(Diagnostic(message, loc, text_path, code, hint, "warning"))

    def extend(self, others: Iterable[Diagnostic]) -> None:
        for diagnostic in others:
            self.add(diagnostic)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "warning"]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise SpecError(self.items)

    def ranked(self) -> list[Diagnostic]:
        return sorted(self.items, key=Diagnostic.sort_key)


class SpecError(Exception):
    """Raised when a spec has errors; carries every diagnostic of the failing stage."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        first = next((d for d in self.diagnostics if d.severity == "error"), None)
        super().__init__(first.headline() if first else "invalid spec")

    @classmethod
    def single(
        cls,
        message: str,
        loc: Loc | None = None,
        path: Sequence[PathPart] | str = "",
        *,
        code: str = "invalid",
        hint: str | None = None,
    ) -> SpecError:
        text_path = path if isinstance(path, str) else format_path(path)
        return cls([Diagnostic(message, loc, text_path, code, hint)])

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


class UsageError(Exception):
    """A mistake on the command line or in a file argument (exit code 2)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A hint naming the closest valid choice, or ``None`` when nothing is close."""
    options = sorted(set(choices))
    lowered = {c.lower(): c for c in options}
    if word.lower() in lowered:
        return f"did you mean `{lowered[word.lower()]}`?"
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f"did you mean `{close[0]}`?"
    return None


def describe_value(value: object) -> str:
    """A short, safe rendering of a received value for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return f"string {text!r}"
    if isinstance(value, int):
        if abs(value) < 10**30:
            return f"integer {value}"
        if value.bit_length() <= 1000:
            return f"integer {value:.3e}"
        return f"an integer of {value.bit_length():,} bits"
    if isinstance(value, float):
        return f"number {value!r}"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return f"a mapping with keys {', '.join(map(str, list(value)[:5]))}"
    return type(value).__name__
