"""The ``search:`` section: a hyperparameter search space over dotted spec paths.

A front-end pass reads it into a :class:`SearchSpace` (no TensorFlow, no Optuna): each key of
``search.space`` is a dotted path (``vars.width``, ``training.optimizer.adam.learning_rate``,
``data.validation_split``, ``model[3].dropout.rate``, ``model[-1].dense.units`` counted from the
end as ``--set`` counts it, or ``ID.param`` for a layer with that ``id``), each value a space
(``{float: [lo, hi], log: true}``, ``{int: [lo, hi], step: 8}``, ``{choice: [...]}``).
:func:`read_search` resolves every path against the composed document and the schema, so a path
that leads nowhere is a located error with did-you-mean, and a range on a parameter that is not
a number is refused. :func:`apply_values` writes one trial's values into a copy of the document
(the search section removed) located at the search value, so an
error a value causes later (schema, shapes) points at the value in ``search.space``.
The checks that need a compiled spec (objective, choice values, shapes of every combination)
are in :mod:`cnnspec.analysis.search_check`.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from cnnspec.errors import (
    Diagnostics,
    Loc,
    SpecPath,
    UsageError,
    closest,
    describe_value,
    did_you_mean,
    format_path,
)
from cnnspec.layers.registry import REGISTRY
from cnnspec.spec import varchoices
from cnnspec.spec.compose import drop_replaced
from cnnspec.spec.items import ITEM_EXTRAS
from cnnspec.spec.linebreaks import LINE_BREAK
from cnnspec.spec.loader import SOURCE_TEXTS, SourceDoc
from cnnspec.spec.sections import DATA_SCHEMA, RATE_SCALE, RUNTIME_SCHEMA, TRAINING_SCHEMA

SAMPLERS = ["tpe", "random", "grid"]
PRUNERS = ["median", "hyperband", "none"]
DIRECTIONS = ["maximize", "minimize"]
DEFAULT_OBJECTIVE = "val_accuracy"
DEFAULT_TRIALS = 20

_PAIR_NUMBER = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
_PAIR_INT = {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}
SPACE_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {
            "type": "object",
            "properties": {
                "float": {**_PAIR_NUMBER, "description": "[low, high], both included"},
                "log": {"type": "boolean", "description": "sample on a log scale (low > 0)"},
                "step": {"type": "number", "exclusiveMinimum": 0, "description": "discretize by this"},
            },
            "required": ["float"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {
                "int": {**_PAIR_INT, "description": "[low, high], both included"},
                "step": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "take every step-th integer from low",
                },
                "log": {"type": "boolean", "description": "sample on a log scale (low > 0)"},
            },
            "required": ["int"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {
                "choice": {
                    "type": "array",
                    "minItems": 2,  # (one value: every trial would train the same; _dimension says so)
                    "uniqueItems": True,
                    "description": "the values to try (numbers, strings, booleans, null or mappings)",
                }
            },
            "required": ["choice"],
            "additionalProperties": False,
        },
    ],
    "description": "{float: [lo, hi], log?, step?} | {int: [lo, hi], step?, log?} | {choice: [...]}",
}
SEARCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "a hyperparameter search (`cnnspec search`): spec paths → spaces, run on Optuna",
    "properties": {
        "space": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": SPACE_SCHEMA,
            "description": "dotted spec path (vars.x, training.*, data.*, model[i].kind.param with "
            "i from the end where negative, ID.param) → space",
        },
        "objective": {
            "anyOf": [
                {"type": "string", "minLength": 1},
                {
                    "type": "object",
                    "properties": {
                        "metric": {
                            "type": "string",
                            "minLength": 1,
                            "description": f"a per-epoch logged value (default {DEFAULT_OBJECTIVE})",
                        },
                        "direction": {
                            "enum": DIRECTIONS,
                            "description": "default: minimize for losses, else maximize",
                        },
                    },
                    "additionalProperties": False,
                },
            ],
            "description": "a per-epoch logged value (default val_accuracy), best epoch counts; "
            "direction default: minimize for losses, else maximize",
        },
        "trials": {"type": "integer", "minimum": 1, "description": f"default {DEFAULT_TRIALS}"},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "description": "seconds (per worker)"},
        "sampler": {"enum": SAMPLERS, "description": "default tpe"},
        "pruner": {"enum": PRUNERS, "description": "stop poor trials early (default median)"},
        "seed": {"type": "integer", "minimum": 0, "description": "the sampler's seed"},
    },
    "required": ["space"],
    "additionalProperties": False,
}

#: Sections whose values a search may set by a schema path, and their schemas.
SECTION_SCHEMAS: dict[str, dict[str, Any]] = {
    "training": TRAINING_SCHEMA,
    "data": DATA_SCHEMA,
    "runtime": RUNTIME_SCHEMA,
}
#: Top-level lists of layer items: ``model[3].dropout.rate``.
LAYER_LISTS = ("model", "augmentation")

Kind = Literal["float", "int", "choice"]
#: A ``choice`` of one value (the schema's minItems, :func:`cnnspec.spec.schema._report`, and
#: :func:`_dimension` say it in these words).
ONE_CHOICE = "expected at least two choices; received one, which every trial would train"
ONE_CHOICE_HINT = "set the value in the spec instead of searching it, or add the others to try"


@dataclass(frozen=True)
class Dimension:
    """One searched value: its name (the key as written), where it goes, and its space."""

    name: str
    target: SpecPath  # where in the composed document the value is written
    kind: Kind
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    loc: Loc | None = None  # the space as written
    value_locs: tuple[Loc | None, ...] = ()  # choice items, or [low, high]
    affects_model: bool = False  # vars and layer parameters: shapes may depend on it

    def candidates(self) -> tuple[Any, ...]:
        """Values every check tries: the choices; for a range both ends a trial can draw (the
        top of a stepped range is its last step, :meth:`top`), and for a float range also a
        value between them that is no whole number, all as floats, since a trial gets floats
        (a float range on a parameter that takes integers is refused there)."""
        if self.kind == "choice":
            return self.choices
        if self.kind == "int":
            return (int(self.low), int(self.top()))
        inner = self._fractional()
        return (float(self.low), float(self.top()), *([] if inner is None else [inner]))

    def every_value(self, limit: int) -> tuple[Any, ...] | None:
        """Every value a trial can draw, in order, when there are at most ``limit``: the
        choices, each integer of an int range (by its step), each step of a stepped float
        range (as floats); ``None`` for more, or for a float range without a step."""
        if self.kind == "choice":
            return self.choices if len(self.choices) <= limit else None
        if self.kind == "float" and not self.step:
            return None
        step = self.step or 1
        count = math.floor((self.top() - self.low) / step + 1e-9) + 1
        if count > limit:
            return None
        if self.kind == "int":
            return tuple(range(int(self.low), int(self.top()) + 1, int(step)))
        return tuple(float(round(self.low + k * step, 12)) for k in range(count))

    def top(self) -> float:
        """The highest value a trial can draw: ``high``, or for a stepped range the last step
        at or below it (Optuna trims ``[4, 14]`` by 4 to 12)."""
        if not self.step:
            return self.high
        top = self.low + math.floor((self.high - self.low) / self.step + 1e-9) * self.step
        return int(top) if self.kind == "int" else round(top, 12)

    def _fractional(self) -> float | None:
        """A value of this float range strictly between its ends that is not a whole number
        (``None`` when a stepped range has none among its first steps)."""
        if self.step:
            values = (round(self.low + k * self.step, 12) for k in range(1, 17))
        else:
            middle = (self.low + self.high) / 2
            values = (middle, middle + 0.5, self.low + (self.high - self.low) / 4)
        top = self.top()
        return next((float(v) for v in values if self.low < v < top and not float(v).is_integer()), None)


@dataclass(frozen=True)
class SearchSpace:
    """The checked ``search:`` section."""

    dimensions: tuple[Dimension, ...]
    objective: str = DEFAULT_OBJECTIVE
    direction: str = "maximize"
    trials: int = DEFAULT_TRIALS
    timeout: float | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int | None = None
    objective_loc: Loc | None = None
    sampler_loc: Loc | None = None  # search.sampler as written (else the section's key)
    extra: dict[str, Any] = field(default_factory=dict)
    objective_given: bool = True
    """False when the spec names no objective metric: the analysis pass then picks the task's
    (:func:`cnnspec.analysis.search_check.task_objective`)."""

    def fingerprint(self) -> str:
        """A hash of the space (paths and ranges): a study keeps one space for its life."""
        import hashlib  # here: validating a spec without a search section never needs it

        rows = [
            [d.name, d.kind, d.low, d.high, d.log, d.step, [json.dumps(c, sort_keys=True) for c in d.choices]]
            for d in self.dimensions
        ]
        text = json.dumps([rows, self.objective, self.direction], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> list[dict[str, Any]]:
        """The space as plain data (search.json, the study's attributes)."""
        out = []
        for d in self.dimensions:
            row: dict[str, Any] = {"name": d.name, "kind": d.kind}
            if d.kind == "choice":
                row["choices"] = list(d.choices)
            else:
                row.update(low=d.low, high=d.high, log=d.log, step=d.step)
            out.append(row)
        return out


def read_search(doc: SourceDoc, diags: Diagnostics) -> SearchSpace | None:
    """The ``search:`` section of a schema-checked document (``None`` when there is none)."""
    section = doc.data.get("search")
    if not isinstance(section, dict):
        return None
    dimensions: list[Dimension] = []
    for name, space in (section.get("space") or {}).items():
        dimension = _dimension(doc, name, space, diags)
        if dimension is not None:
            dimensions.append(dimension)
    for d in dimensions:
        inner = [e for e in dimensions if e is not d and e.target[: len(d.target)] == d.target]
        if inner:
            diags.error(
                f"search paths overlap: {d.name} contains {inner[0].name}",
                d.loc,
                format_path(("search", "space", d.name)),
                code="search",
                hint="search one of them: a value of the outer path replaces what the inner one sets",
            )
    objective_raw = section.get("objective", DEFAULT_OBJECTIVE)
    objective_path: SpecPath = ("search", "objective")
    if isinstance(objective_raw, dict):
        metric = str(objective_raw.get("metric", DEFAULT_OBJECTIVE))
        direction = objective_raw.get("direction")
        if "metric" in objective_raw:
            objective_path = (*objective_path, "metric")
    else:
        metric, direction = str(objective_raw), None
    if direction is None:
        direction = default_direction(metric)
    sampler = str(section.get("sampler", "tpe"))
    if sampler == "grid":
        for d in dimensions:
            if d.kind == "float" and d.step is None:
                diags.error(
                    "expected choices or an int range for the grid sampler; received a float range",
                    d.loc,
                    format_path(("search", "space", d.name)),
                    code="search",
                    hint="give the float range a step, list the values with choice, or use sampler: tpe",
                )
    timeout = section.get("timeout")
    return SearchSpace(
        tuple(dimensions),
        objective=metric,
        direction=str(direction),
        trials=int(section.get("trials", DEFAULT_TRIALS)),
        timeout=float(timeout) if timeout is not None else None,
        sampler=sampler,
        pruner=str(section.get("pruner", "median")),
        seed=section.get("seed"),
        objective_loc=doc.loc(objective_path) if "objective" in section else doc.key_loc(("search",)),
        sampler_loc=doc.loc(("search", "sampler")) if "sampler" in section else doc.key_loc(("search",)),
        objective_given=objective_path[-1] == "metric" or isinstance(section.get("objective"), str),
    )


#: Logged values where lower is better: losses and errors.
_LOWER_IS_BETTER = ("loss", "mae", "mse", "rmse")


def default_direction(metric: str) -> str:
    """``minimize`` for a loss or an error (``val_loss``, ``val_mae``, ``mask_loss``), else
    ``maximize``."""
    return "minimize" if metric.endswith(_LOWER_IS_BETTER) else "maximize"


def grid_values(d: Dimension) -> list[Any]:
    """Every value of a dimension the grid sampler visits: ints for an int range, floats for a
    float range (``{float: [8, 12], step: 4}`` visits 8.0 and 12.0, as a trial of another
    sampler would draw them)."""
    if d.kind == "choice":
        return list(d.choices)
    step = d.step or 1
    values: list[Any] = []
    value = d.low
    while value <= d.high + 1e-12:
        values.append(int(value) if d.kind == "int" else float(round(value, 12)))
        value += step
    return values


def _dimension(doc: SourceDoc, name: str, space: Any, diags: Diagnostics) -> Dimension | None:
    at: SpecPath = ("search", "space", name)
    key_loc = doc.key_loc(at)
    where = format_path(at)

    def error(message: str, hint: str | None = None, loc: Loc | None = None, part: int | None = None) -> None:
        # an error about one part of the key (`widht` of `vars.widht`) is located at that part, so
        # that its range and its "did you mean" fix are the part's, not the key's
        if loc is None and part is not None and key_loc is not None and path is not None:
            loc = _part_loc(key_loc, name, path, part)
        diags.error(message, loc or key_loc, where, code="search", hint=hint)

    path = _parse_path(name)
    if path is None:
        hint = None
        if RATE_SCALE in name:  # a factor's key is a pattern (a glob, a dotted name): no path
            hint = (
                "a learning_rate_scale factor keyed by a glob or dotted pattern is searched through a "
                "var: write the factor as '${NAME}' and search vars.NAME"
            )
        error(f"expected a dotted spec path like training.batch_size or vars.width; received {name!r}", hint)
        return None
    # (`path` stays as written: an error about a part of the key is located by it)
    counted = _count_from_the_end(doc.data, path, error)
    resolved = _resolve_target(doc, counted, error) if counted is not None else None
    if resolved is None:
        return None
    target, numeric, affects_model = resolved
    kind: Kind = "float" if "float" in space else "int" if "int" in space else "choice"
    if target[0] == "vars":
        found = varchoices.search_problem(str(target[1]), kind, space.get("choice") or (), doc.data)
        if found is not None:
            error(found.message, found.hint, doc.loc(found.path) or doc.loc(at))
            return None
    if kind == "choice":
        items = space["choice"]
        if len(items) == 1:  # (as a step that leaves one value: every trial would train the same)
            error(ONE_CHOICE, ONE_CHOICE_HINT, doc.loc((*at, "choice")) or doc.loc(at))
            return None
        if not _distinct_choices(doc, at, items, diags):
            return None
        return Dimension(
            name, target, "choice", choices=tuple(items), loc=doc.loc(at), affects_model=affects_model,
            value_locs=tuple(doc.loc((*at, "choice", i)) for i in range(len(items))),
        )  # fmt: skip
    low, high = space[kind]
    range_loc = doc.loc((*at, kind))
    if numeric is False or (numeric == "int" and kind == "float"):
        error(
            f"expected a parameter that takes numbers for a {kind} range; {format_path(target)} is not "
            + ("a number" if numeric is False else "a float (it takes integers)"),
            "use {choice: [...]} for values that are not numbers"
            if numeric is False
            else "use {int: [lo, hi]} for an integer parameter",
            range_loc,
        )
        return None
    if not low < high:
        error(f"expected low < high in the {kind} range; received [{low}, {high}]", loc=range_loc)
        return None
    log = bool(space.get("log", False))
    if log and low <= 0:
        error(f"expected low > 0 for a log range; received {low}", loc=range_loc)
        return None
    step = space.get("step")
    if log and step is not None:
        error("expected either log or step, not both (Optuna samples one way)", loc=range_loc)
        return None
    dimension = Dimension(
        name, target, kind, low=low, high=high, log=log, step=step, loc=doc.loc(at),
        value_locs=(doc.loc((*at, kind, 0)), doc.loc((*at, kind, 1))), affects_model=affects_model,
    )  # fmt: skip
    if step is not None and dimension.top() <= low:
        # Optuna would trim the range to [low, low] and every trial would train the same value
        error(
            f"expected a step that leaves at least two values in the {kind} range [{low}, {high}]; "
            f"received step {step}, which leaves only {low}",
            f"use a step of at most {round(high - low, 12)} (high - low), or set the value in the spec "
            "instead of searching it",
            doc.loc((*at, "step")) or range_loc,
        )
        return None
    return dimension


def _distinct_choices(doc: SourceDoc, at: SpecPath, items: list[Any], diags: Diagnostics) -> bool:
    """Whether no two of ``items`` are one choice for Optuna, else a located error at the repeat.

    The schema's ``uniqueItems`` refuses ``[4, 4]`` and ``[4, 4.0]``; Optuna also finds a
    categorical value by ``==`` (``choices.index``), so ``true`` is ``1`` and ``false`` is
    ``0`` to it (JSON Schema keeps booleans apart): a trial drawing the second would be
    stored as the first, and a grid would train that point twice."""
    for index, item in enumerate(items):
        for first in range(index):
            if _same_choice(items[first], item):
                where: SpecPath = (*at, "choice", index)
                diags.error(
                    f"expected distinct choices; received {describe_value(item)} at [{index}], which "
                    f"Optuna takes for {describe_value(items[first])} at [{first}]",
                    doc.loc(where) or doc.loc(at),
                    format_path(where),
                    code="search",
                    hint="remove the repeat: the search would try the same value twice",
                )
                return False
    return True


def _same_choice(a: Any, b: Any) -> bool:
    """Whether Optuna takes choices ``a`` and ``b`` for one: equal as Python values (``1`` and
    ``1.0``, ``True`` and ``1``), or for mappings and lists, the same JSON text (how they are
    stored: :func:`cnnspec.search.study.categorical`)."""
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)
    try:
        return bool(a == b)
    except Exception:  # (values from YAML compare; never fail the check on one that does not)
        return False


