"""Running a trained model without TensorFlow: verified ONNX and TFLite exports, and Keras.

An export is usable only with its **record**, ``<export>.json`` beside it, which
:func:`cnnspec.export.export_model` writes after the export passed verification. The record
says what predict needs to know without loading Keras or compiling the spec (input shape and
colour mode, the pixel factor training used, how to read the outputs, the class names) and
which model it came from (the SHA-256 of the ``.keras`` file). :func:`find_export` refuses an
export without a record, one that was not verified or failed verification, one whose file
changed since, and one made from an earlier model (the run was retrained or resumed).

Importing this module imports neither TensorFlow nor Keras; :func:`open_session` imports
only the chosen runtime (onnxruntime, LiteRT's ``ai_edge_litert``, or Keras for ``keras``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnspec.errors import UsageError
from cnnspec.fileio import sha256_file
from cnnspec.training.runtime import native_stderr_silenced

if TYPE_CHECKING:
    from cnnspec.analysis.tasks import OutputTask

#: The quantizations ``cnnspec export --format tflite --quantize Q`` makes, each written to
#: ``model.Q.tflite`` beside the float ``model.tflite``.
QUANTIZATIONS = ("dynamic", "float16", "int8")
#: A quantized TFLite export as a runtime of its own (``tflite-int8`` reads ``model.int8.tflite``):
#: evaluate, predict and benchmark run it when it is named; ``auto`` never picks one, since only
#: the float exports answer as the model does.
QUANTIZED_RUNTIMES = tuple(f"tflite-{q}" for q in QUANTIZATIONS)
RUNTIMES = ("keras", "onnx", "tflite", *QUANTIZED_RUNTIMES)
#: The exported formats the runtimes read, fastest first on CPU (the issue 23 measurements:
#: ONNX Runtime 0.59 ms, LiteRT 0.97 ms, Keras 2.03 ms per image for the seed ResNet).
EXPORT_RUNTIMES = ("onnx", "tflite")
#: The module each runtime needs, and the package that provides it.
MODULES = {"onnx": ("onnxruntime", "onnxruntime"), "tflite": ("ai_edge_litert", "ai-edge-litert")}
RECORD_FORMAT = 1
#: How far an export's folded temperature may be softened again (the temperature asked for over
#: the folded one) and still answer exactly: a float32 softmax rounds a class below e^-87 of the
#: top to 0, which softening by f would have raised to at most e^(-87 / f) (here below 1e-6).
MAX_SOFTENING = 6.0
#: The same for a sigmoid's probabilities (a binary or multi-label output, a one-channel map):
#: a float32 probability is resolved only to 2^-24 (about 6e-8) next to 1 in every runtime, and
#: next to 0 as well in ONNX Runtime, whose Sigmoid is exact only to about 6e-8 absolute (0 below
#: about -17.3). The folded answer so holds a log-odds only up to about 16.6 in size, which
#: softening by f turns into an error of up to e^(-16.6 / f) (below 1e-6 up to here).
MAX_SIGMOID_SOFTENING = 1.2
_EXTRA = "pip install 'cnnspec[export]'"


def record_path(export: Path) -> Path:
    """Where an export's record lives: ``model.onnx`` → ``model.onnx.json``."""
    return export.with_name(export.name + ".json")


def engine(runtime: str) -> tuple[str, str | None]:
    """``(the runtime that loads it, its quantization)`` of a runtime's name: ``tflite-int8`` →
    ``("tflite", "int8")``, ``onnx`` → ``("onnx", None)``."""
    base, _, quantize = runtime.partition("-")
    return base, quantize or None


def export_path(stem: Path, runtime: str) -> Path:
    """The export a runtime reads: ``stem.onnx``, ``stem.tflite``, and for a quantized one
    (``tflite-int8``) ``stem.int8.tflite``, where ``cnnspec export --quantize`` writes it."""
    base, quantize = engine(runtime)
    tag = f".{quantize}" if quantize else ""
    return stem.with_name(f"{stem.name}{tag}.{base}")


def stem_of(target: Path) -> tuple[Path, Path]:
    """``(model.keras, export stem)`` of a run folder or a ``.keras`` file, without loading it
    (``RUN/export/model`` for a run folder and its ``model.keras``; beside the file otherwise)."""
    from cnnspec.export.targets import resolve_target

    return resolve_target(Path(target))


def installed(runtime: str) -> bool:
    """Whether the runtime's package can be imported here."""
    base, _ = engine(runtime)
    if base == "keras":
        return True
    return importlib.util.find_spec(MODULES[base][0]) is not None


def require(runtime: str, instead: str = "use --runtime keras") -> None:
    """A :class:`UsageError` naming the extra to install when ``runtime`` is not installed;
    ``instead``: what the command can do without it (its own option's words)."""
    if not installed(runtime):
        module, package = MODULES[engine(runtime)[0]]
        raise UsageError(
            f"the {runtime} runtime needs {package} (the Python module {module}), which is not installed",
            f"install it with {_EXTRA}, or {instead}",
        )


def missing_note(runtime: str) -> str:
    """Why ``runtime`` is left out where it was not asked for by name (``benchmark``'s default
    formats): the package it needs, and the extra that installs it."""
    module, package = MODULES[engine(runtime)[0]]
    return f"{runtime} not timed: it needs {package} (the Python module {module}); install it with {_EXTRA}"


