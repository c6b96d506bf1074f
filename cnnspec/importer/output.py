"""Writing an import: the spec, and with ``--weights`` the source's weights beside it; and the
figures the import reports (spec lines, the zoo spec's lines, source layers, blocks)."""

from __future__ import annotations

import contextlib
import os
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnspec.analysis.report import DEFAULT_MAX_PARAMS
from cnnspec.errors import SpecError, UsageError
from cnnspec.fileio import atomic_path, same_file, scratch_folder, write_atomic, write_together
from cnnspec.importer import Imported, import_source
from cnnspec.importer.dtypes import Placed
from cnnspec.importer.source import KERAS_PREFIX, ZIP_FAULTS, Source, import_error, read_source, zip_fault
from cnnspec.importer.storage import storage_names
from cnnspec.layers.reverse import shown as one

# The check a weights file from elsewhere passes before it is read or written, shared with the
# transfer loader (callers and tests know it as this module's reaching_out too).
from cnnspec.training.h5checks import reaching_out, shown
from cnnspec.write_faults import ensure_space, write_fault

WEIGHTS_SUFFIX = ".weights.h5"
WEIGHTS_MEMBER = "model.weights.h5"
COPY_CHUNK = 1024 * 1024
#: How large a .keras file's weights may be for the model imported from it: per parameter,
#: float64 values with two optimizer slots each (Adam's; Keras saves the optimizer's state in
#: the same file) and room to spare; per layer, its HDF5 groups and headers (Keras' take about
#: 3 KB); and a fixed slack. Bounds what ``--weights`` copies: a small zip of deflated zeros
#: must not write gigabytes.
WEIGHT_BYTES_PER_PARAM = 32
WEIGHT_BYTES_PER_LAYER = 64 * 1024
WEIGHT_BYTES_SLACK = 1024 * 1024


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


def run_import(
    source: str,
    out: Path,
    *,
    weights: bool = False,
    folding: bool = True,
    max_params: int = DEFAULT_MAX_PARAMS,
) -> Imported:
    """Import ``source`` and write the spec to ``out`` (with ``weights``: its weights beside it).

    Nothing is written unless the whole import succeeds; each file is written atomically, and
    with ``weights`` the two are written together (:func:`_write_both`). A ``.keras`` file's
    weights are copied only when their size fits the imported model and they hold no link or
    reference to another file. A model without parameters has no weights to carry: then
    only the spec is written, without ``weights:`` (``Imported.weights_file`` is None).
    ``max_params``: see :func:`import_source`.
    """
    target_weights = out.with_name(weights_name(out)) if weights else None
    _refuse_overwriting(source, [out, *([target_weights] if target_weights else [])])
    read: Source = read_source(source, weights=weights)
    if weights and read.model is None and read.path is not None and not zipfile.is_zipfile(read.path):
        raise UsageError(
            "--weights needs a .keras file or keras:NAME; a JSON configuration holds no weights",
            hint="save the model with model.save('model.keras') and import that",
        )
    imported = import_source(
        read,
        weights_file=target_weights.name if target_weights else None,
        folding=folding,
        max_params=max_params,
    )
    if target_weights is None or imported.weights_file is None:
        write_atomic(out, imported.text)
    else:
        _write_both(read, out, target_weights, imported)
    return imported


def _write_both(read: Source, out: Path, target_weights: Path, imported: Imported) -> None:
    """The spec and its weights, or neither (:func:`~cnnspec.fileio.write_together`). The space
    for both is checked first; the spec is written first (a disk that fills up fails there,
    before the weights are copied), then the weights, and both are renamed into place together.
    A failure anywhere leaves the spec and the weights there before as they were, and no file
    the import created: a new weights file left beside the old spec (``import --force`` over
    an earlier import whose spec failed to be replaced) no longer fit it, and one left beside
    no spec made the same command refuse ("already exists … pass --force")."""
    data = imported.text.encode("utf-8")
    folder = out.parent if str(out.parent) else Path(".")
    ensure_space(folder, len(data) + _weights_bytes(read, imported), target_weights)
    with write_together():
        write_atomic(out, data)
        _write_weights(read, target_weights, imported)


