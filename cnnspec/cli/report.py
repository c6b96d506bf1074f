"""`cnnspec report RUN_DIR` — write the run's self-contained report.html (also done by `train`)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from cnnspec.cli.common import (
    AllowOutsideOption,
    given_path,
    guarded,
    owning_run,
    path_option,
    stderr,
    stdout,
)
from cnnspec.cli.render import safe
from cnnspec.errors import UsageError
from cnnspec.training.outcomes import report_command


@guarded
def report(
    run_dir: Annotated[
        Path,
        typer.Argument(help="a run folder written by `cnnspec train`", show_default=False, parser=given_path),
    ],
    out: Annotated[  # text: Typer's Path drops the trailing slash of `-o new.html/`
        str | None,
        typer.Option(
            "--out",
            "--output",
            "-o",
            metavar="<path>",
            help="where to write the page (default RUN_DIR/report.html)",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", "-f", help="replace an existing --out file that cnnspec did not write"),
    ] = False,
    allow_outside: AllowOutsideOption = False,
) -> None:
    """Write the run's report.html: one self-contained page of its results.

    Curves, metrics, classification report, confusion matrix, sample predictions, feature maps
    and the layer table, with every picture inline and no scripts (`train` writes it too).
    An existing --out page is replaced only when cnnspec wrote it, or with --force.
    """
    from cnnspec.reporting.html import is_report, write_report
    from cnnspec.reporting.run import outside_allowed

    page = path_option(out, "report.html", "--out")
    if page is None:
        from cnnspec.cli.outputs import refuse_idle_force

        refuse_idle_force(force, "--out", "writes the run's own report.html, which it always replaces")
    if page is not None and page.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"expected --out to end in .html; received {page}")
    if page is not None:
        _refuse_other_run(page, run_dir)  # --force or not: another run's files are not ours to replace
    from cnnspec.fileio import check_writable
    from cnnspec.paths import is_dir, refuse_unreadable

    # another user's folder, a name too long: said as such, not as an internal error
    refuse_unreadable(run_dir, "RUN_DIR to name a run folder")
    refuse_unreadable(run_dir / "lock.json", "RUN_DIR to name a run folder")
    if page is not None or is_dir(run_dir):  # (no folder at all: write_report says what it expected)
        from cnnspec.cli.outputs import written_to

        where, instead = written_to(page, run_dir)  # (without --out, the run folder, named as such)
        check_writable(page or run_dir / "report.html", option=where, folder=False, hint=instead)
    # the default RUN_DIR/report.html is the run's own page; no run folder: write_report says so
    if page is not None and is_dir(run_dir):
        from cnnspec.cli.outputs import refuse_foreign

        refuse_foreign(page, "--out", force, is_report)  # before anything is read or drawn
    from cnnspec.reporting.runs import refuse_damaged_metrics

    refuse_damaged_metrics(run_dir)
    start = time.perf_counter()
    # only this command line may let the run's spec read outside its folder, never lock.json
    with outside_allowed(allow_outside):
        if page is None or page.parent.resolve().is_relative_to(run_dir.resolve()):
            with owning_run(run_dir, run_dir):  # into the run folder: it must be ours (busy: refused)
                path = write_report(run_dir, out=page, on_problem=_warn)
        else:
            path = _report_elsewhere(run_dir, page)
    size = path.stat().st_size
    stdout().print(
        f"wrote {safe(path)} ({size / 1024:,.0f} KB in {time.perf_counter() - start:.1f}s)",
        highlight=False,
    )


def _refuse_other_run(page: Path, run_dir: Path) -> None:
    """Refuse an ``--out`` inside another run folder than the one reported, as ``runs compare
    --png`` refuses one inside a run it reads: OTHER/report.html is that run's own page (cnnspec
    wrote it, so its mark let it be replaced without a word), and the folder is that run's.

    The run folder a path is in is the nearest folder above it with a lock.json; links are
    followed, as the page is where they lead. A page anywhere in the reported run itself
    (RUN/report.html, RUN/pages/x.html) is fine, even when that run lies in another's folder."""
    from cnnspec.cli.outputs import enclosing_run

    reported = Path(os.path.realpath(run_dir))
    holder = enclosing_run(Path(os.path.realpath(page)).parent)
    if holder is None or holder == reported:
        return
    raise UsageError(
        f"--out {page} is inside the run folder {holder}, not in {run_dir} (the run "
        "reported); report does not write into another run's folder",
        "choose an --out outside other run folders, such as "
        f"{reported.name or 'run'}.html; `{safe(report_command(holder))}` writes that run's own page",
    )


def _report_elsewhere(run_dir: Path, out: Path) -> Path:
    """``--out`` outside the run folder: the report of a run another process holds (a training
    in progress), or of one this process can't lock (a read-only folder or disk, no permission),
    is written too, but then nothing is drawn into that run's folder."""
    from cnnspec.reporting.html import write_report
    from cnnspec.training.runlock import RunFolderBusy, RunFolderUnwritable

    try:
        with owning_run(run_dir, run_dir):  # (write_report takes no lock: only this one is busy)
            return write_report(run_dir, out=out, on_problem=_warn)
    except (RunFolderBusy, RunFolderUnwritable):  # (raised by the lock, before anything is drawn)
        return write_report(run_dir, out=out, into_run=False, on_problem=_warn)


def _warn(problem: str) -> None:
    """Say on stderr what the page can only mention (a damaged model.keras): the page is still
    written, with everything else the run holds, and the command exits 0."""
    stderr().print(f"[yellow]warning:[/yellow] {safe(problem)}", highlight=False, soft_wrap=True)
