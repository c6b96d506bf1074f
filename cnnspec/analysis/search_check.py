"""Checks of the ``search:`` section that need the compiled spec (TF-free, Optuna-free).

- the objective must be a value the training logs every epoch (pruning reads one per epoch);
- every candidate value of every dimension (:meth:`Dimension.candidates`: each choice, both
  ends of each range, a float range's values as floats) is written into the spec and compiled
  alone: a choice the parameter's schema rejects (``sgdd``) is an error located at that choice,
  with the schema's did-you-mean; a ``data`` or ``training`` value with which the training does
  not log the objective (``validation_split: 0.0`` for ``val_accuracy``) is one too;
- the dimensions that can change the model (vars, layer parameters) are compiled at every
  value a trial can draw while their values add up to at most :data:`MAX_VALUES`
  (:func:`enumerated`: a ``groups`` of 3 between 1 and 4 fails), and in every combination of
  those values (else of their candidates) when there are at most :data:`MAX_COMBINATIONS`, so a width
  whose shapes do not work fails in ``cnnspec validate``, before any trial starts. Errors found
  this way keep their own location (the layer) and get a note naming the search values;
- a drawn ``data.test_split`` beside ``weights:`` of a run folder of the same data warns at its
  key which values split off test images from among those the weights trained on (lock.json
  and resolved.yaml are read; no data).
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from cnnspec.analysis.compiled import CompiledSpec
from cnnspec.analysis.settings import training_config
from cnnspec.analysis.settings_types import TrainConfig
from cnnspec.analysis.trial_data import TrialData, drawn_text, trial_data
from cnnspec.analysis.weights_run import WeightsRun, disjoint_classes, weights_run
from cnnspec.errors import (
    COMMAND_LINE_PREFIX,
    Diagnostic,
    Diagnostics,
    Note,
    SpecError,
    SpecPath,
    describe_value,
    did_you_mean,
    format_path,
)
from cnnspec.spec.loader import SourceDoc, value_at
from cnnspec.spec.search import (
    Dimension,
    SearchSpace,
    apply_values,
    default_direction,
    grid_values,
    read_search,
    value_loc,
)

if TYPE_CHECKING:
    from cnnspec.spec.weights import WeightsSource

#: Combinations of the model's dimensions compiled by ``cnnspec validate`` (issue 17: all of
#: them up to 256); above that each value is still compiled alone, and 256 combinations drawn
#: with a fixed seed are compiled, with a warning that says how many of how many.
MAX_COMBINATIONS = 256

#: Values of the dimensions that can change the model compiled alone by ``cnnspec validate``,
#: every value of each range in turn while they add up to at most this many (a ``groups``
#: between the ends fails), else a range's ends: the cost of the combinations' budget (256
#: compiles of the 13-layer digits model take ~0.9 s on one core), once, not per dimension.
MAX_VALUES = 256

#: Failing values of one dimension whose errors are shown; the rest are listed in a note.
SHOWN_FAILURES = 3

Compile = Callable[[SourceDoc], CompiledSpec]


def check_search(compiled: CompiledSpec, diags: Diagnostics, compile_doc: Compile) -> SearchSpace | None:
    """The spec's search space, after every check; errors are added to ``diags``."""
    space = check_space(compiled, diags)
    if space is not None:
        check_candidates(compiled, space, diags, compile_doc)
    return space


def check_space(compiled: CompiledSpec, diags: Diagnostics) -> SearchSpace | None:
    """The checks that compile nothing (paths, values, objective): milliseconds, so the
    language server runs them on every edit. ``None`` when the section could not be read
    (its errors are in ``diags``); the space, with its objective settled, otherwise."""
    space = read_search(compiled.doc, diags)
    if space is None or diags.has_errors:
        return None
    if not space.objective_given and "training" in compiled.doc.data:
        space = _with_task_objective(compiled, space)
    elif "training" in compiled.doc.data:
        space = _with_direction(compiled, space)
    _check_objective(compiled, space, diags)
    _check_switched_off(compiled, space, diags)
    _warn_unfair_objective(compiled, space, diags)
    _warn_learnt_test_images(compiled, space, diags)
    _warn_phases_override(compiled, space, diags)
    return space


