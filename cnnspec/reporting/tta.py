"""Test-time augmentation: ``--tta hflip`` (``vflip``, ``hflip,vflip``) of ``cnnspec evaluate``
and ``cnnspec predict``.

A classifier's class probabilities for an image are the mean of its probabilities for the
image as it is and for each view asked for: the image mirrored left to right (``hflip``) or
top to bottom (``vflip``). Only mirrors: they move no pixel off the image and add none, so
every runtime (Keras, ONNX, TFLite) sees the same batches, flipped in NumPy. It helps where
the classes look alike mirrored (most photographs left to right; digits and text not).
TensorFlow-free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cnnspec.errors import UsageError, did_you_mean
from cnnspec.reporting.run import OutputKind

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


def refuse_tasks(tasks: Sequence[Any], command: str) -> None:
    """``--tta`` is for classifiers: refuse a model whose outputs (``tasks``) are anything else,
    with the ``command`` to run without it."""
    raise UsageError(
        "expected a classifier (one output of classes) for --tta; this model's outputs are "
        + ", ".join(f"{t.name} ({t.task})" for t in tasks),
        f"{command} without --tta",
    )


def describe(views: tuple[str, ...]) -> str:
    """``its mirror image left to right`` (and …)."""
    return "its " + " and its ".join(VIEWS[view] for view in views)


def averaged(
    probabilities: Callable[[np.ndarray], np.ndarray], views: tuple[str, ...]
) -> Callable[..., np.ndarray]:
    """A function of a scaled batch: the mean of ``probabilities`` over the batch and each of
    its ``views``."""

    def mean(batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch)
        seen = [batch, *(np.ascontiguousarray(np.flip(batch, axis=_AXIS[view])) for view in views)]
        return np.mean([np.asarray(probabilities(x), dtype="float64") for x in seen], axis=0)

    return mean


def as_outputs(probs: np.ndarray, kind: OutputKind) -> np.ndarray:
    """Raw outputs that :func:`cnnspec.reporting.run.probabilities` reads as ``probs`` (n,
    classes) for a model of ``kind``: log-probabilities for logits, one column for a sigmoid
    unit. The evaluation and the predictions then take the averaged probabilities as they take
    a model's outputs."""
    p = np.clip(np.asarray(probs, dtype="float64"), 1e-12, 1.0)
    if kind.binary:
        q = np.clip(p[:, 1], 1e-12, 1 - 1e-12)
        return (np.log(q / (1 - q)) if kind.from_logits else q)[:, None]
    return np.log(p) if kind.from_logits else p
