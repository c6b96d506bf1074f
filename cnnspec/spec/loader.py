"""Located YAML loading: text → plain values plus a table of line:column for every node.

The loader walks PyYAML's *event* stream (the safe parser, never a constructor), so it decides
every type itself: YAML 1.1 surprises (``yes``/``no``/``on``/``off``, ``010``, ``1:20``) are
errors instead of silent booleans and octals, tags are refused, duplicate keys name both lines,
and aliases are expanded under a node budget so a "billion laughs" file fails in milliseconds.
The walk uses an explicit stack, so deep nesting is an error, never a ``RecursionError``.
Where PyYAML itself stops, :mod:`cnnspec.spec.yaml_errors` says which mistake it most likely is.
"""

from __future__ import annotations

import math
import os
import re
import stat
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from cnnspec.errors import MAYBE_A_STRING, Diagnostic, Diagnostics, Loc, SpecError, SpecPath, format_path
from cnnspec.resources import zoo_dir
from cnnspec.spec.linebreaks import YAML_BREAK, YAML_ONLY_BREAKS, line_mapper
from cnnspec.spec.yaml_errors import GENERIC_HINT, explain_yaml_error

if TYPE_CHECKING:
    from cnnspec.spec.hiding import HiddenBlock

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 100
NODE_BUDGET = 50_000  # the largest shipped spec has ~100 nodes; this bounds every later stage

