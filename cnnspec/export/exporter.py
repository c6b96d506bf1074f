"""Export a trained Keras model to SavedModel, TFLite or ONNX, and check the result.

Every export is *verified before it is published*: the artifact is written to a temporary
path beside the target, loaded back in its own runtime (``tf.saved_model.load``, the LiteRT
interpreter, onnxruntime), run on a seeded batch, and compared with the Keras model on the same
batch. Only when every value is within the tolerance (float exports: :data:`FLOAT_TOLERANCE`
plus :data:`FLOAT_RTOL` of the Keras value, :func:`~cnnspec.export.verification.tolerance_excess`)
is the temporary artifact renamed onto the target, so a failed or wrong export never
replaces a good one. Quantized TFLite exports are expected to differ; their difference and
top-1 agreement are reported, not enforced. A full-integer export (``int8``: every op, the
input and the output int8) is calibrated on up to :data:`CALIBRATION_IMAGES` of the run's
training images and verified on its test images (:func:`_run_images`), not on uniform noise.

Models trained with mixed precision are exported as float32 graphs (their variables are
float32 already): serving runtimes and converters expect float32, and ONNX export requires it.

Tools: SavedModel through Keras' ``model.export(format="tf_saved_model")``; TFLite through
TensorFlow's ``TFLiteConverter`` from that SavedModel; ONNX through Keras'
``model.export(format="onnx")``, which drives ``tf2onnx`` (the optional ``export`` extra:
``pip install 'cnnspec[export]'``). Each traces the model in inference mode
(:func:`inference_calls`: augmentation layers pass images through, dropout is off), and a model
built on integer pixels (``uint8``) is verified on integers of its input's dtype.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import json
import logging
import os
import re
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.errors import UsageError, WriteError
from cnnspec.export.delegate import delegate_failure
from cnnspec.export.runtimes import QUANTIZATIONS, RECORD_FORMAT
from cnnspec.export.verification import (
    Decision,
    ExportMismatch,
    agreement_basis,
    compare,
    non_finite_outputs,
    output_decisions,
    tolerance_excess,
    tolerance_rule,
)
from cnnspec.fileio import atomic_dir, atomic_path, check_writable, sha256_file, write_fault, write_together
from cnnspec.layers import kind_of_keras_class
from cnnspec.training.modelfile import all_layers, check_model_file, load_model
from cnnspec.training.state import model_file_bytes, saved_model_bytes

FORMATS = ("savedmodel", "tflite", "onnx")
#: Most images of the run's training split that calibrate a full-integer (``int8``) export's
#: activation ranges (the converter's ``representative_dataset``), drawn with
#: :data:`CALIBRATION_SEED` so that the same run gives the same export.
CALIBRATION_IMAGES = 200
CALIBRATION_SEED = 0
#: Most images of the run's test split (else its validation split) an ``int8`` export is
#: verified on: uniform noise is no image, and says little of how int8 ranges fit the data.
INT8_VERIFY_IMAGES = 64
#: Largest absolute difference accepted between Keras and a float (unquantized) export, plus
#: :data:`FLOAT_RTOL` of the Keras value for an output not within [0, 1] (float32 rounds each
#: value relative to its size: outputs in the hundreds differ by more than 1e-4, correctly).
FLOAT_TOLERANCE = 1e-4
FLOAT_RTOL = 1e-4
VERIFY_BATCH = 8
VERIFY_SEED = 0
_SUFFIX = {"tflite": ".tflite", "onnx": ".onnx"}
#: What a SavedModel folder holds (Keras and TensorFlow write these); nothing else is replaced.
SAVED_MODEL_ENTRIES = frozenset(
    {"saved_model.pb", "variables", "assets", "fingerprint.pb", "keras_metadata.pb"}
)
_FORCE_HINT = "add --force to replace it"
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


# -- targets and outputs ------------------------------------------------------------------------


def resolve_target(target: Path) -> tuple[Path, Path]:
    """``(model file, output stem)`` for a run folder or a ``.keras`` file.

    A run folder's exports go to ``RUN/export/model.*``; a ``.keras`` file's go beside it. A
    run's own ``RUN/model.keras`` (its folder has ``lock.json``) is the run: ``export``,
    ``predict`` and ``evaluate`` find one export whichever of the two paths they are given.
    """
    target = Path(target)
    if target.name == "model.keras" and target.is_file() and (target.parent / "lock.json").is_file():
        target = target.parent
    if target.is_dir():
        model = target / "model.keras"
        if model.is_file():
            return model, target / "export" / "model"
        if (target / "lock.json").is_file():  # (unfinished, or finished and its model file gone)
            from cnnspec.reporting.run import missing_model_error

            raise missing_model_error(target)
        raise UsageError(
            f"expected a run folder (with model.keras) or a .keras file; {target} is neither",
            "a run folder is what `cnnspec train` writes (runs/<name>-<time>)",
        )
    if not target.exists():
        raise UsageError(f"expected a run folder or a .keras file; {target} does not exist")
    if target.suffix != ".keras":
        check_model_file(target)  # the loader's refusal (an .h5 file, another format), said its way
    return target, target.with_suffix("")


def default_output(stem: Path, fmt: str, quantize: str | None = None) -> Path:
    """``stem_saved_model/``, ``stem.tflite`` (``stem.dynamic.tflite`` …), ``stem.onnx``."""
    if fmt == "savedmodel":
        return stem.with_name(stem.name + "_saved_model")
    tag = f".{quantize}" if quantize else ""
    return stem.with_name(stem.name + tag + _SUFFIX[fmt])


def _is_default(path: Path, default: Path, folder: Path | None) -> bool:
    """Whether ``path`` is where cnnspec writes this export by itself (``default``, from
    :func:`default_output`) in a place of its own: an ``-o`` link, or a default reached through
    a link (:func:`_linked_place`), is held to ``--force`` like any other existing file."""
    if _linked_place(default, folder) is not None or os.path.islink(path):
        return False
    return os.path.realpath(path) == os.path.realpath(default)


def _foreign_file(path: Path, fmt: str) -> Path | None:
    """Which of ``path`` and its record an export there would replace though cnnspec did not
    write it (``None``: neither is there, or the record beside the file names its bytes). A
    SavedModel folder is judged by :func:`_check_output`, which replaces only its own files."""
    from cnnspec.export.runtimes import record_path

    record = record_path(path)
    if fmt == "savedmodel" or not (os.path.lexists(path) or os.path.lexists(record)):
        return None
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        data = None
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        return path if os.path.lexists(path) else record
    # cnnspec's record: of the file there, of one moved away (the record stays), or of the
    # export a kill caught between its two renames
    return None


def _export_folder(source: Path, stem: Path) -> Path | None:
    """A run folder's ``RUN/export`` (:func:`resolve_target`'s stem is in it, the model is not);
    ``None`` for a ``.keras`` file's exports, which go beside it."""
    return stem.parent if stem.parent != source.parent else None


