"""Checks of generated code, without TensorFlow.

Two passes over the emitted source, parsed with :mod:`ast`:

* :func:`check_source` — a whitelist. Only the statements, imports and calls the templates
  produce may appear; anything else (``eval``, ``__import__``, dunder attributes, unknown
  imports, class definitions…) refuses the output before it is written.
* :func:`verify_model` — an abstract interpreter. It runs ``build_model()`` (and
  ``build_augmentation()``) of the generated module against a fake ``keras`` that records
  every layer: class, keyword arguments (with Keras' own defaults and tuple expansion
  filled in), name and inputs. The record must equal the IR node for node, so the emitted
  Python provably builds the same graph as the Keras builder, before anything is written.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cnnspec.backends.codegen_recursion import is_recursion_raise
from cnnspec.ir import ModelIR, Node, layers_of
from cnnspec.layers.registry import REGISTRY, KerasCall, LayerKind
from cnnspec.spec.expr import (
    BINARY_OPERATORS,
    COMPARE_OPERATORS,
    FUNCTIONS,
    MAX_EXPONENT,
    compare_chain,
    short_circuit,
)

#: (Keras class, keyword) pairs never left out of a generated call (each kind's
#: ``keras_always_pass``: Keras has no default or a different one). Checked by a slow test.
KERAS_KEEP: frozenset[tuple[str, str]] = frozenset(
    (kind.keras_class, keyword) for kind in REGISTRY.values() for keyword in kind.keras_always_pass
)
KERAS_CLASSES = {kind.keras_class: kind for kind in REGISTRY.values()}


class CheckError(Exception):
    """Generated code that fails a check; ``where`` names the function it was found in."""

    def __init__(self, message: str, where: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.line = line


# -- keyword defaults and the normalisation Keras applies -------------------------------------
def default_kwargs(kind: LayerKind) -> dict[str, Any]:
    """Keyword arguments a generated call may leave out: their value is Keras' default."""
    out = {}
    for param in kind.params:
        name = param.keras_name
        if name is None or param.required or (kind.keras_class, name) in KERAS_KEEP:
            continue
        out[name] = param.normalize(param.default)
    return out


#: Parameter types whose values Keras itself normalises exactly like the registry does
#: (``kernel_size=3`` → ``(3, 3)``, ``padding=[1, 2]`` → ``((1, 1), (2, 2))``, a reshape's
#: ``target_shape=[1, 1, c]`` → ``(1, 1, c)``); checked against Keras for every such parameter
#: by a slow test. Expressions for them are written into generated code as they are.
KERAS_NORMALIZED = ("ints", "padding", "shape")


def tuple_kwargs(kind: LayerKind) -> dict[str, int]:
    """Keywords that Keras expands from an int to a tuple (``kernel_size=3`` → ``(3, 3)``)."""
    return {p.keras_name: p.length for p in kind.params if p.type == "ints" and p.keras_name}


