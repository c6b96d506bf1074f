"""The uses of a name that ``textDocument/references`` lists (:mod:`cnnspec.lsp.references`), by
the search a rename makes: the symbol under the cursor, its places in each open spec, the
segments of patterns that name it, and what a backbone's cut (``until:``) reads in the spec it
cuts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cnnspec.errors import Loc
from cnnspec.ir import ModelIR
from cnnspec.lsp import navigation, workspace
from cnnspec.lsp.locate import Cursor, value_at
from cnnspec.lsp.patterns import PatternNames, is_glob, written_patterns
from cnnspec.lsp.rename_backbones import backbone_ir, cut_places, cutting_items, until_model
from cnnspec.lsp.rename_reading import names_one
from cnnspec.lsp.rename_sites import Sites
from cnnspec.lsp.rename_symbols import (
    ID,
    LOOP,
    NOWHERE,
    PARAMETER,
    VAR,
    Replacement,
    Symbol,
    TextOf,
    Texts,
    default_text,
)
from cnnspec.lsp.rename_target import backbone_var_target, cursor_symbol, until_target, variant_var_target
from cnnspec.lsp.scopes import Automatic
from cnnspec.lsp.segments import lookup, segment_at
from cnnspec.spec.backbone import KIND as BACKBONE
from cnnspec.spec.compose import Reader
from cnnspec.spec.loader import SourceDoc
from cnnspec.spec.zoo import is_zoo_ref


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
    :func:`~cnnspec.lsp.rename_target.located` for ``row``), else ``None``. Unlike it, a name of the zoo is
    one too: references edit nothing."""
    try:
        symbol = (
            backbone_var_target(doc, cursor, reader)
            or variant_var_target(doc, cursor, column, row, text_of)
            or cursor_symbol(doc, cursor, line_text, column, automatic)
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
        symbol = until_target(doc, cursor, line_text, column, reader)
        found = until_model(doc, cursor, reader) if symbol is not None else None
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
    (:func:`until_refusal`: an automatic name, a layer's name, a zoo cut point); ``None``
    where it names nothing (or is no ``until:``)."""
    until = value_at(doc, cursor.path)
    found = until_model(doc, cursor, reader, zoo=True) if navigation.is_until(doc, cursor) else None
    if found is None or not isinstance(until, str):
        return None
    body, model = found
    ir = backbone_ir(doc, body, model)
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
    symbol = Symbol(ID, cut.name, cut.declared, NOWHERE)
    texts = Texts(text_of)
    if cut.layer is None:
        found: list[Replacement] = []
        for item, model in cutting_items(doc, cut.declared.file, reader, zoo=True):
            found += [p for p in cut_places(doc, item, model, symbol, texts, lenient=True) if p not in found]
        return found
    sites = Sites(doc, symbol, None, texts, lenient=True)
    for item, model in cutting_items(doc, cut.model.file, reader, zoo=True):
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
    return Symbol(ID, name, declared, NOWHERE)


def cut_references(
    doc: SourceDoc, symbol: Symbol, text_of: TextOf = default_text, reader: Reader | None = None
) -> list[Replacement]:
    """Where the backbone items of ``doc`` whose spec reads the file declaring ``symbol``
    name it, as a rename rewrites them (each the name's range, with the name as its text):
    each segment of an ``until:`` that leads to an id, the key under ``vars:`` setting a var.
    Unlike a rename, what the text does not pin is no refusal."""
    texts = Texts(text_of)
    found: list[Replacement] = []
    for item, model in cutting_items(doc, symbol.declared.file, reader):
        found += [p for p in cut_places(doc, item, model, symbol, texts, lenient=True) if p not in found]
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
    a rename makes (:meth:`Sites.ids`): its declaration where ``doc`` holds it, each segment
    of a reference that leads to it (``out`` of a call's ``u1.out`` in a library's user: the
    block's output), its block input's key in a call binding inputs by name, the patterns,
    ``search.space`` keys and output keys naming it. What references list for an id. Unlike a
    rename, what the text does not pin is no refusal (an empty range at its token)."""
    sites = Sites(doc, symbol, automatic, Texts(text_of), lenient=True)
    sites.ids()
    return [Place(place, *sites.tokens[place]) for place in sites.found]


def pattern_segments(
    doc: SourceDoc, symbol: Symbol, automatic: Automatic | None = None, text_of: TextOf = default_text
) -> dict[Loc, list[Replacement]]:
    """For each freeze/unfreeze pattern of ``doc`` (or ``learning_rate_scale`` key) that names
    the id ``symbol`` (itself, or a segment of a hierarchical pattern), the ranges a rename of
    the id edits in it (``c`` of ``blk.c``), by the pattern's location. A pattern whose text
    does not pin the name (escapes, folded) is left out: its whole token is all there is."""
    texts = Texts(text_of)
    found: dict[Loc, list[Replacement]] = {}
    for _, pattern, loc in written_patterns(doc):
        if not names_one(pattern):
            continue
        sites = Sites(doc, symbol, automatic, texts, lenient=True)
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
    texts = Texts(text_of)
    found: list[Replacement] = []
    if workspace.reads(doc, symbol.declared.file):
        sites = Sites(doc, symbol, automatic, texts, lenient=True)
        sites.names()
        found += sites.found
    if symbol.what == VAR:  # (a `zoo:` backbone's too: a var of the zoo model, read-only)
        for item, model in cutting_items(doc, symbol.declared.file, reader, zoo=True):
            found += cut_places(doc, item, model, symbol, texts, lenient=True)
    return list(dict.fromkeys(Loc(p.file, p.line + 1, p.start + 1) for p in found))


def zoo_backbones(docs: Sequence[SourceDoc], file: str, reader: Reader | None) -> list[SourceDoc]:
    """The composed models of the ``zoo:`` backbone items of ``docs`` that read ``file`` (a
    zoo model's, or a zoo library's): where the var a key under their ``vars:`` sets is
    declared and read, which references list (as definition goes there) and a rename never
    edits."""
    found: list[SourceDoc] = []
    for doc in docs:
        for item, model in cutting_items(doc, file, reader, zoo=True):
            ref = value_at(doc, (*item, BACKBONE, "spec"))
            if isinstance(ref, str) and is_zoo_ref(ref):
                found.append(model)
    return found
