"""A backbone cut inside one of its items (``until:`` naming a layer within a block call or
repeat): the part of the tree the cut keeps, copied with what lies past the cut pruned, or a
refusal (:class:`CutRefused`) where the kept part cannot be printed as a function of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cnnspec.backends.codegen_tree import item_path
from cnnspec.errors import format_path
from cnnspec.ir import Backbone, BlockCall, Conditional, Item, Layer, Parallel, Repeat, Residual, layers_of


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
