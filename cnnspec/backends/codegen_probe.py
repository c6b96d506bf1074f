"""Which of a generated module's constants (its ``vars``) only fit the values they have.

The printer writes what it can as the spec's expressions (``range(N)``, ``filters=BASE * 2``),
but it decides some things from the values the resolver saw: a layer's number in its name is
an expression fitted to the names of every iteration and call (``f"dropout_{i}"`` for the
dropouts of iterations 1 and 3), a ``when:`` of vars alone is kept or dropped, a name after a
loop is written as its text (``"conv2d_3"`` after two iterations). Those stay right while the
constants keep their values; an edited ``N = 4`` can build other layer names than
``cnnspec build --set vars.n=4`` does, or fail (a name used twice).

:func:`fitted_constants` finds such constants by trying them: for a few other values of each
var that counts, loops or decides (:func:`structural_constants`, :func:`decision_vars`, and
:func:`input_shape_vars`, whose shapes the printer decides from; one read only in layers'
arguments, ``units=CLASSES``, is left alone), the spec is resolved again with
that value, the constant is set to it in the code, and the code is replayed against that model
(:func:`~cnnspec.backends.codegen_check.verify_model`, the proof the code passed for the
values it has). A constant whose code builds another model for one of them says so in its
comment (:data:`FITTED_NOTE`), as one that no code reads does. A value the spec refuses (a
list index past the end, a shape that does not fit) proves nothing and is passed over.

The resolutions are most of a module's generation time, and the model module and the training
script of one spec try the same values: :func:`resolved_with` keeps the last few by
:func:`probe_key` (the spec's document by its content) and the var's value.
"""

from __future__ import annotations

import ast
import copy
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from cnnspec.analysis.compiled import CompiledSpec
from cnnspec.backends.codegen_check import verify_model
from cnnspec.backends.codegen_values import UnsafeValue, literal_node
from cnnspec.errors import Diagnostics
from cnnspec.spec.backbone import KIND as BACKBONE
from cnnspec.spec.expr import EMBEDDED_EXPRESSION, ExpressionError, names_in, parse
from cnnspec.spec.resolve import Resolver
from cnnspec.spec.varrefs import expression_bodies, when_vars
from cnnspec.spec.zoo import is_zoo_ref

#: The comment of a constant the code fits only as it is (see :func:`fitted_constants`).
FITTED_NOTE = "decided when this code was generated: change it in the spec"
#: The most values tried for one var (its own first, then those around the spec's literals).
MAX_TRIES = 8
#: The most resolutions one module's probes may take (a spec with many vars stops there: the
#: constants not tried yet keep their plain comment).
MAX_PROBES = 24
#: The resolutions :func:`resolved_with` keeps, most recent last: a module's and its script's
#: probes (at most :data:`MAX_PROBES` each, mostly the same values) with room to spare. An IR
#: of a large spec is some hundreds of kilobytes, so only a few specs' worth.
RESOLVED_CACHE_SIZE = 64