def _weights_bytes(read: Source, imported: Imported) -> int:
    """About how many bytes the weights file will take, for the space check before anything is
    written: a ``.keras`` file's ``model.weights.h5`` as it declares itself (0 when it can't be
    read or is too large to be copied: :func:`_write_weights` refuses it with the reason), a
    Keras application's float32 values."""
    if read.model is not None:
        return 4 * imported.params
    if read.path is None:
        return 0
    try:
        with zipfile.ZipFile(read.path) as archive:
            size = archive.getinfo(WEIGHTS_MEMBER).file_size
    except (KeyError, *ZIP_FAULTS):
        return 0
    return size if size <= weights_limit(imported.params, imported.source_layers) else 0


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


def _write_weights(read: Source, target: Path, imported: Imported) -> None:
    """The source's weights in Keras' ``.weights.h5`` format, each layer's stored name (the
    ``name`` attribute of its ``vars`` group) relabelled to its layer in the spec's model, so
    a loader that matches by name finds them; Keras' own ``load_weights`` matches by order."""
    if read.model is not None:  # keras:NAME: the weights of the model Keras built here
        # saved and checked in a file of our own, as a .keras file's are: the check that they fit
        # the spec's model is the same (a misfit here is the import's fault, not the source's)
        with _scratch(target, _weights_bytes(read, imported)) as scratch:
            try:
                read.model.save_weights(str(scratch))
            except (OSError, ValueError, RuntimeError) as exc:
                raise _write_fault(exc, target) from None
            _check_fit(_ours(read), scratch, imported, target)
            with atomic_path(target, WEIGHTS_SUFFIX) as temp:
                os.replace(scratch, temp)
        return
    assert read.path is not None
    try:
        archive = zipfile.ZipFile(read.path)
    except ZIP_FAULTS as exc:
        raise zip_fault(read.path, exc, WEIGHTS_MEMBER) from None
    with archive:
        info = _weights_member(read.path, archive, imported)
        # copied and checked in a file of our own, outside atomic_path: a refusal of the
        # source is then never taken for a disk fault by the words in it (a hostile link name)
        with _scratch(target, info.file_size) as scratch:
            _copy_member(read.path, archive, info, scratch, target)
            _check_weights(read.path, scratch, imported, target)
            with atomic_path(target, WEIGHTS_SUFFIX) as temp:
                os.replace(scratch, temp)


def weights_limit(params: int, layers: int) -> int:
    """The most bytes the weights file of a model with ``params`` parameters and ``layers``
    layers is taken to need; a ``model.weights.h5`` declared larger is refused uncopied."""
    return params * WEIGHT_BYTES_PER_PARAM + layers * WEIGHT_BYTES_PER_LAYER + WEIGHT_BYTES_SLACK


def _weights_member(path: Path, archive: zipfile.ZipFile, imported: Imported) -> zipfile.ZipInfo:
    """The archive's ``model.weights.h5``, refused when its declared size is more than the
    imported model can fill (a small zip of deflated zeros must not write gigabytes)."""
    try:
        info = archive.getinfo(WEIGHTS_MEMBER)
    except KeyError:
        raise import_error(
            f"{path} has no {WEIGHTS_MEMBER}",
            hint="save the model with its weights: model.save(...)",
        ) from None
    limit = weights_limit(imported.params, imported.source_layers)
    if info.file_size > limit:
        raise import_error(
            f"{path}: {WEIGHTS_MEMBER} is {info.file_size:,} bytes; the weights of a model with "
            f"{imported.params:,} parameters in {imported.source_layers} layers take at most "
            f"{limit:,}",
            hint="import the .keras file saved with this model: model.save('model.keras')",
        )
    return info