@dataclass
class ExportRecord:
    """An export's record (``<export>.json``) and where its file is."""

    path: Path
    runtime: str
    data: dict[str, Any]

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The model's input shape without the batch axis."""
        return tuple(int(d) for d in self.data["input"]["shape"])

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.data["output"]["classes"]]

    @property
    def output_names(self) -> dict[str, list[str]]:
        """A task model's class, label or value names by output (the ``outputs`` entries'
        ``names``); a record written before names were recorded gives the first output the
        output ``classes``, as it was written for it."""
        entries = self.data.get("outputs") or []
        found = {str(e["name"]): [str(n) for n in e["names"]] for e in entries if "names" in e}
        if entries and not found:
            found = {str(entries[0]["name"]): self.classes}
        return found

    @property
    def temperature(self) -> float:
        """The temperature ``cnnspec export`` folded into the export's weights (1: none): its
        first output answers with the model's class scores divided by it
        (:mod:`cnnspec.export.folding`)."""
        return folded_temperature(self.data)

    @property
    def unfolded_temperature(self) -> float:
        """The run's temperature (``cnnspec calibrate``'s) that the export's head could take
        none of (1: none): the file answers the model's own probabilities, which a reader of
        the file alone scales by it, as ``cnnspec predict RUN`` does (:func:`unfolded_temperature`)."""
        return unfolded_temperature(self.data)

    def remaining(self, temperature: float) -> float:
        """The temperature still to apply to the export's answers for them to be the model's own
        scaled by ``temperature``: what the export folded in is applied already (applying the
        rest, rather than undoing it first, keeps a float32 export's saturated tail out of it)."""
        return temperature / self.temperature

    def inexact(self, temperature: float) -> str | None:
        """Why the export cannot answer exactly as the model scaled by ``temperature`` (``None``
        when it can): it folded in a temperature so much lower (:data:`MAX_SOFTENING`) that its
        float32 probabilities may have rounded the least likely classes to 0; or it answers a
        sigmoid's probabilities, whose most confident answers it cut off earlier than the Keras
        model does (:meth:`cuts_sigmoid`), and they would be softened by more than
        :data:`MAX_SIGMOID_SOFTENING`."""
        further = self.remaining(temperature)
        if self.cuts_sigmoid():
            if further <= MAX_SIGMOID_SOFTENING:
                return None
            folded = ""
            if self.temperature != 1.0:
                folded = f" with the temperature {self.temperature:.4g} folded in"
            ends = "0 or 1" if engine(self.runtime)[0] == "onnx" else "1"
            return (
                f"it answers sigmoid probabilities{folded}, from which a temperature of "
                f"{temperature:.4g} can not be had exactly (its float32 sigmoid resolves a probability "
                f"only to about 6e-8 next to {ends}: the most confident answers, which softening by "
                f"{further:.4g} would bring out, are lost)"
            )
        if further <= MAX_SOFTENING:
            return None
        return (
            f"it answers with the temperature {self.temperature:.4g} folded in, from which a "
            f"temperature of {temperature:.4g} can not be had exactly (its float32 probabilities "
            "may round the least likely classes to 0)"
        )

    def cuts_sigmoid(self) -> bool:
        """Whether the export's first output is a sigmoid's probabilities that it resolves less
        finely than the Keras model (whose float32 sigmoid keeps small probabilities to their
        own precision, and cuts off next to 1 at a log-odds of about 16.6): any such output of an
        ONNX export (ONNX Runtime's Sigmoid is exact only to about 6e-8 absolute), and one of a
        TFLite export that folded in a temperature below 1 (log-odds multiplied, so cut off
        sooner). Logits (``from_logits``) are never cut off."""
        tasks, kind = served_reading(self.data)
        if tasks is None:
            sigmoid = kind.binary and not kind.from_logits
        else:
            first = tasks[0]
            sigmoid = not first.loss.from_logits and (first.task == "multilabel" or first.binary)
        return sigmoid and (engine(self.runtime)[0] == "onnx" or self.temperature < 1.0)

    @property
    def inputs(self) -> int:
        """How many inputs the model has (records written before this was recorded: one)."""
        count = self.data["input"].get("inputs", 1)
        return count if _count(count) else 1

    @property
    def tasks(self) -> tuple[OutputTask, ...] | None:
        """How to read each output of a model that is not a single classifier (the record's
        ``outputs``), in the model's output order; ``None`` for a single classifier."""
        return served_reading(self.data)[0]

    def require_one_input(self, model: Path) -> None:
        """Refuse a model with several inputs as the Keras path does: predict and evaluate feed
        one image batch."""
        if self.inputs != 1:
            raise UsageError(f"expected a model with one image input; {model} has {self.inputs}")

    def rescale(self, integer_pixels: bool) -> float | None:
        """The pixel factor training applied to integer (file) or float (``.npy``) pixels."""
        key = "rescale_integer" if integer_pixels else "rescale_float"
        value = self.data["input"].get(key)
        return float(value) if value is not None else None


def folded_temperature(data: dict[str, Any]) -> float:
    """The temperature an export's record (or its ``output`` and ``outputs`` parts) says was
    folded into the export's weights: ``output.temperature``, 1 when there is none."""
    value = (data.get("output") or {}).get("temperature", 1.0)
    return float(value) if _finite(value) and value > 0 else 1.0


def unfolded_temperature(data: dict[str, Any]) -> float:
    """The temperature an export's record says its run was calibrated with but the export does
    not answer with (no layer of its head took it: ``output.unfolded_temperature``), 1 when
    there is none."""
    value = (data.get("output") or {}).get("unfolded_temperature", 1.0)
    return float(value) if _finite(value) and value > 0 else 1.0


