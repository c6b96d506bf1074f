"""Where a spec writes names, read off its composed document: the sections a rename searches, the
``${…}`` expressions and the whole names they read, the ``search.space`` keys, the keys named
after a model output (:data:`OUTPUT_KEYED`), hierarchical names in patterns, and the ids a
scope binds.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from cnnspec.errors import Loc, SpecError, SpecPath
from cnnspec.lsp import navigation
from cnnspec.lsp.locate import Cursor, item_path, value_at
from cnnspec.lsp.names import names_at
from cnnspec.lsp.patterns import is_glob
from cnnspec.lsp.rename_symbols import VAR, RenameError, Symbol, TextOf
from cnnspec.lsp.scopes import Automatic
from cnnspec.spec.expr import EMBEDDED_EXPRESSION, FULL_EXPRESSION, FUNCTIONS
from cnnspec.spec.loader import SourceDoc, load_text
from cnnspec.spec.scope import IDENTIFIER

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: A hierarchical name as a pattern spells it: ``st[1].inner``'s brackets are an iteration.
_HIERARCHICAL = re.compile(r"[^*?\[\]]+(?:\[\d+\][^*?\[\]]*)*")
#: The sections keyed by the model's output names (an output item's id): each output's training
#: settings and the ``shapes`` source's target per output. (An ``npz`` file's array names are
#: data, not spec text: not rewritten; a rename that leaves them apart is refused by its check.)
OUTPUT_KEYED: tuple[SpecPath, ...] = (("training", "outputs"), ("data", "source", "shapes", "target"))


def space_id(doc: SourceDoc, key: str) -> Loc | None:
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


def names_one(pattern: str) -> bool:
    """Whether a freeze/unfreeze pattern is a name (``stem``, ``st[1].inner``), not a glob
    (``stem*``, ``conv2d_[12]``): an index after a name reads as an iteration."""
    return not is_glob(pattern) or (
        _HIERARCHICAL.fullmatch(pattern) is not None and not pattern.startswith("[")
    )


def automatic_call(doc: SourceDoc, loc: Loc) -> str | None:
    """The block called by the item whose kind key is at ``loc`` (the declaration of a call's
    automatic name), else ``None``."""
    for path, kind in navigation.layer_items(doc):
        if kind is not None and doc.key_locs.get((*path, kind)) == loc:
            return kind
    return None


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
    for key in space_keys(doc):
        for section in OUTPUT_KEYED:
            prefix = ".".join(map(str, section)) + "."
            name = key[len(prefix) :].partition(".")[0] if key.startswith(prefix) else ""
            loc = doc.key_locs.get(("search", "space", key))
            if name and loc is not None:
                yield name, loc, key, len(prefix)


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


def own_doc(file: str, text_of: TextOf) -> SourceDoc | None:
    """``file`` as written, uncomposed (its own positions), else ``None``."""
    text = text_of(file)
    try:
        return load_text(text, file) if text is not None else None
    except SpecError:
        return None  # (its own diagnostics say why)


def bound_at(doc: SourceDoc, path: SpecPath, name: str) -> Loc | None:
    """Where the name an expression at ``path`` reads as ``name`` is declared."""
    found = names_at(doc, path).get(name)
    return found.loc if found is not None else None


def id_roots(doc: SourceDoc) -> list[SpecPath]:
    """Every id scope of the document: the model, the augmentation and each block's layers."""
    blocks = doc.data.get("blocks")
    names = [name for name in blocks if isinstance(name, str)] if isinstance(blocks, dict) else []
    return [("model",), ("augmentation",), *(("blocks", name, "layers") for name in names)]


def space_keys(doc: SourceDoc) -> list[str]:
    space = value_at(doc, ("search", "space"))
    return [key for key in space if isinstance(key, str)] if isinstance(space, dict) else []


def expressions_of(doc: SourceDoc) -> Iterator[tuple[SpecPath, str, Loc]]:
    """Every string value with a ``${…}`` expression: its path, its text and its place."""
    for path, loc in list(doc.locs.items()):
        value = value_at(doc, path)
        if isinstance(value, str) and "${" in value:
            yield path, value, loc


def expression_reads(value: str, name: str) -> list[tuple[int, int]]:
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


def variant_row(own: SourceDoc | None, symbol: Symbol) -> bool:
    """Whether the var ``symbol`` is declared at a variants row of ``own``: the composed
    document places a var the built variant overrides there, and the file's own ``vars:``
    entry is then the same var, not a second declaration."""
    table = own.data.get("variants") if own is not None and symbol.what == VAR else None
    rows = [("variants", v, "vars", symbol.name) for v in table] if isinstance(table, dict) else []
    return any(own is not None and own.key_locs.get(row) == symbol.declared for row in rows)


def sees_symbol(doc: SourceDoc, path: SpecPath, symbol: Symbol) -> bool:
    """Whether an expression at ``path`` sees ``symbol`` (it could read it)."""
    found = names_at(doc, path).get(symbol.name)
    return found is not None and found.loc == symbol.declared
