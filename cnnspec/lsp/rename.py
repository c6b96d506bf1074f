"""Rename (``textDocument/prepareRename`` and ``textDocument/rename``) of the names a spec declares.

What is renamable, and what a rename rewrites:

- an **id** (``id: stem``, a block's declared input, a name a repeat ``carry``-s): its
  declaration and every reference that means it, by the resolver's scoping rules
  (:mod:`cnnspec.lsp.scopes`): ``inputs:`` (a list, a scalar, a call's mapping), ``outputs:``,
  ``carry``/``next`` values and ``next`` keys, each segment of a hierarchical name that leads
  to it (``c0.x``, ``"c0[1]"``, ``loop[1].m``: only that segment changes, wherever the name is
  written, the model or a block), the freeze/unfreeze patterns that name it (exactly, or as a
  segment of a hierarchical pattern: ``stem.conv``), a ``search.space`` key that sets a
  parameter by its id (``head.rate``), and, for a model output's id, the keys that name the
  output (:data:`OUTPUT_KEYED`: ``training.outputs.cnt``, the ``shapes`` target's ``cnt:``,
  and the ``cnt`` of a ``search.space`` path ``training.outputs.cnt.loss_weight``; asked on
  one of those keys, the output's id). Asked on a backbone item's ``until:`` (plain or dotted,
  ``until: blk.c``), the id its segment under the cursor leads to in the backbone's spec, as
  the resolver's cut looks it up (``blk`` in that spec, ``c`` in the block ``blk`` calls): the
  same rename as from the declaration, with the backbone's spec (and the file declaring the
  id) rewritten as the declaring spec is. A segment that is no id there (a call's automatic
  name, a layer's compiler-given name, a ``zoo:`` model's cut point) is refused, saying which;
- a **block**: its key under ``blocks:`` and every call (``- double: …``, ``- double``), in
  every file the composed spec reads (a ``use:`` library, the spec), and the automatic names
  of its calls where a reference or pattern spells them (``double_1.c`` → ``dbl_1.c``: the
  resolver's counter is per block name, so it is the same);
- a **var**: its key under ``vars:`` and each ``${…}`` expression that reads it (only whole
  names the expression parser reads as that var: ``${width * 2}``, not ``widths``, a string
  literal, a comment, nor a block parameter or loop variable of the same name), and the
  ``search.space`` key ``vars.NAME``. Asked on the key under a backbone item's ``vars:``
  (``width`` of ``vars: {width: 8}``), the var of the backbone's spec it sets, as from its
  declaration;
- a block's **parameter**: its key under ``params:``, the expressions of that block that read
  it, and the keyword at each call of the block (``- double: {filters: 8}``);
- a repeat's **loop variable** (``as: i``) and the expressions of its layers that read it.

Every file a rename touches must be editable: a name declared or used in the packaged zoo
(``cnnspec/zoo``) is refused. The other specs that read the file of the declaration (a
library's other users, a base spec's other children) are rewritten too: the open ones
(``others``) and, given the workspace's folders, those on disk
(:mod:`cnnspec.lsp.workspace`: an open document's editor text wins over its disk text); one
that declares the name again (a child spec overriding a var) makes the rename refused. So is
another spec's backbone of that file: its ``until:`` naming the renamed id (each segment that
leads to it) and the key under its ``vars:`` setting the renamed var. The spec such a backbone
item names, when it reads the file, is read too (:func:`backbone_specs`), open or not, in the
workspace or not: a spec reads its backbone's spec, so the rename rewrites and checks it as
the others (its own patterns and references are no part of the cutting spec's model, whose
compiled check could not see them broken). A workspace with more spec files than are scanned
makes the rename refused (it could not cover them all).

Refused (:func:`target` gives ``None``, so ``prepareRename`` answers that nothing can be
renamed there): a layer kind, a layer's parameter, a combinator, a glob pattern, a comment, an
implicit name (``in_channels``), an automatic name, a generated id (``id: "c${i}"``), the
model's input (``input``).

The new name must be an identifier (:data:`cnnspec.spec.scope.IDENTIFIER`, ASCII) that
``${…}`` can read for a var, parameter or loop variable
(:func:`cnnspec.spec.expr.unreadable_name`), neither ``input`` nor the model input's name for
an id, no reserved word (:data:`~cnnspec.spec.scope.RESERVED_BLOCK_NAMES`) nor layer kind for
a block (the resolver refuses both: an item ``- conv2d`` never calls a block), and no name
already declared where the renamed one is (ids of the same id scope, blocks, vars, the block's
parameters), nor one an expression that the rename touches would then read instead.

**The safe behaviour for what text cannot tell**: a rename is checked by compiling every spec
it touches before and after (TF-free, milliseconds): the rewritten spec must compile, to the
same model up to names (the same layers, kinds, parameters, shapes, counts, wiring and
outputs), and every freeze/unfreeze pattern must cover the same layers as before. A glob
pattern is never rewritten; when the rename would change what a glob covers (``stem*`` once
``stem`` is ``base``), or a reference the text cannot follow (a pattern naming an automatic
layer name, a quoted name with escapes) would break, the rename is refused with
:class:`RenameError`, whose message names the pattern or the place: the editor shows it and
nothing is changed. A spec that does not compile before the rename is refused too: nothing
could tell what the rename changes.

Not followed: files outside the workspace's folders that no open spec is (or reads), a spec
that already does not compile (left as it is, as an open one is; the log says which),
``--set`` options (they are on command lines, not in files), an ``npz`` file's array names
(``y_train_cnt``: data, not spec text), a monitored metric's name (``val_cnt_loss``: the
compiled check refuses the rename) and names through another spec's backbone item
(``body.conv4``, ``until: double_1.c`` after a block rename): the last make the compiled check
fail, so such a rename is refused rather than half done.

Positions here are code points (:class:`Replacement`); the server converts them to the
encoding agreed with the client.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnspec.analysis.freezing import Patterns
from cnnspec.errors import Loc, SpecError, SpecPath, format_path
from cnnspec.ir import INPUT, ModelIR
from cnnspec.layers.registry import REGISTRY
from cnnspec.lsp import navigation, workspace
from cnnspec.lsp.documents import SearchRun, check, is_library, path_of, source_text
from cnnspec.lsp.locate import Cursor, item_path, kind_of, path_at, value_at
from cnnspec.lsp.names import names_at
from cnnspec.lsp.patterns import PatternNames, is_glob, pattern_at, written_patterns
from cnnspec.lsp.scopes import Automatic, block_inputs, is_block_input, root_of
from cnnspec.lsp.segments import lookup, segment_at, segments
from cnnspec.lsp.text import in_expression, word_at
from cnnspec.resources import zoo_dir
from cnnspec.spec.backbone import KIND as BACKBONE
from cnnspec.spec.compose import Reader, load_library
from cnnspec.spec.expr import EMBEDDED_EXPRESSION, FULL_EXPRESSION, FUNCTIONS, unreadable_name
from cnnspec.spec.loader import LINE_BREAK, SOURCE_TEXTS, SourceDoc, load_text
from cnnspec.spec.scope import COMBINATORS, IDENTIFIER, RESERVED_BLOCK_NAMES
from cnnspec.spec.varchoices import KEY as VAR_CHOICES
from cnnspec.spec.zoo import is_zoo_ref

log = logging.getLogger("cnnspec.lsp")

#: The text of a file by its name as locations spell it (``None``: unknown).
TextOf = Callable[[str], str | None]
#: Another open spec (its composed document) and the automatic names of its block calls.
Other = tuple[SourceDoc, Automatic | None]

#: What can be renamed.
ID, BLOCK, VAR, PARAMETER, LOOP = "id", "block", "var", "parameter", "loop variable"

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: A hierarchical name as a pattern spells it: ``st[1].inner``'s brackets are an iteration.
_HIERARCHICAL = re.compile(r"[^*?\[\]]+(?:\[\d+\][^*?\[\]]*)*")
#: The sections keyed by the model's output names (an output item's id): each output's training
#: settings and the ``shapes`` source's target per output. (An ``npz`` file's array names are
#: data, not spec text: not rewritten; a rename that leaves them apart is refused by its check.)
OUTPUT_KEYED: tuple[SpecPath, ...] = (("training", "outputs"), ("data", "source", "shapes", "target"))


class RenameError(Exception):
    """A rename refused, with the reason the editor shows."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Replacement:
    """Replace code points ``start``…``end`` of 0-based ``line`` of ``file`` with ``text``."""

    file: str
    line: int
    start: int
    end: int
    text: str


#: The range of a symbol before it is matched to a place under the cursor (:func:`target`).
_NOWHERE = Replacement("", 0, 0, 0, "")


@dataclass(frozen=True)
class Symbol:
    """A renamable name: what it is, its name, where it is declared, the block of a parameter,
    and the range of the name under the cursor (its ``text``: the name)."""

    what: str
    name: str
    declared: Loc
    at: Replacement
    block: str | None = None


