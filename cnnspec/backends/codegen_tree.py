"""What the model printer reads off the resolver's structured tree (:class:`~cnnspec.ir.ModelTree`):
the instances of an element (:class:`Inst`: a block's calls, a repeat's iterations) gathered
into the slots printed together (:class:`Slot`), the references an item makes, which repeats
must be unrolled, and the statements of pruned items dropped from a printed body.
"""

from __future__ import annotations

import ast
import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from cnnspec.backends.codegen_model import Stmt, TensorRef, _contains_expression, _substitute
from cnnspec.errors import SpecPath
from cnnspec.ir import INPUT, Backbone, BlockCall, Conditional, Item, Layer, Repeat, Residual, layers_of
from cnnspec.layers.registry import REGISTRY
from cnnspec.spec.expr import ExpressionError, is_expression

#: One part of a hierarchical name: ``st``, ``inner[0]``.
_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[\d+\])?")
#: One iteration of a repeat with an ``id``: ``cells[3].h``, ``enc[${levels - 1 - i}].level.skip``.
ITERATION_REF = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\[(\d+|\$\{[^}]*\})\]\.([A-Za-z_][A-Za-z0-9_.\[\]]*)")


#: The kind of a statement that holds the statements of a pruned item (:func:`drop_pruned`).
PRUNED = "pruned"


def alive(item: Item) -> bool:
    """Whether an item keeps a layer in the model (or makes none): else the resolver pruned
    every layer it made, as they lead to no output."""
    leaves = layers_of([item])
    first = next(leaves, None)
    return first is None or first.live or any(leaf.live for leaf in leaves)


def _names(stmt: Stmt) -> tuple[set[str], set[str], set[str]]:
    """The variables one statement (not its body) reads, those whose shape it reads, and
    those it assigns."""
    nodes: list[ast.expr] = [ast.parse(text, mode="eval").body for text in stmt.inputs]  # (`enc_skip[i]`)
    nodes.extend(v for _, v in stmt.kwargs)
    if stmt.value is not None:
        nodes.append(stmt.value)
    if stmt.name is not None:
        nodes.append(stmt.name.node())
    reads: set[str] = set()
    shapes: set[str] = set()
    for node in nodes:
        for inner in ast.walk(node):
            if isinstance(inner, ast.Name):
                reads.add(inner.id)
            elif (
                isinstance(inner, ast.Attribute)
                and isinstance(inner.value, ast.Name)
                and inner.attr == "shape"
            ):
                shapes.add(inner.value.id)
    written: set[str] = set()
    if stmt.kind in ("layer", "call", "assign") and stmt.target:
        if "." in stmt.target or "(" in stmt.target:  # model.get_layer(name).trainable = False
            reads.add(re.split(r"[.(]", stmt.target, maxsplit=1)[0])
        else:
            written.update(stmt.target.split(", "))
    if stmt.kind == "for" and stmt.frame is not None and stmt.frame.var:
        written.add(stmt.frame.var)
    return reads, shapes, written


def drop_pruned(body: list[Stmt]) -> list[Stmt]:
    """The statements with those of pruned items (:meth:`TreePrinter.print_slot`) left out,
    as the builder leaves out their layers. A pruned item stays, as it was written, where a
    statement after it needs what it wrote: a variable nothing else has written (a carried
    name no iteration uses, a block output no call uses), or a shape (a ``when`` that reads
    ``in_channels`` after it). Any other read of its variable gets the value written before
    it (or nothing reads it: its value only passes through to pruned layers)."""
    if not any(stmt.kind == PRUNED for stmt in _flatten(body)):
        return body
    kept: set[int] = set()
    while True:  # until no statement that stays needs one that goes
        found = set(kept)
        _scan(body, _Flow(), kept, found)
        if found == kept:
            break
        kept = found
    return _splice(body, kept)


@dataclass
class _Flow:
    """What :func:`_scan` has seen so far: per variable, the pruned statement that wrote it
    last (``None``: one that stays), and the variables a statement that stays has written."""

    writer: dict[str, int | None] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)


def _flatten(body: list[Stmt]) -> Any:
    for stmt in body:
        yield stmt
        yield from _flatten(stmt.body)


