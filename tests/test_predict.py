"""`cnnspec predict MODEL IMAGE...`: images converted the way training read its data, top-k
classes with the run's names, text and JSON output, and clear errors for what is not an image."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.test_report_support import CLASSES, bare_model, colour_images, flat, invoke, trained_run

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reporting")]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained_run(tmp_path_factory)


def test_predict_images_text_and_json(run_dir, tmp_path):
    red = tmp_path / "red.png"
    Image.fromarray(np.full((8, 8, 3), (230, 20, 10), dtype="uint8")).save(red)
    big = tmp_path / "big_rgba.png"  # other size and an alpha channel: resized and converted
    Image.fromarray(np.full((40, 24, 4), (10, 220, 30, 255), dtype="uint8")).save(big)
    gray = tmp_path / "gray.jpg"
    Image.fromarray(np.full((8, 8), 128, dtype="uint8"), mode="L").save(gray)
    result = invoke("predict", run_dir, red, big, gray, "--top-k", "2")
    assert result.exit_code == 0, result.output
    assert "red.png" in flat(result) and "probability" in flat(result)
    assert "resized 40×24 → 8×8 (height×width)" in flat(result)
    assert "big_rgba.png" in flat(result) and "gray.jpg" in flat(result)
    result = invoke("predict", run_dir / "model.keras", red, big, gray, "-k", "5", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["classes"] == CLASSES  # each input labelled with its path as it was given
    assert [p["input"] for p in doc["predictions"]] == [str(red), str(big), str(gray)]
    for prediction in doc["predictions"]:
        top = prediction["top"]
        assert len(top) == 3  # capped at the number of classes
        assert {t["class"] for t in top} == set(CLASSES)
        assert sum(t["probability"] for t in top) == pytest.approx(1.0, abs=1e-5)
        assert top == sorted(top, key=lambda t: -t["probability"])
    assert any("RGBA" in n for n in doc["predictions"][1]["notes"])
    # the same answers as CSV rows: the top classes in rank order, the notes; nothing else on stdout
    result = invoke("predict", run_dir, red, big, gray, "-k", "2", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["input"] for row in rows] == [str(red), str(big), str(gray)]
    for row, prediction in zip(rows, doc["predictions"], strict=True):
        assert [row["class_1"], row["class_2"]] == [t["class"] for t in prediction["top"][:2]]
        assert float(row["probability_1"]) == pytest.approx(prediction["top"][0]["probability"], abs=1e-6)
    assert "RGBA" in rows[1]["notes"] and "class_3" not in rows[0]
    # -o names where masks go: a classifier writes none, and says so (it was ignored without a word)
    result = invoke("predict", run_dir, red, "--format", "csv", "-o", tmp_path / "p.csv")
    assert result.exit_code == 0 and not (tmp_path / "p.csv").exists()
    assert "this model writes none, and its predictions are printed" in " ".join(result.stderr.split())
    assert list(csv.DictReader(io.StringIO(result.stdout)))  # the table itself, on stdout alone
    # a folder for masks: none made, and said (it was ignored without a word)
    result = invoke("predict", run_dir, red, "-o", tmp_path / "masks")
    assert result.exit_code == 0 and not (tmp_path / "masks").exists()
    assert "this model writes no mask files (a segmentation's), so nothing was written there" in (
        " ".join(result.stderr.split())
    )


def test_prediction_matches_the_model_on_training_data(run_dir, tmp_path):
    """An image file, an .npy sample and a batch give what the model gives on the test data
    scaled the way the training pipeline scaled it (uint8 × 1/255)."""
    from cnnspec.reporting.run import load_model

    x, _ = colour_images(4, 9)
    np.save(tmp_path / "batch.npy", x)
    np.save(tmp_path / "one.npy", x[0])
    Image.fromarray(x[0]).save(tmp_path / "one.png")
    result = invoke("predict", run_dir, tmp_path / "one.png", tmp_path / "one.npy", tmp_path / "batch.npy",
                    "-k", "3", "-f", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    one, batch = str(tmp_path / "one"), str(tmp_path / "batch.npy")
    assert [p["input"] for p in doc["predictions"]] == [f"{one}.png", f"{one}.npy"] + [
        f"{batch}[{i}]" for i in range(4)
    ]
    model = load_model(run_dir / "model.keras")
    expected = model.predict(x.astype("float32") / 255.0, verbose=0)
    got = {p["input"]: {t["index"]: t["probability"] for t in p["top"]} for p in doc["predictions"]}
    for name, row in ((f"{one}.png", 0), (f"{one}.npy", 0), *((f"{batch}[{i}]", i) for i in range(4))):
        assert [got[name][k] for k in range(3)] == pytest.approx(expected[row].tolist(), abs=1e-5)


def test_inputs_of_the_same_name_in_other_folders_are_told_apart(run_dir, tmp_path):
    """`predict a/x.png b/x.png` labelled both `x.png`, in the text and in JSON."""
    x, _ = colour_images(2, 7)
    paths = []
    for folder, picture in zip(("a", "b"), x):
        (tmp_path / folder).mkdir()
        paths.append(tmp_path / folder / "x.png")
        Image.fromarray(picture).save(paths[-1])
    result = invoke("predict", run_dir, *paths, "-f", "json")
    assert result.exit_code == 0, result.output
    assert [p["input"] for p in json.loads(result.stdout)["predictions"]] == [str(p) for p in paths]
    text = invoke("predict", run_dir, *paths)
    assert text.exit_code == 0 and str(paths[0]) in flat(text) and str(paths[1]) in flat(text)


def test_a_folder_is_read_as_its_images_and_arrays_in_sorted_order(run_dir, tmp_path):
    """`predict RUN test/`: every image and .npy file in the folder and its subfolders (a test
    set's class folders), sorted by path; hidden files and other files left out, with a note."""
    x, _ = colour_images(3, 11)
    folder = tmp_path / "test"
    for name, picture in zip(("b/2.png", "a/1.png", "a/0.jpg"), x):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(picture).save(folder / name)
    np.save(folder / "batch.npy", x[:2])
    (folder / "labels.csv").write_text("name,label\n")
    (folder / ".thumbs").mkdir()
    Image.fromarray(x[0]).save(folder / ".thumbs" / "t.png")
    single = tmp_path / "single.png"
    Image.fromarray(x[2]).save(single)
    result = invoke("predict", run_dir, folder, single, "-f", "json")
    assert result.exit_code == 0, result.output
    inputs = [p["input"] for p in json.loads(result.stdout)["predictions"]]
    names = ["a/0.jpg", "a/1.png", "b/2.png", "batch.npy[0]", "batch.npy[1]"]
    assert inputs == [str(folder / name) for name in names] + [str(single)], inputs
    assert f"left out 1 file(s) of {folder} that are no image or .npy array (the first: labels.csv)" in (
        flat(result)
    )


@pytest.mark.parametrize("others", [["a/c.webp"], ["a/x.webp", "b/y.TIFF", "b/z.jfif"]], ids=["1", "3"])
def test_a_folder_with_images_training_refuses_is_refused_as_training_refuses_it(run_dir, tmp_path, others):
    """A .webp (or .tif, .jfif …) in a folder was passed over with a note calling it "no image":
    predict now refuses the folder with training's message and list of formats, writing nothing."""
    from tests.test_listing_edges import listing_error, make_images

    folder = tmp_path / "test"
    make_images(folder, {"a": 2, "b": 2})
    for name in others:
        (folder / name).write_bytes(b"RIFF....WEBP")
    (folder / "labels.csv").write_text("name,label\n")  # no image: still left out with a note
    out = tmp_path / "out"
    result = invoke("predict", run_dir, folder, "--out", out)
    assert result.exit_code == 2, result.output
    shown = sorted(others, key=lambda name: (str(Path(name).parent), name))
    assert f"{len(others)} image file(s) are in a format cnnspec does not read: {', '.join(shown)}" in (
        flat(result)
    )
    assert "expected PNG, JPEG, BMP or GIF images (.png, .jpg, .jpeg, .bmp, .gif)" in flat(result)
    assert "Traceback" not in result.output and not out.exists()
    trained = listing_error(tmp_path, f"{{source: {{directory: {folder}, image_size: [8, 8]}}}}")
    assert trained.message in flat(result)  # word for word (the spec's folder: the same path)


def test_bare_model_uses_class_indices(run_dir, tmp_path):
    model = bare_model(tmp_path)
    picture = tmp_path / "p.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype="uint8")).save(picture)
    result = invoke("predict", model, picture, "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["classes"] == ["0", "1", "2"]


def test_hostile_inputs(run_dir, tmp_path):
    not_image = tmp_path / "notes.png"
    not_image.write_text("I am text, not a PNG")
    truncated = tmp_path / "cut.png"
    Image.fromarray(np.zeros((64, 64, 3), dtype="uint8") + 90).save(tmp_path / "whole.png")
    truncated.write_bytes((tmp_path / "whole.png").read_bytes()[:60])
    wrong_shape = tmp_path / "wrong.npy"
    np.save(wrong_shape, np.zeros((8, 8, 1), dtype="uint8"))
    wrong_size = tmp_path / "size.npy"
    np.save(wrong_size, np.zeros((2, 16, 16, 3), dtype="uint8"))
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    nan = tmp_path / "nan.npy"
    np.save(nan, np.full((8, 8, 3), np.nan, dtype="float32"))
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros((0, 8, 8, 3), dtype="float32"))
    archive = tmp_path / "archive.npy"  # np.savez's zip, named .npy
    with open(archive, "wb") as handle:
        np.savez(handle, a=np.zeros(3))
    text = tmp_path / "text.npy"  # numpy's own message offered to unpickle it
    text.write_text("not numpy")
    cases = {
        archive: "is an .npz archive (a zip of arrays)",
        text: "it has no NumPy header",
        empty: "expected at least one sample",
        not_image: "is not one",
        truncated: "",
        wrong_shape: "8×8×1",
        wrong_size: "2×16×16×3",
        objects: "pickled",
        nan: "NaN",
        tmp_path / "missing.png": "does not exist",
        tmp_path / "nothing": "expected images or .npy files in the folder",
    }
    (tmp_path / "nothing" / "sub").mkdir(parents=True)
    (tmp_path / "nothing" / "sub" / "readme.txt").write_text("no pictures here")
    (tmp_path / "nothing" / ".hidden.png").write_bytes(b"")
    for path, words in cases.items():
        result = invoke("predict", run_dir, path)
        assert result.exit_code == 2, (path, result.output)
        assert words in flat(result), (path, result.output)
        assert "Traceback" not in flat(result) and "internal error" not in flat(result)
    # a model file that is not a Keras model, and a model with a Lambda layer
    fake = tmp_path / "fake.keras"
    fake.write_bytes(b"PK\x03\x04 but not really a zip")
    good = tmp_path / "whole.png"
    for model, words in ((fake, "not one"), (bare_model(tmp_path, lam=True), "Lambda")):
        result = invoke("predict", model, good)
        assert result.exit_code == 2 and words in flat(result), result.output
    result = invoke("predict", run_dir)
    assert result.exit_code == 2  # no image given


@pytest.mark.parametrize(("mode", "channels"), [("rgb", 3), ("grayscale", 1)])
def test_image_files_read_like_a_training_folder(tmp_path, mode, channels):
    """predict's reader gives exactly the pixels Keras' folder loader gives training
    (decode, colour conversion, bilinear resize, rounding)."""
    import keras

    from cnnspec.reporting.images import read_image

    rng = np.random.default_rng(4)
    folder = tmp_path / "images" / "only"
    folder.mkdir(parents=True)
    paths = []
    for index, (h, w) in enumerate(((20, 16), (7, 9), (12, 12))):
        path = folder / f"{index}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype="uint8")).save(path)
        paths.append(path)
    dataset = keras.utils.image_dataset_from_directory(
        tmp_path / "images", color_mode=mode, image_size=(12, 12), shuffle=False, batch_size=8, verbose=False
    )
    expected = np.clip(np.round(next(iter(dataset))[0].numpy()), 0, 255).astype("uint8")
    for index, path in enumerate(paths):
        sample = read_image(path, (12, 12, channels))
        assert sample.pixels.shape == (12, 12, channels)
        assert np.array_equal(sample.pixels, expected[index])


def _with_config(run_dir: Path, folder: Path, edit) -> Path:
    """A copy of the run whose model.keras has its config.json changed by ``edit`` (another
    model copied into the run folder, as far as every command reading the run is concerned)."""
    import shutil
    import zipfile

    copy = folder / "swapped"
    shutil.copytree(run_dir, copy)
    with zipfile.ZipFile(run_dir / "model.keras") as source:
        entries = {name: source.read(name) for name in source.namelist()}
    config = json.loads(entries["config.json"])
    edit(config["config"])
    entries["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(copy / "model.keras", "w") as target:
        for name, data in entries.items():
            target.writestr(name, data)
    return copy


def test_another_model_in_a_run_folder_is_refused(run_dir, tmp_path):
    """A logits head copied into the softmax run would be served as probabilities: every
    command that loads the run's model refuses it (exit 2), saying how it differs."""

    def logits(config: dict) -> None:
        config["layers"][-1]["config"]["activation"] = "linear"

    swapped = _with_config(run_dir, tmp_path, logits)
    picture = tmp_path / "p.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype="uint8")).save(picture)
    for command in (["predict", swapped, picture], ["export", swapped, "-f", "onnx"], ["evaluate", swapped]):
        result = invoke(*command)
        assert result.exit_code == 2, result.output
        assert (
            f"error: expected {swapped / 'model.keras'} to be the model of the run's spec "
            f"({swapped / 'resolved.yaml'}); received another model: its output layer dense_1 has "
            "activation linear, the spec's softmax hint: put back the model.keras this run trained"
        ) in flat(result)
    assert not (swapped / "export").exists()


def test_a_model_of_another_shape_in_a_run_folder_is_refused(run_dir, tmp_path):
    def another(config: dict) -> None:
        config["layers"][0]["config"]["batch_shape"] = [None, 16, 16, 3]
        config["output_layers"] = ["mask", 0, 0]

    swapped = _with_config(run_dir, tmp_path, another)
    picture = tmp_path / "p.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype="uint8")).save(picture)
    result = invoke("predict", swapped, picture)
    assert result.exit_code == 2
    assert ("received another model: its input is 16×16×3, the spec's 8×8×3 hint:") in flat(result)


def test_a_file_name_that_is_not_utf8_is_written_escaped_in_every_format(run_dir, tmp_path):
    """caf\\xe9.png (a Latin-1 name): its raw byte made the CSV no UTF-8, and the JSON held the
    lone surrogate "\\udce9", which strict JSON readers refuse."""
    import os

    folder = tmp_path / "d"
    folder.mkdir()
    Image.fromarray(np.full((8, 8, 3), 90, dtype="uint8")).save(os.fsencode(folder) + b"/caf\xe9.png")
    shown = f"{folder}/caf\\xe9.png"
    note = "a file name that is not valid UTF-8 is written with each such byte as \\xNN"
    for fmt in ("csv", "json", "text"):
        result = invoke("predict", run_dir, folder, "-k", "1", "-f", fmt)
        assert result.exit_code == 0, result.output
        text = result.stdout_bytes.decode("utf-8")  # (strict: raised before)
        assert "\\udce9" not in text and note in " ".join(result.stderr.split()), (fmt, result.stderr)
        if fmt == "csv":
            assert [row["input"] for row in csv.DictReader(io.StringIO(text))] == [shown]
        elif fmt == "json":
            assert [p["input"] for p in json.loads(text)["predictions"]] == [shown]
        else:
            assert shown in text
