"""Partial weight loading with a report: start a model (or one backbone's scope of it) from a
weights source (:mod:`cnnspec.spec.weights`).

Matching:

- a run folder, ``.keras`` or ``.weights.h5`` source is matched **by layer name** (Keras 3's
  weights layout: ``layers/<class>/vars/<i>``, the layer's name an attribute of ``vars``), and
  only with a layer of the same class (a ``.keras`` archive's config.json names it; a bare
  weights file names its group after it: ``conv2d``, ``conv2d_1`` …). Within a layer, a
  ``.keras`` or run folder source is matched **by variable name**: the source layer is rebuilt
  from its config.json entry (with the model's own class of that name, in Keras' safe mode:
  nothing of the file runs) where its settings differ from the model's, so a batch norm saved
  with ``center: false`` gives its ``moving_mean`` to this one's ``moving_mean``, never its
  gamma to this one's beta. A ``.weights.h5`` file keeps no variable names: its tensors are
  taken by position (Keras' own order: trainable variables first, then the rest), which is
  right for a layer of the same settings only (README: "Transfer learning");
- ``imagenet`` (Keras 2's layout of keras.applications' files) is matched **by position** among
  the layers with weights, as Keras itself loads it: a zoo model has keras.applications' layers
  in the same order (``tests/test_zoo_parity.py``), under other names.

Inside a scope (a backbone item with ``id: body``), the model's layer ``body_conv1`` is matched
with the source's ``conv1``: the backbone's spec trained on its own names its layers without the
prefix. A weight whose shape differs (a new head's class count) or that the source lacks is
skipped and reported; ``strict`` makes any skip an error; a source of which nothing fits (another
architecture) is an error that gives the counts. The loads run in order (each backbone's own
source, then the whole model's): a tensor an earlier one loaded is not held against a later one
that lacks it, and the report counts each of the model's tensors once. Every check runs before
a weight is assigned, so a failed load leaves the model (and the run folder) untouched. Nothing
executes code from the file: ``.keras`` archives are opened as zip files and their weights read
with h5py. TensorFlow is imported lazily, only where a model is built.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.errors import SpecError, UsageError
from cnnspec.fileio import sha256_file, write_atomic
from cnnspec.spec.weights import IMAGENET, KINDS, RUN_MODEL, WeightsSource

if TYPE_CHECKING:
    from cnnspec.analysis.weights_run import WeightsRun

REPORT_FILE = "transfer.json"
KERAS_WEIGHTS_MEMBER = "model.weights.h5"  # the weights inside a .keras archive
#: The most bytes a *compressed* ``model.weights.h5`` in a ``.keras`` archive may declare
#: (Keras stores it uncompressed; a re-zipped archive of a large model still fits). Bounds the
#: inflating a small zip of deflated zeros could ask for.
MAX_COMPRESSED_MEMBER = 8 << 30


@dataclass
class SourceLayers:
    """What a source holds: (layer name, [(weight name, array)]) in file order. ``by_name``:
    match by layer name; else by position among layers with weights."""

    layers: list[tuple[str, list[tuple[str, Any]]]]
    by_name: bool
    #: Each layer's group in the file, by layer name (Keras 3 names it after the layer's
    #: class: ``conv2d``, ``conv2d_1`` …): what a bare ``.weights.h5`` keeps of the layer's kind.
    groups: dict[str, str] = field(default_factory=dict)
    #: Each layer's entry in a ``.keras`` archive's config.json (``class_name``, ``config``,
    #: ``build_config``), by layer name: its class and the settings its variables follow from.
    configs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Skip:
    """One model weight that was not loaded, and why. ``index``: the weight's position in its
    layer (:func:`ordered_weights`), which identifies it with ``layer`` (names may repeat)."""

    layer: str
    weight: str
    reason: str
    index: int = 0

    def as_json(self) -> dict[str, str]:
        return {"layer": self.layer, "weight": self.weight, "reason": self.reason}


@dataclass
class TransferPlan:
    """Which source array goes into which model weight (not yet assigned), and the report."""

    source: str
    scope: str = ""
    #: The tensors this source answers for: those it loads, and those it does not that no
    #: earlier source (a backbone's) loaded either (``skipped``); ``loaded + len(skipped)``.
    total: int = 0
    assign: list[tuple[str, int, Any]] = field(default_factory=list)  # (layer, weight index, array)
    skipped: list[Skip] = field(default_factory=list)
    unused: int = 0  # source tensors nothing in the model took
    #: The model's tensors this source did not load that an earlier source (a backbone's own,
    #: loaded before the whole model's) did: left to that one, neither skipped nor counted here.
    covered: int = 0
    #: The source's layers nothing in the model took, by name (for the report: which were left).
    unused_layers: list[str] = field(default_factory=list)
    #: The file read (a run folder's model.keras, keras.applications' cached file for
    #: ``imagenet``) and the SHA-256 of its bytes: which weights exactly a run started from.
    file: str | None = None
    sha256: str | None = None

    @property
    def loaded(self) -> int:
        return len(self.assign)

    def as_json(self) -> dict[str, Any]:
        """The record transfer.json keeps (agreed keys first)."""
        out: dict[str, Any] = {
            "source": self.source,
            "loaded": self.loaded,
            "total": self.total,
            "skipped": [s.as_json() for s in self.skipped],
        }
        if self.scope:
            out["scope"] = self.scope
        out["unused_source_tensors"] = self.unused
        if self.covered:
            out["loaded_from_other_sources"] = self.covered
        if self.unused_layers:
            out["unused_source_layers"] = self.unused_layers
        if self.file is not None:
            out["file"], out["sha256"] = self.file, self.sha256
        return out

    def file_record(self) -> dict[str, Any]:
        """What lock.json's ``weights_files`` keeps of this load (:func:`check_unchanged`)."""
        return {"scope": self.scope, "source": self.source, "file": self.file, "sha256": self.sha256}

    def lines(self) -> list[str]:
        """The printed report: ``loaded N of M weight tensors`` and one line per skipped one."""
        where = f" into {self.scope}" if self.scope else ""
        head = f"loaded {self.loaded} of {self.total} weight tensors{where} from {self.source}"
        if self.covered:
            head += f" ({self.covered} more were loaded from the backbones' sources)"
        if self.unused:
            left = _listed(self.unused_layers)
            head += f" ({self.unused} tensors of the source unused{': ' + left if left else ''})"
        return [head, *(f"  skipped {s.layer}/{s.weight}: {s.reason}" for s in self.skipped)]