class ProbeCache:
    """The last ``size`` results of a probe, by key, most recent last: :func:`resolved_with`'s
    and the generator's verdicts (``python_emitter.fitted_var_constants``). Thread-safe: the
    library's ``generate_code`` may run in threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._kept: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._kept)

    def get_or_make(self, key: tuple[Any, ...] | None, make: Callable[[], Any]) -> Any:
        """The result kept under ``key``, else ``make()``'s, then kept, the oldest forgotten
        past :attr:`size`. A ``None`` key (:func:`probe_key`: not to be cached) keeps nothing."""
        if key is not None:
            with self._lock:
                if key in self._kept:
                    self._kept.move_to_end(key)
                    return self._kept[key]
        made = make()
        if key is not None:
            with self._lock:
                self._kept[key] = made
                while len(self._kept) > self.size:
                    self._kept.popitem(last=False)
        return made


_RESOLVED = ProbeCache(RESOLVED_CACHE_SIZE)


def fitted_constants(spec: CompiledSpec, tree: ast.Module, constants: dict[str, str]) -> list[str]:
    """The vars (by name) whose constant the code ``tree`` reads and that build another model
    than the spec's for another value of the var. ``constants``: each var's constant name in
    the code (the vars of the spec itself, not those of a backbone's)."""
    values = {var.name: var.value for var in spec.ir.tree.vars} if spec.ir.tree is not None else {}
    raws = {var.name: var.raw for var in spec.ir.tree.vars} if spec.ir.tree is not None else {}
    structural = structural_constants(tree) | {
        constants[name]
        for name in decision_vars(spec.doc.data, raws) | input_shape_vars(spec.doc.data, raws)
        if name in constants
    }
    allow_outside = "--allow-outside" in spec.options
    # a `when:` of vars alone is decided here, whatever the value: no value need be found that
    # flips it (a string compared, a threshold no tried value crosses)
    decided = when_vars(spec.doc.data) if isinstance(spec.doc.data, dict) else set()
    fitted = [name for name in constants if name in decided and name in values]
    probed = [
        name
        for name, constant in constants.items()
        if constant in structural and name in values and name not in fitted
    ]
    # (the spec's expressions parsed for their literals only where some var is tried)
    literals = expression_literals(spec.doc.data) if probed else ()
    budget = MAX_PROBES
    for name in probed:
        constant = constants[name]
        for other in other_values(values[name], literals):
            if budget <= 0:
                return fitted
            budget -= 1
            ir = resolved_with(spec, name, other, allow_outside)
            probe = _with_constant(tree, constant, other)
            if ir is None or probe is None:
                continue
            try:
                verify_model(probe, ir)
            except Exception:  # (any failure of the replay: a name used twice, a missing layer…)
                fitted.append(name)
                break
    return fitted


def structural_constants(tree: ast.Module) -> set[str]:
    """The module-level names the code reads other than in the arguments of a layer
    (``filters=BASE``, ``DENSE(units=CLASSES)``): in a loop's count, an ``if``, a name, an
    index, a block function's arguments, where the printer fits what it writes to their
    values; and the constants the value of one of those reads (``WIDTH = BASE * 2``)."""
    bound: dict[str, ast.expr] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            bound[stmt.targets[0].id] = stmt.value
    layer_calls = {name for name, value in bound.items() if isinstance(value, ast.Call)}  # the partials
    found: set[str] = set()

    def visit(node: ast.AST, in_layer: bool) -> None:
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and not in_layer:
            found.add(node.id)
        if isinstance(node, ast.Call) and _is_layer_call(node.func, layer_calls):
            visit(node.func, in_layer)
            for arg in [*node.args, *(keyword.value for keyword in node.keywords)]:
                visit(arg, True)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, in_layer)

    for stmt in tree.body:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else []
        if any(isinstance(target, ast.Name) and target.id in bound for target in targets):
            continue  # a constant's own value counts where the constant does (below)
        visit(stmt, False)
    pending = [name for name in found if name in bound]
    while pending:
        for node in ast.walk(bound[pending.pop()]):
            if isinstance(node, ast.Name) and node.id in bound and node.id not in found:
                found.add(node.id)
                pending.append(node.id)
    return found


def _is_layer_call(func: ast.expr, partials: set[str]) -> bool:
    """``layers.Conv2D(…)``, ``keras.Input(…)``, a ``defaults`` partial ``DENSE(…)``."""
    if isinstance(func, ast.Attribute):
        base = func.value
        while isinstance(base, ast.Attribute):
            base = base.value
        return isinstance(base, ast.Name) and base.id in ("layers", "keras")
    return isinstance(func, ast.Name) and func.id in partials


def decision_vars(data: Any, raws: dict[str, Any]) -> set[str]:
    """The vars the spec reads where the resolver decides what is built (a ``when:``, a
    repeat's ``times``, an ``id``, ``inputs``, ``carry``, ``next``): such a decision can be
    taken while generating even where the constant is read only in a layer's arguments; and
    the vars the values of those read (``width: "${base * 2}"``)."""
    found: set[str] = set()

    def visit(value: Any, deciding: bool) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                visit(child, deciding or key in DECIDING_KEYS)
        elif isinstance(value, list):
            for child in value:
                visit(child, deciding)
        elif deciding:
            found.update(_expression_names(value))

    visit({k: v for k, v in data.items() if k != "vars"} if isinstance(data, dict) else data, False)
    return _with_what_they_read(found & set(raws), raws)


