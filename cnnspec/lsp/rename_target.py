"""What a rename is asked on (:func:`located`): the symbol under the cursor (an id, a block, a var,
a parameter or a loop variable, from its declaration or any use), including a backbone item's
``until:`` segment and a backbone's ``vars:`` key, or why the name there cannot be renamed.
"""

from __future__ import annotations

from cnnspec.errors import Loc, SpecPath
from cnnspec.lsp import navigation
from cnnspec.lsp.documents import path_of
from cnnspec.lsp.locate import Cursor, item_path, kind_of, path_at, value_at
from cnnspec.lsp.names import names_at
from cnnspec.lsp.patterns import pattern_at
from cnnspec.lsp.rename_backbones import backbone_names, cut_places, cutting_items, until_model, zoo_root
from cnnspec.lsp.rename_reading import automatic_call, names_one, own_doc, space_id, variant_row
from cnnspec.lsp.rename_sites import output_key_symbol, symbol_places
from cnnspec.lsp.rename_symbols import (
    BLOCK,
    ID,
    LOOP,
    NOWHERE,
    PARAMETER,
    VAR,
    RenameError,
    Symbol,
    TextOf,
    Texts,
    default_text,
)
from cnnspec.lsp.scopes import Automatic, is_block_input
from cnnspec.lsp.segments import lookup, segment_at
from cnnspec.lsp.text import in_expression, word_at
from cnnspec.spec.backbone import KIND as BACKBONE
from cnnspec.spec.compose import Reader
from cnnspec.spec.loader import SourceDoc
from cnnspec.spec.varchoices import KEY as VAR_CHOICES
from cnnspec.spec.zoo import is_zoo_ref


def located(
    doc: SourceDoc,
    cursor: Cursor,
    line_text: str,
    column: int,
    automatic: Automatic | None = None,
    text_of: TextOf = default_text,
    row: int | None = None,
    reader: Reader | None = None,
) -> tuple[Symbol | None, str | None]:
    """The renamable name under the cursor (``column``: 0-based code points of ``line_text``,
    on 0-based line ``row``, by default the cursor's location's), or ``None`` where nothing can
    be renamed: the name's range must be one of the places a rename rewrites (so a cursor
    between names, on ``c0[1]``'s index, gets nothing), and none of them may be in the zoo.
    On a backbone item's ``until:``, the id of the backbone's spec (read through ``reader``,
    the editor's text of an open file) that the segment under the cursor leads to; on a key
    under its ``vars:``, the var of that spec it sets. Second: why a name found is not renamed
    (it is written in the packaged zoo: a zoo backbone's var, a zoo library's block), else
    ``None``."""
    try:
        if navigation.is_until(doc, cursor):
            symbol = until_target(doc, cursor, line_text, column, reader)
        else:
            symbol = (
                backbone_var_target(doc, cursor, reader)
                or variant_var_target(doc, cursor, column, row, text_of)
                or output_key_symbol(doc, cursor, column, automatic)
                or cursor_symbol(doc, cursor, line_text, column, automatic)
            )
    except (KeyError, IndexError, TypeError, ValueError):
        return None, None
    if symbol is None:
        return None, None
    zoo = zoo_root()
    if zoo is not None and path_of(symbol.declared.file).is_relative_to(zoo):  # (its text need not be read)
        return None, _packaged(symbol, symbol.declared.file)
    texts = Texts(text_of)
    try:
        places = symbol_places(doc, symbol, automatic, texts)
        # (an id or var of a backbone's spec: where this spec's `until:` or `vars:` names it)
        for item, model in cutting_items(doc, symbol.declared.file, reader):
            places += cut_places(doc, item, model, symbol, texts)
    except RenameError:
        return None, None
    row = cursor.loc.line - 1 if row is None else row
    packaged = next((p.file for p in places if zoo is not None and path_of(p.file).is_relative_to(zoo)), None)
    if packaged is not None:  # the packaged zoo is not the user's to edit
        return None, _packaged(symbol, packaged)
    for place in places:
        if place.file == cursor.loc.file and place.line == row and place.start <= column <= place.end:
            return Symbol(symbol.what, symbol.name, symbol.declared, place, symbol.block), None
    return None, None


def _packaged(symbol: Symbol, file: str) -> str:
    """Why ``symbol`` is not renamed: it is written in ``file`` of the packaged zoo."""
    return (
        f"cannot rename `{symbol.name}`: it is written in the packaged zoo file {file}, "
        "which is not yours to edit"
    )


def backbone_var_target(doc: SourceDoc, cursor: Cursor, reader: Reader | None) -> Symbol | None:
    """On a key under a backbone item's ``vars:``: the var of the backbone's spec it sets
    (:func:`cnnspec.lsp.navigation.backbone_var`)."""
    found = navigation.backbone_var(doc, cursor, reader)
    return Symbol(VAR, found[0], found[1], NOWHERE) if found is not None else None


