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

The resolver is one walk with one state (:class:`Resolver`), written in parts, a module each:
this module sets up the walk's state and walks the layer lists; the others add the parts the
walk calls into:

- :mod:`cnnspec.spec.resolve_layers`: a plain layer checked and emitted;
- :mod:`cnnspec.spec.resolve_vars`: the spec's ``vars``, in the order they read one another;
- :mod:`cnnspec.spec.resolve_combinators`: ``residual``, ``parallel`` and ``repeat``;
- :mod:`cnnspec.spec.resolve_blocks`: block declarations and calls;
- :mod:`cnnspec.spec.resolve_replay`: identical block calls replayed, not walked again;
- :mod:`cnnspec.spec.resolve_origins`: the notes that say where a value and a call came from;
- :mod:`cnnspec.spec.resolve_hints`: the hints of errors about references and names.

What they share: :mod:`cnnspec.spec.scope` (the names an item sees) and
:mod:`cnnspec.spec.limits` (how large a spec may grow).
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator
from typing import Any

from cnnspec.errors import (
    COMMAND_LINE_PREFIX,
    Diagnostics,
    Loc,
    Note,
    SpecPath,
    closest,
    did_you_mean,
    format_path,
    key_hint,
    spelled,
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
    ancestors,
    layers_of,
)
from cnnspec.layers.params import MAX_SIZE, Param, meant_parameters, param_synonym
from cnnspec.layers.registry import REGISTRY, Shape
from cnnspec.spec.backbone import KIND as BACKBONE
from cnnspec.spec.backbone import resolve_backbone
from cnnspec.spec.expr import POISONED, ExpressionError, Poisoned, is_expression, substitute
from cnnspec.spec.items import ITEM_EXTRAS
from cnnspec.spec.limits import MAX_INPUT_RANK, MAX_NESTING, MAX_STEPS, MAX_VALUE_NODES, check_value_size
from cnnspec.spec.loader import SourceDoc
from cnnspec.spec.memo import CallMemo, Pending, Site, SiteLog, fill_pending
from cnnspec.spec.resolve_blocks import BlockCalls, BlockParam
from cnnspec.spec.resolve_combinators import Combinators
from cnnspec.spec.resolve_hints import ReferenceHints
from cnnspec.spec.resolve_layers import LayerChecks
from cnnspec.spec.resolve_origins import OriginNotes
from cnnspec.spec.resolve_replay import CallReplay
from cnnspec.spec.resolve_vars import VarResolution
from cnnspec.spec.scope import COMBINATORS, IDENTIFIER, UNKNOWN, CallName, MemoShape, Scope
from cnnspec.spec.varrefs import Shadow, names_read, unread_params, unread_vars


def _augments(kind: str) -> bool:
    """Whether a layer of ``kind`` may be in the augmentation: a random augmentation kind. A
    preprocessing layer that always acts (rescaling, resizing) would act on the training
    images alone, so validation, test, evaluate and predict would feed the model other pixels."""
    found = REGISTRY.get(kind)
    return found is not None and found.augmentation


def _preprocesses(kind: str) -> bool:
    """Whether ``kind`` is a preprocessing kind that is no random augmentation."""
    found = REGISTRY.get(kind)
    return found is not None and found.preprocessing and not found.augmentation


#: Why a preprocessing layer that always acts is refused in ``augmentation``, and where it goes.
_TRAINING_ONLY = (
    "augmentation acts on the training images alone: validation, test, evaluate and predict "
    "would feed the model images without it"
)
_TO_MODEL = "put it first in `model`, where it acts at inference too"