_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_TRUE = re.compile(r"^(?:true|True|TRUE)$")
_FALSE = re.compile(r"^(?:false|False|FALSE)$")
_YAML11_BOOL = re.compile(r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$")
_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$")
_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_OCT = re.compile(r"^0o[0-7]+$")
_LEADING_ZERO = re.compile(r"^[-+]?0[0-9]+$")
_UNDERSCORE_NUMBER = re.compile(r"^[-+]?[0-9][0-9_]*_[0-9_]*(?:\.[0-9_]*)?$")
_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_SPECIAL_FLOAT = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$")

_STR_TAG = "tag:yaml.org,2002:str"
_ALLOWED_COLLECTION_TAGS = {None, "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_SCALAR_TAGS = {None, _STR_TAG}

#: Text of every file loaded in this process, so diagnostics can quote the offending line.
SOURCE_TEXTS: dict[str, str] = {}


@dataclass
class SourceDoc:
    """A loaded YAML document: its plain value and where each part of it was written."""

    file: str
    data: dict[str, Any]
    locs: dict[SpecPath, Loc] = field(default_factory=dict)
    key_locs: dict[SpecPath, Loc] = field(default_factory=dict)
    #: For a composed document: each included file (as in its locations) → where it is named,
    #: the ``extends``/``use`` entry's location and spec path in the file that includes it.
    includes: dict[str, tuple[Loc, str]] = field(default_factory=dict)
    #: For a composed document: the names of blocks imported unchanged from block libraries
    #: that passed the library schema, so the spec schema need not check them again.
    checked_blocks: set[str] = field(default_factory=set)
    #: The packaged zoo variant this document is (or extends), e.g. ``resnet50``: the models
    #: ``weights: imagenet`` can load.
    zoo_variant: str | None = None
    #: The variant of a family file (packaged or not) applied to this document, or to the
    #: family it extends: :func:`cnnspec.spec.zoo.written_data` writes the table reduced to it.
    variant: str | None = None
    #: The whole document is a packaged zoo model as shipped (no edits, no overrides), which
    #: the tests check against the spec schema: :func:`validate_document` skips it.
    schema_checked: bool = False
    #: What gave the text of the files it was composed from instead of the disk (an editor's
    #: unsaved buffers: :data:`cnnspec.spec.compose.Reader`): a backbone's spec file is read
    #: through it too, so the editor's check sees that file's unsaved text and depends on it.
    reader: Callable[[Path], str | None] | None = field(default=None, repr=False, compare=False)
    #: Errors in single values found while reading (a YAML 1.1 boolean such as ``yes``, a
    #: number out of range), kept for the schema check to report with every other error of
    #: the file (:func:`cnnspec.spec.schema.validate_document`): they do not stop the reading
    #: the way a tag or a duplicate key does. Only a document loaded with ``defer`` has any.
    value_errors: list[Diagnostic] = field(default_factory=list, repr=False, compare=False)
    #: The blocks of the spec that hide a ``use:`` library's block its own blocks call, found
    #: while the files were composed (:meth:`cnnspec.spec.compose._Composer.apply_use`): their
    #: warnings, where the hiding changes the model, come with the schema check's diagnostics
    #: (:func:`cnnspec.spec.hiding.hidden_block_warnings`).
    hidden: list[HiddenBlock] = field(default_factory=list, repr=False, compare=False)

    def with_data(self, data: dict[str, Any]) -> SourceDoc:
        """This document with other ``data`` (a copy the caller changed): the same file,
        locations, includes, variant and reader, which a later error or include reads."""
        return SourceDoc(
            self.file,
            data,
            dict(self.locs),
            dict(self.key_locs),
            dict(self.includes),
            zoo_variant=self.zoo_variant,
            variant=self.variant,
            reader=self.reader,
            value_errors=list(self.value_errors),
            hidden=list(self.hidden),
        )

    def loc(self, path: SpecPath) -> Loc | None:
        """The location of the value at ``path``, or of its nearest located ancestor."""
        while True:
            found = self.locs.get(path)
            if found is not None or not path:
                return found
            path = path[:-1]

    def key_loc(self, path: SpecPath) -> Loc | None:
        """The location of the mapping key that introduces ``path`` (falls back to the value)."""
        return self.key_locs.get(path) or self.loc(path)


def _mark_loc(file: str, mark: Any) -> Loc:
    return Loc(file, mark.line + 1, mark.column + 1)


def _error(message: str, loc: Loc, path: SpecPath = (), hint: str | None = None) -> SpecError:
    return SpecError.single(message, loc, format_path(path) if path else "", code="yaml", hint=hint)


def decode_source(raw: bytes, file: str, size: int | None = None) -> str:
    """Check size and encoding; return the text without a UTF-8 byte-order mark.

    ``raw`` is the whole source, unless ``size`` is given: ``raw`` may then be the first
    :data:`MAX_BYTES` + 1 bytes of a file (all :func:`load_file` reads) and ``size`` is the
    file's size as ``os.fstat`` gave it. A size below the bytes read (``0`` for a file in
    /proc, or a file that grew meanwhile) is unknown: a spec over the limit then "received
    more than" the limit."""
    if len(raw) > MAX_BYTES:
        # The bytes read are the limit + 1 for any larger file: say the file's own size, or
        # "more than" the limit when it is unknown (or less than was read: a file growing)
        received = (
            f"{len(raw):,} bytes"
            if size is None
            else f"{size:,} bytes"
            if size >= len(raw)
            else f"more than {MAX_BYTES:,} bytes"
        )
        raise _error(
            f"expected a spec of at most {MAX_BYTES // 1024} KiB; received {received}",
            Loc(file, 1, 1),
            hint="a spec describes a model; data belongs in `data.source`",
        )
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _error(
            "expected UTF-8 text; received UTF-16 (byte-order mark)",
            Loc(file, 1, 1),
            hint="save the file as UTF-8",
        )
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise _error(
            f"expected UTF-8 text; received the invalid byte 0x{raw[exc.start]:02x}",
            Loc(file, line, column),
            hint="save the file as UTF-8",
        ) from None


#: Every pattern :func:`resolve_plain_scalar` types (or refuses) rather than keeping as text.
_TYPED = (
    _NULL, _TRUE, _FALSE, _INT, _YAML11_BOOL, _LEADING_ZERO, _SEXAGESIMAL, _UNDERSCORE_NUMBER, _HEX,
    _OCT, _FLOAT, _SPECIAL_FLOAT,
)  # fmt: skip


def plain_is_text(text: str) -> bool:
    """Whether ``text`` written unquoted reads back as this same string here. PyYAML's dumper
    quotes what YAML 1.1 would type, which is not all this loader types or refuses: ``n`` and
    ``y`` (YAML 1.1 booleans, refused), ``1e3`` (a float in YAML 1.2), ``0o7`` (an octal
    integer). :mod:`cnnspec.spec.dumping` quotes those."""
    return not any(pattern.match(text) for pattern in _TYPED)


#: The keys whose values (or list elements) name a layer, a tensor or a loop variable: an
#: identifier, never a boolean.
_ID_KEYS = frozenset({"id", "inputs", "outputs", "as"})
#: The mappings whose values are ids of layers (``next: {x: h}``, ``carry: {x: input}``).
_ID_MAPPINGS = frozenset({"next", "carry"})


def _names_an_id(path: SpecPath) -> bool:
    """Whether the value at ``path`` is an identifier: an item's ``id``, an ``inputs`` or
    ``outputs`` entry, a repeat's ``as``, or a ``next``/``carry`` value (not a var that
    happens to be named like one of those keys)."""
    if not path or path[0] == "vars":
        return False
    if isinstance(path[-1], int):  # an element of a list
        return len(path) >= 2 and path[-2] in ("inputs", "outputs")
    return path[-1] in _ID_KEYS or (len(path) >= 2 and path[-2] in _ID_MAPPINGS)


def _never_a_boolean(path: SpecPath) -> tuple[str, str] | None:
    """What the value at ``path`` is where it can never be a boolean (what its error expects,
    and what its hint calls it), else ``None``: an identifier, the spec's ``name`` and
    ``description``, a ``data.classes`` label. A bare ``n`` there was "expected true, false or a
    quoted string", with the hint to write true/false, which can never be right there."""
    if _names_an_id(path):
        return "an identifier", "an id"
    if path == ("name",):
        return "a name", "a spec's name"
    if path == ("description",):
        return "a text", "a description"
    if len(path) == 3 and path[:2] == ("data", "classes") and isinstance(path[2], int):
        return "a class label", "a class label"
    return None


def value_key(path: SpecPath) -> str:
    """The key to parse a value set at ``path`` under, alone in a text of its own (a ``--set``
    value): the path's last name, so that a hint which quotes the key quotes the user's
    (``source: "a: b"``, ``id: "a: b"``); ``value`` where the path ends in an index or a name
    that is not plain text. (The value is typed as at ``path`` whatever its key: the ``at`` of
    :func:`load_text`.)"""
    name = path[-1] if path else None
    return name if isinstance(name, str) and plain_is_text(name) else "value"


def resolve_plain_scalar(
    text: str, loc: Loc, path: SpecPath, diags: Diagnostics, *, at: SpecPath | None = None
) -> Any:
    """Type a plain (unquoted) scalar with YAML 1.2 core rules, refusing YAML 1.1 surprises.

    ``path`` names the value in its errors; ``at``, where given, is the spec path the value
    stands at when that is another (a ``--set`` value parsed alone, under one key): what the
    value is there (an id, never a boolean) decides its error's message and hint, as in a file."""
    if _NULL.match(text):
        return None
    if _TRUE.match(text):
        return True
    if _FALSE.match(text):
        return False
    if _INT.match(text):
        return _bounded_int(text, 10, loc, path, diags)
    if _YAML11_BOOL.match(text):
        never = _never_a_boolean(path if at is None else at)
        if never is not None:  # never a boolean there: the fix is the quotes alone
            expected, which = never
            diags.error(
                f"expected {expected}; received a bare {text!r}, which YAML 1.1 reads as a boolean",
                loc,
                path,
                code="yaml-1.1",
                hint=f'quote it ("{text}"): {which} is never a boolean, but unquoted YAML 1.1 reads '
                "it as one",
            )
            return text
        diags.error(
            f"{MAYBE_A_STRING}; received {text!r}, which YAML 1.1 reads as a boolean",
            loc,
            path,
            code="yaml-1.1",
            hint=f'write true/false, or quote it ("{text}") if you mean the string',
        )
        return text
    if _LEADING_ZERO.match(text):
        diags.error(
            f"expected a decimal number; received {text!r}, which YAML 1.1 reads as octal",
            loc,
            path,
            code="yaml-1.1",
            hint="remove the leading zero, or quote it if you mean a string",
        )
        return text
    if _SEXAGESIMAL.match(text):
        diags.error(
            f"expected a number; received {text!r}, which YAML 1.1 reads as base 60",
            loc,
            path,
            code="yaml-1.1",
            hint=f'quote it ("{text}") if you mean a string',
        )
        return text
    if _UNDERSCORE_NUMBER.match(text):
        diags.error(
            f"expected a number; received {text!r} (digit separators are not portable YAML)",
            loc,
            path,
            code="yaml-1.1",
            hint="write the number without underscores",
        )
        return text
    if _HEX.match(text):
        return _bounded_int(text, 16, loc, path, diags)
    if _OCT.match(text):
        return _bounded_int(text, 8, loc, path, diags)
    if _FLOAT.match(text) or _SPECIAL_FLOAT.match(text):
        special = text.lstrip("+-").lower()
        if special == ".nan":
            value = math.nan
        elif special == ".inf":
            value = -math.inf if text.startswith("-") else math.inf
        else:
            value = float(text)
        if not math.isfinite(value):
            diags.error(
                f"expected a finite number; received {text!r}",
                loc,
                path,
                code="number-range",
                hint="numbers must be finite and within double precision (about 1.8e308)",
            )
            return 0.0
        return value
    return text


def _bounded_int(text: str, base: int, loc: Loc, path: SpecPath, diags: Diagnostics) -> int:
    """An integer no larger than the largest double: bigger ones are refused before Python
    converts them (a 5,000-digit literal would otherwise raise ``ValueError``)."""
    digits = text[2:] if base != 10 else text
    value = int(digits, base) if len(digits) <= 400 else None
    if value is not None and abs(value) <= sys.float_info.max:
        return value
    shown = text if len(text) <= 24 else f"{text[:20]}… ({len(text):,} characters)"
    diags.error(
        f"expected a number within ±1.8e308; received {shown}",
        loc,
        path,
        code="number-range",
        hint="numbers must be finite and within double precision (about 1.8e308)",
    )
    return 0


@dataclass
class _Frame:
    container: dict[str, Any] | list[Any]
    path: SpecPath
    loc: Loc
    anchor: str | None
    start_count: int
    key: str | None = None
    key_loc: Loc | None = None
    first_key_line: dict[str, int] = field(default_factory=dict)
    order_start: int = 0


class _Builder:
    """Turns a YAML event stream into plain values and location tables."""

    def __init__(self, file: str, at: SpecPath | None = None) -> None:
        self.file = file
        #: The spec path the text's one top-level key stands for (a ``--set`` value parsed
        #: alone): its scalars are typed as they would be there (:func:`resolve_plain_scalar`).
        self.at = at
        self.diags = Diagnostics()
        self.locs: dict[SpecPath, Loc] = {}
        self.key_locs: dict[SpecPath, Loc] = {}
        self.stack: list[_Frame] = []
        #: Paths of ``locs`` in first-insertion order: the paths under a node are the slice
        #: written while it was open, so an anchor records a range instead of scanning ``locs``.
        self.order: list[SpecPath] = []
        self.anchors: dict[str, tuple[Any, SpecPath, int, int, int]] = {}
        self.node_count = 0
        self.aliases_used = False
        self.root: Any = None
        self.root_set = False
        self.documents = 0

    # -- helpers -------------------------------------------------------------------------
    def _next_path(self, loc: Loc) -> SpecPath | None:
        """The path where the next value goes, or ``None`` when it is a mapping key."""
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.container, list):
            return (*top.path, len(top.container))
        if top.key is None:
            return None
        return (*top.path, top.key)

    def _count(self, n: int, loc: Loc) -> None:
        self.node_count += n
        if self.node_count > NODE_BUDGET:
            if self.aliases_used:
                raise _error(
                    f"expected at most {NODE_BUDGET:,} YAML nodes after alias expansion; "
                    "received more (an alias bomb?)",
                    loc,
                    hint="aliases (*name) are expanded in full; use blocks and repeat instead",
                )
            raise _error(
                f"expected at most {NODE_BUDGET:,} YAML nodes; received more",
                loc,
                hint="a spec describes a model; use blocks and repeat instead of long lists",
            )

    def _place(self, value: Any, path: SpecPath, loc: Loc) -> None:
        """Attach a finished value to its parent (or make it the root)."""
        if not self.stack:
            self.root = value
            self.root_set = True
            return
        top = self.stack[-1]
        if isinstance(top.container, list):
            top.container.append(value)
        else:
            assert top.key is not None
            top.container[top.key] = value
            top.key = None

    def _set_loc(self, path: SpecPath, loc: Loc) -> None:
        if path not in self.locs:
            self.order.append(path)
        self.locs[path] = loc

    def _check_tag(self, tag: str | None, loc: Loc, path: SpecPath, allowed: set[str | None]) -> None:
        if tag not in allowed:
            raise _error(
                f"expected plain YAML; received the tag {tag!r}",
                loc,
                path,
                hint="cnnspec specs do not use YAML tags (they could construct Python objects)",
            )

    # -- events --------------------------------------------------------------------------
    def feed(self, event: Any) -> None:
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            frame = self.stack.pop()  # (ends first, and with no location of their own: a third of events)
            self._finish(
                frame.container, frame.path, frame.loc, frame.anchor, frame.start_count, frame.order_start
            )
            return
        if isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise _error(
                    "expected one YAML document; received a second one",
                    _mark_loc(self.file, event.start_mark),
                    hint="remove the `---` separator; one file holds one spec",
                )
            return
        if isinstance(event, (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentEndEvent)):
            return

        loc = _mark_loc(self.file, event.start_mark)
        path = self._next_path(loc)
        if path is None:
            self._feed_key(event, loc)
            return

        if len(self.stack) >= MAX_DEPTH:
            from cnnspec.spec.scope import COMBINATORS  # (on this error alone: no import cycle)

            # a model's repeats, residuals and parallels written in place reach this limit before
            # their own of 32, at about 31: said where the nesting is theirs
            nested = any(part in COMBINATORS for part in path)
            raise _error(
                f"expected nesting of at most {MAX_DEPTH} levels; received deeper nesting",
                loc,
                path,
                hint=f"each repeat, residual or parallel written inside another nests 3 levels (its "
                f"item, its mapping, its list of layers): about {MAX_DEPTH // 3 - 2} fit; make the "
                "inner levels blocks and call them, or write a level's layers out in place"
                if nested
                else None,
            )

        if isinstance(event, yaml.AliasEvent):
            self._feed_alias(event, path, loc)
        elif isinstance(event, yaml.ScalarEvent):
            if event.tag is not None:  # (untagged: allowed, and nearly every event)
                self._check_tag(event.tag, loc, path, _SCALAR_TAGS)
            self._count(1, loc)
            if event.tag is None and event.implicit[0]:
                at = None if self.at is None else (*self.at, *path[1:])
                value = resolve_plain_scalar(event.value, loc, path, self.diags, at=at)
            else:
                value = event.value
            self._finish(value, path, loc, event.anchor, self.node_count - 1, len(self.order))
        elif isinstance(event, yaml.MappingStartEvent):
            if event.tag is not None:
                self._check_tag(event.tag, loc, path, _ALLOWED_COLLECTION_TAGS)
            self._count(1, loc)
            start = len(self.order)
            self._set_loc(path, loc)
            self.stack.append(_Frame({}, path, loc, event.anchor, self.node_count - 1, order_start=start))
        elif isinstance(event, yaml.SequenceStartEvent):
            if event.tag is not None:
                self._check_tag(event.tag, loc, path, _ALLOWED_COLLECTION_TAGS)
            self._count(1, loc)
            start = len(self.order)
            self._set_loc(path, loc)
            self.stack.append(_Frame([], path, loc, event.anchor, self.node_count - 1, order_start=start))

    def _finish(
        self, value: Any, path: SpecPath, loc: Loc, anchor: str | None, start: int, order_start: int
    ) -> None:
        self._set_loc(path, loc)
        if anchor is not None:
            size = self.node_count - start
            self.anchors[anchor] = (value, path, order_start, len(self.order), size)
        self._place(value, path, loc)

    def _feed_key(self, event: Any, loc: Loc) -> None:
        top = self.stack[-1]
        assert isinstance(top.container, dict)
        if not isinstance(event, yaml.ScalarEvent):
            raise _error(
                "expected a plain string as mapping key; received a complex key",
                loc,
                top.path,
            )
        if event.tag is not None:
            self._check_tag(event.tag, loc, top.path, _SCALAR_TAGS)
        key = event.value
        if key == "<<" and event.implicit[0]:
            raise _error(
                "expected a key; received the YAML merge key `<<`",
                loc,
                top.path,
                hint="merge keys are not supported; use blocks, repeat or `extends`",
            )
        if key in top.container or key in top.first_key_line:
            first = top.first_key_line.get(key)
            raise _error(
                f"duplicate key {key!r} (first defined on line {first})",
                loc,
                (*top.path, key),
                hint="each key may appear once in a mapping; remove one of them",
            )
        top.first_key_line[key] = loc.line
        top.key = key
        top.key_loc = loc
        self.key_locs[(*top.path, key)] = loc

    def _feed_alias(self, event: Any, path: SpecPath, loc: Loc) -> None:
        if event.anchor not in self.anchors:
            raise _error(
                f"expected a defined anchor; received the alias *{event.anchor}, "
                "which is undefined or refers to itself",
                loc,
                path,
            )
        value, anchor_path, first, last, size = self.anchors[event.anchor]
        self.aliases_used = True
        self._count(size, loc)
        n = len(anchor_path)
        for sub in self.order[first:last]:
            copied = (*path, *sub[n:])
            self._set_loc(copied, self.locs[sub])
            # The keys inside the anchored node too: an error about a key (an unknown
            # parameter) points at the key, not at its value. The anchored node's own key
            # (``sub == anchor_path``) is not copied: the alias's key was set where it is used.
            key_loc = self.key_locs.get(sub)
            if key_loc is not None and len(sub) > n:
                self.key_locs[copied] = key_loc
        self._set_loc(path, loc)
        self._place(_deep_copy(value), path, loc)


def _deep_copy(value: Any) -> Any:
    """Copy plain YAML values without recursion (the structure may be deep)."""
    if not isinstance(value, (dict, list)):
        return value
    root: Any = {} if isinstance(value, dict) else []
    work: list[tuple[Any, Any]] = [(value, root)]
    while work:
        src, dst = work.pop()
        items = src.items() if isinstance(src, dict) else enumerate(src)
        for key, item in items:
            if isinstance(item, (dict, list)):
                copy: Any = {} if isinstance(item, dict) else []
                work.append((item, copy))
            else:
                copy = item
            if isinstance(dst, dict):
                dst[key] = copy
            else:
                dst.append(copy)
    return root


def _build(text: str, file: str, loader: type, at: SpecPath | None = None) -> _Builder:
    """Feed PyYAML's event stream from ``loader`` to a fresh builder (``at``: see :class:`_Builder`)."""
    builder = _Builder(file, at)
    for event in yaml.parse(text, Loader=loader):
        builder.feed(event)
    return builder


def _parse(text: str, file: str, at: SpecPath | None = None) -> _Builder:
    """Parse with libyaml when present; report every YAML error as the pure-Python parser sees it.

    libyaml is only the fast path for valid text. Its messages, marks and limits change between
    releases: PyYAML 6.0.4's libyaml stops at a flow nesting depth of 1,000 *while scanning
    ahead* (up to 1,024 characters for a possible simple key), so a deep ``[[[…`` failed with its
    message before the builder reached :data:`MAX_DEPTH`. On any YAML error the text is parsed
    again with PyYAML's pure-Python parser, so a user gets the same located error, code and hint
    with or without libyaml and whatever its version. Errors of our own (:class:`SpecError`) are
    raised by the builder itself and never reach this fallback.
    """
    if _SafeLoader is yaml.SafeLoader:
        try:
            return _build(text, file, yaml.SafeLoader, at)
        except (ValueError, OverflowError) as exc:  # (see below; no libyaml to say where)
            raise yaml.YAMLError(f"an escape code beyond Unicode's range ({exc})") from None
    try:
        return _build(text, file, _SafeLoader, at)
    except yaml.YAMLError as fast:
        try:
            return _build(text, file, yaml.SafeLoader, at)
        except (ValueError, OverflowError):
            # PyYAML's pure-Python scanner fails outside YAMLError on an escape past U+10FFFF
            # (chr() of "\U12000100" raised ValueError: a traceback); libyaml's error says where
            raise fast from None


#: Parsed documents of this process by (file name, text), most recent last: a zoo family and
#: the block libraries every family uses are read once per variant by `cnnspec validate` over
#: the whole zoo, and parsing is most of what reading costs. Bounded, because the language
#: server parses every edit of a buffer. A text that failed to parse keeps its errors: `cnnspec
#: validate` reads each file twice (is it a block library? then the spec), and the pure-Python
#: parser that explains a YAML error is slow on some texts (a flow sequence nested 1,000 deep:
#: seconds, tests/fixtures/hostile/deep_flow_sequence.yaml). Bounded by the texts' total length
#: as well as by their number: a count alone held up to 64 texts of MAX_BYTES each, yet at 64
#: forgot a folder of more small specs before it was read again (`cnnspec validate`, then
#: `inspect`, over the 118 specs of tests/fixtures/hostile parsed every one of them twice).
_PARSED: OrderedDict[tuple[str, str], SourceDoc | tuple[Diagnostic, ...]] = OrderedDict()
#: Held while the parse cache is read or changed: the library's compile functions may run in
#: threads, and summing the cache while another thread added to it raised "OrderedDict mutated
#: during iteration". (Parsing itself runs outside it.)
_PARSED_LOCK = threading.Lock()
PARSE_CACHE_SIZE = 512
#: The most characters of text the parse cache holds (4 MiB: a few of the largest specs).
PARSE_CACHE_CHARS = 4 * MAX_BYTES


def load_text(
    text: str, file: str = "<string>", *, defer: bool = False, at: SpecPath | None = None
) -> SourceDoc:
    """Parse spec text into a :class:`SourceDoc`; raise :class:`SpecError` on any problem.

    With ``defer``, errors in single values (:attr:`SourceDoc.value_errors`) are kept in the
    document instead: the front end reports them with the rest of the file's errors.
    Each call returns a document of its own (composition changes documents in place); a text
    parsed before in this process is copied instead of parsed again.

    ``at``: the spec path that the text's one top-level key stands for (a ``--set`` value,
    parsed alone under one key), whose values are typed as they would be there: ``yes`` where
    an id goes gets an id's error (such a text, a short one, is not cached)."""
    SOURCE_TEXTS[file] = text
    if at is not None:
        doc = _load_text(text, file, at)
        if doc.value_errors and not defer:
            raise SpecError(doc.value_errors)
        return doc
    with _PARSED_LOCK:
        cached = _PARSED.get((file, text))
        if cached is not None:
            _PARSED.move_to_end((file, text))
    if cached is not None:
        if isinstance(cached, tuple):  # (diagnostics are frozen: the same ones, in their order)
            raise SpecError(cached, in_order=True)
        doc = copy_doc(cached)
    else:
        try:
            doc = _load_text(text, file)
        except SpecError as failed:
            _remember(file, text, tuple(failed.diagnostics))
            raise
        _remember(file, text, copy_doc(doc))
    if doc.value_errors and not defer:
        raise SpecError(doc.value_errors)
    return doc


def _remember(file: str, text: str, parsed: SourceDoc | tuple[Diagnostic, ...]) -> None:
    """Keep what parsing ``text`` gave (a document, or the errors it raised), the oldest
    forgotten past :data:`PARSE_CACHE_SIZE` texts or :data:`PARSE_CACHE_CHARS` characters."""
    with _PARSED_LOCK:
        _PARSED[(file, text)] = parsed
        # Summed here, not kept in a running total that a replaced cache (a test's) would put
        # wrong: a few hundred lengths cost nothing beside the parse that came before.
        chars = sum(len(kept) for _, kept in _PARSED)
        while len(_PARSED) > 1 and (len(_PARSED) > PARSE_CACHE_SIZE or chars > PARSE_CACHE_CHARS):
            chars -= len(_PARSED.popitem(last=False)[0][1])


#: The hint of a spec under specs/ or examples/ that does not exist: the README's examples name
#: the repository's files there, which an installed cnnspec does not have; the zoo it has.
MISSING_SPEC_HINT = (
    "check the path; specs/ and examples/ come with the cnnspec repository, not with the package: "
    "`cnnspec zoo` lists the models it has (zoo:NAME)"
)


def copy_doc(doc: SourceDoc) -> SourceDoc:
    """A copy of a loaded document whose data may be changed (its values' mappings and lists
    new, its locations' tables new)."""
    return SourceDoc(
        doc.file, copy_tree(doc.data), dict(doc.locs), dict(doc.key_locs), value_errors=list(doc.value_errors)
    )


def value_at(data: Any, path: SpecPath) -> Any:
    """The value written at ``path`` in a loaded or composed document's ``data`` (``None``
    when nothing is there): the one walk the resolver's notes and the language server share."""
    for part in path:
        keyed = isinstance(data, dict) and isinstance(part, str) and part in data
        indexed = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not (keyed or indexed):
            return None
        data = data[part]
    return data


def copy_tree(value: Any) -> Any:
    """A copy of a loaded value: new mappings and lists, the same (immutable) scalars."""
    if isinstance(value, dict):
        return {k: copy_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_tree(v) for v in value]
    return value


def _load_text(text: str, file: str, at: SpecPath | None = None) -> SourceDoc:
    """:func:`_parse_text`, with its lines counted as editors count them (see
    :data:`~cnnspec.spec.linebreaks.YAML_ONLY_BREAKS`): the YAML parser's marks would put every
    error after such a character one line too low, and past the end of the file for an editor."""
    if not any(ch in text for ch in YAML_ONLY_BREAKS):
        return _parse_text(text, file, at)
    moved = line_mapper(text)
    try:
        doc = _parse_text(text, file, at)
    except SpecError as exc:
        raise SpecError([replace(d, loc=moved(d.loc)) for d in exc.diagnostics]) from None
    doc.locs = {path: moved(loc) for path, loc in doc.locs.items()}
    doc.key_locs = {path: moved(loc) for path, loc in doc.key_locs.items()}
    doc.value_errors = [replace(d, loc=moved(d.loc)) for d in doc.value_errors]
    return doc


#: A lone UTF-16 surrogate: no character, so no UTF-8 holds it (a file's text never does). An
#: editor's text may: JSON's ``"\\ud800"``, which JavaScript writes for a string an edit left
#: with half of a character (an emoji). The YAML parser could not encode it: an internal error.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _yaml_loc(text: str, file: str, position: int) -> Loc:
    """Where the character at ``position`` is, in YAML's lines as the parser's marks are
    (:func:`_load_text` maps them to ours)."""
    starts = [0, *(m.end() for m in YAML_BREAK.finditer(text, 0, position))]
    return Loc(file, len(starts), position - starts[-1] + 1)


def _parse_text(text: str, file: str, at: SpecPath | None = None) -> SourceDoc:
    lone = _SURROGATE.search(text)
    if lone is not None:
        raise _error(
            f"expected Unicode text; received the lone surrogate U+{ord(lone.group()):04X}, "
            "half of a character",
            _yaml_loc(text, file, lone.start()),
            hint="an edit left half of a character (an emoji?): delete it, and type the character again",
        )
    try:
        builder = _parse(text, file, at)
    except yaml.MarkedYAMLError as exc:
        explained = explain_yaml_error(exc, text, file)
        if explained is None:
            problem = exc.problem or exc.context or "invalid YAML"
            raise _error(f"invalid YAML: {problem}", Loc(file, 1, 1), hint=GENERIC_HINT) from None
        loc = Loc(file, explained.line + 1, explained.column + 1)
        raise _error(f"invalid YAML: {explained.problem}", loc, hint=explained.hint) from None
    except yaml.reader.ReaderError as exc:
        # A character YAML does not allow (NUL, most control characters): located.
        code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        raise _error(
            f"expected printable text; received the control character U+{code:04X}",
            _yaml_loc(text, file, exc.position),
            hint="NUL characters usually mean the file is UTF-16; save it as UTF-8"
            if code == 0
            else "remove the character, or write it as an escape inside double quotes",
        ) from None
    except yaml.YAMLError as exc:
        raise _error(f"invalid YAML: {exc}", Loc(file, 1, 1)) from None
    # (the builder's errors are those of single values, each read as written: see value_errors)
    if not builder.root_set or builder.root is None:
        raise _error(
            "expected a spec (a YAML mapping); received an empty document",
            Loc(file, 1, 1),
            hint="start from a zoo model (`extends: zoo:NAME`; `cnnspec zoo` lists them) or from a spec "
            "of the repository's specs/ folder",
        )
    if not isinstance(builder.root, dict):
        kind = "a list" if isinstance(builder.root, list) else "a single value"
        raise _error(
            f"expected a mapping at the top level; received {kind}",
            builder.locs.get((), Loc(file, 1, 1)),
            hint="a spec is a mapping with keys such as `cnnspec`, `name`, `input` and `model`",
        )
    return SourceDoc(file, builder.root, builder.locs, builder.key_locs, value_errors=builder.diags.errors)


def display_name(path: Path) -> str:
    """The file name shown in diagnostics: relative to the working directory when possible."""
    packaged = path.is_relative_to(zoo_dir())
    key = (str(path), os.getcwd()) if packaged else None
    if key is not None and key in _ZOO_NAMES:
        return _ZOO_NAMES[key]  # the zoo's files are named thousands of times by a zoo validate
    try:
        name = str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        name = str(path)
    if key is not None:
        _ZOO_NAMES[key] = name
    return name


#: Display names of packaged zoo files by (path, working directory): the package's files
#: do not move while the process runs, so each is resolved once per working directory.
_ZOO_NAMES: dict[tuple[str, str], str] = {}


def load_file(path: str | Path, *, defer: bool = False) -> SourceDoc:
    """Read and parse a spec file (at most :data:`MAX_BYTES`); ``defer``: see :func:`load_text`."""
    file_path = Path(path)
    name = display_name(file_path)
    # A file that cannot be read is named as the place of its error (line 1, column 1): JSON
    # gets its "file" and a GitHub annotation its file= like any other spec error.
    whole = Loc(name, 1, 1)
    try:
        # O_NONBLOCK: opening a named pipe must not wait for a writer (a hang in CI).
        fd = os.open(file_path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(mode):
                raise IsADirectoryError
            if not stat.S_ISREG(mode):
                raise SpecError.single(
                    f"expected a regular file; received a pipe, socket or device: {path}", whole, code="io"
                )
            raw = handle.read(MAX_BYTES + 1)
            # only the first MAX_BYTES + 1 bytes were read: the size-limit message needs the
            # file's own (a file in /proc says 0: decode_source then says "more than")
            size = os.fstat(fd).st_size
    except FileNotFoundError:
        # `-` is no spec on standard input here: a spec is a file (its lines locate errors)
        hint = (
            "specs are read from files, not standard input: save it and pass its path"
            if str(path) == "-"
            else MISSING_SPEC_HINT
            if not Path(path).is_absolute() and Path(path).parts[:1] in (("specs",), ("examples",))
            else None
        )
        raise SpecError.single(f"no such file: {path}", whole, code="io", hint=hint) from None
    except IsADirectoryError:
        raise SpecError.single(f"expected a file; received the directory {path}", whole, code="io") from None
    except OSError as exc:
        raise SpecError.single(f"cannot read {path}: {exc.strerror}", whole, code="io") from None
    text = decode_source(raw, name, size)
    return load_text(text, name, defer=defer)
