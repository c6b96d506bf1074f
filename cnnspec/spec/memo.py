"""Replaying identical block calls (issue 15: the zoo's cold validate).

About half the zoo's layers sit in block calls that repeat an earlier call: the same block,
arguments, input shapes and ``trainable`` flag (the vars and spec defaults are fixed for one
resolution). Such a call resolves to the same layers, shapes and counts under another name
prefix, so the resolver records the first call (:class:`CallMemo`) and replays it for the
others, renaming its nodes, tensors and tree elements, instead of evaluating every parameter
and shape again.

Only calls that resolved without any error are recorded, and nothing is replayed once an error
was reported: errors are always found by a normal walk, located and with their call notes. A
recording is refused (the call is simply resolved normally each time) when anything in it is
not a pure function of the prefix and the inputs: a backbone inside, a name outside the call's
prefix, a name counter that existed before the call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cnnspec.ir import BlockCall, Conditional, Layer, Node, Parallel, Repeat, Residual
from cnnspec.spec.items import item_kind


class NotReplayable(Exception):
    """The recorded call depends on something other than its prefix and inputs."""


@dataclass
class CallMemo:
    """What one error-free block call produced, with the names it used.

    ``prefix``/``group``/``inputs`` are the recorded call's; replaying substitutes another
    call's. ``counters`` are the automatic-name counters the call created, by prefix suffix."""

    prefix: str
    group: tuple[str, ...]
    inputs: tuple[str, ...]
    nodes: list[Node]
    body: list[Any]
    ids: dict[str, str]
    outputs: list[str]
    counters: list[tuple[str, dict[str, int]]]
    steps: int
    contexts: int
    auto_names: int
    #: The blocks called inside (found on the first replay).
    blocks: frozenset[str] | None
    #: The tree recorder's pending item after the call, its depth relative to the call's.
    item: tuple[int, Any, Any] | None


class Renamer:
    """Maps a recorded call's tensor names, nodes and tree elements onto another call.

    ``pending`` holds the tree copies deferred so far (:func:`fill_pending`): an element met in
    a recorded body that is still waiting for its own copy gets it first."""

    def __init__(
        self,
        memo: CallMemo,
        prefix: str,
        group: tuple[str, ...],
        inputs: tuple[str, ...],
        pending: Pending | None = None,
    ) -> None:
        self.old = memo.prefix
        self.cut = len(memo.prefix)
        self.prefix = prefix
        self.group = group
        self.gcut = len(memo.group)
        self.old_group = memo.group
        self.inputs = dict(zip(memo.inputs, inputs, strict=True))
        self.nodes: dict[int, Node] = {}
        self.pending = pending

    def tensor(self, name: str) -> str:
        mapped = self.inputs.get(name)
        if mapped is not None:
            return mapped
        if not name.startswith(self.old):
            raise NotReplayable(name)
        return self.prefix + name[self.cut :]

    def node(self, node: Node) -> Node:
        if not node.name.startswith(self.old) or node.group[: self.gcut] != self.old_group:
            raise NotReplayable(node.name)
        new = _shallow(node)  # a dataclass copy without __init__: this is the hot path
        new.name = self.prefix + node.name[self.cut :]
        new.params = dict(node.params)
        tensor = self.tensor
        new.inputs = tuple([tensor(t) for t in node.inputs])
        new.group = self.group + node.group[self.gcut :]
        self.nodes[id(node)] = new
        return new

    def item(self, element: Any) -> Any:
        """A copy of a tree element with its nodes and tensor names mapped."""
        kind = type(element)
        if kind is Layer:
            node = self.nodes.get(id(element.node))
            if node is None:
                raise NotReplayable(element.node.name)
            new = _shallow(element)
            new.node = node
            return new
        fields = _FIELDS.get(kind)
        if fields is None:
            raise NotReplayable(kind.__name__)  # a backbone: its own document and names
        if self.pending and id(element) in self.pending:
            fill(self.pending.pop(id(element)))
        new = _shallow(element)
        # The fields are plain dataclass fields (no slots, no properties): set in the copy's
        # __dict__ directly, as setattr would, without its lookups (a replay's hot path).
        values = new.__dict__
        tensors, tuples, lists, singles = fields
        tensor = self.tensor
        for name in tensors:
            values[name] = tensor(values[name])
        for name in tuples:
            values[name] = tuple([tensor(t) for t in values[name]])
        for name in lists:
            values[name] = self._items(values[name])
        for name in singles:
            value = values[name]
            values[name] = None if value is None else self.item(value)
        if kind is Repeat:
            new.results = {k: tensor(t) for k, t in element.results.items()}
        return new

    def _items(self, items: list[Any]) -> list[Any]:
        return [self._items(v) if type(v) is list else self.item(v) for v in items]


