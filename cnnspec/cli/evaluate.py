"""`cnnspec evaluate TARGET` — test-set metrics of a trained model, its confusion matrix and JSON.

TARGET is a run folder (or the ``model.keras`` in one), or any ``.keras`` file with ``--spec``
or ``--data`` saying which data to use. Models load in Keras safe mode only. ``--runtime onnx``
or ``tflite`` evaluates the run's verified export instead, with the same report.

A folder that ``--out`` names may not be another run's (or lie in one): the files written there
would be read as that run's results. In it, a file of the same name that cnnspec did not write
(a picture without its mark, a JSON or text file that is no evaluation) is replaced only with
``--force``, as ``visualize -o`` and ``report -o`` do; the run folder's own files (no ``--out``)
are replaced as before.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cnnspec.cli.common import (
    TEMPERATURE_METAVAR,
    AllowOutsideOption,
    echo,
    given_output,
    given_path,
    guarded,
    owning_run,
    stderr,
    stdout,
)
from cnnspec.cli.render import TextOrJson, safe
from cnnspec.spec.sections import DATASETS

if TYPE_CHECKING:
    from cnnspec.reporting.run import Run

TargetArgument = Annotated[
    Path,
    typer.Argument(
        help="a run folder written by `cnnspec train`, or a .keras model file",
        show_default=False,
        parser=given_path,
    ),
]
#: evaluate's TARGET: also an exported file served by itself (reporting/served.py).
EvaluateTarget = Annotated[
    Path,
    typer.Argument(
        help="a run folder written by `cnnspec train`, a .keras model file, or an exported "
        ".onnx/.tflite file with its record (with --data)",
        show_default=False,
        parser=given_path,
    ),
]
SpecOption = Annotated[
    Path | None,
    typer.Option(
        "--spec",
        help="the spec that describes the model's data (for a model outside a run folder)",
        parser=given_path,
    ),
]
DataOption = Annotated[
    str | None,
    typer.Option(
        "--data",
        help=f"test images from this source instead of the run's: {', '.join(DATASETS)}, an .npz file, "
        "a CSV of image paths and labels, or a folder of class sub-folders",
    ),
]
FormatOption = Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json")]
EnsembleOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--ensemble",
        help="average with this trained model too, a run folder or a .keras file (repeatable): the "
        "mean of their probabilities, each checked to take the same images and classes and not to "
        "have trained on the test images; Keras runtime",
        show_default=False,
        parser=given_path,
    ),
]
#: predict's ``--ensemble``: it scores no test images, so none are compared (evaluate and
#: export compare them: an export's record keeps the first run's split, which evaluate scores)
PredictEnsembleOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--ensemble",
        help="average with this trained model too, a run folder or a .keras file (repeatable): the "
        "mean of their probabilities, each checked to take the same images, pixel scale and classes "
        "(predict scores no test images: evaluate and export --ensemble also refuse a model that "
        "trained on the first one's); Keras runtime",
        show_default=False,
        parser=given_path,
    ),
]


#: ``--temperature`` of evaluate, predict and visualize: one definition, read by one parser
#: (:func:`~cnnspec.reporting.temperature.parse_option`), so that each takes the same words.
TemperatureOption = Annotated[
    str,
    typer.Option(
        "--temperature",
        metavar=TEMPERATURE_METAVAR,
        help="classifiers, multi-label and segmentation models: scale the probabilities by this "
        "temperature (none or 1: the model's own); "
        "auto: the run's temperature.json, written by `cnnspec calibrate`, where it is of this "
        "model file, else 1",
    ),
]
TtaOption = Annotated[
    str | None,
    typer.Option(
        "--tta",
        help="average the model's probabilities (a segmentation's per pixel, mirrored back) over "
        "each image and its mirror images: hflip, vflip, or hflip,vflip (not for regression)",
    ),
]


class Runtime(StrEnum):
    """Where a trained model runs: Keras, or a verified export without TensorFlow."""

    auto = "auto"
    keras = "keras"
    onnx = "onnx"
    tflite = "tflite"
    tflite_dynamic = "tflite-dynamic"
    tflite_float16 = "tflite-float16"
    tflite_int8 = "tflite-int8"


RUNTIME_HELP = (
    "keras, or a verified export run without TensorFlow (onnx: ONNX Runtime, tflite: LiteRT; "
    "tflite-int8, tflite-float16, tflite-dynamic: the quantized TFLite export); auto: the "
    "fastest verified float export in the run folder, else keras"
)


def refuse_ensemble_runtime(ensemble: list[Path] | None, runtime: Runtime) -> None:
    """``--ensemble`` runs every model in Keras: refuse another ``--runtime`` than keras or
    auto (which then means Keras)."""
    from cnnspec.errors import UsageError

    if ensemble and runtime not in (Runtime.keras, Runtime.auto):
        raise UsageError(
            f"expected --runtime keras with --ensemble (every model runs in Keras); received {runtime.value}",
            "drop --runtime",
        )


def print_notes(notes: list[str]) -> None:
    """Each note on a line of its own, to stderr; the file and class names in it are shown
    with their control characters escaped."""
    console = stderr()
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {safe(note)}", highlight=False)


def undecodable_notes(notes: list[str], *shown: object) -> list[str]:
    """``notes`` with :data:`~cnnspec.jsontext.UNDECODABLE_NOTE` added, once, where they or any
    text in ``shown`` (texts, or documents and lists of them) hold a file name that is not
    UTF-8: the output shows each such byte as ``\\xNN`` (text: :func:`~cnnspec.cli.render.safe`;
    JSON: :func:`~cnnspec.jsontext.utf8_safe`), which the note explains, as predict's does."""
    from cnnspec.jsontext import UNDECODABLE_NOTE, utf8_safe

    if UNDECODABLE_NOTE in notes or not utf8_safe([notes, *shown])[1]:
        return notes
    return [*notes, UNDECODABLE_NOTE]


