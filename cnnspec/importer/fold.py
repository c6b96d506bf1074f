"""Repeated structure → blocks with parameters; consecutive calls → ``repeat``.

The source's layer names give the hierarchy (``conv3_block2_1_conv`` → stage ``conv3``, block
``block2``): consecutive items that share a name prefix form a group, groups nest by the next
token. Groups are folded bottom-up, one height at a time. Groups of one height whose items are
identical up to parameter values (their *skeleton*) become calls of one block; a value that
differs between the instances becomes a block parameter (or ``${k * p}`` of one); a value equal
everywhere stays literal. Consecutive calls of one block whose arguments are constant or step
evenly become a ``repeat`` with a loop variable. A group seen once is written inline.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from cnnspec.importer.items import Block, Call, Expr, Item, Layer, Parallel, Repeat, Residual, source_names
from cnnspec.importer.structure import NOT_ID, RESERVED_IDS, unique_id
from cnnspec.layers.registry import REGISTRY, combinator_merges, get_kind

_SPLIT = re.compile(r"^([A-Za-z]+\d+)([a-z])$")  # block2a → block2, a (EfficientNet's names)
_LOOP = "i"
#: Item keys of the spec language that a block name must not shadow.
_RESERVED = {"residual", "parallel", "repeat", "backbone", "input", "model", "when", "id", "inputs"}


def tokens(name: str) -> list[str]:
    out: list[str] = []
    for part in name.split("_"):
        match = _SPLIT.match(part)
        out += [match.group(1), match.group(2)] if match else [part]
    return out


def common_tokens(names: list[str]) -> list[str]:
    token_lists = [tokens(n) for n in names]
    prefix: list[str] = []
    for column in zip(*token_lists, strict=False):
        if len(set(column)) != 1:
            break
        prefix.append(column[0])
    return prefix


@dataclass
class Group:
    """Consecutive items under one name prefix (``token``), or one combinator item."""

    token: str | None
    prefix: list[str]
    children: list[Any]  # Group | Item
    entry: str | None = None  # the id of the tensor the group reads first
    content: list[Item] = field(default_factory=list)

    @property
    def height(self) -> int:
        return 1 + max((c.height for c in self.children if isinstance(c, Group)), default=0)

    def leaves(self) -> list[Item]:
        return [leaf for c in self.children for leaf in (c.leaves() if isinstance(c, Group) else [c])]


def _is_combinator(item: Item) -> bool:
    return isinstance(item, (Residual, Parallel))


def build_groups(entries: list[tuple[list[str], Item]], depth: int, prefix: list[str]) -> list[Any]:
    out: list[Any] = []
    i = 0
    while i < len(entries):
        toks = entries[i][0]
        key = toks[depth] if len(toks) > depth else None
        j = i + 1
        while (
            key is not None
            and j < len(entries)
            and len(entries[j][0]) > depth
            and entries[j][0][depth] == key
        ):
            j += 1
        run = entries[i:j]
        if key is None or len(run) == 1:
            item = run[0][1]
            out.append(
                Group(key, [*prefix, key] if key else prefix, [item]) if _is_combinator(item) else item
            )
        else:
            out.append(Group(key, [*prefix, key], build_groups(run, depth + 1, [*prefix, key])))
        i = j
    return out


# -- skeletons: structure and values ---------------------------------------------------------
def _full_params(layer: Layer) -> dict[str, Any]:
    """Every parameter of the layer, defaults included, in the kind's declaration order."""
    kind = get_kind(layer.kind)
    if kind is None:
        return dict(layer.params)
    full = {**kind.defaults(), **layer.params}
    return {p.name: full[p.name] for p in kind.params if p.name in full}


def skeleton(items: list[Item]) -> tuple[Any, list[tuple[str, Any]]]:
    """A hashable structure and the list of (name, value) it is filled with."""
    keys, values = [], []
    for item in items:
        key, vals = _item_skeleton(item)
        keys.append(key)
        values += vals
    return tuple(keys), values


