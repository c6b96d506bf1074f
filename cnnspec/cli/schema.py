"""`cnnspec schema` — print, write or check the JSON Schema generated from the registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cnnspec.cli.common import EXIT_SPEC, echo, file_output, guarded, stderr, stdout
from cnnspec.cli.render import safe

SCHEMA_FILES = {"spec": "cnnspec.schema.json", "library": "cnnspec-blocks.schema.json"}


def is_schema_file(path: Path) -> bool:
    """Whether the file at ``path`` is a schema ``cnnspec schema`` wrote: a JSON object whose
    ``$id`` (one of its first top-level keys, within the first few KB) is the spec's or the
    block library's schema id. ``False`` for anything else (a spec, a file that can't be read)."""
    from cnnspec.fileio import read_head
    from cnnspec.spec.schema import LIBRARY_SCHEMA_ID, SCHEMA_ID

    head = read_head(path)
    if head is None:
        return False
    text = head.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    # the head of a long schema is not a whole document: read its leading top-level members
    # one at a time ("{", then "key": value, …) and stop at the first that is cut off
    index = _skip(text, 0)
    if not text.startswith("{", index):
        return False
    index += 1
    while True:
        try:
            key, index = decoder.raw_decode(text, _skip(text, index))
            index = _skip(text, index)
            if not isinstance(key, str) or not text.startswith(":", index):
                return False
            value, index = decoder.raw_decode(text, _skip(text, index + 1))
        except json.JSONDecodeError:
            return False
        if key == "$id":
            return value in (SCHEMA_ID, LIBRARY_SCHEMA_ID)
        index = _skip(text, index)
        if not text.startswith(",", index):
            return False
        index += 1


def _skip(text: str, index: int) -> int:
    """The index of the first character at or after ``index`` that is not JSON white space."""
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def schema_text(which: str = "spec") -> str:
    """The generated schema of a spec (``spec``) or of a block library (``library``)."""
    from cnnspec.spec.schema import block_library_schema, json_schema

    schema = block_library_schema() if which == "library" else json_schema()
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


@guarded
def schema(
    out: Annotated[  # text: Typer's Path drops the trailing slash of `-o new_folder/`
        str | None,
        typer.Option(
            "--output",
            "--out",
            "-o",
            metavar="<path>",
            help="write the schema to this file (default, or -: print it)",
        ),
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="exit 1 if the committed schema is stale")] = False,
    kinds: Annotated[bool, typer.Option("--kinds", help="list the layer kinds instead")] = False,
    library: Annotated[
        bool, typer.Option("--library", help="the schema of block libraries (files imported with `use:`)")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="replace an existing -o file that cnnspec did not write")
    ] = False,
) -> None:
    """Generate the spec's JSON Schema (Draft 2020-12) from the layer registry.

    An existing -o file is replaced only when it is a schema cnnspec wrote, or with --force."""
    output = file_output(out, "cnnspec.schema.json")
    refuse_combinations(output=output is not None, check=check, kinds=kinds, library=library)
    if output is None:
        from cnnspec.cli.outputs import refuse_idle_force

        doing = "prints the schema"
        if kinds or check:
            doing = "lists the kinds" if kinds else "compares with the committed file"
        refuse_idle_force(force, "-o", doing)
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
    if output is not None:  # (refuse_combinations: never with --check) before the schema is made
        from cnnspec.cli.outputs import refuse_foreign
        from cnnspec.fileio import check_writable

        check_writable(output, option="-o", folder=False)
        refuse_foreign(output, "-o", force, is_schema_file)  # a spec named by mistake is kept
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
        from cnnspec.fileio import write_atomic

        write_atomic(output, text)
        stdout().print(f"wrote {safe(output)}")
        return
    echo(text, nl=False)


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