# -- reading the text ---------------------------------------------------------------------------
def default_text(file: str) -> str | None:
    """The text of ``file`` the loader last read (that of the locations), else the disk's."""
    text = source_text(file)
    if text is not None:
        return text
    try:
        return path_of(file).read_text("utf-8")
    except (OSError, UnicodeDecodeError, ValueError):
        return None


class _Texts:
    """The lines of each file, read once through ``text_of``."""

    def __init__(self, text_of: TextOf) -> None:
        self.text_of = text_of
        self.cache: dict[str, list[str] | None] = {}

    def line(self, file: str, line: int) -> str | None:
        if file not in self.cache:
            text = self.text_of(file)
            self.cache[file] = LINE_BREAK.split(text) if text is not None else None
        lines = self.cache[file]
        return lines[line] if lines is not None and 0 <= line < len(lines) else None

    def start(self, loc: Loc, written: str) -> int | None:
        """The code-point column where ``written`` starts at ``loc`` (plain, or just inside a
        quote), else ``None`` (escaped, folded or another text)."""
        line = self.line(loc.file, loc.line - 1)
        column = loc.column - 1
        if line is None:
            return None
        if line.startswith(written, column):
            return column
        if line[column : column + 1] in ("'", '"') and line.startswith(written, column + 1):
            return column + 1
        return None


def _place(loc: Loc) -> str:
    return f"{loc.file}:{loc.line}:{loc.column}"


# -- what is under the cursor -------------------------------------------------------------------
def target(
    doc: SourceDoc,
    cursor: Cursor,
    line_text: str,
    column: int,
    automatic: Automatic | None = None,
    text_of: TextOf = default_text,
    row: int | None = None,
    reader: Reader | None = None,
) -> Symbol | None:
    """The renamable name under the cursor (``column``: 0-based code points of ``line_text``,
    on 0-based line ``row``, by default the cursor's location's), or ``None`` where nothing can
    be renamed: the name's range must be one of the places a rename rewrites (so a cursor
    between names, on ``c0[1]``'s index, gets nothing), and none of them may be in the zoo.
    On a backbone item's ``until:``, the id of the backbone's spec (read through ``reader``,
    the editor's text of an open file) that the segment under the cursor leads to; on a key
    under its ``vars:``, the var of that spec it sets."""
    try:
        if navigation.is_until(doc, cursor):
            symbol = _until_target(doc, cursor, line_text, column, reader)
        else:
            symbol = (
                _backbone_var_target(doc, cursor, reader)
                or _variant_var_target(doc, cursor, column, row, text_of)
                or output_key_symbol(doc, cursor, column, automatic)
                or _target(doc, cursor, line_text, column, automatic)
            )
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    if symbol is None:
        return None
    texts = _Texts(text_of)
    try:
        places = _places(doc, symbol, automatic, texts)
        # (an id or var of a backbone's spec: where this spec's `until:` or `vars:` names it)
        for item, model in _cutting(doc, symbol.declared.file, reader):
            places += _cut_places(doc, item, model, symbol, texts)
    except RenameError:
        return None
    row = cursor.loc.line - 1 if row is None else row
    zoo = _zoo_root()
    files = [symbol.declared.file, *(place.file for place in places)]
    if zoo is not None and any(path_of(file).is_relative_to(zoo) for file in files):
        return None  # the packaged zoo is not the user's to edit
    for place in places:
        if place.file == cursor.loc.file and place.line == row and place.start <= column <= place.end:
            return Symbol(symbol.what, symbol.name, symbol.declared, place, symbol.block)
    return None


def _backbone_var_target(doc: SourceDoc, cursor: Cursor, reader: Reader | None) -> Symbol | None:
    """On a key under a backbone item's ``vars:``: the var of the backbone's spec it sets
    (:func:`cnnspec.lsp.navigation.backbone_var`)."""
    found = navigation.backbone_var(doc, cursor, reader)
    return Symbol(VAR, found[0], found[1], _NOWHERE) if found is not None else None


def _variant_var_target(
    doc: SourceDoc, cursor: Cursor, column: int, row: int | None, text_of: TextOf
) -> Symbol | None:
    """On a family file's own ``vars:`` key (or a ``variants`` row's) of a var that the variant
    built overrides: that var. The composed document declares such a var at the variant's row
    (:func:`_variant_row`), so the cursor's path there is not the key's; the file as written
    (``text_of``) says which key is under the cursor (``column`` on 0-based line ``row``)."""
    own = _own_doc(cursor.loc.file, text_of)
    if own is None or not isinstance(own.data.get("variants"), dict):
        return None
    row = cursor.loc.line - 1 if row is None else row
    here = path_at(own, cursor.loc.file, row + 1, column + 1)
    if here is None or not here.on_key or not isinstance(here.path[-1], str):
        return None
    path, name = here.path, here.path[-1]
    if path != ("vars", name) and not (len(path) == 4 and path[0] == "variants" and path[2] == "vars"):
        return None
    declared = doc.key_locs.get(("vars", name))
    if declared is None:
        return None
    symbol = Symbol(VAR, name, declared, _NOWHERE)
    return symbol if _variant_row(own, symbol) else None


def _target(
    doc: SourceDoc, cursor: Cursor, line_text: str, column: int, automatic: Automatic | None
) -> Symbol | None:
    path = cursor.path
    if not cursor.on_key and in_expression(line_text, column):
        word = word_at(line_text, column)
        name = names_at(doc, path).get(word[0]) if word is not None else None
        what = {"var": VAR, "parameter": PARAMETER, "loop variable": LOOP}.get(name.what) if name else None
        if name is None or what is None or name.loc is None:
            return None
        block = str(name.path[1]) if what == PARAMETER else None
        return Symbol(what, name.name, name.loc, _NOWHERE, block)
    block = navigation.block_at(doc, cursor)
    if block is not None:
        loc = doc.key_locs.get(("blocks", block))
        return Symbol(BLOCK, block, loc, _NOWHERE) if loc is not None else None
    pattern = pattern_at(doc, path, cursor.on_key)  # (a learning_rate_scale's key is one)
    if cursor.on_key and pattern is None:
        return _key_target(doc, cursor, line_text, column, automatic)
    if len(path) >= 2 and path[-1] == "as" and path[-2] == "repeat":
        var = value_at(doc, path)
        loc = doc.locs.get(path)
        return Symbol(LOOP, var, loc, _NOWHERE) if isinstance(var, str) and loc is not None else None
    if pattern is not None:
        if not _named(pattern):
            return None
        return _segment_target(doc, ("outputs",), pattern, cursor, line_text, column, automatic)
    if (path and path[-1] == "id") or is_block_input(path):
        value = value_at(doc, path)
        loc = doc.locs.get(path)
        if not isinstance(value, str) or "${" in value or loc is None:
            return None
        return Symbol(ID, value, loc, _NOWHERE)
    ref = navigation.reference_at(doc, cursor)
    if ref is not None:
        return _segment_target(doc, path, ref, cursor, line_text, column, automatic)
    return None


def _key_target(
    doc: SourceDoc, cursor: Cursor, line_text: str, column: int, automatic: Automatic | None
) -> Symbol | None:
    path = cursor.path
    loc = doc.key_locs.get(path)
    if loc is None:
        return None
    if len(path) == 2 and path[0] == "vars" and isinstance(path[1], str):
        return Symbol(VAR, path[1], loc, _NOWHERE)
    if len(path) == 2 and path[0] == VAR_CHOICES and isinstance(path[1], str):
        declared = doc.key_locs.get(("vars", path[1]))  # the choices of a var: rename the var
        return Symbol(VAR, path[1], declared, _NOWHERE) if declared is not None else None
    if len(path) == 4 and path[0] == "blocks" and path[2] == "params" and isinstance(path[3], str):
        return Symbol(PARAMETER, path[3], loc, _NOWHERE, str(path[1]))
    if navigation.carry_key_at(cursor):
        return Symbol(ID, str(path[-1]), loc, _NOWHERE)
    if len(path) == 3 and path[:2] == ("search", "space") and isinstance(path[2], str):
        return _space_target(doc, path[2], loc, column)
    item = item_path(path)
    if item is not None and len(path) == len(item) + 2 and isinstance(path[-1], str):
        kind = kind_of(doc, item)
        blocks = doc.data.get("blocks")
        params = (
            value_at(doc, ("blocks", kind, "params")) if isinstance(blocks, dict) and kind in blocks else None
        )
        if path[-2] == kind and isinstance(params, dict) and path[-1] in params:
            declared = doc.key_locs.get(("blocks", kind, "params", path[-1]))
            return Symbol(PARAMETER, path[-1], declared, _NOWHERE, kind) if declared is not None else None
    ref = navigation.reference_at(doc, cursor)  # a `next` key: the carried name
    if ref is not None:
        return _segment_target(doc, path, ref, cursor, line_text, column, automatic)
    return None


