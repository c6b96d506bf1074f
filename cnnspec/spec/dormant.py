"""Checks of the layer items a compilation does not expand: an item whose ``when`` is false, the
layers of a ``repeat`` of 0 times, the blocks called only there, and the spec's own blocks
nothing calls (a ``use:`` library's are checked where a spec calls them, in its context); and
an item an error of its own stopped before its layer was read (a failed ``when``, ``inputs`` or
``trainable``), and the body of a block whose call failed on its arguments.

The resolver checks an item as it expands it, with the values of its vars, arguments and
shapes. A mistake in an item it skips would wait, unseen, for the var that turns the item on
(``--set vars.big=true``, a family's other variant), although nothing in it depends on a value:
a misspelt kind or parameter, an argument a block does not declare, a written-out value the
parameter refuses, a required parameter or argument left out (a layer's may come from the
per-kind ``defaults`` in force there: the spec's and its block's). Those are checked here, with
the resolver's own messages; an expression (``${…}``) is left alone, since it has no value where
nothing runs. An item expanded anywhere (another call of its block, another iteration) is not
checked again: its expansion was.

The blocks such an item calls, and those their bodies call in turn, are used (no "defined but
never used" warning): :func:`called_blocks`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from cnnspec.errors import SpecPath, closest
from cnnspec.layers import REGISTRY
from cnnspec.layers.params import meant_parameters
from cnnspec.spec.backbone import KIND as BACKBONE
from cnnspec.spec.expr import is_expression
from cnnspec.spec.items import item_kind
from cnnspec.spec.resolve_layers import tuple_fragments
from cnnspec.spec.scope import COMBINATORS

if TYPE_CHECKING:
    from cnnspec.spec.resolve import Resolver


def check_dormant(
    resolver: Resolver, roots: Iterable[tuple[Any, SpecPath]], *, library: bool = False
) -> None:
    """Check each root (a layer item, or a list of them, and its path) and what it nests,
    each item once, skipping those ``resolver`` expanded (``resolver.expanded``: their ids).
    ``library``: the roots are a block library's, checked without a spec, whose per-kind
    ``defaults`` may give a layer a required parameter; one left out is then not reported."""
    check = _Check(resolver, library)
    for value, path in roots:
        if isinstance(value, list):
            check.items(value, path)
        else:
            check.item(value, path)


def called_blocks(resolver: Resolver, roots: Iterable[tuple[Any, SpecPath]]) -> set[str]:
    """The blocks that the items of ``roots`` (as :func:`check_dormant` takes them) call, and
    those the bodies of these blocks call in turn: called, only not this time (a false
    ``when``, a ``repeat`` of 0 times), they are not "defined but never used"."""
    found: set[str] = set()
    stack: list[Any] = [value for value, _ in roots]
    while stack:  # (no recursion: nesting may be as deep as the loader allows)
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
            continue
        kind_key, body = item_kind(value)
        if kind_key in COMBINATORS:
            stack.extend(lists for lists, _ in _layer_lists(body, ()))
        elif isinstance(kind_key, str) and kind_key in resolver.blocks and kind_key not in found:
            found.add(kind_key)
            block = resolver.blocks[kind_key]
            stack.append(block.get("layers") if isinstance(block, dict) else None)
    return found


class _Check:
    """One run of :func:`check_dormant`: the items checked (by id), and the names of the
    parameters each block's per-kind defaults give (by block, ``None`` for the model)."""

    def __init__(self, resolver: Resolver, library: bool) -> None:
        self.resolver = resolver
        self.library = library
        self.seen: set[int] = set(resolver.expanded)
        self.defaults: dict[str | None, dict[str, set[str]]] = {}

    def items(self, items: Any, path: SpecPath) -> None:
        if isinstance(items, list):  # (another value is the schema's to report)
            for index, item in enumerate(items):
                self.item(item, (*path, index))

    def item(self, item: Any, path: SpecPath) -> None:
        if id(item) in self.seen:
            return
        self.seen.add(id(item))
        kind_key, body = item_kind(item)
        if kind_key is None:
            return  # no kind to check (the walk says so where the item is expanded)
        resolver = self.resolver
        kpath = (*path, kind_key)
        if kind_key in resolver.bad_blocks:
            return  # a block whose declaration was refused (a layer kind's name): its error says it
        if kind_key in REGISTRY:
            self.layer(kind_key, body, kpath)
        elif kind_key in COMBINATORS:
            for layers, lpath in _layer_lists(body, kpath):
                self.items(layers, lpath)
        elif kind_key == BACKBONE:
            return  # another spec's layers: checked as that spec
        elif kind_key in resolver.blocks:
            self.block_call(kind_key, body, kpath)
        else:
            resolver.unknown_kind(kind_key, body, kpath)

    def layer(self, kind_name: str, body: Any, path: SpecPath) -> None:
        resolver = self.resolver
        kind = REGISTRY[kind_name]
        written = resolver.layer_params(kind, body, path)
        if written is None:
            return
        raw, single = written
        tuples = {} if single else tuple_fragments(raw)
        for key, value in raw.items():
            if key in tuples:  # `kernel_size: (3, 3)`, which YAML cut at the comma: said whole, once
                if tuples[key] is None:
                    continue
                value = tuples[key]
            param = kind.param_index.get(key)
            ppath = path if single else (*path, key)
            if param is None:
                resolver.unknown_parameter(kind, key, raw, ppath)
            elif _written_out(value):
                resolver.param_error(param, value, ppath, param.hint(value))
        if self.library:
            return  # a spec that calls the block may give the rest in its `defaults`
        given = self.defaulted(path).get(kind.name, set())
        missing = [name for name in kind.required_names if name not in raw and name not in given]
        meant = meant_parameters(raw, kind.param_index, missing) if missing else set()
        for name in missing:
            if name not in meant:  # (a misspelt one: its unknown-parameter error says it)
                resolver.missing_parameter(kind, name, path)

    def defaulted(self, path: SpecPath) -> dict[str, set[str]]:
        """The parameters, by kind, that the per-kind defaults in force at ``path`` give: the
        spec's, and in a block's body the block's too (whatever their values: one that fails is
        reported where it is declared, and its layers stay silent, as the resolver's do)."""
        blocks = self.resolver.blocks
        block = path[1] if len(path) > 1 and path[0] == "blocks" and path[1] in blocks else None
        found = self.defaults.get(block)
        if found is None:
            found = _default_names(self.resolver.data.get("defaults"))
            body = blocks[block] if block is not None else None
            for kind, names in _default_names(
                body.get("defaults") if isinstance(body, dict) else None
            ).items():
                found.setdefault(kind, set()).update(names)
            self.defaults[block] = found
        return found

    def block_call(self, name: str, body: Any, path: SpecPath) -> None:
        """A call's arguments (names, values written out in full, the required ones left out),
        and the block's own items (those no expanded call reached)."""
        resolver = self.resolver
        if not resolver.block_signature(name):
            return  # (a refused block's error says why)
        declared = resolver.block_params(name)
        arguments = resolver.call_arguments(name, body, path, declared)
        if arguments is not None:
            raw, located = arguments
            for key, value in raw.items():
                param = declared.get(key)
                if param is None:
                    resolver.unknown_argument(name, key, declared, located[key], raw)
                elif _written_out(value):
                    resolver.argument_error(param, key, value, located[key])
            resolver.missing_arguments(name, raw, declared, path)
        block = resolver.blocks[name]
        self.items(block.get("layers") if isinstance(block, dict) else None, ("blocks", name, "layers"))