def _safe_lines(text: str) -> str:
    """A multi-line report ready for Rich: its own line breaks stay, the class names in it are
    :func:`safe` (a class folder named ``dog\\x1b[2J`` is shown so, not run by the terminal)."""
    return "\n".join(safe(line) for line in text.split("\n"))


def report_table(document: dict[str, Any], title: str) -> Table:
    """A Rich classification report: per class, then accuracy and the averages."""
    table = Table(title=title, title_justify="left")
    table.add_column("class")
    for column in ("precision", "recall", "F1", "support"):
        table.add_column(column, justify="right")
    for name, row in document["per_class"].items():
        # (None: undefined, a class without test images has no recall or F1)
        low = row["f1"] is not None and row["f1"] < 0.8 and row["support"] > 0
        f1 = f"[red]{_figure(row['f1'])}[/red]" if low else _figure(row["f1"])
        table.add_row(safe(name), _figure(row["precision"]), _figure(row["recall"]), f1, str(row["support"]))
    total = sum(int(r["support"]) for r in document["per_class"].values())
    table.add_section()
    table.add_row("[bold]accuracy[/bold]", "", "", f"[bold]{document['accuracy']:.4f}[/bold]", str(total))
    for key, label in (("macro_avg", "macro avg"), ("weighted_avg", "weighted avg")):
        avg = document[key]
        table.add_row(
            label, f"{avg['precision']:.4f}", f"{avg['recall']:.4f}", f"{avg['f1']:.4f}", str(total)
        )
    return table


def _figure(value: float | None) -> str:
    """A report's figure: ``n/a`` where it is undefined."""
    return "n/a" if value is None else f"{value:.4f}"


def run_of(run: Run) -> Path | None:
    """The run folder whose lock a command takes to write into it for ``run``: its own, or the
    run folder a model file lies in below its top (a checkpoint, ``RUN/checkpoints/best.keras``,
    which :func:`~cnnspec.reporting.run.locate` reads as a model file of no run)."""
    from cnnspec.cli.outputs import enclosing_run

    return run.run_dir if run.run_dir is not None else enclosing_run(run.model_path.parent)


