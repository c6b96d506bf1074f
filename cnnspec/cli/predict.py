"""`cnnspec predict MODEL IMAGE...` — the top classes of a trained model for image files.

MODEL is a run folder or a ``.keras`` file (class names come from the run folder); ``--runtime``
picks Keras or a verified ONNX/TFLite export (:mod:`cnnspec.export.runtimes`). IMAGE files
are PNG/JPEG/BMP/GIF (converted to the model's channels and size the way a training image
folder is read) or ``.npy`` arrays in the training data's format. JSON output::

    {"model": "...", "runtime": "onnx", "export": "RUN/export/model.onnx", "classes": [...],
     "predictions": [{"input": "cat.png", "notes": [...],
                      "top": [{"class": "cat", "index": 3, "probability": 0.97}, ...]}]}

``--format csv`` writes the same predictions as one row per input
(:mod:`cnnspec.reporting.prediction_csv`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cnnspec.cli.common import AllowOutsideOption, echo, given_output, given_path, guarded, owning_run, stdout
from cnnspec.cli.evaluate import (
    RUNTIME_HELP,
    PredictEnsembleOption,
    Runtime,
    SpecOption,
    TemperatureOption,
    TtaOption,
    print_notes,
    refuse_ensemble_runtime,
)
from cnnspec.cli.render import safe
from cnnspec.errors import SpecError, UsageError

if TYPE_CHECKING:
    from cnnspec.export.runtimes import ExportRecord
    from cnnspec.reporting.images import InputFile


#: Where a segmentation's masks go without --out.
MASKS_FOLDER = Path("predictions")

#: What :func:`_print_predictions` shows: the answers, the notes, the format, the model file,
#: the runtime, the export record, the class names, the TTA views, the ensemble, the temperatures.
Shown = tuple[
    list[dict[str, Any]], list[str], "PredictFormat", Path, str, Any, list[str], tuple[str, ...],
    "list[Path] | None", list[float],
]  # fmt: skip


class PredictFormat(StrEnum):
    """How the predictions are printed: a table per input, one JSON document, or CSV rows."""

    text = "text"
    json = "json"
    csv = "csv"


def _record_rescale(record: Any) -> Callable[[bool, Any], float | None]:
    """The export record's pixel factor for an input file's pixels (a ``Rescale`` of
    :func:`cnnspec.reporting.task_predict.scaled_groups`): where ``data.rescale: auto`` divided
    by the images' depth, a uint16 array by 65535 as training did (records written before
    ``rescale_by_depth`` scale every integer input as 8-bit)."""
    from cnnspec.reporting.pixel_ranges import pixel_depth

    by_depth = record.data["input"].get("rescale_by_depth") is True

    def rescale(integer: bool, pixels: Any) -> float | None:
        return 1.0 / pixel_depth(pixels) if integer and by_depth else record.rescale(integer)

    return rescale


def _entries(group: list[tuple[int, Any]], probs: Any, names: list[str], k: int) -> list[dict[str, Any]]:
    from cnnspec.reporting.task_predict import top_classes

    return [
        {"order": index, "input": item.label, "notes": list(item.notes), "top": top_classes(row, names, k)}
        for (index, item), row in zip(group, probs)
    ]


#: A task model's class, label or value names by output name (an output without: none known)
Names = dict[str, list[str]]


def _reading(run: Any, record: Any) -> tuple[tuple[Any, ...] | None, list[str] | None, Names]:
    """How to read the model's outputs: its tasks (``None``: a single classifier), a
    classifier's class names (``None``: none known, indices are shown) and a task model's names
    by output, from the run or, for a model used outside its run folder, from its export's
    record (``record``: ``None`` when it has none)."""
    names = list(run.class_names) if run.class_names else None
    if run.config is not None:
        if not run.config.task_path:
            return None, names, {}
        tasks = tuple(run.config.tasks)
        return tasks, names, {out.name: run.output_names(out.name) for out in tasks}
    if record is not None:
        tasks = record.tasks
        return tasks, names or record.classes, record.output_names if tasks else {}
    return None, names, {}


def _record_beside(target: Path) -> Any:
    """A verified export record of the model ``target`` when it has one (any runtime, installed
    or not: only the record is read), else ``None``: the Keras path reads a model outside its
    run folder as its export does (its task, its class names)."""
    from cnnspec.export.runtimes import EXPORT_RUNTIMES, export_path, read_record, stem_of

    try:
        model, stem = stem_of(target)
    except UsageError:
        return None
    for runtime in EXPORT_RUNTIMES:
        try:
            return read_record(export_path(stem, runtime), runtime, model)
        except UsageError:
            continue
    return None


def _check_headers(images: list[Path]) -> None:
    """Every input file's header (not its pixels), before the model (and TensorFlow) is loaded
    for nothing: the inputs are decoded a chunk at a time later, and a file that cannot be an
    input is refused here, not after the chunks before it were predicted. Called once the run
    is found: a damaged run is told first, whatever the inputs."""
    from cnnspec.reporting.images import check_input_header
    from cnnspec.training.badfiles import INPUT_HINT, describe

    refused: list[tuple[Path, UsageError]] = []
    for image in images:
        try:
            check_input_header(image)
        except UsageError as exc:
            refused.append((image, exc))
    if len(refused) == 1:
        raise refused[0][1]
    if refused:  # every one, as training lists a folder's bad files: not one refusal per try
        bad = [(path, _bad_input(exc)) for path, exc in refused]
        raise UsageError(f"expected every input to be read; {describe(bad, len(images))}", INPUT_HINT)


def _bad_input(exc: UsageError) -> str:
    """Why an input file was refused, in a line of the list of them (which names the file)."""
    from cnnspec.training.imagefiles import UnreadableImage

    if isinstance(exc, UnreadableImage):
        reason = f" ({exc.hint})" if exc.hint else ""
        return f"no PNG, JPEG, BMP or GIF image (or .npy array), or truncated or corrupt{reason}"
    return str(exc)


def _task_answer(
    tasks: tuple[Any, ...],
    names: Names,
    inputs: list[InputFile],
    shape: tuple[int, ...],
    out: Path | None,
    k: int,
    rescale: Callable[[bool, Any], float | None],
    run: Callable[[Any], Any],
) -> tuple[list[dict[str, Any]], list[str]]:
    """A task model's predictions for ``inputs`` read a chunk at a time (mask PNGs go to
    ``out``, staged as each chunk is predicted and moved into place once all are answered) and
    the first output's names."""
    from cnnspec.reporting.task_predict import first_names, predict_file_tasks

    folder = out if out is not None else MASKS_FOLDER
    results = predict_file_tasks(tasks, names, inputs, shape, folder, k, rescale, run)
    return results, first_names(tasks, names)


