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
from cnnspec.errors import Diagnostic, Loc, SpecError, UsageError

if TYPE_CHECKING:  # Rich is imported only where it prints (cli.common.plain_stdout)
    from rich.console import Console

    from cnnspec.spec.compose import Reader


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

    A family file is checked in each variant; a block library (blocks, no model; or
    zoo:blocks/NAME) on its own: its blocks' kinds, parameter and argument names and written-out values.

    --fix makes the quick fixes of the language server in the named files first (comments and
    layout kept; each file checked as here: a library on its own, a family in each variant),
    --diff shows them instead, and the errors they would leave (exit 1 when there are fixes or
    errors)."""
    from cnnspec.spec.family import family_variants, unsaid, variant_notes

    if fix or diff:
        if fix and diff:
            raise UsageError("expected --fix or --diff, not both", "--diff shows what --fix would write")
        if diff and format != OutputFormat.text:  # (it printed the patch where JSON was asked for)
            raise UsageError(
                f"expected --diff without --format {format.value}: it prints a unified diff",
                "validate with --format json (or github) for the errors alone, or --diff for the fixes",
            )
        changed, left = _fix_files(
            files, set or [], allow_outside, max_params, write=fix, text=format == OutputFormat.text
        )
        if diff:
            # the errors the fixes leave, on stderr (stdout is the patch): a CI step
            # `validate --diff` passed a spec that plain validate refuses, when nothing was fixable
            report(left, "text")
            raise typer.Exit(EXIT_SPEC if changed or left else 0)

    def check(file: Path) -> Checked:
        return check_file(file, set or [], allow_outside=allow_outside, max_params=max_params)

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
    results = list(ordered_map(check, files, workers, Checked.encode, Checked.decode))
    noted = variant_notes(files, families, [checked.diagnostics for checked in results])
    results = [checked._replace(diagnostics=found) for checked, found in zip(results, noted, strict=True)]
    said: dict[tuple[object, ...], None] = {}
    for file, family, checked in zip(files, families, results, strict=True):
        shown = unsaid(checked.diagnostics, said, family)  # (each is said once, counted in each)
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


def check_file(
    file: Path,
    overrides: list[str],
    *,
    allow_outside: bool,
    max_params: int,
    reader: Reader | None = None,
) -> Checked:
    """Check one spec file as ``validate`` checks each it is given, one variant of a family
    file (``fam.yaml#name``: :func:`~cnnspec.spec.family.family_variants` lists them) at a time:
    a block library on its own (:func:`check_block_library`), any other file compiled with the
    ``overrides`` (``--set``), its weights' files looked for on the disk (the check training
    makes before it writes anything). ``reader`` gives the text of the files it reads instead of
    the disk (``--fix``: as fixed so far), which also decides whether it is a library."""
    from cnnspec.analysis.passes import checks_weights_on_disk, compile_spec
    from cnnspec.spec.library import library_file

    library = library_file(file, reader)  # (a file of blocks, or a zoo library: zoo:blocks/resnet)
    if library is not None:
        return check_block_library(library, bool(overrides), allow_outside, reader)
    try:
        compiled = compile_spec(
            file,
            overrides,
            allow_outside=allow_outside,
            max_params=max_params,
            reader=reader,
            weights_on_disk=checks_weights_on_disk(file),
        )
    except SpecError as exc:
        return Checked(list(exc.diagnostics), None)
    totals = compiled.ir.totals
    summary = f"{compiled.name} — {len(compiled.ir.nodes)} layers, {totals.params:,} parameters"
    return Checked(list(compiled.warnings), summary)


def check_block_library(
    file: Path, overridden: bool, allow_outside: bool, reader: Reader | None = None
) -> Checked:
    """Check the block library ``file`` on its own (:mod:`cnnspec.spec.library`): its blocks'
    kinds, parameter and argument names and written-out values; ``overridden``: ``--set`` was
    given, which sets what a spec compiles and a library compiles nothing. ``reader``: as for
    :func:`check_file`."""
    from cnnspec.spec.library import check_library
    from cnnspec.spec.loader import display_name

    try:
        checked = check_library(file, allow_outside=allow_outside, reader=reader)
    except SpecError as exc:
        return Checked(list(exc.diagnostics), None)
    if overridden:
        refused = Diagnostic(
            "--set sets a spec's values; a block library has none to set",
            Loc(display_name(file), 1, 1),
            hint="validate a spec that uses the library with --set, or drop --set for this file",
            code="set",
        )
        return Checked([refused], None)
    count = len(checked.blocks)
    return Checked(checked.warnings, f"block library — {count} block{'s' if count != 1 else ''}")


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
) -> tuple[bool, list[Diagnostic]]:
    """``--fix`` (``write``) or ``--diff``: each named file's fixes (cli/fixing.py), written or
    printed as a diff; says what was fixed (to stdout for ``text``, else to stderr, which keeps
    the JSON or GitHub lines alone on stdout). Whether any file has a fix, and for ``--diff``
    the errors its files would still have with the fixes made (``--fix`` goes on to check the
    files it wrote, as validate does).

    A file is checked as ``validate`` checks it (:func:`check_file`): a block library on its
    own, a family file in each of its variants (a mistake only one variant's ``vars:`` makes is
    fixed too; one they share, once)."""
    from cnnspec.cli.fixing import Fixed, fix_file, other_links, write_fixed
    from cnnspec.spec.family import family_variants, unsaid

    def check_with(file: Path) -> Callable[[Reader], list[Diagnostic]]:
        def check(reader: Reader) -> list[Diagnostic]:
            said: dict[tuple[object, ...], None] = {}
            found: list[Diagnostic] = []
            for target in family_variants(file, allow_outside, reader):
                checked = check_file(
                    target, overrides, allow_outside=allow_outside, max_params=max_params, reader=reader
                )
                found += unsaid(checked.diagnostics, said, 0)
            return found

        return check

    def errors_left(file: Path, fixed: Fixed | None) -> list[Diagnostic]:
        if write:
            return []  # (validate checks the files --fix wrote)
        found = fixed.checked if fixed is not None else None  # (the fixes' last check, of their text)
        if found is None:
            target = file.resolve()
            text = fixed.after if fixed is not None else None
            # (the file as fixed; the files it reads, and a file that cannot be read, from the disk)
            found = check_with(file)(lambda asked: text if asked.resolve() == target else None)
        return [d for d in found if d.severity == "error"]

    changed = False
    left: list[Diagnostic] = []
    seen: set[Path] = set()
    for file in files:
        if not file.is_file():
            left += errors_left(file, None)  # (a file that cannot be read: its check says why)
            continue
        if file.resolve() in seen:
            continue
        seen.add(file.resolve())
        try:
            fixed = fix_file(file, check_with(file))
        except UsageError:
            left += errors_left(file, None)  # (not UTF-8: its check says where)
            continue
        left += errors_left(file, fixed)
        if not fixed.changed:
            continue
        changed = True
        if fixed.unmade:  # (said first: --diff's output is the patch alone on stdout)
            from cnnspec.lsp.fixes import MAX_ROUNDS

            stderr().print(
                f"[yellow]note:[/yellow] {safe(file)}: {len(fixed.made):,} fixes made in {MAX_ROUNDS} "
                f"rounds of checks, where it stops; {fixed.unmade:,} more are offered: run it again",
                highlight=False,
                soft_wrap=True,
            )
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
    return changed, left
