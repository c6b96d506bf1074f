"""Package resources (the JSON Schema, the Jinja templates), found the same way from a wheel
or an editable install: through ``importlib.resources``."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable


def schema_file() -> Traversable:
    """The committed ``schemas/cnnspec.schema.json``."""
    return resources.files("cnnspec.schemas").joinpath("cnnspec.schema.json")


def templates_dir() -> Traversable:
    """The folder of Jinja templates used by the code emitter."""
    return resources.files("cnnspec.templates")
