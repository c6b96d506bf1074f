"""The layer graph → a list of spec items: straight runs of layers, ``residual`` and ``parallel``
items where a fork joins again at an add/concat that the combinators make, and explicit
``id``/``inputs`` items for any other shape of graph.

Walks from the input to the output. At a fork it finds the fork's post-dominator (the first
layer every path from the fork passes through); when that is a merge the combinators make and
every branch is a plain chain (or nested combinators), the fork becomes one combinator item,
else the layers up to it are written with ids.

A model with several outputs: a fork's consumer whose layers (it and all it leads to) read
nothing but each other and the fork, and that share none of them with another consumer, starts a
*head* (two heads on a shared trunk, an auxiliary classifier): the walk leaves it aside and goes
on along the rest, the trunk (where every consumer starts a head, the largest one goes on as
the trunk), so the trunk keeps its combinators. A path that ends at an output ends there (the
outputs are as if joined by a virtual sink that every path reaches last): the post-dominator
search drops it, and a combinator with an output or a head inside is no combinator (its region
is written flat). Every layer the walk left aside (the heads) is written after the trunk, flat,
in the graph's order, each item that reads another than the one before it by id. The output
layers' items get ids for the spec's ``outputs:`` (:meth:`Structurer.output_ids`).
"""

from __future__ import annotations

import re
from collections import Counter

from cnnspec.importer.graph import Graph
from cnnspec.importer.items import Item, Layer, Parallel, Residual, source_names
from cnnspec.importer.source import import_error
from cnnspec.ir import INPUT
from cnnspec.layers.registry import get_kind
from cnnspec.layers.reverse import Reversed, combinator_activation, commutative, merge_mode, shown
from cnnspec.spec.scope import unique_id

#: Ids no item may take: the spec language's name of the model input (the resolver refuses an
#: item ``id: input``, "reserved for the model input"); an inputs: list reads it as the input.
RESERVED_IDS = frozenset({INPUT})
#: What a spec id may not hold (each such character of a source name becomes ``_``).
NOT_ID = re.compile(r"[^A-Za-z0-9_]")
#: The most combinators written one inside another. Each level costs three or four levels of
#: YAML nesting (``- residual:`` → ``body:`` → its list) against the spec loader's 100
#: (:data:`cnnspec.spec.loader.MAX_DEPTH`), and folding may add a block's and a repeat's levels
#: around them. A deeper fork is written flat with ``id``/``inputs`` items instead, which any
#: depth fits, and the combinators are never built deeper than this (no recursion limit to hit).
#: Real CNNs nest two or three (an Inception branch in a residual body).
MAX_COMBINATOR_DEPTH = 20


class _NotCombinator(Exception):
    pass


def spec_id(name: str) -> str:
    """A layer name as a spec id: ASCII letters, digits and underscores, not starting with a
    digit (``é`` → ``_``, ``٣`` → ``_``: the spec language's identifiers are ASCII)."""
    cleaned = NOT_ID.sub("_", name)
    if not (cleaned[:1].isalpha() or cleaned[:1] == "_"):  # (ASCII only, after the sub)
        cleaned = f"l_{cleaned}"
    # `activation_2` is also the name cnnspec gives the second activation layer it numbers
    automatic = re.fullmatch(r"(.+?)(_\d+)?", cleaned)
    if automatic and get_kind(automatic.group(1)) is not None:
        cleaned = f"keras_{cleaned}"
    return cleaned


