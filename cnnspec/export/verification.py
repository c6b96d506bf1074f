"""How an export is checked against its Keras model: the largest difference of their outputs
(NaN-aware: a NaN or infinity in one and not the other is a mismatch, never a difference of 0),
and, for quantized exports whose numbers are expected to move, the share of decisions the export
still makes as Keras does (argmax per sample or per pixel, thresholds per unit; none for a
regression). Plain NumPy on the outputs both runtimes gave for one seeded batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Largest absolute difference accepted between Keras and a float (unquantized) export, plus
#: :data:`FLOAT_RTOL` of the Keras value for an output not within [0, 1] (float32 rounds each
#: value relative to its size: outputs in the hundreds differ by more than 1e-4, correctly).
FLOAT_TOLERANCE = 1e-4
FLOAT_RTOL = 1e-4


class ExportMismatch(Exception):
    """The exported model's outputs differ from the Keras model's beyond the tolerance."""

    def __init__(self, message: str, max_abs_diff: float) -> None:
        super().__init__(message)
        self.max_abs_diff = max_abs_diff


@dataclass(frozen=True)
class Decision:
    """The decision a model's output makes, which a quantized export must keep: ``argmax``
    (the class with the highest value along the last axis: a classifier's top-1, a
    segmentation's class per pixel) or ``threshold`` (each unit on its own, at or above
    ``threshold`` on the output's raw values: a binary output's class, a multi-label output's
    labels). A regression output makes none (``None`` where a decision is expected)."""

    kind: str
    threshold: float = 0.5

    def describe(self) -> str:
        """How the agreement was measured, for the printed line and the record."""
        if self.kind == "argmax":
            return "argmax over the last axis"
        return f"threshold {self.threshold:g} per unit"


def output_decisions(meta: dict[str, Any] | None, model: Any) -> list[Decision | None]:
    """The :class:`Decision` of each of ``model``'s outputs (``None``: none, a regression).

    From the record's serving ``meta`` (:func:`serving_meta`) when there is one: its
    ``outputs`` entries say each output's task (a multi-label or one-unit output carries its
    ``threshold`` on the raw values), a single classifier's ``output`` whether it is one
    sigmoid unit and gives logits; pass it only when a run's spec describes the model (the
    meta of a bare ``.keras`` guesses its ``output`` from the shape). Without (a model no spec
    describes, in any format), from each output layer's activation: softmax is argmax, sigmoid a 0.5
    threshold per unit, and anything else is unknown (a logits classifier and a regression
    can't be told apart there), so no decision is claimed."""
    count = len(model.outputs)
    if meta is not None and meta.get("outputs"):
        decisions = [entry_decision(entry) for entry in meta["outputs"]]
        return (decisions + [None] * count)[:count]
    if meta is not None:  # a single classifier (with a run, its loss says how to read it)
        output = meta["output"]
        if output.get("binary"):
            first = Decision("threshold", 0.0 if output.get("from_logits") else 0.5)
        else:
            first = Decision("argmax")
        return [first] + [None] * (count - 1)
    return [_activation_decision(tensor) for tensor in model.outputs]


def entry_decision(entry: dict[str, Any]) -> Decision | None:
    """The :class:`Decision` of the output a record's ``outputs`` entry describes
    (:func:`~cnnspec.export.runtimes.describe_output`): a threshold on the raw values for a
    multi-label or one-unit output, argmax for a classification or segmentation, none for a
    regression."""
    if "threshold" in entry:  # multilabel, or one sigmoid unit (binary)
        return Decision("threshold", float(entry["threshold"]))
    if entry.get("task") in ("classification", "segmentation"):
        return Decision("argmax")
    return None


def _activation_decision(tensor: Any) -> Decision | None:
    """An output's :class:`Decision` from the activation of the layer that makes it."""
    history = getattr(tensor, "_keras_history", None)
    layer = getattr(history, "operation", None) or (history[0] if isinstance(history, tuple) else None)
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None) or (activation if isinstance(activation, str) else "")
    if name == "softmax" and int(tensor.shape[-1]) > 1:
        return Decision("argmax")
    if name == "sigmoid":
        return Decision("threshold", 0.5)
    return None


