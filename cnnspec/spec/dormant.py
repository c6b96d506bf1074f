"""Checks of the layer items a compilation does not expand: an item whose ``when`` is false, the
layers of a ``repeat`` of 0 times, the blocks called only there, and the spec's own blocks
nothing calls (a ``use:`` library's are checked where a spec calls them, in its context); and
an item an error of its own stopped before its layer was read (a failed ``when``, ``inputs`` or
``trainable``), and the body of a block whose call failed on its arguments.

The resolver checks an item as it expands it, with the values of its vars, arguments and
shapes. A mistake in an item it skips would wait, unseen, for the var that turns the item on
(``--set vars.big=true``, a family's other variant), although nothing in it depends on a value:
a misspelt kind or parameter, an argument a block does not declare, a written-out value the
parameter refuses. Those are checked here, with the resolver's own messages; an expression
(``${…}``) is left alone, since it has no value where nothing runs. An item expanded anywhere
(another call of its block, another iteration) is not checked again: its expansion was.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cnnspec.errors import SpecPath
from cnnspec.layers import REGISTRY
from cnnspec.spec.backbone import KIND as BACKBONE
from cnnspec.spec.expr import is_expression
from cnnspec.spec.resolve import COMBINATORS, ITEM_EXTRAS, tuple_fragments

if TYPE_CHECKING:
    from cnnspec.spec.resolve import Resolver


def check_dormant(resolver: Resolver, roots: Iterable[tuple[Any, SpecPath]]) -> None:
    """Check each root (a layer item, or a list of them, and its path) and what it nests,
    each item once, skipping those ``resolver`` expanded (``resolver.expanded``: their ids)."""
    seen: set[int] = set(resolver.expanded)
    for value, path in roots:
        if isinstance(value, list):
            _items(resolver, value, path, seen)
        else:
            _item(resolver, value, path, seen)


def _items(resolver: Resolver, items: Any, path: SpecPath, seen: set[int]) -> None:
    if isinstance(items, list):  # (another value is the schema's to report)
        for index, item in enumerate(items):
            _item(resolver, item, (*path, index), seen)


def _item(resolver: Resolver, item: Any, path: SpecPath, seen: set[int]) -> None:
    if id(item) in seen:
        return
    seen.add(id(item))
    if isinstance(item, str):
        kind_key, body = item, None
    elif isinstance(item, dict):
        keys = [k for k in item if k not in ITEM_EXTRAS]
        if len(keys) != 1:
            return  # no kind to check (the walk says so where the item is expanded)
        kind_key, body = keys[0], item[keys[0]]
    else:
        return
    kpath = (*path, kind_key)
    if kind_key in REGISTRY:
        _layer(resolver, kind_key, body, kpath)
    elif kind_key in COMBINATORS:
        _combinator(resolver, body, kpath, seen)
    elif kind_key == BACKBONE:
        return  # another spec's layers: checked as that spec
    elif kind_key in resolver.blocks:
        _block_call(resolver, kind_key, body, kpath, seen)
    else:
        resolver.unknown_kind(kind_key, body, kpath)


def _layer(resolver: Resolver, kind_name: str, body: Any, path: SpecPath) -> None:
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


def _combinator(resolver: Resolver, body: Any, path: SpecPath, seen: set[int]) -> None:
    """The layer lists of a combinator: each list value (``body``, ``layers``, a ``shortcut``
    of layers), and each list of a list of them (``branches``)."""
    if not isinstance(body, dict):
        return
    for key, value in body.items():
        if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            for index, branch in enumerate(value):
                _items(resolver, branch, (*path, key, index), seen)
        elif isinstance(value, list):
            _items(resolver, value, (*path, key), seen)


def _block_call(resolver: Resolver, name: str, body: Any, path: SpecPath, seen: set[int]) -> None:
    """A call's argument names, and the block's own items (those no expanded call reached)."""
    if name in resolver.bad_blocks or not resolver.block_signature(name):
        return  # (a refused block's error says why)
    declared = resolver.block_params(name)
    for key in body if isinstance(body, dict) else ():  # (a single argument is read by its type)
        if key not in declared:
            resolver.unknown_argument(name, key, declared, (*path, key), body)
    block = resolver.blocks[name]
    _items(
        resolver, block.get("layers") if isinstance(block, dict) else None, ("blocks", name, "layers"), seen
    )


def _written_out(value: Any) -> bool:
    """Whether ``value`` is written out in full: no ``${…}`` anywhere in it."""
    if isinstance(value, list):
        return all(map(_written_out, value))
    if isinstance(value, dict):
        return all(map(_written_out, value.values()))
    return not is_expression(value)
