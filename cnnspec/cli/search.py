"""`cnnspec search SPEC` — run the spec's `search:` section as an Optuna study."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from cnnspec.cli.common import (
    DEFAULT_MAX_PARAMS,
    EXIT_INTERRUPTED,
    AllowOutsideOption,
    MaxParamsOption,
    NoReportOption,
    SetOption,
    SpecArgument,
    compile_reported,
    fail_usage,
    given_output,
    guarded,
    stderr,
    stdout,
)

#: Every trial of the search failed (as a spec error: what the trials were given is wrong).
EXIT_FAILED = 1


@guarded
def search(
    file: SpecArgument,
    trials: Annotated[
        int | None,
        typer.Option("--trials", "-n", min=1, help="trials in the study in all (default: search.trials)"),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", "-w", min=1, help="worker processes to start here")
    ] = 1,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "--output",
            "-o",
            help="the search folder (default runs/<name>-search)",
            parser=given_output,
        ),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="a SQLAlchemy URL (postgresql://user@host/db) shared by workers on many machines; "
            "default: the journal file OUT/study.journal",
        ),
    ] = None,
    study: Annotated[
        str | None, typer.Option("--study", help="the study's name (default: the spec's name)")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", min=1, help="seconds after which no trial starts (from when each worker is ready)"
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the leaderboard")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            "-f",
            help="replace summary files in --out that cnnspec did not write (best.yaml …), and those "
            "of a study of the same name in another storage whose trials are in another --out (trial "
            "folders in --out are never replaced)",
        ),
    ] = False,
    set: SetOption = None,
    allow_outside: AllowOutsideOption = False,
    max_params: MaxParamsOption = DEFAULT_MAX_PARAMS,
    no_report: NoReportOption = False,
) -> None:
    """Search the hyperparameters of the spec's `search:` section with Optuna.

    Each trial is a run folder OUT/trial-NNN. The same command again continues the study
    (finished trials are kept); several machines join one study with the same --storage URL.
    Results: OUT/best.yaml (train it as it is), OUT/search.json, OUT/search.html, plots.
    --no-report leaves each trial's report.html out (`cnnspec report OUT/trial-NNN` writes one).
    Another --study than the spec's name in the same OUT gets its own names:
    OUT/trial-STUDY-NNN, OUT/best-STUDY.yaml, OUT/search-STUDY.json and so on.
    A trial that cannot write its files (a full disk) stops the search with exit status 1;
    the same command again, once there is room, tries that trial again. A trial stopped by
    Ctrl-C or SIGTERM goes on from its last saved epoch when the same command runs again.
    Every trial of a study trains at one seed (training.seed; without it, search.seed or one
    drawn once and kept in the study), so all are scored on the same split and best.yaml
    trains the best one again.
    Refused before any trial: an in-memory SQLite --storage (its trials would be lost),
    another search.sampler for a study that has trials, and a study of the same name kept in
    another storage in the same OUT (its trial folders would take this study's names; --force
    replaces its summaries where its trials are in another OUT).
    """
    import math

    from cnnspec.analysis.search_check import check_not_set
    from cnnspec.cli.render import safe
    from cnnspec.errors import UsageError, WriteError
    from cnnspec.search import results
    from cnnspec.search.runner import SearchOutcome, out_folder, run_search, search_exit_status, studies_lock
    from cnnspec.search.study import (
        adopted_split_seed,
        check_study_name,
        create_study,
        grid_size,
        import_optuna,
        journal_path,
        open_storage,
        repair_journal,
        spec_seeds,
        storage_identity,
        storage_label,
        study_seed,
        study_tag,
        trial_meaning,
    )
    from cnnspec.search.worker import WorkerConfig, counted, disk_fault

    if timeout is not None and not math.isfinite(timeout):  # (nan passes the option's min)
        raise UsageError(f"expected --timeout to be a finite number of seconds; received {timeout}")
    if study is not None:
        check_study_name(study)
    compiled = compile_reported(file, set, allow_outside=allow_outside, max_params=max_params)
    space = compiled.search
    if space is None:
        raise UsageError(
            f"expected a search: section in {file}",
            "add search: {space: {training.batch_size: {choice: [16, 32, 64]}}} (see README, Search)",
        )
    check_not_set(compiled, space)
    folder = out or Path("runs") / f"{compiled.name}-search"
    name = study or compiled.name
    optuna = import_optuna()
    label = storage_label(storage, folder)
    journal = journal_path(storage, folder)
    tag = study_tag(name, compiled.name)
    if not tag and _plain_names_taken(folder, name):  # another spec's own study came first
        tag = study_tag(name, "")
    identity = storage_identity(storage, folder)
    stale = _refuse_other_storage(folder, name, tag, identity, label, force)
    _refuse_foreign_summaries(folder, tag, force)
    meaning = trial_meaning(compiled.doc, space, list(set or []))
    with _removed_if_left_empty(folder):
        if journal is None:  # a database: opened (and the study checked) before OUT is made
            opened = create_study(optuna, open_storage(storage, folder), name, space, label, meaning)
            out_folder(folder)
        else:
            out_folder(folder)
            repaired = repair_journal(journal)
            if repaired:
                stderr().print(f"[yellow]note:[/yellow] {safe(repaired)}", highlight=False, soft_wrap=True)
            opened = create_study(optuna, open_storage(storage, folder), name, space, label, meaning)
    for plot in stale:  # (the replaced study's, once this one is open: its summary draws its own)
        with contextlib.suppress(OSError):
            plot.unlink()
    cfg = WorkerConfig(
        spec=file,
        out=folder,
        study_name=name,
        trials=trials or space.trials,
        overrides=list(set or []),
        storage=storage,
        allow_outside=allow_outside,
        max_params=max_params,
        timeout=timeout or space.timeout,  # (counted by each worker from when it is ready)
        quiet=quiet,
        workers=workers,
        tag=tag,
        report=not no_report,
    )
    seed = None
    adopted = None  # (the split seed of the weights run, and that run)
    if not spec_seeds(compiled.doc):  # one seed for every trial: one split, one best.yaml
        adopted = adopted_split_seed(compiled)
        with studies_lock(cfg):  # (under the lock its workers take: one seed however many start)
            seed = study_seed(opened, space, None if adopted is None else adopted[0])
    console = stderr()
    if not quiet:
        console.print(
            f"[bold]{safe(compiled.name)}[/bold]: study {safe(repr(name))} in {safe(label)}, {cfg.trials} "
            f"trial(s), {workers} worker(s), {safe(space.objective)} ({safe(space.direction)}) → "
            f"{safe(folder)}",
            highlight=False,
            soft_wrap=True,
        )
        if seed is not None:
            console.print(
                f"[yellow]note:[/yellow] {safe(seed_note(seed, adopted, space))}",
                highlight=False,
                soft_wrap=True,
            )
        points = grid_size(space) if space.sampler == "grid" else None
        if points is not None and points < cfg.trials:  # (the workers stop once each is tried)
            console.print(
                f"[yellow]note:[/yellow] the grid has {points} point(s): the study ends at {points} "
                f"trial(s), not {cfg.trials}",
                highlight=False,
                soft_wrap=True,
            )
    first = len(opened.get_trials(deepcopy=False))  # the trials of this search are numbered from here
    fault: WriteError | None = None
    try:
        outcome = run_search(cfg, workers, opened)
    except WriteError as stopped:  # a trial's disk fault stopped the worker of this process
        fault, outcome = stopped, SearchOutcome(opened, False, 0, [])
    for note in outcome.notes:
        console.print(f"[yellow]note:[/yellow] {safe(note)}", highlight=False, soft_wrap=True)
    fault = fault or disk_fault(opened, first)  # (a worker process's: the study records it)
    seconds, done, limit = cfg.timeout, counted(opened), _study_limit(cfg.trials, space)
    timed_out = None
    if seconds is not None and not outcome.interrupted and fault is None:
        timed_out = timeout_text(seconds, done, limit)
    if timed_out is not None:
        console.print(f"[yellow]note:[/yellow] {safe(timed_out)}", highlight=False, soft_wrap=True)
    try:
        summary = results.write_summary(folder, opened, space, label, compiled, cfg.tag, identity)
    except WriteError:
        if fault is None:
            raise
        raise fault from None  # the trial's fault is the one to fix; the summary's follows from it
    leaderboard(summary)
    if outcome.interrupted:
        console.print(
            f"[yellow]interrupted[/yellow]: {stopped_text(summary, first)}", highlight=False, soft_wrap=True
        )
        raise typer.Exit(EXIT_INTERRUPTED)
    if fault is not None:
        raise fault  # exit 1 with the file, the space and how to go on (guarded)
    stopped = search_exit_status(outcome.worker_errors)
    if stopped is not None:  # a worker process's own error, printed by it (and noted above)
        raise typer.Exit(stopped)
    failed = all_failed(summary, first)
    if failed:
        fail_usage(
            f"no trial finished: all {len(failed)} trial(s) of this search failed; the first, trial "
            f"{failed[0]['number']}: {failed[0].get('failed') or 'failed'}",
            f"fix what it says (`cnnspec validate {file}` checks the spec for every value of the space; "
            "the data is read only as a trial trains), then search again with another --out or --study "
            "(these failed trials count against this study's --trials)",
        )
        raise typer.Exit(EXIT_FAILED)
    finished = any(row["state"] in ("COMPLETE", "PRUNED") for row in summary["trials"])
    if timed_out is not None and seconds is not None and not finished:
        fail_usage(
            f"expected a trial of the study to finish before the timeout ({_seconds(seconds)} s); "
            f"none did ({done} of {limit} trial(s) started), so there is no best.yaml",
            f"raise the timeout (--timeout or search.timeout; {_seconds(seconds)} s now, counted from "
            "when a worker is ready, and one trial takes a whole training), then run the same command again",
        )
        raise typer.Exit(EXIT_FAILED)


def seed_note(seed: int, adopted: Any, space: Any) -> str:
    """The note of the study's training seed ``seed`` that every trial of a spec without
    ``training.seed`` trains with; ``adopted``: the split seed the study took from the run its
    weights come from (:class:`cnnspec.search.study.AdoptedSplit`, or ``None``), said where it is
    that seed, with the trials it splits as that run did where the space draws the data source
    or ``data.test_split`` (the others test on other images of it, counted, or on another source)."""
    from cnnspec.analysis.trial_data import drawn_text
    from cnnspec.search.study import drawn_test_splits

    whose = ""
    if adopted is not None and adopted.seed == seed:
        run = adopted.run
        whose = (
            f", the split seed of {run.given}, trained on the same data, so that the trials' "
            "test images are none those weights trained on"
        )
        # only the trials of its source and its test_split, where the space draws them
        sources = drawn_text(adopted.drawn)
        splits = drawn_test_splits(space) is not None
        drawn = [f"its data ({sources})"] if sources else []
        drawn += [f"its data.test_split, {run.test_split:g},"] if splits else []
        if drawn:
            whose = (
                f", the split seed of {run.given}, trained on the same data, so that the test "
                f"images of the trials that draw {' and '.join(drawn)} are none those weights "
                "trained on"
            )
        if splits:
            whose += (
                f" (each other trial{' of its data' if sources else ''} counts those it "
                "holds: search.json's test_note)"
            )
    return f"no training.seed: every trial trains with the study's seed {seed}{whose}"


def _study_limit(trials: int, space: Any) -> int:
    """The trials the study ends at: ``trials``, or a smaller grid's points."""
    from cnnspec.search.study import grid_size

    return min(trials, grid_size(space)) if space.sampler == "grid" else trials