def _parse_path(name: str) -> SpecPath | None:
    from cnnspec.spec.compose import parse_override

    try:
        path, _ = parse_override(f"{name}=0")
    except UsageError:
        return None
    return path


#: (target path, numeric: "int" | "number" | False | None (unknown), affects the model)
Target = tuple[SpecPath, Any, bool]


def space_target(doc: SourceDoc, key: str) -> SpecPath | None:
    """The spec path the ``search.space`` key ``key`` sets, as a trial writes it
    (``vars.width``, ``training.batch_size``, a layer's parameter by its id: ``head.rate`` →
    ``model[3].dropout.rate``), or ``None`` when ``key`` is no path the search accepts (the
    search check reports why). For the editor, which goes to what a key sets."""
    path = _parse_path(key)
    ignore = lambda *_args, **_kwargs: None  # noqa: E731  (the search check reports why)
    counted = _count_from_the_end(doc.data, path, ignore) if path is not None else None
    resolved = _resolve_target(doc, counted, ignore) if counted is not None else None
    return resolved[0] if resolved is not None else None


def _count_from_the_end(data: Any, path: SpecPath, error: Any) -> SpecPath | None:
    """``path`` with each index counted from the end (``model[-1]``) made the place of the item
    it names, as --set reads it (:func:`cnnspec.spec.compose.from_the_end`): a trial writes its
    value into that item. One past the list's first item is an error with --set's words, at
    the index; ``None`` after it."""
    from cnnspec.spec.compose import from_the_end, index_past_the_start

    counted = from_the_end(data, path)
    for depth, part in enumerate(counted):
        if isinstance(part, int) and part < 0:
            items = _at(data, counted[:depth])
            if not isinstance(items, list) or not items:
                break  # (no list there: the path's own checks say what the spec lacks)
            message, hint = index_past_the_start(format_path(path[:depth]), len(items), part)
            error(message, hint, part=depth)
            return None
    return counted