@contextlib.contextmanager
def _scratch(target: Path, needed: int) -> Iterator[Path]:
    """A path for a new weights file beside ``target``, in a private folder named like
    :func:`atomic_path`'s (a killed import's leftover is known as one; no other user can take
    the name first), removed on leaving with its folder unless it was moved. Refused with a
    :class:`~cnnspec.errors.WriteError` when the folder has under ``needed`` bytes free."""
    with scratch_folder(target, needed=needed) as private:
        yield private / f"part{WEIGHTS_SUFFIX}"  # created by the copy, with the usual mode


def _write_fault(exc: OSError, target: Path, needed: int | None = None) -> Exception:
    """The WriteError an OSError of a write stands for (the OSError itself when none)."""
    fault = write_fault(exc, target, needed)
    return fault if fault is not None else exc


def _copy_member(
    path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, scratch: Path, target: Path
) -> None:
    """The member's bytes as they are (it is Keras' own .weights.h5 file), never more than
    its declared size; a damaged member is a fault of the source, a failed write one of the
    target."""
    try:
        stream = archive.open(info)
    except ZIP_FAULTS as exc:
        raise zip_fault(path, exc, WEIGHTS_MEMBER) from None
    with stream, open(scratch, "xb") as handle:
        copied = 0
        while True:
            try:
                chunk = stream.read(COPY_CHUNK)
            except ZIP_FAULTS as exc:
                raise zip_fault(path, exc, WEIGHTS_MEMBER) from None
            if not chunk:
                break
            copied += len(chunk)
            if copied > info.file_size:  # (zipfile stops there itself; this does not rely on it)
                raise zip_fault(
                    path, ValueError(f"more than the declared {info.file_size:,} bytes"), WEIGHTS_MEMBER
                )
            try:
                handle.write(chunk)
            except OSError as exc:
                raise _write_fault(exc, target, info.file_size) from None


def _check_weights(path: Path, scratch: Path, imported: Imported, target: Path) -> None:
    """Refuse a copied weights file that reaches outside itself (before anything writes it);
    then relabel it, and refuse it where it holds weights that no layer of the spec's model
    takes, or where a layer's weights are not what the layer takes: no group for a layer with
    weights, another number of variables, a variable of another shape (:func:`weight_misfits`).
    Either is a configuration edited after the model was saved, or weights of another model:
    Keras' ``load_model`` refuses such a file, ``build`` would leave those layers as initialized,
    and the spec's model compute something else."""
    try:
        outside = reaching_out(scratch)
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:  # h5py's faults
        raise _unreadable(path, exc) from None
    if outside:
        raise import_error(
            f"unsupported .keras file: {path}: {WEIGHTS_MEMBER} refers to data outside itself: "
            f"{shown(outside)}",
            hint="a weights file saved by Keras holds all its weights itself; save the model again "
            "with model.save('model.keras')",
        )
    _check_fit(_theirs(path), scratch, imported, target)


@dataclass(frozen=True)
class _Saved:
    """Whose weights a fit check reads, for its messages: ``subject`` (what holds them),
    ``config`` (what the model was read from) and the hints for weights that do not fit it."""

    subject: str
    config: str
    hint: str
    dtype_hint: str
    path: Path | None = None  # the .keras file (None: keras:NAME)

    def unreadable(self, exc: BaseException) -> SpecError:
        """The error of weights that h5py cannot read or change."""
        if self.path is not None:
            return _unreadable(self.path, exc)
        return import_error(f"{self.subject} is not readable ({type(exc).__name__}: {exc})", hint=self.hint)


def _theirs(path: Path) -> _Saved:
    """A .keras file's weights: a misfit is the file contradicting itself."""
    return _Saved(f"{path}: {WEIGHTS_MEMBER}", "config.json", DIFFERENT_MODELS, FLOAT32_LAYERS, path)


def _ours(read: Source) -> _Saved:
    """The weights of the model keras:NAME built here: a misfit is the import's fault."""
    return _Saved(f"{read.label}: the weights file Keras saved", "its configuration", REPORT, REPORT)


