"""The model module printed from the resolver's structured tree (``ir.tree``).

The printer never walks the spec: it reads the :class:`~cnnspec.ir.ModelTree`, where every
block call, repeat iteration and conditional item is recorded with the layers it produced.
A block is printed once, as a function, from all of its calls together; a repeat becomes a
``for`` loop from all of its iterations together. Every layer name is the resolver's
``node.name``: inside a function or loop it is written as the call's name parameter plus the
text the calls (iterations) share, with the numbers that differ fitted as a linear function of
the loop variables and conditions in scope. Whether a block is a function (else inlined) and
a repeat a loop (else unrolled) is decided once, before printing it, from that data.
"""

from __future__ import annotations

import ast
import itertools
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from cnnspec.backends.codegen_check import Unknown, same_value
from cnnspec.backends.codegen_model import (
    ANNOTATIONS,
    UNKNOWN,
    Binding,
    CodegenError,
    CodeWriter,
    Constant,
    Ctx,
    FuncParam,
    FuncState,
    Function,
    IdScope,
    LoopFrame,
    ModelModule,
    NameRef,
    PrefixPart,
    Stmt,
    TensorRef,
    _build_model_doc,
    _contains_expression,
    _direct,
    _first_free,
    _input_statement,
    _model_return,
    _reads_tensor,
    _results,
    _sample,
    _short,
    _substitute,
    _where,
    augmentation_statements,
    default_kwargs,
    drop_unused,
    literal_kwargs,
    merge_ifs,
    node_kwargs,
)
from cnnspec.backends.codegen_values import UnsafeValue, comment_text, is_identifier, literal_node
from cnnspec.backends.codegen_vars import gives, passed_alone
from cnnspec.errors import Diagnostic, Note, SpecError, SpecPath, format_path
from cnnspec.ir import (
    INPUT,
    Backbone,
    BlockCall,
    BlockDef,
    Conditional,
    Item,
    Layer,
    Parallel,
    Repeat,
    Residual,
    layers_of,
    walk,
)
from cnnspec.layers.registry import REGISTRY
from cnnspec.spec.expr import ExpressionError, is_expression

_NUMBER = re.compile(r"(\d+)")
#: One part of a hierarchical name: ``st``, ``inner[0]``.
_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[\d+\])?")
#: One iteration of a repeat with an ``id``: ``cells[3].h``, ``enc[${levels - 1 - i}].level.skip``.
ITERATION_REF = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\[(\d+|\$\{[^}]*\})\]\.([A-Za-z_][A-Za-z0-9_.\[\]]*)")


