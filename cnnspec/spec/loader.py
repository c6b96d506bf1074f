"""Located YAML loading: text → plain values plus a table of line:column for every node.

The loader walks PyYAML's *event* stream (the safe parser, never a constructor), so it decides
every type itself: YAML 1.1 surprises (``yes``/``no``/``on``/``off``, ``010``, ``1:20``) are
errors instead of silent booleans and octals, tags are refused, duplicate keys name both lines,
and aliases are expanded under a node budget so a "billion laughs" file fails in milliseconds.
The walk uses an explicit stack, so deep nesting is an error, never a ``RecursionError``.
"""

from __future__ import annotations

import bisect
import math
import os
import re
import stat
import sys
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from cnnspec.errors import Diagnostic, Diagnostics, Loc, SpecError, SpecPath, format_path
from cnnspec.resources import zoo_dir

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
        if _names_an_id(path if at is None else at):  # never a boolean there: the fix is the quotes alone
            diags.error(
                f"expected an identifier; received a bare {text!r}, which YAML 1.1 reads as a boolean",
                loc,
                path,
                code="yaml-1.1",
                hint=f'quote it ("{text}"): an id is never a boolean, but unquoted YAML 1.1 reads it as one',
            )
            return text
        diags.error(
            f"expected true, false or a quoted string; received {text!r}, which YAML 1.1 reads as a boolean",
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
            raise _error(
                f"expected nesting of at most {MAX_DEPTH} levels; received deeper nesting",
                loc,
                path,
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
    cached = _PARSED.get((file, text))
    if cached is not None:
        _PARSED.move_to_end((file, text))
        if isinstance(cached, tuple):  # (diagnostics are frozen: the same ones, in their order)
            raise SpecError(cached, in_order=True)
        doc = _copy_doc(cached)
    else:
        try:
            doc = _load_text(text, file)
        except SpecError as failed:
            _remember(file, text, tuple(failed.diagnostics))
            raise
        _remember(file, text, _copy_doc(doc))
    if doc.value_errors and not defer:
        raise SpecError(doc.value_errors)
    return doc


def _remember(file: str, text: str, parsed: SourceDoc | tuple[Diagnostic, ...]) -> None:
    """Keep what parsing ``text`` gave (a document, or the errors it raised), the oldest
    forgotten past :data:`PARSE_CACHE_SIZE` texts or :data:`PARSE_CACHE_CHARS` characters."""
    _PARSED[(file, text)] = parsed
    # Summed here, not kept in a running total that a replaced cache (a test's) would put wrong:
    # a few hundred lengths cost nothing beside the parse that came before.
    chars = sum(len(kept) for _, kept in _PARSED)
    while len(_PARSED) > 1 and (len(_PARSED) > PARSE_CACHE_SIZE or chars > PARSE_CACHE_CHARS):
        chars -= len(_PARSED.popitem(last=False)[0][1])


def _copy_doc(doc: SourceDoc) -> SourceDoc:
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


#: What YAML counts as a line break besides ours (``\r\n``, ``\r``, ``\n``: the LSP's, and
#: every editor's): NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR, which may stand inside a
#: quoted string pasted from elsewhere.
_YAML_ONLY_BREAKS = ("\x85", "\u2028", "\u2029")
_YAML_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
LINE_BREAK = re.compile("\r\n|\r|\n")


def _load_text(text: str, file: str, at: SpecPath | None = None) -> SourceDoc:
    """:func:`_parse_text`, with its lines counted as editors count them (see
    :data:`_YAML_ONLY_BREAKS`): the YAML parser's marks would put every error after such a
    character one line too low, and past the end of the file for an editor."""
    if not any(ch in text for ch in _YAML_ONLY_BREAKS):
        return _parse_text(text, file, at)
    moved = _line_mapper(text)
    try:
        doc = _parse_text(text, file, at)
    except SpecError as exc:
        raise SpecError([replace(d, loc=moved(d.loc)) for d in exc.diagnostics]) from None
    doc.locs = {path: moved(loc) for path, loc in doc.locs.items()}
    doc.key_locs = {path: moved(loc) for path, loc in doc.key_locs.items()}
    doc.value_errors = [replace(d, loc=moved(d.loc)) for d in doc.value_errors]
    return doc


def _line_mapper(text: str) -> Callable[[Loc | None], Loc | None]:
    """Maps a location in YAML's lines to the same place in lines broken at ``\r\n``, ``\r``
    and ``\n`` only."""
    yaml_starts = [0, *(m.end() for m in _YAML_BREAK.finditer(text))]
    our_starts = [0, *(m.end() for m in LINE_BREAK.finditer(text))]

    def moved(loc: Loc | None) -> Loc | None:
        if loc is None or not 1 <= loc.line <= len(yaml_starts):
            return loc
        offset = yaml_starts[loc.line - 1] + loc.column - 1
        line = bisect.bisect_right(our_starts, offset) - 1
        return Loc(loc.file, line + 1, offset - our_starts[line] + 1)

    return moved


def _parse_text(text: str, file: str, at: SpecPath | None = None) -> SourceDoc:
    try:
        builder = _parse(text, file, at)
    except yaml.MarkedYAMLError as exc:
        explained = _explain_yaml_error(exc, text, file)
        if explained is None:
            problem = exc.problem or exc.context or "invalid YAML"
            raise _error(f"invalid YAML: {problem}", Loc(file, 1, 1), hint=_GENERIC_HINT) from None
        loc = Loc(file, explained.line + 1, explained.column + 1)
        raise _error(f"invalid YAML: {explained.problem}", loc, hint=explained.hint) from None
    except yaml.reader.ReaderError as exc:
        # A character YAML does not allow (NUL, most control characters): locate it, in
        # YAML's lines as the parser's marks are (_load_text maps them to ours).
        starts = [0, *(m.end() for m in _YAML_BREAK.finditer(text, 0, exc.position))]
        line = len(starts)
        column = exc.position - starts[-1] + 1
        code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        raise _error(
            f"expected printable text; received the control character U+{code:04X}",
            Loc(file, line, column),
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
            hint="start from one of the files in specs/",
        )
    if not isinstance(builder.root, dict):
        kind = "a list" if isinstance(builder.root, list) else "a single value"
        raise _error(
            f"expected a mapping at the top level; received {kind}",
            builder.locs.get((), Loc(file, 1, 1)),
            hint="a spec is a mapping with keys such as `cnnspec`, `name`, `input` and `model`",
        )
    return SourceDoc(file, builder.root, builder.locs, builder.key_locs, value_errors=builder.diags.errors)


# -- explaining PyYAML's errors ---------------------------------------------------------------
# PyYAML names the token it could not place, where it noticed it. A new user's mistake is usually
# elsewhere (a key without a colon a line above, a `{` opened lines before) and of a handful of
# kinds, so the source text around PyYAML's marks is read to say which one, and where.

#: The hint when nothing more specific fits.
_GENERIC_HINT = "check indentation and quoting"
#: The keys that stand beside a layer's kind in a list item (``- conv2d: {…}`` with an ``id``, its
#: ``inputs``, a ``when`` condition, ``trainable``): the one list the loader's hints, the resolver
#: and the language server read an item's kind key by.
ITEM_EXTRAS = ("id", "inputs", "when", "trainable")


def item_kind(item: Any) -> tuple[Any, Any]:
    """A layer item's kind key and its value (``None, None`` for an item with no one kind):
    a plain string, or the one key of a mapping besides :data:`ITEM_EXTRAS`."""
    if isinstance(item, str):
        return item, None
    if isinstance(item, dict):
        keys = [k for k in item if k not in ITEM_EXTRAS]
        if len(keys) == 1:
            return keys[0], item[keys[0]]
    return None, None


#: A key as a new user writes it: a word of letters, digits, ``_``, ``-`` and ``.``.
_WORD = re.compile(r"[A-Za-z_][\w.-]*")
#: A layer kind written before a flow collection without its colon: ``conv2d {filters: 8}``.
_KIND_BEFORE_FLOW = re.compile(r"([A-Za-z_][\w.-]*) +([{\[])")
#: ``key:value`` with no space after the colon (YAML reads it as one plain scalar).
_NO_SPACE_AFTER_COLON = re.compile(r"([A-Za-z_][\w.-]*):([^\s:].*)")
_CLOSERS = {"{": "}", "[": "]"}
#: Longest excerpt of the spec a hint quotes: a hint is one line (a minified spec may have
#: lines of a megabyte).
_EXCERPT = 60


@dataclass(frozen=True)
class _Explained:
    """What to report for a YAML error: the message after ``invalid YAML: ``, where (0-based
    line and column in YAML's lines, as PyYAML's marks are) and the hint."""

    problem: str
    line: int
    column: int
    hint: str


def _short(text: str) -> str:
    """``text`` cut to :data:`_EXCERPT` characters around an ellipsis, for a hint."""
    if len(text) <= _EXCERPT:
        return text
    return f"{text[: _EXCERPT // 2]}…{text[-(_EXCERPT // 2 - 1) :]}"


def _without_comment(line: str) -> str:
    """``line`` without its comment and trailing blanks. A ``#`` starts a comment at the start
    of the line or after a blank, outside quotes (``'…'`` and ``"…"`` that start a token)."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            if char == quote and (quote == "'" or line[index - 1] != "\\"):
                quote = ""
        elif char in "'\"" and (index == 0 or line[index - 1] in " \t{[,:"):
            quote = char
        elif char == "#" and (index == 0 or line[index - 1] in " \t"):
            return line[:index].rstrip()
    return line.rstrip()


def _indent(line: str) -> int:
    """How many blanks ``line`` starts with (YAML indents with spaces only)."""
    return len(line) - len(line.lstrip(" "))


def _item_body(text: str) -> tuple[str, bool]:
    """``text`` (a line without its indentation) without the ``- `` that makes it a list item,
    and whether it had one."""
    if text.startswith("- ") or text == "-":
        return text[1:].lstrip(" "), True
    return text, False


def _content_line(lines: list[str], start: int, step: int) -> int | None:
    """The index of the nearest line from ``start`` (going by ``step``) with more than blanks
    and a comment on it."""
    index = start
    while 0 <= index < len(lines):
        if _without_comment(lines[index]).strip():
            return index
        index += step
    return None


def _quoted(text: str) -> str:
    """``text`` as a quoted YAML scalar: double quotes, or single ones when it holds a ``"``
    or a backslash (which double quotes would read as an escape)."""
    if '"' not in text and "\\" not in text:
        return f'"{text}"'
    return "'" + text.replace("'", "''") + "'"


def _expression_at(line: str, start: int, in_flow: bool = False) -> tuple[str, bool]:
    """The ``${…}`` written at ``line[start:]`` to its matching ``}``, and whether it has one.
    Without one it runs to the line's end, or inside a flow collection (``in_flow``) to the
    first ``,``, ``]`` or ``}`` outside its own brackets and quotes: the collection's, not
    the expression's (``{filters: ${w, kernel_size: 3}``)."""
    depth = 0
    index = start + 1
    while index < len(line):
        char = line[index]
        if char in "'\"" and depth > 0:
            index = _after_quoted(line, index)
            continue
        if char in "{[(":
            depth += 1
        elif char in "}])":
            depth -= 1
            if depth == 0 and char == "}":
                return line[start : index + 1], True
            if depth <= 0:
                break  # a `]` or `)` that closes nothing of the expression's
        elif char == "," and depth == 1 and in_flow:
            break
        index += 1
    if in_flow:
        return line[start:index].rstrip(), False
    return _without_comment(line[start:]), False


