"""How far a classifier's confidence can be trusted: its calibration on the test split.

A model is calibrated when, of the images it classifies with 80 % confidence, 80 % are right.
The images are put into :data:`BINS` equal bins of their top-class confidence (the largest class
probability); each bin's accuracy is compared with its mean confidence:

- **ECE** (expected calibration error, Guo et al. 2017): the mean of ``|accuracy − confidence|``
  over the bins, weighted by how many images each holds;
- **MCE** (maximum calibration error): the largest gap of a bin with images;
- **Brier score**: the mean over images of ``Σ_k (p_k − y_k)²``, with ``y`` the true class's
  one-hot row (0 for a perfect model, 2 at worst), where the class probabilities are known;
- **over/underconfidence**: the mean confidence less the accuracy.

``cnnspec evaluate`` keeps it in ``evaluation.json`` (``calibration``), ``cnnspec visualize RUN
calibration`` draws the reliability diagram (:func:`~cnnspec.reporting.figures.reliability_png`),
and report.html shows both. Images whose outputs are not numbers (a diverged run) have no
confidence: they are left out and counted. TF-free.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

# The predicted class of a test image whose outputs are not all finite numbers (a diverged
# run): no class at all, so it never equals a true class (``argmax`` of a NaN row is 0, which
# made every such image a "correct" prediction of class 0). One value with the test metrics'.
from cnnspec.training.metrics import NO_PREDICTION


def decided(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(predicted classes, confidences) of class probabilities (n, classes): a row with a NaN
    or infinite value is :data:`NO_PREDICTION` with a NaN confidence."""
    probs = np.asarray(probs, dtype="float64")
    finite = np.isfinite(probs).all(axis=1) if probs.size else np.ones(len(probs), dtype=bool)
    predicted = np.where(finite, probs.argmax(axis=1) if probs.size else 0, NO_PREDICTION)
    confidence = np.where(finite, probs.max(axis=1) if probs.size else 0.0, np.nan)
    return predicted.astype("int64"), confidence


#: Equal-width confidence bins between 0 and 1 (15, as Guo et al. measure ECE).
BINS = 15


@dataclass(frozen=True)
class Bin:
    """The images whose confidence lies in ``(low, high]`` (the first bin also holds 0)."""

    low: float
    high: float
    images: int
    confidence: float | None  # mean confidence (None: an empty bin)
    accuracy: float | None  # fraction classified right


@dataclass(frozen=True)
class Calibration:
    """A classifier's calibration over ``images`` test images (see the module's docstring)."""

    bins: tuple[Bin, ...]
    images: int
    ece: float
    mce: float
    confidence: float  # mean top-class confidence
    accuracy: float
    brier: float | None = None
    left_out: int = 0  # images without a confidence (outputs that are not numbers)
    #: what ``images`` and each bin's count are of: ``images``, or a multi-label output's
    #: ``labels`` and a segmentation's ``pixels`` (each a decision of its own)
    counts: str = "images"

    @property
    def overconfidence(self) -> float:
        """Mean confidence less accuracy: above 0 the model is surer than it is right."""
        return self.confidence - self.accuracy

    def describe(self) -> dict[str, Any]:
        """The ``calibration`` object of evaluation.json."""
        return {
            "bins": len(self.bins),
            "images": self.images,
            "ece": _rounded(self.ece),
            "mce": _rounded(self.mce),
            "brier": None if self.brier is None else _rounded(self.brier),
            "mean_confidence": _rounded(self.confidence),
            "accuracy": _rounded(self.accuracy),
            "left_out": self.left_out,
            "counts": self.counts,
            "reliability": [
                {
                    "low": round(b.low, 6),
                    "high": round(b.high, 6),
                    "images": b.images,
                    "confidence": None if b.confidence is None else _rounded(b.confidence),
                    "accuracy": None if b.accuracy is None else _rounded(b.accuracy),
                }
                for b in self.bins
            ],
        }

    @classmethod
    def read(cls, described: dict[str, Any]) -> Calibration:
        """The calibration :meth:`describe` wrote (evaluation.json's ``calibration``)."""
        return cls(
            bins=tuple(
                Bin(row["low"], row["high"], row["images"], row["confidence"], row["accuracy"])
                for row in described["reliability"]
            ),
            images=described["images"],
            ece=described["ece"],
            mce=described["mce"],
            confidence=described["mean_confidence"],
            accuracy=described["accuracy"],
            brier=described["brier"],
            left_out=described["left_out"],
            counts=str(described.get("counts", "images")),  # (documents before it: images)
        )

    def line(self, what: str = "calibration") -> str:
        """One line for a terminal or a caption: the errors and which way the model leans
        (``what``: how the line begins)."""
        if not self.images:
            return f"{what}: no test image has a confidence (the outputs are not numbers)"
        gap = self.overconfidence
        lean = (
            "overconfident" if gap > 0.005 else "underconfident" if gap < -0.005 else "about as sure as right"
        )
        text = (
            f"{what}: ECE {self.ece:.2%}, MCE {self.mce:.2%} over {len(self.bins)} bins; "
            f"mean confidence {self.confidence:.2%} against accuracy {self.accuracy:.2%} ({lean})"
        )
        if self.brier is not None:
            text += f"; Brier score {self.brier:.4f}"
        if self.left_out:
            text += f"; {self.left_out:,} image(s) without a confidence left out"
        return text


def _rounded(value: float) -> float:
    return round(float(value), 6)


