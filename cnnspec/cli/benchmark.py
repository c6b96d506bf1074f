"""`cnnspec benchmark RUN` — the run's model in Keras, ONNX Runtime and LiteRT: speed,
accuracy, size and memory side by side (:mod:`cnnspec.export.benchmark`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cnnspec.cli.common import (
    AllowOutsideOption,
    echo,
    fail_usage,
    given_path,
    guarded,
    owning_run,
    stderr,
    stdout,
)
from cnnspec.cli.evaluate import FormatOption, TextOrJson, print_notes
from cnnspec.cli.render import safe
from cnnspec.jsontext import json_safe, utf8_safe

#: No runtime produced figures: every export or timing worker failed. Not a usage error (the
#: command line was fine and the work was started), so 1, as `search` exits when every trial
#: failed.
EXIT_FAILED = 1
#: ``--threads``' maximum: :data:`cnnspec.export.benchmark.MAX_THREADS` (why that figure is
#: there), repeated because importing that module here would bring NumPy into every
#: `cnnspec --help` (tests/test_runtimes.py checks that the two agree).
MAX_THREADS = 1024


def _size(size: int) -> str:
    return f"{size / 1024:,.1f} KiB" if size < 1 << 20 else f"{size / (1 << 20):,.1f} MiB"


def results_table(document: dict[str, Any]) -> Table:
    """One row per runtime: latency and throughput per batch size, the run's test figure
    (accuracy, or the task's: macro F1, MAE, mean IoU), size, memory."""
    from cnnspec.export.benchmark import score_text, score_title

    batches = [str(b) for b in document["settings"]["batches"]]
    threads = document["settings"]["threads"]
    table = Table(
        title=f"{safe(document['name'])}: {document['data']['images']:,} test images, "
        f"{threads['intra_op']} intra-op / {threads['inter_op']} inter-op thread(s)",
        title_justify="left",
    )
    table.add_column("runtime")
    for b in batches:
        table.add_column(f"batch {b} ms (p90)", justify="right")
    for b in batches:
        table.add_column(f"batch {b} img/s", justify="right")
    score = score_title(document["results"])
    for column in (safe(score), "size", "peak memory", "load s"):
        table.add_column(column, justify="right")
    for row in document["results"]:
        runtime = safe(row.get("runtime", "?"))
        if row.get("status") != "ok":
            table.add_row(runtime, f"[red]{safe(row.get('status', 'failed'))}[/red]")
            continue
        latency = [
            f"{row['latency_ms'][b]['median']:.3f} ({row['latency_ms'][b]['p90']:.3f})" for b in batches
        ]
        speed = [f"{row['throughput'][b]:,.0f}" for b in batches]
        table.add_row(
            runtime,
            *latency,
            *speed,
            safe(score_text(row, score)),
            _size(row["size_bytes"]),
            f"{row['peak_memory_mb']:,.0f} MB",
            f"{row['load_seconds']:.2f}",
        )
    return table


def outputs_table(document: dict[str, Any]) -> Table | None:
    """A model of several outputs: one row per runtime and output, with the output's test
    figures, its loss and its agreement with Keras (:func:`~cnnspec.export.benchmark.
    output_rows`); ``None`` for a model of one output."""
    from cnnspec.export.benchmark import output_rows

    cells = output_rows(document)
    if not cells:
        return None
    table = Table(title="each output on the test split", title_justify="left")
    for column in ("runtime", "output", "task", "test figures"):
        table.add_column(column)
    for column in ("loss", "max |Δ| vs keras", "agreement with keras"):
        table.add_column(column, justify="right")
    keys = ("runtime", "output", "task", "figures", "loss", "diff", "agreement")
    for row in cells:
        table.add_row(*(safe(row[key]) for key in keys))
    return table


#: The runtimes a benchmark without --formats compares, those of them installed.
DEFAULT_FORMATS = ("keras", "onnx", "tflite")


@guarded
def benchmark(
    target: Annotated[
        Path,
        typer.Argument(help="a run folder written by `cnnspec train`", show_default=False, parser=given_path),
    ],
    formats: Annotated[
        str | None,
        typer.Option(
            "--formats",
            help="runtimes to compare, comma-separated: keras, onnx, tflite, and the quantized "
            "TFLite exports tflite-int8, tflite-float16, tflite-dynamic (default: keras, onnx and "
            "tflite, those installed; a note names one left out)",
            show_default=False,
        ),
    ] = None,
    batch: Annotated[str, typer.Option("--batch", help="batch sizes to time, comma-separated")] = "1,32",
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            max=MAX_THREADS,
            help="intra-op threads for every runtime (default: the CPU count)",
        ),
    ] = None,
    runs: Annotated[int, typer.Option("--runs", min=3, help="timed calls per batch size (at least)")] = 50,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="untimed calls before timing")] = 10,
    format: FormatOption = TextOrJson.text,
    allow_outside: AllowOutsideOption = False,
) -> None:
    """Compare the model's runtimes: latency, throughput, test score, file size, peak memory.

    The test score is the run's own figure: a classifier's accuracy, a multi-label model's
    macro F1, a regression's MAE, a segmentation's mean IoU. A model of several outputs is
    scored on each output in every runtime (its test figures and loss, and how closely each
    export's answers agree with Keras's), in a second table.

    Exports what is missing (verified, as `cnnspec export` does), times each runtime in its own
    process with the same thread settings, and writes benchmark.json and benchmark.png into the
    run folder (report.html shows them). When every runtime fails, it exits 1 with the first
    reason and writes nothing: an earlier benchmark.json stays as it was.
    """
    from cnnspec.export.benchmark import (
        carry_over,
        parse_batches,
        parse_list,
        read_previous,
        run_benchmark,
        write_results,
    )
    from cnnspec.export.runtimes import RUNTIMES, installed, missing_note
    from cnnspec.reporting.run import locate, outside_allowed

    left_out: list[str] = []
    if formats is None:  # (a runtime asked for by name and not installed is refused instead)
        left_out = [r for r in DEFAULT_FORMATS if not installed(r)]
        runtimes = [r for r in DEFAULT_FORMATS if r not in left_out]
    else:
        runtimes = parse_list(formats, "--formats", RUNTIMES)
    sizes = parse_batches(batch)
    # only this command line may let the run's spec read outside its folder, never lock.json
    run = locate(target, allow_outside=allow_outside, run_only=True)
    folder = run.run_dir if run.run_dir is not None else run.out_dir
    console = stderr()
    with owning_run(run.run_dir, folder), outside_allowed(allow_outside):  # (it locates the run again)
        document = run_benchmark(
            target,
            runtimes,
            sizes,
            threads=threads,
            warmup=warmup,
            runs=runs,
            progress=lambda text: console.print(f"[dim]{safe(text)}…[/dim]", highlight=False),
        )
        document["notes"] = [*map(missing_note, left_out), *document["notes"]]
        failed = nothing_timed(document)
        if failed:
            print_notes(document["notes"])
            raise _all_failed(failed, folder / "benchmark.json")
        document = carry_over(document, read_previous(folder / "benchmark.json"))
        files = write_results(document, folder)
    print_notes(document["notes"])
    if format == TextOrJson.json:
        shown = {**document, "files": {k: str(v) for k, v in files.items()}}
        echo(json.dumps(json_safe(utf8_safe(shown)[0]), indent=2))  # (a name that is no UTF-8 escaped)
        return
    out = stdout()
    out.print(results_table(document))
    each = outputs_table(document)
    if each is not None:
        out.print(each)
    for path in files.values():
        out.print(f"wrote {safe(path)}", highlight=False)


def nothing_timed(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The result rows of a benchmark when every one of them failed (an export that did not
    verify, a worker that crashed or timed out), else ``[]``: some runtime has figures."""
    rows = document["results"]
    return rows if rows and all(row.get("status") != "ok" for row in rows) else []


def _all_failed(failed: list[dict[str, Any]], previous: Path) -> typer.Exit:
    """Say that no runtime could be timed, with the first one's reason, and what became of the
    folder's benchmark.json: nothing is written, so an earlier one (good figures) stays as it
    was instead of being replaced by a file of failures. The exit is :data:`EXIT_FAILED`."""
    first = failed[0]
    kept = (
        f"the earlier {previous} is kept as it was"
        if previous.is_file()
        else f"nothing was written to {previous.parent}"
    )
    which = f"all {len(failed)} failed; the first, " if len(failed) > 1 else ""
    fail_usage(
        f"no runtime could be timed: {which}{first.get('runtime', '?')}: {first.get('status', 'failed')}",
        f"{kept}; fix what it says, then run the benchmark again",
    )
    return typer.Exit(EXIT_FAILED)