def _until_model(
    doc: SourceDoc, cursor: Cursor, reader: Reader | None, zoo: bool = False
) -> tuple[SpecPath, SourceDoc] | None:
    """The backbone item (its body's path) whose ``until:`` is under the cursor, with its
    spec's composed document (read through ``reader``), as :func:`_cutting` reads it; ``None``
    for a ``zoo:`` spec (no user's file; unless ``zoo``) or one that cannot be read."""
    from cnnspec.lsp.completion import backbone_doc

    item = item_path(cursor.path)
    if item is None:
        return None
    body = (*item, BACKBONE)
    ref, loc = value_at(doc, (*body, "spec")), doc.locs.get((*body, "spec"))
    if not isinstance(ref, str) or loc is None or (is_zoo_ref(ref) and not zoo):
        return None
    if not is_zoo_ref(ref) and loc.file.startswith("<"):
        return None
    model = backbone_doc(ref, Path(loc.file), reader)
    return (body, model) if model is not None else None


def _until_target(
    doc: SourceDoc, cursor: Cursor, line_text: str, column: int, reader: Reader | None
) -> Symbol | None:
    """The id that the segment of a backbone item's ``until:`` under the cursor leads to in
    the backbone's spec, as the resolver looks it up there (the model's scope after its last
    item, at the item's vars: :func:`_cut_places`); ``None`` for what is no renamable id (an
    automatic name, a layer's name, the model's input): :func:`_until_refusal` says which."""
    until = value_at(doc, cursor.path)
    found = _until_model(doc, cursor, reader)
    if found is None or not isinstance(until, str):
        return None
    body, model = found
    automatic = _backbone_names(doc, body, model)
    return _segment_target(model, ("outputs",), until, cursor, line_text, column, automatic)


def _until_refusal(doc: SourceDoc, cursor: Cursor, line_text: str, column: int, reader: Reader | None) -> str:
    """Why the ``until:`` segment under the cursor cannot be renamed (:func:`_until_target`
    found no id, or :func:`target` refused it)."""
    until = value_at(doc, cursor.path)
    item = item_path(cursor.path)
    ref = value_at(doc, (*item, BACKBONE, "spec")) if item is not None else None
    head = f"cannot rename at `until: {until}`"
    if isinstance(ref, str) and is_zoo_ref(ref):
        return f"{head}: it names a cut point of the packaged zoo model {ref}, which is not yours to edit"
    found = _until_model(doc, cursor, reader)
    if found is None or not isinstance(until, str):
        return f"{head}: the backbone's spec {ref!r} cannot be read (its diagnostic says why)"
    body, model = found
    automatic = _backbone_names(doc, body, model)
    segment = segment_at(until, cursor, line_text, column)
    if segment is None:
        return f"{head}: only a name of it is renamed, not an index"
    name = until[segment[0] : segment[1]]
    declared = navigation.find_reference(model, ("outputs",), lookup(until[: segment[1]]), automatic)
    if declared is None:
        return (
            f"cannot rename `{name}`: in {model.file} it is no id but the name the compiler gives a "
            "layer (or nothing the cut finds); only an id is renamed"
        )
    call = _automatic_call(model, declared)
    if call is not None:
        return (
            f"cannot rename `{name}`: it is the automatic name of a call of block `{call}` in "
            f"{model.file}; rename the block (the calls' names follow it)"
        )
    if declared == model.key_locs.get(("input",)):
        return f"cannot rename `{name}`: it is the model's input of {model.file}"
    zoo = _zoo_root()
    if zoo is not None and path_of(declared.file).is_relative_to(zoo):
        return (
            f"cannot rename `{name}`: it is declared in the packaged zoo file {declared.file}, "
            "which is not yours to edit"
        )
    return f"{head}: nothing to rename there"


def _space_target(doc: SourceDoc, key: str, loc: Loc, column: int) -> Symbol | None:
    """A ``search.space`` key: ``vars.NAME`` (on the name: the var) or ``ID.param`` (on the id)."""
    offset = column - (loc.column - 1)
    head, _, rest = key.partition(".")
    if head == "vars" and rest and offset > len(head):
        declared = doc.key_locs.get(("vars", rest))
        return Symbol(VAR, rest, declared, _NOWHERE) if declared is not None else None
    declared = _space_id(doc, key)
    return Symbol(ID, head, declared, _NOWHERE) if declared is not None and offset <= len(head) else None


def _space_id(doc: SourceDoc, key: str) -> Loc | None:
    """The ``id:`` a ``search.space`` key names by its head (``head.rate``), else ``None``."""
    from cnnspec.spec.search import space_target

    head = key.partition(".")[0]
    if not IDENTIFIER.fullmatch(head) or head == "vars":
        return None
    found = space_target(doc, key)
    item = item_path(found) if found is not None else None
    if item is None or value_at(doc, (*item, "id")) != head:
        return None
    return doc.locs.get((*item, "id"))


def _segment_target(
    doc: SourceDoc,
    site: SpecPath,
    ref: str,
    cursor: Cursor,
    line_text: str,
    column: int,
    automatic: Automatic | None,
) -> Symbol | None:
    """The id the segment of the reference ``ref`` under the cursor leads to."""
    segment = segment_at(ref, cursor, line_text, column)
    if segment is None:
        return None
    start, end = segment
    declared = navigation.find_reference(doc, site, lookup(ref[:end]), automatic)
    if declared is None:
        return None
    if _automatic_call(doc, declared) is not None or declared == doc.key_locs.get(("input",)):
        return None  # an automatic name (renamed with its block) or the model's input
    return Symbol(ID, ref[start:end], declared, _NOWHERE)


def _named(pattern: str) -> bool:
    """Whether a freeze/unfreeze pattern is a name (``stem``, ``st[1].inner``), not a glob
    (``stem*``, ``conv2d_[12]``): an index after a name reads as an iteration."""
    return not is_glob(pattern) or (
        _HIERARCHICAL.fullmatch(pattern) is not None and not pattern.startswith("[")
    )


def _automatic_call(doc: SourceDoc, loc: Loc) -> str | None:
    """The block called by the item whose kind key is at ``loc`` (the declaration of a call's
    automatic name), else ``None``."""
    for path, kind in navigation.layer_items(doc):
        if kind is not None and doc.key_locs.get((*path, kind)) == loc:
            return kind
    return None


# -- where a name is written ----------------------------------------------------------------------
def _places(doc: SourceDoc, symbol: Symbol, automatic: Automatic | None, texts: _Texts) -> list[Replacement]:
    """Every place ``symbol`` is written in ``doc`` (its declaration first), as replacements
    that keep the old name (their ``text``); refused where one cannot be pinned to the text."""
    sites = _Sites(doc, symbol, automatic, texts)
    if symbol.what == ID:
        sites.ids()
    elif symbol.what == BLOCK:
        sites.blocks()
    else:
        sites.names()
    return sites.found


