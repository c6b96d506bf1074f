"""The zoo's catalogue: every variant compiled statically (no TensorFlow), for ``cnnspec zoo``,
``docs/zoo.md`` and the tests that keep both honest.

Compiling all of the zoo takes about a second of CPU, so ``make docs`` also writes the
catalogue to ``cnnspec/zoo/catalog.json`` with a hash of every zoo file it was computed from:
``cnnspec zoo`` reads it while the hash still matches (and compiles otherwise), and
``tests/test_docs.py`` fails when the committed file differs from what compiling gives now.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnspec.analysis.input_size import smallest_square_side
from cnnspec.analysis.passes import compile_spec
from cnnspec.resources import zoo_dir
from cnnspec.spec import backbone
from cnnspec.spec.compose import load_spec
from cnnspec.spec.zoo import variants

INDEX = "catalog.json"


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
    #: The smallest square side whose input every shape check of the model passes (with its
    #: default vars; :func:`cnnspec.analysis.input_size.smallest_square_side`), or ``None``.
    min_side: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The ``cnnspec zoo --format json`` record."""
        return {
            "name": self.name,
            "family": self.family,
            "keras_name": self.keras_name,
            "params": self.params,
            "macs": self.macs,
            "input_shape": list(self.input_shape),
            "min_input_shape": self.min_input_shape(),
            "spec": str(self.spec),
        }

    def min_input_shape(self) -> list[int] | None:
        """The smallest square input the model accepts, as ``[side, side, channels]``."""
        return None if self.min_side is None else [self.min_side, self.min_side, self.input_shape[-1]]


def compile_catalog() -> list[ZooEntry]:
    """Every variant of the zoo, in file order then table order, compiled with default vars."""
    entries = []
    for name, variant in variants().items():
        compiled = compile_spec(f"zoo:{name}")
        ir, channels = compiled.ir, compiled.ir.input_shape[-1]
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
                smallest_square_side(compiled.doc, channels, 0, allow_outside=False),
            )
        )
    return entries


def cut_points(name: str) -> list[str]:
    """Where a backbone's ``until:`` can cut the zoo model ``name``
    (:func:`cnnspec.spec.backbone.cut_points`)."""
    return backbone.cut_points(load_spec(f"zoo:{name}", ()))


def sources_hash() -> str:
    """SHA-256 over every YAML file of the zoo (names and texts): what the catalogue depends on."""
    digest = hashlib.sha256()
    root = zoo_dir()
    for path in sorted(root.rglob("*.yaml")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def index_text(entries: list[ZooEntry]) -> str:
    """The text of ``catalog.json`` for ``entries``."""
    root = zoo_dir()
    rows = [
        {
            **entry.as_json(),
            "spec": entry.spec.relative_to(root).as_posix(),
            "layers": entry.layers,
            "trainable_params": entry.trainable_params,
        }
        for entry in entries
    ]
    return json.dumps({"sources_sha256": sources_hash(), "variants": rows}, indent=1) + "\n"


def _from_index() -> list[ZooEntry] | None:
    """The committed catalogue, or ``None`` when it is missing or older than the zoo's files."""
    path = zoo_dir() / INDEX
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("sources_sha256") != sources_hash():
        return None
    try:
        return [
            ZooEntry(
                row["name"],
                row["family"],
                row["keras_name"],
                row["params"],
                row["trainable_params"],
                row["macs"],
                row["layers"],
                tuple(row["input_shape"]),
                zoo_dir() / row["spec"],
                row["min_input_shape"][0] if row["min_input_shape"] else None,
            )
            for row in data["variants"]
        ]
    except (KeyError, TypeError):
        return None


def catalog() -> list[ZooEntry]:
    """Every variant of the zoo with its figures: from ``catalog.json`` while it matches the zoo's
    files, else compiled now."""
    return _from_index() or compile_catalog()
