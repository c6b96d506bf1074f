"""`cnnspec train FILE` — train a spec's model on its data and write a run directory."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from cnnspec.cli.common import (
    DEFAULT_MAX_PARAMS,
    EXIT_INTERRUPTED,
    EXIT_OUT_OF_MEMORY,
    AllowOutsideOption,
    MaxParamsOption,
    NoReportOption,
    SetOption,
    SpecArgument,
    batch_boundary_stops,
    compile_reported,
    given_output,
    given_path,
    guarded,
    stderr,
)
from cnnspec.cli.render import clean, safe
from cnnspec.training.outcomes import report_command

EXIT_CLUSTER = 75  # EX_TEMPFAIL: a worker of the cluster was lost; restart with --resume


@guarded
def train(
    file: SpecArgument,
    set: SetOption = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help="same as --set training.epochs=N")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="same as --set training.batch_size=N")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "--output",
            "-o",
            help="the run folder (default runs/<name>-<timestamp>)",
            parser=given_output,
        ),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume", help="continue the interrupted run in this folder (same spec)", parser=given_path
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the result line")] = False,
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            help="multi_worker: every worker's host:port, comma-separated (instead of TF_CONFIG)",
        ),
    ] = None,
    task_index: Annotated[
        int | None,
        typer.Option("--task-index", min=0, help="multi_worker: this worker's index in --cluster (0: chief)"),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights",
            help="start from these weights (a run folder, .keras, .weights.h5 or imagenet); "
            "replaces the spec's weights:; without training.seed, a run folder of the same data "
            "gives its seed, so that its test split is kept",
        ),
    ] = None,
    allow_outside: AllowOutsideOption = False,
    max_params: MaxParamsOption = DEFAULT_MAX_PARAMS,
    hash_content: Annotated[
        bool,
        typer.Option(
            "--hash-content",
            help="image folders/CSVs: lock.json's data hash reads every file's bytes "
            "(default: names, sizes, modification times)",
        ),
    ] = False,
    no_report: NoReportOption = False,
) -> None:
    """Train the model of a spec and write a reproducible run folder (model, metrics, plots).

    State is saved after every epoch: after a crash or Ctrl-C, `--resume RUN_DIR` continues.
    With runtime.distribute: multi_worker, start one process per worker (--cluster and
    --task-index, or TF_CONFIG); the chief (worker 0) writes the run folder.
    """
    from cnnspec.errors import UsageError
    from cnnspec.reporting.html import write_report
    from cnnspec.reporting.own_data import run_data
    from cnnspec.spec.compose import FlagOverride
    from cnnspec.training.distribute import ClusterError, parse_cluster
    from cnnspec.training.outcomes import KernelRefused, OutOfMemory, ReportInterrupted, TrainingInterrupted
    from cnnspec.training.progress import Display
    from cnnspec.training.trainer import train as run_training

    overrides = list(set or [])
    if epochs is not None:  # (an error in it names --epochs, not a --set the user never typed)
        overrides.append(FlagOverride(f"training.epochs={epochs}", "--epochs"))
    if batch_size is not None:
        overrides.append(FlagOverride(f"training.batch_size={batch_size}", "--batch-size"))
    addresses = parse_cluster(cluster) if cluster is not None else None
    if task_index is not None and addresses is None:
        raise UsageError("expected --cluster with --task-index")
    if addresses is not None and task_index is None:
        raise UsageError("expected --task-index with --cluster", "worker 0 is the chief")
    if weights is not None and resume is not None:
        raise UsageError(
            "expected --weights or --resume, not both", "a resumed run restores its own snapshot"
        )
    with _refused_resume(resume, file):
        compiled = compile_reported(file, overrides, allow_outside=allow_outside, max_params=max_params)
    display = Display.auto(quiet)
    # Ctrl-C, and a scheduler's SIGTERM: save and exit (interrupts.py: raised at a batch boundary)
    try:
        with batch_boundary_stops(), _refused_resume(resume, file):
            result = run_training(
                compiled,
                out=out,
                resume=resume,
                display=display,
                overrides=overrides,
                command=sys.argv,
                cluster=addresses,
                task_index=task_index,
                write_report=None if no_report else write_report,
                weights=weights,
                hash_content=hash_content,
                run_data=run_data,  # the weights run's split: its images among the test images
            )
    except TrainingInterrupted as stop:
        console = stderr()
        saved = (  # (no epoch yet: a stop while the data was read or lock.json written)
            f"after {stop.epochs_done} whole epoch(s); their state is saved in {safe(stop.run_dir)}/state"
            if stop.epochs_done
            else f"before its first whole epoch; {safe(stop.run_dir)} starts again from epoch 1"
        )
        console.print(f"[yellow]interrupted[/yellow] {saved}", highlight=False)
        print_resume(stop.resume_command)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except ReportInterrupted as stop:
        stderr().print(
            f"[yellow]interrupted[/yellow] once the run had finished; its results are saved in "
            f"{safe(stop.run_dir)}: if report.html is missing, write it with "
            f"`{safe(report_command(stop.run_dir))}`",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except OutOfMemory as full:
        raise out_of_memory_exit(full) from None
    except KernelRefused as refused:
        raise kernel_refused_exit(refused) from None
    except ClusterError as lost:
        console = stderr()
        # (the message names the workers' addresses as --cluster or TF_CONFIG gave them)
        console.print(f"[bold red]error:[/bold red] {safe(lost)}", highlight=False, soft_wrap=True)
        if lost.hint:
            console.print(f"  [cyan]hint:[/cyan] {safe(lost.hint)}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_CLUSTER) from None
    print_result(display, result, quiet, no_report=no_report)


def out_of_memory_exit(full: Any) -> typer.Exit:
    """Report a run that ran out of memory (:class:`~cnnspec.training.outcomes.OutOfMemory`):
    the error, where its epochs are saved, and the two ways on (exit 1, as a full disk)."""
    console = stderr()
    console.print(f"[bold red]error:[/bold red] {safe(full)}", highlight=False, soft_wrap=True)
    saved = saved_state(full, "; ")
    smaller = max(1, full.batch_size // 2)
    console.print(
        f"  [cyan]hint:[/cyan] {saved}. Free the memory (another process may hold the device) and "
        f"continue with the command below, or start a new run with smaller batches (--batch-size "
        f"{smaller}), a smaller input or model, or runtime: {{mixed_precision: true}} on a GPU",
        highlight=False,
        soft_wrap=True,
    )
    print_resume(full.resume_command)
    return typer.Exit(EXIT_OUT_OF_MEMORY)


def saved_state(stopped: Any, joint: str) -> str:
    """Where a stopped run's epochs are (``stopped``: its ``epochs_done`` and ``run_dir``);
    ``joint`` joins "no epoch was finished" to what that means."""
    if stopped.epochs_done:
        return (
            f"the state of its {stopped.epochs_done} whole epoch(s) is saved in {safe(stopped.run_dir)}/state"
        )
    return f"no epoch was finished{joint}{safe(stopped.run_dir)} starts again"


def kernel_refused_exit(refused: Any) -> typer.Exit:
    """Report a run a TensorFlow kernel refused (:class:`~cnnspec.training.outcomes.KernelRefused`):
    the error, its hint, where its epochs are, and the command that goes on with the other
    kernels (oneDNN's or TensorFlow's own: the limit's setting; a new run in that folder is
    refused: it holds the run's files)."""
    from cnnspec.cli.common import EXIT_KERNEL

    console = stderr()
    console.print(f"[bold red]error:[/bold red] {safe(refused)}", highlight=False, soft_wrap=True)
    saved = saved_state(refused, ": ")
    hint = f"{safe(refused.limit.hint)}; {saved}"
    console.print(f"  [cyan]hint:[/cyan] {hint}", highlight=False, soft_wrap=True)
    print_resume(f"{refused.limit.setting} {refused.resume_command}")
    return typer.Exit(EXIT_KERNEL)


@contextmanager
def _refused_resume(resume: Path | None, spec: Path) -> Iterator[None]:
    """A ``--resume`` refused for a ``training.class_weight`` key: a note that says how to go on.
    The run was started by a cnnspec that took the key (a class ``data.classes`` left out, two
    keys weighing one class); a resume trains, so it is refused as train refuses it, but fixing
    the key changes the spec, which a resumed run must keep: a new run is the way on (the old
    run's model stays usable: evaluate, predict, report … read it)."""
    from cnnspec.errors import Note, SpecError

    try:
        yield
    except SpecError as exc:
        if resume is None or not any(d.path.startswith("training.class_weight") for d in exc.diagnostics):
            raise
        note = Note(
            f"the run in {resume} was started with this key by an older cnnspec; a resumed run keeps "
            f"its spec, so fix the key and start a new run (cnnspec train {spec}): the run's model "
            "is still read by evaluate, predict, report …"
        )
        raise SpecError(
            d.with_notes((note,)) if d.path.startswith("training.class_weight") else d
            for d in exc.diagnostics
        ) from None


def print_resume(command: str) -> None:
    """The command that continues a stopped run, on stderr, as it is to be pasted: `--set
    'freeze: [body]'` is no markup (Rich ate the [body])."""
    stderr().print(f"resume with:  {clean(command)}", highlight=False, soft_wrap=True, markup=False)


def print_result(display: Any, result: Any, quiet: bool, no_report: bool = False) -> None:
    """The closing summary: key figures and where the files are (``no_report``: the page was
    left out, and the row that names it says how to write it)."""
    from cnnspec.training.progress import figure
    from cnnspec.training.task_metrics import headline

    if result.completed is not None:  # --resume of a run stopped after its results: its end
        done = "; ".join(result.completed) or "nothing could be written"
        typer.echo(f"finished {clean(result.run_dir)}: {done}")
        return
    metrics = result.metrics
    figures = headline(metrics)  # the task's own: test accuracy, mean IoU, macro F1, MAE/R² ...
    first = ", ".join(f"{label.removeprefix('test ')} {figure(value)}" for label, value in figures)
    if result.worker is not None:  # a non-chief worker: the chief reports and writes the files
        typer.echo(
            f"{result.worker.replace(':', ' ')} finished: test {first}, "
            f"weights sha256 {metrics['weights_sha256']}; the chief writes {clean(result.run_dir)}"
        )
        return
    line = (
        f"test {first}, loss {figure(metrics['test_loss'])} after "
        f"{metrics['epochs_run']} epoch(s) in {metrics['train_seconds']:.1f}s → {clean(result.run_dir)}"
    )
    if quiet:
        typer.echo(line)
        return
    from rich.table import Table

    # The run folder and its files are the user's paths (--out "[/x]run"): never read as markup
    table = Table(title=f"trained → {safe(result.run_dir)}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for label, value in figures:
        table.add_row(safe(label), figure(value))
    table.add_row("test loss", figure(metrics["test_loss"]))
    if "macro_f1" in metrics:
        table.add_row("macro F1", f"{metrics['macro_f1']:.4f}")
    stopped = " (stopped early)" if metrics.get("stopped_early") else ""
    table.add_row("epochs", f"{metrics['epochs_run']}/{metrics['epochs_planned']}{stopped}")
    if metrics.get("best_epoch"):
        table.add_row("best epoch", str(metrics["best_epoch"]))
    from cnnspec.reporting.html import speed_text

    speed = speed_text(metrics)  # each figure labelled, as the report's training-time card has them
    table.add_row("training time", f"{metrics['train_seconds']:.1f}s" + (f" ({speed})" if speed else ""))
    for label, key in (
        ("model", "model"),
        ("metrics", "metrics"),
        ("history", "history_csv"),
        ("curves", "history_png"),
        ("confusion", "confusion_matrix"),
        ("report", "classification_report"),
        ("report", "task_report"),
        ("page", "html_report"),
    ):
        if key in result.files:
            table.add_row(label, safe(result.files[key]))
    if no_report:
        later = report_command(result.run_dir)
        table.add_row("page", f"not written (--no-report): {safe(later)}")
    for key, path in result.files.items():  # the task's pictures: regression.png, segmentation.png, ...
        if key.endswith("_png") and key != "history_png":
            table.add_row("picture", safe(path))
    display.console.print(table)
