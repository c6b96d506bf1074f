"""The data source each trial of a search trains on, where the space draws it (``data.source``
or a part of it, the ``data`` section whole, or a var the data section reads): what decides
whether a trial can split as the run folder its starting weights come from did (the same data
source, :func:`cnnspec.analysis.weights_run.weights_run`). No TensorFlow, no data read.

The searched spec's own source is no trial's where the space draws it: the split seed of that
run is taken (:func:`cnnspec.search.study.adopted_split_seed`) and ``validate`` warns of learnt
test images (:mod:`cnnspec.analysis.search_check`) by the sources the trials draw, as both
decide by the ``data.test_split`` values the trials draw.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from cnnspec.analysis.settings import data_config
from cnnspec.spec.search import apply_values

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.analysis.settings_types import DataConfig
    from cnnspec.spec.search import Dimension, SearchSpace

#: The most value combinations of the source's dimensions looked at (the first ones, in order).
MAX_COMBINATIONS = 64
#: The most values of one dimension listed whole (an int range of more is tried at its ends).
MAX_VALUES = 64


@dataclass(frozen=True)
class TrialData:
    """The data of the trials that draw ``values`` (dimension name → value; empty where the
    space draws no source: every trial's is the spec's own)."""

    values: dict[str, Any]
    data: DataConfig


def trial_data(compiled: CompiledSpec, space: SearchSpace | None) -> list[TrialData]:
    """The data sources the trials of ``space`` can train on, each with the values that give it
    (:func:`draws_source`'s dimensions, their values combined: each choice, each step of a
    range; a range too long or without a step at the values the checks try, since a trial
    draws one of them or a value no run recorded). Combinations whose data has errors (a trial
    that fails; reported elsewhere) are left out. ``[TrialData({}, spec's data)]`` where the
    space draws no source; empty where the data has errors."""
    source_dims = [d for d in (space.dimensions if space is not None else ()) if draws_source(compiled, d)]
    if space is None or not source_dims:
        data = data_config(compiled)
        return [] if data is None else [TrialData({}, data)]
    listed = [d.every_value(MAX_VALUES) or d.candidates() for d in source_dims]
    out: list[TrialData] = []
    for combination in itertools.islice(itertools.product(*listed), MAX_COMBINATIONS):
        values = {d.name: value for d, value in zip(source_dims, combination, strict=True)}
        data = data_config(replace(compiled, doc=apply_values(compiled.doc, space, values)))
        if data is not None:
            out.append(TrialData(values, data))
    return out


def draws_source(compiled: CompiledSpec, d: Dimension) -> bool:
    """Whether ``d`` draws what decides a trial's data source: ``data.source`` or a part of it,
    the ``data`` section whole, or a var that an expression of the data section reads."""
    if d.target[:2] == ("data", "source") or d.target == ("data",):
        return True
    if len(d.target) != 2 or d.target[0] != "vars" or not isinstance(d.target[1], str):
        return False
    used = re.compile(r"\$\{[^}]*(?<![\w.])(vars\.)?" + re.escape(d.target[1]) + r"(?![\w])")
    return any(used.search(text) for text in _strings(compiled.doc.data.get("data")))


def drawn_text(drawn: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> str:
    """The drawn source values of some trials, for a message: ``data.source digits`` (one
    dimension), ``data.source.directory a, vars.size 8`` (several), ``… or …`` (several
    combinations); empty where none is drawn."""
    shown = [", ".join(f"{name} {_value(value)}" for name, value in values.items()) for values in drawn]
    return " or ".join(text for text in shown if text)


def _value(value: Any) -> str:
    """A drawn value as a message shows it: a scalar as written, a mapping or list as JSON."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _strings(value: Any) -> list[str]:
    """Every string in ``value`` (a section's data), nested ones included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []
