"""`cnnspec validate FILE...` — check specs without building anything (no TensorFlow)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NamedTuple

import typer

from cnnspec.cli.common import (
    DEFAULT_MAX_PARAMS,
    EXIT_SPEC,
    AllowOutsideOption,
    MaxParamsOption,
    SetOption,
    echo,
    given_path,
    guarded,
    plain_stdout,
    report,
    stderr,
    stdout,
)
from cnnspec.cli.forked import auto_jobs, ordered_map
from cnnspec.cli.render import OutputFormat, clean, safe
from cnnspec.errors import Diagnostic, Note, SpecError, UsageError

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
    files: Annotated[
        list[Path], typer.Argument(help="spec files to check", show_default=False, parser=given_path)
    ],
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
    fix: Annotated[
        bool,
        typer.Option(
            "--fix",
            help="first make the fixes the hints spell out (did you mean …, a missing colon) in the "
            "files, atomically, then check them",
        ),
    ] = False,
    diff: Annotated[
        bool,
        typer.Option("--diff", help="print the changes --fix would make as a unified diff; write nothing"),
    ] = False,
) -> None:
    """Validate spec files: schema, semantics and shapes, and that the weights files they start
    from are there. Exit 1 if any has an error.

    --fix makes the quick fixes of the language server in the named files first (comments and
    layout kept), --diff shows them instead (exit 1 when there are any)."""
    from cnnspec.analysis.passes import checks_weights_on_disk, compile_spec

    if fix or diff:
        if fix and diff:
            raise UsageError("expected --fix or --diff, not both", "--diff shows what --fix would write")
        changed = _fix_files(
            files, set or [], allow_outside, max_params, write=fix, text=format == OutputFormat.text
        )
        if diff:
            raise typer.Exit(EXIT_SPEC if changed else 0)

    def check(file: Path) -> Checked:
        try:
            # (the weights' files too: the check training makes before it writes anything)
            compiled = compile_spec(
                file,
                set or [],
                allow_outside=allow_outside,
                max_params=max_params,
                weights_on_disk=checks_weights_on_disk(file),
            )
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
    # each variant of a family file (whose shared part fails alike in each: said once)
    groups = [family_variants(file, allow_outside) for file in files]
    files = [target for group in groups for target in group]
    families = [index for index, group in enumerate(groups) for _ in group]
    workers = jobs if jobs > 0 else auto_jobs(len(files))
    results = ordered_map(check, files, workers, Checked.encode, Checked.decode)
    results = _variant_notes(files, families, list(results))
    said: dict[tuple[object, ...], None] = {}
    for file, family, checked in zip(files, families, results, strict=True):
        shown = _unsaid(checked.diagnostics, said, family)  # (each is said once, counted in each)
        found.extend(shown)
        refused = strict and checked.summary is not None and bool(checked.diagnostics)
        if checked.summary is None or refused:
            failed += 1
        if format != OutputFormat.text:
            continue
        report(shown, "text")
        if refused:
            count = len(checked.diagnostics)
            report_strict(file, count, console)
            continue
        if checked.summary is None:
            continue
        if console is None:
            echo(f"ok {clean(file)}: {checked.summary}")
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
            counted = "specs" if len(groups) < len(files) else "files"  # (a family's variants each)
            if console is None:
                echo(f"{failed} of {len(files)} {counted} failed")
            else:
                console.print(f"[red]{failed} of {len(files)} {counted} failed[/red]", highlight=False)
        raise typer.Exit(EXIT_SPEC)


def family_variants(file: Path, allow_outside: bool = False) -> list[Path]:
    """What checking ``file`` checks: each variant of a family file (``fam.yaml#name``, in its
    table's order), since one that compiles says nothing of the others' vars; else the file
    itself (also a file that does not load: its check says why)."""
    from cnnspec.spec.compose import load_spec
    from cnnspec.spec.loader import load_file
    from cnnspec.spec.resolve import IDENTIFIER

    if not file.is_file():  # (fam.yaml#name, a folder, a missing file)
        return [file]
    try:
        if "variants" not in load_file(file).data:
            return [file]  # one model (extending a family's variant with vars of its own: that one)
        # composed: a family that extends a family has the base's variants too
        table = load_spec(file, allow_outside=allow_outside).data.get("variants")
    except (SpecError, UsageError, OSError):
        return [file]
    if not isinstance(table, dict) or len(table) < 2:
        return [file]
    if not all(isinstance(name, str) and IDENTIFIER.fullmatch(name) for name in table):
        return [file]  # (the schema says which name is none)
    return [Path(f"{file}#{name}") for name in table]


def _variant_notes(files: list[Path], families: list[int], results: list[Checked]) -> list[Checked]:
    """``results`` with a note on each diagnostic that only some variants of a family file
    have, naming them (the shared ones are said once, for all): an error of the `deep` variant
    alone read as the file's."""
    having: dict[tuple[object, ...], list[str]] = {}
    size: dict[int, int] = {}
    for file, family, checked in zip(files, families, results, strict=True):
        size[family] = size.get(family, 0) + 1
        for diagnostic in checked.diagnostics:
            having.setdefault((family, *diagnostic.key()), []).append(str(file).rpartition("#")[2])
    noted = []
    for file, family, checked in zip(files, families, results, strict=True):
        diagnostics = []
        for diagnostic in checked.diagnostics:
            names = having[(family, *diagnostic.key())]
            if size[family] > 1 and len(names) < size[family]:
                which = f"variant{'s' if len(names) > 1 else ''} {', '.join(names)}"
                where = str(file).rpartition("#")[0]
                diagnostic = diagnostic.with_notes([Note(f"in {which} of {where}", None, "")])
            diagnostics.append(diagnostic)
        noted.append(checked._replace(diagnostics=diagnostics))
    return noted


def _unsaid(
    diagnostics: list[Diagnostic], said: dict[tuple[object, ...], None], family: int
) -> list[Diagnostic]:
    """The diagnostics not reported already for the same file named on the command line
    (``family``; ``said``, which they join): the same one from each variant of a family file
    is reported once."""
    fresh = []
    for diagnostic in diagnostics:
        key = (family, *diagnostic.key())
        if key not in said:
            said[key] = None
            fresh.append(diagnostic)
    return fresh


def report_strict(file: Path, warnings: int, console: Console | None) -> None:
    """The line that says why a file that compiled fails: ``--strict`` and its warnings (in
    place of the ``ok`` line it would otherwise get)."""
    text = f"{warnings} warning{'s' if warnings != 1 else ''}, which --strict treats as errors"
    if console is None:
        echo(f"failed {clean(file)}: {text}")
    else:
        console.print(f"[red]failed[/red] {safe(file)}: {text}", highlight=False, soft_wrap=True)


def _fix_files(
    files: list[Path], overrides: list[str], allow_outside: bool, max_params: int, *, write: bool, text: bool
) -> bool:
    """``--fix`` (``write``) or ``--diff``: each named file's fixes (cli/fixing.py), written or
    printed as a diff; says what was fixed (to stdout for ``text``, else to stderr, which keeps
    the JSON or GitHub lines alone on stdout). Whether any file has a fix."""
    from cnnspec.analysis.passes import compile_spec
    from cnnspec.cli.fixing import fix_file, other_links, write_fixed

    def check_with(file: Path) -> Callable[[Callable[[Path], str | None]], list[Diagnostic]]:
        def check(reader: Callable[[Path], str | None]) -> list[Diagnostic]:
            try:
                compiled = compile_spec(
                    file, overrides, allow_outside=allow_outside, max_params=max_params, reader=reader
                )
            except SpecError as exc:
                return list(exc.diagnostics)
            return list(compiled.warnings)

        return check

    changed = False
    seen: set[Path] = set()
    for file in files:
        if not file.is_file() or file.resolve() in seen:
            continue  # (a file that cannot be read: its check says why)
        seen.add(file.resolve())
        try:
            fixed = fix_file(file, check_with(file))
        except UsageError:
            continue  # (not UTF-8: its check says where)
        if not fixed.changed:
            continue
        changed = True
        if not write:
            echo(fixed.diff(), nl=False)
            continue
        links = other_links(file)
        if links:  # (written in place, a full disk would leave it half-written: not written at all)
            stderr().print(
                f"[yellow]not fixed:[/yellow] {safe(file)} has {links} other hard link(s); --fix writes a "
                "new file in its place, so they would keep the old text",
                highlight=False,
                soft_wrap=True,
            )
            stderr().print(
                "  [cyan]hint:[/cyan] print the fixes with --diff and apply them in place (patch edits "
                "the file itself), or fix the file by hand",
                highlight=False,
                soft_wrap=True,
            )
            continue
        write_fixed(fixed)
        for made in fixed.made:
            typer.echo(
                f"fixed {clean(file)}:{made.line + 1}:{made.start + 1}: {clean(made.title)}", err=not text
            )
    return changed
