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

This module matches and assigns. A source is read by :mod:`cnnspec.training.transfer_read`,
``imagenet``'s file found by :mod:`cnnspec.training.transfer_imagenet`, a spec's loads planned by
:mod:`cnnspec.training.transfer_loads`, and transfer.json written by
:mod:`cnnspec.training.transfer_report`.
"""

from __future__ import annotations

import json
import re
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from cnnspec.spec.weights import WeightsSource
from cnnspec.training.transfer_read import first_line
from cnnspec.training.transfer_records import Skip, SourceLayers, TransferPlan, listed


def largest_weight(model: Any) -> int:
    """How many values the model's largest weight tensor has: no source tensor larger than that
    can be loaded into it, so none is read
    (:func:`~cnnspec.training.transfer_read.read_source`'s ``max_elements``)."""
    largest = 0
    for layer in model_layers(model):
        for variable in ordered_weights(layer):
            count = 1
            for side in variable.shape:
                count *= int(side)
            largest = max(largest, count)
    return largest


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
    plan.partly_unused = [
        (name, len(values) - taken[i], len(values))
        for i, (name, values) in enumerate(found.layers)
        if 0 < taken[i] < len(values)
    ]
    considered = plan.total + plan.covered  # the model's tensors in the scope, all of them
    nothing = considered and not plan.assign
    if nothing and found.by_name and (whole := _whole_models(source, plan, found, targets, prefix)):
        raise whole
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
    mine = f"the backbone's, without its {prefix}: " if prefix else "the model's: "
    return source.fail(
        f"none of the model's {plan.total + plan.covered} weight tensors{where} could be loaded from "
        f"{plan.source}: "
        f"no layer name matched (the source's: {listed(theirs)}; {mine}{listed(ours)}){same}",
        "weights are matched by layer name, and names come from the items' ids: give the items the ids "
        "they had when the source was saved"
        if alike
        else "the weights come from another architecture; check the source",
    )


def _whole_models(
    source: WeightsSource, plan: TransferPlan, found: SourceLayers, targets: list[Any], prefix: str
) -> Exception | None:
    """The error of a backbone's source that is a file saved from a model holding that backbone
    spec as its item ``bb`` (``bb_stem`` for its ``stem``: nothing matched by name), which the
    whole model's source would match by the full names; ``None`` for another source."""
    ours = [layer.name.removeprefix(prefix) for layer in targets]
    held = _held_under(ours, [name for name, _ in found.layers]) if prefix else None
    if held is None:
        return None
    item = held.removesuffix("_")
    renamed = "" if held == prefix else f", with this backbone item's id `{item}`"
    return source.fail(
        f"none of the model's {plan.total + plan.covered} weight tensors in {plan.scope} could be loaded "
        f"from {plan.source}: it holds the backbone's layers under the prefix {held} "
        f"({listed([held + own for own in ours])}): it is the weights of a whole model with this "
        f"backbone as its item {item!r}",
        "load it as the whole model's weights (a top-level `weights:`, or --weights), which match the "
        f"layers by their full names{renamed}",
    )


def _held_under(ours: list[str], theirs: list[str]) -> str | None:
    """The prefix under which the source names every one of ``ours`` (the layers of a backbone
    without its own prefix), as a file saved from a model with that backbone spec as its item
    ``bb`` does (``bb_stem`` for ``stem``); ``None`` if there is none."""
    if not ours:
        return None
    names = set(theirs)
    first = ours[0]
    for name in sorted(names):
        if name.endswith(f"_{first}"):
            held = name[: len(name) - len(first)]
            if all(f"{held}{own}" in names for own in ours):
                return held
    return None


def apply_plan(model: Any, plan: TransferPlan) -> None:
    """Assign a checked plan's arrays (to a model built from the same IR as the planned one)."""
    from cnnspec.backends.weights import finalize_loaded

    by_name = {layer.name: layer for layer in model_layers(model)}
    for layer_name, index, array in plan.assign:
        ordered_weights(by_name[layer_name])[index].assign(array)
    finalize_loaded(by_name[name] for name in dict.fromkeys(name for name, _, _ in plan.assign))
