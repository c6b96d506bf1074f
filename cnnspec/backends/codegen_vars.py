"""A var's value outside the model layers: written as the constant's expression, or said fixed.

The printer writes the model's layers with the spec's expressions (``filters=N``), so an edited
constant changes them as ``--set vars.n=…`` would. A var also reaches code that is no layer of the
model: the augmentation layers, the input's shape, a ``defaults`` partial, and in a script the
data splits, the batch size, the mixing layer, the loss, the optimizer… Where the emitter writes
such a setting as the constant's expression (:class:`VarExpressions`: ``split(x, y, F)``,
``default=N``, ``keras.layers.MixUp(alpha=F, …)``) the edit reaches it too; where it writes the
resolved value, the constant would change the model and leave that setting as it was. So the
rule of :func:`literal_places`: a constant is live only if every place outside the model that
its var's value reaches (read straight or through another var) is written as its expression;
the others say they were decided when the code was generated
(:data:`~cnnspec.backends.codegen_probe.FITTED_NOTE`) and the module's note names the settings.

A script writes as expressions the data splits and ``data.limit``, the batch size, the epochs
(``training.epochs``; each phase's, and ``--epochs``' default as their sum), ``training.seed``
(``SEED`` and ``PHASES`` then follow the constants), the learning rate of the optimizer and of
each phase with a schedule's numbers, the optimizers' other keywords (``momentum``,
``beta_1``, ``weight_decay``…), the callbacks' settings (``patience``, ``min_delta``,
``factor``…), ``data.shuffle_buffer``, ``training.steps_per_epoch``, the losses' numbers
(``label_smoothing``, ``delta``, a focal loss's ``alpha`` and ``gamma``; each output's in
``training.outputs``), the outputs' ``loss_weight``s and a multilabel output's ``threshold``,
the mixing's amount. A model module writes ``input.shape`` as its expression
too (``keras.Input(shape=INPUT_SHAPE)``): the layers' shapes follow from it, and the printer
decides from those (a layer named after a loop counted from them), so the replay of
:mod:`~cnnspec.backends.codegen_probe` tries other values of its vars as it tries those that
decide. Some settings stay values, as they decide what code is written, not only a number in
it: ``input.shape`` in a script (it decodes and resizes the images to that size, with code
chosen by the channels, and loads ImageNet weights of that size), a schedule's
``warmup_steps`` (whether the script defines its ``WarmUp`` schedule and how many steps the
decay has after it), a callback's ``monitor``, ``mode`` and ``save_best_only`` and an
optimizer's ``use_ema`` (:data:`~cnnspec.backends.codegen_script.CODE_SETTINGS`), and settings
written inside other literals (a piecewise schedule's lists).
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any

from cnnspec.backends.codegen_values import UnsafeValue
from cnnspec.errors import SpecPath, format_path
from cnnspec.spec.expr import FULL_EXPRESSION, ExpressionError
from cnnspec.spec.varrefs import var_refs

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec

#: The spec's sections whose values a model module writes as they were resolved, unless
#: :class:`VarExpressions` wrote one as an expression (the layers of ``model`` and ``blocks``
#: are the printer's, which the replay of :mod:`~cnnspec.backends.codegen_probe` checks).
MODULE_SECTIONS = ("name", "description", "input", "defaults", "augmentation")
#: The same for a training script, which also writes the data, training and runtime settings and
#: the weights it starts from.
SCRIPT_SECTIONS = (*MODULE_SECTIONS, "data", "training", "runtime", "weights")


class VarExpressions:
    """Settings written as the Python expression of the spec's ``${…}`` over the vars'
    constants, where the spec writes one (``"${f}"`` → ``F``) and that expression gives the
    value the settings reader made of it, as it is (no conversion, same type); the spec paths
    written so are kept in :attr:`expressed`."""

    def __init__(self, spec: CompiledSpec) -> None:
        self.data: Any = spec.doc.data
        tree = spec.ir.tree
        self.values: dict[str, Any] = {var.name: var.value for var in tree.vars} if tree is not None else {}
        self.expressed: set[SpecPath] = set()
        self._spec = spec

    def node(self, path: SpecPath, value: Any) -> ast.expr | None:
        """The expression of the setting at ``path`` whose resolved value is ``value``, or
        ``None`` (a literal there, an expression of other names or one Python does not
        evaluate to ``value``)."""
        raw = _lookup(self.data, path)
        if not isinstance(raw, str) or not self.values:
            return None
        full = FULL_EXPRESSION.match(raw)
        if full is None or "${" in full.group(1) or not var_refs(raw, self.values):
            return None
        from cnnspec.backends.codegen_check import Unknown
        from cnnspec.backends.codegen_model import Binding, CodeWriter

        names = {name: Binding(ast.Name(name.upper(), ast.Load()), v) for name, v in self.values.items()}
        try:
            node = CodeWriter(self._spec, script=True).translate_value(raw, names, None)
        except (Unknown, ExpressionError, UnsafeValue):
            return None
        if not gives(node, {name.upper(): v for name, v in self.values.items()}, value):
            return None
        self.expressed.add(path)
        return node

    def source(self, path: SpecPath, value: Any, literal: str) -> str:
        """:meth:`node` as source text, else ``literal`` (the template's text of the value)."""
        from cnnspec.backends.codegen_values import unparse

        node = self.node(path, value)
        return literal if node is None else unparse(node)


def gives(node: ast.expr, constants: dict[str, Any], value: Any) -> bool:
    """Whether ``node`` evaluates, with the constants' values (by name), to ``value`` of the
    same type (Python's semantics, as the generated code runs it)."""
    from cnnspec.backends.codegen_check import evaluate, same_value

    def lookup(name: str) -> Any:
        if name not in constants:
            raise KeyError(name)
        return constants[name]

    try:
        got = evaluate(node, lookup)
    except Exception:  # (a name that is no constant, a call the evaluator refuses…)
        return False
    return same_value(got, value)


def passed_alone(kind: Any, params: dict[str, Any], pname: str, key: str) -> bool:
    """Whether the layer kind passes parameter ``pname`` to Keras' keyword ``key`` as it is,
    and nothing else follows from it (RandomTranslation's ``width_factor`` follows an unwritten
    one from ``height_factor``): tried with two other numbers in place of its value."""
    from cnnspec.backends.codegen_check import same_value

    value = params.get(pname)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        base = kind.keras_args(params)
        for step in (1, 2):
            sample = value + step if isinstance(value, int) else value + step / 8
            probe = kind.keras_args({**params, pname: sample})
            if not same_value(probe.get(key), sample):
                return False
            if any(k != key and not same_value(v, base.get(k)) for k, v in probe.items()):
                return False
    except Exception:  # (a registry rule that needs other values)
        return False
    return True


def _lookup(data: Any, path: SpecPath) -> Any:
    for part in path:
        in_dict = isinstance(data, dict) and part in data
        if not in_dict and not (isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)):
            return None
        data = data[part]
    return data


