"""A model's answers for test images: class probabilities from raw outputs (softmax of logits,
a binary unit's two classes), a multi-label output's label probabilities, a segmentation's
maps, predicted a chunk at a time for a streamed split; and :class:`TestData`, the test split
they are computed on, with how training scaled it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnspec.reporting.model_graph import OutputKind

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.analysis.settings_types import TrainConfig
    from cnnspec.reporting.own_data import OwnImages
    from cnnspec.training.filelist import ImageFiles
    from cnnspec.training.pipeline import PipelineSettings


#: images of a streamed test split decoded at a time for a prediction
PREDICT_CHUNK = 256


def probabilities(outputs: np.ndarray, kind: OutputKind) -> np.ndarray:
    """Class probabilities (n, classes) from raw model outputs."""
    out = np.asarray(outputs, dtype="float64")
    if kind.binary:
        p = label_probabilities(out.reshape(-1), kind.from_logits)
        return np.stack([1.0 - p, p], axis=1)
    out = out.reshape(len(out), -1)
    return softmax(out) if kind.from_logits else out


def softmax(logits: Any) -> np.ndarray:
    """The softmax of ``logits`` over their last axis (a classifier's classes, a segmentation's
    classes per pixel), in float64."""
    raw = np.asarray(logits, dtype="float64")
    shifted = np.exp(raw - raw.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def label_probabilities(outputs: Any, from_logits: bool) -> np.ndarray:
    """The probabilities of sigmoid units (a multi-label output's labels, one binary unit):
    the sigmoid of logits, else the outputs as they are."""
    raw = np.asarray(outputs, dtype="float64")
    return 1.0 / (1.0 + np.exp(-raw)) if from_logits else raw


def label_answers(model: Any, data: TestData, task: Any) -> tuple[np.ndarray, np.ndarray]:
    """A single multi-label output's label probabilities (n, labels) for every image of
    ``data``, and their 0/1 targets."""
    from cnnspec.training.task_results import targets_by_name

    raw = predict(model, data.x, data.settings.rescale, OutputKind())  # (the outputs as they are)
    truth = targets_by_name(data.config, data.y)[task.name]
    return label_probabilities(raw, task.loss.from_logits), np.asarray(truth)


def map_answers(model: Any, data: TestData, task: Any) -> tuple[np.ndarray, np.ndarray]:
    """A single segmentation output's class probability maps (n, height, width, classes; a
    1-channel sigmoid map's probability) for every image of ``data``, and their masks."""
    from cnnspec.reporting.tta import as_probabilities
    from cnnspec.training.task_results import targets_by_name

    raw = predict(model, data.x, data.settings.rescale, OutputKind())  # (each image's map, flat)
    maps = np.asarray(raw, dtype="float64").reshape((len(raw), *task.shape))
    truth = targets_by_name(data.config, data.y)[task.name]
    return as_probabilities(maps, task), np.asarray(truth)


def predict(model: Any, x: np.ndarray | ImageFiles, rescale: float | None, kind: OutputKind) -> np.ndarray:
    """Class probabilities for stored-format images (scaled like the pipeline); image files
    (a streamed source) are decoded a chunk at a time, never all at once."""
    from cnnspec.training.filelist import ImageFiles

    if isinstance(x, ImageFiles) and len(x) > PREDICT_CHUNK:
        parts = [
            predict(model, x[i : i + PREDICT_CHUNK], rescale, kind) for i in range(0, len(x), PREDICT_CHUNK)
        ]
        return np.concatenate(parts)
    batch = np.asarray(x, dtype="float32")
    if rescale is not None:
        batch = batch * np.float32(rescale)
    outputs = model.predict(batch, batch_size=64, verbose=0)
    if isinstance(outputs, list):
        outputs = outputs[0]
    return probabilities(outputs, kind)


@dataclass
class TestData:
    """A test split in stored format (image files for a streamed source), with how training
    scaled it."""

    x: np.ndarray | ImageFiles
    y: np.ndarray
    class_names: list[str]
    settings: PipelineSettings
    compiled: CompiledSpec
    config: TrainConfig
    source: dict[str, Any]
    content_hash: str | None = None
    matches_run: bool | None = None
    notes: list[str] = field(default_factory=list)
    #: each model output's class, label or value names, by output name (:func:`test_split`)
    output_names: dict[str, list[str]] = field(default_factory=dict)
    #: ``--data``: how many of its images are the run's own, per split of the run (``None``:
    #: the run's data, or it can't be told: :func:`~cnnspec.reporting.own_data.own_images`)
    own: OwnImages | None = None
