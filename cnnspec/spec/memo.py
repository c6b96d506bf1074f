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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cnnspec.ir import BlockCall, Conditional, Layer, Node, Parallel, Repeat, Residual


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
    """Maps a recorded call's tensor names, nodes and tree elements onto another call."""

    def __init__(self, memo: CallMemo, prefix: str, group: tuple[str, ...], inputs: tuple[str, ...]) -> None:
        self.old = memo.prefix
        self.cut = len(memo.prefix)
        self.prefix = prefix
        self.group = group
        self.gcut = len(memo.group)
        self.old_group = memo.group
        self.inputs = dict(zip(memo.inputs, inputs, strict=True))
        self.nodes: dict[int, Node] = {}

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
        new.inputs = tuple(self.tensor(t) for t in node.inputs)
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
        if kind not in _FIELDS:
            raise NotReplayable(kind.__name__)  # a backbone: its own document and names
        new = _shallow(element)
        tensors, tuples, lists, singles = _FIELDS[kind]
        for name in tensors:
            setattr(new, name, self.tensor(getattr(element, name)))
        for name in tuples:
            setattr(new, name, tuple(self.tensor(t) for t in getattr(element, name)))
        for name in lists:
            setattr(new, name, self._items(getattr(element, name)))
        for name in singles:
            value = getattr(element, name)
            setattr(new, name, None if value is None else self.item(value))
        if kind is Repeat:
            new.results = {k: self.tensor(t) for k, t in element.results.items()}
        return new

    def _items(self, items: list[Any]) -> list[Any]:
        return [self._items(v) if type(v) is list else self.item(v) for v in items]


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
