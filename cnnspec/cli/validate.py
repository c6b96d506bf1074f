"""`cnnspec validate FILE...` — check specs without building anything (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cnnspec.cli.common import (
    DEFAULT_MAX_PARAMS,
    EXIT_SPEC,
    AllowOutsideOption,
    MaxParamsOption,
    SetOption,
    guarded,
    plain_stdout,
    report,
    stdout,
)
from cnnspec.cli.render import OutputFormat, clean, safe
from cnnspec.errors import Diagnostic, SpecError


@guarded
def validate(
    files: Annotated[list[Path], typer.Argument(help="spec files to check", show_default=False)],
    format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="text, json or github")
    ] = OutputFormat.text,
    set: SetOption = None,
    strict: Annotated[bool, typer.Option("--strict", help="treat warnings as errors")] = False,
    allow_outside: AllowOutsideOption = False,
    max_params: MaxParamsOption = DEFAULT_MAX_PARAMS,
) -> None:
    """Validate spec files: schema, semantics and shapes. Exit 1 if any has an error."""
    from cnnspec.analysis.passes import compile_spec

    found: list[Diagnostic] = []
    failed = 0
    # Where Rich would print the text as is, it is not imported (issue 15: a cold validate).
    plain = plain_stdout()
    console = None if plain else stdout()
    for file in files:
        try:
            compiled = compile_spec(file, set or [], allow_outside=allow_outside, max_params=max_params)
        except SpecError as exc:
            found.extend(exc.diagnostics)
            failed += 1
            if format == OutputFormat.text:
                report(exc.diagnostics, "text")
            continue
        found.extend(compiled.warnings)
        if strict and compiled.warnings:
            failed += 1
        if format == OutputFormat.text:
            report(compiled.warnings, "text")
            totals = compiled.ir.totals
            summary = f"{compiled.name} — {len(compiled.ir.nodes)} layers, {totals.params:,} parameters"
            if console is None:
                typer.echo(f"ok {clean(file)}: {summary}")
            else:
                console.print(
                    f"[green]ok[/green] {safe(file)}: {summary}",
                    highlight=False,
                    soft_wrap=True,  # one line per file, however long its path
                    emoji=False,  # a `:name:` in a file name stays as written
                )
    if format != OutputFormat.text:
        report(found, format.value)
    if failed:
        if format == OutputFormat.text and len(files) > 1:
            if console is None:
                typer.echo(f"{failed} of {len(files)} files failed")
            else:
                console.print(f"[red]{failed} of {len(files)} files failed[/red]", highlight=False)
        raise typer.Exit(EXIT_SPEC)