# -- reading sources --------------------------------------------------------------------------
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
            f"refusing the weights in {file}: they refer to data outside the file: {shown(outside)}",
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
    weight, :func:`largest_weight`); a larger one is not read (:class:`Unread`). ``None``:
    :data:`~cnnspec.training.h5checks.MAX_DATASET_ELEMENTS`."""
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


def largest_weight(model: Any) -> int:
    """How many values the model's largest weight tensor has: no source tensor larger than that
    can be loaded into it, so none is read (:func:`read_source`'s ``max_elements``)."""
    largest = 0
    for layer in model_layers(model):
        for variable in ordered_weights(layer):
            count = 1
            for side in variable.shape:
                count *= int(side)
            largest = max(largest, count)
    return largest


# -- matching ---------------------------------------------------------------------------------
def ordered_weights(layer: Any) -> list[Any]:
    """A layer's variables in Keras' saving order (trainable first), whatever ``trainable`` is
    set to now (a frozen layer still loads its weights)."""
    return list(layer._trainable_variables) + list(layer._non_trainable_variables)


def model_layers(model: Any) -> Iterator[Any]:
    """The model's layers, nested models' included, in order."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from model_layers(layer)


def _short(variable: Any) -> str:
    return str(getattr(variable, "name", "")).split("/")[-1] or "?"


def plan_transfer(
    model: Any,
    source: WeightsSource,
    found: SourceLayers,
    scope: str = "",
    names: frozenset[str] | None = None,
    loaded_before: frozenset[tuple[str, int]] = frozenset(),
) -> TransferPlan:
    """Match the model's weights (those of the layers ``names`` of the scope ``scope`` when
    given, whose names lose the prefix ``scope_`` for matching) with the source's; every check,
    nothing assigned. Raises when ``strict`` and something is skipped, or when nothing matched.

    ``loaded_before``: the (layer, weight index) an earlier source loads (a backbone's own, for
    the whole model's source). One of them that this source cannot fill is not skipped: it is
    loaded, just not from here (``covered``), so neither the counts nor ``strict`` hold it
    against this source. One this source does fill is loaded from it, as it is assigned last.

    A source layer of another class than the model's is skipped whole (:func:`_other_kind`);
    one described by a config.json gives its tensors by variable name (:func:`_places`)."""
    prefix = f"{scope}_" if scope else ""
    plan = TransferPlan(source.describe(), scope)
    targets = [
        layer
        for layer in model_layers(model)
        if ordered_weights(layer) and (names is None or layer.name in names)
    ]
    # each target layer with the index of its source layer (None: the source has none)
    if found.by_name:
        index_of = {name: i for i, (name, _) in enumerate(found.layers)}
        pairs = [(layer, index_of.get(layer.name.removeprefix(prefix))) for layer in targets]
    else:
        pairs = [(layer, i if i < len(found.layers) else None) for i, layer in enumerate(targets)]
    # how many tensors each source layer gave: one that shared a name but gave nothing (shapes
    # or tensor counts differ) is as unused as one nothing matched
    taken = [0] * len(found.layers)

    def skip(layer: Any, index: int, variable: Any, reason: str) -> None:
        if (layer.name, index) in loaded_before:
            plan.covered += 1
        else:
            plan.skipped.append(Skip(layer.name, _short(variable), reason, index))

    shared = 0
    for layer, at in pairs:
        variables = ordered_weights(layer)
        if at is None:
            what = "missing in the source" if found.by_name else "missing in the source (it has fewer layers)"
            for index, variable in enumerate(variables):
                skip(layer, index, variable, what)
            continue
        shared += 1
        name, values = found.layers[at]
        other = _other_kind(layer, name, found)
        if other is not None:
            for index, variable in enumerate(variables):
                skip(layer, index, variable, other)
            continue
        places = _places(layer, variables, name, values, found)
        if isinstance(places, str):  # the source layer's tensors cannot be told apart
            for index, variable in enumerate(variables):
                skip(layer, index, variable, places)
            continue
        if places is None:  # (a .weights.h5 file: by position)
            if len(values) != len(variables):
                # Another configuration of the layer (batch norm without `scale` has no gamma, a
                # convolution without a bias one tensor less): the file keeps a layer's tensors by
                # position only, so which one is missing is unknown, and matching by position
                # would put beta into gamma, moving_mean into beta …, wherever the shapes agree.
                # Keras' own load_weights refuses such a layer; here it is skipped, and said.
                reason = (
                    f"the source layer holds {len(values)} weight tensor(s), this one {len(variables)} "
                    "(another configuration of the layer: use_bias, scale, center …)"
                )
                for index, variable in enumerate(variables):
                    skip(layer, index, variable, reason)
                continue
            places = list(range(len(variables)))
        for index, variable in enumerate(variables):
            place = places[index]
            if place is None:
                skip(layer, index, variable, _absent(variable, found.configs[name]))
                continue
            array = values[place][1]
            reason = _misfit(variable, array)
            if reason is not None:
                skip(layer, index, variable, reason)
                continue
            plan.assign.append((layer.name, index, array))
            taken[at] += 1
    plan.total = plan.loaded + len(plan.skipped)
    plan.unused = sum(len(values) - taken[i] for i, (_, values) in enumerate(found.layers))
    plan.unused_layers = [name for i, (name, values) in enumerate(found.layers) if values and not taken[i]]
    considered = plan.total + plan.covered  # the model's tensors in the scope, all of them
    if considered and not plan.assign and found.by_name and not shared:
        raise _no_name_matched(source, plan, found, targets, prefix)
    if considered and not plan.assign:
        in_source = sum(len(values) for _, values in found.layers)
        # (a layer of another class is no fit whatever its shapes: counted apart)
        kinds = len({s.layer for s in plan.skipped if s.reason.startswith("another kind of layer")})
        raise source.fail(
            f"none of the model's {considered} weight tensors{' in ' + scope if scope else ''} could be "
            f"loaded from {plan.source}: it holds {in_source} tensors in {len(found.layers)} layers, "
            f"{shared} of which {'share a name with' if found.by_name else 'line up with'} the model's "
            f"{len(targets)} layers with weights, none with the same shapes"
            + (f" ({kinds} of them another kind of layer)" if kinds else ""),
            "the weights come from another architecture; check the source"
            + (", or name the layers alike (ids)" if found.by_name else ""),
        )
    if source.strict and plan.skipped:
        first = plan.skipped[0]
        others = f" ({plan.covered} more were loaded from the backbones' sources)" if plan.covered else ""
        raise source.fail(
            f"strict weights: loaded {plan.loaded} of {plan.total} weight tensors from {plan.source}"
            f"{others}; {len(plan.skipped)} skipped, first {first.layer}/{first.weight}: {first.reason}",
            "drop `strict: true` to load what fits and train the rest from scratch",
        )
    return plan


def _misfit(variable: Any, array: Any) -> str | None:
    """Why a source array cannot go into ``variable`` (``None``: it can): another shape, or
    another kind of number (:func:`~cnnspec.training.h5checks.kinds_differ`)."""
    from cnnspec.training.h5checks import kinds_differ

    want, got = tuple(variable.shape), tuple(array.shape)
    if want != got:
        return f"shape mismatch: source {list(got)}, model {list(want)}"
    if kinds_differ(array.dtype, variable.dtype):
        return f"dtype mismatch: source {array.dtype}, model {variable.dtype}"
    return None


def snake_case(class_name: str) -> str:
    """A class's name as Keras 3 names the group of its instance's weights in a weights file
    (``keras.src.utils.naming.to_snake_case``, spelled out: this module reads files without
    Keras): ``Conv2DTranspose`` → ``conv2d_transpose``."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _other_kind(layer: Any, name: str, found: SourceLayers) -> str | None:
    """Why the source layer ``name`` is no layer of ``layer``'s kind (``None``: it is, or the
    source does not say): its config.json entry names another class, or (a bare weights file)
    its group is named after another (Keras names it ``<class>`` or ``<class>_<n>``). Loading
    a convolution's kernel into a transposed convolution of the same shape would put every
    value in the wrong place, with nothing to say so."""
    ours = type(layer).__name__
    entry = found.configs.get(name)
    if entry is not None:
        theirs = str(entry.get("class_name"))
        return (
            None
            if theirs == ours
            else f"another kind of layer: the source's is a {theirs}, this one a {ours}"
        )
    group = found.groups.get(name)
    if group is None:
        return None
    snake = snake_case(ours)
    if group == snake or re.fullmatch(re.escape(snake) + r"_\d+", group):
        return None
    theirs = re.sub(r"_\d+$", "", group)
    return (
        f"another kind of layer: the source's is a {theirs} (its weights are saved as layers/{group}), "
        f"this one a {snake}"
    )


def _places(
    layer: Any, variables: list[Any], name: str, values: list[tuple[str, Any]], found: SourceLayers
) -> list[int | None] | str | None:
    """Where each of ``variables`` is among the source layer ``name``'s ``values``, by
    variable name (``None`` for one the source layer lacks), from its config.json entry;
    ``None`` where the source has no entry for it (a bare weights file: by position), and a
    reason where the entry does not tell (the layer cannot be rebuilt from it)."""
    entry = found.configs.get(name)
    if entry is None:
        return None
    ours = [_short(variable) for variable in variables]
    theirs = source_variable_names(layer, entry)
    if isinstance(theirs, str):
        return f"cannot tell which of the source layer's tensors is which: {theirs}"
    if len(theirs) != len(values):
        return (
            f"cannot tell which of the source layer's tensors is which: its config.json describes "
            f"{len(theirs)}, its weights hold {len(values)}"
        )
    if theirs == ours:
        return list(range(len(ours)))
    # (a name twice in a layer, a sublayer's kernel beside another's, is not told apart)
    return [theirs.index(n) if theirs.count(n) == 1 and ours.count(n) == 1 else None for n in ours]


def _absent(variable: Any, entry: Mapping[str, Any]) -> str:
    """The reason a variable :func:`_places` found no source tensor for is skipped, with the
    source layer's settings that decide its variables."""
    config = entry.get("config")
    config = config if isinstance(config, Mapping) else {}
    shown = ", ".join(f"{key}: {json.dumps(config[key])}" for key in DECIDING if key in config)
    return (
        f"the source layer has no {_short(variable)} (another configuration of the layer"
        f"{'; the source has ' + shown if shown else ''})"
    )


#: Layer settings that decide which variables a Keras layer has (named in a skip's reason).
DECIDING = ("use_bias", "center", "scale", "use_gamma", "use_beta")


def _comparable(config: Any) -> Any:
    """A layer's config as JSON holds it (tuples as lists), less what does not decide its
    variables (its name; whether it trains now)."""
    plain = json.loads(json.dumps(config, default=str))
    if isinstance(plain, dict):
        plain.pop("name", None)
        plain.pop("trainable", None)
    return plain


def source_variable_names(layer: Any, entry: Mapping[str, Any]) -> list[str] | str:
    """The names of the variables of the source layer that ``entry`` (its config.json entry, of
    ``layer``'s class) describes, in Keras' saving order; a reason where they cannot be known.
    Where its settings are ``layer``'s own, they are ``layer``'s names; else a twin is built
    with ``layer``'s own class (never one the file names) in Keras' safe mode (no lambda or
    custom object of the file is loaded), from :func:`twin_settings`: ``layer``'s own numbers
    and input shape, so a file cannot make it allocate more than the model's layer holds."""
    import keras
    from keras.src.saving.serialization_lib import SafeModeScope

    config = entry.get("config")
    ours = keras.saving.serialize_keras_object(layer).get("config")
    if _comparable(ours) == _comparable(config):
        return [_short(variable) for variable in ordered_weights(layer)]
    if not isinstance(config, dict) or not isinstance(ours, dict):
        return "its config.json records no settings for the layer"
    try:
        with SafeModeScope(True), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            twin = type(layer).from_config(twin_settings(ours, config))
            twin.build_from_config(layer.get_build_config())
    except Exception as exc:  # any error of Keras' from a file's settings: said, not a traceback
        return f"the layer cannot be rebuilt with its config.json's settings ({first_line(exc, 120)})"
    return [_short(variable) for variable in ordered_weights(twin)]


def twin_settings(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of the twin :func:`source_variable_names` builds: the model layer's
    (``ours``), with the source's switches and words (``theirs``: a boolean or string where
    ours is one too, such as ``center``, ``use_bias``) that decide which variables it has.
    Numbers, lists and objects stay the model's: the tensors' sizes are checked against the
    file's afterwards, and a config.json's ``units: 10**10`` would otherwise be allocated."""
    twin = dict(ours)
    for key, value in theirs.items():
        if key in ("name", "trainable") or key not in ours:
            continue
        if (isinstance(value, bool) and isinstance(ours[key], bool)) or (
            isinstance(value, str) and isinstance(ours[key], str)
        ):
            twin[key] = value
    return twin


def _no_name_matched(
    source: WeightsSource, plan: TransferPlan, found: SourceLayers, targets: list[Any], prefix: str
) -> Exception:
    """The error of a source none of whose layer names the model has: the names of both sides
    (an item's id renamed changes every layer name under it), and how many of the model's
    layers have a source layer of the very same tensor shapes, which says whether it is the
    same architecture (the file lists its layers by name, not in the model's order)."""
    ours = [layer.name.removeprefix(prefix) for layer in targets]
    theirs = [name for name, _ in found.layers]
    available = Counter(tuple(tuple(a.shape) for _, a in values) for _, values in found.layers)
    alike = 0
    for layer in targets:
        shapes = tuple(tuple(v.shape) for v in ordered_weights(layer))
        if available[shapes]:
            available[shapes] -= 1
            alike += 1
    same = (
        f"; {alike} of the model's {len(targets)} layers have a layer of the same shapes there"
        if alike
        else "; no layer of the source has the shapes of one of the model's either"
    )
    where = f" in {plan.scope}" if plan.scope else ""
    return source.fail(
        f"none of the model's {plan.total + plan.covered} weight tensors{where} could be loaded from "
        f"{plan.source}: "
        f"no layer name matched (the source's: {_listed(theirs)}; the model's: {_listed(ours)}){same}",
        "weights are matched by layer name, and names come from the items' ids: give the items the ids "
        "they had when the source was saved"
        if alike
        else "the weights come from another architecture; check the source",
    )


def _listed(names: list[str], shown: int = 3) -> str:
    """``a, b, c, … (7 in all)``: the first few names of a list for a message."""
    head = ", ".join(names[:shown])
    return head + (f", … ({len(names)} in all)" if len(names) > shown else "")


def apply_plan(model: Any, plan: TransferPlan) -> None:
    """Assign a checked plan's arrays (to a model built from the same IR as the planned one)."""
    from cnnspec.backends.weights import finalize_loaded

    by_name = {layer.name: layer for layer in model_layers(model)}
    for layer_name, index, array in plan.assign:
        ordered_weights(by_name[layer_name])[index].assign(array)
    finalize_loaded(by_name[name] for name in dict.fromkeys(name for name, _, _ in plan.assign))


# -- imagenet ---------------------------------------------------------------------------------
def keras_models_dir() -> Path:
    """Where Keras keeps keras.applications' weight files (``$KERAS_HOME/models``)."""
    from cnnspec.training.data_sources import keras_cache_dir

    return keras_cache_dir().parent / "models"


@dataclass(frozen=True)
class ApplicationFile:
    """The file keras.applications would fetch for ``weights='imagenet'``."""

    name: str
    origin: str
    file_hash: str | None


class _Intercepted(Exception):
    def __init__(self, found: ApplicationFile) -> None:
        super().__init__(found.name)
        self.found = found


@contextlib.contextmanager
def _unfilled_weights() -> Iterator[None]:
    """Keras builds the models made inside with each weight's shape and dtype only, never filled
    from its initializer: keras.applications builds its whole model before it asks for the file,
    and :func:`application_file` never reads those weights (filling them was most of its time:
    EfficientNetB0 1.3 s → 0.4 s of CPU, VGG16's 138 M weights far more)."""
    import keras
    from keras.src.backend.common import global_state

    # Keras keeps such weights in a list to fill at the exit of the next stateless scope that
    # fills its own (one runs for each symbolic op a model built later may call): the list is
    # put back as it was, so the model made here is dropped, never filled.
    pending = list(global_state.get_global_attribute("uninitialized_variables", None) or [])
    try:
        with keras.StatelessScope(initialize_variables=False):
            yield
    finally:
        global_state.set_global_attribute("uninitialized_variables", pending)


@functools.cache  # it builds keras.applications' model: once per process (search trials)
def application_file(keras_name: str, include_top: bool, input_shape: tuple[int, ...]) -> ApplicationFile:
    """Ask keras.applications which file it would download, without downloading: its
    ``get_file`` call is intercepted (the file name depends on the function, ``include_top``
    and, for some families, the input size)."""
    import keras
    from keras.src.utils import file_utils

    def intercept(*args: Any, **kwargs: Any) -> Any:
        names = ("fname", "origin")
        given = {**dict(zip(names, args, strict=False)), **kwargs}
        raise _Intercepted(
            ApplicationFile(str(given["fname"]), str(given.get("origin")), given.get("file_hash"))
        )

    constructor = getattr(keras.applications, keras_name)
    real = file_utils.get_file
    file_utils.get_file = intercept
    try:
        # The input size first: MobileNet's files differ by it, with the top too (…_1.0_96.h5).
        # A family whose top takes only its default size refuses it; its weights fit any size
        # (pooling before the top), so the default size's file is the one to load.
        with warnings.catch_warnings(), _unfilled_weights():  # (Keras' notes on sizes it has no file for)
            warnings.simplefilter("ignore")
            refused: ValueError | None = None
            for shape in (tuple(input_shape), None) if include_top else (tuple(input_shape),):
                try:
                    constructor(include_top=include_top, weights="imagenet", input_shape=shape)
                except ValueError as exc:
                    # the first refusal is the one about this model's input (the default
                    # size's is only tried for it); without the top there is no other size
                    refused = refused or exc
            if refused is not None:
                raise refused
    except _Intercepted as hit:
        return hit.found
    finally:
        file_utils.get_file = real
    raise UsageError(f"keras.applications.{keras_name} has no ImageNet weights to download")


def download(found: ApplicationFile) -> Path:
    """Fetch the file into Keras' cache with Keras (tests replace this: they never download)."""
    from keras.src.utils import file_utils

    return Path(
        file_utils.get_file(found.name, found.origin, cache_subdir="models", file_hash=found.file_hash)
    )


def imagenet_weights_file(
    source: WeightsSource,
    keras_name: str,
    include_top: bool,
    input_shape: tuple[int, ...],
    fetch: Callable[[ApplicationFile], Path] | None = None,
) -> Path:
    """The cached keras.applications file for this zoo model, fetched by Keras when missing; a
    failed fetch (offline) is an error naming the file, its URL and the cache folder."""
    try:
        found = application_file(keras_name, include_top, tuple(input_shape))
    except ValueError as exc:  # keras.applications refuses the input shape for its weights
        raise source.fail(
            f"keras.applications.{keras_name} has no ImageNet weights for this model: "
            f"{first_line(exc)} (input {list(input_shape)})",
            "give the model an input keras.applications takes with ImageNet weights (input.shape; "
            "most families want at least 32×32), or leave out `weights: imagenet` and train from scratch",
        ) from None
    cached = keras_models_dir() / found.name
    if cached.is_file():
        return cached
    try:
        return (fetch or download)(found)
    except Exception as exc:  # Keras raises a plain Exception ("URL fetch failure") offline
        reason = first_line(exc)
        raise source.fail(
            f"expected the ImageNet weights {found.name} in Keras' cache or downloadable; the download "
            f"failed: {reason}",
            f"download on a machine with network access and place: {found.origin} → {cached}",
        ) from None


# -- the report -------------------------------------------------------------------------------
def report_json(plans: list[TransferPlan]) -> dict[str, Any]:
    """transfer.json: the one load's record; several (backbones and the whole model) are each
    kept under ``parts``, and the top level counts each of the model's tensors once: loaded
    when any source loaded it (the whole model's source may load again what a backbone's did),
    skipped (with the first source's reason) when none did."""
    if len(plans) == 1:
        return plans[0].as_json()
    loaded = {(layer, index) for plan in plans for layer, index, _ in plan.assign}
    skipped: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for plan in plans:
        for skip in plan.skipped:
            key = (skip.layer, skip.index)
            if key in loaded or key in seen:  # (a backbone's miss the whole model's source filled)
                continue
            seen.add(key)
            skipped.append({**skip.as_json(), **({"scope": plan.scope} if plan.scope else {})})
    return {
        "source": "; ".join(p.source for p in plans),
        "loaded": len(loaded),
        "total": len(loaded) + len(skipped),
        "skipped": skipped,
        "parts": [p.as_json() for p in plans],
    }


def class_order_notes(plans: Sequence[TransferPlan], outputs: Sequence[tuple[str, list[str]]]) -> list[str]:
    """Warnings for an output layer loaded whole from a run folder that named that output's
    classes otherwise (``[0, 1]`` there, ``[1, 0]`` here): its weights keep the source's order,
    so it starts out calling each class by another's name, and loading says nothing else
    (the shapes match). ``outputs``: each output layer's name and this run's names for it. A
    source without a readable lock.json (a bare ``.keras`` file) has no names to compare."""
    notes = []
    for plan in plans:
        if plan.file is None or Path(plan.file).name != RUN_MODEL:
            continue
        theirs = _recorded_names(Path(plan.file).parent / "lock.json")
        loaded = {layer for layer, _, _ in plan.assign}
        for layer, names in outputs:
            source_names = theirs.get(layer)
            if layer in loaded and names and source_names and source_names != names:
                notes.append(
                    f"the output layer {layer!r} was loaded from {plan.source}, whose run names its "
                    f"outputs {source_names}; this run names them {names} (give the layer another "
                    "id to train it from scratch, or list data.classes in the source's order)"
                )
    return notes


def _recorded_names(lock: Path) -> dict[str, list[str]]:
    """Each output layer's names (class names, columns) a run's lock.json records; none when
    it cannot be read (the load itself was checked already)."""
    try:
        tasks = json.loads(lock.read_text(encoding="utf-8")).get("tasks")
    except (OSError, ValueError, AttributeError):
        return {}
    return {
        str(task["name"]): [str(n) for n in task["names"]]
        for task in tasks if isinstance(task, dict) and isinstance(task.get("names"), list) and "name" in task
    } if isinstance(tasks, list) else {}  # fmt: skip


def write_report(run_dir: Path, plans: list[TransferPlan]) -> Path:
    """Write RUN/transfer.json atomically."""
    return write_atomic(Path(run_dir) / REPORT_FILE, json.dumps(report_json(plans), indent=2) + "\n")


# -- a spec's loads ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Load:
    """One source to load: into the whole model (``scope`` empty) or a backbone's scope, with
    what ``imagenet`` needs to find its file."""

    source: WeightsSource
    scope: str = ""
    keras_name: str = ""
    include_top: bool = True
    input_shape: tuple[int, ...] = ()
    names: frozenset[str] | None = None  # a backbone's layers (None: the whole model)


def spec_loads(compiled: Any, override: str | WeightsSource | None = None) -> list[Load]:
    """The loads a spec asks for, in order: each backbone's own source into its scope, then the
    whole model's (``override``: ``--weights``, which replaces the spec's ``weights:``; as
    given, or the checked source a run recorded, :func:`recorded_source`)."""
    from cnnspec.ir import Backbone, walk
    from cnnspec.spec.weights import on_disk, spec_weights
    from cnnspec.spec.zoo import variants

    loads: list[Load] = []
    tree = compiled.ir.tree
    for part in walk(tree.body) if tree is not None else ():
        if isinstance(part, Backbone) and part.weights is not None:
            source = on_disk(part.weights)  # compiling checked the text; now the disk
            shape = compiled.ir.shape_of(part.entry)
            loads.append(
                Load(
                    source,
                    part.prefix.removesuffix("_"),
                    part.keras_name,
                    part.include_top,
                    tuple(shape or ()),
                    frozenset(part.names),
                )
            )
    variant = compiled.doc.zoo_variant
    zoo = _is_zoo(compiled)
    spec_dir = compiled.path.parent if compiled.path is not None else Path.cwd()
    if isinstance(override, WeightsSource):
        whole: WeightsSource | None = override
    elif override is not None:
        whole = _override_source(compiled, override)
    else:
        whole = spec_weights(compiled.doc, spec_dir, zoo)
    if whole is not None:
        keras_name = variants()[variant].keras_name if zoo and variant is not None else ""
        from cnnspec.analysis.settings_reader import section_env

        include_top = bool(section_env(compiled).get("include_top", True))
        loads.append(Load(whole, "", keras_name, include_top, tuple(compiled.ir.input_shape)))
    return loads


def whole_run(compiled: Any, config: Any, override: str | None = None) -> WeightsRun | None:
    """The run folder the whole model's weights come from (``--weights``, else the spec's
    ``weights:``), read as :func:`cnnspec.analysis.weights_run.weights_run` reads it: the seed
    that split its data and whether it trained on ``config``'s data source; ``None`` where the
    model starts from no run folder. A backbone's own source starts a part of the model only,
    and is not asked."""
    from cnnspec.analysis.weights_run import weights_run

    whole = next((load.source for load in spec_loads(compiled, override) if not load.scope), None)
    return weights_run(whole, config.data, getattr(compiled, "path", None))


def _is_zoo(compiled: Any) -> bool:
    """Whether the spec's model is a zoo variant (``imagenet`` may be asked for)."""
    from cnnspec.spec.zoo import variants

    variant = compiled.doc.zoo_variant
    return variant is not None and variant in variants()


def _override_source(compiled: Any, override: str) -> WeightsSource:
    """``--weights SOURCE``, checked (on disk too)."""
    from cnnspec.spec.weights import check_imagenet_input, cli_weights

    source = cli_weights(override, _is_zoo(compiled))
    check_imagenet_input(source, tuple(compiled.ir.input_shape))
    return source


def plan_loads(
    model: Any, loads: list[Load], fetch: Callable[[ApplicationFile], Path] | None = None
) -> list[TransferPlan]:
    """Read and match every load against ``model`` (nothing assigned): all errors come now."""
    plans: list[TransferPlan] = []
    limit = largest_weight(model)  # no source tensor larger than this is read
    loaded: set[tuple[str, int]] = set()  # what the loads before this one assign (applied in order)
    for load in loads:
        file = None
        if load.source.kind == IMAGENET:
            file = imagenet_weights_file(
                load.source, load.keras_name, load.include_top, load.input_shape, fetch
            )
        found = read_source(load.source, imagenet_file=file, max_elements=limit)
        if file is not None:  # (the ImageNet model's own rescaling, where it has one)
            from cnnspec.backends.weights import fold_imagenet_rescaling

            found = replace(found, layers=fold_imagenet_rescaling(found.layers, load.keras_name))
        plan = plan_transfer(model, load.source, found, load.scope, load.names, frozenset(loaded))
        loaded.update((layer, index) for layer, index, _ in plan.assign)
        if file is not None:
            plan.source = f"imagenet ({file})"  # which of keras.applications' files
        read = file if file is not None else load.source.file
        if read is not None:
            plan.file, plan.sha256 = str(Path(read).absolute()), sha256_file(read)
        plans.append(plan)
    return plans


def plan_for_spec(compiled: Any, override: str | None = None) -> list[TransferPlan]:
    """The checked transfer plans of a spec (``[]`` when it loads no weights), matched against a
    throwaway build of its model, so a bad source fails before a run folder is written."""
    loads = spec_loads(compiled, override)
    if not loads:
        return []
    from cnnspec.backends.keras_builder import build_model

    return plan_loads(build_model(compiled.ir), loads)


# -- a run restarted from epoch 1 --------------------------------------------------------------
def override_record(
    compiled: Any, override: str | None, plans: Sequence[TransferPlan] = ()
) -> dict[str, Any] | None:
    """What lock.json keeps of ``--weights`` (``None`` without it): the checked source with its
    file's absolute path and the SHA-256 of its bytes (a run folder's: its model.keras), so that
    a run resumed before its first snapshot, perhaps from another folder, starts again from the
    same weights, and is refused when the file there now holds others (:func:`recorded_source`).
    ``imagenet`` has no file of its own (``file`` and ``sha256`` are ``None``). ``plans``: the
    run's checked plans, whose whole-model load has hashed the file already."""
    if override is None:
        return None
    source = _override_source(compiled, override)
    file = None if source.file is None else str(source.file.absolute())
    hashed = next((plan.sha256 for plan in plans if not plan.scope and plan.file == file), None)
    return {
        "from": source.text,
        "kind": source.kind,
        "file": file,
        "strict": source.strict,
        "sha256": None if source.file is None else hashed or sha256_file(source.file),
    }


def recorded_source(record: Any, run_dir: Path) -> WeightsSource:
    """The ``--weights`` source a run's lock.json recorded (:func:`override_record`), checked on
    disk again: a file that is gone since refuses the resume (naming it), and so does one whose
    bytes changed (its SHA-256 is not the recorded one: the run would quietly start from other
    weights than those it first started from). A record without ``sha256`` (an older cnnspec's)
    is not checked, as a lock.json without the data's content hash is not."""
    lock_file = Path(run_dir) / "lock.json"
    fields = record if isinstance(record, Mapping) else {}
    kind, text, file = fields.get("kind"), fields.get("from"), fields.get("file")
    if kind not in KINDS or not isinstance(text, str) or (file is None) != (kind == IMAGENET):
        raise UsageError(
            f"expected the --weights source in {lock_file} as cnnspec records it; received {record!r}",
            "start a new run (without --resume)",
        )
    source = WeightsSource(
        str(kind), text, None if file is None else Path(str(file)), bool(fields.get("strict"))
    )
    if source.file is not None and not source.file.is_file():
        raise UsageError(
            f"the run in {run_dir} started from --weights {text} ({source.file}), which is gone; the run "
            "saved no training state yet, so resuming it would start again from those weights",
            f"put {source.file} back, or start a new run (without --resume)",
        )
    recorded = fields.get("sha256")
    if source.file is not None and recorded is not None and sha256_file(source.file) != recorded:
        raise UsageError(
            f"expected the same --weights {text} ({source.file}) as the run in {run_dir} started from; "
            "the file's content hash changed, and the run saved no training state yet, so resuming it "
            "would start again from other weights",
            f"put the file the run started from back at {source.file}, or start a new run (without --resume)",
        )
    return source


def _started_with_weights(lock: Mapping[str, Any]) -> bool:
    """Whether the run's command line had ``--weights`` (a lock.json from before the source
    was recorded tells only that)."""
    command = lock.get("command")
    words = [str(word) for word in command] if isinstance(command, list) else []
    return any(word == "--weights" or word.startswith("--weights=") for word in words)


def plan_for_restart(compiled: Any, lock: Mapping[str, Any], run_dir: Path) -> list[TransferPlan]:
    """The checked plans of a resumed run that saved no training state yet (killed in its first
    epoch): the spec's sources and the ``--weights`` source lock.json recorded, as the run
    first planned them, so it starts again from the same weights. A source that is gone (or no
    longer fits) refuses the resume; nothing of the run has changed by then."""
    if "weights" not in lock and _started_with_weights(lock):
        raise UsageError(
            f"the run in {run_dir} was started with --weights and saved no training state yet; its "
            "lock.json (an older cnnspec's) does not record the source, so it cannot start again from it",
            "start a new run (without --resume) with the same --weights",
        )
    record = lock.get("weights")
    override = recorded_source(record, run_dir) if record is not None else None
    again = (
        f"the run in {run_dir} saved no training state yet, so it starts again from its weights "
        "sources: put this one back as it was, or start a new run (without --resume)"
    )
    try:
        loads = spec_loads(compiled, override)
        if not loads:
            return []
        from cnnspec.backends.keras_builder import build_model

        return check_unchanged(plan_loads(build_model(compiled.ir), loads), lock, run_dir)
    except SpecError as error:  # located in the spec: the same, with what to do about the resume
        raise SpecError([replace(d, hint=_joined(d.hint, again)) for d in error.diagnostics]) from None
    except UsageError as error:
        error.hint = _joined(error.hint, again)
        raise


def file_records(plans: list[TransferPlan]) -> list[dict[str, Any]]:
    """lock.json's ``weights_files``: every weights file the run starts from (the spec's own
    sources, ``--weights`` and ImageNet's cached files), with the SHA-256 of its bytes."""
    return [plan.file_record() for plan in plans if plan.file is not None]


def check_unchanged(plans: list[TransferPlan], lock: Mapping[str, Any], run_dir: Path) -> list[TransferPlan]:
    """``plans`` when each file they read again holds the bytes lock.json's ``weights_files``
    recorded when the run started (matched by scope and file); otherwise a refusal naming the
    file: a run restarted from its weights would quietly start from others. A lock.json without
    ``weights_files`` (an older cnnspec's) is not checked."""
    recorded = lock.get("weights_files")
    if not isinstance(recorded, list):
        return plans
    hashes = {
        (str(r.get("scope") or ""), str(r.get("file"))): r.get("sha256")
        for r in recorded
        if isinstance(r, Mapping)
    }
    for plan in plans:
        before = hashes.get((plan.scope, str(plan.file)))
        if plan.file is not None and before is not None and before != plan.sha256:
            where = f" (into {plan.scope})" if plan.scope else ""
            raise UsageError(
                f"expected the same weights file {plan.file}{where} as the run in {run_dir} started from; "
                "its content hash changed since",
                f"put the file the run started from back at {plan.file}",
            )
    return plans


def _joined(hint: str | None, more: str) -> str:
    return f"{hint}; {more}" if hint else more
