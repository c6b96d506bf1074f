"""The structure of the emitted model code: spec + IR → functions of statements.

The builder walks the composed spec the way the resolver does, but writes code instead of
nodes: each block becomes a function with the block's parameters as keyword arguments,
``repeat`` becomes a ``for`` loop, ``vars`` become module constants and ``${…}`` expressions
become the same Python expressions. Layer names are written as the resolver makes them
(``f"{name}_conv2d_{i + 1}"``), with counters tracked symbolically through loops and
conditions.

Where a construct cannot be written with names and arguments that provably match, the
builder raises :class:`NeedConcrete`; the emitter then unrolls that loop or inlines that
block (a :class:`Plan`) and tries again. The abstract interpreter in
:mod:`cnnspec.backends.codegen_check` then checks the result as a safety net only: a
difference is an internal error. :func:`flat_model` writes the IR itself, one call per
layer, which is always possible.
"""

from __future__ import annotations

import ast
import copy
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cnnspec.api import CompiledSpec
from cnnspec.backends.codegen_check import (
    BUILTINS,
    KERAS_NORMALIZED,
    Unknown,
    default_kwargs,
    evaluate,
    same_value,
    tuple_kwargs,
)
from cnnspec.backends.codegen_values import (
    BUILTIN_NAMES,
    UnsafeValue,
    comment_text,
    identifier_problem,
    literal_node,
    safe_name,
)
from cnnspec.errors import Diagnostics, Loc, SpecPath
from cnnspec.ir import INPUT, ModelIR, Node
from cnnspec.layers.params import Param
from cnnspec.layers.registry import REGISTRY, LayerKind, Shape
from cnnspec.spec.expr import ExpressionError, is_expression, parse, substitute
from cnnspec.spec.resolve import COMBINATORS, ITEM_EXTRAS, var_order

#: Names the module itself defines or imports; spec names may not take them.
MODULE_NAMES = frozenset(
    {
        "keras",
        "layers",
        "build_model",
        "build_augmentation",
        "projection_strides",
    }
)
#: Extra module-level names of the training script (see templates/train.py.j2).
SCRIPT_NAMES = frozenset(
    {
        "argparse",
        "json",
        "Path",
        "np",
        "tf",
        "load_digits",
        "classification_report",
        "confusion_matrix",
        "train_test_split",
        "SEED",
        "load_data",
        "split",
        "limit",
        "prepare_images",
        "make_dataset",
        "WarmUp",
        "build_optimizer",
        "compile_model",
        "build_callbacks",
        "class_weights",
        "evaluate_model",
        "plot_history",
        "plot_confusion_matrix",
        "parse_args",
        "main",
    }
)
ANNOTATIONS = {
    "int": "int",
    "float": "float",
    "number": "float",
    "bool": "bool",
    "str": "str",
    "list": "list",
}