def _is_closed(text: str, start: int) -> bool:
    """Whether the ``{`` or ``[`` at ``text[start]`` is ever closed: brackets are counted to
    the end of the text, outside comments and quoted scalars, as a flow collection nests."""
    depth = 0
    index = start
    end = len(text)
    while index < end:
        char = text[index]
        before = text[index - 1] if index > start else " "
        if char == "#" and before in " \t\r\n":
            newline = _YAML_BREAK.search(text, index)
            index = end if newline is None else newline.start()
            continue
        if char in "'\"" and before in " \t\r\n{[,:":
            index = _after_quoted(text, index)
            continue
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return True
        index += 1
    return False


def _after_quoted(text: str, start: int) -> int:
    """The index after the quoted scalar opened at ``text[start]`` (the text's end when it is
    never closed). A single-quoted ``''`` and a double-quoted ``\\"`` do not close it."""
    quote = text[start]
    index = start + 1
    while index < len(text):
        char = text[index]
        if quote == '"' and char == "\\":
            index += 2
            continue
        if char == quote:
            if quote == "'" and text.startswith("''", index):
                index += 2
                continue
            return index + 1
        index += 1
    return len(text)


def _explain_yaml_error(exc: yaml.MarkedYAMLError, text: str, file: str) -> _Explained | None:
    """What to report for PyYAML's ``exc`` on ``text``, read from the text around its marks;
    ``None`` when it has no mark at all."""
    problem = exc.problem or exc.context or "invalid YAML"
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return None
    lines = _YAML_BREAK.split(text)
    default = _Explained(problem, mark.line, mark.column, _GENERIC_HINT)
    context, at = exc.context_mark, exc.problem_mark
    found: _Explained | None = None
    if "mapping values are not allowed" in problem and at is not None:
        found = _mapping_value(lines, at.line, at.column, problem)
    elif exc.context == "while scanning a simple key" and context is not None:
        found = _key_without_colon(lines, context.line, context.column, problem)
    elif exc.context in ("while parsing a flow mapping", "while parsing a flow sequence"):
        if context is not None and at is not None:
            found = _flow_error(text, lines, context, at, problem, file)
    elif exc.context == "while parsing a block mapping" and context is not None and at is not None:
        found = _kind_before_flow(lines, context.line, context.column, at.line)
    elif "'\\t'" in problem and at is not None and at.line < len(lines):
        indentation = not lines[at.line][: at.column].strip()
        hint = (
            "YAML does not allow tabs for indentation; use spaces"
            if indentation
            else "use a space instead of the tab"
        )
        found = _Explained(problem, at.line, at.column, hint)
    elif (
        exc.context == "while scanning a quoted scalar" and context is not None and "end of stream" in problem
    ):
        opened = _editor_position(text, file, context.line, context.column)
        quote = '`"`' if text[context.index : context.index + 1] == '"' else "`'`"
        found = _Explained(problem, mark.line, mark.column, f"the {quote} opened at {opened} is never closed")
    return found or default


