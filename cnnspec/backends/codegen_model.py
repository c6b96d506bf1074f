"""The statements of the emitted model code, and how spec values become Python.

A generated module is a list of :class:`Constant` (the ``vars``), :class:`Function` (the
blocks and ``build_model``) made of :class:`Stmt` (layer calls, block calls, ``for``,
``if``…), rendered by the Jinja templates. :class:`CodeWriter` holds what writing them needs
besides the model's structure: names the module may use, ``${…}`` expressions translated to
the same Python expressions (``${in_channels}`` → ``x.shape[-1]``) and the keyword arguments
of layer calls as the Keras builder passes them. The structure comes from the resolver's tree
(:mod:`cnnspec.backends.codegen_printer`); the abstract interpreter in
:mod:`cnnspec.backends.codegen_check` replays the result as a safety net only.
"""

from __future__ import annotations

import ast
import contextvars
import copy
import functools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cnnspec.analysis.compiled import CompiledSpec
from cnnspec.backends.codegen_check import (
    BUILTINS,
    KERAS_NORMALIZED,
    Unknown,
    default_kwargs,
    evaluate,
    same_value,
    top_level_names,
    tuple_kwargs,
)
from cnnspec.backends.codegen_values import (
    ASCII_IDENTIFIER,
    BUILTIN_NAMES,
    UnsafeValue,
    comment_text,
    identifier_problem,
    is_identifier,
    literal_node,
    safe_name,
)
from cnnspec.errors import COMMAND_LINE_PREFIX, Diagnostics, Loc, SpecPath, command_line_option
from cnnspec.ir import INPUT, ModelIR, ModelTree, Node
from cnnspec.layers.params import Param
from cnnspec.layers.registry import REGISTRY, LayerKind, Shape
from cnnspec.spec.expr import ExpressionError, is_expression, parse, substitute

#: Names the module itself defines or imports; spec names may not take them.
MODULE_NAMES = frozenset(
    {
        "keras",
        "layers",
        "functools",
        "build_model",
        "build_augmentation",
        "projection_strides",
        "needs_projection",
    }
)
#: Module-level names of the training scripts that :func:`script_names` cannot find in the
#: templates' text: the ones a template writes through a value (``{{ seed_name }} = …``).
UNSCANNED_SCRIPT_NAMES = frozenset({"SEED"})
#: A line of a template that binds a module-level name: ``def f(``, ``class C(``, ``NAME =``
#: (also annotated), ``import a.b as c, d``, ``from m import a as b, (`` — at column 0, where
#: only module-level statements start (Jinja tags are not Python).
_TEMPLATE_BINDING = re.compile(
    r"^(?:(?:def|class)\s+(?P<def>[A-Za-z_]\w*)"
    r"|(?P<assign>[A-Za-z_]\w*)\s*(?::[^=]*)?=(?!=)"
    r"|import\s+(?P<imports>[^#]*)"
    r"|from\s+\S+\s+import\s+(?P<names>[^#]*))"
)


@functools.cache
def script_names() -> frozenset[str]:
    """Every module-level name any training script can bind besides :data:`MODULE_NAMES`,
    which the printer's own names avoid (:attr:`CodeWriter.module_names`): found in the
    templates of ``codegen --script`` and the shapes generator they copy
    (:func:`cnnspec.shapes.generator_source`), so that a name a template gains is reserved
    without a list to keep up. A superset (names of every branch of the templates), so spec
    names are checked against the rendered script's names instead
    (:func:`~cnnspec.backends.python_emitter.refuse_name_clashes`).
    ``tests/test_codegen_names.py`` renders scripts for specs through the templates' branches
    and checks that every name they bind is here (the scan reads lines, not Jinja: a name
    written through a template value goes in :data:`UNSCANNED_SCRIPT_NAMES`)."""
    from cnnspec.resources import templates_dir
    from cnnspec.shapes import generator_source

    names = set(UNSCANNED_SCRIPT_NAMES)
    for entry in templates_dir().iterdir():
        if entry.name.endswith(".py.j2") or (entry.name.startswith("_") and entry.name.endswith(".j2")):
            names |= template_bindings(entry.read_text(encoding="utf-8"))
    names |= set(top_level_names(ast.parse(generator_source())))
    return frozenset(names - MODULE_NAMES)