def _non_finite_problem(want: np.ndarray, got: np.ndarray) -> str | None:
    """Where ``got`` (the export) is NaN or infinite and ``want`` (Keras) is not the same, or
    the reverse; ``None`` when both are finite, or non-finite alike, everywhere.

    Why a NaN in both at the same place counts as equal: a runtime that answers NaN where Keras
    does answers as the model does. :func:`export_model` never gets there, though: it refuses a
    model whose Keras outputs are not finite before converting it (an export of a broken model
    is no verified export), so this rule matters only to other callers of :func:`compare`."""
    want_nan, got_nan = np.isnan(want), np.isnan(got)
    want_inf, got_inf = np.isinf(want), np.isinf(got)
    nan_gap = want_nan != got_nan
    # an infinity matches only the same infinity (inf - inf is NaN: no difference to measure)
    inf_gap = (want_inf | got_inf) & ~(want_nan | got_nan) & ~(want_inf & got_inf & (want == got))
    bad = nan_gap | inf_gap
    if not bad.any():
        return None
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    return (
        f"{int(bad.sum())} of {bad.size} value(s) are NaN or infinite in one and not the other "
        f"(the first at {index}: Keras {float(want[index]):g}, the export {float(got[index]):g})"
    )


def max_difference(expected: list[np.ndarray], actual: list[np.ndarray]) -> float:
    """The largest absolute difference between Keras' outputs and the export's, NaN-aware.

    Raises :class:`ExportMismatch` when the outputs differ in number or shape, or when a value
    is NaN or infinite in one and not (the same) in the other: ``np.max`` of a difference with
    a NaN is NaN, and ``max(0.0, nan)`` is 0.0, so an all-NaN export once "verified" with a
    difference of 0. Positions that are non-finite alike in both are left out of the figure."""
    if len(expected) != len(actual):
        raise ExportMismatch(f"expected {len(expected)} output(s); the export has {len(actual)}", np.inf)
    worst = 0.0
    for number, (want, got) in enumerate(zip(expected, actual)):
        want = np.asarray(want, dtype="float32")
        got = np.asarray(got, dtype="float32")
        if want.shape != got.shape:
            raise ExportMismatch(f"expected an output of shape {want.shape}; received {got.shape}", np.inf)
        problem = _non_finite_problem(want, got)
        if problem is not None:
            which = f"output {number}" if len(expected) > 1 else "the output"
            raise ExportMismatch(f"in {which}, {problem}", np.inf)
        finite = np.isfinite(want) & np.isfinite(got)
        if finite.any():
            worst = max(worst, float(np.max(np.abs(want[finite] - got[finite]))))
    return worst


def tolerance_rule(atol: float, rtol: float) -> str:
    """The float exports' tolerance in words, for messages and the export's record."""
    return (
        f"|export - Keras| <= {atol:g} + {rtol:g} × the output's largest |Keras| value ({atol:g} "
        "alone for an output whose Keras values all lie within [0, 1]: probabilities)"
    )


def unit_range(values: np.ndarray) -> bool:
    """Whether an output's (finite) Keras ``values`` all lie within [0, 1] (a classifier's
    probabilities, a mask): its tolerance is then the absolute bound alone, without the part
    relative to its magnitude (:func:`tolerance_excess`)."""
    return bool(np.all((values >= 0) & (values <= 1)))


def absolute_only(expected: list[np.ndarray]) -> list[bool]:
    """For each of the Keras model's outputs, whether its tolerance is the absolute bound alone
    (:func:`unit_range` of its finite values): what the export's printed line says it checked."""
    found = []
    for want in expected:
        want = np.asarray(want, dtype="float64")
        found.append(unit_range(want[np.isfinite(want)]))
    return found


