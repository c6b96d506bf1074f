"""Read a model's saved configuration: a ``.keras`` zip, a JSON config, or ``keras:NAME``.

The ``.keras`` and JSON paths use only :mod:`zipfile` and :mod:`json`: nothing in the file is
deserialized into objects or run, and TensorFlow is not imported. ``keras:NAME`` builds a
keras.applications model with ``weights=None`` (this path imports Keras, lazily).
"""

from __future__ import annotations

import contextlib
import json
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cnnspec.errors import Diagnostic, SpecError
from cnnspec.fileio import ZIP_FAULTS, ZIP_MAGIC, special_kind
from cnnspec.layers.reverse import shown
from cnnspec.spec.weights import HDF5_MAGIC

#: The largest configuration read (bytes). ResNet152's is ~0.9 MB, EfficientNetV2-L's ~2 MB.
MAX_CONFIG_BYTES = 32 * 1024 * 1024
KERAS_PREFIX = "keras:"
#: The names of a legacy Keras 2 / tf.keras ``model.save('model.h5')`` (HDF5: its first bytes
#: are :data:`~cnnspec.spec.weights.HDF5_MAGIC`).
_HDF5_SUFFIXES = (".h5", ".hdf5")


@dataclass
class Source:
    """A model configuration as read, and where it came from. A bare ``model.get_config()``
    (:func:`bare_model_kind`) is held as the ``{class_name, config}`` the rest of the import
    reads, with ``bare`` set: its JSON paths are then said as the file has them
    (:func:`unwrapped`)."""

    label: str
    config: dict[str, Any]
    keras_name: str | None = None
    path: Path | None = None
    model: Any = None  # the built Keras model (keras:NAME only), for --weights
    bare: bool = False  # the file held model.get_config(): no class_name/config around it

    def __post_init__(self) -> None:
        kind = bare_model_kind(self.config) if not self.bare else None
        if kind is not None:
            self.config, self.bare = {"class_name": kind, "config": self.config}, True


#: The keys only a Functional model's ``get_config()`` has (Keras 3 and tf.keras alike).
_FUNCTIONAL_KEYS = ("input_layers", "output_layers")


def bare_model_kind(config: dict[str, Any]) -> str | None:
    """The model class whose bare ``model.get_config()`` ``config`` is, or ``None`` where it
    is not one (a ``to_json()``/``config.json`` names its class at the top: it has
    ``class_name``). A get_config has its ``layers`` at the top: a Functional's with its
    ``input_layers`` or ``output_layers`` (its graph's ends), a Sequential's without them (its
    layers run in order; ``name``, ``trainable``, ``build_input_shape`` are both kinds')."""
    if "class_name" in config or not isinstance(config.get("layers"), list):
        return None
    return "Functional" if any(key in config for key in _FUNCTIONAL_KEYS) else "Sequential"


def unwrapped(error: SpecError) -> SpecError:
    """``error`` of a bare get_config (:attr:`Source.bare`) with its JSON paths as the file
    has them: ``$.config.layers[2]`` is ``$.layers[2]`` there."""

    def path(diagnostic: Diagnostic) -> Diagnostic:
        text = diagnostic.path
        if text == "$.config" or text.startswith(("$.config.", "$.config[")):
            return replace(diagnostic, path="$" + text[len("$.config") :])
        return diagnostic

    return SpecError([path(d) for d in error.diagnostics], in_order=True)


def import_error(message: str, json_path: str = "", hint: str | None = None) -> SpecError:
    """An import problem located by the JSON path of the offending value (none: the file)."""
    return SpecError.single(message, None, json_path, code="import", hint=hint)


def named(error: SpecError, label: str) -> SpecError:
    """``error`` with each located diagnostic's JSON path prefixed by the source it is in
    (``model.json: $.config.layers[1]``), so a loop over many files says which one failed.
    Diagnostics without a JSON path name their file in the message already. The order is
    kept (a refusal lists its layers in layer order, which SpecError's own sort would not)."""

    def prefixed(diagnostic: Diagnostic) -> Diagnostic:
        if not diagnostic.path or diagnostic.path.startswith(f"{label}: "):
            return diagnostic
        return replace(diagnostic, path=f"{label}: {diagnostic.path}")

    return SpecError([prefixed(d) for d in error.diagnostics], in_order=True)