def template_bindings(text: str) -> set[str]:
    """The module-level names a template's Python lines bind (see :data:`_TEMPLATE_BINDING`);
    a parenthesised ``from … import (`` list is read up to its ``)``."""
    names: set[str] = set()
    lines = iter(text.splitlines())
    for line in lines:
        found = _TEMPLATE_BINDING.match(line)
        if found is None:
            continue
        if found["def"] or found["assign"]:
            names.add(found["def"] or found["assign"])
        elif found["imports"] is not None:
            for part in found["imports"].split(","):
                alias = part.split(" as ")
                names.add(alias[-1].strip() if len(alias) > 1 else alias[0].strip().split(".")[0])
        else:
            listed = found["names"]
            while "(" in listed and ")" not in listed:
                more = next(lines, ")")
                listed += " " + more
            for part in listed.replace("(", " ").replace(")", " ").split(","):
                if part.strip():
                    names.add(part.split(" as ")[-1].strip())
    return {name for name in names if name.isidentifier()}


#: Whether a spec expression's value is a bool (see :meth:`CodeWriter.bool_kind`).
BoolKind = Literal["always", "never", "maybe"]

ANNOTATIONS = {
    "int": "int",
    "float": "float",
    "number": "float",
    "bool": "bool",
    "str": "str",
    "list": "list",
}


class CodegenError(Exception):
    """The emitter could not produce code that passes its own checks (an internal error)."""


# -- statements -------------------------------------------------------------------------------
UNKNOWN: Any = object()


@dataclass
class LoopFrame:
    """A ``for`` loop being written: its variable (``_`` when nothing reads it)."""

    var: str | None
    used: bool = False


PrefixPart = str | ast.expr


@dataclass(frozen=True)
class NameRef:
    """A layer name: static text, the function's name parameter, counters."""

    parts: tuple[PrefixPart, ...]

    def node(self) -> ast.expr:
        values: list[ast.expr] = []
        text = ""
        for part in self.parts:
            if isinstance(part, str):
                text += part
                continue
            if text:
                values.append(ast.Constant(text))
                text = ""
            values.append(ast.FormattedValue(part, -1, None))
        if not values:
            return ast.Constant(text)
        if text:
            values.append(ast.Constant(text))
        return ast.JoinedStr(values)

    def static_text(self) -> str | None:
        out = ""
        for part in self.parts:
            if isinstance(part, str):
                out += part
            else:
                return None
        return out


@dataclass
class Stmt:
    """One statement of a generated function (rendered by the templates)."""

    kind: str  # comment | layer | assign | call | for | if | return | expr | blank
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
    unset: ast.expr | None = None  # what `fill` replaces: None, or `...` where a call passes None


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
    #: A block parameter's Python name by its spec name, where they differ (``layers`` →
    #: ``layers_`` when the module uses ``layers`` itself); calls pass arguments by these names.
    renamed: dict[str, str] = field(default_factory=dict)

    def arg_name(self, spec_name: str) -> str:
        """The keyword a call passes the block parameter ``spec_name`` by."""
        return self.renamed.get(spec_name, spec_name)


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
    #: The helper that tells a gate (kept, broadcast) from a shape to project onto, at run time.
    uses_gate_test: bool = False
    #: Spec-level `defaults:` are written as functools.partial constants (the module imports it).
    uses_partial: bool = False
    #: The spec paths outside the model's layers written as expressions of the vars' constants
    #: (an augmentation layer's ``height_factor=F``; see :mod:`~cnnspec.backends.codegen_vars`).
    expressed: frozenset[SpecPath] = frozenset()


# -- contexts ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Binding:
    """What a spec name means in generated code: a Python expression and, when known, its value."""

    node: ast.expr
    value: Any = UNKNOWN
    frame: LoopFrame | None = None
    #: Where ``value`` is not known (a block parameter in the block's function, or an argument
    #: that reads one): every value the name takes in the calls this code stands for, when the
    #: printer knows them (``None``: not known). Only read to tell whether the name can be a
    #: bool (:meth:`CodeWriter.bool_kind`).
    values: tuple[Any, ...] | None = None


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