def _check_fit(saved: _Saved, scratch: Path, imported: Imported, target: Path) -> None:
    """Relabel the weights file at ``scratch`` and refuse it where it holds weights that no
    layer of the spec's model takes, where a layer's weights are not what the layer takes (no
    group for a layer with weights, another number of variables, a variable of another shape:
    :func:`weight_misfits`), or where a variable's dtype is not one the layer's float32 takes
    as it is (:func:`~cnnspec.importer.dtypes.check_dtypes`, which rewrites bfloat16 as
    float32). Float64 weights that load rounded, and bfloat16 ones rewritten, are the import
    report's notes (:attr:`Imported.notes`)."""
    from cnnspec.importer.dtypes import VARIABLE_DTYPE, check_dtypes

    try:
        done = relabel(scratch, imported.stored, storage_names(imported.source.config))
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        fault = write_fault(exc, target)  # relabelling writes: the disk may be full
        raise (fault if fault is not None else saved.unreadable(exc)) from None
    if done.unclaimed:
        listed = ", ".join(
            f"{group} (saved as layer {one(name)})" if name else f"{group} (saved with no layer name)"
            for group, name in done.unclaimed[:3]
        )
        more = f" and {len(done.unclaimed) - 3} more" if len(done.unclaimed) > 3 else ""
        raise import_error(
            f"{saved.subject} holds weights that no layer of {saved.config} is stored as: "
            f"{listed}{more}; the spec's model would leave its layers as initialized",
            hint=saved.hint,
        )
    misfits, fitting = _fitting(imported, done)
    if misfits:
        raise import_error(
            f"{saved.subject} does not fit the model of {saved.config}: {_first(misfits)} (Keras' "
            "load_model refuses the file; build would leave such layers as initialized)",
            hint=saved.hint,
        )
    try:
        dtypes = check_dtypes(scratch, fitting)
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        fault = write_fault(exc, target)  # a bfloat16 variable rewritten: the disk may be full
        raise (fault if fault is not None else saved.unreadable(exc)) from None
    if dtypes.refused:
        raise import_error(
            f"{saved.subject} holds weights that the model's {VARIABLE_DTYPE} layers cannot take as "
            f"they are: {_first(dtypes.refused)}",
            hint=saved.dtype_hint,
        )
    if dtypes.rounded:
        imported.notes.append(
            f"{WEIGHTS_MEMBER} holds float64 weights ({_named(dtypes.rounded)}): copied as they are; "
            f"Keras and build load them as {VARIABLE_DTYPE}, rounding each value to its precision"
        )
    if dtypes.widened:
        imported.notes.append(
            f"{WEIGHTS_MEMBER} holds bfloat16 weights ({_named(dtypes.widened)}): written as "
            f"{VARIABLE_DTYPE}, the same values (Keras loads them so; build reads no bfloat16)"
        )


def _first(found: list[str]) -> str:
    """The first :data:`MISFITS_SHOWN` of a refusal's findings, the rest counted."""
    more = f"; and {len(found) - MISFITS_SHOWN} more" if len(found) > MISFITS_SHOWN else ""
    return "; ".join(found[:MISFITS_SHOWN]) + more


def _named(layers: list[str]) -> str:
    """The first :data:`MISFITS_SHOWN` layers a note names, the rest counted."""
    more = f" and {len(layers) - MISFITS_SHOWN} more" if len(layers) > MISFITS_SHOWN else ""
    return ", ".join(layers[:MISFITS_SHOWN]) + more


#: What a weights file that does not fit its configuration is said to be, and what to do.
DIFFERENT_MODELS = (
    "config.json and the weights are of different models: save the model again with model.save('model.keras')"
)
#: What weights of another dtype than the spec's layers keep are said to need.
FLOAT32_LAYERS = (
    "the layers of config.json keep float32 weights: save the model again with model.save('model.keras')"
)
#: The hint of weights Keras saved here (keras:NAME) that do not fit the spec's model.
REPORT = "please report this model: import could not reproduce it"
#: How many layers whose weights do not fit a refusal names (the rest are counted).
MISFITS_SHOWN = 3