def _scan(body: list[Stmt], flow: _Flow, kept: set[int], found: set[int]) -> None:
    """The statements in order: the pruned ones that a statement that stays needs (see
    :func:`drop_pruned`) are added to ``found``."""
    for stmt in body:
        if stmt.kind == PRUNED and id(stmt) not in kept:
            for inner in _flatten(stmt.body):
                for name in _names(inner)[2]:
                    flow.writer[name] = id(stmt)
            continue
        reads, shapes, written = _names(stmt)
        for name in reads:
            pruned = flow.writer.get(name)
            if pruned is not None and (name not in flow.written or name in shapes):
                found.add(pruned)
        for name in written:
            flow.writer[name] = None
            flow.written.add(name)
        for _ in range(2 if stmt.kind == "for" else 1):  # the second pass: what the loop carries
            _scan(stmt.body, flow, kept, found)


def _splice(body: list[Stmt], kept: set[int]) -> list[Stmt]:
    out: list[Stmt] = []
    for stmt in body:
        if stmt.kind == PRUNED:
            if id(stmt) in kept:
                out.extend(_splice(stmt.body, kept))
            continue
        if stmt.body:
            stmt.body = _splice(stmt.body, kept)
            if all(inner.kind == "comment" for inner in stmt.body):
                continue  # an `if` or `for` of pruned items only
        out.append(stmt)
    return out


def _called(body: list[Stmt]) -> set[str]:
    return {stmt.func for stmt in _flatten(body) if stmt.kind == "call"}


def _reads(body: list[Stmt], name: str) -> bool:
    return any(name in _names(stmt)[0] for stmt in _flatten(body))


def _tensor(ref: TensorRef) -> ast.expr:
    """A tensor as an expression: its variable, or an element of a list a loop collected
    (``enc_skip[1]``)."""
    return ast.parse(ref.var, mode="eval").body


def _tuple(values: list[ast.expr]) -> ast.expr:
    return values[0] if len(values) == 1 else ast.Tuple(values, ast.Load())


_SHAPE_NAME = re.compile(r"\bin_(channels|shape)\b")


@dataclass
class Inst:
    """One instance of a layer list: the items one call (iteration) produced, the name prefix
    of the function call it belongs to, and the values of the features names may depend on."""

    items: list[Item]
    prefix: str
    feats: dict[Any, int] = field(default_factory=dict)
    #: What one unit of each feature adds (an iteration's items, a condition's item).
    units: dict[Any, list[Item]] = field(default_factory=dict)
    #: The text the resolver puts between ``prefix`` and the ids of this list's items: the
    #: scopes around it that are not a function's (a repeat, residual or parallel with an id,
    #: a call written in place): ``rep_``, ``enc_1_``, ``b_2_``. A computed ``id`` needs it.
    scope: str = ""

    def sub(
        self,
        items: list[Item],
        key: Any = None,
        value: int = 0,
        unit: list[Item] | None = None,
        scope: str | None = None,
    ) -> Inst:
        """A layer list inside this one (with one more feature when ``key`` is given; in the
        scope ``scope``, else in this list's)."""
        child = Inst(
            items, self.prefix, dict(self.feats), dict(self.units), self.scope if scope is None else scope
        )
        if key is not None:
            child.set(key, value, unit)
        return child

    def set(self, key: Any, value: int, unit: list[Item] | None) -> None:
        self.feats[key] = int(value)
        self.units[key] = unit or []

    def absorb(self, child: Inst) -> None:
        """Take the features a list inside this one found (its conditions and loop counts
        number the layers after it too; a loop variable stays inside its loop)."""
        for key, value in child.feats.items():
            if key not in self.feats and key[0] != "loop":
                self.set(key, value, child.units[key])


@dataclass
class Slot:
    """One item of a layer list as written, with what each instance made of it."""

    path: SpecPath
    kind: str
    elems: list[tuple[Any, Inst]]  # (the item, the instance it belongs to)


def absorb(elems: list[tuple[Any, Inst]], children: list[Inst]) -> None:
    for (_, parent), child in zip(elems, children, strict=True):
        parent.absorb(child)


def _keeps_entry(item: Residual) -> bool:
    """Whether the residual's ``auto`` shortcut is its entry whatever the shapes: its merge
    (the layer the resolver made, so a ``merge: ${...}`` expression counts as evaluated) joins
    along an axis instead of element-wise (see :attr:`LayerKind.combines`)."""
    if item.merge is None:
        return False
    return REGISTRY[item.merge.node.kind].combines not in (None, "elementwise")


def reads_shape(raw: Any) -> bool:
    """Whether a value as written reads the input's shape (``in_channels``/``in_shape``): in
    the code that is a tensor's shape, which means something else a few lines further on."""
    return isinstance(raw, str) and _SHAPE_NAME.search(raw) is not None


def item_path(item: Item) -> SpecPath:
    return item.path if isinstance(item, Conditional) else item.path[:-1]


def item_kind(item: Item) -> str:
    if isinstance(item, Conditional):
        return item.kind
    return str(item.path[-1]) if item.path else ""