def tolerance_excess(
    expected: list[np.ndarray], actual: list[np.ndarray], atol: float, rtol: float
) -> tuple[float, str]:
    """How far the export's worst value is from Keras', as a share of what the tolerance allows
    it (at most 1: within), and that value in words.

    The tolerance scales with the output's magnitude (its largest absolute Keras value): float32
    rounds each value to about 1e-7 of itself, so an output in the hundreds differs by 1e-4
    after a few layers of correct arithmetic, and a fixed absolute bound refused correct exports
    of regressions and of models with large values inside. The output's magnitude, not each
    value's (``numpy.allclose``): a small value computed from large ones (a difference, a
    rescaled head) carries their rounding. An output whose values all lie within [0, 1] (a
    classifier's probabilities, a mask) keeps the absolute bound alone.
    Call it after :func:`max_difference` (which refuses shapes and NaN that differ)."""
    worst, where = 0.0, ""
    for number, (want, got) in enumerate(zip(expected, actual)):
        want = np.asarray(want, dtype="float64")
        got = np.asarray(got, dtype="float64")
        finite = np.isfinite(want) & np.isfinite(got)
        if not finite.any():
            continue
        unit = unit_range(want[finite])
        allowed = atol + (0.0 if unit else rtol) * float(np.max(np.abs(want[finite])))
        ratio = np.where(finite, np.abs(want - got) / allowed, 0.0)
        index = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        if float(ratio[index]) > worst or not where:
            worst = float(ratio[index])
            which = f"output {number} " if len(expected) > 1 else ""
            place = tuple(int(i) for i in index)
            where = f"{which}at {place}: Keras {want[index]:.6g}, the export {got[index]:.6g}"
    return worst, where


def decision_agreement(
    expected: list[np.ndarray], actual: list[np.ndarray], decisions: list[Decision | None]
) -> float | None:
    """The share of decisions the export makes as Keras does: per sample for a classifier's
    argmax, per pixel for a segmentation's, per unit for thresholded (binary, multi-label)
    outputs. Over several outputs with decisions, the lowest share (the output most changed);
    ``None`` when no output makes a decision (regression)."""
    shares: list[float] = []
    for want, got, decision in zip(expected, actual, decisions):
        want, got = np.asarray(want), np.asarray(got)
        if decision is None or want.size == 0:
            continue
        if decision.kind == "argmax":
            same = np.argmax(want, axis=-1) == np.argmax(got, axis=-1)
        else:
            same = (want >= decision.threshold) == (got >= decision.threshold)
        shares.append(float(np.mean(same)))
    return min(shares) if shares else None


#: Why an output of a model no spec describes makes no decision (:func:`agreement_basis`).
UNKNOWN_TASK = (
    "no decision for an output without softmax or sigmoid: no spec says its task "
    "(a regression or a classifier's logits)"
)


def agreement_basis(decisions: list[Decision | None], *, task_known: bool = True) -> str | None:
    """What :func:`decision_agreement` measured, in words (``None``: nothing).

    ``task_known``: whether a spec said the outputs' tasks. When none did (the decisions were
    read from the activations, :func:`output_decisions` without ``meta``), an output without
    a decision is unknown rather than a regression, and the basis says so
    (:data:`UNKNOWN_TASK`), also when that leaves nothing counted."""
    kinds = sorted({d.describe() for d in decisions if d is not None})
    if not task_known and any(d is None for d in decisions):
        kinds.append(UNKNOWN_TASK)
    return "; ".join(kinds) if kinds else None


def compare(
    expected: list[np.ndarray], actual: list[np.ndarray], decisions: list[Decision | None] | None = None
) -> tuple[float, float | None]:
    """:func:`max_difference` over all outputs, and :func:`decision_agreement` (``decisions``:
    each output's, by default argmax over the last axis of every output with more than one
    unit, which is what a caller without the model's tasks can assume)."""
    if decisions is None:
        decisions = [
            Decision("argmax") if np.ndim(want) >= 2 and np.shape(want)[-1] > 1 else None for want in expected
        ]
    worst = max_difference(expected, actual)
    return worst, decision_agreement(expected, actual, decisions)


def non_finite_outputs(outputs: list[np.ndarray]) -> str | None:
    """What of the model's own outputs is NaN or infinite (``None``: all finite)."""
    for number, out in enumerate(outputs):
        bad = ~np.isfinite(out)
        if bad.any():
            which = f"output {number}" if len(outputs) > 1 else "its output"
            return f"{int(bad.sum())} of {bad.size} values of {which} are NaN or infinite"
    return None
