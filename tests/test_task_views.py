"""``visualize samples --mistakes`` of a model of several outputs ranks the worst test images by
the output it draws (a mask picture by the masks' errors), and its title names that output.

The model is a stand-in whose predictions are set per image (no TensorFlow, nothing trained)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from cnnspec.analysis.settings import training_config
from cnnspec.api import compile_text

#: a count (regression) listed before a mask (segmentation), as in ``outputs: [cnt, lab, mask]``
COUNT_THEN_MASK = """\
cnnspec: 1
name: two
input: {shape: [8, 8, 3]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same}
    id: features
  - global_avg_pool2d
  - dense: 1
    id: cnt
  - conv2d: {filters: 3, kernel_size: 1, activation: softmax}
    inputs: features
    id: mask
outputs: [cnt, mask]
data: {source: {shapes: {images: 40, target: {cnt: count, mask: mask}}}}
training:
  outputs: {cnt: {task: regression}}
"""
#: 60 test images: the count is wrong on images 0–9, the mask on images 50–59
IMAGES, COUNT_WRONG, MASK_WRONG = 60, range(10), range(50, 60)


class StandInModel:
    """Predicts for each image (its pixels hold its index) a count and a mask, wrong where the
    ranges above say."""

    def predict(self, batch: np.ndarray, **_: Any) -> list[np.ndarray]:
        rows = batch[:, 0, 0, 0].astype("int64")
        count = np.array([[100.0 if i in COUNT_WRONG else 0.0] for i in rows], dtype="float32")
        mask = np.zeros((len(rows), 8, 8, 3), dtype="float32")
        mask[..., 0] = [[[0.0]] if i in MASK_WRONG else [[1.0]] for i in rows]
        mask[..., 1] = 1.0 - mask[..., 0]
        return [count, mask]


@pytest.mark.parametrize("mistakes", [True, False])
def test_the_mask_picture_of_worst_images_ranks_them_by_the_masks(monkeypatch, mistakes):
    from cnnspec.reporting import evaluation
    from cnnspec.reporting.task_views import task_samples
    from cnnspec.training import task_plots

    drawn: dict[str, Any] = {}

    def masks_png(
        images: np.ndarray, truths: Any, predicted: Any, classes: int, title: str, rows: int
    ) -> bytes:
        drawn.update(images=sorted({int(image[0, 0, 0]) for image in images}), title=title)
        return b""

    monkeypatch.setattr(task_plots, "masks_png", masks_png)
    monkeypatch.setattr(evaluation, "listed_outputs", lambda model: model)  # (no Keras model)
    x = np.repeat(np.arange(IMAGES, dtype="uint8"), 8 * 8 * 3).reshape(IMAGES, 8, 8, 3)
    y = {"cnt": np.zeros((IMAGES, 1), "float32"), "mask": np.zeros((IMAGES, 8, 8), "int64")}
    config = training_config(compile_text(COUNT_THEN_MASK, "spec.yaml"))
    test = SimpleNamespace(config=config, x=x, y=y, settings=SimpleNamespace(rescale=None), output_names={})
    probe = SimpleNamespace(model=StandInModel(), test=test, run=SimpleNamespace(name="two"), temperature=1.0)
    task_samples(probe, 10, mistakes=mistakes, seed=0)
    if mistakes:  # before: images 0–9, chosen by the count's error, drawn as masks
        assert drawn == {
            "images": list(MASK_WRONG),
            "title": "two: worst test images by mask, true vs predicted mask",
        }
    else:
        assert (
            len(drawn["images"]) == 10 and drawn["title"] == "two: test images, true vs predicted mask (mask)"
        )


@pytest.mark.parametrize("rows", [2, 16])
def test_a_masks_pictures_title_stays_above_its_column_headings(monkeypatch, rows):
    """At its default place, a fraction of the figure's height, the title of `visualize RUN
    samples` (16 rows, 38 inches high) was drawn across the first row's headings."""
    from cnnspec.training import plots, task_plots

    figures: list[Any] = []
    monkeypatch.setattr(
        task_plots, "png_bytes", lambda figure: figures.append(figure) or plots.png_bytes(figure)
    )
    rng = np.random.default_rng(0)
    x, y = rng.random((rows, 16, 16, 3)), rng.integers(0, 3, (rows, 16, 16))
    task_plots.masks_png(x, y, y, 3, "seg: test images, true vs predicted mask", rows=rows)
    task_plots.captioned_png([x[0]] * 3, ["a", "b\nc", "d"], [False, True, False], "seg: two\nlines")
    for figure in figures:
        renderer = figure.canvas.get_renderer()
        title = figure._suptitle.get_window_extent(renderer)
        headings = max(axes.title.get_window_extent(renderer).y1 for axes in figure.axes)
        assert title.y0 > headings and title.y1 <= figure.bbox.y1
