"""`cnnspec runs [FOLDER]` lists run folders; `cnnspec runs compare A B` compares two (no TensorFlow).

One command with two forms (Click would read `compare` as the FOLDER of a group's own
argument); a folder that is really named `compare` is given as `./compare`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from cnnspec.cli.common import echo, guarded, owning_run, path_option, stderr, stdout
from cnnspec.cli.evaluate import FormatOption
from cnnspec.cli.render import TextOrJson, safe
from cnnspec.fileio import user_path


@guarded
def runs(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            help="[FOLDER] (default runs) to list its run folders, or: compare RUN_A RUN_B",
            show_default=False,
        ),
    ] = None,
    format: FormatOption = TextOrJson.text,
    png: Annotated[  # text: Typer's Path drops the trailing slash of `--png new.png/`
        str | None,
        typer.Option(
            "--png",
            metavar="<path>",
            help=(
                "compare: where the overlaid learning curves go (default compare-A-B.png; "
                "long names shortened)"
            ),
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="compare: replace an existing --png picture that cnnspec did not draw"),
    ] = False,
) -> None:
    """List run folders, or compare two (spec diff, metrics, overlaid learning curves).

    The list shows each run's name, date, spec hash, test accuracy, epochs and time, for the
    run folders at most 3 levels below FOLDER (a note says how many lie deeper, and how to list
    them); `compare A B` shows the diff of their resolved specs, their metric differences and
    overlaid learning curves."""
    from cnnspec.errors import UsageError

    words = list(args or [])
    if words and words[0] == "compare":
        if len(words) != 3:
            raise UsageError("expected cnnspec runs compare RUN_A RUN_B", "two run folders")
        _compare(
            user_path(words[1]), user_path(words[2]), path_option(png, "compare.png", "--png"), format, force
        )
        return
    if len(words) > 1:
        raise UsageError(f"expected at most one folder; received {len(words)}", "cnnspec runs [FOLDER]")
    given = [name for name, value in (("--png", png is not None), ("--force", force)) if value]
    if given:  # the list draws nothing: the option would be dropped without a word
        raise UsageError(
            f"{' and '.join(given)} {'is' if len(given) == 1 else 'are'} for runs compare; "
            "the list draws no curves",
            "cnnspec runs compare RUN_A RUN_B --png curves.png",
        )
    _list(user_path(words[0]) if words else Path("runs"), format)


def _list(folder: Path, format: str) -> None:
    from cnnspec.cli.fitted import FittedColumn, FittedTable
    from cnnspec.reporting.runs import MAX_DEPTH, deeper_runs, find_runs, run_row

    skipped: list[tuple[Path, str]] = []  # links that lead nowhere, folders that can't be read
    rows = [run_row(run, folder) for run in find_runs(folder, skipped)]
    _notes([f"{path} {why}" for path, why in skipped], "note")
    # the runs below MAX_DEPTH are left out: said, with how to list them (a bounded search)
    deeper, cut = deeper_runs(folder)
    if deeper:
        console = stderr()
        if not rows:
            text = f"no run folder within {MAX_DEPTH} levels of {safe(folder)}, but there are deeper ones"
        else:
            count = f"{'at least ' if cut else ''}{len(deeper)}"
            text = (
                f"{count} more run folder(s) lie deeper than {MAX_DEPTH} levels under {safe(folder)} "
                "and are not listed"
            )
        console.print(f"note: {text} (e.g. {safe(deeper[0])})", highlight=False, soft_wrap=True)
        console.print(
            f"  [cyan]hint:[/cyan] list them with: cnnspec runs {safe(deeper[0].parent)}",
            highlight=False,
            soft_wrap=True,
        )
    if format == "json":
        echo(json.dumps(rows, indent=2))
        return
    _notes([f"{row['path']}: {problem}" for row in rows for problem in row["problems"]])
    # The run folder is what compare and report take and the figures are the point: the spec,
    # date, hash and status give way (at 80 columns Rich cut the folder to `digits_…`)
    table = FittedTable(
        f"{len(rows)} run(s) in {safe(folder)}",
        [
            FittedColumn("run", "name"),
            FittedColumn("spec", "text"),
            FittedColumn("date", "text"),
            FittedColumn("spec hash", "text"),
            FittedColumn("test acc", "figure", "right"),
            FittedColumn("epochs", "figure", "right"),
            FittedColumn("time", "figure", "right"),
            FittedColumn("status", "text"),
        ],
    )
    for row in rows:
        epochs = "" if row["epochs"] is None else f"{row['epochs']}/{_num(row['epochs_planned']) or '?'}"
        # a run reached through a link: where it really is (JSON: "link")
        linked = f" → {safe(row['link'])}" if row.get("link") else ""
        table.add_row(
            safe(row["run"]) + linked,
            safe(row["spec"] or ""),
            safe((row["date"] or "").replace("T", " ")[:19]),
            safe((row["spec_hash"] or "")[:12]),  # the table's short form; JSON has the whole hash
            _score(row),
            epochs,
            _seconds(row["seconds"]),
            # every row's status: a damaged run can still have a test accuracy to show
            f"[yellow]{row['status']}[/yellow]" if row["status"] == "damaged" else row["status"],
        )
    stdout().print(table)


def _seconds(value: Any) -> str:
    """The time column: ``12.5s``; a non-finite time as its stored text and the unit apart
    (``inf s``: glued on, ``infs`` read as a word), as the other columns show ``nan``."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{_num(value, digits=1)}s"
    return f"{_num(value)} s"


