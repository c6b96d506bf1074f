"""`--tta` of `evaluate` and `predict` (cnnspec/reporting/tta.py): a classifier's probabilities
averaged over each image and its mirror images, read back as any model's outputs; labels and
masks averaged as probabilities, a mask's maps mirrored back. The
commands: tests/test_predict.py and tests/test_evaluate.py."""

from __future__ import annotations

import numpy as np
import pytest

from cnnspec.analysis.tasks import OutputTask
from cnnspec.errors import UsageError
from cnnspec.reporting.model_graph import OutputKind
from cnnspec.reporting.predictions import probabilities
from cnnspec.reporting.tta import as_outputs, averaged, averaged_outputs, parse_views


def test_views_are_parsed_once_each_and_a_misspelling_gets_a_hint():
    assert parse_views(None) == ()
    assert parse_views("hflip") == ("hflip",)
    assert parse_views("vflip, hflip,vflip") == ("vflip", "hflip")
    with pytest.raises(UsageError) as refused:
        parse_views("hflip,rotate")
    assert "received 'hflip,rotate'" in str(refused.value)
    with pytest.raises(UsageError) as refused:
        parse_views("hlip")
    assert "hflip" in (refused.value.hint or "")


def left_heavy(batch: np.ndarray) -> np.ndarray:
    """Two classes: "left" as likely as the left half of the image is brighter than the right."""
    width = batch.shape[2]
    left, right = (
        batch[:, :, : width // 2].mean(axis=(1, 2, 3)),
        batch[:, :, width // 2 :].mean(axis=(1, 2, 3)),
    )
    p = 1 / (1 + np.exp(-(left - right)))
    return np.stack([p, 1 - p], axis=1)


def test_the_mean_is_over_the_image_and_its_mirror_images():
    batch = np.zeros((1, 4, 4, 1), dtype="float32")
    batch[0, :, :2] = 3.0  # bright on the left
    alone = left_heavy(batch)
    assert alone[0, 0] > 0.9
    # mirrored left to right it is as bright on the right: the mean of the two is even
    np.testing.assert_allclose(averaged([left_heavy], ("hflip",))(batch), [[0.5, 0.5]])
    # mirrored top to bottom nothing changes: the mean is the image's own
    np.testing.assert_allclose(averaged([left_heavy], ("vflip",))(batch), alone)
    np.testing.assert_allclose(
        averaged([left_heavy], ("hflip", "vflip"))(batch), (2 * alone + alone[:, ::-1]) / 3
    )


@pytest.mark.parametrize(
    "kind", [OutputKind(), OutputKind(from_logits=True), OutputKind(binary=True), OutputKind(True, True)]
)
def test_averaged_probabilities_read_back_as_the_models_outputs(kind: OutputKind):
    probs = np.array([[0.2, 0.8], [0.9, 0.1], [0.5, 0.5]])
    np.testing.assert_allclose(probabilities(as_outputs(probs, kind), kind), probs, atol=1e-9)


def test_a_regression_is_refused_with_the_command_to_run_instead():
    from types import SimpleNamespace

    from cnnspec.reporting.tta import refuse_tasks

    mask, labels = (
        SimpleNamespace(name="mask", task="segmentation"),
        SimpleNamespace(name="tags", task="multilabel"),
    )
    refuse_tasks([mask, labels], "evaluate")  # (averaged: nothing to refuse)
    tasks = [mask, SimpleNamespace(name="area", task="regression")]
    with pytest.raises(UsageError) as refused:
        refuse_tasks(tasks, "evaluate")
    assert "a mirror image may change what a regression's value means" in str(refused.value)
    assert "this model's outputs are mask (segmentation), area (regression)" in str(refused.value)
    assert refused.value.hint == "evaluate without --tta"


def test_an_ensemble_alone_averages_a_regressions_values_and_tta_still_refuses_it():
    """`--ensemble` without `--tta` shows each member the same image: a regression's values are
    averaged as they are (no mirror image to change what they mean), beside a classifier's
    probabilities; predict's reading refuses the regression only where views are asked for."""
    from cnnspec.cli.predict import _task_views

    batch = np.zeros((2, 4, 4, 1))
    first = lambda x: [np.array([[1.0], [3.0]]), np.array([[0.2, 0.8], [0.6, 0.4]])]  # noqa: E731
    second = lambda x: [np.array([[2.0], [-1.0]]), np.array([[0.4, 0.6], [0.2, 0.8]])]  # noqa: E731
    tasks = (task("regression", 1), task("classification", 2))
    value, probs = _task_views([first, second], (), tasks)(batch)
    np.testing.assert_allclose(value, [[1.5], [1.0]])
    np.testing.assert_allclose(probs, [[0.3, 0.7], [0.4, 0.6]])
    with pytest.raises(UsageError) as refused:
        _task_views([first, second], ("hflip",), tasks)
    assert refused.value.hint == "predict without --tta"


def task(kind: str, units: int, from_logits: bool = False) -> OutputTask:
    from cnnspec.analysis.settings_types import LossConfig

    loss = LossConfig(name="binary_crossentropy", from_logits=from_logits)
    return OutputTask(name=kind, task=kind, loss=loss, metrics=(), shape=(units,), activation=None)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sideways(batch: np.ndarray) -> np.ndarray:
    """Per-pixel scores of two classes that lean on each pixel's left neighbour: not the same
    model mirrored, so the mean over a mirror image differs from the image's own answer."""
    shifted = np.concatenate([batch[:, :, :1], batch[:, :, :-1]], axis=2)
    return np.concatenate([batch + 2 * shifted, -batch], axis=-1)


@pytest.mark.parametrize("from_logits", [False, True])
def test_a_masks_maps_are_mirrored_back_and_averaged_per_pixel(from_logits: bool):
    batch = np.random.default_rng(0).normal(size=(2, 3, 5, 1))
    probs = lambda x: softmax(sideways(x))  # noqa: E731
    model = (lambda x: np.log(probs(x))) if from_logits else probs
    mean = averaged_outputs([model], ("hflip",), [task("segmentation", 2, from_logits)])(batch)
    expected = (probs(batch) + probs(batch[:, :, ::-1])[:, :, ::-1]) / 2
    assert mean.shape == (*batch.shape[:3], 2)
    np.testing.assert_allclose(softmax(mean) if from_logits else mean, expected, atol=1e-9)
    # a model that mirrors with its image (each pixel alone) answers the same with --tta
    alone = lambda x: softmax(np.concatenate([x, -x], axis=-1))  # noqa: E731
    both = averaged_outputs([alone], ("hflip", "vflip"), [task("segmentation", 2)])(batch)
    np.testing.assert_allclose(both, alone(batch), atol=1e-12)


@pytest.mark.parametrize("from_logits", [False, True])
def test_labels_and_one_channel_masks_are_averaged_as_probabilities_in_the_models_order(from_logits: bool):
    batch = np.random.default_rng(1).normal(size=(4, 2, 2, 1))

    def sigmoid(x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-x))

    def scores(x: np.ndarray) -> list[np.ndarray]:
        labels = np.stack([x[:, 0, 0, 0], x[:, 0, 1, 0] * 3], axis=1)  # top-left, top-right pixels
        return [labels, x + x[:, :, :1]]  # and a one-channel map that leans on the left column

    def model(x: np.ndarray) -> list[np.ndarray]:
        return scores(x) if from_logits else [sigmoid(part) for part in scores(x)]

    tasks = [task("multilabel", 2, from_logits), task("segmentation", 1, from_logits)]
    labels, mask = averaged_outputs([model], ("hflip",), tasks)(batch)
    (own_labels, own_mask), (mirror_labels, mirror_mask) = scores(batch), scores(batch[:, :, ::-1])
    expected_labels = (sigmoid(own_labels) + sigmoid(mirror_labels)) / 2
    expected_mask = (sigmoid(own_mask) + sigmoid(mirror_mask)[:, :, ::-1]) / 2
    np.testing.assert_allclose(sigmoid(labels) if from_logits else labels, expected_labels, atol=1e-9)
    np.testing.assert_allclose(sigmoid(mask) if from_logits else mask, expected_mask, atol=1e-9)