def _layer_lists(body: Any, path: SpecPath) -> Iterator[tuple[list[Any], SpecPath]]:
    """The layer lists of a combinator's ``body``, with their paths: each list value
    (``body``, ``layers``, a ``shortcut`` of layers), and each list of a list of them
    (``branches``)."""
    if not isinstance(body, dict):
        return
    for key, value in body.items():
        if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            for index, branch in enumerate(value):
                yield branch, (*path, key, index)
        elif isinstance(value, list):
            yield value, (*path, key)


def _default_names(raw: Any) -> dict[str, set[str]]:
    """The parameter names, by kind, that a ``defaults`` mapping gives, read as the resolver
    reads it: an unknown kind's are the closest kind's, and a misspelt required parameter
    counts as given (its error says it, once)."""
    found: dict[str, set[str]] = {}
    for kind_name, params in raw.items() if isinstance(raw, dict) else ():
        if not isinstance(params, dict):
            continue
        kind = REGISTRY.get(kind_name) if isinstance(kind_name, str) else None
        if kind is None:
            meant = closest(str(kind_name), REGISTRY)
            if meant is None:
                continue
            kind = REGISTRY[meant]
        names = found.setdefault(kind.name, set())
        names.update(name for name in params if isinstance(name, str))
        names.update(meant_parameters(params, kind.param_index, kind.required_names))
    return found


def _written_out(value: Any) -> bool:
    """Whether ``value`` is written out in full: no ``${…}`` anywhere in it."""
    if isinstance(value, list):
        return all(map(_written_out, value))
    if isinstance(value, dict):
        return all(map(_written_out, value.values()))
    return not is_expression(value)