class NeedConcrete(Exception):
    """A construct the builder cannot write structurally (names or values would differ)."""

    def __init__(self, reason: str, block: str | None, loop: SpecPath | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.block = block
        self.loop = loop


@dataclass
class Plan:
    """Which loops to unroll and which blocks to inline (grown by the emitter's retries)."""

    inline: set[str] = field(default_factory=set)
    unroll: set[SpecPath] = field(default_factory=set)
    unroll_all: bool = False
    notes: list[str] = field(default_factory=list)

    def refine(self, block: str | None, loop: SpecPath | None, reason: str) -> bool:
        """Take one step towards literal code; False when nothing is left to try."""
        if loop is not None and loop not in self.unroll and not self.unroll_all:
            self.unroll.add(loop)
            self.notes.append(f"unrolled the repeat at {_path_text(loop)}: {reason}")
            return True
        if block is not None and block not in self.inline:
            self.inline.add(block)
            self.notes.append(f"inlined block `{block}`: {reason}")
            return True
        if not self.unroll_all:
            self.unroll_all = True
            self.notes.append(f"unrolled every repeat: {reason}")
            return True
        return False


def _path_text(path: SpecPath) -> str:
    from cnnspec.errors import format_path

    return format_path(path)


# -- statements -------------------------------------------------------------------------------
UNKNOWN: Any = object()


@dataclass
class LoopFrame:
    """A symbolic loop (or condition) being written; collects counter increments."""

    var: str | None
    path: SpecPath | None
    is_loop: bool
    test: ast.expr | None = None
    shape_test: bool = False
    used: bool = False
    start: dict[tuple[Any, ...], Count] = field(default_factory=dict)
    incr: dict[tuple[Any, ...], int] = field(default_factory=dict)
    tainted: set[tuple[Any, ...]] = field(default_factory=set)
    coef: dict[tuple[Any, ...], int] = field(default_factory=dict)


@dataclass(frozen=True)
class Term:
    """``coef * expr`` inside a counter; ``frame``/``key`` defer a loop's coefficient."""

    coef: int
    expr: ast.expr
    frame: LoopFrame | None = None
    key: tuple[Any, ...] | None = None

    def coefficient(self) -> int:
        if self.frame is not None and self.key is not None:
            return self.frame.coef[self.key]
        return self.coef


@dataclass(frozen=True)
class Count:
    """A layer counter: ``const + Σ terms`` (terms use loop variables and conditions)."""

    const: int = 0
    terms: tuple[Term, ...] = ()
    poison: str | None = None

    def plus(self, n: int) -> Count:
        return Count(self.const + n, self.terms, self.poison)

    def node(self) -> ast.expr:
        expr: ast.expr | None = None
        for term in self.terms:
            coef = term.coefficient()
            if coef == 0:
                continue
            part = copy.deepcopy(term.expr)
            if coef != 1:
                part = ast.BinOp(ast.Constant(coef), ast.Mult(), part)
            expr = part if expr is None else ast.BinOp(expr, ast.Add(), part)
        if expr is None:
            return ast.Constant(self.const)
        if self.const:
            expr = ast.BinOp(expr, ast.Add(), ast.Constant(self.const))
        return expr

    @property
    def static(self) -> bool:
        return not self.terms


PrefixPart = str | ast.expr | Count


@dataclass(frozen=True)
class NameRef:
    """A layer name: static text, the function's name parameter, counters."""

    parts: tuple[PrefixPart, ...]

    def node(self) -> ast.expr:
        values: list[ast.expr] = []
        text = ""
        for part in self.parts:
            if isinstance(part, Count) and part.static:
                part = str(part.const)
            if isinstance(part, str):
                text += part
                continue
            if text:
                values.append(ast.Constant(text))
                text = ""
            expr = part.node() if isinstance(part, Count) else part
            values.append(ast.FormattedValue(expr, -1, None))
        if not values:
            return ast.Constant(text)
        if text:
            values.append(ast.Constant(text))
        return ast.JoinedStr(values)

    def static_text(self) -> str | None:
        out = ""
        for part in self.parts:
            if isinstance(part, Count) and part.static:
                out += str(part.const)
            elif isinstance(part, str):
                out += part
            else:
                return None
        return out


@dataclass
class Stmt:
    """One statement of a generated function (rendered by the templates)."""

    kind: str  # comment | layer | assign | call | for | if | return | blank
    target: str = ""
    cls: str = ""
    func: str = ""
    kwargs: list[tuple[str, ast.expr]] = field(default_factory=list)
    name: NameRef | None = None
    inputs: list[str] = field(default_factory=list)
    many: bool = False
    value: ast.expr | None = None
    body: list[Stmt] = field(default_factory=list)
    frame: LoopFrame | None = None
    text: str = ""


@dataclass
class FuncParam:
    name: str
    annotation: str | None
    default: ast.expr | None
    fill: ast.expr | None = None  # for list defaults: `if p is None: p = [...]`


@dataclass
class Function:
    """A generated function: a block, or ``build_model``."""

    name: str
    block: str | None
    tensor: str | None
    params: list[FuncParam]
    prefix_param: str | None
    doc: str
    comment: str
    body: list[Stmt]


@dataclass
class Constant:
    name: str
    value: ast.expr
    comment: str


@dataclass
class ModelModule:
    """Everything the model templates need."""

    name: str
    description: str
    constants: list[Constant]
    functions: list[Function]
    augmentation: list[Stmt]
    uses_projection: bool
    notes: list[str]
    flat: bool


# -- contexts ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Binding:
    """What a spec name means in generated code: a Python expression and, when known, its value."""

    node: ast.expr
    value: Any = UNKNOWN
    frame: LoopFrame | None = None


@dataclass(frozen=True)
class TensorRef:
    var: str
    ir: str | None = None
    shape: Shape | None = None


@dataclass
class IdScope:
    entry: TensorRef
    parent: IdScope | None
    ids: dict[str, TensorRef] = field(default_factory=dict)

    def lookup(self, ref: str) -> TensorRef | None:
        scope: IdScope | None = self
        while scope is not None:
            if ref in scope.ids:
                return scope.ids[ref]
            scope = scope.parent
        return self.entry if ref == INPUT else None

    def child(self, entry: TensorRef | None = None) -> IdScope:
        return IdScope(entry if entry is not None else self.entry, self)


@dataclass
class FuncState:
    name: str
    block: str | None
    taken: set[str]
    counters: dict[tuple[Any, ...], Count] = field(default_factory=dict)
    frames: list[LoopFrame] = field(default_factory=list)
    is_model: bool = False

    def allocate(self, wanted: str, fallback: str = "t") -> str:
        name = safe_name(wanted, self.taken, fallback)
        self.taken.add(name)
        return name


@dataclass(frozen=True)
class Ctx:
    fn: FuncState
    prefix: tuple[PrefixPart, ...]
    names: dict[str, Binding]
    scope: IdScope
    chain: str
    out: list[Stmt]

    def key(self, extra: str = "") -> tuple[Any, ...]:
        parts: list[Any] = []
        for part in self.prefix:
            if isinstance(part, str):
                parts.append(("s", part))
            elif isinstance(part, Count):
                parts.append(("c", part.const, tuple(ast.dump(t.expr) for t in part.terms)))
            else:
                parts.append(("e", ast.dump(part)))
        return (*parts, ("s", extra))


# -- the builder ------------------------------------------------------------------------------
class Builder:
    """Writes the model module for one compiled spec under one :class:`Plan`."""

    def __init__(self, compiled: CompiledSpec, plan: Plan, *, script: bool = False) -> None:
        self.compiled = compiled
        self.doc = compiled.doc
        self.data = compiled.doc.data
        self.ir: ModelIR = compiled.ir
        self.plan = plan
        self.blocks: dict[str, Any] = self.data.get("blocks") or {}
        self.ir_nodes: dict[str, Node] = {node.name: node for node in self.ir.nodes}
        self.functions: dict[str, Function] = {}
        self.order: list[str] = []
        self.building: list[str] = []
        self.uses_projection = False
        self.module_names = set(MODULE_NAMES) | (set(SCRIPT_NAMES) if script else set())
        self.constants: list[Constant] = []
        self.var_bindings: dict[str, Binding] = {}
        self.input_name = self.ir.input_name

    # -- errors ----------------------------------------------------------------------------
    def need(self, ctx: Ctx, reason: str) -> NeedConcrete:
        loop = next((f.path for f in reversed(ctx.fn.frames) if f.is_loop), None)
        return NeedConcrete(reason, ctx.fn.block, loop)

    # -- names of the module ---------------------------------------------------------------
    def check_names(self) -> None:
        """Refuse spec names that cannot be Python names (located errors, all at once)."""
        diags = Diagnostics()
        taken: dict[str, str] = {}
        for name in self._used_blocks():
            problem = identifier_problem(name)
            if problem is None and name in self.module_names:
                problem = (
                    "expected a block name that the generated module does not use for itself; "
                    f"received {name!r}"
                )
            if problem is None and name.upper() == name and name in {v.upper() for v in self._vars()}:
                problem = f"block {name!r} has the same name as a variable's constant"
            if problem:
                diags.error(
                    problem,
                    self.doc.key_loc(("blocks", name)),
                    ("blocks", name),
                    code="codegen-identifier",
                    hint=f"rename the block (e.g. `{_suggest(name)}_block`) to generate Python code",
                )
            taken[name] = "block"
            params = (self.blocks[name] or {}).get("params") or {}
            for pname in params:
                problem = identifier_problem(pname)
                if problem:
                    diags.error(
                        problem,
                        self.doc.key_loc(("blocks", name, "params", pname)),
                        ("blocks", name, "params", pname),
                        code="codegen-identifier",
                        hint=f"rename the parameter (e.g. `{_suggest(pname)}_value`) to generate Python code",
                    )
        for var in self._vars():
            constant = var.upper()
            problem = identifier_problem(var)
            if problem is None:
                problem = identifier_problem(constant)
            if problem is None and (constant in self.module_names or constant in taken):
                problem = (
                    f"the constant {constant!r} of variable {var!r} is already a name in the generated module"
                )
            if problem:
                diags.error(
                    problem,
                    self.doc.key_loc(("vars", var)),
                    ("vars", var),
                    code="codegen-identifier",
                    hint="rename the variable to generate Python code",
                )
            taken[constant] = "var"
        diags.raise_if_errors()

    def _vars(self) -> dict[str, Any]:
        return self.data.get("vars") or {}

    def _used_blocks(self) -> list[str]:
        used: list[str] = []

        def visit(items: Any) -> None:
            if not isinstance(items, list):
                return
            for item in items:
                if isinstance(item, str):
                    keys = [item]
                    bodies: list[Any] = []
                elif isinstance(item, dict):
                    keys = [k for k in item if k not in ITEM_EXTRAS]
                    bodies = [item[k] for k in keys]
                else:
                    continue
                for key, body in zip(keys, bodies or [None] * len(keys), strict=False):
                    if key in self.blocks and key not in used:
                        used.append(key)
                        visit((self.blocks[key] or {}).get("layers"))
                    if key in COMBINATORS and isinstance(body, dict):
                        visit(body.get("body"))
                        visit(body.get("layers"))
                        if isinstance(body.get("shortcut"), list):
                            visit(body.get("shortcut"))
                        for branch in body.get("branches") or []:
                            visit(branch)

        visit(self.data.get("model"))
        return used

    # -- entry point -----------------------------------------------------------------------
    def build(self) -> ModelModule:
        self.check_names()
        self.build_constants()
        model = self.build_model_function()
        functions = [self.functions[name] for name in self.order]
        return ModelModule(
            name=self.ir.name,
            description=self.ir.description,
            constants=self.constants,
            functions=[*functions, model],
            augmentation=augmentation_statements(self.ir, self.doc),
            uses_projection=self.uses_projection,
            notes=list(self.plan.notes),
            flat=False,
        )

    def build_constants(self) -> None:
        raw: dict[str, Any] = self._vars()
        env: dict[str, Any] = {}
        # the resolver's order: each var after the vars it reads (linear; a pass per var with a
        # did-you-mean per miss was cubic: an 800-var chain took 130 s)
        order, cyclic = var_order(raw)
        if cyclic:
            raise NeedConcrete("variables that cannot be ordered", None, None)
        for name in order:
            value = raw[name]
            try:
                result = _substitute(value, env)
            except ExpressionError:
                raise NeedConcrete(f"variable {name!r} cannot be evaluated", None, None) from None
            env[name] = result
            constant = name.upper()
            node = literal_node(result)
            if _contains_expression(value):
                try:
                    node = self.translate_value(value, self.var_bindings, None, fold=False)
                except (Unknown, ExpressionError, UnsafeValue):
                    node = literal_node(result)
                if any(isinstance(n, ast.JoinedStr) for n in ast.walk(node)):
                    node = literal_node(result)
            loc = self.doc.loc(("vars", name))
            self.constants.append(Constant(constant, node, _where(loc)))
            self.var_bindings[name] = Binding(ast.Name(constant, ast.Load()), result)

    def build_model_function(self) -> Function:
        taken = set(self.module_names) | {c.name for c in self.constants} | set(self.functions)
        taken |= set(self._used_blocks())
        fn = FuncState("build_model", None, taken, is_model=True)
        inputs_var = fn.allocate("inputs")
        chain = fn.allocate("x")
        entry = TensorRef(inputs_var, self.input_name, tuple(self.ir.input_shape))
        out: list[Stmt] = [_input_statement(inputs_var, self.ir)]
        ctx = Ctx(fn, (), dict(self.var_bindings), IdScope(entry, None), chain, out)
        last = self.walk_list(self.data.get("model") or [], ("model",), ctx)
        outputs = self.data.get("outputs")
        if outputs is None:
            result: ast.expr = ast.Name(last.var, ast.Load())
        else:
            refs = []
            for ref in outputs if isinstance(outputs, list) else [outputs]:
                tensor = ctx.scope.lookup(ref) if isinstance(ref, str) else None
                if tensor is None:
                    raise NeedConcrete(f"output {ref!r} not found", None, None)
                refs.append(ast.Name(tensor.var, ast.Load()))
            result = refs[0] if len(refs) == 1 else ast.List(refs, ast.Load())
        out.append(_model_return(inputs_var, result, self.ir))
        doc = _build_model_doc(self.ir)
        return Function("build_model", None, None, [], None, doc, "", drop_unused(merge_ifs(out)))

    # -- expressions -----------------------------------------------------------------------
    def translate_value(
        self,
        raw: Any,
        names: dict[str, Binding],
        current: TensorRef | None,
        *,
        fold: bool = True,
    ) -> ast.expr:
        """The Python expression of a spec value (``${…}`` translated, literals as they are)."""
        if isinstance(raw, list):
            node: ast.expr = ast.List(
                [self.translate_value(v, names, current, fold=fold) for v in raw], ast.Load()
            )
        elif isinstance(raw, dict):
            node = ast.Dict(
                [literal_node(k) for k in raw],
                [self.translate_value(v, names, current, fold=fold) for v in raw.values()],
            )
        elif is_expression(raw):
            node = self.translate_text(raw, names, current)
        else:
            return literal_node(raw)
        return _fold(node) if fold else node

    def translate_text(self, text: str, names: dict[str, Binding], current: TensorRef | None) -> ast.expr:
        from cnnspec.spec.expr import EMBEDDED_EXPRESSION, FULL_EXPRESSION

        full = FULL_EXPRESSION.match(text)
        if full and "${" not in full.group(1):
            return self.translate_tree(parse(full.group(1)), names, current)
        values: list[ast.expr] = []
        pos = 0
        for match in EMBEDDED_EXPRESSION.finditer(text):
            if match.start() > pos:
                values.append(ast.Constant(text[pos : match.start()]))
            inner = self.translate_tree(parse(match.group(1)), names, current)
            values.append(ast.FormattedValue(inner, -1, None))
            pos = match.end()
        if pos < len(text):
            values.append(ast.Constant(text[pos:]))
        return ast.JoinedStr(values)

    def translate_tree(
        self, tree: ast.expr, names: dict[str, Binding], current: TensorRef | None
    ) -> ast.expr:
        def convert(node: ast.expr) -> ast.expr:
            if isinstance(node, ast.Name):
                if node.id in ("in_channels", "in_shape"):
                    if current is None:
                        raise Unknown(node.id)
                    shape = _attr(current.var, "shape")
                    if node.id == "in_channels":
                        return ast.Subscript(shape, ast.Constant(-1), ast.Load())
                    sliced = ast.Subscript(shape, ast.Slice(ast.Constant(1), None, None), ast.Load())
                    return ast.Call(ast.Name("list", ast.Load()), [sliced], [])
                binding = names.get(node.id)
                if binding is None:
                    raise Unknown(node.id)
                if binding.frame is not None:
                    binding.frame.used = True
                return copy.deepcopy(binding.node)
            if isinstance(node, ast.Subscript):
                index = node.slice
                if (
                    isinstance(node.value, ast.Name)
                    and node.value.id == "in_shape"
                    and current is not None
                    and isinstance(index, ast.Constant)
                    and isinstance(index.value, int)
                    and not isinstance(index.value, bool)
                ):
                    position = index.value + 1 if index.value >= 0 else index.value
                    return ast.Subscript(_attr(current.var, "shape"), ast.Constant(position), ast.Load())
                return ast.Subscript(convert(node.value), convert(index), ast.Load())
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                return ast.Call(ast.Name(node.func.id, ast.Load()), [convert(a) for a in node.args], [])
            if isinstance(node, ast.Tuple):
                return ast.List([convert(e) for e in node.elts], ast.Load())
            if isinstance(node, ast.List):
                return ast.List([convert(e) for e in node.elts], ast.Load())
            if isinstance(node, ast.Constant):
                return ast.Constant(node.value)
            if isinstance(node, ast.BinOp):
                return ast.BinOp(convert(node.left), node.op, convert(node.right))
            if isinstance(node, ast.UnaryOp):
                return ast.UnaryOp(node.op, convert(node.operand))
            if isinstance(node, ast.BoolOp):
                return ast.BoolOp(node.op, [convert(v) for v in node.values])
            if isinstance(node, ast.Compare):
                return ast.Compare(convert(node.left), node.ops, [convert(c) for c in node.comparators])
            if isinstance(node, ast.IfExp):
                return ast.IfExp(convert(node.test), convert(node.body), convert(node.orelse))
            raise Unknown(type(node).__name__)

        return convert(tree)

    def translate(self, raw: Any, ctx: Ctx, current: TensorRef | None) -> ast.expr:
        try:
            return self.translate_value(raw, ctx.names, current)
        except Unknown as exc:
            raise self.need(ctx, f"the expression {raw!r} reads {exc}, which is not defined here") from None
        except (ExpressionError, UnsafeValue) as exc:
            raise self.need(ctx, f"cannot translate {raw!r}: {exc}") from None

    def value(self, raw: Any, ctx: Ctx, current: TensorRef | None) -> Any:
        """The value of a spec value under the resolver's semantics; :class:`Unknown` when it
        depends on something only known at run time (a block parameter, a loop index)."""
        env = {k: b.value for k, b in ctx.names.items() if b.value is not UNKNOWN}
        if current is not None and current.shape is not None:
            env["in_channels"] = current.shape[-1]
            env["in_shape"] = list(current.shape)
        try:
            return _substitute(raw, env)
        except ExpressionError as exc:
            raise Unknown(exc.message) from None

    def known(self, raw: Any, ctx: Ctx, current: TensorRef | None, what: str) -> Any:
        try:
            return self.value(raw, ctx, current)
        except Unknown as exc:
            raise self.need(ctx, f"{what} depends on a value known only at run time ({exc})") from None

    # -- counters and names ----------------------------------------------------------------
    def touch(self, ctx: Ctx, key: tuple[Any, ...]) -> None:
        fn = ctx.fn
        for frame in fn.frames:
            if key in frame.start:
                continue
            count = fn.counters.get(key, Count())
            frame.start[key] = count
            if frame.is_loop:
                assert frame.var is not None
                frame.used = True
                term = Term(1, ast.Name(frame.var, ast.Load()), frame, key)
                fn.counters[key] = Count(count.const, (*count.terms, term), count.poison)

    def next_count(self, ctx: Ctx, base: str) -> Count:
        key = ctx.key(base)
        self.touch(ctx, key)
        fn = ctx.fn
        count = fn.counters.get(key, Count()).plus(1)
        fn.counters[key] = count
        if fn.frames:
            frame = fn.frames[-1]
            frame.incr[key] = frame.incr.get(key, 0) + 1
        if count.poison:
            raise self.need(ctx, count.poison)
        return count

    def layer_name(self, ctx: Ctx, item_id: str | None, base: str) -> NameRef:
        if item_id is not None:
            return NameRef((*ctx.prefix, item_id))
        return NameRef((*ctx.prefix, f"{base}_", self.next_count(ctx, base)))

    def push_frame(self, ctx: Ctx, frame: LoopFrame) -> None:
        ctx.fn.frames.append(frame)

    def pop_frame(self, ctx: Ctx, frame: LoopFrame, times: Any, times_node: ast.expr | None) -> None:
        fn = ctx.fn
        assert fn.frames and fn.frames[-1] is frame
        fn.frames.pop()
        parent = fn.frames[-1] if fn.frames else None
        for key, start in frame.start.items():
            delta = frame.incr.get(key, 0)
            if key in frame.tainted:
                reason = "layer numbers inside a loop or condition vary between iterations"
                if frame.is_loop:
                    raise NeedConcrete(reason, fn.block, frame.path)
                raise self.need(ctx, reason)
            if frame.is_loop:
                frame.coef[key] = delta
                if times is not UNKNOWN:
                    fn.counters[key] = start.plus(delta * times)
                    if parent is not None:
                        parent.incr[key] = parent.incr.get(key, 0) + delta * times
                else:
                    assert times_node is not None
                    poison = start.poison
                    if _reads_tensor(times_node):
                        poison = "a layer count depends on a tensor shape"
                    terms = (*start.terms, Term(delta, copy.deepcopy(times_node))) if delta else start.terms
                    fn.counters[key] = Count(start.const, terms, poison)
                    if parent is not None and delta:
                        parent.tainted.add(key)
            else:
                assert frame.test is not None
                poison = start.poison
                if frame.shape_test:
                    poison = "layer numbers after a shape-dependent shortcut vary"
                terms = (*start.terms, Term(delta, copy.deepcopy(frame.test))) if delta else start.terms
                fn.counters[key] = Count(start.const, terms, poison)
                if parent is not None and delta:
                    parent.tainted.add(key)

    # -- layer lists -----------------------------------------------------------------------
    def walk_list(self, items: Any, path: SpecPath, ctx: Ctx, start: TensorRef | None = None) -> TensorRef:
        if not isinstance(items, list):
            raise self.need(ctx, "not a layer list")
        current = start if start is not None else ctx.scope.entry
        run_end = -1
        comment: Stmt | None = None
        last_comment = ""
        for index, item in enumerate(items):
            if index > run_end:
                run_end, comment = self.comment_run(items, index, path)
            before = len(ctx.out)
            current = self.walk_item(item, (*path, index), ctx, current)
            if comment is not None and len(ctx.out) > before:
                if comment.text != last_comment:
                    ctx.out.insert(before, comment)
                last_comment = comment.text
                comment = None
        return current

    def comment_run(self, items: list[Any], index: int, path: SpecPath) -> tuple[int, Stmt | None]:
        """The comment naming the spec location of item ``index`` (and of the plain layers
        right after it); written before the first statement they produce."""
        end = index
        if _is_plain_layer(items[index], self.blocks):
            while end + 1 < len(items) and _is_plain_layer(items[end + 1], self.blocks):
                end += 1
        first = self.doc.loc((*path, index))
        last = self.doc.loc((*path, end))
        labels = {_item_label(item) for item in items[index : end + 1]}
        what = labels.pop() if len(labels) == 1 else "layers"
        if first is None:
            return end, None
        where = _where(first)
        if last is not None and last.line != first.line and last.file == first.file:
            where += f"-{last.line}"
        return end, Stmt("comment", text=comment_text(f"{where} {what}"))

    def walk_item(self, item: Any, path: SpecPath, ctx: Ctx, current: TensorRef) -> TensorRef:
        if isinstance(item, str):
            kind_key, body, extras = item, None, {}
        elif isinstance(item, dict):
            keys = [k for k in item if k not in ITEM_EXTRAS]
            if len(keys) != 1:
                raise self.need(ctx, "an item with more than one kind")
            kind_key = keys[0]
            body = item[kind_key]
            extras = {k: item[k] for k in ITEM_EXTRAS if k in item}
        else:
            raise self.need(ctx, "an item that is not a layer")

        if "when" in extras:
            try:
                condition = self.value(extras["when"], ctx, current)
            except Unknown:
                return self.conditional(item, kind_key, body, extras, path, ctx, current)
            if not condition:
                return current
        return self.item(kind_key, body, extras, path, ctx, current)

    def conditional(
        self,
        item: Any,
        kind_key: str,
        body: Any,
        extras: dict[str, Any],
        path: SpecPath,
        ctx: Ctx,
        current: TensorRef,
    ) -> TensorRef:
        test = self.translate(extras["when"], ctx, current)
        current = self.to_chain(ctx, current)
        frame = LoopFrame(None, None, False, test=test, shape_test=_reads_tensor(test))
        inner_out: list[Stmt] = []
        inner = replace(ctx, out=inner_out)
        self.push_frame(ctx, frame)
        self.to_chain(inner, self.item(kind_key, body, extras, path, inner, current))
        self.pop_frame(ctx, frame, UNKNOWN, None)
        ctx.out.append(Stmt("if", value=test, body=inner_out))
        return TensorRef(ctx.chain)

    def protect(
        self, ctx: Ctx, entry: TensorRef, items: Any, chain: str | None = None, wanted: str = "block_input"
    ) -> TensorRef:
        """Keep a list's entry tensor in its own variable when the list refers to it
        (``inputs: input``) and its layers would overwrite the variable holding it."""
        if entry.var == (chain or ctx.chain) and _refers_to_input(items, self.input_name):
            alias = ctx.fn.allocate(wanted)
            ctx.out.append(Stmt("assign", target=alias, value=ast.Name(entry.var, ast.Load())))
            return TensorRef(alias, entry.ir, entry.shape)
        return entry

    def to_chain(self, ctx: Ctx, current: TensorRef) -> TensorRef:
        if current.var != ctx.chain:
            ctx.out.append(Stmt("assign", target=ctx.chain, value=ast.Name(current.var, ast.Load())))
        return TensorRef(ctx.chain, current.ir, current.shape)

    def item(
        self,
        kind_key: str,
        body: Any,
        extras: dict[str, Any],
        path: SpecPath,
        ctx: Ctx,
        current: TensorRef,
    ) -> TensorRef:
        item_id = None
        if "id" in extras:
            item_id = self.known(extras["id"], ctx, current, "an `id`")
            if not isinstance(item_id, str):
                raise self.need(ctx, "an id that is not a string")
        inputs = [current]
        if "inputs" in extras:
            refs = self.known(extras["inputs"], ctx, current, "`inputs`")
            refs = refs if isinstance(refs, list) else [refs]
            inputs = []
            for ref in refs:
                tensor = ctx.scope.lookup(ref) if isinstance(ref, str) else None
                if ref == self.input_name and tensor is None:
                    tensor = ctx.scope.entry
                if tensor is None:
                    raise self.need(ctx, f"unknown input {ref!r}")
                inputs.append(tensor)
        first = inputs[0] if inputs else current
        kpath = (*path, kind_key)
        if kind_key in COMBINATORS:
            handler = {"residual": self.residual, "parallel": self.parallel, "repeat": self.repeat}[kind_key]
            result = handler(body, kpath, ctx, first, item_id)
            if item_id is not None:
                var = ctx.fn.allocate(item_id, "layer")
                ctx.out.append(Stmt("assign", target=var, value=ast.Name(result.var, ast.Load())))
                result = TensorRef(var, result.ir, result.shape)
        elif kind_key in REGISTRY:
            result = self.layer(REGISTRY[kind_key], body, kpath, ctx, inputs, item_id)
        elif kind_key in self.blocks:
            result = self.call_block(kind_key, body, kpath, ctx, first, item_id)
        else:
            raise self.need(ctx, f"unknown kind {kind_key!r}")
        if item_id is not None:
            ctx.scope.ids[item_id] = result
        return result

    def target(self, ctx: Ctx, item_id: str | None) -> str:
        if item_id is None:
            return ctx.chain
        existing = ctx.scope.ids.get(item_id)
        if existing is not None:
            return existing.var
        return ctx.fn.allocate(item_id, "layer")

    # -- plain layers ----------------------------------------------------------------------
    def layer(
        self,
        kind: LayerKind,
        body: Any,
        path: SpecPath,
        ctx: Ctx,
        inputs: list[TensorRef],
        item_id: str | None,
    ) -> TensorRef:
        if body is None:
            raw: dict[str, Any] = {}
        elif isinstance(body, dict):
            raw = dict(body)
        elif kind.main is not None:
            raw = {kind.main: body}
        else:
            raise self.need(ctx, "a layer value without a main parameter")
        kwargs = self.layer_kwargs(kind, raw, ctx, inputs[0])
        return self.emit(kind, kwargs, inputs, ctx, item_id)

    def emit(
        self,
        kind: LayerKind,
        kwargs: list[tuple[str, ast.expr]],
        inputs: list[TensorRef],
        ctx: Ctx,
        item_id: str | None,
        target: str | None = None,
    ) -> TensorRef:
        name = self.layer_name(ctx, item_id, kind.name)
        var = target or self.target(ctx, item_id)
        ctx.out.append(
            Stmt(
                "layer",
                target=var,
                cls=kind.keras_class,
                kwargs=kwargs,
                name=name,
                inputs=[t.var for t in inputs],
                many=kind.arity == "many",
            )
        )
        ir_name = name.static_text() if ctx.fn.is_model else None
        node = self.ir_nodes.get(ir_name) if ir_name is not None else None
        return TensorRef(var, ir_name if node is not None else None, node.shape if node is not None else None)

    def layer_kwargs(
        self, kind: LayerKind, raw: dict[str, Any], ctx: Ctx, current: TensorRef
    ) -> list[tuple[str, ast.expr]]:
        """Keyword arguments of a layer call: literals as the Keras builder passes them, the
        spec's expressions where the registry maps a parameter straight to a keyword."""
        known: dict[str, Any] = {}
        unknown: list[str] = []
        for pname, value in raw.items():
            if pname not in kind.param_index:
                raise self.need(ctx, f"unknown parameter {pname!r}")
            try:
                known[pname] = self.value(value, ctx, current)
            except Unknown:
                unknown.append(pname)
        samples_a = {p: _sample(kind.param_index[p], 0) for p in unknown}
        if any(v is None for v in samples_a.values()):
            raise self.need(ctx, f"a `{kind.name}` parameter whose type needs a literal value")
        full = {**kind.defaults(), **known, **samples_a}
        try:
            args = kind.keras_args(full)
        except Exception:  # a registry rule that needs real values
            raise self.need(ctx, f"`{kind.name}` arguments need literal values") from None
        by_keyword = {p.keras_name: p for p in kind.params if p.keras_name}
        expressions: dict[str, ast.expr] = {}
        for pname in [*unknown, *[p for p in known if is_expression(_flat(raw[p]))]]:
            param = kind.param_index[pname]
            direct = param.keras_name is not None and _direct(kind, full, param)
            if pname in unknown:
                if not direct:
                    raise self.need(ctx, f"`{kind.name}.{pname}` is not passed straight to Keras")
                expressions[param.keras_name] = self.adapted(param, raw[pname], ctx, current, UNKNOWN)  # type: ignore[index]
            elif direct:
                node = self.adapted(param, raw[pname], ctx, current, known[pname])
                if node is not None:
                    expressions[param.keras_name] = node  # type: ignore[index]
        defaults = default_kwargs(kind)
        tuples = tuple_kwargs(kind)
        out: list[tuple[str, ast.expr]] = []
        for key, value in args.items():
            if key in expressions:
                out.append((key, expressions[key]))
                continue
            if key in defaults and same_value(defaults[key], value):
                continue
            if (
                key in tuples
                and isinstance(value, tuple)
                and value
                and all(v == value[0] for v in value)
                and by_keyword.get(key) is not None
            ):
                value = value[0]
            out.append((key, literal_node(value)))
        return out

    def adapted(self, param: Param, raw: Any, ctx: Ctx, current: TensorRef, value: Any) -> ast.expr | None:
        """The translated expression of a parameter, made to give what the registry would
        normalise it to (``float(...)`` for numbers); ``None`` when a literal is better."""
        node = self.translate(raw, ctx, current)
        if isinstance(node, ast.Constant) or _is_literal(node):
            return None if value is not UNKNOWN else node
        if param.type in ("int", "bool", "str", "choice"):
            return node
        if param.type in KERAS_NORMALIZED:
            return node
        if param.type == "number":
            if (value is not UNKNOWN and isinstance(value, float)) or _is_float(node):
                return node
            if value is not UNKNOWN and value is None:
                return None
            return ast.Call(ast.Name("float", ast.Load()), [node], [])
        if value is UNKNOWN:
            raise self.need(ctx, f"`{param.name}` needs a literal value")
        return None

    # -- combinators -----------------------------------------------------------------------
    def sub_ctx(self, ctx: Ctx, item_id: str | None, entry: TensorRef) -> Ctx:
        scope = ctx.scope.child(entry)
        if item_id is None:
            return replace(ctx, scope=scope)
        return replace(ctx, scope=scope, prefix=(*ctx.prefix, f"{item_id}_"))

    def merge(self, ctx: Ctx, mode_raw: Any, tensors: list[TensorRef], current: TensorRef) -> TensorRef:
        mode = self.known(mode_raw, ctx, current, "`merge`")
        if mode not in ("add", "concat"):
            raise self.need(ctx, f"merge {mode!r}")
        kind = REGISTRY[mode]
        kwargs = self.literal_kwargs(kind, kind.defaults())
        return self.emit(kind, kwargs, tensors, ctx, None, target=ctx.chain)

    def literal_kwargs(self, kind: LayerKind, params: dict[str, Any]) -> list[tuple[str, ast.expr]]:
        defaults = default_kwargs(kind)
        tuples = tuple_kwargs(kind)
        out = []
        for key, value in kind.keras_args(params).items():
            if key in defaults and same_value(defaults[key], value):
                continue
            if key in tuples and isinstance(value, tuple) and value and all(v == value[0] for v in value):
                value = value[0]
            out.append((key, literal_node(value)))
        return out

    def post_activation(self, fields: dict[str, Any], ctx: Ctx, current: TensorRef) -> TensorRef:
        if fields.get("activation") is None:
            return current
        kind = REGISTRY["activation"]
        kwargs = self.layer_kwargs(kind, {"activation": fields["activation"]}, ctx, current)
        return self.emit(kind, kwargs, [current], ctx, None, target=ctx.chain)

    def residual(
        self, body: Any, path: SpecPath, ctx: Ctx, entry: TensorRef, item_id: str | None
    ) -> TensorRef:
        if not isinstance(body, dict) or "body" not in body:
            raise self.need(ctx, "a residual without a body")
        shortcut_field = body.get("shortcut", "auto")
        merge_mode = body.get("merge", "add")
        mode: Any = None
        if not isinstance(shortcut_field, list):
            try:
                mode = self.value(shortcut_field, ctx, entry)
            except Unknown:
                mode = UNKNOWN
        saved = ctx.fn.taken.copy()
        alias = None
        start = entry
        if mode != "none" or _refers_to_input(body.get("body"), self.input_name):
            alias = ctx.fn.allocate("shortcut")
            ctx.out.append(Stmt("assign", target=alias, value=ast.Name(entry.var, ast.Load())))
            entry = TensorRef(alias, entry.ir, entry.shape)
        inner = self.sub_ctx(ctx, item_id, entry)
        body_out = self.walk_list(body["body"], (*path, "body"), inner, start)
        if mode == "none":
            result = self.post_activation(body, inner, body_out)
            ctx.fn.taken = saved | {result.var}
            return result
        assert alias is not None
        if mode is UNKNOWN:
            merged = self.optional_merge(shortcut_field, merge_mode, entry, body_out, inner)
        else:
            if isinstance(shortcut_field, list):
                protected = self.protect(inner, entry, shortcut_field, alias, "residual_input")
                sc_ctx = replace(
                    inner,
                    scope=inner.scope.child(protected),
                    prefix=(*inner.prefix, "shortcut_"),
                    chain=alias,
                )
                shortcut = self.walk_list(shortcut_field, (*path, "shortcut"), sc_ctx, entry)
            elif mode == "identity" or (
                mode == "auto" and self.known(merge_mode, ctx, entry, "`merge`") == "concat"
            ):
                shortcut = entry
            elif mode in ("auto", "projection"):
                shortcut = self.projection(mode, entry, body_out, inner)
            else:
                raise self.need(ctx, f"shortcut {mode!r}")
            merged = self.merge(inner, merge_mode, [shortcut, body_out], entry)
        result = self.post_activation(body, inner, merged)
        ctx.fn.taken = saved | {result.var}
        return result

    def optional_merge(
        self, shortcut_field: Any, merge_mode: Any, entry: TensorRef, body_out: TensorRef, ctx: Ctx
    ) -> TensorRef:
        """``shortcut: "${'identity' if … else 'none'}"``: the merge under an ``if``."""
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
        statements: list[Stmt] = []
        frame = LoopFrame(None, None, False, test=test, shape_test=_reads_tensor(test))
        self.push_frame(ctx, frame)
        self.merge(replace(ctx, out=statements), merge_mode, [entry, current], entry)
        self.pop_frame(ctx, frame, UNKNOWN, None)
        ctx.out.append(Stmt("if", value=test, body=statements))
        return TensorRef(ctx.chain)

    def projection(self, mode: str, entry: TensorRef, body_out: TensorRef, ctx: Ctx) -> TensorRef:
        sc_ctx = replace(ctx, prefix=(*ctx.prefix, "shortcut_"))
        conv, norm = REGISTRY["conv2d"], REGISTRY["batch_norm"]
        if entry.shape is not None and body_out.shape is not None:
            if mode == "auto" and entry.shape == body_out.shape:
                return entry
            strides = [-(-a // b) for a, b in zip(entry.shape[:2], body_out.shape[:2], strict=True)]
            params = {**conv.defaults(), "filters": body_out.shape[-1], "kernel_size": 1, "strides": strides}
            if strides[0] == strides[1]:
                params["strides"] = strides[0]
            projected = self.emit(
                conv, self.literal_kwargs(conv, params), [entry], sc_ctx, None, target=entry.var
            )
            return self.emit(
                norm, self.literal_kwargs(norm, norm.defaults()), [projected], sc_ctx, None, target=entry.var
            )
        self.uses_projection = True
        sample = {**conv.defaults(), "filters": 1, "kernel_size": 1, "strides": 1}
        kwargs = []
        for key, node in self.literal_kwargs(conv, sample):
            if key == "filters":
                node = ast.Subscript(_attr(body_out.var, "shape"), ast.Constant(-1), ast.Load())
            kwargs.append((key, node))
        kwargs.insert(
            2,
            (
                "strides",
                ast.Call(
                    ast.Name("projection_strides", ast.Load()),
                    [ast.Name(entry.var, ast.Load()), ast.Name(body_out.var, ast.Load())],
                    [],
                ),
            ),
        )
        statements: list[Stmt] = []
        target_ctx = replace(sc_ctx, out=statements)
        frame = None
        if mode == "auto":
            test = ast.Compare(_attr(entry.var, "shape"), [ast.NotEq()], [_attr(body_out.var, "shape")])
            frame = LoopFrame(None, None, False, test=test, shape_test=True)
            self.push_frame(ctx, frame)
        projected = self.emit(conv, kwargs, [entry], target_ctx, None, target=entry.var)
        self.emit(
            norm, self.literal_kwargs(norm, norm.defaults()), [projected], target_ctx, None, target=entry.var
        )
        if frame is not None:
            self.pop_frame(ctx, frame, UNKNOWN, None)
            ctx.out.append(Stmt("if", value=frame.test, body=statements))
        else:
            ctx.out.extend(statements)
        return TensorRef(entry.var)

    def parallel(
        self, body: Any, path: SpecPath, ctx: Ctx, entry: TensorRef, item_id: str | None
    ) -> TensorRef:
        if not isinstance(body, dict) or not isinstance(body.get("branches"), list):
            raise self.need(ctx, "a parallel without branches")
        saved = ctx.fn.taken.copy()
        inner = self.sub_ctx(ctx, item_id, entry)
        outs = []
        for index, branch in enumerate(body["branches"]):
            var = ctx.fn.allocate(f"branch_{index + 1}")
            branch_ctx = replace(inner, scope=inner.scope.child(entry), chain=var)
            outs.append(self.walk_list(branch, (*path, "branches", index), branch_ctx))
        merged = self.merge(inner, body.get("merge", "concat"), outs, entry)
        result = self.post_activation(body, inner, merged)
        ctx.fn.taken = saved | {result.var}
        return result

    def repeat(self, body: Any, path: SpecPath, ctx: Ctx, entry: TensorRef, item_id: str | None) -> TensorRef:
        if not isinstance(body, dict) or "layers" not in body or "times" not in body:
            raise self.need(ctx, "a repeat without times or layers")
        var_name = body.get("as")
        prefix = (*ctx.prefix, f"{item_id}_") if item_id else ctx.prefix
        try:
            times = self.value(body["times"], ctx, entry)
        except Unknown:
            times = UNKNOWN
        unroll = self.plan.unroll_all or path in self.plan.unroll or times in (0, 1)
        if unroll:
            if times is UNKNOWN:
                raise NeedConcrete("a repeat count known only at run time", ctx.fn.block, None)
            current = entry
            for index in range(times):
                names = dict(ctx.names)
                if var_name:
                    names[var_name] = Binding(ast.Constant(index), index)
                if times > 1:
                    label = f"repeat {index + 1} of {times}" + (
                        f" ({var_name} = {index})" if var_name else ""
                    )
                    ctx.out.append(Stmt("comment", text=comment_text(label)))
                entry_ref = self.protect(ctx, current, body["layers"], wanted="repeat_input")
                iteration = replace(ctx, names=names, prefix=prefix, scope=ctx.scope.child(entry_ref))
                current = self.walk_list(body["layers"], (*path, "layers"), iteration, current)
            return current
        current = self.to_chain(ctx, entry)
        loop_var = ctx.fn.allocate(var_name or "i", "i")
        frame = LoopFrame(loop_var, path, True)
        times_node = self.translate(body["times"], ctx, entry)
        statements: list[Stmt] = []
        names = dict(ctx.names)
        if var_name:
            names[var_name] = Binding(ast.Name(loop_var, ast.Load()), UNKNOWN, frame)
        start = TensorRef(ctx.chain)
        if _refers_to_input(body["layers"], self.input_name):
            alias = ctx.fn.allocate("repeat_input")
            statements.append(Stmt("assign", target=alias, value=ast.Name(ctx.chain, ast.Load())))
            start = TensorRef(alias)
        iteration = replace(ctx, names=names, prefix=prefix, scope=ctx.scope.child(start), out=statements)
        self.push_frame(ctx, frame)
        result = self.walk_list(body["layers"], (*path, "layers"), iteration)
        if result.var != ctx.chain:
            statements.append(Stmt("assign", target=ctx.chain, value=ast.Name(result.var, ast.Load())))
        self.pop_frame(ctx, frame, times, times_node)
        if not frame.used:
            frame.var = "_"
        ctx.out.append(Stmt("for", value=times_node, body=statements, frame=frame))
        return TensorRef(ctx.chain)

    # -- blocks ----------------------------------------------------------------------------
    def block_args(self, name: str, body: Any, ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
        declared = (self.blocks[name] or {}).get("params") or {}
        if body is None:
            raw: dict[str, Any] = {}
        elif isinstance(body, dict):
            raw = dict(body)
        else:
            required = [n for n, p in declared.items() if isinstance(p, str) or "default" not in p]
            if len(declared) == 1:
                raw = {next(iter(declared)): body}
            elif len(required) == 1:
                raw = {required[0]: body}
            else:
                raise self.need(ctx, f"arguments of block {name!r}")
        return declared, raw

    def call_block(
        self, name: str, body: Any, path: SpecPath, ctx: Ctx, entry: TensorRef, item_id: str | None
    ) -> TensorRef:
        declared, raw = self.block_args(name, body, ctx)
        if item_id is not None:
            local: list[PrefixPart] = [item_id]
        else:
            local = [f"{name}_", self.next_count(ctx, name)]
        if name in self.plan.inline:
            return self.inline_block(name, declared, raw, ctx, entry, local)
        function = self.function_for(name)
        args = []
        for pname in declared:
            if pname in raw:
                args.append((pname, self.translate(raw[pname], ctx, entry)))
        block_name = NameRef((*ctx.prefix, *local))
        var = self.target(ctx, item_id)
        ctx.out.append(
            Stmt(
                "call",
                target=var,
                func=function.name,
                inputs=[entry.var],
                kwargs=args,
                name=block_name,
                text=function.prefix_param or "name",
            )
        )
        return TensorRef(var)

    def inline_block(
        self,
        name: str,
        declared: dict[str, Any],
        raw: dict[str, Any],
        ctx: Ctx,
        entry: TensorRef,
        local: list[PrefixPart],
    ) -> TensorRef:
        if any(isinstance(p, Count) and not p.static for p in local):
            raise self.need(
                ctx, f"block `{name}` is numbered by a loop index; it cannot be inlined in the loop"
            )
        names = dict(self.var_bindings)
        for pname in declared:
            if pname in raw:
                node = self.translate(raw[pname], ctx, entry)
                try:
                    known = self.value(raw[pname], ctx, entry)
                except Unknown:
                    known = UNKNOWN
                    if _reads_tensor(node):
                        raise self.need(ctx, "a block argument that reads a tensor shape") from None
                if known is not UNKNOWN and _reads_tensor(node):
                    node = literal_node(known)
                names[pname] = Binding(node, known)
        for pname, spec in declared.items():
            if pname not in raw:
                default = spec.get("default") if isinstance(spec, dict) else None
                if isinstance(default, (list, dict)) or is_expression(default):
                    probe = replace(ctx, names=names)
                    node = self.translate(default, probe, entry)
                    try:
                        known = self.value(default, probe, entry)
                    except Unknown:
                        known = UNKNOWN
                    if _reads_tensor(node):
                        if known is UNKNOWN:
                            raise self.need(ctx, "a block default that reads a tensor shape")
                        node = literal_node(known)
                    names[pname] = Binding(node, known)
                else:
                    names[pname] = Binding(literal_node(default), default)
        label = ", ".join(f"{p}={_short(raw[p])}" for p in declared if p in raw)
        ctx.out.append(Stmt("comment", text=comment_text(f"block {name}({label})")))
        prefix = (*ctx.prefix, *local, "_")
        layers_ = (self.blocks[name] or {}).get("layers")
        protected = self.protect(ctx, entry, layers_)
        block_ctx = replace(ctx, names=names, prefix=prefix, scope=IdScope(protected, None))
        return self.walk_list(layers_, ("blocks", name, "layers"), block_ctx, entry)

    def function_for(self, name: str) -> Function:
        if name in self.functions:
            return self.functions[name]
        if name in self.building:
            raise NeedConcrete(f"block {name!r} calls itself", name, None)
        self.building.append(name)
        try:
            function = self.build_function(name)
        finally:
            self.building.pop()
        self.functions[name] = function
        self.order.append(name)
        return function

    def build_function(self, name: str) -> Function:
        spec = self.blocks[name] or {}
        declared = spec.get("params") or {}
        module_taken = set(self.module_names) | {c.name for c in self.constants} | set(self._used_blocks())
        param_names = set(declared)
        refers = _refers_to_input(spec.get("layers"), self.input_name)
        taken = module_taken | param_names
        tensor = _first_free(["inputs", "tensor"] if refers else ["x", "tensor", "inputs"], taken)
        taken.add(tensor)
        prefix_param = _first_free(["name", "prefix", "block_name"], taken)
        taken.add(prefix_param)
        fn = FuncState(name, name, taken)
        chain = tensor if not refers else fn.allocate("x" if "x" not in taken else "h")
        params: list[FuncParam] = []
        names = dict(self.var_bindings)
        body: list[Stmt] = []
        entry = TensorRef(tensor)
        computed: list[tuple[FuncParam, Any]] = []
        for pname, pspec in declared.items():
            ptype = pspec if isinstance(pspec, str) else pspec.get("type", "any")
            annotation = ANNOTATIONS.get(ptype)
            default = None
            param = FuncParam(pname, annotation, None)
            if isinstance(pspec, dict) and "default" in pspec:
                value = pspec["default"]
                if isinstance(value, (list, dict)) or is_expression(value):
                    default = ast.Constant(None)
                    param.annotation = f"{annotation} | None" if annotation else None
                    computed.append((param, value))
                else:
                    default = literal_node(value)
            param.default = default
            params.append(param)
            names[pname] = Binding(ast.Name(pname, ast.Load()))
        probe = Ctx(fn, (), names, IdScope(entry, None), chain, body)
        for param, value in computed:
            param.fill = self.translate(value, probe, entry)
        ctx = Ctx(fn, (ast.Name(prefix_param, ast.Load()), "_"), names, IdScope(entry, None), chain, body)
        result = self.walk_list(spec.get("layers"), ("blocks", name, "layers"), ctx)
        body.append(Stmt("return", value=ast.Name(result.var, ast.Load())))
        body[:] = drop_unused(merge_ifs(body))
        loc = self.doc.key_loc(("blocks", name))
        description = spec.get("description") or f"The `{name}` block of the spec."
        return Function(name, name, tensor, params, prefix_param, str(description), _where(loc), body)


# -- augmentation and the flat form -----------------------------------------------------------
def node_kwargs(node: Node) -> list[tuple[str, ast.expr]]:
    kind = REGISTRY[node.kind]
    defaults = default_kwargs(kind)
    tuples = tuple_kwargs(kind)
    out = []
    for key, value in kind.keras_args(node.params).items():
        if key in defaults and same_value(defaults[key], value):
            continue
        if key in tuples and isinstance(value, tuple) and value and all(v == value[0] for v in value):
            value = value[0]
        out.append((key, literal_node(value)))
    return out


def augmentation_statements(ir: ModelIR, doc: Any) -> list[Stmt]:
    """The ``augmentation`` layers, one Keras layer per IR node, for ``keras.Sequential``."""
    out = []
    for node in ir.augmentation:
        out.append(
            Stmt(
                "layer",
                cls=REGISTRY[node.kind].keras_class,
                kwargs=node_kwargs(node),
                name=NameRef((node.name,)),
                text=comment_text(_where(node.loc)) if node.loc else "",
            )
        )
    return out


def flat_model(compiled: CompiledSpec, notes: list[str], *, script: bool = False) -> ModelModule:
    """``build_model()`` written from the IR, one line per layer (always possible)."""
    ir = compiled.ir
    taken = set(MODULE_NAMES) | (set(SCRIPT_NAMES) if script else set())
    fn = FuncState("build_model", None, taken, is_model=True)
    inputs_var = fn.allocate("inputs")
    chain = fn.allocate("x")
    vars_of: dict[str, str] = {ir.input_name: inputs_var}
    consumers: dict[str, list[int]] = {}
    for index, node in enumerate(ir.nodes):
        for name in node.inputs:
            consumers.setdefault(name, []).append(index)
    out: list[Stmt] = [_input_statement(inputs_var, ir)]
    group: tuple[str, ...] | None = None
    for index, node in enumerate(ir.nodes):
        if node.group != group:
            group = node.group
            label = "/".join(group) if group else "model"
            out.append(Stmt("comment", text=comment_text(f"{label} ({_where(node.loc)})")))
        uses = consumers.get(node.name, [])
        if uses == [index + 1] and node.name not in ir.outputs:
            var = chain
        else:
            var = fn.allocate(node.name, "layer")
        kind = REGISTRY[node.kind]
        out.append(
            Stmt(
                "layer",
                target=var,
                cls=kind.keras_class,
                kwargs=node_kwargs(node),
                name=NameRef((node.name,)),
                inputs=[vars_of[name] for name in node.inputs],
                many=kind.arity == "many",
            )
        )
        vars_of[node.name] = var
    refs = [ast.Name(vars_of[name], ast.Load()) for name in ir.outputs]
    result = refs[0] if len(refs) == 1 else ast.List(refs, ast.Load())
    out.append(_model_return(inputs_var, result, ir))
    function = Function("build_model", None, None, [], None, _build_model_doc(ir), "", out)
    return ModelModule(
        name=ir.name,
        description=ir.description,
        constants=[],
        functions=[function],
        augmentation=augmentation_statements(ir, compiled.doc),
        uses_projection=False,
        notes=notes,
        flat=True,
    )


# -- helpers ----------------------------------------------------------------------------------
def _input_statement(var: str, ir: ModelIR) -> Stmt:
    """``inputs = keras.Input(shape=…, name=…)``: the first statement of ``build_model()``."""
    call = ast.Call(
        _attr("keras", "Input"),
        [],
        [
            ast.keyword("shape", literal_node(tuple(ir.input_shape))),
            ast.keyword("name", ast.Constant(ir.input_name)),
        ],
    )
    return Stmt("assign", target=var, value=call)


def _model_return(inputs_var: str, outputs: ast.expr, ir: ModelIR) -> Stmt:
    """``return keras.Model(inputs, outputs, name=…)``: the last statement of ``build_model()``."""
    call = ast.Call(
        _attr("keras", "Model"),
        [ast.Name(inputs_var, ast.Load()), outputs],
        [ast.keyword("name", ast.Constant(ir.name))],
    )
    return Stmt("return", value=call)


def _build_model_doc(ir: ModelIR) -> str:
    shape = "×".join(str(d) for d in ir.input_shape)
    outs = ", ".join("×".join(str(d) for d in (s or ())) for s in ir.output_shapes)
    return f"Build the `{ir.name}` model: input {shape}, output {outs}."


def _attr(base: str, *names: str) -> ast.expr:
    node: ast.expr = ast.Name(base, ast.Load())
    for name in names:
        node = ast.Attribute(node, name, ast.Load())
    return node


def _where(loc: Loc | None) -> str:
    if loc is None:
        return ""
    return f"{Path(loc.file).name}:{loc.line}"


def _suggest(name: str) -> str:
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in name).strip("_")
    return cleaned or "my"


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _substitute(value: Any, env: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_substitute(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, env) for k, v in value.items()}
    return substitute(value, env) if is_expression(value) else value


def _flat(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return repr(value)
    return value if isinstance(value, str) else ""


def _is_literal(node: ast.expr) -> bool:
    return all(
        not isinstance(n, (ast.Name, ast.Attribute, ast.Call, ast.JoinedStr, ast.Subscript))
        for n in ast.walk(node)
    )


def _contains_expression(value: Any) -> bool:
    if isinstance(value, list):
        return any(_contains_expression(v) for v in value)
    if isinstance(value, dict):
        return any(_contains_expression(v) for v in value.values())
    return is_expression(value)


def _is_float(node: ast.expr) -> bool:
    """Whether an expression always gives a float (a float literal, ``/``, ``float()``…)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, float)
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Div):
            return True
        if isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
            return _is_float(node.left) or _is_float(node.right)
        return False
    if isinstance(node, ast.IfExp):
        return _is_float(node.body) and _is_float(node.orelse)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id == "float"
    return False


def _first_free(candidates: list[str], taken: set[str]) -> str:
    for candidate in candidates:
        if candidate not in taken:
            return candidate
    return safe_name(candidates[0], taken)


def _results(node: ast.expr) -> set[Any]:
    """The constant values an expression can produce (``{"?"}`` when not only constants)."""
    if isinstance(node, ast.IfExp):
        return _results(node.body) | _results(node.orelse)
    if isinstance(node, ast.Constant):
        return {node.value}
    return {"?"}


def _reads_tensor(node: ast.expr) -> bool:
    return any(isinstance(n, ast.Attribute) for n in ast.walk(node))


def _fold(node: ast.expr) -> ast.expr:
    """Replace sub-expressions without names by their value (``64 * 2`` → ``128``)."""
    if isinstance(node, (ast.Constant, ast.Name)):
        return node
    if not any(
        isinstance(n, (ast.Name, ast.Attribute, ast.JoinedStr))
        and not (isinstance(n, ast.Name) and n.id in BUILTINS and _called(node, n))
        for n in ast.walk(node)
    ):
        try:
            return literal_node(evaluate(node, lambda name: BUILTINS[name]))
        except (Unknown, UnsafeValue, ArithmeticError, TypeError, ValueError, KeyError):
            return node
    for name, value in ast.iter_fields(node):
        if isinstance(value, ast.expr) and not isinstance(value, ast.expr_context):
            setattr(node, name, _fold(value))
        elif isinstance(value, list):
            setattr(node, name, [_fold(v) if isinstance(v, ast.expr) else v for v in value])
    return node


def _called(tree: ast.expr, name: ast.Name) -> bool:
    return any(isinstance(n, ast.Call) and n.func is name for n in ast.walk(tree))


def _is_plain_layer(item: Any, blocks: dict[str, Any] | None = None) -> bool:
    """A layer or block call without `when` (consecutive ones share one location comment)."""

    def known(kind: str) -> bool:
        return kind in REGISTRY or (blocks is not None and kind in blocks)

    if isinstance(item, str):
        return known(item)
    if isinstance(item, dict):
        keys = [k for k in item if k not in ITEM_EXTRAS]
        return len(keys) == 1 and known(keys[0]) and "when" not in item
    return False


def drop_unused(body: list[Stmt]) -> list[Stmt]:
    """Assign layers whose output nothing reads (layers the resolver prunes as dead) to ``_``."""
    loads: set[str] = set()

    def collect(statements: list[Stmt]) -> None:
        for stmt in statements:
            loads.update(stmt.inputs)
            nodes = [v for _, v in stmt.kwargs]
            if stmt.value is not None:
                nodes.append(stmt.value)
            if stmt.name is not None:
                nodes.append(stmt.name.node())
            for node in nodes:
                loads.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name))
            collect(stmt.body)

    def rename(statements: list[Stmt]) -> None:
        for stmt in statements:
            if stmt.kind in ("layer", "call") and stmt.target and stmt.target not in loads:
                stmt.target = "_"
            rename(stmt.body)

    collect(body)
    rename(body)
    return body


def merge_ifs(body: list[Stmt]) -> list[Stmt]:
    """Join consecutive ``if``s with the same test (``when: "${expansion != 1}"`` on three
    items) into one; only tests that read no tensor, so the first body cannot change them."""
    out: list[Stmt] = []
    pending_comments: list[Stmt] = []
    for stmt in body:
        if stmt.body:
            stmt.body = merge_ifs(stmt.body)
        if stmt.kind == "comment":
            pending_comments.append(stmt)
            continue
        previous = out[-1] if out else None
        if (
            stmt.kind == "if"
            and previous is not None
            and previous.kind == "if"
            and stmt.value is not None
            and previous.value is not None
            and ast.dump(stmt.value) == ast.dump(previous.value)
            and not _reads_tensor(stmt.value)
        ):
            previous.body.extend(pending_comments)
            previous.body.extend(stmt.body)
            pending_comments = []
            continue
        out.extend(pending_comments)
        pending_comments = []
        out.append(stmt)
    out.extend(pending_comments)
    return out


def _item_label(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        keys = [k for k in item if k not in ITEM_EXTRAS]
        if keys:
            return str(keys[0])
    return "item"


def _refers_to_input(items: Any, input_name: str) -> bool:
    """Whether a layer list names its entry tensor (``inputs: input``) at its own level."""
    if not isinstance(items, list):
        return False
    for item in items:
        if isinstance(item, dict) and "inputs" in item:
            refs = item["inputs"]
            refs = refs if isinstance(refs, list) else [refs]
            for ref in refs:
                if not isinstance(ref, str) or ref in (INPUT, input_name) or is_expression(ref):
                    return True
    return False


def _sample(param: Param, which: int) -> Any:
    """Stand-in values of a parameter's type, used to see how ``keras_args`` maps it."""
    if param.type == "int":
        return 7 + which
    if param.type in ("ints", "padding"):
        return 7 + which
    if param.type == "number":
        return 0.5 + which / 4
    if param.type == "bool":
        return which == 0
    if param.type == "choice":
        return param.choices[which % len(param.choices)] if param.choices else None
    if param.type == "str":
        return f"sample{which}"
    return None


def _direct(kind: LayerKind, full: dict[str, Any], param: Param) -> bool:
    """Whether ``param`` reaches Keras unchanged (only its own keyword, normalised)."""
    key = param.keras_name
    if key is None:
        return False
    try:
        base = kind.keras_args(full)
        for which in (0, 1):
            sample = _sample(param, which)
            if sample is None:
                return False
            probe = kind.keras_args({**full, param.name: sample})
            if not same_value(probe.get(key), param.normalize(sample)):
                return False
            changed = {k for k in probe if k != key and not same_value(probe[k], base.get(k))}
            if changed:
                return False
    except Exception:  # a registry rule that needs real values
        return False
    return not (param.type == "choice" and len(param.choices) < 2)


def is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


__all__ = [
    "BUILTIN_NAMES",
    "Builder",
    "ModelModule",
    "NeedConcrete",
    "Plan",
    "flat_model",
]