def _warn_phases_override(compiled: CompiledSpec, space: SearchSpace, diags: Diagnostics) -> None:
    """Warn at a dimension of ``training.optimizer`` that the phases leave unused: the first
    phase's own ``optimizer`` replaces the spec's (each later phase's is its own or the one
    before), and a phase's ``learning_rate`` replaces the optimizer's rate. A searched rate
    that every phase sets trained identical trials, each its drawn value recorded as if used."""
    phases = compiled.training.get("phases")
    if not isinstance(phases, list) or not phases or not all(isinstance(p, dict) for p in phases):
        return
    for d in space.dimensions:
        if d.target[:2] != ("training", "optimizer"):
            continue
        rate = len(d.target) >= 4 and d.target[3] == "learning_rate"
        if "optimizer" in phases[0]:
            why = "the first phase sets its own optimizer (each later one its own or the one before)"
            instead = "training.phases[i].optimizer"
        elif rate and all("learning_rate" in p or "optimizer" in p for p in phases):
            why = "every phase sets its own learning_rate"
            instead = "training.phases[i].learning_rate"
        else:
            continue
        diags.warning(
            f"{d.name} draws a setting of training.optimizer that no phase trains with: {why}, so "
            "the trials train alike whatever it draws",
            compiled.doc.key_loc(("search", "space", d.name)) or d.loc,
            f"search.space.{d.name}",
            code="search-unused",
            hint=f"search the phases' own settings ({instead}), or leave them out of the phases",
        )


#: The ``data`` settings that decide which images a trial trains, validates and is scored on.
SPLIT_SETTINGS = frozenset({"source", "validation_split", "test_split", "limit", "per_class", "classes"})


def changes_split(d: Dimension) -> bool:
    """Whether the dimension ``d`` draws a setting that decides the images of a trial's
    splits (``data.validation_split``, ``data.limit`` …): the trials are then scored on other
    images, each its own."""
    return len(d.target) >= 2 and d.target[0] == "data" and d.target[1] in SPLIT_SETTINGS


def _warn_unfair_objective(compiled: CompiledSpec, space: SearchSpace, diags: Diagnostics) -> None:
    """Warn at a dimension whose value moves the objective whatever the model learns: an
    output's ``loss_weight`` when the objective is the weighted total loss (a smaller weight
    scores better by itself), or a split setting (each trial is scored on other images)."""
    for d in space.dimensions:
        key = compiled.doc.key_loc(("search", "space", d.name)) or d.loc
        where = f"search.space.{d.name}"
        weighted = d.target[:2] == ("training", "outputs") and d.target[-1] == "loss_weight"
        if weighted and space.objective in ("loss", "val_loss"):
            output = d.target[2] if len(d.target) > 3 else "the output"
            diags.warning(
                f"the objective {space.objective} is the outputs' losses weighted by loss_weight, "
                f"which {d.name} draws: a trial with a smaller weight scores better by that "
                "alone, whatever its model learns",
                key,
                where,
                code="search-objective",
                hint=f"search an objective the weight does not scale: {space.objective.removesuffix('loss')}"
                f"{output}_loss, or one of its metrics (search.objective)",
            )
        elif changes_split(d):
            diags.warning(
                f"{d.name} decides which images the trials train, validate and are scored on: "
                f"each trial's {space.objective} is measured on other images, so the trials do "
                "not compare alike",
                key,
                where,
                code="search-objective",
                hint=f"fix {format_path(d.target)} in the spec, and search the rest",
            )


