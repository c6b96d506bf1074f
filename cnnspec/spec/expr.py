"""``${…}`` expressions: a small, whitelisted evaluator (never ``eval``).

An expression is parsed with :mod:`ast` and only these nodes are accepted: numbers, strings,
booleans, names, ``+ - * / // % **``, unary ``- + not``, comparisons, ``and``/``or``,
``a if c else b``, list literals, integer indexing (``in_shape[0]``) and calls of ``min``, ``max``,
``int``, ``round``, ``abs``, ``float``. Anything else is refused before a single node is
evaluated. Because the accepted language is a subset of Python, the code emitter writes the
same expression back as Python.
"""

from __future__ import annotations

import ast
import functools
import keyword
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

FULL_EXPRESSION = re.compile(r"^\$\{(.*)\}$", re.DOTALL)
EMBEDDED_EXPRESSION = re.compile(r"\$\{([^{}]*)\}")
MAX_EXPRESSION_LENGTH = 500
MAX_INT = 2**63 - 1
MAX_EXPONENT = 64  # larger powers are refused (and not replayed when generated code is checked)

#: The fewest digits ``round`` is asked to keep: the same result as any fewer (every value an
#: expression holds is below 10**309 in size, so rounding it to 10**400 gives 0), at a bounded
#: cost. Python's ``round(4, -2**62)`` computes ``10**(2**62)``: one short expression held
#: ``validate`` (and an editor's language server) for ever.
ROUND_MIN_DIGITS = -400


def bounded_round(value: Any, ndigits: Any = None) -> Any:
    """Python's ``round``, its ``ndigits`` held at :data:`ROUND_MIN_DIGITS` (same result)."""
    if isinstance(ndigits, int) and not isinstance(ndigits, bool) and ndigits < ROUND_MIN_DIGITS:
        ndigits = ROUND_MIN_DIGITS
    return round(value, ndigits)


#: The functions an expression may call. The code emitter writes expressions back as Python, so
#: generated module constants may call exactly these (``codegen_check`` whitelists them).
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "int": int,
    "round": bounded_round,
    "abs": abs,
    "float": float,
}

#: Python's semantics of the accepted operators: the evaluator below and the checker that replays
#: generated code (``cnnspec.backends.codegen_check``) share these tables.
BINARY_OPERATORS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
COMPARE_OPERATORS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


class ExpressionError(Exception):
    """An expression that cannot be parsed or evaluated; carries a hint."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class OutOfRange(ExpressionError):
    """An integer result beyond a 64-bit integer's range, ±(2**63 - 1) (so 2**63 itself is
    out): the message shows the value as it is, and the operation that made it when known."""

    def __init__(self, value: int, operation: str = "") -> None:
        shown = str(value) if len(str(abs(value))) <= 20 else f"{value:.3e}"
        received = f"{operation} = {shown}" if operation else shown
        super().__init__(f"expected a result within ±(2**63 - 1); received {received}")
        self.value = value
        self.operation = operation

    def __reduce__(self) -> tuple[Any, ...]:  # pickled as made (a search trial's error)
        return OutOfRange, (self.value, self.operation)

    def of(self, op: type[ast.operator], left: Any, right: Any) -> OutOfRange:
        """The same error, naming the operation whose result it is."""
        return OutOfRange(self.value, f"{left} {OPERATOR_SYMBOLS[op]} {right}")


#: How the expression language writes each arithmetic operator (messages, generated code).
OPERATOR_SYMBOLS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}


class _Poison:
    """The value of a name whose own computation failed (a var that did not evaluate, the
    ``in_channels`` of a layer after a shape error, a block argument of the wrong type)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<poisoned>"


#: Bound to a name whose value is unknown because of an error already reported. An expression
#: that reads it raises :class:`Poisoned`, which the resolver keeps silent (as rustc does with
#: its error type): one mistake gives one error, located on the cause.
POISONED = _Poison()