def _notes(notes: list[str], kind: str = "damaged") -> None:
    """What is wrong with a run's files (``damaged``), or what a run lacks that ``compare``
    reads (``note``), one line per problem, on stderr."""
    if notes:
        console = stderr()
        for note in notes:
            console.print(f"[yellow]{kind}:[/yellow] {safe(note)}", highlight=False, soft_wrap=True)


def _cell(row: dict[str, Any], key: str, side: str) -> str:
    """One run's figure in the compare table: the figure (a non-finite one as its text),
    ``missing`` where that run's metrics.json has no such key, ``none`` where it holds null."""
    if row[key] is not None:
        return _num(row[key])
    return "missing" if side in row.get("missing", []) else "none"


def _score(row: dict[str, Any]) -> str:
    """The test accuracy, or another task's first headline figure (``mean IoU 0.9233``); else
    nothing (the status column says why: ``unfinished``, ``damaged``)."""
    if row["test_accuracy"] is not None:
        return _num(row["test_accuracy"])
    if row.get("headline"):
        label, value = row["headline"][0]
        return f"{safe(label.removeprefix('test '))} {_num(value)}"
    return ""


def _print_data(console: Any, data: dict[str, Any]) -> None:
    """The data line of ``runs compare``: whether the runs read the same data, by lock.json's
    content hash (one resolved spec says nothing of a folder whose images changed between runs).
    Hashes that differ are told apart: one source file selected otherwise (``limit``,
    ``per_class``: the comparison people make, often on the same test images) is not the
    files changed."""
    a, b = data["a"], data["b"]
    if data["same"] is None:
        why = [
            f"{side.upper()}'s {data[side]['lock_damage']}"
            for side in ("a", "b")
            if data[side].get("lock_damage")
        ]
        lacking = [
            side.upper()
            for side in ("a", "b")
            if data[side]["content_hash"] is None and not data[side].get("lock_damage")
        ]
        if lacking:
            owners = " and ".join(f"{side}'s" for side in lacking)
            why.append(f"{owners} lock.json {'records' if len(lacking) == 1 else 'record'} no content hash")
        console.print(f"data: not compared ({safe('; '.join(why))})", highlight=False)
        return
    if data["same"]:
        console.print("data: the same (content hash)", highlight=False)
        return
    selection = data.get("selection") or []
    where = (
        f"{safe(a['path'] or '?')} → {safe(b['path'] or '?')}"
        if a["path"] != b["path"]
        else (safe(a["path"]) if a["path"] else safe(a["kind"] or "?"))
    )
    seeds = (a.get("seed"), b.get("seed"))
    if data.get("source") == "same" and not selection and seeds[0] != seeds[1]:
        # one file and one selection, drawn with another seed: the splits, not the files, differ
        console.print(
            f"data (A → B): the same source ({where}) and data settings, split with another seed "
            f"({seeds[0]} → {seeds[1]}), so the metrics are not of the same images",
            highlight=False,
            soft_wrap=True,
        )
        return
    if selection and data.get("source") != "differs":
        changes = ", ".join(
            f"{safe(change['key'])} {_setting(change['a'])} → {_setting(change['b'])}" for change in selection
        )
        source = (
            f"the same source ({where}"
            + (f", file sha256 {a['file_sha256'][:12]}…" if a.get("file_sha256") else "")
            + ")"
            if data.get("source") == "same"
            # a folder's files have no hash of their own in lock.json: only its path is known
            else f"the same source path ({where}; whether its files changed is not recorded)"
        )
        test = _test_line(data)
        console.print(
            f"data (A → B): {source}, another selection: {changes}; {test}",
            highlight=False,
            soft_wrap=True,
        )
        return
    if a["kind"] != b["kind"] or a["path"] != b["path"]:
        # two sources (digits and shapes, a folder and an npz): nothing of one changed
        console.print(
            f"data (A → B): different sources ({safe(a['path'] or a['kind'] or '?')} → "
            f"{safe(b['path'] or b['kind'] or '?')}), so the metrics are not of the same images",
            highlight=False,
            soft_wrap=True,
        )
        return
    console.print(
        f"data (A → B): differs (content hash {a['content_hash'][:12]}… → {b['content_hash'][:12]}…"
        f"{' in ' + where if a['path'] else ''}): the "
        "files or their splits changed between the runs, so the metrics are not of the same images",
        highlight=False,
        soft_wrap=True,
    )


