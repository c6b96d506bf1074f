"""The `cnnspec` Typer application: joins the per-command modules.

Command modules import only light dependencies at import time, so `cnnspec validate`,
`inspect` and `schema` never load TensorFlow. A command line that names one command imports
only that command's module (:func:`main`): a cold `cnnspec validate` does not pay for building
the other sixteen commands and what their modules import (issue 15's validate time).
"""

from __future__ import annotations

import gc
import importlib
import inspect
import sys
from typing import Any

import typer

from cnnspec.version import __version__

#: Every command: its name on the command line → (module, function). Help and completion
#: list them in this order.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("cnnspec.cli.validate", "validate"),
    "inspect": ("cnnspec.cli.inspect", "inspect"),
    "schema": ("cnnspec.cli.schema", "schema"),
    "build": ("cnnspec.cli.build", "build"),
    "train": ("cnnspec.cli.train", "train"),
    "evaluate": ("cnnspec.cli.evaluate", "evaluate"),
    "visualize": ("cnnspec.cli.visualize", "visualize"),
    "predict": ("cnnspec.cli.predict", "predict"),
    "report": ("cnnspec.cli.report", "report"),
    "export": ("cnnspec.cli.export", "export"),
    "benchmark": ("cnnspec.cli.benchmark", "benchmark"),
    "codegen": ("cnnspec.cli.codegen", "codegen"),
    "zoo": ("cnnspec.cli.zoo", "zoo"),
    "search": ("cnnspec.cli.search", "search"),
    "runs": ("cnnspec.cli.runs", "runs"),
    "lsp": ("cnnspec.cli.lsp", "lsp"),
    "import": ("cnnspec.cli.import_", "import_"),
}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cnnspec {__version__}")
        raise typer.Exit()


def main_options(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version"
    ),
) -> None:
    """Validate, inspect, build and generate code for CNN specs."""


def build_app(only: str | None = None) -> typer.Typer:
    """The application with every command, or with command ``only`` alone (what a command
    line naming it needs: the group and its options are the same)."""
    built = typer.Typer(
        name="cnnspec",
        help="A declarative compiler for convolutional neural networks.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    built.callback()(main_options)
    for name, (module, function) in COMMANDS.items():
        if only is None or name == only:
            command = getattr(importlib.import_module(module), function)
            built.command(name=name if name == "import" else None, help=flowed(command.__doc__))(command)
    return built


def flowed(doc: str | None) -> str | None:
    """A command's docstring with each paragraph's lines joined. Typer's Rich help keeps a
    paragraph's line breaks, so the source's wrapping (about 95 columns) would show as ragged
    lines in a narrower terminal; Rich wraps the joined text to the terminal's width. A
    paragraph that is a list (a line starting with ``- `` or ``* ``) keeps its lines."""
    if doc is None:
        return None
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(
        paragraph
        if any(line.lstrip().startswith(("- ", "* ")) for line in paragraph.splitlines())
        else " ".join(line.strip() for line in paragraph.splitlines())
        for paragraph in paragraphs
    )


_APP: typer.Typer | None = None


def __getattr__(name: str) -> Any:
    # `app` (every command) is built on first use: tests and `from cnnspec.cli.app import app`.
    global _APP
    if name == "app":
        if _APP is None:
            _APP = build_app()
        return _APP
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _command_named(argv: list[str]) -> str | None:
    """The command a command line names, when it is the first argument (the group's only
    option, ``--version``, ends the program before any command runs, and help lists all)."""
    return argv[0] if argv and argv[0] in COMMANDS else None


#: The cycle collector's generation-0 threshold in a CLI process (Python's default: 700). A
#: command allocates tens of thousands of small objects that live until it ends (the spec tree,
#: the IR, imported modules); at 700 the collector scans them thousands of times (~10 % of a
#: cold zoo validate, issue 15). Library users of cnnspec keep Python's settings.
GC_THRESHOLD = 20_000


def main() -> None:
    """The ``cnnspec`` console script."""
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    only = _command_named(sys.argv[1:])
    built = build_app(only) if only is not None else build_app()
    # What is imported by now (Typer, Click, PyYAML, the command's modules) lives until the
    # process ends: frozen, the collector's full collections and its last one at exit do not
    # scan it again (~2 % of a cold zoo validate, issue 15).
    gc.freeze()
    built()