def _linked_place(default: Path, folder: Path | None) -> str | None:
    """Why ``default`` is no place of cnnspec's own (``None`` when it is): the run's export
    ``folder`` is a link or no folder, or the default file (or SavedModel folder) is a link."""
    if folder is not None and os.path.islink(folder):
        return f"{folder} is a symlink (to {os.readlink(folder)})"
    if folder is not None and os.path.lexists(folder) and not folder.is_dir():
        return f"{folder} is not a folder"
    if os.path.islink(default):
        return f"{default} is a symlink (to {os.readlink(default)})"
    return None


def _check_default_place(default: Path, folder: Path | None) -> None:
    """Refuse to write the default output through a link: with ``ln -s ~/elsewhere RUN/export``,
    ``cnnspec export RUN`` wrote (and replaced, as it replaces its default outputs) files there."""
    why = _linked_place(default, folder)
    if why is None:
        return
    where = "the run folder itself" if folder is not None else "the model's own folder"
    raise UsageError(
        f"expected the export's default location to be cnnspec's own; {why}",
        f"cnnspec writes its exports into {where}: remove the link, or export with -o PATH",
    )


def _entries(folder: Path) -> list[str]:
    """The names in ``folder`` (sorted); a :class:`UsageError` when it can't be listed."""
    try:
        return sorted(entry.name for entry in folder.iterdir())
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UsageError(f"expected -o to name a folder that can be read; {folder}: {reason}") from None


#: What a SavedModel's variables/ holds: its index and its data shards.
_VARIABLE_FILE = re.compile(r"variables\.(index|data-\d+-of-\d+)")