def _item_skeleton(item: Item) -> tuple[Any, list[tuple[str, Any]]]:
    if isinstance(item, Layer):
        full = _full_params(item)
        key = ("L", item.kind, tuple(full), item.id, tuple(item.inputs or ()), item.trainable)
        return key, list(full.items())
    if isinstance(item, Residual):
        body, body_values = skeleton(item.body)
        short, short_values = skeleton(item.shortcut) if item.shortcut else (None, [])
        key = ("R", item.merge, item.activation, body, short, item.id, item.identity)
        return key, body_values + short_values
    if isinstance(item, Parallel):
        parts = [skeleton(b) for b in item.branches]
        return ("P", item.merge, item.activation, tuple(p[0] for p in parts), item.id), [
            v for p in parts for v in p[1]
        ]
    if isinstance(item, Call):
        return ("C", item.block, tuple(item.args), item.id), list(item.args.items())
    inner, inner_values = skeleton(item.layers)
    return ("T", item.var, inner, item.id), [("times", item.times), *inner_values]


def substitute(items: list[Item], replace: list[Any]) -> list[Item]:
    """``items`` with their skeleton values replaced in order (``replace``: a value per slot)."""
    slots = iter(replace)
    return [_substitute(item, slots) for item in items]


def _substitute(item: Item, slots: Any) -> Item:
    if isinstance(item, Layer):
        kind = get_kind(item.kind)
        params = {}
        for name in _full_params(item):
            value = next(slots)
            param = kind.param_index[name] if kind else None
            if isinstance(value, Expr) or param is None or param.required or not _is_default(param, value):
                params[name] = value
        return Layer(item.kind, params, item.source, item.id, item.inputs, item.trainable)
    if isinstance(item, Residual):
        body = [_substitute(i, slots) for i in item.body]
        shortcut = [_substitute(i, slots) for i in item.shortcut] if item.shortcut else None
        return replace(item, body=body, shortcut=shortcut)
    if isinstance(item, Parallel):
        branches = [[_substitute(i, slots) for i in b] for b in item.branches]
        return Parallel(branches, item.merge, item.activation, item.sources, item.id)
    if isinstance(item, Call):
        return Call(item.block, {name: next(slots) for name in item.args}, item.id, item.sources)
    times = next(slots)
    return Repeat(times, [_substitute(i, slots) for i in item.layers], item.var, item.id, item.sources)


def _is_default(param: Any, value: Any) -> bool:
    try:
        return bool(param.normalize(value) == param.normalize(param.default))
    except (TypeError, ValueError, AttributeError):
        return False


