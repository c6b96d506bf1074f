"""The calibration of a segmentation model's pixels (cnnspec/reporting/calibration.py's
``of_pixels``): each pixel a decision of its own, its confidence the top class probability.
`evaluate` keeps it in evaluation.json and prints it, `visualize RUN calibration` draws it, and
report.html shows it, as they do a classifier's and a multi-label model's labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cnnspec.reporting.calibration import of_pixels, of_probabilities, pixel_rows
from tests.test_report_support import flat, invoke, train_without_page


def test_pixel_rows_are_every_pixels_class_probabilities_with_its_true_class():
    rng = np.random.default_rng(0)
    maps = rng.dirichlet(np.ones(3), size=(2, 4, 5))  # (2, 4, 5, 3): a softmax map per image
    masks = rng.integers(0, 3, (2, 4, 5))
    rows, labels = pixel_rows(maps, masks)
    assert rows.shape == (40, 3) and labels.tolist() == masks.reshape(-1).tolist()
    np.testing.assert_array_equal(rows[7], maps[0, 1, 2])  # (row-major: image, row, column)
    from dataclasses import replace

    assert of_pixels(maps, masks) == replace(of_probabilities(rows, labels), counts="pixels")
    # evaluation.json says what its counts are of (a review found "images" holding pixels)
    assert of_pixels(maps, masks).describe()["counts"] == "pixels"
    # one sigmoid channel: each pixel the two-class row [1 - p, p], its mask 0 or 1
    rows, labels = pixel_rows(np.full((1, 2, 2, 1), 0.8), np.array([[[1], [0]], [[1], [1]]]))
    np.testing.assert_allclose(rows, [[0.2, 0.8]] * 4)
    assert labels.tolist() == [1, 0, 1, 1]


def test_beyond_the_limit_a_seeded_sample_of_pixels_is_kept_in_order():
    maps = np.random.default_rng(1).dirichlet(np.ones(2), size=(3, 10, 10))
    masks = np.arange(300).reshape(3, 10, 10) % 2
    rows, labels = pixel_rows(maps, masks, limit=50)
    again, _ = pixel_rows(maps, masks, limit=50)
    assert rows.shape == (50, 2) and np.array_equal(rows, again)  # the same pixels every time
    flat_maps = maps.reshape(-1, 2)
    picked = [int(np.flatnonzero((flat_maps == row).all(axis=1))[0]) for row in rows]
    assert picked == sorted(picked) and len(set(picked)) == 50
    assert labels.tolist() == [p % 2 for p in picked]


SPEC = """\
cnnspec: 1
name: pixels
input: {shape: [16, 16, 3]}
model:
  - conv2d: {filters: 8, kernel_size: 3, padding: same, activation: relu}
  - conv2d: {filters: 4, kernel_size: 1, activation: softmax}
data:
  source: {shapes: {images: 48, image_size: [16, 16], target: mask, seed: 2}}
  validation_split: 0.25
  test_split: 0.25
training:
  epochs: 2
  batch_size: 8
  seed: 7