def _not_saved_model(folder: Path, entries: list[str]) -> list[str]:
    """What in ``folder`` is no part of a SavedModel export (relative names): an entry a
    SavedModel has not, a ``variables/`` file other than its index and shards, anything in
    ``assets/`` (cnnspec's exports leave it empty), or a missing ``saved_model.pb``. All of it
    would be lost with the folder, which an export replaces whole."""
    foreign = [name for name in entries if name not in SAVED_MODEL_ENTRIES]
    if "saved_model.pb" not in entries:
        foreign.append("no saved_model.pb")
    for sub, keep in (("variables", _VARIABLE_FILE), ("assets", None)):
        inner = folder / sub
        if sub in entries and (inner.is_symlink() or not inner.is_dir()):
            foreign.append(sub)
        elif sub in entries:
            foreign += [f"{sub}/{n}" for n in _entries(inner) if keep is None or not keep.fullmatch(n)]
    return foreign


def _check_output(path: Path, fmt: str, *, replace: bool) -> None:
    """Refuse an output that does not fit ``fmt``, and one whose replacing would lose files.

    ``replace``: an existing export there may be replaced (``--force``, or the default output,
    which is cnnspec's own). A folder holding anything but a SavedModel's own entries is never
    replaced: an export replaces the whole folder, and the other files would be lost.
    """
    if fmt == "savedmodel":
        if path.exists() and not path.is_dir():
            raise UsageError(f"expected a folder for the SavedModel; {path} is a file")
        entries = _entries(path) if path.is_dir() else []
        if not entries:
            return
        foreign = _not_saved_model(path, entries)
        if foreign:
            shown = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
            raise UsageError(
                f"expected a new folder or an earlier SavedModel export; {path} holds what no export "
                f"does ({shown})",
                "choose another -o (a SavedModel export replaces the whole folder, so even --force "
                "does not replace a folder with files that are not an export)",
            )
        if not replace:
            raise UsageError(f"expected -o to name a new or empty folder; {path} already exists", _FORCE_HINT)
        return
    if path.suffix != _SUFFIX[fmt]:
        raise UsageError(f"expected an output path ending in {_SUFFIX[fmt]}; received {path}")
    if path.is_dir():
        raise UsageError(f"expected a file path for the {fmt} model; {path} is a folder")
    if replace:
        return
    from cnnspec.export.runtimes import record_path

    for existing in (path, record_path(path)):  # (the record beside it is replaced as well)
        if os.path.lexists(existing):
            raise UsageError(f"expected -o to name a new file; {existing} already exists", _FORCE_HINT)


# -- the model ----------------------------------------------------------------------------------


def _is_mixed(policy: Any) -> bool:
    name = getattr(policy, "name", policy)
    return isinstance(name, str) and name.startswith("mixed_")


def float32_model(model: Any) -> tuple[Any, str | None]:
    """``model`` itself when it computes in float32, else a float32 copy with its weights.

    Returns the model and the mixed policy it was trained with (``None`` when it was float32).
    """
    policies = {layer.dtype_policy.name for layer in model.layers if _is_mixed(layer.dtype_policy)}
    if not policies:
        return model, None
    import keras

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("class_name") == "DTypePolicy" and _is_mixed(node.get("config", {}).get("name")):
                return "float32"
            return {k: strip(v) for k, v in node.items()}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    config = strip(keras.saving.serialize_keras_object(model))
    copy = keras.saving.deserialize_keras_object(config, safe_mode=True)
    copy.set_weights(model.get_weights())
    return copy, sorted(policies)[0]


def _integer_range(dtype: np.dtype[Any]) -> tuple[int, int]:
    """The values a verification batch draws for an integer input of ``dtype``: its whole range
    up to 16 bits (a uint8 input's pixels 0–255), else 0–255 (an int32 input's range would be
    no image's)."""
    limits = np.iinfo(dtype)
    return (int(limits.min), int(limits.max)) if dtype.itemsize <= 2 else (0, 255)


def _input_dtypes(model: Any) -> list[np.dtype[Any]]:
    """The dtype each input of ``model`` takes (float32 where Keras names none)."""
    dtypes = []
    for tensor in model.inputs:
        try:
            dtypes.append(np.dtype(str(getattr(tensor, "dtype", None) or "float32")))
        except TypeError:  # (a dtype NumPy has no name for, e.g. bfloat16: fed as float32)
            dtypes.append(np.dtype("float32"))
    return dtypes