def weight_misfits(imported: Imported, done: Relabelled) -> list[str]:
    """Each layer of the spec's model whose weights in the relabelled file are not what Keras
    would load into it, in the model's order: no group for a layer with weights, another
    number of variables, a variable of another shape (each layer's variables as its kind's
    :attr:`~cnnspec.layers.registry.LayerKind.weight_rule` gives them). Keras' ``load_model``
    refuses such a file; ``build`` would load the rest and leave these layers as initialized."""
    return _fitting(imported, done)[0]


def _fitting(imported: Imported, done: Relabelled) -> tuple[list[str], list[Placed]]:
    """:func:`weight_misfits`, and the layers whose variables fit in number and shape (whose
    dtypes :func:`~cnnspec.importer.dtypes.check_dtypes` checks next)."""
    from cnnspec.layers.registry import get_kind

    compiled = imported.compiled
    source_of = {layer: source for source, layer in imported.stored.items()}
    # (a storage name's models are groups with their own layers: functional/conv2d is kept at
    # layers/functional/layers/conv2d)
    stored = storage_names(imported.source.config).items()
    group_of = {source: "layers/" + group.replace("/", "/layers/") for group, source in stored}
    misfits: list[str] = []
    fitting: list[Placed] = []
    for node in compiled.ir.nodes:
        kind = get_kind(node.kind)
        if node.name == compiled.ir.input_name or kind is None:
            continue
        expected = [tuple(s) for s in kind.weight_shapes(node.params, list(node.input_shapes), node.shape)]
        source = source_of.get(node.name, node.name)
        what = f"layer {one(source)} ({kind.keras_class})"
        if node.name not in done.placed:
            if expected:
                where = f" at {group_of[source]}" if source in group_of else ""
                misfits.append(f"{what}{where}: expected {_listed(enumerate(expected))}; received none")
            continue
        group, saved = done.placed[node.name]
        keys = [str(i) for i in range(len(expected))]
        if sorted(saved) != keys:  # (Keras saves variables 0 to n-1, and loads that many)
            found = _listed((k, saved[k]) for k in sorted(saved, key=_numbered))
            misfits.append(f"{what} at {group}: expected {_listed(enumerate(expected))}; received {found}")
            continue
        wrong = [
            f"{what} at {group}: expected variable {key} of shape {_shape(shape)}; "
            f"received {_shape(saved[key])}"
            for key, shape in zip(keys, expected, strict=True)
            if saved[key] != shape
        ]
        misfits.extend(wrong)
        if keys and not wrong:
            counters = tuple(keys[i] for i in kind.counters if i < len(keys))
            fitting.append(Placed(what, group, tuple(keys), counters))
    return misfits, fitting


def _listed(variables: Iterable[tuple[object, tuple[int, ...] | None]]) -> str:
    """(key, shape) pairs as ``2 variables: 0 [3, 3, 4, 4], 1 [4]`` (``no variables``)."""
    shown_each = [f"{key} {_shape(shape)}" for key, shape in variables]
    if not shown_each:
        return "no variables"
    return f"{len(shown_each)} variable{'s' if len(shown_each) > 1 else ''}: {', '.join(shown_each)}"


def _shape(shape: tuple[int, ...] | None) -> str:
    return "(not an array)" if shape is None else str(list(shape))