class Resolver(BlockCalls, CallReplay, Combinators, LayerChecks, OriginNotes, ReferenceHints, VarResolution):
    """Walks the spec's layer lists and emits :class:`Node` objects. The state of the walk is set
    up here (:meth:`__init__`); the parts it is written in (the bases, one module each: see this
    module's docstring) read and change it."""

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
        #: The items whose ``id`` was refused (a duplicate, no identifier): the names of the
        #: layers inside them, which their id would have prefixed, may clash without being
        #: the mistake (:meth:`under_refused_id`).
        self.refused_ids: list[SpecPath] = []
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
        #: ModelIR.backbone_defaulted and backbone_layers (a backbone's resolver shares them)
        self.backbone_defaulted: dict[str, dict[SpecPath, dict[str, Any]]] = {}
        self.backbone_layers: dict[str, str] = {}
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
                check_value_size(result)
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
                check_value_size(value)  # refuse before evaluating thousands of expressions
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
            check_value_size(result)
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
            check_value_size(value)  # refuse before evaluating thousands of expressions
        if isinstance(value, list):
            result: Any = [self._substitute(v, env) for v in value]
        elif isinstance(value, dict):
            result = {k: self._substitute(v, env) for k, v in value.items()}
        else:
            result = substitute(value, env) if is_expression(value) else value
        if isinstance(result, (list, dict)):
            check_value_size(result)
        return result

    # -- entry point -----------------------------------------------------------------------
    def resolve(self) -> ModelIR:
        name = self.data.get("name")
        reported = any(d.path == "name" for d in self.diags.errors)  # by the schema, which waits for us
        if isinstance(name, str) and not (IDENTIFIER.fullmatch(name) and name.isascii()) and not reported:
            # The schema's pattern uses `$`, which Python's re lets match before a final newline.
            said = spelled(name)
            self.error(f"expected an identifier ([A-Za-z_][A-Za-z0-9_]*); received {said}", ("name",))
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
            backbone_defaulted=self.backbone_defaulted,
            backbone_layers=self.backbone_layers,
        )
        ir.tree = self.finish_tree(ir)
        if self.deferred:
            ir.pending_tree = functools.partial(fill_pending, self.deferred)
        return ir

    def warn_unread_vars(self) -> None:
        """Warn about each var that no expression reads. Setting a misspelt var (``clases``
        beside the ``classes`` a zoo model declares) changes nothing, so say so, with the
        read var it was probably meant to be (one set in another file: the zoo model's, or the
        spec's beside ``--set``; one set beside it is no typo of it, since renaming would set it
        twice: ``h`` beside a read ``w`` was "did you mean `w`?"). So does setting a var whose
        every ``${…}`` reads a block parameter or a loop variable of its name: the warning names
        them, where they are declared (``--set vars.w=64`` would otherwise change nothing without a word)."""
        raw = self.data.get("vars") or {}
        unread = unread_vars(self.data)
        read = [name for name in raw if isinstance(name, str) and name not in unread]
        for name, shadows in unread.items():
            loc = self.doc.key_loc(("vars", name))
            if loc is not None and loc.file != self.doc.file and not loc.file.startswith(COMMAND_LINE_PREFIX):
                continue  # the extended file's var, which this spec no longer reads: not a typo of its own
            if not shadows:
                elsewhere = [other for other in read if not self.set_beside(other, loc)]
                self.diags.warning(
                    f"var {name!r} is set but never read",
                    loc,
                    format_path(("vars", name)),
                    code="unused-var",
                    hint=did_you_mean(name, elsewhere) or f"read it with `${{{name}}}`, or remove it",
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

    def set_beside(self, name: str, loc: Loc | None) -> bool:
        """Whether the var ``name`` is set in the file of ``loc`` (where another var is set)."""
        where = self.doc.key_loc(("vars", name))
        return where is not None and loc is not None and where.file == loc.file

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
                f"expected a mapping of layer kinds to parameters; received {spelled(raw)}",
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
                    f"expected a mapping of `{kind_name}` parameters; received {spelled(params)}",
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
            or not 1 <= len(shape) <= MAX_INPUT_RANK
            or not all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= MAX_SIZE for d in shape)
        ):
            # (the schema's bounds: a `${…}` passed it as an expression, whatever it gives)
            self.error(
                f"expected a list of 1 to {MAX_INPUT_RANK} positive integers up to {MAX_SIZE:,}; "
                f"received {spelled(shape)}",
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
            if isinstance(kind, str) and _preprocesses(kind):
                self.error(
                    f"expected a random augmentation layer; received {spelled(kind)}: {_TRAINING_ONLY}",
                    path,
                    hint=_TO_MODEL,
                )
                continue
            if isinstance(kind, str) and kind in REGISTRY and not _augments(kind):
                self.error(
                    f"expected an augmentation layer; received {spelled(kind)}",
                    path,
                    hint="augmentation takes random_* layers; put other layers in `model`",
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
                    f"({foreign.kind}), "
                    + (
                        f"which is no random layer: {_TRAINING_ONLY}"
                        if _preprocesses(foreign.kind)
                        else "which augmentation cannot apply"
                    ),
                    path,
                    hint="augmentation takes random_* layers in a line, also through blocks and "
                    "repeats; put other layers, and branches, in `model`",
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
        if not all(_augments(node.kind) for node in augmentation):
            return augmentation  # (said at its item above)
        self.check_line(augmentation)
        out = self.shapes.get(current)
        if out is not None and input_shape is not None and out != input_shape:
            self.error(
                f"expected augmentation to keep the input shape {list(input_shape)}; it produces {list(out)}",
                ("augmentation",),
                hint="put a layer that changes the shape in `model` (it also acts at inference)",
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
                f"expected a layer (a kind name or a mapping); received {spelled(item)}",
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
                    f"expected true or false; received {spelled(condition)}",
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
            self.refused_ids.append(path)
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
        if isinstance(value, str) and self.diags.boolean_only(self.loc((*path, "trainable"))):
            return POISONED  # (a YAML 1.1 `no`: its error, as it was read, now says a boolean alone)
        if not isinstance(value, bool):
            self.error(
                f"expected true or false; received {spelled(value)}",
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

    def under_refused_id(self, path: SpecPath) -> bool:
        """Whether ``path`` (or a block call it is walked in) lies inside an item whose ``id``
        was refused: a second repeat of a duplicate ``id: stage`` named its layers as if it had
        none, and each clash of those names was a knock-on error, hinted to give the repeat the
        id it has."""
        places = (path, *self.call_sites)
        return any(where[: len(refused)] == refused for refused in self.refused_ids for where in places)

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
                f"expected an identifier ([A-Za-z_][A-Za-z0-9_]*); received {spelled(item_id)}",
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

    def path_text(self, path: SpecPath) -> str:
        """``format_path(path)``, once per path: replayed and repeated items share paths."""
        text = self.path_texts.get(path)
        if text is None:
            text = self.path_texts[path] = format_path(path)
        return text

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


_NO_SCOPE = contextlib.nullcontext()
_PLAIN_SCALARS = (int, float, bool)
_WRITTEN = frozenset({int, float, bool, type(None)})  # scalars no substitution changes


def resolve(doc: SourceDoc, diags: Diagnostics | None = None, *, allow_outside: bool = False) -> ModelIR:
    """Resolve a schema-checked document into the IR; raise SpecError on any error.

    ``allow_outside`` lets a backbone's spec file lie outside the spec's folder."""
    own = diags if diags is not None else Diagnostics()
    ir = Resolver(doc, own, allow_outside=allow_outside).resolve()
    own.raise_if_errors()
    return ir