#: A replayed call's tree element whose body is still to be copied: the element, the renamer
#: of its replay and the recorded body to copy (:func:`fill`).
Deferred = tuple[BlockCall, Renamer, list[Any]]
#: Deferred copies by ``id()`` of their element.
Pending = dict[int, Deferred]


def fill(entry: Deferred) -> None:
    """Copy a deferred element's body: the recorded call's elements, renamed."""
    element, renamer, source = entry
    element.body.extend([renamer.item(child) for child in source])


def fill_pending(pending: Pending) -> None:
    """Make every deferred copy (in any order: a copy fills what it copies first)."""
    while pending:
        fill(pending.popitem()[1])


def _shallow(obj: Any) -> Any:
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    return new


#: Per container class: its tensor-name fields, tuples of tensor names, lists of items (or
#: of lists of items) and single items, which a replay maps; every other field is shared.
_FIELDS: dict[type, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    BlockCall: (("entry", "output", "prefix"), ("inputs", "outputs"), ("body",), ()),
    Repeat: (("entry", "output"), (), ("iterations",), ()),
    Residual: (("entry", "output"), (), ("body", "shortcut"), ("merge", "activation")),
    Parallel: (("entry", "output"), (), ("branches",), ("merge", "activation")),
    Conditional: ((), (), (), ("item",)),
}


def used_blocks(items: list[Any], into: set[str]) -> set[str]:
    """The blocks called anywhere in ``items`` (replaying marks them used, as walking does)."""
    for element in items:
        if isinstance(element, BlockCall):
            into.add(element.block)
        children: Callable[[], Any] | None = getattr(element, "children", None)
        if children is not None:
            used_blocks(list(children()), into)
    return into


# -- calls that differ only in values passed straight to layer parameters ----------------------
#
# EfficientNet's `mbconv` calls each get their own drop-connect rate (`drop`): the calls never
# repeat exactly, but `drop` only sets a dropout rate (and is compared in a `when`). A block
# parameter that the block's body reads only in registry layers' parameters and in `when`
# conditions is a *value parameter*: calls that differ only in such parameters build the same
# structure, so a recorded call is replayed with those layer parameters evaluated again in the
# new call's environment (each checked, its layer's shape and counts computed again) and every
# `when` that reads one evaluated again; the replay is refused (the call is walked) unless every
# condition and output shape comes out as recorded and every new value passes its check.

#: Combinator fields that hold layer lists (``branches``: a list of lists); any other field of
#: a combinator decides structure.
LIST_FIELDS = frozenset({"body", "shortcut", "layers", "branches"})
#: Names every item's environment binds over the block's own (``in_channels``, ``in_shape``).
ITEM_NAMES = frozenset({"in_channels", "in_shape"})


@dataclass
class Site:
    """One evaluation in a recorded call that reads a value parameter: a layer parameter
    (``node`` is the index of its layer among the call's nodes) or a ``when`` (``node`` None)."""

    node: int | None
    key: str
    value: Any
    env: dict[str, Any]
    reads: frozenset[str]
    result: Any


