"""`--tta` of `evaluate` and `predict` (cnnspec/reporting/tta.py): a classifier's probabilities
averaged over each image and its mirror images, read back as any model's outputs. The
commands: tests/test_predict.py and tests/test_evaluate.py."""

from __future__ import annotations

import numpy as np
import pytest

from cnnspec.errors import UsageError
from cnnspec.reporting.run import OutputKind, probabilities
from cnnspec.reporting.tta import as_outputs, averaged, parse_views


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
    np.testing.assert_allclose(averaged(left_heavy, ("hflip",))(batch), [[0.5, 0.5]])
    # mirrored top to bottom nothing changes: the mean is the image's own
    np.testing.assert_allclose(averaged(left_heavy, ("vflip",))(batch), alone)
    np.testing.assert_allclose(
        averaged(left_heavy, ("hflip", "vflip"))(batch), (2 * alone + alone[:, ::-1]) / 3
    )


@pytest.mark.parametrize(
    "kind", [OutputKind(), OutputKind(from_logits=True), OutputKind(binary=True), OutputKind(True, True)]
)
def test_averaged_probabilities_read_back_as_the_models_outputs(kind: OutputKind):
    probs = np.array([[0.2, 0.8], [0.9, 0.1], [0.5, 0.5]])
    np.testing.assert_allclose(probabilities(as_outputs(probs, kind), kind), probs, atol=1e-9)


def test_a_model_that_is_not_a_classifier_is_refused_with_the_command_to_run_instead():
    from types import SimpleNamespace

    from cnnspec.reporting.tta import refuse_tasks

    tasks = [
        SimpleNamespace(name="mask", task="segmentation"),
        SimpleNamespace(name="area", task="regression"),
    ]
    with pytest.raises(UsageError) as refused:
        refuse_tasks(tasks, "evaluate")
    assert "this model's outputs are mask (segmentation), area (regression)" in str(refused.value)
    assert refused.value.hint == "evaluate without --tta"
