"""`cnnspec export TARGET --format savedmodel|tflite|onnx` — a trained model for serving stacks."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

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
from cnnspec.cli.render import safe

if TYPE_CHECKING:
    from cnnspec.export.exporter import ExportResult

EXIT_MISMATCH = 1


class Format(StrEnum):
    savedmodel = "savedmodel"
    tflite = "tflite"
    onnx = "onnx"


class Quantize(StrEnum):
    dynamic = "dynamic"
    float16 = "float16"
    int8 = "int8"


def _size(size: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if size < 1024 or unit == "MiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return str(size)


def _refuse_other_run(target: Path, output: Path | None) -> None:
    """Refuse an ``-o`` inside another run's folder than the target's (exit 2, whatever
    ``--force`` says), as evaluate refuses its ``--out`` there: that run reads the file as its
    own export (``predict -r onnx`` then said its model.keras "changed since the export")."""
    from cnnspec.cli.outputs import enclosing_run
    from cnnspec.errors import UsageError
    from cnnspec.export.targets import resolve_target

    holder = enclosing_run(output) if output is not None else None
    if holder is None:
        return
    try:
        source, _ = resolve_target(target)
    except UsageError:  # export_model refuses the target itself, in its words
        return
    if holder == enclosing_run(source.parent):  # (its own run: a checkpoint's too)
        return
    raise UsageError(
        f"expected -o outside the folders of other runs; {output} is inside {holder}, another run's "
        "folder, where the export would be read as that run's",
        "choose another -o, or leave -o out to write into the run's own export/ folder",
    )


@contextlib.contextmanager
def _owning(target: Path, output: Path | None) -> Iterator[None]:
    """Hold the run folder's lock (:mod:`cnnspec.training.runlock`) while the export is written
    into it, as evaluate and benchmark do: an export beside a training or ``--resume`` in
    progress would be made from a model that is about to be replaced. A busy folder is refused
    (``RunFolderBusy``, exit 2) before TensorFlow is imported. Nothing is locked for a model
    outside a run folder, nor for an ``-o`` outside the run (the record's model hash, taken as
    the model is loaded, still ties that export to the model it was made from). A model in a
    folder of a run (a checkpoint) locks that run."""
    from cnnspec.errors import UsageError
    from cnnspec.export.targets import resolve_target

    try:
        source, _ = resolve_target(target)
    except UsageError:  # no run to lock: export_model refuses the target itself, in its words
        yield
        return
    from cnnspec.cli.outputs import enclosing_run
    from cnnspec.fileio import same_file

    # the run the model lies in: a checkpoint (RUN/checkpoints/best.keras) is the run's too, and
    # its export's temp files there are what a --resume's leftover cleanup removes
    run_dir = enclosing_run(source.parent)
    # named as typed (`c/fin is in use`), as the other commands name a busy run: the folder the
    # target lies in, found again by walking up the path as given (enclosing_run resolves it)
    typed = Path(target)
    run_dir = next((p for p in (typed, *typed.parents) if run_dir and same_file(p, run_dir)), run_dir)
    with owning_run(run_dir, output or source.parent, alternative="export it elsewhere with -o PATH"):
        yield


@guarded
def export(
    target: Annotated[
        Path,
        typer.Argument(
            help="a run folder (with model.keras) or a .keras file", show_default=False, parser=given_path
        ),
    ],
    fmt: Annotated[Format, typer.Option("--format", "-f", help="the artifact to write")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "--out",
            "-o",
            help="where to write it (default RUN/export/model.* or beside the .keras file)",
            parser=given_output,
        ),
    ] = None,
    quantize: Annotated[
        Quantize | None,
        typer.Option(
            "--quantize",
            help="TFLite only: dynamic (int8 weights, float activations), float16 (float16 weights), "
            "or int8 (full integer: every op, the input and the output int8, for microcontrollers "
            "and Edge TPUs; calibrated on up to 200 of the run's training images, so a run folder "
            "only)",
        ),
    ] = None,
    verify: Annotated[
        bool,
        typer.Option("--verify/--no-verify", help="run the export on a batch and compare with Keras"),
    ] = True,
    force: Annotated[
        bool,
        typer.Option("--force", help="replace an existing -o file, or a folder holding only a SavedModel"),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    allow_outside: AllowOutsideOption = False,
    ensemble: Annotated[
        list[Path] | None,
        typer.Option(
            "--ensemble",
            help="export this trained model too, a run folder or a .keras file (repeatable), as one "
            "model that answers the mean of their outputs, as evaluate and predict --ensemble do, "
            "checked as evaluate checks them: one that trained on this run's test images is refused "
            "(needs -o; each model's temperature folded in under --temperature auto)",
            parser=given_path,
        ),
    ] = None,
    tta: Annotated[
        str | None,
        typer.Option(
            "--tta",
            metavar="hflip|vflip|hflip,vflip",
            help="export a model that answers the mean over the image and its mirror images, as "
            "evaluate and predict --tta do (a segmentation's maps mirrored back; needs -o)",
        ),
    ] = None,
    temperature: Annotated[
        str,
        typer.Option(
            "--temperature",
            metavar=TEMPERATURE_METAVAR,
            help="classifiers, multi-label and segmentation models: fold this temperature into the "
            "weights of the layer that makes the scores, so that the export answers with scaled "
            "probabilities "
            "(none or 1: the model's own); auto: the run's temperature.json, written by `cnnspec "
            "calibrate`, where it is of this model file, else 1",
        ),
    ] = "auto",
    spec: Annotated[
        Path | None,
        typer.Option(
            "--spec",
            help="the spec that describes the model (for a .keras file outside its run folder): its "
            "tasks, class names and pixel factor go into the record",
            parser=given_path,
        ),
    ] = None,
) -> None:
    """Export a trained model to SavedModel, TFLite or ONNX and check it against Keras.

    The export is written beside the target under a temporary name, run in its own runtime on
    a seeded batch, compared with the Keras model (float exports must agree within 1e-4 plus 1e-4
    of the output's largest absolute value; 1e-4 alone for outputs within [0, 1], probabilities),
    and only then renamed into place. The default output is replaced by a new
    export; an existing -o only with --force, and never a folder with files that are no export.

    Quantized TFLite exports (RUN/export/model.dynamic.tflite, .float16., .int8.) are checked by
    their decision agreement with Keras. --quantize int8 calibrates its activation ranges on up
    to 200 training images of the run (seeded, scaled as training scaled them) and is verified
    on the run's test images. Evaluate, predict and benchmark run a quantized export as a runtime
    of its own (--runtime tflite-int8, tflite-float16, tflite-dynamic; benchmark --formats
    tflite,tflite-int8), quantizing their float input and dequantizing its output themselves.

    A run calibrated by `cnnspec calibrate` is exported with its temperature folded into the
    kernel and bias of the layer that makes the class scores (--temperature auto): the export
    answers with the calibrated probabilities itself, in any serving stack. cnnspec evaluate,
    predict and benchmark read such an export as the model's own answer and scale it by their
    own --temperature.

    --ensemble OTHER (repeatable, with -o) writes the target and the other models as one model
    that answers the mean of their outputs, as evaluate and predict --ensemble do. --tta hflip
    (vflip, or both; with -o) writes a model that answers the mean over the image and its mirror
    images, as evaluate and predict --tta do: the mirrors are made inside the graph of standard
    layers, so any serving stack runs them.

    A .keras file outside its run folder is described by --spec SPEC where its own file cannot
    tell: the record then keeps the spec's tasks, the class names it fixes and its pixel factor
    (else 1/255 is assumed, and a note says so).
    """
    from cnnspec.export import ExportFailed, ExportMismatch, export_model
    from cnnspec.reporting.run import outside_allowed
    from cnnspec.reporting.temperature import parse_option
    from cnnspec.reporting.tta import parse_views

    views = parse_views(tta)
    _refuse_other_run(target, output)
    try:
        # only this command line may let the run's spec read outside its folder, never lock.json
        with _owning(target, output), outside_allowed(allow_outside):
            result = export_model(
                target,
                fmt.value,
                output,
                quantize=quantize.value if quantize else None,
                verify=verify,
                force=force,
                temperature=parse_option(temperature),
                ensemble=ensemble or (),
                views=views,
                spec=spec,
            )
    except (ExportMismatch, ExportFailed) as exc:
        stderr().print(f"[bold red]error:[/bold red] {safe(exc)}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_MISMATCH) from None
    if json_output:  # (allow_nan=False: never a bare NaN, which is no JSON)
        echo(json.dumps(result.as_dict(), indent=2, allow_nan=False))
        return
    console = stdout()
    kind = result.format + (f" ({result.quantize} quantized)" if result.quantize else "")
    console.print(
        f"[green]exported[/green] {safe(result.source)} → {safe(result.path)} "
        f"({kind}, {_size(result.size_bytes)}, {result.seconds:.1f}s)",
        highlight=False,
        soft_wrap=True,
    )
    if result.max_abs_diff is not None:
        within = tolerance_text(result)
        agreement = ""
        if result.top1_agreement is not None:  # (none for a regression: it makes no decision)
            basis = f" ({result.agreement_basis})" if result.agreement_basis else ""
            agreement = f", decision agreement {result.top1_agreement:.3f}{basis}"
        batch = safe(result.verify_data) if result.verify_data else f"{result.batch} inputs"
        console.print(
            f"verified with {result.runtime} on {batch}: max abs difference vs Keras "
            f"{result.max_abs_diff:.2e}{within}{agreement}",
            highlight=False,
            soft_wrap=True,
        )
    if result.calibration_images is not None:
        console.print(
            f"calibrated on {result.calibration_images} of the run's training images",
            highlight=False,
            soft_wrap=True,
        )
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {safe(note)}", highlight=False, soft_wrap=True)


def tolerance_text(result: ExportResult) -> str:
    """The tolerance the verification checked, as the printed line says it: ``1e-4`` alone for
    an output whose Keras values all lie within [0, 1], ``+ 1e-4 × max |Keras|`` for the others
    (it said the relative part for every output, where the record's rule and the check give it
    only to outputs beyond [0, 1]), output by output where they differ; "" for none checked."""
    if result.tolerance is None:
        return ""
    relative = f" + {result.rtol:g} × max |Keras|" if result.rtol else ""
    if not result.relative:  # (no output told apart: the rule as a whole)
        return f" (tolerance {result.tolerance:g}{relative})"
    parts = [(name, f"{result.tolerance:g}{relative if scaled else ''}") for name, scaled in result.relative]
    said = list(dict.fromkeys(text for _name, text in parts))
    if len(said) == 1:
        return f" (tolerance {said[0]})"
    # (a model of several outputs, some of them within [0, 1])
    return " (tolerance " + "; ".join(f"{safe(name)}: {text}" for name, text in parts) + ")"