def _warn_learnt_test_images(compiled: CompiledSpec, space: SearchSpace, diags: Diagnostics) -> None:
    """Warn at a drawn ``data.test_split`` when the spec starts from the weights of a run folder
    trained on the same data as trials of the search (the spec's own source, or one the space
    draws: :func:`cnnspec.analysis.trial_data.trial_data`): such a trial that draws another test
    split than that run's (or trains with a seed of the spec's other than that run's) draws its
    test images from among those the weights trained or validated on, whatever its seed, so its
    test figures include images the starting weights learnt. (The trials of that run's source
    and test split take its seed, as ``cnnspec train`` does:
    :func:`cnnspec.search.study.adopted_split_seed`; a trial of another source holds none of its
    images.) Each such trial counts them, once it has its data, in search.json's ``test_note``;
    here no data is read."""
    drawn = next((d for d in space.dimensions if d.target == ("data", "test_split")), None)
    if drawn is None or "training" not in compiled.doc.data:
        return
    source = _weights_source(compiled)
    if source is None:
        return
    runs: list[tuple[TrialData, WeightsRun]] = []
    for trial in trial_data(compiled, space):
        run = weights_run(source, trial.data, compiled.path)
        if run is None or not run.same_data or run.seed is None or run.test_split is None:
            continue
        if disjoint_classes(run.run_dir, trial.data):  # (classes 5–9 of weights of 0–4: none learnt)
            continue
        if trial.data.splits_test:  # (a source's own test set: no split drawn)
            runs.append((trial, run))
    if not runs:
        return
    run = runs[0][1]  # (one run folder: its seed and test_split are the same for every trial)
    config = training_config(compiled)
    own_seed = config.seed is not None and config.seed != run.seed
    ranged = drawn.kind != "choice" and drawn.step is None  # (a value between: none is the run's)
    values = [float(v) for v in grid_values(drawn)] if not ranged else []  # (numbers: the schema's)
    theirs = run.test_split
    others = [v for v in values if abs(v - theirs) > 1e-9]
    if theirs is None or not (own_seed or ranged or others):
        return
    sources = drawn_text([trial.values for trial, _ in runs])  # (the space draws the source: which)
    of = f" of its data ({sources})" if sources else ""
    if own_seed:
        who, why = f"all trials{of}", f"with training.seed {config.seed}, not its seed {run.seed}"
        fix = f"set training.seed to that run's seed, {run.seed}, or remove it (the search then takes it)"
    else:
        shown = "a value of the range" if ranged else " or ".join(f"{v:g}" for v in others)
        who, why = f"the trials{of} that draw {shown}", f"its test_split is {theirs:g}"
        fix = f"draw only {theirs:g} (or fix data.test_split: {theirs:g}) for clean test figures"
    diags.warning(
        f"{drawn.name}: {who} split off other test images than {run.given} did ({why}), so they "
        "test on images those weights trained or validated on: their test figures include images "
        "the starting weights learnt",
        compiled.doc.key_loc(("search", "space", drawn.name)) or drawn.loc,
        f"search.space.{drawn.name}",
        code="search-split",
        hint=f"{fix}; each such trial counts the images in search.json (test_note)",
    )


def _weights_source(compiled: CompiledSpec) -> WeightsSource | None:
    """The spec's whole-model ``weights:`` source (its run folder is read, lock.json alone, by
    :func:`weights_run`), or ``None``: none, or a source whose own error is reported elsewhere."""
    from pathlib import Path

    from cnnspec.spec.weights import spec_weights

    spec_dir = compiled.path.parent if compiled.path is not None else Path.cwd()
    try:
        return spec_weights(compiled.doc, spec_dir, zoo_model=True)
    except (SpecError, OSError, ValueError):
        return None