def _editor_position(text: str, file: str, line: int, column: int) -> str:
    """``LINE:COL`` (1-based) in an editor's lines of the place at 0-based ``line``, ``column``
    in YAML's: a hint names it as the message's location is named (see :func:`_load_text`)."""
    loc = (
        _line_mapper(text)(Loc(file, line + 1, column + 1))
        if any(ch in text for ch in _YAML_ONLY_BREAKS)
        else None
    )
    return f"{loc.line}:{loc.column}" if loc is not None else f"{line + 1}:{column + 1}"


#: A place a hint names, as :func:`_editor_position` writes it (``the `{` opened at 2:8``).
_NAMED_POSITION = re.compile(r"(opened at )(\d+):(\d+)")


def moved_hint(hint: str | None, move: Callable[[Loc], Loc]) -> str | None:
    """``hint`` with each place it names (see :func:`_editor_position`) moved as ``move`` moves a
    location: a text parsed inside another (a ``--set`` value after the key put before it)
    is reported in the other's lines and columns, and so must its hint be."""
    if hint is None:
        return None

    def moved(match: re.Match[str]) -> str:
        loc = move(Loc("", int(match.group(2)), int(match.group(3))))
        return f"{match.group(1)}{loc.line}:{loc.column}"

    return _NAMED_POSITION.sub(moved, hint)