def _classified(
    inputs: list[InputFile],
    shape: tuple[int, ...],
    rescale: Callable[[bool, Any], float | None],
    probabilities: Callable[[Any], Any],
    known: list[str] | None,
    k: int,
) -> tuple[list[dict[str, Any]], list[str]]:
    """A classifier's top-k for ``inputs``, read a chunk at a time (only the entries are kept),
    in the inputs' order, and its class names (``probabilities``: a scaled batch's)."""
    from cnnspec.reporting.run import names_or_indices
    from cnnspec.reporting.task_predict import streamed_groups

    results: list[dict[str, Any]] = []
    names: list[str] = []
    for batch, group in streamed_groups(inputs, shape, rescale):
        probs = probabilities(batch)
        names = names_or_indices(known, probs.shape[1])
        results += _entries(group, probs, names, k)
    results.sort(key=lambda r: r.pop("order"))
    return results, names


def _predict_keras(
    target: Path,
    images: list[Path],
    k: int,
    out: Path | None = None,
    spec: Path | None = None,
    views: tuple[str, ...] = (),
    ensemble: list[Path] | None = None,
    notes: list[str] | None = None,
    wanted: float | None = None,
) -> tuple[list[dict[str, Any]], list[str], Path, list[float]]:
    """Predictions through Keras (the model file itself); a model that is not a single
    classifier answers per output (reporting/task_predict.py; mask PNGs go to ``out``).

    A model outside a run (no spec, no export record that names its tasks) is read as evaluate
    reads it: each output's task from its shape, activation and recorded loss
    (:func:`~cnnspec.reporting.stand_in.model_tasks`), never as a classifier by default; ``spec``
    (``--spec``) describes the model instead. ``ensemble``: other models whose answers are
    averaged with its own (reporting/ensemble.py; their notes go to ``notes``). ``wanted``:
    ``--temperature`` (``None``: auto); returns the temperature of each model too."""
    from cnnspec.reporting.held_out import assumed_rescale_note
    from cnnspec.reporting.images import plan_inputs
    from cnnspec.reporting.model_graph import OutputKind, input_shape
    from cnnspec.reporting.pixel_ranges import file_rescale
    from cnnspec.reporting.predictions import predict as predict_batch
    from cnnspec.reporting.run import locate
    from cnnspec.reporting.stand_in import model_tasks
    from cnnspec.reporting.temperature import chosen, refuse_tasks, scaled_answer, tempered
    from cnnspec.training.modelfile import load_model
    from cnnspec.training.onednn import layers_named

    notes = notes if notes is not None else []
    run = locate(target, spec)  # (--allow-outside: the caller's outside_allowed)
    record = _record_beside(target) if run.config is None else None
    _check_headers(images)
    scale = chosen(run, wanted, notes)
    keras_model = load_model(run.model_path)
    members: list[Any] = []
    if ensemble:
        from cnnspec.reporting.ensemble import check_members, load_members
        from cnnspec.reporting.evaluation import listed_outputs

        members = load_members(ensemble)
        keras_model = listed_outputs(keras_model)
        notes.extend(check_members(run, keras_model, members, None, checks_split=False))
        for member in members:
            member.temperature = chosen(member.run, wanted, notes)
    temperatures = [scale, *(member.temperature for member in members)]
    shape = input_shape(keras_model)
    inputs = plan_inputs(images, shape)  # (every file's header fits, before anything is predicted)
    tasks, known, by_output = _reading(run, record)
    kind = run.output_kind(keras_model)
    if run.config is None and tasks is None:
        # no spec says what the outputs are: the task rules read them from the model (a map is
        # a segmentation, a regression loss in the file a regression …), as evaluate does;
        # flattening a mask or a second output into "classes" made up probabilities
        inferred = model_tasks(keras_model, run.name, run.model_path)
        if len(inferred) != 1 or inferred[0].task != "classification":
            tasks = inferred
        else:
            kind = OutputKind(binary=inferred[0].binary, from_logits=inferred[0].loss.from_logits)

    # a model file alone: its export's record says the factor its run trained with, as the
    # export answers with it; with neither a spec nor a record the factor is assumed, and said
    from_record = _record_rescale(record) if record is not None and run.config is None else None
    assumed: set[float] = set()
    floats: list[tuple[float, float]] = []  # (the .npy float pixels' ranges: far off the run's is noted)

    def factor_of(integer: bool, pixels: Any) -> float | None:
        if from_record is not None:
            return from_record(integer, pixels)
        factor = file_rescale(run, keras_model, integer, pixels)
        if run.config is None and factor is not None:
            assumed.add(factor)
        return factor

    rescale = _float_ranges(factor_of, floats)

    for value in temperatures:
        refuse_tasks(tasks, value)
    if tasks is not None:
        from cnnspec.reporting.evaluation import listed_outputs

        # answers in the order of model.outputs, as the tasks are (evaluate's own model): a
        # model with dict outputs answers by its keys, and a key that is another output's layer
        # name gave each output the other's values
        listed = listed_outputs(keras_model)

        def run_model(keras: Any, temperature: float) -> Callable[[Any], Any]:
            # (a temperature other than 1 scales a single multi-label output: refuse_tasks)
            return lambda batch: scaled_answer(
                keras.predict(batch, batch_size=64, verbose=0), tasks, kind, temperature
            )

        keras_models = [listed, *(member.model for member in members)]
        answering = [run_model(m, t) for m, t in zip(keras_models, temperatures, strict=True)]
        answer = _task_views(answering, views, tasks)
        with layers_named(keras_model, _spec_ir(run, members)):
            results, names = _task_answer(tasks, by_output, inputs, shape, out, k, rescale, answer)
        notes.extend(assumed_rescale_note(run.model_path.name, assumed))
        notes.extend(_float_notes(run, floats))
        return results, names, run.model_path, temperatures
    if record is not None:  # the record's reading of the output: what the exports answer with
        output = record.data["output"]
        kind = OutputKind(binary=bool(output["binary"]), from_logits=bool(output["from_logits"]))

    def classify(keras: Any, temperature: float) -> Callable[[Any], Any]:
        # (the batch is scaled already)
        return lambda batch: tempered(predict_batch(keras, batch, None, kind), temperature)

    keras_models = [keras_model, *(member.model for member in members)]
    models = [classify(m, t) for m, t in zip(keras_models, temperatures, strict=True)]
    with layers_named(keras_model, _spec_ir(run, members)):
        results, names = _classified(inputs, shape, rescale, _with_views(models, views), known, k)
    notes.extend(assumed_rescale_note(run.model_path.name, assumed))
    notes.extend(_float_notes(run, floats))
    return results, names, run.model_path, temperatures