def _setting(value: Any) -> str:
    """One data setting as the data line shows it: ``40``, ``[cat, dog]``, ``(none)`` for unset."""
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return "[" + ", ".join(safe(str(item)) for item in value) + "]"
    return safe(str(value))


def _test_line(data: dict[str, Any]) -> str:
    """Whether two selections of one source were tested on the same images (the metrics then
    compare the training selections), on what ``test_same`` rests."""
    a, b = data["a"], data["b"]
    if data.get("test_same") is None:
        return "whether the test images are the same is not known (lock.json records no test size or seed)"
    if data["test_same"]:
        return (
            f"the test split can be the same ({a['test_images']} test images, seed {a['seed']}, "
            "the same test_split and classes)"
        )
    reasons = []
    if a["test_images"] != b["test_images"]:
        reasons.append(f"{a['test_images']} → {b['test_images']} test images")
    if a["seed"] != b["seed"]:
        reasons.append(f"seed {a['seed']} → {b['seed']}")
    from cnnspec.reporting.runs import TEST_SELECTION_KEYS

    keys = [change["key"] for change in data.get("selection") or [] if change["key"] in TEST_SELECTION_KEYS]
    reasons += [f"another {safe(key)}" for key in keys]
    return f"the test images differ too ({', '.join(reasons)}), so the metrics are not of the same images"