def _searched(data: Any, path: SpecPath) -> bool:
    """Whether a key of the spec's ``search.space`` sets ``path`` (``vars.width`` and
    ``vars["width"]`` alike)."""
    search = data.get("search") if isinstance(data, dict) else None
    space = search.get("space") if isinstance(search, dict) else None
    return isinstance(space, dict) and any(_parse_path(str(key)) == path for key in space)


def _resolve_target(doc: SourceDoc, path: SpecPath, error: Any) -> Target | None:
    head = path[0]
    data = doc.data
    if head == "vars":
        names = list(data.get("vars") or {})
        if len(path) != 2 or not isinstance(path[1], str):
            error("expected vars.NAME: a var is one value")
            return None
        if path[1] not in names:
            meant = closest(path[1], names)
            hint = did_you_mean(path[1], names) or "declare it under `vars:` in the spec"
            if meant is not None and _searched(data, ("vars", meant)):
                # (renaming this key to the var meant would set that var twice in the space)
                hint = f"`vars.{meant}` is searched already: remove `{'.'.join(map(str, path))}`"
            error(f"unknown var {path[1]!r}: the search can only set a var the spec declares", hint, part=1)
            return None
        value = data["vars"][path[1]]
        numeric: Any = None
        if isinstance(value, bool) or (value is not None and not isinstance(value, (int, float, str))):
            numeric = False
        elif isinstance(value, int):
            numeric = "number"  # a var declared 32 may take 48 or 0.5: its uses' checks decide
        elif isinstance(value, float):
            numeric = "number"
        elif isinstance(value, str) and "${" not in value:
            numeric = False
        return path, numeric, True
    if path == ("training", "learning_rate"):  # (no setting: the rate is the optimizer's)
        optimizer = (data.get("training") or {}).get("optimizer") if isinstance(data, dict) else None
        name = optimizer if isinstance(optimizer, str) else next(iter(optimizer or {"adam": 0}), "adam")
        error(
            "training.learning_rate is no setting of the spec: the learning rate is the optimizer's",
            f"search training.optimizer.{name}.learning_rate (or a phase's: "
            "training.phases[i].learning_rate)",
        )
        return None
    training = data.get("training") if isinstance(data, dict) else None
    if path == ("training", "epochs") and isinstance(training, dict) and "phases" in training:
        # each trial would hold both, which the phases refuse: their own epochs are the ones
        # to search (a trial's training.phases, the other way, drops an inherited epochs)
        phases = training["phases"]
        count = len(phases) if isinstance(phases, list) else 0
        error(
            "expected the epochs in each phase; received a search over training.epochs of a spec "
            "with training.phases",
            "search training.phases[i].epochs, a phase's epochs"
            + (f" (i from 0 to {count - 1})" if count else "")
            + ", or training.phases itself",
        )
        return None
    if head in SECTION_SCHEMAS:
        numeric = _schema_path(SECTION_SCHEMAS[head], path, error)
        if numeric is None or not _items_exist(data, path, error) or not _through_mappings(data, path, error):
            return None
        return path, numeric, False
    if head in LAYER_LISTS:
        return _layer_path(doc, path, error)
    if not isinstance(head, str):
        error("expected a path that starts with a name")
        return None
    ids = {k: v for name in reversed(LAYER_LISTS) for k, v in _ids(data.get(name), (name,)).items()}
    if head not in ids:
        known = ["vars", *SECTION_SCHEMAS, *LAYER_LISTS, *ids]
        hint = did_you_mean(head, known) or (f"layer ids: {', '.join(ids)}" if ids else "no layer has an id")
        if head == "weights":
            # the starting weights decide the split seed and the test images of every trial (a
            # run folder's seed is taken where it trained on the same data): one study each
            hint = (
                "the model's starting weights are not searched: search each source as a study of its "
                "own, e.g. cnnspec search SPEC --set weights=runs/a --study from-a (then from-b …), "
                "and compare their best trials"
            )
        error(
            f"{head!r} is neither vars, a section (training, data, runtime), model[i], augmentation[i] "
            "nor the id of a layer",
            hint,
            part=0,
        )
        return None
    item_path = ids[head]
    item = _at(data, item_path)
    kind_name = next((k for k in item if k not in ITEM_EXTRAS), None)
    if len(path) != 2 or not isinstance(path[1], str) or kind_name is None:
        error(f"expected {head}.PARAM: a parameter of the layer with id {head!r}")
        return None
    return _layer_param(doc, (*item_path, kind_name), path[1], error, 1)


