"""The record an export keeps of how to read it without its run (``<file>.json``, and the
SavedModel's ``cnnspec.json``): the run's spec and split, each output's task, names, loss and
activation, the pixel range and rescale its inputs need, and the verification's figures;
written in the same group as the file it describes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.errors import UsageError
from cnnspec.export.artifact_runs import quiet_native, tflite_interpreter
from cnnspec.export.verification import FLOAT_RTOL, tolerance_rule


def savedmodel_meta(source: Path, model: Any, spec: Path | None = None) -> dict[str, Any] | None:
    """The serving meta of a SavedModel export's model (which writes no record), only to know
    its outputs' decisions; ``None`` when no run's spec describes it, or its run can't be read
    (a SavedModel export does not refuse a damaged run): :func:`output_decisions` then reads
    the output layers' activations."""
    try:
        run = run_of(source, spec)
        return serving_meta(run, model) if run.config is not None else None
    except UsageError:
        return None


def recorded_split(run: Any) -> dict[str, Any] | None:
    """The split of the model's run as its export's record keeps it (``split``: the seed,
    fractions and generated source's settings that draw its test and validation images
    again): a run folder's lock.json seed and spec, or the run a checkpoint lies in
    (:func:`~cnnspec.reporting.run_splits.split_origin`); ``None`` where no run's split is known."""
    from cnnspec.reporting.data_option import source_options
    from cnnspec.reporting.run import SplitOrigin
    from cnnspec.reporting.run_splits import split_origin

    if run.run_dir is None:
        origin = split_origin(run)
        return origin.recorded() if origin is not None else None
    seed, config = (run.lock or {}).get("seed"), run.config
    if not isinstance(seed, int) or isinstance(seed, bool) or config is None:
        return None
    data = config.data
    # a generated source's settings too (shapes' image count, seed, noise): the seed and
    # fractions alone drew the defaults' 400 images, not the run's
    options = source_options(run.compiled)
    origin = SplitOrigin(seed, data.test_split, data.validation_split, "", data.kind, options, data.classes)
    return origin.recorded()


def run_of(source: Path, spec: Path | None = None) -> Any:
    """The run the model file belongs to (:func:`~cnnspec.reporting.run.locate`), described by
    ``spec`` where one is given: its damaged files are refused here, before the export is
    written."""
    from cnnspec.reporting.run import locate

    return locate(source, spec)


def assumed_factor_note(source: Path, factor: float) -> str:
    """The note that the record's pixel factor was assumed: no spec (a run folder's, or
    ``--spec``) says what training did to a file's pixels, and the model has no rescaling layer
    of its own (``factor``: 1 over 8-bit pixels' depth, what ``data.rescale: auto`` does)."""
    return (
        f"the record says to multiply a file's pixels by 1/{1 / factor:.6g}, assumed: {source.name} "
        "comes with no spec (a run folder's, or --spec) to say what its training did, nor a "
        "rescaling layer; --spec SPEC records the spec's data.rescale"
    )


def _loss_setting(loss: Any) -> str | dict[str, dict[str, Any]]:
    """A classifier's loss (:class:`~cnnspec.analysis.settings_types.LossConfig`) as a spec writes
    ``training.loss``: its name, or ``{name: settings}`` with the settings it takes that are not
    their defaults (``from_logits`` is the record's ``output.from_logits``)."""
    from cnnspec.spec.sections import FOCAL_ALPHA, FOCAL_GAMMA, FOCAL_LOSSES

    settings: dict[str, Any] = {}
    if loss.label_smoothing and (loss.one_hot or loss.binary):
        settings["label_smoothing"] = loss.label_smoothing
    if loss.name in FOCAL_LOSSES:
        settings.update(gamma=loss.gamma, alpha=loss.alpha)
        if loss.name == "binary_focal_crossentropy":
            settings["apply_class_balancing"] = loss.apply_class_balancing
    if settings.get("alpha") == FOCAL_ALPHA and settings.get("gamma") == FOCAL_GAMMA:
        settings = {k: v for k, v in settings.items() if k not in ("alpha", "gamma")}
    if settings.get("apply_class_balancing") is False:
        del settings["apply_class_balancing"]
    return {loss.name: settings} if settings else loss.name