# -- the writer -------------------------------------------------------------------------------
class CodeWriter:
    """What writing code for one compiled spec needs besides its structure: the module's
    names, spec expressions as Python expressions, and the keyword arguments of layer calls.
    :class:`~cnnspec.backends.codegen_printer.TreePrinter` adds the structure."""

    def __init__(self, compiled: CompiledSpec, *, script: bool = False) -> None:
        self.compiled = compiled
        self.doc = compiled.doc
        self.data = compiled.doc.data
        self.ir: ModelIR = compiled.ir
        if compiled.ir.tree is None:
            raise CodegenError("the compiled spec has no structured tree")
        self.tree: ModelTree = compiled.ir.tree
        self.ir_nodes: dict[str, Node] = {node.name: node for node in self.ir.nodes}
        self.functions: dict[str, Function] = {}
        self.order: list[str] = []
        self.uses_projection = False
        self.uses_gate_test = False
        #: Names the printer's own choices avoid (``defaults`` partials, ``FROZEN_LAYERS``,
        #: backbone functions, renamed block parameters): in a script, every name any script
        #: can bind (:func:`script_names`, a superset: unneeded renames are harmless).
        self.module_names = set(MODULE_NAMES) | (set(script_names()) if script else set())
        #: Names a var's constant or a block may not take (:meth:`check_names`). A script's own
        #: names depend on the spec (``CLASSES`` is bound only beside a masks folder, and
        #: ``specs/basic_cnn.yaml`` has ``vars: {classes: 10}``), so those are the ones the
        #: rendered script binds: :func:`~cnnspec.backends.python_emitter.refuse_name_clashes`
        #: adds them and checks again, with the same located errors.
        self.reserved = set(MODULE_NAMES)
        self.constants: list[Constant] = []
        self.var_bindings: dict[str, Binding] = {}
        self.input_name = self.ir.input_name

    # -- errors ----------------------------------------------------------------------------
    def need(self, ctx: Ctx, reason: str) -> CodegenError:
        """An internal error: the printer decided on a function or loop that it cannot write
        (what fits is decided from the tree before printing, so this is a bug)."""
        where = f" in `{ctx.fn.name}`" if ctx.fn.name else ""
        return CodegenError(f"cannot write {reason}{where}")

    # -- names of the module ---------------------------------------------------------------
    def check_names(self) -> None:
        """Refuse spec names that cannot be Python names (located errors, all at once).

        A block parameter is checked only as an ASCII identifier: where its name is also one
        the module uses (``layers``, a var's constant, a defaults partial, a block function) or
        one Python keeps (a keyword such as ``class``, a builtin such as ``filter``), the
        block's function gives the parameter another Python name (``filter_``,
        :meth:`~cnnspec.backends.codegen_printer.TreePrinter.build_block_function`)."""
        diags = Diagnostics()
        taken: dict[str, str] = {}
        for name in self._used_blocks():
            problem = identifier_problem(name)
            if problem is None and name in self.reserved:
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
            for pname in self.tree.blocks[name].params:
                problem = identifier_problem(pname)
                # a keyword or a builtin (`class`, `filter`) is renamed by the block's function
                if problem and ASCII_IDENTIFIER.fullmatch(str(pname)) is None:
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
            if problem is None and (constant in self.reserved or constant in taken):
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
        """The blocks the model calls, in the order of their first call."""
        return list(self.tree.blocks)

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
            tree = parse(match.group(1))
            inner = self.translate_tree(tree, names, current)
            values.append(ast.FormattedValue(self.as_text(tree, inner, names), -1, None))
            pos = match.end()
        if pos < len(text):
            values.append(ast.Constant(text[pos:]))
        return ast.JoinedStr(values)

    def as_text(self, tree: ast.expr, inner: ast.expr, names: dict[str, Binding]) -> ast.expr:
        """The expression to format into an f-string for the spec expression ``tree``
        (translated: ``inner``) so that the text is the resolver's
        (:func:`cnnspec.spec.expr.substitute`): a bool is written ``true``/``false``, anything
        else as ``str()`` writes it, which is what an f-string field does (ints, floats such
        as ``1e-05``, negative numbers, ``None``, lists).

        Only a field that can be a bool is wrapped (:meth:`bool_kind`), so ordinary fields stay
        plain (``f"conv_{i + 1}"``): one that is always a bool becomes
        ``'true' if flag else 'false'``; ``a if c else b`` wraps its branches; any other that
        may or may not be a bool (a parameter of type ``any`` that calls pass ``true`` and
        ``"z"``) tests for ``True``/``False`` by identity (``1 == True``) and leaves other values
        to the f-string. Both forms use only what the checker of generated code accepts (no
        helper function, no ``isinstance``)."""
        kind = self.bool_kind(tree, names)
        if kind == "never":
            return inner
        if kind == "always":
            return ast.IfExp(inner, ast.Constant("true"), ast.Constant("false"))
        if isinstance(tree, ast.IfExp) and isinstance(inner, ast.IfExp):  # (translated alike)
            body = self.as_text(tree.body, inner.body, names)
            return ast.IfExp(inner.test, body, self.as_text(tree.orelse, inner.orelse, names))
        is_false = ast.Compare(copy.deepcopy(inner), [ast.Is()], [ast.Constant(False)])
        other = ast.IfExp(is_false, ast.Constant("false"), copy.deepcopy(inner))
        return ast.IfExp(ast.Compare(inner, [ast.Is()], [ast.Constant(True)]), ast.Constant("true"), other)

    def bool_kind(self, tree: ast.expr, names: dict[str, Binding]) -> BoolKind:
        """Whether the spec expression ``tree`` evaluates to a bool: ``always``, ``never``, or
        ``maybe`` when it depends on values not known here. Decided on the expression
        language's semantics (:mod:`cnnspec.spec.expr`): comparisons and ``not`` give bools,
        arithmetic never does (it refuses bools), ``and``/``or``/``a if c else b`` give one of
        their operands, ``min``/``max`` one of their arguments (or list items)."""
        if isinstance(tree, ast.Constant):
            return _bool_kind_of([tree.value])
        if isinstance(tree, ast.Compare) or (isinstance(tree, ast.UnaryOp) and isinstance(tree.op, ast.Not)):
            return "always"
        if isinstance(tree, (ast.BinOp, ast.UnaryOp, ast.List, ast.Tuple)):
            return "never"
        if isinstance(tree, ast.Name):
            if tree.id in ("in_channels", "in_shape"):
                return "never"
            values = _binding_values(names.get(tree.id))
            return "maybe" if values is None else _bool_kind_of(values)
        if isinstance(tree, ast.BoolOp):
            return _combine(self.bool_kind(value, names) for value in tree.values)
        if isinstance(tree, ast.IfExp):
            return _combine([self.bool_kind(tree.body, names), self.bool_kind(tree.orelse, names)])
        if isinstance(tree, ast.Subscript):
            return self.item_bool_kind(tree.value, names)
        if isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name):
            if tree.func.id not in ("min", "max"):
                return "never"  # int, float, round, abs: numbers (abs(True) is 1)
            if len(tree.args) == 1:
                return self.item_bool_kind(tree.args[0], names)
            return _combine(self.bool_kind(arg, names) for arg in tree.args)
        return "maybe"

    def item_bool_kind(self, tree: ast.expr, names: dict[str, Binding]) -> BoolKind:
        """:meth:`bool_kind` of the items of the list ``tree`` (an index or ``min``/``max`` of
        it gives one of them)."""
        if isinstance(tree, (ast.List, ast.Tuple)):
            return _combine(self.bool_kind(item, names) for item in tree.elts)
        if isinstance(tree, ast.Name):
            if tree.id == "in_shape":
                return "never"
            values = _binding_values(names.get(tree.id))
            if values is not None and all(isinstance(value, list) for value in values):
                return _bool_kind_of([item for value in values for item in value])
        return "maybe"

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

    # -- tensors ---------------------------------------------------------------------------
    def to_chain(self, ctx: Ctx, current: TensorRef) -> TensorRef:
        if current.var != ctx.chain:
            ctx.out.append(Stmt("assign", target=ctx.chain, value=ast.Name(current.var, ast.Load())))
        return TensorRef(ctx.chain, current.ir, current.shape)

    def target(self, ctx: Ctx, item_id: str | None) -> str:
        if item_id is None:
            return ctx.chain
        existing = ctx.scope.ids.get(item_id)
        if existing is not None:
            return existing.var
        return ctx.fn.allocate(item_id, "layer")

    # -- plain layers ----------------------------------------------------------------------
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