def _float_ranges(
    rescale: Callable[[bool, Any], float | None], floats: list[tuple[float, float]] | None
) -> Callable[[bool, Any], float | None]:
    """``rescale`` that also adds the range of each float input's finite pixels to ``floats``
    (:func:`~cnnspec.training.data_arrays.pixel_range`: the arrays are not kept); ``rescale`` itself
    without it."""
    if floats is None:
        return rescale
    found = floats

    def noting(integer: bool, pixels: Any) -> float | None:
        if not integer and pixels is not None and getattr(pixels, "size", 0):
            from cnnspec.training.data_arrays import pixel_range

            ranged = pixel_range(pixels)
            found.extend([ranged] if ranged is not None else [])
        return rescale(integer, pixels)

    return noting


def _float_notes(run: Any, ranges: list[tuple[float, float]]) -> list[str]:
    """The note of ``.npy`` float pixels (``ranges``: each array's) far off the range the run
    trained on (:func:`~cnnspec.reporting.pixel_ranges.float_scale_notes`): they are predicted on as
    they are."""
    if not ranges:
        return []
    from cnnspec.reporting.pixel_ranges import float_scale_notes

    whole = (min(low for low, _ in ranges), max(high for _, high in ranges))
    return float_scale_notes(run, whole, "the .npy arrays", "the predictions")