def _numbered(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdecimal() else (1 << 30, key)


def _unreadable(path: Path, exc: BaseException) -> SpecError:
    return import_error(
        f"corrupt or unsupported .keras file: {path}: {WEIGHTS_MEMBER} is not a readable weights "
        f"file ({type(exc).__name__}: {exc})",
        hint="save the model again with model.save('model.keras')",
    )


@dataclass
class Relabelled:
    """What :func:`relabel` did: how many layer groups it renamed, and the groups holding
    weights that no layer of the spec's model takes (``layers/conv2d_3``, with the name
    Keras saved beside them). ``placed``: each spec layer a group was relabelled to → that
    group (``layers/conv2d_1``) and its variables (``"0"`` → the shape; ``None``: no array)."""

    renamed: int
    unclaimed: list[tuple[str, str]]
    placed: dict[str, tuple[str, dict[str, tuple[int, ...] | None]]] = field(default_factory=dict)


def relabel(path: Path, names: dict[str, str], paths: dict[str, str] | None = None) -> Relabelled:
    """Rename the layers stored in a ``.weights.h5`` file (source name → spec name; a layer of
    a nested model by its path, ``base/conv1``, as :attr:`Imported.stored` gives it). Each
    group is the layer ``paths`` says Keras stores there (:func:`~cnnspec.importer.storage.
    storage_names`: by its place among the layers of its class, Keras' own rule, which holds
    for a layer renamed in the configuration), else the one of the name saved beside it. h5py
    only: no TensorFlow. Only hard links are followed (groups in this file): an external or
    soft link is passed over, never written through; a file from elsewhere is checked with
    :func:`reaching_out` first."""
    import h5py

    with h5py.File(path, "r+") as handle:
        done = Relabelled(0, [])
        paths = paths or {}
        _relabel_in(_hard(handle, "layers"), names, paths, set(paths.values()), "", "", done)
        return done


def _relabel_in(
    layers: Any,
    names: dict[str, str],
    paths: dict[str, str],
    claimed: set[str],
    file_scope: str,
    scope: str,
    done: Relabelled,
) -> None:
    """:func:`relabel` of the layers of one group (``file_scope``: the path of the nested
    model's group it belongs to, ``functional/``; ``scope``: that model's name, ``base/``;
    both empty at the top). ``claimed``: the layers ``paths`` places, which no other group
    is relabelled to by its saved name."""
    for key in layers if layers is not None else ():
        layer = _hard(layers, key)
        variables = _hard(layer, "vars") if layer is not None else None
        if variables is None:
            continue
        stored = variables.attrs.get("name")
        stored = stored.decode("utf-8") if isinstance(stored, bytes) else stored
        source = paths.get(file_scope + key)
        if source is None and isinstance(stored, str) and scope + stored not in claimed:
            source = scope + stored  # (a group the configuration does not place: by a name no group has)
        if source is not None and source in names:
            variables.attrs["name"] = names[source]
            done.renamed += 1
            done.placed[names[source]] = (layer.name.lstrip("/"), _shapes(variables))
        elif _hard(layer, "layers") is not None and source is not None:  # a nested model's layers
            inner = _hard(layer, "layers")
            _relabel_in(inner, names, paths, claimed, f"{file_scope}{key}/", f"{source}/", done)
        elif len(variables):  # weights that no layer of the spec's model would load
            # (layers/functional/layers/…; a group with no saved layer name: None, said as such)
            done.unclaimed.append((layer.name.lstrip("/"), str(stored) if isinstance(stored, str) else ""))


def _shapes(variables: Any) -> dict[str, tuple[int, ...] | None]:
    """Each variable of a ``vars`` group → its shape (``None``: not an array of this file)."""
    import h5py

    shapes: dict[str, tuple[int, ...] | None] = {}
    for key in variables:
        link = variables.get(key, getlink=True)
        item = variables.get(key) if isinstance(link, h5py.HardLink) else None
        shapes[str(key)] = tuple(item.shape) if isinstance(item, h5py.Dataset) else None
    return shapes


def _hard(group: Any, name: str) -> Any:
    """``group[name]`` when it is a group reached by a hard link (one inside this file), else
    ``None``."""
    import h5py

    if not isinstance(group.get(name, getlink=True), h5py.HardLink):
        return None
    item = group.get(name)
    return item if isinstance(item, h5py.Group) else None