def serving_meta(run: Any, model: Any) -> dict[str, Any]:
    """What a runtime needs to serve the model without Keras or the spec: the input (shape,
    how many inputs, colour mode, the pixel factors training applied to integer and float
    pixels) and the output (one sigmoid unit or classes, logits or probabilities, the names of
    the first output's classes, labels or values, and ``task: classification`` for a single
    classifier); ``outputs`` describes each output of a model that is not a single
    classifier. A model without a fixed input shape is a UsageError.

    A model outside its run (no spec) is described by the tasks predict and evaluate read from
    it (:func:`_bare_reading`), never by its last layer alone."""
    from cnnspec.reporting.model_graph import OutputKind, input_shape
    from cnnspec.reporting.pixel_ranges import file_rescale, trained_pixel_range

    shape = list(input_shape(model))
    config = run.config
    tasks: dict[str, Any] = {}
    # what the reading is for: ``output.task`` (a single classifier, as read when exporting: predict
    # trusts it for a model without a spec, told without TensorFlow), or ``output.task_unknown``
    # (why a bare model's tasks cannot be told)
    reading: dict[str, str] = {}
    if config is None:
        kind, count, outputs, why = _bare_reading(run, model)
        if outputs is not None:
            tasks["outputs"] = outputs
        if why is not None:
            reading["task_unknown"] = why
        elif outputs is None:
            reading["task"] = "classification"
    else:
        kind, count = run.output_kind(model), int(model.outputs[0].shape[-1])
        if config.task_path:  # multilabel, regression, segmentation, several outputs
            tasks["outputs"] = _described(run, config.tasks)
            # run.output_kind is the loss's (binary: binary cross-entropy, which a multi-label
            # output has too): the first output's own reading is what a runtime needs
            first = config.tasks[0]
            kind = OutputKind(binary=first.binary, from_logits=first.loss.from_logits)
            count = first.classes if first.task in ("classification", "segmentation") else first.units
        elif kind.binary:
            count = 2
        if not config.task_path:
            reading["task"] = "classification"
            # the loss it trained with, so that the file served alone reports it (reporting/served.py)
            reading["loss"] = _loss_setting(config.loss)
    color = config.data.color_mode if config is not None else None
    color = color or {1: "grayscale", 3: "rgb", 4: "rgba"}.get(shape[-1])
    return {
        "input": {
            "shape": shape,
            "inputs": len(model.inputs),
            "color_mode": color,
            "rescale_integer": file_rescale(run, model, True),
            "rescale_float": file_rescale(run, model, False),
            "rescale_by_depth": _rescale_by_depth(run, model),
            # the range float inputs must come in (reporting/pixel_ranges.py trained_pixel_range): the
            # file served alone notes float --data or .npy arrays far outside it, as the run does
            **({"pixel_range": list(trained)} if (trained := trained_pixel_range(run)) is not None else {}),
        },
        "output": {
            "binary": kind.binary,
            "from_logits": kind.from_logits,
            "classes": run.names_for(count),
            **reading,
        },
        **tasks,
    }


def _described(run: Any, tasks: Any) -> list[dict[str, Any]]:
    """A record's ``outputs``: each output's :func:`~cnnspec.export.runtimes.describe_output`,
    with the names the run gave its classes, labels or values."""
    from cnnspec.export.runtimes import describe_output

    return [describe_output(out, run.output_names(out.name)) for out in tasks]


def _bare_reading(run: Any, model: Any) -> tuple[Any, int, list[dict[str, Any]] | None, str | None]:
    """How the record of a model outside its run reads its outputs, for :func:`serving_meta`:
    ``(kind, count, outputs, unknown)``: the first output's reading and class count, the
    record's ``outputs`` (``None`` for a single classifier, which names none, as a run's
    record does), and why the tasks cannot be told (``None`` when they can).

    The tasks are those predict and evaluate read from the same model file
    (:func:`~cnnspec.reporting.stand_in.model_tasks`: shape, activation, saved loss), so the export
    answers as the Keras model does: its last layer alone made a 4-output model's record a
    classifier on logits over the mask's classes (the last layer was another output), and a
    regression head a binary classifier. Where the tasks cannot be told, ``output`` says so
    (``task_unknown``, with no classes) instead of a made-up classifier, and predict and
    evaluate refuse an explicit ``--runtime`` for it as they refuse the model itself (its
    archive is no plain classifier)."""
    from cnnspec.reporting.model_graph import OutputKind
    from cnnspec.reporting.stand_in import model_tasks

    try:
        inferred = model_tasks(model, run.name, run.model_path)
    except UsageError as exc:
        # no classes: nothing may read this record as a classifier (the reason is kept so a
        # reader of the file sees why; predict gives the --spec hint itself)
        return OutputKind(), 0, None, str(exc)
    first = inferred[0]
    kind = OutputKind(binary=first.binary, from_logits=first.loss.from_logits)
    count = first.classes if first.task in ("classification", "segmentation") else first.units
    if len(inferred) == 1 and first.task == "classification":
        return kind, count, None, None
    return kind, count, _described(run, inferred), None