def refuse_other_run(folder: Path, run: Run, option: str = "--out") -> None:
    """Refuse (:class:`~cnnspec.errors.UsageError`, exit 2) to write a command's files into
    ``folder`` when it is, or lies in, another run's folder than ``run``'s: there they are read
    as that run's own (``evaluate RUN_A -o RUN_B`` replaced RUN_B's evaluation.json and
    confusion_matrix.png, and ``visualize RUN_B confusion`` then drew RUN_A's matrix). No
    ``--force`` lifts it. The folder the command writes by default (``run``'s) is never
    refused."""
    from cnnspec.cli.outputs import enclosing_run
    from cnnspec.errors import UsageError

    holder = enclosing_run(folder)
    if holder is None:
        return
    try:
        here = folder.resolve()
        own = {run.out_dir.resolve(), *([run.run_dir.resolve()] if run.run_dir is not None else [])}
    except (OSError, RuntimeError, ValueError):
        return  # (enclosing_run resolved it: not reached)
    if enclosing_run(run.model_path.parent) == holder:
        return  # a model file inside the run (a checkpoint): its own run
    if holder in own or here in own:
        return
    if here == holder:
        where = "is another run's folder"
    else:
        where = f"is inside {_as_given(folder, here, holder)}, another run's folder"
    raise UsageError(
        f"expected {option} outside the folders of other runs; {folder} {where}, where the files "
        "written would be read as that run's results",
        f"choose another {option} folder, or leave {option} out to write into {run.out_dir}",
    )


def refuse_other_models_evaluation(run: Run, force: bool) -> None:
    """Refuse (:class:`~cnnspec.errors.UsageError`, exit 2) to replace, beside a model file
    outside a run folder, the evaluation of another model file in that folder (``evaluate
    a.keras`` then ``evaluate b.keras`` replaced a's evaluation.json and pictures without a
    word), unless ``force``. A run folder holds one model; its files are replaced as before."""
    if force or run.run_dir is not None:
        return
    from cnnspec.errors import UsageError
    from cnnspec.reporting.evaluation import read_evaluation
    from cnnspec.reporting.views import of_model

    path = run.out_dir / "evaluation.json"
    document = read_evaluation(path)
    if document is None or of_model(document, run):  # (the rule `visualize` reads it by)
        return
    other = Path(str(document.get("model"))).name
    raise UsageError(
        f"expected to write the evaluation of {run.model_path.name} beside it; {path} is the "
        f"evaluation of {other}, another model, which this one would replace",
        f"pass --out FOLDER to write it elsewhere, or --force to replace {other}'s",
    )


def _as_given(folder: Path, here: Path, holder: Path) -> Path:
    """The run folder ``holder`` that ``folder`` (resolved: ``here``) lies in, spelled as the
    command line spelled ``folder`` (``runs/b`` of ``-o runs/b/sub``) where that leads there,
    else its absolute path."""
    depth = len(here.relative_to(holder).parts)
    if len(folder.parts) > depth:
        shown = Path(*folder.parts[: len(folder.parts) - depth])
        with contextlib.suppress(OSError, RuntimeError):
            if shown.resolve() == holder:
                return shown
    return holder


def refuse_foreign_files(paths: list[Path], force: bool, option: str = "--out") -> None:
    """Refuse to replace any of ``paths`` that cnnspec did not write (as ``visualize -o`` and
    ``report -o`` refuse theirs; :func:`~cnnspec.cli.outputs.refuse_foreign`), unless
    ``force``: a PNG without cnnspec's mark, an ``evaluation.json`` or ``task_report.txt`` that
    is not one (:func:`~cnnspec.reporting.evaluation.is_evaluation`)."""
    from cnnspec.cli.outputs import refuse_foreign
    from cnnspec.reporting.evaluation import is_evaluation
    from cnnspec.reporting.images import is_cnnspec_png

    for path in paths:
        ours = is_cnnspec_png if path.suffix.lower() == ".png" else is_evaluation
        refuse_foreign(path, option, force, ours)


def _planned_files(run: Run, folder: Path) -> list[Path]:
    """The files an evaluation of ``run`` writes into ``folder`` that are known before the
    model is loaded: evaluation.json, and what its spec's outputs add (a classifier's
    confusion_matrix.png; another task's task_report.txt and pictures). A model without a spec
    shows its task only once loaded: write_evaluation checks the rest before writing."""
    files = [folder / "evaluation.json"]
    if run.compiled is None:  # (no spec: no config to tell the outputs' tasks)
        return files
    config = run.config
    if config is None:
        return files
    if not config.task_path:
        return [*files, folder / "confusion_matrix.png"]
    from cnnspec.training.task_results import picture_name

    pictures = [name for task in config.tasks if (name := picture_name(config, task))]
    return [*files, folder / "task_report.txt", *(folder / name for name in pictures)]


