"""`cnnspec validate FILE...` — check specs without building anything (no TensorFlow)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NamedTuple

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
from cnnspec.cli.forked import auto_jobs, ordered_map
from cnnspec.cli.render import OutputFormat, clean, safe
from cnnspec.errors import Diagnostic, SpecError

if TYPE_CHECKING:  # Rich is imported only where it prints (cli.common.plain_stdout)
    from rich.console import Console


class Checked(NamedTuple):
    """What checking one file gave: its diagnostics (errors, or warnings when it compiled) and,
    when it compiled, its one-line summary. A worker process sends it as JSON."""

    diagnostics: list[Diagnostic]
    summary: str | None

    def encode(self) -> bytes:
        return json.dumps([[d.to_json() for d in self.diagnostics], self.summary]).encode()

    @classmethod
    def decode(cls, data: bytes) -> Checked:
        diagnostics, summary = json.loads(data)
        return cls([Diagnostic.from_json(d) for d in diagnostics], summary)


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
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=0,
            help="processes that share the files (0: one per CPU core, at most one per two files)",
        ),
    ] = 0,
) -> None:
    """Validate spec files: schema, semantics and shapes. Exit 1 if any has an error."""
    from cnnspec.analysis.passes import compile_spec

    def check(file: Path) -> Checked:
        try:
            compiled = compile_spec(file, set or [], allow_outside=allow_outside, max_params=max_params)
        except SpecError as exc:
            return Checked(list(exc.diagnostics), None)
        totals = compiled.ir.totals
        summary = f"{compiled.name} — {len(compiled.ir.nodes)} layers, {totals.params:,} parameters"
        return Checked(list(compiled.warnings), summary)

    found: list[Diagnostic] = []
    failed = 0
    # Where Rich would print the text as is, it is not imported (issue 15: a cold validate).
    plain = plain_stdout()
    console = None if plain else stdout()
    workers = jobs if jobs > 0 else auto_jobs(len(files))
    results = ordered_map(check, files, workers, Checked.encode, Checked.decode)
    for file, checked in zip(files, results, strict=True):
        found.extend(checked.diagnostics)
        refused = strict and checked.summary is not None and bool(checked.diagnostics)
        if checked.summary is None or refused:
            failed += 1
        if format != OutputFormat.text:
            continue
        report(checked.diagnostics, "text")
        if refused:
            count = len(checked.diagnostics)
            report_strict(file, count, console)
            continue
        if checked.summary is None:
            continue
        if console is None:
            typer.echo(f"ok {clean(file)}: {checked.summary}")
        else:
            console.print(
                f"[green]ok[/green] {safe(file)}: {checked.summary}",
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


def report_strict(file: Path, warnings: int, console: Console | None) -> None:
    """The line that says why a file that compiled fails: ``--strict`` and its warnings (in
    place of the ``ok`` line it would otherwise get)."""
    text = f"{warnings} warning{'s' if warnings != 1 else ''}, which --strict treats as errors"
    if console is None:
        typer.echo(f"failed {clean(file)}: {text}")
    else:
        console.print(f"[red]failed[/red] {safe(file)}: {text}", highlight=False, soft_wrap=True)