def model_answer(outputs: np.ndarray, data: dict[str, Any]) -> np.ndarray:
    """The first output's raw values of an export as the Keras model gives them: the temperature
    the export folded into its weights (:func:`folded_temperature` of its record ``data``)
    taken out again: how the benchmark scores every runtime alike (evaluate and predict apply
    only the rest of their temperature instead: :meth:`ExportRecord.remaining`)."""
    temperature = folded_temperature(data)
    if temperature == 1.0:
        return outputs
    from cnnspec.reporting.temperature import scaled_answer

    tasks, kind = served_reading(data)  # (a folded export has one output: the exporter's rule)
    answer = scaled_answer(outputs, tasks, kind, 1.0 / temperature)
    return np.asarray(answer, dtype=np.asarray(outputs).dtype)


def served_reading(data: dict[str, Any]) -> tuple[tuple[OutputTask, ...] | None, Any]:
    """How a record's (or a serving meta's) ``output`` and ``outputs`` say to read the model:
    every output's task (``None`` for a single classifier) and the first output's
    :class:`~cnnspec.reporting.model_graph.OutputKind`."""
    from cnnspec.reporting.model_graph import OutputKind

    output, entries = data.get("output") or {}, data.get("outputs")
    tasks = tuple(output_task(entry) for entry in entries) if entries else None
    return tasks, OutputKind(binary=bool(output.get("binary")), from_logits=bool(output.get("from_logits")))


def describe_output(out: OutputTask, names: list[str] | None = None) -> dict[str, Any]:
    """How to read one output of a model that is not a single classifier (a record's
    ``outputs`` entry; :func:`output_task` reads it back): its name, task, shape and loss
    (``{name: settings}`` with every setting it takes, :func:`~cnnspec.analysis.settings.
    loss_settings`, so that a served file's loss is the run's: huber's delta, a focal loss's
    alpha …), whether it gives logits, the thresholds of multi-label and one-channel outputs (on
    the raw values, and on the probabilities), and the names of its classes, labels or values."""
    from cnnspec.analysis.settings_training import loss_settings

    settings = loss_settings(out.loss)
    entry: dict[str, Any] = {
        "name": out.name,
        "task": out.task,
        "shape": list(out.shape),
        "loss": {out.loss.name: settings} if settings else out.loss.name,
        "from_logits": out.loss.from_logits,
    }
    if names is not None:
        entry["names"] = list(names)
    if out.task == "multilabel" or out.binary:
        entry["threshold"] = out.decision_threshold
        entry["probability_threshold"] = out.threshold
    if out.loss_weight != 1.0:  # (its share of a multi-output model's total loss: evaluate's)
        entry["loss_weight"] = out.loss_weight
    return entry


def output_task(entry: dict[str, Any]) -> OutputTask:
    """The :class:`~cnnspec.analysis.tasks.OutputTask` a record's ``outputs`` entry describes
    (:func:`describe_output`), for predict and the benchmark without the spec."""
    from cnnspec.analysis.settings_training import loss_from_setting
    from cnnspec.analysis.tasks import DEFAULT_THRESHOLD, OutputTask

    task, from_logits = str(entry["task"]), bool(entry["from_logits"])
    shape = tuple(int(d) for d in entry["shape"])
    threshold = entry.get("probability_threshold")
    if threshold is None:  # a record written before: 0 on logits is 0.5 on probabilities
        threshold = DEFAULT_THRESHOLD if from_logits else entry.get("threshold", DEFAULT_THRESHOLD)
    loss = entry.get("loss") or _default_loss(task, shape)
    weight = entry.get("loss_weight", 1.0)
    return OutputTask(
        name=str(entry["name"]),
        task=task,
        loss=loss_from_setting(loss, from_logits),
        metrics=(),
        shape=shape,
        activation=None,
        loss_weight=float(weight) if _finite(weight) else 1.0,
        threshold=float(threshold),
    )


def inexact_loss(entry: dict[str, Any]) -> str | None:
    """The name of an ``outputs`` entry's loss where its record keeps only that name of a loss
    that takes settings (written before :func:`describe_output` kept them): the loss it is read
    with has the defaults, which may not be the run's. ``None`` where it is exact."""
    from cnnspec.analysis.settings_training import loss_from_setting, loss_settings

    loss = entry.get("loss")
    if not isinstance(loss, str) or not loss_settings(loss_from_setting(loss, False)):
        return None
    return loss


def _default_loss(task: str, shape: tuple[int, ...]) -> str:
    """The loss of an output in a record written before ``loss`` was recorded (only one-hot
    targets depend on it, which predict and the benchmark never build)."""
    if task == "multilabel" or shape[-1:] == (1,):
        return "binary_crossentropy"
    return "mse" if task == "regression" else "sparse_categorical_crossentropy"


def record_text(
    export: Path,
    model: Path,
    details: dict[str, Any],
    meta: dict[str, Any],
    *,
    written: Path | None = None,
    model_sha256: str | None = None,
) -> str:
    """``export``'s record as JSON text: its verification ``details`` (from the exporter), the
    file hashes that tie it to ``model``, and ``meta`` (``input`` and ``output`` for predict).
    ``written``: the file that holds the export's bytes when it is not yet at ``export`` (the
    exporter's temp file, renamed into place after the record is written). ``model_sha256``:
    the hash of the model bytes the export was made from (the exporter hashes them when it
    loads them: the file may have been replaced since); by default ``model``'s hash now."""
    document = {
        "format": RECORD_FORMAT,
        "file": export.name,
        "file_sha256": sha256_file(written if written is not None else export),
        "model": model.name,
        "model_sha256": model_sha256 if model_sha256 is not None else sha256_file(model),
        **details,
        **meta,
    }
    document["serving_sha256"] = serving_digest(document)
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


