"""`cnnspec export --tta hflip|vflip -o FILE` (cnnspec/export/mirrors.py, ensemble_model.py): one
file that answers the mean over the image and its mirror images, as `evaluate` and `predict
--tta` compute it in NumPy; the mirrors are standard layers inside the graph, exact for finite
numbers, and a segmentation's maps are mirrored back before the mean."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.test_report_support import flat, invoke


def test_the_exchange_matrix_reverses_a_vector():
    from cnnspec.export.mirrors import exchange_matrix

    vector = np.arange(5, dtype="float32")
    np.testing.assert_array_equal(vector @ exchange_matrix(5), vector[::-1])
    assert exchange_matrix(1).tolist() == [[1.0]]


def test_views_and_the_output_file_are_asked_for_before_anything_is_loaded(tmp_path):
    """A view that is no mirror, and --tta without -o (the run's own export paths are read as
    the model's answer), are usage errors; nothing is written, TensorFlow is not needed."""
    missing = tmp_path / "none.keras"
    result = invoke("export", missing, "-f", "onnx", "--tta", "rot90", "-o", tmp_path / "x.onnx")
    assert result.exit_code == 2 and "expected --tta to be hflip, vflip or both" in flat(result)
    result = invoke("export", missing, "-f", "onnx", "--tta", "hflip")
    assert result.exit_code == 2, result.output
    assert "expected -o with --tta: a model answering over mirror images is no export" in flat(result)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_mirror_layers_flip_exactly_as_numpy_does():
    import keras

    from cnnspec.export.mirrors import mirrored

    batch = np.random.default_rng(0).normal(size=(2, 5, 7, 3)).astype("float32") * 1e4
    for view, axis in (("hflip", 2), ("vflip", 1)):
        image = keras.Input((5, 7, 3))
        model = keras.Model(image, mirrored(image, view, "m"))
        np.testing.assert_array_equal(model.predict(batch, verbose=0), np.flip(batch, axis=axis))
        assert not model.trainable_weights  # (a frozen exchange matrix, never trained)


@pytest.mark.slow
@pytest.mark.parametrize("channels", [1, 3])
def test_a_map_mirrored_back_converts_to_onnx(channels, tmp_path):
    """A 1-channel map mirrored left to right: its Permute became, in tf2onnx's optimiser, a
    reshape to the wrong shape, and the ONNX export of every 1-channel segmentation model with
    --tta hflip failed (a review found it). The map is mirrored with a reshape now; the ONNX
    file answers as the Keras model, which answers as NumPy."""
    import keras
    import onnxruntime

    from cnnspec.export.mirrors import mirrored

    image = keras.Input((6, 10, 2))
    conv = keras.layers.Conv2D(channels, 1, name="conv")
    mapped = mirrored(conv(mirrored(image, "hflip", "in")), "hflip", "out")
    model = keras.Model(image, keras.layers.Average()([conv(image), mapped]))
    batch = np.random.default_rng(1).random((3, 6, 10, 2)).astype("float32")
    answer = model.predict(batch, verbose=0)
    plain = keras.Model(image, conv(image)).predict(batch, verbose=0)
    np.testing.assert_allclose(answer, plain, atol=1e-6)  # (a 1×1 convolution commutes with the flip)
    model.export(str(tmp_path / "m.onnx"), format="onnx", verbose=False)
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    given = session.run(None, {session.get_inputs()[0].name: batch})[0]
    np.testing.assert_allclose(given, answer, atol=1e-6)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The reporting tests' colour classifier and its wider sibling (test_ensemble's pair)."""
    from tests.test_report_support import trained_run, wide_run

    return trained_run(tmp_path_factory), wide_run(tmp_path_factory)


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_a_tta_export_answers_the_mean_over_the_mirror_images(runs, tmp_path):
    """A classifier over both mirrors, alone and with --ensemble: the file's answer is the mean
    of each model's probabilities for the image and its mirrors; its record lists the views,
    and cnnspec's readers never take it for the run's own export."""
    import keras

    from cnnspec.export.runtimes import open_session, record_path

    first, wide = runs
    batch = np.random.default_rng(3).random((6, 8, 8, 3)).astype("float32")
    seen = [batch, np.flip(batch, axis=2), np.flip(batch, axis=1)]
    models = [keras.saving.load_model(run / "model.keras") for run in (first, wide)]
    answers = [[m.predict(x, verbose=0) for x in seen] for m in models]

    out = tmp_path / "tta.tflite"
    result = invoke("export", first, "-f", "tflite", "--tta", "hflip,vflip", "-o", out, "--temperature", "1")
    assert result.exit_code == 0, result.output
    assert (
        "test-time augmentation (--tta hflip,vflip): the export answers with the mean of its outputs "
        "for each image and its mirror image left to right and its mirror image top to bottom"
    ) in flat(result)
    record = json.loads(record_path(out).read_text("utf-8"))
    assert record["tta"] == ["hflip", "vflip"] and "ensemble" not in record
    np.testing.assert_allclose(open_session("tflite", out).run(batch), np.mean(answers[0], axis=0), atol=1e-5)

    both = tmp_path / "both.onnx"
    args = ("-f", "onnx", "--tta", "hflip", "--ensemble", wide, "-o", both, "--temperature", "1")
    result = invoke("export", first, *args)
    assert result.exit_code == 0, result.output
    assert "an ensemble of 2 models with test-time augmentation (--tta hflip)" in flat(result)
    expected = np.mean([a for each in answers for a in each[:2]], axis=0)
    np.testing.assert_allclose(open_session("onnx", both).run(batch), expected, atol=1e-5)

    # written where the run's own export goes, it is refused as that (whatever its format: the
    # record says so; ONNX, whose conversion is a third of a TFLite one)
    copy = tmp_path / "run"
    shutil.copytree(first, copy)
    placed = copy / "export" / "model.onnx"
    assert invoke("export", copy, "-f", "onnx", "--tta", "hflip", "-o", placed).exit_code == 0
    np.save(tmp_path / "one.npy", (batch[0] * 255).astype("uint8"))
    refused = invoke("predict", copy, tmp_path / "one.npy", "--runtime", "onnx")
    assert refused.exit_code == 2, refused.output
    assert "it answers the mean over mirror images (cnnspec export --tta hflip)" in flat(refused)
    assert "predict --tta hflip mirror the images themselves" in flat(refused)


def _bare(folder: Path, head: str) -> Path:
    """A .keras model outside any run: a segmentation in logits (``seg``), or a regression."""
    import keras

    keras.utils.set_random_seed(4)
    image = keras.Input((6, 10, 1))
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(image)
    if head == "seg":
        model = keras.Model(image, keras.layers.Conv2D(3, 3, padding="same")(features))
        model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    else:
        pooled = keras.layers.GlobalAveragePooling2D()(features)
        model = keras.Model(image, keras.layers.Dense(1)(pooled))
        model.compile(loss="mse")
    path = folder / f"{head}.keras"
    model.save(path)
    return path


@pytest.mark.slow
def test_a_segmentation_maps_are_mirrored_back_and_a_regression_is_refused(tmp_path):
    """Each pixel is averaged with itself: the map of a mirror image is mirrored back, after
    its logits went through the softmax, as --tta does; the file answers in probabilities. A
    regression is refused (a mirror image may change what its value means)."""
    import keras

    from cnnspec.export.runtimes import open_session, record_path
    from cnnspec.reporting.predictions import softmax

    path = _bare(tmp_path, "seg")
    out = tmp_path / "seg.onnx"
    result = invoke("export", path, "-f", "onnx", "--tta", "hflip", "-o", out)
    assert result.exit_code == 0, result.output
    assert "the mean of its probabilities (its logits through a softmax or sigmoid)" in flat(result)
    record = json.loads(record_path(out).read_text("utf-8"))
    assert record["tta"] == ["hflip"] and record["output"]["from_logits"] is False
    model = keras.saving.load_model(path)
    batch = np.random.default_rng(5).random((3, 6, 10, 1)).astype("float32")
    own = softmax(model.predict(batch, verbose=0))
    mirrored = np.flip(softmax(model.predict(np.flip(batch, axis=2), verbose=0)), axis=2)
    np.testing.assert_allclose(open_session("onnx", out).run(batch), (own + mirrored) / 2, atol=1e-5)
    assert not np.allclose(own, mirrored, atol=1e-3)  # (the mirror changed the answer: a real test)

    regression = _bare(tmp_path, "reg")
    result = invoke("export", regression, "-f", "onnx", "--tta", "hflip", "-o", tmp_path / "r.onnx")
    assert result.exit_code == 2, result.output
    assert "expected classification, multi-label or segmentation outputs for --tta" in flat(result)
    assert not (tmp_path / "r.onnx").exists()
