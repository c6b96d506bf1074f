"""The least a repeat or a block call makes when it is walked, read from the spec's text alone.

The resolver stops a spec that expands too far after one located error: at most
:data:`~cnnspec.spec.limits.MAX_NODES` layers and :data:`~cnnspec.spec.limits.MAX_STEPS`
expansion steps (layer items visited and repeat iterations). Counted as the walk goes, a budget
was passed only once the layers had been made: a repeat of 10,000 × 3 layers made 20,000 of
them first, block_fanout.yaml's blocks (each calls the next twice) made one call's 16,384
layers before the next call passed the limit, and nested repeats of skipped layers ran 100,000
iterations. That was one to three seconds of CPU before the error, and in an editor the
language server paid it again after every edit. Sized before it is walked, a repeat or a call that
must pass a budget is refused at once, at its own place.

The sizes are lower bounds, so a spec within the budgets is never refused by them. What is
counted is what every walk of the text makes:

- a layer item of a registered kind makes one layer (its layer is checked and named whatever
  its parameters' values are);
- every item is one step (the walk counts it before it reads anything of it);
- a repeat whose ``times`` is written as a number makes that many iterations of its body, each
  one step more;
- a block call makes what its block's layers make.

An item with a ``when`` (it may be skipped), the branches of ``residual`` and ``parallel``, a
backbone, a ``times`` computed from vars or block arguments, and a block that calls itself
count as their own step and no layer: less than they make, never more.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: Sizes are counted up to this (a hostile spec's blocks may double 30 times over): a size this
#: large is far past any budget, and is said as "over" it.
CAP = 10**12


class LeastSizes:
    """The least sizes of layer lists and blocks, each block's counted once.

    ``blocks``: the spec's block declarations by name; ``is_layer(kind)``: whether an item key is
    a registered layer kind that the walk makes a layer of (not a combinator, a backbone or a
    refused block's name); ``is_block(kind)``: whether it calls a block; ``item_kind(item)``: an
    item's kind key and value, as the walk reads them (``None`` for an item of no one kind);
    ``max_repeat``: the largest ``times`` a repeat accepts; ``max_depth``: how deeply lists are
    counted (deeper ones count as nothing: the resolver refuses that nesting anyway, and the
    count never recurses past Python's limit)."""

    def __init__(
        self,
        blocks: Mapping[str, Any],
        is_layer: Callable[[str], bool],
        is_block: Callable[[str], bool],
        item_kind: Callable[[Any], tuple[Any, Any]],
        *,
        max_repeat: int,
        max_depth: int,
    ) -> None:
        self._blocks = blocks
        self._is_layer = is_layer
        self._is_block = is_block
        self._item_kind = item_kind
        self._max_repeat = max_repeat
        self._max_depth = max_depth
        #: Each block's least (layers, steps); ``None`` while it is being counted (a block that
        #: calls itself counts as nothing there: the walk reports the cycle).
        self._of_block: dict[str, tuple[int, int] | None] = {}
        #: Each repeat body's least (layers, steps), by the list's identity: a repeat inside a
        #: block is walked at every call (the spec's lists are read-only while it resolves, and
        #: the document keeps them alive).
        self._of_body: dict[int, tuple[int, int]] = {}

    def of_repeat(self, times: int, layers: Any) -> tuple[int, int]:
        """The least (layers, steps) a repeat of ``times`` iterations of ``layers`` makes: each
        iteration is a step, then its body's."""
        body = self._of_body.get(id(layers))
        if body is None:
            body = self._of_body[id(layers)] = self.of_list(layers, 0)
        made, steps = body
        return min(times * made, CAP), min(times * (1 + steps), CAP)

    def of_block(self, name: str, depth: int = 0) -> tuple[int, int]:
        """The least (layers, steps) a call of block ``name`` makes."""
        if name in self._of_block:
            return self._of_block[name] or (0, 0)
        self._of_block[name] = None
        declared = self._blocks.get(name)
        layers = declared.get("layers") if isinstance(declared, dict) else None
        size = self.of_list(layers, depth + 1)
        self._of_block[name] = size
        return size

    def of_list(self, items: Any, depth: int) -> tuple[int, int]:
        """The least (layers, steps) the layer list ``items`` makes."""
        if type(items) is not list or depth > self._max_depth:
            return 0, 0
        made = steps = 0
        for item in items:
            steps += 1  # the item itself
            kind, body = self._kind_of(item)
            if kind is None:
                continue
            if self._is_layer(kind):
                made += 1
            elif kind == "repeat" and isinstance(body, dict):
                times = body.get("times")
                if type(times) is int and 0 <= times <= self._max_repeat:
                    inner, inner_steps = self.of_list(body.get("layers"), depth + 1)
                    made += times * inner
                    steps += times * (1 + inner_steps)
            elif self._is_block(kind):
                inner, inner_steps = self.of_block(kind, depth)
                made += inner
                steps += inner_steps
            made, steps = min(made, CAP), min(steps, CAP)
        return made, steps

    def _kind_of(self, item: Any) -> tuple[str | None, Any]:
        """An item's kind and body, or ``None`` for an item that may make nothing (one with a
        ``when``) or that is no single kind (the walk reports it)."""
        if isinstance(item, dict) and "when" in item:
            return None, None
        kind, body = self._item_kind(item)
        return (kind, body) if isinstance(kind, str) else (None, None)


def said(count: int) -> str:
    """A least size as a message says it: "at least" the number, or "over" the cap."""
    return f"at least {count:,}" if count < CAP else f"over {CAP:,}"