#: The parts of a record predict and evaluate serve from: the input's shape and pixel factors,
#: how to read the outputs, the class names, and the run's split (which images evaluate may
#: score it on).
SERVED = ("input", "output", "outputs", "split")


def serving_digest(record: dict[str, Any]) -> str:
    """SHA-256 of a record's :data:`SERVED` parts, as canonical JSON: a record edited after
    the export (another input shape fed an ONNX session the wrong tensor, exit 3; a TFLite one
    was resized to it and answered otherwise) no longer matches it."""
    served = {key: record[key] for key in SERVED if key in record}
    text = json.dumps(served, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def write_record(export: Path, model: Path, details: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Write ``export``'s record (:func:`record_text`) beside it, atomically."""
    from cnnspec.fileio import write_atomic

    return write_atomic(record_path(export), record_text(export, model, details, meta))


def read_record(export: Path, runtime: str, model: Path) -> ExportRecord:
    """The record of ``export`` after every check; a :class:`UsageError` says what is wrong
    and how to make a good export."""
    command = export_command(model, runtime)
    remake = f"re-export it: {command}"
    if not export.is_file():
        raise UsageError(
            f"expected {_article(runtime)} {runtime} export at {export}; "
            f"there is none{_other_exports(export, runtime)}",
            f"make one with `{command}` (it is verified against Keras), or use --runtime keras",
        )
    data = _checked_record(export, runtime, remake, model)
    if sha256_file(model) != data["model_sha256"]:
        raise UsageError(
            # the check compares hashes, not dates: "older than" was false for a model whose
            # date was set back (touch -d), and true of none that only got a newer date
            f"refusing the {runtime} export {export}: {model.name} changed since the export (its "
            "SHA-256 differs from the one the export was verified against: retrained, resumed or "
            "replaced)",
            remake + ", or use --runtime keras",
        )
    _, quantize = engine(runtime)
    made = data.get("quantize")
    # a quantized runtime reads only an export made with that quantization; the float name
    # also reads a quantized file written to its path with -o (a note says so: quantized_note)
    if quantize is not None and made != quantize:
        said = f"{_article(made)} {made}-quantized" if isinstance(made, str) else "a float (unquantized)"
        raise UsageError(
            f"refusing the {runtime} export {export}: its record says it is {said} export", remake
        )
    return ExportRecord(export, runtime, data)


#: An exported file served by itself (``cnnspec predict model.onnx IMAGE``), by its suffix: the
#: runtime that reads it.
SERVED_SUFFIXES = {".onnx": "onnx", ".tflite": "tflite"}


def served_file(target: Path) -> bool:
    """Whether ``target`` names an exported file to serve by itself (an ``.onnx`` or
    ``.tflite`` file, not a run folder or a ``.keras`` model): :func:`read_served`."""
    return target.suffix.lower() in SERVED_SUFFIXES and not target.is_dir()


def read_served(export: Path) -> ExportRecord:
    """The record of an exported file served by itself, away from its model and run (a file
    deployed with its record, ``model.onnx`` and ``model.onnx.json``), after the checks that
    need no model: the record is whole and unedited, the file is the one verified against Keras.
    The record is the file's own description, so an ensemble's or a ``--tta`` export's is read
    as what it answers. Its runtime: the file's (``tflite-int8`` for an int8 file)."""
    base = SERVED_SUFFIXES[export.suffix.lower()]
    require(base)
    remake = f"re-export it: cnnspec export RUN --format {base} -o {export}"
    if not export.is_file():
        raise UsageError(
            f"expected {_article(base)} {base} export at {export}; there is none",
            f"make one with `cnnspec export RUN --format {base} -o {export}`",
        )
    data = _checked_record(export, base, remake, None)
    made = data.get("quantize")
    runtime = f"{base}-{made}" if base == "tflite" and made in QUANTIZATIONS else base
    return ExportRecord(export, runtime, data)


def _checked_record(export: Path, runtime: str, remake: str, model: Path | None) -> dict[str, Any]:
    """The record of the file ``export`` after the checks that need no model: readable, a cnnspec
    record, well formed, unedited, verified, of this file. ``model``: the model whose own export
    it is to be (an ensemble's or a ``--tta`` export's record is refused as that); ``None``: the
    file is served by itself (:func:`read_served`)."""
    record = record_path(export)
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"refusing the {runtime} export {export}: it has no verification record ({record.name})",
            f"it was made by an older cnnspec or copied in; {remake}",
        ) from None
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"refusing the {runtime} export {export}: unreadable record {record} ({exc})", remake
        ) from None
    except (RecursionError, MemoryError):  # a hostile nesting (json recurses per level), a huge file
        raise UsageError(
            f"refusing the {runtime} export {export}: unreadable record {record} (nested too deeply "
            "or too large to read)",
            remake,
        ) from None
    needed = ("file_sha256", "model_sha256", "verified", "input", "output")
    if (
        not isinstance(data, dict)
        or data.get("format") != RECORD_FORMAT
        or any(k not in data for k in needed)
    ):
        raise UsageError(
            f"refusing the {runtime} export {export}: {record.name} is not a cnnspec export record",
            remake,
        )
    if model is not None and "ensemble" in data:  # (cnnspec export --ensemble -o: several models)
        count = len(data["ensemble"]) if isinstance(data["ensemble"], list) else "several"
        raise UsageError(
            f"refusing the {runtime} export {export}: it is an ensemble of {count} models (cnnspec "
            f"export --ensemble), not the export of {model.name} alone",
            f"cnnspec evaluate and predict --ensemble run the models of an ensemble themselves; {remake}",
        )
    if model is not None and "tta" in data:  # (cnnspec export --tta -o: the mean over mirror images)
        views = ",".join(map(str, data["tta"])) if isinstance(data["tta"], list) else "views"
        raise UsageError(
            f"refusing the {runtime} export {export}: it answers the mean over mirror images "
            f"(cnnspec export --tta {views}), not {model.name}'s own answer",
            f"cnnspec evaluate and predict --tta {views} mirror the images themselves; {remake}",
        )
    problem = _meta_problem(data)
    if problem is not None:  # a hand-edited record: what predict reads must be well-formed
        raise UsageError(f"refusing the {runtime} export {export}: {record.name} {problem}", remake)
    # (records written before the digest was kept have none: their well-formedness is checked)
    if "serving_sha256" in data and data["serving_sha256"] != serving_digest(data):
        raise UsageError(
            f"refusing the {runtime} export {export}: {record.name} was edited after the export "
            "(its input, output or class names are not those the export was verified with)",
            remake,
        )
    if not data["verified"]:
        raise UsageError(
            f"refusing the {runtime} export {export}: it was not verified against the Keras model "
            "(exported with --no-verify, or its runtime was missing)",
            remake + " (without --no-verify)",
        )
    if sha256_file(export) != data["file_sha256"]:
        raise UsageError(
            f"refusing the {runtime} export {export}: the file changed after it was verified", remake
        )
    return data


