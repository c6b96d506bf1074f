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

Refused (:func:`~cnnspec.lsp.rename_target.located` finds no symbol, so ``prepareRename`` answers
that nothing can be renamed there): a layer kind, a layer's parameter, a combinator, a glob
pattern, a comment, an implicit name (``in_channels``), an automatic name, a generated id (``id:
"c${i}"``), the model's input (``input``). A name written in the packaged zoo (a zoo library's
block, a zoo backbone's var) is refused saying so.

The new name must be an identifier (:data:`cnnspec.spec.scope.IDENTIFIER`, ASCII) that
``${…}`` can read for a var, parameter or loop variable
(:func:`cnnspec.spec.expr.unreadable_name`), neither ``input`` nor the model input's name for
an id, no reserved word (:data:`~cnnspec.spec.scope.RESERVED_BLOCK_NAMES`) nor layer kind for
a block (the resolver refuses both: an item ``- conv2d`` never calls a block), and no name
already declared where the renamed one is (ids of the same id scope, blocks, vars, the block's
parameters), nor one an expression that the rename touches would then read instead.

**The safe behaviour for what text cannot tell**: a rename is checked by compiling every spec it
touches before and after (TF-free, milliseconds): the rewritten spec must compile, to the same
model up to names (the same layers, kinds, parameters, shapes, counts, wiring and outputs), and
every freeze/unfreeze pattern must cover the same layers as before. A glob pattern is never
rewritten; when the rename would change what a glob covers (``stem*`` once ``stem`` is
``base``), or a reference the text cannot follow (a pattern naming an automatic layer name, a
quoted name with escapes) would break, the rename is refused with
:class:`~cnnspec.lsp.rename_symbols.RenameError`, whose message names the pattern or the place:
the editor shows it and nothing is changed. A spec that does not compile before the rename is
refused too: nothing could tell what the rename changes.

Not followed: files outside the workspace's folders that no open spec is (or reads), a spec
that already does not compile (left as it is, as an open one is; the log says which),
``--set`` options (they are on command lines, not in files), an ``npz`` file's array names
(``y_train_cnt``: data, not spec text), a monitored metric's name (``val_cnt_loss``: the
compiled check refuses the rename) and names through another spec's backbone item
(``body.conv4``, ``until: double_1.c`` after a block rename): the last make the compiled check
fail, so such a rename is refused rather than half done.

Positions here are code points (:class:`~cnnspec.lsp.rename_symbols.Replacement`); the server
converts them to the encoding agreed with the client.

This module holds :func:`rename` and the workspace it reads. Its parts, each a module:
:mod:`~cnnspec.lsp.rename_symbols` (what a rename works with), :mod:`~cnnspec.lsp.rename_reading`
(where a spec writes names), :mod:`~cnnspec.lsp.rename_sites` (every place of a symbol),
:mod:`~cnnspec.lsp.rename_backbones` (renames across a backbone item),
:mod:`~cnnspec.lsp.rename_target` (what is under the cursor), :mod:`~cnnspec.lsp.rename_checks`
(the new name and the result checked) and :mod:`~cnnspec.lsp.rename_uses` (the same search for
``textDocument/references``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from cnnspec.lsp import navigation, workspace
from cnnspec.lsp.documents import path_of
from cnnspec.lsp.locate import Cursor
from cnnspec.lsp.rename_backbones import backbone_specs, cut_places, cutting_items, preferring, zoo_root
from cnnspec.lsp.rename_checks import check_capture, check_name, check_redeclared, verify_rename
from cnnspec.lsp.rename_sites import symbol_places
from cnnspec.lsp.rename_symbols import (
    LOOP,
    PARAMETER,
    VAR,
    Other,
    RenameError,
    Replacement,
    Symbol,
    TextOf,
    Texts,
    default_text,
)
from cnnspec.lsp.rename_target import located, until_refusal
from cnnspec.lsp.scopes import Automatic
from cnnspec.spec.compose import Reader
from cnnspec.spec.loader import SourceDoc

log = logging.getLogger("cnnspec.lsp")


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
    an open file (else the disk's), to compile the specs before and after; ``others``: the other
    open specs, rewritten too where they read the file that declares the name; ``row``: the
    cursor's 0-based line (:func:`~cnnspec.lsp.rename_target.located`); ``folders``: the
    workspace's folders, whose specs that read that file are rewritten too
    (:mod:`cnnspec.lsp.workspace`). Raises :class:`~cnnspec.lsp.rename_symbols.RenameError` with
    the reason when the rename is refused (see the module)."""
    symbol, packaged = located(doc, cursor, line_text, column, automatic, text_of, row, reader)
    if symbol is None and navigation.is_until(doc, cursor):
        raise RenameError(until_refusal(doc, cursor, line_text, column, reader))
    if packaged is not None:
        raise RenameError(packaged)
    if symbol is None:
        raise RenameError(
            "nothing to rename here: only ids, blocks, vars, block parameters and loop variables"
        )
    check_name(symbol, new_name, [doc])  # (before the workspace is read: a typo is told at once)
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
    texts = Texts(text_of)
    candidates: list[Other] = [*opened, *((spec.doc, spec.automatic) for spec in loaded)]
    docs: list[Other] = [(doc, automatic)]
    for other, names in candidates:
        if workspace.reads(other, file) and all(other.file != each.file for each, _ in docs):
            docs.append((other, names))
    cutting = [(each, cutting_items(each, file, reader)) for each, _ in [(doc, automatic), *candidates]]
    cutting = [(each, items) for each, items in cutting if items]
    check_name(symbol, new_name, [d for d, _ in docs])
    found: dict[Replacement, None] = {}  # (ordered, each place once: a list's `in` was quadratic)
    for each, names in docs:
        check_redeclared(each, symbol, text_of)
        found.update(dict.fromkeys(symbol_places(each, symbol, names, texts)))
    for each, items in cutting:
        for item, model in items:
            found.update(dict.fromkeys(cut_places(each, item, model, symbol, texts)))
    if symbol.what in (VAR, PARAMETER, LOOP):
        for each, _ in docs:
            check_capture(each, symbol, new_name)
    zoo = zoo_root()
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
    verify_rename(list(checked.values()), changes, text_of, reader, symbol, new_name)
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
