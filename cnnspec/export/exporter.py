"""Export a trained Keras model to SavedModel, TFLite or ONNX, and check the result.

Every export is *verified before it is published*: the artifact is written to a temporary
path beside the target, loaded back in its own runtime (``tf.saved_model.load``, the LiteRT
interpreter, onnxruntime), run on a seeded batch, and compared with the Keras model on the same
batch. Only when every value is within the tolerance (float exports:
:data:`~cnnspec.export.verification.FLOAT_TOLERANCE` plus
:data:`~cnnspec.export.verification.FLOAT_RTOL` of the Keras value,
:func:`~cnnspec.export.verification.tolerance_excess`) is the temporary artifact renamed onto
the target, so a failed or wrong export never replaces a good one. Quantized TFLite exports
are expected to differ; their difference and top-1 agreement are reported, not enforced. A
full-integer export (``int8``: every op, the input and the output int8) is calibrated on up to
:data:`CALIBRATION_IMAGES` of the run's training images and verified on its test images
(:func:`_run_images`), not on uniform noise.

Models trained with mixed precision are exported as float32 graphs (their variables are
float32 already): serving runtimes and converters expect float32, and ONNX export requires it.

Tools: SavedModel through Keras' ``model.export(format="tf_saved_model")``; TFLite through
TensorFlow's ``TFLiteConverter`` from that SavedModel; ONNX through Keras'
``model.export(format="onnx")``, which drives ``tf2onnx`` (the optional ``export`` extra:
``pip install 'cnnspec[export]'``). Each traces the model in inference mode
(:func:`~cnnspec.export.artifact_runs.inference_calls`: augmentation layers pass images
through, dropout is off), and a model built on integer pixels (``uint8``) is verified on
integers of its input's dtype.

This module holds :func:`export_model` and the writing of the verified file with its record.
The parts it calls:

- :mod:`~cnnspec.export.targets`: where an export goes, and what it may replace there;
- :mod:`~cnnspec.export.artifact_runs`: the Keras model and each exported file run on a batch;
- :mod:`~cnnspec.export.converters`: each format written, and the ops a runtime lacks said;
- :mod:`~cnnspec.export.serving_record`: the record an export keeps of how to read it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.errors import UsageError, WriteError
from cnnspec.export.artifact_runs import (
    VERIFY_BATCH,
    float32_model,
    keras_outputs,
    run_onnx,
    run_saved_model,
    run_tflite,
    sample_batch,
    sample_said,
)
from cnnspec.export.converters import (
    GELU_WHY,
    extra_inputs_said,
    extra_onnx_inputs,
    foreign_onnx_ops,
    foreign_ops_said,
    gaps_said,
    layer_names,
    tflite_bytes,
    write_onnx,
    write_saved_model,
)
from cnnspec.export.delegate import delegate_failure
from cnnspec.export.runtimes import QUANTIZATIONS
from cnnspec.export.serving_record import (
    assumed_factor_note,
    export_record_text,
    recorded_split,
    run_of,
    savedmodel_meta,
    serving_meta,
)
from cnnspec.export.targets import (
    check_default_place,
    check_output,
    default_output,
    export_folder,
    foreign_file,
    is_default_output,
    resolve_target,
)
from cnnspec.export.verification import (
    FLOAT_RTOL,
    FLOAT_TOLERANCE,
    Decision,
    ExportMismatch,
    absolute_only,
    agreement_basis,
    compare,
    non_finite_outputs,
    output_decisions,
    tolerance_excess,
    tolerance_rule,
)
from cnnspec.fileio import (
    atomic_dir,
    atomic_path,
    check_writable,
    refuse_long_path,
    sha256_file,
    write_together,
)
from cnnspec.training.modelfile import check_model_file, load_model
from cnnspec.training.state import model_file_bytes, saved_model_bytes
from cnnspec.write_faults import write_fault

FORMATS = ("savedmodel", "tflite", "onnx")
#: Most images of the run's training split that calibrate a full-integer (``int8``) export's
#: activation ranges (the converter's ``representative_dataset``), drawn with
#: :data:`CALIBRATION_SEED` so that the same run gives the same export.
CALIBRATION_IMAGES = 200
CALIBRATION_SEED = 0
#: Most images of the run's test split (else its validation split) an ``int8`` export is
#: verified on: uniform noise is no image, and says little of how int8 ranges fit the data.
INT8_VERIFY_IMAGES = 64
_EXTRA_HINT = "install the export tools: pip install 'cnnspec[export]' (tf2onnx, onnxruntime)"


class ExportFailed(Exception):
    """A converter failed on the model (an unsupported op, a converter bug): nothing was written."""


@dataclass
class ExportResult:
    """What an export wrote and how closely it matches the Keras model."""

    format: str
    path: Path
    source: Path
    quantize: str | None
    max_abs_diff: float | None
    top1_agreement: float | None
    tolerance: float | None
    batch: int
    seconds: float
    size_bytes: int
    runtime: str
    notes: list[str] = field(default_factory=list)
    #: What ``top1_agreement`` counts (:func:`agreement_basis`); ``None`` when it measures
    #: nothing (a regression output, or no verification).
    agreement_basis: str | None = None
    #: What the verification batch was (seeded uniform noise, or the run's test images).
    verify_data: str | None = None
    #: How many training images calibrated an ``int8`` export (``None``: no calibration).
    calibration_images: int | None = None
    #: The temperature folded into the export's weights (1: the model's own probabilities).
    temperature: float = 1.0
    #: The relative part of the tolerance (``None`` with ``tolerance``: a quantized export).
    rtol: float | None = None
    #: Each output's name and whether ``rtol`` applied to it in the verification (``False``:
    #: its Keras values all lie within [0, 1], checked within ``tolerance`` alone), in the
    #: model's order; ``[]`` where no tolerance was checked (quantized, not verified).
    relative: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.max_abs_diff is not None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "format": self.format,
            "path": str(self.path),
            "source": str(self.source),
            "quantize": self.quantize,
            "max_abs_diff": self.max_abs_diff,
            "top1_agreement": self.top1_agreement,
            "agreement_basis": self.agreement_basis,
            "tolerance": self.tolerance,
            "rtol": self.rtol,
            "tolerance_rule": tolerance_rule(self.tolerance, self.rtol)
            if self.tolerance is not None and self.rtol is not None
            else None,
            "batch": self.batch,
            "verify_data": self.verify_data,
            "calibration_images": self.calibration_images,
            "temperature": self.temperature,
            "seconds": round(self.seconds, 3),
            "size_bytes": self.size_bytes,
            "runtime": self.runtime,
            "notes": self.notes,
        }


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def export_model(
    target: str | Path,
    fmt: str,
    out: str | Path | None = None,
    *,
    quantize: str | None = None,
    verify: bool = True,
    batch: int = VERIFY_BATCH,
    force: bool = False,
    temperature: float | None = 1.0,
    ensemble: Sequence[Path] = (),
    views: tuple[str, ...] = (),
    spec: Path | None = None,
) -> ExportResult:
    """Export the model of a run folder or ``.keras`` file to ``fmt`` and verify it.

    ``temperature``: folded into the weights of the layer that makes a classifier's (or a
    multi-label model's) scores (:mod:`cnnspec.export.folding`), so that the export answers
    with probabilities scaled by it; ``None``: the run's own (``temperature.json``, written
    by ``cnnspec calibrate``), where it has one for this model; 1: the model's own.
    ``ensemble``: other models (run folders or ``.keras`` files) exported with this one as one
    model that answers the mean of their outputs (:mod:`cnnspec.export.ensemble_model`; only
    to an ``out`` of its own), each with its own temperature under ``None``. ``views``:
    ``--tta``'s mirror images (``hflip``, ``vflip``), which the exported model answers too,
    answering the mean (to an ``out`` of its own as well). ``spec``: the spec that describes
    the model (``--spec``: for a ``.keras`` file outside its run folder), whose tasks, class
    names and pixel factor the record then keeps, as predict and evaluate read them with it.

    ``out`` defaults to :func:`default_output`, which a new export replaces. Another ``out``
    that exists (a file, a non-empty folder) is replaced only with ``force``; a folder holding
    more than a SavedModel's own entries never is. Raises :class:`UsageError` for bad arguments
    or missing tools, :class:`ExportMismatch` when a float export differs from Keras by more
    than :data:`FLOAT_TOLERANCE` plus :data:`FLOAT_RTOL` of the output's magnitude
    (:func:`~cnnspec.export.verification.tolerance_excess`; the target is then left as it was).
    """
    if fmt not in FORMATS:
        raise UsageError(f"expected a format among {', '.join(FORMATS)}; received {fmt!r}")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise UsageError(f"expected --quantize {' or '.join(QUANTIZATIONS)}; received {quantize!r}")
    if quantize is not None and fmt != "tflite":
        raise UsageError(f"expected --quantize only with --format tflite; received --format {fmt}")
    if fmt == "onnx":
        missing = [m for m in ("tf2onnx", "onnx") if importlib.util.find_spec(m) is None]
        if missing:
            needs = " and ".join(missing)
            verb = "are" if len(missing) > 1 else "is"
            raise UsageError(f"ONNX export needs {needs}, which {verb} not installed", _EXTRA_HINT)
    if ensemble and out is None:  # (the run's own export paths are read as the model's answer)
        raise UsageError(
            "expected -o with --ensemble: an ensemble is no export of the run's model alone",
            "name the file, e.g. -o ensemble.onnx",
        )
    if views and out is None:
        raise UsageError(
            "expected -o with --tta: a model answering over mirror images is no export of the "
            "run's model alone",
            "name the file, e.g. -o tta.onnx",
        )
    from cnnspec.reporting.tta import VIEWS

    if any(view not in VIEWS for view in views):
        raise UsageError(f"expected views among {', '.join(VIEWS)}; received {', '.join(views)}")
    source, stem = resolve_target(Path(target))
    default, folder = default_output(stem, fmt, quantize), export_folder(source, stem)
    if out is None:  # (an -o link is the user's choice: is_default_output holds it to --force)
        check_default_place(default, folder)
    path = Path(out) if out is not None else default
    # beside a .keras file (no run folder) the default is in the user's folder: only an export
    # cnnspec made there is replaced without --force
    foreign = foreign_file(path, fmt) if out is None and folder is None and not force else None
    if foreign is not None:
        raise UsageError(
            f"expected to write the export beside {source.name}; {foreign} is there, and is no "
            "export cnnspec made",
            "pass -o PATH to write it elsewhere, or --force to replace that file",
        )
    refuse_long_path(path, "-o", folder=fmt == "savedmodel")  # (before any question to the OS)
    check_output(path, fmt, replace=force or is_default_output(path, default, folder))
    check_model_file(source)  # what is no Keras archive, and where -o can't be written, are
    check_writable(path, option="-o", folder=fmt == "savedmodel")  # refused before TensorFlow
    run = run_of(source, spec) if fmt != "savedmodel" else None  # (a damaged run file: before writing)
    if quantize == "int8":  # its calibration needs the run's data: refused before TensorFlow
        _check_calibration_data(run, source, path)

    from cnnspec.training.onednn import layers_named
    from cnnspec.training.runtime import import_keras

    import_keras()
    started = time.perf_counter()
    notes: list[str] = []
    # The record ties the export to the model by the hash of the bytes that were loaded, not of
    # whatever model.keras holds when the record is written: a `train --resume` that replaced
    # it meanwhile would otherwise have this export recorded as the new model's, and
    # `--runtime auto` would use it silently. Hashed before loading and again after: a file
    # that changed while it was read is refused, and settled() checks once more at publishing.
    digest = sha256_file(source)
    loaded = load_model(source, one_input=False)
    _check_unchanged(source, digest, path)
    model, policy = float32_model(loaded)
    if policy is not None:
        notes.append(f"trained with {policy}; exported as a float32 graph")
    # what the record says is known before anything is written: a model it can't describe (no
    # fixed input shape) is refused with the target as it was, not removed after the rename
    meta = serving_meta(run, model) if run is not None else None
    if meta is not None and run.config is None and meta["input"]["rescale_integer"] is not None:
        notes.append(assumed_factor_note(source, meta["input"]["rescale_integer"]))
    if meta is not None:  # the run's split, so that evaluate --data of the file alone draws its test split
        split = recorded_split(run)
        if split is not None:
            meta["split"] = split
        else:  # why there is none: a lone model file's record is not an older cnnspec's
            from cnnspec.reporting.run_splits import unknown_split_reason

            meta["split_unknown"] = unknown_split_reason(run)
    # Only a run's spec says each output's task. Without one, serving_meta reads the tasks as
    # predict and evaluate read them (the task rules on shape, activation and saved loss), right
    # for serving but no ground for claiming a decision (an uncompiled linear unit is read as a
    # logits classifier and may be a regression), so output_decisions reads the activations
    # then, in every format alike
    if run is not None:
        decision_meta = meta if run.config is not None else None
    else:  # a SavedModel export: no record, the meta is only read for the decisions
        decision_meta = savedmodel_meta(source, model, spec)
    decisions = output_decisions(decision_meta, model)
    task_known = decision_meta is not None
    images = _run_images(run, model, path) if quantize == "int8" else None
    if images is not None and images.verification is not None:  # int8: on real images
        inputs, verify_data = [images.verification], images.verify_data
        batch = len(images.verification)
    else:
        inputs = sample_batch(model, batch)
        verify_data = sample_said(model, batch)
        if images is not None:
            notes.append("verified on uniform noise: the run has no test or validation images")
    folded = 1.0
    # the run of the model (a SavedModel export had none read yet), for its temperature and members
    averaged = bool(ensemble or views)  # several models, or mirror images: one model of the mean
    located = run if run is not None or (temperature == 1.0 and not averaged) else run_of(source, spec)
    # a kernel's refusal of the model names the spec's layer (not with --ensemble: another
    # model's layer may have the same name)
    ir = run.compiled.ir if run is not None and run.compiled is not None and not ensemble else None

    def answers(keras_model: Any) -> list[np.ndarray]:
        """``keras_model``'s outputs on the verification batch."""
        batch = inputs[0] if len(inputs) == 1 else inputs
        with layers_named(keras_model, ir, traced=lambda: keras_model.predict_on_batch(batch)):
            return keras_outputs(keras_model, inputs)

    if temperature != 1.0:
        from cnnspec.export.folding import fold_for_export

        reading = meta if meta is not None else serving_meta(located, model)

        def unfolded(value: float) -> None:
            """Record the run's temperature the head takes none of: predict and evaluate of the
            file alone apply it (``output.unfolded_temperature``), as they do with the run."""
            if meta is not None and not ensemble:
                meta["output"]["unfolded_temperature"] = value

        folded = fold_for_export(
            model,
            wanted=temperature,
            run=located,
            reading=reading,
            model_sha256=digest,
            first_output=lambda: answers(model)[0],
            notes=notes,
            averaged=averaged,
            unfolded=unfolded,
        )
        if folded != 1.0 and meta is not None and not ensemble:  # (in the serving digest)
            meta["output"]["temperature"] = folded
    if averaged:
        from cnnspec.export.ensemble_model import (
            as_probabilities,
            ensemble_for_export,
            output_tasks,
            squashing,
        )
        from cnnspec.reporting.tta import refuse_tasks

        tasks = output_tasks(located, loaded)
        if views:
            refuse_tasks(tasks, "cnnspec export")
        squash = squashing(located, loaded)
        model, members = ensemble_for_export(
            model, located, ensemble, squash, wanted=temperature, inputs=inputs,
            float32=float32_model, notes=notes, views=views,
            back=[task.task == "segmentation" for task in tasks],
        )  # fmt: skip
        if meta is not None and ensemble:
            own = {"model": str(source), "model_sha256": digest, "temperature": folded}
            meta["ensemble"] = [own, *members]
        if meta is not None and views:
            meta["tta"] = list(views)
        if any(squash):  # (the file answers the mean of probabilities)
            for described in {id(m): m for m in (meta, decision_meta) if m is not None}.values():
                as_probabilities(described)
            decisions = output_decisions(decision_meta, model)
    expected = answers(model)
    broken = non_finite_outputs(expected)
    if broken is not None and verify:  # no export of it can be verified: nothing to compare with
        raise ExportMismatch(
            f"the Keras model {source} itself answers NaN or infinity on the verification batch "
            f"({broken}, for {verify_data}): the model is broken (its "
            f"training diverged?), so no export of it can be verified. Nothing was written to "
            f"{path}; retrain it (a lower learning rate, gradient clipping), or export it "
            "unverified with --no-verify",
            np.inf,
        )
    if broken is not None:
        notes.append(f"the Keras model answers NaN or infinity on a test batch ({broken})")
    tolerance = None if quantize else FLOAT_TOLERANCE
    measured: dict[str, Any] = {"diff": None, "agreement": None, "runtime": "", "model_sha256": digest}
    measured.update(quantize=quantize, verify_data=verify_data if verify else None)
    calibration = images.calibration if images is not None else None
    if images is not None:
        measured["calibration"] = {
            "images": len(images.calibration),
            "split": "train",
            "train_images": images.train_size,
            "seed": CALIBRATION_SEED,
        }

    def check(run: Callable[[], list[np.ndarray]], runtime: str) -> None:
        if not verify:
            return
        try:
            answered = run()
            diff, agreement = compare(expected, answered, decisions)
        except ExportMismatch as exc:  # (a NaN where Keras has none, a shape): nothing is published
            raise ExportMismatch(
                f"the {fmt} export failed verification: {exc}. Nothing was written to {path}",
                exc.max_abs_diff,
            ) from None
        measured.update(diff=diff, agreement=agreement, runtime=runtime)
        if tolerance is None:
            return
        excess, where = tolerance_excess(expected, answered, tolerance, FLOAT_RTOL)
        measured["within"] = excess <= 1.0
        measured["relative"] = [not alone for alone in absolute_only(expected)]
        if not measured["within"]:
            raise ExportMismatch(
                f"the {fmt} export differs from the Keras model by {diff:.3g} (max abs) on a batch of "
                f"{batch}; expected {tolerance_rule(tolerance, FLOAT_RTOL)}, and the worst value is "
                f"{excess:.3g} times what that allows ({where}){gaps_said(model, fmt, ir)}. "
                f"Nothing was written to {path}",
                diff,
            )

    def settled() -> None:
        """Refuse to publish when model.keras is no longer the model that was exported."""
        _check_unchanged(source, digest, path)

    def record(written: Path) -> bytes:
        """The record of the export in ``written`` (its temp file, verified or not)."""
        assert meta is not None
        settled()
        measured["basis"] = _basis(decisions, measured, task_known)
        return export_record_text(path, written, source, meta, measured, tolerance, batch).encode("utf-8")

    try:
        _export(fmt, model, path, quantize, inputs, check, measured, notes, record, settled, calibration)
    except (ExportMismatch, ExportFailed, UsageError, WriteError):
        raise
    except Exception as exc:  # converters raise anything from ValueError to ConverterError
        # (a tflite export's converter writes a SavedModel first, in the temp folder)
        needed = saved_model_bytes(model) if fmt in ("savedmodel", "tflite") else model_file_bytes(model)
        fault = write_fault(exc, path, needed)
        if fault is not None:  # a full or failing disk under the converter: no converter bug
            raise fault from exc
        said = _without_temp_names(str(exc), path)[:300]
        why = (
            " (full-integer quantization needs an int8 kernel for every op of the model: "
            "--quantize dynamic or float16 keep float where there is none)"
            if quantize == "int8"
            else ""
        )
        if fmt == "onnx" and "Erfc" in str(exc):  # (the converter passes it on; ONNX has none)
            why += GELU_WHY
        gaps = gaps_said(model, fmt, ir)
        if gaps:  # the layer the format can't run, named: the converter's own text names an op
            said = said[:120] + ("…" if len(said) > 120 else "")
            why += gaps
        raise ExportFailed(
            f"the {fmt} converter failed on {source} ({type(exc).__name__}: {said}){why}; "
            f"nothing was written to {path}"
        ) from exc
    if not verify:
        notes.append("not verified (--no-verify)")
    return ExportResult(
        format=fmt,
        path=path,
        source=source,
        quantize=quantize,
        max_abs_diff=measured["diff"],
        top1_agreement=measured["agreement"],
        agreement_basis=_basis(decisions, measured, task_known),
        tolerance=tolerance,
        rtol=FLOAT_RTOL if tolerance is not None else None,
        relative=list(zip(_output_names(meta, len(expected)), measured.get("relative", []))),
        batch=batch,
        seconds=time.perf_counter() - started,
        size_bytes=_size(path),
        runtime=measured["runtime"] if measured["diff"] is not None else "",
        notes=notes,
        verify_data=verify_data if verify else None,
        calibration_images=len(calibration) if calibration is not None else None,
        temperature=folded,
    )


