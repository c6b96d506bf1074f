"""Writing an import: the spec, and with ``--weights`` the source's weights beside it; and the
figures the import reports (spec lines, the zoo spec's lines, source layers, blocks)."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from cnnspec.errors import UsageError
from cnnspec.fileio import atomic_path, same_file, write_atomic
from cnnspec.importer import Imported, import_source
from cnnspec.importer.source import KERAS_PREFIX, ZIP_FAULTS, Source, import_error, read_source, zip_fault

WEIGHTS_SUFFIX = ".weights.h5"
COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ZooCounterpart:
    """The zoo variant an imported model is, and the length of its hand-written spec."""

    variant: str
    spec: Path
    spec_lines: int


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def zoo_counterpart(imported: Imported) -> ZooCounterpart | None:
    """The zoo variant with the source's keras.applications name or model name, if any."""
    from cnnspec.analysis.zoo import catalog

    wanted = {_normal(imported.source.keras_name or ""), _normal(imported.name)} - {""}
    for entry in catalog():
        if {_normal(entry.name), _normal(entry.keras_name)} & wanted:
            lines = len(entry.spec.read_text(encoding="utf-8").splitlines())
            return ZooCounterpart(entry.name, entry.spec, lines)
    return None


def weights_name(out: Path) -> str:
    """``resnet.yaml`` → ``resnet.weights.h5`` (beside the spec, as the spec refers to it)."""
    return out.with_suffix("").name + WEIGHTS_SUFFIX


def run_import(source: str, out: Path, *, weights: bool = False, folding: bool = True) -> Imported:
    """Import ``source`` and write the spec to ``out`` (with ``weights``: its weights beside it).

    Nothing is written unless the whole import succeeds; each file is written atomically.
    """
    target_weights = out.with_name(weights_name(out)) if weights else None
    _refuse_overwriting(source, [out, *([target_weights] if target_weights else [])])
    read: Source = read_source(source)
    if weights and read.model is None and read.path is not None and not zipfile.is_zipfile(read.path):
        raise UsageError(
            "--weights needs a .keras file or keras:NAME; a JSON configuration holds no weights",
            hint="save the model with model.save('model.keras') and import that",
        )
    imported = import_source(
        read, weights_file=target_weights.name if target_weights else None, folding=folding
    )
    if target_weights is not None:
        _write_weights(read, target_weights, imported.names)
    write_atomic(out, imported.text)
    return imported


def _refuse_overwriting(source: str, targets: list[Path]) -> None:
    """A file the import would write must not be its source (``import x.json -o x.json``)."""
    if source.startswith(KERAS_PREFIX):
        return
    for target in targets:
        if same_file(source, target):  # (a source that cannot be read is reported by read_source)
            raise UsageError(
                f"{target} is the source file {source}: import would overwrite the model it reads",
                hint="write the spec to another file, e.g. -o model.yaml",
            )


def _write_weights(read: Source, target: Path, names: dict[str, str]) -> None:
    """The source's weights in Keras' ``.weights.h5`` format, each layer's stored name (the
    ``name`` attribute of its ``vars`` group) relabelled to its layer in the spec's model, so
    a loader that matches by name finds them; Keras' own ``load_weights`` matches by order."""
    with atomic_path(target, WEIGHTS_SUFFIX) as temp:
        if read.model is not None:
            read.model.save_weights(str(temp))
            relabel(temp, names)
            return
        _copy_member(read, temp)
        try:
            relabel(temp, names)
        except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:  # h5py's faults
            raise import_error(
                f"corrupt or unsupported .keras file: {read.path}: model.weights.h5 is not a "
                f"readable weights file ({type(exc).__name__}: {exc})",
                hint="save the model again with model.save('model.keras')",
            ) from None


def _copy_member(read: Source, temp: Path) -> None:
    assert read.path is not None
    member = "model.weights.h5"
    try:
        archive = zipfile.ZipFile(read.path)
    except ZIP_FAULTS as exc:
        raise zip_fault(read.path, exc, member) from None
    with archive:
        try:
            info = archive.getinfo(member)
        except KeyError:
            raise import_error(
                f"{read.path} has no {member}",
                hint="save the model with its weights: model.save(...)",
            ) from None
        # the bytes are copied as they are: the member is Keras' own .weights.h5 file; a
        # damaged member is a fault of the source, a failed write one of the target
        with open(temp, "xb") as handle:
            try:
                stream = archive.open(info)
            except ZIP_FAULTS as exc:
                raise zip_fault(read.path, exc, member) from None
            with stream:
                while True:
                    try:
                        chunk = stream.read(COPY_CHUNK)
                    except ZIP_FAULTS as exc:
                        raise zip_fault(read.path, exc, member) from None
                    if not chunk:
                        break
                    handle.write(chunk)


def relabel(path: Path, names: dict[str, str]) -> int:
    """Rename the layers stored in a ``.weights.h5`` file (source name → spec name); returns
    how many were renamed. h5py only: no TensorFlow."""
    import h5py

    renamed = 0
    with h5py.File(path, "r+") as handle:
        layers = handle.get("layers")
        if layers is None:
            return 0
        for key in layers:
            variables = layers[key].get("vars") if hasattr(layers[key], "get") else None
            if variables is None:
                continue
            stored = variables.attrs.get("name")
            stored = stored.decode("utf-8") if isinstance(stored, bytes) else stored
            if isinstance(stored, str) and stored in names:
                variables.attrs["name"] = names[stored]
                renamed += 1
    return renamed