def _mapping_value(lines: list[str], line: int, column: int, problem: str) -> _Explained | None:
    """PyYAML's "mapping values are not allowed here": a ``: `` it could not take as a key's.

    On a line with a key before it, the value holds a second ``: ``: an unquoted expression,
    a nested mapping written inline (``dropout: rate: 0.3``) or text to quote. With none,
    this line's key is fine and the line above made its value a plain scalar that runs on
    into it: a kind without its colon (``- flatten`` above ``id:``), ``key:value`` or a key
    without any colon."""
    if line >= len(lines):
        return None
    source = lines[line]
    head, in_item = _item_body(source[:column].lstrip(" "))
    key, separator, value = head.partition(": ")
    if separator:
        value = value.strip()
        name = _short(key.strip())
        # what follows the second `: ` (an ellipsis when the value goes on the lines below)
        rest = _short(_without_comment(source[column + 1 :]).strip() or "…")
        if _KIND_BEFORE_FLOW.match(key.strip()):
            # `- conv2d {filters: 8, kernel_size: 3}`: the key is `conv2d {filters`
            key_start = column - len(head) + len(key) - len(key.lstrip(" "))
            found = _kind_before_flow(lines, line, key_start, line)
            if found is not None:
                return found
        if value.startswith("${"):
            expression, _ = _expression_at(source, source.find("${", column - len(head) + len(key)))
            hint = f"quote the expression: `{_short(_quoted(expression))}`"
        elif _WORD.fullmatch(value) and _WORD.fullmatch(key.strip()):
            nested = f"{name}: {{{_short(value)}: {rest}}}"
            hint = (
                f"write `{nested}` or `{name}: {rest}`"
                if in_item
                else f"write `{nested}` to nest a mapping, or quote the text: "
                f"`{name}: {_quoted(_short(f'{value}: {rest}'))}`"
            )
        else:
            hint = f"quote a value that contains `: `: `{name}: {_quoted(_short(f'{value}: {rest}'))}`"
        return _Explained(problem, line, column, hint)
    above = _content_line(lines, line - 1, -1)
    if above is None:
        return None
    written = _without_comment(lines[above])
    body, item = _item_body(written.lstrip(" "))
    key = head.strip()
    if item and _WORD.fullmatch(body):
        if key in ITEM_EXTRAS:
            hint = (
                "to give a layer `id`, `inputs` or `when`, write its kind with a colon "
                "(`- flatten:`) and put those keys on the following lines"
            )
        else:
            hint = (
                f"write the kind with a colon (`- {body}:`) and indent its parameters further than `{body}`"
            )
        return _Explained(problem, line, column, hint)
    if item or not _starts_a_key(lines, above):
        return None
    start = _indent(written)
    spaced = _missing_space(body, above, start)
    if spaced is not None:
        return spaced
    word = _WORD.match(body)
    if ":" in body or word is None:
        return None
    rest = body[word.end() :].strip()
    if len(rest.split()) > 1:
        # several words: text running on from a `key:` above, not a key without its colon
        return _quote_running_text(lines, above, line, column, problem)
    fixed = f"{word.group()}: {_short(rest)}" if rest else f"{word.group()}:"
    return _Explained(f"missing `:` after `{word.group()}`", above, start + word.end(), f"write `{fixed}`")


