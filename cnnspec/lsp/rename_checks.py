"""A rename checked before it is offered: a new name that is no identifier, is reserved, or is
taken in the symbol's scope is refused (it would be captured or would capture another), and the
rewritten specs are compiled again and compared with the old ones (the same model, every name
moved as asked), so an edit that would change the model is never sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnspec.analysis.freezing import Patterns
from cnnspec.errors import Loc, SpecError, SpecPath, format_path
from cnnspec.ir import INPUT, ModelIR
from cnnspec.layers.registry import REGISTRY
from cnnspec.lsp import navigation
from cnnspec.lsp.documents import SearchRun, check, is_library, path_of
from cnnspec.lsp.locate import value_at
from cnnspec.lsp.patterns import is_glob, written_patterns
from cnnspec.lsp.rename_reading import (
    bound_at,
    expression_reads,
    expressions_of,
    own_doc,
    sees_symbol,
    variant_row,
)
from cnnspec.lsp.rename_symbols import (
    BLOCK,
    ID,
    LOOP,
    PARAMETER,
    VAR,
    RenameError,
    Replacement,
    Symbol,
    TextOf,
    loc_said,
    loc_text,
)
from cnnspec.lsp.scopes import block_inputs, root_of
from cnnspec.spec.compose import Reader, load_library
from cnnspec.spec.expr import unreadable_name
from cnnspec.spec.linebreaks import LINE_BREAK
from cnnspec.spec.loader import SOURCE_TEXTS, SourceDoc
from cnnspec.spec.scope import COMBINATORS, IDENTIFIER, RESERVED_BLOCK_NAMES


def check_name(symbol: Symbol, new: str, docs: Sequence[SourceDoc]) -> None:
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
                    f"a block named `{new}` already exists ({loc_said(doc.key_locs.get(('blocks', new)))})"
                )
        elif what == VAR:
            variables = doc.data.get("vars")
            if isinstance(variables, dict) and new in variables:
                raise RenameError(
                    f"a var named `{new}` already exists ({loc_said(doc.key_locs.get(('vars', new)))})"
                )
        elif what == PARAMETER:
            params = value_at(doc, ("blocks", symbol.block, "params"))
            if isinstance(params, dict) and new in params:
                raise RenameError(f"block `{symbol.block}` already has a parameter `{new}`")


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
            found[name.name] = loc_said(name.loc)
    for item, kind in navigation.layer_items(doc):
        if item[: len(root)] != root:
            continue
        value = value_at(doc, (*item, "id"))
        if isinstance(value, str):
            found.setdefault(value, loc_said(doc.locs.get((*item, "id"))))
        carry = value_at(doc, (*item, kind, "carry")) if kind == "repeat" else None
        for name in carry if isinstance(carry, dict) else ():
            found.setdefault(str(name), loc_said(doc.key_locs.get((*item, kind, "carry", name))))
    return found


def check_redeclared(doc: SourceDoc, symbol: Symbol, text_of: TextOf) -> None:
    """Refuse when a file the spec reads declares the name again (a child overriding its base's
    var, a block both define): the composed document keeps one declaration, and a rename of it
    would leave the other behind (the base alone would then read a name it does not declare)."""
    where = {VAR: ("vars", symbol.name), BLOCK: ("blocks", symbol.name)}.get(symbol.what)
    if symbol.what == PARAMETER:
        where = ("blocks", symbol.block, "params", symbol.name)
    if where is None:
        return
    for file in dict.fromkeys([doc.file, *doc.includes]):
        own = own_doc(file, text_of)
        loc = own.key_locs.get(where) if own is not None else None
        if loc is not None and loc != symbol.declared and not variant_row(own, symbol):
            # the composed document keeps the overriding declaration: the child's, whichever
            # of the two files the rename was asked in
            kept = doc.key_locs.get(where)
            first, then = (symbol.declared, loc) if kept == loc else (loc, symbol.declared)
            which = ", which overrides it" if kept in (loc, symbol.declared) else ""
            raise RenameError(
                f"cannot rename `{symbol.name}`: it is declared at {loc_text(first)} and again at "
                f"{loc_text(then)}{which}; rename both by hand"
            )


def check_capture(doc: SourceDoc, symbol: Symbol, new: str) -> None:
    """Refuse a new name that an expression the rename rewrites would read as something else
    (a block parameter named like the new var), or that an expression inside the renamed
    name's scope reads today (a var that a parameter of the new name would hide)."""
    for path, value, loc in expressions_of(doc):
        touched = expression_reads(value, symbol.name) and bound_at(doc, path, symbol.name) == symbol.declared
        if touched and bound_at(doc, path, new) is not None:
            raise RenameError(
                f"`{new}` already names something else where {loc_text(loc)} reads `{symbol.name}`"
            )
        inner = symbol.what in (PARAMETER, LOOP)  # (a var hides nothing: an inner name wins over it)
        if inner and expression_reads(value, new) and sees_symbol(doc, path, symbol):
            raise RenameError(
                f"`{new}` is read at {loc_text(loc)}: renaming `{symbol.name}` to it would hide it"
            )


# -- checking the result ----------------------------------------------------------------------------
def apply(text: str, replacements: Sequence[Replacement]) -> str:
    """``text`` with ``replacements`` (code points, on its lines) made."""
    lines = LINE_BREAK.split(text)
    breaks = LINE_BREAK.findall(text)
    for place in sorted(replacements, key=lambda r: (r.line, r.start), reverse=True):
        line = lines[place.line]
        lines[place.line] = line[: place.start] + place.text + line[place.end :]
    return "".join(line + (breaks[i] if i < len(breaks) else "") for i, line in enumerate(lines))


def verify_rename(
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
        errors = [f"{d.message} ({loc_said(d.loc)})" for d in analysis.diagnostics if d.severity == "error"]
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
