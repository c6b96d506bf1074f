"""Package resources (the JSON Schema, the Jinja templates), found the same way from a wheel
or an editable install: through ``importlib.resources``."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable


def schema_file(name: str = "cnnspec.schema.json") -> Traversable:
    """A committed schema: ``cnnspec.schema.json`` (specs) or ``cnnspec-blocks.schema.json``."""
    return resources.files("cnnspec.schemas").joinpath(name)


def templates_dir() -> Traversable:
    """The folder of Jinja templates used by the code emitter."""
    return resources.files("cnnspec.templates")
