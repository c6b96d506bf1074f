"""Safe pieces of generated Python: literals, identifiers, comments, docstrings, expressions.

Every value that reaches generated code goes through one of these functions, so a hostile
spec (quotes, backslashes, newlines, NUL, U+2028, look-alike letters, keywords) can only ever
produce a string literal that reads back as the same string, a comment that stays on its
line, or a refusal. Expressions are printed from :mod:`ast` nodes by :func:`unparse`, which
quotes strings with :func:`py_string` and puts parentheses by precedence.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import math
import re
from typing import Any

from cnnspec.layers.registry import KerasCall
from cnnspec.spec.expr import OPERATOR_SYMBOLS

ASCII_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
BUILTIN_NAMES = frozenset(dir(builtins))
#: Factories of Keras objects a spec can ask for (mirrors the Keras builder's table).
KERAS_FACTORIES = {
    "L1L2": ("keras", "regularizers", "L1L2"),
    "VarianceScaling": ("keras", "initializers", "VarianceScaling"),
    "Constant": ("keras", "initializers", "Constant"),
}


class UnsafeValue(ValueError):
    """A value that cannot be written as a Python literal (e.g. ``inf`` or an object)."""


def is_identifier(name: object) -> bool:
    """True for an ASCII identifier that is no keyword, soft keyword or builtin name."""
    return (
        isinstance(name, str)
        and ASCII_IDENTIFIER.fullmatch(name) is not None
        and not keyword.iskeyword(name)
        and not keyword.issoftkeyword(name)
        and name not in BUILTIN_NAMES
    )


def identifier_problem(name: object) -> str | None:
    """Why ``name`` cannot be a Python name in generated code, or ``None`` when it can."""
    if not isinstance(name, str) or ASCII_IDENTIFIER.fullmatch(name) is None:
        return f"expected an ASCII identifier ([A-Za-z_][A-Za-z0-9_]*); received {name!r}"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"expected a name that is not a Python keyword; received {name!r}"
    if name in BUILTIN_NAMES:
        return f"expected a name that does not hide a Python builtin; received {name!r}"
    return None


def safe_name(wanted: str, taken: set[str] | frozenset[str], fallback: str = "t") -> str:
    """A usable local name close to ``wanted``: keywords and builtins get a ``_`` suffix,
    leading double underscores are dropped, anything else unusable becomes ``fallback``; then
    ``_2``, ``_3``… until it is free."""
    base = wanted if ASCII_IDENTIFIER.fullmatch(wanted or "") else fallback
    if base.startswith("__"):
        base = base.lstrip("_") or fallback  # no dunder names in generated code
        if not ASCII_IDENTIFIER.fullmatch(base):
            base = f"{fallback}_{base}"
    if not is_identifier(base):
        base = f"{base}_"
    if base.startswith("__"):  # `_` (a soft keyword) would become the dunder `__`
        base = fallback
    candidate, n = base, 1
    while candidate in taken or not is_identifier(candidate):
        n += 1
        candidate = f"{base}_{n}"
    return candidate


# -- literals ---------------------------------------------------------------------------------
def py_string(text: str) -> str:
    """A string literal that reads back as ``text``, double-quoted where that costs no escapes
    (the style of ``ruff format``). Non-printable characters (NUL, U+2028…) are escaped."""
    if not isinstance(text, str):
        raise UnsafeValue(f"expected a string; received {type(text).__name__}")
    literal = repr(text)
    if literal.startswith("'") and '"' not in text:
        literal = '"' + literal[1:-1].replace("\\'", "'") + '"'
    return literal


def relative_note(relative_to_script: bool) -> str:
    """What a default data path shown in a script's ``--help`` is relative to, when that is the
    script's folder rather than the working directory (where a path the user types is read)."""
    return ", relative to this script's folder" if relative_to_script else ""