def id_scope(inst: Inst, item_id: Any) -> str:
    """The scope of the lists of a residual or parallel with ``id`` ``item_id`` (the resolver
    names the ids inside ``<id>_…``)."""
    if not isinstance(item_id, str) or _contains_expression(item_id):
        return inst.scope
    return f"{inst.scope}{item_id}_"


def iteration_scope(rep: Repeat, inst: Inst, index: int) -> str:
    """The scope of iteration ``index`` of a repeat: ``<id>_`` with an ``id``, one scope per
    iteration (``<id>_<index>_``) when it also carries tensors."""
    if not rep.item_id:
        return inst.scope
    return f"{inst.scope}{rep.item_id}_{index}_" if rep.carry else f"{inst.scope}{rep.item_id}_"


def call_scope(call: BlockCall, inst: Inst) -> str:
    """The scope of a call's items written in place: its prefix past the list's."""
    return call.prefix[len(inst.prefix) :] if call.prefix.startswith(inst.prefix) else inst.scope


def slots_of(insts: list[Inst]) -> list[Slot]:
    """The items of several instances of one layer list, matched by their spec path."""
    found: dict[SpecPath, Slot] = {}
    for inst in insts:
        for item in inst.items:
            path = item_path(item)
            slot = found.get(path)
            if slot is None:
                slot = found[path] = Slot(path, item_kind(item), [])
            slot.elems.append((item, inst))
    return sorted(found.values(), key=lambda s: s.path[-1] if s.path else 0)


def plain(slot: Slot) -> bool:
    """A layer or block call without `when` (consecutive ones share one location comment)."""
    return all(isinstance(item, (Layer, BlockCall)) for item, _ in slot.elems)


def refers_to_input(insts: list[Inst], input_name: str) -> bool:
    """Whether a layer list names its function's input (``inputs: input``), at its own level
    or inside its combinators (``input`` means the same there), not inside block calls."""
    stack: list[Item] = [item for inst in insts for item in inst.items]
    while stack:
        item = stack.pop()
        if not isinstance(item, BlockCall):
            stack.extend(item.children())
        refs = item.extras.get("inputs") if hasattr(item, "extras") else None
        if refs is None:
            continue
        if isinstance(refs, dict):
            refs = list(refs.values())
        for ref in refs if isinstance(refs, list) else [refs]:
            if not isinstance(ref, str) or ref in (INPUT, input_name) or is_expression(ref):
                return True
    return False


def _argument_values(calls: list[BlockCall], param: str) -> tuple[Any, ...] | None:
    """The value of a block parameter in each of ``calls`` (passed or default), or ``None``
    when a call lacks it or there is none (nothing is known then)."""
    if not calls or any(param not in call.args for call in calls):
        return None
    return tuple(call.args[param] for call in calls)


def own_items(items: list[Item]) -> Any:
    """:func:`~cnnspec.ir.walk` without entering backbones (their items are their spec's)."""
    for item in items:
        yield item
        if not isinstance(item, Backbone):
            yield from own_items(list(item.children()))


def item_refs(item: Item) -> list[str]:
    """The id references one item makes itself (``inputs``, a repeat's ``carry`` and ``next``)."""
    values: list[Any] = []
    refs = getattr(item, "extras", {}).get("inputs")
    if isinstance(refs, dict):
        values.extend(refs.values())
    elif isinstance(refs, list):
        values.extend(refs)
    elif refs is not None:
        values.append(refs)
    if isinstance(item, Repeat):
        values.extend(item.carry.values())
        values.extend(item.next.values())
    return [v for v in values if isinstance(v, str)]


def references(tree: Any) -> list[str]:
    """Every id reference the model makes (``inputs``, ``carry``, ``next``, ``outputs``)."""
    found: list[str] = list(tree.output_refs)
    for item in own_items(tree.body):
        found.extend(item_refs(item))
    return found


def expand_refs(refs: list[str], var_values: dict[str, Any]) -> list[str]:
    """``refs`` with each one that is a ``${…}`` of the vars alone replaced by the references
    it gives (``${srcs}`` with ``srcs: [a, "cells[0].h"]``: both), as the resolver reads them;
    one that reads more (a parameter, a loop variable) stays as written."""
    out: list[str] = []
    for ref in refs:
        if is_expression(ref):
            try:
                value = _substitute(ref, var_values)
            except (ExpressionError, TypeError, ValueError, ArithmeticError):
                value = ref
            out.extend(v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str))
        else:
            out.append(ref)
    return out


