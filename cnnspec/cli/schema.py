"""`cnnspec schema` — print, write or check the JSON Schema generated from the registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cnnspec.cli.common import EXIT_SPEC, guarded, stderr, stdout
from cnnspec.cli.render import safe

SCHEMA_FILES = {"spec": "cnnspec.schema.json", "library": "cnnspec-blocks.schema.json"}


def schema_text(which: str = "spec") -> str:
    """The generated schema of a spec (``spec``) or of a block library (``library``)."""
    from cnnspec.spec.schema import block_library_schema, json_schema

    schema = block_library_schema() if which == "library" else json_schema()
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


@guarded
def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write the schema to this file")
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="exit 1 if the committed schema is stale")] = False,
    kinds: Annotated[bool, typer.Option("--kinds", help="list the layer kinds instead")] = False,
    library: Annotated[
        bool, typer.Option("--library", help="the schema of block libraries (files imported with `use:`)")
    ] = False,
) -> None:
    """Generate the spec's JSON Schema (Draft 2020-12) from the layer registry."""
    refuse_combinations(output=output is not None, check=check, kinds=kinds, library=library)
    if kinds:
        from cnnspec.layers.registry import REGISTRY

        table = Table(title="layer kinds")
        for column in ("kind", "family", "Keras class", "shorthand", "parameters"):
            table.add_column(column)
        for kind in REGISTRY.values():
            params = ", ".join(p.name + ("" if p.required else "?") for p in kind.params)
            table.add_row(kind.name, kind.family, kind.keras_class, kind.main or "", params)
        stdout().print(table)
        return
    which = "library" if library else "spec"
    text = schema_text(which)
    if check:
        from cnnspec.resources import schema_file

        name = SCHEMA_FILES[which]
        if schema_file(name).read_text(encoding="utf-8") != text:
            flag = " --library" if library else ""
            stderr().print(
                f"[red]schemas/{name} is stale[/red]; run `cnnspec schema{flag} -o schemas/{name}`",
                highlight=False,
            )
            raise typer.Exit(EXIT_SPEC)
        stdout().print(f"schemas/{name} is up to date")
        return
    if output is not None:
        from cnnspec.fileio import check_writable, write_atomic

        check_writable(output, option="-o", folder=False)
        write_atomic(output, text)
        stdout().print(f"wrote {safe(output)}")
        return
    typer.echo(text, nl=False)


def refuse_combinations(**given: bool) -> None:
    """A usage error for options that would be ignored: ``--kinds`` prints a table (no schema
    to write, check or choose), ``--check`` compares with the committed file (nothing written)."""
    from cnnspec.errors import UsageError

    flags = {"output": "-o", "check": "--check", "kinds": "--kinds", "library": "--library"}
    ignored = {"kinds": ("output", "check", "library"), "check": ("output",)}
    for option, others in ignored.items():
        clash = [flags[other] for other in others if given[option] and given[other]]
        if clash:
            raise UsageError(
                f"{flags[option]} cannot be combined with {' or '.join(clash)}",
                "run them as separate commands",
            )
