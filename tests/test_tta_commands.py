"""`cnnspec predict --tta` and `cnnspec evaluate --tta` on the tiny trained run: the mean of
the probabilities of an image and its mirror images, which the user can check by hand."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from tests.test_report_support import flat, invoke, trained_run
from tests.test_runtimes import exported_run

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reporting")]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained_run(tmp_path_factory)


def top(document: dict, index: int) -> dict[str, float]:
    return {t["class"]: t["probability"] for t in document["predictions"][index]["top"]}


def test_predict_averages_an_image_and_its_mirror_image(run_dir, tmp_path):
    rng = np.random.default_rng(4)
    image = rng.integers(0, 255, (8, 8, 3), dtype="uint8")
    image[:, :4] = (230, 30, 20)  # red on the left, noise on the right
    Image.fromarray(image).save(tmp_path / "a.png")
    Image.fromarray(image[:, ::-1]).save(tmp_path / "mirrored.png")
    symmetric = np.concatenate([image[:, :4], image[:, :4][:, ::-1]], axis=1)
    Image.fromarray(symmetric).save(tmp_path / "symmetric.png")
    files = [str(tmp_path / name) for name in ("a.png", "mirrored.png", "symmetric.png")]
    plain = json.loads(invoke("predict", run_dir, *files, "-k", "3", "-f", "json").stdout)
    result = invoke("predict", run_dir, *files, "-k", "3", "-f", "json", "--tta", "hflip")
    assert result.exit_code == 0, result.output
    tta = json.loads(result.stdout)
    assert plain["tta"] == [] and tta["tta"] == ["hflip"]
    for name in top(plain, 0):
        expected = (top(plain, 0)[name] + top(plain, 1)[name]) / 2
        assert top(tta, 0)[name] == pytest.approx(expected, abs=1e-6)
        assert top(tta, 1)[name] == pytest.approx(expected, abs=1e-6)  # the mirror's mean is the same
        assert top(tta, 2)[name] == pytest.approx(top(plain, 2)[name], abs=1e-6)  # its own mirror
    refused = invoke("predict", run_dir, files[0], "--tta", "rotate90")
    assert refused.exit_code == 2 and "expected --tta to be hflip, vflip or both" in flat(refused)


def test_evaluate_reports_the_averaged_probabilities(run_dir, tmp_path, monkeypatch):
    from cnnspec.reporting.run import locate
    from cnnspec.reporting.views import confusion_source
    from cnnspec.training import plots

    drawn = []
    drawing = plots.confusion_png
    monkeypatch.setattr(plots, "confusion_png", lambda *a: drawn.append(a[2]) or drawing(*a))
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    result = invoke("evaluate", copy, "--tta", "hflip,vflip")
    assert result.exit_code == 0, result.output
    assert "--tta hflip,vflip: each test image's class probabilities are the mean over it and its" in flat(
        result
    )
    document = json.loads((copy / "evaluation.json").read_text("utf-8"))
    assert document["tta"] == ["hflip", "vflip"] and document["data"]["images"] == 30
    assert document["metrics"]["accuracy"] == document["accuracy"] and 0 < document["loss"] < 10
    assert sum(row["support"] for row in document["per_class"].values()) == 30
    # the matrix drawn from it (visualize confusion, report.html) says whose it is
    assert confusion_source(locate(copy))[2] == "evaluation with --tta hflip,vflip"
    # and so does the picture evaluate draws (its title said "test set" alone)
    (title,) = drawn
    assert ": confusion matrix, test set with --tta hflip,vflip (accuracy " in title


def test_an_exported_runtime_averages_the_same_views_as_keras(tmp_path_factory, tmp_path):
    """The views are flipped in NumPy, so the TFLite interpreter (a fixed batch) takes them as
    Keras does: the same averaged probabilities, within the export's tolerance."""
    # (the tiny run with its verified TFLite export, made once for tests/test_runtimes.py too)
    copy = tmp_path / "run"
    shutil.copytree(exported_run(tmp_path_factory), copy)
    image = np.random.default_rng(5).integers(0, 255, (8, 8, 3), dtype="uint8")
    Image.fromarray(image).save(tmp_path / "a.png")
    documents = {}
    for runtime in ("keras", "tflite"):
        result = invoke("predict", copy, tmp_path / "a.png", "-k", "3", "-f", "json", "--tta", "hflip,vflip",
                        "--runtime", runtime)  # fmt: skip
        assert result.exit_code == 0, result.output
        documents[runtime] = json.loads(result.stdout)
        result = invoke("evaluate", copy, "--tta", "hflip", "--runtime", runtime)
        assert result.exit_code == 0, result.output
        documents[f"{runtime} evaluation"] = json.loads((copy / "evaluation.json").read_text("utf-8"))
    assert documents["tflite"]["tta"] == ["hflip", "vflip"]
    keras_top, tflite_top = top(documents["keras"], 0), top(documents["tflite"], 0)
    assert list(keras_top) == list(tflite_top)
    assert all(tflite_top[name] == pytest.approx(keras_top[name], abs=1e-4) for name in keras_top)
    keras_eval, tflite_eval = documents["keras evaluation"], documents["tflite evaluation"]
    assert tflite_eval["tta"] == ["hflip"] and tflite_eval["runtime"] != keras_eval["runtime"]
    assert tflite_eval["accuracy"] == keras_eval["accuracy"]
    assert tflite_eval["confusion_matrix"] == keras_eval["confusion_matrix"]