class Poisoned(ExpressionError):
    """An expression read a :data:`POISONED` name: its cause was reported where it failed."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name!r} has no value because of an earlier error")
        self.name = name


#: Names the resolver binds for every layer item, over the vars, block parameters and loop
#: variables of its environment (``Resolver.layer_env``): what each means, for messages.
LAYER_NAMES: dict[str, str] = {
    "in_channels": "the layer's input channels",
    "in_shape": "the layer's input shape",
}


def unreadable_name(name: str) -> str | None:
    """Why ``${name}`` could never read a var, block parameter or loop variable of this name
    (``None`` when it can): a Python keyword (``class``, ``if``, ``None``) does not parse as a
    name, and a built-in of :data:`LAYER_NAMES` is bound again for every layer, so a layer's
    ``${in_channels}`` would silently read its input instead of the declaration. Declarations
    are refused with this reason, where the name is written.

    The function names (``min``, ``max``, …) are not refused: a call always calls the function
    and a bare name reads the declaration, so nothing is hidden from an expression (generated
    code, where a Python builtin would be hidden, refuses them itself)."""
    if keyword.iskeyword(name):
        return f"expected a name that ${{…}} expressions can read; received {name!r}, a Python keyword"
    if name in LAYER_NAMES:
        return f"expected a name other than the built-in `{name}` ({LAYER_NAMES[name]}); received {name!r}"
    return None


def is_expression(value: object) -> bool:
    """True when ``value`` is a string that contains a ``${…}`` expression."""
    return isinstance(value, str) and "${" in value


def parse(text: str) -> ast.expr:
    """Parse and whitelist-check one expression body (the text inside ``${…}``)."""
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"expected an expression of at most {MAX_EXPRESSION_LENGTH} characters; received {len(text)}"
        )
    if not text.strip():
        raise ExpressionError("expected an expression inside ${…}; received nothing")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ExpressionError(
            f"expected a valid expression; received {text.strip()!r}",
            "expressions use + - * / // % **, comparisons, `a if c else b`, min, max, int, round",
        ) from None
    for node in ast.walk(tree):
        _check_node(node)
        _check_finite(node, text.strip())
    return tree.body


def _check_finite(node: ast.AST, source: str) -> None:
    """Refuse a float literal that Python reads as infinity (``1e400``): the evaluator returns
    constants as they are, so only the results of operations would otherwise be checked, and
    an infinite learning rate or filter count would pass as a plain YAML ``1e400`` does not.
    (No literal reads as NaN; operations that make one are refused by :func:`_bounded`.)"""
    if isinstance(node, ast.Constant) and isinstance(node.value, float) and not math.isfinite(node.value):
        written = ast.get_source_segment(source, node) or repr(node.value)
        raise ExpressionError(
            f"expected a finite number; received {written}",
            "numbers must be finite and within double precision (about 1.8e308)",
        )


_ALLOWED_NODES = (
    ast.Expression,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.BinOp,
    ast.UnaryOp,
    ast.Compare,
    ast.BoolOp,
    ast.IfExp,
    ast.Call,
    ast.List,
    ast.Tuple,
    ast.Subscript,
    ast.And,
    ast.Or,
    ast.Not,
    ast.USub,
    ast.UAdd,
    *BINARY_OPERATORS,
    *COMPARE_OPERATORS,
)


#: How a message names what the language lacks, as an expression writes it (``received `in```,
#: not Python's class name ``In``); others are named by their class.
_NOT_IN_LANGUAGE: dict[type[ast.AST], str] = {
    ast.In: "`in`",
    ast.NotIn: "`not in`",
    ast.Is: "`is`",
    ast.IsNot: "`is not`",
    ast.Attribute: "an attribute (`a.b`)",
    ast.Dict: "a mapping (`{…}`)",
    ast.Set: "a set (`{…}`)",
    ast.Lambda: "`lambda`",
    ast.NamedExpr: "`:=`",
    ast.Starred: "`*`",
    ast.JoinedStr: "an f-string",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.MatMult: "`@`",
    ast.BitAnd: "`&`",
    ast.BitOr: "`|`",
    ast.BitXor: "`^`",
    ast.LShift: "`<<`",
    ast.RShift: "`>>`",
    ast.Invert: "`~`",
    ast.Slice: "a slice (`a[i:j]`)",
}


def _check_node(node: ast.AST) -> None:
    if not isinstance(node, _ALLOWED_NODES):
        membership = isinstance(node, (ast.In, ast.NotIn))
        raise ExpressionError(
            "expected arithmetic on numbers and names; received "
            + _NOT_IN_LANGUAGE.get(type(node), type(node).__name__),
            "compare each value with == and join them with `or` (i == 0 or i == 2)"
            if membership
            else "expressions use + - * / // % **, comparisons (== != < <= > >=), and, or, not, "
            "`a if c else b`, lists, indexing and " + ", ".join(FUNCTIONS),
        )
    if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str, bool)):
        raise ExpressionError(f"expected a number or string literal; received {node.value!r}")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise ExpressionError(
                "expected a call of " + ", ".join(FUNCTIONS) + "; received another call",
            )
        if node.keywords:
            raise ExpressionError("expected positional arguments only in a function call")


@functools.lru_cache(maxsize=65_536)
def _parsed(text: str) -> ast.expr:
    """:func:`parse`, memoised for the evaluator and :func:`names_in`, which never change the
    tree (``parse`` itself returns a fresh tree: the code emitter rewrites the ones it gets)."""
    return parse(text)


def names_in(text: str) -> set[str]:
    """The variable names an expression body reads (function names excluded)."""
    return set(_names(text))


@functools.lru_cache(maxsize=65_536)
def _names(text: str) -> frozenset[str]:
    tree = _parsed(text)
    # a function's name where it is called is no read; elsewhere it is (a var named min, in min(min, 4))
    called = {
        id(n.func)
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in FUNCTIONS
    }
    return frozenset(n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called)


def evaluate(text: str, env: Mapping[str, Any]) -> Any:
    """Evaluate one expression body against ``env`` (variables, parameters, loop indices)."""
    return _compiled(text)(env)


Evaluator = Callable[[Mapping[str, Any]], Any]


@functools.lru_cache(maxsize=65_536)
def _compiled(text: str) -> Evaluator:
    """:func:`_parsed`'s tree as nested closures, memoised: the zoo evaluates the same few
    hundred expressions thousands of times, and a closure per node skips :func:`_eval`'s
    dispatch on the node's type. Same order of evaluation, results and errors as :func:`_eval`
    (``tests/test_expr.py`` runs both)."""
    return _compile(_parsed(text))


def _compile(node: ast.expr) -> Evaluator:
    if isinstance(node, ast.Constant):
        constant = node.value
        return lambda env: constant
    if isinstance(node, ast.Name):
        return _compile_name(node.id)
    if isinstance(node, ast.BinOp):
        return _compile_binop(type(node.op), _compile(node.left), _compile(node.right))
    if isinstance(node, ast.UnaryOp):
        operand = _compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda env: not operand(env)
        negate = isinstance(node.op, ast.USub)

        def unary(env: Mapping[str, Any]) -> Any:
            value = _number(operand(env), "the operand")
            return -value if negate else +value

        return unary
    if isinstance(node, ast.Compare):
        return _compile_compare(node)
    if isinstance(node, ast.BoolOp):
        return _compile_boolop(isinstance(node.op, ast.And), [_compile(v) for v in node.values])
    if isinstance(node, ast.IfExp):
        test, body, orelse = _compile(node.test), _compile(node.body), _compile(node.orelse)
        return lambda env: body(env) if test(env) else orelse(env)
    if isinstance(node, (ast.List, ast.Tuple)):
        elements = [_compile(element) for element in node.elts]
        return lambda env: [element(env) for element in elements]
    if isinstance(node, ast.Subscript):
        sequence, index = _compile(node.value), _compile(node.slice)
        return lambda env: _index(sequence(env), index(env))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _compile_call(node.func.id, [_compile(arg) for arg in node.args])
    return lambda env: _eval(node, env)  # raises as _eval does, when evaluated


def _compile_name(name: str) -> Evaluator:
    def load(env: Mapping[str, Any]) -> Any:
        if name in env:
            value = env[name]
            if value is POISONED:
                raise Poisoned(name)
            return value
        from cnnspec.errors import did_you_mean

        raise ExpressionError(
            f"undefined name {name!r}",
            did_you_mean(name, env) or f"defined here: {', '.join(sorted(env)) or 'nothing'}",
        )

    return load


def _compile_binop(op: type[ast.operator], left_of: Evaluator, right_of: Evaluator) -> Evaluator:
    apply = BINARY_OPERATORS[op]
    divides = op in (ast.Div, ast.FloorDiv, ast.Mod)

    def binop(env: Mapping[str, Any]) -> Any:
        left = left_of(env)
        right = right_of(env)
        if type(left) in _NUMBERS and type(right) in _NUMBERS:  # what _number() passes, inline
            if divides and right == 0:
                raise ExpressionError("division by zero")
            if op is ast.Pow:
                _check_power(left, right)
            try:
                return _bounded(apply(left, right))
            except OutOfRange as exc:
                raise exc.of(op, left, right) from None
            except (OverflowError, ZeroDivisionError, ValueError) as exc:
                raise ExpressionError(f"arithmetic error: {exc}") from None
        return _binary(op, left, right)

    return binop


def _binary(op: type[ast.operator], left: Any, right: Any) -> Any:
    """``left op right`` with the language's checks: string concatenation (bounded), numbers
    only otherwise, no division by zero, no huge powers, results within range."""
    if op is ast.Add and isinstance(left, str) and isinstance(right, str):
        if len(left) + len(right) > 10_000:
            raise ExpressionError("expected a string of at most 10,000 characters")
        return left + right
    _number(left, "the left operand")
    _number(right, "the right operand")
    if op in (ast.Div, ast.FloorDiv, ast.Mod) and right == 0:
        raise ExpressionError("division by zero")
    if op is ast.Pow:
        _check_power(left, right)
    try:
        return _bounded(BINARY_OPERATORS[op](left, right))
    except OutOfRange as exc:
        raise exc.of(op, left, right) from None
    except (OverflowError, ZeroDivisionError, ValueError) as exc:
        raise ExpressionError(f"arithmetic error: {exc}") from None


def _check_power(left: int | float, right: int | float) -> None:
    """Refuse a power the language does not compute: an exponent beyond ±``MAX_EXPONENT``
    (the checker of generated code does not replay those either) or a huge base to a power."""
    if right < -MAX_EXPONENT:
        raise ExpressionError(
            f"expected an exponent of at least -{MAX_EXPONENT}; received {left} ** {right}",
            "for a tiny number write a literal such as 1e-30 (a float ends near 1e-308)",
        )
    if right > MAX_EXPONENT or (abs(left) > 2**16 and right > 4):
        raise ExpressionError(f"expected a smaller power; received {left} ** {right}")


def _compile_compare(node: ast.Compare) -> Evaluator:
    first = _compile(node.left)
    links = [
        (COMPARE_OPERATORS[type(op)], _compile(c)) for op, c in zip(node.ops, node.comparators, strict=True)
    ]

    def compare(env: Mapping[str, Any]) -> bool:
        return chain_holds(first(env), ((holds_for, right_of(env)) for holds_for, right_of in links))

    return compare


def _compile_boolop(conjunction: bool, operands: list[Evaluator]) -> Evaluator:
    def boolop(env: Mapping[str, Any]) -> Any:  # short_circuit's semantics
        result: Any = None
        for operand in operands:
            result = operand(env)
            if conjunction and not result:
                return result
            if not conjunction and result:
                return result
        return result

    return boolop


def _compile_call(name: str, arguments: list[Evaluator]) -> Evaluator:
    function = FUNCTIONS[name]

    def call(env: Mapping[str, Any]) -> Any:
        return _call(name, function, [argument(env) for argument in arguments])

    return call


def _call(name: str, function: Callable[..., Any], args: list[Any]) -> Any:
    """``function(*args)`` with the language's own messages for the mistakes it knows."""
    if name in ("min", "max"):
        _check_extremum(name, args)
    try:
        return _bounded(function(*args))
    except (TypeError, ValueError, OverflowError) as exc:
        raise ExpressionError(f"{name}(): {exc}") from None