def call_local(call: BlockCall) -> str | None:
    """The name a call's ids are reachable under from its list: its ``id`` (``c0.h``), or
    without one its automatic name ``BLOCK_N`` (``stage3.inner_1.out``), the last part of its
    prefix (the resolver names it so)."""
    given = call.extras.get("id")
    if given is not None:
        return given if isinstance(given, str) else None
    found = re.search(rf"(?:^|_)({re.escape(call.block)}_\d+)_$", call.prefix)
    return found[1] if found is not None else None


def reaches_inside(refs: list[str], calls: list[BlockCall], outputs: tuple[str, ...]) -> str | None:
    """A reference that names an id inside one of ``calls`` other than the block's outputs
    (``c0.h``, ``stage3.inner_1.out`` by a call's automatic name), or one inside an output
    that is a call of its own (``s.x.c2``, ``x`` an output of ``s``'s block and a call of a
    block whose output ``c2`` is): a function returns its outputs' values only, so it cannot
    show either, and the block is written in place."""
    ids = {call_local(call) for call in calls} - {None}
    for ref in refs:
        parts = ref.split(".")
        for index, (head, tail) in enumerate(itertools.pairwise(parts)):
            if head in ids and (tail not in outputs or index + 2 < len(parts)):
                return ref
    return None


def reads_first_output(refs: list[str], local: str, first: str) -> bool:
    """Whether a reference names the first output of the call reachable as ``local`` by its
    automatic name (``two_1.out``, ``two_1[0]``, ``st.two_1.out`` through a call written in
    place, ``cells[1].two_1.out`` in one iteration). Scopes are not told apart: a match in
    another scope costs only a variable of its own."""
    for ref in refs:
        parts = ref.split(".")
        if f"{local}[0]" in parts or any(
            head == local and tail == first for head, tail in itertools.pairwise(parts)
        ):
            return True
    return False


def _is_layer(item: Item, name: str) -> bool:
    """Whether ``item`` is the layer named ``name`` (as a ``when`` that holds it)."""
    if isinstance(item, Conditional):
        item = item.item if item.value else None
    return isinstance(item, Layer) and item.node.name == name


def top_level(element: Backbone, items: list[Item]) -> bool:
    """Whether the backbone item ``element`` is one of ``items`` (with a true ``when:`` or not)."""
    return any((item.item if isinstance(item, Conditional) else item) is element for item in items)


def nested_iterations(refs: list[str]) -> list[tuple[tuple[str, ...], str, str]]:
    """The iterations references name through a call or another iteration
    (``st.inner[0].c``, ``outer[1].st.inner[0].even``): per iteration, the parts of the name
    before it, the repeat's id and the reference. The lists a loop collects hold only its own
    iterations' ids, so such a repeat (and each one the name passes through) is unrolled."""
    found = []
    for ref in refs:
        parts = ref.split(".")
        if not all(_PART.fullmatch(part) for part in parts):
            continue  # an index computed with ${…}
        at = [i for i, part in enumerate(parts[:-1]) if part.endswith("]")]  # (c0[1] is an output)
        if at and at[-1] > 0:  # past the first part: inside a call or another iteration
            found.extend((tuple(parts[:i]), parts[i].split("[")[0], ref) for i in at)
    return found


def repeats_to_unroll(body: list[Item], refs: list[str]) -> dict[int, str]:
    """The repeats with an ``id`` (by ``id()``) whose iterations :func:`nested_iterations` finds,
    each with the reference that names it: where the parts before the iteration are the tail
    of the names of the calls and iterations around the repeat."""
    wanted = nested_iterations(refs)
    marks: dict[int, str] = {}

    def visit(items: list[Item], around: tuple[str, ...]) -> None:
        for item in items:
            if isinstance(item, Backbone):
                continue  # its names are its spec's (its printer decides for them)
            if isinstance(item, BlockCall):
                visit(item.body, (*around, call_local(item) or ""))
            elif isinstance(item, Repeat) and item.item_id:
                for before, name, ref in wanted:
                    if name == item.item_id and around[len(around) - len(before) :] == before:
                        marks.setdefault(id(item), ref)
                for k, iteration in enumerate(item.iterations):
                    visit(iteration, (*around, f"{item.item_id}[{k}]"))
            else:
                visit(list(item.children()), around)

    if wanted:
        visit(body, ())
    return marks