def test_a_segmentation_is_averaged_per_pixel_with_the_mirror_images_maps_mirrored_back(tmp_path):
    """A model file outside a run (read as a segmentation: a map of classes), evaluated on an
    npz with --data and predicted for an image: the masks are those of the mean, by hand, of its
    probabilities for the image and, mirrored back, for its mirror image; a regression is refused."""
    import keras

    inputs = keras.Input((6, 6, 1))
    head = keras.layers.Conv2D(3, 3, padding="same", activation="softmax", name="mask")
    model = keras.Model(inputs, head(inputs))
    kernel = np.random.default_rng(2).normal(size=(3, 3, 1, 3)).astype("float32") * 8  # lopsided
    head.set_weights([kernel, np.zeros(3, "float32")])
    model.compile(loss="sparse_categorical_crossentropy")
    model.save(tmp_path / "m.keras")
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (6, 6, 6, 1), dtype="uint8")
    masks = rng.integers(0, 3, (6, 6, 6), dtype="uint8")
    np.savez(tmp_path / "d.npz", x_train=x, y_train=masks, x_test=x, y_test=masks)

    def by_hand(images: np.ndarray) -> np.ndarray:
        scaled = images.astype("float32") / 255
        own = model.predict(scaled, verbose=0)
        mirrored = model.predict(scaled[:, :, ::-1], verbose=0)[:, :, ::-1]
        return (own + mirrored) / 2

    mean = by_hand(x)
    expected = mean.argmax(axis=-1)
    # the loss of the averaged probabilities (it was null: only a classifier's was computed)
    picked = np.take_along_axis(mean.astype("float64"), masks[..., None].astype("int64"), axis=-1)
    loss = float(-np.log(np.clip(picked, 1e-7, 1 - 1e-7)).mean())
    assert (expected != model.predict(x.astype("float32") / 255, verbose=0).argmax(axis=-1)).any()
    result = invoke("evaluate", tmp_path / "m.keras", "--data", tmp_path / "d.npz", "--tta", "hflip",
                    "-o", tmp_path / "e")  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "e" / "evaluation.json").read_text("utf-8"))
    assert document["tta"] == ["hflip"] and document["task"] == "segmentation"
    assert document["test_pixel_accuracy"] == pytest.approx(float((expected == masks).mean()), abs=1e-9)
    assert document["loss"] == pytest.approx(loss, abs=1e-5)
    assert (
        "(as probabilities; a mask's maps mirrored back); the loss and the task's figures are of that "
        "mean (the spec's metrics: evaluate without --tta hflip)" in flat(result)
    )

    np.save(tmp_path / "one.npy", x[0])
    result = invoke("predict", tmp_path / "m.keras", tmp_path / "one.npy", "--tta", "hflip", "-o",
                    tmp_path / "masks", "-f", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    (written,) = (tmp_path / "masks").glob("*.png")
    np.testing.assert_array_equal(np.asarray(Image.open(written)), expected[0])

    # (and its pixels' reliability diagram is drawn of the model's own maps, without --tta)
    drawn = invoke(
        "visualize",
        tmp_path / "m.keras",
        "calibration",
        "--data",
        tmp_path / "d.npz",
        "-o",
        tmp_path / "c.png",
    )
    assert drawn.exit_code == 0 and "calibration of the pixels" in flat(drawn), drawn.output

    value = keras.layers.Dense(1, name="value")(keras.layers.Flatten()(inputs))
    regression = keras.Model(inputs, value)
    regression.compile(loss="mse")
    regression.save(tmp_path / "r.keras")
    refused = invoke("predict", tmp_path / "r.keras", tmp_path / "one.npy", "--tta", "hflip")
    assert refused.exit_code == 2 and "this model's outputs are value (regression)" in flat(refused)