def keras_normalize(kind: LayerKind, key: str, value: Any) -> Any:
    """What Keras stores for ``key=value`` (the registry's normalisation, for the types Keras
    normalises the same way)."""
    for param in kind.params:
        normalised = param.keras_name == key and param.type in KERAS_NORMALIZED and value is not None
        if normalised and param.check(_plain(value)) is None:
            return param.normalize(_plain(value))
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def same_value(a: Any, b: Any) -> bool:
    """Equality that also requires equal types (``1 != 1.0``, ``[1] != (1,)``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


# -- the whitelist ----------------------------------------------------------------------------
MODEL_IMPORTS = {"keras": None, "keras.layers": None, "functools": None}
SCRIPT_IMPORTS = {
    "argparse",
    "concurrent.futures",  # (with PIL: the header check of streamed image files)
    "PIL",
    "csv",
    "functools",
    "io",  # (these three: reading a weights file without loading a model)
    "zipfile",
    "h5py",
    "re",  # (the weights file's group names, which Keras takes from the layers' classes)
    "json",
    "time",  # (the timestamp of the default output folder)
    "unicodedata",  # (class names compared in Unicode NFC, as cnnspec compares them)
    "warnings",  # (Keras' "ran out of data" of a stream of unknown length, silenced as cnnspec does)
    "pathlib",
    "keras",
    "numpy",
    "tensorflow",
    "matplotlib",
    "matplotlib.pyplot",
    "matplotlib.ticker",  # (whole-epoch ticks on history.png)
    "sklearn.datasets",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.utils.class_weight",
}
_FORBIDDEN_NAMES = {
    "eval",
    "exec",
    "compile",
    "__import__",
    "getattr",
    "setattr",
    "delattr",
    "globals",
    "locals",
    "vars",
    "breakpoint",
    "input",
    "open",
    "exit",
    "quit",
    "help",
    "memoryview",
    "object",
    "type",
    "super",
    "os",
    "sys",
    "subprocess",
    "shutil",
    "pickle",
    "importlib",
    "builtins",
}
#: The two private hooks of Keras' optimizers a script's layer-wise learning rates wrap
#: (``scale_learning_rates``: a weight's key, and the decoupled weight decay); no others.
_OPTIMIZER_HOOKS = frozenset({"_var_key", "_apply_weight_decay"})
_MODEL_NODES: tuple[type, ...] = (
    ast.Module,
    ast.Expr,
    ast.Import,
    ast.ImportFrom,
    ast.alias,
    ast.FunctionDef,
    ast.arguments,
    ast.arg,
    ast.Assign,
    ast.For,
    ast.If,
    ast.Return,
    ast.Pass,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Store,
    ast.Attribute,
    ast.Subscript,
    ast.Slice,
    ast.Call,
    ast.keyword,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.List,
    ast.Tuple,
    ast.Dict,
    ast.JoinedStr,
    ast.FormattedValue,
    ast.operator,
    ast.unaryop,
    ast.boolop,
    ast.cmpop,
    ast.expr_context,
)
_SCRIPT_NODES: tuple[type, ...] = (
    *_MODEL_NODES,
    ast.ClassDef,
    ast.AugAssign,
    ast.With,
    ast.withitem,
    ast.Starred,
    ast.ListComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.comprehension,
    ast.Break,  # a phased run ends when early stopping ends a phase
    ast.Try,  # the header check of streamed image files: a file Pillow refuses is a bad file
    ast.ExceptHandler,
    ast.Raise,  # SystemExit naming the bad files, or a strict weights source that does not fit
)


def check_source(source: str, *, script: bool = False) -> ast.Module:
    """Parse ``source`` and refuse any construct the templates do not produce."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise CheckError(f"generated code does not parse: {exc.msg}", line=exc.lineno) from None
    allowed_nodes = _SCRIPT_NODES if script else _MODEL_NODES
    imports = SCRIPT_IMPORTS if script else set(MODEL_IMPORTS)
    exempt = _recursion_raise_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in exempt:
            continue
        line = getattr(node, "lineno", None)
        if not isinstance(node, allowed_nodes):
            raise CheckError(f"generated code contains a {type(node).__name__} node", line=line)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name not in imports:
                    raise CheckError(f"generated code imports {alias.name!r}", line=line)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            for alias in node.names:
                full = f"{module}.{alias.name}"
                if (module not in imports and full not in imports) or node.level:
                    raise CheckError(f"generated code imports {full!r}", line=line)
        elif isinstance(node, ast.ClassDef):
            if not script or not _is_template_class(node):
                raise CheckError(f"class {node.name!r} is not one the templates write", line=line)
        elif isinstance(node, ast.Name):
            allowed_dunders = ("__name__", "__file__") if script else ("__name__",)
            if node.id in _FORBIDDEN_NAMES or (node.id.startswith("__") and node.id not in allowed_dunders):
                raise CheckError(f"generated code uses the name {node.id!r}", line=line)
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_") and not (script and node.attr in _OPTIMIZER_HOOKS):
                raise CheckError(f"generated code uses the attribute {node.attr!r}", line=line)
        elif isinstance(node, ast.FunctionDef):
            if node.decorator_list or node.args.vararg or node.args.kwarg:
                raise CheckError(f"function {node.name!r} has a form the templates never write", line=line)
        elif isinstance(node, ast.Raise):
            if not _is_exit(node):
                raise CheckError("generated code raises something other than SystemExit(message)", line=line)
        elif isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg is None:
                    raise CheckError("generated code unpacks keyword arguments", line=line)
    top_level: tuple[type, ...] = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.Assign, ast.Expr, ast.If)
    if script:
        top_level = (*top_level, ast.ClassDef)
    for statement in tree.body:
        if not isinstance(statement, top_level):
            raise CheckError(f"unexpected top-level {type(statement).__name__}", line=statement.lineno)
        if id(statement) in exempt:
            continue
        if isinstance(statement, ast.Expr) and not isinstance(statement.value, ast.Constant):
            raise CheckError("generated code calls something at import time", line=statement.lineno)
        if isinstance(statement, ast.If) and not _is_main_guard(statement):
            raise CheckError("unexpected top-level `if`", line=statement.lineno)
        if isinstance(statement, ast.Assign):
            _check_constant_assignment(statement)
    return tree