@guarded
def evaluate(
    target: EvaluateTarget,
    data: DataOption = None,
    spec: SpecOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "--output",
            "-o",
            help="folder for evaluation.json and confusion_matrix.png "
            "(default: the run; with --data, its evaluations/SOURCE/, where the same file evaluated "
            "again, changed or not, replaces its older evaluation)",
            parser=given_output,
        ),
    ] = None,
    format: FormatOption = TextOrJson.text,
    runtime: Annotated[Runtime, typer.Option("--runtime", "-r", help=RUNTIME_HELP)] = Runtime.keras,
    tta: TtaOption = None,
    ensemble: EnsembleOption = None,
    temperature: TemperatureOption = "auto",
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="replace an existing --out file that cnnspec did not write, or another model's "
            "evaluation beside a model file",
        ),
    ] = False,
    allow_outside: AllowOutsideOption = False,
) -> None:
    """Evaluate a trained model on the test split: classification report, confusion matrix, JSON.

    Writes evaluation.json and confusion_matrix.png into the run folder (or --out, which may
    not be another run's folder). An existing --out file is replaced only when cnnspec wrote
    it, or with --force; so is the evaluation of another model file beside a model file
    outside a run folder. An exported .onnx or .tflite file is evaluated by itself, with the
    record `cnnspec export` wrote beside it and --data: no run folder, no model, no TensorFlow.
    --data images the run trained or validated on (the same files, or arrays of the same
    pixels) are scored too, with a note saying how many: the figures may flatter the model.
    """
    from cnnspec.errors import UsageError
    from cnnspec.export.runtimes import choose, open_session, served_file, serves_temperature
    from cnnspec.fileio import check_writable
    from cnnspec.paths import exists
    from cnnspec.reporting.evaluation import evaluate as run_evaluation
    from cnnspec.reporting.evaluation import evaluate_export, write_evaluation
    from cnnspec.reporting.run import locate
    from cnnspec.reporting.run_splits import check_data_known
    from cnnspec.reporting.temperature import chosen as chosen_temperature
    from cnnspec.reporting.temperature import parse_option
    from cnnspec.reporting.tta import parse_views
    from cnnspec.training.modelfile import load_model

    views = parse_views(tta)
    wanted = parse_option(temperature)
    if out is not None and not exists(out) and out.suffix.lower() in (".json", ".png", ".txt"):
        raise UsageError(
            f"expected --out to name a folder (for evaluation.json and confusion_matrix.png); "
            f"received the file name {out}",
            f"pass the folder, e.g. --out {out.parent / out.stem}",
        )
    served = served_file(target)  # an exported file by itself: its record says what it is
    if served:
        from cnnspec.reporting.served import inexact_loss_notes, served_record, served_run

        record, scale, runtime_notes = served_record(
            target, runtime.value, spec, ensemble, wanted, default=Runtime.keras.value
        )
        if data is None:
            raise UsageError(
                f"expected --data SOURCE with the exported file {target}: a file has no data of its own",
                "pass --data (an .npz file, an image folder, digits …), or the run folder for its test split",
            )
        run = served_run(record)
        if record.tasks is None and "loss" not in record.data["output"]:  # (an older record's)
            runtime_notes.append(
                "loss: the crossentropy of the file's probabilities (its record keeps no training "
                "loss; the run folder's evaluate has the loss it trained with)"
            )
        runtime_notes.extend(inexact_loss_notes(record))
    else:
        # only this command line may let the run's spec read outside its folder, never lock.json
        run = locate(target, spec, allow_outside=allow_outside)
        check_data_known(run, data)  # before the model is loaded
    folder = out if out is not None else run.out_dir
    from cnnspec.cli.outputs import written_to

    where, instead = written_to(out, run.run_dir)
    check_writable(folder, option=where, hint=instead)  # before TensorFlow is imported
    check: Callable[[list[Path]], None] | None = None
    if out is None:  # (the run's own files are replaced as before; another model's are not)
        refuse_other_models_evaluation(run, force)
        if run.run_dir is None:  # beside a model file: the user's folder, as an --out is
            if data is None:
                refuse_foreign_files(_planned_files(run, folder), force)  # before the model is loaded
            check = functools.partial(refuse_foreign_files, force=force)
    else:
        refuse_other_run(out, run)
        # --data aimed at the run itself goes to its evaluations/SOURCE/: checked when written
        if data is None or run.run_dir is None or out.resolve() != run.run_dir.resolve():
            refuse_foreign_files(_planned_files(run, out), force)  # before the model is loaded
        # and again, as they are about to be written: a model without a spec told its task late
        check = functools.partial(refuse_foreign_files, force=force)
    if not served:
        # The target as given: a folder's exports are in its export/ (with or without lock.json)
        refuse_ensemble_runtime(ensemble, runtime)
        _, record, runtime_notes = choose(
            target,
            "keras" if ensemble else runtime.value,
            lambda found: found.inexact(chosen_temperature(run, wanted, [])),  # (auto tries the next)
        )
        scale = chosen_temperature(run, wanted, runtime_notes)
        if record is not None and not serves_temperature(record, scale, runtime.value, runtime_notes):
            record = None
    # a checkpoint (RUN/checkpoints/best.keras) is its run's too: its evaluation, written beside
    # it by default, goes into that run (it was written without the lock, beside a training)
    with owning_run(run_of(run), folder):
        if record is None:
            from cnnspec.reporting.ensemble import load_members
            from cnnspec.training.onednn import layers_named

            model = load_model(run.model_path)
            members = load_members(ensemble or [], allow_outside)
            for member in members:
                member.temperature = chosen_temperature(member.run, wanted, runtime_notes)
            # (a kernel's refusal names the spec's layer; not with --ensemble: another model's
            # layer may have the same name)
            ir = run.compiled.ir if run.compiled is not None and not members else None
            with layers_named(model, ir):
                evaluation = run_evaluation(run, model, data, views, members, scale)
        else:
            stand_in = load_model(run.model_path) if run.compiled is None else None
            session = open_session(record.runtime, record.path)
            # (a served file has no Keras model: the run folder's evaluate computes the rest)
            keras = f"{'evaluate the run folder with ' if served else 'use '}--runtime keras for them"
            evaluation = evaluate_export(run, record, session, data, stand_in, views, scale, keras)
        document = evaluation.document
        document["notes"] = runtime_notes + document["notes"]
        files = write_evaluation(evaluation, folder, document["name"], check)
    written = {k: str(v) for k, v in files.items()}
    # (evaluation.json notes a name escaped in it; the folder written to is not in it)
    notes = undecodable_notes(document["notes"], document, written)
    print_notes(notes)
    if format == TextOrJson.json:
        from cnnspec.jsontext import utf8_safe

        shown = {**document, "notes": notes, "files": written}
        echo(json.dumps(utf8_safe(shown)[0], indent=2))  # (a name that is no UTF-8 escaped, as written)
        return
    source = document["data"]["source"].get("kind", "data")
    title = f"{safe(document['name'])}: {safe(source)} test set ({document['data']['images']:,} images)"
    if document["runtime"] != "keras":
        title += f", {document['runtime']} runtime"
    console = stdout()
    if document.get("task", "classification") != "classification":
        from cnnspec.training.task_metrics import headline

        console.print(_safe_lines(evaluation.report_text), highlight=False)
        figures = [f"loss {document['loss']:.4f}"] if isinstance(document["loss"], float) else []
        figures += [
            f"{safe(label.removeprefix('test '))} [bold]{value:.4f}[/bold]"
            for label, value in headline(document)
        ]
        figures.append(f"{document['images_per_second'] or 0:,.0f} images/s")
        console.print(" · ".join(figures), highlight=False)
        for path in files.values():
            console.print(f"wrote {safe(path)}", highlight=False)
        return
    from cnnspec.reporting.calibration import Calibration

    console.print(report_table(document, title))
    figures = [f"loss {document['loss']:.4f}"] if isinstance(document["loss"], float) else []
    figures.append(f"accuracy [bold]{document['accuracy']:.4f}[/bold]")
    for key, value in document["metrics"].items():
        if key not in ("loss", "accuracy") and isinstance(value, float):
            figures.append(f"{safe(key)} {value:.4f}")
    figures.append(f"{document['images_per_second'] or 0:,.0f} images/s")
    console.print(" · ".join(figures), highlight=False)
    if document.get("calibration"):  # (a document without one prints as before)
        console.print(Calibration.read(document["calibration"]).line(), highlight=False)
    for path in files.values():
        console.print(f"wrote {safe(path)}", highlight=False)