def _output_names(meta: dict[str, Any] | None, count: int) -> list[str]:
    """The model's ``count`` outputs by name as its record names them (``outputs``), else by
    number (``output 0``), as a failed verification names them."""
    entries = (meta or {}).get("outputs")
    if isinstance(entries, list) and len(entries) == count:
        return [str(entry.get("name", f"output {number}")) for number, entry in enumerate(entries)]
    return [f"output {number}" for number in range(count)]


@dataclass
class RunImages:
    """A run's images as its model takes them (float32, scaled as training scaled them), for a
    full-integer export: ``calibration`` from the training split, ``verification`` from the
    test split (else the validation split; ``None`` when the run has neither)."""

    calibration: np.ndarray
    verification: np.ndarray | None
    verify_data: str
    train_size: int


def _check_calibration_data(run: Any, source: Path, path: Path) -> None:
    """Refuse ``--quantize int8`` (a :class:`UsageError`, before TensorFlow is imported) when
    no run's spec names the data that calibrates it: a ``.keras`` outside a run folder, or a
    run folder that lost its resolved.yaml."""
    if run is not None and run.compiled is not None and run.config is not None:
        return
    if run is not None and run.run_dir is not None:
        why = f"resolved.yaml, the run's spec that names its data, is missing from {run.run_dir}"
        fix = "put back the resolved.yaml `cnnspec train` wrote"
    else:
        why = f"{source} is not in a run folder, so no training data is known for it"
        fix = "export the run folder the model was trained in"
    raise UsageError(
        f"expected a run folder with its data for --quantize int8, which is calibrated on the "
        f"run's training images; {why}. Nothing was written to {path}",
        f"{fix} (cnnspec export RUN --format tflite --quantize int8), or use --quantize dynamic "
        "or float16, which need no data",
    )


