"""A temperature folded into a model's weights, so that an export answers calibrated.

Temperature scaling (:mod:`cnnspec.reporting.temperature`) divides a classifier's class scores
``z`` by ``T`` before its softmax (a multi-label model's before its sigmoid; a segmentation's
each pixel's). Where the scores come from a layer that is linear in its kernel and bias
(``Dense``, a convolution), dividing that kernel and bias by ``T`` divides ``z`` by ``T``: the
model then computes ``softmax(z / T)`` itself, with no layer added (no Keras ``Lambda``), in
every format it is exported to. A serving stack outside cnnspec gets the calibrated
probabilities without knowing ``T``.

The layer may reach the output through layers that only move, pool, upsample, crop or drop
values (``Flatten``, global pooling, a segmentation head's ``UpSampling2D``, dropout at
inference): each commutes with a positive factor, so ``z / T`` passes them unchanged. Anything
else between them (a normalisation, an addition of another branch) is refused with the reason
(:class:`NotFoldable`), and the exporter then keeps the model's own probabilities
(``--temperature auto``) or refuses the export (a ``--temperature`` given by number).
cnnspec's own readers of an export take the folded temperature into account
(:meth:`~cnnspec.export.runtimes.ExportRecord.remaining`).

Keras is imported inside the functions (the exporter has imported it already).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cnnspec.errors import UsageError

#: The output activations a temperature scales the input of.
SQUASHING = ("softmax", "sigmoid")
#: The weights of a layer that its output is linear in (the first present), beside its bias.
KERNELS = ("kernel", "pointwise_kernel", "depthwise_kernel")


#: How far the folded model's probabilities may be from the model's own scaled in NumPy (as
#: far as a float export may be from Keras).
TOLERANCE = 1e-4


class NotFoldable(Exception):
    """The model's head has no layer whose weights a temperature can be folded into."""


def fold_for_export(
    model: Any,
    *,
    wanted: float | None,
    run: Any,
    reading: dict[str, Any],
    model_sha256: str,
    first_output: Callable[[], np.ndarray],
    notes: list[str],
    averaged: bool = False,
    unfolded: Callable[[float], None] | None = None,
) -> float:
    """Fold the temperature ``cnnspec export`` is asked for into ``model`` (in place) and return
    it (1: none folded). ``wanted``: ``--temperature N``, or ``None`` for ``auto``: the run's
    ``temperature.json`` where it was fitted for the model bytes exported (``model_sha256``).
    ``run``: the model's run (:func:`~cnnspec.reporting.run.locate`'s); ``reading``: its serving
    meta (how its outputs are read); ``first_output``: the model's first output on the
    verification batch, taken before and after folding, which must be the model's own
    probabilities scaled by the temperature (a check of the folding, not of the export). A
    model no temperature scales, and one whose head takes none when a number was given, is a
    :class:`UsageError`; under ``auto`` that head is exported as it is, with a note (``averaged``:
    the file answers a mean over models or mirror images, which nothing scales after it).
    ``unfolded`` is called with the run's temperature that the head takes none of (``auto``,
    not averaged): the exporter records it, so that the file served alone is scaled by it as
    ``cnnspec predict RUN`` scales it."""
    from cnnspec.reporting.temperature import chosen, refuse_tasks, scaled_answer

    said: list[str] = []  # (chosen's: a stale temperature.json is said; an applied one below)
    temperature = chosen(run, wanted, said, model_sha256=model_sha256)
    if temperature == 1.0:
        notes.extend(said)
        return 1.0
    source = (
        f"--temperature {temperature:g}"
        if wanted is not None
        else f"the run's temperature {temperature:.4g} (temperature.json, fitted by cnnspec calibrate)"
    )
    tasks, kind = _reading(reading)
    refuse_tasks(tasks, temperature)
    before = first_output()
    try:
        layer = fold_temperature(model, temperature)
    except NotFoldable as exc:
        if wanted is not None:
            raise UsageError(
                f"expected a model whose class scores come from a layer a temperature can be folded "
                f"into, for --temperature {wanted:g}; {exc}",
                "--temperature 1 exports the model's own probabilities, which cnnspec evaluate and "
                "predict scale by --temperature",
            ) from None
        if averaged:  # (a mean is no model's logits: nothing can scale the file's answer)
            notes.append(
                f"the run's temperature {temperature:.4g} is not folded into the export ({exc}): "
                "the file's mean is of the model's own probabilities, unscaled"
            )
            return 1.0
        notes.append(
            f"the run's temperature {temperature:.4g} is not folded into the export ({exc}): it "
            "answers with the model's own probabilities, which cnnspec evaluate and predict scale "
            "(its record keeps the temperature, for the file served alone too); another program "
            f"divides the logits by {temperature:.4g} before the softmax (a multi-label model's: "
            "before the sigmoid)"
        )
        if unfolded is not None:
            unfolded(temperature)
        return 1.0
    expected = _probabilities(scaled_answer(before, tasks, kind, temperature), tasks, kind)
    # (where the model itself answers NaN, the exporter's own check of the model says so)
    gaps = np.abs(_probabilities(first_output(), tasks, kind) - expected)
    difference = float(np.max(gaps[np.isfinite(gaps)], initial=0.0))
    if not difference <= TOLERANCE:
        raise UsageError(
            f"folding the temperature {temperature:.4g} into layer `{layer}` did not scale the "
            f"model's probabilities as expected (max abs difference {difference:.3g}); nothing "
            "was exported",
            "--temperature 1 exports the model's own probabilities",
        )
    notes.append(
        f"{source} folded into the kernel and bias of layer `{layer}`: the export answers with the "
        "scaled probabilities itself (--temperature 1 exports the model's own)"
    )
    return temperature