def _missing_space(text: str, line: int, column: int) -> _Explained | None:
    """``key:value`` written at ``line``, ``column`` (``epochs:40``): a key without the space
    YAML needs after its colon, located at the colon; ``None`` for other text."""
    spaced = _NO_SPACE_AFTER_COLON.fullmatch(text)
    if spaced is None:
        return None
    name, after = spaced.groups()
    return _Explained(
        f"missing space after `:` in `{_short(text)}`",
        line,
        column + len(name),
        f"YAML needs a space after the colon: `{name}: {_short(after)}`",
    )


def _quote_running_text(
    lines: list[str], first: int, line: int, column: int, problem: str
) -> _Explained | None:
    """PyYAML's location, for a plain value that starts at ``lines[first]`` below a bare
    ``key:`` and holds the ``: `` at ``line``, ``column``: the hint quotes the whole value.
    ``None`` (the generic hint) when no bare key is above it."""
    above = _content_line(lines, first - 1, -1)
    if above is None:
        return None
    body, _ = _item_body(_without_comment(lines[above]).lstrip(" "))
    key = body[:-1]
    if not body.endswith(":") or not _WORD.fullmatch(key):
        return None
    words = [_without_comment(lines[index]).strip() for index in range(first, line + 1)]
    value = " ".join(word for word in words if word)
    return _Explained(
        problem, line, column, f"quote a value that contains `: `: `{key}: {_quoted(_short(value))}`"
    )


def _starts_a_key(lines: list[str], index: int) -> bool:
    """Whether the line at ``index`` starts a mapping entry rather than continuing the plain
    value of the line above it (``description: a long`` then ``  text``): a line after a key
    with a value that is less indented continues that value."""
    above = _content_line(lines, index - 1, -1)
    if above is None:
        return True
    written = _without_comment(lines[above])
    body, item = _item_body(written.lstrip(" "))
    start = _indent(written) + (len(written.lstrip(" ")) - len(body) if item else 0)
    if start >= _indent(lines[index]):
        return True
    return body.endswith(":") or body.endswith((": |", ": >", ": |-", ": >-"))