def _served_float_notes(record: ExportRecord, ranges: list[tuple[float, float]]) -> list[str]:
    """:func:`_float_notes` for an exported file served by itself, against the range its record
    keeps (``input.pixel_range``; an older record keeps none: nothing is said)."""
    from cnnspec.reporting.pixel_ranges import range_of_record
    from cnnspec.reporting.run import Run

    recorded = range_of_record(record.data["input"].get("pixel_range"))
    if recorded is None:
        return []
    return _float_notes(Run(model_path=record.path, recorded_range=recorded), ranges)


def _spec_ir(run: Any, members: list[Any]) -> Any | None:
    """The IR of the run's spec, to name a layer of its model that a kernel refuses
    (:func:`~cnnspec.training.onednn.layers_named`); ``None`` without a spec, or with
    ``--ensemble`` members (another model's layer may have the same name)."""
    return run.compiled.ir if run.compiled is not None and not members else None


def _with_views(models: list[Callable[[Any], Any]], views: tuple[str, ...]) -> Callable[[Any], Any]:
    """The one model's class probabilities, or the mean of the ``models``' (``--ensemble``)
    over each batch and its views (``--tta``)."""
    if not views and len(models) == 1:
        return models[0]
    from cnnspec.reporting.tta import averaged

    return averaged(models, views)


def _task_views(
    models: list[Callable[[Any], Any]], views: tuple[str, ...], tasks: tuple[Any, ...]
) -> Callable[[Any], Any]:
    """The one model's raw outputs for a scaled batch, or the outputs of the ``models``
    (``--ensemble``) averaged over each batch and its views (``--tta``: a regression refused, as a
    mirror image may change what its value means; ``--ensemble`` alone averages its values)."""
    if not views and len(models) == 1:
        return models[0]
    from cnnspec.reporting.tta import averaged_outputs, refuse_tasks

    if views:
        refuse_tasks(tasks, "predict")
    return averaged_outputs(models, views, tasks)