@dataclass
class SiteLog:
    """The sites of the call being recorded (for one block; calls cannot nest the same block)."""

    names: frozenset[str]
    base: int
    sites: list[Site]
    #: What each string value reads, shared by every recording of the block (its calls
    #: evaluate the same texts again and again).
    known: dict[str, frozenset[str]] = field(default_factory=dict)

    def reads(self, value: Any) -> frozenset[str]:
        """The value parameters ``value``'s expressions mention (a textual over-approximation:
        a name inside a string literal counts too, which only makes replays rarer)."""
        if type(value) is str:
            found = self.known.get(value)
            if found is None:
                found = self.known[value] = mentions(value, self.names)
            return found
        into: set[str] = set()
        _mentions(value, self.names, into)
        return frozenset(into)


#: A run of identifier characters. A name is mentioned where a whole run equals it, so one
#: pattern serves every set of names (a pattern per set cost a regex compile per block).
_WORDS = re.compile(r"[A-Za-z0-9_]+")


def mentions(text: str, names: frozenset[str]) -> frozenset[str]:
    """The ``names`` that ``text``'s ``${…}`` expressions mention as whole identifiers."""
    if "${" not in text:
        return frozenset()
    return names.intersection(_WORDS.findall(text))


def _mentions(value: Any, names: frozenset[str], into: set[str]) -> None:
    if type(value) is str:
        into.update(mentions(value, names))
    elif type(value) is list:
        for v in value:
            _mentions(v, names, into)
    elif type(value) is dict:
        for k, v in value.items():
            _mentions(k, names, into)
            _mentions(v, names, into)


def value_params(
    block: Any, is_layer: Callable[[str], bool], is_combinator: Callable[[str], bool]
) -> frozenset[str]:
    """The block's value parameters: read only in registry layers' parameters and ``when``
    conditions of its body (at any combinator depth), never in its defaults, other parameters'
    defaults, ids, inputs, ``trainable``, combinator fields, calls of other blocks or backbones,
    and never shadowed by a loop variable. Conservative: any doubt excludes a parameter."""
    if not isinstance(block, dict) or not isinstance(block.get("params"), dict):
        return frozenset()
    names = frozenset(p for p in block["params"] if isinstance(p, str) and p not in ITEM_NAMES)
    if not names:
        return names
    structural: set[str] = set()
    for pname, spec in block["params"].items():
        if isinstance(spec, dict):
            found: set[str] = set()
            _mentions(spec.get("default"), names, found)
            structural.update(found - {pname})
    _mentions(block.get("defaults"), names, structural)
    if not _scan_items(block.get("layers"), names, structural, is_layer, is_combinator):
        return frozenset()
    return names - structural


def _scan_items(
    items: Any,
    names: frozenset[str],
    structural: set[str],
    is_layer: Callable[[str], bool],
    is_combinator: Callable[[str], bool],
) -> bool:
    """Collect into ``structural`` the names read where they decide structure; ``False`` when
    the list holds anything not understood here (then no parameter is a value parameter)."""
    if not isinstance(items, list):
        return False
    for item in items:
        if isinstance(item, str):
            continue
        if not isinstance(item, dict):
            return False
        kind, body = item_kind(item)
        if not isinstance(kind, str):
            return False
        for extra in ("id", "inputs", "trainable"):
            _mentions(item.get(extra), names, structural)
        if is_layer(kind):
            continue  # its parameters (and its `when`) are sites
        if not is_combinator(kind):
            _mentions(body, names, structural)  # a block call's arguments, a backbone
            continue
        if not isinstance(body, dict):
            return False
        for field_name, value in body.items():
            if field_name == "as" and isinstance(value, str):
                structural.add(value)  # a loop variable shadows the parameter of its name
            if field_name in LIST_FIELDS and isinstance(value, list):
                lists = value if field_name == "branches" else [value]
                for inner in lists:
                    if not _scan_items(inner, names, structural, is_layer, is_combinator):
                        return False
            else:
                _mentions(value, names, structural)
    return True
