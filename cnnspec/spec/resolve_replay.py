"""Replaying block calls (:class:`CallReplay`, a part of :class:`cnnspec.spec.resolve.Resolver`):
an error-free call is recorded with its key (block, arguments, input shapes, trainable), and a
later identical call, or one that differs only in value parameters, copies the recorded layers
under its own names instead of walking the body again (:mod:`cnnspec.spec.memo`), within the
same limits a walk would keep (:mod:`cnnspec.spec.limits`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cnnspec.errors import SpecPath
from cnnspec.ir import BlockCall, Node
from cnnspec.layers.registry import REGISTRY, Shape, ShapeError
from cnnspec.spec.backbone import KIND as BACKBONE
from cnnspec.spec.expr import ExpressionError, Poisoned
from cnnspec.spec.least_size import LeastSizes, said
from cnnspec.spec.limits import MAX_NESTING, MAX_NODES, MAX_STEPS, least_sizes
from cnnspec.spec.memo import CallMemo, NotReplayable, Renamer, Site, used_blocks, value_params
from cnnspec.spec.scope import COMBINATORS, NOT_LAYERS, CallName, Scope

#: ``in_channels``/``in_shape`` as whole names (what makes a block depend on its input's shape).
SHAPE_NAMES = re.compile(r"(?<![A-Za-z0-9_])in_(?:channels|shape)(?![A-Za-z0-9_])")


@dataclass
class Changed:
    """How a call differs from the recorded call it replays: its arguments, the recorded
    sites, the value parameters whose arguments differ, and whether every shape is computed
    again (a shape-free block, :meth:`Resolver.shape_free`)."""

    args: dict[str, Any]
    sites: list[Site]
    differ: set[str]
    reshape: bool


#: Argument types a memo key holds as they are (:meth:`Resolver.memo_key`).
_KEYED = frozenset({int, str, bool, type(None)})


class CallReplay:
    """The resolver's replay of recorded block calls: keys, records, budgets and the copy.
    Its methods share the state :class:`cnnspec.spec.resolve.Resolver` sets up."""

    def past_budget(self, memo: CallMemo, name: str, path: SpecPath) -> bool:
        """Whether a call of block ``name`` with the arguments and inputs of ``memo``'s passes the
        layer or step budget; if so, that is reported at the call, with its size. Walking it
        again would make the same layers and stop at the one past the budget, after making up
        to :data:`MAX_NODES` of them, and name the layer where the budget ran out rather than the
        call that passed it."""
        made = (len(memo.nodes), memo.steps)
        return self.over_budget(made, path, f"this call of block `{name}`", "the call", exact=True)

    @functools.cached_property
    def least(self) -> LeastSizes:
        """The least sizes of repeats and block calls (:func:`least_sizes`), read once the block
        declarations are checked."""
        return least_sizes(self.blocks, self.bad_blocks)

    def over_budget(
        self, made: tuple[int, int], path: SpecPath, what: str, short: str, exact: bool = False
    ) -> bool:
        """Whether ``what`` (this repeat, this call of a block), which makes ``made`` (layers,
        steps: as a recorded call made them when ``exact``, else at least that many,
        :mod:`cnnspec.spec.least_size`), passes the layer or step budget; if so, that is
        reported at ``path`` before anything of it is walked (``short``: what makes them, as
        the message's parenthesis says it)."""
        layers, steps = made
        count: Callable[[int], str] = "{:,}".format if exact else said
        if len(self.nodes) + layers > MAX_NODES:
            message = (
                f"expected a model of at most {MAX_NODES:,} layers; with {what} it has "
                f"{count(len(self.nodes) + layers)} ({count(layers)} made by {short})"
            )
        elif self.steps + steps > MAX_STEPS:
            message = (
                f"expected at most {MAX_STEPS:,} expansion steps (layer items and repeat "
                f"iterations); with {what} the spec needs {count(self.steps + steps)} "
                f"({count(steps)} taken by {short})"
            )
        else:
            return False
        hint = "check `repeat.times`, nested repeats and blocks that call blocks"
        self.error(message, path, code="too-large", hint=hint)
        self.too_many = True
        return True

    def replay_fits(self, memo: CallMemo, prefix: str, group: tuple[str, ...]) -> bool:
        """Whether replaying ``memo`` under ``prefix`` and ``group`` stays within
        :data:`MAX_NESTING` and names no block call inside it as a layer beside it is named;
        otherwise the call is walked, which reports it. A replay past the node or step budget
        is refused first (as :meth:`replay` would): the budgets only grow, so the walk follows
        either way, and naming the recorded call's inner calls would be wasted."""
        if len(self.nodes) + len(memo.nodes) > MAX_NODES or self.steps + memo.steps > MAX_STEPS:
            return False
        below, calls = self.memo_calls(memo)
        if self.nesting + below > MAX_NESTING:
            return False
        return not any(self.name_taken(prefix + inner.name, (*group, *inner.group)) for inner in calls)

    def memo_calls(self, memo: CallMemo) -> tuple[int, tuple[CallName, ...]]:
        """How deep a recorded call nests below itself, and the block calls made inside it,
        named without the recorded call's prefix and group (as a replay prefixes them anew):
        made when the call is first replayed, then kept (most recorded calls never are)."""
        shape = self.memo_shape.get(id(memo))
        if shape is None:
            return 0, ()
        if shape.calls is None:
            shape.calls = tuple(
                CallName(c.name.removeprefix(shape.prefix), c.group[shape.depth :], c.path, c.automatic)
                for c in self.call_log[shape.start : shape.end]
            )
        return shape.below, shape.calls

    def memo_key(self, name: str, args: dict[str, Any], inputs: list[str]) -> tuple[Any, ...] | None:
        """What a block call's layers depend on besides its name prefix (the vars and spec
        defaults are fixed for one resolution); ``None``: do not record or replay."""
        if not self.replay_calls or self.diags.has_errors or self.too_many:
            return None
        shapes = tuple(self.shapes.get(t) for t in inputs)
        if None in shapes:
            return None
        same = tuple(inputs.index(t) for t in inputs)  # which inputs are the same tensor
        trainable = self.trainable[-1] if self.trainable else None
        # Each argument once (value_key and the replay's comparison reuse it): an int, string,
        # bool or None as itself with its type (True is not 1), anything else as its repr (a
        # float's keeps -0.0 apart from 0.0; a tuple never equals a repr string).
        pairs = tuple([(k, (type(v), v) if type(v) in _KEYED else repr(v)) for k, v in args.items()])
        return (name, pairs, shapes, same, trainable)

    def value_params(self, name: str) -> frozenset[str]:
        """Block ``name``'s value parameters (:func:`cnnspec.spec.memo.value_params`), once."""
        found = self.value_names.get(name)
        if found is None:
            found = self.value_names[name] = value_params(
                self.blocks[name],
                lambda kind: kind in REGISTRY and kind not in NOT_LAYERS,
                lambda kind: kind in COMBINATORS,
            )
        return found

    def shape_free(self, name: str) -> bool:
        """Whether block ``name``'s layers and parameters never depend on its input's shape:
        no expression in it (or in a block it calls) reads ``in_channels``/``in_shape``, and
        every residual's shortcut is fixed (``identity``, ``none`` or a list; ``auto`` and
        ``projection`` are decided by shapes), no backbone. Then a call on another input shape
        builds the same layers, and only their shapes and counts need computing again
        (DenseNet's dense layers, each on a wider input)."""
        found = self.shape_free_blocks.get(name)
        if found is None:
            self.shape_free_blocks[name] = False  # a cycle: walking reports it
            found = self.shape_free_blocks[name] = self._shape_free(self.blocks.get(name))
        return found

    def _shape_free(self, value: Any) -> bool:
        if type(value) is str:
            return "${" not in value or SHAPE_NAMES.search(value) is None
        if type(value) is list:
            return all(self._shape_free(v) for v in value)
        if type(value) is dict:
            for key, inner in value.items():
                if key == BACKBONE:
                    return False
                if key == "residual":
                    shortcut = inner.get("shortcut", "auto") if isinstance(inner, dict) else None
                    if not (isinstance(shortcut, list) or shortcut in ("identity", "none")):
                        return False
                if isinstance(key, str) and key in self.blocks and not self.shape_free(key):
                    return False
                if not self._shape_free(key) or not self._shape_free(inner):
                    return False
        return True

    @staticmethod
    def value_key(
        key: tuple[Any, ...] | None, args: dict[str, Any], values: frozenset[str], free: bool = False
    ) -> tuple[Any, ...] | None:
        """``key`` (:meth:`memo_key`) without the value parameters' arguments (and, for a
        shape-free block, without the input shapes)."""
        if key is None:
            return None
        rest = key[3:] if free else key[2:]
        return (key[0], tuple([pair for pair in key[1] if pair[0] not in values]), free, *rest)

    def call_start(self) -> tuple[int, ...]:
        """Where the counts stand as a call to record starts."""
        return (
            len(self.nodes),
            self.steps,
            self.contexts,
            len(self.counter_log),
            self.auto_names,
            len(self.record.stack),
        )

    def record_memo(
        self, start: tuple[int, ...], block_scope: Scope, inputs: tuple[str, ...], outputs: list[str]
    ) -> CallMemo | None:
        """The memo of the call just walked, or ``None`` when it cannot be replayed."""
        nodes, steps, contexts, logged, auto, depth = start
        record = self.record
        if self.diags.has_errors or self.too_many or record.pending is not None:
            return None
        element = record.stack[depth - 1] if len(record.stack) >= depth else None
        if not isinstance(element, BlockCall):
            return None
        prefix = block_scope.prefix
        made = self.nodes[nodes:]
        counters = [(p, dict(self.counters[p])) for p in self.counter_log[logged:]]
        if any(not p.startswith(prefix) for p, _ in counters):
            return None
        if sum(n for _, c in counters for n in c.values()) != self.auto_names - auto:
            return None  # a name was counted under a prefix that existed before the call
        if any(node.shape is None for node in made):
            return None
        item = record.item
        # Not checked here whether every name maps: most calls are never repeated, and
        # replay() checks before it emits anything (and then forgets the memo if not).
        return CallMemo(
            prefix=prefix,
            group=block_scope.group,
            inputs=inputs,
            nodes=made,
            body=list(element.body),
            ids=dict(block_scope.ids),
            outputs=list(outputs),
            counters=[(p[len(prefix) :], c) for p, c in counters],
            steps=self.steps - steps,
            contexts=self.contexts - contexts,
            auto_names=self.auto_names - auto,
            blocks=None,
            item=None if item is None else (item[0] - depth, item[1], item[2]),
        )

    def replay(
        self,
        memo: CallMemo,
        prefix: str,
        group: tuple[str, ...],
        inputs: tuple[str, ...],
        changed: Changed | None = None,
    ) -> tuple[dict[str, str], list[str]] | None:
        """Emit a recorded call again under ``prefix`` on ``inputs``: its ids and outputs, or
        ``None`` (nothing emitted) when its names would collide or a limit would be passed.
        ``changed`` (the new arguments, the recorded sites, the value parameters whose
        arguments differ): the sites that read those are evaluated again first."""
        if len(self.nodes) + len(memo.nodes) > MAX_NODES or self.steps + memo.steps > MAX_STEPS:
            return None
        if any(prefix + suffix in self.counters for suffix, _ in memo.counters):
            return None
        renamer = Renamer(memo, prefix, group, inputs, self.deferred)
        try:
            made = [renamer.node(node) for node in memo.nodes]
            # A recording's first replay copies its tree elements here, which checks that every
            # name in them maps; later replays only note the copy, made when the tree is first
            # read (ModelIR.tree): validating never reads it, and the copies were ~5 % of it.
            body = [renamer.item(child) for child in memo.body] if memo.blocks is None else None
            ids = {k: renamer.tensor(t) for k, t in memo.ids.items()}
            outputs = [renamer.tensor(t) for t in memo.outputs]
        except NotReplayable:
            return None
        by_name = self.by_name
        if any(node.name in by_name for node in made):  # (nothing is emitted before this)
            return None
        if changed is not None and not self.revalue(made, changed):
            return None
        if memo.blocks is None:
            memo.blocks = frozenset(used_blocks(memo.body, set()))
        self.nodes.extend(made)
        by_name.update({node.name: node for node in made})
        self.shapes.update({node.name: node.shape for node in made})
        for suffix, counts in memo.counters:
            self.counters[prefix + suffix] = dict(counts)
            self.counter_log.append(prefix + suffix)
        self.auto_names += memo.auto_names
        self.steps += memo.steps
        self.contexts += memo.contexts  # the call's own context is counted in it
        self.used_blocks.update(memo.blocks)
        element = self.record.stack[-1]
        if body is None:
            self.deferred[id(element)] = (element, renamer, memo.body)
        else:
            element.body.extend(body)
        if memo.item is not None:
            depth, path, extras = memo.item
            self.record.item = (len(self.record.stack) + depth, path, extras)
        else:
            self.record.item = None
        self.replayed += 1
        return ids, outputs

    def revalue(self, made: list[Node], changed: Changed) -> bool:
        """Evaluate again the recorded sites that read a differing value parameter, in their
        recorded environment with the new arguments, into the renamed nodes ``made``; for a
        shape-free block on another input shape, compute every layer's shape and counts again
        in order. ``False`` (the call is walked instead, which reports any error) when a
        ``when`` comes out otherwise, a value fails its check, a shape rule refuses, or (not
        shape-free) a layer's shape changes."""
        touched: dict[int, Node] = {}
        for site in changed.sites:
            if not site.reads & changed.differ:
                continue
            env = {**site.env, **{p: changed.args[p] for p in site.reads}}
            try:
                value = self._substitute(site.value, env)
            except (ExpressionError, Poisoned):
                return False
            if site.node is None:
                if type(value) is not type(site.result) or value != site.result:
                    return False
                continue
            node = made[site.node]
            param = REGISTRY[node.kind].param_index[site.key]
            if param.check(value):
                return False
            node.params[site.key] = value
            touched[site.node] = node
        if changed.reshape:
            return self.reshape(made)
        for node in touched.values():
            kind = REGISTRY[node.kind]
            known = list(node.input_shapes)
            try:
                shape = kind.output_shape(node.params, known)
                counts = kind.counts(node.params, known, shape)
            except ShapeError:
                return False
            if shape != node.shape:
                return False
            node.counts = counts
        return True

    def reshape(self, made: list[Node]) -> bool:
        """Every replayed layer's input shapes, shape and counts computed again in emission
        order (each layer's inputs come before it), as walking computes them."""
        shapes: dict[str, Shape] = {}
        for node in made:
            known = []
            for tensor in node.inputs:
                shape = shapes[tensor] if tensor in shapes else self.shapes.get(tensor)
                if shape is None:
                    return False
                known.append(shape)
            kind = REGISTRY[node.kind]
            try:
                node.shape = kind.output_shape(node.params, known)
                node.counts = kind.counts(node.params, known, node.shape)
            except ShapeError:
                return False
            node.input_shapes = tuple(known)
            shapes[node.name] = node.shape
        return True