def _seconds(value: float) -> str:
    """Seconds as written: ``12`` for 12.0, ``1.5`` as it is."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def timeout_text(seconds: float, done: int, limit: int) -> str | None:
    """What a search the timeout stopped says (``None`` when it did not stop it: the study has
    its ``limit`` trials): the timeout, and the ``done`` trials of the ``limit`` the study counts
    (:func:`cnnspec.search.worker.counted`)."""
    if done >= limit:
        return None
    return (
        f"timeout ({_seconds(seconds)} s) reached after {done} of {limit} trial(s); "
        "the same command continues the study"
    )


def stopped_text(summary: dict[str, Any], first: int) -> str:
    """What a stopped search says after "interrupted": the trials it stopped (numbered from
    ``first``: this search's), whose values the same command trains again, and that finished
    trials are kept."""
    stopped = [
        str(row["number"])
        for row in summary["trials"]
        if row["state"] == "STOPPED" and row["number"] >= first
    ]
    kept = "finished trials are kept in the study"
    if not stopped:
        return f"{kept}; the same command continues it"
    if len(stopped) == 1:
        return f"trial {stopped[0]} was stopped, and the same command trains its values again; {kept}"
    return f"trials {', '.join(stopped)} were stopped, and the same command trains their values again; {kept}"


def _plain_names_taken(folder: Path, name: str) -> bool:
    """Whether the plain names of ``folder`` (``search.json``, ``best.yaml``, ``trial-NNN/``) are
    another study's: its search.json names one. Each spec's own study takes the plain names, so
    a second spec searched into the same ``--out`` replaced the first's summaries; it gets its
    own names, as any other study there does."""
    try:
        recorded = json.loads((folder / "search.json").read_text(encoding="utf-8")).get("study")
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(recorded, str) and recorded != name


def _refuse_other_storage(
    folder: Path, name: str, tag: str, identity: str, label: str, force: bool = False
) -> list[Path]:
    """Refuse (exit 2, before anything is written) a search whose study's summary in ``folder``
    (``search{tag}.json``) is of a study of the same name in another storage: its trial
    folders' names were taken (every trial skipped and failed), and its best.yaml, search.json,
    search.html and plots were replaced by the second study's. With ``force``, a summary whose
    study has no trial folder in ``folder`` (its trials trained into another ``--out``; the
    study itself stays in its storage, and searching it again there writes its summaries again)
    is replaced, said in a note; trial folders, trained runs, are never replaced. Returns the
    plots of the study replaced, which this study's summary may not draw again (a study of one
    trial has no importances.png): the search removes them once its study is open."""
    from cnnspec.cli.render import safe
    from cnnspec.errors import UsageError
    from cnnspec.search.results import PLOTS, foreign_summaries, summary_name
    from cnnspec.search.study import JOURNAL_NAME, moved_storage, storage_identity

    path = folder / summary_name("search.json", tag)
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return []
    if not isinstance(recorded, dict) or recorded.get("study") != name:
        return []
    shown, before = recorded.get("storage"), recorded.get("storage_id")
    if not isinstance(before, str):  # (a search.json of an earlier cnnspec: its label)
        if not isinstance(shown, str) or (
            label == str(folder / JOURNAL_NAME) and shown.endswith(JOURNAL_NAME)
        ):
            return []  # (its default journal, named from another folder maybe: taken as this one)
        try:
            before = storage_identity(shown, folder)
        except Exception:  # (a label no storage reads: compared as it is)
            before = shown
    if before == identity or moved_storage(before, identity):
        return []
    trials = _trial_folders(folder, tag)
    if force and not trials:
        stderr().print(
            f"[yellow]note:[/yellow] --force: the summaries of the study {safe(repr(name))} in "
            f"{safe(str(shown))} ({safe(path.name)} …) are replaced by this study's; its trials are in "
            f"another --out, and it stays in its storage (a search with --storage {safe(str(shown))} "
            "writes them again)",
            highlight=False,
            soft_wrap=True,
        )
        plots = [folder / summary_name(plot, tag) for plot in PLOTS]
        foreign = set(foreign_summaries(folder, tag))  # (--force replaces those anyway)
        return [plot for plot in plots if plot.is_file() and plot not in foreign]
    if trials:
        force_text = (
            f"; --force replaces no trial folder: {folder} holds that study's trained runs "
            f"({', '.join(trials[:2])}{' …' if len(trials) > 2 else ''}), whose names this study's trials "
            "would take"
        )
    else:
        force_text = (
            f", or pass --force to replace its summaries ({path.name} …: its trials are in another "
            "--out, and the study stays in its storage)"
        )
    raise UsageError(
        f"expected --out to hold no study {name!r} of another storage; {path} is that of the study "
        f"{name!r} in {shown}, and this search's is in {label}: its trials' folders and its summaries "
        "would take the first's",
        f"choose another --out (e.g. runs/NAME-search) or another --study name; to go on with the "
        f"study of {path.name}, search with the storage it is in ({shown}){force_text}",
    )


def _trial_folders(folder: Path, tag: str) -> list[str]:
    """The names of the trial folders of study tag ``tag`` in ``folder`` (``trial{tag}-NNN``),
    sorted."""
    import re

    pattern = re.compile(rf"trial{re.escape(tag)}-\d{{3,}}")
    try:
        return sorted(entry.name for entry in folder.iterdir() if pattern.fullmatch(entry.name))
    except OSError:
        return []


def _refuse_foreign_summaries(folder: Path, tag: str, force: bool) -> None:
    """Refuse (exit 2, before anything is written) a --out whose best.yaml, search.json,
    search.html or plots a search did not write (:func:`cnnspec.search.results.foreign_summaries`),
    unless ``force``."""
    from cnnspec.errors import UsageError
    from cnnspec.search.results import foreign_summaries

    found = foreign_summaries(folder, tag)
    blocked = [path for path in found if path.is_dir() or (path.exists() and not path.is_file())]
    if blocked:  # (no --force replaces a folder: the summary would fail after every trial ran)
        raise UsageError(
            f"expected {blocked[0].name} in --out to be a file a search can write; {blocked[0]} is "
            f"{'a folder' if blocked[0].is_dir() else 'no regular file'}",
            "choose another --out, or move it away",
        )
    found = [] if force else found
    if found:
        names = ", ".join(path.name for path in found)
        raise UsageError(
            f"expected --out to hold no files of the names a search writes but its own; {folder} "
            f"has {names}, which {'carries' if len(found) == 1 else 'carry'} no mark of cnnspec's and "
            "the search would replace",
            "choose another --out (e.g. runs/NAME-search), or pass --force to replace them",
        )


def all_failed(summary: dict[str, Any], first: int) -> list[dict[str, Any]]:
    """The trials this search started (numbered from ``first``) when it started some, every one
    of them failed and no trial of the study ever finished (a spec or data error that fails
    every value, a training that diverges every time); else ``[]``: a search with nothing to
    show exits non-zero."""
    rows = summary["trials"]
    mine = [row for row in rows if row["number"] >= first and row["state"] != "SKIPPED"]  # (trained none)
    finished = any(row["state"] in ("COMPLETE", "PRUNED") for row in rows)
    if not mine or finished or any(row["state"] != "FAIL" for row in mine):
        return []
    return mine


@contextlib.contextmanager
def _removed_if_left_empty(folder: Path) -> Iterator[None]:
    """On an error, remove ``folder`` again when this command made it and it is still empty
    (a storage that does not open leaves nothing behind)."""
    existed = folder.exists()
    try:
        yield
    except BaseException:
        if not existed:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only an empty folder
        raise


def leaderboard(summary: dict[str, Any], top: int = 10) -> None:
    """The best trials as a Rich table, with where the results are."""
    from rich.table import Table

    from cnnspec.cli.render import safe
    from cnnspec.search.results import count_text, ranked, test_column

    rows = ranked(summary["trials"], summary["direction"])
    names = [d["name"] for d in summary["space"]]
    shown = f"; the best {top} shown" if len(rows) > top else ""
    # Rich reads a table's strings as markup: the study's name, a choice's value and the run
    # folder are the user's text (`--study "a[/b]"` ended a finished search with exit 3)
    title = f"search {safe(summary['study'])}: {len(rows)} trial(s): {count_text(summary['counts'])}{shown}"
    table = Table(title=title, title_justify="left")
    # the test column's heading is a trial's test_metric attribute: the storage's text
    test = safe(test_column(summary).replace("test accuracy", "test acc"))
    columns = ("#", "trial", safe(summary["objective"]), "state", test, "epochs", *map(safe, names))
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 3 else "right")  # (3: the state)
    for rank, row in enumerate(rows[:top], start=1):
        state = safe(str(row["state"]).lower())
        # the epoch a trial was pruned at, its epochs and why it failed are user attributes of
        # the study's storage (any worker sharing it sets them), and a failed reason quotes the
        # --out path (`[/x]…` ended a finished search with MarkupError, exit 3): all escaped
        if row.get("pruned_at_epoch"):
            state += f" @{safe(row['pruned_at_epoch'])}"
        why = row.get("failed") if row["state"] == "FAIL" else row.get("skipped")
        if row["state"] in ("FAIL", "SKIPPED") and isinstance(why, str):
            state += f": {safe(_clipped(why))}"  # why (search.json and trial.json: in full)
        table.add_row(
            str(rank),
            str(row["number"]) + ("*" if row.get("elsewhere") else ""),  # (its folder: another --out's)
            _figure(row["value"]),
            state,
            _figure(row.get("test_value")),
            safe(row["epochs"] or ""),
            *[safe(_short(row["params"].get(n))) for n in names],
        )
    console = stdout()
    console.print(table)
    if any(row.get("elsewhere") for row in rows[:top]):
        # a storage shared by several --out folders (or machines): say where those trials ran
        console.print("* its run folder is in another --out (search.json and search.html say which)")
    files = summary["files"]
    best = summary["best"]
    if best is not None and "best" in files:
        where = f" in {best['elsewhere']}" if best.get("elsewhere") else ""  # (another --out's)
        console.print(
            f"best: trial {best['number']} → {safe(best['run_dir'])}{safe(where)}; spec with its values: "
            f"{safe(files['best'])}",
            highlight=False,
        )
    console.print(f"written: {safe(', '.join(files.values()))}", highlight=False)  # (the plots too)


def _figure(value: Any) -> str:
    """An objective or test value as the leaderboard shows it: four decimals; a value that is
    no number (a test_value user attribute any worker sharing the storage can set) as its text,
    escaped, rather than a ValueError from ``:.4f`` (exit 3)."""
    from cnnspec.cli.render import safe

    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.4f}"
    return safe(value)


def _clipped(text: str, limit: int = 40) -> str:
    """One line of at most ``limit`` characters of ``text`` (a failed trial's reason)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