def _recursion_raise_nodes(tree: ast.Module) -> set[int]:
    """The ids of the nodes of a deep model's recursion-limit raise
    (:func:`~cnnspec.backends.codegen_recursion.is_recursion_raise`, one top-level statement)
    and of its ``import sys``, which the checks skip: ``sys`` is used there and nowhere else.
    Empty unless both are there, once each, and the import is the plain ``import sys``."""
    raises = [s for s in tree.body if is_recursion_raise(s)]
    imports = [
        s for s in tree.body if isinstance(s, ast.Import) and any(a.name == "sys" for a in s.names)
    ]  # fmt: skip
    if len(raises) != 1 or len(imports) != 1:
        return set()
    (statement,) = imports
    if len(statement.names) != 1 or statement.names[0].asname is not None:
        return set()
    return {id(node) for found in (*raises, *imports) for node in ast.walk(found)}


def top_level_names(tree: ast.Module) -> list[str]:
    """Every name a module binds at its top level, once per binding, in order: functions,
    classes, assignment targets and imports (``import a.b`` binds ``a``). A name listed twice
    is bound twice: in generated code, a spec name that takes a name of the templates."""
    names: list[str] = []
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(statement.name)
        elif isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            for target in targets:
                names.extend(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            for alias in statement.names:
                names.append(alias.asname or alias.name.split(".")[0])
    return names


def _is_exit(node: ast.Raise) -> bool:
    """``raise SystemExit(message)``, one argument and no cause: the script's one way to stop
    with a non-zero exit status and a message (``sys`` stays off the import whitelist)."""
    exc = node.exc
    return (
        node.cause is None
        and isinstance(exc, ast.Call)
        and isinstance(exc.func, ast.Name)
        and exc.func.id == "SystemExit"
        and len(exc.args) == 1
        and not isinstance(exc.args[0], ast.Starred)
        and not exc.keywords
    )


#: The bases of the classes the script templates write: ``WarmUp``, use_ema's
#: ``AverageIn``/``AverageOut``, csv_logger's ``TrainingLog`` and cutmix's ``PixelCutMix``.
_SCRIPT_CLASS_BASES = (
    "keras.optimizers.schedules.LearningRateSchedule",
    "keras.callbacks.Callback",
    "keras.callbacks.CSVLogger",
    "keras.layers.CutMix",
)


def _is_template_class(node: ast.ClassDef) -> bool:
    """A class of the script templates (one of :data:`_SCRIPT_CLASS_BASES`), nothing else."""
    if node.decorator_list or node.keywords or len(node.bases) != 1:
        return False
    return ast.unparse(node.bases[0]) in _SCRIPT_CLASS_BASES


def _is_main_guard(node: ast.If) -> bool:
    test = node.test
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.comparators) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
        and not node.orelse
    )


def _check_constant_assignment(node: ast.Assign) -> None:
    # module constants are data: literals and arithmetic on other constants, no calls; or a
    # kind's defaults, functools.partial(layers.Class, key=literal, …)
    if _is_partial(node.value):
        return
    for sub in ast.walk(node.value):
        if isinstance(sub, ast.Call) and not (isinstance(sub.func, ast.Name) and sub.func.id in FUNCTIONS):
            raise CheckError("a module constant calls a function", line=node.lineno)


def _is_partial(value: ast.expr) -> bool:
    """``functools.partial(layers.Class, key=value, …)`` with values that call nothing."""
    if not (
        isinstance(value, ast.Call)
        and ast.unparse(value.func) == "functools.partial"
        and len(value.args) == 1
        and isinstance(value.args[0], ast.Attribute)
        and ast.unparse(value.args[0].value) == "layers"
    ):
        return False
    return not any(isinstance(sub, ast.Call) for kw in value.keywords for sub in ast.walk(kw.value))