def help_string(text: str) -> str:
    """A string literal for an ``argparse`` ``help=`` text that shows ``text`` as it is:
    argparse %-formats help texts (for ``%(default)s``), so a ``%`` from the spec (a data path
    ``50%_off.npz``) is doubled, else ``--help`` fails on it."""
    return py_string(text.replace("%", "%%"))


def description_string(text: str) -> str:
    """A string literal for an ``argparse`` ``description=`` that shows ``text`` as it is:
    argparse %-formats a description only when it contains ``%(prog)`` (then a ``%`` of the
    spec's file name would fail ``--help``), so only then is ``%`` doubled."""
    return py_string(text.replace("%", "%%") if "%(prog)" in text else text)


def py_literal(value: Any) -> str:
    """Python source for a plain value: None, bool, int, finite float, str, list, tuple, dict
    (of those) and the Keras factories in :data:`KERAS_FACTORIES`."""
    return unparse(literal_node(value))


def literal_node(value: Any) -> ast.expr:
    """The :mod:`ast` node of a plain value (see :func:`py_literal`)."""
    if value is None or isinstance(value, (bool, int, str)):
        return ast.Constant(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UnsafeValue(f"expected a finite number; received {value!r}")
        return ast.Constant(value)
    if isinstance(value, list):
        return ast.List([literal_node(v) for v in value], ast.Load())
    if isinstance(value, tuple):
        return ast.Tuple([literal_node(v) for v in value], ast.Load())
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise UnsafeValue(f"expected string or integer keys; received {key!r}")
        return ast.Dict([literal_node(k) for k in value], [literal_node(v) for v in value.values()])
    if isinstance(value, KerasCall):
        path = KERAS_FACTORIES.get(value.factory)
        if path is None:
            raise UnsafeValue(f"unknown Keras factory {value.factory!r}")
        func: ast.expr = ast.Name(path[0], ast.Load())
        for part in path[1:]:
            func = ast.Attribute(func, part, ast.Load())
        keywords = [ast.keyword(k, literal_node(v)) for k, v in value.kwargs]
        return ast.Call(func, [], keywords)
    raise UnsafeValue(f"cannot write a {type(value).__name__} value as a Python literal")


# -- comments and docstrings ------------------------------------------------------------------
def comment_text(text: object, limit: int = 200) -> str:
    """Text that is safe after ``#``: one line, printable characters only (anything else is
    shown as an escape such as ``\\u2028``), shortened to ``limit`` characters."""
    out = []
    for char in str(text):
        if char == "\t":
            out.append(" ")
        elif char.isprintable():
            out.append(char)
        else:
            out.append(char.encode("unicode_escape").decode("ascii"))
    line = "".join(out).strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


def docstring(text: str) -> str:
    """A triple-quoted literal whose value is exactly ``text`` and that survives formatting:
    quotes, backslashes and non-printable characters are escaped, line breaks become ``\\n``,
    and leading/trailing blanks are escaped so formatters cannot strip them."""
    body = _escape_double_quoted(text)
    if body[:1] == " ":
        body = "\\x20" + body[1:]
    if body[-1:] == " ":
        body = body[:-1] + "\\x20"
    return f'"""{body}"""'


def _escape_double_quoted(text: str) -> str:
    """The body of a double-quoted literal for ``text`` (newlines escaped too)."""
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char.isprintable():
            out.append(char)
        else:
            out.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(out)


# -- expressions ------------------------------------------------------------------------------
_PRECEDENCE: dict[type, int] = {
    ast.IfExp: 1,
    ast.Or: 2,
    ast.And: 3,
    ast.Not: 4,
    ast.Compare: 5,
    ast.BitOr: 6,
    ast.BitXor: 7,
    ast.BitAnd: 8,
    ast.LShift: 9,
    ast.RShift: 9,
    ast.Add: 10,
    ast.Sub: 10,
    ast.Mult: 11,
    ast.Div: 11,
    ast.FloorDiv: 11,
    ast.Mod: 11,
    ast.UAdd: 12,
    ast.USub: 12,
    ast.Pow: 13,
}
_ATOM = 20
_BIN_OPS = OPERATOR_SYMBOLS  # ${a + b} is generated as a + b
_CMP_OPS = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Is: "is",
    ast.IsNot: "is not",
}