def partial_iteration_ids(
    body: list[Item], collected: dict[str, list[str]], var_values: dict[str, Any]
) -> set[tuple[str, str]]:
    """The ids of iterations that items name (``collected``: ``cells[1].side``) which some
    iteration of a repeat with that id does not make: a ``when`` false there, an id
    computed per iteration (``h${i}``), one inside a call that makes it in some calls only.
    A loop cannot append such an id to a list in each iteration: the repeat is unrolled, and
    the reference reads the iteration's own variable (:meth:`TreePrinter.named_inside`)."""
    found: set[tuple[str, str]] = set()

    def visit(items: list[Item], env: dict[str, Any]) -> None:
        for item in items:
            if isinstance(item, Backbone):
                continue  # its names are its spec's (its printer decides for them)
            if isinstance(item, BlockCall):
                visit(item.body, {**var_values, **item.args})
            elif isinstance(item, Repeat):
                for index, iteration in enumerate(item.iterations):
                    inner = {**env, item.var: index} if item.var else env
                    for rest in collected.get(item.item_id or "", []):
                        if not makes_id(iteration, rest.split("."), inner, var_values, set(item.carry)):
                            found.add((str(item.item_id), rest))
                    visit(iteration, inner)
            else:
                visit(list(item.children()), env)

    if collected:
        visit(body, dict(var_values))
    return found


def makes_id(
    items: list[Item],
    parts: list[str],
    env: dict[str, Any],
    var_values: dict[str, Any],
    carried: set[str] | frozenset[str] = frozenset(),
) -> bool:
    """Whether one iteration's (call's) ``items`` make the id the reference ``parts`` name
    (``["c", "side"]``): an item of theirs that is there (not under a false ``when``) with
    that id, its ``${…}`` evaluated in ``env``, and through a call the id inside it. An id of
    a repeat, residual or parallel inside counts as made (as the loop finds it)."""
    head, _, index = parts[0].partition("[")
    if head in carried:
        return True
    for item in items:
        if isinstance(item, Conditional) and not item.value:
            continue  # its id is free in this list: another item may take it
        inner = item.item if isinstance(item, Conditional) else item
        if inner is None:
            continue
        local = _written_id(inner)
        if isinstance(local, str) and _contains_expression(local):
            try:
                local = _substitute(local, env)
            except (ExpressionError, TypeError, ValueError, ArithmeticError):
                continue  # not known here: as if it were not made (the repeat is unrolled)
        if local != head:
            continue
        if len(parts) == 1 or index or not isinstance(inner, BlockCall):
            return True  # (`c0[1]`: an output of the call)
        if makes_id(inner.body, parts[1:], {**var_values, **inner.args}, var_values):
            return True
        # a name no item of the block declares (none computes its id either): one of the
        # block's inputs, passed through as an output (`new.x`), which every call has
        return len(parts) == 2 and _declared_id(inner.body, parts[1].partition("[")[0]) is False
    return False


def _written_id(item: Item) -> Any:
    """The id an item is written with (a call's as :func:`call_local` reads it), or ``None``."""
    return call_local(item) if isinstance(item, BlockCall) else getattr(item, "extras", {}).get("id")


def _declared_id(items: list[Item], name: str) -> bool | None:
    """Whether an item of ``items`` (under a ``when`` or not) has the id ``name`` written as
    it is; ``None`` when some item's id is computed (``h${i}``: it may be ``name`` in a call)."""
    for item in items:
        inner = item.item if isinstance(item, Conditional) else item
        if inner is None:  # a `when` false in this call: its id, if it says one
            local = item.extras.get("id") if isinstance(item, Conditional) else None
            if local is None:
                return None  # (not known here: as if it were the name)
        else:
            local = _written_id(inner)
        if isinstance(local, str) and _contains_expression(local):
            return None
        if local == name:
            return True
    return False


def loop_nesting(items: list[Item]) -> int:
    """How many repeats nest inside one another in ``items``, not counting those inside
    block calls and backbones (a function of their own, or checked when written in place)."""
    deepest = 0
    for item in items:
        if isinstance(item, (BlockCall, Backbone)):
            continue
        inner = (
            max((loop_nesting(list(i)) for i in item.iterations), default=0)
            if isinstance(item, Repeat)
            else 0
        )
        if isinstance(item, Repeat):
            deepest = max(deepest, 1 + inner)
        else:
            deepest = max(deepest, loop_nesting(list(item.children())))
    return deepest


def model_refs(tree: Any) -> list[str]:
    """The references made in the model's own scope (its items, not a block's, and its
    ``outputs``): the only ones that can name an id inside a backbone (``body.conv4``)."""
    found: list[str] = []

    def visit(items: list[Item]) -> None:
        for item in items:
            found.extend(item_refs(item))
            if not isinstance(item, (BlockCall, Backbone)):
                visit(list(item.children()))

    visit(tree.body)
    return [*found, *tree.output_refs]