def _schema_path(schema: dict[str, Any], path: SpecPath, error: Any) -> Any:
    """Walk ``schema`` along ``path[1:]``; the leaf's numeric kind, or ``None`` after an error."""
    current = [schema]
    for depth, part in enumerate(path[1:], start=1):
        nxt: list[dict[str, Any]] = []
        options: list[str] = []
        for alt in _alternatives(current):
            if isinstance(part, int):
                if alt.get("type") == "array" and isinstance(alt.get("items"), dict):
                    nxt.append(alt["items"])
            else:
                props = alt.get("properties") or {}
                options += list(props)
                if part in props:
                    nxt.append(props[part])
                elif isinstance(alt.get("additionalProperties"), dict):
                    nxt.append(alt["additionalProperties"])
        if not nxt:
            where = format_path(path[:depth])
            hint = did_you_mean(str(part), options) or (
                f"keys of {where}: {', '.join(dict.fromkeys(options))}" if options else None
            )
            error(f"{format_path(path)} is no setting of the spec: {where} has no {part!r}", hint, part=depth)
            return None
        current = nxt
    types = {t for alt in _alternatives(current) for t in _types(alt)}
    if types & {"number"}:
        return "number"
    if "integer" in types:
        return "int"
    return False


def _part_loc(key_loc: Loc, name: str, path: SpecPath, part: int) -> Loc | None:
    """Where part ``part`` of ``path`` (the ``search.space`` key ``name``, at ``key_loc``) is
    written, when the key reads in the file as ``name`` does, plain or in simple quotes, and
    spells the parts before it as :func:`format_path` does (``training.callbacks[0].``);
    else ``None`` (the key's own location serves)."""
    segment = path[part]
    if isinstance(segment, int):  # an index: at its `[`, as --set locates one
        segment = f"[{segment}]"
        prefix = format_path(path[:part])
    else:
        prefix = format_path(path[:part]) + ("." if part else "")
    rest = name[len(prefix) + len(segment) :]
    if not name.startswith(prefix + segment) or rest[:1] not in ("", ".", "["):
        return None
    text = SOURCE_TEXTS.get(key_loc.file)
    lines = LINE_BREAK.split(text) if text is not None else []
    if not 0 < key_loc.line <= len(lines):
        return None
    line = lines[key_loc.line - 1].removeprefix("\ufeff") if key_loc.line == 1 else lines[key_loc.line - 1]
    start = key_loc.column - 1
    for quote in ("", '"', "'"):
        written = quote + name + quote
        after = line[start + len(written) : start + len(written) + 1]
        if line.startswith(written, start) and (quote or after in ("", ":", " ", "\t")):
            return Loc(key_loc.file, key_loc.line, key_loc.column + len(quote) + len(prefix))
    return None