class Structurer:
    """Turns a checked graph and its mapped layers into spec items."""

    def __init__(self, graph: Graph, mapped: dict[str, Reversed]) -> None:
        self.graph = graph
        self.mapped = mapped
        self.pos = {n.name: i for i, n in enumerate(graph.nodes)}
        self.ids: dict[str, str] = {}  # source layer → the id its item is read by
        # A source name that is an id as it stands is that layer's alone: another name that
        # cleans up alike (`d.1` beside a `d_1`) gets `_2`, never it. Had `d.1` taken `d_1`,
        # weights loaded by name (build --weights SOURCE) would fill it with `d_1`'s.
        self.own = {n.name for n in graph.nodes if spec_id(n.name) == n.name and n.name not in RESERVED_IDS}
        self.taken: set[str] = set(RESERVED_IDS) | self.own
        self.depth = 0  # the combinators being built, one inside another
        self.outputs = set(graph.outputs)
        self.several = len(graph.outputs) > 1
        self._heads: dict[str, list[str]] = {}  # fork → its consumers that start a head
        self.emitted: set[str] = {graph.input_name}  # source layers an item stands for

    def layer(self, name: str) -> Layer:
        rev = self.mapped[name]
        return Layer(rev.kind.name, dict(rev.params), name, trainable=rev.trainable)

    def id_for(self, name: str) -> str:
        """The id of the item that makes source layer ``name``: unique among every id given,
        never a reserved one."""
        if name not in self.ids:
            self.ids[name] = name if name in self.own else unique_id(spec_id(name), self.taken)
            self.taken.add(self.ids[name])
        return self.ids[name]

    def post_dominator(self, start: str) -> str | None:
        """The first layer every path from ``start`` passes through (heads left aside; a path
        that ends at an output of a model with several ends there, see the module docstring)."""
        pending: Counter[str] = Counter(self.next(start))
        for node in self.graph.nodes[self.pos[start] + 1 :]:
            if node.name not in pending:
                continue
            if len(pending) == 1:
                return node.name
            del pending[node.name]
            pending.update(self.next(node.name))
        return None

    def next(self, name: str) -> list[str]:
        """What follows layer ``name`` on the trunk: its consumers but those that start a head."""
        if not self.several:
            return self.graph.consumers[name]
        heads = self.heads(name)
        return [c for c in self.graph.consumers[name] if c not in heads]

    def heads(self, fork: str) -> list[str]:
        """The consumers of ``fork`` that start a head (see the module's docstring)."""
        if not self.several:
            return []
        if fork not in self._heads:
            self._heads[fork] = self._find_heads(fork)
        return self._heads[fork]

    def _find_heads(self, fork: str) -> list[str]:
        consumers = self.graph.consumers[fork]
        if len(consumers) < 2:
            return []
        reach = {c: self.descendants(c) for c in consumers}
        heads = []
        for c in consumers:
            others = set().union(*(reach[o] for o in consumers if o != c))
            closed = all(i in reach[c] or i == fork for n in reach[c] for i in self.graph.node(n).inputs)
            if closed and not reach[c] & others:
                heads.append(c)
        if len(heads) == len(consumers):  # no trunk left: the largest head goes on as it
            trunk = max(consumers, key=lambda c: len(reach[c]))
            heads.remove(trunk)
        return heads

    def descendants(self, start: str) -> set[str]:
        """``start`` and every layer it leads to."""
        seen = {start}
        stack = [start]
        while stack:
            for c in self.graph.consumers[stack.pop()]:
                if c not in seen:
                    seen.add(c)
                    stack.append(c)
        return seen

    # -- combinators --------------------------------------------------------------------
    def combinator(self, fork: str, join: str) -> tuple[Item, str]:
        """The residual/parallel item from ``fork`` to ``join`` (and a following activation).
        Nested deeper than :data:`MAX_COMBINATOR_DEPTH`, it is no combinator: the outermost
        fork's region is then written flat (:meth:`flat`)."""
        if self.depth >= MAX_COMBINATOR_DEPTH:
            raise _NotCombinator
        self.depth += 1
        try:
            return self._combinator(fork, join)
        finally:
            self.depth -= 1

    def _combinator(self, fork: str, join: str) -> tuple[Item, str]:
        mode = merge_mode(self.mapped[join])
        if mode is None:
            raise _NotCombinator
        ends = self.graph.node(join).inputs
        if len(set(ends)) != len(ends):
            raise _NotCombinator
        branches: dict[str, list[Item]] = {}
        for first in self.next(fork):  # (a head of the fork is written after the trunk)
            if first == join:
                branches[fork] = []
                continue
            items, end = self.branch(fork, first, join)
            branches[end] = items
        if set(branches) != set(ends):
            raise _NotCombinator
        ordered = [branches[end] for end in ends]
        out, sources = join, [join]
        activation = None
        after = self.graph.consumers[join]
        if len(after) == 1 and join not in self.outputs:
            value = combinator_activation(self.mapped[after[0]])
            if value is not None:
                activation, out = value, after[0]
                sources.append(after[0])
        item: Item
        first, *rest = ordered
        in_any_order = commutative(self.mapped[join].kind)
        # one path without layers: the shortcut is the entry, which a broadcast rules out
        entry_shortcut = not (first and rest[0])
        differ = self.shapes_differ(join)
        if len(ordered) == 2 and in_any_order and (first or rest[0]) and not (entry_shortcut and differ):
            # x + f(x) and f(x) + x are one residual: an element-wise merge (add, max, …) does
            # not care about the order, the identity shortcut has no layers
            body, shortcut = (rest[0], first or None) if rest[0] else (first, None)
            # shapes not saved: `shortcut: identity` is the source whatever they are
            item = Residual(
                body, shortcut, mode, activation, sources, identity=shortcut is None and differ is None
            )
        elif len(ordered) == 2 and not in_any_order and not first and rest[0]:
            # a merge along an axis keeps its inputs' order: only [x, f(x)] is the residual's
            # [shortcut, body] (its `auto` shortcut stays the identity, whatever the channels)
            item = Residual(rest[0], None, mode, activation, sources)
        elif all(ordered):
            item = Parallel(ordered, mode, activation, sources)
        else:
            raise _NotCombinator
        return item, out

    def shapes_differ(self, join: str) -> bool | None:
        """Whether the shapes Keras saved for the inputs of the merge ``join`` differ (it
        broadcasts size-1 axes: squeeze-and-excitation's ``x * gate``): a residual's ``auto``
        shortcut would then be projected to the body's shape, not the entry, so such a fork is
        no identity residual. ``None``: not saved (a configuration without ``build_config``,
        written by hand or stripped), so a residual says ``shortcut: identity``."""
        shapes = self.graph.node(join).input_shape
        if not isinstance(shapes, list) or not all(isinstance(s, list) for s in shapes):
            return None
        return any(s != shapes[0] for s in shapes[1:])

    def branch(self, fork: str, first: str, join: str) -> tuple[list[Item], str]:
        """A plain chain (or nested combinators) from ``fork`` through ``first`` up to ``join``."""
        items: list[Item] = []
        current = first
        while True:
            node = self.graph.node(current)
            if node.inputs != [items_end(items, fork)]:
                raise _NotCombinator
            items.append(self.layer(current))
            tail = current
            while True:
                consumers = self.graph.consumers[tail]
                if tail in self.outputs:  # (an item inside a combinator cannot be named as an output)
                    raise _NotCombinator
                if consumers == [join]:
                    return items, tail
                if join in consumers or not consumers or self.heads(tail):
                    raise _NotCombinator
                if len(consumers) == 1:
                    current = consumers[0]
                    break
                inner = self.post_dominator(tail)
                if inner is None or self.pos[inner] >= self.pos[join]:
                    raise _NotCombinator
                item, tail = self.combinator(tail, inner)
                items.append(item)

    # -- the whole model ------------------------------------------------------------------
    def items(self) -> list[Item]:
        items: list[Item] = []
        current = self.graph.input_name
        ends: dict[int, str] = {}  # id(item) → the source layer its output is
        while current != self.graph.output or self.several:
            consumers = self.next(current)
            if not consumers:  # (several outputs) the end of the trunk
                break
            if len(consumers) == 1 and self.graph.node(consumers[0]).inputs == [current]:
                items.append(self.layer(consumers[0]))
                self.emitted.add(consumers[0])
                current = consumers[0]
                continue
            join = self.post_dominator(current)
            if join is None:
                raise AssertionError("a checked graph has a post-dominator")
            try:
                item, end = self.combinator(current, join)
                items.append(item)
                self.emitted.update(source_names(item))
                ends[id(item)] = end
                current = end
            except _NotCombinator:
                current = self.flat(items, current, join, ends)
        if self.several:
            # the heads (and whatever else the walk left aside), after the trunk, flat
            self.flat(items, current, None, ends)
        return items

    def output_ids(self, items: list[Item]) -> list[str]:
        """The ids of the items that make the outputs, in the source's order (each item that
        makes one gets an id); none for a model with one output (its last item is its output)."""
        if not self.several:
            return []
        return [self.reference(name, items) for name in self.graph.outputs]

    def flat(self, items: list[Item], entry: str, join: str | None, ends: dict[int, str]) -> str:
        """The layers after ``entry`` up to ``join`` with explicit ids and inputs (``join``
        None: every layer not written yet, to the end)."""
        # (to the end: earlier layers too, the heads of forks the trunk passed)
        nodes = (
            self.graph.nodes if join is None else self.graph.nodes[self.pos[entry] + 1 : self.pos[join] + 1]
        )
        region = [n for n in nodes if n.name not in self.emitted]
        previous = items_end(items, self.graph.input_name)
        for node in region:
            layer = self.layer(node.name)
            if node.inputs != [previous]:
                layer.inputs = [self.reference(name, items) for name in node.inputs]
            items.append(layer)
            self.emitted.add(node.name)
            previous = node.name
        return join if join is not None else previous

    def reference(self, name: str, items: list[Item]) -> str:
        """The id an earlier tensor is read by; gives the item that makes it that id."""
        if name == self.graph.input_name:
            return "input"
        for item in reversed(items):
            if output_of(item) == name:
                if item.id is None:
                    item.id = self.id_for(name)
                return item.id
        raise import_error(
            f"layer {shown(name)} is read from outside the structure that makes it",
            self.graph.node(name).path,
            hint="this topology cannot be expressed yet",
        )


def output_of(item: Item) -> str | None:
    """The source layer whose tensor an item returns."""
    if isinstance(item, Layer):
        return item.source
    if isinstance(item, (Residual, Parallel)):
        return item.sources[-1]
    return None


def items_end(items: list[Item], fork: str) -> str:
    return output_of(items[-1]) or fork if items else fork
