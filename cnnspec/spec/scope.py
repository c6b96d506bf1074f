"""The names the resolver gives and looks up: a layer list's :class:`Scope` (the ids it sees,
the prefix of the names it makes, the variables bound), the words a spec may not take for its
own (:data:`IDENTIFIER`, :data:`COMBINATORS`, :data:`RESERVED_BLOCK_NAMES`), and how generated
names are kept apart (:func:`unique_id`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cnnspec.errors import SpecPath
from cnnspec.ir import INPUT
from cnnspec.spec.backbone import KIND as BACKBONE
from cnnspec.spec.items import ITEM_EXTRAS


def free_loop_name(taken: set[str]) -> str:
    """A loop variable name for a hint that suggests another one: the first of j, k, m, … that
    is not ``taken`` (a loop variable or var of that name already)."""
    return next((name for name in ("j", "k", "m", "n", "p", "q", "r") if name not in taken), "j_")


def unique_id(base: str, taken: set[str] | frozenset[str]) -> str:
    """``base``, or the first of ``base_2``, ``base_3`` … not in ``taken`` (which holds the
    reserved ids too): two names that clean up alike (``x y``, ``x_y``) get two ids."""
    made, suffix = base, 2
    while made in taken:
        made, suffix = f"{base}_{suffix}", suffix + 1
    return made


# fullmatch, not match: "$" would accept a trailing newline ("c\n").
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
COMBINATORS = ("residual", "parallel", "repeat")
#: Words a layer item reads as something else than a block call: a block of such a name could
#: never be called, so its declaration is refused (:meth:`Resolver.check_blocks`).
RESERVED_BLOCK_NAMES: dict[str, str] = {
    **{key: "it is a key of layer items (" + ", ".join(ITEM_EXTRAS) + ")" for key in ITEM_EXTRAS},
    **{name: f"it names the `{name}` combinator" for name in (*COMBINATORS, BACKBONE)},
}


#: Item keys that name no layer the walk makes (:func:`least_sizes`, value parameters).
NOT_LAYERS = frozenset({*COMBINATORS, BACKBONE})


UNKNOWN = "\0unknown"  # a tensor whose shape is unknown because of an earlier error


@dataclass
class Scope:
    """Where names are looked up and how generated layer names are prefixed.

    The scoping rules (README "Scopes and names"): a block body sees only its own inputs, ids
    and parameters (``parent`` is ``None``; ``caller`` is kept for hints only); the lists of a
    combinator (residual, parallel, repeat) see the ids of the lists around them; ``input``
    means the input of the enclosing block, or the model's input outside blocks, everywhere,
    including inside combinators (``entry``; ``None`` in a block that names its inputs)."""

    entry: str | None
    ids: dict[str, str]
    parent: Scope | None
    prefix: str
    env: dict[str, Any]
    group: tuple[str, ...]
    #: Per-kind parameter defaults in force (spec-level, then the block's own).
    defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The block whose body this is (``None`` at model level), and its declared inputs.
    block: str | None = None
    block_inputs: tuple[str, ...] = ()
    caller: Scope | None = None
    #: For hints only, ids that are not defined here but are written in the spec: those of
    #: items skipped by a false ``when`` (with the item's path) and those defined inside a
    #: repeat, visible only inside it (with the repeat's :class:`Hidden`).
    skipped: dict[str, SpecPath] = field(default_factory=dict)
    hidden: dict[str, Hidden] = field(default_factory=dict)
    #: For hints only, ids defined inside a residual or parallel item here, visible only inside
    #: it (or, in a parallel, only in its own branch): the item's (or branch's) path and which.
    enclosed: dict[str, tuple[SpecPath, str]] = field(default_factory=dict)
    #: For hints only, per block call by its name (``inner_1``, and ``s.inner_1`` through the
    #: calls around it): the reference that names the call's result (``inner_1.out``), or
    #: ``None`` where none does. A call's automatic name is no id: it reaches the ids inside.
    results: dict[str, str | None] = field(default_factory=dict)

    def lookup(self, ref: str) -> str | None:
        scope: Scope | None = self
        while scope is not None:
            if ref in scope.ids:
                return scope.ids[ref]
            scope = scope.parent
        return self.entry if ref == INPUT else None

    def result_of(self, call: str) -> tuple[bool, str | None]:
        """Whether ``call`` names a block call here, and the reference to its result."""
        scope: Scope | None = self
        while scope is not None:
            if call in scope.results:
                return True, scope.results[call]
            scope = scope.parent
        return False, None

    def why_missing(self, ref: str) -> SpecPath | Hidden | None:
        """Why the id ``ref`` is not visible here though the spec writes it: the path of the
        item a false ``when`` skipped, or the repeat it is defined inside; ``None`` if neither."""
        scope: Scope | None = self
        while scope is not None:
            if ref in scope.skipped:
                return scope.skipped[ref]
            if ref in scope.hidden:
                return scope.hidden[ref]
            scope = scope.parent
        return None

    def enclosed_by(self, ref: str) -> tuple[SpecPath, str] | None:
        """Where ``ref`` is defined, if inside a residual or parallel item (or a sibling branch)
        that this scope cannot see into (see :attr:`enclosed`)."""
        scope: Scope | None = self
        while scope is not None:
            if ref in scope.enclosed:
                return scope.enclosed[ref]
            scope = scope.parent
        return None

    def visible(self) -> list[str]:
        names: list[str] = [INPUT] if self.entry is not None else []
        scope: Scope | None = self
        while scope is not None:
            names.extend(scope.ids)
            scope = scope.parent
        return names

    def child(self, prefix: str | None = None, group: tuple[str, ...] | None = None, **kw: Any) -> Scope:
        return Scope(
            entry=self.entry,
            ids={},
            parent=kw.get("parent", self),
            prefix=self.prefix if prefix is None else prefix,
            env=kw.get("env", self.env),
            group=self.group if group is None else group,
            defaults=self.defaults,
            block=self.block,
            block_inputs=self.block_inputs,
            caller=self.caller,
        )


@dataclass(frozen=True)
class Hidden:
    """Where an id defined inside a repeat is: the repeat's path, its ``id``, whether it
    carries tensors, and the (first) iteration that defined it."""

    path: SpecPath
    repeat_id: str | None
    carries: bool
    iteration: int


@dataclass(frozen=True)
class CallName:
    """A block call's name (its scope's prefix and its local name), the group of the layers
    beside it (its own layers' group without its local name), where the call is, and whether
    the name is automatic (``blk_2``) rather than the call's ``id``."""

    name: str
    group: tuple[str, ...]
    path: SpecPath
    automatic: bool


@dataclass
class MemoShape:
    """What replaying a recorded block call must know of the calls inside it: how deep it
    nests below itself (``below``), and where in the resolver's log of block calls the calls
    made inside it are (``start``…``end``), with the prefix and group depth to strip from their
    names; ``calls``: those names, made on the first replay."""

    below: int
    start: int
    end: int
    prefix: str
    depth: int
    calls: tuple[CallName, ...] | None = None


def scope_head(ref: str) -> str:
    """The id a scoped reference starts with: ``c0`` of ``c0[1]``, ``c0.x`` and ``c0.h``."""
    return re.split(r"[.\[]", ref, maxsplit=1)[0]
