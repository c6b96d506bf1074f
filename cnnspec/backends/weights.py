"""Loading the weight files keras.applications downloads (``weights="imagenet"``) into a model.

Those files are Keras 2's HDF5 weights layout: the root's ``layer_names`` attribute lists the
layers in the model's topological order, each layer's group lists its ``weight_names`` (trainable
weights first, then non-trainable ones), and Keras loads them *by position* among the layers that
have weights, whatever the names. A zoo model has exactly keras.applications' weighted layers in
the same order with the same weight shapes (``tests/test_zoo_parity.py``), so the file loads into
it although cnnspec names its layers differently. Every mismatch is reported before a single
weight is assigned, naming the layer on both sides.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.errors import UsageError

if TYPE_CHECKING:
    import keras


class WeightsFileError(UsageError):
    """A weights file that cannot be read, or does not fit the model (exit code 2 on the CLI)."""


def _attribute(group: Any, name: str) -> list[str]:
    """A string-list attribute, also when HDF5's header limit made Keras split it into
    ``name0``, ``name1``, …"""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values = []
        chunk = 0
        while f"{name}{chunk}" in group.attrs:
            values.extend(group.attrs[f"{name}{chunk}"])
            chunk += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _read(path: Path) -> list[tuple[str, list[tuple[str, Any]]]]:
    """(layer name, [(weight name, array)]) for every layer of the file that has weights; a
    file that cannot be opened or whose groups lack what they list is a :class:`WeightsFileError`."""
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise WeightsFileError(
            f"cannot read {path} as an HDF5 weights file: {exc}",
            "expected a Keras .h5 weights file, e.g. one keras.applications downloads",
        ) from None
    with handle as root:
        try:
            return _layers(path, root)
        except (KeyError, OSError, ValueError, TypeError) as exc:  # h5py's errors for a damaged file
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise WeightsFileError(
                f"cannot read the weights in {path}: {reason} (a truncated or damaged file?)",
                "expected a Keras .h5 weights file, e.g. one keras.applications downloads",
            ) from None


def _layers(path: Path, root: Any) -> list[tuple[str, list[tuple[str, Any]]]]:
    """The layers of an open file, in Keras 2's layout (see :func:`_read`)."""
    import numpy as np

    group = root["model_weights"] if "layer_names" not in root.attrs and "model_weights" in root else root
    names = _attribute(group, "layer_names")
    if not names:
        raise WeightsFileError(
            f"{path} is not in Keras' HDF5 weights layout (no `layer_names` attribute)",
            "expected the .h5 file keras.applications downloads for weights='imagenet'",
        )
    layers = []
    for name in names:
        if name not in group:
            raise WeightsFileError(f"{path}: layer {name!r} is listed but has no group")
        weight_names = _attribute(group[name], "weight_names")
        missing = [w for w in weight_names if w not in group[name]]
        if missing:
            raise WeightsFileError(
                f"{path}: layer {name!r} lists the weight {missing[0]!r}, which the file does not hold "
                "(a damaged or incomplete file)",
                "expected a Keras .h5 weights file, e.g. one keras.applications downloads",
            )
        if weight_names:
            layers.append((name, [(w, np.asarray(group[name][w])) for w in weight_names]))
    return layers


def finalize_loaded(layers: Iterable[Any]) -> None:
    """Let each layer whose variables were just assigned derive its state from them, as Keras'
    own loaders do. An adapted ``Normalization`` computes its mean and variance tensors from its
    ``adapt_mean``/``adapt_variance`` variables once, when it is built or adapted: assigning the
    variables alone would leave it normalising with the values it was built with."""
    for layer in layers:
        finalize = getattr(layer, "finalize_state", None)
        if callable(finalize):
            finalize()


#: One layer's arrays as a weights file holds them: (layer name, [(weight name, array)]).
StoredLayer = tuple[str, list[tuple[str, Any]]]


def fold_imagenet_rescaling(layers: list[StoredLayer], keras_name: str) -> list[StoredLayer]:
    """keras.applications' ImageNet file of ``keras_name`` with the rescaling that only that
    function's ImageNet model has folded into its first normalization's variance
    (:data:`~cnnspec.spec.weights.IMAGENET_VARIANCE_SCALE`; EfficientNet B0–B7), so that a zoo
    model built as ``weights=None`` builds it computes what the ImageNet model does. Any other
    file is returned as it is."""
    import numpy as np

    from cnnspec.spec.weights import IMAGENET_VARIANCE_SCALE

    scale = IMAGENET_VARIANCE_SCALE.get(keras_name)
    for index, (layer, weights) in enumerate(layers if scale is not None else ()):
        kinds = [name.rsplit("/", 1)[-1].split(":")[0] for name, _ in weights]
        if "mean" in kinds and "variance" in kinds:  # a Normalization's mean, variance, count
            at = kinds.index("variance")
            folded = [
                (name, np.asarray(array) * np.asarray(scale, np.asarray(array).dtype) if k == at else array)
                for k, (name, array) in enumerate(weights)
            ]
            return [*layers[:index], (layer, folded), *layers[index + 1 :]]
    return layers