def _reading(reading: dict[str, Any]) -> tuple[tuple[Any, ...] | None, Any]:
    """The tasks (``None``: a single classifier) and the first output's kind a serving meta
    describes, as a record's reader reads them."""
    from cnnspec.export.runtimes import served_reading

    if "task_unknown" in reading["output"]:
        why = reading["output"]["task_unknown"]
        raise UsageError(f"expected a model whose outputs can be told for a temperature; {why}")
    return served_reading(reading)


def _probabilities(outputs: np.ndarray, tasks: tuple[Any, ...] | None, kind: Any) -> np.ndarray:
    """The probabilities a first output's raw values say: a classifier's class probabilities
    (``tasks`` ``None``: read by ``kind``), a multi-label output's label probabilities."""
    from cnnspec.reporting.predictions import probabilities
    from cnnspec.reporting.tta import as_probabilities

    return probabilities(outputs, kind) if tasks is None else as_probabilities(outputs, tasks[0])


def fold_temperature(model: Any, temperature: float) -> str:
    """Divide the class scores of ``model``'s one output by ``temperature``, in place, by scaling
    the kernel and bias of the linear layer that makes them (:func:`scores_layer`); returns that
    layer's name. Raises :class:`NotFoldable` (nothing changed) when no such layer is found."""
    layer = scores_layer(model)
    for variable in _scaled_variables(layer):
        value = np.asarray(variable.numpy())
        variable.assign((value / np.float64(temperature)).astype(value.dtype))
    return str(layer.name)


def scores_layer(model: Any) -> Any:
    """The layer of ``model`` whose output is its one output's class scores, scaled by a
    temperature folded into its weights: the output layer itself when it is linear in its
    weights (its activation a softmax, a sigmoid or none), or, below a separate softmax or
    sigmoid layer, the linear layer that feeds it through value-moving layers only. Below
    value-moving layers without a softmax or sigmoid above them (a segmentation head's
    ``UpSampling2D`` or cropping), the linear layer's scores are the output: logits pass a
    temperature through any of them, probabilities only through layers that copy each class's
    values (a cropping, a nearest upsampling, dropout), not ones that mix them (a bilinear
    upsampling, a pooling: the mean of probabilities is no probability of scaled logits)."""
    import keras

    outputs = list(getattr(model, "outputs", None) or [])
    if len(outputs) != 1:
        raise NotFoldable(f"the model has {len(outputs)} outputs; a temperature scales a model of one")
    layer = _producer(model, outputs[0])
    if isinstance(layer, (keras.layers.Softmax, keras.layers.Activation)):
        _squashing_layer(layer, outputs[0])
        layer = _feeding(model, layer)
        while isinstance(layer, _passing()) and not _kernel_name(layer):
            layer = _feeding(model, layer)
        return _linear(layer, allowed=("linear",))
    passed = []
    while isinstance(layer, _passing()) and not _kernel_name(layer):
        passed.append(layer)
        layer = _feeding(model, layer)
    copied = all(_copies_classes(step) for step in passed)
    return _linear(layer, allowed=("linear", *SQUASHING) if copied else ("linear",))