def _key_without_colon(lines: list[str], line: int, column: int, problem: str) -> _Explained | None:
    """PyYAML's "could not find expected ':'": it read a key at its context mark (a word at the
    indentation of a mapping's keys) and noticed the missing colon only at the next token,
    often lines below after comments. ``key:value`` is a key without the space after its
    colon; a word is a list item without its ``- `` when an item beside it is one at its
    indentation and no line below is indented further (its children), else a key without its
    colon."""
    if line >= len(lines):
        return None
    written = _without_comment(lines[line][column:])
    spaced = _missing_space(written, line, column)
    if spaced is not None:
        return spaced
    below = _content_line(lines, line + 1, 1)
    # lines indented further below the word are its children: it is a key, not a list item
    has_children = below is not None and _indent(_without_comment(lines[below])) > column
    for index in (_content_line(lines, line - 1, -1), below):
        if index is None or has_children:
            continue
        neighbour = _without_comment(lines[index])
        if _indent(neighbour) == column and _item_body(neighbour.lstrip(" "))[1]:
            return _Explained(problem, line, column, f"start each list item with `- `: `- {_short(written)}`")
    word = _WORD.match(written)
    if word is None:
        return _Explained(problem, line, column, _GENERIC_HINT)
    rest = written[word.end() :].strip()
    fixed = f"{word.group()}: {_short(rest)}" if rest else f"{word.group()}:"
    return _Explained(problem, line, column, f"add a colon after the key: `{fixed}`")


def _flow_error(
    text: str, lines: list[str], context: yaml.Mark, at: yaml.Mark, problem: str, file: str
) -> _Explained | None:
    """PyYAML's "expected ',' or '}'" inside ``{…}`` or ``[…]``: an unquoted ``${…}`` (whose ``{``
    opens a mapping) or a bracket never closed, which PyYAML notices lines later. The
    location stays PyYAML's (the first token that cannot belong); the hint names the bracket's."""
    if at.line < len(lines) and 0 < at.column < len(lines[at.line]):
        source = lines[at.line]
        if source[at.column] == "{" and source[at.column - 1] == "$":
            expression, closed = _expression_at(source, at.column - 1, in_flow=True)
            if closed:
                hint = f"quote the expression: `{_short(_quoted(expression))}`"
            else:
                hint = (
                    f"`{_short(expression)}` is missing its closing `}}`; quote the expression: "
                    f"`{_short(_quoted(expression + '}'))}`"
                )
            return _Explained(problem, at.line, at.column, hint)
    opener = text[context.index : context.index + 1]
    if opener in _CLOSERS and not _is_closed(text, context.index):
        opened = _editor_position(text, file, context.line, context.column)
        return _Explained(
            problem,
            at.line,
            at.column,
            f"the `{opener}` opened at {opened} is never closed; close it with `{_CLOSERS[opener]}`",
        )
    return None


def _kind_before_flow(lines: list[str], line: int, column: int, problem_line: int) -> _Explained | None:
    """PyYAML's "expected <block end>, but found ','" on the line of a block mapping whose key is a
    word, a blank and ``{``: a layer kind without its colon (``- conv2d {filters: 8, …}``, read
    as the plain key ``conv2d {filters``). Reported where the colon belongs."""
    if line != problem_line or line >= len(lines):
        return None
    found = _KIND_BEFORE_FLOW.match(lines[line], column)
    if found is None:
        return None
    kind, bracket = found.groups()
    return _Explained(
        f"missing `:` after `{kind}`",
        line,
        column + len(kind),  # where the colon belongs, as for a key written without one
        f"write `{kind}: {bracket}…{_CLOSERS[bracket]}`: a key needs `: ` before its value",
    )


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
            else None
        )
        raise SpecError.single(f"no such file: {path}", whole, code="io", hint=hint) from None
    except IsADirectoryError:
        raise SpecError.single(f"expected a file; received the directory {path}", whole, code="io") from None
    except OSError as exc:
        raise SpecError.single(f"cannot read {path}: {exc.strerror}", whole, code="io") from None
    text = decode_source(raw, name, size)
    return load_text(text, name, defer=defer)