def _application_name(name: str | None, model_name: str) -> str:
    """``keras_name`` as keras.applications names the function: given (a zoo variant's name,
    such as ``efficientnet_b0``, stands for its function's), else the one of the zoo variant the
    model was built as (a zoo model is named after its variant). An unknown name, or one of
    another function than the model's variant, is refused: the file's model would be
    unmatched without a word."""
    from cnnspec.spec.zoo import variants

    known = variants()
    built_as = known[model_name].keras_name if model_name in known else ""
    if not name:
        return built_as
    if name in known:
        name = known[name].keras_name
    elif name not in {variant.keras_name for variant in known.values()}:
        raise WeightsFileError(
            f"expected keras_name to be a keras.applications function the zoo has (EfficientNetB0) or "
            f"a zoo variant (efficientnet_b0); received {name!r}",
            "`cnnspec zoo` lists the variants",
        )
    if built_as and name != built_as:
        raise WeightsFileError(
            f"expected keras_name {built_as!r} for the model {model_name!r}; received {name!r}",
            "pass the keras.applications function whose file it is, or leave keras_name out",
        )
    return name


def _first_extra(ours: list[Any], stored: list[str]) -> str:
    """The first layer with weights that one side has and the other lacks (``ours``: the
    model's layers with weights; ``stored``: the file's layer names, in order), and the last
    pair before it, which fit: a file saved without the top names the model's ``predictions``."""
    index = min(len(ours), len(stored))
    if len(ours) > len(stored):
        first = f"the model's {ours[index].name!r} ({type(ours[index]).__name__}), which the file lacks"
    else:
        first = f"{stored[index]!r} in the file, which the model lacks"
    text = f"the first that differs is layer #{index} with weights, {first}"
    if index == 0:
        return text
    return (
        f"{text}; the layers before it fit, the last {stored[index - 1]!r} in the file and the "
        f"model's {ours[index - 1].name!r}"
    )


def load_keras_application_weights(
    model: keras.Model, path: str | Path, keras_name: str | None = None
) -> keras.Model:
    """Load a keras.applications weights file (Keras 2's HDF5 layout, as downloaded for
    ``weights="imagenet"``) into ``model`` by layer order, as Keras itself loads it.

    Every layer with weights must match the file's layer at the same position in weight count
    and shapes; otherwise :class:`WeightsFileError` names both layers and nothing is assigned.
    ``keras_name``: the keras.applications function whose ImageNet file it is
    (``EfficientNetB0``, or the zoo variant ``efficientnet_b0``; default: the zoo variant the
    model was built as, by its name): where its ImageNet model has a layer more than the zoo's
    (:func:`fold_imagenet_rescaling`), that layer's effect is loaded too. Returns ``model``."""
    file = Path(path)
    if not file.is_file():
        raise WeightsFileError(f"no such weights file: {file}")
    stored = fold_imagenet_rescaling(_read(file), _application_name(keras_name, model.name))
    ours = [layer for layer in model.layers if layer.weights]
    plan = []
    for index, (layer, (name, values)) in enumerate(zip(ours, stored)):
        # Keras 2's order: trainable weights first, then the non-trainable ones (batch norm stats)
        variables = layer.trainable_weights + layer.non_trainable_weights
        expected = [tuple(v.shape) for v in variables]
        received = [tuple(array.shape) for _, array in values]
        if expected != received:
            raise WeightsFileError(
                f"{file}: layer #{index} with weights, {name!r} in the file, has weight shapes "
                f"{received}; the model's {layer.name!r} ({type(layer).__name__}) expects {expected}",
                "check include_top, classes and input_shape against the file's model",
            )
        plan.extend(zip(variables, (array for _, array in values)))
    if len(stored) != len(ours):
        # every layer both have fits: the first that differs is the first one side lacks
        raise WeightsFileError(
            f"{file} holds weights for {len(stored)} layers; the model has {len(ours)} layers with "
            f"weights: {_first_extra(ours, [name for name, _ in stored])}",
            "the file was saved from another architecture (or with another include_top)",
        )
    for variable, array in plan:
        variable.assign(array)
    finalize_loaded(ours)
    return model