def _precedence(node: ast.expr) -> int:
    if isinstance(node, ast.BinOp):
        return _PRECEDENCE[type(node.op)]
    if isinstance(node, ast.UnaryOp):
        return _PRECEDENCE[type(node.op)]
    if isinstance(node, ast.BoolOp):
        return _PRECEDENCE[type(node.op)]
    if isinstance(node, (ast.Compare, ast.IfExp)):
        return _PRECEDENCE[type(node)]
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and node.value < 0:
        return _PRECEDENCE[ast.USub]
    return _ATOM


def _simple_power_operand(node: ast.expr) -> bool:
    # ruff format writes `2**i` (no spaces) when both operands are names, numbers or attributes
    while isinstance(node, ast.Attribute):
        node = node.value
    if isinstance(node, ast.Name):
        return True
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
        and node.value >= 0
    )


def unparse(node: ast.expr, quote: str = '"') -> str:
    """Python source of an expression built from the node types the emitter produces."""
    return _Unparser(quote).visit(node)


class _Unparser:
    def __init__(self, quote: str) -> None:
        self.quote = quote

    def wrap(self, node: ast.expr, minimum: int) -> str:
        text = self.visit(node)
        return f"({text})" if _precedence(node) < minimum else text

    def visit(self, node: ast.expr) -> str:
        if isinstance(node, ast.Constant):
            return self.constant(node.value)
        if isinstance(node, ast.Name):
            if ASCII_IDENTIFIER.fullmatch(node.id) is None:
                raise UnsafeValue(f"not an identifier: {node.id!r}")
            return node.id
        if isinstance(node, ast.Attribute):
            if ASCII_IDENTIFIER.fullmatch(node.attr) is None:
                raise UnsafeValue(f"not an identifier: {node.attr!r}")
            return f"{self.wrap(node.value, _ATOM)}.{node.attr}"
        if isinstance(node, ast.BinOp):
            op = type(node.op)
            prec = _PRECEDENCE[op]
            if op is ast.Pow:
                left = self.wrap(node.left, prec + 1)
                right = self.wrap(node.right, prec)
                simple = _simple_power_operand(node.left) and _simple_power_operand(node.right)
                return f"{left}**{right}" if simple else f"{left} ** {right}"
            left = self.wrap(node.left, prec)
            right = self.wrap(node.right, prec + 1)
            return f"{left} {_BIN_OPS[op]} {right}"
        if isinstance(node, ast.UnaryOp):
            prec = _PRECEDENCE[type(node.op)]
            operand = self.wrap(node.operand, prec)
            if isinstance(node.op, ast.Not):
                return f"not {operand}"
            return ("-" if isinstance(node.op, ast.USub) else "+") + operand
        if isinstance(node, ast.BoolOp):
            prec = _PRECEDENCE[type(node.op)]
            word = " and " if isinstance(node.op, ast.And) else " or "
            return word.join(self.wrap(v, prec + 1) for v in node.values)
        if isinstance(node, ast.Compare):
            prec = _PRECEDENCE[ast.Compare]
            parts = [self.wrap(node.left, prec + 1)]
            for op, right in zip(node.ops, node.comparators, strict=True):
                parts.append(_CMP_OPS[type(op)])
                parts.append(self.wrap(right, prec + 1))
            return " ".join(parts)
        if isinstance(node, ast.IfExp):
            prec = _PRECEDENCE[ast.IfExp]
            body = self.wrap(node.body, prec + 1)
            test = self.wrap(node.test, prec + 1)
            orelse = self.wrap(node.orelse, prec)
            return f"{body} if {test} else {orelse}"
        if isinstance(node, ast.Call):
            args = [self.visit(a) for a in node.args]
            for kw in node.keywords:
                if kw.arg is None or ASCII_IDENTIFIER.fullmatch(kw.arg) is None:
                    raise UnsafeValue("keyword arguments must be identifiers")
                args.append(f"{kw.arg}={self.visit(kw.value)}")
            return f"{self.wrap(node.func, _ATOM)}({', '.join(args)})"
        if isinstance(node, ast.Subscript):
            return f"{self.wrap(node.value, _ATOM)}[{self.slice(node.slice)}]"
        if isinstance(node, ast.List):
            return "[" + ", ".join(self.visit(e) for e in node.elts) + "]"
        if isinstance(node, ast.Tuple):
            if len(node.elts) == 1:
                return f"({self.visit(node.elts[0])},)"
            return "(" + ", ".join(self.visit(e) for e in node.elts) + ")"
        if isinstance(node, ast.Dict):
            items = []
            for key, value in zip(node.keys, node.values, strict=True):
                if key is None:
                    raise UnsafeValue("dict unpacking is not emitted")
                items.append(f"{self.visit(key)}: {self.visit(value)}")
            return "{" + ", ".join(items) + "}"
        if isinstance(node, ast.JoinedStr):
            return self.fstring(node)
        raise UnsafeValue(f"cannot write a {type(node).__name__} expression")

    def slice(self, node: ast.expr) -> str:
        if isinstance(node, ast.Slice):
            lower = self.visit(node.lower) if node.lower is not None else ""
            upper = self.visit(node.upper) if node.upper is not None else ""
            if node.step is not None:
                return f"{lower}:{upper}:{self.visit(node.step)}"
            return f"{lower}:{upper}"
        return self.visit(node)

    def constant(self, value: Any) -> str:
        if isinstance(value, str):
            literal = py_string(value)
            if self.quote == "'" and literal.startswith('"'):
                literal = repr(value)
                if literal.startswith('"'):
                    raise UnsafeValue("string needs both quote kinds inside an f-string")
            return literal
        if isinstance(value, float) and not math.isfinite(value):
            raise UnsafeValue(f"expected a finite number; received {value!r}")
        if value is None or isinstance(value, (bool, int, float)):
            return repr(value)
        if value is ...:  # the emitter's own "not passed" (no spec value is one)
            return "..."
        raise UnsafeValue(f"cannot write a {type(value).__name__} constant")

    def fstring(self, node: ast.JoinedStr) -> str:
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                parts.append(_escape_double_quoted(value.value).replace("{", "{{").replace("}", "}}"))
            elif isinstance(value, ast.FormattedValue):
                if value.conversion != -1 or value.format_spec is not None:
                    raise UnsafeValue("f-string conversions are not emitted")
                try:
                    inner = _Unparser("'").visit(value.value)
                except UnsafeValue:  # a string that needs both quote kinds
                    return self.concatenation(node)
                if "\\" in inner:  # Python 3.11 refuses a backslash in an f-string's expression
                    return self.concatenation(node)
                if inner.startswith("{"):
                    inner = f" {inner}"
                parts.append("{" + inner + "}")
            else:
                raise UnsafeValue("unexpected f-string part")
        return 'f"' + "".join(parts) + '"'

    def concatenation(self, node: ast.JoinedStr) -> str:
        """The text of an f-string that cannot be one on Python 3.11 (a string constant in an
        expression part needs a backslash or both quote kinds), as ``("a" + str(x) + "b")``:
        the same text, since an f-string formats these values (no conversion, no format
        specification) as ``str`` does."""
        if self.quote == "'":  # inside another f-string's expression: that one concatenates
            raise UnsafeValue("an f-string inside an f-string's expression needs escapes")
        terms = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                if value.value:
                    terms.append(self.constant(value.value))
            elif isinstance(value, ast.FormattedValue):
                inner = value.value
                is_text = isinstance(inner, ast.Constant) and isinstance(inner.value, str)
                terms.append(self.visit(inner) if is_text else f"str({self.visit(inner)})")
        return "(" + " + ".join(terms or ['""']) + ")"
