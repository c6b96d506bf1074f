"""Package resources (the JSON Schema, the Jinja templates, the model zoo), found the same way from a wheel
or an editable install: through ``importlib.resources``."""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable


def schema_file(name: str = "cnnspec.schema.json") -> Traversable:
    """A committed schema: ``cnnspec.schema.json`` (specs) or ``cnnspec-blocks.schema.json``."""
    from importlib import resources  # here: importing it (and tempfile, zipfile) is ~5 ms

    return resources.files("cnnspec.schemas").joinpath(name)


def templates_dir() -> Traversable:
    """The folder of Jinja templates used by the code emitter."""
    from importlib import resources

    return resources.files("cnnspec.templates")


@functools.cache  # the package does not move while the process runs; every zoo reference asks
def zoo_dir() -> Path:
    """The packaged model zoo (``cnnspec/zoo``): family specs and ``blocks/`` libraries.

    A real folder in both editable and wheel installs (the wheel is unpacked, never imported
    from a zip), so the spec loader reads its files like any other and locates errors in them.
    A regular package's folder is its ``__file__``'s, which is what ``importlib.resources``
    answers for one; asking the module is cheaper for a cold ``cnnspec validate``."""
    module = importlib.import_module("cnnspec.zoo")
    if module.__file__ is not None:
        return Path(module.__file__).parent
    from importlib import resources

    return Path(str(resources.files("cnnspec.zoo")))
