"""Diagnostics: located errors and warnings, collected per stage and reported together.

Every user mistake becomes a :class:`Diagnostic` that knows the file, line and column it came
from, the spec path (``model[3].conv2d.filters``), an "expected …; received …" message and a
hint, and notes for the call stack (``in block 'b' called from model[4] (x.yaml:21:5)``,
``included from x.yaml:3:10``). A stage collects them in a :class:`Diagnostics` list and raises
:class:`SpecError` once, so the user sees every error of the file, not only the first, and each
mistake once: the same error reached through another block call or repeat iteration only adds
its call site to the first one.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

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


def _loc_from_json(data: Mapping[str, object]) -> Loc | None:
    """The location in a ``to_json`` record (``file``, ``line``, ``column``), if it has one."""
    file, line, column = data.get("file"), data.get("line"), data.get("column")
    if not isinstance(file, str) or not isinstance(line, int) or not isinstance(column, int):
        return None
    return Loc(file, line, column)


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
class Note:
    """One line of context under a diagnostic: a block call or an include on the way to it.

    ``message`` is the whole line after ``note:``; ``loc`` and ``path`` say where the call or
    the include is written (for the JSON ``trace``)."""

    message: str
    loc: Loc | None = None
    path: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.loc.file if self.loc else None,
            "line": self.loc.line if self.loc else None,
            "column": self.loc.column if self.loc else None,
            "path": self.path,
            "message": self.message,
        }


#: How the notes of a call stack begin (:func:`call_note`, a backbone item's).
CALL_NOTE_STARTS = ("in block ", "in backbone ")


def call_note(block: str, call_path: Sequence[PathPart], loc: Loc | None, details: str = "") -> Note:
    """``in block 'b' called from model[4] (x.yaml:21:5)``, then ``details`` (:func:`call_details`)."""
    where = f" ({loc})" if loc else ""
    text_path = format_path(call_path)
    return Note(f"in block {block!r} called from {text_path}{where}{details}", loc, text_path)


#: Loop variables and arguments a call note spells out, each; the rest are counted.
MAX_CALL_DETAILS = 4


def call_details(loops: Sequence[tuple[str, object]], args: Sequence[tuple[str, object]]) -> str:
    """``, in iteration i = 2, with k = 23``: the iteration of the repeats the call is made in
    (their loop variables) and the arguments the failing value reads, as a call note ends."""

    def listing(pairs: Sequence[tuple[str, object]]) -> str:
        shown = ", ".join(f"{name} = {short_value(value)}" for name, value in pairs[:MAX_CALL_DETAILS])
        rest = len(pairs) - MAX_CALL_DETAILS
        return shown + (f" and {rest} more" if rest > 0 else "")

    text = f", in iteration {listing(loops)}" if loops else ""
    return text + (f", with {listing(args)}" if args else "")


#: Longest rendering of a value in a call note.
MAX_SHORT_VALUE = 40


def short_value(value: object) -> str:
    """A value as a spec writes it, briefly: ``23``, ``true``, ``'same'``, ``[3, 3]``."""
    text = (
        spelled(value)
        if value is None or isinstance(value, (int, float, str, list, dict, tuple))
        else type(value).__name__
    )
    return text if len(text) <= MAX_SHORT_VALUE else text[: MAX_SHORT_VALUE - 1] + "…"


def spelled(value: object) -> str:
    """A value (a computed one: ``${[5, 5, 1 == 1]}``) as a spec writes it, whole: booleans and
    null in YAML's words at any depth (``[5, 5, true]``, not Python's ``[5, 5, True]``), the
    rest as Python writes it (``'same'``, ``[3, 3]``), with control characters escaped."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(spelled(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{spelled(key)}: {spelled(item)}" for key, item in value.items()) + "}"
    return printable(repr(value))


def include_notes(file: str, includes: Mapping[str, tuple[Loc, str]]) -> tuple[Note, ...]:
    """``included from x.yaml:3:10`` for ``file`` and each file that includes it in turn.

    ``includes`` maps an included file to where it is named (the ``extends``/``use`` entry's
    location and spec path in the including file)."""
    notes: list[Note] = []
    seen = {file}
    while file in includes:
        loc, path = includes[file]
        notes.append(Note(f"included from {loc}", loc, path))
        file = loc.file
        if file in seen:  # compose refuses include cycles; never loop on a malformed table
            break
        seen.add(file)
    return tuple(notes)


