"""Every place a symbol is written (:class:`Sites`): its declaration, the references that mean it
by the resolver's scoping (``inputs:``, ``outputs:``, ``carry``/``next``, hierarchical names,
freeze patterns, ``search.space`` keys, ``${…}`` expressions), and the keys named after a model
output, each a :class:`~cnnspec.lsp.rename_symbols.Replacement` of exactly the name.
"""

from __future__ import annotations

import re

from cnnspec.errors import Loc, SpecPath
from cnnspec.lsp import navigation
from cnnspec.lsp.locate import Cursor, value_at
from cnnspec.lsp.patterns import written_patterns
from cnnspec.lsp.rename_reading import (
    automatic_call,
    bound_at,
    expression_reads,
    expressions_of,
    id_roots,
    names_one,
    output_key_at,
    output_keys,
    own_doc,
    space_id,
    space_keys,
)
from cnnspec.lsp.rename_symbols import (
    BLOCK,
    ID,
    NOWHERE,
    PARAMETER,
    VAR,
    RenameError,
    Replacement,
    Symbol,
    TextOf,
    Texts,
    default_text,
    loc_text,
)
from cnnspec.lsp.scopes import Automatic, is_block_input
from cnnspec.lsp.segments import lookup, segments
from cnnspec.spec.loader import SourceDoc
from cnnspec.spec.varchoices import KEY as VAR_CHOICES


def symbol_places(
    doc: SourceDoc, symbol: Symbol, automatic: Automatic | None, texts: Texts
) -> list[Replacement]:
    """Every place ``symbol`` is written in ``doc`` (its declaration first), as replacements
    that keep the old name (their ``text``); refused where one cannot be pinned to the text."""
    sites = Sites(doc, symbol, automatic, texts)
    if symbol.what == ID:
        sites.ids()
    elif symbol.what == BLOCK:
        sites.blocks()
    else:
        sites.names()
    return sites.found


class Sites:
    """Collects the places of one symbol in one document; ``lenient`` (for references, which
    edit nothing): a place the text does not pin is its value's start, an expression that does
    not parse reads nothing, instead of refusing."""

    def __init__(
        self,
        doc: SourceDoc,
        symbol: Symbol,
        automatic: Automatic | None,
        texts: Texts,
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
                f"cannot rename `{self.symbol.name}`: the text at {loc_text(loc)} is not written as "
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
        for root in id_roots(doc):
            for site, ref, loc in navigation.reference_sites(doc, root):
                self.add_segments(site, ref, loc)
        for _, pattern, loc in written_patterns(doc):
            if names_one(pattern):
                self.add_segments(("outputs",), pattern, loc)
        for key in space_keys(doc):
            if key.partition(".")[0] == name and space_id(doc, key) == declared:
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
        for root in id_roots(doc):
            for site, ref, loc in navigation.reference_sites(doc, root):
                self.automatic_segments(site, ref, loc, calls, automatic)
        for _, pattern, loc in written_patterns(doc):
            if names_one(pattern):
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
        for path, value, loc in expressions_of(doc):
            reads = self.reads(value)
            if reads and bound_at(doc, path, symbol.name) == symbol.declared:
                for start, end in reads:
                    self.add(loc, value, start, end)
        if symbol.what == VAR:
            for key in space_keys(doc):
                if key == f"vars.{symbol.name}":
                    self.add(doc.key_locs.get(("search", "space", key)), key, 5, len(key))
            self.var_keys()
        if symbol.what == PARAMETER:
            for path, kind in navigation.layer_items(doc):
                args = value_at(doc, (*path, kind)) if kind == symbol.block else None
                if isinstance(args, dict) and symbol.name in args:
                    self.add(doc.key_locs.get((*path, kind, symbol.name)), symbol.name, 0, len(symbol.name))

    def reads(self, value: str) -> list[tuple[int, int]]:
        """Where ``value``'s expressions read the symbol's name (:func:`expression_reads`)."""
        try:
            return expression_reads(value, self.symbol.name)
        except RenameError:
            if not self.lenient:
                raise
            return []  # (its own diagnostic says what is wrong with it)

    def var_keys(self) -> None:
        """The keys that name the var in the file declaring it, read from the file itself: the
        ``vars:`` entry (the composed document has a variants row's place instead when the
        variant built overrides it), its ``var_choices`` and the variants table's overrides."""
        name = self.symbol.name
        own = own_doc(self.symbol.declared.file, self.texts.text_of)
        if own is None:
            return
        table = own.data.get("variants")
        paths: list[SpecPath] = [("vars", name), (VAR_CHOICES, name)]
        paths += [("variants", v, "vars", name) for v in table] if isinstance(table, dict) else []
        for path in paths:
            self.add(own.key_locs.get(path), name, 0, len(name))


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
    if automatic_call(doc, declared) is not None:
        return None  # (an automatic name is renamed with its block)
    if declared == doc.key_locs.get(("input",)):
        return None
    return Symbol(ID, name, declared, NOWHERE)


def output_references(
    doc: SourceDoc, symbol: Symbol, automatic: Automatic | None = None, text_of: TextOf = default_text
) -> list[Replacement]:
    """The keys of ``doc`` that name the id ``symbol`` as a model output, as a rename rewrites
    them (each the name's range: ``cnt`` of ``training.outputs.cnt.loss_weight``)."""
    sites = Sites(doc, symbol, automatic, Texts(text_of), lenient=True)
    sites.output_keys()
    return [place for place in sites.found if place.start < place.end]
