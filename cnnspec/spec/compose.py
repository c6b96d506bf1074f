"""Composition: ``extends`` (deep merge), ``use`` (block libraries) and ``--set`` overrides.

Every value keeps the location where it was written, so an error in an inherited or imported
value points into the file that holds it. Included paths are resolved relative to the file
that names them and must stay inside the top-level spec's folder tree unless
``allow_outside`` is set; cycles are reported with the chain of files. The composed document
records where each included file is named, so an error inside one says ``included from …``.

``--set`` overrides are checked here: a var the spec does not declare is an error located on
the command line (with did-you-mean), as is a path that leads through a value which is not a
mapping or list; the schema then checks the rest of every overridden value.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from cnnspec.errors import (
    COMMAND_LINE_PREFIX,
    Diagnostic,
    Diagnostics,
    Loc,
    SpecError,
    SpecPath,
    UsageError,
    did_you_mean,
    format_path,
    include_notes,
    on_command_line,
)
from cnnspec.layers.registry import REGISTRY
from cnnspec.paths import exists, is_dir, is_file, working_folder_gone
from cnnspec.resources import zoo_dir
from cnnspec.spec.hiding import hiding
from cnnspec.spec.loader import (
    SOURCE_TEXTS,
    SourceDoc,
    copy_doc,
    decode_source,
    display_name,
    load_file,
    load_text,
    value_at,
    value_key,
)
from cnnspec.spec.schema import validate_document
from cnnspec.spec.sections import RATE_SCALE
from cnnspec.spec.varchoices import KEY
from cnnspec.spec.yaml_errors import moved_hint
from cnnspec.spec.zoo import apply_variant, is_zoo_ref, resolve_ref, split_variant

MAX_INCLUDE_DEPTH = 16
#: Block libraries (file name, text) that passed the library schema in this process: a zoo
#: family reads the same libraries as every other, and `cnnspec validate` over the whole zoo
#: would check each of them once per variant.
_VALID_LIBRARIES: set[tuple[str, str | None]] = set()
_PATH_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(-?\d+)\]|(\.)")

#: Gives the text of a file the composer is about to read, or ``None`` to read it from disk.
#: An editor's unsaved buffers come in this way (``cnnspec lsp``), and every call names a file
#: the composition depends on, whether or not it then fails.
Reader = Callable[[Path], str | None]


class _Composer:
    def __init__(
        self, root: Path, allow_outside: bool, reader: Reader | None = None, *, defer: bool = False
    ) -> None:
        self.root = root
        self.allow_outside = allow_outside
        self.reader = reader
        #: Keep the errors in single values of every file read (``yes``, ``1_000``) for the
        #: schema check (:attr:`SourceDoc.value_errors`), rather than stop at the first file.
        self.defer = defer
        self.value_errors: list[Diagnostic] = []
        #: Whether every file read so far is a packaged zoo file, read from the package.
        self.packaged = True
        self.stack: list[Path] = []
        #: included file (as its locations name it) → where it is named: location and spec path
        self.includes: dict[str, tuple[Loc, str]] = {}
        self.named_at: dict[Path, tuple[Loc, str]] = {}

    def include(
        self, owner: SourceDoc, ref: Any, path: SpecPath, base_dir: Path, what: str
    ) -> tuple[Path, str | None]:
        """The file ``ref`` names (``zoo:…``, ``file.yaml#variant`` or a path relative to
        ``base_dir``) and the family variant it selects."""
        try:
            target, variant = self._include(owner, ref, path, base_dir, what)
        except SpecError as exc:
            raise self.with_includes(exc) from None
        loc = owner.loc(path)
        if loc is not None:
            self.named_at[target] = (loc, format_path(path))
        return target, variant

    def with_includes(self, exc: SpecError) -> SpecError:
        """``exc`` with ``included from`` notes on its diagnostics located in included files."""
        return SpecError(
            [
                d.with_notes(include_notes(d.loc.file, self.includes)) if d.loc is not None else d
                for d in exc.diagnostics
            ]
        )

    def _include(
        self, owner: SourceDoc, ref: Any, path: SpecPath, base_dir: Path, what: str
    ) -> tuple[Path, str | None]:
        if not isinstance(ref, str) or not ref:
            raise SpecError.single(
                f"expected a file path for `{what}`; received {ref!r}", owner.loc(path), format_path(path)
            )
        refused = path_refusal(ref)
        if refused is not None:
            raise SpecError.single(refused, owner.loc(path), format_path(path), code="io")
        variant: str | None = None
        if is_zoo_ref(ref):
            zoo_target, variant = resolve_ref(ref, owner.loc(path), format_path(path))
            if what == "use" and variant is not None:
                raise SpecError.single(
                    f"`use` imports block libraries; {ref!r} is a model (write zoo:blocks/NAME)",
                    owner.loc(path),
                    format_path(path),
                    code="zoo",
                )
            target = resolve_path(zoo_target)
        else:
            if what == "extends" and not is_file(base_dir / ref):
                ref, variant = split_variant(ref)
            target = resolve_path(base_dir / ref)
        if target is None:
            raise SpecError.single(
                unresolvable(ref),
                owner.loc(path),
                format_path(path),
                code="io",
            )
        if not self.allow_outside and not target.is_relative_to(self.root) and not _in_zoo(target):
            raise SpecError.single(
                f"refusing to read {_shown(ref)}: it is outside the spec's folder ({self.root})",
                owner.loc(path),
                format_path(path),
                code="outside",
                hint="pass --allow-outside if you trust this file",
            )
        if target in self.stack:
            chain = " → ".join(p.name for p in [*self.stack, target])
            raise SpecError.single(
                f"`{what}` cycle: {chain}", owner.loc(path), format_path(path), code="cycle"
            )
        if len(self.stack) >= MAX_INCLUDE_DEPTH:
            raise SpecError.single(
                f"expected at most {MAX_INCLUDE_DEPTH} nested includes", owner.loc(path), format_path(path)
            )
        if not self.exists(target):
            folder = is_dir(target)
            raise SpecError.single(
                f"expected a file; received the directory {_shown(ref)} (looked in {base_dir})"
                if folder
                # (a named pipe or a device is there: "no such file" sent the user looking for it)
                else f"expected a regular file; received a pipe, socket or device: {_shown(ref)} "
                f"(looked in {base_dir})"
                if exists(target)
                else f"no such file: {_shown(ref)} (looked in {base_dir})",
                owner.loc(path),
                format_path(path),
                code="io",
                hint=f"name a {'spec' if what == 'extends' else 'block library'} file (.yaml) in it"
                if folder
                else None,
            )
        return target, variant

    def load(
        self,
        path: Path,
        *,
        library: bool = False,
        variant: str | None = None,
        named_at: tuple[Loc | None, str] = (None, ""),
    ) -> SourceDoc:
        """Load ``path`` with its ``use`` and ``extends`` files; of a family spec, select
        ``variant`` (the first when ``None``; ``named_at`` locates the reference that asked)."""
        self.stack.append(path)
        try:
            if path in self.named_at:
                self.includes[display_name(path)] = self.named_at[path]  # as load_file names it
            try:
                doc = self.read(path)
            except SpecError as exc:
                raise self.with_includes(exc) from None
            trusted = self.from_package(path)
            self.packaged = self.packaged and trusted
            # The packaged libraries pass the library schema (tests/test_zoo.py checks each).
            if library and not trusted and (doc.file, SOURCE_TEXTS.get(doc.file)) not in _VALID_LIBRARIES:
                diags = Diagnostics(includes=dict(self.includes))
                validate_document(doc, diags, library=True)
                # A value that failed as it was read (a YAML 1.1 `no`) is reported with the
                # spec's errors (`read` kept it); any other error of the library stops here.
                failed = {d.key() for d in doc.value_errors}
                if any(d.key() not in failed for d in [*diags.errors, *diags.silenced]):
                    diags.raise_if_errors()
                if not doc.value_errors:
                    _VALID_LIBRARIES.add((doc.file, SOURCE_TEXTS.get(doc.file)))
            extends = doc.data.get("extends")
            is_family = "variants" in doc.data  # a base's table was applied when it was loaded
            if extends is not None:
                if library:
                    raise self.with_includes(
                        SpecError.single(
                            "a block library cannot use `extends`", doc.loc(("extends",)), "extends"
                        )
                    )
                target, base_variant = self.include(doc, extends, ("extends",), path.parent, "extends")
                base = self.load(target, variant=base_variant, named_at=(doc.loc(("extends",)), "extends"))
                doc = merge_docs(base, doc)
                doc.data.pop("extends", None)
            # After the merge: what the spec inherits is its own too, which a library's var or
            # block of the same name must not replace (nor merge into). The base's `use` was
            # applied when it was loaded; only this file's is left.
            self.apply_use(doc, path.parent)
            if not library and (is_family or variant is not None):
                try:
                    doc.variant = apply_variant(doc, variant, *named_at)
                except SpecError as exc:
                    raise self.with_includes(exc) from None
                if _in_zoo(path):
                    doc.zoo_variant = doc.variant
            return doc
        finally:
            self.stack.pop()

    def exists(self, path: Path) -> bool:
        """Whether ``path`` can be read: a file, or a text the reader holds for it (an editor's
        buffer not saved yet). The reader is asked even for a file that is missing, so that a
        missing file is among those the composition depends on: its creation changes the
        result (``cnnspec lsp`` re-checks the specs that name it)."""
        held = self.reader(path) if self.reader is not None else None
        return held is not None or is_file(path)

    def from_package(self, path: Path) -> bool:
        """Whether ``path`` is a packaged zoo file read as packaged (no editor buffer for it)."""
        return _in_zoo(path) and (self.reader is None or self.reader(path) is None)

    def read(self, path: Path) -> SourceDoc:
        """``path`` parsed: the reader's text when it has one (checked like a file's bytes)."""
        text = self.reader(path) if self.reader is not None else None
        if text is None:
            doc = load_file(path, defer=self.defer)
        else:
            name = display_name(path)
            doc = load_text(
                decode_source(text.encode("utf-8", "surrogatepass"), name), name, defer=self.defer
            )
        self.value_errors.extend(d for d in doc.value_errors if d not in self.value_errors)
        return doc

    def with_value_errors(self, exc: SpecError) -> SpecError:
        """``exc``, an error that stopped the composition, with the value errors of the files
        read so far (reported alone before they were deferred), less its errors located on a
        failed value (``extends: yes``: the value's own error says it)."""
        if not self.value_errors:
            return exc
        failed = {d.loc for d in self.value_errors}
        rest = [d for d in exc.diagnostics if d.loc not in failed and d not in self.value_errors]
        return SpecError([*self.value_errors, *rest])

    def apply_use(self, doc: SourceDoc, base_dir: Path) -> None:
        uses = doc.data.get("use")
        if uses is None:
            return
        if not isinstance(uses, list):
            uses = [uses]
        own_blocks: dict[str, Any] = doc.data.get("blocks") or {}
        imported_from: dict[str, str] = {}
        blocks: dict[str, Any] = {}
        for index, ref in enumerate(uses):
            target, _ = self.include(doc, ref, ("use", index), base_dir, "use")
            library = self.load(target, library=True)
            taken: set[str] = set()
            library_blocks = library.data.get("blocks") or {}
            for name, block in library_blocks.items():
                if name in own_blocks:
                    # the spec's own definition shadows the library's, in the library's own
                    # blocks too: on purpose or not, never unsaid where it changes the model
                    # (said once the document is whole: cnnspec.spec.hiding)
                    hidden = hiding(name, ref, library_blocks, own_blocks, doc.key_loc(("blocks", name)))
                    if hidden.callers:  # (a library block nothing there calls: nothing changes)
                        doc.hidden.append(hidden)
                    continue
                if name in imported_from and blocks[name] == block:
                    continue  # the same definition reached twice (a library that uses another)
                if name in imported_from:
                    raise self.with_includes(
                        SpecError.single(
                            f"block {name!r} is defined by both {imported_from[name]!r} and {ref!r}",
                            doc.loc(("use", index)),
                            format_path(("use", index)),
                            code="duplicate-block",
                        )
                    )
                imported_from[name] = ref
                blocks[name] = block
                doc.checked_blocks.add(name)  # the library passed its schema (see `load`)
                taken.add(name)
            _copy_block_locs(library, doc, taken)
            for name, value in (library.data.get("vars") or {}).items():
                own_vars = doc.data.setdefault("vars", {})
                if name not in own_vars:  # (not `is value`: true, null and small ints are shared)
                    own_vars[name] = value
                    _copy_locs(library, doc, ("vars", name))
            for name, options in (library.data.get(KEY) or {}).items():
                # the library's blocks compare the var with these values, whoever declares it
                own_choices = doc.data.setdefault(KEY, {})
                if name not in own_choices:
                    own_choices[name] = options
                    _copy_locs(library, doc, (KEY, name))
        if blocks:
            doc.data["blocks"] = {**blocks, **own_blocks}
        doc.data.pop("use", None)


def path_refusal(ref: str) -> str | None:
    """Why the file name ``ref``, written in a spec, can name no file at all (``None``: it can).
    The OS calls raise ``ValueError`` for it instead of an ``OSError``."""
    if "\0" in ref:
        return f"cannot read {_shown(ref)}: a file path cannot contain a NUL character (\\0)"
    return None


def unresolvable(ref: str) -> str:
    """The message for a file name ``ref`` that :func:`resolve_path` could not resolve: a
    relative one fails where the working folder was removed after the command started in it
    (``os.getcwd()`` fails, so no relative path resolves), else the OS's two reasons."""
    import os

    if not os.path.isabs(ref) and working_folder_gone():
        return (
            f"cannot read {_shown(ref)}: the working folder no longer exists (removed or renamed "
            "after this command's shell entered it), so no relative path can be followed"
        )
    return f"cannot read {_shown(ref)}: the path is too long or loops through symbolic links"


def resolve_path(path: Path) -> Path | None:
    """``path.resolve()``, or ``None`` where the OS refuses (a symlink loop, a name too long, a
    NUL character)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):  # RuntimeError: symlink loop (Python < 3.13)
        return None


def _in_zoo(path: Path) -> bool:
    """Whether ``path`` is a packaged zoo file: trusted, wherever the spec that names it lives."""
    zoo = _zoo_root()
    return zoo is not None and path.is_relative_to(zoo)


@functools.cache
def _zoo_root() -> Path | None:
    """The zoo folder resolved, once per process (each include asks)."""
    return resolve_path(zoo_dir())


def _supplies(reader: Reader | None, path: Path) -> bool:
    """Whether ``reader`` has text for the file ``path`` names (``None``: no reader)."""
    if reader is None:
        return False
    resolved = resolve_path(path)
    return resolved is not None and reader(resolved) is not None


def _shown(ref: str) -> str:
    """A file reference for messages, shortened when hostile (a 200,000-character name)."""
    return repr(ref) if len(ref) <= 100 else repr(ref[:60] + "…") + f" ({len(ref):,} characters)"


def _copy_block_locs(source: SourceDoc, target: SourceDoc, names: set[str]) -> None:
    """The locations of ``blocks.NAME…`` for each of ``names``, in one pass over each table."""
    if not names:
        return
    for table_src, table_dst in ((source.locs, target.locs), (source.key_locs, target.key_locs)):
        table_dst.update(
            {
                path: loc
                for path, loc in table_src.items()
                if len(path) > 1 and path[0] == "blocks" and path[1] in names
            }
        )


def _copy_locs(source: SourceDoc, target: SourceDoc, prefix: SpecPath) -> None:
    n = len(prefix)
    for table_src, table_dst in ((source.locs, target.locs), (source.key_locs, target.key_locs)):
        for path, loc in table_src.items():
            if path[:n] == prefix:
                table_dst[path] = loc


#: Mappings a child spec replaces whole, as it replaces a list: ``training.learning_rate_scale``
#: is read in order (a later pattern overrides an earlier one, which a merge would keep in the
#: parent's place) and ``{}`` says "none" (a merge kept the parent's).
WHOLE_MAPPINGS: frozenset[SpecPath] = frozenset({("training", RATE_SCALE)})


#: Keys of a mapping that say one thing two ways, so that the base's must go where the child
#: writes the other: ``training.phases`` set the epochs (each phase its own; ``training.epochs``
#: beside them is an error), so a child that writes ``phases`` drops the ``epochs`` it would
#: inherit, and one that writes ``epochs`` (one training without phases) drops the ``phases``.
#: Merged key by key, the child's plan would be refused for a key in the base, which the child
#: cannot remove (``null`` is no value of either).
REPLACING_KEYS: dict[SpecPath, dict[str, tuple[str, ...]]] = {
    ("training",): {"phases": ("epochs",), "epochs": ("phases",)},
}


#: The keys a value written later (``--set``, a search trial's value) drops beside it: phases
#: define the epochs, so ``training.phases`` set over a spec with ``training.epochs`` stands for
#: the whole plan. Not the other way: ``--set training.epochs=3`` (``--epochs 3``) on a phased
#: spec is refused, never silently dropping the phases the spec's own file wrote.
OVERRIDE_REPLACING_KEYS: dict[SpecPath, dict[str, tuple[str, ...]]] = {
    ("training",): {"phases": ("epochs",)},
}


def drop_replaced(doc: SourceDoc, path: SpecPath) -> None:
    """Remove from ``doc`` the keys that a value written at ``path`` replaces
    (:data:`OVERRIDE_REPLACING_KEYS`), with their locations: an error then never points at an
    inherited ``training.epochs`` the trial's phases stand in for. One an option on the command
    line wrote stays (``--set training.epochs=9 --set training.phases=…``): dropped, that
    option would do nothing, unsaid; kept, it is the error it is beside the phases."""
    replaced = OVERRIDE_REPLACING_KEYS.get(path[:-1], {}).get(str(path[-1]), ()) if path else ()
    parent: Any = doc.data
    for part in path[:-1]:
        parent = parent.get(part) if isinstance(parent, dict) else None
    if not isinstance(parent, dict):
        return
    for key in replaced:
        loc = doc.locs.get((*path[:-1], key))
        if key in parent and not (loc is not None and loc.file.startswith(COMMAND_LINE_PREFIX)):
            del parent[key]
            stale = (*path[:-1], key)
            for table in (doc.locs, doc.key_locs):
                for old in [p for p in table if p[: len(stale)] == stale]:
                    del table[old]


def merge_docs(base: SourceDoc, child: SourceDoc) -> SourceDoc:
    """Deep-merge ``child`` over ``base``: mappings merge (but :data:`WHOLE_MAPPINGS`, and a
    child's key drops the base's keys it replaces, :data:`REPLACING_KEYS`), everything else is
    replaced."""
    replaced: list[SpecPath] = []

    def merge(a: Any, b: Any, path: SpecPath) -> Any:
        if isinstance(a, dict) and isinstance(b, dict) and path not in WHOLE_MAPPINGS:
            out = dict(a)
            for key, value in b.items():
                out[key] = merge(a[key], value, (*path, key)) if key in a else value
                if key not in a:
                    replaced.append((*path, key))
            for key in b:
                for other in REPLACING_KEYS.get(path, {}).get(key, ()):
                    if other in out and other not in b:  # (both in the child: its own error)
                        del out[other]
                        replaced.append((*path, other))
            return out
        replaced.append(path)
        return b

    data = merge(base.data, child.data, ())
    locs = dict(base.locs)
    key_locs = dict(base.key_locs)
    for prefix in replaced:
        n = len(prefix)
        for table in (locs, key_locs):
            for stale in [p for p in table if p[:n] == prefix]:
                del table[stale]
    locs.update(child.locs)
    key_locs.update(child.key_locs)
    # A block both files define is merged from the two: the schema checks the result again.
    both = set(_blocks_of(base)) & set(_blocks_of(child))
    checked = (base.checked_blocks | child.checked_blocks) - both
    includes = {**base.includes, **child.includes}
    return SourceDoc(
        child.file,
        data,
        locs,
        key_locs,
        includes,
        checked_blocks=checked,
        zoo_variant=child.zoo_variant or base.zoo_variant,
        variant=child.variant or base.variant,
        hidden=[*base.hidden, *child.hidden],
    )


def _blocks_of(doc: SourceDoc) -> dict[str, Any]:
    blocks = doc.data.get("blocks")
    return blocks if isinstance(blocks, dict) else {}


def parse_override(text: str) -> tuple[SpecPath, Any]:
    """Parse ``path=value`` (``training.epochs=3``, ``model[2].conv2d.filters=64``). An index
    counted from the end (``model[-1]``) stays negative: only a spec's data can turn it into
    an item's place (:func:`from_the_end`)."""
    tokens, value, _ = _parse_override(text)
    return tuple(part for part, _ in tokens), value


def from_the_end(data: Any, path: SpecPath) -> SpecPath:
    """``path`` with each index counted from the end (``model[-1]``) that names an item of
    ``data`` replaced with that item's index, as --set reads it; one that names none (past the
    start, or in no list) stays negative, for the caller to refuse
    (:func:`index_past_the_start`)."""
    return tuple(part for part, _ in _from_the_end(data, [(part, None) for part in path]))


def index_past_the_start(where: str, count: int, index: int) -> tuple[str, str]:
    """The message and hint for the index ``index`` counted from the end of the list at
    ``where`` (``count`` items) that goes past its first item: said alike by --set and by a
    search space's key (:mod:`cnnspec.spec.search`)."""
    message = f"expected an index from {-count} to {count - 1} (`{where}` has {count} items); "
    message += f"received {index}"
    return message, f"`{where}[-1]` is its last item and `{where}[{-count}]` its first"


@dataclass(frozen=True)
class ValueLocs:
    """Where each part of a value given to --set was written, by its path inside the value
    (``("limit",)`` in ``{source: digits, limit: -1}``, ``(0, "early_stopping")`` in a list):
    its value's and its key's :class:`Loc` in the value's own text, whose line 1 column 1 is the
    value's first character (a later line of a value written over several is the option's own
    line as it is). The value itself, path ``()``, is not in it: it is where the option's value
    starts."""

    locs: dict[SpecPath, Loc] = field(default_factory=dict)
    key_locs: dict[SpecPath, Loc] = field(default_factory=dict)

    def under(self, key: str | int) -> ValueLocs:
        """The locations inside the part ``key`` of the value, by their paths inside it."""
        return ValueLocs(
            *(
                {p[1:]: loc for p, loc in table.items() if p[:1] == (key,) and len(p) > 1}
                for table in (self.locs, self.key_locs)
            )
        )

    def placed(self, file: str, value_column: int) -> ValueLocs:
        """These locations in the option's text, located in ``file``: line 1 of the value
        starts at ``value_column`` of the option (after ``--set PATH=`` or ``--epochs ``)."""

        return ValueLocs(
            *(
                {p: _in_option(loc, file, value_column) for p, loc in table.items()}
                for table in (self.locs, self.key_locs)
            )
        )


def _in_option(loc: Loc, file: str, value_column: int) -> Loc:
    """A location in a --set value's own text (line 1 column 1: its first character) as one in
    the option's text ``file``, whose line 1 has the value from ``value_column`` on (a later line
    of the value is the option's own line as it is)."""
    return Loc(file, loc.line, value_column + loc.column - 1 if loc.line == 1 else loc.column)


def _parse_override(text: str) -> tuple[list[tuple[str | int, int]], Any, ValueLocs]:
    """The path of ``path=value`` as (part, 1-based column of the part in ``text``), the value,
    and where each part of the value was written in it (:class:`ValueLocs`)."""
    if "=" not in text:
        raise UsageError(
            f"expected --set PATH=VALUE; received {text!r}",
            "for example: --set training.epochs=3",
        )
    raw_path, raw_value = text.split("=", 1)
    tokens: list[tuple[str | int, int]] = []
    position = 0
    expect_name = True
    while position < len(raw_path):
        match = _PATH_TOKEN.match(raw_path, position)
        if match is None or (match.group(3) and expect_name):
            raise _bad_path(raw_path, position, tokens)
        if match.group(1):
            tokens.append((match.group(1), position + 1))
            expect_name = False
        elif match.group(2):
            tokens.append((int(match.group(2)), position + 1))
        else:
            expect_name = True
        position = match.end()
    if not tokens or expect_name:
        raise _bad_path(raw_path, position, tokens)
    path = tuple(part for part, _ in tokens)
    key = value_key(path)
    prefix = f"{key}: "
    # Every part of the value keeps where it was written, as a file's would: an error in
    # `{source: digits, limit: -1}` points at the -1, not at the `{` (line 1 of the parsed text
    # has the prefix before the value, which its columns drop).
    shift = len(prefix)

    def in_value(loc: Loc) -> Loc:
        return Loc("", loc.line, loc.column - shift if loc.line == 1 else loc.column)

    try:
        # (typed as at `path`: a `yes` where an id goes gets an id's error, as in a file)
        parsed = load_text(prefix + (raw_value if raw_value.strip() else "''"), "<--set>", at=path)
    except SpecError as exc:
        inside = [
            replace(
                d,
                loc=in_value(d.loc) if d.loc is not None else None,
                # the parsed text's key is the option's path
                path=format_path(path) + d.path[len(key) :] if _under(key, d.path) else d.path,
                hint=moved_hint(d.hint, in_value),
            )
            for d in exc.errors
        ]
        message = f"cannot parse the value of --set {text!r}: {inside[0].message}"
        raise UnreadableValue(message, inside) from None
    value = parsed.data[key]

    tables = (
        {at[1:]: in_value(loc) for at, loc in table.items() if at[:1] == (key,) and len(at) > 1}
        for table in (parsed.locs, parsed.key_locs)
    )
    return tokens, value, ValueLocs(*tables)


def _under(key: str, path: str) -> bool:
    """Whether ``path`` is the parsed text's ``key`` (the overridden value) or inside it."""
    return path == key or path.startswith((f"{key}.", f"{key}["))


#: What a part of a --set path that is not one ends at: the next part, or the value.
_PART_END = re.compile(r"[.\[]")


def _bad_path(raw_path: str, position: int, tokens: list[tuple[str | int, int]]) -> UnreadablePath:
    """The error for the path ``raw_path`` of a --set option that is no spec path from
    ``position`` on (``tokens``: its parts before), with the hint for what is there."""
    message = f"expected a spec path like training.epochs; received {raw_path!r}"
    section = "a path starts with the name of a section: training, model, vars, …"
    if tokens and not isinstance(tokens[0][0], str):  # (`[0]=…`)
        return UnreadablePath(message, section, 1)
    if raw_path[position : position + 1].isspace():
        return UnreadablePath(
            message, "write the option without spaces around the path: --set PATH=VALUE", position + 1
        )
    last = tokens[-1] if tokens else None
    name_goes_on = raw_path[position : position + 1] not in ("", ".", "[")
    if (
        last is not None
        and isinstance(last[0], str)
        and last[1] - 1 + len(last[0]) == position
        and name_goes_on
    ):
        # the key began as a name (`conv*`): the key is all of it
        position, tokens = last[1] - 1, tokens[:-1]
    rest = raw_path[position:]
    before = format_path(tuple(part for part, _ in tokens))
    if not rest:  # (nothing at all, or a `.` last)
        hint = "name a setting: names separated by dots, items by their index: model[0].conv2d.filters"
    elif rest.startswith("["):
        hint = "an index is a whole number in brackets: [0] for the first item, [-1] for the last"
    elif rest.startswith("."):
        hint = "separate the names of a path with one dot: training.epochs"
    else:
        key = rest[: m.start()] if (m := _PART_END.search(rest, 1)) else rest
        hint = (
            f"a key that is no name ({key!r}) is set with its mapping given whole: "
            f"--set '{before}={{\"{key}\": …}}'"
            if tokens
            else section
        )
    return UnreadablePath(message, hint, position + 1)


class UnreadablePath(UsageError):
    """A --set option whose path is none (``a..b``, ``model[x]``, a key that is no name):
    a usage error (exit 2), located at ``column`` of the option's text (:meth:`placed`)."""

    def __init__(self, message: str, hint: str, column: int) -> None:
        super().__init__(message, hint)
        self.column = column

    def placed(self, file: str) -> UsageError:
        """This error located in the option's text ``file``."""
        located = on_command_line(
            Diagnostic(str(self), Loc(file, 1, self.column), code="override", hint=self.hint)
        )
        return UsageError(f"{located.loc}: {located.message}", located.hint, diagnostics=[located])


class UnreadableValue(UsageError):
    """A value given to --set that cannot be read as YAML (an unclosed ``{``, a duplicate key,
    a YAML 1.1 ``yes``): still a usage error (exit 2), with the loader's errors for the value's
    own text (line 1 column 1 is its first character) to place in the option
    (:meth:`placed`)."""

    def __init__(self, message: str, inside: list[Diagnostic]) -> None:
        super().__init__(message, inside[0].hint)
        self.inside = inside

    def placed(self, file: str, value_column: int) -> UsageError:
        """This error located in the option's text, as :meth:`ValueLocs.placed` places a
        value's parts: line 1 of the value starts at ``value_column`` of the option."""

        def place(loc: Loc) -> Loc:
            return _in_option(loc, file, value_column)

        located = [
            on_command_line(
                replace(d, loc=place(d.loc) if d.loc is not None else None, hint=moved_hint(d.hint, place))
            )
            for d in self.inside
        ]
        first = located[0]
        return UsageError(f"{first.loc}: {first.message}", first.hint, diagnostics=located)


#: The top-level keys composing reads (and the way to change what they say), which --set
#: comes too late for.
COMPOSED_KEYS = {
    "extends": "write `extends:` in the spec, or validate the other spec itself",
    "use": "write `use:` in the spec",
    "variants": "select a variant with FILE#NAME and set its vars with --set vars.NAME=VALUE",
    "family": "write `family:` in the spec",
}


class FlagOverride(str):
    """An override a command makes of one of its flags (``train --epochs 3`` is
    ``training.epochs=3``): the text of that ``--set``, everywhere an override is read or
    recorded, that also knows the ``flag`` the user typed, so that an error in it is located in
    that flag (``<--epochs>:1:10``) and names it, not a ``--set`` option nobody wrote."""

    flag: str

    def __new__(cls, text: str, flag: str = "--set") -> FlagOverride:
        made = super().__new__(cls, text)
        made.flag = flag
        return made

    def __reduce__(self) -> tuple[Any, ...]:
        return (FlagOverride, (str(self), self.flag))


def apply_overrides(doc: SourceDoc, overrides: list[str] | tuple[str, ...]) -> None:
    """Apply ``--set`` overrides in order; each is located at ``<--set N>`` (line 1 is its text),
    each part of a ``{…}`` or ``[…]`` value where the option writes it (:class:`ValueLocs`).

    A malformed option is a usage error. A path that does not fit the spec is a spec error
    located on the command line, like every error the schema or the resolver then finds in an
    overridden value: a var the spec does not declare (``--set vars.clases=10``, with
    did-you-mean), a list index past the end, a key under a value that is not a mapping.

    ``--set vars={…}`` sets each var it names, as ``--set vars.NAME=…`` does (the others keep
    their values, each name must be declared); any other mapping given whole replaces the
    spec's (``--set training={epochs: 2}`` leaves no other ``training`` key)."""
    diags = Diagnostics()
    if overrides:
        doc.schema_checked = False
    for number, text in enumerate(overrides, start=1):
        flag = text.flag if isinstance(text, FlagOverride) else "--set"
        if flag != "--set":  # located in the flag as typed: `--epochs 3`, the value after it
            file, typed = f"<{flag}>", f"{flag} {text.split('=', 1)[-1]}"
            value_column = len(flag) + 2
        else:
            file, typed, value_column = f"<--set {number}>", text, text.find("=") + 2
        try:
            columns, value, written = _parse_override(text)
        except UnreadableValue as exc:  # a usage error still, located in the option as typed
            SOURCE_TEXTS[file] = typed
            raise exc.placed(file, value_column) from None
        except UnreadablePath as exc:  # (a flag's path is the command's own: always one)
            SOURCE_TEXTS[file] = typed
            raise exc.placed(file) from None
        if flag != "--set":
            columns = [(part, 1) for part, _ in columns]
        SOURCE_TEXTS[file] = typed  # the text report quotes the option with a caret
        tokens = [(part, Loc(file, 1, column)) for part, column in columns]
        placed = written.placed(file, value_column)
        if [part for part, _ in tokens] == ["vars"] and isinstance(value, dict):
            # The var table given whole is each of its vars set (`vars={width: 4}` is
            # `vars.width=4`), as a variant's `vars:` sets them: a var the spec declares and the
            # option leaves out keeps its value, one it does not declare is refused, not added.
            for name, item in value.items():
                start = Loc(file, 1, value_column)
                key_loc, item_loc = placed.key_locs.get((name,), start), placed.locs.get((name,), start)
                named = [*tokens, (name if isinstance(name, str) else str(name), key_loc)]
                _apply_override(doc, named, item, item_loc, placed.under(name), diags)
            continue
        _apply_override(doc, tokens, value, Loc(file, 1, value_column), placed, diags)
    diags.raise_if_errors()


def _apply_override(
    doc: SourceDoc,
    tokens: list[tuple[str | int, Loc]],
    value: Any,
    value_loc: Loc,
    inside: ValueLocs,
    diags: Diagnostics,
) -> None:
    """Set ``value`` at the path ``tokens`` spell (each part with where the option writes
    it), located at ``value_loc`` and each part inside it where ``inside`` says. An index
    counted from the end (``model[-1]``) is the item it names, as in Python."""
    # (a search space's key first: `search.space.vars.width.choice[-1]` walks into `vars.width`)
    tokens = _from_the_end(doc.data, _space_key(doc.data, tokens))
    path: SpecPath = tuple(part for part, _ in tokens)

    def at(depth: int) -> Loc:
        return tokens[depth][1]

    if path[0] in COMPOSED_KEYS:  # read while the files were composed: a new value would do nothing
        diags.error(
            f"cannot set `{path[0]}` with --set: it is read when the spec's files are put together, "
            "before --set applies",
            at(0),
            path[:1],
            code="override",
            hint=COMPOSED_KEYS[path[0]],
        )
        return
    if path[0] == "vars" and len(path) > 1 and isinstance(path[1], str):
        declared = doc.data.get("vars")
        names = list(declared) if isinstance(declared, dict) else []
        if path[1] not in names:
            listing = "the spec declares " + (", ".join(names) if names else "no vars")
            diags.error(
                f"unknown var {path[1]!r}: --set can only change a var the spec declares",
                at(1),
                path[:2],
                code="unknown-var",
                hint=did_you_mean(path[1], names) or f"{listing}; declare it under `vars:` in the spec",
            )
            return
    target: Any = doc.data
    #: the depth of the first name on the path that the spec does not have (made on the way)
    missing: int | None = None
    for depth, key in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(key, int):
            if not isinstance(target, list) or not 0 <= key < len(target):
                where = format_path(path[:depth])
                if missing is not None:  # (a path through a name the spec lacks: most likely misspelt)
                    _missing_error(doc, path, missing, at(missing), depth, diags)
                    return
                hint: str | None = None
                if isinstance(target, list) and target and key < 0:
                    message, hint = index_past_the_start(where, len(target), key)
                elif isinstance(target, list) and target:
                    message = (
                        f"expected an index from 0 to {len(target) - 1} (`{where}` has {len(target)} "
                        f"items); received {key}"
                    )
                else:
                    message = f"expected a list with an item {key} at `{where}`; there is none"
                if isinstance(target, list) and key >= len(target):
                    hint = (
                        f"--set changes an item that is there; to add one, give `{where}` whole: "
                        f"--set '{where}=[…]'"
                    )
                diags.error(message, at(depth), path[: depth + 1], code="override", hint=hint)
                return
        elif not isinstance(target, dict):
            expanded = _expand_item(doc, path[:depth], key)
            if expanded is None:
                diags.error(
                    f"expected a mapping at `{format_path(path[:depth])}` to set `{key}` in; it is not one",
                    at(depth),
                    path[: depth + 1],
                    code="override",
                    hint=_item_hint(doc, path[:depth], target) or _whole_hint(path[:depth], key, target),
                )
                return
            target = expanded
        if isinstance(key, int) or last:
            pass
        elif key in target:
            if isinstance(path[depth + 1], str):
                # `dense: 3` is `dense: {units: 3}`: a parameter under it is set in the long form
                _expand_shorthand(doc, path[: depth + 1], target)
        else:
            missing = depth if missing is None else missing
            target[key] = [] if isinstance(path[depth + 1], int) else {}
            doc.locs[path[: depth + 1]] = doc.key_locs[path[: depth + 1]] = at(depth)
        if last:
            target[key] = value
        else:
            target = target[key]
    if path[0] == "blocks":
        doc.checked_blocks.difference_update(path[1:2] if len(path) > 1 else _blocks_of(doc))
    n = len(path)
    for table in (doc.locs, doc.key_locs):
        for stale in [p for p in table if p[:n] == path]:
            del table[stale]
    doc.locs[path] = value_loc
    doc.key_locs[path] = at(len(path) - 1)
    for table, written in ((doc.locs, inside.locs), (doc.key_locs, inside.key_locs)):
        table.update({(*path, *part): loc for part, loc in written.items()})
    drop_replaced(doc, path)


def _missing_error(
    doc: SourceDoc, path: SpecPath, missing: int, loc: Loc, depth: int, diags: Diagnostics
) -> None:
    """Report the override of ``path`` whose index at ``depth`` goes into a list the spec does
    not have, because the name at ``missing`` is none of the spec's there: at that name, with
    the did-you-mean among the names beside it."""
    parent = value_at(doc.data, path[:missing])
    names = [str(k) for k in parent if k != path[missing]] if isinstance(parent, dict) else []
    where = format_path(path[:missing]) if missing else "the top level"
    diags.error(
        f"expected `{format_path(path[:depth])}` to be in the spec to set its item {path[depth]}; "
        f"there is no `{path[missing]}` at {where.join('``') if missing else where}",
        loc,
        path[: missing + 1],
        code="override",
        hint=did_you_mean(str(path[missing]), names)
        or f"to add `{path[missing]}`, give it whole: --set '{format_path(path[: missing + 1])}=…'",
    )


#: What each part of a path carries beside it: where the option writes it (--set), or nothing.
_Where = TypeVar("_Where")

#: The keys of one dimension of ``search.space`` (:data:`cnnspec.spec.search.SPACE_SCHEMA`).
_DIMENSION_KEYS = frozenset({"choice", "float", "int", "log", "step"})


def _space_key(data: Any, tokens: list[tuple[str | int, Loc]]) -> list[tuple[str | int, Loc]]:
    """``tokens`` with the parts after ``search.space`` that spell one of its keys, a spec path
    itself (``training.phases``, ``model[2].dropout.rate``), made that one key: ``--set
    search.space.training.phases.choice=[…]`` sets that dimension's choices (the longest key
    that fits). A key the space lacks is the parts up to one of a dimension's own keys
    (``choice``, ``float``, ``int``, ``log``, ``step``), or all of them: a new dimension."""
    search = data.get("search") if isinstance(data, dict) else None
    space = search.get("space") if isinstance(search, dict) else None
    path = tuple(part for part, _ in tokens)
    if path[:2] != ("search", "space") or not isinstance(space, dict):
        return tokens
    for end in range(len(path), 3, -1):
        key = format_path(path[2:end])
        if key in space:
            return [*tokens[:2], (key, tokens[2][1]), *tokens[end:]]
    if len(path) < 4 or path[2] in space:  # (one part, or a key of the space's written alone)
        return tokens
    end = next((i for i in range(3, len(path)) if path[i] in _DIMENSION_KEYS), len(path))
    return [*tokens[:2], (format_path(path[2:end]), tokens[2][1]), *tokens[end:]]


def _from_the_end(data: Any, tokens: list[tuple[str | int, _Where]]) -> list[tuple[str | int, _Where]]:
    """``tokens`` with each index counted from the end (``model[-1]``) that names an item of
    the list there replaced with that item's index; one that names none is left for the
    override to refuse."""
    out = list(tokens)
    for depth, (part, loc) in enumerate(tokens):
        if isinstance(part, int) and isinstance(data, list) and -len(data) <= part < 0:
            part = len(data) + part
            out[depth] = (part, loc)
        keyed = isinstance(data, dict) and isinstance(part, str) and part in data
        indexed = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not (keyed or indexed):
            break
        data = data[part]
    return out


def _expand_item(doc: SourceDoc, path: SpecPath, key: str | int) -> dict[str, Any] | None:
    """The layer item at ``path`` written as a bare name (``- batch_norm``, a block without
    arguments) rewritten as the mapping ``{NAME: {}}`` when ``key`` is that name, so that
    ``--set model[1].batch_norm.momentum=0.5`` sets a parameter in it; ``None`` where the value
    at ``path`` is no such item."""
    if not path or not isinstance(path[-1], int):
        return None
    parent = value_at(doc.data, path[:-1])
    if not isinstance(parent, list) or not isinstance(key, str) or parent[path[-1]] != key:
        return None
    if key not in REGISTRY and key not in _blocks_of(doc):
        return None
    expanded: dict[str, Any] = {key: {}}
    parent[path[-1]] = expanded
    loc = doc.loc(path)
    if loc is not None:  # (the name as written is where the item's errors point)
        doc.locs[(*path, key)] = doc.key_locs[(*path, key)] = loc
    return expanded


def _expand_shorthand(doc: SourceDoc, path: SpecPath, item: dict[str, Any]) -> None:
    """Rewrite the layer kind at ``path`` (the kind's key in a layer item) written in its
    shorthand (``dense: 3``, ``batch_norm:`` with no value) as a parameter mapping
    (``dense: {units: 3}``), the kind's main parameter holding the shorthand's value; left as
    it is where the kind has no shorthand or the value is a mapping already."""
    name = path[-1]
    in_item = len(path) > 1 and isinstance(path[-2], int)
    if not isinstance(name, str) or not in_item or (name not in REGISTRY and name not in _blocks_of(doc)):
        return
    value = item[name]
    if isinstance(value, dict):
        return
    if value is None:
        item[name] = {}
        return
    param = _shorthand_param(doc, name)
    if param is not None:
        item[name] = {param: value}
        main = (*path, param)
        n = len(path)
        for table in (doc.locs, doc.key_locs):
            # the shorthand's value (and its items) keep their locations under the main parameter
            for old in [p for p in table if p[:n] == path and len(p) > n]:
                table[(*main, *old[n:])] = table.pop(old)
        loc = doc.loc(path)
        if loc is not None:
            doc.locs[main] = doc.key_locs[main] = loc


def _shorthand_param(doc: SourceDoc, name: str) -> str | None:
    """The parameter one value written alone fills for the kind or block ``name``: a kind's
    main parameter (``dense: 3`` is its units), a block's only parameter or else its only
    required one (as the resolver reads ``- cb: 8``); ``None`` where there is none."""
    kind = REGISTRY.get(name)
    if kind is not None:
        return kind.main
    block = _blocks_of(doc).get(name)
    params = block.get("params") if isinstance(block, dict) else None
    if params is None:
        return None
    if not isinstance(params, dict) or not all(isinstance(p, (str, dict)) for p in params.values()):
        return None  # (a malformed declaration: the schema says what is wrong with it)
    from cnnspec.spec.resolve import Resolver  # (the resolver imports this module)
    from cnnspec.spec.resolve_blocks import scalar_param

    # (the block alone: the rest of the document is not checked yet, nor needed)
    alone = SourceDoc(doc.file, {"blocks": {name: block}})
    return scalar_param(Resolver(alone, Diagnostics()).block_params(name))


def _item_hint(doc: SourceDoc, path: SpecPath, value: Any) -> str | None:
    """How to reach a parameter of the layer item ``value`` at ``path`` that --set could not
    expand (a name other than the one written): the form that works, or ``None``."""
    if not path or not isinstance(path[-1], int):
        return None
    if isinstance(value, str) and (value in REGISTRY or value in _blocks_of(doc)):
        where = format_path(path)
        return f"`{where}` is `{value}`: set its parameters with --set {where}.{value}.NAME=VALUE"
    return None


def _whole_hint(path: SpecPath, key: str | int, value: Any) -> str | None:
    """How to set ``key`` under the value at ``path`` that is no mapping: by an index, for a
    list; given whole, for a name below the top level, which a mapping may stand for
    (``data.source`` is ``digits``: ``--set 'data.source={npz: …}'``, ``training.optimizer``
    is ``adam``); ``None`` for another value (a number has no key under it)."""
    where = format_path(path)
    if isinstance(value, list) and path:
        return f"`{where}` is a list: name an item by its index, as in --set '{where}[0]…'"
    if isinstance(value, str) and len(path) > 1:
        return f"`{where}` is {value!r}: to make it a mapping, give it whole: --set '{where}={{{key}: …}}'"
    return None


def load_library(path: Path, *, allow_outside: bool = False, reader: Reader | None = None) -> SourceDoc:
    """Load a block library as a spec's ``use:`` reads it: the library schema, and the
    libraries it uses in turn (``cnnspec lsp`` checks an open library this way)."""
    resolved = resolve_path(path) or path
    composer = _Composer(resolved.parent, allow_outside, reader)
    doc = composer.load(resolved, library=True)
    doc.includes = composer.includes
    return doc


def with_libraries(doc: SourceDoc, file: Path, reader: Reader | None = None) -> SourceDoc:
    """``doc``, a text loaded alone (the lines above the cursor, which ``cnnspec lsp`` reads
    while the whole text does not load), with the blocks, vars and var choices of the libraries
    its ``use:`` names merged in as :func:`load_spec` merges them, read from the folder of the
    spec ``file`` and never from outside it. ``doc`` itself where it names none or one does not
    load; else a copy, as ``doc`` may be a parse the loader keeps for its text."""
    if "use" not in doc.data:
        return doc
    composed = copy_doc(doc)
    folder = file.parent
    try:
        _Composer(folder, False, reader).apply_use(composed, folder)
    except (SpecError, OSError):
        return doc
    return composed


def load_spec(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    allow_outside: bool = False,
    reader: Reader | None = None,
    defer: bool = False,
) -> SourceDoc:
    """Load a spec file with its ``extends`` and ``use`` files and apply ``--set`` overrides.

    ``defer``: errors in single values of these files (a YAML 1.1 ``yes``) are kept in the
    document's :attr:`~SourceDoc.value_errors` for the schema check to report with the rest,
    instead of raised alone.

    ``path`` may name a zoo model (``zoo:resnet50``) or a variant of a local family file
    (``family.yaml#name``, when no file has that whole name). ``reader`` may supply the text of
    any of these files instead of the disk (see :data:`Reader`). One string of ``overrides`` is
    one override."""
    if isinstance(overrides, str):
        overrides = (overrides,)
    text = str(path)
    variant: str | None = None
    if is_zoo_ref(text):
        spec_path, variant = resolve_ref(text)
        if variant is None:
            raise SpecError.single(
                f"{text!r} is a block library, not a model; a spec imports it with `use: [{text}]`",
                code="zoo",
            )
    else:
        spec_path = Path(path)
        # (a name the reader supplies is a whole file's, `#` and all: an editor's unsaved buffer)
        if not is_file(spec_path) and not _supplies(reader, spec_path):
            base, variant = split_variant(text)
            spec_path = Path(base) if variant is not None else spec_path
    refused = path_refusal(text)
    if refused is not None:
        raise SpecError.single(refused, code="io")
    resolved = resolve_path(spec_path)
    if resolved is None:
        raise SpecError.single(unresolvable(text), code="io")
    composer = _Composer(resolved.parent, allow_outside, reader, defer=defer)
    supplied = reader is not None and reader(resolved) is not None
    try:
        doc = composer.load(resolved if supplied or is_file(resolved) else spec_path, variant=variant)
    except SpecError as exc:
        raise composer.with_value_errors(exc) from None
    doc.includes = composer.includes
    doc.value_errors = composer.value_errors
    # A zoo model as packaged passes the spec schema (tests/test_zoo.py checks every variant):
    # `cnnspec validate zoo:…` need not load jsonschema for it. Overrides undo this.
    doc.schema_checked = composer.packaged
    doc.reader = reader
    apply_overrides(doc, overrides)
    return doc
