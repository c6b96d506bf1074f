"""What a weight transfer is made of: a source's layers as read (:class:`SourceLayers`), the plan of
which source array goes into which model weight (:class:`TransferPlan`), and each model weight
left out with its reason (:class:`Skip`). :mod:`cnnspec.training.transfer` makes the plans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SourceLayers:
    """What a source holds: (layer name, [(weight name, array)]) in file order. ``by_name``:
    match by layer name; else by position among layers with weights."""

    layers: list[tuple[str, list[tuple[str, Any]]]]
    by_name: bool
    #: Each layer's group in the file, by layer name (Keras 3 names it after the layer's
    #: class: ``conv2d``, ``conv2d_1`` …): what a bare ``.weights.h5`` keeps of the layer's kind.
    groups: dict[str, str] = field(default_factory=dict)
    #: Each layer's entry in a ``.keras`` archive's config.json (``class_name``, ``config``,
    #: ``build_config``), by layer name: its class and the settings its variables follow from.
    configs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Skip:
    """One model weight that was not loaded, and why. ``index``: the weight's position in its
    layer (:func:`~cnnspec.training.transfer.ordered_weights`), which identifies it with
    ``layer`` (names may repeat)."""

    layer: str
    weight: str
    reason: str
    index: int = 0

    def as_json(self) -> dict[str, str]:
        return {"layer": self.layer, "weight": self.weight, "reason": self.reason}


@dataclass
class TransferPlan:
    """Which source array goes into which model weight (not yet assigned), and the report."""

    source: str
    scope: str = ""
    #: The tensors this source answers for: those it loads, and those it does not that no
    #: earlier source (a backbone's) loaded either (``skipped``); ``loaded + len(skipped)``.
    total: int = 0
    assign: list[tuple[str, int, Any]] = field(default_factory=list)  # (layer, weight index, array)
    skipped: list[Skip] = field(default_factory=list)
    unused: int = 0  # source tensors nothing in the model took
    #: The model's tensors this source did not load that an earlier source (a backbone's own,
    #: loaded before the whole model's) did: left to that one, neither skipped nor counted here.
    covered: int = 0
    #: The source's layers nothing in the model took, by name (for the report: which were left).
    unused_layers: list[str] = field(default_factory=list)
    #: The source's layers the model took some tensors of but not all, each with how many of
    #: its tensors were left (``dense_2`` whose bias fits and kernel does not): the unused
    #: count holds them, and the list named only the layers left whole.
    partly_unused: list[tuple[str, int, int]] = field(default_factory=list)
    #: The file read (a run folder's model.keras, keras.applications' cached file for
    #: ``imagenet``) and the SHA-256 of its bytes: which weights exactly a run started from.
    file: str | None = None
    sha256: str | None = None

    @property
    def loaded(self) -> int:
        return len(self.assign)

    def as_json(self) -> dict[str, Any]:
        """The record transfer.json keeps (agreed keys first)."""
        out: dict[str, Any] = {
            "source": self.source,
            "loaded": self.loaded,
            "total": self.total,
            "skipped": [s.as_json() for s in self.skipped],
        }
        if self.scope:
            out["scope"] = self.scope
        out["unused_source_tensors"] = self.unused
        if self.covered:
            out["loaded_from_other_sources"] = self.covered
        if self.unused_layers:
            out["unused_source_layers"] = self.unused_layers
        if self.partly_unused:
            out["partly_unused_source_layers"] = [
                {"layer": name, "unused": left, "tensors": held} for name, left, held in self.partly_unused
            ]
        if self.file is not None:
            out["file"], out["sha256"] = self.file, self.sha256
        return out

    def file_record(self) -> dict[str, Any]:
        """What lock.json's ``weights_files`` keeps of this load
        (:func:`~cnnspec.training.transfer_loads.check_unchanged`)."""
        return {"scope": self.scope, "source": self.source, "file": self.file, "sha256": self.sha256}

    def lines(self) -> list[str]:
        """The printed report: ``loaded N of M weight tensors`` and one line per skipped one."""
        where = f" into {self.scope}" if self.scope else ""
        head = f"loaded {self.loaded} of {self.total} weight tensors{where} from {self.source}"
        if self.covered:
            head += f" ({self.covered} more were loaded from the backbones' sources)"
        if self.unused:
            partly = [f"{name} ({left} of its {held})" for name, left, held in self.partly_unused]
            left = listed([*self.unused_layers, *partly])
            head += f" ({self.unused} tensors of the source unused{': ' + left if left else ''})"
        return [head, *(f"  skipped {s.layer}/{s.weight}: {s.reason}" for s in self.skipped)]


def listed(names: list[str], shown: int = 3) -> str:
    """``a, b, c, … (7 in all)``: the first few names of a list for a message."""
    head = ", ".join(names[:shown])
    return head + (f", … ({len(names)} in all)" if len(names) > shown else "")
