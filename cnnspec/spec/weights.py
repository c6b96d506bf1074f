"""Where a model's starting weights come from: the top-level ``weights:`` section, a backbone's
``weights:`` field and ``cnnspec train --weights``, parsed and checked without TensorFlow.

A source is one of

- a run folder (its ``model.keras``),
- a ``.keras`` model archive (its weights are read from the archive, nothing is executed),
- a ``.weights.h5`` file (``model.save_weights``),
- ``imagenet``: the file keras.applications downloads for a zoo model.

Written as ``weights: SOURCE`` or ``weights: {from: SOURCE, strict: true}``. Relative paths are
read from the folder of the spec file that wrote them (from the working directory on the
command line). What the text tells is checked when the spec compiles: a legacy ``.h5`` model,
``imagenet`` on a model that is not a zoo variant; the disk (a missing file or run folder:
:func:`on_disk`) by ``cnnspec validate`` and when training starts, before anything is written,
with the same error. Reading the file is :mod:`cnnspec.training.transfer_read`'s job.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cnnspec.errors import (
    COMMAND_LINE_PREFIX,
    Loc,
    Note,
    SpecError,
    SpecPath,
    UsageError,
    closest,
    format_path,
)
from cnnspec.fileio import clipped_name, read_head, user_path
from cnnspec.paths import unreadable
from cnnspec.runholder import training_process

IMAGENET = "imagenet"
RUN_MODEL = "model.keras"
KINDS = ("run", "keras", "weights_h5", "imagenet")
#: keras.applications' EfficientNet B0–B7 built with ``weights="imagenet"``, and only then,
#: divide the normalized input once more by √stddev per channel (a ``Rescaling`` after the
#: ``Normalization``: keras/src/applications/efficientnet.py, tensorflow#49930), ImageNet's RGB
#: stddev below. The zoo builds those models as ``weights=None`` does; ``imagenet`` folds the
#: factor into the normalization's variance (variance × stddev), which computes the same. By
#: keras.applications name: the function that builds it decides.
IMAGENET_VARIANCE_SCALE: dict[str, tuple[float, ...]] = {
    f"EfficientNetB{index}": (0.229, 0.224, 0.225) for index in range(8)
}

#: The section's JSON Schema (also a backbone's ``weights`` field).
WEIGHTS_SCHEMA: dict[str, Any] = {
    "description": "starting weights: a run folder, a .keras file, a .weights.h5 file or `imagenet` "
    "(zoo models); `strict: true` makes any weight that cannot be loaded an error",
    "anyOf": [
        {"type": "string", "minLength": 1},
        {
            "type": "object",
            "properties": {
                "from": {
                    "type": "string",
                    "minLength": 1,
                    "description": "the source: a run folder, a .keras or .weights.h5 file, or imagenet",
                },
                "strict": {
                    "type": "boolean",
                    "default": False,
                    "description": "a weight that cannot be loaded is an error (else skipped and reported)",
                },
            },
            "required": ["from"],
            "additionalProperties": False,
        },
    ],
}


@dataclass(frozen=True)
class WeightsSource:
    """A checked weights source. ``loc``/``path`` locate where the spec wrote it (``None``:
    the command line), so a problem found when the file is read is reported there too."""

    kind: str  # one of KINDS
    text: str  # as written
    file: Path | None = None  # the file to read (a run folder's model.keras); None for imagenet
    strict: bool = False
    loc: Loc | None = None
    path: str = ""
    #: The chain of where it is written from: a backbone's inside another backbone (``in
    #: backbone 'mid.yaml' at model[0]``) or a block, as the spec's other errors there carry.
    notes: tuple[Note, ...] = ()

    def fail(self, message: str, hint: str | None = None, *, code: str = "weights") -> Exception:
        """The error to raise for this source: located in the spec, or a usage error."""
        if self.loc is not None or self.path:
            error = SpecError.single(message, self.loc, self.path, code=code, hint=hint)
            return SpecError([d.with_notes(self.notes) for d in error.diagnostics]) if self.notes else error
        return UsageError(message, hint)

    def describe(self) -> str:
        """The source as transfer.json records it."""
        return self.text if self.file is None else str(self.file)


def parse_source(
    value: Any,
    *,
    base_dir: Path,
    loc: Loc | None = None,
    path: SpecPath | str = (),
    zoo_model: bool = True,
    on_disk: bool = True,
    backbone: bool = False,
    notes: Sequence[Note] = (),
) -> WeightsSource:
    """Check one ``weights`` value (a string or ``{from, strict}``) and say which kind of source
    it is. ``base_dir``: where relative paths start; ``zoo_model``: whether ``imagenet`` may be
    asked for (the model is a zoo variant); ``on_disk``: also check that the file or run folder
    is there (training does; compiling doesn't, since a run folder's resolved.yaml is compiled
    again for reports away from the spec's folder). Raises a located :class:`SpecError` (a
    :class:`UsageError` when ``loc`` and ``path`` are empty: the command line). ``path`` may be
    given formatted already (a checked source's :attr:`WeightsSource.path`). ``backbone``: the
    value is a backbone item's ``weights`` (whose ``spec:`` decides whether ``imagenet`` fits);
    ``notes``: the chain of where it is written from (:attr:`WeightsSource.notes`), which its
    errors carry."""
    where = path if isinstance(path, str) else format_path(path) if path else ""
    strict = False
    text = value
    if isinstance(value, dict):
        text = value.get("from")
        strict = value.get("strict", False)
    probe = WeightsSource("run", str(text), None, bool(strict), loc, where, tuple(notes))
    if not isinstance(text, str) or not text.strip() or not isinstance(strict, bool):
        raise probe.fail(
            f"expected a weights source (a path or `imagenet`) and strict: true|false; received {value!r}",
            "write weights: runs/pretrain or weights: {from: model.keras, strict: true}",
        )
    source = _checked(probe, text, strict, base_dir, zoo_model, on_disk, backbone)
    return replace(source, notes=probe.notes)


def _checked(
    probe: WeightsSource,
    text: str,
    strict: bool,
    base_dir: Path,
    zoo_model: bool,
    on_disk: bool,
    backbone: bool,
) -> WeightsSource:
    """:func:`parse_source`'s checks of the value, whose errors ``probe`` raises (located where
    it is written, with its notes)."""
    loc, where = probe.loc, probe.path
    if text == IMAGENET:
        if not zoo_model and backbone:  # (the item is a backbone already: its spec is what to change)
            raise probe.fail(
                "`imagenet` weights exist only for zoo models; this backbone's spec is not a zoo variant",
                "a backbone item with weights: imagenet names a zoo model as its spec "
                "(- backbone: {spec: zoo:resnet50, weights: imagenet}); `cnnspec zoo` lists them",
            )
        if not zoo_model:
            raise probe.fail(
                "`imagenet` weights exist only for zoo models; this model is not a zoo variant",
                "extend a zoo model (extends: zoo:resnet50) or use a backbone item "
                "(- backbone: {spec: zoo:resnet50, weights: imagenet}); `cnnspec zoo` lists them",
            )
        return WeightsSource(IMAGENET, text, None, strict, loc, where)
    if "\0" in text:  # the OS calls would raise ValueError, not OSError
        raise probe.fail(
            f"cannot read {text!r}: a file path cannot contain a NUL character (\\0)",
            "write the path of a run folder, a .keras or a .weights.h5 file",
        )
    file = user_path(text)
    if not file.is_absolute():
        file = base_dir / file
    reason = unreadable(file)  # (a name too long: Path.is_dir raised it, an internal error)
    if reason is not None:
        raise probe.fail(
            f"cannot read {clipped_name(text)!r}: {reason}",
            "write the path of a run folder, a .keras or a .weights.h5 file",
        )
    meant = closest(text, [IMAGENET])
    if meant is not None and not file.exists():  # read as a run folder, found missing only at training
        raise probe.fail(
            f"expected `imagenet` or the path of weights; received {text!r}, which names nothing",
            f"did you mean `{meant}`?",
        )
    if not on_disk:
        suffixes = (".weights.h5", ".keras", ".h5", ".hdf5")
        kind = "run" if not file.name.lower().endswith(suffixes) else None
        if kind == "run":
            return WeightsSource("run", text, file / RUN_MODEL, strict, loc, where)
    if file.is_dir():
        model = file / RUN_MODEL
        if not model.is_file() and not (file / "lock.json").is_file():  # (no run's folder at all)
            raise probe.fail(
                f"{file} is a folder, and no run folder of cnnspec train (it has no lock.json)",
                "name a run folder, a .keras or a .weights.h5 file",
            )
        if model.is_dir():
            raise probe.fail(
                f"the run folder {file} holds a folder named {RUN_MODEL} where its model file belongs",
                f"put back the {RUN_MODEL} training wrote, or name a .keras or .weights.h5 file",
            )
        if not model.is_file() and os.path.lexists(file / "metrics.json"):  # finished: removed since
            raise probe.fail(
                f"the run folder {file} has no {RUN_MODEL}: the run finished, and its model file is gone",
                f"put back its {RUN_MODEL}, or name a .keras or .weights.h5 file",
            )
        if not model.is_file() and (who := training_process(file)) is not None:
            # (`train --resume` is refused while that process holds the folder: it is waited for)
            raise probe.fail(
                f"the run folder {file} has no {RUN_MODEL} yet: the run is still being trained by {who}",
                "wait for that process to end, or name a .keras or .weights.h5 file",
            )
        if not model.is_file():
            raise probe.fail(
                f"the run folder {file} has no {RUN_MODEL} (the run has not finished)",
                f"finish it with `cnnspec train SPEC --resume {file}`, or name a .keras or .weights.h5 file",
            )
        return WeightsSource("run", text, model, strict, loc, where)
    name = file.name.lower()
    if name.endswith(".weights.h5"):
        kind = "weights_h5"
    elif name.endswith(".keras"):
        kind = "keras"
    elif name.endswith((".h5", ".hdf5")):
        regular = file.is_file()  # (a regular file only: a FIFO would be waited on until written to)
        if regular and is_zip(file):  # (a .keras file copied under a .h5 name: model_backup.h5)
            raise probe.fail(*zip_refusal(file))
        if regular and not is_hdf5(file):  # (an empty or broken download)
            raise probe.fail(
                f"{file} is no HDF5 file (it does not begin as one): a truncated or corrupted file?",
                "copy or download it again, or name a .keras or .weights.h5 file",
            )
        # (a legacy model or a Keras 2 weights file; or one not there, as compiling allows)
        raise probe.fail(*hdf5_refusal(file, h5_layout(file)))
    elif not os.path.lexists(file):  # (only checking the disk gets here: read as a run folder)
        what = "run folder or weights file" if file.suffix else "run folder"  # (`pre.kears`: either)
        raise probe.fail(f"no such {what}: {file}", _missing_hint(file, text, loc))
    else:
        raise probe.fail(
            f"expected a run folder, a .keras file, a .weights.h5 file or `imagenet`; received {text!r}",
            "e.g. weights: runs/pretrain-2024…, weights: pretrained.weights.h5",
        )
    if on_disk and not file.is_file():
        raise probe.fail(f"no such weights file: {file}", _missing_hint(file, text, loc))
    if on_disk and kind == "keras" and is_hdf5(file):  # (a weights file renamed .keras, say)
        raise probe.fail(*hdf5_refusal(file, h5_layout(file)))
    if on_disk and kind == "weights_h5" and is_zip(file):  # (a model file renamed .weights.h5)
        raise probe.fail(*zip_refusal(file))
    return WeightsSource(kind, text, file, strict, loc, where)


def zip_refusal(file: Path) -> tuple[str, str]:
    """(message, hint) refusing a Keras model file (a zip archive) under an HDF5 name
    (``.weights.h5``, ``.h5``): Keras knows one by its ``.keras`` ending."""
    ending = ".weights.h5" if file.name.lower().endswith(".weights.h5") else file.suffix
    stem = file.name[: len(file.name) - len(ending)]
    return (
        f"{file} is a Keras model file (a zip archive, as model.save('x.keras') writes) under a "
        f"{ending} name; cnnspec, as Keras, knows one by its .keras ending",
        f"rename it to {stem}.keras",
    )


#: The first bytes of every HDF5 file (a legacy .h5 model, a .weights.h5 file).
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def is_hdf5(file: Path) -> bool:
    """Whether ``file`` starts as an HDF5 file does (``False`` where it can't be read)."""
    head = read_head(file, len(HDF5_MAGIC))
    return head is not None and head.startswith(HDF5_MAGIC)


#: The first bytes of a zip archive (a .keras model file).
ZIP_MAGIC = b"PK\x03\x04"


def is_zip(file: Path) -> bool:
    """Whether ``file`` starts as a zip archive (a ``.keras`` file) does (``False`` where it
    can't be read)."""
    head = read_head(file, len(ZIP_MAGIC))
    return head is not None and head.startswith(ZIP_MAGIC)


def hdf5_refusal(file: Path, layout: str | None) -> tuple[str, str]:
    """(message, hint) refusing the HDF5 file ``file`` where a model or a weights source is
    expected by its name, from its :func:`h5_layout`: a Keras 3 weights file under another name
    than ``.weights.h5`` is told to take that name back (Keras knows one by it); anything else
    is a Keras 2 weights file or a legacy model, which safe mode cannot check."""
    if layout == "keras3":  # model.save_weights('x.weights.h5'), renamed: not a legacy file
        stem = file.name[: -len(file.suffix)].removesuffix(".weights") if file.suffix else file.name
        return (
            f"{file} is a Keras 3 weights file under a {file.suffix or 'plain'} name; cnnspec, as "
            f"Keras, knows one by its .weights.h5 ending (another name means a model file)",
            f"rename it to {stem}.weights.h5",
        )
    what = "a Keras 2 weights file" if layout == "keras2" else "a legacy HDF5 (.h5) file"
    return (
        f"{file} is {what}; cnnspec reads only native Keras files",
        "load it in Keras yourself if you trust it, then save model.save('model.keras') or "
        "model.save_weights('model.weights.h5')",
    )


#: Entries of a folder looked through for the name a missing source was probably meant to be
#: (a folder of many thousand files is not listed whole for a hint).
MAX_LISTED = 2000


def _missing_hint(file: Path, text: str, loc: Loc | None) -> str:
    """The hint for a source that is not there: the name in its folder it was probably meant to
    be (a typo: ``pretrian.keras``), written as the source was, among what could be a source
    (a folder, a ``.keras`` or ``.h5`` file: never the spec beside it); for the name of
    a spec there (``pretrain`` beside ``pretrain.yaml``), that its run folder is meant; else
    where relative paths start."""
    names: list[str] = []
    specs: list[str] = []
    try:
        with os.scandir(file.parent) as entries:
            for _, entry in zip(range(MAX_LISTED), entries, strict=False):
                if entry.name.startswith("."):
                    continue
                if entry.name.lower().endswith((".yaml", ".yml")):
                    specs.append(entry.name)
                elif entry.name.lower().endswith((".keras", ".h5", ".hdf5")) or _is_dir(entry):
                    names.append(entry.name)
    except (OSError, ValueError):
        pass
    written = text.rstrip("/\\")
    stem = written[: len(written) - len(file.name)] if written.endswith(file.name) else f"{file.parent}/"
    meant = closest(file.name, names)
    if meant is not None and meant != file.name:
        return f"did you mean `{stem}{meant}`?"
    spec = next((name for name in specs if Path(name).stem == file.name), None)
    if spec is not None:
        return (
            f"`{stem}{spec}` is a spec, not weights: train it (`cnnspec train {stem}{spec}`) and name "
            "the run folder it writes"
        )
    in_spec = loc is not None and not loc.file.startswith(COMMAND_LINE_PREFIX)
    start = "the spec file's folder" if in_spec else "the working directory"
    return f"check the path (relative paths start at {start})"


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """Whether a folder entry is a folder (a link to one too); ``False`` where that can't be read."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def h5_layout(file: Path) -> str | None:
    """What an HDF5 file named ``.h5`` holds, from its top level only (h5py, no TensorFlow):
    ``keras3`` (model.save_weights of Keras 3: ``layers`` and ``vars`` groups), ``keras2``
    (Keras 2's save_weights: a ``layer_names`` attribute), ``model`` (a legacy full model:
    ``model_config``); ``None`` for anything else, or a file h5py cannot open."""
    try:  # a regular file only: h5py waits on a FIFO (or a device) until it is written to
        if not stat.S_ISREG(os.stat(file).st_mode):
            return None
        import h5py
    except (OSError, ValueError, ImportError):
        return None
    try:
        with h5py.File(file, "r") as handle:
            attrs, keys = set(handle.attrs), set(handle.keys())
    except (OSError, ValueError):
        return None
    if "model_config" in attrs or "model_weights" in keys:
        return "model"
    if "layer_names" in attrs:
        return "keras2"
    return "keras3" if keys and keys <= {"layers", "vars", "optimizer"} and "layers" in keys else None


def written_in(source: WeightsSource) -> Path:
    """The folder relative paths of a source written in a spec start at: that of the file that
    wrote it (the working directory for the command line)."""
    return folder_of(source.loc, Path.cwd())


def folder_of(loc: Loc | None, fallback: Path) -> Path:
    """Where a relative path written at ``loc`` starts: the folder of the file that wrote it;
    the working directory for a ``--set`` option (as ``--weights`` and a backbone's ``--set``
    read theirs); ``fallback`` for text of no file. validate checked a top-level ``weights``
    set by ``--set`` in the working directory while train read it beside the spec."""
    if loc is None:
        return fallback
    if loc.file.startswith(COMMAND_LINE_PREFIX):
        return Path.cwd()
    return fallback if loc.file.startswith("<") else Path(loc.file).resolve().parent


def on_disk(source: WeightsSource) -> WeightsSource:
    """``source``, which compiling checked from its text only (``on_disk=False``), checked on
    the disk as well: its file or run folder is there (``cnnspec validate``, and training before
    it writes anything). Raises the located error :func:`parse_source` gives."""
    if source.kind == IMAGENET:
        return source
    return parse_source(
        source.text if not source.strict else {"from": source.text, "strict": True},
        base_dir=written_in(source),
        loc=source.loc,
        path=source.path,
        notes=source.notes,
    )


def spec_weights(doc: Any, spec_dir: Path, zoo_model: bool, *, on_disk: bool = True) -> WeightsSource | None:
    """The top-level ``weights:`` section of a composed document, checked (``None`` if absent).
    Relative paths start at the folder of the file that wrote the section (the working
    directory for ``--set weights=…``: :func:`folder_of`)."""
    value = doc.data.get("weights")
    if value is None:
        return None
    loc = doc.loc(("weights",))
    base = folder_of(loc, spec_dir)
    return parse_source(
        value, base_dir=base, loc=loc, path=("weights",), zoo_model=zoo_model, on_disk=on_disk
    )


def check_imagenet_input(source: WeightsSource | None, shape: tuple[int, ...]) -> None:
    """Refuse ``imagenet`` weights for an input of other than 3 channels: keras.applications
    has no such files (its models refuse to be built so), and a first convolution of another
    width would be left untrained without a word."""
    if source is None or source.kind != IMAGENET or not shape or shape[-1] == 3:
        return
    channels = shape[-1]
    raise source.fail(
        f"`imagenet` weights take 3-channel (RGB) images; this input has {channels} "
        f"channel{'s' if channels != 1 else ''} ({list(shape)})",
        "set input.shape to 3 channels (with data.color_mode: rgb, image files are read as RGB), "
        "or train from other weights",
    )


#: The least height and width of an image keras.applications builds its model without the top
#: for (its ``min_size``; :data:`IMAGENET_LEAST_SIZE` where not listed): for a smaller input it
#: refuses to be asked for its ImageNet file, and so training refused it, where validate passed
#: it. tests/test_zoo_weights.py checks the table against keras.applications.
IMAGENET_MIN_SIZES: dict[str, int] = {"InceptionV3": 75, "Xception": 71}
IMAGENET_LEAST_SIZE = 32


def check_imagenet_size(
    source: WeightsSource | None, keras_name: str, include_top: bool, shape: tuple[int, ...]
) -> None:
    """Refuse ``imagenet`` weights for a model without its top (a backbone, ``include_top:
    false``) whose input keras.applications does not take (:data:`IMAGENET_MIN_SIZES`), as
    training does once it asks keras.applications for the file. With its top, the file is
    that of the default size, which fits any
    (:func:`~cnnspec.training.transfer_imagenet.application_file`)."""
    if source is None or source.kind != IMAGENET or include_top or not keras_name or len(shape) != 3:
        return
    least = IMAGENET_MIN_SIZES.get(keras_name, IMAGENET_LEAST_SIZE)
    if shape[0] >= least and shape[1] >= least:
        return
    raise source.fail(
        f"keras.applications.{keras_name} has no ImageNet weights for this model: Input size must be "
        f"at least {least}x{least} (input {list(shape)})",
        "give the model an input keras.applications takes with ImageNet weights (input.shape; "
        f"this family wants at least {least}×{least}), or leave out `weights: imagenet` and train "
        "from scratch",
    )


def cli_weights(text: str, zoo_model: bool) -> WeightsSource:
    """``--weights SOURCE``: relative to the working directory; problems are usage errors."""
    return parse_source(text, base_dir=Path.cwd(), zoo_model=zoo_model)