def sample_batch(model: Any, batch: int = VERIFY_BATCH, seed: int = VERIFY_SEED) -> list[np.ndarray]:
    """Seeded inputs, one array per model input: uniform [0, 1) floats, or for an integer input
    (a model built on ``uint8`` pixels) uniform integers of its range in its dtype, which the
    converted graph takes (onnxruntime and LiteRT refuse float32 for a uint8 input)."""
    rng = np.random.default_rng(seed)
    out = []
    for tensor, dtype in zip(model.inputs, _input_dtypes(model)):
        shape = [d if d is not None else 32 for d in tuple(tensor.shape)[1:]]
        if np.issubdtype(dtype, np.integer):
            low, high = _integer_range(dtype)
            out.append(rng.integers(low, high, (batch, *shape), endpoint=True).astype(dtype))
        else:
            out.append(rng.random((batch, *shape)).astype("float32"))
    return out


def sample_said(model: Any, batch: int) -> str:
    """What :func:`sample_batch` feeds, as the record's ``verify_data`` says it."""
    said = f"{batch} seeded uniform [0, 1) inputs (seed {VERIFY_SEED})"
    integers = [(d, _integer_range(d)) for d in _input_dtypes(model) if np.issubdtype(d, np.integer)]
    if integers:
        dtype, (low, high) = integers[0]
        said = f"{batch} seeded uniform {dtype.name} inputs in [{low}, {high}] (seed {VERIFY_SEED})"
    return said