def _run_images(run: Any, model: Any, path: Path) -> RunImages:
    """The run's images for an ``int8`` export (:class:`RunImages`): its data loaded as
    training loads it (:func:`~cnnspec.training.data.load_dataset`, with the seed the run
    recorded, so the same splits), checked against the model and scaled by the factor training
    applied before the model (:func:`~cnnspec.reporting.held_out.test_split`'s pipeline settings,
    :func:`~cnnspec.training.imagefiles.scale_batch`); no augmentation, which only training
    applies. Up to :data:`CALIBRATION_IMAGES` training and :data:`INT8_VERIFY_IMAGES` test
    images, drawn with :data:`CALIBRATION_SEED`."""
    from cnnspec.reporting.held_out import test_split
    from cnnspec.reporting.run_splits import split_seed
    from cnnspec.training.data import load_dataset
    from cnnspec.training.filelist import ImageFiles
    from cnnspec.training.imagefiles import scale_batch
    from cnnspec.training.stream import readable

    if len(model.inputs) != 1:
        raise UsageError(
            f"expected a model with one image input for --quantize int8 (the run's images "
            f"calibrate it); {run.model_path} has {len(model.inputs)}. Nothing was written to {path}",
            "use --quantize dynamic or float16, which need no data",
        )
    compiled, config = run.compiled, run.config
    dataset = load_dataset(compiled, config, split_seed(run, config)[0])  # training's splits
    test = test_split(run, model, dataset, compiled, config)  # the images fit the model's input
    rescale = test.settings.rescale
    rng = np.random.default_rng(CALIBRATION_SEED)

    def draw(images: Any, most: int) -> tuple[np.ndarray, int]:
        """Up to ``most`` images drawn from ``images``, scaled, and how many drawn files were
        left out for failing to decode."""
        picked = np.sort(rng.choice(len(images), size=min(most, len(images)), replace=False))
        if isinstance(images, ImageFiles):  # (data.on_bad_file: skip) files that fail to decode
            # are left out as training left them out; only the drawn files are decoded for it
            chosen, _, dropped = readable(images.subset(picked), np.zeros(len(picked)))
            return scale_batch(chosen[np.arange(len(chosen))], rescale), dropped
        return scale_batch(images[picked], rescale), 0

    if len(dataset.x_train) == 0:
        raise UsageError(
            f"expected training images to calibrate the int8 export; the run's training split is "
            f"empty. Nothing was written to {path}",
            "use --quantize dynamic or float16, which need no data",
        )
    calibration, _ = draw(dataset.x_train, CALIBRATION_IMAGES)
    if len(calibration) == 0:
        raise UsageError(
            f"expected training images that decode to calibrate the int8 export; every drawn "
            f"training file failed to decode. Nothing was written to {path}",
            "replace the run's unreadable files (bad_files.txt), or use --quantize dynamic or float16",
        )
    verification, verify_data = None, ""
    for split, images in (("test", dataset.x_test), ("validation", dataset.x_val)):
        if len(images):
            verification, dropped = draw(images, INT8_VERIFY_IMAGES)
            if len(verification) == 0:  # every drawn file failed to decode: the next split
                verification = None
                continue
            left_out = f"; {dropped} drawn file(s) failed to decode, left out" if dropped else ""
            verify_data = (
                f"{len(verification)} of the run's {len(images)} {split} images (seed "
                f"{CALIBRATION_SEED}{left_out})"
            )
            break
    return RunImages(calibration, verification, verify_data, len(dataset.x_train))