#: The spec path of an augmentation layer the resolver made (``augmentation[0].random_flip``).
AUGMENTATION_PATH = re.compile(r"augmentation\[(\d+)\]\.[A-Za-z_][A-Za-z0-9_]*")
#: The kind of a statement that holds the statements of a pruned item (:func:`drop_pruned`).
PRUNED = "pruned"
#: The helper function of projection shortcuts whose shapes are known only at run time.
PROJECTION = "projection_strides"
#: The helper that says at run time whether an ``auto`` shortcut is projected: the shapes
#: differ and the body's output is no gate the merge broadcasts over the entry.
NEEDS_PROJECTION = "needs_projection"
#: The most ``for`` loops written inside one another in one function: Python refuses more
#: than 20 statically nested blocks ("too many statically nested blocks"), and the resolver
#: accepts 32 nested repeats. A repeat deeper than this is unrolled (its count is known
#: there), a block whose own repeats nest this deep is written in place.
MAX_LOOP_NESTING = 16


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
    (``c0.h``, ``stage3.inner_1.out`` by a call's automatic name): a function cannot show
    it, so the block is written in place."""
    ids = {call_local(call) for call in calls} - {None}
    for ref in refs:
        parts = ref.split(".")
        for head, tail in itertools.pairwise(parts):
            if head in ids and tail not in outputs:
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


# -- a backbone cut inside one of its items -------------------------------------------------------
@dataclass
class Cut:
    """How the printer writes the copy of an item that holds a backbone's cut (``until:`` a
    layer inside it, :func:`cut_item`): the copy holds only what is written, the part of the
    item the cut tensor depends on, so every walk of the tree (the calls a block function is
    printed from, the references) sees what the code has.

    ``kind``: ``call`` (a block call whose body ends at the cut: its layers written in place,
    returning the cut tensor); ``repeat`` (its whole iterations before the cut's, then the
    cut's, number ``index`` of the ``times`` the spec runs, ending at the cut); ``body``,
    ``shortcut`` or ``projection`` (a residual with only the list, or the projection layers,
    that lead from its entry to the cut); ``branch`` (a parallel with only its branch number
    ``index``, up to the cut)."""

    kind: str
    index: int = 0
    times: int = 0


class CutRefused(Exception):
    """A backbone cut inside an item that the code cannot write (the reason is the message);
    ``backbone``: the backbone item of the backbone's spec that holds the cut, if that is why."""

    def __init__(self, reason: str, backbone: Backbone | None = None) -> None:
        super().__init__(reason)
        self.backbone = backbone


def holds(item: Item, name: str) -> bool:
    """Whether ``item`` made the layer ``name`` (at any depth)."""
    return any(leaf.node.name == name for leaf in layers_of([item]))


def kept_whole(item: Item, kept: set[str] | frozenset[str]) -> bool:
    """Whether the cut keeps every layer of ``item`` (it is printed as is). The layers after the
    cut are not in ``kept``, whether or not the resolver marked them pruned (it does where the
    model around the backbone prunes)."""
    return all(leaf.node.name in kept for leaf in layers_of([item]))


def pruned_copy(item: Item, kept: set[str] | frozenset[str]) -> Item:
    """``item`` with the layers a backbone cut leaves out (not in ``kept``: the cut tensor does
    not depend on them) marked as pruned, so the printer leaves them out as it leaves out the
    layers the resolver prunes (:func:`drop_pruned`). A copy only where something changes:
    the compiled spec's tree stays as it is."""
    if kept_whole(item, kept):
        return item

    def copies(items: list[Item]) -> list[Item]:
        return [pruned_copy(inner, kept) for inner in items]

    def layer(leaf: Layer | None) -> Layer | None:
        return None if leaf is None else replace(leaf, live=leaf.live and leaf.node.name in kept)

    if isinstance(item, Layer):
        return replace(item, live=False)
    if isinstance(item, Conditional):
        return replace(item, item=pruned_copy(item.item, kept) if item.item is not None else None)
    if isinstance(item, BlockCall | Backbone):
        return replace(item, body=copies(item.body))
    if isinstance(item, Repeat):
        return replace(item, iterations=[copies(iteration) for iteration in item.iterations])
    if isinstance(item, Residual):
        return replace(
            item,
            body=copies(item.body),
            shortcut=copies(item.shortcut),
            merge=layer(item.merge),
            activation=layer(item.activation),
        )
    return replace(
        item,
        branches=[copies(branch) for branch in item.branches],
        merge=layer(item.merge),
        activation=layer(item.activation),
    )


def cut_list(
    items: list[Item], target: str, kept: set[str] | frozenset[str], cuts: dict[int, Cut]
) -> list[Item] | None:
    """The items of a layer list up to the layer ``target`` (``None``: none of them made it):
    those before the one that holds it (pruned to ``kept``), then that one cut
    (:func:`cut_item`). ``cuts`` gets how to write each item cut (by ``id()`` of the copy)."""
    for index, item in enumerate(items):
        if holds(item, target):
            before = [pruned_copy(inner, kept) for inner in items[:index]]
            return [*before, cut_item(item, target, kept, cuts)]
    return None


def _cut_to(
    items: list[Item], target: str, kept: set[str] | frozenset[str], cuts: dict[int, Cut]
) -> list[Item]:
    """:func:`cut_list` of a list known to hold ``target``."""
    found = cut_list(items, target, kept, cuts)
    assert found is not None
    return found


def cut_item(item: Item, target: str, kept: set[str] | frozenset[str], cuts: dict[int, Cut]) -> Item:
    """The item that holds the layer ``target`` with only what the cut tensor depends on: as it
    is (pruned to ``kept``) where that is all of it or it ends at the cut, else a copy with only
    the path to the cut, which ``cuts`` says how to write (:class:`Cut`). Raises
    :class:`CutRefused` for one the code cannot write."""
    if kept_whole(item, kept):
        return item
    if isinstance(item, Conditional):  # (a true `when`: the item is there)
        assert item.item is not None
        return replace(item, item=cut_item(item.item, target, kept, cuts))
    if isinstance(item, BlockCall):
        copy: Item = replace(item, body=_cut_to(item.body, target, kept, cuts))
        cuts[id(copy)] = Cut("call")
        return copy
    if isinstance(item, Repeat):
        index = next(k for k, items in enumerate(item.iterations) if any(holds(i, target) for i in items))
        whole = [[pruned_copy(inner, kept) for inner in iteration] for iteration in item.iterations[:index]]
        partial = _cut_to(item.iterations[index], target, kept, cuts)
        copy = replace(item, iterations=[*whole, partial])
        cuts[id(copy)] = Cut("repeat", index, item.times)
        return copy
    if isinstance(item, Residual | Parallel):
        if item.activation is not None and item.activation.node.name == target:
            return pruned_copy(item, kept)  # its output: all of it, less what it does not take
        if item.merge is not None and item.merge.node.name == target:
            # the merge is the cut: the whole item but its activation after the merge
            raw = {k: v for k, v in item.raw.items() if k != "activation"}
            return pruned_copy(replace(item, activation=None, raw=raw), kept)
    if isinstance(item, Residual):
        # only the path to the cut: the other one, the merge and the activation come after it
        if any(holds(inner, target) for inner in item.body):
            copy = replace(item, body=_cut_to(item.body, target, kept, cuts), shortcut=[], merge=None)
            kind = "body"
        elif item.mode == "list":
            copy = replace(item, body=[], shortcut=_cut_to(item.shortcut, target, kept, cuts), merge=None)
            kind = "shortcut"
        else:  # the projection the resolver made: its convolution, then its batch norm
            index = next(k for k, leaf in enumerate(item.shortcut) if holds(leaf, target))
            copy = replace(item, body=[], shortcut=item.shortcut[: index + 1], merge=None)
            kind = "projection"
        copy = replace(copy, activation=None)
        cuts[id(copy)] = Cut(kind)
        return copy
    if isinstance(item, Parallel):
        branch = next(b for b, items in enumerate(item.branches) if any(holds(i, target) for i in items))
        path = _cut_to(item.branches[branch], target, kept, cuts)
        copy = replace(item, branches=[path], merge=None, activation=None)
        cuts[id(copy)] = Cut("branch", branch)
        return copy
    # a backbone inside the backbone (the only other item that holds layers): codegen writes
    # a backbone item only in the model's own list, cut or not
    assert isinstance(item, Backbone)
    raise CutRefused(f"it is inside backbone {item.spec!r} at {format_path(item_path(item))}", item)


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


def fit_linear(
    values: list[int], feats: list[dict[Any, int]], prefer: Callable[[Any], int] | None = None
) -> tuple[int, dict[Any, int]] | None:
    """Integer ``const + Σ coef·feature`` equal to ``values`` for every instance, or ``None``.
    A feature the data cannot tell apart from the constant (a loop that ran once everywhere, a
    condition true in every call) gets its ``prefer`` coefficient: what one unit of it adds,
    so the code stays right for other values."""
    # Only the features every instance has: one that a condition or loop inside another
    # condition found is unknown (and meaningless) where that condition was false.
    keys = [k for k in feats[0] if all(k in f for f in feats[1:])] if feats else []
    rows = list(dict.fromkeys((1, *(int(f[k]) for k in keys), v) for f, v in zip(feats, values, strict=True)))
    # Solve on the rows that the current solution gets wrong only, until it gets none wrong
    # (each round adds a row the basis does not span, so at most one per feature and one
    # more): checking a row is cheap, eliminating over thousands of rows is not.
    basis: list[tuple[int, ...]] = []
    coef: list[Any] | None = None
    while True:
        wrong = next(
            (row for row in rows if coef is None or sum(map(operator.mul, coef, row)) != row[-1]), None
        )
        if wrong is None:
            break
        basis.append(wrong)
        solved = _solve(basis, keys, prefer)
        if solved is None:
            return None
        coef = [int(x) for x in solved] if all(x.denominator == 1 for x in solved) else solved
    if coef is None or any(isinstance(x, Fraction) and x.denominator != 1 for x in coef):
        return None
    return int(coef[0]), {k: int(coef[i + 1]) for i, k in enumerate(keys) if coef[i + 1]}


def _solve(
    basis: list[tuple[int, ...]], keys: list[Any], prefer: Callable[[Any], int] | None
) -> list[Fraction] | None:
    """``[const, coef…]`` solving the rows ``(1, features…, value)`` exactly (free features
    at their ``prefer`` value), or ``None`` when they contradict each other."""
    rows = [[Fraction(x) for x in row] for row in basis]
    ncols = 1 + len(keys)
    pivots: list[int] = []
    r = 0
    for c in range(ncols):
        pivot = next((i for i in range(r, len(rows)) if rows[i][c] != 0), None)
        if pivot is None:
            continue
        rows[r], rows[pivot] = rows[pivot], rows[r]
        lead = rows[r][c]
        rows[r] = [x / lead for x in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][c] != 0:
                factor = rows[i][c]
                rows[i] = [a - factor * b for a, b in zip(rows[i], rows[r], strict=True)]
        pivots.append(c)
        r += 1
    if any(rows[i][-1] != 0 for i in range(r, len(rows))):
        return None
    coef = [Fraction(0)] * ncols
    for c in range(1, ncols):
        if c not in pivots:
            coef[c] = Fraction(prefer(keys[c - 1]) if prefer is not None else 0)
    for i, c in enumerate(pivots):
        coef[c] = rows[i][-1] - sum(
            (rows[i][f] * coef[f] for f in range(ncols) if f not in pivots), Fraction(0)
        )
    return coef


def fit_text(
    texts: list[str], insts: list[Inst], count: Callable[[Inst, Any, str, str], int]
) -> list[Any] | None:
    """``texts`` (one per instance) as text parts and fitted numbers (``(const, {feature:
    coef})``), or ``None`` when no such expression gives every one of them."""
    feats = [inst.feats for inst in insts]
    tokens = [_NUMBER.split(text) for text in texts]
    first = tokens[0]
    if any(len(t) != len(first) for t in tokens):
        return None
    parts: list[Any] = []
    for i, token in enumerate(first):
        column = [t[i] for t in tokens]
        if i % 2 == 0 or (all(c == token for c in column) and i != len(first) - 2):
            if any(c != token for c in column):
                return None
            if token:
                parts.append(token)
            continue
        if any(str(int(c)) != c for c in column):
            return None
        prefer = None
        if i == len(first) - 2:  # the layer's own number: what one unit of a feature adds
            stem = "".join(first[:i])

            def prefer(key: Any, stem: str = stem) -> int:
                seen = {
                    (id(inst.units.get(key)), inst.prefix, text): inst
                    for inst, text in zip(insts, texts, strict=True)
                }
                return max(count(inst, key, stem, text) for (_, _, text), inst in seen.items())

        fitted = fit_linear([int(c) for c in column], feats, prefer)
        if fitted is None:
            return None
        parts.append(fitted if fitted[1] else str(fitted[0]))
    return parts


class TreePrinter(CodeWriter):
    """Prints the model module from ``compiled.ir.tree`` (no walk of the spec)."""

    def __init__(
        self,
        compiled: Any,
        *,
        script: bool = False,
        reach: tuple[str, ...] = (),
        float32_outputs: frozenset[str] = frozenset(),
    ) -> None:
        """``reach``: the ids of a backbone's spec that the model around it names
        (``body.stem`` is ``stem``): its function returns them too. ``float32_outputs``: the
        layers (model outputs) written with ``dtype="float32"`` (``runtime.mixed_precision``,
        see :meth:`output_dtype`)."""
        super().__init__(compiled, script=script)
        self.script = script  # a training script loads the spec's weights; a model module doesn't
        #: The ids of this spec that the model around it names (a backbone's printer).
        self.reach = reach
        #: A backbone's printer: the backbone item's prefix of its layer names (``body_``).
        self.ir_prefix = ""
        self.float32_outputs = float32_outputs
        #: The layers of ``float32_outputs`` written so far (a backbone's printer adds its own).
        self.float32_written: set[str] = set()
        self.features: dict[Any, ast.expr] = {}
        self.frames: dict[Any, LoopFrame] = {}
        self.calls: dict[str, list[BlockCall]] = {}
        for item in own_items(self.tree.body):
            if isinstance(item, BlockCall):
                self.calls.setdefault(item.block, []).append(item)
        #: A backbone's printer: the prefix of its vars' constants, its blocks' function names.
        self.const_prefix = ""
        #: Spec paths outside the model's layers written as expressions (ModelModule.expressed).
        self.expressed: set[SpecPath] = set()
        self.function_names: dict[str, str] = {}
        self.backbone_partials = False
        self.modes: dict[str, str | None] = {}
        self.partials: dict[str, tuple[str, list[tuple[str, ast.expr]]]] = {}  # kind → (name, preset)
        var_values = {var.name: var.value for var in self.tree.vars}
        self.refs = [*expand_refs(references(self.tree), var_values), *reach]
        #: Per repeat id, the ids of its iterations that items name (``enc[i].skip``): with
        #: ``carry`` or without (``rep[0].c0``, ids the resolver records alike).
        self.collected: dict[str, list[str]] = {}
        for ref in self.refs:
            found = ITERATION_REF.fullmatch(ref)
            if found is None or ITERATION_REF.search(found[3]):
                continue  # (an iteration inside an iteration: both repeats are unrolled)
            if found[3] not in self.collected.setdefault(found[1], []):
                self.collected[found[1]].append(found[3])
        #: The repeats an iteration reference reaches through a call or iteration (unrolled).
        self.unroll = repeats_to_unroll(self.tree.body, self.refs)
        #: The collected ids some iteration does not make (no list: each is unrolled).
        self.partial = partial_iteration_ids(self.tree.body, self.collected, var_values)
        self.lists: dict[tuple[str, str], str] = {}  # (repeat id, inner id) → the list variable
        self.produced: dict[str, TensorRef] = {}  # IR name → the variable holding it
        self.notes: list[str] = []
        self.fitted: dict[tuple[Any, ...], tuple[str | None, list[Inst], list[Inst]]] = {}
        #: Per layer list (kept alive here, so ids stay unique): its local names by stem.
        self.unit_names: dict[tuple[int, str], tuple[list[Item], dict[str, int], set[str]]] = {}
        #: Whether the resolver left layers out (they lead to no output): the builder drops
        #: them, and so does the code (:meth:`print_slot`).
        self.any_pruned = any(not leaf.live for leaf in layers_of(self.tree.body))
        #: How many ``for`` loops enclose what is being printed, in the function being printed.
        self.loop_depth = 0
        #: A backbone's printer cut inside an item: the copies of the items that hold the cut
        #: (by ``id()``), each with how to write the part the cut tensor depends on.
        self.cuts: dict[int, Cut] = {}
        #: The cut's ``until:`` as the backbone item writes it (in the comments of what is cut).
        self.cut_label = ""
        #: A backbone's printer: the backbone items it is reached through, from the model's
        #: own, each with the document that writes it (a refusal is located at the first).
        self.around: list[tuple[Backbone, Any]] = []

    # -- entry point -----------------------------------------------------------------------
    def build(self) -> ModelModule:
        self.check_names()
        self.build_constants()
        self.build_partials()
        model = self.build_model_function()
        source = self.data.get("weights")
        if source is not None and not self.script:  # (train, build --weights and scripts do)
            text = source.get("from") if isinstance(source, dict) else source
            self.notes.append(f"the spec starts from the weights {text!r}; this code does not load them")
        # Only the functions the model calls (those of pruned calls only are left out).
        functions = [self.functions[name] for name in self.order]
        called = _called(model.body)
        for function in reversed(functions):  # a function calls only those defined before it
            if function.name in called:
                called |= _called(function.body)
        functions = [function for function in functions if function.name in called]
        missed = sorted((self.float32_outputs & set(self.ir_nodes)) - self.float32_written)
        if missed:  # (each output layer is printed by print_layer, print_merge or print_activation)
            raise CodegenError(f"the output layer {missed[0]!r} was not written in float32")
        bodies = [model.body, *(function.body for function in functions)]
        return ModelModule(
            name=self.ir.name,
            description=self.ir.description,
            constants=self.constants,
            functions=[*functions, model],
            augmentation=self.augmentation_statements(),
            uses_projection=self.uses_projection and any(_reads(body, PROJECTION) for body in bodies),
            uses_gate_test=self.uses_gate_test and any(_reads(body, NEEDS_PROJECTION) for body in bodies),
            notes=self.notes,
            uses_partial=bool(self.partials) or self.backbone_partials,
            expressed=frozenset(self.expressed),
        )

    def augmentation_statements(self) -> list[Stmt]:
        """The ``augmentation`` layers, with a parameter the spec writes as an expression of
        vars written as that expression of their constants (``height_factor=F``), as the
        model's layers are, where Keras gets its value as it is and nothing else follows from
        it (each such path kept in :attr:`expressed`); the others as the resolver made them."""
        stmts = augmentation_statements(self.ir, self.doc)
        items = self.data.get("augmentation")
        if not isinstance(items, list):
            return stmts
        constants = {f"{self.const_prefix}{var.name.upper()}": var.value for var in self.tree.vars}
        for stmt, node in zip(stmts, self.ir.augmentation, strict=True):
            found = AUGMENTATION_PATH.fullmatch(node.path)
            index = int(found.group(1)) if found is not None else -1
            item = items[index] if 0 <= index < len(items) else None
            raw = item.get(node.kind) if isinstance(item, dict) and len(item) == 1 else None
            if not isinstance(raw, dict):
                continue
            kind = REGISTRY[node.kind]
            kwargs = dict(stmt.kwargs)
            for pname, value in raw.items():
                param = kind.param_index.get(pname)
                key = param.keras_name if param is not None else None
                if key is None or key not in kwargs or not is_expression(value):
                    continue
                resolved = node.params.get(pname)
                try:
                    passed = ast.literal_eval(kwargs[key])
                    written = self.translate_value(value, self.var_bindings, None)
                except (ValueError, Unknown, ExpressionError, UnsafeValue):
                    continue
                if not same_value(passed, resolved) or not passed_alone(kind, node.params, pname, key):
                    continue
                if gives(written, constants, resolved):
                    kwargs[key] = written
                    self.expressed.add(("augmentation", index, node.kind, pname))
            stmt.kwargs = list(kwargs.items())
        return stmts

    def input_shape_node(self) -> ast.expr:
        """``keras.Input``'s shape. In a model module: the spec's expression of vars where
        ``input.shape`` (or a side of it) writes one that gives its value, as the layers are
        written (each such path kept in :attr:`expressed`); the replay of
        :func:`~cnnspec.backends.codegen_probe.fitted_constants` tries other values of the vars
        it reads, against the model the resolver makes of them. In a training script: its value,
        which the script also decodes and resizes the images to."""
        shape = tuple(self.ir.input_shape)
        section = self.data.get("input")
        raw = section.get("shape") if isinstance(section, dict) else None
        if self.script or not self.tree.vars:
            return literal_node(shape)
        constants = {f"{self.const_prefix}{var.name.upper()}": var.value for var in self.tree.vars}

        def expression(value: Any, resolved: Any) -> ast.expr | None:
            if not isinstance(value, str) or not is_expression(value):
                return None
            try:
                node = self.translate_value(value, self.var_bindings, None)
            except (Unknown, ExpressionError, UnsafeValue):
                return None
            return node if gives(node, constants, resolved) else None

        if isinstance(raw, str):
            whole = expression(raw, list(shape))
            if whole is not None:
                self.expressed.add(("input", "shape"))
                return whole
        elif isinstance(raw, list) and len(raw) == len(shape):
            sides: list[ast.expr] = []
            for index, (value, side) in enumerate(zip(raw, shape, strict=True)):
                node = expression(value, side)
                if node is not None:
                    self.expressed.add(("input", "shape", index))
                sides.append(node or literal_node(side))
            return ast.Tuple(sides, ast.Load())
        return literal_node(shape)

    def build_partials(self) -> None:
        """Spec-level ``defaults:`` as one constant per kind, a ``functools.partial`` of the
        Keras class with the values that differ from Keras' own:
        ``BATCH_NORM = functools.partial(layers.BatchNormalization, momentum=0.9997)``."""
        taken = {c.name for c in self.constants} | set(self.module_names) | set(self._used_blocks())
        where = _where(self.doc.key_loc(("defaults",)))
        for kind_name, values in self.tree.defaults.items():
            kind = REGISTRY[kind_name]
            kwargs = literal_kwargs(kind, {**kind.defaults(), **values})
            # A value that is an object (`keras.initializers.Constant(…)`, a regularizer) stays
            # on each layer: a module constant calls nothing but `functools.partial`, and each
            # layer gets its own object, as the builder gives it.
            kwargs = [(k, v) for k, v in kwargs if not any(isinstance(n, ast.Call) for n in ast.walk(v))]
            if not kwargs:
                continue  # every value is Keras' default (or an object): nothing to say
            name = _first_free([kind_name.upper(), f"{kind_name.upper()}_LAYER"], taken)
            taken.add(name)
            func = ast.Attribute(ast.Name("functools", ast.Load()), "partial", ast.Load())
            cls = ast.Attribute(ast.Name("layers", ast.Load()), kind.keras_class, ast.Load())
            value = ast.Call(func, [cls], [ast.keyword(k, v) for k, v in kwargs])
            self.constants.append(Constant(name, value, f"defaults ({where})"))
            self.partials[kind_name] = (name, kwargs)

    def partial_kwargs(self, kind: Any, kwargs: list[tuple[str, ast.expr]]) -> list[tuple[str, ast.expr]]:
        """A layer's keyword arguments beside its kind's partial: the ones the partial sets
        to the same value go; a value the partial sets but this layer keeps at Keras' default
        (a parameter written on the layer) is written."""
        _, preset = self.partials[kind.name]
        given = {key: ast.dump(node) for key, node in kwargs}
        out = [(k, v) for k, v in kwargs if not any(k == p and given[k] == ast.dump(n) for p, n in preset)]
        defaults = default_kwargs(kind)
        for key, _ in preset:
            if key not in given and key in defaults:
                out.append((key, literal_node(defaults[key])))
        return out

    def build_constants(self) -> None:
        for var in self.tree.vars:
            node = literal_node(var.value)
            if _contains_expression(var.raw):
                try:
                    node = self.translate_value(var.raw, self.var_bindings, None, fold=False)
                except (Unknown, ExpressionError, UnsafeValue):
                    node = literal_node(var.value)
                if any(isinstance(n, ast.JoinedStr) for n in ast.walk(node)):
                    node = literal_node(var.value)
            constant = self.const_prefix + var.name.upper()
            self.constants.append(Constant(constant, node, _where(var.loc)))
            self.var_bindings[var.name] = Binding(ast.Name(constant, ast.Load()), var.value)

    def build_model_function(self) -> Function:
        taken = set(self.module_names) | {c.name for c in self.constants} | set(self.functions)
        taken |= set(self._used_blocks())
        fn = FuncState("build_model", None, taken, is_model=True)
        inputs_var = fn.allocate("inputs")
        chain = fn.allocate("x")
        entry = TensorRef(inputs_var, self.input_name, tuple(self.ir.input_shape))
        out: list[Stmt] = [_input_statement(inputs_var, self.ir, self.input_shape_node())]
        ctx = Ctx(fn, (), dict(self.var_bindings), IdScope(entry, None), chain, out)
        self.produced[self.input_name] = entry  # `outputs: [head, input]`
        last = self.print_list([Inst(self.tree.body, "")], ctx)
        refs = []
        written = self.tree.output_refs
        if len(written) != len(self.tree.outputs):
            written = (None,) * len(self.tree.outputs)
        for output, ref in zip(self.tree.outputs, written, strict=True):
            tensor = self.produced.get(output)
            if tensor is None and ref is not None:  # one iteration (`cells[0].new`), an inner id
                tensor = self.find_ref(ref, ctx, last)
            if tensor is None and len(self.tree.outputs) == 1:
                tensor = last  # no `outputs:`, the last layer
            if tensor is None:
                raise self.need(ctx, f"the model output {output!r}")
            refs.append(_tensor(tensor))
        result = refs[0] if len(refs) == 1 else ast.List(refs, ast.Load())
        out.append(_model_return(inputs_var, result, self.ir))
        self.freeze_statements(fn, out)
        doc = _build_model_doc(self.ir)
        return Function(
            "build_model", None, None, [], None, doc, "", drop_unused(merge_ifs(drop_pruned(out)))
        )

    def freeze_statements(self, fn: FuncState, out: list[Stmt]) -> None:
        """``trainable: false``: the model is made, then its frozen layers are named in one
        constant and frozen in a loop (readable, and the same whatever loops and block
        functions made the layers): ``return keras.Model(…)`` becomes
        ``model = keras.Model(…)``, the loop, ``return model``."""
        frozen = [node.name for node in self.ir.nodes if not node.trainable]
        if not frozen:
            return
        taken = set(self.module_names) | {c.name for c in self.constants} | set(self.functions)
        constant = _first_free(["FROZEN_LAYERS", "FROZEN_LAYER_NAMES"], taken)
        names = ast.List([ast.Constant(name) for name in frozen], ast.Load())
        self.constants.append(
            Constant(
                constant,
                names,
                "the layers of items with `trainable: false`: training leaves their weights as they are",
            )
        )
        model, layer = fn.allocate("model"), fn.allocate("layer_name")
        made = out.pop()
        assert made.value is not None
        out.append(Stmt("assign", target=model, value=made.value))
        freeze = Stmt("assign", target=f"{model}.get_layer({layer}).trainable", value=ast.Constant(False))
        loop = Stmt(
            "for", value=ast.Name(constant, ast.Load()), body=[freeze], frame=LoopFrame(layer), text="in"
        )
        out.append(loop)
        out.append(Stmt("return", value=ast.Name(model, ast.Load())))

    # -- names -----------------------------------------------------------------------------
    def name_ref(self, ctx: Ctx, elems: list[tuple[str, Inst]]) -> NameRef:
        texts = []
        for name, inst in elems:
            if not name.startswith(inst.prefix):
                raise self.need(ctx, f"layer {name!r} outside its block's prefix")
            texts.append(name[len(inst.prefix) :])
        parts = fit_text(texts, [inst for _, inst in elems], self.unit_count)
        if parts is None:
            raise self.need(ctx, f"the names {texts[:3]} with one expression")
        out: list[PrefixPart] = list(ctx.prefix)
        for part in parts:
            out.append(part if isinstance(part, str) else self.number(part))
        return NameRef(tuple(out))

    def number(self, fitted: tuple[int, dict[Any, int]]) -> PrefixPart:
        const, coefs = fitted
        expr: ast.expr | None = None
        for key, coef in coefs.items():
            frame = self.frames.get(key)
            if frame is not None:
                frame.used = True
            part = ast.parse(ast.unparse(self.features[key]), mode="eval").body
            if coef != 1:
                part = ast.BinOp(ast.Constant(coef), ast.Mult(), part)
            expr = part if expr is None else ast.BinOp(expr, ast.Add(), part)
        if expr is None:
            return str(const)
        if const:
            expr = ast.BinOp(expr, ast.Add(), ast.Constant(const))
        return expr

    def unit_count(self, inst: Inst, key: Any, stem: str, own: str) -> int:
        """How many names ``stem<N>`` one unit of feature ``key`` adds in ``inst`` (0 for the
        condition the item named ``own`` stands under: inside its ``if`` it is always true)."""
        items = inst.units.get(key, [])
        cached = self.unit_names.get((id(items), inst.prefix))
        if cached is None:
            stems: dict[str, int] = {}
            names: set[str] = set()
            for item in walk(items):
                if isinstance(item, Layer):
                    name = item.node.name
                elif isinstance(item, BlockCall):
                    name = item.prefix[:-1]
                else:
                    continue
                if name.startswith(inst.prefix):
                    local = name[len(inst.prefix) :]
                    names.add(local)
                    stem_of = local.rstrip("0123456789")
                    if stem_of != local:
                        stems[stem_of] = stems.get(stem_of, 0) + 1
            cached = self.unit_names[(id(items), inst.prefix)] = (items, stems, names)
        if own in cached[2] and key[0] != "loop":
            return 0
        return cached[1].get(stem, 0)

    # -- what fits (decided before printing) ------------------------------------------------
    def fits(self, insts: list[Inst], parents: list[Inst] | None = None) -> str | None:
        """Why these instances of a layer list cannot share one text (``None``: they can).
        With ``parents`` (a residual's or parallel's lists, which share the enclosing list's
        layer numbering), the conditions and loop counts found inside are passed up to them.
        Remembered: the printer asks again, with the same instances, what deciding an outer
        loop or block already asked."""
        key = tuple(
            (id(i.items), i.prefix, i.scope, tuple((k, v, id(i.units.get(k))) for k, v in i.feats.items()))
            for i in insts
        )
        if key not in self.fitted:
            copies = [Inst(i.items, i.prefix, dict(i.feats), dict(i.units), i.scope) for i in insts]
            reason = next(filter(None, map(self.slot_fits, slots_of(copies))), None)
            self.fitted[key] = (reason, insts, copies)  # the instances keep the key's ids unique
        reason, _, copies = self.fitted[key]
        for parent, copy in zip(parents or [], copies, strict=False):
            parent.absorb(copy)
        return reason

    def names_fit(self, elems: list[tuple[str, Inst]]) -> bool:
        if not elems:
            return True
        texts = []
        for name, inst in elems:
            if not name.startswith(inst.prefix):
                return False
            texts.append(name[len(inst.prefix) :])
        return fit_text(texts, [inst for _, inst in elems], self.unit_count) is not None

    def slot_fits(self, slot: Slot) -> str | None:
        elems = slot.elems
        if len({type(item) for item, _ in elems}) != 1:
            return "items differ between calls"
        first = elems[0][0]
        if isinstance(first, Conditional):
            for item, inst in elems:
                assert isinstance(item, Conditional)
                if not reads_shape(item.condition):
                    inst.set(("when", slot.path), item.value, [item.item] if item.item is not None else [])
            inner = [(item.item, inst) for item, inst in elems if item.item is not None]
            return self.slot_fits(Slot(slot.path, slot.kind, inner)) if inner else None
        extras = getattr(first, "extras", {})
        computed_id = isinstance(first, (Layer, BlockCall)) and self.computed_id(extras) is not None
        for key in ("id", "inputs"):
            if key == "id" and computed_id:
                continue  # written as an f-string of the loop variables and parameters
            if key == "inputs" and self.picks_iterations(extras.get(key)):
                continue
            if key in extras and _contains_expression(extras[key]):
                what = "an `id`" if key == "id" else "`inputs`"
                try:
                    _substitute(extras[key], {var.name: var.value for var in self.tree.vars})
                    detail = ""
                except ExpressionError as exc:
                    detail = f" ({exc.message})"
                return f"{what} depends on a value known only at run time{detail}"
        if computed_id and not self.names_fit([(inst.prefix + inst.scope, inst) for _, inst in elems]):
            return "the scopes around an `id` vary between calls or iterations"
        if isinstance(first, Layer):
            if not computed_id and not self.names_fit([(item.node.name, inst) for item, inst in elems]):
                return "layer numbers vary between calls or iterations"
            return self.float32_split([item.node.name for item, _ in elems]) or self.params_fit(
                [item for item, _ in elems]
            )
        if isinstance(first, BlockCall):
            if not computed_id and not self.names_fit([(item.prefix[:-1], inst) for item, inst in elems]):
                return "block numbers vary between calls or iterations"
            if self.block_mode(first.block) is None:
                return None
            return self.fits([inst.sub(item.body, scope=call_scope(item, inst)) for item, inst in elems])
        if isinstance(first, Repeat):
            reason = self.loop_fits(elems)
            for item, inst in elems:
                if not reads_shape(item.raw_times):
                    inst.set(("times", slot.path), item.times, item.iterations[0] if item.iterations else [])
            return reason
        if isinstance(first, Residual):
            scopes = [id_scope(inst, item.extras.get("id")) for item, inst in elems]
            lists = [[inst.sub(item.body, scope=sc) for (item, inst), sc in zip(elems, scopes, strict=True)]]
            if first.mode == "list":
                lists.append(
                    [
                        inst.sub(item.shortcut, scope=sc)
                        for (item, inst), sc in zip(elems, scopes, strict=True)
                    ]
                )
            else:
                made = [(item, inst) for item, inst in elems if len(item.shortcut) == 2]
                for index in (0, 1):
                    if not self.names_fit([(item.shortcut[index].node.name, inst) for item, inst in made]):
                        return "layer numbers vary between calls or iterations"
        elif isinstance(first, Parallel):
            count = max(len(item.branches) for item, _ in elems)
            lists = [
                [
                    inst.sub(item.branches[b], scope=id_scope(inst, item.extras.get("id")))
                    for item, inst in elems
                ]
                for b in range(count)
            ]
        elif isinstance(first, Backbone):
            return "a backbone is written once, at the model's level"
        else:
            return "an unknown item"
        for insts in lists:
            reason = self.fits(insts, [inst for _, inst in elems])
            if reason:
                return reason
        for role in ("merge", "activation"):
            named = [(getattr(item, role).node.name, inst) for item, inst in elems if getattr(item, role)]
            if not self.names_fit(named):
                return "layer numbers vary between calls or iterations"
            reason = self.float32_split([name for name, _ in named])
            if reason:
                return reason
        return None

    def float32_split(self, names: list[str]) -> str | None:
        """Why the layers ``names`` (one text's instances) cannot share one text: some are
        model outputs written in float32 (:meth:`output_dtype`) and some are not."""
        outputs = [name for name in names if name in self.float32_outputs]
        if outputs and len(outputs) < len(names):
            return (
                f"`{outputs[0]}` is a model output, in float32 under runtime.mixed_precision, and the "
                "layer's other instances are not"
            )
        return None

    def output_dtype(self, ctx: Ctx, names: list[str]) -> list[tuple[str, ast.expr]]:
        """``dtype="float32"`` for a layer that makes model outputs (``names``: the IR names of
        every instance of its text) under ``runtime.mixed_precision``: the builder gives the
        output layers float32 under a mixed policy (a stable softmax and loss), so the code
        does too; nothing for any other layer."""
        outputs = [name for name in names if name in self.float32_outputs]
        if not outputs:
            return []
        if len(outputs) < len(names):  # (float32_split made the printer inline or unroll it)
            raise self.need(ctx, f"the float32 output {outputs[0]!r} beside layers that are not outputs")
        self.float32_written.update(outputs)
        return [("dtype", ast.Constant("float32"))]

    def picks_iterations(self, refs: Any) -> bool:
        """Whether every ``${…}`` of an ``inputs`` is the index of a repeat's
        iteration (``enc[${levels - 1 - i}].skip``), which the code reads from a list."""
        if isinstance(refs, dict):
            refs = list(refs.values())
        refs = refs if isinstance(refs, list) else [refs]
        dynamic = [r for r in refs if _contains_expression(r)]
        for ref in dynamic:
            found = ITERATION_REF.fullmatch(ref) if isinstance(ref, str) else None
            if found is None or found[1] not in self.collected or "${" in found[1] + found[3]:
                return False
            if (found[1], found[3]) in self.partial:
                return False  # no list holds it: the item is unrolled where the index is known
        return bool(dynamic)

    def params_fit(self, leaves: list[Layer]) -> str | None:
        kind = REGISTRY[leaves[0].node.kind]
        raw = leaves[0].raw or {}
        for pname, value in raw.items():
            param = kind.param_index.get(pname)
            if param is None or not _contains_expression(value):
                continue
            full = {**kind.defaults(), **leaves[0].node.params}
            if _sample(param, 0) is not None and param.keras_name and _direct(kind, full, param):
                continue
            values = [leaf.node.params.get(pname) for leaf in leaves]
            if any(v != values[0] for v in values):
                return f"a `{kind.name}` parameter whose type needs a literal value"
        return None

    def loop_fits(self, elems: list[tuple[Repeat, Inst]]) -> str | None:
        looped = self.fits(self.iterations(elems, None)) or self.named_inside(elems)
        if looped is None:
            return None
        times = {rep.times for rep, _ in elems}
        if len(times) != 1:
            return looped
        for k in range(times.pop()):
            reason = self.fits(
                [inst.sub(rep.iterations[k], scope=iteration_scope(rep, inst, k)) for rep, inst in elems]
            )
            if reason:
                return reason
        return None

    def named_inside(self, elems: list[tuple[Repeat, Inst]]) -> str | None:
        """Why a repeat is unrolled whatever else fits: a reference names one of its
        iterations through a call or another iteration (``st.inner[0].c``)."""
        for rep, _ in elems:
            if id(rep) in self.unroll:
                return f"a later item refers to an id inside one of its iterations ({self.unroll[id(rep)]})"
            partial = [
                rest
                for rest in self.collected.get(rep.item_id or "", [])
                if (rep.item_id, rest) in self.partial
            ]
            if partial:
                return (
                    f"a later item refers to an id that only some of its iterations make "
                    f"({rep.item_id}[…].{partial[0]})"
                )
        return None

    def iterations(self, elems: list[tuple[Repeat, Inst]], var_key: Any) -> list[Inst]:
        out = []
        for rep, inst in elems:
            key = var_key if var_key is not None else ("loop", rep.path)
            for k, iteration in enumerate(rep.iterations):
                out.append(inst.sub(iteration, key, k, iteration, iteration_scope(rep, inst, k)))
        return out

    def block_mode(self, name: str) -> str | None:
        """Why block ``name`` is inlined (``None``: it is a function), from all its calls."""
        if name not in self.modes:
            self.modes[name] = None
            calls = self.calls.get(name, [])
            reason = self.fits([Inst(call.body, call.prefix) for call in calls])
            inner = reaches_inside(self.refs, calls, self.tree.blocks[name].outputs)
            if reason is None and inner is not None:
                reason = f"a later item refers to an id inside a call ({inner})"
            depth = max((loop_nesting(call.body) for call in calls), default=0)
            if reason is None and depth > MAX_LOOP_NESTING:
                reason = f"its repeats nest {depth} deep, more loops than one function should nest"
            self.modes[name] = reason
            if reason:
                self.notes.append(f"inlined block `{name}`: {reason}")
        return self.modes[name]

    # -- layer lists -----------------------------------------------------------------------
    def print_list(self, insts: list[Inst], ctx: Ctx, start: TensorRef | None = None) -> TensorRef:
        current = start if start is not None else ctx.scope.entry
        slots = slots_of(insts)
        run_end = -1
        comment: Stmt | None = None
        last_comment = ""
        for index, slot in enumerate(slots):
            if index > run_end:
                run_end, comment = self.comment_slots(slots, index)
            before = len(ctx.out)
            current = self.print_slot(slot, ctx, current)
            if comment is not None and any(stmt.kind != PRUNED for stmt in ctx.out[before:]):
                if comment.text != last_comment:
                    ctx.out.insert(before, comment)
                last_comment = comment.text
                comment = None
        return current

    def comment_slots(self, slots: list[Slot], index: int) -> tuple[int, Stmt | None]:
        end = index
        if plain(slots[index]):
            while end + 1 < len(slots) and plain(slots[end + 1]):
                end += 1
        first = self.doc.loc(slots[index].path)
        last = self.doc.loc(slots[end].path)
        labels = {slot.kind for slot in slots[index : end + 1]}
        what = labels.pop() if len(labels) == 1 else "layers"
        if first is None:
            return end, None
        where = _where(first)
        if last is not None and last.line != first.line and last.file == first.file:
            where += f"-{last.line}"
        return end, Stmt("comment", text=comment_text(f"{where} {what}"))

    def print_slot(self, slot: Slot, ctx: Ctx, current: TensorRef) -> TensorRef:
        if self.any_pruned and not any(alive(item) for item, _ in slot.elems):
            # Left out of the model in every call and iteration (it leads to no output): its
            # statements are set aside, and dropped unless a later statement reads one of
            # their variables (:func:`drop_pruned`). Printing them still records what later
            # items may name (its ids) and what numbers the layers after it.
            aside: list[Stmt] = []
            current = self.print_live_slot(slot, replace(ctx, out=aside), current)
            ctx.out.append(Stmt(PRUNED, body=aside))
            return current
        return self.print_live_slot(slot, ctx, current)

    def print_live_slot(self, slot: Slot, ctx: Ctx, current: TensorRef) -> TensorRef:
        first = slot.elems[0][0]
        if not isinstance(first, Conditional):
            return self.print_item(slot, ctx, current)
        try:
            condition = self.value(first.condition, ctx, current)
        except Unknown:
            condition = UNKNOWN
        inner = [(c.item, inst) for c, inst in slot.elems if c.value and c.item is not None]
        if condition is not UNKNOWN:
            if not condition or not inner:
                return current
            return self.print_item(Slot(slot.path, slot.kind, inner), ctx, current)
        test = self.translate(first.condition, ctx, current)
        key = ("when", slot.path)
        if not _reads_tensor(test):  # a shape test means something else further on
            self.features[key] = test
            for c, inst in slot.elems:
                inst.set(key, c.value, [c.item] if c.item is not None else [])
        if not inner:
            return current  # false in every call: nothing to write
        current = self.to_chain(ctx, current)
        inner_out: list[Stmt] = []
        inner_ctx = replace(ctx, out=inner_out)
        self.to_chain(inner_ctx, self.print_item(Slot(slot.path, slot.kind, inner), inner_ctx, current))
        ctx.out.append(Stmt("if", value=test, body=inner_out))
        return TensorRef(ctx.chain)

    def computed_id(self, extras: dict[str, Any]) -> str | None:
        """The ``id`` text of a layer or block call when it embeds ``${…}`` (``block${s + 1}``):
        such an item is named by an f-string of the same expressions, in a function or loop."""
        raw = extras.get("id")
        if isinstance(raw, str) and _contains_expression(raw) and "inputs" not in extras:
            return raw
        return None

    def computed_name(self, raw: str, ctx: Ctx, current: TensorRef, insts: list[Inst]) -> NameRef | None:
        """The name of an item whose ``id`` is computed: the function's prefix and the scopes
        around the item (``rep_``, ``enc_{i}_``), then the id's text and translated expressions
        (``None`` when the value is known here: a plain name)."""
        try:
            self.value(raw, ctx, current)
            return None
        except Unknown:
            pass
        node = self.translate(raw, ctx, current)
        parts: list[PrefixPart] = list(self.name_ref(ctx, [(i.prefix + i.scope, i) for i in insts]).parts)
        for value in node.values if isinstance(node, ast.JoinedStr) else [ast.FormattedValue(node, -1, None)]:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif (
                isinstance(value, ast.FormattedValue) and value.format_spec is None and value.conversion == -1
            ):
                parts.append(value.value)
            else:
                raise self.need(ctx, "an `id` that cannot be written as an f-string")
        return NameRef(tuple(parts))

    def print_item(self, slot: Slot, ctx: Ctx, current: TensorRef) -> TensorRef:
        first = slot.elems[0][0]
        extras = getattr(first, "extras", {})
        item_id = None
        computed = None
        raw_id = self.computed_id(extras) if isinstance(first, (Layer, BlockCall)) else None
        if raw_id is not None:
            computed = self.computed_name(raw_id, ctx, current, [inst for _, inst in slot.elems])
        if "id" in extras and computed is None:
            item_id = self.known(extras["id"], ctx, current, "an `id`")
        inputs = [current]
        if "inputs" in extras:
            refs = extras["inputs"]
            if isinstance(refs, dict) and isinstance(first, BlockCall):  # bound by name
                refs = [refs[name] for name in self.tree.blocks[first.block].inputs or (INPUT,)]
            inputs = self.input_refs(refs, ctx, current)
        head = inputs[0] if inputs else current
        cut = self.cuts.get(id(first))
        # An item that holds a backbone's cut ends at the cut: its output, which its id names,
        # is never made (the id only scopes the names inside it).
        if cut is not None and cut.kind in ("body", "shortcut", "projection", "branch"):
            return self.print_cut_path(slot, ctx, head, item_id, cut)
        if isinstance(first, (Repeat, Residual, Parallel)):
            if isinstance(first, Repeat):
                result = self.print_repeat(slot, ctx, head, item_id)
            elif isinstance(first, Residual):
                result = self.print_residual(slot, ctx, head, item_id)
            else:
                result = self.print_parallel(slot, ctx, head, item_id)
            if item_id is not None and cut is None:
                var = ctx.fn.allocate(item_id, "layer")
                ctx.out.append(Stmt("assign", target=var, value=ast.Name(result.var, ast.Load())))
                result = TensorRef(var, result.ir, result.shape)
        elif isinstance(first, Layer):
            result = self.print_layer(slot, ctx, inputs, item_id, computed)
        elif isinstance(first, BlockCall):
            local = item_id
            if "id" not in extras:  # reachable by its automatic name (`stage3.inner_1.out`)
                automatic = {call_local(call) for call, _ in slot.elems}
                local = automatic.pop() if len(automatic) == 1 else None
            result = self.print_call(slot, ctx, inputs, item_id, computed, local)
        elif isinstance(first, Backbone):
            result = self.print_backbone(slot, ctx, head, item_id)
        else:
            raise self.need(ctx, "an unknown item")
        if item_id is not None and cut is None:
            ctx.scope.ids[item_id] = result
            if ctx.fn.is_model and len(slot.elems) == 1:  # an id the model's `outputs` may name
                made = first.node.name if isinstance(first, Layer) else first.output
                self.produced[made] = result
        return result

    def input_refs(self, refs: Any, ctx: Ctx, current: TensorRef) -> list[TensorRef]:
        """The tensors of an item's ``inputs``: each entry of a list looked up on its own, or
        one reference, which may be one ``${…}`` that gives a list of them (``inputs:
        "${srcs}"`` with ``srcs: [a, b]``: the resolver reads each element as a reference)."""
        if not isinstance(refs, list) and is_expression(refs):
            try:
                value = self.value(refs, ctx, current)
            except Unknown:
                value = None  # (one iteration's element of a list: :meth:`find_ref`)
            if isinstance(value, list):
                return [self.input_ref(ref, ctx, current) for ref in value]
        return [self.input_ref(ref, ctx, current) for ref in (refs if isinstance(refs, list) else [refs])]

    def input_ref(self, raw: Any, ctx: Ctx, current: TensorRef) -> TensorRef:
        """The tensor an ``inputs`` entry names. One iteration of a repeat with an ``id``
        (``enc[2].skip``, ``enc[${levels - 1 - i}].skip`` in a loop) is an element of the list
        that repeat collects its ids in."""
        tensor = self.find_ref(raw, ctx, current)
        if tensor is None:
            raise self.need(ctx, f"unknown input {raw!r}")
        return tensor

    def find_ref(self, raw: Any, ctx: Ctx, current: TensorRef) -> TensorRef | None:
        """:meth:`input_ref`, or ``None`` where the code has no such tensor."""
        try:
            ref = self.value(raw, ctx, current)
        except Unknown:
            ref = None
        if ref is None:  # the index reads a loop variable
            found = ITERATION_REF.fullmatch(raw) if isinstance(raw, str) else None
            if found is None or (found[1], found[3]) not in self.lists:
                return None
            index = self.translate(found[2], ctx, current)
            return TensorRef(f"{self.lists[found[1], found[3]]}[{ast.unparse(index)}]")
        tensor = ctx.scope.lookup(ref) if isinstance(ref, str) else None
        if ref == self.input_name and tensor is None:
            tensor = ctx.scope.entry
        found = ITERATION_REF.fullmatch(ref) if tensor is None and isinstance(ref, str) else None
        if found is not None and (found[1], found[3]) in self.lists:
            return TensorRef(f"{self.lists[found[1], found[3]]}[{int(found[2])}]")
        return tensor

    # -- plain layers ----------------------------------------------------------------------
    def print_layer(
        self,
        slot: Slot,
        ctx: Ctx,
        inputs: list[TensorRef],
        item_id: str | None,
        computed: NameRef | None = None,
    ) -> TensorRef:
        leaves: list[Layer] = [item for item, _ in slot.elems]
        kind = REGISTRY[leaves[0].node.kind]
        kwargs = self.tree_kwargs(kind, leaves[0].raw or {}, ctx, inputs[0], leaves)
        name = computed or self.name_ref(ctx, [(leaf.node.name, inst) for leaf, inst in slot.elems])
        dtype = self.output_dtype(ctx, [leaf.node.name for leaf in leaves])
        if kind.name in self.partials:  # a layer written in the spec: the defaults apply
            kwargs = self.partial_kwargs(kind, kwargs)
            return self.put(
                kind, [*kwargs, *dtype], inputs, ctx, item_id, name, func=self.partials[kind.name][0]
            )
        return self.put(kind, [*kwargs, *dtype], inputs, ctx, item_id, name)

    def tree_kwargs(
        self, kind: Any, raw: dict[str, Any], ctx: Ctx, current: TensorRef, leaves: list[Layer]
    ) -> Any:
        """:meth:`layer_kwargs`, with a parameter that Keras does not take straight (a
        ``reshape`` target computed from a block parameter) written as the value every
        instance shares (:meth:`params_fit` made sure there is one)."""
        fixed: dict[str, Any] = {}
        for pname, value in raw.items():
            param = kind.param_index.get(pname)
            if param is None or not _contains_expression(value):
                continue
            try:
                self.value(value, ctx, current)
                continue
            except Unknown:
                pass
            full = {**kind.defaults(), **leaves[0].node.params}
            if _sample(param, 0) is not None and param.keras_name and _direct(kind, full, param):
                continue
            fixed[pname] = leaves[0].node.params.get(pname)
        return self.layer_kwargs(kind, {**raw, **fixed}, ctx, current)

    def put(
        self,
        kind: Any,
        kwargs: list[tuple[str, ast.expr]],
        inputs: list[TensorRef],
        ctx: Ctx,
        item_id: str | None,
        name: NameRef,
        target: str | None = None,
        func: str = "",
    ) -> TensorRef:
        var = target or self.target(ctx, item_id)
        ctx.out.append(
            Stmt(
                "layer",
                target=var,
                cls=kind.keras_class,
                func=func,
                kwargs=kwargs,
                name=name,
                inputs=[t.var for t in inputs],
                many=kind.arity == "many",
            )
        )
        ir_name = name.static_text() if ctx.fn.is_model else None
        node = self.ir_nodes.get(ir_name) if ir_name is not None else None
        return TensorRef(var, ir_name if node is not None else None, node.shape if node is not None else None)

    def made(self, ctx: Ctx, elems: list[tuple[Any, Inst]], role: str) -> NameRef | None:
        named = [(getattr(item, role).node.name, inst) for item, inst in elems if getattr(item, role)]
        return self.name_ref(ctx, named) if named else None

    def print_merge(self, ctx: Ctx, elems: list[tuple[Any, Inst]], tensors: list[TensorRef]) -> TensorRef:
        """The merge layer of a residual or parallel, as the resolver made it."""
        node = next(item.merge.node for item, _ in elems if item.merge is not None)
        name = self.made(ctx, elems, "merge")
        assert name is not None
        dtype = self.output_dtype(ctx, [item.merge.node.name for item, _ in elems if item.merge is not None])
        kwargs = [*node_kwargs(node), *dtype]
        return self.put(REGISTRY[node.kind], kwargs, tensors, ctx, None, name, target=ctx.chain)

    def print_activation(
        self, ctx: Ctx, elems: list[tuple[Any, Inst]], fields: dict[str, Any], current: TensorRef
    ) -> TensorRef:
        if fields.get("activation") is None:
            return current
        kind = REGISTRY["activation"]
        kwargs = self.layer_kwargs(kind, {"activation": fields["activation"]}, ctx, current)
        name = self.made(ctx, elems, "activation")
        assert name is not None
        names = [item.activation.node.name for item, _ in elems if item.activation is not None]
        kwargs = [*kwargs, *self.output_dtype(ctx, names)]
        return self.put(kind, kwargs, [current], ctx, None, name, target=ctx.chain)

    # -- combinators -----------------------------------------------------------------------
    def print_residual(self, slot: Slot, ctx: Ctx, entry: TensorRef, item_id: str | None) -> TensorRef:
        elems: list[tuple[Residual, Inst]] = slot.elems
        body = elems[0][0].raw
        shortcut_field = body.get("shortcut", "auto")
        mode: Any = None
        if not isinstance(shortcut_field, list):
            try:
                mode = self.value(shortcut_field, ctx, entry)
            except Unknown:
                mode = UNKNOWN
        body_insts = [inst.sub(r.body, scope=id_scope(inst, item_id)) for r, inst in elems]
        saved = ctx.fn.taken.copy()
        alias = None
        start = entry
        if mode != "none":
            alias = ctx.fn.allocate("shortcut")
            ctx.out.append(Stmt("assign", target=alias, value=ast.Name(entry.var, ast.Load())))
            entry = TensorRef(alias, entry.ir, entry.shape)
        inner = replace(ctx, scope=ctx.scope.child())
        body_out = self.print_list(body_insts, inner, start)
        absorb(elems, body_insts)
        if mode == "none":
            result = self.print_activation(inner, elems, body, body_out)
            ctx.fn.taken = saved | {result.var}
            return result
        assert alias is not None
        if mode is UNKNOWN:
            merged = self.print_optional_merge(elems, shortcut_field, entry, body_out, inner)
        else:
            if isinstance(shortcut_field, list):
                sc_insts = [inst.sub(r.shortcut, scope=id_scope(inst, item_id)) for r, inst in elems]
                sc_ctx = replace(inner, scope=inner.scope.child(), chain=alias)
                shortcut = self.print_list(sc_insts, sc_ctx, entry)
                absorb(elems, sc_insts)
            elif mode == "identity" or (mode == "auto" and any(_keeps_entry(r) for r, _ in elems)):
                shortcut = entry
            elif mode in ("auto", "projection"):
                shortcut = self.print_projection(elems, mode, entry, body_out, inner)
            else:
                raise self.need(ctx, f"shortcut {mode!r}")
            merged = self.print_merge(inner, elems, [shortcut, body_out])
        result = self.print_activation(inner, elems, body, merged)
        ctx.fn.taken = saved | {result.var}
        return result

    def protect_alias(self, ctx: Ctx, entry: TensorRef, wanted: str) -> TensorRef:
        alias = ctx.fn.allocate(wanted)
        ctx.out.append(Stmt("assign", target=alias, value=ast.Name(entry.var, ast.Load())))
        return TensorRef(alias, entry.ir, entry.shape)

    def print_optional_merge(
        self,
        elems: list[tuple[Residual, Inst]],
        shortcut_field: Any,
        entry: TensorRef,
        body_out: TensorRef,
        ctx: Ctx,
    ) -> TensorRef:
        node = self.translate(shortcut_field, ctx, entry)
        if not _results(node) <= {"identity", "none"}:
            raise self.need(ctx, "a `shortcut` chosen at run time among projections")
        if (
            isinstance(node, ast.IfExp)
            and isinstance(node.body, ast.Constant)
            and isinstance(node.orelse, ast.Constant)
            and node.body.value != node.orelse.value
        ):
            test = node.test if node.body.value == "identity" else ast.UnaryOp(ast.Not(), node.test)
        else:
            test = ast.Compare(node, [ast.NotEq()], [ast.Constant("none")])
        current = self.to_chain(ctx, body_out)
        merged = [(r, inst) for r, inst in elems if r.merge is not None]
        key = ("shortcut", elems[0][0].path)
        if not _reads_tensor(test):
            self.features[key] = test
            for r, inst in elems:
                inst.set(key, r.merge is not None, [r.merge] if r.merge is not None else [])
        if not merged:
            return TensorRef(ctx.chain)
        statements: list[Stmt] = []
        self.print_merge(replace(ctx, out=statements), merged, [entry, current])
        ctx.out.append(Stmt("if", value=test, body=statements))
        return TensorRef(ctx.chain)

    def print_projection(
        self, elems: list[tuple[Residual, Inst]], mode: str, entry: TensorRef, body_out: TensorRef, ctx: Ctx
    ) -> TensorRef:
        conv, norm = REGISTRY["conv2d"], REGISTRY["batch_norm"]
        made = [(r, inst) for r, inst in elems if len(r.shortcut) == 2]
        if made:
            conv_name = self.name_ref(ctx, [(r.shortcut[0].node.name, inst) for r, inst in made])
            norm_name = self.name_ref(ctx, [(r.shortcut[1].node.name, inst) for r, inst in made])
        else:
            conv_name = self.beside(ctx, elems, "shortcut_conv2d_1")
            norm_name = self.beside(ctx, elems, "shortcut_batch_norm_1")
        if entry.shape is not None and body_out.shape is not None:  # one call, shapes known
            if not made:
                return entry
            conv_node, norm_node = (leaf.node for leaf in made[0][0].shortcut)
            projected = self.put(
                conv, node_kwargs(conv_node), [entry], ctx, None, conv_name, target=entry.var
            )
            return self.put(norm, node_kwargs(norm_node), [projected], ctx, None, norm_name, target=entry.var)
        biases = {r.projection_bias for r, _ in elems}
        if len(biases) != 1:
            raise self.need(ctx, "a `projection_bias` that differs between calls")
        self.uses_projection = True
        sample = {**conv.defaults(), "filters": 1, "kernel_size": 1, "strides": 1, "use_bias": biases.pop()}
        kwargs = []
        for key, node in literal_kwargs(conv, sample):
            if key == "filters":
                node = ast.Subscript(
                    ast.Attribute(ast.Name(body_out.var, ast.Load()), "shape", ast.Load()),
                    ast.Constant(-1),
                    ast.Load(),
                )
            kwargs.append((key, node))
        kwargs.insert(
            2,
            (
                "strides",
                ast.Call(
                    ast.Name(PROJECTION, ast.Load()),
                    [ast.Name(entry.var, ast.Load()), ast.Name(body_out.var, ast.Load())],
                    [],
                ),
            ),
        )
        statements: list[Stmt] = []
        target_ctx = replace(ctx, out=statements)
        projected = self.put(conv, kwargs, [entry], target_ctx, None, conv_name, target=entry.var)
        self.put(
            norm,
            literal_kwargs(norm, norm.defaults()),
            [projected],
            target_ctx,
            None,
            norm_name,
            target=entry.var,
        )
        if mode == "auto":  # (the function projects as the resolver would, whoever calls it)
            ctx.out.append(Stmt("if", value=self.projection_test(elems, entry, body_out), body=statements))
        else:
            ctx.out.extend(statements)
        return TensorRef(entry.var)

    def projection_test(
        self, elems: list[tuple[Residual, Inst]], entry: TensorRef, body_out: TensorRef
    ) -> ast.expr:
        """Whether a call of a block with an ``auto`` shortcut projects it: ``entry.shape !=
        out.shape`` where every call that keeps the entry has matching shapes; where one keeps
        it for a gate (shapes that differ, broadcast by the merge: squeeze-and-excitation),
        the ``needs_projection`` helper, which reads the gate as the resolver does."""
        shape = ast.Attribute(ast.Name(entry.var, ast.Load()), "shape", ast.Load())
        other = ast.Attribute(ast.Name(body_out.var, ast.Load()), "shape", ast.Load())
        gates = any(
            r.merge is not None and len(set(r.merge.node.input_shapes)) > 1
            for r, _ in elems
            if len(r.shortcut) != 2
        )
        if not gates:
            return ast.Compare(shape, [ast.NotEq()], [other])
        self.uses_gate_test = True
        return ast.Call(
            ast.Name(NEEDS_PROJECTION, ast.Load()),
            [ast.Name(entry.var, ast.Load()), ast.Name(body_out.var, ast.Load())],
            [],
        )

    def beside(self, ctx: Ctx, elems: list[tuple[Residual, Inst]], local: str) -> NameRef:
        """The name of a layer the resolver would make in the merge layer's scope (for a
        projection no call made, written under its ``if``)."""
        named = []
        for r, inst in elems:
            if r.merge is None:
                continue
            text = r.merge.node.name
            number = text.rsplit("_", 1)[-1]
            scope = text[: len(text) - len(f"{r.merge.node.kind}_{number}")]
            named.append((scope + local, inst))
        return self.name_ref(ctx, named)

    def print_parallel(self, slot: Slot, ctx: Ctx, entry: TensorRef, item_id: str | None) -> TensorRef:
        elems: list[tuple[Parallel, Inst]] = slot.elems
        body = elems[0][0].raw
        saved = ctx.fn.taken.copy()
        inner = replace(ctx, scope=ctx.scope.child())
        outs = []
        for index in range(len(elems[0][0].branches)):
            var = ctx.fn.allocate(f"branch_{index + 1}")
            branch_ctx = replace(inner, scope=inner.scope.child(), chain=var)
            insts = [inst.sub(p.branches[index], scope=id_scope(inst, item_id)) for p, inst in elems]
            outs.append(self.print_list(insts, branch_ctx, entry))
            absorb(elems, insts)
        merged = self.print_merge(inner, elems, outs)
        result = self.print_activation(inner, elems, body, merged)
        ctx.fn.taken = saved | {result.var}
        return result

    def print_repeat(self, slot: Slot, ctx: Ctx, entry: TensorRef, item_id: str | None) -> TensorRef:
        elems: list[tuple[Repeat, Inst]] = slot.elems
        rep0 = elems[0][0]
        cut = self.cuts.get(id(rep0))
        if cut is not None:
            return self.print_cut_repeat(slot, ctx, entry, cut)
        var_name = rep0.var
        try:
            times = self.value(rep0.raw_times, ctx, entry)
        except Unknown:
            times = UNKNOWN
        reason = None
        if times not in (0, 1):
            reason = self.fits(self.iterations(elems, None)) or self.named_inside(elems)
            if reason is None and self.loop_depth >= MAX_LOOP_NESTING:
                reason = f"it is inside {self.loop_depth} loops, as deep as one function nests them"
            note = f"unrolled the repeat at {format_path(rep0.path)}: {reason}"
            if reason and note not in self.notes:
                self.notes.append(note)
        carried = self.start_carry(rep0, ctx)
        collect = self.start_lists(rep0, ctx)
        if times in (0, 1) or reason:
            counts = {rep.times for rep, _ in elems}
            if len(counts) != 1:
                raise self.need(ctx, "a repeat count known only at run time")
            count = counts.pop()
            current = entry
            for index in range(count):
                names = dict(ctx.names)
                if var_name:
                    names[var_name] = Binding(ast.Constant(index), index)
                start = len(ctx.out)
                if count > 1:
                    label = f"repeat {index + 1} of {count}" + (
                        f" ({var_name} = {index})" if var_name else ""
                    )
                    ctx.out.append(Stmt("comment", text=comment_text(label)))
                insts = [
                    inst.sub(rep.iterations[index], scope=iteration_scope(rep, inst, index))
                    for rep, inst in elems
                ]
                iteration = replace(ctx, names=names, scope=ctx.scope.child())
                iteration.scope.ids.update(carried)
                current = self.print_list(insts, iteration, current)
                made = ctx.out[start + 1 :]
                if count > 1 and made and all(stmt.kind == PRUNED for stmt in made):
                    ctx.out[start:] = [Stmt(PRUNED, body=ctx.out[start:])]  # its label goes with them
                if rep0.item_id:
                    for name, ref in iteration.scope.ids.items():
                        if name not in carried:
                            ctx.scope.ids[f"{rep0.item_id}[{index}].{name}"] = ref
                self.append_lists(collect, iteration)
                carried = {**carried, **{n: self.carried_ref(iteration, r) for n, r in rep0.next.items()}}
            self.end_carry(rep0, ctx, carried, len(elems) == 1)
            return current
        current = self.to_chain(ctx, entry)
        loop_var = ctx.fn.allocate(var_name or "i", "i")
        frame = LoopFrame(loop_var)
        key = ("loop", rep0.path)
        self.features[key] = ast.Name(loop_var, ast.Load())
        self.frames[key] = frame
        times_node = self.translate(rep0.raw_times, ctx, entry)
        statements: list[Stmt] = []
        names = dict(ctx.names)
        if var_name:
            names[var_name] = Binding(ast.Name(loop_var, ast.Load()), UNKNOWN, frame)
        insts = self.iterations(elems, key)
        iteration = replace(ctx, names=names, scope=ctx.scope.child(), out=statements)
        iteration.scope.ids.update(carried)
        self.loop_depth += 1
        try:
            result = self.print_list(insts, iteration, TensorRef(ctx.chain))
        finally:
            self.loop_depth -= 1
        if result.var != ctx.chain:
            statements.append(Stmt("assign", target=ctx.chain, value=ast.Name(result.var, ast.Load())))
        self.append_lists(collect, iteration)
        if rep0.next:  # the advance rule, as one tuple assignment: p, x = x, new
            targets = [carried[name].var for name in rep0.next]
            values = [_tensor(self.carried_ref(iteration, ref)) for ref in rep0.next.values()]
            statements.append(Stmt("assign", target=", ".join(targets), value=_tuple(values)))
        if times is UNKNOWN and not _reads_tensor(times_node):  # numbers after the loop count it
            self.features[("times", rep0.path)] = times_node
            for rep, inst in elems:
                inst.set(("times", rep0.path), rep.times, rep.iterations[0] if rep.iterations else [])
        if not frame.used:
            frame.var = "_"
        ctx.out.append(Stmt("for", value=times_node, body=statements, frame=frame))
        self.end_carry(rep0, ctx, carried, len(elems) == 1)
        return TensorRef(ctx.chain)

    def start_lists(self, rep: Repeat, ctx: Ctx) -> dict[str, str]:
        """A list per id of an iteration that a later item names (``enc[2].level.skip``),
        started empty before the loop: ``enc_level_skip = []``."""
        if rep.item_id not in self.collected:
            return {}
        lists = {}
        for rest in self.collected[rep.item_id]:
            if (rep.item_id, rest) in self.partial:
                continue  # the repeat is unrolled: each iteration's id is a variable of its own
            var = ctx.fn.allocate(f"{rep.item_id}_{rest}".replace(".", "_"), "collected")
            ctx.out.append(Stmt("assign", target=var, value=ast.List([], ast.Load())))
            lists[rest] = var
            self.lists[rep.item_id, rest] = var
        return lists

    def append_lists(self, lists: dict[str, str], iteration: Ctx) -> None:
        for rest, var in lists.items():
            ref = iteration.scope.lookup(rest)
            if ref is None:
                raise self.need(iteration, f"the id {rest!r} of an iteration")
            call = ast.Call(
                ast.Attribute(ast.Name(var, ast.Load()), "append", ast.Load()),
                [ast.Name(ref.var, ast.Load())],
                [],
            )
            iteration.out.append(Stmt("expr", value=call))

    def start_carry(self, rep: Repeat, ctx: Ctx) -> dict[str, TensorRef]:
        """The variables a carrying repeat keeps its names in, set before it: p, x = stem, c0."""
        if not rep.carry:
            return {}
        refs = [self.carried_ref(ctx, ref) for ref in rep.carry.values()]
        variables = [ctx.fn.allocate(name, "carried") for name in rep.carry]
        ctx.out.append(
            Stmt(
                "assign",
                target=", ".join(variables),
                value=_tuple([_tensor(r) for r in refs]),
            )
        )
        return {name: TensorRef(var) for name, var in zip(rep.carry, variables, strict=True)}

    def carried_ref(self, ctx: Ctx, ref: Any) -> TensorRef:
        """The tensor a ``carry`` or ``next`` value names, looked up as an ``inputs`` entry is
        (``enc[1].h``, ``enc[${n - 1}].h``: one iteration of an earlier carrying repeat)."""
        tensor = self.find_ref(ref, ctx, ctx.scope.entry)
        if tensor is None:
            raise self.need(ctx, f"the carried tensor {ref!r}")
        return tensor

    def end_carry(self, rep: Repeat, ctx: Ctx, carried: dict[str, TensorRef], single: bool) -> None:
        """After the loop the carried names hold the final values (and ``cells.x`` too)."""
        for name, ref in carried.items():
            if ctx.fn.is_model and single and name in rep.results:
                self.produced[rep.results[name]] = ref
            ctx.scope.ids[name] = ref
            if rep.item_id:
                ctx.scope.ids[f"{rep.item_id}.{name}"] = ref

    # -- blocks ----------------------------------------------------------------------------
    def print_call(
        self,
        slot: Slot,
        ctx: Ctx,
        inputs: list[TensorRef],
        item_id: str | None,
        computed: NameRef | None = None,
        local: str | None = None,
    ) -> TensorRef:
        """A block call: a call of the block's function, or its layers written in place. Its
        outputs and (written in place) its ids become reachable under ``local`` (``c0.x``)."""
        elems: list[tuple[BlockCall, Inst]] = slot.elems
        call0 = elems[0][0]
        name = call0.block
        entry = inputs[0]
        block_name = computed or self.name_ref(ctx, [(call.prefix[:-1], inst) for call, inst in elems])
        block = self.tree.blocks[name]
        declared = block.params
        raw = call0.raw_args
        if id(call0) in self.cuts:  # a backbone's cut inside it: written in place, up to the cut
            outputs = self.inline_call(elems, declared, raw, ctx, inputs, block_name, local, cut=True)
        elif self.block_mode(name) is not None:
            outputs = self.inline_call(elems, declared, raw, ctx, inputs, block_name, local)
        else:
            function = self.function_for(name)
            args = []
            for pname in declared:
                if pname in raw:
                    args.append((function.arg_name(pname), self.translate(raw[pname], ctx, entry)))
            own = item_id
            if own is None and local is not None and block.outputs:
                # Without an id the first output would live in the chain variable, which the
                # next call of any block or layer without an id overwrites: one that a later
                # item reads by the call's automatic name (`two_1.out`) gets a variable named
                # like it (two_1, two_1_side = two(…)), as a call with an id does.
                own = local if reads_first_output(self.refs, local, block.outputs[0]) else None
            first = self.target(ctx, own)
            variables = [first]
            for out in block.outputs[1:]:  # c0, c0_x = cell(…)
                variables.append(ctx.fn.allocate(f"{own or first}_{out}", "out"))
            ctx.out.append(
                Stmt(
                    "call",
                    target=", ".join(variables),
                    func=function.name,
                    inputs=[t.var for t in inputs],
                    kwargs=args,
                    name=block_name,
                    text=function.prefix_param or "name",
                )
            )
            outputs = [TensorRef(var) for var in variables]
            if ctx.fn.is_model and len(elems) == 1:  # what the model's `outputs` may name
                self.produced.update(zip(call0.outputs[1:], outputs[1:], strict=False))
        if local is not None:
            for index, (out, ref) in enumerate(zip(block.outputs, outputs, strict=False)):
                ctx.scope.ids[f"{local}.{out}"] = ref
                ctx.scope.ids[f"{local}[{index}]"] = ref
        return outputs[0]

    def inline_call(
        self,
        elems: list[tuple[BlockCall, Inst]],
        declared: dict[str, Any],
        raw: dict[str, Any],
        ctx: Ctx,
        inputs: list[TensorRef],
        block_name: NameRef,
        local: str | None = None,
        cut: bool = False,
    ) -> list[TensorRef]:
        """The block's layers written in place; the tensors it returns (its ids reachable
        as ``local.id``). ``cut``: the call holds a backbone's cut (its body is cut there,
        :class:`Cut`); it returns the cut tensor, the last it writes."""
        entry = inputs[0]
        name = elems[0][0].block
        block = self.tree.blocks[name]
        names = dict(self.var_bindings)
        # A cut call is the one call written here (never in a loop): where the code does not
        # know a value (a tensor's shape, in a function), it is this call's, as the resolver
        # bound it; a shape read from a variable the block overwrites would be wrong.
        bound = elems[0][0].args if cut else {}
        # A value that reads the shape of the block's input where the code does not know it is,
        # in the model's function, the one call's value as the resolver bound it; in a block's
        # function (which stands for any input) it is read into a variable of its own before
        # the block's layers, which may overwrite the variable that holds the input.
        single = elems[0][0].args if ctx.fn.is_model and len(elems) == 1 else {}
        shapes: list[Stmt] = []
        for pname in declared:
            if pname in raw:
                node = self.translate(raw[pname], ctx, entry)
                try:
                    known = self.value(raw[pname], ctx, entry)
                except Unknown:
                    known = bound.get(pname, UNKNOWN)
                    if known is UNKNOWN and _reads_tensor(node):
                        known = single.get(pname, UNKNOWN)
                        if known is UNKNOWN:
                            node = self.shape_value(ctx, pname, node, shapes)
                if known is not UNKNOWN and _reads_tensor(node):
                    node = literal_node(known)
                values = _argument_values([call for call, _ in elems], pname)
                names[pname] = Binding(node, known, values=values)
        for pname, param in declared.items():
            if pname not in raw:
                default = param.default
                if isinstance(default, (list, dict)) or is_expression(default):
                    probe = replace(ctx, names=names)
                    node = self.translate(default, probe, entry)
                    try:
                        known = self.value(default, probe, entry)
                    except Unknown:
                        known = bound.get(pname, UNKNOWN)
                    if _reads_tensor(node):
                        known = single.get(pname, UNKNOWN) if known is UNKNOWN else known
                        if known is UNKNOWN:
                            node = self.shape_value(ctx, pname, node, shapes)
                        else:
                            node = literal_node(known)
                    values = _argument_values([call for call, _ in elems], pname)
                    names[pname] = Binding(node, known, values=values)
                else:
                    names[pname] = Binding(literal_node(default), default)
        label = ", ".join(f"{p}={_short(raw[p])}" for p in declared if p in raw)
        ctx.out.append(Stmt("comment", text=comment_text(f"block {name}({label})")))
        if cut:  # (a line of its own: the arguments' line is shortened where long)
            text = f"its layers written here, up to the cut at {self.cut_label}"
            ctx.out.append(Stmt("comment", text=comment_text(text)))
        ctx.out.extend(shapes)
        insts = [inst.sub(call.body, scope=call_scope(call, inst)) for call, inst in elems]
        protected = entry
        if entry.var == ctx.chain and refers_to_input(insts, self.input_name):
            protected = self.protect_alias(ctx, entry, "block_input")
        scope = IdScope(protected, None)
        if block.inputs:  # the chain var is overwritten: the inputs must not live in it
            for input_name, ref in zip(block.inputs, inputs, strict=True):
                if ref.var == ctx.chain:
                    ref = self.protect_alias(ctx, ref, input_name)
                scope.ids[input_name] = ref
        block_ctx = replace(ctx, names=names, scope=scope)
        last = self.print_list(insts, block_ctx, entry)
        if local is not None:  # its ids, by hierarchical name (c0.h, stage3.block2.out)
            for inner, ref in block_ctx.scope.ids.items():
                if inner not in block.inputs:
                    ctx.scope.ids.setdefault(f"{local}.{inner}", ref)
        if cut:  # (its outputs come after the cut: they are never made)
            return [last]
        return self.block_results(block, block_ctx, last)

    def shape_value(self, ctx: Ctx, pname: str, node: ast.expr, shapes: list[Stmt]) -> ast.expr:
        """The variable (named after parameter ``pname``) that a block written in place reads a
        value ``node`` reading its input's shape from, assigned by a statement added to
        ``shapes`` (``channels = x.shape[-1]``), written before the block's layers."""
        var = ctx.fn.allocate(pname, "value")
        shapes.append(Stmt("assign", target=var, value=node))
        return ast.Name(var, ast.Load())

    def block_results(self, block: Any, ctx: Ctx, last: TensorRef) -> list[TensorRef]:
        if not block.outputs:
            return [last]
        results = []
        for ref in block.outputs:
            tensor = self.find_ref(ref, ctx, last) if ref else last  # "": a backbone's own output
            if tensor is None:
                raise self.need(ctx, f"the block output {ref!r}")
            results.append(tensor)
        return results

    def function_for(self, name: str) -> Function:
        if name in self.functions:
            return self.functions[name]
        saved, self.loop_depth = self.loop_depth, 0  # (a call inside a loop: a new function)
        try:
            function = self.build_block_function(name)
        finally:
            self.loop_depth = saved
        self.functions[name] = function
        self.order.append(name)
        return function

    # -- a backbone cut inside an item ------------------------------------------------------
    def print_cut_repeat(self, slot: Slot, ctx: Ctx, entry: TensorRef, cut: Cut) -> TensorRef:
        """A repeat that holds a backbone's cut: its whole iterations before the cut's as a
        repeat of that many (a loop, or unrolled), then the cut's iteration written out with
        the loop variable's value, up to the cut."""
        rep, inst = slot.elems[0]
        index = cut.index
        if index:
            label = f"iterations 1-{index} of {cut.times}" if index > 1 else f"iteration 1 of {cut.times}"
            ctx.out.append(Stmt("comment", text=comment_text(f"{label} (the cut is in the next one)")))
        # the whole iterations: a repeat of that many, a copy not in self.cuts (a literal
        # count: how many of the spec's count come before the cut is decided here)
        whole = replace(rep, iterations=rep.iterations[:index], times=index, raw_times=index)
        current = self.print_repeat(Slot(slot.path, slot.kind, [(whole, inst)]), ctx, entry, None)
        names = dict(ctx.names)
        if rep.var:
            names[rep.var] = Binding(ast.Constant(index), index)
        label = f"iteration {index + 1} of {cut.times}" + (f" ({rep.var} = {index})" if rep.var else "")
        ctx.out.append(Stmt("comment", text=comment_text(f"{label}, up to the cut at {self.cut_label}")))
        iteration = replace(ctx, names=names, scope=ctx.scope.child())
        # what the iterations before it left in the carried names (end_carry)
        iteration.scope.ids.update({name: ctx.scope.ids[name] for name in rep.carry if name in ctx.scope.ids})
        insts = [inst.sub(rep.iterations[index], scope=iteration_scope(rep, inst, index))]
        return self.print_list(insts, iteration, current)

    def print_cut_path(
        self, slot: Slot, ctx: Ctx, entry: TensorRef, item_id: str | None, cut: Cut
    ) -> TensorRef:
        """A residual or parallel that holds a backbone's cut: only the path from its entry to
        the cut (its body, its shortcut, or one branch, up to the cut). The other paths and
        the merge come after the cut: the cut tensor does not depend on them."""
        item, inst = slot.elems[0]
        what = {
            "body": "the residual's body",
            "shortcut": "the residual's shortcut",
            "projection": "the residual's projection shortcut",
            "branch": f"branch {cut.index + 1} of the parallel",
        }[cut.kind]
        ctx.out.append(Stmt("comment", text=comment_text(f"{what}, up to the cut at {self.cut_label}")))
        if cut.kind == "projection":  # the layers the resolver made, as it made them
            current = entry
            for leaf in item.shortcut:
                assert isinstance(leaf, Layer)
                name = self.name_ref(ctx, [(leaf.node.name, inst)])
                kind = REGISTRY[leaf.node.kind]
                current = self.put(kind, node_kwargs(leaf.node), [current], ctx, None, name)
            return current
        if cut.kind == "branch":
            path = item.branches[0]
        else:
            path = item.body if cut.kind == "body" else item.shortcut
        insts = [inst.sub(path, scope=id_scope(inst, item_id))]
        result = self.print_list(insts, replace(ctx, scope=ctx.scope.child()), entry)
        absorb(slot.elems, insts)
        return result

    def cut_inside(self, element: Backbone) -> tuple[list[Item], dict[int, Cut]]:
        """The backbone's items up to a cut inside one of them (``until:`` a layer in a block
        call or repeat, ``stem.bn``): those before it, left out where the cut tensor does not
        depend on them, then the one that holds it, cut (:func:`cut_item`); with how to write
        each item cut. A cut the code cannot write is refused, located at ``until``."""
        cuts: dict[int, Cut] = {}
        try:
            body = cut_list(element.body, element.output, frozenset(element.names), cuts)
            if body is None:
                raise CutRefused("none of its items makes that layer")
        except CutRefused as exc:
            reason = str(exc)
            hint = "cut at a layer outside that item, or build the model with `cnnspec build`"
            notes: list[Note] = []
            if exc.backbone is not None:
                reason = (
                    f"{exc} of {element.spec!r}, and codegen does not cut a backbone of a backbone's spec"
                )
                hint = self.nested_hint(exc.backbone)
                if top_level(exc.backbone, element.body):  # (written whole there; one in a block is not)
                    nested_id = exc.backbone.extras.get("id")
                    at = f"at {nested_id!r} (its output) or " if isinstance(nested_id, str) else ""
                    hint = f"cut {at}at a layer after that backbone item, or build the model with "
                    hint += "`cnnspec build`"
                notes.append(self.item_note(exc.backbone, element.doc))
            raise self.refusal(
                f"codegen cannot write the backbone cut at {element.until!r}: {reason}",
                (*element.path, "until"),
                hint,
                notes,
            ) from None
        return body, cuts

    def refusal(self, message: str, path: SpecPath, hint: str | None, notes: list[Note]) -> SpecError:
        """A ``codegen`` error at ``path`` of this printer's spec; a backbone's printer locates
        it at the model's own backbone item it is reached through (the spec being generated),
        with notes down to ``path``."""
        loc, where = self.doc.loc(path), format_path(path)
        if self.around:
            notes = [*notes, *(self.item_note(item, doc) for item, doc in reversed(self.around[1:]))]
            if not notes or notes[0].loc != loc:  # (the first note says where, or this does)
                notes.insert(0, Note(f"at {where} ({loc})" if loc else f"at {where}", loc, where))
            top, top_doc = self.around[0]
            loc, where = top_doc.loc(top.path), format_path(top.path)
        return SpecError([Diagnostic(message, loc, where, "codegen", hint, notes=tuple(notes))])

    @staticmethod
    def item_note(item: Backbone, doc: Any) -> Note:
        """``in backbone 'zoo:resnet50' at model[0] (inner.yaml:5:15)``: where ``doc`` writes
        ``item``, as the notes of the checks on the resolved model say it."""
        from cnnspec.analysis.calls import backbone_note

        return backbone_note(item, doc)

    @staticmethod
    def nested_hint(item: Backbone) -> str:
        """How to get a model whose backbone ``item`` is inside another backbone's spec."""
        return (
            "build the model with `cnnspec build`, or write the backbone "
            f"{item.spec!r} as an item of this spec's own model, with the layers after it"
        )

    # -- backbones ---------------------------------------------------------------------------
    def print_backbone(self, slot: Slot, ctx: Ctx, entry: TensorRef, item_id: str | None) -> TensorRef:
        """A backbone item: a call of the function that builds the backbone's layers
        (``x = resnet50(x, name="body")``); the ids inside it that the model names are
        returned too (``body, body_stem = fpn(x, name="body")`` for ``body.stem``). In a
        backbone's printer, a backbone item of its spec's model list: a call in the backbone's
        function (``body = resnet50(x, name=f"{name}_body")``)."""
        element: Backbone = slot.elems[0][0]
        # a backbone's printer writes one in its spec's own model list, in the backbone's
        # function (a function of this module too)
        if self.around and (len(slot.elems) != 1 or not top_level(element, self.tree.body)):
            outer = self.around[-1][0]
            raise self.refusal(
                f"codegen cannot write backbone {element.spec!r} inside backbone {outer.spec!r}: it is "
                f"in a block or loop of {outer.spec!r}, and codegen writes a backbone item only in a "
                "model's own list",
                element.path,
                self.nested_hint(element),
                [self.item_note(element, self.doc)],
            )
        if not self.around and (len(slot.elems) != 1 or not ctx.fn.is_model):
            raise SpecError.single(
                "codegen writes a backbone item only in the model's own list (not in a block or loop)",
                self.doc.loc(element.path),
                element.path,
                code="codegen",
            )
        local = element.prefix[:-1]
        # the item's id as its spec writes it (`body`, where `a_body` prefixes its layers inside
        # the model's backbone `a`): what the ids of its spec name (`body.stem`), and the ids
        # the model around this backbone's spec names through it (`a.body.stem`)
        own = element.prefix[len(self.ir_prefix) : -1]
        refs = [*model_refs(self.tree), *self.reach]
        named = [ref[len(own) + 1 :] for ref in refs if ref.startswith(f"{own}.")]
        reach = tuple(ref for ref in dict.fromkeys(named) if ref != element.until)
        function = self.backbone_function(element, reach)
        var = self.target(ctx, item_id)
        if element.until is not None:  # `body.p2` is the cut tensor itself
            ctx.scope.ids[f"{own}.{element.until}"] = TensorRef(var)
        variables = [var]
        for ref in reach:  # body, body_stem = fpn(x, name="body")
            variables.append(ctx.fn.allocate(re.sub(r"\W+", "_", f"{own}_{ref}").strip("_"), "out"))
            ctx.scope.ids[f"{own}.{ref}"] = TensorRef(variables[-1])
        name = self.name_ref(ctx, [(local, slot.elems[0][1])])
        ctx.out.append(
            Stmt(
                "call",
                target=", ".join(variables),
                func=function.name,
                inputs=[entry.var],
                kwargs=[],
                name=name,
                text=function.prefix_param or "name",
            )
        )
        return TensorRef(var)

    def backbone_function(self, element: Backbone, reach: tuple[str, ...] = ()) -> Function:
        """The backbone as one function of this module, printed by a printer of its own spec:
        its vars become constants named after the item (``BODY_STAGE_BLOCKS``), its blocks
        functions (renamed only where this module has the name), its items up to the cut
        the function's body, returning the cut tensor (then the tensors of ``reach``, its
        ids that the model names: ``body.stem``). A cut inside one of its items (``until:`` a
        layer in a block call or repeat) ends the body with that item cut (:meth:`cut_inside`):
        only the layers the cut tensor depends on, as ``cnnspec build`` keeps them."""
        from cnnspec.analysis.compiled import CompiledSpec
        from cnnspec.ir import ModelIR

        local = element.prefix[:-1]
        assert element.tree is not None
        # a copy: the cut, the outputs and the function written below must not change the
        # compiled spec's tree (a second generate_code of it named the function differently)
        tree = replace(element.tree, blocks=dict(element.tree.blocks))
        body = element.body
        # the cut's id, returned by the function; "" where the cut is a layer item without
        # one (`until: conv_bn_activation`), the last tensor of the body up to it
        until = element.until
        cuts: dict[int, Cut] = {}
        if element.until is not None:
            layer_name = f"{element.prefix}{element.until}"
            cut = next(
                (i for i, item in enumerate(body) if getattr(item, "extras", {}).get("id") == element.until),
                None,
            )
            if cut is None:
                cut = next((i for i, item in enumerate(body) if _is_layer(item, layer_name)), None)
                until = ""
            if cut is not None:
                body = body[: cut + 1]
            else:  # inside one of its items: up to the cut layer (the last tensor written)
                body, cuts = self.cut_inside(element)
        taken = set(self.module_names) | {c.name for c in self.constants} | set(self.functions)
        taken |= set(self._used_blocks())
        fname = _first_free([tree.name, f"{local}_{tree.name}", f"{local}_backbone"], taken)
        tree.body = body
        tree.outputs = (element.output,)
        nodes = [self.ir_nodes[name] for name in element.names if name in self.ir_nodes]
        ir = ModelIR(
            tree.name, tree.description, tree.input_name, tuple(tree.input_shape), nodes, tree.outputs
        )
        ir.tree = tree
        # (script: a training script loads an inner backbone's weights too, so no note says not)
        sub = TreePrinter(
            CompiledSpec(element.doc, ir),
            script=self.script,
            reach=reach,
            float32_outputs=self.float32_outputs,
        )
        if cuts:
            sub.cuts, sub.cut_label = cuts, str(element.until)
            # a call cut is written in place: its block's function is of its other calls only
            sub.calls = {
                block: [call for call in calls if id(call) not in cuts] for block, calls in sub.calls.items()
            }
        sub.module_names |= taken | {fname}
        sub.const_prefix = f"{local.upper()}_"
        sub.around = [*self.around, (element, self.doc)]
        sub.ir_prefix = element.prefix
        sub.function_names = {b: (f"{local}_{b}" if b in taken or b == fname else b) for b in tree.blocks}
        sub.build_constants()
        sub.build_partials()
        description = (
            f"The backbone {element.spec}" + (f" up to {element.until}" if element.until else "") + "."
        )
        outputs = (until,) if until else ()
        if reach:  # ("": the backbone's own output)
            outputs = (until or "", *reach)
            returned = ", ".join(f"`{ref}`" for ref in reach)
            description += f" Also returns {returned} (the model uses them)."
        tree.blocks[fname] = BlockDef(fname, {}, description, self.doc.loc(element.path), (), outputs)
        sub.calls[fname] = [BlockCall(fname, prefix=element.prefix, body=body, entry=element.entry)]
        function = sub.function_for(fname)
        self.constants.extend(sub.constants)
        for name in sub.order:
            made = sub.functions[name]
            self.functions[made.name] = made
            self.order.append(made.name)
        self.uses_projection = self.uses_projection or sub.uses_projection
        self.uses_gate_test = self.uses_gate_test or sub.uses_gate_test
        self.backbone_partials = self.backbone_partials or bool(sub.partials) or sub.backbone_partials
        self.notes.extend(sub.notes)
        self.float32_written |= sub.float32_written
        if element.weights is not None and not self.script:
            self.notes.append(
                f"backbone `{local}` starts from the weights {element.weights.text!r}; "
                "this code does not load them"
            )
        return function

    def default_names(
        self,
        declared: dict[str, Any],
        renamed: dict[str, str],
        own: str,
        names: dict[str, Binding],
    ) -> dict[str, Binding]:
        """What the computed default of the parameter written ``own`` in the function reads,
        as the resolver evaluates it: the vars, the arguments passed and the parameters
        filled before it. So the parameter itself is the var of that name
        (``if f is None: f = F + 1``), not the parameter, which is still ``None`` there. (The
        resolver refuses a default that reads a parameter declared after it.)"""
        out = dict(self.var_bindings)
        for pname in declared:
            if renamed.get(pname, pname) == own:
                break
            out[pname] = names[pname]
        return out

    def build_block_function(self, name: str) -> Function:
        block = self.tree.blocks[name]
        declared = block.params
        calls = self.calls.get(name, [])
        insts = [Inst(call.body, call.prefix) for call in calls]
        module_taken = set(self.module_names) | {c.name for c in self.constants} | set(self._used_blocks())
        module_taken |= {f.name for f in self.functions.values()} | set(self.function_names.values())
        refers = refers_to_input(insts, self.input_name) or bool(block.inputs)
        taken = module_taken | set(declared)
        # A parameter named like a module name (`layers`, the constant `K` of var `k`, the
        # partial `BATCH_NORM`, a block it calls) would hide it in the body, one named like a
        # builtin (`filter`, `max`) would hide that, and a keyword (`class`) cannot be a
        # parameter: each gets another name (`filter_`).
        renamed: dict[str, str] = {}
        for pname in declared:
            if pname in module_taken or not is_identifier(pname):
                stem = pname.strip("_") or "arg"  # (`_`: `__`, a dunder, is no name for it)
                renamed[pname] = _first_free([f"{pname}_", f"{pname}_value", f"{stem}_value"], taken)
                taken.add(renamed[pname])
        if block.inputs:  # named inputs: each a parameter (renamed only if it clashes)
            tensors = [_first_free([n, f"{n}_in", f"{n}_tensor"], taken) for n in block.inputs]
            taken.update(tensors)
            tensor = ", ".join(tensors)
        else:
            tensor = _first_free(["inputs", "tensor"] if refers else ["x", "tensor", "inputs"], taken)
            tensors = [tensor]
            taken.add(tensor)
        prefix_param = _first_free(["name", "prefix", "block_name"], taken)
        taken.add(prefix_param)
        fname = self.function_names.get(name, name)
        fn = FuncState(fname, name, taken)
        if block.inputs:  # the chain must not take a name an id of the body will want
            own_ids = {i.extras.get("id") for inst in insts for i in walk(inst.items) if hasattr(i, "extras")}
            chain = _first_free(
                ["x", "y", "h", "t", "tensor"], taken | {i for i in own_ids if isinstance(i, str)}
            )
            fn.taken.add(chain)
        else:
            chain = tensor if not refers else fn.allocate("x" if "x" not in taken else "h")
        params: list[FuncParam] = []
        names = dict(self.var_bindings)
        body: list[Stmt] = []
        entry = TensorRef(tensors[0])
        computed: list[tuple[FuncParam, Any]] = []
        for pname, bparam in declared.items():
            annotation = ANNOTATIONS.get(bparam.type)
            pyname = renamed.get(pname, pname)
            param = FuncParam(pyname, annotation, None)
            default = None
            if not bparam.required:
                value = bparam.default
                if isinstance(value, (list, dict)) or is_expression(value):
                    # `None` stands for "not passed", unless a call passes null itself (`a:
                    # null` over a default of `${act}`): then `...`, which no spec value is
                    passed_none = any(v is None for v in _argument_values(calls, pname) or ())
                    param.unset = ast.Constant(... if passed_none else None)
                    default = param.unset
                    param.annotation = f"{annotation} | None" if annotation else None
                    computed.append((param, value))
                else:
                    default = literal_node(value)
            param.default = default
            params.append(param)
            # (its value in each call: whether an f-string field of it can be a bool)
            names[pname] = Binding(ast.Name(pyname, ast.Load()), values=_argument_values(calls, pname))
        for param, value in computed:
            fill_names = self.default_names(declared, renamed, param.name, names)
            probe = Ctx(fn, (), fill_names, IdScope(entry, None), chain, body)
            param.fill = self.translate(value, probe, entry)
        scope = IdScope(entry, None)
        if block.inputs:
            scope.ids.update({n: TensorRef(t) for n, t in zip(block.inputs, tensors, strict=True)})
        ctx = Ctx(fn, (ast.Name(prefix_param, ast.Load()), "_"), names, scope, chain, body)
        result = self.print_list(insts, ctx, entry)
        results = self.block_results(block, ctx, result)
        body.append(Stmt("return", value=_tuple([_tensor(r) for r in results])))
        body[:] = drop_unused(merge_ifs(drop_pruned(body)))
        description = str(block.description or f"The `{name}` block of the spec.")
        if renamed:  # the docstring says which spec parameter `layers_` is
            description += _renamed_note(renamed, module_taken)
        return Function(
            fname, name, tensor, params, prefix_param, description, _where(block.loc), body, renamed
        )


def _renamed_note(renamed: dict[str, str], module_taken: set[str]) -> str:
    """The sentences of a block function's docstring that say which spec parameter each
    renamed Python parameter is, and why: a name the module uses itself, or one Python uses
    (a keyword or builtin)."""
    out = ""
    for why, spec_names in (
        ("the module uses", [p for p in renamed if p in module_taken]),
        ("Python uses", [p for p in renamed if p not in module_taken]),
    ):
        if not spec_names:
            continue
        spec_text = ", ".join(f"`{spec}`" for spec in spec_names)
        py_text = ", ".join(f"`{renamed[spec]}`" for spec in spec_names)
        out += (
            f" Parameter {spec_text} is {py_text} here: {why} the name itself."
            if len(spec_names) == 1
            else f" Parameters {spec_text} are {py_text} here: {why} those names itself."
        )
    return out
