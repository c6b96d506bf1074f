"""Reading a weights source (a run folder, a ``.keras`` archive, a ``.weights.h5`` file or
keras.applications' ``imagenet`` file) into :class:`~cnnspec.training.transfer_records.SourceLayers`,
with h5py only: nothing of the file runs. A file cnnspec cannot take (a legacy full-model ``.h5``,
a damaged archive, a truncated file) is refused here with a located error, before any model
weight is touched. Tensors larger than the model's largest weight are never read
(:class:`Unread`).
"""

from __future__ import annotations

import contextlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnspec.errors import UsageError
from cnnspec.spec.weights import IMAGENET, WeightsSource
from cnnspec.training.transfer_records import SourceLayers

KERAS_WEIGHTS_MEMBER = "model.weights.h5"  # the weights inside a .keras archive
#: The most bytes a *compressed* ``model.weights.h5`` in a ``.keras`` archive may declare
#: (Keras stores it uncompressed; a re-zipped archive of a large model still fits). Bounds the
#: inflating a small zip of deflated zeros could ask for.
MAX_COMPRESSED_MEMBER = 8 << 30


def first_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's first line for a message (its class's name when it has none), cut to
    ``limit`` characters at a word boundary with ``…``: a library's message may run on (a long
    URL), and one cut mid-word reads as another word."""
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines and lines[0].strip() else type(exc).__name__
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + "…"


def _fail(source: WeightsSource, message: str, hint: str | None = None) -> Exception:
    return source.fail(message, hint)


@dataclass(frozen=True)
class Unread:
    """A source tensor larger than any weight of the model: only its shape is kept (for the
    report's "shape mismatch"), its values are never read. It can never be assigned: a model
    weight of its shape would have as many values, and the bound is the model's largest."""

    shape: tuple[int, ...]
    dtype: Any


def _refused_file(source: WeightsSource, file: Path, root: Any) -> None:
    """Refuse a weights file that refers to data outside itself (external or soft links,
    datasets stored in other files): reading it would copy another file's bytes into the model.
    Checked before anything of the file is read; no link is followed."""
    from cnnspec.training.h5checks import reaching_out, shown

    outside = reaching_out(root)
    if outside:
        raise _fail(
            source,
            f"refusing the weights in {file}: they refer to data through links or to other files: "
            f"{shown(outside)}",
            "a weights file saved by Keras holds all its weights itself; save it again "
            "(model.save_weights('x.weights.h5') or model.save('x.keras'))",
        )


def _tensor(source: WeightsSource, file: Path, dataset: Any, where: str, limit: int) -> Any:
    """One weight tensor of the file: its array, or :class:`Unread` when it declares more values
    than ``limit`` (nothing of that size is allocated). What is not a numeric dataset is
    refused, naming the file and the dataset."""
    import h5py
    import numpy as np

    from cnnspec.backends.codegen_values import comment_text
    from cnnspec.training.h5checks import not_numeric, too_large

    why = "is not a dataset" if not isinstance(dataset, h5py.Dataset) else not_numeric(dataset)
    if why is not None:
        raise _fail(
            source,
            f"{file}: the weight {comment_text(where)} {why}",
            "expected a file written by model.save_weights() or model.save() in Keras 3",
        )
    if too_large(dataset, limit):
        return Unread(tuple(int(side) for side in dataset.shape), dataset.dtype)
    return np.asarray(dataset)


def _keras3_layers(
    root: Any, source: WeightsSource, file: Path, limit: int, groups: dict[str, str] | None = None
) -> list[tuple[str, list[tuple[str, Any]]]]:
    """Every group with a non-empty ``vars`` subgroup, by layer name (nested models flattened).
    A tensor of more than ``limit`` values is kept unread (:func:`_tensor`). ``groups``: filled
    with each layer's group name (:attr:`SourceLayers.groups`)."""
    found: list[tuple[str, list[tuple[str, Any]]]] = []
    start = root.get("layers", root)

    def visit(group: Any) -> None:
        for name in group:
            child = group[name]
            if not hasattr(child, "keys"):
                continue
            variables = child.get("vars")
            if variables is not None and hasattr(variables, "keys") and len(variables):
                keys = sorted(variables, key=lambda k: int(k) if str(k).isdecimal() else 1 << 30)
                # The group is named after the layer's class (conv2d, conv2d_1, …); Keras keeps
                # the layer's own name in the `name` attribute of its vars. Without it (an older
                # Keras 3), that path is no layer name: matched as one, it shifted every
                # automatically named layer by one (conv2d_1 took the source's conv2d_1, its
                # second convolution), reported as loaded.
                if "name" not in variables.attrs:
                    raise _fail(
                        source,
                        f"the weights file {file} does not name its layers ({variables.name} has no "
                        "`name`: written by an older Keras 3), and cnnspec matches weights by layer name",
                        "load it in Keras into the model it was saved from (model.load_weights) and "
                        "save it again (model.save_weights, or model.save as .keras): Keras now records "
                        "the names",
                    )
                real = variables.attrs["name"]
                real = real.decode("utf8") if isinstance(real, bytes) else str(real)
                where = f"{variables.name}/"
                tensors = [(str(k), _tensor(source, file, variables[k], f"{where}{k}", limit)) for k in keys]
                found.append((real, tensors))
                if groups is not None:
                    groups.setdefault(real, str(name))
            if "layers" in child:
                visit(child["layers"])

    visit(start)
    return found


def _check_keras2(source: WeightsSource, file: Path, limit: int) -> None:
    """Check a Keras 2 layout file (``imagenet``: keras.applications' file in Keras' cache)
    before its reader (:func:`cnnspec.backends.weights._read`) reads every weight: nothing in
    it may refer to another file, and no dataset may declare more than ``limit`` values (that
    reader reads them all, so one too large is refused rather than skipped). A file h5py cannot
    open is left to that reader, which says so in its words."""
    import h5py

    from cnnspec.backends.codegen_values import comment_text
    from cnnspec.training.h5checks import too_large

    try:
        handle = h5py.File(file, "r")
    except OSError:
        return
    with handle:
        _refused_file(source, file, handle)
        large: list[str] = []
        # (no link is left to follow: _refused_file refused soft and external ones)
        handle.visititems(
            lambda name, item: (
                large.append(name) if isinstance(item, h5py.Dataset) and too_large(item, limit) else None
            )
        )
        if large:
            raise _fail(
                source,
                f"{file}: the dataset /{comment_text(large[0])} declares more than {limit:,} values, "
                "more than any weight file of keras.applications holds",
                "delete the file so Keras downloads it again",
            )


def _keras_member(source: WeightsSource, file: Path, archive: zipfile.ZipFile) -> Any:
    """The archive's weights file, as a stream h5py reads (never read whole into memory: its
    declared size may be anything). A compressed member declaring more than
    :data:`MAX_COMPRESSED_MEMBER` bytes is refused (a small zip of deflated zeros); Keras
    stores its members uncompressed."""
    try:
        info = archive.getinfo(KERAS_WEIGHTS_MEMBER)
    except KeyError:
        raise _fail(source, f"{file} holds no {KERAS_WEIGHTS_MEMBER} (a damaged archive)") from None
    if info.compress_type != zipfile.ZIP_STORED and info.file_size > MAX_COMPRESSED_MEMBER:
        raise _fail(
            source,
            f"{file}: its compressed {KERAS_WEIGHTS_MEMBER} declares {info.file_size:,} bytes, more "
            f"than the {MAX_COMPRESSED_MEMBER:,} cnnspec inflates",
            "save the model again with model.save('x.keras') (Keras stores it uncompressed)",
        )
    return archive.open(info)


def read_source(
    source: WeightsSource, *, imagenet_file: Path | None = None, max_elements: int | None = None
) -> SourceLayers:
    """Read a source's arrays; a missing, truncated or foreign file is an error naming it, and
    so is one that refers to data outside itself (:func:`_refused_file`).

    ``max_elements``: the most values a source tensor can usefully have (the model's largest
    weight, :func:`~cnnspec.training.transfer.largest_weight`); a larger one is not read
    (:class:`Unread`). ``None``: :data:`~cnnspec.training.h5checks.MAX_DATASET_ELEMENTS`."""
    import h5py

    from cnnspec.backends.weights import WeightsFileError
    from cnnspec.backends.weights import _read as read_keras2
    from cnnspec.training.h5checks import MAX_DATASET_ELEMENTS

    limit = MAX_DATASET_ELEMENTS if max_elements is None else max_elements
    if source.kind == IMAGENET:
        assert imagenet_file is not None  # the caller fetched it (imagenet_weights_file)
        # keras.applications' largest tensor is under the fixed cap: a model smaller than the
        # file's (another class count) still loads what fits, as before.
        _check_keras2(source, imagenet_file, max(limit, MAX_DATASET_ELEMENTS))
        try:
            return SourceLayers(read_keras2(imagenet_file), by_name=False)
        except WeightsFileError as exc:
            raise _fail(source, str(exc), "delete the file so Keras downloads it again") from None
    file = source.file
    assert file is not None
    groups: dict[str, str] = {}
    configs: dict[str, Any] = {}
    try:
        with contextlib.ExitStack() as stack:
            if source.kind in ("keras", "run"):
                from cnnspec.training.modelfile import check_model_file

                try:
                    check_model_file(file)
                except UsageError as exc:
                    raise _fail(source, str(exc), exc.hint) from None
                archive = stack.enter_context(zipfile.ZipFile(file))
                configs = _layer_configs(archive)
                stream = stack.enter_context(_keras_member(source, file, archive))
                handle = h5py.File(stream, "r")
            else:
                handle = h5py.File(file, "r")
            with handle as root:
                _refused_file(source, file, root)  # before anything of it is read
                layers = _keras3_layers(root, source, file, limit, groups)
    except (OSError, zipfile.BadZipFile, KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise _fail(
            source,
            f"cannot read the weights in {file}: {first_line(exc)} (a truncated or corrupted file?)",
            "save it again (model.save_weights('x.weights.h5') or model.save('x.keras'))",
        ) from None
    if not layers:
        from cnnspec.spec.weights import h5_layout, hdf5_refusal

        layout = h5_layout(file) if source.kind == "weights_h5" else None
        if layout in ("keras2", "model"):  # (named .weights.h5: said as under an .h5 name)
            raise _fail(source, *hdf5_refusal(file, layout))
        raise _fail(
            source,
            f"{file} holds no layer weights in Keras 3's layout (layers/<name>/vars)",
            "expected a file written by model.save_weights() or model.save() in Keras 3",
        )
    return SourceLayers(layers, by_name=True, groups=groups, configs=configs)


#: The most bytes of a ``.keras`` archive's config.json read for its layers' classes and
#: settings (ResNet50's is about 0.2 MB); a larger one is not read, and the weights file's
#: group names alone tell the layers' classes.
MAX_CONFIG_BYTES = 64 << 20


def _layer_configs(archive: zipfile.ZipFile) -> dict[str, Any]:
    """Each layer's entry of the archive's config.json by layer name, nested models' layers
    included (every item of a ``layers`` list that names itself). ``{}`` when it has none, or
    one that is too large or no JSON: matching then knows the classes from the weights file's
    group names only, as for a ``.weights.h5`` source."""
    try:
        info = archive.getinfo("config.json")
        if info.file_size > MAX_CONFIG_BYTES:
            return {}
        config = json.loads(archive.read(info))
    except (KeyError, ValueError, OSError, zipfile.BadZipFile, RecursionError):
        return {}
    found: dict[str, Any] = {}
    pending = [config]
    while pending:  # a loop, not recursion: the file's nesting is not ours to trust
        item = pending.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "layers" and isinstance(value, list):
                    for layer in value:
                        inner = layer.get("config") if isinstance(layer, dict) else None
                        name = inner.get("name") if isinstance(inner, dict) else None
                        if isinstance(name, str) and isinstance(layer.get("class_name"), str):
                            found.setdefault(name, layer)
                pending.append(value)
        elif isinstance(item, list):
            pending.extend(item)
    return found
