"""Test-time augmentation: ``--tta hflip`` (``vflip``, ``hflip,vflip``) of ``cnnspec evaluate``
and ``cnnspec predict``.

A model's answer for an image is the mean of its answers for the image as it is and for each
view asked for: the image mirrored left to right (``hflip``) or top to bottom (``vflip``).
Only mirrors: they move no pixel off the image and add none, so every runtime (Keras, ONNX,
TFLite) sees the same batches, flipped in NumPy. It helps where the classes look alike
mirrored (most photographs left to right; digits and text not).

- A classifier's class probabilities are averaged (:func:`averaged`).
- A model of other tasks (:func:`averaged_outputs`) has each output averaged as
  probabilities: a multi-label output's label probabilities, and a segmentation's class
  probabilities per pixel, its maps of a mirror image mirrored back first, so that each pixel
  is averaged with itself. A regression is refused with ``--tta`` (:func:`refuse_tasks`): a
  mirror image may change what a value means (a position, a direction). ``--ensemble`` alone
  averages a regression's values as they are (each member answers for the same image).

TensorFlow-free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cnnspec.errors import UsageError, did_you_mean
from cnnspec.reporting.model_graph import OutputKind
from cnnspec.reporting.stand_in import described_outputs

#: The views ``--tta`` takes, and what each is.
VIEWS = {"hflip": "mirror image left to right", "vflip": "mirror image top to bottom"}
#: The axis each view flips in a batch (images, height, width, channels).
_AXIS = {"hflip": 2, "vflip": 1}


def parse_views(text: str | None) -> tuple[str, ...]:
    """``--tta``'s comma-separated views, each once, in order (``None``: none)."""
    if text is None:
        return ()
    names = [part.strip() for part in text.split(",")]
    bad = [name for name in names if name not in VIEWS]
    if bad or not names:
        raise UsageError(
            f"expected --tta to be {', '.join(VIEWS)} or both, comma-separated; received {text!r}",
            did_you_mean(bad[0], list(VIEWS)) if bad else None,
        )
    return tuple(dict.fromkeys(names))


#: The tasks whose outputs :func:`averaged_outputs` averages.
AVERAGED_TASKS = ("classification", "multilabel", "segmentation")


def refuse_tasks(tasks: Sequence[Any], command: str) -> None:
    """Refuse ``--tta`` for a model with an output it cannot average over mirror images (a
    regression: a mirror image may change what its values mean), with the ``command`` to run
    without it. Callers check it only where views are asked for: ``--ensemble`` alone averages
    a regression's values (:func:`averaged_outputs`)."""
    if all(t.task in AVERAGED_TASKS for t in tasks):
        return
    raise UsageError(
        "expected classification, multi-label or segmentation outputs for --tta (a mirror image may "
        "change what a regression's value means); this model's outputs are " + described_outputs(tasks),
        f"{command} without --tta",
    )


def describe(views: tuple[str, ...]) -> str:
    """``its mirror image left to right`` (and …)."""
    return "its " + " and its ".join(VIEWS[view] for view in views)


def averaged(
    models: Sequence[Callable[[np.ndarray], np.ndarray]], views: tuple[str, ...]
) -> Callable[..., np.ndarray]:
    """A function of a scaled batch: the mean of the class probabilities each of ``models``
    gives (one, or the members of ``--ensemble``) for the batch and each of its ``views``."""

    def mean(batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch)
        seen = [batch, *(np.ascontiguousarray(np.flip(batch, axis=_AXIS[view])) for view in views)]
        return np.mean([np.asarray(model(x), dtype="float64") for model in models for x in seen], axis=0)

    return mean


def as_outputs(probs: np.ndarray, kind: OutputKind) -> np.ndarray:
    """Raw outputs that :func:`cnnspec.reporting.predictions.probabilities` reads as ``probs`` (n,
    classes) for a model of ``kind``: log-probabilities for logits, one column for a sigmoid
    unit. The evaluation and the predictions then take the averaged probabilities as they take
    a model's outputs."""
    p = np.clip(np.asarray(probs, dtype="float64"), 1e-12, 1.0)
    if kind.binary:
        q = np.clip(p[:, 1], 1e-12, 1 - 1e-12)
        return (np.log(q / (1 - q)) if kind.from_logits else q)[:, None]
    return np.log(p) if kind.from_logits else p


def averaged_outputs(
    models: Sequence[Callable[[np.ndarray], Any]], views: tuple[str, ...], tasks: Sequence[Any]
) -> Callable[[np.ndarray], Any]:
    """A function of a scaled batch: the raw outputs of each of ``models`` (an array, or a list
    in the order of ``tasks``) averaged over the models, the batch and each of its ``views``,
    output by output as probabilities (a segmentation's maps mirrored back first; a regression's
    values as they are), then read back as raw outputs of the same kind. ``tasks``: every
    output's task (checked by :func:`refuse_tasks` first where ``views`` are given)."""

    def mean(batch: np.ndarray) -> Any:
        batch = np.asarray(batch)
        sums: list[np.ndarray] = []
        listed = False
        seen = [(None, batch)]
        seen += [(view, np.ascontiguousarray(np.flip(batch, axis=_AXIS[view]))) for view in views]
        for model in models:
            for view, images in seen:
                answer = model(images)
                listed = isinstance(answer, (list, tuple))
                parts = list(answer) if listed else [answer]
                for index, (part, task) in enumerate(zip(parts, tasks, strict=True)):
                    probs = as_probabilities(np.asarray(part, dtype="float64"), task)
                    if view is not None and task.task == "segmentation":
                        probs = np.flip(probs, axis=_AXIS[view])  # each pixel back in its place
                    if index < len(sums):
                        sums[index] = sums[index] + probs
                    else:
                        sums.append(probs)
        count = len(models) * len(seen)
        back = [_as_raw(total / count, task) for total, task in zip(sums, tasks, strict=True)]
        return back if listed else back[0]

    return mean


def _kind(task: Any) -> OutputKind:
    return OutputKind(binary=task.binary, from_logits=task.loss.from_logits)


def as_probabilities(raw: np.ndarray, task: Any) -> np.ndarray:
    """An output's raw values as probabilities: a classifier's classes (reporting/predictions.py's
    reading), a sigmoid's (multi-label, a one-channel mask) or a softmax's over the last axis; a
    regression's values as they are (their mean is the ensemble's value)."""
    from cnnspec.reporting.predictions import label_probabilities, probabilities, softmax

    if task.task == "regression":
        return raw
    if task.task == "classification":
        return probabilities(raw, _kind(task))
    if task.task == "multilabel" or task.binary:
        return label_probabilities(raw, task.loss.from_logits)
    return softmax(raw) if task.loss.from_logits else raw


def _as_raw(probs: np.ndarray, task: Any) -> np.ndarray:
    """:func:`as_probabilities` read back: logits (log-odds, or log-probabilities, which a
    softmax reads as the same probabilities) where the model answers in logits."""
    if task.task == "classification":
        return as_outputs(probs, _kind(task))
    if task.task == "regression" or not task.loss.from_logits:
        return probs
    p = np.clip(probs, 1e-12, 1 - 1e-12)
    if task.task == "multilabel" or task.binary:
        return np.log(p / (1 - p))
    return np.log(p)