#: Notes kept under one diagnostic: a block that fails in thousands of calls lists the first.
MAX_NOTES = 24

#: Longest ``--set`` text an origin note quotes (a hostile option is not repeated whole).
MAX_QUOTED_OPTION = 60


def origin_note(name: str, value: object, loc: Loc, path: str, option: str | None = None) -> Note:
    """Where the value an expression read was written: ``w is integer 0, set at x.yaml:4:9``,
    or for a ``--set`` override ``w is integer 0, set by --set vars.w=0 (<--set 1>:1:8)``.

    An error on a computed value is located at the expression; this note points at the var
    (or block argument) that made the value wrong, which is often in another file or on the
    command line. ``option`` is the ``--set`` text when ``loc`` is on the command line."""
    if option is not None:
        shown = printable(option)  # escaped first: an escape is never cut in half
        quoted = shown if len(shown) <= MAX_QUOTED_OPTION else shown[: MAX_QUOTED_OPTION - 3] + "..."
        # (a flag that stands for an override, `--epochs 3`, is quoted as the user typed it)
        where = f"set by {'' if shown.startswith('--') else '--set '}{quoted} ({loc})"
    else:
        where = f"set at {loc}"
    return Note(f"{name} is {describe_value(value)}, {where}", loc, path)


@dataclass(frozen=True, slots=True)
class Computed:
    """A fold key (:meth:`Diagnostics.add`'s ``origins``) of an error on a value computed from
    the origin ``note`` (``${width * 2}`` of ``width``): the error folds into an error with the
    same message on ``note``'s value read as it is (``${width}``, 0 after ``--set
    vars.width=0``), the bad value itself failing the same way, but not into another value
    computed from it (``${n - 2}`` and ``${n // 4}``, both 0 of a right n = 2, are two
    mistakes). ``note`` is the key that value's errors have (its access included)."""

    note: Note


#: Further uses of a bad value spelt out in the one note that lists them; the rest are counted.
MAX_LISTED_USES = 3


def uses_note(uses: Sequence[tuple[str, Loc | None]], count: int) -> Note:
    """``same error at 2 more uses: model[3].when (x.yaml:11:11), …``: the uses of a bad
    value folded into its first error (see :meth:`Diagnostics.add`). ``uses`` are the first
    few, ``count`` all of them; the note is located at the first."""
    shown = [f"{path} ({loc})" if loc else path for path, loc in uses[:MAX_LISTED_USES]]
    rest = count - len(shown)
    listing = ", ".join(shown) + (f" and {rest} more" if rest > 0 else "")
    first_path, first_loc = uses[0]
    plural = "s" if count != 1 else ""
    return Note(f"same error at {count} more use{plural}: {listing}", first_loc, first_path)


#: Where an override given on the command line is located: ``<--set 1>``, ``<--set 2>``, …,
#: or for a flag that a command turns into one, the flag (``<--epochs>``: ``train --epochs 3``).
COMMAND_LINE_PREFIX = "<--"