def export_command(model: Path, runtime: str) -> str:
    """The ``cnnspec export`` command line that makes the export ``runtime`` reads."""
    base, quantize = engine(runtime)
    return f"cnnspec export {_run_of(model)} --format {base}" + (
        f" --quantize {quantize}" if quantize else ""
    )


def _other_exports(export: Path, runtime: str) -> str:
    """The other TFLite exports beside a missing one, and the runtime that reads each, as a
    parenthesis for the error (``""``: none, or not a TFLite export)."""
    if engine(runtime)[0] != "tflite":
        return ""
    tail = export_path(Path("_"), runtime).name.removeprefix("_")  # ".tflite", ".int8.tflite"
    stem = export.with_name(export.name.removesuffix(tail))
    others = [
        f"{path.name}: --runtime {name}"
        for name in ("tflite", *QUANTIZED_RUNTIMES)
        if name != runtime and (path := export_path(stem, name)).is_file()
    ]
    return f" (there is {'; '.join(others)})" if others else ""


def _article(word: str) -> str:
    """``an`` before a word read with a vowel first (``an int8``, ``an onnx``), else ``a``."""
    return "an" if word[:1] in ("a", "e", "i", "o", "u") else "a"


def _meta_problem(data: dict[str, Any]) -> str | None:
    """What is malformed in a record's ``input``/``output`` (``serving_meta``'s), else ``None``."""
    given, out = data.get("input"), data.get("output")
    if not isinstance(given, dict) or not isinstance(out, dict):
        return "has no input and output description"
    shape = given.get("shape")
    if not isinstance(shape, list) or not shape or not all(_count(d) for d in shape):
        return f"has an input shape that is no list of positive integers ({shape!r:.60})"
    for key in ("rescale_integer", "rescale_float"):
        value = given.get(key)
        if value is not None and not _finite(value):  # (Python's json reads NaN and Infinity)
            return f"has an input {key} that is no number ({value!r:.60})"
    for key in ("binary", "from_logits"):
        if not isinstance(out.get(key), bool):
            return f"has an output {key} that is not true or false ({out.get(key)!r:.60})"
    for key in ("temperature", "unfolded_temperature"):
        folded = out.get(key, 1.0)
        if not _finite(folded) or not folded > 0:
            said = "temperature" if key == "temperature" else "unfolded temperature"
            return f"has an output {said} that is no positive number ({folded!r:.60})"
    classes = out.get("classes")
    if not isinstance(classes, list) or not all(isinstance(c, (str, int)) for c in classes):
        return f"has output classes that are no list of names ({classes!r:.60})"
    tasks = data.get("outputs")
    if tasks is not None and not (isinstance(tasks, list) and all(isinstance(t, dict) for t in tasks)):
        return "has outputs that are no list of output descriptions"
    parts = {"input": given, "output": out, **{f"outputs[{i}]": t for i, t in enumerate(tasks or [])}}
    problem = _non_finite(parts)
    for index, task in enumerate(tasks or []):
        problem = problem or _output_problem(task, index)
    return problem