def variant_var_target(
    doc: SourceDoc, cursor: Cursor, column: int, row: int | None, text_of: TextOf
) -> Symbol | None:
    """On a family file's own ``vars:`` key (or a ``variants`` row's) of a var that the variant
    built overrides: that var. The composed document declares such a var at the variant's row
    (:func:`variant_row`), so the cursor's path there is not the key's; the file as written
    (``text_of``) says which key is under the cursor (``column`` on 0-based line ``row``)."""
    own = own_doc(cursor.loc.file, text_of)
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
    symbol = Symbol(VAR, name, declared, NOWHERE)
    return symbol if variant_row(own, symbol) else None


def cursor_symbol(
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
        return Symbol(what, name.name, name.loc, NOWHERE, block)
    block = navigation.block_at(doc, cursor)
    if block is not None:
        loc = doc.key_locs.get(("blocks", block))
        return Symbol(BLOCK, block, loc, NOWHERE) if loc is not None else None
    pattern = pattern_at(doc, path, cursor.on_key)  # (a learning_rate_scale's key is one)
    if cursor.on_key and pattern is None:
        return _key_target(doc, cursor, line_text, column, automatic)
    if len(path) >= 2 and path[-1] == "as" and path[-2] == "repeat":
        var = value_at(doc, path)
        loc = doc.locs.get(path)
        return Symbol(LOOP, var, loc, NOWHERE) if isinstance(var, str) and loc is not None else None
    if pattern is not None:
        if not names_one(pattern):
            return None
        return _segment_target(doc, ("outputs",), pattern, cursor, line_text, column, automatic)
    if (path and path[-1] == "id") or is_block_input(path):
        value = value_at(doc, path)
        loc = doc.locs.get(path)
        if not isinstance(value, str) or "${" in value or loc is None:
            return None
        return Symbol(ID, value, loc, NOWHERE)
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
        return Symbol(VAR, path[1], loc, NOWHERE)
    if len(path) == 2 and path[0] == VAR_CHOICES and isinstance(path[1], str):
        declared = doc.key_locs.get(("vars", path[1]))  # the choices of a var: rename the var
        return Symbol(VAR, path[1], declared, NOWHERE) if declared is not None else None
    if len(path) == 4 and path[0] == "blocks" and path[2] == "params" and isinstance(path[3], str):
        return Symbol(PARAMETER, path[3], loc, NOWHERE, str(path[1]))
    if navigation.carry_key_at(cursor):
        return Symbol(ID, str(path[-1]), loc, NOWHERE)
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
            return Symbol(PARAMETER, path[-1], declared, NOWHERE, kind) if declared is not None else None
    ref = navigation.reference_at(doc, cursor)  # a `next` key: the carried name
    if ref is not None:
        return _segment_target(doc, path, ref, cursor, line_text, column, automatic)
    return None


def until_target(
    doc: SourceDoc, cursor: Cursor, line_text: str, column: int, reader: Reader | None
) -> Symbol | None:
    """The id that the segment of a backbone item's ``until:`` under the cursor leads to in
    the backbone's spec, as the resolver looks it up there (the model's scope after its last
    item, at the item's vars: :func:`cut_places`); ``None`` for what is no renamable id (an
    automatic name, a layer's name, the model's input): :func:`until_refusal` says which."""
    until = value_at(doc, cursor.path)
    found = until_model(doc, cursor, reader)
    if found is None or not isinstance(until, str):
        return None
    body, model = found
    automatic = backbone_names(doc, body, model)
    return _segment_target(model, ("outputs",), until, cursor, line_text, column, automatic)


def until_refusal(doc: SourceDoc, cursor: Cursor, line_text: str, column: int, reader: Reader | None) -> str:
    """Why the ``until:`` segment under the cursor cannot be renamed (:func:`until_target`
    found no id, or :func:`located` refused it)."""
    until = value_at(doc, cursor.path)
    item = item_path(cursor.path)
    ref = value_at(doc, (*item, BACKBONE, "spec")) if item is not None else None
    head = f"cannot rename at `until: {until}`"
    if isinstance(ref, str) and is_zoo_ref(ref):
        return f"{head}: it names a cut point of the packaged zoo model {ref}, which is not yours to edit"
    found = until_model(doc, cursor, reader)
    if found is None or not isinstance(until, str):
        return f"{head}: the backbone's spec {ref!r} cannot be read (its diagnostic says why)"
    body, model = found
    automatic = backbone_names(doc, body, model)
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
    call = automatic_call(model, declared)
    if call is not None:
        return (
            f"cannot rename `{name}`: it is the automatic name of a call of block `{call}` in "
            f"{model.file}; rename the block (the calls' names follow it)"
        )
    if declared == model.key_locs.get(("input",)):
        return f"cannot rename `{name}`: it is the model's input of {model.file}"
    zoo = zoo_root()
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
        return Symbol(VAR, rest, declared, NOWHERE) if declared is not None else None
    declared = space_id(doc, key)
    return Symbol(ID, head, declared, NOWHERE) if declared is not None and offset <= len(head) else None


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
    if automatic_call(doc, declared) is not None or declared == doc.key_locs.get(("input",)):
        return None  # an automatic name (renamed with its block) or the model's input
    return Symbol(ID, ref[start:end], declared, NOWHERE)