def input_shape_vars(data: Any, raws: dict[str, Any]) -> set[str]:
    """The vars ``input.shape`` reads, and the vars the values of those read: the resolver
    infers every layer's shape from it, and the printer decides from those shapes (a residual
    projected or not, which calls share a block's function), so they are tried as the vars
    that decide are, though ``keras.Input(shape=…)`` reads them as a layer's argument."""
    section = data.get("input") if isinstance(data, dict) else None
    shape = section.get("shape") if isinstance(section, dict) else None
    return _with_what_they_read(_expression_names_deep(shape) & set(raws), raws)


def _with_what_they_read(names: set[str], raws: dict[str, Any]) -> set[str]:
    """``names`` (vars) with every var their values read, through any chain of vars."""
    found = set(names)
    pending = list(found)
    while pending:
        for name in _expression_names_deep(raws.get(pending.pop())):
            if name in raws and name not in found:
                found.add(name)
                pending.append(name)
    return found


#: The keys of a spec whose values decide what the resolver builds (see :func:`decision_vars`).
DECIDING_KEYS = frozenset({"when", "times", "id", "inputs", "carry", "next"})


def _expression_names(value: Any) -> set[str]:
    """The names the ``${…}`` of one scalar value read (none where it has none, or one that
    does not parse: the resolver reported it)."""
    if not isinstance(value, str) or "${" not in value:
        return set()
    out: set[str] = set()
    for match in EMBEDDED_EXPRESSION.finditer(value):
        try:
            out |= names_in(match.group(1))
        except ExpressionError:
            continue
    return out


def _expression_names_deep(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_expression_names_deep(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_expression_names_deep(v) for v in value))
    return _expression_names(value)


def other_values(value: Any, literals: tuple[Any, ...] = ()) -> list[Any]:
    """Values to try for a var of value ``value``: the other bool; a few larger ints, a much
    larger one (a ``when: "${i == 5}"`` true in no iteration of two is in none of the code)
    and one smaller; a list of ints grown alike, unevenly and much (``[1, 2]``: ``[2, 3]``,
    ``[2, 4]``, ``[6, 8]``, ``[2, 1]``); 0, half and twice a float. Then the ``literals`` of
    the spec's expressions around which a comparison turns (``${s > 4}``: 4, 3 and 5 for an
    int; 4 and a little on either side for a float; another string a string is compared
    with), so a threshold that the shapes are decided from is crossed."""
    if isinstance(value, bool):
        return [not value]
    out: list[Any] = []
    if isinstance(value, int):
        out = [value + 1, value + 2, value + 3, 2 * value + 4, *([value - 1] if value > 1 else [])]
        for literal in literals:
            whole = _is_int(literal) or (isinstance(literal, float) and literal.is_integer())
            if whole and abs(literal) < 2**31:  # (a count or a size: larger ones are refused)
                out += [int(literal) - 1, int(literal), int(literal) + 1]
    elif isinstance(value, float):
        out = [0.0, value / 2, value * 2]
        for literal in literals:
            if isinstance(literal, (int, float)) and not isinstance(literal, bool):
                step = abs(literal) / 2 or 0.5
                out += [float(literal), literal - step, literal + step]
    elif isinstance(value, str):
        out = [literal for literal in literals if isinstance(literal, str)]
    elif isinstance(value, list) and value and all(_is_int(v) for v in value):
        out = [[v + 1 for v in value], [v + 1 + k for k, v in enumerate(value)], [2 * v + 4 for v in value]]
        if len(value) > 1 and list(reversed(value)) != value:
            out.append(list(reversed(value)))
    tried: list[Any] = []
    for other in out:  # once each, in order, never the value itself (repr: 1 is not 1.0)
        if repr(other) != repr(value) and repr(other) not in map(repr, tried):
            tried.append(other)
    return tried[:MAX_TRIES]