def _output_problem(entry: dict[str, Any], index: int) -> str | None:
    """What is malformed in the ``outputs`` entry ``index`` (:func:`describe_output`'s), else
    ``None``: predict reads a task model's outputs by it when there is no spec."""
    from cnnspec.analysis.tasks import TASKS

    where = f"outputs[{index}]"
    if entry.get("task") not in TASKS:
        return f"has an {where}.task that is none of {', '.join(TASKS)} ({entry.get('task')!r:.60})"
    if not isinstance(entry.get("name"), str):
        return f"has an {where}.name that is no text ({entry.get('name')!r:.60})"
    shape = entry.get("shape")
    if not isinstance(shape, list) or not shape or not all(_count(d) for d in shape):
        return f"has an {where}.shape that is no list of positive integers ({shape!r:.60})"
    if not isinstance(entry.get("from_logits"), bool):
        return f"has an {where}.from_logits that is not true or false ({entry.get('from_logits')!r:.60})"
    for key in ("threshold", "probability_threshold"):
        value = entry.get(key)
        if value is not None and not _finite(value):
            return f"has an {where}.{key} that is no number ({value!r:.60})"
    loss = entry.get("loss")
    if loss is not None and not isinstance(loss, str) and not _loss_setting(loss):
        return f"has an {where}.loss that is no loss name or {{name: settings}} ({loss!r:.60})"
    names = entry.get("names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, (str, int)) for n in names)):
        return f"has an {where}.names that is no list of names ({names!r:.60})"
    return None


def _loss_setting(value: Any) -> bool:
    """Whether ``value`` is a loss as :func:`describe_output` writes one with its settings: one
    name whose settings are numbers and true or false (finite: read by :func:`_non_finite`'s
    rule)."""
    if not (isinstance(value, dict) and len(value) == 1):
        return False
    settings = next(iter(value.values()))
    return isinstance(settings, dict) and all(isinstance(v, bool) or _finite(v) for v in settings.values())


def _non_finite(parts: dict[str, dict[str, Any]]) -> str | None:
    """The first number of the record's serving parts that is NaN or infinite (Python's json
    reads ``NaN`` and ``Infinity``): cnnspec writes none, and none can be used."""
    for where, part in parts.items():
        for key, value in part.items():
            if isinstance(value, float) and not math.isfinite(value):
                return f"has {where}.{key} {value!r}, which is no finite number"
    return None


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _run_of(model: Path) -> Path:
    return model.parent if (model.parent / "lock.json").is_file() else model


def find_export(target: Path, runtime: str) -> ExportRecord:
    """The checked export that ``runtime`` (onnx or tflite) reads for a run folder or
    ``.keras`` file."""
    require(runtime)  # first: installing it is the first step either way
    model, stem = stem_of(target)
    return read_record(export_path(stem, runtime), runtime, model)


def fastest_recorded(target: Path) -> list[str]:
    """Export runtimes ordered by the run's ``benchmark.json`` (lowest batch-1 median
    latency first), or by :data:`EXPORT_RUNTIMES` when there is none."""
    model, _ = stem_of(target)
    order = list(EXPORT_RUNTIMES)
    bench = model.parent / "benchmark.json"
    # a damaged benchmark.json only loses the order (RecursionError: a hostile nesting)
    with contextlib.suppress(
        OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError, MemoryError
    ):
        rows = json.loads(bench.read_text(encoding="utf-8"))["results"]
        speed = {
            r["runtime"]: r["latency_ms"]["1"]["median"] for r in rows if r.get("latency_ms", {}).get("1")
        }
        order.sort(key=lambda r: speed.get(r, float("inf")))
    return order


def choose(
    target: Path, runtime: str, passed_over: Callable[[ExportRecord], str | None] | None = None
) -> tuple[str, ExportRecord | None, list[str]]:
    """The runtime to use for ``--runtime`` (``auto``: the fastest usable export, else Keras),
    its export record (``None`` for Keras), and notes on what ``auto`` passed over and why.

    ``passed_over``: why ``auto`` must pass over an export that is otherwise usable (``None``:
    it need not), asked of each in turn, so that the next export is tried (an ONNX export that
    cannot answer the run's temperature exactly: a TFLite one may, :meth:`ExportRecord.inexact`)."""
    if runtime == "keras":
        return "keras", None, []
    if runtime != "auto":
        record = find_export(target, runtime)
        return runtime, record, quantized_note(record)
    notes: list[str] = []
    try:
        _model, stem = stem_of(target)
    except UsageError:  # not a run folder or .keras file: the Keras path says so in its words
        return "keras", None, notes
    for candidate in fastest_recorded(target):
        if not export_path(stem, candidate).is_file():
            continue
        try:
            record = find_export(target, candidate)
        except UsageError as exc:
            notes.append(f"auto: skipped {candidate}: {exc}")
            continue
        reason = passed_over(record) if passed_over is not None else None
        if isinstance(record.data.get("quantize"), str):  # (written to the float path with -o)
            reason = (
                f"{export_path(stem, candidate).name} is a {record.data['quantize']}-quantized export, "
                "which answers only near the model"
            )
        if reason is not None:
            notes.append(f"auto: skipped {candidate}: {reason}")
            continue
        return candidate, record, notes
    return "keras", None, notes


def serves_temperature(record: ExportRecord, temperature: float, wanted: str, notes: list[str]) -> bool:
    """Whether the export ``--runtime wanted`` chose answers for the model scaled by
    ``temperature``: one that can not do it exactly (:meth:`ExportRecord.inexact`) is passed
    over under ``auto``, with a note, and serves an explicit ``--runtime`` with a note."""
    reason = record.inexact(temperature)
    if reason is None:
        return True
    if wanted == "auto":
        notes.append(f"auto: skipped {record.runtime}: {reason}")
        return False
    notes.append(f"{record.runtime}: {reason}; --runtime keras answers exactly")
    return True


def quantized_note(record: ExportRecord) -> list[str]:
    """A note when the export a command runs is quantized (a runtime such as ``tflite-int8``, or
    a quantized file written to the float export's path with ``-o``): its answers may differ a
    little from the Keras model's; the record's agreement."""
    quantize = record.data.get("quantize")
    if not isinstance(quantize, str):
        return []
    agreement = record.data.get("top1_agreement")
    measured = (
        f" (decision agreement with Keras {agreement:.3f} when exported)"
        if isinstance(agreement, (int, float)) and not isinstance(agreement, bool)
        else ""
    )
    kind = f"{_article(quantize)} {quantize}-quantized export"
    return [
        f"{record.runtime}: {record.path.name} is {kind}{measured}; its answers may differ a little "
        "from the Keras model's"
    ]


# -- sessions ------------------------------------------------------------------------------------
@dataclass
class Session:
    """A loaded model in one runtime: ``run_all(batch)`` → the raw values of every output, in
    the model's output order (as export verification reads them); ``run(batch)`` → the first
    output's."""

    runtime: str
    runner: Callable[[np.ndarray], list[np.ndarray]]
    threads: int | None = None

    def run_all(self, batch: np.ndarray) -> list[np.ndarray]:
        """Every output's raw values for ``batch`` (already scaled), in the model's order."""
        return [np.asarray(out) for out in self.runner(np.ascontiguousarray(batch, dtype="float32"))]

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The first output's raw values for ``batch`` (already scaled)."""
        return self.run_all(batch)[0]


def signature_order(names: Iterable[str]) -> list[str]:
    """Signature output names (``output_0``, ``output_1``, …, ``output_10``) in the model's
    output order: by their number, not as strings (``output_10`` sorts before ``output_2``),
    names without a number last. TFLite's signature and a SavedModel's ``serve`` name their
    outputs so, while the interpreter's plain output list is in no documented order."""

    def key(name: str) -> tuple[int, str]:
        tail = name.rsplit("_", 1)[-1]
        return (int(tail), name) if tail.isdecimal() else (1 << 30, name)

    return sorted(names, key=key)


def open_session(runtime: str, path: Path, threads: int | None = None) -> Session:
    """Load ``path`` (an export, or a ``.keras`` file for ``keras``) in ``runtime``.

    ``threads``: the intra-op thread count every runtime gets (``None``: the runtime's default).
    """
    base, _ = engine(runtime)  # (a quantized export is a TFLite file like any other)
    if base == "keras":
        return Session(runtime, _keras(path, threads), threads)
    return Session(runtime, (_onnx if base == "onnx" else _tflite)(path, threads, runtime), threads)


#: What reads each export format, as the refusal of a file it cannot load names it.
READERS = {"onnx": "ONNX Runtime", "tflite": "LiteRT"}


def unreadable_export(runtime: str, path: Path, cause: Exception) -> UsageError:
    """The refusal of an export its runtime cannot load, in the words of the other refusals of
    a damaged export (:func:`read_record`, :func:`read_served`): a file damaged with a record
    whose ``file_sha256`` was rewritten to match passes every check of the record, and
    onnxruntime's ``InvalidProtobuf`` or LiteRT's "not a valid Flatbuffer" ended the command
    as an internal error (exit 3)."""
    base, quantize = engine(runtime)
    run = path.parent.parent  # (a run's own export: RUN/export/model.onnx, made by that command)
    own = path.parent.name == "export" and export_path(run / "export" / "model", runtime) == path
    if own and (run / "model.keras").is_file():
        command = export_command(run / "model.keras", runtime)
    else:  # (a file served by itself: remade where it is, as read_served says)
        quantized = f" --quantize {quantize}" if quantize else ""
        command = f"cnnspec export RUN --format {base}{quantized} -o {path}"
    said = (str(cause).strip().splitlines() or [""])[0][:200]
    return UsageError(
        f"refusing the {runtime} export {path}: {READERS[base]} cannot read it, though its record "
        f"says it is the file that was verified ({type(cause).__name__}: {said})",
        f"the file is damaged, or its record was edited to match it; re-export it: {command}",
    )


def _onnx(path: Path, threads: int | None, runtime: str = "onnx") -> Any:
    require("onnx")
    import onnxruntime

    with contextlib.suppress(AttributeError):
        onnxruntime.disable_telemetry_events()
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # (InvalidProtobuf, Fail, …: onnxruntime's have no other common base)
        raise unreadable_export(runtime, path, exc) from None
    _one_input(len(session.get_inputs()), path)
    name, dtype = session.get_inputs()[0].name, onnx_input_dtype(session.get_inputs()[0].type)

    def run(batch: np.ndarray) -> list[np.ndarray]:
        feed = as_input_dtype(batch, dtype)  # (a uint8-input model takes uint8 pixels)
        return list(session.run(None, {name: feed}))  # (ONNX keeps the model's output order)

    return run


def _tflite(path: Path, threads: int | None, runtime: str = "tflite") -> Any:
    require("tflite")
    from ai_edge_litert.interpreter import Interpreter

    # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on descriptor 2
    quiet = contextlib.nullcontext() if os.environ.get("CNNSPEC_TF_LOGS") else native_stderr_silenced()
    with quiet:
        try:
            interpreter = Interpreter(model_path=str(path), num_threads=threads or None)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:  # ("The model is not a valid Flatbuffer buffer")
            raise unreadable_export(runtime, path, exc) from None
    _one_input(len(interpreter.get_input_details()), path)
    given = interpreter.get_input_details()[0]
    source = given["index"]
    targets = _tflite_outputs(interpreter)
    # an integer-quantized export (--quantize int8) takes and gives int8 tensors: the float
    # batch is quantized with the input's (scale, zero point), the outputs dequantized with theirs
    by_index = {int(detail["index"]): detail for detail in interpreter.get_output_details()}
    readers = [by_index.get(target) for target in targets]
    allocated: list[tuple[int, ...]] = [tuple(given["shape"])]

    def run(batch: np.ndarray) -> list[np.ndarray]:
        if tuple(batch.shape) != allocated[0]:  # the batch size changed: resize once
            interpreter.resize_tensor_input(source, list(batch.shape))
            interpreter.allocate_tensors()
            allocated[0] = tuple(batch.shape)
        interpreter.set_tensor(source, quantize_input(batch, given))
        interpreter.invoke()
        return [
            dequantize_output(interpreter.get_tensor(target), detail)
            for target, detail in zip(targets, readers)
        ]

    return run


def _quantization(detail: dict[str, Any] | None) -> tuple[np.dtype[Any], float, int] | None:
    """``(dtype, scale, zero point)`` of a TFLite tensor that holds quantized integers (a full
    integer export's input or output), from its interpreter details; ``None`` for a float
    tensor, and for an integer one without a per-tensor scale (no quantized value: as it is)."""
    if detail is None:
        return None
    dtype = np.dtype(detail["dtype"])
    if not np.issubdtype(dtype, np.integer):
        return None
    scale, zero = detail.get("quantization") or (0.0, 0)
    if not scale:
        return None
    return dtype, float(scale), int(zero)


def quantize_input(batch: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """``batch`` (float, scaled as the model takes it) as the TFLite input ``detail`` takes it:
    unchanged for a float input; for a quantized one (int8), ``round(x / scale) + zero_point``
    (halves away from zero, as TFLite's own quantize op rounds), clipped to the integer range."""
    quantized = _quantization(detail)
    if quantized is None:  # (a uint8 input of the model itself: its integers, as Keras casts them)
        return as_input_dtype(batch, np.dtype(detail["dtype"]))
    dtype, scale, zero = quantized
    scaled = np.asarray(batch, dtype="float64") / scale
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + zero
    limits = np.iinfo(dtype)
    return np.clip(rounded, limits.min, limits.max).astype(dtype)


def as_input_dtype(batch: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    """``batch`` in the dtype a model's input takes: a model built on a ``uint8`` (or other
    integer) input is served that dtype by every runtime (onnxruntime and LiteRT refuse a float
    batch for it), its values rounded and clipped to the dtype's range, as Keras' own cast of a
    float batch to the input's dtype keeps them; a float input, its float dtype."""
    if np.issubdtype(dtype, np.integer):
        limits = np.iinfo(dtype)
        return np.clip(np.rint(np.asarray(batch, dtype="float64")), limits.min, limits.max).astype(dtype)
    if np.asarray(batch).dtype == dtype:
        return batch
    return np.asarray(batch, dtype=dtype)


#: onnxruntime's names of the input types a model's input may have (``tensor(uint8)``, …).
_ONNX_TYPES = {
    f"tensor({name})": np.dtype(name)
    for name in ("float16", "uint8", "int8", "uint16", "int16", "int32", "int64")
} | {"tensor(float)": np.dtype("float32"), "tensor(double)": np.dtype("float64")}


def onnx_input_dtype(type_name: str) -> np.dtype[Any]:
    """The NumPy dtype of an ONNX input's ``type`` (``tensor(uint8)``); float32 for any other."""
    return _ONNX_TYPES.get(type_name, np.dtype("float32"))


def dequantize_output(values: np.ndarray, detail: dict[str, Any] | None) -> np.ndarray:
    """A TFLite output as float32: ``(q - zero_point) * scale`` for a quantized (int8) output,
    a copy of the values for a float one."""
    quantized = _quantization(detail)
    if quantized is None:
        return np.array(values, copy=True)
    _, scale, zero = quantized
    return ((np.asarray(values, dtype="float32") - np.float32(zero)) * np.float32(scale)).astype("float32")


def _tflite_outputs(interpreter: Any) -> list[int]:
    """The tensor index of each output of a loaded ``.tflite`` model, in the model's output
    order.

    ``get_output_details()`` lists the outputs in the converter's order, which is not the
    model's (a model with outputs ``mask, labels, count, area`` lists ``labels, area, mask,
    count``): reading its first entry served another output than the first. The
    ``serving_default`` signature names them ``output_0``, ``output_1``, … in the model's
    order, which is how export verification reads them
    (:func:`cnnspec.export.artifact_runs.run_tflite`). Its indices are used only when they are
    those of the main graph's outputs, which ``invoke`` runs (a signature of another subgraph
    numbers its own tensors); a file without one signature (not written by ``cnnspec export``)
    has only the interpreter's order to go by."""
    plain = [int(detail["index"]) for detail in interpreter.get_output_details()]
    signatures = interpreter.get_signature_list()
    if len(signatures) != 1:
        return plain
    details = interpreter.get_signature_runner(next(iter(signatures))).get_output_details()
    ordered = [int(details[name]["index"]) for name in signature_order(details)]
    return ordered if sorted(ordered) == sorted(plain) else plain


def _one_input(count: int, path: Path) -> None:
    """Refuse an export of a model with several inputs, as the Keras path refuses the model
    (a session feeds its first input alone: the others would be left unset)."""
    if count != 1:
        raise UsageError(f"expected a model with one image input; {path} has {count}")


def _keras(path: Path, threads: int | None) -> Any:
    from cnnspec.training.runtime import import_keras

    import_keras()
    if threads:
        import tensorflow as tf

        with contextlib.suppress(RuntimeError):  # already initialised: keep what is set
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
    from cnnspec.training.modelfile import load_model

    model = load_model(path)

    def run(batch: np.ndarray) -> list[np.ndarray]:
        out = model.predict_on_batch(batch)  # (a list in the model's output order when several)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    return run


def predict_batches(session: Session, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The first output's raw values for every row of ``x`` (already scaled), batch by batch."""
    parts = [session.run(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0,), dtype="float32")


def predict_all_batches(session: Session, x: np.ndarray, batch_size: int = 64) -> list[np.ndarray]:
    """Every output's raw values for every row of ``x`` (already scaled), batch by batch: one
    array per output, in the model's output order (:meth:`Session.run_all`), as Keras' predict
    gives a model of several outputs. ``x`` holds at least one row."""
    parts = [session.run_all(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return [np.concatenate(outputs) for outputs in zip(*parts, strict=True)]