def check_not_set(compiled: CompiledSpec, space: SearchSpace) -> None:
    """For ``cnnspec search``: refuse (a located :class:`SpecError`) a ``--set`` of what the
    search draws (the setting, or a part of it or around it): every trial wrote its own value
    over it, so the option did nothing, without a word. (Training the spec, which leaves its
    search alone, takes the option.)"""
    diags = Diagnostics()
    doc = compiled.doc
    given = [p for p, loc in doc.locs.items() if loc.file.startswith(COMMAND_LINE_PREFIX)]

    def sets(path: SpecPath, target: SpecPath) -> bool:
        """Whether the option at ``path`` sets ``target``: it is the target or inside it, or a
        value around it that is no mapping or holds the target (``--set vars={…}`` without the
        var searched sets other vars)."""
        if path[: len(target)] == target:
            return True
        if target[: len(path)] != path:
            return False
        node = value_at(doc.data, path)
        for part in target[len(path) :]:
            if not isinstance(node, dict):
                return True  # a value that stands for what is inside (`dropout: 0.3`, its rate)
            if part not in node:
                return False
            node = node[part]
        return True

    for d in space.dimensions:
        clash = next((p for p in given if sets(p, d.target)), None)
        if clash is None:
            continue
        diags.error(
            f"expected --set to leave {format_path(d.target)} to the search, which draws it for every "
            f"trial (search.space.{d.name}); --set {format_path(clash)} would be overwritten",
            doc.loc(clash),
            format_path(clash),
            code="search",
            hint=f"leave out the --set, or take {d.name} out of search.space",
        )
    diags.raise_if_errors()


def _check_switched_off(compiled: CompiledSpec, space: SearchSpace, diags: Diagnostics) -> None:
    """Refuse a dimension written inside a setting the spec switches off (``training.mixup:
    false`` with ``training.mixup.alpha`` searched): each trial's value would turn the setting
    on, against what the spec says, in every trial."""
    doc = compiled.doc
    for d in space.dimensions:
        node: Any = doc.data
        for depth, part in enumerate(d.target[:-1]):
            if isinstance(node, dict):
                node = node.get(part)
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                break
            if node is not False:
                continue
            off = d.target[: depth + 1]
            where = doc.loc(off)
            diags.error(
                f"expected {format_path(off)} to be on for a search of {d.name}; the spec switches it "
                f"off ({format_path(off)}: false), and every trial would turn it on",
                doc.key_loc(("search", "space", d.name)) or d.loc,
                f"search.space.{d.name}",
                code="search",
                hint=f"set {format_path(off)}: true (or remove the `false`) to search its setting",
                notes=[Note(f"switched off here ({where})", where, format_path(off))] if where else [],
            )
            break


def check_candidates(
    compiled: CompiledSpec, space: SearchSpace, diags: Diagnostics, compile_doc: Compile
) -> None:
    """Compile every candidate value alone and every combination of the model's dimensions
    (up to :data:`MAX_COMBINATIONS` models: seconds for a large one, so the language server
    runs this on open and save only)."""
    # a candidate is held to the objective only when the spec itself logs it: otherwise the
    # objective's own error (check_space) says it all, once, not again for every candidate
    failed = _check_values(compiled.doc, space, diags, compile_doc, _logs_objective(compiled, space))
    _check_combinations(compiled.doc, space, diags, compile_doc, failed)


#: The per-epoch value a search optimises by default for a model of one output, by task.
TASK_OBJECTIVES = {
    "classification": "accuracy",
    "segmentation": "mean_iou",
    "multilabel": "f1",
    "regression": "mae",
}


def task_objective(config: TrainConfig) -> str:
    """The default objective: the validation value of the task's headline metric
    (``val_accuracy``, ``val_mean_iou``, ``val_f1``, ``val_mae``), ``val_loss`` when that metric
    is not logged (and for several outputs: their weighted loss sums every output's)."""
    if len(config.tasks) > 1:
        return "val_loss"
    task = config.tasks[0].task if config.tasks else "classification"
    metric = TASK_OBJECTIVES.get(task, "accuracy")
    if task == "classification":
        return f"val_{metric}"  # (a classifier without accuracy gets the error with the hint)
    return f"val_{metric}" if metric in config.logged_names(False) else "val_loss"


def _with_task_objective(compiled: CompiledSpec, space: SearchSpace) -> SearchSpace:
    """The space with the task's default objective (and its direction, unless the spec says)."""
    from dataclasses import replace

    return _with_direction(compiled, replace(space, objective=task_objective(training_config(compiled))))