def zip_fault(path: Path, exc: BaseException, what: str = "config.json") -> SpecError:
    """A damaged or unsupported archive member, said plainly (never an internal error)."""
    return import_error(
        f"corrupt or unsupported .keras file: {path}: cannot read {what} ({type(exc).__name__}: {exc})",
        hint="save the model again with model.save('model.keras'), or import its model.to_json() file",
    )


def _parse(text: bytes, where: str) -> dict[str, Any]:
    if len(text) > MAX_CONFIG_BYTES:
        raise import_error(
            f"{where} is {len(text):,} bytes; the limit is {MAX_CONFIG_BYTES:,}",
            hint="a model configuration this large is not a CNN the spec language can hold",
        )
    try:
        # (utf-8-sig: a byte order mark, which editors on Windows write, is read past)
        value = json.loads(text.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise import_error(f"{where} is not valid JSON ({exc})") from None
    except ValueError as exc:
        # an integer of more digits than Python converts (sys.get_int_max_str_digits(), 4300):
        # json raises a plain ValueError whose advice (raise the limit) is not the user's to take
        reason = str(exc).split(":")[0]
        raise import_error(
            f"{where} is not valid JSON: it holds a number too large to read ({reason})",
            hint="a model configuration holds no number of thousands of digits; is the file damaged?",
        ) from None
    except RecursionError:
        raise import_error(f"{where} is nested too deeply") from None
    if not isinstance(value, dict):
        raise import_error(f"expected a JSON object in {where}; received {type(value).__name__}", "$")
    return value


def read_keras_file(path: Path) -> dict[str, Any]:
    """The ``config.json`` of a ``.keras`` zip, size-checked before it is read."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        if _zip_start(path):
            raise import_error(
                f"{path} is a damaged or truncated .keras file (a zip archive without its table of contents)",
                hint="copy or save the model again (model.save('model.keras')): the file ends early",
            ) from None
        raise import_error(
            f"{path} is not a .keras file (not a zip archive)",
            hint="pass a file saved with model.save('model.keras'), or a model.to_json() file",
        ) from None
    except OSError as exc:
        raise import_error(f"cannot read {path}: {exc.strerror or exc}") from None
    except ZIP_FAULTS as exc:
        raise zip_fault(path, exc, "its table of contents") from None
    with archive:
        try:
            info = archive.getinfo("config.json")
        except KeyError:
            raise import_error(
                f"{path} has no config.json",
                hint="a Keras 3 .keras file holds config.json, metadata.json and model.weights.h5",
            ) from None
        if info.file_size > MAX_CONFIG_BYTES:
            raise import_error(
                f"config.json in {path} is {info.file_size:,} bytes; the limit is {MAX_CONFIG_BYTES:,}"
            )
        try:
            with archive.open(info) as handle:
                # read one byte past the limit: a lying header cannot make us read more
                data = handle.read(MAX_CONFIG_BYTES + 1)
        except ZIP_FAULTS as exc:
            raise zip_fault(path, exc) from None
    return _parse(data, f"config.json in {path}")


def _zip_start(path: Path) -> bool:
    """Does the file start as a zip archive (a local file header)? A ``.keras`` file cut short
    (a copy or download that stopped) keeps its start but loses the table of contents at its
    end, which :func:`zipfile.is_zipfile` looks for: it is a damaged archive, not another file."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(ZIP_MAGIC)) == ZIP_MAGIC
    except OSError:
        return False


def read_source(source: str, *, weights: bool = False) -> Source:
    """Read SOURCE (a path or ``keras:NAME``) into its Keras configuration; ``weights``: a
    Keras application's weights are wanted too (else they are never filled: only the
    configuration is read)."""
    if source.startswith(KERAS_PREFIX):
        return _keras_application(source[len(KERAS_PREFIX) :], weights)
    what = "pass a .keras file, a JSON config or keras:NAME"
    if not source:  # Path("") is the working folder, which would be "a folder"
        raise import_error("expected a model file; received an empty path", hint=what)
    path = Path(source)
    if path.is_dir():
        raise import_error(f"{source}: expected a file; received a folder", hint=what)
    kind = special_kind(path)
    if kind is not None:  # reading a FIFO would wait for a writer; a device is no model
        raise import_error(f"{source}: expected a model file; received {kind}", hint=what)
    if not path.is_file():
        raise import_error(f"{source}: no such file", hint=what)
    _refuse_other_files(path)
    try:
        zipped = zipfile.is_zipfile(path)
        _refuse_hdf5(path, zipped)
        if zipped or path.suffix == ".keras" or _zip_start(path):
            return Source(str(path), read_keras_file(path), path=path)
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise import_error(f"{path} is {size:,} bytes; the limit is {MAX_CONFIG_BYTES:,}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise import_error(f"cannot read {path}: {exc.strerror or exc}") from None
        return Source(str(path), _parse(data, str(path)), path=path)
    except SpecError as exc:
        raise named(exc, str(path)) from None


def _refuse_other_files(path: Path) -> None:
    """Files people pass by mistake, named as what they are: a weights file (no configuration
    in it) and a spec (already a spec); read as a model they were "a legacy HDF5 model file"
    and "not valid JSON"."""
    name = path.name.lower()
    if name.endswith(".weights.h5"):
        raise import_error(
            f"{path}: a weights file (model.save_weights) holds no model configuration",
            hint="import the model's .keras file or its model.to_json() file; a spec starts from "
            "these weights with `weights: " + path.name + "`",
        )
    if path.suffix.lower() in (".yaml", ".yml"):
        raise import_error(
            f"{path}: expected a Keras model; received a YAML file (a cnnspec spec is already a spec)",
            hint="check it with `cnnspec validate`; import reads a .keras file, a JSON config or keras:NAME",
        )


def _refuse_hdf5(path: Path, zipped: bool) -> None:
    """A legacy HDF5 model file (its signature, or its suffix on a file that is no zip) is
    refused by name, before it is read as a zip or as JSON ("not valid JSON ('utf-8' codec
    can't decode byte 0x89 …)" said nothing)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(HDF5_MAGIC))
    except OSError as exc:
        raise import_error(f"cannot read {path}: {exc.strerror or exc}") from None
    if head == HDF5_MAGIC or (not zipped and path.suffix.lower() in _HDF5_SUFFIXES):
        raise import_error(
            f"{path}: a legacy HDF5 (.h5) model file is not supported",
            hint="open it in Keras 3 where it was made and save it as .keras (model.save('model.keras')), "
            "then import model.keras",
        )


def _keras_application(name: str, weights: bool = False) -> Source:
    from cnnspec.backends.keras_import import import_keras

    keras = import_keras()  # keras:NAME builds the model: this path needs TensorFlow (its start-up log quiet)

    # look the name up in the module's own listing, never getattr on user text
    functions = {
        attr: getattr(keras.applications, attr)
        for attr in dir(keras.applications)
        if attr[:1].isupper() and callable(getattr(keras.applications, attr))
    }
    if name not in functions:
        import difflib

        close = difflib.get_close_matches(name, functions, n=3)
        raise import_error(
            f"keras.applications has no model {shown(name)}",
            hint=("did you mean " + ", ".join(close) + "?") if close else "e.g. keras:ResNet50",
        )
    keras.backend.clear_session()
    # the zoo's input size for its variants (InceptionV3 and Xception default to unknown sizes)
    from cnnspec.analysis.zoo import catalog

    shape = next((tuple(e.input_shape) for e in catalog() if e.keras_name == name), None)
    # without --weights only the model's configuration is read: its weights get their shapes,
    # never their values (filling ResNet50's 25 million from their initializers took seconds)
    with contextlib.nullcontext() if weights else keras.StatelessScope(initialize_variables=False):
        model = functions[name](weights=None, **({"input_shape": shape} if shape else {}))
    return Source(f"keras:{name}", json.loads(model.to_json()), keras_name=name, model=model)
