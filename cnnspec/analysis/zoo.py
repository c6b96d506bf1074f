"""The zoo's catalogue: every variant compiled statically (no TensorFlow), for ``cnnspec zoo``,
``docs/zoo.md`` and the tests that keep both honest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnspec.analysis.passes import compile_spec
from cnnspec.spec.zoo import variants


@dataclass(frozen=True)
class ZooEntry:
    """One variant of the zoo with the figures its spec compiles to."""

    name: str
    family: str
    keras_name: str
    params: int
    trainable_params: int
    macs: int
    layers: int
    input_shape: tuple[int, ...]
    spec: Path

    def as_json(self) -> dict[str, Any]:
        """The ``cnnspec zoo --format json`` record."""
        return {
            "name": self.name,
            "family": self.family,
            "keras_name": self.keras_name,
            "params": self.params,
            "macs": self.macs,
            "input_shape": list(self.input_shape),
            "spec": str(self.spec),
        }


def catalog() -> list[ZooEntry]:
    """Every variant of the zoo, in file order then table order, with its default vars."""
    entries = []
    for name, variant in variants().items():
        ir = compile_spec(f"zoo:{name}").ir
        entries.append(
            ZooEntry(
                name,
                variant.family,
                variant.keras_name,
                ir.totals.params,
                ir.totals.trainable,
                ir.totals.macs,
                len(ir.nodes),
                tuple(ir.input_shape),
                variant.file,
            )
        )
    return entries