# -- Python semantics for the expressions the emitter writes ----------------------------------
# The operators and functions of ``${…}`` (cnnspec.spec.expr), plus what the templates write
# around them: ``is``/``is not`` and a few builtins. These tables only evaluate; what generated
# code may contain at all is the whitelist above.
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    **COMPARE_OPERATORS,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
BUILTINS: dict[str, Any] = {
    **FUNCTIONS,
    "list": list,
    "tuple": tuple,
    "len": len,
    "range": range,
    "str": str,
    "bool": bool,
}


class Unknown(Exception):
    """An expression needs a value that is not known (statically)."""


def evaluate(node: ast.expr, lookup: Callable[[str], Any], call: Callable[..., Any] | None = None) -> Any:
    """Evaluate an expression node with Python's semantics; names come from ``lookup``,
    calls of non-builtin callables go through ``call``."""
    ev = _Evaluator(lookup, call)
    return ev.visit(node)


class _Evaluator:
    def __init__(self, lookup: Callable[[str], Any], call: Callable[..., Any] | None) -> None:
        self.lookup = lookup
        self.call = call

    def visit(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.lookup(node.id)
        if isinstance(node, ast.BinOp):
            left, right = self.visit(node.left), self.visit(node.right)
            if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
                raise Unknown("power too large to check")
            return BINARY_OPERATORS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp):
            operand = self.visit(node.operand)
            if isinstance(node.op, ast.Not):
                return not operand
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.BoolOp):
            return short_circuit(node, self.visit)
        if isinstance(node, ast.Compare):
            return compare_chain(node, self.visit, _COMPARE)
        if isinstance(node, ast.IfExp):
            return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)
        if isinstance(node, ast.List):
            return [self.visit(e) for e in node.elts]
        if isinstance(node, ast.Tuple):
            return tuple(self.visit(e) for e in node.elts)
        if isinstance(node, ast.Dict):
            return {self.visit(k): self.visit(v) for k, v in zip(node.keys, node.values, strict=True)}  # type: ignore[arg-type]
        if isinstance(node, ast.Subscript):
            target = self.visit(node.value)
            if isinstance(node.slice, ast.Slice):
                parts = [
                    None if p is None else self.visit(p)
                    for p in (node.slice.lower, node.slice.upper, node.slice.step)
                ]
                return target[slice(*parts)]
            return target[self.visit(node.slice)]
        if isinstance(node, ast.Attribute):
            target = self.visit(node.value)
            if isinstance(target, list) and node.attr == "append":  # a carrying loop's list
                return target.append
            attribute = getattr(target, "attribute", None)
            if attribute is None:
                raise Unknown(f"attribute {node.attr!r}")
            return attribute(node.attr)
        if isinstance(node, ast.JoinedStr):
            out = []
            for value in node.values:
                if isinstance(value, ast.Constant):
                    out.append(str(value.value))
                elif isinstance(value, ast.FormattedValue):
                    out.append(format(self.visit(value.value)))
            return "".join(out)
        if isinstance(node, ast.Call):
            func = self.visit(node.func)
            args = [self.visit(a) for a in node.args]
            kwargs = {kw.arg: self.visit(kw.value) for kw in node.keywords if kw.arg is not None}
            if func in BUILTINS.values() or _is_list_append(func):
                return func(*args, **kwargs)
            if self.call is None:
                raise Unknown("call")
            return self.call(func, args, kwargs)
        raise Unknown(type(node).__name__)


def _is_list_append(func: Any) -> bool:
    return getattr(func, "__name__", "") == "append" and isinstance(getattr(func, "__self__", None), list)


# -- the fake Keras ---------------------------------------------------------------------------
@dataclass
class FakeTensor:
    name: str
    shape: tuple[int, ...] | None

    def attribute(self, name: str) -> Any:
        if name == "shape":
            if self.shape is None:
                raise CheckError(f"the shape of {self.name!r} is used but it is not in the model")
            return (None, *self.shape)
        raise CheckError(f"tensors have no attribute {name!r} in generated code")


@dataclass
class FakeObject:
    """A module or factory of the fake ``keras``: attribute access walks a closed table."""

    path: str
    children: dict[str, Any] = field(default_factory=dict)

    def attribute(self, name: str) -> Any:
        if name not in self.children:
            raise CheckError(f"generated code uses {self.path}.{name}, which the templates never write")
        return self.children[name]


