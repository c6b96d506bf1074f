""":class:`CompiledSpec`: what the front end hands every later stage (no TensorFlow).

It sits below the back ends, training and reporting, which all read it, and below the facade
:mod:`cnnspec.api`, which re-exports it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnspec.analysis.report import summary
from cnnspec.errors import Diagnostic
from cnnspec.ir import ModelIR
from cnnspec.spec.loader import SourceDoc
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

    @property
    def name(self) -> str:
        return self.ir.name

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.doc.data.get("data") or {})

    @property
    def training(self) -> dict[str, Any]:
        return dict(self.doc.data.get("training") or {})

    @property
    def runtime(self) -> dict[str, Any]:
        return dict(self.doc.data.get("runtime") or {})

    @property
    def resolved(self) -> dict[str, Any]:
        """The fully composed spec (extends, use and --set applied) as plain data."""
        return self.doc.data

    def spec_hash(self) -> str:
        """SHA-256 of the composed spec; equal specs give equal hashes."""
        text = json.dumps(self.doc.data, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def summary(self) -> dict[str, Any]:
        """The inspect document; frozen layers are those frozen when training starts
        (``trainable: false``, then ``training.freeze``/``unfreeze`` and the first phase's)."""
        training = self.training
        if not any(key in training for key in ("freeze", "unfreeze", "phases")):
            return summary(self.ir)
        from cnnspec.analysis.settings import training_config

        return summary(self.ir, training_config(self).phases[0].frozen)