def calibration(
    confidence: np.ndarray,
    correct: np.ndarray,
    *,
    probabilities: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    bins: int = BINS,
) -> Calibration:
    """The calibration of top-class ``confidence`` (n,) against whether each prediction was
    ``correct`` (n,); with the class ``probabilities`` (n, classes) and true ``labels`` (n,)
    also the Brier score. A NaN confidence (outputs that are not numbers) is left out."""
    confidence = np.asarray(confidence, dtype="float64").reshape(-1)
    correct = np.asarray(correct, dtype=bool).reshape(-1)
    known = np.isfinite(confidence)
    left_out = int((~known).sum())
    conf, right = np.clip(confidence[known], 0.0, 1.0), correct[known]
    edges = np.linspace(0.0, 1.0, bins + 1)
    # (low, high]: a confidence of exactly 1 is in the last bin, 0 in the first
    index = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    table: list[Bin] = []
    ece = mce = 0.0
    for b in range(bins):
        inside = index == b
        count = int(inside.sum())
        if not count:
            table.append(Bin(float(edges[b]), float(edges[b + 1]), 0, None, None))
            continue
        mean_conf, accuracy = float(conf[inside].mean()), float(right[inside].mean())
        gap = abs(accuracy - mean_conf)
        ece += count / len(conf) * gap
        mce = max(mce, gap)
        table.append(Bin(float(edges[b]), float(edges[b + 1]), count, mean_conf, accuracy))
    brier = None
    if probabilities is not None and labels is not None:
        probs = np.asarray(probabilities, dtype="float64")[known]
        truth = np.asarray(labels).reshape(-1)[known].astype("int64")
        if len(probs) and probs.ndim == 2 and truth.min() >= 0 and truth.max() < probs.shape[1]:
            onehot = np.zeros_like(probs)
            onehot[np.arange(len(probs)), truth] = 1.0
            brier = float(((probs - onehot) ** 2).sum(axis=1).mean())
    return Calibration(
        bins=tuple(table),
        images=len(conf),
        ece=ece,
        mce=mce,
        confidence=float(conf.mean()) if len(conf) else 0.0,
        accuracy=float(right.mean()) if len(conf) else 0.0,
        brier=brier,
        left_out=left_out,
    )


#: How the calibration of a segmentation's pixels is introduced (:func:`of_pixels`).
PIXELS = "calibration of the pixels (each pixel a decision of its own)"
#: The most pixels :func:`pixel_rows` keeps: a seeded sample of them beyond (a test split of
#: 500 images of 512×512 holds 131 M pixels; 250,000 put each bin's accuracy within a few
#: tenths of a point).
MAX_PIXELS = 250_000


def pixel_rows(
    probabilities: np.ndarray, masks: np.ndarray, limit: int = MAX_PIXELS
) -> tuple[np.ndarray, np.ndarray]:
    """Every pixel of a segmentation's class probability maps (n, height, width, classes), or
    of a 1-channel sigmoid map (each pixel ``[1 - p, p]``), as a class row with its true class
    from ``masks`` (n, height, width[, 1]): how the calibration, and a temperature's fit, take
    a segmentation. Beyond ``limit`` pixels, a sample of ``limit`` of them, seeded (the same
    pixels every time), in their order."""
    p = np.asarray(probabilities, dtype="float64")
    rows = p.reshape(-1, p.shape[-1])
    if rows.shape[1] == 1:
        rows = np.concatenate([1.0 - rows, rows], axis=1)
    labels = np.asarray(masks).reshape(-1).astype("int64")
    if len(rows) > limit:
        keep = np.sort(np.random.default_rng(0).choice(len(rows), size=limit, replace=False))
        rows, labels = rows[keep], labels[keep]
    return rows, labels


def of_pixels(probabilities: np.ndarray, masks: np.ndarray, bins: int = BINS) -> Calibration:
    """The calibration of a segmentation output: each pixel a decision of its own, its
    confidence the top class probability (:func:`pixel_rows`); its counts are of pixels."""
    return replace(of_probabilities(*pixel_rows(probabilities, masks), bins=bins), counts="pixels")


#: How the calibration of a multi-label output's labels is introduced (:func:`of_labels`).
LABELS = "calibration of the labels (each label of each image, decided at 0.5)"


def label_rows(probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (image, label) decision of a multi-label output as a two-class row ``[1 - p, p]``
    with its 0/1 target: how the calibration, and a temperature's fit, take labels (a
    temperature of the rows is the labels' own, ``sigmoid(logit(p) / T)``)."""
    p = np.asarray(probabilities, dtype="float64").reshape(-1)
    return np.stack([1.0 - p, p], axis=1), np.asarray(labels).reshape(-1).astype("int64")


def of_labels(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> Calibration:
    """The calibration of a multi-label output: its label ``probabilities`` (n, labels) against
    the 0/1 ``labels`` (n, labels), every label of every image a decision of its own
    (:func:`label_rows`: confidence ``max(p, 1 - p)``, right where ``p > 0.5`` says the label's
    presence or absence right); its Brier score is twice the mean squared error of ``p``; its
    counts are of labels."""
    return replace(of_probabilities(*label_rows(probabilities, labels), bins=bins), counts="labels")


def of_probabilities(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> Calibration:
    """The calibration of class ``probabilities`` (n, classes) for true class ``labels`` (n,):
    the top class is the prediction; a row that is not all numbers is left out."""
    predicted, confidence = decided(probabilities)
    labels = np.asarray(labels).reshape(-1)
    return calibration(confidence, predicted == labels, probabilities=probabilities, labels=labels, bins=bins)