def _through_mappings(data: Any, path: SpecPath, error: Any) -> bool:
    """Whether no value on the way to ``path``'s setting is a name the trials would replace:
    ``data.source.shapes.max_shapes`` of a spec whose ``data.source`` is ``digits`` trained every
    trial on shapes, and ``training.loss.huber.delta`` beside ``loss: mse`` on Huber, without a
    word (``--set`` refuses the same path). A name that is the key the path goes on with is its
    short form (``optimizer: adam`` for ``training.optimizer.adam.learning_rate``), and an
    expression's value is not known here."""
    from cnnspec.spec.expr import is_expression

    for depth in range(1, len(path) - 1):  # (the values on the way; the leaf is the search's)
        value, part = _at(data, path[:depth]), path[depth]
        if isinstance(value, str) and isinstance(part, str) and value != part and not is_expression(value):
            where = format_path(path[:depth])
            error(
                f"expected a mapping at {where} to set {part!r} in; the spec's {where} is {value!r}, "
                "which each trial would replace",
                f"search {where} whole (a choice of its values), or write {where} in the spec as the "
                f"mapping {{{part}: …}} that the search sets values in",
                part=depth,
            )
            return False
    return True


def _items_exist(data: Any, path: SpecPath, error: Any) -> bool:
    """Whether every index of ``path`` (``training.callbacks[1]``) names an item the document
    has: a trial's value is written into that item (:func:`apply_values`), which must exist."""
    for depth, part in enumerate(path):
        if not isinstance(part, int):
            continue
        items = _at(data, path[:depth])
        where = format_path(path[:depth])
        if not isinstance(items, list):
            what = f"the spec has no {where}" if items is None else f"{where} is no list in the spec"
            error(
                f"{what}; received index {part}",
                f"a search path can set a value inside an item only when the spec has {where} with that item",
            )
            return False
        if not 0 <= part < len(items):
            count = f"{len(items)} item" + ("" if len(items) == 1 else "s")
            error(
                f"{where} has {count}; received index {part}",
                f"a search path can set a value only inside an item the spec has ({where}[0] is the first)",
            )
            return False
    return True


