"""`cnnspec schema` — print, write or check the JSON Schema generated from the registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cnnspec.cli.common import EXIT_SPEC, guarded, stderr, stdout


def schema_text() -> str:
    from cnnspec.spec.schema import json_schema

    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


@guarded
def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write the schema to this file")
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="exit 1 if the committed schema is stale")] = False,
    kinds: Annotated[bool, typer.Option("--kinds", help="list the layer kinds instead")] = False,
) -> None:
    """Generate the spec's JSON Schema (Draft 2020-12) from the layer registry."""
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
    text = schema_text()
    if check:
        from cnnspec.resources import schema_file

        committed = schema_file().read_text(encoding="utf-8")
        if committed != text:
            stderr().print(
                "[red]schemas/cnnspec.schema.json is stale[/red]; run `cnnspec schema -o "
                "schemas/cnnspec.schema.json`",
                highlight=False,
            )
            raise typer.Exit(EXIT_SPEC)
        stdout().print("schema is up to date")
        return
    if output is not None:
        from cnnspec.fileio import write_atomic

        write_atomic(output, text)
        stdout().print(f"wrote {output}")
        return
    typer.echo(text, nl=False)
