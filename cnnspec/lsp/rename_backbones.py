"""Renames across a backbone item: the specs a backbone (a file or a ``zoo:`` model) reads, its
model compiled for the names its cut (``until:``) looks up, and the places in the backbone's
spec a rename of its id rewrites.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cnnspec.errors import SpecError, SpecPath
from cnnspec.ir import ModelIR
from cnnspec.lsp import navigation, workspace
from cnnspec.lsp.documents import path_of
from cnnspec.lsp.locate import Cursor, item_path, value_at
from cnnspec.lsp.rename_sites import Sites
from cnnspec.lsp.rename_symbols import ID, VAR, Replacement, Symbol, TextOf, Texts
from cnnspec.lsp.scopes import Automatic
from cnnspec.resources import zoo_dir
from cnnspec.spec.backbone import KIND as BACKBONE
from cnnspec.spec.compose import Reader
from cnnspec.spec.loader import SOURCE_TEXTS, SourceDoc
from cnnspec.spec.zoo import is_zoo_ref


def until_model(
    doc: SourceDoc, cursor: Cursor, reader: Reader | None, zoo: bool = False
) -> tuple[SpecPath, SourceDoc] | None:
    """The backbone item (its body's path) whose ``until:`` is under the cursor, with its
    spec's composed document (read through ``reader``), as :func:`cutting_items` reads it; ``None``
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
                for _, model in cutting_items(each, file, reader):
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


def cutting_items(
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


def cut_places(
    doc: SourceDoc, item: SpecPath, model: SourceDoc, symbol: Symbol, texts: Texts, lenient: bool = False
) -> list[Replacement]:
    """Where the backbone item at ``item`` of ``doc``, whose spec is ``model``, names
    ``symbol``: the var's key under its ``vars:``; each segment of its ``until:`` that leads
    to the id, as the resolver looks it up in ``model`` (at the item's vars)."""
    body = (*item, BACKBONE)
    sites = Sites(model, symbol, None, texts, lenient)
    if symbol.what == VAR and model.key_locs.get(("vars", symbol.name)) == symbol.declared:
        sites.add(doc.key_locs.get((*body, "vars", symbol.name)), symbol.name, 0, len(symbol.name))
    until, loc = value_at(doc, (*body, "until")), doc.locs.get((*body, "until"))
    if symbol.what == ID and isinstance(until, str) and loc is not None:
        sites.automatic = backbone_names(doc, body, model)
        sites.add_segments(("outputs",), until, loc)
    return sites.found


def backbone_names(doc: SourceDoc, body: SpecPath, model: SourceDoc) -> Automatic | None:
    """The automatic names of the block calls of the backbone spec ``model`` at the vars the
    item at ``body`` sets (as ``until:`` reads them: ``until: double_1.c``)."""
    ir = backbone_ir(doc, body, model)
    # (None: its ids are in its text still, only automatic names are not followed)
    return navigation.automatic_names(model, ir) if ir is not None else None


def backbone_ir(doc: SourceDoc, body: SpecPath, model: SourceDoc) -> ModelIR | None:
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


def zoo_root() -> Path | None:
    try:
        return zoo_dir().resolve()
    except (OSError, ImportError):
        return None