"""


# (its users are grouped on one xdist worker, so the run is trained once)
@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pixels")
    (folder / "spec.yaml").write_text(SPEC, encoding="utf-8")
    train_without_page(folder / "spec.yaml", folder / "run")
    return folder / "run"


@pytest.mark.slow
@pytest.mark.xdist_group("pixel_calibration_run")
def test_evaluate_visualize_and_report_show_the_pixels_calibration(run, tmp_path):
    import keras

    from cnnspec.reporting.held_out import load_test_data
    from cnnspec.reporting.run import locate

    result = invoke("evaluate", run, "-o", tmp_path / "e")
    assert result.exit_code == 0, result.output
    assert "calibration of the pixels (each pixel a decision of its own): ECE" in flat(result)
    document = json.loads((tmp_path / "e" / "evaluation.json").read_text("utf-8"))
    calibration = document["calibration"]
    test = load_test_data(locate(run, None), keras.saving.load_model(run / "model.keras"))
    maps = keras.saving.load_model(run / "model.keras").predict(
        np.asarray(test.x, "float32") / 255, verbose=0
    )
    expected = of_pixels(maps, test.y)
    assert calibration["images"] == len(test.x) * 16 * 16 == expected.images
    assert calibration["ece"] == pytest.approx(expected.ece, abs=1e-5)

    drawn = invoke("visualize", run, "calibration", "-o", tmp_path / "c.png")
    assert drawn.exit_code == 0, drawn.output
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"ECE {calibration['ece']:.2%}" in flat(drawn)

    assert invoke("report", run).exit_code == 0
    page = (run / "report.html").read_text("utf-8")
    assert f"among the {calibration['images']:,} pixel decisions ({len(test.x)} test images)" in page
    assert "pixel confidence, its top class probability" in page


def test_a_temperature_scales_each_pixels_classes_as_a_classifiers():
    from cnnspec.reporting.predictions import softmax
    from cnnspec.reporting.temperature import scaled_answer, scales, tempered, tempered_maps
    from cnnspec.reporting.tta import as_probabilities

    rng = np.random.default_rng(2)
    logits = rng.normal(size=(2, 3, 4, 5)) * 3
    maps = softmax(logits)
    scaled = tempered_maps(maps, False, 2.0)
    np.testing.assert_allclose(scaled.reshape(-1, 5), tempered(maps.reshape(-1, 5), 2.0))
    np.testing.assert_allclose(softmax(tempered_maps(logits, True, 2.0)), softmax(logits / 2.0), atol=1e-12)
    sigmoid = 1 / (1 + np.exp(-logits[..., :1]))
    np.testing.assert_allclose(tempered_maps(sigmoid, False, 2.0), 1 / (1 + np.exp(-logits[..., :1] / 2)))
    # what evaluate, predict and the export's check apply to a segmentation output
    from tests.test_tta import task as made

    mask = made("segmentation", 5, from_logits=True)
    assert scales([mask]) and not scales([mask, made("multilabel", 3)])
    answer = scaled_answer(logits, [mask], None, 0.5)
    np.testing.assert_allclose(as_probabilities(answer, mask), softmax(logits / 0.5), atol=1e-12)


@pytest.mark.slow
@pytest.mark.xdist_group("pixel_calibration_run")
def test_calibrate_fits_a_segmentations_temperature_and_every_reader_applies_it(run, tmp_path):
    """`calibrate` fits one temperature on the validation pixels; evaluate, visualize and the
    export (the temperature folded into the 1×1 convolution of the head) apply it; the masks,
    so the mean IoU, never change."""
    import shutil

    import keras

    from cnnspec.export.runtimes import record_path
    from cnnspec.reporting.calibration import pixel_rows
    from cnnspec.reporting.held_out import load_test_data
    from cnnspec.reporting.predictions import map_answers
    from cnnspec.reporting.run import locate
    from cnnspec.reporting.temperature import FILE, fit, tempered_maps

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    fitted = invoke("calibrate", copy)
    assert fitted.exit_code == 0, fitted.output
    t = json.loads((copy / FILE).read_text("utf-8"))["temperature"]
    model = keras.saving.load_model(copy / "model.keras")
    located = locate(copy, None)
    validation = load_test_data(located, model, None, split="validation")
    task = located.config.tasks[0]
    pixels = len(validation.x) * 16 * 16
    assert f"fitted on {len(validation.x)} validation images ({pixels:,} pixels)" in flat(fitted)
    assert t == pytest.approx(fit(*pixel_rows(*map_answers(model, validation, task))), rel=1e-4)
    # -f json says what it fitted on, as the line does (a review found the pixels missing there)
    again = invoke("calibrate", copy, "-f", "json")
    assert again.exit_code == 0, again.output
    described = json.loads(again.stdout[again.stdout.index("{") :])
    assert (described["rows"], described["unit"], described["images"]) == (
        pixels,
        "pixels",
        len(validation.x),
    )

    def evaluated(*args: object) -> dict:
        result = invoke("evaluate", copy, "-f", "json", *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout[result.stdout.index("{") :])

    own, scaled = evaluated("--temperature", "1"), evaluated()
    assert scaled["temperature"] == pytest.approx(t) and own["temperature"] == 1.0
    assert scaled["test_mean_iou"] == own["test_mean_iou"]  # (the masks are the same)
    test = load_test_data(located, model)
    maps, masks = map_answers(model, test, task)
    expected = of_pixels(tempered_maps(maps, False, t), masks)
    assert scaled["calibration"]["ece"] == pytest.approx(expected.ece, abs=1e-5)
    assert scaled["calibration"]["ece"] != pytest.approx(own["calibration"]["ece"], abs=1e-4)
    # the loss is of the scaled probabilities, as a classifier's (it was Keras' of the model's own)
    from cnnspec.reporting.evaluation import task_loss

    assert own["loss"] == pytest.approx(task_loss(maps, masks, task), rel=1e-4)  # (Keras' own)
    assert scaled["loss"] == pytest.approx(task_loss(tempered_maps(maps, False, t), masks, task), rel=1e-5)
    assert scaled["loss"] < own["loss"]  # (the temperature was fitted to lower it)

    drawn = invoke("visualize", copy, "calibration", "-o", tmp_path / "c.png")
    assert drawn.exit_code == 0 and f"ECE {expected.ece:.2%}" in flat(drawn), drawn.output
    assert f"; temperature {t:.4g} (the run's temperature.json)" in flat(drawn)
    # the pixels' diagram before calibrating: evaluate --temperature 1's ECE
    before = invoke("visualize", copy, "calibration", "--temperature", "none", "-o", tmp_path / "own.png")
    assert before.exit_code == 0 and f"ECE {own['calibration']['ece']:.2%}" in flat(before), before.output
    assert "; temperature 1 (the model's own probabilities)" in flat(before)
    exported = invoke("export", copy, "-f", "onnx")
    assert exported.exit_code == 0 and "folded into the kernel and bias of layer" in flat(exported)
    record = json.loads(record_path(copy / "export" / "model.onnx").read_text("utf-8"))
    assert record["output"]["temperature"] == pytest.approx(t)
    onnx = evaluated("--runtime", "onnx", "-o", tmp_path / "onnx")
    assert onnx["calibration"]["ece"] == pytest.approx(expected.ece, abs=1e-4)
    assert onnx["test_mean_iou"] == own["test_mean_iou"]
    # report.html scales the pixels' confidences and says its test loss is the model's own
    # (metrics.json's; a segmentation's card said nothing, beside a calibration said scaled)
    assert invoke("report", copy).exit_code == 0
    page = (copy / "report.html").read_text("utf-8")
    assert f"before the temperature {t:.4g} (cnnspec evaluate: after)" in page