def expression_literals(data: Any) -> tuple[Any, ...]:
    """The numbers and strings that the spec's ``${…}`` expressions compare something with
    (``4`` of ``${s > 4}``, ``'relu'`` of ``${act == 'relu'}``), once each, in order."""
    found: dict[str, Any] = {}
    for body in expression_bodies(data):
        try:
            tree = parse(body)
        except ExpressionError:
            continue  # (the resolver reported it)
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                for operand in (node.left, *node.comparators):
                    value = operand.value if isinstance(operand, ast.Constant) else None
                    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
                        found.setdefault(repr(value), value)
    return tuple(found.values())


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def resolved_with(spec: CompiledSpec, name: str, value: Any, allow_outside: bool) -> Any:
    """The IR of the spec with var ``name`` set to ``value`` (``None`` where the spec refuses
    that value). One resolved before for a spec of the same :func:`probe_key` is reused: the
    resolver's result depends on nothing else, and the replay only reads it."""
    spec_key = probe_key(spec)
    # repr tells True from 1 and a list from a tuple: the values of other_values are plain
    key = None if spec_key is None else (*spec_key, allow_outside, name, repr(value))
    return _RESOLVED.get_or_make(key, lambda: _resolve_with(spec, name, value, allow_outside))


def _resolve_with(spec: CompiledSpec, name: str, value: Any, allow_outside: bool) -> Any:
    data = copy.deepcopy(spec.doc.data)
    if not isinstance(data.get("vars"), dict):
        return None
    data["vars"][name] = value
    diags = Diagnostics()
    try:
        ir = Resolver(spec.doc.with_data(data), diags, allow_outside=allow_outside).resolve()
    except Exception:  # a SpecError, or a value nothing checked for (a var a later one divides by)
        return None
    return None if diags.has_errors else ir


def probe_key(spec: CompiledSpec) -> tuple[Any, ...] | None:
    """What the resolutions of the spec's document depend on, as a key for the results of
    probing it (:func:`resolved_with`, and the generator's cache of whole verdicts): its file,
    its zoo variants and its composed data, by content (a spec compiled again, for the training
    script or by another command, is the same key). ``None`` (not to be cached) where resolving
    reads more than that: a text an editor supplies (a ``reader``), or a backbone that is not a
    packaged zoo model named literally (a spec file, whose text can change on disk between two
    generations). The data is plain YAML values, whose ``repr`` tells any two apart."""
    doc = spec.doc
    if doc.reader is not None or not _reads_no_files(doc.data):
        return None
    return (doc.file, doc.zoo_variant, doc.variant, repr(doc.data))


def _reads_no_files(value: Any) -> bool:
    """Whether every ``backbone`` item under ``value`` names a packaged zoo model literally
    (``spec: zoo:resnet50``), so that resolving it reads no file of the user's."""
    if isinstance(value, list):
        return all(_reads_no_files(child) for child in value)
    if not isinstance(value, dict):
        return True
    for key, child in value.items():
        if key == BACKBONE:
            ref = child.get("spec") if isinstance(child, dict) else None
            if not (is_zoo_ref(ref) and "${" not in ref):
                return False
        if not _reads_no_files(child):
            return False
    return True


def _with_constant(tree: ast.Module, constant: str, value: Any) -> ast.Module | None:
    """``tree`` with its module-level ``CONSTANT = …`` set to ``value`` (``None`` when it has
    no such statement or the value is no literal). Only that statement is new: the replay reads
    the tree and changes none of it, and a deep copy per probe was most of the probes' time."""
    for index, stmt in enumerate(tree.body):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else []
        if len(targets) == 1 and isinstance(targets[0], ast.Name) and targets[0].id == constant:
            try:
                node = literal_node(value)
            except UnsafeValue:
                return None
            assigned = ast.copy_location(ast.Assign(targets=targets, value=node), stmt)
            body = [*tree.body[:index], assigned, *tree.body[index + 1 :]]
            return ast.Module(body=body, type_ignores=tree.type_ignores)
    return None