def _check_extremum(name: str, args: list[Any]) -> None:
    """``min``/``max`` take a non-empty list or two or more values (as Python's do)."""
    usage = f"{name}([a, b, …]) or {name}(a, b, …)"
    if not args:
        raise ExpressionError(f"expected a list or two or more arguments for {name}(); received none", usage)
    if len(args) == 1 and not isinstance(args[0], list):
        raise ExpressionError(
            f"expected a list or two or more arguments for {name}(); received one {_type_name(args[0])}",
            usage,
        )
    if len(args) == 1 and not args[0]:
        raise ExpressionError(f"expected a non-empty list for {name}(); received an empty list", usage)


def _type_name(value: Any) -> str:
    """The language's name of a value's type (the block parameter types)."""
    names = {bool: "bool", int: "int", float: "float", str: "str", list: "list"}
    return names.get(type(value), type(value).__name__)


def _bounded(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) > MAX_INT:
        raise OutOfRange(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ExpressionError(f"expected a finite result; received {value}")
    if isinstance(value, complex):  # Python's (-8) ** 0.5: no spec value is a complex number
        raise ExpressionError("expected a real result; a negative number to a fractional power has none")
    return value


#: Exactly these types are numbers to _number() (a bool is an int to isinstance, not here).
_NUMBERS = frozenset({int, float})


def _number(value: Any, what: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ExpressionError(f"expected a number for {what}; received {type(value).__name__}")
    return value


def _eval(node: ast.expr, env: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in env:
            value = env[node.id]
            if value is POISONED:
                raise Poisoned(node.id)
            return value
        from cnnspec.errors import did_you_mean

        raise ExpressionError(
            f"undefined name {node.id!r}",
            did_you_mean(node.id, env) or f"defined here: {', '.join(sorted(env)) or 'nothing'}",
        )
    if isinstance(node, ast.BinOp):
        left = _eval(node.left, env)
        return _binary(type(node.op), left, _eval(node.right, env))
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, env)
        if isinstance(node.op, ast.Not):
            return not operand
        _number(operand, "the operand")
        return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.Compare):
        return compare_chain(node, lambda operand: _eval(operand, env))
    if isinstance(node, ast.BoolOp):
        return short_circuit(node, lambda operand: _eval(operand, env))
    if isinstance(node, ast.IfExp):
        return _eval(node.body if _eval(node.test, env) else node.orelse, env)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(element, env) for element in node.elts]
    if isinstance(node, ast.Subscript):
        return _index(_eval(node.value, env), _eval(node.slice, env))
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        args = [_eval(arg, env) for arg in node.args]
        return _call(node.func.id, FUNCTIONS[node.func.id], args)
    raise ExpressionError(f"unsupported expression node {type(node).__name__}")