# -- literal arguments and augmentation --------------------------------------------------------
def literal_kwargs(kind: LayerKind, params: dict[str, Any]) -> list[tuple[str, ast.expr]]:
    """The keyword arguments the Keras builder passes for these parameters, as literals
    (defaults left out, ``(3, 3)`` written ``3``)."""
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


def node_kwargs(node: Node) -> list[tuple[str, ast.expr]]:
    """The keyword arguments of a layer the resolver made."""
    return literal_kwargs(REGISTRY[node.kind], node.params)


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


# -- helpers ----------------------------------------------------------------------------------
def _input_statement(var: str, ir: ModelIR, shape: ast.expr | None = None) -> Stmt:
    """``inputs = keras.Input(shape=…, name=…)``: the first statement of ``build_model()``
    (``shape``: the shape's expression, default its value)."""
    call = ast.Call(
        _attr("keras", "Input"),
        [],
        [
            ast.keyword("shape", shape or literal_node(tuple(ir.input_shape))),
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


#: The spec file the code being generated is generated from (as its locations name it): the
#: files its comments name are named beside it (:func:`source_name`). Set by
#: :func:`cnnspec.backends.python_emitter.generate_code` for one generation; a backbone's
#: printer prints its spec's items, named beside the spec that names the backbone too.
MAIN_SPEC: contextvars.ContextVar[str | None] = contextvars.ContextVar("MAIN_SPEC", default=None)


def _where(loc: Loc | None) -> str:
    """Where a value of the generated code was written: ``FILE:LINE`` (the file as
    :func:`source_name` names it beside :data:`MAIN_SPEC`), or for a value of a command-line
    option, the option as typed (``--set vars.width=3``, ``--epochs 3``): its location
    (``<--set 1>:1``) means nothing in a file that outlives the command."""
    if loc is None:
        return ""
    if loc.file.startswith(COMMAND_LINE_PREFIX):
        from cnnspec.spec.loader import SOURCE_TEXTS

        option = command_line_option(loc.file)
        typed = SOURCE_TEXTS.get(loc.file, "").split("\n", 1)[0]
        return typed if typed.startswith(option) else f"{option} {typed}".strip()
    return f"{source_name(loc.file, MAIN_SPEC.get(), os.getcwd())}:{loc.line}"


@functools.lru_cache(maxsize=256)
def source_name(file: str, main: str | None = None, cwd: str = "") -> str:
    """How the generated code names the spec file ``file`` (a location's, as shown from the
    working folder): relative to the folder of ``main`` (``sub/blocks.yaml``, ``../lib/x.yaml``),
    the same from any working folder; a packaged zoo file as ``zoo:blocks/resnet.yaml``. The
    file's name alone said ``main.yaml:4`` of a ``sub/main.yaml`` beside ``main.yaml``, and
    ``resnet.yaml:10`` of the zoo's ``blocks/resnet.yaml`` beside its ``resnet.yaml``.
    ``cwd``: the working folder the names are relative to (the cache's key)."""
    from cnnspec.resources import zoo_dir

    base = Path(cwd or os.getcwd())
    path = (base / file).resolve()
    try:
        return f"zoo:{path.relative_to(zoo_dir().resolve()).as_posix()}"
    except ValueError:
        pass
    if main is None:
        return Path(file).name
    return Path(os.path.relpath(path, (base / main).resolve().parent)).as_posix()


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
    """The first candidate that is free and a usable Python name (no keyword or builtin,
    :func:`~cnnspec.backends.codegen_values.is_identifier`, no dunder), else one made from the
    first by :func:`~cnnspec.backends.codegen_values.safe_name`."""
    for candidate in candidates:
        if candidate not in taken and is_identifier(candidate) and not candidate.startswith("__"):
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


def _bool_kind_of(values: list[Any] | tuple[Any, ...]) -> BoolKind:
    """Whether all, none or some of ``values`` are bools (``maybe`` when there are none)."""
    return _combine("always" if isinstance(value, bool) else "never" for value in values)


def _combine(kinds: Iterable[BoolKind]) -> BoolKind:
    """The :data:`BoolKind` of a value that is one of several, each of these kinds."""
    found = set(kinds)
    if found == {"always"}:
        return "always"
    return "never" if found == {"never"} else "maybe"


def _binding_values(binding: Binding | None) -> tuple[Any, ...] | None:
    """The values a name can take in generated code, where the printer knows them: its value,
    its values in every call (:attr:`Binding.values`), or a loop's index (an int)."""
    if binding is None:
        return None
    if binding.value is not UNKNOWN:
        return (binding.value,)
    if binding.values is not None:
        return binding.values
    return (0,) if binding.frame is not None else None


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


def drop_unused(body: list[Stmt]) -> list[Stmt]:
    """Assign layers whose output nothing reads (layers the resolver prunes as dead) to ``_``,
    and drop copies of tensors that nothing reads: plain copies (``cells = x`` for a repeat's
    id no later item names) and the unread names of a tuple assignment (``p, x = stem, c0``
    for a carried ``p`` nothing reads). Dropping a copy can leave the names it read unread, so
    this runs until nothing more goes (ruff's F841 would flag what stays)."""
    while _drop_copies(body, _loads(body)):
        pass
    loads = _loads(body)

    def rename(statements: list[Stmt]) -> None:
        for stmt in statements:
            if stmt.kind in ("layer", "call") and stmt.target:
                # A call of a block with several outputs assigns a tuple: c0, c0_x = cell(…)
                parts = [t if t in loads else "_" for t in stmt.target.split(", ")]
                stmt.target = ", ".join(parts)
            rename(stmt.body)

    rename(body)
    return body


def _loads(statements: list[Stmt], loads: set[str] | None = None) -> set[str]:
    """Every name ``statements`` (and the statements inside them) read."""
    loads = set() if loads is None else loads
    for stmt in statements:
        for text in stmt.inputs:  # a name, or an element of a list: enc_skip[LEVELS - 1 - i]
            loads.update(n.id for n in ast.walk(ast.parse(text, mode="eval")) if isinstance(n, ast.Name))
        nodes = [v for _, v in stmt.kwargs]
        if stmt.value is not None:
            nodes.append(stmt.value)
        if stmt.name is not None:
            nodes.append(stmt.name.node())
        for node in nodes:
            loads.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name))
        _loads(stmt.body, loads)
    return loads


def _drop_copies(statements: list[Stmt], loads: set[str]) -> bool:
    """Drop the copies of tensors into names outside ``loads``; whether any went."""
    dropped = False
    kept: list[Stmt] = []
    for stmt in statements:
        if stmt.kind == "assign" and "." not in stmt.target:
            targets = stmt.target.split(", ")
            values = stmt.value.elts if isinstance(stmt.value, ast.Tuple) else [stmt.value]
            if len(targets) == 1 and targets[0] not in loads:
                dropped = True
                continue
            if len(targets) > 1 and len(values) == len(targets) and not set(targets) <= loads:
                pairs = [(t, v) for t, v in zip(targets, values, strict=True) if t in loads]
                dropped = True
                if not pairs:
                    continue
                stmt.target = ", ".join(t for t, _ in pairs)
                stmt.value = pairs[0][1] if len(pairs) == 1 else ast.Tuple([v for _, v in pairs], ast.Load())
        dropped = _drop_copies(stmt.body, loads) or dropped
        kept.append(stmt)
    statements[:] = kept
    return dropped


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
    if param.type == "shape":
        return [7 + which, -1]
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


__all__ = [
    "BUILTIN_NAMES",
    "CodeWriter",
    "CodegenError",
    "ModelModule",
]