class _Sites:
    """Collects the places of one symbol in one document; ``lenient`` (for references, which
    edit nothing): a place the text does not pin is its value's start, an expression that does
    not parse reads nothing, instead of refusing."""

    def __init__(
        self,
        doc: SourceDoc,
        symbol: Symbol,
        automatic: Automatic | None,
        texts: _Texts,
        lenient: bool = False,
    ) -> None:
        self.doc = doc
        self.symbol = symbol
        self.automatic = automatic
        self.texts = texts
        self.lenient = lenient
        self.found: list[Replacement] = []
        self.seen: set[Replacement] = set()  # (``found`` as a set: a place is added once)
        #: Each place's token (its location) and whether the place is that whole token, as
        #: written: references list such a place as its token, any other as the segment.
        self.tokens: dict[Replacement, tuple[Loc, bool]] = {}

    def add(self, loc: Loc | None, written: str, start: int, end: int) -> None:
        """The part ``start``…``end`` of ``written``, the text located at ``loc``."""
        if loc is None:
            return
        column = self.texts.start(loc, written)
        if column is None and self.lenient:
            column, start, end = loc.column - 1, 0, 0
        if column is None:
            raise RenameError(
                f"cannot rename `{self.symbol.name}`: the text at {_place(loc)} is not written as "
                f"{written!r} (a quoted name with escapes, or text folded over lines); rename it by hand"
            )
        found = Replacement(loc.file, loc.line - 1, column + start, column + end, written[start:end])
        if found not in self.seen:
            self.seen.add(found)
            self.found.append(found)
            whole = column == loc.column - 1 and (start, end) == (0, len(written))
            self.tokens[found] = (loc, whole)

    # -- ids --------------------------------------------------------------------------------
    def ids(self) -> None:
        doc, name = self.doc, self.symbol.name
        declared = self.symbol.declared
        if self._declares(declared):
            self.add(declared, name, 0, len(name))
        for root in _roots(doc):
            for site, ref, loc in navigation.reference_sites(doc, root):
                self.add_segments(site, ref, loc)
        for _, pattern, loc in written_patterns(doc):
            if _named(pattern):
                self.add_segments(("outputs",), pattern, loc)
        for key in _space_keys(doc):
            if key.partition(".")[0] == name and _space_id(doc, key) == declared:
                self.add(doc.key_locs.get(("search", "space", key)), key, 0, len(name))
        self.output_keys()
        block = self._input_of(declared)
        for path, kind in navigation.layer_items(doc) if block is not None else ():
            bound = value_at(doc, (*path, "inputs"))  # a call binding the block's inputs by name
            if kind == block and isinstance(bound, dict) and name in bound:
                self.add(doc.key_locs.get((*path, "inputs", name)), name, 0, len(name))

    def output_keys(self) -> None:
        """The keys that name the symbol as a model output (:func:`output_keys`): an id the
        model's ``outputs:`` would read as this declaration."""
        name = self.symbol.name
        named = [(loc, written, start) for key, loc, written, start in output_keys(self.doc) if key == name]
        if (
            named
            and navigation.find_reference(self.doc, ("outputs",), name, self.automatic)
            == self.symbol.declared
        ):
            for loc, written, start in named:
                self.add(loc, written, start, start + len(name))

    def _input_of(self, loc: Loc) -> str | None:
        """The block whose ``inputs:`` declares the name at ``loc``, else ``None``."""
        path = next((p for p, found in self.doc.locs.items() if found == loc), None)
        return str(path[1]) if path is not None and is_block_input(path) else None

    def _declares(self, loc: Loc) -> bool:
        """Whether ``loc`` is an ``id:``, a block input or a carried name of this document."""
        return loc in self.doc.locs.values() or loc in self.doc.key_locs.values()

    def add_segments(self, site: SpecPath, ref: str, loc: Loc) -> None:
        """Each segment of ``ref`` (at ``site``) that leads to the symbol's declaration."""
        declared = self.symbol.declared
        before: Loc | None = None
        for start, end, is_name in segments(ref):
            if end < len(ref) and ref[end] not in ".[/":
                return  # text the resolver does not read as a name
            found = navigation.find_reference(self.doc, site, lookup(ref[:end]), self.automatic)
            if is_name and found == declared and found != before and ref[start:end] == self.symbol.name:
                self.add(loc, ref, start, end)
            before = found

    # -- blocks ------------------------------------------------------------------------------
    def blocks(self) -> None:
        doc, name = self.doc, self.symbol.name
        if doc.key_locs.get(("blocks", name)) != self.symbol.declared:
            return  # another block of that name (or none) in this document
        self.add(self.symbol.declared, name, 0, len(name))
        calls: set[Loc] = set()
        for path, kind in navigation.layer_items(doc):
            if kind == name:
                loc = doc.key_loc((*path, kind))
                if loc is not None:
                    calls.add(loc)
                    self.add(loc, name, 0, len(name))
        automatic = re.compile(rf"{re.escape(name)}_\d+")
        for root in _roots(doc):
            for site, ref, loc in navigation.reference_sites(doc, root):
                self.automatic_segments(site, ref, loc, calls, automatic)
        for _, pattern, loc in written_patterns(doc):
            if _named(pattern):
                self.automatic_segments(("outputs",), pattern, loc, calls, automatic)

    def automatic_segments(
        self, site: SpecPath, ref: str, loc: Loc, calls: set[Loc], name: re.Pattern[str]
    ) -> None:
        """Each segment of ``ref`` that is the automatic name of a call of the block."""
        for _, end, is_name in segments(ref):
            segment = ref[:end].rsplit(".", 1)[-1].rsplit("/", 1)[-1]
            if not is_name or not name.fullmatch(segment):
                continue
            found = navigation.find_reference(self.doc, site, lookup(ref[:end]), self.automatic)
            if found in calls:
                self.add(loc, ref, end - len(segment), end - len(segment) + len(self.symbol.name))

    # -- vars, parameters, loop variables ---------------------------------------------------------
    def names(self) -> None:
        doc, symbol = self.doc, self.symbol
        if symbol.what == VAR and doc.key_locs.get(("vars", symbol.name)) != symbol.declared:
            return
        if symbol.what == PARAMETER:
            where = ("blocks", symbol.block, "params", symbol.name)
            if doc.key_locs.get(where) != symbol.declared:
                return
        self.add(symbol.declared, symbol.name, 0, len(symbol.name))
        for path, value, loc in _expressions(doc):
            reads = self.reads(value)
            if reads and _bound(doc, path, symbol.name) == symbol.declared:
                for start, end in reads:
                    self.add(loc, value, start, end)
        if symbol.what == VAR:
            for key in _space_keys(doc):
                if key == f"vars.{symbol.name}":
                    self.add(doc.key_locs.get(("search", "space", key)), key, 5, len(key))
            self.var_keys()
        if symbol.what == PARAMETER:
            for path, kind in navigation.layer_items(doc):
                args = value_at(doc, (*path, kind)) if kind == symbol.block else None
                if isinstance(args, dict) and symbol.name in args:
                    self.add(doc.key_locs.get((*path, kind, symbol.name)), symbol.name, 0, len(symbol.name))

    def reads(self, value: str) -> list[tuple[int, int]]:
        """Where ``value``'s expressions read the symbol's name (:func:`_reads`)."""
        try:
            return _reads(value, self.symbol.name)
        except RenameError:
            if not self.lenient:
                raise
            return []  # (its own diagnostic says what is wrong with it)

    def var_keys(self) -> None:
        """The keys that name the var in the file declaring it, read from the file itself: the
        ``vars:`` entry (the composed document has a variants row's place instead when the
        variant built overrides it), its ``var_choices`` and the variants table's overrides."""
        name = self.symbol.name
        own = _own_doc(self.symbol.declared.file, self.texts.text_of)
        if own is None:
            return
        table = own.data.get("variants")
        paths: list[SpecPath] = [("vars", name), (VAR_CHOICES, name)]
        paths += [("variants", v, "vars", name) for v in table] if isinstance(table, dict) else []
        for path in paths:
            self.add(own.key_locs.get(path), name, 0, len(name))


def output_keys(doc: SourceDoc) -> Iterator[tuple[str, Loc, str, int]]:
    """Every key of ``doc`` that names a model output (:data:`OUTPUT_KEYED`, and a
    ``search.space`` path through one: ``training.outputs.cnt.loss_weight``): the output's
    name, the key's place, the key as written and where the name starts in it."""
    for section in OUTPUT_KEYED:
        keyed = value_at(doc, section)
        for key in keyed if isinstance(keyed, dict) else ():
            loc = doc.key_locs.get((*section, key))
            if isinstance(key, str) and loc is not None:
                yield key, loc, key, 0
    for key in _space_keys(doc):
        for section in OUTPUT_KEYED:
            prefix = ".".join(map(str, section)) + "."
            name = key[len(prefix) :].partition(".")[0] if key.startswith(prefix) else ""
            loc = doc.key_locs.get(("search", "space", key))
            if name and loc is not None:
                yield name, loc, key, len(prefix)


def output_key_symbol(
    doc: SourceDoc, cursor: Cursor, column: int, automatic: Automatic | None
) -> Symbol | None:
    """On a key naming a model output (:func:`output_keys`; in a ``search.space`` path, on the
    name's part): the output's id, declared where the model's ``outputs:`` reads it; else
    ``None``."""
    found = output_key_at(doc, cursor, column, automatic)
    if found is None:
        return None
    name, declared = found
    if _automatic_call(doc, declared) is not None:
        return None  # (an automatic name is renamed with its block)
    if declared == doc.key_locs.get(("input",)):
        return None
    return Symbol(ID, name, declared, _NOWHERE)


def output_key_at(
    doc: SourceDoc, cursor: Cursor, column: int, automatic: Automatic | None
) -> tuple[str, Loc] | None:
    """On a key naming a model output (:func:`output_keys`; in a ``search.space`` path, on the
    name's part): the output's name and where its id is declared (as the model's ``outputs:``
    reads it), for go-to-definition and hover too; else ``None``."""
    if not cursor.on_key:
        return None
    for name, loc, _, start in output_keys(doc):
        offset = column - (loc.column - 1) - start
        if loc == cursor.loc and 0 <= offset <= len(name):
            declared = navigation.find_reference(doc, ("outputs",), name, automatic)
            return (name, declared) if declared is not None else None
    return None


def output_references(
    doc: SourceDoc, symbol: Symbol, automatic: Automatic | None = None, text_of: TextOf = default_text
) -> list[Replacement]:
    """The keys of ``doc`` that name the id ``symbol`` as a model output, as a rename rewrites
    them (each the name's range: ``cnt`` of ``training.outputs.cnt.loss_weight``)."""
    sites = _Sites(doc, symbol, automatic, _Texts(text_of), lenient=True)
    sites.output_keys()
    return [place for place in sites.found if place.start < place.end]


def _own_doc(file: str, text_of: TextOf) -> SourceDoc | None:
    """``file`` as written, uncomposed (its own positions), else ``None``."""
    text = text_of(file)
    try:
        return load_text(text, file) if text is not None else None
    except SpecError:
        return None  # (its own diagnostics say why)


