"""Resolution: a validated spec document → :class:`~cnnspec.ir.ModelIR`.

Expands ``${…}`` expressions, ``vars``, block calls, ``repeat``, ``residual`` and ``parallel``
into plain layers, checks every layer's parameters against the registry, and runs each kind's
shape rule as it goes (``shortcut: auto`` and ``in_channels`` need shapes). All problems are
collected with their spec locations. Errors never cascade: after an error the affected
branch continues with an unknown shape, and every name whose value failed (a var, a block
argument, ``in_channels``/``in_shape`` after an unknown shape) is bound to ``POISONED``, so what
depends on it stays silent while independent items are still checked. Errors inside a block
carry one note per call level; the same mistake reached through several calls or repeat
iterations is reported once, with every call site.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections import deque
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cnnspec.errors import (
    COMMAND_LINE_PREFIX,
    Computed,
    Diagnostics,
    Loc,
    Note,
    SpecPath,
    call_details,
    call_note,
    closest,
    describe_value,
    did_you_mean,
    format_path,
    key_hint,
    misspelt,
    origin_note,
)
from cnnspec.ir import (
    INPUT,
    Backbone,
    BlockCall,
    BlockDef,
    Container,
    ModelIR,
    ModelTree,
    Node,
    Parallel,
    Repeat,
    Residual,
    TreeRecorder,
    Var,
    ancestors,
    layers_of,
)
from cnnspec.layers.params import MAX_SIZE, Param, meant_parameters, param_synonym
from cnnspec.layers.registry import REGISTRY, Counts, LayerKind, Shape, ShapeError, combinator_merges
from cnnspec.spec import varchoices
from cnnspec.spec.backbone import KIND as BACKBONE
from cnnspec.spec.backbone import resolve_backbone
from cnnspec.spec.expr import (
    EMBEDDED_EXPRESSION,
    FULL_EXPRESSION,
    LAYER_NAMES,
    POISONED,
    ExpressionError,
    Poisoned,
    is_expression,
    names_in,
    substitute,
    unreadable_name,
)
from cnnspec.spec.least_size import LeastSizes, said
from cnnspec.spec.loader import ITEM_EXTRAS, SOURCE_TEXTS, SourceDoc, copy_tree, item_kind, value_at
from cnnspec.spec.memo import (
    CallMemo,
    NotReplayable,
    Pending,
    Renamer,
    Site,
    SiteLog,
    fill_pending,
    used_blocks,
    value_params,
)
from cnnspec.spec.varrefs import (
    Shadow,
    input_shape_origin,
    names_read,
    unread_params,
    unread_vars,
    var_refs,
)


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
MAX_NODES = 20_000
MAX_REPEAT = 10_000
MAX_STEPS = 100_000  # layer items visited + repeat iterations (nested repeats of empty lists)
#: Items that may nest inside one another along one path of the walk: block calls and the
#: combinators (repeat, residual, parallel). Each level is a few Python frames of recursion, so a
#: chain of a few hundred block calls would exhaust the interpreter's stack; a located error at
#: the item that goes deeper comes well before that (docs/graphs.md states the number; the
#: codegen tests generate code at this depth).
MAX_NESTING = 32

#: Item keys that name no layer the walk makes (:func:`least_sizes`, value parameters).
NOT_LAYERS = frozenset({*COMBINATORS, BACKBONE})


def least_sizes(blocks: Mapping[str, Any], bad_blocks: Collection[str] = ()) -> LeastSizes:
    """The least sizes of a spec's repeats and block calls (:mod:`cnnspec.spec.least_size`) as
    the resolver walks its items: a layer is made of a registered kind that is no combinator,
    backbone or refused block's name (``bad_blocks``, read as it grows), and a call is of a
    declared block (``blocks``) that no kind shadows."""
    return LeastSizes(
        blocks,
        lambda kind: kind in REGISTRY and kind not in NOT_LAYERS and kind not in bad_blocks,
        lambda kind: kind in blocks and kind not in REGISTRY and kind not in bad_blocks,
        item_kind,
        max_repeat=MAX_REPEAT,
        max_depth=MAX_NESTING + 1,
    )


UNKNOWN = "\0unknown"  # a tensor whose shape is unknown because of an earlier error

BLOCK_PARAM_TYPES: dict[str, Callable[[Any], bool]] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "list": lambda v: isinstance(v, list),
    "any": lambda v: True,
}


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


def _augments(kind: str) -> bool:
    """Whether a layer of ``kind`` may be in the augmentation (a preprocessing kind)."""
    found = REGISTRY.get(kind)
    return found is not None and found.preprocessing


@dataclass(frozen=True)
class Hidden:
    """Where an id defined inside a repeat is: the repeat's path, its ``id``, whether it
    carries tensors, and the (first) iteration that defined it."""

    path: SpecPath
    repeat_id: str | None
    carries: bool
    iteration: int


@dataclass(frozen=True)
class BlockParam:
    type: str
    default: Any
    required: bool
    #: The default is a small list or mapping with no ``${…}`` anywhere that passes the type
    #: check: every call gets a copy without evaluating it (:meth:`Resolver.block_default`).
    plain: bool = False


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


class _RepeatFailed(Exception):
    """A repeat stopped at an error it has reported (:meth:`Resolver.repeat`)."""


def _broadcasts_onto(small: Shape, big: Shape) -> bool:
    """Whether ``small`` is a gate an element-wise merge broadcasts over ``big``: the same
    channels, every other axis 1 (squeeze-and-excitation's 1×1×C), or fewer axes (its C alone,
    pooled without keepdims: Keras' merges line shapes up on their last axes). A body that ends
    with other channels (1 of 16: a likely mistake in `filters`) is projected, as before."""
    return (
        1 <= len(small) <= len(big)
        and len(big) >= 2
        and small[-1] == big[-1]
        and all(side == 1 for side in small[:-1])
        and any(side != 1 for side in big[:-1])
    )


def _scope_head(ref: str) -> str:
    """The id a scoped reference starts with: ``c0`` of ``c0[1]``, ``c0.x`` and ``c0.h``."""
    return re.split(r"[.\[]", ref, maxsplit=1)[0]


def scalar_param(declared: dict[str, Any]) -> str | None:
    """The parameter a block called with a single value (``- cb: 8``) gives it to: its only
    parameter, or else its only required one; ``None`` when neither is one parameter.
    ``declared``: the block's parameters by name (:meth:`Resolver.block_params`)."""
    required = [name for name, param in declared.items() if param.required]
    if len(declared) == 1:
        return next(iter(declared))
    return required[0] if len(required) == 1 else None


class Resolver:
    """Walks the spec's layer lists and emits :class:`Node` objects."""

    #: Replay identical error-free block calls (:mod:`cnnspec.spec.memo`); off only to compare.
    replay_calls = True

    def __init__(self, doc: SourceDoc, diags: Diagnostics, *, allow_outside: bool = False) -> None:
        self.doc = doc
        self.data = doc.data
        self.diags = diags
        #: ``--allow-outside``: a backbone's spec file may lie outside the spec's folder, as an
        #: ``extends``/``use`` file may (:func:`cnnspec.spec.backbone.load_backbone_doc`).
        self.allow_outside = allow_outside
        self.nodes: list[Node] = []
        self.by_name: dict[str, Node] = {}
        self.shapes: dict[str, Shape | None] = {UNKNOWN: None}
        self.counters: dict[str, dict[str, int]] = {}
        self.blocks: dict[str, Any] = self.data.get("blocks") or {}
        self.used_blocks: set[str] = set()
        #: What this compilation does not expand, checked at the end (:mod:`cnnspec.spec.dormant`):
        #: items whose `when` is false and the layers of repeats of 0 times, with their paths
        #: (and items and block bodies an error stopped before their layers were read: each
        #: once, by its id); and the ids of the items it expanded, which are not checked again.
        self.dormant: list[tuple[Any, SpecPath]] = []
        self.stopped: set[int] = set()
        self.expanded: set[int] = set()
        self.call_stack: list[str] = []
        #: Block calls and combinators being walked (MAX_NESTING), and the deepest reached,
        #: so a replayed call is known to stay within the limit where it is replayed.
        self.nesting = 0
        self.deepest = 0
        #: Per recorded call (by ``id()`` of its memo, kept alive in ``memos``): how deep it
        #: nests below itself, and where in ``call_log`` the block calls inside it are, with
        #: the prefix and group depth to strip from them (read only when it is replayed).
        self.memo_shape: dict[int, MemoShape] = {}
        #: Every block call's name (its prefix and local name, as a layer name would be), with
        #: the call's path and whether the name is automatic: a layer named alike is reported
        #: (a call's name is a group of `cnnspec inspect` and of freeze patterns), as two
        #: layers named alike are.
        self.call_names: dict[str, CallName] = {}
        self.call_log: list[CallName] = []  # the calls in the order made (what a memo records)
        self.call_sites: list[SpecPath] = []  # the item that made each call of call_stack
        self.repeats: list[tuple[str | None, str | None, bool]] = []  # (id, loop variable, carries)
        #: The repeats being walked, each with the depth of block calls it is at (a block body
        #: does not see its caller's) and its loop variable (``""``: a repeat without ``as:``,
        #: kept for the iteration notes of shape errors): names no origin note is about.
        self.loop_vars: list[tuple[int, str]] = []
        self.warned_loops: set[SpecPath] = set()  # repeats whose `as:` hides an outer one's
        #: The iteration each of ``loop_vars`` is in now (its variable's value).
        self.loop_values: list[int] = []
        #: The repeat item each of ``loop_vars`` belongs to (its ``repeat`` key's path).
        self.loop_paths: list[SpecPath] = []
        #: The ``times`` of each of ``loop_vars``.
        self.loop_times: list[int] = []
        #: Per call of ``call_stack``: the loop variables bound where it is made (the caller's
        #: iteration) and the arguments it binds, for the call notes (:meth:`call_notes`).
        self.call_frames: list[tuple[tuple[tuple[str, int], ...], dict[str, Any]]] = []
        self.spec_defaults: dict[str, dict[str, tuple[Any, Any]]] = {}
        self.signatures: dict[str, bool] = {}
        self.context = 0  # the block call or repeat iteration being walked (0: none)
        self.contexts = 0
        self.lost_ids = False  # an `id` failed: unknown references may be its consequence
        #: The shape errors of image layers fed an ``input.shape`` of 2 or more than 3 axes
        #: (each ready to report at its layer), the first such layer's path text, and whether a
        #: layer that takes no 3-D input read that input validly (conv1d: [steps, channels]):
        #: reported where the input shape was set once the model is walked, unless one did (a
        #: channel axis would break it). A backbone fed the input adds its own (resolve_backbone).
        self.flat_input_errors: list[Callable[[], None]] = []
        self.flat_input_layers: list[str] = []
        self.flat_input_valid = False
        #: The model input passed on unchanged in shape by layers of any rank (EfficientNet's
        #: rescaling and normalization): an image layer after them reads the input shape as
        #: the first layer would. A backbone's resolver shares the set.
        self.input_like: set[str] = set()
        diags.includes.update(doc.includes)
        self.input_name = INPUT
        self.too_many = False
        self.steps = 0
        self.vars_env: dict[str, Any] = {}
        self.tree = ModelTree()
        self.record = TreeRecorder(self.tree)
        self.defaulted: dict[SpecPath, dict[str, Any]] = {}  # see ModelIR.defaulted
        #: ``trainable`` flags of the items being walked, innermost last.
        self.trainable: list[bool] = []
        #: Files of the specs whose backbone items are being resolved (outermost first), and
        #: the notes that locate this document's errors in them (:mod:`cnnspec.spec.backbone`).
        self.backbones: list[str] = []
        self.outer_notes: list[Note] = []
        #: Error-free block calls by (block, arguments, input shapes, trainable), replayed
        #: for identical calls (:mod:`cnnspec.spec.memo`); the automatic-name counters in
        #: creation order and how many names they gave, to check a call made only its own.
        self.memos: dict[tuple[Any, ...], CallMemo | None] = {}
        self.counter_log: list[str] = []
        self.auto_names = 0
        self.replayed = 0  # calls replayed (for tests and benchmarks)
        #: Recorded calls by their key without the block's value parameters, with the recorded
        #: arguments (as memo_key holds them) and the sites that read those parameters;
        #: each block's value parameters; the site logs of the calls being recorded, by block.
        self.value_memos: dict[tuple[Any, ...], tuple[CallMemo, dict[str, Any], list[Site]]] = {}
        self.value_names: dict[str, frozenset[str]] = {}
        self.shape_free_blocks: dict[str, bool] = {}
        self.param_decls: dict[str, dict[str, BlockParam]] = {}
        self.site_logs: dict[str | None, SiteLog] = {}
        #: Per block: what each text reads of its value parameters (SiteLog.known).
        self.site_known: dict[str, dict[str, frozenset[str]]] = {}
        self.path_texts: dict[SpecPath, str] = {}
        self.good_ids: set[str] = set()  # ids that passed item_id's fixed checks
        #: Each mapping item's kind, body and extras (``id``, ``inputs``, ``when``, ``trainable``)
        #: by ``id()``, the item kept to check the entry is its own; block bodies and repeats
        #: walk the same items again and again.
        self.item_forms: dict[int, tuple[dict[Any, Any], Any, Any, dict[str, Any]]] = {}
        self.pruned = False  # some layer was left out (finish_tree marks it): pruned, or cut
        #: Replayed calls' tree copies not made yet (:func:`cnnspec.spec.memo.fill_pending`).
        self.deferred: Pending = {}
        #: Declarations refused by check_blocks and resolve_vars: blocks whose calls stay
        #: silent, (block, parameter) pairs whose literal default has the wrong type, and
        #: var names no expression can read (an expression that fails on one stays silent).
        self.bad_blocks: set[str] = set()
        self.bad_defaults: set[tuple[str, str]] = set()
        self.refused_names: set[str] = set()

    # -- diagnostics helpers ---------------------------------------------------------------
    def loc(self, path: SpecPath) -> Loc | None:
        return self.doc.loc(path)

    def error(
        self,
        message: str,
        path: SpecPath,
        *,
        key: bool = False,
        also: tuple[Note, ...] = (),
        about_value: bool = True,
        **kw: Any,
    ) -> None:
        """Report ``message`` at the value (or with ``key``, the key) at ``path``, with the call
        stack and, for a value an expression computed, where the names it read were set (not
        for an error ``about_value`` false: a block calling itself is no value's fault, though
        the call's argument is an expression); ``also``: notes of the error's own after those."""
        loc = self.doc.key_loc(path) if key else self.doc.loc(path)
        notes = ([] if key else self.loop_notes(path)) + self.call_notes(None if key else path)
        origins, fold = ((), ()) if key or not about_value else self.origin_notes(path)
        self.diags.error(
            message,
            loc,
            format_path(path),
            notes=[*notes, *origins, *also],
            context=self.context,
            origins=fold,
            **kw,
        )

    def origin_notes(self, path: SpecPath) -> tuple[tuple[Note, ...], tuple[Note | Computed, ...]]:
        """For an error on the ``${…}`` expression written at ``path``: one note per var it
        reads, saying the var's value and where it was set (``--set``, an extending file, the
        backbone item, or the ``vars:`` entry), since the error is located at the expression
        but the mistake is often in the value. A block parameter is followed to the argument
        of its call, and outwards through the callers' parameters that argument reads
        (:meth:`argument_origins`). Loop variables and ``in_channels``/``in_shape`` get none.
        Nothing is noted when the names read cannot all be bound here (an undefined name: the
        error is the text), or when the error is not about an expression.

        Second, those of the notes whose value reaches ``path`` as it is: read bare (``${f}``)
        at every step. The same error from such an origin at another place is the same bad
        value used again, folded into one error (:meth:`Diagnostics.add`); a value computed
        from it differently (``${n - 2}`` and ``${n // 4}``, both 0 of a right n = 2) is a
        mistake of its own, reported on its own, but the same expression of the same origins
        (``${width * 2}`` at two layers) computes the same value: it folds too
        (:func:`_computed_key`)."""
        found = self.origins(path)
        notes = tuple(found)[:MAX_ORIGIN_NOTES]
        return notes, (*_fold_keys(found), *_computed_key(_expression_text(self.data, path), found))

    def origins(self, path: SpecPath) -> dict[Note, str | None]:
        """The notes of :meth:`origin_notes`, each with how its value reaches ``path`` as it is
        (:func:`read_access`: ``""`` whole, ``"[0]"`` its first element), ``None`` computed."""
        text = _expression_text(self.data, path)
        if text is None:
            return {}
        depth = len(self.call_stack)
        block = path[1] if len(path) > 1 and path[0] == "blocks" else None
        if (block is None) != (depth == 0) or (block is not None and block != self.call_stack[-1]):
            return {}  # a declaration checked outside any call: what its names are bound to is unknown
        names = _names_read(text)
        if names is None:
            return {}
        params = self.block_params(block) if block is not None else {}
        access = read_access(text)
        found: dict[Note, str | None] = {}
        memo: dict[tuple[str, int], dict[Note, str | None]] = {}
        for name in names:
            if name in LAYER_NAMES or any(d == depth and v == name for d, v in self.loop_vars):
                continue
            step = _step(access, name)
            if name in params:
                _merge(found, self.argument_origins(name, depth, memo), step)
            elif name in self.vars_env:
                _merge(found, dict.fromkeys(self.var_origin(name), ""), step)
            else:
                return {}  # an undefined name: the error is about the text, not a value
        return found

    def argument_origins(
        self, param: str, depth: int, memo: dict[tuple[str, int], dict[Note, str | None]]
    ) -> dict[Note, str | None]:
        """The origin notes of the vars the argument of ``param`` at the call ``depth`` (1: the
        outermost) reads, or of the argument itself where it is written out (``f is integer
        0, set at …``), each with whether its value is the argument's as it is (a literal, or
        a bare ``${name}`` of such a value); for an argument left to its default, the default's
        (written out, or what it reads: vars and the call's other parameters). An
        argument that reads the caller's own parameter (``g: ${f}``) is followed to the
        caller's call, and so on outwards: the value was written there. ``memo`` holds each
        (parameter, depth) once: arguments that read two of the caller's parameters at every
        level would otherwise walk 2**depth chains."""
        if (param, depth) in memo:
            return memo[param, depth]
        memo[param, depth] = {}  # (a cycle, which the call stack rules out, would end here)
        site, block = self.call_sites[depth - 1], self.call_stack[depth - 1]
        body = value_at(self.data, (*site, block))
        if isinstance(body, dict) and param in body:
            argument, where = body[param], (*site, block, param)
        elif (
            body is not None
            and not isinstance(body, dict)
            and scalar_param(self.block_params(block)) == param
        ):
            argument, where = body, (*site, block)
        else:  # left to its default: the default is the value (it reads the vars, or the
            # call's other parameters, not the caller's)
            declared = ((self.blocks[block] or {}).get("params") or {}).get(param)
            if not isinstance(declared, dict) or "default" not in declared:
                return {}
            argument, where = declared["default"], ("blocks", block, "params", param, "default")
            found = self.written_origins(param, argument, where, self.block_params(block), depth, memo)
            memo[param, depth] = found
            return found
        caller = self.block_params(self.call_stack[depth - 2]) if depth > 1 else {}
        found = self.written_origins(param, argument, where, caller, depth - 1, memo, loops=True)
        memo[param, depth] = found
        return found

    def written_origins(
        self,
        param: str,
        argument: Any,
        where: SpecPath,
        params: dict[str, BlockParam],
        depth: int,
        memo: dict[tuple[str, int], dict[Note, str | None]],
        *,
        loops: bool = False,
    ) -> dict[Note, str | None]:
        """The origins of ``param``'s value ``argument``, written at ``where``: itself when
        written out, else those of the names its expression reads, where ``params`` (those of
        the call at ``depth``; 0: none) and, with ``loops``, that call's loop variables are
        bound."""
        found: dict[Note, str | None] = {}
        if not is_expression(argument):
            loc = self.doc.locs.get(where)
            if loc is not None:
                found[origin_note(param, argument, loc, format_path(where))] = ""
        elif (names := _names_read(argument)) is not None:
            access = read_access(argument)
            for name in names:
                looped = loops and any(d == depth and v == name for d, v in self.loop_vars)
                if name in LAYER_NAMES or looped:
                    continue  # (a loop variable's value is its iteration's: no place wrote it)
                if name in params:
                    _merge(found, self.argument_origins(name, depth, memo), _step(access, name))
                else:
                    _merge(found, dict.fromkeys(self.var_origin(name), ""), _step(access, name))
        return found

    def var_origin(self, name: str) -> list[Note]:
        """``name is integer 0, set at …`` for the var ``name`` (none for a var that failed)."""
        return var_origin(self.doc, self.vars_env, name)

    def param_error(self, param: Param, value: Any, path: SpecPath, hint: str | None = None) -> bool:
        """Report ``value`` at ``path`` if ``param`` refuses it; whether it did. A bad element of
        a list the spec wrote out (``kernel_size: [3, -3]``) is located at the element itself;
        one an expression computed is named in the message at the parameter."""
        found = param.problem(value)
        if found is None:
            return False
        message, index = found
        element = (*path, *index)
        if index and element in self.doc.locs:
            self.error(message, element, code="parameter", hint=hint)
        else:
            self.error(param.check(value) or message, path, code="parameter", hint=hint)
        return True

    def loop_notes(self, path: SpecPath, every: bool = False) -> list[Note]:
        """For an error on the ``${…}`` written at ``path`` that reads the variable of a repeat
        it is in (in the same block body, or outside any block), the iteration it failed in,
        innermost repeat first: ``in the repeat at model[0] (r.yaml:5:5), in iteration i = 2``.
        A block call's note says the iterations it is made in (:meth:`call_notes`); an error in
        a repeat's own body said nothing of which iteration computed the bad value.

        ``every``: each repeat the error is in, whatever it reads (a shape error: the shape a
        layer receives changes from one iteration to the next); one without ``as:`` is counted
        from 0, as a loop variable would be (``in iteration 3 of 0–4``)."""
        text = _expression_text(self.data, path)
        reads = set(_names_read(text) or ()) if text is not None else set()
        depth = len(self.call_stack)
        notes: list[Note] = []
        loops = zip(self.loop_vars, self.loop_values, self.loop_paths, self.loop_times, strict=True)
        for (level, var), value, where, times in loops:
            if level == depth and ((var and var in reads) or every):
                loc = self.doc.key_loc(where)
                shown = f" ({loc})" if loc else ""
                unnamed = f", in iteration {value} of 0–{times - 1}"
                details = call_details([(var, value)], []) if var else unnamed
                text = f"in the repeat at {format_path(where[:-1])}{shown}{details}"
                notes.append(Note(text, loc, format_path(where)))
        return notes[::-1]

    def call_notes(self, path: SpecPath | None = None) -> list[Note]:
        """One note per block call being walked, innermost first. Each says the iteration of
        the repeats the call is made in (``i = 2``) and, for an error on the value at
        ``path``, the arguments of the call that the value reads, outwards through the
        arguments that read the caller's, where they are computed from an iteration
        (``k = 23`` of ``k: ${1 + i * 11}``): no place in a file wrote such a value, which the
        origin notes say of the others (:meth:`origin_notes`)."""
        written = [self.written_args(depth) for depth in range(1, len(self.call_stack) + 1)]
        looped: list[set[str]] = []  # per call, outermost first: its arguments that an iteration computes
        for depth, arguments in enumerate(written, start=1):
            loops, _ = self.call_frames[depth - 1]
            outer = {name for name, _ in loops} | (looped[-1] if looped else set())
            looped.append({p for p, names in arguments.items() if names & outer})
        reads = self.names_at(path) if path is not None else set()
        notes: list[Note] = []
        for depth in range(len(self.call_stack), 0, -1):
            name, site = self.call_stack[depth - 1], self.call_sites[depth - 1]
            loops, args = self.call_frames[depth - 1]
            shown = [p for p in self.block_params(name) if p in reads and p in looped[depth - 1]]
            values = [(p, args[p]) for p in shown if p in args and args[p] is not POISONED]
            notes.append(call_note(name, site, self.loc(site), call_details(loops, values)))
            reads = {n for p in reads for n in written[depth - 1].get(p, ())}
        return notes + self.outer_notes

    def written_args(self, depth: int) -> dict[str, set[str]]:
        """The names each argument written at the call ``depth`` (1: the outermost) reads."""
        name, site = self.call_stack[depth - 1], self.call_sites[depth - 1]
        body = value_at(self.data, (*site, name))
        if not isinstance(body, dict):  # (a scalar argument: the block's one parameter)
            single = scalar_param(self.block_params(name)) if body is not None else None
            body = {single: body} if single is not None else {}
        return {
            p: set(_names_read(text) or ())
            for p, text in body.items()
            if isinstance(p, str) and is_expression(text)
        }

    def names_at(self, path: SpecPath) -> set[str]:
        """The names the ``${…}`` written at ``path`` reads, when ``path`` is in the body of the
        innermost block being called (what its arguments are bound to)."""
        if not self.call_stack or len(path) < 2 or path[:2] != ("blocks", self.call_stack[-1]):
            return set()
        text = _expression_text(self.data, path)
        return set(_names_read(text) or ()) if text is not None else set()

    def push_call(self, name: str, site: SpecPath, args: dict[str, Any]) -> None:
        """Enter the call of block ``name`` made by the item at ``site`` with ``args``."""
        depth = len(self.call_stack)
        loops = {
            var: value
            for (d, var), value in zip(self.loop_vars, self.loop_values, strict=True)
            if d == depth and var  # (a repeat without `as:` has no variable to show)
        }
        self.call_stack.append(name)
        self.call_sites.append(site)
        self.call_frames.append((tuple(loops.items()), args))

    def pop_call(self) -> None:
        self.call_stack.pop()
        self.call_sites.pop()
        self.call_frames.pop()

    def next_context(self) -> int:
        """A new context for one block call or repeat iteration: the same error found again in
        another context is the same mistake (reported once, with each call site)."""
        self.contexts += 1
        return self.contexts

    def evaluate(self, value: Any, env: dict[str, Any], path: SpecPath) -> tuple[bool, Any]:
        """Substitute expressions in ``value`` (recursively); ``(ok, result)``. An expression
        that reads a poisoned name fails silently: its cause has been reported. Inside a list
        or mapping each element is substituted on its own, so every failing element is
        reported at its own path (``kernel_size[1]``) with its own text."""
        if value is None or type(value) in _PLAIN_SCALARS or (type(value) is str and "${" not in value):
            return True, value  # most parameters are written out: nothing to substitute
        if type(value) is str:  # most expressions
            return self.evaluate_text(value, env, path)
        return self.evaluate_tree(value, env, path)

    def evaluate_text(self, text: str, env: dict[str, Any], path: SpecPath) -> tuple[bool, Any]:
        """One string with ``${…}`` in it, substituted; an error is reported at ``path``."""
        try:
            result = substitute(text, env)
            if isinstance(result, (list, dict)):
                _check_value_size(result)
            return True, result
        except Poisoned as exc:
            # a safety net: poison without a cause is a bug (a flat input's error, held back
            # until every layer is known, is a cause already)
            if not self.diags.has_errors and not self.flat_input_errors:
                self.error(exc.message, path, code="expression")
            return False, None
        except ExpressionError as exc:
            if self.reads_refused_name(text):
                return False, None  # its declaration was refused: that error says it
            prefix = f"in {text!r}: " if len(text) < 80 else ""
            self.error(prefix + exc.message, path, code="expression", hint=exc.hint)
            return False, None

    def evaluate_tree(self, value: Any, env: dict[str, Any], path: SpecPath) -> tuple[bool, Any]:
        """:meth:`evaluate` for a list or mapping (or a scalar inside one): each element at
        ``(*path, index)`` or ``(*path, key)``; a size error is reported at the container."""
        if is_expression(value):
            return self.evaluate_text(value, env, path)
        if not isinstance(value, (list, dict)):
            return True, value
        if type(value) is list and len(value) < MAX_VALUE_NODES and all(type(v) in _WRITTEN for v in value):
            return True, list(value)  # a short list written out (shapes, strides): a copy, as built
        try:
            if len(value) > MAX_VALUE_NODES:
                _check_value_size(value)  # refuse before evaluating thousands of expressions
        except ExpressionError as exc:
            self.error(exc.message, path, code="expression", hint=exc.hint)
            return False, None
        ok = True
        result: Any
        if isinstance(value, list):
            result = []
            for index, item in enumerate(value):
                good, out = self.evaluate_tree(item, env, (*path, index))
                ok = good and ok
                result.append(out)
        else:
            result = {}
            for key, item in value.items():
                good, out = self.evaluate_tree(item, env, (*path, key))
                ok = good and ok
                result[key] = out
        if not ok:
            return False, None
        try:
            _check_value_size(result)
        except ExpressionError as exc:
            self.error(exc.message, path, code="expression", hint=exc.hint)
            return False, None
        return True, result

    def reads_refused_name(self, value: Any) -> bool:
        """Whether ``value`` (a failed expression) mentions a var whose name was refused."""
        if not self.refused_names:
            return False
        text = value if isinstance(value, str) else repr(value)
        return any(re.search(rf"\b{re.escape(name)}\b", text) for name in self.refused_names)

    def _substitute(self, value: Any, env: dict[str, Any]) -> Any:
        if isinstance(value, (list, dict)) and len(value) > MAX_VALUE_NODES:
            _check_value_size(value)  # refuse before evaluating thousands of expressions
        if isinstance(value, list):
            result: Any = [self._substitute(v, env) for v in value]
        elif isinstance(value, dict):
            result = {k: self._substitute(v, env) for k, v in value.items()}
        else:
            result = substitute(value, env) if is_expression(value) else value
        if isinstance(result, (list, dict)):
            _check_value_size(result)
        return result

    # -- entry point -----------------------------------------------------------------------
    def resolve(self) -> ModelIR:
        name = self.data.get("name")
        reported = any(d.path == "name" for d in self.diags.errors)  # by the schema, which waits for us
        if isinstance(name, str) and not (IDENTIFIER.fullmatch(name) and name.isascii()) and not reported:
            # The schema's pattern uses `$`, which Python's re lets match before a final newline.
            self.error(f"expected an identifier ([A-Za-z_][A-Za-z0-9_]*); received {name!r}", ("name",))
        env = self.vars_env = self.resolve_vars()
        self.check_blocks()
        input_shape = self.resolve_input(env)
        self.shapes[self.input_name] = input_shape
        self.spec_defaults = self.resolve_defaults(self.data.get("defaults"), ("defaults",), env, {})
        top = Scope(self.input_name, {}, None, "", env, (), self.spec_defaults)
        model = self.data.get("model") or []
        last = self.walk_list(model, ("model",), top, self.input_name)
        if model and not self.nodes and not self.diags.errors:
            self.error(
                "expected at least one layer; every item of `model` was skipped (`when` or `repeat: 0`)",
                ("model",),
                code="empty-model",
                hint="check the `when` conditions and `repeat.times`",
            )
        outputs = self.resolve_outputs(top, last)
        augmentation = self.resolve_augmentation(env, input_shape)
        self.report_flat_input(input_shape)
        if not self.diags.errors:  # after an error, unreached layers are a symptom, not news
            self.prune(outputs)
        from cnnspec.spec.dormant import called_blocks, check_dormant  # (they read this module's constants)

        # Blocks called only where this compilation does not expand (a false `when`, a repeat
        # of 0 times), or only by such blocks, are used: just not this time.
        self.used_blocks |= called_blocks(self, self.dormant)
        unused = [] if self.diags.has_errors else [n for n in self.blocks if n not in self.used_blocks]
        for name in unused:  # (after an error a block may be unused only because its call failed)
            loc = self.doc.key_loc(("blocks", name))
            if loc is not None and loc.file != self.doc.file:
                continue  # a `use:` library's (or a base's): for other specs, in their context
            block = self.blocks[name]
            self.dormant.append(
                (block.get("layers") if isinstance(block, dict) else None, ("blocks", name, "layers"))
            )
            self.diags.warning(
                f"block {name!r} is defined but never used",
                loc,
                format_path(("blocks", name)),
                code="unused-block",
            )
        check_dormant(self, self.dormant)
        if not self.diags.has_errors:
            self.warn_unread_vars()
            self.warn_unread_params()
        ir = ModelIR(
            name=str(self.data.get("name", "model")),
            description=str(self.data.get("description", "")),
            input_name=self.input_name,
            input_shape=input_shape or (),
            nodes=self.nodes,
            outputs=tuple(outputs),
            augmentation=augmentation,
            sections={k: self.data[k] for k in ("data", "training", "runtime") if k in self.data},
            defaulted=self.defaulted,
        )
        ir.tree = self.finish_tree(ir)
        if self.deferred:
            ir.pending_tree = functools.partial(fill_pending, self.deferred)
        return ir

    def warn_unread_vars(self) -> None:
        """Warn about each var that no expression reads. Setting a misspelt var (``clases``
        beside the ``classes`` a zoo model declares) changes nothing, so say so, with the
        read var it was probably meant to be. So does setting a var whose every ``${…}`` reads
        a block parameter or a loop variable of its name: the warning names them, where they
        are declared (``--set vars.w=64`` would otherwise change nothing without a word)."""
        raw = self.data.get("vars") or {}
        unread = unread_vars(self.data)
        read = [name for name in raw if isinstance(name, str) and name not in unread]
        for name, shadows in unread.items():
            loc = self.doc.key_loc(("vars", name))
            if loc is not None and loc.file != self.doc.file and not loc.file.startswith(COMMAND_LINE_PREFIX):
                continue  # the extended file's var, which this spec no longer reads: not a typo of its own
            if not shadows:
                self.diags.warning(
                    f"var {name!r} is set but never read",
                    loc,
                    format_path(("vars", name)),
                    code="unused-var",
                    hint=did_you_mean(name, read) or f"read it with `${{{name}}}`, or remove it",
                )
                continue
            notes = self.shadow_notes(shadows)
            what = " and ".join(shadow.what for shadow in shadows)
            self.diags.warning(
                f"var {name!r} is set but never read: it is shadowed by {what}, which every "
                f"`${{{name}}}` reads instead",
                loc,
                format_path(("vars", name)),
                code="unused-var",
                hint="rename the var, or what shadows it where the var is meant; or remove the var",
                notes=notes,
            )

    def shadow_notes(self, shadows: tuple[Shadow, ...] | list[Shadow]) -> list[Note]:
        """A note for each loop variable or block parameter (``shadows``) that hides a var or a
        block parameter of its name, saying where it is declared (the unused-var and
        unused-param warnings)."""
        notes = []
        for shadow in shadows:
            where = self.doc.key_loc(shadow.path)
            shown = f" ({where})" if where is not None else ""
            notes.append(
                Note(
                    f"{shadow.what} is declared at {format_path(shadow.path)}{shown}",
                    where,
                    format_path(shadow.path),
                )
            )
        return notes

    def warn_unread_params(self) -> None:
        """Warn about each parameter of the spec's own blocks (a ``use:`` library's are its own
        to check) that no expression of its block reads: every call's argument for it changes
        nothing. One whose every ``${…}`` reads a loop variable of its name gets a warning
        naming that variable and where it is declared, as a var hidden so does."""
        for name, block in self.blocks.items():
            loc = self.doc.key_loc(("blocks", name)) if isinstance(name, str) else None
            if loc is None or loc.file != self.doc.file:
                continue  # a library's (or a base's) block: warned of where it is declared
            unread = unread_params(block, name)
            # A name the block reads that it declares nowhere is likely the parameter misspelt.
            stray = names_read(block) - set(block.get("params") or ()) if unread else set()
            for pname, shadows in unread.items():
                path = ("blocks", name, "params", pname)
                self.unread_param_warning(name, pname, shadows, path, closest(pname, stray))

    def unread_param_warning(
        self, block: str, pname: str, shadows: tuple[Shadow, ...], path: SpecPath, meant: str | None
    ) -> None:
        """Warn that parameter ``pname`` of ``block`` (declared at ``path``) is never read,
        with the loop variables (``shadows``) that every ``${pname}`` reads instead, or the
        name (``meant``) the block reads where it probably meant this one."""
        loc = self.doc.key_loc(path)
        what = f"parameter {pname!r} of block `{block}`"
        if not shadows:
            self.diags.warning(
                f"{what} is never read: every call's argument for it changes nothing",
                loc,
                format_path(path),
                code="unused-param",
                hint=f"the block reads `${{{meant}}}`: did you mean `${{{pname}}}` there?"
                if meant is not None
                else f"read it with `${{{pname}}}` in the block, or remove it (and the calls' "
                "arguments for it)",
            )
            return
        notes = self.shadow_notes(shadows)
        hiders = " and ".join(shadow.what for shadow in shadows)
        self.diags.warning(
            f"{what} is never read: it is shadowed by {hiders}, which every `${{{pname}}}` reads instead",
            loc,
            format_path(path),
            code="unused-param",
            hint="rename the loop variable (`as:`) or the parameter where the parameter is meant; "
            "or remove the parameter",
            notes=notes,
        )

    def resolve_vars(self) -> dict[str, Any]:
        """Evaluate ``vars`` in dependency order (linear time: a chain of thousands of vars
        must not take quadratic passes); vars on or behind a cycle are errors."""
        raw: dict[str, Any] = self.data.get("vars") or {}
        # Filled in dependency order: an error in a var names the earlier vars it read.
        env: dict[str, Any] = {}
        self.vars_env = env
        for name in raw:
            problem = unreadable_name(name) if isinstance(name, str) else None
            if problem:
                self.error(
                    problem, ("vars", name), key=True, code="identifier", hint=f"rename it, e.g. `{name}_`"
                )
                self.refused_names.add(name)
        order, cyclic = var_order(raw)
        check_choice = self.var_choices_check()
        for name in order:
            if name in self.refused_names:
                env[name] = POISONED
                continue
            try:
                result = self._substitute(raw[name], env)
            except Poisoned:
                result = POISONED  # reads a var that failed: that one was reported
            except ExpressionError as exc:
                if not self.reads_refused_name(raw[name]):
                    self.error(exc.message, ("vars", name), code="expression", hint=exc.hint)
                result = POISONED
            # (before the vars that read it: they would fail again, or hold what it misled them to)
            env[name] = result if check_choice(name, result) else POISONED
        self.tree.vars = [Var(name, raw[name], env[name], self.loc(("vars", name))) for name in order]
        for name in cyclic:
            env[name] = POISONED
        for chain in var_cycles(raw, cyclic):
            self.error(
                f"variable {chain[0]!r} depends on itself ({_chain_text(chain)})",
                ("vars", chain[0]),
                code="cycle",
            )
        return env

    def var_choices_check(self) -> Callable[[str, Any], bool]:
        """Report a malformed ``var_choices`` declaration (:mod:`cnnspec.spec.varchoices`) now,
        and return the check of one var's value: whether it may keep it, else reported where
        the value was set (``--set``, an extending file, a backbone item, a variants row). A
        variants row reported with the declaration is not reported again for the variant
        being built."""
        reported: set[Loc | None] = set()
        malformed: set[Any] = set()
        for problem in varchoices.declaration_problems(self.data):
            self.error(problem.message, problem.path, key=problem.key, code="var-choice", hint=problem.hint)
            reported.add(self.doc.loc(problem.path))
            if problem.path[0] == varchoices.KEY:
                malformed.add(problem.path[1])
        choices = varchoices.declared(self.data)

        def check(name: str, value: Any) -> bool:
            if value is POISONED or name not in choices or name in malformed:
                return True  # failed where it was set, has no choices, or they were reported
            found = varchoices.refusal(name, value, choices[name])
            if found is not None and self.doc.loc(found.path) not in reported:
                self.error(found.message, found.path, code="var-choice", hint=found.hint)
            return found is None

        return check

    def resolve_defaults(
        self, raw: Any, path: SpecPath, env: dict[str, Any], outer: dict[str, dict[str, tuple[Any, Any]]]
    ) -> dict[str, dict[str, tuple[Any, Any]]]:
        """Per-kind parameter defaults (``defaults: {batch_norm: {momentum: 0.99}}``) over
        ``outer``'s: ``{kind: {param: (value, as written)}}``. Each value is evaluated in ``env``
        (the vars, or a block call's arguments) and checked against the kind's parameter. One
        that fails (reported) is kept as ``(POISONED, as written)``, misspelt names of a kind's
        required parameters too: the layers that rely on it stay silent instead of reporting it
        missing, and a block's failed default does not fall back to the spec-level one."""
        if not raw:
            return outer
        merged = {kind: dict(params) for kind, params in outer.items()}
        if not isinstance(raw, dict):
            self.error(
                f"expected a mapping of layer kinds to parameters; received {raw!r}",
                path,
                code="defaults",
                hint="e.g. defaults: {batch_norm: {momentum: 0.99}}",
            )
            return outer
        for kind_name, params in raw.items():
            kpath = (*path, kind_name)
            kind = REGISTRY.get(kind_name) if isinstance(kind_name, str) else None
            if kind is None:
                self.error(
                    f"unknown layer kind {kind_name!r} in `defaults`",
                    kpath,
                    key=True,
                    code="unknown-kind",
                    hint=did_you_mean(str(kind_name), REGISTRY)
                    or "defaults are per layer kind (blocks take parameter defaults in `params`)",
                )
                meant_kind = closest(str(kind_name), REGISTRY)
                if meant_kind is not None and isinstance(params, dict):
                    # the defaults meant for that kind: one mistake, not also a missing parameter
                    # of each of its layers (their values are unknown, as after a failed default)
                    into = merged.setdefault(meant_kind, {})
                    for pname in params:
                        if isinstance(pname, str) and pname in REGISTRY[meant_kind].param_index:
                            into[pname] = (POISONED, POISONED)
                continue
            if not isinstance(params, dict):
                self.error(
                    f"expected a mapping of `{kind_name}` parameters; received {params!r}",
                    kpath,
                    code="defaults",
                    hint=f"e.g. defaults: {{{kind_name}: {{…: …}}}}",
                )
                continue
            into = merged.setdefault(kind_name, {})
            missing = [name for name in kind.required_names if name not in params]
            for meant in meant_parameters(params, kind.param_index, missing):
                into[meant] = (POISONED, POISONED)  # its unknown-parameter error says it
            for pname, value in params.items():
                ppath = (*kpath, pname)
                param = kind.param_index.get(pname)
                if param is None:
                    beside = self.beside(ppath, params)
                    synonym = param_synonym(pname, kind.param_index, beside)
                    self.error(
                        f"unknown parameter {pname!r} for `{kind_name}`",
                        ppath,
                        key=True,
                        code="unknown-parameter",
                        hint=(
                            f"did you mean `{synonym}`?"
                            if synonym is not None
                            else key_hint(str(pname), kind.param_index, beside)
                        )
                        or "parameters: " + (", ".join(kind.param_index) or "none"),
                    )
                    continue
                good, evaluated = self.evaluate(value, env, ppath)
                if not good:
                    into[pname] = (POISONED, value)
                    continue
                if self.param_error(param, evaluated, ppath):
                    into[pname] = (POISONED, value)
                    continue
                # Spec-level values are written as literals (a block parameter could shadow a
                # var of the same name in the emitted function); a block's keep their text.
                into[pname] = (evaluated, evaluated if not outer and path[0] == "defaults" else value)
        return merged

    def resolve_input(self, env: dict[str, Any]) -> Shape | None:
        spec_input = self.data.get("input") or {}
        if "name" in spec_input:
            self.input_name = spec_input["name"]
        if any(d.path.startswith("input.shape") for d in (*self.diags.errors, *self.diags.silenced)):
            return None  # the schema refused it (and waits for us): the shapes after it stay silent
        ok, shape = self.evaluate(spec_input.get("shape"), env, ("input", "shape"))
        if not ok:
            return None
        if (
            not isinstance(shape, list)
            or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= MAX_SIZE for d in shape)
        ):
            self.error(
                f"expected a list of positive integers up to {MAX_SIZE:,}; received {shape!r}",
                ("input", "shape"),
                hint="for 32×32 RGB images write shape: [32, 32, 3]",
            )
            return None
        return tuple(shape)

    def resolve_outputs(self, top: Scope, last: str) -> list[str]:
        outputs = self.data.get("outputs")
        if outputs is None:
            return [last]
        names: list[str] = []
        where: list[int] = []  # (each name's place in `outputs`)
        said: list[Any] = []  # (and the reference that named it there)
        for i, ref in enumerate(outputs if isinstance(outputs, list) else [outputs]):
            if self.diags.full:
                break
            ok, ref = self.evaluate(ref, top.env, ("outputs", i))  # `${o}`, as `inputs:` reads it
            if not ok:
                continue
            tensor = top.lookup(ref) if isinstance(ref, str) else None
            if ref == self.input_name and tensor is None:
                tensor = top.entry  # the model input's own name, as in `inputs:`
            if tensor is None and (self.lost_ids or self.failed_call(ref, top)):
                continue  # its cause has been reported
            if tensor is None:
                hint = self.hidden_hint(ref, top) or did_you_mean(str(ref), top.visible())
                self.error(f"unknown layer id {ref!r}", ("outputs", i), code="reference", hint=hint)
            elif tensor in names and tensor != UNKNOWN:  # (items whose errors are reported: no twins)
                # Keras would build one output twice, under one name: `train` then asked the
                # data for a target per entry, and found out only after loading it
                first = where[names.index(tensor)]
                same = "" if said[names.index(tensor)] == ref else f" (as {said[names.index(tensor)]!r})"
                self.error(
                    f"expected each output once; {ref!r} is listed already at outputs[{first}]{same}",
                    ("outputs", i),
                    code="reference",
                    hint="remove this entry (to train a head on two targets, give it two dense layers, "
                    "each with an id of its own)",
                )
            else:
                names.append(tensor)
                where.append(i)
                said.append(ref)
        for i, name in zip(where, names, strict=True):
            if len(names) > 1 and (name == "val" or name.startswith("val_")):
                # Keras logs each output's figures as NAME_loss, NAME_mae, and the validation
                # ones with `val_` before: `val_loss` was this output's training loss and the
                # total validation loss at once, and early stopping on val_mae read training MAE
                self.error(
                    f"expected an output not named `val` or `val_…`; {name!r} makes "
                    f"Keras log its training figures as {name}_loss, {name}_…, which read as "
                    "validation figures",
                    ("outputs", i),
                    code="reference",
                    hint="give that layer another id (value, values, …)",
                )
        return names or [last]

    def check_line(self, augmentation: list[Node]) -> None:
        """Refuse an augmentation that is not one line of layers, each on the one before (an
        ``inputs:`` to an earlier id or the input): it is built as a Sequential, which applied
        every layer in order and let such a branch be the one that counted."""
        previous = self.input_name
        for node in augmentation:
            if node.inputs != (previous,):
                self.diags.error(
                    f"expected each augmentation layer to take the one before it; {node.name!r} "
                    f"reads {', '.join(repr(i) for i in node.inputs)}",
                    node.loc,
                    node.path,
                    hint="augmentation is one line of layers: leave out `inputs` there (and the ids "
                    "it would read)",
                )
                return
            previous = node.name

    def resolve_augmentation(self, env: dict[str, Any], input_shape: Shape | None) -> list[Node]:
        items = self.data.get("augmentation") or []
        if not items:
            return []
        model_nodes = self.nodes
        self.nodes = []
        scope = Scope(self.input_name, {}, None, "augment_", env, ("augmentation",), self.spec_defaults)
        current = self.input_name
        depth = self.record.sink(self.tree.augmentation)
        for index, item in enumerate(items):
            path: SpecPath = ("augmentation", index)
            kind = next(iter(item), None) if isinstance(item, dict) else item
            if isinstance(kind, str) and kind in REGISTRY and not REGISTRY[kind].preprocessing:
                self.error(
                    f"expected an augmentation layer; received {kind!r}",
                    path,
                    hint="augmentation takes random_* layers (and rescaling/resizing); "
                    "put other layers in `model`",
                )
                continue
            start = len(self.nodes)
            current = self.walk_item(item, path, scope, current)
            # A block, repeat or combinator passes the check above: what it made is checked
            # here. The augmentation is built as a straight line of these layers (a Sequential),
            # so a weighted layer would be applied untrained and a merge would lose its branch.
            foreign = next((n for n in self.nodes[start:] if not _augments(n.kind)), None)
            if foreign is not None:
                self.error(
                    f"expected augmentation layers only; this item makes the layer {foreign.name!r} "
                    f"({foreign.kind}), which augmentation cannot apply",
                    path,
                    hint="augmentation takes random_* layers (and rescaling/resizing) in a line, also "
                    "through blocks and repeats; put other layers, and branches, in `model`",
                    # the item may be a block call: say where the layer itself is written
                    also=(
                        Note(
                            f"{foreign.name!r} is written at {foreign.path} ({foreign.loc})",
                            foreign.loc,
                            foreign.path,
                        ),
                    )
                    if foreign.loc is not None and foreign.path != format_path(path)
                    else (),
                )
        self.record.close_list(depth)
        augmentation, self.nodes = self.nodes, model_nodes
        if all(_augments(node.kind) for node in augmentation):  # (else said at its item above)
            self.check_line(augmentation)
        out = self.shapes.get(current)
        if out is not None and input_shape is not None and out != input_shape:
            self.error(
                f"expected augmentation to keep the input shape {list(input_shape)}; it produces {list(out)}",
                ("augmentation",),
                hint="put resizing in `model` (it also acts at inference)",
            )
        return augmentation

    def prune(self, outputs: list[str]) -> None:
        needed = ancestors(self.nodes, outputs)
        kept = []
        for node in self.nodes:
            if node.name in needed:
                kept.append(node)
            else:
                self.pruned = True
                self.diags.warning(
                    f"layer {node.name!r} does not lead to any model output; it is left out",
                    node.loc,
                    node.path,
                    code="dead-layer",
                    hint="reference it in `inputs` of a later layer or in `outputs`",
                )
        self.nodes = kept

    # -- layer lists -----------------------------------------------------------------------
    def walk_list(
        self, items: Any, path: SpecPath, scope: Scope, current: str, stop: Callable[[], bool] | None = None
    ) -> str:
        """Walk a layer list; ``stop``: asked after each item whether the rest is needed (a
        backbone cut at an earlier layer: the rest is left out, its mistakes with it)."""
        if not isinstance(items, list):
            self.error(
                f"expected a list of layers; received {type(items).__name__}",
                path,
                hint="write each layer as a list item starting with `- `",
            )
            return UNKNOWN
        depth = self.record.open_list(path)
        for index, item in enumerate(items):
            current = self.walk_item(item, (*path, index), scope, current)
            if self.too_many:
                self.record.close_list(depth)
                return UNKNOWN
            if stop is not None and stop():
                break
        self.record.close_list(depth)
        return current

    def tick(self, path: SpecPath) -> bool:
        """Count one expansion step; ``False`` once the step budget or the error limit is spent
        (after one located error), so hostile nesting of repeats cannot hang the resolver."""
        if self.too_many:
            return False
        self.steps += 1
        if self.steps > MAX_STEPS:
            self.error(
                f"expected at most {MAX_STEPS:,} expansion steps (layer items and repeat iterations); "
                "this spec needs more",
                path,
                code="too-large",
                hint="check `repeat.times`, nested repeats and blocks that call blocks",
            )
            self.too_many = True
        elif self.diags.full:
            self.too_many = True
        return not self.too_many

    def several_kinds(self, keys: list[str], path: SpecPath) -> None:
        """Report an item with no layer kind or several (``keys``). A kind that a ``--set``
        option added beside the file's (``--set model[0].dense.units=3`` on a conv2d item) is
        that option's mistake: the error is located there, with a note on the file's item."""
        received = ", ".join(keys) if keys else "none"
        message = f"expected exactly one layer kind per item; received {received}"
        hint = (
            "start a new list item (`- `) for each layer; `id`, `inputs` and `when` may stand beside the kind"
        )
        item_loc = self.loc(path)
        added = [
            (key, loc)
            for key in keys
            if (loc := self.doc.key_loc((*path, key))) is not None
            and loc.file.startswith(COMMAND_LINE_PREFIX)
        ]
        if not added or item_loc is None or item_loc.file.startswith(COMMAND_LINE_PREFIX):
            self.error(message, path, code="layer-item", hint=hint)
            return
        written = [k for k in keys if k not in dict(added)]
        item_note = Note(
            f"{format_path(path)} is written at {item_loc} as {', '.join(written)}",
            item_loc,
            format_path(path),
        )
        self.diags.error(
            message,
            added[0][1],
            format_path(path),
            code="layer-item",
            hint=f"--set changes a value of the item's {', '.join(written)}; to replace the layer, set the "
            f"whole item: --set '{format_path(path)}={{{added[0][0]}: …}}'",
            notes=[*self.call_notes(), item_note],
            context=self.context,
        )

    def walk_item(self, item: Any, path: SpecPath, scope: Scope, current: str) -> str:
        if not self.tick(path):
            return UNKNOWN
        form = self.item_forms.get(id(item)) if type(item) is dict else None
        if form is not None and form[0] is item:  # an item walked before (another call, iteration)
            _, kind_key, body, extras = form
        elif isinstance(item, str):
            kind_key, body, extras = item, None, {}
        elif isinstance(item, dict):
            keys = [k for k in item if k not in ITEM_EXTRAS]
            if not keys and any(k in self.bad_blocks for k in item):
                return UNKNOWN  # a call of a block named `inputs`: its declaration was refused
            if len(keys) != 1:
                self.several_kinds(keys, path)
                # Its `id` still names a tensor: a later reference to it is no second mistake.
                return self.unknown_item({k: item[k] for k in ITEM_EXTRAS if k in item}, scope)
            kind_key = keys[0]
            body = item[kind_key]
            extras = {k: item[k] for k in ITEM_EXTRAS if k in item}
            if type(item) is dict:  # read-only from here on: the next walk of it reuses this
                self.item_forms[id(item)] = (item, kind_key, body, extras)
        else:
            self.error(
                f"expected a layer (a kind name or a mapping); received {item!r}",
                path,
                code="layer-item",
            )
            return UNKNOWN
        self.record.begin_item(path, extras)

        in_shape = self.shapes.get(current)
        env = self.layer_env(scope.env, in_shape)

        if "when" in extras:
            ok, condition = self.evaluate(extras["when"], env, (*path, "when"))
            if not ok:
                return self.failed_item(item, path, extras, scope)
            if not isinstance(condition, bool):
                self.error(
                    f"expected true or false; received {condition!r}",
                    (*path, "when"),
                    hint='write a comparison, e.g. when: "${stride == 1}"',
                )
                return self.failed_item(item, path, extras, scope)
            self.record.condition(extras["when"], condition, path, kind_key)
            if self.site_logs:
                self.log_site(scope, None, "when", extras["when"], env, condition)
            if not condition:
                self.dormant.append((item, path))  # (a block it calls is used: called_blocks)
                self.note_skipped(extras, path, scope, env)
                if kind_key == "repeat" and isinstance(body, dict) and isinstance(body.get("carry"), dict):
                    for name in body["carry"]:  # ids of this list after the loop, had it run
                        if isinstance(name, str) and name not in scope.ids:
                            scope.skipped.setdefault(name, (*path, "repeat", "carry", name))
                return current

        # (an item walked before, by another call or iteration, stays expanded if this walk fails)
        first_walk = id(item) not in self.expanded
        self.expanded.add(id(item))
        item_id = self.item_id(extras, path, scope, env)
        if item_id is None and "id" in extras:
            self.unknown_item(extras, scope)
        if kind_key in self.blocks:
            self.used_blocks.add(kind_key)  # even when the call fails: it is not "never used"
        if isinstance(extras.get("inputs"), dict) and kind_key in self.blocks:
            inputs = self.named_inputs(kind_key, extras["inputs"], path, scope, env)
        elif isinstance(extras.get("inputs"), dict):
            self.error(
                "expected a list of ids; received a mapping (only a block call binds its inputs by name)",
                (*path, "inputs"),
                code="inputs",
                hint="write inputs: [a, b]",
            )
            inputs = None
        else:
            inputs = self.item_inputs(extras, path, scope, env, current)
        if inputs is None:
            return self.failed_item(item, path, extras, scope, first_walk)
        if inputs != [current] and inputs:
            env = self.layer_env(scope.env, self.shapes.get(inputs[0]))

        trainable = self.item_trainable(extras, path, env)
        if trainable is POISONED:
            return self.failed_item(item, path, extras, scope, first_walk)
        with self.trainable_scope(trainable):
            kpath = (*path, kind_key)
            if kind_key in COMBINATORS:
                if len(inputs) != 1:
                    self.error(
                        f"`{kind_key}` takes one input; received {len(inputs)}",
                        (*path, "inputs"),
                        code="inputs",
                        hint="merge them first, or make the part a block with several `inputs`",
                    )
                    return self.failed_item(item, path, extras, scope, first_walk)
                if self.too_deep(kpath):
                    return self.unknown_item(extras, scope)
                handler = {"residual": self.residual, "parallel": self.parallel, "repeat": self.repeat}
                element = self.record.container(self.tree_element(kind_key, body, kpath, inputs[0]))
                self.enter_nesting()
                try:
                    result = handler[kind_key](body, kpath, scope, inputs[0], item_id, env)
                finally:
                    self.nesting -= 1
                self.record.close(element, result)
            elif kind_key == BACKBONE:
                if len(inputs) != 1:
                    self.error(
                        f"a backbone takes one input; received {len(inputs)}",
                        (*path, "inputs"),
                        code="inputs",
                    )
                    return self.unknown_item(extras, scope)
                element = self.record.container(Backbone(entry=inputs[0], path=kpath))
                self.pruned = True  # a backbone's cut leaves out its layers (finish_tree marks them)
                result = resolve_backbone(self, body, kpath, scope, inputs[0], item_id, env)
                self.record.close(element, result)
            elif kind_key in REGISTRY and kind_key in self.bad_blocks:
                # a block named after the kind (refused at its declaration): the item meant to
                # call it is no layer with missing parameters too
                result = self.unknown_item(extras, scope)
            elif kind_key in REGISTRY:
                result = self.layer(REGISTRY[kind_key], body, kpath, scope, inputs, item_id, env)
            elif kind_key in self.blocks:
                declared = self.block_inputs(kind_key)
                wanted = len(declared) if declared else 1
                if len(inputs) != wanted:
                    names = ", ".join(declared) if declared else "one tensor"
                    given = "the previous layer only" if "inputs" not in extras else f"{len(inputs)}"
                    self.error(
                        f"block `{kind_key}` takes {wanted} input{'s' if wanted != 1 else ''} ({names}); "
                        f"received {given}",
                        (*path, "inputs") if "inputs" in extras else kpath,
                        code="inputs",
                        hint=f"write inputs: [{', '.join(declared or ('a',))}] with ids of earlier layers"
                        if declared
                        else f"declare the block's inputs (blocks: {kind_key}: inputs: [a, b]) "
                        "to pass several",
                    )
                    return self.failed_item(item, path, extras, scope, first_walk)
                if self.too_deep(kpath):
                    return self.unknown_item(extras, scope)
                where = self.loc(kpath)
                call = BlockCall(kind_key, entry=inputs[0], path=kpath, loc=where, inputs=tuple(inputs))
                element = self.record.container(call)
                self.enter_nesting()
                try:
                    result = self.call_block(kind_key, body, kpath, scope, inputs, item_id, env)
                finally:
                    self.nesting -= 1
                self.record.close(element, result)
            else:
                self.unknown_kind(kind_key, body, kpath)
                result = UNKNOWN
        if item_id is not None:
            scope.ids[item_id] = result
        return result

    def failed_item(
        self, item: Any, path: SpecPath, extras: dict[str, Any], scope: Scope, first_walk: bool = True
    ) -> str:
        """An item that an error of its own (its ``when``, ``inputs`` or ``trainable``) stopped
        before its layer was read: its layer is checked as a dormant item's (the mistakes that
        need no value: a misspelt parameter, an argument the block does not declare), unless
        another walk expands it (another call of its block, another iteration)."""
        if first_walk:
            self.expanded.discard(id(item))
            if id(item) not in self.stopped:
                self.stopped.add(id(item))
                self.dormant.append((item, path))
        return self.unknown_item(extras, scope)

    def unknown_kind(self, kind_key: Any, body: Any, path: SpecPath) -> None:
        """Report the item key ``kind_key`` (its value ``body``), which names no layer kind,
        combinator or block, with the one meant."""
        choices = [*REGISTRY, *COMBINATORS, BACKBONE, *self.blocks]
        # `- dropout 0.3` is one plain string to YAML: a known kind, a blank and a value is a
        # kind whose colon was left out. "did you mean `dropout`?" would lead on to "missing
        # required parameter `rate`" instead. `- dropout:0.3` is one string too: YAML reads a
        # colon as a key's only when a blank follows it.
        plain = isinstance(kind_key, str) and body is None
        first, _, value = kind_key.partition(" ") if plain else ("", "", "")
        tight, colon, after = kind_key.partition(":") if plain else ("", "", "")
        if value.strip() and first in choices:
            hint = f"add a colon: `- {first}: {value.strip()}`"
        elif colon and after.strip() and tight.strip() in choices:
            hint = f"add a space after the colon: `- {tight.strip()}: {after.strip()}`"
        else:
            hint = did_you_mean(kind_key, choices) or "run `cnnspec schema --kinds` to list the kinds"
        self.error(f"unknown layer kind {kind_key!r}", path, key=True, code="unknown-kind", hint=hint)

    def enter_nesting(self) -> None:
        """One more block call or combinator walked inside the ones being walked."""
        self.nesting += 1
        if self.nesting > self.deepest:
            self.deepest = self.nesting

    def too_deep(self, path: SpecPath) -> bool:
        """Whether the block call or combinator at ``path`` would nest deeper than
        :data:`MAX_NESTING` (reported there, with the calls that lead to it)."""
        if self.nesting < MAX_NESTING:
            return False
        self.error(
            f"expected at most {MAX_NESTING} block calls and combinators (repeat, residual, "
            f"parallel) nested inside one another; received {self.nesting + 1} levels here",
            path,
            code="too-large",
            hint=f"the limit is {MAX_NESTING} levels along one path, and each block call, repeat, "
            "residual and parallel inside another is one (a chain of blocks that each call the next "
            "too): call the blocks one after another in one list, or write a level's layers out in "
            "place of its call",
        )
        return True

    def note_skipped(self, extras: dict[str, Any], path: SpecPath, scope: Scope, env: dict[str, Any]) -> None:
        """Remember the id of an item a false ``when`` skipped, for the hint of a reference to
        it (an ``id`` expression is evaluated quietly: the item is not there to report on)."""
        if "id" not in extras:
            return
        declared = extras["id"]
        if is_expression(declared):
            try:
                declared = substitute(declared, env)
            except ExpressionError:
                return
        if isinstance(declared, str) and declared not in scope.ids:
            scope.skipped.setdefault(declared, path)

    def item_trainable(self, extras: dict[str, Any], path: SpecPath, env: dict[str, Any]) -> Any:
        """The item's ``trainable`` flag: ``True``/``False``, ``None`` when absent (the
        enclosing item decides), ``POISONED`` after an error (reported)."""
        if "trainable" not in extras:
            return None
        ok, value = self.evaluate(extras["trainable"], env, (*path, "trainable"))
        if not ok:
            return POISONED
        if not isinstance(value, bool):
            self.error(
                f"expected true or false; received {value!r}",
                (*path, "trainable"),
                hint="trainable: false keeps the weights of this item's layers fixed in training",
            )
            return POISONED
        return value

    def trainable_scope(self, trainable: bool | None) -> contextlib.AbstractContextManager[None]:
        """Layers emitted inside take ``trainable`` (the innermost item that sets it wins)."""
        if trainable is None:
            return _NO_SCOPE  # most items: no generator-based context manager per item
        return self._trainable(trainable)

    @contextlib.contextmanager
    def _trainable(self, trainable: bool) -> Iterator[None]:
        self.trainable.append(trainable)
        try:
            yield
        finally:
            self.trainable.pop()

    @staticmethod
    def input_hint(name: str, declared: Sequence[str], refs: dict[str, Any]) -> str:
        """The hint for ``name``, no input of a block whose inputs ``refs`` binds by name: the
        input meant among those not bound yet (the only one left, when one is), else what
        the block's inputs are."""
        unbound = [d for d in declared if d not in refs]
        if len(unbound) == 1:
            return f"did you mean `{unbound[0]}`? it is the input not bound yet"
        return key_hint(name, unbound, ()) or (
            f"its inputs: {', '.join(declared)}"
            + (f" (not bound yet: {', '.join(unbound)})" if unbound else "")
        )

    def named_inputs(
        self, block: str, refs: dict[str, Any], path: SpecPath, scope: Scope, env: dict[str, Any]
    ) -> list[str] | None:
        """The tensors of a block call that binds its inputs by name (``inputs: {x: a, skip: b}``),
        in the block's declared order."""
        declared = self.block_inputs(block) or (INPUT,)
        bound: dict[str, str] = {}
        failed = False  # go on after a failure: each bad name or reference is its own mistake
        for name, ref in refs.items():
            rpath = (*path, "inputs", name)
            if name not in declared:
                self.error(
                    f"block `{block}` has no input {name!r}",
                    rpath,
                    key=True,
                    code="inputs",
                    hint=self.input_hint(str(name), declared, refs),
                )
                failed = True
                continue
            tensor = self.reference(ref, rpath, scope, env)
            if tensor is None:
                failed = True
                continue
            bound[name] = tensor
        if failed:
            return None  # a misspelt name is not also a missing one
        missing = [name for name in declared if name not in bound]
        if missing:
            self.error(
                f"missing input{'s' if len(missing) > 1 else ''} {', '.join(missing)} for block `{block}`",
                (*path, "inputs"),
                code="inputs",
                hint=f"bind every input: inputs: {{{', '.join(f'{n}: …' for n in declared)}}}",
            )
            return None
        return [bound[name] for name in declared]

    def unknown_item(self, extras: dict[str, Any], scope: Scope) -> str:
        """The result of an item that failed. Its ``id`` still names a tensor (of unknown
        shape), so later references to it stay silent; an ``id`` whose own expression failed
        silences every unknown reference, since any could be to it."""
        declared = extras.get("id")
        if isinstance(declared, str) and not is_expression(declared):
            if declared not in (INPUT, self.input_name):
                scope.ids.setdefault(declared, UNKNOWN)
        elif "id" in extras:
            self.lost_ids = True
        return UNKNOWN

    def layer_env(
        self, env: dict[str, Any], shape: Shape | None, over: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """``env`` (then ``over``, if given) with ``in_channels``/``in_shape`` of ``shape``."""
        if over is not None:
            env = {**env, **over}  # one copy either way: the result is a new mapping
            if shape is None:
                env["in_channels"] = env["in_shape"] = POISONED
            else:
                env["in_channels"], env["in_shape"] = shape[-1], list(shape)
            return env
        if shape is None:  # unknown because of an earlier error
            return {**env, "in_channels": POISONED, "in_shape": POISONED}
        return {**env, "in_channels": shape[-1], "in_shape": list(shape)}

    def item_id(
        self, extras: dict[str, Any], path: SpecPath, scope: Scope, env: dict[str, Any]
    ) -> str | None:
        if "id" not in extras:
            return None
        ok, item_id = self.evaluate(extras["id"], env, (*path, "id"))
        if not ok:
            return None
        if type(item_id) is str and item_id in self.good_ids:
            pass  # an identifier, not the input's name: checked when first met
        elif not isinstance(item_id, str) or not IDENTIFIER.fullmatch(item_id) or not item_id.isascii():
            self.error(
                f"expected an identifier ([A-Za-z_][A-Za-z0-9_]*); received {item_id!r}",
                (*path, "id"),
                code="identifier",
            )
            return None
        elif item_id == INPUT or item_id == self.input_name:
            self.error(
                f"the id {item_id!r} is reserved for the model input", (*path, "id"), code="identifier"
            )
            return None
        elif type(item_id) is str:
            self.good_ids.add(item_id)
        if item_id in scope.ids:
            self.error(f"duplicate id {item_id!r} in this layer list", (*path, "id"), code="duplicate-id")
            return None
        return item_id

    def item_inputs(
        self, extras: dict[str, Any], path: SpecPath, scope: Scope, env: dict[str, Any], current: str
    ) -> list[str] | None:
        if "inputs" not in extras:
            return [current]
        written = extras["inputs"]
        if isinstance(written, list):  # each reference evaluated and looked up on its own
            refs, evaluated = written, False
        else:
            ok, refs = self.evaluate(written, env, (*path, "inputs"))
            if not ok:
                return None
            refs, evaluated = refs if isinstance(refs, list) else [refs], True
        tensors: list[str] = []
        failed = False
        for i, ref in enumerate(refs):
            rpath = (*path, "inputs", i) if isinstance(written, list) else (*path, "inputs")
            tensor = self.reference(ref, rpath, scope, env, evaluated=evaluated)
            if tensor is None:
                failed = True  # and go on: every bad reference of the list is its own mistake
                continue
            tensors.append(tensor)
        if failed:
            return None
        if not tensors:
            self.error("expected at least one input; received an empty list", (*path, "inputs"))
            return None
        return tensors

    def reference(
        self, ref: Any, path: SpecPath, scope: Scope, env: dict[str, Any], *, evaluated: bool = False
    ) -> str | None:
        """The tensor an id reference names (``c0``, ``c0.x``, ``c0[1]``, ``stage3.block2.out``,
        ``cells[3].h``, ``input``), or ``None`` after a located error that names the fix."""
        if not evaluated:
            ok, ref = self.evaluate(ref, env, path)
            if not ok:
                return None
        if isinstance(ref, (list, dict)):
            self.error(
                f"expected one id (a reference to one tensor); received a "
                f"{'list' if isinstance(ref, list) else 'mapping'} {ref!r}",
                path,
                code="reference",
                hint=self.one_reference_hint(ref, path),
            )
            return None
        tensor = scope.lookup(ref) if isinstance(ref, str) else None
        if ref == self.input_name and tensor is None:
            tensor = scope.entry  # the model input's own name means what `input` means
        if tensor is not None:
            return tensor
        if self.lost_ids or self.failed_call(ref, scope):
            # `c0[1]`, `c0.x` of a call `c0` that failed (reported): unknown, as `c0` itself is,
            # so the item is still checked for mistakes of its own
            return UNKNOWN
        message = f"unknown layer id {ref!r} (ids must be defined earlier in the spec)"
        hint = self.reference_hint(ref, scope, path)
        self.error(message, path, code="reference", hint=hint)
        return None

    @staticmethod
    def one_reference_hint(ref: list[Any] | dict[Any, Any], path: SpecPath) -> str:
        """What to write where a reference is a list or mapping: a block input bound by name
        (``inputs: {p: [a]}``), an entry of ``carry``/``next``, or one of a list of inputs."""
        first = ref[0] if isinstance(ref, list) and ref else None
        example = first if isinstance(first, str) else "a"
        if len(path) >= 2 and path[-2] in ("inputs", "carry", "next") and isinstance(path[-1], str):
            what = "a block input bound by name" if path[-2] == "inputs" else f"a `{path[-2]}` entry"
            return f"{what} takes one reference, not a list: write {path[-1]}: {example}"
        return f"each entry names one tensor: write {example} (a list of inputs is one flat list: [a, b])"

    @staticmethod
    def failed_call(ref: Any, scope: Scope) -> bool:
        """Whether ``ref`` is ``c0[1]``, ``c0.x`` of an item ``c0`` that failed (reported)."""
        return isinstance(ref, str) and scope.lookup(_scope_head(ref)) == UNKNOWN

    def reference_hint(self, ref: Any, scope: Scope, path: SpecPath = ()) -> str:
        """What to write instead of an unknown reference (at ``path``), from the scoping rules."""
        text = str(ref)
        hidden = self.hidden_hint(ref, scope) or self.later_hint(ref, path)
        if hidden is not None:
            return hidden
        is_call, result = scope.result_of(text)
        if is_call:
            what = f"`{text}` is the automatic name of a block call: it reaches the ids inside the call"
            if result is not None:
                return f"{what}, and its result is `{result}`"
            return f"{what} (`{text}.…`); give the call an `id:` to refer to its result by that id"
        if scope.block is not None and text == INPUT and scope.block_inputs:
            return (
                f"block `{scope.block}` names its inputs ({', '.join(scope.block_inputs)}): "
                "refer to them by name"
            )
        if scope.block is not None:
            outer = scope.caller
            while outer is not None and outer.lookup(text) is None:
                outer = outer.caller
            if outer is not None:
                names = ", ".join((*scope.block_inputs, text)) if scope.block_inputs else f"x, {text}"
                first = "" if scope.block_inputs else " (the first input is then `x`, not `input`)"
                return (
                    f"`{text}` is defined outside block `{scope.block}`, and a block body sees only "
                    f"its inputs, its own ids and its params: declare it as an input "
                    f"(blocks: {scope.block}: inputs: [{names}]){first} and pass it at the call"
                )
        enclosed = scope.enclosed_by(text)
        if enclosed is not None:
            where, what = enclosed
            if what == "branch":
                return (
                    f"{text!r} is defined in another branch of this parallel ({self.where(where)}): a "
                    "branch sees the ids before the parallel, not its siblings'; to join layers of two "
                    "branches, write them as items with `id` and `inputs`"
                )
            return (
                f"{text!r} is defined inside the {what} at {self.where(where)}, and its ids are visible "
                "only inside it: to read that layer after it, write the layers as items with `id` and "
                "`inputs`"
            )
        head = re.split(r"[.\[]", text, maxsplit=1)[0]
        if head != text:
            inner = sorted(n for n in scope.visible() if n.startswith(head) and n != head)
            if inner:
                shown = ", ".join(inner[:8]) + (", …" if len(inner) > 8 else "")
                return did_you_mean(text, inner) or f"names inside `{head}`: {shown}"
        return did_you_mean(text, scope.visible()) or "give the earlier layer an `id:` and refer to it here"

    def later_hint(self, ref: Any, path: SpecPath) -> str | None:
        """Where the id an item's ``inputs`` entry (at ``path``) names is defined, when that is
        the item itself or an item after it, in its layer list or an enclosing one (an
        ``inputs`` list reads only the layers before its item); ``None`` otherwise."""
        if not isinstance(ref, str) or "inputs" not in path:
            return None
        head = _scope_head(ref)
        item_path = path[: len(path) - 1 - path[::-1].index("inputs")]
        first = True  # (the item's own list: the item itself counts; an enclosing list's: after it)
        while item_path and isinstance(item_path[-1], int):
            index, list_path = item_path[-1], item_path[:-1]
            items = value_at(self.data, list_path)
            for at in range(index if first else index + 1, len(items) if isinstance(items, list) else 0):
                item = items[at]
                if not isinstance(item, dict) or item.get("id") != head:
                    continue
                if at == index:
                    return f"{head!r} is this item's own id: an item cannot take its own output as input"
                return (
                    f"{head!r} is defined later ({self.where((*list_path, at, 'id'))}): `inputs` may name "
                    "only layers before the item; move that layer above this item"
                )
            first = False
            item_path = list_path
            while item_path and not isinstance(item_path[-1], int):
                item_path = item_path[:-1]
        return None

    def hidden_hint(self, ref: Any, scope: Scope) -> str | None:
        """Why an id the spec writes is not visible at a reference to it (a false ``when``
        skipped its item; it is defined inside a repeat) and what to write; ``None`` if it is
        not such an id."""
        if not isinstance(ref, str):
            return None
        why = scope.why_missing(ref)
        head = _scope_head(ref)
        if why is None and head != ref:
            # `c0.x`, `c0[1]`, `cells[0].nn` of an item `c0` a false `when` skipped
            inner = scope.why_missing(head)
            if inner is not None and not isinstance(inner, Hidden):
                where = self.where(inner)
                return f"{ref!r} is inside {head!r} ({where}), which is skipped: its `when` is false"
        if why is None:
            return None
        if not isinstance(why, Hidden):
            if len(why) > 3 and why[-2] == "carry":  # a name a skipped repeat would have carried
                return (
                    f"{ref!r} is carried by the repeat at {self.where(why[:-3])}, which is skipped: "
                    "its `when` is false"
                )
            return f"{ref!r} ({self.where(why)}) is skipped: its `when` is false"
        head = (
            f"{ref!r} is defined inside the repeat at {self.where(why.path[:-1])}, and ids inside a "
            "repeat are visible only inside the iteration that defines them: "
        )
        scoped = f"{why.repeat_id or 'cells'}[{why.iteration}].{ref}"
        if why.repeat_id is not None:
            return head + f"refer to it as {scoped}"
        carry = (
            "carry the tensor out (carry: {x: …} with next: {x: …}; after the loop `x` holds its last value)"
        )
        if why.carries:
            return head + f"{carry}, or give the repeat an id (id: cells) and refer to it as {scoped}"
        return head + f"{carry}, or give the repeat `carry` and an id (id: cells) and refer to it as {scoped}"

    def where(self, path: SpecPath) -> str:
        """``line N`` of ``path`` (with its file when another document declares it)."""
        loc = self.loc(path)
        if loc is None:
            return format_path(path)
        return f"line {loc.line}" if loc.file == self.doc.file else f"{loc.file}:{loc.line}"

    # -- plain layers ----------------------------------------------------------------------
    def layer_params(self, kind: LayerKind, body: Any, path: SpecPath) -> tuple[dict[str, Any], bool] | None:
        """The parameters written for a layer of ``kind`` (``body``: nothing, a mapping or its
        main parameter's value) and whether as that single value, whose path is the item's;
        ``None`` (reported) for a single value of a kind that takes none."""
        if body is None:
            return {}, False
        if isinstance(body, dict):
            return body, False
        if kind.main is not None:
            return {kind.main: body}, True
        self.error(
            f"`{kind.name}` takes no single value; received {body!r}",
            path,
            code="layer-params",
            hint=f"write `- {kind.name}` on its own, or a mapping of its parameters",
            about_value=False,  # any value is refused: what it would be is beside the point
        )
        return None

    def unknown_parameter(self, kind: LayerKind, key: Any, raw: dict[str, Any], path: SpecPath) -> None:
        """Report the parameter ``key`` written for ``kind`` (beside ``raw``), which it has not,
        with the one meant: another library's name for it, a misspelling, or an item key."""
        beside = self.beside(path, raw)
        meant = param_synonym(key, kind.param_index, beside)
        hint = f"did you mean `{meant}`?" if meant is not None else key_hint(key, kind.param_index, beside)
        if key in ITEM_EXTRAS:
            hint = (
                f"`{key}` stands beside the kind, not among its parameters: "
                f"`- {kind.name}: {{…}}` then `  {key}: …` on the next line"
            )
        self.error(
            f"unknown parameter {key!r} for `{kind.name}`",
            path,
            key=True,
            code="unknown-parameter",
            hint=hint or "parameters: " + (", ".join(kind.param_index) or "none"),
        )

    def missing_parameter(self, kind: LayerKind, name: str, path: SpecPath) -> None:
        """Report the required parameter ``name`` of the layer of ``kind`` at ``path``, which
        neither its item nor a per-kind default in force gives."""
        self.error(
            f"missing required parameter `{name}` for `{kind.name}`",
            path,
            code="missing-parameter",
            hint=_example(kind),
        )

    def layer(
        self,
        kind: LayerKind,
        body: Any,
        path: SpecPath,
        scope: Scope,
        inputs: list[str],
        item_id: str | None,
        env: dict[str, Any],
    ) -> str:
        written = self.layer_params(kind, body, path)
        if written is None:
            return UNKNOWN
        raw, single = written
        ok = True
        params: dict[str, Any] = {}
        sites: list[tuple[str, Any, Any]] = []  # parameters read while a call is recorded
        tuples = {} if single else tuple_fragments(raw)
        for key, value in raw.items():
            param = kind.param_index.get(key)
            ppath = path if single else (*path, key)
            if key in tuples:
                if tuples[key] is None:
                    continue  # the rest of a tuple, reported with its first piece
                value = tuples[key]  # `(3, 3)` whole, so the message and hint show it
            if param is None:
                self.unknown_parameter(kind, key, raw, ppath)
                ok = False
                continue
            good, value = self.evaluate(value, env, ppath)
            if not good:
                ok = False
                continue
            hint = param.hint(value)  # the name meant (choices, initializers …), or how to write it
            if hint is None:
                hint = _division_hint(param, raw[key], value, env)
            if self.param_error(param, value, ppath, hint):
                ok = False
                continue
            params[key] = value
            if self.site_logs and scope.block in self.site_logs:
                sites.append((key, raw[key], value))
        # A misspelt required parameter is one mistake: its unknown-parameter error says it.
        # Per-kind defaults in force here (spec, then block); a parameter written wins.
        kind_defaults = scope.defaults.get(kind.name)
        preset = {p: v for p, v in kind_defaults.items() if p not in raw} if kind_defaults else {}
        missing = [name for name in kind.required_names if name not in raw and name not in preset]
        if preset and any(value is POISONED for value, _ in preset.values()):
            # A default that failed (reported where it is declared): not missing, and the
            # layer stays silent, as after any failed parameter.
            preset = {p: pair for p, pair in preset.items() if pair[0] is not POISONED}
            ok = False
        if missing:
            meant = meant_parameters(raw, kind.param_index, missing)
            missing = [name for name in missing if name not in meant]
        for name in missing:
            self.missing_parameter(kind, name, path)
            ok = False
        most = kind.max_inputs
        if kind.arity == "many" and (len(inputs) < 2 or (most is not None and len(inputs) > most)):
            takes = "two or more" if most is None else "exactly two" if most == 2 else f"2 to {most}"
            plural = "s" if len(inputs) != 1 else ""
            self.error(
                f"`{kind.name}` merges {takes} tensors; received {len(inputs)} input{plural}",
                path,
                code="inputs",
                hint="give the layers to merge ids and list them: inputs: [a, b]"
                + (" (in that order)" if most == 2 else ""),
            )
            ok = False
        if kind.arity == "one" and len(inputs) > 1:
            self.error(
                f"`{kind.name}` takes one input; received {len(inputs)}",
                path,
                code="inputs",
                hint="merge them first with add, concat or multiply",
            )
            ok = False
        if preset:
            full = {**kind.default_values, **{p: value for p, (value, _) in preset.items()}, **params}
        else:
            full = {**kind.default_values, **params}
        # The tree keeps what the defaults set as if written here, so the emitted code says it.
        written = {**{p: text for p, (_, text) in preset.items()}, **raw} if preset else raw
        if preset:
            self.defaulted[path] = {p: text for p, (_, text) in preset.items()}
        located = _Located(path, raw, single)
        result = self.emit(kind, full, inputs, scope, path, item_id, ok, located, raw=written)
        for key, value, evaluated in sites:
            self.log_site(scope, len(self.nodes) - 1, key, value, env, evaluated)
        return result

    def log_site(
        self, scope: Scope, node: int | None, key: str, value: Any, env: dict[str, Any], result: Any
    ) -> None:
        """Log an evaluation in the body of a call being recorded that reads one of its block's
        value parameters (a layer parameter of ``self.nodes[node]``, or a ``when``)."""
        log = self.site_logs.get(scope.block)
        if log is None:
            return
        reads = log.reads(value)
        if reads:
            log.sites.append(Site(None if node is None else node - log.base, key, value, env, reads, result))

    def input_rank_error(
        self,
        kind: LayerKind,
        params: dict[str, Any],
        inputs: list[str],
        known: list[Shape],
        path: SpecPath,
        report: Callable[[], None],
    ) -> bool:
        """Hold back the shape error of an image layer fed the model input of shape ``[H, W]``,
        or of more than 3 axes (``[32, 32, 3, 1]``) (``report`` reports it at the layer);
        whether this layer's shape error was that one. :meth:`report_flat_input` decides where
        it goes once every layer is known. A layer of any rank (``normalization``) counts as an
        image layer when its error is the input's rank: the same parameters take the input
        made an image (EfficientNet's ``normalization: {axis: 3}`` fed ``[32, 32]``)."""
        if not self.reads_input(inputs) or len(known) != 1 or not _not_image_rank(len(known[0])):
            return False
        if kind.ranks is None:
            if not _takes_an_image_of(kind, params, known[0]):
                return False
        elif 3 not in kind.ranks or len(known[0]) in kind.ranks:
            return False
        self.flat_input_errors.append(report)
        self.flat_input_layers.append(self.path_text(path))
        return True

    def reads_input(self, inputs: list[str]) -> bool:
        """Whether a layer of ``inputs`` reads the model input, directly or through layers that
        keep its shape whatever its rank (:attr:`input_like`)."""
        return len(inputs) == 1 and (inputs[0] == self.input_name or inputs[0] in self.input_like)

    def report_flat_input(self, shape: Shape | None) -> None:
        """Report the image layers fed a 2-D input (or one of more than 3 axes): once, where
        the input shape was set (``input.shape``, or the var it reads: a zoo model's
        ``--set vars.input_shape=…``), where the mistake is (a missing channel axis, an extra
        axis), if no layer reads that input validly; else at each layer (such an input is
        itself valid: conv1d reads ``[steps, channels]``, and adding a channel axis would break
        that layer)."""
        if not self.flat_input_errors:
            return
        if self.flat_input_valid or shape is None or not _not_image_rank(len(shape)):
            for report in self.flat_input_errors:
                report()
            return
        if len(shape) == 2:
            height, width = shape
            hint = f"images need a channel axis: [{height}, {width}, 1] (or [{height}, {width}, 3] for RGB)"
        else:
            squeezed = _without_unit_axes(list(shape))
            hint = "an image shape is [height, width, channels], without the batch axis" + (
                f": {squeezed}" if squeezed else ""
            )
        loc, path = input_shape_origin(self.doc)
        if loc is None:
            loc, path = self.doc.loc(("input", "shape")), ("input", "shape")
        self.diags.error(
            f"expected an image shape [height, width, channels] for {self.flat_input_layers[0]}; "
            f"received {list(shape)}",
            loc,
            format_path(path),
            code="shape",
            hint=hint,
        )

    def input_labels(self, inputs: list[str]) -> list[str]:
        """How a shape error names each of a layer's ``inputs``: the layer it comes from (its
        id, or the name ``inspect`` shows) and its position: `b` (input 2)."""
        # (a name used twice carries "\0" and a count after it, kept unique for the graph)
        names = [tensor.split("\0")[0] for tensor in inputs]
        return [f"`{name}` (input {index + 1})" for index, name in enumerate(names)]

    def emit(
        self,
        kind: LayerKind,
        params: dict[str, Any],
        inputs: list[str],
        scope: Scope,
        path: SpecPath,
        item_id: str | None,
        ok: bool = True,
        located: _Located | None = None,
        *,
        raw: dict[str, Any] | None = None,
        role: str = "layer",
    ) -> str:
        """Name a checked layer, compute its shape and counts, and append it to the graph
        (and to the tree: ``raw`` is the item's parameters as written, ``role`` what made it)."""
        if len(self.nodes) >= MAX_NODES:
            if not self.too_many:
                self.error(
                    f"expected a model of at most {MAX_NODES:,} layers; this spec expands to more",
                    path,
                    code="too-large",
                    hint="check `repeat.times`",
                )
            self.too_many = True
            return UNKNOWN
        name = self.name_for(scope, item_id, kind.name)
        shapes_of = self.shapes.get
        known = [s for s in map(shapes_of, inputs) if s is not None]
        shape: Shape | None = None
        counts: Counts | None = None
        if ok and len(known) == len(inputs):
            try:
                shape = kind.output_shape(params, known)
                counts = kind.counts(params, known, shape)
                if (
                    self.reads_input(inputs)
                    and _not_image_rank(len(known[0]))
                    and kind.ranks
                    and 3 not in kind.ranks
                ):
                    self.flat_input_valid = True  # (an image shape would break this layer)
            except ShapeError as exc:
                target = located.get(exc.param or "", path) if located is not None else path
                shapes = ", ".join(str(list(s)) for s in known)
                detail = "" if "received" in exc.message else f" (input shape {shapes})"
                origins, fold = self.origin_notes(target)
                report = functools.partial(
                    self.diags.error,
                    exc.labelled(self.input_labels(inputs)) + detail,
                    self.doc.loc(target),
                    format_path(target),
                    notes=[*self.loop_notes(target, every=True), *self.call_notes(target), *origins],
                    context=self.context,
                    origins=fold,
                    code="shape",
                    hint=exc.hint,
                )
                if not self.input_rank_error(kind, params, inputs, known, path, report):
                    report()
        if name in self.by_name or name == self.input_name:
            self.error(
                f"layer name {name!r} is used twice",
                path,
                code="duplicate-name",
                hint=self.duplicate_hint(item_id, self.by_name.get(name), self.loc(path), path),
            )
            name = f"{name}\0{len(self.nodes)}"
        elif name in self.call_names and self.call_names[name].group == scope.group:
            call = self.call_names[name]
            self.error(
                f"layer name {name!r} is used twice: by this layer and by the block call at "
                f"{self.where(call.path)}" + (" (its automatic name)" if call.automatic else ""),
                path,
                code="duplicate-name",
                hint=self.call_name_hint(call.automatic),
            )
        if counts is None:  # not computed: an error above, or an unknown input
            counts = Counts()
        node = Node(
            name=name,
            kind=kind.name,
            params=params,
            inputs=tuple(inputs),
            shape=shape,
            counts=counts,
            loc=self.loc(path),
            path=self.path_text(path),
            group=scope.group,
            input_shapes=tuple(known),
            trainable=self.trainable[-1] if self.trainable else True,
        )
        self.nodes.append(node)
        self.record.layer(node, raw, role, path)
        self.by_name[name] = node
        self.shapes[name] = shape
        if shape is not None and kind.ranks is None and self.reads_input(inputs) and [shape] == known:
            self.input_like.add(name)
        return name if shape is not None else self._poison(name)

    def path_text(self, path: SpecPath) -> str:
        """``format_path(path)``, once per path: replayed and repeated items share paths."""
        text = self.path_texts.get(path)
        if text is None:
            text = self.path_texts[path] = format_path(path)
        return text

    def duplicate_hint(
        self,
        item_id: str | None,
        other: Node | None = None,
        here: Loc | None = None,
        path: SpecPath | None = None,
    ) -> str:
        """How to name a layer uniquely: inside a repeat, a fixed id names every iteration's
        layer alike, and the fix depends on the repeat. ``other``: the layer that has the name
        already (``None``: the model's input); ``here``: where the error is (the other is named
        with its file where that is another: a zoo library's layer and the spec's own);
        ``path``: the layer's item kind, whose ``id`` as written (``q${i}``) says which loop
        variables it reads already."""
        where = ""
        if other is not None and other.loc is not None:
            same = here is not None and here.file == other.loc.file
            where = f" (the other is at {'line ' if same else other.loc.file + ':'}{other.loc.line})"
        plain = f"give one of the items a different `id`{where}; automatic names are kind_N"
        if item_id is None or not self.repeats:
            return plain
        rid, var, carries = self.repeats[-1]
        if carries and rid is not None:
            # each iteration is a scope (rid_N_id): a clash is with a layer outside the repeat,
            # or with another item of the same body, never with another iteration
            return (
                f"the iterations of `{rid}` name this layer {rid}_N_{item_id}, and another layer "
                f"has that name: {plain}"
            )
        if carries and rid is None:
            return (
                f"a fixed id inside a repeat names every iteration's layer `{item_id}`: give the repeat "
                f"an id (e.g. `id: cells`); its iterations are then scopes, named cells_0_{item_id}, "
                f"cells_1_{item_id}, … and reachable as cells[0].{item_id}, cells[1].{item_id}"
            )
        written = value_at(self.data, (*path[:-1], "id")) if path else None
        if isinstance(written, str) and "${" in written:
            return self.computed_id_hint(written, item_id, plain)
        loop = var or "i"
        extra = "" if var else " (with as: i)"
        return (
            f"a fixed id inside a repeat names every iteration's layer `{item_id}`: write "
            f'id: "{item_id}${{{loop}}}"{extra}, or make the repeat carry its tensors '
            f"(carry/next) and give it an id, so each iteration is a scope ({rid or 'cells'}[0].{item_id})"
        )

    def computed_id_hint(self, written: str, item_id: str, plain: str) -> str:
        """The hint of a name used twice whose ``id`` is an expression (``written``) inside
        plain repeats: it is not a fixed id, so the fix is a loop variable it does not read yet
        (one an inner repeat's ``as:`` hides, one of an enclosing repeat, or a new one), never
        one it reads already."""
        depth = len(self.call_stack)
        levels = [  # the repeats around it in this block body (or the model), outermost first
            (var or None, format_path(where[:-1]))
            for (level, var), where in zip(self.loop_vars, self.loop_paths, strict=True)
            if level == depth
        ]
        names = [var for var, _ in levels if var]
        read = var_refs(written, dict.fromkeys(names))
        free = free_loop_name({*names, *self.vars_env})
        inner, inner_at = levels[-1] if levels else (None, "")
        for var, where in levels[:-1]:
            if var is not None and var == inner and var in read:
                return (
                    f"the repeat at {inner_at} has `as: {var}`, which hides the loop variable `{var}` of "
                    f"the repeat at {where} around it: every `${{{var}}}` inside reads the inner one, so "
                    f"each iteration of the outer repeat names this layer `{item_id}` again. Name the "
                    f'inner loop variable otherwise (as: {free}) and read both: id: "{written}_${{{free}}}"'
                )
        unread = [(var, where) for var, where in levels if var is None or var not in read]
        if not unread:
            return f"the id `{written}` gives two layers the same name `{item_id}`: {plain}"
        var, where = unread[0]
        if var is None:
            return (
                f"the id `{written}` is the same in each iteration of the repeat at {where}: give that "
                f'repeat a loop variable (as: {free}) and read it: id: "{written}_${{{free}}}"'
            )
        return (
            f"the id `{written}` is the same in each iteration of the repeat at {where}: read its loop "
            f'variable too: id: "{written}_${{{var}}}"'
        )

    def _poison(self, name: str) -> str:
        self.shapes[name] = None
        return name

    def name_for(self, scope: Scope, item_id: str | None, base: str) -> str:
        if item_id is not None:
            return scope.prefix + item_id
        counters = self.counters.get(scope.prefix)
        if counters is None:
            counters = self.counters[scope.prefix] = {}
            self.counter_log.append(scope.prefix)
        self.auto_names += 1
        counters[base] = counters.get(base, 0) + 1
        return f"{scope.prefix}{base}_{counters[base]}"

    # -- combinators -----------------------------------------------------------------------
    def combinator_fields(
        self, body: Any, path: SpecPath, allowed: dict[str, bool], example: str
    ) -> dict[str, Any] | None:
        if not isinstance(body, dict):
            self.error(
                f"expected a mapping; received {body!r}",
                path,
                code="combinator",
                hint=example,
            )
            return None
        ok = True
        for key in body:
            if key not in allowed:
                self.error(
                    f"unknown key {key!r}",
                    (*path, key),
                    key=True,
                    code="unknown-key",
                    hint=key_hint(key, allowed, self.beside((*path, key), body))
                    or "keys: " + ", ".join(allowed),
                )
                ok = False
        for key, required in allowed.items():
            if required and key not in body:
                self.error(f"missing required key `{key}`", path, code="missing-key", hint=example)
                ok = False
        return body if ok else None

    def sub_scope(self, scope: Scope, item_id: str | None) -> Scope:
        """The scope of a combinator's lists: it sees the ids around it; ``input`` keeps its meaning."""
        if item_id is None:
            return scope.child()
        return scope.child(prefix=f"{scope.prefix}{item_id}_", group=(*scope.group, item_id))

    def merge_kind(self, merge: Any, env: dict[str, Any], path: SpecPath) -> LayerKind | None:
        """The kind a combinator's ``merge`` field names (reported and ``None`` when it names
        none): one of the registry's :func:`combinator_merges`, so a merge kind added with the
        ``combines`` trait is a ``merge:`` word without a change here."""
        ok, mode = self.evaluate(merge, env, (*path, "merge"))
        if not ok:
            return None
        choices = combinator_merges()
        if not isinstance(mode, str) or mode not in choices:
            other = REGISTRY.get(mode) if isinstance(mode, str) else None
            # a merge kind no combinator takes (subtract: its inputs' order matters)
            elsewhere = (
                f"`{mode}` merges as an item of its own: give the layers to merge ids and write "
                f"- {mode}: {{inputs: [a, b]}}"
                if other is not None and other.arity == "many"
                else None
            )
            self.error(
                f"expected merge: one of {', '.join(choices)}; received {mode!r}",
                (*path, "merge"),
                code="parameter",
                hint=elsewhere or did_you_mean(str(mode), choices),
            )
            return None
        return REGISTRY[mode]

    def merge(self, kind: LayerKind, tensors: list[str], scope: Scope, path: SpecPath) -> str:
        """The combinator's merge layer: ``kind`` at its defaults over ``tensors``."""
        return self.emit(kind, kind.defaults(), tensors, scope, path, None, role="merge")

    def post_activation(
        self, fields: dict[str, Any], current: str, scope: Scope, path: SpecPath, env: dict[str, Any]
    ) -> str:
        if fields.get("activation") is None:
            return current
        kind = REGISTRY["activation"]
        ok, value = self.evaluate(fields["activation"], env, (*path, "activation"))
        if not ok:
            return UNKNOWN
        problem = kind.param_index["activation"].check(value)
        if problem:
            self.error(problem, (*path, "activation"), code="parameter")
            return UNKNOWN
        return self.emit(kind, {"activation": value}, [current], scope, path, None, role="activation")

    def residual(
        self, body: Any, path: SpecPath, scope: Scope, entry: str, item_id: str | None, env: dict[str, Any]
    ) -> str:
        example = "residual: {body: [...layers], shortcut: auto, merge: add}"
        fields = self.combinator_fields(
            body,
            path,
            {"body": True, "shortcut": False, "merge": False, "activation": False, "projection_bias": False},
            example,
        )
        if fields is None:
            return UNKNOWN
        ok, projection_bias = self.evaluate(
            fields.get("projection_bias", True), env, (*path, "projection_bias")
        )
        if not ok:
            return UNKNOWN
        if not isinstance(projection_bias, bool):
            self.error(
                f"expected projection_bias: true or false; received {projection_bias!r}",
                (*path, "projection_bias"),
                code="parameter",
            )
            return UNKNOWN
        self.record.note(projection_bias=projection_bias)
        inner = self.sub_scope(scope, item_id)
        body_out = self.walk_list(fields["body"], (*path, "body"), inner, entry)
        self.enclose(scope, [inner], path, "residual", item_id)
        shortcut_field = fields.get("shortcut", "auto")
        merge_mode = fields.get("merge", "add")
        self.record.note(merge_mode=merge_mode)
        if isinstance(shortcut_field, list):
            self.record.note(mode="list")
            sc_scope = inner.child(prefix=f"{inner.prefix}shortcut_")
            shortcut = self.walk_list(shortcut_field, (*path, "shortcut"), sc_scope, entry)
            self.enclose(scope, [sc_scope], path, "residual", item_id)
            merge = self.merge_kind(merge_mode, env, path)
        else:
            ok, mode = self.evaluate(shortcut_field, env, (*path, "shortcut"))
            modes = ("auto", "identity", "projection", "none")
            if not ok:
                return UNKNOWN
            if mode not in modes:
                self.error(
                    f"expected shortcut: one of {', '.join(modes)} or a list of layers; received {mode!r}",
                    (*path, "shortcut"),
                    code="parameter",
                    hint=did_you_mean(str(mode), modes),
                )
                return UNKNOWN
            self.record.note(mode=mode)
            if mode == "none":
                return self.post_activation(fields, body_out, inner, path, env)
            # the merge decides what `auto` makes of the shortcut: read it first
            merge = self.merge_kind(merge_mode, env, path)
            if merge is None:
                return UNKNOWN
            shortcut = self.shortcut(mode, entry, body_out, merge, inner, path, projection_bias)
        if merge is None or shortcut == UNKNOWN or body_out == UNKNOWN:
            return UNKNOWN
        merged = self.merge(merge, [shortcut, body_out], inner, path)
        return self.post_activation(fields, merged, inner, path, env)

    @staticmethod
    def enclose(scope: Scope, inner: list[Scope], path: SpecPath, what: str, item_id: str | None) -> None:
        """For the hints of a reference after a residual or parallel item at ``path``: the ids
        its lists defined (``inner`` and the scopes under them: a shortcut list, a nested
        combinator's), visible only inside it, also as ``ID.name`` where the item has an id."""
        for child in inner:
            for name in child.ids:
                scope.enclosed.setdefault(name, (path[:-1], what))
                if item_id is not None:
                    scope.enclosed.setdefault(f"{item_id}.{name}", (path[:-1], what))
            for name, where in child.enclosed.items():  # (deeper: where it is defined)
                scope.enclosed.setdefault(name, where)
                if item_id is not None:
                    scope.enclosed.setdefault(f"{item_id}.{name}", where)

    def shortcut(
        self,
        mode: str,
        entry: str,
        body_out: str,
        merge: LayerKind,
        scope: Scope,
        path: SpecPath,
        bias: bool = True,
    ) -> str:
        """The shortcut tensor: the entry, or its projection (a strided 1×1 convolution, with a
        bias unless ``bias`` is false, then batch normalisation) to the body's output shape.
        ``auto`` projects only for an element-wise ``merge``: a merge along an axis (concat)
        takes the entry as it is, whatever its channels."""
        in_shape, out_shape = self.shapes.get(entry), self.shapes.get(body_out)
        if mode == "identity" or in_shape is None or out_shape is None:
            return entry
        if mode == "auto" and (in_shape == out_shape or merge.combines != "elementwise"):
            return entry
        if mode == "auto" and _broadcasts_onto(out_shape, in_shape):
            # a gate (squeeze-and-excitation: 1×1×C by `multiply`): the merge broadcasts it over
            # the entry, which a strided projection down to 1×1 would have collapsed instead
            return entry
        if len(in_shape) != 3 or len(out_shape) != 3:
            self.error(
                f"expected image tensors for a projection shortcut; received {list(in_shape)} → "
                f"{list(out_shape)}",
                (*path, "shortcut"),
                code="shape",
            )
            return UNKNOWN
        strides = []
        for size_in, size_out in zip(in_shape[:2], out_shape[:2], strict=True):
            stride = -(-size_in // size_out)
            if (size_in - 1) // stride + 1 != size_out:
                self.error(
                    f"cannot project the shortcut from {list(in_shape)} to the body's output "
                    f"{list(out_shape)} with a strided 1×1 convolution",
                    (*path, "shortcut"),
                    code="shape",
                    hint="write the shortcut as a list of layers",
                )
                return UNKNOWN
            strides.append(stride)
        sc_scope = scope.child(prefix=f"{scope.prefix}shortcut_")
        conv = REGISTRY["conv2d"]
        params = {
            **conv.defaults(),
            "filters": out_shape[-1],
            "kernel_size": 1,
            "strides": strides,
            "use_bias": bias,
        }
        if strides[0] == strides[1]:
            params["strides"] = strides[0]
        projected = self.emit(conv, params, [entry], sc_scope, path, None, role="projection")
        norm = REGISTRY["batch_norm"]
        return self.emit(norm, norm.defaults(), [projected], sc_scope, path, None, role="projection")

    def parallel(
        self, body: Any, path: SpecPath, scope: Scope, entry: str, item_id: str | None, env: dict[str, Any]
    ) -> str:
        example = "parallel: {branches: [[...layers], [...layers]], merge: concat}"
        fields = self.combinator_fields(
            body, path, {"branches": True, "merge": False, "activation": False}, example
        )
        if fields is None:
            return UNKNOWN
        branches = fields["branches"]
        if not isinstance(branches, list) or len(branches) < 2:
            self.error(
                "expected at least two branches (each a list of layers)",
                (*path, "branches"),
                code="combinator",
                hint=example,
            )
            return UNKNOWN
        inner = self.sub_scope(scope, item_id)
        outs = []
        for index, branch in enumerate(branches):
            branch_scope = inner.child()
            outs.append(self.walk_list(branch, (*path, "branches", index), branch_scope, entry))
            for name in branch_scope.ids:  # (for the hints of a sibling branch)
                inner.enclosed.setdefault(name, ((*path, "branches", index), "branch"))
            self.enclose(scope, [branch_scope], path, "parallel", item_id)
        if UNKNOWN in outs:
            return UNKNOWN
        merge = self.merge_kind(fields.get("merge", "concat"), env, path)
        if merge is None:
            return UNKNOWN
        merged = self.merge(merge, outs, inner, path)
        return self.post_activation(fields, merged, inner, path, env)

    def repeat(
        self, body: Any, path: SpecPath, scope: Scope, entry: str, item_id: str | None, env: dict[str, Any]
    ) -> str:
        example = "repeat: {times: 3, as: i, layers: [...layers]}"
        allowed = {"times": True, "as": False, "layers": True, "carry": False, "next": False}
        fields = self.combinator_fields(body, path, allowed, example)
        if fields is None:
            return UNKNOWN
        try:
            return self._repeat(fields, path, scope, entry, item_id, env)
        except _RepeatFailed:
            # The names it would have left behind (`x`, `cells.x`) stay silent when used later:
            # the repeat's own error has been reported.
            carry = fields.get("carry")
            for name in carry if isinstance(carry, dict) else ():
                if isinstance(name, str):
                    scope.ids.setdefault(name, UNKNOWN)
                    if item_id:
                        scope.ids.setdefault(f"{item_id}.{name}", UNKNOWN)
            return UNKNOWN

    def hidden_loop_var(self, var: str, path: SpecPath) -> None:
        """Warn (once per repeat) that the loop variable ``var`` of the repeat at ``path``
        hides an enclosing repeat's of that name in the same body: inside it the outer one
        cannot be read, so an id or value meant to differ per outer iteration does not."""
        depth = len(self.call_stack)
        outer = [
            where
            for (level, name), where in zip(self.loop_vars, self.loop_paths, strict=True)
            if level == depth and name == var
        ]
        if not outer or path in self.warned_loops:
            return
        self.warned_loops.add(path)
        names = {name for _, name in self.loop_vars}
        free = free_loop_name({*names, *self.vars_env})
        declared = (*outer[-1], "as")
        self.diags.warning(
            f"loop variable {var!r} hides the loop variable of the repeat at {format_path(outer[-1][:-1])} "
            f"around it: inside this repeat every `${{{var}}}` reads this one",
            self.loc((*path, "as")),
            format_path((*path, "as")),
            code="hidden-loop-var",
            hint=f"name it otherwise (e.g. as: {free}) and read `${{{var}}}` and `${{{free}}}` where both "
            "are meant",
            notes=self.shadow_notes([Shadow(f"the loop variable `{var}` of the outer repeat", declared)]),
        )

    def _repeat(
        self,
        fields: dict[str, Any],
        path: SpecPath,
        scope: Scope,
        entry: str,
        item_id: str | None,
        env: dict[str, Any],
    ) -> str:
        """:meth:`repeat` once its fields are read; raises :class:`_RepeatFailed` after an error."""
        ok, times = self.evaluate(fields["times"], env, (*path, "times"))
        if not ok:
            raise _RepeatFailed
        if not isinstance(times, int) or isinstance(times, bool) or not 0 <= times <= MAX_REPEAT:
            self.error(
                f"expected an integer from 0 to {MAX_REPEAT:,}; received {describe_value(times)}",
                (*path, "times"),
                code="parameter",
            )
            raise _RepeatFailed
        made = self.least.of_repeat(times, fields["layers"])
        if self.over_budget(made, (*path, "times"), "this repeat", "the repeat"):
            raise _RepeatFailed
        var = fields.get("as")
        if var is not None and (not isinstance(var, str) or not IDENTIFIER.fullmatch(var)):
            self.error(f"expected an identifier; received {var!r}", (*path, "as"), code="identifier")
            raise _RepeatFailed
        if var is not None and (problem := unreadable_name(var)):
            self.error(problem, (*path, "as"), code="identifier", hint=f"rename it, e.g. `{var}_`")
            raise _RepeatFailed
        if var is not None:
            self.hidden_loop_var(var, path)
        raw_carry = fields.get("carry")
        shadowed = item_id is not None and isinstance(raw_carry, dict) and item_id in raw_carry
        if shadowed:
            # After the loop both the repeat's id and each carried name are ids of this list.
            self.error(
                f"duplicate id {item_id!r} in this layer list: the repeat's `id` is also a name it "
                "carries, and after the loop each carried name is an id of this list",
                (*path[:-1], "id"),
                code="duplicate-id",
                hint=f"rename the repeat (e.g. id: cells) or the carried name: after the loop "
                f"`{item_id}` is the carried value, and the repeat's id reaches it as `cells.{item_id}`",
            )
        carried = self.carry(fields, path, scope, env)
        if carried is None or shadowed:
            raise _RepeatFailed
        steps: dict[str, Any] = fields.get("next") or {}
        current = entry
        self.record.note(
            var=var,
            times=times,
            raw_times=fields["times"],
            carry=dict(fields.get("carry") or {}),
            next=dict(steps),
            item_id=item_id,
        )
        prefix = f"{scope.prefix}{item_id}_" if item_id else scope.prefix
        group = (*scope.group, item_id) if item_id else scope.group
        self.repeats.append((item_id, var, bool(carried)))
        self.loop_vars.append((len(self.call_stack), var or ""))
        self.loop_values.append(0)
        self.loop_paths.append(path)
        self.loop_times.append(times)
        times_path, layers_path = (*path, "times"), (*path, "layers")  # (made once: 10**5 iterations)
        if times == 0:
            self.dormant.append((fields["layers"], layers_path))
        try:
            for i in range(times):
                if not self.tick(times_path):
                    raise _RepeatFailed
                iteration_env = {**scope.env, var: i} if var else scope.env
                self.loop_values[-1] = i  # (the repeats inside have popped theirs)
                # A carrying repeat with an id is one scope per iteration: its layers are named
                # `cells_0_…`, `cells_1_…` and its ids are reachable as cells[0].h, cells[1].h.
                scoped = bool(carried and item_id)
                own = f"{prefix}{i}_" if scoped else prefix
                own_group = (*scope.group, f"{item_id}[{i}]") if scoped else group
                iteration = scope.child(prefix=own, group=own_group, env=iteration_env)
                iteration.ids.update(carried)
                saved_context, self.context = self.context, self.next_context()
                current = self.walk_list(fields["layers"], layers_path, iteration, current)
                self.context = saved_context
                if iteration.ids or iteration.hidden or iteration.skipped:  # (else nothing to note)
                    self.note_hidden(scope, iteration, carried, Hidden(path, item_id, bool(carried), i))
                if current == UNKNOWN:
                    raise _RepeatFailed
                if item_id:
                    for name, tensor in iteration.ids.items():
                        if name not in carried:
                            scope.ids[f"{item_id}[{i}].{name}"] = tensor
                advanced = self.advance(steps, carried, path, iteration, iteration_env)
                if advanced is None:
                    raise _RepeatFailed
                carried = advanced
        finally:
            self.repeats.pop()
            self.loop_vars.pop()
            self.loop_values.pop()
            self.loop_paths.pop()
            self.loop_times.pop()
        self.record.note(results=dict(carried))
        for name, tensor in carried.items():  # the final values, by name (and as the repeat's)
            scope.ids[name] = tensor
            if item_id:
                scope.ids[f"{item_id}.{name}"] = tensor
        return current

    @staticmethod
    def note_hidden(scope: Scope, iteration: Scope, carried: dict[str, str], where: Hidden) -> None:
        """Remember the ids an iteration defined, which only the iteration sees, for the hint
        of a reference to one after the repeat (and those hidden inside it in turn)."""
        for name in iteration.ids:
            if name not in carried and name not in scope.ids:
                scope.hidden.setdefault(name, where)
        for name, inner in iteration.hidden.items():
            scope.hidden.setdefault(name, inner)
        for name in iteration.skipped:
            scope.hidden.setdefault(name, where)

    def carry(
        self, fields: dict[str, Any], path: SpecPath, scope: Scope, env: dict[str, Any]
    ) -> dict[str, str] | None:
        """The tensors a repeat starts with (``carry: {p: stem_b, x: c0}``), checked with
        its ``next`` rule."""
        raw = fields.get("carry")
        steps = fields.get("next")
        if raw is None:
            if steps is not None:
                self.error(
                    "`next` advances carried names; this repeat carries none",
                    (*path, "next"),
                    key=True,
                    code="carry",
                    hint="add carry: {name: id, …} with the tensors the iterations pass on",
                )
                return None
            return {}
        if not isinstance(raw, dict) or not raw:
            self.error(
                f"expected a mapping of names to ids; received {raw!r}",
                (*path, "carry"),
                code="carry",
                hint="e.g. carry: {p: stem, x: c0}",
            )
            return None
        carried: dict[str, str] = {}
        for name, ref in raw.items():
            cpath = (*path, "carry", name)
            if not isinstance(name, str) or not IDENTIFIER.fullmatch(name) or name == INPUT:
                self.error(f"expected an identifier; received {name!r}", cpath, key=True, code="identifier")
                return None
            tensor = self.reference(ref, cpath, scope, env)
            if tensor is None:
                return None
            carried[name] = tensor
        if steps is not None and not isinstance(steps, dict):
            self.error(
                f"expected a mapping of carried names to ids; received {steps!r}",
                (*path, "next"),
                code="carry",
                hint="e.g. next: {p: x, x: out}",
            )
            return None
        for name in steps or {}:
            if name not in carried:
                self.error(
                    f"`next` names {name!r}, which the repeat does not carry",
                    (*path, "next", name),
                    key=True,
                    code="carry",
                    hint=key_hint(str(name), carried, self.beside((*path, "next", name), steps or {}))
                    or "carried: " + ", ".join(carried),
                )
                return None
        return carried

    def advance(
        self,
        steps: dict[str, Any],
        carried: dict[str, str],
        path: SpecPath,
        iteration: Scope,
        env: dict[str, Any],
    ) -> dict[str, str] | None:
        """The carried tensors after one iteration: every ``next`` reference is read in the
        iteration's scope, so ``next: {p: x, x: new}`` passes the old ``x`` on as ``p``; a
        name ``next`` leaves out keeps its value."""
        out = dict(carried)
        for name, ref in steps.items():
            tensor = self.reference(ref, (*path, "next", name), iteration, env)
            if tensor is None:
                return None
            out[name] = tensor
        return out

    # -- blocks ----------------------------------------------------------------------------
    def check_blocks(self) -> None:
        """Check every block's declaration once, called or not: a name a layer item reads as
        something else, parameter names no expression can read, defaults that read a parameter
        declared after them, and literal defaults of the wrong type (with the check a call's
        arguments get; a ``${…}`` default is checked when a call evaluates it)."""
        for name, block in self.blocks.items():
            if not isinstance(name, str):
                continue
            reason = RESERVED_BLOCK_NAMES.get(name) or (
                f"it names the layer kind `{name}`" if name in REGISTRY else None
            )
            if reason:
                self.error(
                    f"block name {name!r} is reserved: {reason}",
                    ("blocks", name),
                    key=True,
                    code="block-name",
                    hint=f"rename the block: a layer item `{name}` never calls it",
                )
                self.bad_blocks.add(name)
            declared = block.get("params") if isinstance(block, dict) else None
            for index, (pname, spec) in enumerate(declared.items() if isinstance(declared, dict) else ()):
                problem = unreadable_name(pname) if isinstance(pname, str) else None
                if problem:
                    self.error(
                        problem,
                        ("blocks", name, "params", pname),
                        key=True,
                        code="identifier",
                        hint=f"rename the parameter, e.g. `{pname}_`",
                    )
                    self.bad_blocks.add(name)
                if not isinstance(spec, dict) or "default" not in spec:
                    continue
                default, kind = spec["default"], spec.get("type", "any")
                if self.reads_later(name, pname, default, list(declared)[index + 1 :]):
                    continue
                if isinstance(default, str) and "${" in default:
                    continue  # its type is known once a call evaluates it (block_default)
                if not BLOCK_PARAM_TYPES.get(kind, BLOCK_PARAM_TYPES["any"])(default):
                    self.error(
                        param_type_error(kind, pname, default, default=True),
                        ("blocks", name, "params", pname, "default"),
                        code="parameter",
                    )
                    self.bad_defaults.add((name, pname))

    def reads_later(self, name: str, pname: Any, default: Any, after: list[Any]) -> bool:
        """Refuse (at the default, whether a call uses it or not) the default of parameter
        ``pname`` of block ``name`` that reads one of the parameters ``after`` it. Defaults are
        filled in declaration order, so such a name would read the var of that name or nothing
        where the default is used, while the generated function reads the parameter: one rule
        for every call (and for a library or a block no call uses) is that a default reads
        only the parameters declared before it."""
        later = [p for p in after if isinstance(p, str)]
        found = var_refs(default, dict.fromkeys(later)) if later else set()
        later = [p for p in later if p in found]
        if not later:
            return False
        self.error(
            f"expected the default of block parameter `{pname}` to read parameters declared "
            f"before it; received {', '.join(f'`{p}`' for p in later)}, declared after it",
            ("blocks", name, "params", pname, "default"),
            code="parameter",
            hint=f"defaults are filled in declaration order: declare {' and '.join(later)} before "
            f"{pname} in `params`",
        )
        self.bad_defaults.add((name, pname))
        return True

    def block_params(self, name: str) -> dict[str, BlockParam]:
        """Block ``name``'s declared parameters, read once per resolution (every call asks)."""
        found = self.param_decls.get(name)
        if found is None:
            found = self.param_decls[name] = self._block_params(name)
        return found

    def _block_params(self, name: str) -> dict[str, BlockParam]:
        declared = (self.blocks[name] or {}).get("params") or {}
        out: dict[str, BlockParam] = {}
        for pname, spec in declared.items():
            if isinstance(spec, str):
                out[pname] = BlockParam(spec, None, True)
            else:
                has_default = "default" in spec
                kind, default = spec.get("type", "any"), spec.get("default")
                plain = (
                    isinstance(default, (list, dict))
                    and _plain_size(default, 0) <= PLAIN_DEFAULT_NODES
                    and BLOCK_PARAM_TYPES.get(kind, BLOCK_PARAM_TYPES["any"])(default)
                )
                out[pname] = BlockParam(kind, default, not has_default, plain)
        return out

    def block_signature(self, name: str) -> bool:
        """Check once that a block's input and output names are usable: distinct identifiers,
        not ``input``, not the name of one of its parameters (reported at the block)."""
        if name in self.signatures:
            return self.signatures[name]
        spec = self.blocks[name] or {}
        params = set(self.block_params(name))
        ok = True
        for key in ("inputs", "outputs"):
            raw = spec.get(key)
            names = [raw] if isinstance(raw, str) else raw or []
            seen: set[str] = set()
            for index, item in enumerate(names):
                ipath: SpecPath = ("blocks", name, key)
                if isinstance(raw, list):
                    ipath = (*ipath, index)
                problem = hint = None
                if not isinstance(item, str) or not IDENTIFIER.fullmatch(item):
                    problem = f"expected an identifier; received {item!r}"
                    hint = (
                        "name each input as its body refers to it (an identifier: letters, digits, _)"
                        if key == "inputs"
                        else "list the ids of the body's layers (or its inputs) the call returns"
                    )
                elif item in seen:
                    problem = f"{item!r} is listed twice"
                    hint = (
                        "give each input a distinct name (the ids its body refers to)"
                        if key == "inputs"
                        else f"list each output once: a caller reads `{item}` as c.{item} (and by its "
                        "position, c[0], c[1], …), so a second entry names nothing new"
                    )
                elif key == "inputs" and item in (INPUT, self.input_name):
                    problem = f"{item!r} cannot name a block input (it means the model's input)"
                    taken = {INPUT, self.input_name, *params, *(n for n in names if isinstance(n, str))}
                    free = [n for n in ("x", "skip", "h", "features") if n not in taken][:2]
                    hint = "name it after what it carries, e.g. " + " or ".join(f"`{n}`" for n in free)
                elif key == "inputs" and item in params:
                    problem = f"{item!r} is both an input and a parameter of block `{name}`"
                    hint = f"rename the input or the parameter: inside the body `{item}` can mean only one"
                if problem:
                    self.diags.error(
                        problem,
                        self.doc.loc(ipath),
                        format_path(ipath),
                        code="block-signature",
                        hint=hint,
                    )
                    ok = False
                seen.add(str(item))
        self.signatures[name] = ok
        return ok

    def block_inputs(self, name: str) -> tuple[str, ...]:
        """The names a block declares for its inputs (``()``: one unnamed input, ``input``)."""
        declared = (self.blocks[name] or {}).get("inputs")
        if isinstance(declared, str):
            declared = [declared]
        return tuple(n for n in declared or () if isinstance(n, str))

    def block_outputs(self, name: str) -> tuple[str, ...]:
        """The ids a block returns, in order (``()``: its last item)."""
        declared = (self.blocks[name] or {}).get("outputs")
        if isinstance(declared, str):
            declared = [declared]
        return tuple(n for n in declared or () if isinstance(n, str))

    def beside(self, path: SpecPath, written: Any) -> Any:
        """The keys written beside the unknown key at ``path`` that its did-you-mean must not
        name (renaming it to one of them would write a key twice): ``written``, but for a key a
        ``--set`` option wrote, only those the same option wrote. The option is what is
        renamed, and its path merges into the mapping it names: ``--set
        model[0].conv2d.filtrs=3`` meant `filters`, which the file writes (as the schema says
        of an unknown key)."""
        loc = self.doc.key_loc(path)
        if loc is None or not loc.file.startswith(COMMAND_LINE_PREFIX) or not isinstance(written, dict):
            return written
        return [k for k in written if getattr(self.doc.key_loc((*path[:-1], k)), "file", None) == loc.file]

    def unknown_argument(
        self, name: str, key: Any, declared: dict[str, Any], path: SpecPath, written: Any = ()
    ) -> None:
        """Report the argument ``key`` of a call of block ``name``, which declares none such."""
        self.error(
            f"unknown argument {key!r} for block `{name}`",
            path,
            key=True,
            code="unknown-parameter",
            hint=key_hint(key, declared, self.beside(path, written))
            or "parameters: " + (", ".join(declared) or "none"),
        )

    def call_arguments(
        self, name: str, body: Any, path: SpecPath, declared: dict[str, BlockParam]
    ) -> tuple[dict[str, Any], dict[str, SpecPath]] | None:
        """The arguments written at a call of block ``name`` (``body``: nothing, a mapping, or
        the value of its only or only required parameter) and the path of each; ``None``
        (reported) for a single value the block cannot take."""
        if body is None:
            return {}, {}
        if isinstance(body, dict):
            return body, {k: (*path, k) for k in body}
        only = scalar_param(declared)
        if only is not None:
            return {only: body}, {only: path}
        self.error(
            f"expected a mapping of arguments for block `{name}`; received {body!r}",
            path,
            code="block-args",
            hint="parameters: " + (", ".join(declared) or "none"),
        )
        return None

    def argument_error(self, param: BlockParam, key: str, value: Any, path: SpecPath) -> bool:
        """Report (and say) whether the argument ``key``'s ``value`` is not of its parameter's type."""
        if BLOCK_PARAM_TYPES.get(param.type, BLOCK_PARAM_TYPES["any"])(value):
            return False
        self.error(param_type_error(param.type, key, value), path, code="parameter")
        return True

    def missing_arguments(
        self, name: str, raw: dict[str, Any], declared: dict[str, BlockParam], path: SpecPath
    ) -> list[str]:
        """The required parameters of block ``name`` that the call at ``path`` (its arguments
        ``raw``) does not pass, each reported unless an argument misspelt it (whose
        unknown-argument error says it: one mistake)."""
        missing = [pname for pname, param in declared.items() if param.required and pname not in raw]
        meant = misspelt(raw, declared, missing)
        for pname in missing:
            if pname not in meant:
                self.error(
                    f"missing required argument `{pname}` for block `{name}`",
                    path,
                    code="missing-parameter",
                )
        return missing

    def call_block(
        self,
        name: str,
        body: Any,
        path: SpecPath,
        scope: Scope,
        inputs: list[str],
        item_id: str | None,
        env: dict[str, Any],
    ) -> str:
        entry = inputs[0]
        self.used_blocks.add(name)
        if name in self.call_stack:
            chain = " → ".join([*self.call_stack, name])
            self.error(f"block {name!r} calls itself ({chain})", path, code="cycle", about_value=False)
            return UNKNOWN
        if name in self.bad_blocks or not self.block_signature(name):
            return UNKNOWN  # its declaration's error says why
        declared = self.block_params(name)
        arguments = self.call_arguments(name, body, path, declared)
        if arguments is None:
            self.unwalked_body(name)
            return UNKNOWN
        raw, located = arguments
        args: dict[str, Any] = {}
        ok = True
        for key, value in raw.items():
            param = declared.get(key)
            if param is None:
                self.unknown_argument(name, key, declared, located[key], raw)
                ok = False
                continue
            args[key] = POISONED  # until checked: what depends on a failed argument stays silent
            good, value = self.evaluate(value, env, located[key])
            if not good or self.argument_error(param, key, value, located[key]):
                ok = False
                continue
            args[key] = value
        missing = self.missing_arguments(name, raw, declared, path)
        for pname in missing:
            args[pname] = POISONED
            ok = False
        defaulted = [p for p in declared if p not in raw and p not in missing]
        # After the missing ones are poisoned: a default that reads one stays silent.
        for pname in defaulted:
            ok = self.block_default(name, pname, declared[pname], args, entry, path[:-1]) and ok
        if not ok:
            self.unwalked_body(name)
            return UNKNOWN
        if self.over_budget(self.least.of_block(name), path, f"this call of block `{name}`", "the call"):
            return UNKNOWN
        local = item_id or self.name_for(scope, None, name).removeprefix(scope.prefix)
        self.claim_call_name(CallName(scope.prefix + local, scope.group, path, item_id is None))
        names = self.block_inputs(name)
        key = self.memo_key(name, args, inputs)
        memo = self.memos.get(key) if key is not None else None
        values = self.value_params(name) if key is not None else frozenset()
        free = key is not None and self.shape_free(name)
        value_key = self.value_key(key, args, values, free) if values or free else None
        changed: Changed | None = None
        if memo is None and value_key is not None and key not in self.memos:
            found = self.value_memos.get(value_key)
            if found is not None:
                memo, recorded, sites = found
                given = dict(key[1])  # key is not None here: value_key is not
                differ = {p for p in values if given.get(p) != recorded.get(p)}
                changed = Changed(args, sites, differ, free)
        if memo is not None and changed is None and self.past_budget(memo, name, path):
            return UNKNOWN
        if memo is not None and not self.replay_fits(memo, f"{scope.prefix}{local}_", (*scope.group, local)):
            memo = None  # walked instead, which reports what the replay would hide
        if memo is not None:
            prefix, group = f"{scope.prefix}{local}_", (*scope.group, local)
            replayed = self.replay(memo, prefix, group, tuple(inputs), changed)
            if replayed is None and key is not None and changed is None:
                self.memos[key] = None  # not a pure function of its prefix and inputs
            if replayed is not None:
                below, calls = self.memo_calls(memo)
                self.deepest = max(self.deepest, self.nesting + below)
                for inner in calls:
                    made = CallName(prefix + inner.name, (*group, *inner.group), inner.path, inner.automatic)
                    self.call_names.setdefault(made.name, made)
                    self.call_log.append(made)
                self.record_call(name, declared, raw, args, prefix)
                ids, outputs = replayed
                self.record.note(outputs=tuple(outputs))
                self.export(scope, local, name, Scope(None, ids, None, prefix, {}, group), outputs)
                return outputs[0] if outputs else UNKNOWN
        start = self.call_start() if key is not None and key not in self.memos else None
        log = None
        if start is not None and values:
            known = self.site_known.setdefault(name, {})
            log = self.site_logs[name] = SiteLog(values, len(self.nodes), [], known)
        block_env = {**self.global_env(scope), **args}
        # How deep this call nests below itself, and the calls made inside it, for its memo.
        calls_before, deepest_before, self.deepest = len(self.call_log), self.deepest, self.nesting
        self.push_call(name, path[:-1], args)  # the calling item: `called from model[4]`
        saved_context, self.context = self.context, self.next_context()
        try:
            defaults = self.resolve_defaults(
                (self.blocks[name] or {}).get("defaults"),
                ("blocks", name, "defaults"),
                block_env,
                self.spec_defaults,
            )
            block_scope = Scope(
                entry=None if names else entry,
                ids=dict(zip(names, inputs, strict=True)) if names else {},
                parent=None,
                prefix=f"{scope.prefix}{local}_",
                env=block_env,
                group=(*scope.group, local),
                defaults=defaults,
                block=name,
                block_inputs=names,
                caller=scope,
            )
            self.record_call(name, declared, raw, args, block_scope.prefix)
            last = self.walk_list(
                self.blocks[name].get("layers"), ("blocks", name, "layers"), block_scope, entry
            )
            outputs = self.call_outputs(name, block_scope, last)
        finally:
            self.pop_call()
            self.context = saved_context
            if log is not None:
                del self.site_logs[name]
            below = self.deepest - self.nesting
            self.deepest = max(self.deepest, deepest_before)
        if start is not None and key is not None:
            recorded = self.memos[key] = self.record_memo(start, block_scope, tuple(inputs), outputs)
            if recorded is not None:
                self.memo_shape[id(recorded)] = MemoShape(
                    below, calls_before, len(self.call_log), block_scope.prefix, len(block_scope.group)
                )
            if recorded is not None and value_key is not None:
                sites = log.sites if log is not None else []
                self.value_memos.setdefault(value_key, (recorded, dict(key[1]), sites))
        self.record.note(outputs=tuple(outputs))
        self.export(scope, local, name, block_scope, outputs)
        return outputs[0] if outputs else UNKNOWN

    def claim_call_name(self, call: CallName) -> None:
        """Note a block call's name; report it if a layer beside it (or the model input) has
        that name already. A call's name is a group of its layers: `cnnspec inspect` shows it
        as a row and a freeze pattern naming it covers the call's layers, so a layer of the
        same name in the same group is two things under one name (one named later than the
        call is reported in :meth:`emit`). As with the kind_N names of layers (``conv2d_1``
        beside ``id: conv2d_1``), an automatic name is not moved past a taken one: the clash
        is reported."""
        self.call_log.append(call)
        if not self.name_taken(call.name, call.group):
            self.call_names.setdefault(call.name, call)
            return
        other = self.by_name.get(call.name)
        where = f" at line {other.loc.line}" if other is not None and other.loc else ""
        what = "the model input" if other is None else f"the layer{where}"
        how = " (its automatic name)" if call.automatic else ""
        self.error(
            f"name {call.name!r} is used twice: by {what} and by this block call{how}",
            call.path,
            code="duplicate-name",
            hint=self.call_name_hint(call.automatic),
        )

    def name_taken(self, full: str, group: tuple[str, ...]) -> bool:
        """Whether a layer of ``group`` (or, at the top, the model input) is named ``full``:
        a layer of another group is shown and matched under its group, not beside the call."""
        node = self.by_name.get(full)
        if node is not None:
            return node.group == group
        return full == self.input_name and not group

    @staticmethod
    def call_name_hint(automatic: bool) -> str:
        """How to name a block call and a layer apart."""
        if automatic:
            return (
                "a block call without an `id` is named after its block and how many calls of it "
                "the list has made (blk_1, blk_2, …): give the call an `id:`, or the layer another `id`"
            )
        return "give the call or the layer another `id`"

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

    # -- replaying identical calls (cnnspec.spec.memo) -----------------------------------------
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

    def call_outputs(self, name: str, block_scope: Scope, last: str) -> list[str]:
        """The tensors a call returns: the block's declared ``outputs``, else its last item."""
        declared = self.block_outputs(name)
        if not declared or last == UNKNOWN:
            return [last] if not declared else [UNKNOWN] * len(declared)
        out = []
        for index, ref in enumerate(declared):
            tensor = block_scope.lookup(ref)
            if tensor is None:
                raw = (self.blocks[name] or {}).get("outputs")
                opath: SpecPath = (
                    ("blocks", name, "outputs", index)
                    if isinstance(raw, list)
                    else ("blocks", name, "outputs")
                )
                if not self.lost_ids:
                    self.error(
                        f"block `{name}` returns {ref!r}, which its body does not define",
                        opath,
                        code="reference",
                        hint=self.hidden_hint(ref, block_scope)
                        or did_you_mean(ref, block_scope.visible())
                        or "outputs name ids of the block's layers (or its inputs)",
                    )
                tensor = UNKNOWN
            out.append(tensor)
        return out

    def export(self, scope: Scope, local: str, name: str, block_scope: Scope, outputs: list[str]) -> None:
        """Make a call's outputs and inner ids reachable from the caller: ``c0.x`` / ``c0[1]``
        for outputs, ``c0.h`` (and ``stage3.block2.out`` through nested calls) for ids."""
        inputs = set(self.block_inputs(name))
        for inner, tensor in block_scope.ids.items():
            if inner not in inputs:
                scope.ids.setdefault(f"{local}.{inner}", tensor)
        declared = self.block_outputs(name)
        for index, (ref, tensor) in enumerate(zip(declared, outputs, strict=False)):
            scope.ids[f"{local}.{ref}"] = tensor
            scope.ids[f"{local}[{index}]"] = tensor
        # For the hint of a reference to the call's bare automatic name (`inner_1`).
        if declared:
            scope.results[local] = f"{local}.{declared[0]}"
        elif outputs and outputs[0] != UNKNOWN:
            named = [inner for inner, t in block_scope.ids.items() if t == outputs[0] and inner not in inputs]
            named.sort(key=lambda inner: "." in inner or "[" in inner)  # its own ids first
            scope.results[local] = f"{local}.{named[0]}" if named else None
        for inner, result in block_scope.results.items():
            scope.results.setdefault(f"{local}.{inner}", None if result is None else f"{local}.{result}")

    def block_default(
        self, name: str, pname: str, param: BlockParam, args: dict[str, Any], entry: str, site: SpecPath
    ) -> bool:
        """Fill ``args[pname]`` with the parameter's default. A ``${…}`` default is evaluated
        against the vars, the arguments before it and ``in_channels``/``in_shape`` of the
        block's input (``channels: {type: int, default: "${in_channels}"}``); its errors name
        the calling item ``site``."""
        if (name, pname) in self.bad_defaults:
            args[pname] = POISONED  # refused where it is declared (check_blocks)
            return False
        if not is_expression(param.default) and not isinstance(param.default, (list, dict)):
            args[pname] = param.default
            return True
        if param.plain:  # what evaluating it gives: a copy, checked when declared
            args[pname] = copy_tree(param.default)  # as substitution would build it
            return True
        path: SpecPath = ("blocks", name, "params", pname, "default")
        env = self.layer_env(self.vars_env, self.shapes.get(entry), args)
        self.push_call(name, site, args)
        saved_context, self.context = self.context, self.next_context()
        try:
            good, value = self.evaluate(param.default, env, path)
            if good and not BLOCK_PARAM_TYPES.get(param.type, BLOCK_PARAM_TYPES["any"])(value):
                self.error(
                    param_type_error(param.type, pname, value, default=True),
                    path,
                    code="parameter",
                )
                good = False
        finally:
            self.pop_call()
            self.context = saved_context
        if not good:
            args[pname] = POISONED
            return False
        args[pname] = value
        return True

    def unwalked_body(self, name: str) -> None:
        """A call of block ``name`` failed on its arguments: the block's items are checked as a
        dormant block's, those no other call expands (a block whose every call failed would
        otherwise have no item checked at all, where a block nothing calls has them all)."""
        block = self.blocks.get(name)
        layers = block.get("layers") if isinstance(block, dict) else None
        if isinstance(layers, list) and id(layers) not in self.stopped:
            self.stopped.add(id(layers))
            self.dormant.append((layers, ("blocks", name, "layers")))

    def global_env(self, scope: Scope) -> dict[str, Any]:
        """Block bodies see the spec's vars and their own parameters, not the caller's names."""
        return self.vars_env

    # -- the structured tree -----------------------------------------------------------------
    def tree_element(self, kind_key: str, body: Any, path: SpecPath, entry: str) -> Container:
        """The tree node of a combinator item (its handler notes what it decides)."""
        raw = body if isinstance(body, dict) else {}
        if kind_key == "residual":
            return Residual(raw=raw, entry=entry, path=path)
        if kind_key == "parallel":
            return Parallel(raw=raw, entry=entry, path=path)
        return Repeat(entry=entry, path=path)

    def record_call(
        self,
        name: str,
        declared: dict[str, BlockParam],
        raw: dict[str, Any],
        args: dict[str, Any],
        prefix: str,
    ) -> None:
        """Note a block call's bound arguments, and the block's declaration once."""
        ordered = {p: args[p] for p in declared if p in args}
        self.record.note(args=ordered, raw_args=dict(raw), prefix=prefix)
        if name not in self.tree.blocks:
            spec = self.blocks[name] or {}
            loc = self.doc.key_loc(("blocks", name))
            self.tree.blocks[name] = BlockDef(
                name,
                declared,
                str(spec.get("description") or ""),
                loc,
                self.block_inputs(name),
                self.block_outputs(name),
            )

    def finish_tree(self, ir: ModelIR) -> ModelTree:
        """Fill in the tree's model fields and mark the layers pruning left out."""
        tree = self.tree
        tree.name, tree.description = ir.name, ir.description
        tree.input_name, tree.input_shape = ir.input_name, ir.input_shape
        tree.outputs, tree.sections = ir.outputs, ir.sections
        tree.defaults = {
            k: {p: v for p, (v, _) in ps.items() if v is not POISONED}
            for k, ps in self.spec_defaults.items()
            if ps
        }
        refs = self.data.get("outputs")
        refs = refs if isinstance(refs, list) else [refs] if refs is not None else []
        tree.output_refs = tuple(ref for ref in refs if isinstance(ref, str))
        if self.pruned:  # else every leaf stays live: no walk over thousands of leaves
            fill_pending(self.deferred)
            kept = {id(node) for node in ir.nodes}
            for leaf in layers_of(tree.body):
                leaf.live = id(leaf.node) in kept
        return tree


MAX_VALUE_NODES = 10_000
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


class _Located:
    """Where a layer item wrote each parameter (its mapping's key, or the item itself for a
    single value), looked up only when a shape error names one: most layers never ask."""

    __slots__ = ("path", "raw", "single")

    def __init__(self, path: SpecPath, raw: dict[str, Any], single: bool) -> None:
        self.path, self.raw, self.single = path, raw, single

    def get(self, key: str, default: SpecPath) -> SpecPath:
        if key not in self.raw:
            return default
        return self.path if self.single else (*self.path, key)


#: At most this many elements in a default copied without evaluation (BlockParam.plain).
PLAIN_DEFAULT_NODES = 1_000


def param_type_error(kind: str, pname: str, value: Any, *, default: bool = False) -> str:
    """The message for a block argument (or a parameter's default) of the wrong type."""
    what = f"the default of block parameter `{pname}`" if default else f"block parameter `{pname}`"
    return f"expected {kind} for {what}; received {value!r}"


def _plain_size(value: Any, depth: int) -> int:
    """The elements of ``value`` when it holds no ``${…}`` (nor anything but YAML's plain
    types) within :data:`MAX_VALUE_DEPTH` levels, else more than :data:`PLAIN_DEFAULT_NODES`."""
    kind = type(value)
    if kind in _FLAT:
        return PLAIN_DEFAULT_NODES + 1 if kind is str and "${" in value else 1
    if depth >= MAX_VALUE_DEPTH or kind not in (list, dict):
        return PLAIN_DEFAULT_NODES + 1
    total = 1
    for key, item in value.items() if kind is dict else enumerate(value):
        if kind is dict and type(key) is str and "${" in key:
            return PLAIN_DEFAULT_NODES + 1
        total += _plain_size(item, depth + 1)
        if total > PLAIN_DEFAULT_NODES:
            break
    return total


#: Argument types a memo key holds as they are (:meth:`Resolver.memo_key`).
_KEYED = frozenset({int, str, bool, type(None)})
_NO_SCOPE = contextlib.nullcontext()
_PLAIN_SCALARS = (int, float, bool)
_FLAT = frozenset({int, float, bool, str, type(None)})
_WRITTEN = frozenset({int, float, bool, type(None)})  # scalars no substitution changes
MAX_VALUE_DEPTH = 100


def _check_value_size(value: Any) -> None:
    """Refuse substituted values too big or too deep to print or walk: vars that nest each
    other (``l1: ["${l0}", "${l0}"]``, ``l2: ["${l1}", "${l1}"]``, …) share structure and
    would otherwise double at every step, hanging the first message that shows one."""
    if type(value) is list and len(value) < MAX_VALUE_NODES and all(type(v) in _FLAT for v in value):
        return  # a short list of scalars (most values: shapes, strides, paddings)
    count = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > MAX_VALUE_NODES or depth > MAX_VALUE_DEPTH:
            what = f"{MAX_VALUE_NODES:,} elements" if count > MAX_VALUE_NODES else f"{MAX_VALUE_DEPTH} levels"
            raise ExpressionError(
                f"expected a value of at most {what}; received a larger one",
                "vars that contain other vars multiply in size; write the value out instead",
            )
        if isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())


def var_order(raw: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The names of ``vars`` in an order where every var comes after the vars it reads (linear
    time: a chain of thousands of vars must not take quadratic passes), and, in declaration
    order, the vars on or behind a cycle, which no order can place. The resolver and the code
    emitter evaluate vars in this order."""
    refs = {name: var_refs(value, raw) for name, value in raw.items()}
    deps = {name: names - {name} for name, names in refs.items()}
    cyclic = {name for name, names in refs.items() if name in names}
    users: dict[str, list[str]] = {name: [] for name in raw}
    waiting = {name: len(names) for name, names in deps.items()}
    for name, names in deps.items():
        for dep in names:
            users[dep].append(name)
    ready = deque(name for name in raw if waiting[name] == 0 and name not in cyclic)
    order: list[str] = []
    while ready:
        name = ready.popleft()
        order.append(name)
        for user in users[name]:
            waiting[user] -= 1
            if waiting[user] == 0 and user not in cyclic:
                ready.append(user)
    placed = set(order)
    return order, [name for name in raw if name not in placed]


def var_cycles(raw: dict[str, Any], stuck: list[str]) -> list[list[str]]:
    """The cycles among the ``stuck`` vars (those :func:`var_order` cannot place): for each
    group of vars that read each other, the chain from its first var back to itself
    (``[a, b, a]``). Vars only behind a cycle are in none: they are its consequence."""
    members = set(stuck)
    position = {name: i for i, name in enumerate(raw)}
    deps = {name: sorted(var_refs(raw[name], raw) & members, key=position.__getitem__) for name in stuck}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in stuck:  # Tarjan's strongly connected components, without recursion
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(deps[root]))]
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(deps[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1 or node in deps[node]:
                    groups.append(group)
    chains = []
    for group in groups:
        inside = set(group)
        first = min(group, key=position.__getitem__)
        came_from: dict[str, str] = {}
        queue = deque([first])
        last = first
        while queue:  # the shortest way from `first` back to itself
            node = queue.popleft()
            if first in deps[node]:
                last = node
                break
            for child in deps[node]:
                if child in inside and child not in came_from and child != first:
                    came_from[child] = node
                    queue.append(child)
        chain = [first]
        while last != first:
            chain.append(last)
            last = came_from[last]
        chains.append([first, *reversed(chain[1:]), first])
    return sorted(chains, key=lambda chain: position[chain[0]])


#: Origin notes under one error: an expression that reads many vars names the first few.
MAX_ORIGIN_NOTES = 6


def _merge(found: dict[Note, str | None], more: dict[Note, str | None], step: str | None) -> None:
    """Add the origin notes ``more`` to ``found``, each with how its value reaches the error: a
    note's access (``"[0]"``) followed by this step's (``step``: how the expression here reads
    the name, ``None`` when it computes from it). Read two ways, the one that passes the value
    on as it is stands."""
    for note, access in more.items():
        reached = access + step if access is not None and step is not None else None
        if found.get(note) is None:
            found[note] = reached


def _step(access: tuple[str, str] | None, name: str) -> str | None:
    """How an expression whose :func:`read_access` is ``access`` reads ``name``: the subscripts
    it takes of it, ``None`` when it computes from it (or reads another name)."""
    return access[1] if access is not None and access[0] == name else None


def _fold_keys(found: dict[Note, str | None]) -> tuple[Note, ...]:
    """The fold keys (:meth:`Diagnostics.add`'s ``origins``) of the origins ``found``: those
    whose value reaches the error as it is, each marked with its access, so that the same bad
    value met again folds (``${fs[0]}`` at two layers) and another element of the same var
    (``${fs[1]}``) is its own mistake."""
    keys = [replace(note, path=note.path + access) for note, access in found.items() if access is not None]
    return tuple(keys)[:MAX_ORIGIN_NOTES]


def _computed_key(text: str | None, found: dict[Note, str | None]) -> tuple[Note | Computed, ...]:
    """The fold key of a value the expression ``text`` computes from the origins ``found``
    (those it reads other than as they are): one key for all of them together, with the
    expression's text, so that the same expression of the same values (``${width * 2}`` at two
    layers, after ``--set vars.width=0``) folds into one error, while another expression of
    them (``${width - 2}``), or the same one of another origin, stays an error of its own (the
    fold also needs the same message, so the same received value). With it, a
    :class:`~cnnspec.errors.Computed` key per origin: an error with the same message on that
    origin's own value (``${width}``: 0 fails as ``${width * 2}`` does) is the one mistake, the
    origin's value. None when the expression
    reads every origin as it is (:func:`_fold_keys` has those) or reads none."""
    computed = [note for note, access in found.items() if access is None]
    if text is None or not computed:
        return ()
    body = re.sub(r"\s+", "", text)  # `${width*2}` and `${width * 2}` are one expression
    reads = "; ".join(f"{note.message} ({note.loc})" for note in found)
    # ... and each origin computed from, for the errors on its own value (``${width}``)
    return (Note(f"{body} of {reads}", None, "computed"), *(Computed(note) for note in computed))


#: A name with constant subscripts and nothing else: ``fs``, ``fs[0]``, ``cfg['w'][1]``.
_ACCESS = re.compile(r"\s*([A-Za-z_]\w*)((?:\s*\[\s*(?:-?\d+|'[^'\\]*'|\"[^\"\\]*\")\s*\])*)\s*")
_SUBSCRIPT = re.compile(r"\[\s*(-?\d+|'[^'\\]*'|\"[^\"\\]*\")\s*\]")


def read_access(text: str) -> tuple[str, str] | None:
    """``(name, subscripts)`` when ``text`` is ``${name}`` alone (``""``) or ``${name}`` with
    constant subscripts (``"[0]"``, spaces dropped): what it reads is the name's value as it
    is, or one element of it. ``None`` for any other expression (a value computed)."""
    found = FULL_EXPRESSION.match(text)
    read = _ACCESS.fullmatch(found.group(1)) if found is not None else None
    if read is None:
        return None
    return read.group(1), "".join(f"[{index}]" for index in _SUBSCRIPT.findall(read.group(2)))


def bare_name(text: str) -> str | None:
    """The name ``text`` reads when it is ``${name}`` and nothing else (its value as it is)."""
    found = FULL_EXPRESSION.match(text)
    body = found.group(1).strip() if found is not None else ""
    return body if body.isidentifier() else None


def var_origin(doc: SourceDoc, env: Mapping[str, Any], name: str) -> list[Note]:
    """``name is integer 0, set at …`` for the var ``name`` of ``env`` (the evaluated vars),
    or ``set by --set …``; none for a var that failed or that no ``vars:`` entry wrote."""
    loc = doc.locs.get(("vars", name))
    value = env.get(name, POISONED)
    if loc is None or value is POISONED:
        return []
    option = SOURCE_TEXTS.get(loc.file) if loc.file.startswith(COMMAND_LINE_PREFIX) else None
    return [origin_note(name, value, loc, format_path(("vars", name)), option)]


def section_origins(
    doc: SourceDoc, env: Mapping[str, Any], path: SpecPath
) -> tuple[tuple[Note, ...], tuple[Note | Computed, ...]]:
    """For an error of the data, training or runtime sections on the ``${…}`` written at
    ``path``: where each var it reads was set (those sections read only vars, ``env``), as
    model errors say it; and those of them to fold by (:meth:`Resolver.origin_notes`' second part: the
    var read bare, ``${n}``, its value as it is). None when the error is not about an
    expression, or a name it reads is no var (the error is then about the text)."""
    text = _expression_text(doc.data, path)
    names = _names_read(text) if text is not None else None
    if text is None or not names or any(name not in env for name in names):
        return (), ()
    notes = tuple(dict.fromkeys(note for name in names for note in var_origin(doc, env, name)))
    notes = notes[:MAX_ORIGIN_NOTES]
    access = read_access(text)
    found = dict.fromkeys(notes, access[1] if access is not None else None)
    return notes, (*_fold_keys(found), *_computed_key(text, found))


def _expression_text(data: Any, path: SpecPath) -> str | None:
    """The ``${…}`` text written at ``path``, if an expression is written there."""
    text = value_at(data, path)
    return text if is_expression(text) else None


def _names_read(text: str) -> list[str] | None:
    """The names the expressions in ``text`` read, in the order they are first written;
    ``None`` when one does not parse (its error is about the text)."""
    found: list[str] = []
    bodies = [m.group(1)] if (m := FULL_EXPRESSION.match(text)) and "${" not in m.group(1) else None
    for body in bodies if bodies is not None else EMBEDDED_EXPRESSION.findall(text):
        try:
            names = names_in(body)
        except ExpressionError:
            return None
        found.extend(sorted(names, key=lambda n, b=body: _first_use(b, n)))
    return list(dict.fromkeys(found))


def _first_use(body: str, name: str) -> int:
    """Where ``name`` is first written as a whole word in ``body`` (for the order of notes)."""
    match = re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", body)
    return match.start() if match else len(body)


def _chain_text(chain: list[str]) -> str:
    if len(chain) > 8:
        chain = [*chain[:4], "…", *chain[-3:]]
    return " → ".join(chain)


def _example(kind: LayerKind) -> str:
    required = [p.name for p in kind.params if p.required]
    sample = {"filters": 32, "kernel_size": 3, "units": 10, "rate": 0.5, "height": 32, "width": 32}
    parts = ", ".join(f"{name}: {sample.get(name, '…')}" for name in required)
    return f"e.g. {kind.name}: {{{parts}}}"


def resolve(doc: SourceDoc, diags: Diagnostics | None = None, *, allow_outside: bool = False) -> ModelIR:
    """Resolve a schema-checked document into the IR; raise SpecError on any error.

    ``allow_outside`` lets a backbone's spec file lie outside the spec's folder."""
    own = diags if diags is not None else Diagnostics()
    ir = Resolver(doc, own, allow_outside=allow_outside).resolve()
    own.raise_if_errors()
    return ir


def tuple_fragments(raw: dict[Any, Any]) -> dict[Any, Any]:
    """The pieces of a Python tuple written in a flow mapping: YAML reads
    ``{kernel_size: (3, 3)}`` as ``kernel_size: "(3"`` and a key ``3)`` without a value. Maps
    the first piece's key to the tuple's whole text and every later piece's key to ``None``
    (skipped), so the mistake is one error at the parameter, not also an unknown ``3)``."""
    found: dict[Any, Any] = {}
    items = list(raw.items())
    for index, (key, value) in enumerate(items):
        if not (isinstance(value, str) and value.lstrip().startswith("(") and ")" not in value):
            continue
        pieces = [value.strip()]
        tail: list[Any] = []
        for later, rest in items[index + 1 :]:
            text = str(later).strip()
            if rest is not None or "(" in text or later in found:
                break
            pieces.append(text)
            tail.append(later)
            if text.endswith(")"):
                found[key] = ", ".join(pieces)
                found.update(dict.fromkeys(tail))
                break
    return found


def _division_hint(param: Param, written: Any, value: Any, env: dict[str, Any]) -> str | None:
    """A hint for a whole float (``16.0``) that an expression with ``/`` computed where an
    integer is wanted: ``/`` always gives a float, ``//`` the integer. Only where the rewritten
    expression, evaluated in the same ``env``, gives an integer the parameter takes (``w // 2.0``
    is still a float)."""
    if not (isinstance(written, str) and "${" in written and "/" in written.replace("//", "")):
        return None
    if not (isinstance(value, float) and value.is_integer() and param.problem(int(value)) is None):
        return None
    rewritten = written.replace("/", "//").replace("////", "//")
    try:
        result = substitute(rewritten, env)
    except (Poisoned, ExpressionError):
        return None
    if type(result) is not int or param.problem(result) is not None:
        return None
    return f"use // for integer division: / always gives a float ({rewritten})"


def _not_image_rank(rank: int) -> bool:
    """Whether an input of ``rank`` axes (without the batch axis) fed to image layers is the
    input shape's mistake, reported where it was set (:meth:`Resolver.report_flat_input`): 2
    (no channel axis) or more than 3 (a batch axis, an extra one). One axis is left to each
    layer: a flat vector is more often a layer's wrong input than an image's."""
    return rank == 2 or rank > 3


def _takes_an_image_of(kind: LayerKind, params: dict[str, Any], shape: Shape) -> bool:
    """Whether a layer of any rank, refused for the input ``shape`` of 2 or more than 3 axes,
    takes the image that shape was meant to be (``[H, W, 1]``, or the shape without its unit
    axes): its error is then the input's, not its parameters'."""
    image = [*shape, 1] if len(shape) == 2 else _without_unit_axes(list(shape))
    if image is None:
        return False
    try:
        kind.output_shape(params, [tuple(image)])
    except ShapeError:
        return False
    return True


def _without_unit_axes(shape: list[int]) -> list[int] | None:
    """``shape`` of more than 3 axes brought to 3 by dropping axes of size 1 from the front
    (a batch axis), then the back; ``None`` when that does not reach 3 axes."""
    while len(shape) > 3 and shape[0] == 1:
        shape = shape[1:]
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    return shape if len(shape) == 3 else None