def _basis(decisions: list[Decision | None], measured: dict[str, Any], task_known: bool) -> str | None:
    """What the verification's decision agreement counted (:func:`agreement_basis`), or why it
    counted nothing for an output no spec describes; ``None`` when nothing was verified, and
    for a run's regression, which makes no decision by its task."""
    if measured["diff"] is None:  # not verified: nothing was counted
        return None
    if measured["agreement"] is None and task_known:
        return None
    return agreement_basis(decisions, task_known=task_known)


def _check_unchanged(source: Path, digest: str, path: Path) -> None:
    """A :class:`UsageError` when ``source`` no longer hashes to ``digest``: it was replaced
    (a training or ``--resume`` saved a new model) while it was exported, and the export
    would be published as the new model's while it is the old one's."""
    try:
        now = sha256_file(source)
    except OSError:
        now = None
    if now != digest:
        raise UsageError(
            f"{source} changed while it was exported (another process wrote it); nothing was "
            f"written to {path}",
            "export again once the process writing the model (a training, a --resume) has ended",
        )


def _without_temp_names(text: str, path: Path) -> str:
    """``text`` with the export's temp names (``.model.onnx.qcg_7yd3.onnx``, a SavedModel's
    ``.model_saved_model.x1y2z3w4.tmp/new``, from :func:`~cnnspec.fileio.atomic_path` and
    :func:`atomic_dir`) said as the export's own name: the temp file is gone when the error is
    shown, and its name means nothing to the user."""
    pattern = (
        re.escape(f".{path.name}.") + r"[A-Za-z0-9_]{4,}?(?:" + re.escape(path.suffix) + r"|(?:\.tmp)?/new)"
    )
    if not path.suffix:
        pattern = re.escape(f".{path.name}.") + r"[A-Za-z0-9_]{4,}(?:\.tmp)?/new"
    return re.sub(pattern, path.name, text)