class Incomparable(ExpressionError, TypeError):
    """Two values that cannot be ordered (``'a' < 1``). An :class:`ExpressionError` for spec
    expressions, and still the ``TypeError`` Python raises for the checker of generated code."""

    def __init__(self, left: Any, right: Any) -> None:
        super().__init__(f"cannot compare {type(left).__name__} with {type(right).__name__}")


def compare_chain(
    node: ast.Compare,
    visit: Callable[[ast.expr], Any],
    operators: Mapping[type[ast.cmpop], Callable[[Any, Any], Any]] = COMPARE_OPERATORS,
) -> bool:
    """A chained comparison with Python's semantics: ``a < b < c`` evaluates ``b`` once and
    stops at the first link that is false. ``visit`` evaluates an operand; a link that cannot
    compare raises :class:`Incomparable`."""
    links = ((operators[type(op)], visit(c)) for op, c in zip(node.ops, node.comparators, strict=True))
    return chain_holds(visit(node.left), links)


def chain_holds(left: Any, links: Iterable[tuple[Callable[[Any, Any], Any], Any]]) -> bool:
    """Whether every link of a comparison chain holds, from its first operand ``left``:
    ``links`` gives each link's test and right operand, lazily (a generator), so the operands
    after the first false link are never evaluated. A link that cannot compare raises
    :class:`Incomparable`. The interpreter, the compiled evaluators and codegen's checker share
    it (:func:`compare_chain`)."""
    for holds_for, right in links:
        try:
            holds = holds_for(left, right)
        except TypeError:
            raise Incomparable(left, right) from None
        if not holds:
            return False
        left = right
    return True