def command_line_option(file: str) -> str:
    """The option a command-line location (:data:`COMMAND_LINE_PREFIX`) is in: ``--set`` for
    ``<--set 2>``, ``--epochs`` for ``<--epochs>``."""
    return file.removeprefix("<").removesuffix(">").split(" ", 1)[0]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One located problem in a spec."""

    message: str
    loc: Loc | None = None
    path: str = ""
    code: str = "invalid"
    hint: str | None = None
    severity: Severity = "error"
    notes: tuple[Note, ...] = ()

    def sort_key(self) -> tuple[int, int, str, int, int, str]:
        loc = self.loc
        return (
            0 if self.severity == "error" else 1,
            # the "too many errors" error after every error it closes: it stands at the last
            # one's place, and its message sorted it before that one
            1 if self.code == TOO_MANY else 0,
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
            "notes": [note.message for note in self.notes],
            "trace": [note.to_json() for note in self.notes],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Diagnostic:
        """The diagnostic :meth:`to_json` wrote (``validate``'s worker processes send theirs
        so: plain JSON, nothing that runs code when read)."""
        notes = data.get("trace")
        return cls(
            message=str(data["message"]),
            loc=_loc_from_json(data),
            path=str(data.get("path") or ""),
            code=str(data.get("code") or "invalid"),
            hint=None if data.get("hint") is None else str(data["hint"]),
            severity="warning" if data.get("severity") == "warning" else "error",
            notes=tuple(
                Note(str(note["message"]), _loc_from_json(note), str(note.get("path") or ""))
                for note in (notes if isinstance(notes, list) else [])
                if isinstance(note, dict)
            ),
        )

    def with_notes(self, notes: Iterable[Note]) -> Diagnostic:
        """This diagnostic with ``notes`` appended (those it does not carry yet), at most
        :data:`MAX_NOTES` of them, then one that says more were left out."""
        if len(self.notes) > MAX_NOTES:
            return self
        known = set(self.notes)
        added = tuple(dict.fromkeys(n for n in notes if n not in known))
        if len(self.notes) + len(added) > MAX_NOTES:
            added = (*added[: MAX_NOTES - len(self.notes)], Note("and more calls, not shown"))
        return replace(self, notes=self.notes + added) if added else self

    def key(self) -> tuple[object, ...]:
        """Identity for de-duplication: everything but the notes."""
        return (self.severity, self.message, self.loc, self.path, self.code, self.hint)


COMMAND_LINE_SUFFIX = " (in a --set option on the command line)"


def on_command_line(diagnostic: Diagnostic) -> Diagnostic:
    """The message says that the value comes from ``--set`` (or the flag the user typed,
    ``--epochs``), not from a file."""
    option = command_line_option(diagnostic.loc.file) if diagnostic.loc is not None else "--set"
    suffix = COMMAND_LINE_SUFFIX if option == "--set" else f" (in the {option} option on the command line)"
    if diagnostic.message.endswith(suffix):
        return diagnostic
    return replace(diagnostic, message=diagnostic.message + suffix)


#: Begins the first note of another call chain added to an error met again (:func:`_other_chain`).
ALSO = "also "


def _other_chain(first: Diagnostic, again: Diagnostic) -> list[Note]:
    """The notes of ``again`` (``first`` met through another chain of calls) to add to
    ``first``'s: its first call note that ``first`` lacks begins with "also", so that its
    chain reads as another one (``also in block 'outer' called from model[1]``), not as the
    calls of ``first``'s going deeper."""
    known = {_chain_link(note) for note in first.notes}
    notes = [note for note in again.notes if _chain_link(note) not in known]
    start = next((i for i, note in enumerate(notes) if note.message.startswith(CALL_NOTE_STARTS)), None)
    if start is not None:
        notes[start] = replace(notes[start], message=ALSO + notes[start].message)
    return notes


def _chain_link(note: Note) -> Note:
    """``note`` as a link of a call chain: without "also", and a call note without its
    details (the same call in another iteration, or with other arguments, is the same link:
    the first one met says its values)."""
    message = note.message.removeprefix(ALSO)
    if message.startswith(CALL_NOTE_STARTS) and note.loc is not None:
        end = message.find(f" ({note.loc})")
        message = message[: end + len(f" ({note.loc})")] if end >= 0 else message
    return replace(note, message=message)


#: Collection stops after this many errors (and drops warnings beyond as many): a hostile file
#: with thousands of mistakes fails fast instead of spending seconds on hints nobody reads.
MAX_DIAGNOSTICS = 200


#: How the loader's error on a YAML 1.1 boolean word (``no``) begins where the value may be a
#: string too (:meth:`Diagnostics.boolean_only` narrows it where it may not).
MAYBE_A_STRING = "expected true, false or a quoted string"


#: The code of the error that closes a stage's list at :data:`MAX_DIAGNOSTICS` errors.
TOO_MANY = "too-many-errors"