def _with_direction(compiled: CompiledSpec, space: SearchSpace) -> SearchSpace:
    """The space with the direction the spec states, else the one that is better for its
    objective by the table the callbacks' ``mode: auto`` uses (``TrainConfig.higher_is_better``;
    ``default_direction`` of the name for a value the training does not log, an error later)."""
    from dataclasses import replace

    section = compiled.doc.data.get("search") or {}
    stated = section.get("objective") if isinstance(section.get("objective"), dict) else {}
    direction = stated.get("direction")
    if direction is None:
        higher = training_config(compiled).higher_is_better(space.objective)
        if higher is None:
            direction = default_direction(space.objective)
        else:
            direction = "maximize" if higher else "minimize"
    return replace(space, direction=str(direction))


def _check_objective(compiled: CompiledSpec, space: SearchSpace, diags: Diagnostics) -> None:
    if "training" not in compiled.doc.data:
        diags.error(
            "expected a training section in a spec with a search: the trials train it",
            compiled.doc.key_loc(("search",)),
            "search",
            code="search",
        )
        return
    config = training_config(compiled)
    logged = _logged(config)
    if space.objective in logged:
        return
    hint = did_you_mean(space.objective, logged) or f"logged every epoch: {', '.join(logged)}"
    if space.objective.startswith("val_") and config.data.validation_split <= 0:
        hint = "validation values need data.validation_split > 0"
    diags.error(
        f"expected an objective the training logs every epoch; received {space.objective!r}",
        space.objective_loc,
        "search.objective",
        code="search",
        hint=hint,
    )


def _note(d: Dimension, value: Any) -> Note:
    loc = value_loc(d, value)
    where = f" ({loc})" if loc else ""
    shown = json.dumps(value) if isinstance(value, (int, float, str, bool)) else describe_value(value)
    return Note(f"with search value {d.name} = {shown}{where}", loc, f"search.space.{d.name}")


def _at_the_key(doc: SourceDoc, d: Dimension, error: Diagnostic) -> Diagnostic:
    """``error`` of a trial's spec, located at the search key of ``d`` where it is about a
    setting the trials' value makes and the spec lacks (``training.cutmix`` of a search of
    ``training.cutmix.factor`` on a segmentation model): it was shown at the nearest line the
    spec has (``epochs: 1``), hinted to remove a setting the spec does not write."""
    from dataclasses import replace

    made = [format_path(d.target[:depth]) for depth in range(1, len(d.target) + 1)]
    if error.path not in made or value_at(doc.data, d.target[: made.index(error.path) + 1]) is not None:
        return error
    return replace(
        error,
        loc=doc.key_loc(("search", "space", d.name)) or d.loc,
        path=f"search.space.{d.name}",
        hint=f"take {d.name} out of search.space: its trials set {error.path}, which the spec leaves out",
    )


def _compile_errors(doc: SourceDoc, compile_doc: Compile) -> list[Diagnostic]:
    return _compiled(doc, compile_doc)[1]


def _compiled(doc: SourceDoc, compile_doc: Compile) -> tuple[CompiledSpec | None, list[Diagnostic]]:
    """The compiled spec, or ``None`` and its errors."""
    try:
        return compile_doc(doc), []
    except SpecError as exc:
        return None, exc.errors


#: Sections whose values decide what the training logs (the objective is one of those values).
_LOGGING_SECTIONS = ("data", "training")


def _objective_missing(
    compiled: CompiledSpec, space: SearchSpace, d: Dimension, value: Any
) -> Diagnostic | None:
    """The error when the spec with ``d = value`` does not log the objective every epoch
    (``data.validation_split: {choice: [0.0, 0.2]}`` with ``val_accuracy``: the 0.0 trial would
    train and fail), located at that value."""
    if d.target[0] not in _LOGGING_SECTIONS or "training" not in compiled.doc.data:
        return None
    config = training_config(compiled)
    logged = _logged(config)
    if space.objective in logged:
        return None
    hint = f"logged every epoch with this value: {', '.join(logged)}"
    if space.objective.startswith("val_") and config.data.validation_split <= 0:
        hint = "validation values need data.validation_split > 0"
    shown = json.dumps(value) if isinstance(value, (int, float, str, bool)) else describe_value(value)
    return Diagnostic(
        f"expected a value with which the training logs the objective {space.objective!r} every epoch; "
        f"with {d.name} = {shown} it does not",
        value_loc(d, value),
        f"search.space.{d.name}",
        "search",
        hint,
    )