# -- blocks ----------------------------------------------------------------------------------
def _type_of(values: list[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "number"
    if all(isinstance(v, str) for v in values):
        return "str"
    if all(isinstance(v, list) for v in values):
        return "list"
    return "any"


def _multiple(vector: list[Any], base: list[Any]) -> int | None:
    if _type_of(vector) != "int" or _type_of(base) != "int" or 0 in base:
        return None
    ratios = {v / b for v, b in zip(vector, base, strict=True)}
    if len(ratios) == 1:
        ratio = ratios.pop()
        if ratio.is_integer() and ratio >= 2:
            return int(ratio)
    return None


def make_block(name: str, instances: list[list[Item]]) -> tuple[Block, list[dict[str, Any]]]:
    """One block for instances of one skeleton, and each instance's arguments."""
    filled = [skeleton(inst)[1] for inst in instances]
    slots = len(filled[0])
    params: dict[str, list[Any]] = {}
    replace: list[Any] = []
    for slot in range(slots):
        label = filled[0][slot][0]
        vector = [inst[slot][1] for inst in filled]
        if all(v == vector[0] and type(v) is type(vector[0]) for v in vector):
            replace.append(vector[0])
            continue
        same = next((p for p, vec in params.items() if vec == vector), None)
        if same is not None:
            replace.append(Expr(same))
            continue
        multiple = next(((p, m) for p, vec in params.items() if (m := _multiple(vector, vec))), None)
        if multiple is not None:
            replace.append(Expr(f"{multiple[1]} * {multiple[0]}"))
            continue
        param = (
            label
            if label not in params
            else next(f"{label}_{n}" for n in range(2, 1000) if f"{label}_{n}" not in params)
        )
        params[param] = vector
        replace.append(Expr(param))
    body = substitute(copy.deepcopy(instances[0]), replace)
    block = Block(name, {p: _type_of(vec) for p, vec in params.items()}, body)
    args = [{p: vec[i] for p, vec in params.items()} for i in range(len(instances))]
    return block, args


# -- repeats ---------------------------------------------------------------------------------
def _progression(values: list[Any]) -> tuple[Any, Any] | None:
    """(start, step) when ``values`` are ints stepping evenly (step 0: constant), else None."""
    if all(v == values[0] and type(v) is type(values[0]) for v in values):
        return values[0], 0
    if _type_of(values) != "int":
        return None
    step = values[1] - values[0]
    if all(b - a == step for a, b in itertools.pairwise(values)):
        return values[0], step
    return None


def _linear(start: int, step: int) -> Expr:
    text = _LOOP if abs(step) == 1 else f"{abs(step)} * {_LOOP}"
    if start == 0:
        return Expr(text if step > 0 else f"-{text}")
    if step > 0:
        return Expr(f"{text} + {start}" if start > 0 else f"{text} - {-start}")
    return Expr(f"{start} - {text}")


def _run_ok(calls: list[Call], *, growing: bool = False) -> bool:
    """Constant arguments, or (from three calls on: any two numbers step evenly) even steps.
    ``growing``: the run may still grow, so two calls that step are no refusal yet (the run
    was checked pair first, and a stepping one never grew past it)."""
    for name in calls[0].args:
        progression = _progression([c.args[name] for c in calls])
        if progression is None or (progression[1] and len(calls) < 3 and not growing):
            return False
    return True


def _repeat_id(calls: list[Call]) -> Any:
    """``"block${i + 2}"`` when the calls' ids number on from one prefix, else None. Ids
    zero-padded to one width (``blk01`` … ``blk11``) keep their digits: the spec's expressions
    have no format function, so the zeros are a choice by size (:func:`_padding`); ids whose
    digits follow neither format (``blk01``, ``blk2``) get none, rather than other names."""
    found = [re.fullmatch(r"(.*?)(\d+)", c.id or "") for c in calls]
    if not all(found) or len({m.group(1) for m in found}) != 1:
        return None
    digits = [m.group(2) for m in found]
    numbers = [int(text) for text in digits]
    progression = _progression(numbers)
    if progression is None or progression[1] != 1:
        return None
    number = _linear(*progression).text
    prefix = found[0].group(1)
    if all(text == str(n) for text, n in zip(digits, numbers, strict=True)):
        return f"{prefix}${{{number}}}"
    widths = {len(text) for text in digits}
    if len(widths) != 1:
        return None
    return prefix + _padding(number, numbers, widths.pop()) + f"${{{number}}}"


def _padding(number: str, numbers: list[int], width: int) -> str:
    """The zeros before ``${number}`` that pad ``numbers`` (ascending by one) to ``width``
    digits: written out where all of them take the same (``0`` for 1 … 9), else an expression
    that chooses them by size (``${'0' if i + 1 < 10 else ''}`` for 1 … 11)."""
    if len(str(numbers[0])) == len(str(numbers[-1])):
        return "0" * (width - len(str(numbers[0])))
    choices = [
        f"'{'0' * (width - digits)}' if {number} < {10**digits}"
        for digits in range(len(str(numbers[0])), len(str(numbers[-1])))
    ]
    last = "0" * (width - len(str(numbers[-1])))
    return "${" + " else ".join([*choices, f"'{last}'"]) + "}"


def make_repeats(items: list[Item], pinned: set[str] | frozenset[str] = frozenset()) -> list[Item]:
    """Consecutive calls of one block as a ``repeat``; a call whose id is ``pinned`` (read from
    outside: ids inside a repeat are seen only inside its iteration) is in none."""
    out: list[Item] = []
    i = 0
    while i < len(items):
        item = items[i]
        j = i + 1
        if isinstance(item, Call) and item.id not in pinned:
            while (
                j < len(items)
                and isinstance(items[j], Call)
                and items[j].id not in pinned
                and items[j].block == item.block
                and list(items[j].args) == list(item.args)
                and _run_ok(items[i : j + 1], growing=True)
            ):
                j += 1
            if j - i >= 2 and not _run_ok(items[i:j]):  # (two calls that step: no repeat)
                j = i + 1
        if j - i < 2:
            out.append(item)
            i += 1
            continue
        calls = items[i:j]
        args: dict[str, Any] = {}
        uses_loop = False
        for name in item.args:
            start, step = _progression([c.args[name] for c in calls])
            if step:
                uses_loop = True
                args[name] = _linear(start, step)
            else:
                args[name] = start
        ident = _repeat_id(calls)
        sources = [n for call in calls for n in source_names(call)]
        out.append(
            Repeat(
                len(calls),
                [Call(item.block, args, ident)],
                _LOOP if uses_loop or ident else None,
                None,
                sources,
            )
        )
        i = j
    return out


# -- the whole fold --------------------------------------------------------------------------
def _references(items: list[Item]) -> Counter[str]:
    return Counter(ref for item in items if isinstance(item, Layer) for ref in item.inputs or ())


def _relative(group: Group, outside: Counter[str]) -> list[Item] | None:
    """The group's content as a block body (ids without the group's prefix, its entry read as
    ``input``), or None when the content reads or exposes a tensor across its edge."""
    internal = {item.id for item in group.content if getattr(item, "id", None)}
    last = group.content[-1].id if group.content else None
    # the last item's id may be read from outside: that is the group's output, which a call
    # of the block returns under the call's id (see ``fold``)
    if any(outside[i] for i in internal if isinstance(i, str) and i != last):
        return None
    stem = raw_prefix(group) + "_"
    renamed = {}
    for ident in internal:
        if not isinstance(ident, str):
            continue
        short = ident[len(stem) :] if ident.startswith(stem) and len(ident) > len(stem) else ident
        # (`stem_input` stays: `input` in a block body is the block's input)
        renamed[ident] = short if short[:1].isalpha() and short not in RESERVED_IDS else ident
    if len(set(renamed.values())) != len(renamed):
        renamed = {i: i for i in renamed}
    body = copy.deepcopy(group.content)
    for item in body:
        if isinstance(item.id, str):
            item.id = renamed.get(item.id, item.id)
        if isinstance(item, Layer) and item.inputs:
            new = []
            for ref in item.inputs:
                if ref in renamed:
                    new.append(renamed[ref])
                elif ref == group.entry:
                    new.append("input")
                else:
                    return None
            item.inputs = new
    return body


def _name_for(group: Group, taken: set[str], height: int, body: list[Item]) -> str:
    # the last word of the prefix that names something: not a number, not a letter of `block2b`
    token = next((t for t in reversed(group.prefix) if not t.isdigit() and len(t) > 1), None)
    base = re.sub(r"\d+$", "", token or "").strip("_").lower()
    if not base or not base[0].isalpha():
        base = (
            "residual"
            if body and isinstance(body[0], Residual)
            else "parallel"
            if body and isinstance(body[0], Parallel)
            else "block"
        )
    if height >= 2:
        base = f"{base}_stage"
    if get_kind(base) is not None or base in _RESERVED:
        base = f"{base}_block"
    if base not in taken:
        return base
    if len(body) == 1 and isinstance(body[0], Residual):
        flavour = f"{base}_projection" if body[0].shortcut else f"{base}_identity"
        if flavour not in taken:
            return flavour
    return next(f"{base}_{n}" for n in range(2, 10_000) if f"{base}_{n}" not in taken)


def raw_prefix(group: Group) -> str:
    """The group's name prefix as the source spells it (``block1a``, not ``block1_a``)."""
    names = source_names(group.leaves()[0])
    parts = names[0].split("_") if names else []
    for k in range(1, len(parts) + 1):
        candidate = "_".join(parts[:k])
        if tokens(candidate) == group.prefix:
            return candidate
    return "_".join(group.prefix)


def _call_id(group: Group) -> str | None:
    if not group.token:
        return None
    ident = NOT_ID.sub("_", raw_prefix(group))
    return ident if ident[:1].isalpha() else None  # (ASCII only, after the sub)


def _automatic(item: Item, name: str) -> bool:
    """A name Keras made up from the class (``re_lu_3``, ``activation``): no structure in it."""
    from cnnspec.layers.reverse import COMBINATOR_ACTIVATION, keras_auto_name

    kind = get_kind(item.kind) if isinstance(item, Layer) else None
    if kind is not None:
        kinds = [kind]
    else:  # a combinator item, named after its merge or its activation layer
        kinds = [REGISTRY[name] for name in (*combinator_merges(), COMBINATOR_ACTIVATION)]
    classes = [keras_auto_name(k.keras_class) for k in kinds]
    return any(re.fullmatch(rf"{c}(_\d+)?", name) for c in classes)


def _item_tokens(items: list[Item]) -> list[list[str]]:
    """Each item's name prefix; an item with a made-up name takes the prefix its neighbours share."""
    found: list[list[str] | None] = []
    for item in items:
        names = source_names(item)
        meaningful = (
            [n for n in names if not _automatic(item, n)]
            if isinstance(item, Layer)
            else [n for n in names if not _automatic(Residual([], None), n)]
        )
        found.append(common_tokens(meaningful) if meaningful else None)
    out: list[list[str]] = []
    for i, toks in enumerate(found):
        if toks is not None:
            out.append(toks)
            continue
        before = next((t for t in reversed(found[:i]) if t is not None), None)
        after = next((t for t in found[i + 1 :] if t is not None), None)
        shared: list[str] = []
        if before is not None and after is not None:
            for a, b in zip(before, after, strict=False):
                if a != b:
                    break
                shared.append(a)
        out.append(shared)
    return out


def fold(items: list[Item], outputs: list[str] | None = None) -> list[Block]:
    """Fold ``items`` (the model's top-level list) in place; return the blocks found.
    ``outputs``: the ids the spec's ``outputs:`` names (a model with several), read as
    references from outside every group and renamed in place where a call stands for one."""
    outputs = outputs if outputs is not None else []
    entries = list(zip(_item_tokens(items), items, strict=True))
    roots = build_groups(entries, 0, [])
    # each group's entry: the id of the item before its first leaf
    order = {id(item): n for n, item in enumerate(items)}
    groups: list[Group] = []

    def collect(nodes: list[Any]) -> None:
        for node in nodes:
            if isinstance(node, Group):
                collect(node.children)
                groups.append(node)
                first = order[id(node.leaves()[0])]
                before = items[first - 1] if first else None
                node.entry = "input" if before is None else _entry_id(before)

    collect(roots)
    result: dict[int, list[Item]] = {}
    blocks: list[Block] = []
    taken: set[str] = set()
    call_ids: set[str] = {i.id for i in items if isinstance(i.id, str)} | RESERVED_IDS

    def call_for(group: Group, block: str, args: dict[str, Any], exposed: Any) -> Call:
        """A call standing for ``group``; readers of the group's output read the call's id."""
        ident = _call_id(group)
        if ident is None and outputs and isinstance(exposed, str):
            # (a model with several outputs: its heads read the trunk by id) the call keeps
            # the id its output is read by
            return Call(block, args, exposed, source_names_of(group))
        if ident is not None:
            ident = unique_id(ident, call_ids)
            call_ids.add(ident)
        if isinstance(exposed, str) and exposed != ident:
            if ident is None and everything_now()[exposed]:
                return None  # type: ignore[return-value]
            for leaf in items:
                if isinstance(leaf, Layer) and leaf.inputs and exposed in leaf.inputs:
                    leaf.inputs = [ident if ref == exposed else ref for ref in leaf.inputs]
            outputs[:] = [ident if ref == exposed else ref for ref in outputs]
            for other in groups:
                if other.entry == exposed:
                    other.entry = ident
        return Call(block, args, ident, source_names_of(group))

    def everything_now() -> Counter[str]:
        return _references(items) + Counter(outputs)

    def pinned() -> set[str]:
        """(A model with several outputs) the ids read from outside the calls that make them:
        the outputs and what the heads read."""
        return set(everything_now()) if outputs else set()

    for height in range(1, max((g.height for g in groups), default=0) + 1):
        level = [g for g in groups if g.height == height]
        buckets: dict[Any, list[tuple[Group, list[Item]]]] = {}
        for group in level:
            content: list[Item] = []
            for child in group.children:
                content += result[id(child)] if isinstance(child, Group) else [child]
            group.content = content
            if len(content) == 1 and isinstance(content[0], Call) and _call_id(group):
                # a group around one call is that call, under the group's name
                only = content[0]
                call = call_for(group, only.block, only.args, only.id)
                if call is not None:
                    result[id(group)] = [call]
                    continue
            inside = _references(group.leaves())
            body = _relative(group, everything_now() - inside)
            if body is None:
                result[id(group)] = make_repeats(group.content, pinned())
                continue
            body = make_repeats(body)
            _drop_unused_ids(body)  # an id only the world outside read is not part of the shape
            buckets.setdefault(skeleton(body)[0], []).append((group, body))
        for members in buckets.values():
            if len(members) < 2:
                for group, _ in members:
                    result[id(group)] = make_repeats(group.content, pinned())
                continue
            name = _name_for(members[0][0], taken, height, members[0][1])
            taken.add(name)
            block, args = make_block(name, [body for _, body in members])
            blocks.append(block)
            for (group, _), arguments in zip(members, args, strict=True):
                exposed = group.content[-1].id if group.content else None
                call = call_for(group, name, arguments, exposed)
                # a group whose output is read by name but that has no name to call it by stays
                result[id(group)] = [call] if call is not None else make_repeats(group.content, pinned())
    folded: list[Item] = []
    for node in roots:
        folded += result[id(node)] if isinstance(node, Group) else [node]
    items[:] = make_repeats(folded, pinned())
    for layers in (items, *(block.layers for block in blocks)):
        _drop_unused_ids(layers, set(outputs) if layers is items else set())
        _unique_call_ids(layers, outputs if layers is items else [])
    return blocks


def _unique_call_ids(items: list[Item], outputs: list[str] | None = None) -> None:
    """Two groups can share a name prefix (``expanded_conv`` before and after a residual);
    a later call with a taken id gets the next free ``_2``, ``_3`` (and ``outputs`` with it)."""
    others = {item.id for item in items if not isinstance(item, Call) and isinstance(item.id, str)}
    taken = others | RESERVED_IDS
    for item in items:
        if isinstance(item, Call) and isinstance(item.id, str):
            old, item.id = item.id, unique_id(item.id, taken)
            taken.add(item.id)
            if outputs and old != item.id and old not in others:  # (an output of the call's)
                outputs[:] = [item.id if ref == old else ref for ref in outputs]


def source_names_of(group: Group) -> list[str]:
    return [n for leaf in group.leaves() for n in source_names(leaf)]


def _entry_id(item: Item) -> str | None:
    return item.id if isinstance(item.id, str) else None


def _drop_unused_ids(items: list[Item], keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Drop the ids nothing reads (but those in ``keep``: the model's outputs)."""
    used = _references(items) + Counter(keep)
    for item in items:
        if isinstance(item, (Layer, Residual, Parallel)) and item.id is not None and not used[item.id]:
            item.id = None
        if isinstance(item, Residual):
            _drop_unused_ids(item.body)
            _drop_unused_ids(item.shortcut or [])
        if isinstance(item, Parallel):
            for branch in item.branches:
                _drop_unused_ids(branch)
        if isinstance(item, Repeat):
            _drop_unused_ids(item.layers)