def short_circuit(node: ast.BoolOp, visit: Callable[[ast.expr], Any]) -> Any:
    """``and``/``or`` with Python's semantics: the first false (``and``) or true (``or``)
    operand, else the last; later operands are not evaluated."""
    result: Any = None
    for operand in node.values:
        result = visit(operand)
        if isinstance(node.op, ast.And) and not result:
            return result
        if isinstance(node.op, ast.Or) and result:
            return result
    return result


def _index(sequence: Any, index: Any) -> Any:
    if not isinstance(sequence, list):
        raise ExpressionError(f"expected a list before [...]; received {type(sequence).__name__}")
    if isinstance(index, bool) or not isinstance(index, int):
        raise ExpressionError(f"expected an integer index; received {type(index).__name__}")
    if not -len(sequence) <= index < len(sequence):
        raise ExpressionError(
            f"expected an index from {-len(sequence)} to {len(sequence) - 1}; received {index}"
        )
    return sequence[index]


def substitute(value: Any, env: Mapping[str, Any]) -> Any:
    """Replace ``${…}`` in a scalar: a whole-string expression keeps its type (``"${w*2}"``
    gives an int); expressions embedded in text are formatted into the string."""
    if not isinstance(value, str) or "${" not in value:
        return value
    return _substituter(value)(env)


@functools.lru_cache(maxsize=65_536)
def _substituter(value: str) -> Evaluator:
    """:func:`substitute` of one text as a function of the environment, memoised: which kind
    of text it is is decided once (the zoo substitutes the same texts thousands of times)."""
    full = FULL_EXPRESSION.match(value)
    if full and "${" not in full.group(1):
        return _compiled(full.group(1))  # raises as evaluate() would, and is then not cached

    def embedded(env: Mapping[str, Any]) -> Any:
        def replace(match: re.Match[str]) -> str:
            result = evaluate(match.group(1), env)
            return str(result).lower() if isinstance(result, bool) else str(result)

        text = EMBEDDED_EXPRESSION.sub(replace, value)
        if "${" in text:
            raise ExpressionError(f"expected a closed ${{…}} expression; received {value!r}")
        return text

    return embedded