def _logged(config: TrainConfig) -> list[str]:
    """What a training of ``config`` logs every epoch (``val_…`` with a validation split)."""
    return list(config.logged_names(config.data.validation_split > 0))


def _logs_objective(compiled: CompiledSpec, space: SearchSpace) -> bool:
    """Whether the spec as written logs the search's objective every epoch."""
    return "training" in compiled.doc.data and space.objective in _logged(training_config(compiled))


def planned_compiles(space: SearchSpace) -> int:
    """How many trial specs :func:`check_candidates` compiles for ``space``, at most (a value
    that fails alone is left out of the combinations, which this does not know): what the
    language server weighs before it compiles them on its event loop."""
    every = enumerated(space)
    alone = sum(len(checked_values(d, every)) for d in space.dimensions)
    model_dims, combined = combined_values(space)
    if len(model_dims) < 2:
        return alone
    return alone + min(math.prod(len(values) for values in combined), MAX_COMBINATIONS)


def combined_values(space: SearchSpace) -> tuple[list[Dimension], list[tuple[Any, ...]]]:
    """The dimensions that can change the model, and the values of each that
    :func:`_check_combinations` combines: every value of each while the product stays within
    :data:`MAX_COMBINATIONS`; else their candidates (ends), as many as before: a larger space
    is sampled from them."""
    every = enumerated(space)
    model_dims = [d for d in space.dimensions if d.affects_model]
    values = [checked_values(d, every) for d in model_dims]
    if math.prod(len(v) for v in values) > MAX_COMBINATIONS:
        values = [d.candidates() for d in model_dims]
    return model_dims, values


def enumerated(space: SearchSpace) -> dict[str, tuple[Any, ...]]:
    """Every value a trial can draw, by dimension, for the dimensions that can change the
    model (vars, layer parameters; a ``groups`` of 3 in ``{int: [1, 4]}`` fails where 1 and 4
    pass), taken in order while their values add up to at most :data:`MAX_VALUES` (each is
    compiled alone: ~3 ms for a small model, so validate stays within a second); the others
    are checked at their candidates (:meth:`Dimension.candidates`: a range's ends)."""
    found: dict[str, tuple[Any, ...]] = {}
    budget = MAX_VALUES
    for d in space.dimensions:
        # (a choice's values are its candidates, compiled anyway: no share of the budget)
        every = d.every_value(budget) if d.affects_model and d.kind != "choice" else None
        if every is not None:
            found[d.name] = every
            budget -= len(every)
    return found


def checked_values(d: Dimension, every: dict[str, tuple[Any, ...]]) -> tuple[Any, ...]:
    """The values of ``d`` compiled: all of them when :func:`enumerated` (``every``) has them,
    else its candidates."""
    return every.get(d.name) or d.candidates()


def _key(d: Dimension, value: Any) -> tuple[str, str]:
    """A value of ``d`` as the key of the failed set (the same in every list of its values)."""
    return d.name, json.dumps(value, sort_keys=True, default=str)