@dataclass
class Diagnostics:
    """An ordered, de-duplicated collection of diagnostics for one stage (at most
    :data:`MAX_DIAGNOSTICS` errors, then one "too many errors" error).

    One mistake is reported once. An identical diagnostic only adds its notes to the first
    one. A block body or repeat layer that fails in several calls or iterations (each its own
    ``context``) fails at the same place with the same code, perhaps with another received
    value: the later ones add their call-site notes to the first instead of repeating it.
    ``includes`` (file → where an ``extends``/``use`` names it) adds ``included from`` notes
    to diagnostics located in included files."""

    items: list[Diagnostic] = field(default_factory=list)
    includes: dict[str, tuple[Loc, str]] = field(default_factory=dict)
    #: Errors folded by the bad value they come from (see :meth:`add`): the index of the
    #: first one by (severity, code, message, origin note); the further uses of each first
    #: one (the first few, all of them) and the note that lists them.
    _folds: dict[tuple[object, ...], int] = field(default_factory=dict, init=False, repr=False, compare=False)
    #: The same for the :class:`Computed` keys: the index of the first error computed from each
    #: origin, which an error on the origin's own value (met later) folds into.
    _computed: dict[tuple[object, ...], int] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _uses: dict[int, tuple[list[tuple[str, Loc | None]], set[tuple[str, Loc | None]], Note]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _seen: dict[tuple[object, ...], int] = field(default_factory=dict, init=False, repr=False, compare=False)
    _sites: dict[tuple[object, ...], tuple[int, int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _counts: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)
    #: The first error of each (message, code, place written): the same text met again under
    #: another spec path is a YAML alias (`*cb`) of an anchored node, one mistake.
    _written: dict[tuple[object, ...], int] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    #: Where values failed as they were read (:meth:`failed_values`): a later error located
    #: there, or with a note located there (the var it read), is that failure's consequence.
    _failed: set[Loc] = field(default_factory=set, init=False, repr=False, compare=False)
    #: (file, path) of each such value: an error on the list holding one (``factor: [0.1, .nan]``,
    #: read as [0.1, 0]) would judge the placeholder the failed item was read as.
    _failed_items: set[tuple[str, str]] = field(default_factory=set, init=False, repr=False, compare=False)
    #: The errors left out so (a pass that stops on some errors counts them too).
    silenced: list[Diagnostic] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for index, diagnostic in enumerate(self.items):
            self._seen[diagnostic.key()] = index
            self._counts[diagnostic.severity] = self._counts.get(diagnostic.severity, 0) + 1

    def add(
        self, diagnostic: Diagnostic, *, context: int = 0, origins: tuple[Note | Computed, ...] = ()
    ) -> None:
        """Add ``diagnostic`` found in ``context`` (a block call or repeat iteration; 0 outside).

        ``origins`` are the diagnostic's notes that say where the values its expression read
        were written (:func:`origin_note`). An error with the same message as an earlier one
        that read a value from the same origin, at another place, is the same bad value met
        again (a var of the wrong type used twice): it is not repeated but listed in a note
        of the first (:func:`uses_note`). A :class:`Computed` origin folds only with errors on
        that origin's value read as it is, in either order."""
        loc = diagnostic.loc
        if self._failed and diagnostic.severity == "error" and self._caused_by_failed_value(diagnostic):
            self.silenced.append(diagnostic)
            return
        if loc is not None and loc.file.startswith(COMMAND_LINE_PREFIX):
            diagnostic = on_command_line(diagnostic)
        if loc is not None and loc.file in self.includes:
            included = include_notes(loc.file, self.includes)
            rest = tuple(n for n in diagnostic.notes if n not in included)
            diagnostic = replace(diagnostic, notes=included + rest)
        severity = diagnostic.severity
        site = (severity, diagnostic.loc, diagnostic.path, diagnostic.code)
        index = self._seen.get(diagnostic.key())
        if index is None and site in self._sites and self._sites[site][1] != context:
            index = self._sites[site][0]  # the same mistake, reached through another call
        written = (severity, diagnostic.code, diagnostic.message, diagnostic.loc)
        if index is None and loc is not None and written in self._written:
            # the same text reached under another path (`- conv2d: *cb`): said once, with where
            # else it is read
            first = self._written[written]
            also = Note(
                f"also read as {diagnostic.path} (through a YAML alias of this text)", None, diagnostic.path
            )
            self.items[first] = self.items[first].with_notes((also,))
            return
        same = (severity, diagnostic.code, diagnostic.message)
        folds = [(*same, origin) for origin in origins if isinstance(origin, Note)]
        computed = [(*same, origin.note) for origin in origins if isinstance(origin, Computed)]
        if index is not None:
            self.items[index] = self.items[index].with_notes(_other_chain(self.items[index], diagnostic))
            for fold in folds:  # its origins fold their further uses into that error too
                self._folds.setdefault(fold, index)
            for fold in computed:
                self._computed.setdefault(fold, index)
            return
        # (a computed value meets the origin's own errors; the origin's value meets both)
        first = next(
            (
                table[fold]
                for table, keys in ((self._folds, folds + computed), (self._computed, folds))
                for fold in keys
                if fold in table
            ),
            None,
        )
        if first is not None:
            self._fold(first, diagnostic)
            return
        if self._counts.get(severity, 0) >= MAX_DIAGNOSTICS:
            return
        for fold in folds:
            self._folds[fold] = len(self.items)
        for fold in computed:
            self._computed.setdefault(fold, len(self.items))
        self._seen[diagnostic.key()] = len(self.items)
        self._sites.setdefault(site, (len(self.items), context))
        if loc is not None:
            self._written.setdefault(written, len(self.items))
        self.items.append(diagnostic)
        self._counts[severity] = self._counts.get(severity, 0) + 1
        if severity == "error" and self._counts[severity] == MAX_DIAGNOSTICS:
            self.items.append(
                Diagnostic(
                    # (the stages stop looking here: a hostile file can hold ~100,000 mistakes,
                    # so there is no count of the rest to give)
                    f"too many errors; stopped looking after the first {MAX_DIAGNOSTICS}",
                    diagnostic.loc,
                    diagnostic.path,
                    TOO_MANY,
                    "fix these and run again",
                )
            )

    def failed_values(self, errors: Iterable[Diagnostic]) -> None:
        """Add ``errors``, each on a value that failed as it was read (a YAML 1.1 ``yes``, a
        number out of range): any later error on such a value, or on a value computed from
        it (a note located at it), is its consequence and left out (kept in :attr:`silenced`)."""
        for error in errors:
            self.add(error)
        self._failed.update(error.loc for error in errors if error.loc is not None)
        self._failed_items.update((e.loc.file, e.path) for e in errors if e.loc is not None and e.path)

    def boolean_only(self, loc: Loc | None) -> bool:
        """Narrow the error of a value YAML 1.1 reads as a boolean (``no``), failed as it was
        read (:meth:`failed_values`), to where it stands a boolean alone is taken (the schema's
        type, ``trainable``): it said "true, false or a quoted string", and quoting it was then
        refused. Whether there was such an error at ``loc``."""
        for index, item in enumerate(self.items):
            if item.loc == loc and item.code == "yaml-1.1" and item.message.startswith(MAYBE_A_STRING):
                narrowed = replace(
                    item,
                    message="expected true or false" + item.message[len(MAYBE_A_STRING) :],
                    hint="write true or false: this setting takes no string",
                )
                self._seen.pop(item.key(), None)
                self._seen[narrowed.key()] = index
                self.items[index] = narrowed
                return True
        return False

    def _caused_by_failed_value(self, diagnostic: Diagnostic) -> bool:
        if diagnostic.loc in self._failed or any(note.loc in self._failed for note in diagnostic.notes):
            return True
        # a layer parameter's error on a list one of whose items failed as it was read (its
        # items only: an error on a whole section is not silenced by a bad number deep inside
        # it, nor one on the key, such as an unknown key whose list holds a YAML 1.1 `y`)
        loc, path = diagnostic.loc, diagnostic.path
        if loc is None or not path or diagnostic.code != "parameter":
            return False
        item = re.compile(re.escape(path) + r"\[\d+\]")
        return any(file == loc.file and item.fullmatch(failed) for file, failed in self._failed_items)

    def _fold(self, first: int, diagnostic: Diagnostic) -> None:
        """Count ``diagnostic`` as one more use of the bad value of ``self.items[first]``: its
        note that lists the further uses is replaced by one that includes this use."""
        use = (diagnostic.path, diagnostic.loc)
        listed, seen, old = self._uses.get(first, ([], set(), None))
        if use in seen or use[1] == self.items[first].loc:
            return  # this use again (another call or iteration reaching it): already counted
        seen.add(use)
        if len(listed) < MAX_LISTED_USES:
            listed.append(use)
        note = uses_note(listed, len(seen))
        kept = tuple(n for n in self.items[first].notes if n != old)
        self.items[first] = replace(self.items[first], notes=(*kept, note))
        self._uses[first] = (listed, seen, note)

    @property
    def full(self) -> bool:
        """True once :data:`MAX_DIAGNOSTICS` errors were collected: stages may stop early."""
        return self._counts.get("error", 0) >= MAX_DIAGNOSTICS

    @property
    def has_errors(self) -> bool:
        return self._counts.get("error", 0) > 0

    def error(
        self,
        message: str,
        loc: Loc | None = None,
        path: Sequence[PathPart] | str = "",
        *,
        code: str = "invalid",
        hint: str | None = None,
        notes: Sequence[Note] = (),
        context: int = 0,
        origins: Sequence[Note | Computed] = (),
    ) -> None:
        """Add an error; ``origins`` (also among ``notes``) say where the values it was
        computed from were written (see :meth:`add`)."""
        text_path = path if isinstance(path, str) else format_path(path)
        self.add(
            Diagnostic(message, loc, text_path, code, hint, "error", tuple(notes)),
            context=context,
            origins=tuple(origins),
        )

    def warning(
        self,
        message: str,
        loc: Loc | None = None,
        path: Sequence[PathPart] | str = "",
        *,
        code: str = "warning",
        hint: str | None = None,
        notes: Sequence[Note] = (),
    ) -> None:
        text_path = path if isinstance(path, str) else format_path(path)
        self.add(Diagnostic(message, loc, text_path, code, hint, "warning", tuple(notes)))

    def extend(self, others: Iterable[Diagnostic]) -> None:
        for diagnostic in others:
            self.add(diagnostic)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "warning"]

    def error_paths(self) -> set[str]:
        """The spec paths an error was said at: each error's own, and those of the further uses
        of a bad value that an error's note lists (:meth:`_fold`), which are said too."""
        paths = {d.path for d in self.errors}
        for index, (_, seen, _) in self._uses.items():
            if self.items[index].severity == "error":
                paths.update(path for path, _ in seen)
        return paths

    def raise_if_errors(self) -> None:
        if self.errors:
            raise SpecError(self.items)

    def ranked(self) -> list[Diagnostic]:
        return sorted(self.items, key=Diagnostic.sort_key)


def _restored(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> BaseException:
    """An exception of ``cls`` with ``args`` and attributes ``state``, made without calling its
    ``__init__`` (:func:`_reduce`)."""
    error = cls.__new__(cls, *args)
    BaseException.__init__(error, *args)
    error.__dict__.update(state)
    return error


def _reduce(error: BaseException) -> tuple[Any, ...]:
    """``__reduce__`` of cnnspec's exceptions: pickled (a process pool's worker raising one)
    and copied whole, whatever their ``__init__`` takes. Python's default calls
    ``cls(*args)`` with the message alone, which SpecError read as its diagnostics, character
    by character (a pool's result thread died, and ``.get()`` waited for ever), and which
    WriteError refused (it takes a path and a reason)."""
    return (_restored, (type(error), error.args, dict(error.__dict__)))


class SpecError(Exception):
    """Raised when a spec has errors; carries every diagnostic of the failing stage. Pickled
    and copied whole (its diagnostics), as :class:`UsageError` and :class:`WriteError` are."""

    __reduce__ = _reduce

    def __init__(self, diagnostics: Iterable[Diagnostic], *, in_order: bool = False) -> None:
        # sorted by location, then message; ``in_order``: as given (diagnostics located by a
        # JSON path, not a line, such as an import's refused layers, keep the source's order)
        self.diagnostics = list(diagnostics) if in_order else sorted(diagnostics, key=Diagnostic.sort_key)
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
    """A mistake on the command line or in a file argument (exit code 2).

    ``diagnostics``, when given, locate it inside an option's text (a ``--set`` value that is
    not YAML, at ``<--set 2>:1:14``): the command reports them as it reports a spec's errors,
    the quoted option and caret included, and still ends with exit code 2."""

    __reduce__ = _reduce

    def __init__(
        self, message: str, hint: str | None = None, *, diagnostics: Sequence[Diagnostic] = ()
    ) -> None:
        super().__init__(message)
        self.hint = hint
        self.diagnostics = list(diagnostics)


class WriteError(Exception):
    """A file could not be written: a full disk, an I/O error, a read-only or missing
    location (exit code 1). Names the file and, when known, the space the write needed and the
    space that was free; ``hint`` says how to continue (e.g. ``--resume``)."""

    __reduce__ = _reduce

    def __init__(
        self,
        path: str | os.PathLike[str],
        reason: str,
        *,
        errno: int | None = None,
        needed: int | None = None,
        free: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = path
        self.reason = reason
        self.errno = errno
        self.needed = needed
        self.free = free
        self.hint = hint
        super().__init__(self.describe())

    def describe(self) -> str:
        """``cannot write PATH: REASON (needs about N; M free)``."""
        space = []
        if self.needed is not None:
            space.append(f"needs about {human_bytes(self.needed)}")
        if self.free is not None:
            space.append(f"{human_bytes(self.free)} free there")
        extra = f" ({'; '.join(space)})" if space else ""
        return f"cannot write {self.path}: {self.reason}{extra}"


class PartlyWrittenError(WriteError):
    """A write of several files that failed, and whose undo failed too: some of the files are
    new, and an old file each replaced is kept aside where the message says. Not "nothing was
    written": a caller that adds so to a failed write's hint leaves this one as it is."""


def human_bytes(size: int) -> str:
    """``512 B``, ``1.2 KiB``, ``3.4 MiB``, ``5.6 GiB``."""
    if abs(size) < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if abs(value) < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


#: Words longer than this get no suggestion (a hostile 100,000-character key stays cheap).
MAX_SUGGEST_LENGTH = 64


def printable(text: str) -> str:
    """``text`` with its control characters shown escaped (``\\x1b``): user input (file and
    class names) never reaches a terminal, a log or a figure's label raw."""
    return "".join(ch if ch.isprintable() or ch == " " else _escaped(ch) for ch in text)


def _escaped(ch: str) -> str:
    """``ch`` as Python writes it in a string literal: ``\\x1b``, ``\\u202e`` (the right-to-left
    override: ``\\x202e`` would read as ``\\x20`` and "2e"), ``\\U000e0001``."""
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A hint naming the closest valid choice, or ``None`` when nothing is close (see
    :func:`closest`)."""
    found = closest(word, choices)
    return f"did you mean `{found}`?" if found is not None else None


def key_hint(word: str, choices: Iterable[str], present: Iterable[object]) -> str | None:
    """:func:`did_you_mean` for the unknown key ``word`` of a mapping whose keys are
    ``present``: the key meant is never one already set there (renaming ``unit`` to ``units``
    beside ``units: 10`` would write a duplicate key). When the closest choice is set already,
    the hint says so instead of naming it; ``None`` when nothing is close."""
    found = closest(word, choices)
    if found is None or found == word:
        return None
    if found in set(map(str, present)):
        return f"`{found}` is set already in this mapping: remove `{word}`, or give `{found}` its value"
    return f"did you mean `{found}`?"


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The valid choice ``word`` was probably meant to be, or ``None`` when nothing is close.

    As in rustc, a choice is close when it differs only in case, or when its edit distance
    (insertions, deletions, substitutions and swaps of neighbours, ignoring case) is at most a
    third of the word's length (at least 1): ``rleu`` → ``relu``, ``clases`` → ``classes``, but
    ``normalization`` gets no suggestion rather than ``activation``. Failing that, a word that
    begins exactly one choice, or that one choice begins, is an abbreviation or an extension of
    it (``val_acc`` → ``val_accuracy``). Proposing something far away sends the user the wrong
    way; nothing is better."""
    options = sorted(set(choices))
    low = word.lower()
    lowered = {c.lower(): c for c in options}
    if low in lowered:
        return lowered[low]
    if len(word) > MAX_SUGGEST_LENGTH:
        return None
    limit = max(len(word), 3) // 3
    best: tuple[int, str] | None = None
    for option in options:
        if abs(len(option) - len(word)) > limit or len(option) > MAX_SUGGEST_LENGTH:
            continue
        distance = edit_distance(low, option.lower(), limit)
        if distance <= limit and (best is None or distance < best[0]):
            best = (distance, option)
    if best is not None:
        return best[1]
    stems = [
        o
        for o in options
        if min(len(o), len(low)) >= 3 and (o.lower().startswith(low) or low.startswith(o.lower()))
    ]
    return stems[0] if len(stems) == 1 else None


def misspelt(
    keys: Iterable[str], valid: Mapping[str, object] | Sequence[str], missing: Iterable[str]
) -> set[str]:
    """Which of the ``missing`` names the unknown ``keys`` were probably meant to be: a misspelt
    required name is one mistake, reported once by its unknown-key error and its hint. Looks at
    the first :data:`MAX_DIAGNOSTICS` unknown keys (a hostile mapping can hold thousands)."""
    wanted = set(missing)
    if not wanted:
        return set()
    unknown = [k for k in keys if isinstance(k, str) and k not in valid][:MAX_DIAGNOSTICS]
    return {m for m in (closest(k, valid) for k in unknown) if m in wanted}


def edit_distance(a: str, b: str, limit: int) -> int:
    """The optimal-string-alignment distance of ``a`` and ``b`` (a swap of neighbours counts
    one), or ``limit + 1`` as soon as it is certainly larger than ``limit``."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


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


#: Other libraries' names for a cnnspec setting (Keras' metric aliases, its old optimizer
#: keyword ``lr``) → the one name cnnspec spells it with. Only hints read this table: the alias
#: itself stays refused (one spelling per concept), but its error names what to write, where
#: the nearest spelling would be another setting (``acc`` is one edit from ``auc``).
ALIASES: dict[str, str] = {
    "acc": "accuracy",
    "sparse_categorical_accuracy": "accuracy",
    "categorical_accuracy": "accuracy",
    "binary_accuracy": "accuracy",
    "top_k_categorical_accuracy": "top_k_accuracy",
    "sparse_top_k_categorical_accuracy": "top_k_accuracy",
    "mean_absolute_error": "mae",
    "mean_squared_error": "mse",
    "root_mean_squared_error": "rmse",
    "f1_score": "f1",
    "mean_io_u": "mean_iou",
    "lr": "learning_rate",
}


def alias_hint(word: object, choices: Iterable[str], present: Iterable[object] = ()) -> str | None:
    """A hint naming the valid choice that ``word``, another library's name for it
    (:data:`ALIASES`), stands for; ``None`` when ``word`` is no alias of one of ``choices``.
    For a key of a mapping whose keys are ``present``, a choice set there already is not
    named as the one meant: the hint says it is set."""
    meant = ALIASES.get(word) if isinstance(word, str) else None
    if meant is None or meant not in set(choices):
        return None
    if meant in set(map(str, present)):
        return (
            f"`{meant}` is set already in this mapping "
            f"(cnnspec spells `{word}` as `{meant}`): remove `{word}`"
        )
    return f"did you mean `{meant}`? cnnspec spells `{word}` as `{meant}`"


#: How much of an out-of-memory error's first line :func:`out_of_memory` keeps.
OOM_DETAIL_CHARS = 240


#: The lines of a TensorFlow error that say nothing of the error itself: the header of an error
#: in a graph function, the "Detected at node" trace that follows it, the node list, the advice.
_TF_FRAME_LINES = ("Graph execution error:", "Detected at node", "[[", "Hint:", "[Op:")
#: How a full disk reads in a library's message (its errno's words: ENOSPC, EDQUOT).
_DISK_FULL_WORDS = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT))


def out_of_memory(exc: BaseException) -> str | None:
    """``exc`` as one line when it says memory ran out, else ``None``: Python's MemoryError, or
    TensorFlow's ResourceExhaustedError ("OOM when allocating tensor with shape[…]": the line
    that says it, clipped; the "Graph execution error:" header, its trace of the node, the node
    list and RunOptions advice left out). A ResourceExhaustedError of a full disk (``PATH; No
    space left on device``, tf.data's cache file) is no memory error: ``None``. TensorFlow is
    not imported here: an error of its can only come from a process that has imported it."""
    if isinstance(exc, MemoryError):
        text = str(exc).strip()
        return text.splitlines()[0][:OOM_DETAIL_CHARS] if text else "MemoryError"
    tf_errors = getattr(sys.modules.get("tensorflow"), "errors", None)
    if tf_errors is None or not isinstance(exc, tf_errors.ResourceExhaustedError):
        return None
    text = (getattr(exc, "message", None) or str(exc)).strip()
    if any(words in text for words in _DISK_FULL_WORDS):
        return None
    # the message's own lines start at the margin; the trace's are indented (File "…", code)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line[:1].isspace()]
    said = [line for line in lines if not line.startswith(_TF_FRAME_LINES)]
    first = next((line for line in said if "OOM" in line), said[0] if said else "ResourceExhaustedError")
    return first if len(first) <= OOM_DETAIL_CHARS else first[: OOM_DETAIL_CHARS - 1] + "…"