def literal_places(
    data: Any, sections: tuple[str, ...], expressed: set[SpecPath]
) -> dict[str, list[SpecPath]]:
    """Each var (by name) whose value reaches a place of ``sections`` that the code writes as
    its value (a ``${…}`` at a path not in ``expressed``): read there, or read by a var read
    there (``lr: "${base_lr * 2}"``); with those places, in the spec's order."""
    if not isinstance(data, dict) or not isinstance(data.get("vars"), dict):
        return {}
    raws: dict[str, Any] = data["vars"]
    # each var's own reads, parsed once (a chain of n vars reads n values, not n² of them)
    direct = {name: var_refs(raw, raws) for name, raw in raws.items()}
    # var → the vars whose values it reads, itself included: only for the vars read at a place,
    # each once (every var of a chain of n reaches the rest of it: n² names for all of them,
    # seconds for tests/fixtures/hostile/var_chain_long.yaml's 3,000)
    reaches: dict[str, list[str]] = {}

    def reached(name: str) -> list[str]:
        names = reaches.get(name)
        if names is None:
            seen, pending = {name}, [name]
            while pending:
                for read in direct.get(pending.pop(), ()):
                    if read not in seen:
                        seen.add(read)
                        pending.append(read)
            names = reaches[name] = sorted(seen)
        return names

    found: dict[str, list[SpecPath]] = {}

    def visit(value: Any, path: SpecPath) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                visit(child, (*path, key))
        elif isinstance(value, list):
            for index, child in enumerate(value):
                visit(child, (*path, index))
        elif isinstance(value, str) and "${" in value and path not in expressed:
            for read in var_refs(value, raws):
                for name in reached(read):
                    found.setdefault(name, []).append(path)

    for section in sections:
        if section in data:
            visit(data[section], (section,))
    return found


def literal_note(places: dict[str, list[SpecPath]], constants: dict[str, str]) -> str:
    """The module's note on the constants (``constants``: each one's var) that settings written
    as their values also read (``places``: by var, from :func:`literal_places`)."""
    shown: list[str] = []
    for var in constants.values():
        for path in places.get(var, []):
            text = format_path(path)
            if text not in shown:
                shown.append(text)
    more = f" and {len(shown) - 4} more" if len(shown) > 4 else ""
    one = len(constants) == 1
    return (
        f"the code fits {'the constant' if one else 'the constants'} {', '.join(constants)} only as "
        f"{'it is' if one else 'they are'}: {', '.join(shown[:4])}{more} "
        f"{'is written as the value it' if len(shown) == 1 else 'are written as the values they'} had; "
        "for other values change "
        f"{', '.join(f'vars.{var}' for var in constants.values())} in the spec and generate again"
    )