@dataclass(frozen=True)
class LayerClass:
    kind: LayerKind
    #: Keyword arguments a ``functools.partial`` of the class sets (a kind's spec defaults).
    preset: tuple[tuple[str, Any], ...] = ()


@dataclass
class FakeLayer:
    kind: LayerKind
    kwargs: dict[str, Any]
    name: Any


@dataclass
class Recorded:
    layer: FakeLayer
    inputs: list[str]
    many: bool
    where: str


@dataclass(frozen=True)
class Factory:
    key: str


@dataclass
class FakeModel:
    inputs: Any
    outputs: Any
    name: Any

    def attribute(self, name: str) -> Any:
        if name == "get_layer":  # model.get_layer(name).trainable = False (trainable: false)
            return GetLayer()
        raise CheckError(f"generated code uses the model's {name!r}")


@dataclass(frozen=True)
class GetLayer:
    """``model.get_layer``: the only method of a model the generated model code calls."""


@dataclass
class FakeSequential:
    layers: list[Any]
    name: Any


def fake_keras() -> dict[str, Any]:
    layers = FakeObject("keras.layers", {cls: LayerClass(kind) for cls, kind in KERAS_CLASSES.items()})
    regularizers = FakeObject("keras.regularizers", {"L1L2": Factory("L1L2")})
    initializers = FakeObject(
        "keras.initializers", {"VarianceScaling": Factory("VarianceScaling"), "Constant": Factory("Constant")}
    )
    keras = FakeObject(
        "keras",
        {
            "layers": layers,
            "regularizers": regularizers,
            "initializers": initializers,
            "Input": "Input",
            "Model": "Model",
            "Sequential": "Sequential",
        },
    )
    return {"keras": keras, "layers": layers, "functools": FakeObject("functools", {"partial": "partial"})}


# -- the interpreter --------------------------------------------------------------------------
class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


@dataclass
class _Function:
    node: ast.FunctionDef


MAX_STEPS = 2_000_000


