"""Generated code for a model as deep as a spec may be: Python's recursion limit raised first.

Keras builds, saves and loads a model by walking its graph recursively (``map_graph``), about a
Python frame or two a layer. At Python's default limit of 1,000 frames a plain chain of about
1,000 layers that ``cnnspec validate`` accepts fails with RecursionError at ``keras.Model(...)``;
cnnspec raises the limit where it imports Keras (:func:`~cnnspec.backends.keras_import.deep_graphs`)
and the generated code, which runs without cnnspec, raises it for such a model itself, in one
statement of one form that the generated-code checker knows (:func:`is_recursion_raise`).
Shallower models, every zoo model but the deepest among them, get no such line.
"""

from __future__ import annotations

import ast

from cnnspec.backends.keras_import import FRAMES_PER_LAYER
from cnnspec.ir import ModelIR

#: The longest chain of layers from which the generated code raises the limit. Measured with
#: generated modules in a fresh interpreter at the default 1,000: a chain of 700 layers built,
#: saved and loaded, one of 1,100 did not; zoo:efficientnet_v2_l (a chain of 1,030) did.
DEEP_CHAIN = 900

#: Frames above the model's own: what the script's callers and Keras' saving stack take.
SPARE_FRAMES = 2_000


def longest_chain(ir: ModelIR) -> int:
    """The most layers on one path from the input to an output (each layer after its inputs,
    as the IR lists them)."""
    depth: dict[str, int] = {ir.input_name: 0}
    for node in ir.nodes:
        depth[node.name] = 1 + max((depth.get(name, 0) for name in node.inputs), default=0)
    return max(depth.values())


def recursion_limit(ir: ModelIR) -> int | None:
    """The recursion limit the generated code raises Python's to for this model, or ``None``
    when the model is not deep enough to need it (:data:`DEEP_CHAIN`)."""
    chain = longest_chain(ir)
    if chain < DEEP_CHAIN:
        return None
    return FRAMES_PER_LAYER * chain + SPARE_FRAMES


def is_recursion_raise(statement: ast.stmt) -> bool:
    """``sys.setrecursionlimit(max(sys.getrecursionlimit(), N))`` with a whole number ``N``: the
    one use of ``sys`` the generated code may make (and ``import sys`` only beside it)."""
    if not isinstance(statement, ast.Expr) or not isinstance(call := statement.value, ast.Call):
        return False
    if not _is_sys_call(call, "setrecursionlimit") or len(call.args) != 1 or call.keywords:
        return False
    bound = call.args[0]
    if not (isinstance(bound, ast.Call) and isinstance(bound.func, ast.Name) and bound.func.id == "max"):
        return False
    if len(bound.args) != 2 or bound.keywords:
        return False
    current, wanted = bound.args
    return (
        isinstance(current, ast.Call)
        and _is_sys_call(current, "getrecursionlimit")
        and not current.args
        and not current.keywords
        and isinstance(wanted, ast.Constant)
        and type(wanted.value) is int
    )


def _is_sys_call(call: ast.Call, name: str) -> bool:
    func = call.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr == name
        and isinstance(func.value, ast.Name)
        and func.value.id == "sys"
    )