def _copies_classes(layer: Any) -> bool:
    """Whether ``layer`` (one of :func:`_passing`'s) hands on each value of its input's last axis
    as it is, or drops it (:func:`_copying`, or a nearest upsampling, which repeats it): a
    softmax or sigmoid below it then still reaches the output as the probabilities a
    temperature scales."""
    import keras

    layers = keras.layers
    if isinstance(layer, (layers.UpSampling1D, layers.UpSampling2D, layers.UpSampling3D)):
        return getattr(layer, "interpolation", "nearest") == "nearest"
    return isinstance(layer, _copying())


def _producer(model: Any, tensor: Any) -> Any:
    """The layer of ``model`` whose output is ``tensor``."""
    for layer in model.layers:
        try:
            output = layer.output
        except (AttributeError, ValueError):  # a layer called more than once has no one output
            continue
        if output is tensor:
            return layer
    raise NotFoldable("the layer that makes the output could not be found")


def _feeding(model: Any, layer: Any) -> Any:
    """The layer whose output is ``layer``'s one input. (A functional model of one output keeps
    only the layers on a path to it, and the layers walked here take one input each: the
    scores reach the output through them alone.)"""
    try:
        tensor = layer.input
    except (AttributeError, ValueError):
        raise NotFoldable(f"layer `{layer.name}` is called more than once") from None
    if isinstance(tensor, (list, tuple)):
        raise NotFoldable(f"layer `{layer.name}` takes {len(tensor)} inputs")
    return _producer(model, tensor)


def _squashing_layer(layer: Any, output: Any) -> None:
    """Refuse an output layer that is no softmax or sigmoid over the last axis."""
    import keras

    if isinstance(layer, keras.layers.Softmax):
        axis = layer.axis
        rank = len(output.shape)
        if not isinstance(axis, int) or axis not in (-1, rank - 1):
            raise NotFoldable(f"the softmax layer `{layer.name}` is over axis {axis}, not the classes")
        return
    name = getattr(layer.activation, "__name__", "")
    if name not in SQUASHING:
        raise NotFoldable(f"the output layer `{layer.name}` is a {name or 'custom'} activation")


def _passing() -> tuple[type, ...]:
    """Layers without weights that commute with a positive factor: they move, pool, pad or
    (at inference) pass values, so a temperature folded below them reaches the output as is."""
    import keras

    layers = keras.layers
    return (
        *_copying(),
        layers.Flatten, layers.Reshape, layers.Permute,
        layers.GlobalAveragePooling1D, layers.GlobalAveragePooling2D, layers.GlobalAveragePooling3D,
        layers.GlobalMaxPooling1D, layers.GlobalMaxPooling2D, layers.GlobalMaxPooling3D,
        # (a segmentation head's: repeated or interpolated, and cropped, scores stay scores / T)
        layers.UpSampling1D, layers.UpSampling2D, layers.UpSampling3D,
    )  # fmt: skip


def _copying() -> tuple[type, ...]:
    """The layers of :func:`_passing` that hand on each value of their input's last axis as it
    is, or drop it (at inference they pass it; a cropping keeps some positions whole)."""
    import keras

    layers = keras.layers
    return (
        layers.Identity,
        layers.Dropout, layers.SpatialDropout1D, layers.SpatialDropout2D, layers.SpatialDropout3D,
        layers.GaussianDropout, layers.GaussianNoise, layers.AlphaDropout,
        layers.Cropping1D, layers.Cropping2D, layers.Cropping3D,
    )  # fmt: skip


def _kernel_name(layer: Any) -> str | None:
    """The name of the kernel ``layer``'s output is linear in (:data:`KERNELS`), if it has one."""
    for name in KERNELS:
        if getattr(layer, name, None) is not None:
            return name
    return None


def _linear(layer: Any, allowed: tuple[str, ...]) -> Any:
    """``layer`` when its output is linear in a kernel and bias of its own before an activation
    among ``allowed``; otherwise :class:`NotFoldable` says what it is."""
    kind = type(layer).__name__
    if _kernel_name(layer) is None:
        raise NotFoldable(f"the class scores come from layer `{layer.name}` ({kind}), which has no kernel")
    if getattr(layer, "lora_enabled", False):
        raise NotFoldable(f"layer `{layer.name}` has LoRA weights")
    activation = getattr(getattr(layer, "activation", None), "__name__", "linear")
    if activation not in allowed:
        raise NotFoldable(
            f"layer `{layer.name}` ({kind}) applies {activation} after its kernel, which a "
            "temperature can not pass"
        )
    return layer


def _scaled_variables(layer: Any) -> list[Any]:
    """The kernel and (when it has one) the bias of ``layer``."""
    kernel = getattr(layer, _kernel_name(layer) or "kernel")
    bias = getattr(layer, "bias", None)
    return [kernel] if bias is None else [kernel, bias]
