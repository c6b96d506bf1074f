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
    report,
    stdout,
)
from cnnspec.cli.render import OutputFormat, safe
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
    console = stdout()
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
            console.print(
                f"[green]ok[/green] {safe(file)}: {compiled.name} — {len(compiled.ir.nodes)} layers, "
                f"{totals.params:,} parameters",
                highlight=False,
                soft_wrap=True,  # one line per file, however long its path
            )
    if format != OutputFormat.text:
        report(found, format.value)
    if failed:
        if format == OutputFormat.text and len(files) > 1:
            console.print(f"[red]{failed} of {len(files)} files failed[/red]", highlight=False)
        raise typer.Exit(EXIT_SPEC)