def _write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to the new file ``path`` and flush it to the disk."""
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


@contextlib.contextmanager
def _with_record(path: Path, needed: int, record: Callable[[Path], bytes]) -> Iterator[Path]:
    """Yield a temp path for the export bound for ``path``; once it is written and verified,
    its record (``record(temp)``) is written to a temp file beside the record, and both are
    renamed into place together (:func:`~cnnspec.fileio.write_together`), the export first. A
    failure before the renames (a mismatch, a full disk under the record) or in the record's
    rename leaves the export and its record as they were: a new export beside the previous
    one's record was refused by every reader for its hash."""
    from cnnspec.export.runtimes import record_path

    with (
        write_together(),
        atomic_path(record_path(path)) as record_temp,
        atomic_path(path, needed=needed) as temp,
    ):
        yield temp
        try:
            _write_bytes(record_temp, record(temp))
        except OSError as exc:  # (a full disk: the record's, not the export's, to name)
            raise write_fault(exc, record_path(path)) or exc from None


def _export(
    fmt: str,
    model: Any,
    path: Path,
    quantize: str | None,
    inputs: list[np.ndarray],
    check: Callable[[Callable[[], list[np.ndarray]], str], None],
    measured: dict[str, Any],
    notes: list[str],
    record: Callable[[Path], bytes],
    settled: Callable[[], None],
    calibration: np.ndarray | None = None,
) -> None:
    """Write ``model`` to ``path`` through a temp path, verifying before the final rename
    (a TFLite or ONNX file with its ``record``, made from the verified temp file, which calls
    ``settled``; a SavedModel, which has no record, calls it itself: the model file must be
    the one exported when the export is published)."""
    if fmt == "savedmodel":
        with atomic_dir(path, needed=saved_model_bytes(model)) as temp:
            write_saved_model(model, temp)
            check(lambda: run_saved_model(temp, inputs), "tf.saved_model")
            settled()
    elif fmt == "tflite":
        try:
            data = tflite_bytes(model, quantize, calibration)
        except Exception as exc:  # the converter writes a SavedModel in the temp folder first
            fault = write_fault(exc, Path(tempfile.gettempdir()))
            if fault is None:
                raise
            raise fault from exc
        with _with_record(path, len(data), record) as temp:
            _write_bytes(temp, data)
            # also unverified (--no-verify): a file a default interpreter refuses is no export
            failure = delegate_failure(temp, layer_names(model))
            if failure is not None:
                said = f"the tflite export would not run: {failure}. Nothing was written to {path}"
                raise ExportFailed(said)

            def run_lite() -> list[np.ndarray]:
                outputs, name = run_tflite(temp, inputs)
                measured["lite"] = name
                return outputs

            check(run_lite, "tflite")
            measured["runtime"] = measured.get("lite", "tflite")
    else:
        with _with_record(path, model_file_bytes(model), record) as temp:
            write_onnx(model, temp)
            # also unverified (--no-verify): a file that asks for more than the model's inputs
            # is no export of it (onnxruntime would refuse every call without them)
            extra = extra_onnx_inputs(temp, len(model.inputs))
            if extra:
                raise ExportFailed(extra_inputs_said(extra, model, path))
            foreign = foreign_onnx_ops(temp)  # (also unverified: no runtime would load it)
            if foreign:
                raise ExportFailed(foreign_ops_said(foreign, model, path))
            if importlib.util.find_spec("onnxruntime") is None:
                notes.append("not verified: onnxruntime is not installed (" + _EXTRA_HINT + ")")
            else:
                check(lambda: run_onnx(temp, inputs), "onnxruntime")