def _rescale_by_depth(run: Any, model: Any) -> bool:
    """Whether integer inputs are scaled by their own depth (``data.rescale: auto``: a uint16
    array by 1/65535, not by ``rescale_integer``, the 8-bit factor): predict asks, as
    :func:`~cnnspec.reporting.pixel_ranges.file_rescale` would, without the spec at hand."""
    from cnnspec.reporting.pixel_ranges import file_rescale

    sixteen_bit = np.array([0, 65535], dtype="uint16")
    return file_rescale(run, model, True, sixteen_bit) != file_rescale(run, model, True)


def export_record_text(
    path: Path,
    written: Path,
    source: Path,
    meta: dict[str, Any],
    measured: dict[str, Any],
    tolerance: float | None,
    batch: int,
) -> str:
    """The record of the export bound for ``path``, whose bytes are in ``written``
    (:mod:`cnnspec.export.runtimes`): verified or not, by how much, from which model, and how
    to feed it. Made before the export is renamed into place, so it always describes it."""
    from cnnspec.export.runtimes import record_text

    diff = measured["diff"]
    details = {
        "verified": diff is not None and (tolerance is None or bool(measured.get("within"))),
        "max_abs_diff": diff,
        "tolerance": tolerance,
        "rtol": FLOAT_RTOL if tolerance is not None else None,
        "tolerance_rule": tolerance_rule(tolerance, FLOAT_RTOL) if tolerance is not None else None,
        "top1_agreement": measured["agreement"],
        "agreement_basis": measured.get("basis"),
        "verify_batch": batch,
        "verify_data": measured.get("verify_data"),
        "verified_with": measured["runtime"] or None,
        "quantize": measured.get("quantize"),
    }
    if measured.get("calibration") is not None:  # (int8: what calibrated its activation ranges)
        details["calibration"] = measured["calibration"]
    meta = _with_file_outputs(meta, path, written)
    return record_text(path, source, details, meta, written=written, model_sha256=measured["model_sha256"])


def _with_file_outputs(meta: dict[str, Any], path: Path, written: Path) -> dict[str, Any]:
    """``meta`` with each ``outputs`` entry's ``file_output``: the name the exported file (bound
    for ``path``, its bytes in ``written``) gives that model output, so that a reader of the file
    alone knows which of its outputs is which of the model's (predict and evaluate read them in
    the model's order: ONNX keeps it, TFLite's signature numbers them in it). ``meta`` as it is
    for a single classifier, or where the file's outputs cannot be listed."""
    entries = meta.get("outputs")
    if not entries:
        return meta
    try:
        names = file_output_names(written, path.suffix.lower())
    except Exception:  # (a converter's file its reader refuses: verification says so)
        return meta
    if len(names) != len(entries):
        return meta
    return {**meta, "outputs": [{**entry, "file_output": name} for entry, name in zip(entries, names)]}


def file_output_names(path: Path, suffix: str) -> list[str]:
    """The output names of the exported file ``path`` (``suffix``: ``.onnx`` or ``.tflite``) in
    the model's output order, as the runtime sessions read them
    (:func:`~cnnspec.export.runtimes.open_session`): an ONNX graph's outputs, a TFLite
    ``serving_default`` signature's (``output_0``, ``output_1`` …)."""
    from cnnspec.export.runtimes import signature_order

    if suffix == ".onnx":
        import onnx

        return [out.name for out in onnx.load(str(path), load_external_data=False).graph.output]
    with quiet_native():
        interpreter, _ = tflite_interpreter(path)
        details = interpreter.get_signature_runner().get_output_details()
    return signature_order(details)