def _bound(doc: SourceDoc, path: SpecPath, name: str) -> Loc | None:
    """Where the name an expression at ``path`` reads as ``name`` is declared."""
    found = names_at(doc, path).get(name)
    return found.loc if found is not None else None


def _roots(doc: SourceDoc) -> list[SpecPath]:
    """Every id scope of the document: the model, the augmentation and each block's layers."""
    blocks = doc.data.get("blocks")
    names = [name for name in blocks if isinstance(name, str)] if isinstance(blocks, dict) else []
    return [("model",), ("augmentation",), *(("blocks", name, "layers") for name in names)]


def _space_keys(doc: SourceDoc) -> list[str]:
    space = value_at(doc, ("search", "space"))
    return [key for key in space if isinstance(key, str)] if isinstance(space, dict) else []


def _expressions(doc: SourceDoc) -> Iterator[tuple[SpecPath, str, Loc]]:
    """Every string value with a ``${…}`` expression: its path, its text and its place."""
    for path, loc in list(doc.locs.items()):
        value = value_at(doc, path)
        if isinstance(value, str) and "${" in value:
            yield path, value, loc


def _reads(value: str, name: str) -> list[tuple[int, int]]:
    """Where the ``${…}`` expressions of ``value`` read ``name`` (offsets into ``value``): the
    names the expression parser reads, not a function called, a string literal or a longer
    word. An expression that does not parse but spells the name is refused."""
    if name not in value:
        return []
    full = FULL_EXPRESSION.match(value)
    if full is not None and "${" not in full.group(1):
        bodies = [(full.start(1), full.group(1))]
    else:
        bodies = [(m.start(1), m.group(1)) for m in EMBEDDED_EXPRESSION.finditer(value)]
    found: list[tuple[int, int]] = []
    for offset, body in bodies:
        if name not in _WORD.findall(body):
            continue
        stripped = body.strip()
        lead = offset + len(body) - len(body.lstrip())
        try:
            tree = ast.parse(stripped, mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            raise RenameError(
                f"cannot rename `{name}`: the expression {value!r} does not parse; fix it first"
            ) from None
        if "\n" in stripped:
            raise RenameError(
                f"cannot rename `{name}`: the expression {value!r} spans lines; rename it by hand"
            )
        calls = {
            id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        }
        encoded = stripped.encode("utf-8")
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == name:
                if id(node) in calls and name in FUNCTIONS:
                    continue  # a call of the function: not the name
                start = lead + len(encoded[: node.col_offset].decode("utf-8", "replace"))
                found.append((start, start + len(name)))
    return sorted(found)


# -- what references read ------------------------------------------------------------------------
def name_symbol(
    doc: SourceDoc,
    cursor: Cursor,
    line_text: str,
    column: int,
    automatic: Automatic | None = None,
    reader: Reader | None = None,
    row: int | None = None,
    text_of: TextOf = default_text,
) -> Symbol | None:
    """The var, block parameter or loop variable under the cursor, as a rename takes it (its
    declaration by the same scoping: an inner parameter or loop variable hides a var; on a
    key under a backbone item's ``vars:``, the var of the backbone's spec, read through
    ``reader``; on a family file's ``vars:`` key, the var, read through ``text_of``: see
    :func:`target` for ``row``), else ``None``. Unlike :func:`target`, a name of the zoo is
    one too: references edit nothing."""
    try:
        symbol = (
            _backbone_var_target(doc, cursor, reader)
            or _variant_var_target(doc, cursor, column, row, text_of)
            or _target(doc, cursor, line_text, column, automatic)
        )
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return symbol if symbol is not None and symbol.what in (VAR, PARAMETER, LOOP) else None


def until_symbol(
    doc: SourceDoc, cursor: Cursor, line_text: str, column: int, reader: Reader | None = None
) -> tuple[Symbol, str] | None:
    """On a backbone item's ``until:``, the id of the backbone's spec that the segment under
    the cursor leads to, as a rename from there takes it (an automatic name or a layer's name
    is none), with that spec's file (as locations name it); else ``None``."""
    if not navigation.is_until(doc, cursor):
        return None
    try:
        symbol = _until_target(doc, cursor, line_text, column, reader)
        found = _until_model(doc, cursor, reader) if symbol is not None else None
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return (symbol, found[1].file) if symbol is not None and found is not None else None


@dataclass(frozen=True)
class Cut:
    """What the ``until:`` segment under the cursor names in the backbone's spec ``model``
    when no rename takes it (:func:`until_cut`): a call's automatic name or an id of a zoo
    model (``layer`` is ``None``: declared at ``declared``, as definition finds it), else a
    layer the compiler names, or a group of layers (``name``: the whole ``until:``; ``layer``:
    the layer cut at, declared where the resolver located it)."""

    name: str
    declared: Loc
    model: SourceDoc
    automatic: Automatic | None
    layer: str | None = None
    ir: ModelIR | None = None


def until_cut(
    doc: SourceDoc, cursor: Cursor, line_text: str, column: int, reader: Reader | None = None
) -> Cut | None:
    """On a backbone item's ``until:`` (a ``zoo:`` one too), what the segment under the cursor
    names in the backbone's spec, as definition resolves it, also where a rename refuses it
    (:func:`_until_refusal`: an automatic name, a layer's name, a zoo cut point); ``None``
    where it names nothing (or is no ``until:``)."""
    until = value_at(doc, cursor.path)
    found = _until_model(doc, cursor, reader, zoo=True) if navigation.is_until(doc, cursor) else None
    if found is None or not isinstance(until, str):
        return None
    body, model = found
    ir = _backbone_ir(doc, body, model)
    automatic = navigation.automatic_names(model, ir) if ir is not None else None
    segment = segment_at(until, cursor, line_text, column)
    if segment is not None:
        start, end = segment
        declared = navigation.find_reference(model, ("outputs",), lookup(until[:end]), automatic)
        if declared is not None:
            return Cut(until[start:end], declared, model, automatic)
    node = navigation.cut_layer(ir, until) if ir is not None else None
    if node is None or node.loc is None:
        return None
    return Cut(until, node.loc, model, automatic, node.name, ir)


def cut_uses(
    doc: SourceDoc, cut: Cut, text_of: TextOf = default_text, reader: Reader | None = None
) -> list[Replacement]:
    """Where the backbone items of ``doc`` (``zoo:`` ones too) name what ``cut`` names, each
    the name's range: an ``until:`` segment leading to the id, or an ``until:`` written as the
    layer's (or group's) name on the same spec. What the text does not pin is an empty range
    at the value's start."""
    symbol = Symbol(ID, cut.name, cut.declared, _NOWHERE)
    texts = _Texts(text_of)
    if cut.layer is None:
        found: list[Replacement] = []
        for item, model in _cutting(doc, cut.declared.file, reader, zoo=True):
            found += [p for p in _cut_places(doc, item, model, symbol, texts, lenient=True) if p not in found]
        return found
    sites = _Sites(doc, symbol, None, texts, lenient=True)
    for item, model in _cutting(doc, cut.model.file, reader, zoo=True):
        where = (*item, BACKBONE, "until")
        if value_at(doc, where) == cut.name and model.file == cut.model.file:
            sites.add(doc.locs.get(where), cut.name, 0, len(cut.name))
    return sites.found


def layer_patterns(cut: Cut) -> list[Loc]:
    """The freeze/unfreeze patterns of the backbone's spec that name the layer (or group)
    ``cut`` names (no glob: which layers a glob covers is no reference)."""
    if cut.layer is None or cut.ir is None:
        return []
    names = PatternNames(cut.ir)
    dotted = cut.name.replace("/", ".")
    found: list[Loc] = []
    for _, pattern, loc in written_patterns(cut.model):
        node = names.layer(pattern) if not is_glob(pattern) else None
        if (node is not None and node.name == cut.layer) or pattern.replace("/", ".") == dotted:
            found.append(loc)
    return found


def id_symbol(name: str, declared: Loc) -> Symbol:
    """The id ``name`` declared at ``declared`` (:func:`cnnspec.lsp.navigation.declaration`:
    also a call's automatic name), as :func:`cut_references` takes it."""
    return Symbol(ID, name, declared, _NOWHERE)


def cut_references(
    doc: SourceDoc, symbol: Symbol, text_of: TextOf = default_text, reader: Reader | None = None
) -> list[Replacement]:
    """Where the backbone items of ``doc`` whose spec reads the file declaring ``symbol``
    name it, as a rename rewrites them (each the name's range, with the name as its text):
    each segment of an ``until:`` that leads to an id, the key under ``vars:`` setting a var.
    Unlike a rename, what the text does not pin is no refusal."""
    texts = _Texts(text_of)
    found: list[Replacement] = []
    for item, model in _cutting(doc, symbol.declared.file, reader):
        found += [p for p in _cut_places(doc, item, model, symbol, texts, lenient=True) if p not in found]
    return found


@dataclass(frozen=True)
class Place:
    """A place a rename of an id rewrites (:func:`id_places`): the name's range (``at``), the
    location of the token holding it, and whether ``at`` is that whole token as written
    (``stem`` of ``inputs: [stem]``; not ``out`` of ``u1.out``, nor a quoted ``"stem"``)."""

    at: Replacement
    token: Loc
    whole: bool


def id_places(
    doc: SourceDoc, symbol: Symbol, automatic: Automatic | None = None, text_of: TextOf = default_text
) -> list[Place]:
    """Every place of ``doc`` that a rename of the id ``symbol`` rewrites, by the very search
    a rename makes (:meth:`_Sites.ids`): its declaration where ``doc`` holds it, each segment
    of a reference that leads to it (``out`` of a call's ``u1.out`` in a library's user: the
    block's output), its block input's key in a call binding inputs by name, the patterns,
    ``search.space`` keys and output keys naming it. What references list for an id. Unlike a
    rename, what the text does not pin is no refusal (an empty range at its token)."""
    sites = _Sites(doc, symbol, automatic, _Texts(text_of), lenient=True)
    sites.ids()
    return [Place(place, *sites.tokens[place]) for place in sites.found]


def pattern_segments(
    doc: SourceDoc, symbol: Symbol, automatic: Automatic | None = None, text_of: TextOf = default_text
) -> dict[Loc, list[Replacement]]:
    """For each freeze/unfreeze pattern of ``doc`` (or ``learning_rate_scale`` key) that names
    the id ``symbol`` (itself, or a segment of a hierarchical pattern), the ranges a rename of
    the id edits in it (``c`` of ``blk.c``), by the pattern's location. A pattern whose text
    does not pin the name (escapes, folded) is left out: its whole token is all there is."""
    texts = _Texts(text_of)
    found: dict[Loc, list[Replacement]] = {}
    for _, pattern, loc in written_patterns(doc):
        if not _named(pattern):
            continue
        sites = _Sites(doc, symbol, automatic, texts, lenient=True)
        sites.add_segments(("outputs",), pattern, loc)
        places = [place for place in sites.found if place.start < place.end]  # (lenient: none pinned)
        if places:
            found[loc] = places
    return found


def name_references(
    doc: SourceDoc,
    symbol: Symbol,
    automatic: Automatic | None = None,
    text_of: TextOf = default_text,
    reader: Reader | None = None,
) -> list[Loc]:
    """Every place of ``doc`` that a rename of the var, parameter or loop variable ``symbol``
    would rewrite, the declaration first when ``doc`` reads its file (each located at the
    name itself, ``${width * 2}``'s ``width``): the ``${…}`` uses bound to that declaration,
    the ``search.space`` key, a call's keyword, the key under a backbone item's ``vars:``
    when the item's spec reads the file. Unlike a rename, what the text does not pin (an
    expression that does not parse) is no refusal."""
    texts = _Texts(text_of)
    found: list[Replacement] = []
    if workspace.reads(doc, symbol.declared.file):
        sites = _Sites(doc, symbol, automatic, texts, lenient=True)
        sites.names()
        found += sites.found
    if symbol.what == VAR:  # (a `zoo:` backbone's too: a var of the zoo model, read-only)
        for item, model in _cutting(doc, symbol.declared.file, reader, zoo=True):
            found += _cut_places(doc, item, model, symbol, texts, lenient=True)
    return list(dict.fromkeys(Loc(p.file, p.line + 1, p.start + 1) for p in found))


def zoo_backbones(docs: Sequence[SourceDoc], file: str, reader: Reader | None) -> list[SourceDoc]:
    """The composed models of the ``zoo:`` backbone items of ``docs`` that read ``file`` (a
    zoo model's, or a zoo library's): where the var a key under their ``vars:`` sets is
    declared and read, which references list (as definition goes there) and a rename never
    edits."""
    found: list[SourceDoc] = []
    for doc in docs:
        for item, model in _cutting(doc, file, reader, zoo=True):
            ref = value_at(doc, (*item, BACKBONE, "spec"))
            if isinstance(ref, str) and is_zoo_ref(ref):
                found.append(model)
    return found


# -- the rename ---------------------------------------------------------------------------------
def rename(
    doc: SourceDoc,
    cursor: Cursor,
    line_text: str,
    column: int,
    new_name: str,
    *,
    automatic: Automatic | None = None,
    text_of: TextOf = default_text,
    reader: Reader | None = None,
    others: Sequence[Other] = (),
    row: int | None = None,
    folders: Sequence[Path] = (),
) -> dict[str, list[Replacement]]:
    """The replacements, by file, that rename what is under the cursor to ``new_name``.

    ``doc``: the composed document of the spec (or library) the cursor is in; ``automatic``: the
    automatic names of its block calls (:func:`cnnspec.lsp.navigation.automatic_names`);
    ``text_of``: the text of a file its locations point into; ``reader``: the editor's text of
    an open file (else the disk's), to compile the specs before and after; ``others``: the
    other open specs, rewritten too where they read the file that declares the name; ``row``:
    the cursor's 0-based line (:func:`target`); ``folders``: the workspace's folders, whose
    specs that read that file are rewritten too (:mod:`cnnspec.lsp.workspace`). Raises
    :class:`RenameError` with the reason when the rename is refused (see the module)."""
    symbol = target(doc, cursor, line_text, column, automatic, text_of, row, reader)
    if symbol is None and navigation.is_until(doc, cursor):
        raise RenameError(_until_refusal(doc, cursor, line_text, column, reader))
    if symbol is None:
        raise RenameError(
            "nothing to rename here: only ids, blocks, vars, block parameters and loop variables"
        )
    _check_name(symbol, new_name, [doc])  # (before the workspace is read: a typo is told at once)
    file = symbol.declared.file
    loaded = _workspace_specs(symbol, doc, others, folders, reader)
    # the specs a backbone item of these names (from this spec's `until:`, or a spec cutting
    # at the declaration) that read the file: renamed as the declaring spec is, open or not,
    # in the workspace or not (a spec reads its backbone's spec: a rename covers what it reads)
    backbones = backbone_specs([doc, *(d for d, _ in others), *(s.doc for s in loaded)], [file], reader)
    opened: list[Other] = [*others, *((spec.doc, spec.automatic) for spec in backbones)]
    if loaded or backbones:  # (their locations are positions in the text they were loaded from)
        read = [*loaded, *backbones]
        text_of = preferring({path: text for spec in read for path, text in spec.texts.items()}, text_of)
    texts = _Texts(text_of)
    candidates: list[Other] = [*opened, *((spec.doc, spec.automatic) for spec in loaded)]
    docs: list[Other] = [(doc, automatic)]
    for other, names in candidates:
        if workspace.reads(other, file) and all(other.file != each.file for each, _ in docs):
            docs.append((other, names))
    cutting = [(each, _cutting(each, file, reader)) for each, _ in [(doc, automatic), *candidates]]
    cutting = [(each, items) for each, items in cutting if items]
    _check_name(symbol, new_name, [d for d, _ in docs])
    found: dict[Replacement, None] = {}  # (ordered, each place once: a list's `in` was quadratic)
    for each, names in docs:
        _check_redeclared(each, symbol, text_of)
        found.update(dict.fromkeys(_places(each, symbol, names, texts)))
    for each, items in cutting:
        for item, model in items:
            found.update(dict.fromkeys(_cut_places(each, item, model, symbol, texts)))
    if symbol.what in (VAR, PARAMETER, LOOP):
        for each, _ in docs:
            _check_capture(each, symbol, new_name)
    zoo = _zoo_root()
    changes: dict[str, list[Replacement]] = {}
    for place in found:
        if zoo is not None and place.file not in changes and path_of(place.file).is_relative_to(zoo):
            raise RenameError(
                f"cannot rename `{symbol.name}`: it is written in the packaged zoo file {place.file}, "
                "which is not yours to edit"
            )
        changes.setdefault(place.file, []).append(
            Replacement(place.file, place.line, place.start, place.end, new_name)
        )
    checked: dict[str, SourceDoc] = {}  # every spec that reads the file, once
    for each in [*(d for d, _ in docs), *(d for d, _ in cutting), *(s.doc for s in loaded)]:
        checked.setdefault(each.file, each)
    _verify(list(checked.values()), changes, text_of, reader, symbol, new_name)
    return changes


def _workspace_specs(
    symbol: Symbol, doc: SourceDoc, others: Sequence[Other], folders: Sequence[Path], reader: Reader | None
) -> list[workspace.Spec]:
    """The specs of the workspace ``folders`` that are not open (not ``doc`` nor ``others``)
    and read the file that declares ``symbol``, loaded from their text (an open one's: the
    editor's): those that compile. A loop variable is its repeat's alone: none. Refused when
    the workspace has more spec files than the scan reads (:data:`workspace.MAX_FILES`): a
    spec past them could be left broken. A ``--set`` option naming the renamed var or id is
    on a command line, not in a file: no rename can follow it."""
    if not folders or symbol.what == LOOP:
        return []
    found = workspace.scan(folders)
    if found.capped:
        limits = f"{found.limit} YAML files (or {workspace.MAX_FOLDERS} folders)"
        log.warning("rename: the workspace holds more than %s; rename refused", limits)
        raise RenameError(
            f"cannot rename `{symbol.name}`: the workspace holds more than {limits} and only that "
            f"many are scanned, so a spec past them could read {symbol.declared.file} and be left "
            "broken; rename refused (open a smaller folder as the workspace)"
        )
    for path in found.too_big:
        log.info("rename: %s is not read (over %d bytes)", path, workspace.MAX_BYTES)
    have = [doc, *(other for other, _ in others)]
    loaded = workspace.closed_readers(symbol.declared.file, found, have, reader)
    for spec in loaded:
        if not spec.compiles:  # as an open spec in error is: left out, to be fixed by hand
            log.warning(
                "rename of `%s`: %s reads %s but does not compile; it is not rewritten",
                symbol.name,
                spec.path,
                symbol.declared.file,
            )
    return [spec for spec in loaded if spec.compiles]


def backbone_specs(
    docs: Sequence[SourceDoc], files: Sequence[str], reader: Reader | None
) -> list[workspace.Spec]:
    """The specs that the backbone items of ``docs`` name and that read one of ``files``
    (they declare the id an ``until:`` names or the var a ``vars:`` key sets, or include the
    file that does), and in turn those of theirs, none of ``docs``: each loaded from its own
    text as a workspace spec is (an open one's: the editor's), so that a rename covers them
    as the spec that declares the name (one that does not compile makes it refused: checked)
    and references read them, open or not, in the workspace or not."""
    have = {path_of(each.file) for each in docs}
    found: dict[Path, workspace.Spec] = {}
    pending = list(docs)
    saved = dict(SOURCE_TEXTS)  # (the loader records what it reads: diagnostics quote it)
    try:
        while pending:  # (a backbone's spec may cut a third spec at the name: read it too)
            each = pending.pop(0)
            for file in files:
                for _, model in _cutting(each, file, reader):
                    path = path_of(model.file)
                    text = workspace.text_of(path, reader) if path not in have else None
                    spec = workspace.load(path, text, reader) if text is not None else None
                    have.add(path)
                    if spec is not None:
                        found[path] = spec
                        pending.append(spec.doc)
    finally:
        SOURCE_TEXTS.clear()
        SOURCE_TEXTS.update(saved)
    return list(found.values())


def preferring(known: dict[Path, str], text_of: TextOf) -> TextOf:
    """``text_of``, except for the files of ``known``: their texts there."""

    def text(file: str) -> str | None:
        found = known.get(path_of(file))
        return found if found is not None else text_of(file)

    return text


def _cutting(
    doc: SourceDoc, file: str, reader: Reader | None, zoo: bool = False
) -> list[tuple[SpecPath, SourceDoc]]:
    """The backbone items of ``doc`` whose spec is ``file`` or includes it, each with that
    spec's composed document (read through ``reader``): they may cut at its ids (``until:``)
    and set its vars (``vars:``), and compile with it. A ``zoo:`` backbone reads no user's
    file: skipped (not loaded) unless ``zoo`` (references, which read the zoo as definition
    does)."""
    from cnnspec.lsp.completion import backbone_doc

    found: list[tuple[SpecPath, SourceDoc]] = []
    for item, kind in navigation.layer_items(doc):
        ref = value_at(doc, (*item, BACKBONE, "spec")) if kind == BACKBONE else None
        loc = doc.locs.get((*item, BACKBONE, "spec"))
        if not isinstance(ref, str) or loc is None:
            continue
        if is_zoo_ref(ref) and not zoo:
            continue
        if not is_zoo_ref(ref) and loc.file.startswith("<"):
            continue
        model = backbone_doc(ref, Path(loc.file), reader)
        if model is not None and workspace.reads(model, file):
            found.append((item, model))
    return found


def _cut_places(
    doc: SourceDoc, item: SpecPath, model: SourceDoc, symbol: Symbol, texts: _Texts, lenient: bool = False
) -> list[Replacement]:
    """Where the backbone item at ``item`` of ``doc``, whose spec is ``model``, names
    ``symbol``: the var's key under its ``vars:``; each segment of its ``until:`` that leads
    to the id, as the resolver looks it up in ``model`` (at the item's vars)."""
    body = (*item, BACKBONE)
    sites = _Sites(model, symbol, None, texts, lenient)
    if symbol.what == VAR and model.key_locs.get(("vars", symbol.name)) == symbol.declared:
        sites.add(doc.key_locs.get((*body, "vars", symbol.name)), symbol.name, 0, len(symbol.name))
    until, loc = value_at(doc, (*body, "until")), doc.locs.get((*body, "until"))
    if symbol.what == ID and isinstance(until, str) and loc is not None:
        sites.automatic = _backbone_names(doc, body, model)
        sites.add_segments(("outputs",), until, loc)
    return sites.found


def _backbone_names(doc: SourceDoc, body: SpecPath, model: SourceDoc) -> Automatic | None:
    """The automatic names of the block calls of the backbone spec ``model`` at the vars the
    item at ``body`` sets (as ``until:`` reads them: ``until: double_1.c``)."""
    ir = _backbone_ir(doc, body, model)
    # (None: its ids are in its text still, only automatic names are not followed)
    return navigation.automatic_names(model, ir) if ir is not None else None


def _backbone_ir(doc: SourceDoc, body: SpecPath, model: SourceDoc) -> ModelIR | None:
    """The backbone spec ``model`` resolved at the vars the item at ``body`` sets (``None``:
    it does not resolve)."""
    from cnnspec.lsp.completion import set_backbone_vars
    from cnnspec.spec.resolve import resolve

    raw = value_at(doc, (*body, "vars"))
    if raw is not None:
        set_backbone_vars(model, doc, raw, (*body, "vars"))
    try:
        return resolve(model)
    except SpecError:
        return None


def _zoo_root() -> Path | None:
    try:
        return zoo_dir().resolve()
    except (OSError, ImportError):
        return None


def _check_name(symbol: Symbol, new: str, docs: Sequence[SourceDoc]) -> None:
    """Refuse a new name that is no valid name for ``symbol`` or that is taken."""
    what = symbol.what
    if new == symbol.name:
        raise RenameError(f"`{new}` is already the name of this {what}")
    if not (IDENTIFIER.fullmatch(new) and new.isascii()):
        raise RenameError(
            f"expected an identifier ([A-Za-z_][A-Za-z0-9_]*) as the new name; received {new!r}"
        )
    if what in (VAR, PARAMETER, LOOP) and (problem := unreadable_name(new)):
        raise RenameError(problem)
    for doc in docs:
        if what == ID:
            taken = _ids_in_scope(doc, symbol.declared)
            name = value_at(doc, ("input", "name"))
            if new in (INPUT, name):
                raise RenameError(f"the id {new!r} is reserved for the model input")
            if new in taken:
                raise RenameError(f"`{new}` is already declared in this id scope ({taken[new]})")
        elif what == BLOCK:
            reason = RESERVED_BLOCK_NAMES.get(new) or (
                f"it names the layer kind `{new}`" if new in REGISTRY or new in COMBINATORS else None
            )
            if reason:
                raise RenameError(f"block name {new!r} is reserved: {reason}")
            blocks = doc.data.get("blocks")
            if isinstance(blocks, dict) and new in blocks:
                raise RenameError(
                    f"a block named `{new}` already exists ({_at(doc.key_locs.get(('blocks', new)))})"
                )
        elif what == VAR:
            variables = doc.data.get("vars")
            if isinstance(variables, dict) and new in variables:
                raise RenameError(
                    f"a var named `{new}` already exists ({_at(doc.key_locs.get(('vars', new)))})"
                )
        elif what == PARAMETER:
            params = value_at(doc, ("blocks", symbol.block, "params"))
            if isinstance(params, dict) and new in params:
                raise RenameError(f"block `{symbol.block}` already has a parameter `{new}`")


def _at(loc: Loc | None) -> str:
    return _place(loc) if loc is not None else "composed"


def _ids_in_scope(doc: SourceDoc, declared: Loc) -> dict[str, str]:
    """The names declared in the id scope of ``declared`` (ids, carried names, a block's inputs,
    the model's input), each with where: a new id of one of these names would clash with it or
    hide it."""
    path = next((p for p, loc in doc.locs.items() if loc == declared), None)
    if path is None:
        path = next((p for p, loc in doc.key_locs.items() if loc == declared), None)
    root = root_of(path) if path is not None else None
    if root is None:
        return {}
    found: dict[str, str] = {}
    if root[0] == "blocks":
        for name in block_inputs(doc, str(root[1])):
            found[name.name] = _at(name.loc)
    for item, kind in navigation.layer_items(doc):
        if item[: len(root)] != root:
            continue
        value = value_at(doc, (*item, "id"))
        if isinstance(value, str):
            found.setdefault(value, _at(doc.locs.get((*item, "id"))))
        carry = value_at(doc, (*item, kind, "carry")) if kind == "repeat" else None
        for name in carry if isinstance(carry, dict) else ():
            found.setdefault(str(name), _at(doc.key_locs.get((*item, kind, "carry", name))))
    return found


def _check_redeclared(doc: SourceDoc, symbol: Symbol, text_of: TextOf) -> None:
    """Refuse when a file the spec reads declares the name again (a child overriding its base's
    var, a block both define): the composed document keeps one declaration, and a rename of it
    would leave the other behind (the base alone would then read a name it does not declare)."""
    where = {VAR: ("vars", symbol.name), BLOCK: ("blocks", symbol.name)}.get(symbol.what)
    if symbol.what == PARAMETER:
        where = ("blocks", symbol.block, "params", symbol.name)
    if where is None:
        return
    for file in dict.fromkeys([doc.file, *doc.includes]):
        own = _own_doc(file, text_of)
        loc = own.key_locs.get(where) if own is not None else None
        if loc is not None and loc != symbol.declared and not _variant_row(own, symbol):
            # the composed document keeps the overriding declaration: the child's, whichever
            # of the two files the rename was asked in
            kept = doc.key_locs.get(where)
            first, then = (symbol.declared, loc) if kept == loc else (loc, symbol.declared)
            which = ", which overrides it" if kept in (loc, symbol.declared) else ""
            raise RenameError(
                f"cannot rename `{symbol.name}`: it is declared at {_place(first)} and again at "
                f"{_place(then)}{which}; rename both by hand"
            )


def _variant_row(own: SourceDoc | None, symbol: Symbol) -> bool:
    """Whether the var ``symbol`` is declared at a variants row of ``own``: the composed
    document places a var the built variant overrides there, and the file's own ``vars:``
    entry is then the same var, not a second declaration."""
    table = own.data.get("variants") if own is not None and symbol.what == VAR else None
    rows = [("variants", v, "vars", symbol.name) for v in table] if isinstance(table, dict) else []
    return any(own is not None and own.key_locs.get(row) == symbol.declared for row in rows)


def _check_capture(doc: SourceDoc, symbol: Symbol, new: str) -> None:
    """Refuse a new name that an expression the rename rewrites would read as something else
    (a block parameter named like the new var), or that an expression inside the renamed
    name's scope reads today (a var that a parameter of the new name would hide)."""
    for path, value, loc in _expressions(doc):
        touched = _reads(value, symbol.name) and _bound(doc, path, symbol.name) == symbol.declared
        if touched and _bound(doc, path, new) is not None:
            raise RenameError(
                f"`{new}` already names something else where {_place(loc)} reads `{symbol.name}`"
            )
        inner = symbol.what in (PARAMETER, LOOP)  # (a var hides nothing: an inner name wins over it)
        if inner and _reads(value, new) and _in_scope(doc, path, symbol):
            raise RenameError(
                f"`{new}` is read at {_place(loc)}: renaming `{symbol.name}` to it would hide it"
            )


def _in_scope(doc: SourceDoc, path: SpecPath, symbol: Symbol) -> bool:
    """Whether an expression at ``path`` sees ``symbol`` (it could read it)."""
    found = names_at(doc, path).get(symbol.name)
    return found is not None and found.loc == symbol.declared


# -- checking the result ----------------------------------------------------------------------------
def apply(text: str, replacements: Sequence[Replacement]) -> str:
    """``text`` with ``replacements`` (code points, on its lines) made."""
    lines = LINE_BREAK.split(text)
    breaks = LINE_BREAK.findall(text)
    for place in sorted(replacements, key=lambda r: (r.line, r.start), reverse=True):
        line = lines[place.line]
        lines[place.line] = line[: place.start] + place.text + line[place.end :]
    return "".join(line + (breaks[i] if i < len(breaks) else "") for i, line in enumerate(lines))


def _verify(
    docs: Sequence[SourceDoc],
    changes: dict[str, list[Replacement]],
    text_of: TextOf,
    reader: Reader | None,
    symbol: Symbol,
    new: str,
) -> None:
    """Compile each spec before and after the rename: refuse unless it compiles to the same
    model and every freeze/unfreeze pattern covers the same layers (see the module)."""
    new_texts: dict[Path, str] = {}
    for file, places in changes.items():
        text = text_of(file)
        if text is None:
            raise RenameError(f"cannot rename `{symbol.name}`: {file} cannot be read")
        new_texts[path_of(file)] = apply(text, places)

    def before(path: Path) -> str | None:
        return reader(path) if reader is not None else None

    def after(path: Path) -> str | None:
        return new_texts[path] if path in new_texts else before(path)

    saved = dict(SOURCE_TEXTS)  # (the loader records what it reads: diagnostics quote it)
    try:
        for doc in docs:
            root = path_of(doc.file)
            old = _compile(root, before)
            if old is None or isinstance(old, list):
                problem = f" ({old[0]})" if isinstance(old, list) and old else ""
                raise RenameError(
                    f"cannot rename `{symbol.name}` while {doc.file} has errors: fix them first{problem}"
                )
            fresh = _compile(root, after)
            if fresh is None or isinstance(fresh, list):
                problem = f": {fresh[0]}" if isinstance(fresh, list) and fresh else ""
                raise RenameError(f"renaming `{symbol.name}` to `{new}` would break {doc.file}{problem}")
            _compare(old, fresh, doc.file, symbol, new)
    finally:
        SOURCE_TEXTS.clear()
        SOURCE_TEXTS.update(saved)


_Compiled = tuple[ModelIR | None, SourceDoc]


def _compile(path: Path, reader: Reader) -> _Compiled | list[str] | None:
    """The spec ``path`` compiled (a library: loaded) through ``reader``: its model and
    document; the error messages when it does not compile; ``None`` when it cannot be read."""
    text = reader(path)
    if text is None:
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            return None
    if is_library(text):
        try:
            return None, load_library(path, reader=reader)
        except SpecError as exc:
            return [d.message for d in exc.diagnostics]
    analysis = check(path, reader, None, SearchRun(repeat=[]))
    if analysis.compiled is None or analysis.doc is None:
        errors = [f"{d.message} ({_at(d.loc)})" for d in analysis.diagnostics if d.severity == "error"]
        return errors or [d.message for d in analysis.diagnostics]
    return analysis.compiled.ir, analysis.doc


def _compare(old: _Compiled, fresh: _Compiled, file: str, symbol: Symbol, new: str) -> None:
    old_ir, old_doc = old
    new_ir, new_doc = fresh
    if old_ir is None or new_ir is None:
        return  # a library: it loads, which is all a library can say alone
    if _signature(old_ir) != _signature(new_ir):
        raise RenameError(
            f"renaming `{symbol.name}` to `{new}` would change the model of {file}; rename refused"
        )
    old_patterns, new_patterns = _coverage(old_ir, old_doc), _coverage(new_ir, new_doc)
    for index, (path, pattern, covered) in enumerate(old_patterns):
        if index >= len(new_patterns) or new_patterns[index][2] != covered:
            kind = "glob pattern" if is_glob(pattern) else "pattern"
            raise RenameError(
                f"renaming `{symbol.name}` to `{new}` would change what the {kind} {pattern!r} "
                f"({format_path(path)}) covers; rename refused"
            )


def _signature(ir: ModelIR) -> Any:
    """The model up to its names: each layer's kind, parameters, shape, counts and trainability,
    its inputs by position, and the outputs."""
    index: dict[str, Any] = {ir.input_name: "input"}
    for i, node in enumerate(ir.nodes):
        index[node.name] = i
    for i, node in enumerate(ir.augmentation):
        index.setdefault(node.name, ("augmentation", i))

    def nodes(found: list[Any]) -> list[Any]:
        return [
            (
                n.kind,
                repr(n.params),
                n.shape,
                n.counts,
                n.trainable,
                tuple(index.get(x, "?") for x in n.inputs),
            )
            for n in found
        ]

    return (
        nodes(ir.nodes),
        nodes(ir.augmentation),
        tuple(index.get(o, "?") for o in ir.outputs),
        ir.input_shape,
    )


def _coverage(ir: ModelIR, doc: SourceDoc) -> list[tuple[SpecPath, str, tuple[int, ...]]]:
    """What each written pattern covers, as layer positions, in the order they are written (a
    rename keeps that order; a pattern that keys a learning_rate_scale changes its own path)."""
    patterns = Patterns(ir)
    order = {node.name: i for i, node in enumerate(ir.nodes)}
    return [
        (path, pattern, tuple(order[name] for name in patterns.match(pattern)))
        for path, pattern, _ in written_patterns(doc)
    ]