class Interpreter:
    """Runs the model functions of a generated module against :func:`fake_keras`."""

    def __init__(self, tree: ast.Module, ir: ModelIR) -> None:
        self.ir = ir
        self.nodes: dict[str, Node] = {node.name: node for node in ir.nodes}
        self.aug_nodes: dict[str, Node] = {node.name: node for node in ir.augmentation}
        # The shapes of the layers the resolver pruned (they lead to no output): the code
        # leaves them out, except where one text builds them beside live ones (a loop whose
        # last iteration's layer is dead, a block function with a call whose output is
        # unused), and there a layer after them may read their shape.
        structure = getattr(ir, "tree", None)
        self.pruned: dict[str, Any] = {}
        if structure is not None:
            self.pruned = {
                leaf.node.name: leaf.node.shape for leaf in layers_of(structure.body) if not leaf.live
            }
        self.records: list[Recorded] = []
        self.seen: set[str] = set()
        self.steps = 0
        self.stack: list[str] = []
        self.globals: dict[str, Any] = {}
        self.augmenting = False
        #: Layers the code freezes after building the model (``….trainable = False``).
        self.frozen: set[str] = set()
        for statement in tree.body:
            if isinstance(statement, ast.FunctionDef):
                self.globals[statement.name] = _Function(statement)
        fake = fake_keras()
        for statement in tree.body:
            if isinstance(statement, ast.Import):
                for alias in statement.names:
                    name = alias.asname or alias.name
                    self.globals[name] = fake.get(alias.name, _Opaque(alias.name))
            elif isinstance(statement, ast.ImportFrom):
                for alias in statement.names:
                    full = f"{statement.module}.{alias.name}"
                    value = fake["layers"] if full == "keras.layers" else _Opaque(full)
                    self.globals[alias.asname or alias.name] = value
            elif isinstance(statement, ast.Assign):
                try:
                    value = evaluate(statement.value, self._global_lookup, self._partial)
                except (Unknown, CheckError, ArithmeticError, TypeError, ValueError):
                    value = _Opaque("constant")
                for target in statement.targets:
                    if isinstance(target, ast.Name):
                        self.globals[target.id] = value

    def _partial(self, func: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """``functools.partial`` of a layer class, the only call a module constant makes."""
        if func != "partial" or len(args) != 1 or not isinstance(args[0], LayerClass):
            raise CheckError(f"a module constant calls {func!r}")
        return LayerClass(args[0].kind, tuple(sorted(kwargs.items())))

    def _global_lookup(self, name: str) -> Any:
        if name in self.globals:
            value = self.globals[name]
            if isinstance(value, _Opaque):
                raise Unknown(name)
            return value
        if name in BUILTINS:
            return BUILTINS[name]
        raise CheckError(f"undefined name {name!r} in generated code")

    # -- running ---------------------------------------------------------------------------
    def run(self, function: str) -> Any:
        target = self.globals.get(function)
        if not isinstance(target, _Function):
            raise CheckError(f"generated code has no function {function}()")
        return self.call_function(target, [], {})

    def call_function(self, function: _Function, args: list[Any], kwargs: dict[str, Any]) -> Any:
        node = function.node
        spec = node.args
        local: dict[str, Any] = {}
        positional = [a.arg for a in spec.posonlyargs + spec.args]
        if len(args) > len(positional):
            raise CheckError(f"{node.name}() called with too many positional arguments", node.name)
        for name, value in zip(positional, args, strict=False):
            local[name] = value
        defaults = dict(zip(positional[len(positional) - len(spec.defaults) :], spec.defaults, strict=True))
        for arg, default in zip(spec.kwonlyargs, spec.kw_defaults, strict=True):
            if default is not None:
                defaults[arg.arg] = default
        names = positional + [a.arg for a in spec.kwonlyargs]
        for key, value in kwargs.items():
            if key not in names or key in local:
                raise CheckError(f"{node.name}() got an unexpected argument {key!r}", node.name)
            local[key] = value
        for name in names:
            if name not in local:
                if name not in defaults:
                    raise CheckError(f"{node.name}() is missing the argument {name!r}", node.name)
                local[name] = evaluate(defaults[name], self._global_lookup)
        self.stack.append(node.name)
        try:
            self.block(node.body, local)
        except _Return as result:
            return result.value
        finally:
            self.stack.pop()
        return None

    def block(self, body: list[ast.stmt], local: dict[str, Any]) -> None:
        for statement in body:
            self.statement(statement, local)

    def statement(self, node: ast.stmt, local: dict[str, Any]) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise CheckError("generated code runs too long to check", self.where())
        if isinstance(node, ast.Expr):
            if not isinstance(node.value, ast.Constant):
                self.expr(node.value, local)
        elif isinstance(node, ast.Assign):
            value = self.expr(node.value, local)
            for target in node.targets:
                self.assign(target, value, local)
        elif isinstance(node, ast.Return):
            raise _Return(None if node.value is None else self.expr(node.value, local))
        elif isinstance(node, ast.If):
            self.block(node.body if self.expr(node.test, local) else node.orelse, local)
        elif isinstance(node, ast.For):
            if not isinstance(node.target, ast.Name) or node.orelse:
                raise CheckError("unexpected form of `for`", self.where())
            iterable = self.expr(node.iter, local)
            if not isinstance(iterable, (range, list, tuple)):
                raise CheckError("`for` over something other than a range or list", self.where())
            if len(iterable) > 100_000:
                raise CheckError("a loop runs too long to check", self.where())
            for value in iterable:
                local[node.target.id] = value
                self.block(node.body, local)
        elif isinstance(node, ast.Pass):
            return
        else:
            raise CheckError(f"unexpected statement {type(node).__name__} in a model function", self.where())

    def assign(self, target: ast.expr, value: Any, local: dict[str, Any]) -> None:
        """``x = …``, or a tuple of names (``p, x = x, new``; a block with several outputs)."""
        if isinstance(target, ast.Name):
            local[target.id] = value
            return
        if isinstance(target, ast.Tuple) and all(isinstance(t, ast.Name) for t in target.elts):
            if not isinstance(value, (tuple, list)) or len(value) != len(target.elts):
                raise CheckError("a tuple assignment of the wrong number of values", self.where())
            for name, item in zip(target.elts, value, strict=True):
                assert isinstance(name, ast.Name)
                local[name.id] = item
            return
        if isinstance(target, ast.Attribute) and target.attr == "trainable" and value is False:
            layer = self.expr(target.value, local)
            if not isinstance(layer, FakeLayer):
                raise CheckError("`.trainable` set on something other than a layer", self.where())
            self.frozen.add(layer.name)
            return
        raise CheckError("assignment to something other than a name", self.where())

    def where(self) -> str:
        return self.stack[-1] if self.stack else "<module>"

    def expr(self, node: ast.expr, local: dict[str, Any]) -> Any:
        def lookup(name: str) -> Any:
            if name in local:
                return local[name]
            return self._global_lookup(name)

        try:
            return evaluate(node, lookup, self.invoke)
        except (Unknown, ArithmeticError, TypeError, ValueError, IndexError, KeyError) as exc:
            raise CheckError(f"cannot evaluate generated code: {exc!r}", self.where()) from None

    # -- calls -----------------------------------------------------------------------------
    def invoke(self, func: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if isinstance(func, _Function):
            return self.call_function(func, args, kwargs)
        if isinstance(func, LayerClass):
            if args:
                raise CheckError(f"{func.kind.keras_class} called with positional arguments", self.where())
            if "name" not in kwargs:
                raise CheckError(f"a {func.kind.keras_class} layer has no name", self.where())
            kwargs = {**dict(func.preset), **kwargs}  # a later keyword wins, as in functools.partial
            name = kwargs.pop("name")
            return FakeLayer(func.kind, kwargs, name)
        if isinstance(func, FakeLayer):
            return self.apply_layer(func, args, kwargs)
        if isinstance(func, Factory):
            if args:
                raise CheckError("a Keras factory called with positional arguments", self.where())
            return KerasCall(func.key, tuple(sorted(kwargs.items())))
        if func == "Input":
            return self.make_input(args, kwargs)
        if func == "Model":
            if len(args) != 2 or set(kwargs) - {"name"}:
                raise CheckError("keras.Model(inputs, outputs, name=…) expected", self.where())
            return FakeModel(args[0], args[1], kwargs.get("name"))
        if isinstance(func, GetLayer):
            found = [r.layer for r in self.records if r.layer.name == (args[0] if len(args) == 1 else None)]
            if len(found) != 1 or kwargs:
                raise CheckError(f"model.get_layer({args!r}) names no layer of the model", self.where())
            return found[0]
        if func == "Sequential":
            if len(args) != 1 or set(kwargs) - {"name"}:
                raise CheckError("keras.Sequential([...], name=…) expected", self.where())
            return FakeSequential(list(args[0]), kwargs.get("name"))
        raise CheckError(f"generated code calls {func!r}", self.where())

    def make_input(self, args: list[Any], kwargs: dict[str, Any]) -> FakeTensor:
        if args or set(kwargs) != {"shape", "name"}:
            raise CheckError("keras.Input(shape=…, name=…) expected", self.where())
        if kwargs["name"] != self.ir.input_name:
            raise CheckError(f"input named {kwargs['name']!r}; the IR calls it {self.ir.input_name!r}")
        if tuple(kwargs["shape"]) != tuple(self.ir.input_shape):
            raise CheckError(f"input shape {kwargs['shape']!r}; the IR has {self.ir.input_shape!r}")
        return FakeTensor(self.ir.input_name, tuple(self.ir.input_shape))

    def apply_layer(self, layer: FakeLayer, args: list[Any], kwargs: dict[str, Any]) -> FakeTensor:
        if len(args) != 1 or kwargs:
            raise CheckError("a layer called with other than one argument", self.where())
        value = args[0]
        many = isinstance(value, list)
        tensors = value if many else [value]
        if not all(isinstance(t, FakeTensor) for t in tensors):
            raise CheckError("a layer called on something that is not a tensor", self.where())
        name = layer.name
        if not isinstance(name, str):
            raise CheckError(f"a layer name that is not a string: {name!r}", self.where())
        if name in self.seen:
            raise CheckError(f"the layer name {name!r} is used twice", self.where())
        self.seen.add(name)
        record = Recorded(layer, [t.name for t in tensors], many, self.where())
        self.records.append(record)
        node = self.nodes.get(name)
        if node is None:
            return FakeTensor(name, self.pruned.get(name))  # a dead layer (checked at the end)
        compare_layer(record.layer, node, self.where())
        kind = REGISTRY[node.kind]
        if list(node.inputs) != record.inputs:
            raise CheckError(
                f"layer {name!r} takes {record.inputs}; the IR has {list(node.inputs)}", self.where()
            )
        if many != (kind.arity == "many"):
            raise CheckError(f"layer {name!r} is called with the wrong arity", self.where())
        return FakeTensor(name, node.shape)


def compare_layer(layer: FakeLayer, node: Node, where: str) -> None:
    """Raise when a recorded layer differs from its IR node (class or Keras arguments)."""
    kind = REGISTRY[node.kind]
    if layer.kind.keras_class != kind.keras_class:
        raise CheckError(
            f"layer {node.name!r} is a {layer.kind.keras_class}; the IR has a {kind.keras_class}", where
        )
    expected = kind.keras_args(node.params)
    got = {**default_kwargs(kind)}
    for key, value in layer.kwargs.items():
        got[key] = keras_normalize(kind, key, value)
    for key in sorted(set(expected) | set(got)):
        if key not in got or key not in expected or not same_value(got[key], expected[key]):
            raise CheckError(
                f"layer {node.name!r}: {key}={got.get(key, '<missing>')!r}; the IR has "
                f"{expected.get(key, '<missing>')!r}",
                where,
            )


class _Opaque:
    def __init__(self, what: str) -> None:
        self.what = what

    def attribute(self, name: str) -> Any:
        raise Unknown(f"{self.what}.{name}")


def verify_model(tree: ast.Module, ir: ModelIR) -> None:
    """Run ``build_model()`` (and ``build_augmentation()``) of a generated module and raise
    :class:`CheckError` unless they build exactly the IR's layers, names, inputs and outputs."""
    interp = Interpreter(tree, ir)
    model = interp.run("build_model")
    if not isinstance(model, FakeModel):
        raise CheckError("build_model() does not return keras.Model(...)", "build_model")
    if model.name != ir.name:
        raise CheckError(f"the model is named {model.name!r}; the IR calls it {ir.name!r}", "build_model")
    if not isinstance(model.inputs, FakeTensor) or model.inputs.name != ir.input_name:
        raise CheckError("keras.Model() does not take the model input", "build_model")
    outputs = model.outputs if isinstance(model.outputs, list) else [model.outputs]
    if len(ir.outputs) == 1 and isinstance(model.outputs, list):
        raise CheckError("a single output is passed as a list", "build_model")
    names = [t.name if isinstance(t, FakeTensor) else None for t in outputs]
    if names != list(ir.outputs):
        raise CheckError(f"the model outputs {names}; the IR has {list(ir.outputs)}", "build_model")
    missing = [name for name in interp.nodes if name not in interp.seen]
    if missing:
        raise CheckError(f"layers of the IR that the code never builds: {missing[:5]}", "build_model")
    frozen = {node.name for node in ir.nodes if not node.trainable}
    if interp.frozen != frozen:
        raise CheckError(
            f"the code freezes {sorted(interp.frozen)}; the IR freezes {sorted(frozen)}", "build_model"
        )
    _check_dead(interp)
    _verify_augmentation(interp, ir)


def _check_dead(interp: Interpreter) -> None:
    # Layers outside the IR are allowed only when nothing in the IR uses them (dead code the
    # resolver pruned, which Keras also leaves out of the model).
    extra = {r.layer.name for r in interp.records if r.layer.name not in interp.nodes}
    for node in interp.ir.nodes:
        for name in node.inputs:
            if name in extra:
                raise CheckError(f"layer {node.name!r} uses {name!r}, which is not in the IR")


def _verify_augmentation(interp: Interpreter, ir: ModelIR) -> None:
    has_function = isinstance(interp.globals.get("build_augmentation"), _Function)
    if not ir.augmentation:
        if has_function:
            result = interp.run("build_augmentation")
            if result is not None:
                raise CheckError("build_augmentation() returns layers the spec does not have")
        return
    if not has_function:
        raise CheckError("the spec has augmentation layers but the code has no build_augmentation()")
    result = interp.run("build_augmentation")
    if not isinstance(result, FakeSequential):
        raise CheckError("build_augmentation() does not return keras.Sequential([...])")
    if result.name != f"{ir.name}_augmentation":
        raise CheckError(f"the augmentation model is named {result.name!r}")
    if len(result.layers) != len(ir.augmentation):
        raise CheckError("build_augmentation() has a different number of layers than the spec")
    for layer, node in zip(result.layers, ir.augmentation, strict=True):
        if not isinstance(layer, FakeLayer) or layer.name != node.name:
            raise CheckError(f"augmentation layer {node.name!r} is missing or misnamed")
        compare_layer(layer, node, "build_augmentation")


def iter_calls(tree: ast.AST) -> Iterator[ast.Call]:
    """Every call in a tree, in source order."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node