def keras_outputs(model: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
    import keras

    result = model(inputs[0] if len(inputs) == 1 else inputs, training=False)
    items = result if isinstance(result, (list, tuple)) else [result]
    return [np.asarray(keras.ops.convert_to_numpy(item), dtype="float32") for item in items]


# -- runtimes -----------------------------------------------------------------------------------


def _ordered(outputs: dict[str, Any]) -> list[np.ndarray]:
    """Signature outputs (``output_0``, ``output_1``, …) in the model's output order (the
    order the TFLite runtime serves them in too: one rule, :func:`signature_order`)."""
    from cnnspec.export.runtimes import signature_order

    return [np.asarray(outputs[name]) for name in signature_order(outputs)]


def run_saved_model(path: Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Reload a SavedModel with ``tf.saved_model.load`` and call its ``serve`` endpoint."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    tensors = [tf.constant(x) for x in inputs]
    result = loaded.serve(*tensors) if len(tensors) > 1 else loaded.serve(tensors[0])
    if isinstance(result, dict):
        return _ordered({k: v.numpy() for k, v in result.items()})
    items = result if isinstance(result, (list, tuple)) else [result]
    return [np.asarray(item.numpy()) for item in items]


def tflite_interpreter(model_path: Path) -> tuple[Any, str]:
    """The LiteRT interpreter (``ai_edge_litert``) when installed, else TensorFlow's own."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter(model_path=str(model_path)), "ai_edge_litert"
    except ImportError:
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "tf.lite.Interpreter is deprecated": still in TF 2.21
            return tf.lite.Interpreter(model_path=str(model_path)), "tf.lite"


def run_tflite(path: Path, inputs: list[np.ndarray]) -> tuple[list[np.ndarray], str]:
    """Run a .tflite model's ``serving_default`` signature on ``inputs`` (batch resized).

    A full-integer export (``--quantize int8``) is fed and read as the runtime sessions feed and
    read it (:func:`~cnnspec.export.runtimes.quantize_input`, ``dequantize_output``): float
    inputs quantized with each input tensor's scale and zero point, outputs dequantized."""
    from cnnspec.export.runtimes import dequantize_output, quantize_input

    with _quiet_native():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
        interpreter, name = tflite_interpreter(path)
        runner = interpreter.get_signature_runner()
        given = runner.get_input_details()
        feeds = {n: quantize_input(x, given[n]) for n, x in zip(list(given), inputs)}
        outputs = runner(**feeds)
        details = runner.get_output_details()
    return _ordered({k: dequantize_output(v, details.get(k)) for k, v in outputs.items()}), name


def run_onnx(path: Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run an .onnx model with onnxruntime (CPU)."""
    import onnxruntime

    with contextlib.suppress(AttributeError):
        onnxruntime.disable_telemetry_events()
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {spec.name: x for spec, x in zip(session.get_inputs(), inputs)}
    return [np.asarray(out) for out in session.run(None, feeds)]


# -- writers ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_native() -> Iterator[None]:
    """Drop converter chatter (MLIR, tf2onnx) unless ``CNNSPEC_TF_LOGS=1``."""
    if os.environ.get("CNNSPEC_TF_LOGS"):
        yield
        return
    from cnnspec.training.runtime import native_stderr_silenced

    loggers = [logging.getLogger(name) for name in ("tf2onnx", "absl", "tensorflow")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with native_stderr_silenced(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@contextlib.contextmanager
def inference_calls(model: Any) -> Iterator[None]:
    """Within the block, ``model.__call__`` (the endpoint Keras' ``model.export`` traces, for
    every format) calls the model with ``training=False``.

    Keras traces ``model.__call__`` without a ``training`` argument, so each layer falls back
    on its own default: augmentation layers (``random_flip``, ``random_rotation``, …) default
    to ``training=True`` and were traced as random ops in the served graph (a SavedModel that
    flips its inputs at random, StatelessRandom* ops that neither tf2onnx nor the TFLite
    converter takes). A serving graph is the model in inference mode, as ``model.predict``
    runs it. The attribute is set on the instance (an explicit ``model.__call__`` reads it
    before the class's method) and removed afterwards, whatever happened."""
    method = type(model).__call__

    def serve(*args: Any, **kwargs: Any) -> Any:
        kwargs["training"] = False
        return method(model, *args, **kwargs)

    object.__setattr__(model, "__call__", serve)  # (past Keras' and TF's attribute tracking)
    try:
        yield
    finally:
        object.__delattr__(model, "__call__")


def _write_saved_model(model: Any, path: Path) -> None:
    with _quiet_native(), inference_calls(model):
        model.export(str(path), format="tf_saved_model", verbose=False)


def _tflite_bytes(model: Any, quantize: str | None, calibration: np.ndarray | None = None) -> bytes:
    """The ``.tflite`` bytes of ``model``: float, or quantized (``dynamic``: int8 weights;
    ``float16``: float16 weights; ``int8``: every op and the input and output int8, the
    activation ranges calibrated on ``calibration``, images as the model takes them)."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="cnnspec-export-") as scratch:
        saved = Path(scratch) / "saved_model"
        _write_saved_model(model, saved)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        if quantize is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            if quantize == "float16":
                converter.target_spec.supported_types = [tf.float16]
            if quantize == "int8":
                assert calibration is not None and len(calibration)
                images = calibration

                def representative() -> Iterator[list[np.ndarray]]:
                    for image in images:  # one image at a time, as the converter's examples feed it
                        yield [image[np.newaxis]]

                converter.representative_dataset = representative
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                converter.inference_input_type = tf.int8
                converter.inference_output_type = tf.int8
        with _quiet_native(), _older_objects_frozen():
            return bytes(converter.convert())


@contextlib.contextmanager
def _older_objects_frozen() -> Iterator[None]:
    """The objects the process holds before a TFLite conversion kept out of the garbage
    collector's walks while it runs (``gc.freeze``), and handed back after it. TensorFlow's
    converter ends with a full ``gc.collect()`` to free the SavedModel it loaded, which walked
    every object of the process, TensorFlow's modules and the caller's models among them: half a
    second to a second of each conversion in a process that has built a few models. What the
    conversion makes is collected as before, so the same garbage goes and the file is the same.
    (The freeze is process-wide: a conversion on another thread meanwhile collects less until
    this one ends, and one ending first hands everything back early; neither changes a result.)"""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _layer_names(model: Any) -> list[str]:
    """The names of ``model``'s layers, those of nested models included."""
    return [layer.name for layer in all_layers(model)]


def _write_onnx(model: Any, path: Path) -> None:
    """Convert ``model`` to ``path`` through tf2onnx, the eager tensors its layers hold traced as
    constants (:mod:`cnnspec.export.constants`: tf2onnx takes them for inputs otherwise)."""
    from cnnspec.export.constants import tensors_as_constants

    with _quiet_native(), tensors_as_constants(model), inference_calls(model):
        model.export(str(path), format="onnx", verbose=False)


def _extra_onnx_inputs(path: Path, inputs: int) -> list[str]:
    """The inputs of the ONNX file ``path`` beyond the model's ``inputs`` (tf2onnx lists the
    model's first): tensors of the graph that the converter took for inputs (see
    :mod:`cnnspec.export.constants`)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initialized = {tensor.name for tensor in graph.initializer}
    return [given.name for given in graph.input if given.name not in initialized][inputs:]


def _extra_inputs_said(extra: list[str], model: Any, path: Path) -> str:
    """Why an ONNX file asking for ``extra`` inputs is refused, naming their layers."""
    from cnnspec.training.onednn import layer_of_node

    names = _layer_names(model)
    layers = list(dict.fromkeys(layer_of_node(name, names) for name in extra))
    named = ", ".join(f"`{layer}`" for layer in layers if layer is not None) or "the model"
    return (
        f"the onnx converter took values that layer(s) {named} hold ({', '.join(extra[:3])}) for "
        "inputs of the model: the file would ask for them beside its own inputs, and no runtime "
        f"would run it. Nothing was written to {path}; export it with -f tflite or -f savedmodel"
    )


#: Why an ONNX export of a model with gelu fails (the converter passes Keras' erfc on as is).
_GELU_WHY = (
    " (the model's gelu: Keras computes it with erfc, which ONNX has no operator for; "
    "-f tflite exports it, or use another activation such as silu)"
)


def _foreign_onnx_ops(path: Path) -> list[tuple[str, str]]:
    """The nodes of the ONNX file ``path`` whose op is none of ONNX's own (``(node name, op)``):
    TensorFlow ops tf2onnx left as they were, such as the ``StatefulPartitionedCall`` of a
    grouped convolution (``conv2d`` with ``groups`` > 1, which tf2onnx 1.17 does not convert).
    No ONNX runtime loads such a file. Ops of other domains (``com.microsoft``) are left to the
    runtime."""
    import onnx
    import onnx.defs

    graph = onnx.load(str(path), load_external_data=False).graph
    return [
        (node.name, node.op_type)
        for node in graph.node
        if node.domain in ("", "ai.onnx") and not onnx.defs.has(node.op_type, node.domain)
    ]


def _foreign_ops_said(foreign: list[tuple[str, str]], model: Any, path: Path) -> str:
    """Why an ONNX file with ops ONNX does not have is refused, naming their layers (a grouped
    convolution's limit said as such: the layer's ``groups``)."""
    from cnnspec.training.onednn import layer_of_node

    layers = {layer.name: layer for layer in all_layers(model) if layer is not model}
    names = list(dict.fromkeys(layer_of_node(name, list(layers)) for name, _ in foreign))
    named = ", ".join(f"`{name}`" for name in names if name is not None) or "the model"
    ops = ", ".join(dict.fromkeys(op for _, op in foreign))
    grouped = [name for name in names if name is not None and (getattr(layers[name], "groups", 1) or 1) > 1]
    why = " (a convolution with groups > 1, which tf2onnx does not convert)" if grouped else ""
    if any(op == "Erfc" for _, op in foreign):
        why += _GELU_WHY
    return (
        f"the onnx export would not run: the converter left TensorFlow's {ops} op of layer(s) "
        f"{named} in the graph, which is no ONNX op and which no ONNX runtime loads{why}. Nothing "
        f"was written to {path}; export it with -f tflite or -f savedmodel"
    )


def _gaps_said(model: Any, fmt: str, ir: Any | None) -> str:
    """``: layer `resizing_1` (spec.yaml:5:5, model[0].resizing) needs what … lacks``: the
    layers of ``model`` that the format can't run as Keras does (their kind's ``export_gap``),
    for a failed conversion or verification; empty when none is known."""
    from cnnspec.training.onednn import spec_layers

    named = spec_layers(model, ir)

    def gaps_of(form: str) -> list[str]:
        found = []
        for layer in all_layers(model):
            kind = kind_of_keras_class(type(layer).__name__)
            gap = kind.export_gap if kind is not None else None
            reason = gap(layer.get_config(), form) if gap is not None else None
            if reason is not None and layer.name in named:
                found.append(f"{named[layer.name]}: {reason}")
        return found

    gaps = gaps_of(fmt)
    if not gaps:
        return ""
    others = [form for form in ("tflite", "onnx") if form != fmt and not gaps_of(form)] + ["savedmodel"]
    other = " or ".join(f"-f {form}" for form in others)
    return (
        f"; {'; '.join(gaps[:3])}{' …' if len(gaps) > 3 else ''} (export it with {other}, or "
        "change the layer)"
    )


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
            raise UsageError(f"ONNX export needs {needs}, which is not installed", _EXTRA_HINT)
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
    default, folder = default_output(stem, fmt, quantize), _export_folder(source, stem)
    if out is None:  # (an -o link is the user's choice: _is_default holds it to --force)
        _check_default_place(default, folder)
    path = Path(out) if out is not None else default
    # beside a .keras file (no run folder) the default is in the user's folder: only an export
    # cnnspec made there is replaced without --force
    foreign = _foreign_file(path, fmt) if out is None and folder is None and not force else None
    if foreign is not None:
        raise UsageError(
            f"expected to write the export beside {source.name}; {foreign} is there, and is no "
            "export cnnspec made",
            "pass -o PATH to write it elsewhere, or --force to replace that file",
        )
    _check_output(path, fmt, replace=force or _is_default(path, default, folder))
    check_model_file(source)  # what is no Keras archive, and where -o can't be written, are
    check_writable(path, option="-o", folder=fmt == "savedmodel")  # refused before TensorFlow
    run = _run_of(source, spec) if fmt != "savedmodel" else None  # (a damaged run file: before writing)
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
        decision_meta = _savedmodel_meta(source, model, spec)
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
    located = run if run is not None or (temperature == 1.0 and not averaged) else _run_of(source, spec)
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
        if not measured["within"]:
            raise ExportMismatch(
                f"the {fmt} export differs from the Keras model by {diff:.3g} (max abs) on a batch of "
                f"{batch}; expected {tolerance_rule(tolerance, FLOAT_RTOL)}, and the worst value is "
                f"{excess:.3g} times what that allows ({where}){_gaps_said(model, fmt, ir)}. "
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
        return _record_text(path, written, source, meta, measured, tolerance, batch).encode("utf-8")

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
            why += _GELU_WHY
        gaps = _gaps_said(model, fmt, ir)
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
        batch=batch,
        seconds=time.perf_counter() - started,
        size_bytes=_size(path),
        runtime=measured["runtime"] if measured["diff"] is not None else "",
        notes=notes,
        verify_data=verify_data if verify else None,
        calibration_images=len(calibration) if calibration is not None else None,
        temperature=folded,
    )


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


def _savedmodel_meta(source: Path, model: Any, spec: Path | None = None) -> dict[str, Any] | None:
    """The serving meta of a SavedModel export's model (which writes no record), only to know
    its outputs' decisions; ``None`` when no run's spec describes it, or its run can't be read
    (a SavedModel export does not refuse a damaged run): :func:`output_decisions` then reads
    the output layers' activations."""
    try:
        run = _run_of(source, spec)
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
    return SplitOrigin(seed, data.test_split, data.validation_split, "", data.kind, options).recorded()


def _run_of(source: Path, spec: Path | None = None) -> Any:
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


def _record_text(
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
    with _quiet_native():
        interpreter, _ = tflite_interpreter(path)
        details = interpreter.get_signature_runner().get_output_details()
    return signature_order(details)


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
            _write_saved_model(model, temp)
            check(lambda: run_saved_model(temp, inputs), "tf.saved_model")
            settled()
    elif fmt == "tflite":
        try:
            data = _tflite_bytes(model, quantize, calibration)
        except Exception as exc:  # the converter writes a SavedModel in the temp folder first
            fault = write_fault(exc, Path(tempfile.gettempdir()))
            if fault is None:
                raise
            raise fault from exc
        with _with_record(path, len(data), record) as temp:
            _write_bytes(temp, data)
            # also unverified (--no-verify): a file a default interpreter refuses is no export
            failure = delegate_failure(temp, _layer_names(model))
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
            _write_onnx(model, temp)
            # also unverified (--no-verify): a file that asks for more than the model's inputs
            # is no export of it (onnxruntime would refuse every call without them)
            extra = _extra_onnx_inputs(temp, len(model.inputs))
            if extra:
                raise ExportFailed(_extra_inputs_said(extra, model, path))
            foreign = _foreign_onnx_ops(temp)  # (also unverified: no runtime would load it)
            if foreign:
                raise ExportFailed(_foreign_ops_said(foreign, model, path))
            if importlib.util.find_spec("onnxruntime") is None:
                notes.append("not verified: onnxruntime is not installed (" + _EXTRA_HINT + ")")
            else:
                check(lambda: run_onnx(temp, inputs), "onnxruntime")
