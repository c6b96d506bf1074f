"""Package resources (the JSON Schema, the Jinja templates, the model zoo), found the same way from a wheel
or an editable install: through ``importlib.resources``."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path


def schema_file(name: str = "cnnspec.schema.json") -> Traversable:
    """A committed schema: ``cnnspec.schema.json`` (specs) or ``cnnspec-blocks.schema.json``."""
    return resources.files("cnnspec.schemas").joinpath(name)


def templates_dir() -> Traversable:
    """The folder of Jinja templates used by the code emitter."""
    return resources.files("cnnspec.templates")


def zoo_dir() -> Path:
    """The packaged model zoo (``cnnspec/zoo``): family specs and ``blocks/`` libraries.

    A real folder in both editable and wheel installs (the wheel is unpacked, never imported
    from a zip), so the spec loader reads its files like any other and locates errors in them."""
    return Path(str(resources.files("cnnspec.zoo")))
