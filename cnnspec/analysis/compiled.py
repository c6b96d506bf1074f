""":class:`CompiledSpec`: what the front end hands every later stage (no TensorFlow).

It sits below the back ends, training and reporting, which all read it, and below the facade
:mod:`cnnspec.api`, which re-exports it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.analysis.report import summary
from cnnspec.errors import Diagnostic, SpecPath
from cnnspec.ir import ModelIR
from cnnspec.layers.registry import REGISTRY
from cnnspec.spec.loader import SourceDoc
from cnnspec.spec.sections import RATE_SCALE

if TYPE_CHECKING:  # the search section's module loads only for specs that have one
    from cnnspec.spec.search import SearchSpace


@dataclass
class CompiledSpec:
    """A spec that passed the front end: its document, IR and warnings."""

    doc: SourceDoc
    ir: ModelIR
    warnings: list[Diagnostic] = field(default_factory=list)
    path: Path | None = None
    #: The checked ``search:`` section (a :class:`~cnnspec.spec.search.SearchSpace`), if any.
    search: SearchSpace | None = None
    #: The command-line options this compilation needed besides ``--set`` (``--allow-outside``,
    #: ``--max-params N``): a printed command that compiles the spec again repeats them.
    options: tuple[str, ...] = ()
    #: The resolved.yaml of a run that has trained, compiled again by the commands that read the
    #: run (evaluate, predict, report …, :func:`cnnspec.reporting.run.run_spec`): the checks only
    #: training needs (``training.class_weight``'s keys) are not made. A run trained before such a
    #: check existed stays usable; validate, train, ``--resume`` and codegen still refuse the spec.
    finished_run: bool = False
    #: The ``--set`` overrides it was compiled with, in order: generated code's header names
    #: them (the code is the overridden spec's), as ``cnnspec codegen --set`` writes it.
    overrides: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.ir.name

    @property
    def data(self) -> dict[str, Any]:
        """A copy of the ``data`` section (a deep one: changing it changes nothing compiled)."""
        return copy.deepcopy(dict(self.doc.data.get("data") or {}))

    @property
    def training(self) -> dict[str, Any]:
        """A copy of the ``training`` section (deep: a nested value changed in it changed the
        spec's hash and its generated script)."""
        return copy.deepcopy(dict(self.doc.data.get("training") or {}))

    @property
    def runtime(self) -> dict[str, Any]:
        """A copy of the ``runtime`` section (deep, as :attr:`training`)."""
        return copy.deepcopy(dict(self.doc.data.get("runtime") or {}))

    @property
    def resolved(self) -> dict[str, Any]:
        """The fully composed spec (extends, use and --set applied) as plain data, with the
        parameters each layer item takes from per-kind ``defaults:`` written into the item, so
        a run's ``resolved.yaml`` shows the effective values (the ``defaults:`` sections stay, for
        where they came from). Items of blocks no call reached are left as written."""
        if not self.ir.defaulted:
            return self.doc.data
        return with_defaults(self.doc.data, self.ir.defaulted)

    def spec_hash(self) -> str:
        """SHA-256 of the composed spec; equal specs give equal hashes."""
        import hashlib
        import json

        text = json.dumps(self.doc.data, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def freezes_in_training(self) -> bool:
        """Whether training freezes or unfreezes layers beyond the items' own ``trainable``
        (``training.freeze``/``unfreeze``, phases): the built model's flags are then not those
        training starts with (:meth:`summary` counts the latter)."""
        training = self.training
        return any(key in training for key in ("freeze", "unfreeze", "phases"))

    def frozen_at_start(self) -> frozenset[str]:
        """The layers frozen when training starts (those :meth:`summary` counts as frozen):
        the items' ``trainable: false``, then ``training.freeze``/``unfreeze`` and the first
        phase's."""
        if not self.freezes_in_training:
            return frozenset(node.name for node in self.ir.nodes if not node.trainable)
        from cnnspec.analysis.settings import training_config

        return frozenset(training_config(self).phases[0].frozen)

    def summary(self) -> dict[str, Any]:
        """The inspect document; frozen layers are those frozen when training starts
        (``trainable: false``, then ``training.freeze``/``unfreeze`` and the first phase's),
        and so are the layer-wise learning rates (the first phase's ``learning_rate_scale``)."""
        if not self.freezes_in_training and RATE_SCALE not in self.training:
            return summary(self.ir)
        from cnnspec.analysis.settings import training_config

        first = training_config(self).phases[0]
        return summary(self.ir, first.frozen, dict(first.rate_scale))


def with_defaults(data: dict[str, Any], defaulted: dict[SpecPath, dict[str, Any]]) -> dict[str, Any]:
    """A copy of ``data`` where each layer item at a path of ``defaulted`` (the path of its kind
    key) also writes the parameters it took from ``defaults:``: after those it wrote itself; a
    one-value item (``- dropout: 0.2``) becomes a mapping with the kind's main parameter."""
    out = _copy(data)
    for path, params in defaulted.items():
        parent: Any = out
        for key in path[:-2]:
            try:
                parent = parent[key]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        kind = REGISTRY.get(path[-1]) if isinstance(path[-1], str) else None
        if not isinstance(parent, (dict, list)) or kind is None or len(path) < 2:
            continue
        try:
            item = parent[path[-2]]
        except (KeyError, IndexError, TypeError):
            continue
        if item == path[-1]:  # a bare `- batch_norm`
            item = parent[path[-2]] = {path[-1]: None}
        if not isinstance(item, dict) or path[-1] not in item:
            continue
        body = item[path[-1]]
        if body is None:
            body = {}
        elif not isinstance(body, dict):
            if kind.main is None:
                continue
            body = {kind.main: body}
        item[path[-1]] = {**body, **{p: v for p, v in params.items() if p not in body}}
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