def _check_values(
    doc: SourceDoc, space: SearchSpace, diags: Diagnostics, compile_doc: Compile, objective: bool = True
) -> set[tuple[str, str]]:
    """Compile each value of :func:`checked_values` alone; the :func:`_key` of the ones that
    fail (``objective``: also those with which the training would not log the objective). A
    dimension whose setting the spec leaves out is set in every trial, so each value of another
    is compiled beside its first value, not beside its absence: ``mix_switch`` with a searched
    ``training.cutmix`` the spec lacks was refused as "only training.mixup is" on."""
    failed: set[tuple[str, str]] = set()
    every = enumerated(space)
    unset = {
        o.name: values[0]
        for o in space.dimensions
        if value_at(doc.data, o.target) is None and (values := checked_values(o, every))
    }
    for d in space.dimensions:
        beside = {name: value for name, value in unset.items() if name != d.name}
        said: set[tuple[str, str]] = set()  # errors of the setting itself, whatever the value
        more: list[Any] = []  # failing values past the first SHOWN_FAILURES: listed, not repeated
        last = None  # the index in diags of the last error shown for d
        for value in checked_values(d, every):
            compiled, errors = _compiled(apply_values(doc, space, {**beside, d.name: value}), compile_doc)
            check = objective and compiled is not None
            missing = _objective_missing(compiled, space, d, value) if check else None
            if not errors and missing is None:
                continue
            if len({key for key in failed if key[0] == d.name}) >= SHOWN_FAILURES:
                failed.add(_key(d, value))
                more.append(value)
                continue
            failed.add(_key(d, value))
            before = len(diags.items)
            if missing is not None:
                diags.add(missing)
            for error in errors:
                if error.path != format_path(d.target):
                    diags.add(_at_the_key(doc, d, error).with_notes([_note(d, value)]))
                elif (error.path, error.message) not in said:  # (a key's, the same for every value)
                    said.add((error.path, error.message))
                    diags.add(error)
            last = len(diags.items) - 1 if len(diags.items) > before else last
        if more and last is not None:
            listed = ", ".join(json.dumps(v) for v in more[: SHOWN_FAILURES * 2])
            rest = ", …" if len(more) > SHOWN_FAILURES * 2 else ""
            note = Note(
                f"{d.name} fails with {listed}{rest} too ({len(more)} more value(s))",
                d.loc,
                f"search.space.{d.name}",
            )
            diags.items[last] = diags.items[last].with_notes([note])
    return failed


def _combination(options: list[list[tuple[int, Any]]], index: int) -> tuple[tuple[int, Any], ...]:
    """The ``index``-th element of ``itertools.product(*options)``, computed from the index."""
    picked: list[tuple[int, Any]] = []
    for values in reversed(options):
        index, digit = divmod(index, len(values))
        picked.append(values[digit])
    return tuple(reversed(picked))


def _check_combinations(
    doc: SourceDoc,
    space: SearchSpace,
    diags: Diagnostics,
    compile_doc: Compile,
    failed: set[tuple[str, str]],
) -> None:
    model_dims, combined = combined_values(space)
    if len(model_dims) < 2:
        return  # one dimension: every value was compiled alone already
    options = [list(enumerate(values)) for values in combined]
    total = math.prod(len(values) for values in options)
    combinations: Iterable[tuple[tuple[int, Any], ...]] = itertools.product(*options)
    if total > MAX_COMBINATIONS:
        # A sample: a space of thousands would take seconds per thousand (0.64 s for 256 here).
        # Drawn by index without listing the product (a space may hold billions).
        drawn = random.Random(0).sample(range(total), MAX_COMBINATIONS)
        combinations = [_combination(options, index) for index in sorted(drawn)]
        diags.warning(
            f"the search space has {total:,} combinations of the model's dimensions; validate "
            f"compiled each value alone and {MAX_COMBINATIONS} combinations drawn at random, so a "
            "trial may still meet a combination whose shapes fail",
            doc.loc(("search", "space")),
            "search.space",
            code="search-sampled",
            hint="a trial that fails on shapes is recorded as failed and the search goes on",
        )
    for combination in combinations:
        if any(_key(d, value) in failed for d, (_, value) in zip(model_dims, combination)):
            continue  # that value fails alone: reported once, above
        values = {d.name: value for d, (_, value) in zip(model_dims, combination)}
        errors = _compile_errors(apply_values(doc, space, values), compile_doc)
        notes = [_note(d, value) for d, (_, value) in zip(model_dims, combination)]
        for error in errors:
            diags.add(error.with_notes(notes))
        if diags.full:
            return