def _predict_export(
    record: Any,
    images: list[Path],
    k: int,
    out: Path | None,
    tasks: tuple[Any, ...] | None,
    known: list[str] | None,
    by_output: Names,
    views: tuple[str, ...] = (),
    temperature: float = 1.0,
    floats: list[tuple[float, float]] | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Predictions through a verified export, without TensorFlow: the record says how to
    convert, scale and read (``tasks``, ``known``, ``by_output``: :func:`_reading`'s;
    ``temperature``: a classifier's probabilities scaled by it; ``floats``: where given, the
    range of each float input's pixels is added to it, for :func:`_float_notes`)."""
    from cnnspec.export.runtimes import open_session
    from cnnspec.reporting.images import plan_inputs
    from cnnspec.reporting.model_graph import OutputKind
    from cnnspec.reporting.predictions import probabilities
    from cnnspec.reporting.temperature import refuse_tasks, scaled_answer, tempered

    record.require_one_input(record.path)
    refuse_tasks(tasks, temperature)
    _check_headers(images)
    shape = tuple(record.sample_shape)
    inputs = plan_inputs(images, shape)  # (every file's header fits, before the session opens)
    session = open_session(record.runtime, record.path)
    rescale = _float_ranges(_record_rescale(record), floats)
    temperature = record.remaining(temperature)  # (an export may answer scaled already)
    if tasks is not None:
        several = len(tasks) > 1

        def answer(batch: Any) -> Any:
            # every output of a model of several, in the model's order (the record's ``outputs``:
            # the file keeps it), as Keras' predict gives them; one output's array alone
            outputs = session.run_all(batch) if several else session.run(batch)
            return scaled_answer(outputs, tasks, OutputKind(), temperature)

        return _task_answer(
            tasks, by_output, inputs, shape, out, k, rescale, _task_views([answer], views, tasks)
        )
    output = record.data["output"]
    kind = OutputKind(binary=bool(output["binary"]), from_logits=bool(output["from_logits"]))

    def classify(batch: Any) -> Any:
        return tempered(probabilities(session.run(batch), kind), temperature)

    return _classified(inputs, shape, rescale, _with_views([classify], views), known, k)


def _record_reads(
    run: Any, record: Any, tasks: tuple[Any, ...] | None, wanted: str, runtime: str, notes: list[str]
) -> bool:
    """Whether the export record's reading of the model can answer for it. A record that
    names no tasks reads the first output as a classifier; for a model outside a run (no spec
    says otherwise) that holds where the record says so (``output.task: classification``: the
    exporter read the model's task from the model itself, as predict's Keras path does), or,
    for a record written before records said it, where the model file plainly is one
    (:func:`~cnnspec.reporting.model_graph.archive_single_classifier`, told without TensorFlow).
    Otherwise ``auto`` goes to Keras, which reads each output's task from the model (with a
    note), and an explicit runtime is refused: its answer would be made-up classes."""
    from cnnspec.reporting.model_graph import archive_single_classifier

    if tasks is not None or run.config is not None:
        return True
    output = record.data["output"]
    said = output.get("task")
    if said == "classification":
        return True
    if said is None and "task_unknown" not in output and archive_single_classifier(run.model_path):
        return True  # an older record: the file alone (a Dense output) says
    if wanted != "auto":
        raise UsageError(
            f"expected an export record that says the tasks of {run.model_path.name}'s outputs for "
            f"--runtime {wanted}; its record reads the first output as a classifier, and the model "
            "is not plainly one (a map, several outputs, or a regression head)",
            "use --runtime keras (it reads each output's task from the model), or pass --spec SPEC "
            "with a spec that describes the model",
        )
    notes.append(f"auto: skipped {runtime}: its record does not say the tasks of the model's outputs")
    return False


def _first_non_finite(value: Any, where: str = "") -> str | None:
    """The key path of the first NaN or infinite number in a prediction's entries (``None``:
    every number is finite): the figures of any task's answer, nested as they are."""
    if isinstance(value, float):
        return None if math.isfinite(value) else where or "value"
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _first_non_finite(item, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


def _refuse_non_finite(results: list[dict[str, Any]], runtime: str) -> None:
    """Refuse predictions with a NaN or infinite figure, as an input file with NaN is refused
    (:func:`cnnspec.reporting.images.read_inputs`): it is no answer (the model is broken, or
    the export does not answer as the model), and JSON has no NaN. The error names the first
    such input and the runtime."""
    for result in results:
        where = _first_non_finite({k: v for k, v in result.items() if k not in ("input", "notes")})
        if where is not None:
            raise UsageError(
                f"the model's answer for {result['input']} is NaN or infinite ({where}) with the "
                f"{runtime} runtime",
                "the model is broken (its training diverged?): retrain it; if only an export "
                "answers so, compare with --runtime keras and re-export it",
            )


@guarded
def predict(
    context: typer.Context,
    model: Annotated[
        Path,
        typer.Argument(
            help="a run folder, a .keras model file, or an exported .onnx/.tflite file with its record",
            show_default=False,
            parser=given_path,
        ),
    ],
    images: Annotated[
        list[str],  # (text: an empty one is refused, where a Path reads it as the current folder)
        typer.Argument(
            help="PNG/JPEG/BMP/GIF images or .npy arrays, or folders of them (subfolders too)",
            show_default=False,
        ),
    ],
    top: Annotated[int, typer.Option("--top-k", "-k", min=1, help="how many classes to show")] = 3,
    format: Annotated[
        PredictFormat,
        typer.Option(
            "--format", "-f", help="text, json, or csv (a row per input: reporting/prediction_csv.py)"
        ),
    ] = PredictFormat.text,
    runtime: Annotated[
        Runtime,
        typer.Option("--runtime", "-r", help=RUNTIME_HELP),
    ] = Runtime.auto,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "--output",
            "-o",
            help="segmentation models: folder for the mask PNGs (default ./predictions)",
            parser=given_output,
        ),
    ] = None,
    spec: SpecOption = None,
    tta: TtaOption = None,
    ensemble: PredictEnsembleOption = None,
    temperature: TemperatureOption = "auto",
    allow_outside: AllowOutsideOption = False,
) -> None:
    """Predict with a trained model: the top-k classes, or a task's masks, labels or values.

    Other tasks: segmentation writes a mask PNG per image (class index per pixel) to --out,
    multi-label shows the labels above the threshold and every probability, regression the
    values; a multi-output model answers per output. A .keras file outside its run folder is
    read as evaluate reads it (each output's task from its shape, activation and saved loss);
    --spec SPEC describes it where that cannot tell.

    With --runtime onnx or tflite (or auto, when the run has a verified export) neither
    TensorFlow nor Keras is imported: images are converted as training converted them and fed
    to the export that `cnnspec export` verified against the model (every output of a model of
    several, answered as Keras answers them). An exported .onnx or
    .tflite file is served by itself, with the record `cnnspec export` wrote beside it
    (FILE.json): no run folder, no model, no TensorFlow.
    """
    from cnnspec.cli.outputs import enclosing_run
    from cnnspec.fileio import check_writable, staged_folder
    from cnnspec.reporting.temperature import parse_option
    from cnnspec.reporting.tta import parse_views

    views = parse_views(tta)
    wanted = parse_option(temperature)
    if not images:
        raise UsageError("expected at least one image file")
    if any(not image.strip() for image in images):  # (an unset shell variable)
        raise UsageError(
            "expected an image file or folder; received an empty path",
            "name the images, or . for the current folder",
        )
    from cnnspec.fileio import user_path
    from cnnspec.reporting.images import check_input_file, expand_inputs

    # a folder: its images and .npy files
    files, folder_notes = expand_inputs([user_path(image) for image in images])
    for image in files:  # before a model (and TensorFlow) is loaded for nothing
        check_input_file(image)  # (their headers: once the run is found, _check_headers)
    if out is not None:  # before a runtime is chosen: every runtime refuses a bad --out alike
        check_writable(out, option="--out")
    # masks written into a run folder (--out RUN/masks) are written under its lock, as every
    # other command's writes into a run are: beside a training, its leftover cleanup took them
    # (a model without masks writes nothing there: not refused for a busy run)
    into = enclosing_run(out) if out is not None else None
    if into is not None and not _writes_masks(model, spec, allow_outside):
        into = None
    # the masks are staged, and moved into --out together only once every input is answered and
    # the answers are checked (a NaN refused): all of them or none (fileio.staged_folder); the
    # answers are printed once they are in place
    folder = out if out is not None else MASKS_FOLDER
    with owning_run(into, out or Path(".")), staged_folder(folder) as stage:
        shown = _answers(
            model, files, folder_notes, top, format, runtime, out, spec, views, ensemble, wanted,
            allow_outside,
        )  # fmt: skip
        _refuse_non_finite(shown[0], shown[4])
    if _given(context, "top"):  # (the default 3 of a 2-class model is no request to note)
        shown[1].extend(_top_k_notes(top, shown[0]))
    try:
        _print_predictions(*shown)
    except KeyboardInterrupt:  # the masks are in place already: "interrupted" alone would say not
        if stage.files:
            print_notes([f"the {len(stage.files)} mask file(s) were written to {folder} before the stop"])
        raise


def _given(context: typer.Context, parameter: str) -> bool:
    """Whether the command line gave the option ``parameter`` (not its default)."""
    source = context.get_parameter_source(parameter)
    return source is not None and source.name == "COMMANDLINE"


def _top_k_notes(k: int, results: list[dict[str, Any]]) -> list[str]:
    """A note for each classifier output of fewer classes than ``--top-k k`` asked for, once per
    call (not per input): every class is shown, and the answer had fewer entries without a word.
    Only a classifier's answer is cut to the top k (a multi-label output shows every label's
    probability); the classes of an output are as many as its answer shows when fewer than k."""
    counts: dict[str, int] = {}
    for result in results:
        outputs = result.get("outputs", {})
        tops = [("", result["top"])] if "top" in result else []
        tops += [(name, entry["top"]) for name, entry in outputs.items() if "top" in entry]
        for name, top in tops:
            if len(top) < k:
                counts.setdefault(name if len(outputs) > 1 else "", len(top))
    return [
        f"--top-k {k}: " + (f"the output {name} has" if name else "the model has") + f" only {count} classes"
        for name, count in counts.items()
    ]


def _answers(
    model: Path,
    files: list[Path],
    folder_notes: list[str],
    top: int,
    format: PredictFormat,
    runtime: Runtime,
    out: Path | None,
    spec: Path | None,
    views: tuple[str, ...],
    ensemble: list[Path] | None,
    wanted: float | None,
    allow_outside: bool,
) -> Shown:
    """The predictions of ``model`` for ``files`` through the runtime ``runtime`` picks, with
    what :func:`_print_predictions` shows beside them (mask PNGs written to ``out``)."""
    from cnnspec.export.runtimes import choose, served_file, stem_of
    from cnnspec.reporting.run import outside_allowed

    if served_file(model):  # an exported file by itself: its record says how to read it
        from cnnspec.reporting.served import served_record

        record, scale, notes = served_record(model, runtime.value, spec, ensemble, wanted)
        tasks = record.tasks
        by_output = record.output_names if tasks else {}
        served_floats: list[tuple[float, float]] = []
        results, names = _predict_export(
            record, list(files), top, out, tasks, record.classes, by_output, views, scale, served_floats
        )
        notes.extend(_served_float_notes(record, served_floats))
        inside = tuple(str(view) for view in record.data.get("tta") or ())
        members = [
            Path(str(m.get("model"))) for m in record.data.get("ensemble") or [] if isinstance(m, dict)
        ]
        notes += _unused_out(out, results)
        return (
            results, folder_notes + notes, format, model, record.runtime, record, names,
            (*inside, *views), members[1:], [scale],
        )  # fmt: skip
    refuse_ensemble_runtime(ensemble, runtime)

    def inexact(record: ExportRecord) -> str | None:
        """Why auto passes over an export: the temperature it would answer with, not exactly."""
        from cnnspec.reporting.run import locate
        from cnnspec.reporting.temperature import chosen as chosen_temperature

        located = locate(model, spec, allow_outside=allow_outside)
        return record.inexact(chosen_temperature(located, wanted, []))

    chosen, record, notes = choose(model, "keras" if ensemble else runtime.value, inexact)
    notes = folder_notes + notes
    if ensemble and runtime == Runtime.auto:
        notes.append("auto: --ensemble runs every model in Keras")
    tasks, known, by_output = None, None, {}
    if record is not None:
        from cnnspec.reporting.run import locate

        record.require_one_input(record.path)  # the first refusal, as on the Keras path
        # only this command line may let the run's spec read outside its folder, never lock.json
        located = locate(model, spec, allow_outside=allow_outside)
        tasks, known, by_output = _reading(located, record)
        from cnnspec.export.runtimes import serves_temperature
        from cnnspec.reporting.temperature import chosen as chosen_temperature

        # (its note is said where it is applied: the Keras path, if it comes to that, says its own)
        scale_notes: list[str] = []
        scale = chosen_temperature(located, wanted, scale_notes)
        if not _record_reads(located, record, tasks, runtime.value, record.runtime, notes) or not (
            serves_temperature(record, scale, runtime.value, notes)
        ):
            chosen, record = "keras", None
    if record is None:
        with outside_allowed(allow_outside):  # only this command line may allow it, never lock.json
            results, names, model_path, temperatures = _predict_keras(
                model, list(files), top, out, spec, views, ensemble, notes, wanted
            )
    else:
        notes.extend(scale_notes)
        temperatures = [scale]
        floats: list[tuple[float, float]] = []
        results, names = _predict_export(
            record, list(files), top, out, tasks, known, by_output, views, temperatures[0], floats
        )
        notes.extend(_float_notes(located, floats))
        model_path = stem_of(model)[0]
    notes.extend(_unused_out(out, results))
    return results, notes, format, model_path, chosen, record, names, views, ensemble, temperatures


def _writes_masks(model: Path, spec: Path | None, allow_outside: bool) -> bool:
    """Whether predicting with ``model`` may write masks (it has a segmentation output), told
    without TensorFlow before anything runs: by an exported file's record, or by the spec of
    the run the model lies in (``--spec``'s). ``True`` where neither tells (a model file alone,
    a record or spec that cannot be read: the command says why itself, under the lock)."""
    from cnnspec.export.runtimes import record_path, served_file, served_reading
    from cnnspec.reporting.run import locate, outside_allowed

    try:
        if served_file(model):
            tasks = served_reading(json.loads(record_path(model).read_text(encoding="utf-8")))[0]
            return tasks is not None and any(task.task == "segmentation" for task in tasks)
        with outside_allowed(allow_outside):
            config = locate(model, spec).config
    except (OSError, ValueError, TypeError, KeyError, AttributeError, UsageError, SpecError):
        return True
    return config is None or any(task.task == "segmentation" for task in config.tasks)


def _unused_out(out: Path | None, results: list[dict[str, Any]]) -> list[str]:
    """A note when nothing went to ``--out``: only a segmentation's masks do, into a folder.
    ``predict -o preds.csv -f csv`` printed its table and wrote no file, and ``predict RUN -o
    masks/`` of a classifier made no folder, both without a word (a bare model's task is known
    only once it is loaded, so this is a note, not a refusal)."""
    if out is None:
        return []
    if any("mask" in answer for r in results for answer in r.get("outputs", {}).values()):
        return []
    if not out.suffix:
        return [
            f"--out {out}: this model writes no mask files (a segmentation's), so nothing was written there"
        ]
    return [
        f"--out {out} is where a segmentation's mask files go; this model writes none, and its "
        "predictions are printed (redirect them to save them: > predictions.csv)"
    ]


def _print_predictions(
    results: list[dict[str, Any]],
    notes: list[str],
    format: PredictFormat,
    model_path: Path,
    chosen: str,
    record: Any,
    names: list[str],
    views: tuple[str, ...],
    ensemble: list[Path] | None,
    temperatures: list[float],
) -> None:
    """The predictions as ``--format`` says, after the notes (on stderr); a non-finite answer
    was refused already (:func:`_refuse_non_finite`, before the masks were moved into place).
    A file name that is not UTF-8 is written with its bytes escaped (:func:`utf8_safe`), with a
    note: raw, it made the CSV no UTF-8 and the JSON hold lone surrogates strict readers refuse."""
    from cnnspec.jsontext import UNDECODABLE_NOTE, utf8_safe

    results, escaped = utf8_safe(results)
    notes, _ = utf8_safe(notes)
    if escaped:
        notes = [*notes, UNDECODABLE_NOTE]
    print_notes(notes)
    if format == PredictFormat.csv:
        from cnnspec.reporting.prediction_csv import predictions_csv

        echo(predictions_csv(results), nl=False)
        return
    if format == PredictFormat.json:
        document = {
            "model": str(model_path),
            "runtime": chosen,
            "export": str(record.path) if record is not None else None,
            "classes": names,
            "tta": list(views),
            "ensemble": [str(path) for path in ensemble or []],
            "temperature": temperatures[0] if len(temperatures) == 1 else temperatures,
            "predictions": results,
        }
        document, _ = utf8_safe(document)  # (the model's and the members' paths too)
        # allow_nan=False: a NaN that got past _refuse_non_finite fails loudly here instead of
        # printing a bare NaN, which no JSON reader accepts
        echo(json.dumps(document, indent=2, allow_nan=False))
        return
    # File names, class names and notes are the user's: each is shown with its control
    # characters escaped (`evil\x1b[2J.png`), so a line is one line and the terminal stays as it was
    console = stdout()
    for result in results:
        console.print(f"[bold]{safe(result['input'])}[/bold]", highlight=False)
        if result["notes"]:
            console.print(f"  [dim]{safe('; '.join(result['notes']))}[/dim]", highlight=False)
        if "outputs" in result:  # another task than classification
            from cnnspec.reporting.task_predict import describe

            for name, entry in result["outputs"].items():
                prefix = f"{name}: " if len(result["outputs"]) > 1 else ""
                console.print(f"  {safe(prefix + describe(entry))}", highlight=False)
            continue
        table = Table(show_edge=False, box=None, padding=(0, 1))
        table.add_column("#", justify="right", style="dim")
        table.add_column("class")
        table.add_column("probability", justify="right")
        table.add_column("")
        for rank, entry in enumerate(result["top"], start=1):
            p = entry["probability"]
            label = safe(entry["class"])
            table.add_row(
                str(rank),
                f"[bold green]{label}[/bold green]" if rank == 1 else label,
                f"{p:.2%}",
                f"[cyan]{'█' * round(20 * p)}[/cyan]",
            )
        console.print(table)