def default_png(a: Path, b: Path) -> Path:
    """The picture ``runs compare A B`` draws without ``--png``: ``compare-A-B.png`` in the
    current folder, of the run folders' names. Where that name is longer than the file system
    takes (less the room of the temp folder it is written in first), each run's name is cut to
    an equal share and a short hash of the whole name keeps pairs apart:
    ``compare-A…-B…-HASH.png`` (two 130-character names were refused as a --png too long, and
    no comparison was shown)."""
    import hashlib

    from cnnspec.fileio import TEMP_ROOM

    names = (a.resolve().name, b.resolve().name)
    whole = f"compare-{names[0]}-{names[1]}.png"
    try:
        room = os.pathconf(".", "PC_NAME_MAX") - len(TEMP_ROOM)
    except (OSError, ValueError):  # no such setting here: the common limit
        room = 255 - len(TEMP_ROOM)
    if len(os.fsencode(whole)) <= room:
        return Path(whole)
    digest = hashlib.sha256(os.fsencode(whole)).hexdigest()[:8]
    share = max(1, (room - len(f"compare---{digest}.png")) // 2)
    cut = [_cut_to(name, share) for name in names]
    return Path(f"compare-{cut[0]}-{cut[1]}-{digest}.png")


def _cut_to(name: str, size: int) -> str:
    """``name``'s start of at most ``size`` bytes (whole characters: no UTF-8 sequence cut)."""
    while len(os.fsencode(name)) > size:
        name = name[:-1]
    return name


def _compare(a: Path, b: Path, png: Path | None, format: str, force: bool) -> None:
    from cnnspec.reporting.runs import compare

    target = png or default_png(a, b)
    _check_target(target, (a, b), force)
    with owning_run(target.parent, target.parent):  # a picture written into a run folder: own it
        result = compare(a, b, target)
    if format == "json":
        echo(json.dumps(result, indent=2))
        return
    from rich.table import Table

    _notes(result["notes"])
    _notes(result["missing"], "note")
    console = stdout()
    console.print(f"[bold]A[/bold] {safe(a)}   [bold]B[/bold] {safe(b)}", highlight=False)
    if result["spec_missing"]:  # never "the same", nor one spec diffed against nothing
        why = "; ".join(f"{side}: {reason}" for side, reason in result["spec_missing"].items())
        console.print(f"resolved specs: not compared ({safe(why)})", highlight=False, soft_wrap=True)
    elif result["spec_diff"]:
        console.print("resolved specs (A → B):", highlight=False)
        for line in result["spec_diff"]:
            style = (
                "green"
                if line.startswith("+")
                else "red"
                if line.startswith("-")
                else "cyan"
                if line.startswith("@@")
                else ""
            )
            # the diff quotes the run folders' names and their resolved.yaml: the user's text,
            # escaped like every other (an ESC in either reached the terminal raw); the colour
            # is the console's style, never markup around the text
            console.print(safe(line), style=style or None, highlight=False, soft_wrap=True)
    else:
        console.print("resolved specs: the same", highlight=False)
    weights = result["starting_weights"]
    if weights["a"] != weights["b"]:  # a fine-tuned run and a scratch run of one spec
        console.print(
            f"starting weights (A → B): {safe(weights['a'])} → {safe(weights['b'])}", highlight=False
        )
    _print_data(console, result["data"])
    missing = " and ".join(result["unfinished"])
    damaged = " and ".join(result["metrics_damaged"])
    if missing:  # no metrics.json: nothing to compare, said where the table would be (not an empty one)
        has = "have" if " and " in missing else "has"
        console.print(f"metrics: none to compare: {missing} {has} no metrics.json yet (unfinished or failed)")
    elif damaged:  # one that can't be read: the notes above say why
        console.print(f"metrics: none to compare: the metrics.json of {damaged} can't be read (see above)")
    else:
        table = Table(title="metrics", title_justify="left")
        for column in ("metric", "A", "B", "B − A"):
            table.add_column(column, justify="left" if column == "metric" else "right")
        for row in result["metrics"]:
            table.add_row(
                safe(row["metric"]),
                _cell(row, "a", "A"),
                _cell(row, "b", "B"),
                "" if row["difference"] is None else _num(row["difference"], signed=True),
            )
        console.print(table)
    console.print(f"learning curves: {safe(result['curves'])}", highlight=False)


def _check_target(target: Path, runs: tuple[Path, Path], force: bool) -> None:
    """Refuse a picture path before any work: one not ending in ``.png`` (as ``visualize -o``
    and ``report -o`` check theirs), never inside a compared run (its model.keras, lock.json or
    spec would be replaced by a PNG, --force or not) nor another run folder (its history.png
    would show these runs' curves), and an existing file cnnspec did not draw only with
    ``--force``, as ``visualize -o`` does."""
    from cnnspec.cli.outputs import enclosing_run, refuse_foreign
    from cnnspec.errors import UsageError
    from cnnspec.fileio import check_writable
    from cnnspec.reporting.images import is_cnnspec_png
    from cnnspec.reporting.runs import is_run

    where = os.path.realpath(target)  # (os.path: a name the OS refuses fails in check_writable)
    for run in runs:
        folder = os.path.realpath(run)
        if is_run(Path(folder)) and os.path.commonpath([where, folder]) == folder:
            raise UsageError(
                f"--png {target} is inside the compared run folder {run}; runs compare does not "
                "write into a run it reads",
                "choose a --png outside both run folders, such as compare.png",
            )
    holder = enclosing_run(Path(where).parent)
    if holder is not None:  # a third run's: its history.png would show these two runs' curves
        raise UsageError(
            f"--png {target} is inside the run folder {holder}, which is not compared; runs "
            "compare does not write into another run's folder",
            "choose a --png outside run folders, such as compare.png",
        )
    if target.suffix.lower() != ".png":  # the curves are PNG data, whatever the name says
        raise UsageError(
            f"expected --png to end in .png; received {target}", "runs compare draws the curves as a PNG"
        )
    check_writable(target, option="--png", folder=False)  # also a folder, FIFO, device, socket
    # its own earlier picture (compared again) is replaced; a picture of the user's only with --force
    refuse_foreign(target, "--png", force, is_cnnspec_png)


def _num(value: Any, signed: bool = False, digits: int = 4) -> str:
    """A figure as the tables show it; a non-finite one as its stored text (``nan``)."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return safe(str(value))
    if isinstance(value, int):
        return f"{value:+d}" if signed else str(value)
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