def _alternatives(schemas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    stack = list(schemas)
    while stack:
        schema = stack.pop(0)
        if "anyOf" in schema:
            stack.extend(s for s in schema["anyOf"] if "$ref" not in s)
        else:
            out.append(schema)
    return out


def _types(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    return kind if isinstance(kind, list) else [kind] if isinstance(kind, str) else []


def _layer_path(doc: SourceDoc, path: SpecPath, error: Any) -> Target | None:
    """``model[3].dropout.rate``: an item of a layer list, its kind, one parameter."""
    if len(path) != 4 or not isinstance(path[1], int) or not isinstance(path[3], str):
        error(f"expected {path[0]}[INDEX].KIND.PARAM (or ID.PARAM for a layer with an id)")
        return None
    items = doc.data.get(path[0])
    if not isinstance(items, list) or path[1] >= len(items):
        count = len(items) if isinstance(items, list) else 0
        error(f"expected an index below {count} in {path[0]}; received {path[1]}")
        return None
    item = items[path[1]]
    kinds = [k for k in item if k not in ITEM_EXTRAS] if isinstance(item, dict) else [item]
    if path[2] not in kinds:
        error(
            f"{format_path(path[:2])} is a {kinds[0] if kinds else 'layer'}, not {path[2]!r}",
            did_you_mean(str(path[2]), [str(k) for k in kinds]),
            part=2,
        )
        return None
    return _layer_param(doc, path[:3], path[3], error, 3)  # a bare `- batch_norm` gets a mapping


def _layer_param(doc: SourceDoc, kind_path: SpecPath, param: str, error: Any, part: int) -> Target | None:
    """``param`` of the layer at ``kind_path``; ``part``: where ``param`` is in the key's path."""
    kind = REGISTRY.get(str(kind_path[-1]))
    if kind is None:  # a block call: its declared params
        block = (doc.data.get("blocks") or {}).get(str(kind_path[-1])) or {}
        names = list(block.get("params") or {})
        if param not in names:
            error(
                f"block {kind_path[-1]!r} has no parameter {param!r}",
                did_you_mean(param, names) or (f"its parameters: {', '.join(names)}" if names else None),
                part=part,
            )
            return None
        declared = (block.get("params") or {})[param]
        declared_type = declared.get("type") if isinstance(declared, dict) else declared
        numeric = {"int": "int", "float": "number", "number": "number", "any": None}.get(declared_type, False)
        return (*kind_path, param), numeric, True
    if param not in kind.param_index:
        names = [p.name for p in kind.params]
        error(
            f"{kind.name} has no parameter {param!r}",
            did_you_mean(param, names) or f"its parameters: {', '.join(names)}",
            part=part,
        )
        return None
    schema = kind.param_index[param].json_schema()
    types = {t for alt in _alternatives([schema]) for t in _types(alt)}
    numeric = "number" if "number" in types else "int" if "integer" in types else False
    # `dropout: 0.3` (the main parameter written alone) too: apply_values makes it {rate: …}
    return (*kind_path, param), numeric, True


def _ids(items: Any, path: SpecPath) -> dict[str, SpecPath]:
    """Every layer item with an ``id`` in a layer list (into residual bodies, branches, repeats)."""
    found: dict[str, SpecPath] = {}
    stack: list[tuple[Any, SpecPath]] = [(items, path)]
    while stack:
        value, at = stack.pop()
        if isinstance(value, dict):
            if isinstance(value.get("id"), str):
                found.setdefault(value["id"], at)
            stack.extend((v, (*at, k)) for k, v in value.items() if isinstance(v, (dict, list)))
        elif isinstance(value, list):
            stack.extend((v, (*at, i)) for i, v in enumerate(value))
    return found


def _at(data: Any, path: SpecPath) -> Any:
    """The value at ``path``; ``None`` past a bare kind (``- batch_norm``) or a missing key."""
    for part in path:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def apply_values(
    doc: SourceDoc, space: SearchSpace, values: dict[str, Any], *, keep_search: bool = False
) -> SourceDoc:
    """A copy of ``doc`` with ``values`` (dimension name → value) written in, without the
    ``search`` section. Each value is located at its dimension in ``search.space``, so any later
    error about it points there."""
    data = copy.deepcopy(doc.data)
    if not keep_search:
        data.pop("search", None)
    out = doc.with_data(data)
    by_name = {d.name: d for d in space.dimensions}
    for name, value in values.items():
        d = by_name[name]
        at = _write(data, d.target, copy.deepcopy(value))
        n = len(at)
        for table in (out.locs, out.key_locs):
            for stale in [p for p in table if p[:n] == at]:
                del table[stale]
        loc = value_loc(d, value)
        if loc is not None:
            out.locs[at] = loc
        drop_replaced(out, at)  # a trial's phases stand for the whole plan, as --set's do
    return out


def _write(data: dict[str, Any], target: SpecPath, value: Any) -> SpecPath:
    """Write ``value`` at ``target`` in ``data``; the path it went to. A layer's main parameter
    written alone (``dropout: 0.3``, ``- cb: 8``) stays so when it is the one searched: the
    trial's spec reads as the user wrote it."""
    parent: Any = data
    for depth, part in enumerate(target[:-1]):
        child = parent[part] if not isinstance(parent, dict) else parent.get(part)
        # a list written as a kind's (or block call's) one value (`permute: [2, 1, 3]`,
        # `reshape: [64, 8]`) is that value, not a list to index: as a number written alone.
        # Only at the item's kind, before the parameter's name: a key on the way there (`model`,
        # a residual's `body`) is a list of items even where a block has that name.
        shorthand = (
            depth == len(target) - 2
            and isinstance(child, list)
            and isinstance(parent, dict)
            and isinstance(target[-1], str)
            and _scalar_param(data, part)
        )
        if not isinstance(child, (dict, list)) or shorthand:
            main = _scalar_param(data, part) if child is not None else None
            if main is not None and depth == len(target) - 2 and main == target[-1]:
                parent[part] = value
                return target[:-1]
            # a bare kind (`- batch_norm`), `max_pool2d:` (null) or an absent section becomes a
            # mapping; `dropout: 0.3` becomes {rate: 0.3} (`- cb: 8` of a block: {filters: 8})
            # before another parameter joins it
            child = {main: child} if main else {}
            parent[part] = child
        parent = child
    parent[target[-1]] = value
    return target


def _scalar_param(data: dict[str, Any], kind: Any) -> str | None:
    """The parameter that one value written alone fills for ``kind``: a layer's main parameter
    (``dropout: 0.3`` is its rate), or the parameter the resolver gives a block called with one
    value (``- cb: 8``: the block's only parameter, else its only required one,
    :func:`cnnspec.spec.resolve_blocks.scalar_param`)."""
    if not isinstance(kind, str):
        return None
    layer = REGISTRY.get(kind)
    if layer is not None:
        return layer.main
    blocks = data.get("blocks")
    if not isinstance(blocks, dict) or not isinstance(blocks.get(kind), dict):
        return None
    from cnnspec.errors import Diagnostics
    from cnnspec.spec.resolve import Resolver
    from cnnspec.spec.resolve_blocks import scalar_param

    return scalar_param(Resolver(SourceDoc("<search>", data, {}, {}), Diagnostics()).block_params(kind))


def value_loc(d: Dimension, value: Any) -> Loc | None:
    if d.kind == "choice":
        for choice, loc in zip(d.choices, d.value_locs):
            if choice == value and type(choice) is type(value):
                return loc
        return d.loc
    if d.value_locs and value == d.low:
        return d.value_locs[0]
    if len(d.value_locs) > 1 and value in (d.high, d.top()):
        return d.value_locs[1]
    return d.loc
