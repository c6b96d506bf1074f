"""The `cnnspec` Typer application: joins the per-command modules.

Command modules import only light dependencies at import time, so `cnnspec validate`,
`inspect` and `schema` never load TensorFlow.
"""

from __future__ import annotations

import typer

from cnnspec.cli.benchmark import benchmark
from cnnspec.cli.build import build
from cnnspec.cli.codegen import codegen
from cnnspec.cli.evaluate import evaluate
from cnnspec.cli.export import export
from cnnspec.cli.import_ import import_
from cnnspec.cli.inspect import inspect
from cnnspec.cli.lsp import lsp
from cnnspec.cli.predict import predict
from cnnspec.cli.report import report
from cnnspec.cli.runs import runs
from cnnspec.cli.schema import schema
from cnnspec.cli.search import search
from cnnspec.cli.train import train
from cnnspec.cli.validate import validate
from cnnspec.cli.visualize import visualize
from cnnspec.cli.zoo import zoo
from cnnspec.version import __version__

app = typer.Typer(
    name="cnnspec",
    help="A declarative compiler for convolutional neural networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cnnspec {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version"
    ),
) -> None:
    """Validate, inspect, build and generate code for CNN specs."""


app.command()(validate)
app.command()(inspect)
app.command()(schema)
app.command()(build)
app.command()(train)
app.command()(evaluate)
app.command()(visualize)
app.command()(predict)
app.command()(report)
app.command()(export)
app.command()(benchmark)
app.command()(codegen)
app.command()(zoo)
app.command()(search)
app.command()(runs)
app.command()(lsp)
app.command(name="import")(import_)


def main() -> None:
    app()
