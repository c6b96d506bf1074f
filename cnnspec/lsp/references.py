"""Find references (``textDocument/references``) across the specs that read a declaration.

What a rename would rewrite is what references list, read by the same rules:

- a **var**, a block's **parameter** or a repeat's **loop variable** (on its declaration, on
  a ``${…}`` use, on a ``search.space`` key ``vars.NAME``, on the key under a backbone item's
  ``vars:`` that sets the backbone spec's var): the places
  :func:`cnnspec.lsp.rename_uses.name_references` gives, by rename's scoping (an expression inside
  a block whose parameter has the name reads the parameter, not the var), each located at the
  name itself; a spec that extends the var's file and declares it again (a child overriding
  it): that declaration too (from the child, the var is its own, with its own references). A
  key under a ``zoo:`` backbone's ``vars:`` sets a var of the packaged zoo model: its
  declaration and uses there are listed with the zoo files' locations (where definition goes;
  read-only, so a rename refuses them);
- an **id** or a **block** (:func:`cnnspec.lsp.navigation.references`): in the cursor's spec,
  then in every other spec that reads the file of the place under the cursor or of the
  declaration (a library's other users, a base's other children), asked at that same place;
  for an id, in each of those specs, every place a rename of it rewrites
  (:func:`cnnspec.lsp.rename_uses.id_places`, the search a rename makes), each the segment a
  rename edits: ``out`` of a call's ``u1.out`` for a block's output ``out`` (asked in the
  library or at the call: the block's ``id: out``, its ``outputs:`` entry and each call's
  ``u1.out``), a block input bound by a call's ``inputs:`` mapping key;
  for an id (a call's automatic name too), each segment of another spec's backbone
  ``until:`` that cuts at it (``c`` of ``until: blk.c``: a :class:`Segment`, the range a
  rename edits), and a freeze/unfreeze pattern that names it is the segment that does
  (``c`` of ``freeze: [blk.c]``, as a rename edits it), not the whole token; a model
  output's id: the keys naming the output (``training.outputs.cnt``, the ``shapes`` target's,
  a ``search.space`` path's ``cnt``), each the name, and asked on one of them, the id's
  references. Asked from a
  pattern, the references of the id its segment under the cursor leads to (``blk`` of
  ``blk.c``: ``blk``'s), as a rename there takes it (:mod:`cnnspec.lsp.segments`). On an
  ``until:``, the references of the id its segment under the cursor names in the backbone's
  spec, as from its declaration; where that is no name a rename takes (a call's automatic
  name, a layer's compiler-given name or group, a ``zoo:`` model's cut point), still its
  declaration as definition resolves it (the call item, the layer's place, the zoo file's
  id), its uses and patterns in the backbone's spec and each ``until:`` naming it
  (:func:`cnnspec.lsp.rename_uses.until_cut`).

The other specs are the open ones (``others``: the editor's text), the specs a backbone item
of these names that read the file (:func:`cnnspec.lsp.rename_backbones.backbone_specs`: read from their
text, open or not, in the workspace or not, as a rename covers them) and, given the
workspace's folders, those on disk that read the file
(:func:`cnnspec.lsp.workspace.closed_readers`, the scan a rename makes; a spec that does not
compile is left out, as an open one in error is). A workspace larger than the scan is read as
far as the scan goes: references edit nothing, so a partial answer is still an answer (the log
says so).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cnnspec.errors import Loc
from cnnspec.lsp import (
    navigation,
    rename_backbones,
    rename_sites,
    rename_symbols,
    rename_uses,
    workspace,
)
from cnnspec.lsp.documents import path_of
from cnnspec.lsp.locate import Cursor, path_at
from cnnspec.lsp.rename_backbones import preferring
from cnnspec.lsp.rename_symbols import LOOP, VAR, Other, TextOf, default_text
from cnnspec.lsp.scopes import Automatic
from cnnspec.lsp.text import UTF16, Lines, Span, in_expression, word_at
from cnnspec.spec.compose import Reader
from cnnspec.spec.linebreaks import LINE_BREAK
from cnnspec.spec.loader import SourceDoc

log = logging.getLogger("cnnspec.lsp")


@dataclass(frozen=True, slots=True)
class Segment(Loc):
    """A reference that is a part of its token (``c`` of a backbone's ``until: blk.c``): its
    range ends at ``end`` (the 1-based code-point column just past it), not the token's end."""

    end: int


def references(
    doc: SourceDoc,
    cursor: Cursor,
    line_text: str,
    column: int,
    include_declaration: bool = True,
    automatic: Automatic | None = None,
    *,
    row: int | None = None,
    others: Sequence[Other] = (),
    folders: Sequence[Path] = (),
    reader: Reader | None = None,
    text_of: TextOf = default_text,
) -> list[Loc]:
    """Every place that refers to what is under the cursor (its declaration first when
    ``include_declaration``), in ``doc``, the open specs ``others`` and the specs on disk in
    the workspace ``folders`` that read its file (see the module). ``column``: 0-based code
    points of ``line_text``, on 0-based line ``row`` (by default the cursor's location's);
    ``reader``: the editor's text of an open file; ``text_of``: the text of a file the
    locations point into."""
    row = cursor.loc.line - 1 if row is None else row
    until = rename_uses.until_symbol(doc, cursor, line_text, column, reader)
    if until is not None:
        return _from_until(doc, automatic, *until, include_declaration, others, folders, reader, text_of)
    cut = rename_uses.until_cut(doc, cursor, line_text, column, reader)
    if cut is not None:  # a name no rename takes (automatic, the compiler's, the zoo's)
        return _from_cut(doc, automatic, cut, include_declaration, others, folders, reader, text_of)
    symbol = rename_uses.name_symbol(doc, cursor, line_text, column, automatic, reader, row, text_of)
    if symbol is not None:
        have = [(doc, automatic), *others]
        if symbol.what != LOOP:  # (a loop variable is its repeat's alone)
            more = _more(have, [symbol.declared.file], folders, reader)
            have += [(spec.doc, spec.automatic) for spec in more]
            text_of = _texts(more, text_of)
        if symbol.what == VAR:  # a var of a `zoo:` backbone's model: its uses there too
            zoo = rename_uses.zoo_backbones([each for each, _ in have], symbol.declared.file, reader)
            have += [(model, None) for model in zoo]
        found = _name_references(symbol, have, include_declaration, text_of, reader)
        if symbol.what == VAR:
            found += [loc for loc in _overrides(symbol, have) if loc not in found]
        return found
    output = rename_sites.output_key_symbol(doc, cursor, column, automatic)
    moved = _at_declaration(doc, output.declared, text_of) if output is not None else None
    if moved is not None:  # a key naming a model output: the references of the output's id
        cursor, line_text, row, column = moved
    # (the cursor's column: a pattern is read by its segment under it, as a rename there reads it)
    at = {"line_text": line_text, "column": column}
    locs: list[Loc] = navigation.references(doc, cursor, include_declaration, automatic, **at)
    every = locs if include_declaration else navigation.references(doc, cursor, True, automatic, **at)
    if not every:
        return locs  # nothing there refers to anything: no other spec is read for it
    # What is declared in a library or a base that other specs read: its uses there too, from
    # the place under the cursor and from a declaration in another file (a call's block; also
    # when the declaration is not asked for: the specs reading its file are those to read).
    here = cursor.loc.file
    places = [(here, row + 1, column + 1)]
    places += [(loc.file, loc.line, loc.column) for loc in every if loc.file != here]
    files = list(dict.fromkeys(file for file, _, _ in places))
    more = _more([(doc, automatic), *others], files, folders, reader)
    specs = [*others, *((spec.doc, spec.automatic) for spec in more)]
    for other, named in specs:
        for file, line, col in places:
            there = path_at(other, file, line, col) if workspace.reads(other, file) else None
            if there is not None:
                # (at the cursor's place, the other spec reads the same text: the same segment)
                asked = at if (file, line, col) == places[0] else {}
                found_there = navigation.references(other, there, include_declaration, named, **asked)
                locs += [loc for loc in found_there if loc not in locs]
    declared = navigation.declaration(doc, cursor, automatic, **at)
    if declared is not None:  # an id: the places a rename of it rewrites, as their segments
        symbol, read = rename_uses.id_symbol(*declared), _texts(more, text_of)
        for each, named in [(doc, automatic), *specs]:
            # a pattern names the id by a segment (`c` of `blk.c`): the range a rename edits,
            # which the editor highlights, not the whole token navigation locates
            for loc, places in rename_uses.pattern_segments(each, symbol, named, read).items():
                if loc in locs:
                    at = locs.index(loc)
                    locs[at : at + 1] = [_segment(place) for place in places]
            _add_places(locs, rename_uses.id_places(each, symbol, named, read), symbol, include_declaration)
            # the `until:` of a backbone item cutting at it
            for place in rename_uses.cut_references(each, symbol, read, reader):
                found = _segment(place)
                locs += [found] if found not in locs else []
    return locs


def _add_places(
    locs: list[Loc], places: Sequence[rename_uses.Place], symbol: rename_symbols.Symbol, include: bool
) -> None:
    """Add to ``locs`` the places a rename of the id ``symbol`` rewrites in one spec
    (:func:`cnnspec.lsp.rename_uses.id_places`) that are not there yet: a place that is part of a
    token (``out`` of ``u1.out``, a block's output read by a call in another file, which
    navigation reads by the call's scope alone) replaces that token where it is listed, as
    its segment; the keys naming it as a model output (``training.outputs.cnt``), each the
    name. The declaration is listed (first) only when asked for, as navigation lists it."""
    for place in places:
        if place.token == symbol.declared:
            continue  # (navigation lists the declaration, where it is asked for)
        if place.whole and place.token in locs:
            continue
        found = _segment(place.at)
        if place.token in locs:
            at = locs.index(place.token)
            locs[at : at + 1] = [found] if found not in locs else []
        elif found not in locs:
            locs.append(found)
    if include and symbol.declared not in locs:
        locs.insert(0, symbol.declared)


def _at_declaration(doc: SourceDoc, declared: Loc, text_of: TextOf) -> tuple[Cursor, str, int, int] | None:
    """The cursor at ``declared`` (in ``doc``), with its line's text, 0-based row and column."""
    cursor = path_at(doc, declared.file, declared.line, declared.column)
    text = text_of(declared.file)
    if cursor is None or text is None:
        return None
    lines = LINE_BREAK.split(text)
    row = declared.line - 1
    return cursor, lines[row] if row < len(lines) else "", row, declared.column - 1


def _segment(place: rename_symbols.Replacement) -> Loc:
    """The reference a rename's range is (1-based, as locations are); an empty one (a place
    the text does not pin) is its token."""
    if place.start == place.end:
        return Loc(place.file, place.line + 1, place.start + 1)
    return Segment(place.file, place.line + 1, place.start + 1, place.end + 1)


def _from_until(
    doc: SourceDoc,
    automatic: Automatic | None,
    symbol: rename_symbols.Symbol,
    file: str,
    include: bool,
    others: Sequence[Other],
    folders: Sequence[Path],
    reader: Reader | None,
    text_of: TextOf,
) -> list[Loc]:
    """The references of the id ``symbol`` of the backbone's spec ``file`` that the ``until:``
    under the cursor names: asked at its declaration in that spec (open, else read from its
    text), with ``doc`` one of the other specs (its ``until:`` is one of them)."""
    backbone = next(((each, named) for each, named in others if path_of(each.file) == path_of(file)), None)
    if backbone is None:
        loaded = rename_backbones.backbone_specs([doc], [symbol.declared.file], reader)
        spec = next((spec for spec in loaded if spec.path == path_of(file) and spec.compiles), None)
        if spec is None:
            return []  # (it does not compile: its own diagnostics say why)
        backbone, text_of = (spec.doc, spec.automatic), preferring(spec.texts, text_of)
    model, named = backbone
    declared = symbol.declared
    there = path_at(model, declared.file, declared.line, declared.column)
    lines = LINE_BREAK.split(text_of(declared.file) or "")
    if there is None or declared.line > len(lines):
        return []
    rest = [(doc, automatic), *(other for other in others if other[0] is not model)]
    line, column = lines[declared.line - 1], declared.column - 1
    return references(
        model,
        there,
        line,
        column,
        include,
        named,
        others=rest,
        folders=folders,
        reader=reader,
        text_of=text_of,
    )


def _from_cut(
    doc: SourceDoc,
    automatic: Automatic | None,
    cut: rename_uses.Cut,
    include: bool,
    others: Sequence[Other],
    folders: Sequence[Path],
    reader: Reader | None,
    text_of: TextOf,
) -> list[Loc]:
    """The references of what the ``until:`` under the cursor names though a rename refuses
    it (:func:`cnnspec.lsp.rename_uses.until_cut`): its declaration (where definition goes: the
    call of an automatic name, a zoo file's id, the layer's place), its uses in the backbone's
    spec (references and patterns naming the id; patterns naming the layer), and each
    ``until:`` that names it in ``doc``, the open specs and those of the workspace."""
    model = cut.model
    found: list[Loc] = [cut.declared] if include else []
    if cut.layer is None:
        symbol = rename_uses.id_symbol(cut.name, cut.declared)
        uses = navigation.id_references(model, ("outputs",), cut.name, cut.declared, False, cut.automatic)
        segments = rename_uses.pattern_segments(model, symbol, cut.automatic, text_of)
        for loc in uses:
            found += [_segment(place) for place in segments[loc]] if loc in segments else [loc]
    else:
        found += rename_uses.layer_patterns(cut)
    files = list(dict.fromkeys([cut.declared.file, model.file]))
    have = [(doc, automatic), *(other for other in others if other[0].file != model.file)]
    more = _more([*have, (model, cut.automatic)], files, folders, reader)
    read = _texts(more, text_of)
    for each, _ in [*have, *((spec.doc, spec.automatic) for spec in more)]:
        for place in rename_uses.cut_uses(each, cut, read, reader):
            loc = _segment(place)
            found += [loc] if loc not in found else []
    return found


def _name_references(
    symbol: rename_symbols.Symbol,
    specs: Sequence[Other],
    include: bool,
    text_of: TextOf,
    reader: Reader | None,
) -> list[Loc]:
    """The places of ``symbol`` in each of ``specs``, once each, the declaration first
    (when ``include``)."""
    found: list[Loc] = []
    for each, named in specs:
        places = rename_uses.name_references(each, symbol, named, text_of, reader)
        found += [loc for loc in places if loc not in found]
    rest = [loc for loc in found if loc != symbol.declared]
    return [symbol.declared, *rest] if include and symbol.declared in found else rest


def _overrides(symbol: rename_symbols.Symbol, specs: Sequence[Other]) -> list[Loc]:
    """The declarations of the var ``symbol`` again in the specs of ``specs`` that extend (or
    ``use:``) its file: a child's ``vars: {width: 8}`` overriding its base's ``width``. The
    composed document of such a spec keeps the overriding declaration; one in the var's own
    file (a ``variants`` row) is the var's."""
    found: list[Loc] = []
    for each, _ in specs:
        loc = each.key_locs.get(("vars", symbol.name))
        if loc is None or loc.file == symbol.declared.file or loc in found:
            continue
        if workspace.reads(each, symbol.declared.file):
            found.append(loc)
    return found


def _more(
    have: Sequence[Other], files: Sequence[str], folders: Sequence[Path], reader: Reader | None
) -> list[workspace.Spec]:
    """The specs that are none of ``have`` (nor included by them) and read one of ``files``:
    on disk in ``folders``, and those a backbone item of any of these names (in the workspace
    or not); those that compile, each once."""
    docs = [doc for doc, _ in have]
    loaded: dict[Path, workspace.Spec] = {}
    found = workspace.scan(folders) if folders else None
    if found is not None and found.capped:
        log.warning(
            "references: the workspace holds more than %d YAML files; the rest is not read", found.limit
        )
    for file in files if found is not None else ():
        for spec in workspace.closed_readers(file, found, [*docs, *(s.doc for s in loaded.values())], reader):
            loaded.setdefault(spec.path, spec)
    for spec in rename_backbones.backbone_specs([*docs, *(s.doc for s in loaded.values())], files, reader):
        loaded.setdefault(spec.path, spec)
    return [spec for spec in loaded.values() if spec.compiles]


def _texts(specs: Sequence[workspace.Spec], text_of: TextOf) -> TextOf:
    """``text_of``, except for the files ``specs`` read: the texts they were loaded from (their
    locations are positions in those)."""
    return preferring({path: text for spec in specs for path, text in spec.texts.items()}, text_of)


def span(loc: Loc, text: str | Lines, encoding: str = UTF16) -> Span:
    """The range of a reference at ``loc`` in ``text`` (or its :class:`Lines`, split once for
    every reference in the file: splitting it per reference made a name used a thousand times
    take seconds): a :class:`Segment` is its part of the token, a name inside a ``${…}``
    expression is the name alone (``width`` of ``${width*2}``), anything else its YAML token."""
    lines = text if isinstance(text, Lines) else Lines(text, encoding)
    row, column = loc.line - 1, loc.column - 1
    if isinstance(loc, Segment):
        return Span(row, lines.units(row, column), row, lines.units(row, loc.end - 1))
    line = lines.line(row)
    word = word_at(line, column) if in_expression(line, column) else None
    if word is not None and word[1] == column:
        return Span(row, lines.units(row, column), row, lines.units(row, word[2]))
    return lines.span(loc.line, loc.column)
