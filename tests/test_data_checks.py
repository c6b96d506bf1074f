"""Checks of the data a spec loads, each a located error (or a right result) where the data
used to crash, be read wrongly, or train to NaN in silence: empty validation splits of
regression targets, labels/values tables with a repeated image or no header row, labels
separated by commas, NaN or infinite pixels and labels, the pixel depth ``data.rescale: auto``
divides by (uint16, int64 …), and ``class_names`` that do not name every class. Tiny data
written to ``tmp_path``; no TensorFlow."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from cnnspec.api import compile_spec
from cnnspec.errors import SpecError
from cnnspec.training.data import load_dataset
from cnnspec.training.data_checks import rescale_factor
from tests.test_task_data import DENSE, spec, train_settings, write_images

REGRESSION = DENSE.replace("UNITS", "1").replace("ACT", "linear")
MULTILABEL = DENSE.replace("UNITS", "3").replace("ACT", "sigmoid")
CLASSIFIER = DENSE.replace("UNITS", "3").replace("ACT", "softmax")
#: The task of an images source's table, said where the head alone would read as a classifier
#: (one sigmoid or linear unit): validate refuses a classifier on label sets or values.
TASK_OF_TABLE = {"labels": "training: {task: multilabel}\n", "values": "training: {task: regression}\n"}


def loaded(path: Path):
    """The compiled spec, its settings and its data."""
    compiled = compile_spec(path)
    config = train_settings(compiled)
    return compiled, config, load_dataset(compiled, config, 0)


def refused(path: Path):
    """The one located error loading ``path`` raises."""
    with pytest.raises(SpecError) as info:
        loaded(path)
    (error,) = info.value.errors
    assert error.code == "data" and error.loc is not None
    return error


def npz_spec(tmp_path: Path, x_train, y_train, x_test, y_test, head=CLASSIFIER, extra="", **arrays) -> Path:
    np.savez(tmp_path / "d.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, **arrays)
    return spec(tmp_path, "{npz: d.npz}", head, extra)


def pixels(n: int, dtype: str = "uint8", high: int = 256) -> np.ndarray:
    return np.random.default_rng(0).integers(0, high, (n, 8, 8, 3)).astype(dtype)


def classes(n: int) -> np.ndarray:
    return np.arange(n) % 3


# -- regression targets with an empty validation split --------------------------------------------
def test_a_values_table_without_a_validation_split_loads(tmp_path):
    names = write_images(tmp_path / "img", 6)
    rows = ["file,width,height", *[f"{n},{i * 1.5},{-i}" for i, n in enumerate(names)]]
    (tmp_path / "values.csv").write_text("\n".join(rows))
    head = DENSE.replace("UNITS", "2").replace("ACT", "linear")
    extra = "  validation_split: 0\ntraining: {task: regression}\n"
    _, _, data = loaded(spec(tmp_path, "{images: img, values: values.csv}", head, extra))
    assert data.y_val.shape == (0, 2) and data.y_val.dtype == np.float32  # was a reshape crash
    assert data.y_train.shape[1:] == (2,) and len(data.y_train) + len(data.y_test) == 6


def test_shapes_counts_without_a_validation_split_load(tmp_path):
    source = "{shapes: {images: 20, target: count}}"
    extra = "  validation_split: 0\ntraining: {task: regression}\n"
    _, _, data = loaded(spec(tmp_path, source, REGRESSION, extra))
    assert len(data.x_val) == 0 and data.y_val.shape[0] == 0 and len(data.y_train) == 16


# -- labels and values tables --------------------------------------------------------------------
@pytest.mark.parametrize("key", ["labels", "values"])
def test_an_image_listed_twice_names_both_rows(tmp_path, key):
    names = write_images(tmp_path / "img", 4)
    cell = "cat" if key == "labels" else "1.5"
    rows = [f"file,{'labels' if key == 'labels' else 'size'}", *[f"{n},{cell}" for n in names]]
    (tmp_path / "t.csv").write_text("\n".join([*rows, f"./{names[1]},{cell}"]) + "\n")
    head = MULTILABEL.replace("units: 3", "units: 1") if key == "labels" else REGRESSION
    error = refused(spec(tmp_path, f"{{images: img, {key}: t.csv}}", head, TASK_OF_TABLE[key]))
    assert error.path == f"data.source.{key}"
    assert (
        error.message
        == f"expected each image once in t.csv; it lists rows 3 ({names[1]}) and 6 (./{names[1]})"
    )
    assert "training and the test split" in error.hint


def test_a_json_table_naming_an_image_twice_is_refused(tmp_path):
    names = write_images(tmp_path / "img", 3)
    # json.loads keeps the last of two equal keys: the repeat was lost without a word
    text = f'{{"{names[0]}": 1, "{names[1]}": 2, "{names[2]}": 3, "{names[0]}": 4}}'
    (tmp_path / "v.json").write_text(text)
    error = refused(spec(tmp_path, "{images: img, values: v.json}", REGRESSION, TASK_OF_TABLE["values"]))
    assert error.message == f"expected each image once in v.json; it lists {names[0]} twice"


def test_numbers_as_label_columns_are_a_header(tmp_path):
    names = write_images(tmp_path / "img", 4)
    rows = ["file,0,1,2", *[f"{n},{i % 2},1,0" for i, n in enumerate(names)]]
    (tmp_path / "l.csv").write_text("\n".join(rows) + "\n")
    extra = "  test_split: 0.5\n  validation_split: 0\n"
    _, _, data = loaded(spec(tmp_path, "{images: img, labels: l.csv}", MULTILABEL, extra))
    assert data.class_names == ["0", "1", "2"] and len(data.y_train) + len(data.y_test) == 4


def test_labels_separated_by_commas_are_several_labels(tmp_path):
    names = write_images(tmp_path / "img", 4)
    rows = [
        "file,labels",
        f'{names[0]},"cat,dog"',
        f"{names[1]},cat,owl",
        f"{names[2]}, dog ;owl",
        f"{names[3]},",
    ]
    (tmp_path / "l.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "l.json").write_text(
        json.dumps(
            {names[0]: ["cat", " dog"], names[1]: ["cat ", "owl"], names[2]: ["dog", "owl"], names[3]: [""]}
        )
    )
    expected = {0: [1, 1, 0], 1: [1, 0, 1], 2: [0, 1, 1], 3: [0, 0, 0]}  # image → cat, dog, owl
    for table in ("l.csv", "l.json"):
        extra = "  test_split: 0.5\n  validation_split: 0\n"
        _, _, data = loaded(spec(tmp_path, f"{{images: img, labels: {table}}}", MULTILABEL, extra))
        assert data.class_names == ["cat", "dog", "owl"], table  # no 'cat,dog' beside cat and dog
        for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
            for image, row in zip(x, y, strict=True):
                assert row.tolist() == expected[int(image[0, 0, 0]) // 20], table


# -- NaN and infinity ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("split", "bad", "word"), [("training", np.nan, "NaN"), ("test", -np.inf, "-infinity")]
)
def test_non_finite_pixels_are_refused(tmp_path, split, bad, word):
    x = pixels(12).astype("float32") / 255
    x_test = x[:6].copy()
    target = x if split == "training" else x_test
    target[4, 1, 2, 0] = bad
    error = refused(npz_spec(tmp_path, x, classes(12), x_test, classes(6)))
    # trained to `loss nan` and exited 0 before
    assert error.message == (
        f"expected finite pixel values in the {split} images of d.npz; image 4 has {word} at row 1, "
        "column 2, channel 0"
    )
    assert "nan_to_num" in error.hint


@pytest.mark.parametrize(("bad", "word"), [(np.inf, "infinity"), (np.nan, "NaN")])
def test_non_finite_class_labels_say_so_without_a_warning(tmp_path, bad, word):
    y = classes(12).astype("float64")
    y[3] = bad
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy's RuntimeWarning of np.mod(inf, 1)
        error = refused(npz_spec(tmp_path, pixels(12), y, pixels(6), classes(6)))
    assert error.message == f"expected integer class labels in training; found {word}"


def test_non_finite_masks_say_so(tmp_path):
    masks = np.zeros((12, 8, 8), "float32")
    masks[2, 0, 0] = np.nan
    head = "  - conv2d: {filters: 3, kernel_size: 1, activation: softmax}\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        error = refused(npz_spec(tmp_path, pixels(12), masks, pixels(6), masks[:6], head))
    assert "found NaN or infinity" in error.message


# -- data.rescale: auto and the pixel depth ------------------------------------------------------
@pytest.mark.parametrize(
    ("dtype", "high", "factor"),
    [("uint8", 256, 1 / 255), ("int8", 128, 1 / 255), ("uint16", 65536, 1 / 65535), ("int64", 256, 1 / 255)],
)
def test_rescale_auto_follows_the_pixel_depth(tmp_path, dtype, high, factor):
    path = npz_spec(tmp_path, pixels(12, dtype, high), classes(12), pixels(6, dtype, high), classes(6))
    compiled, config, data = loaded(path)
    assert rescale_factor(config, data, compiled) == pytest.approx(factor)  # uint16 was × 1/255
    assert data.source["rescale"] == pytest.approx(factor)  # lock.json records it


def test_reporting_and_the_pipeline_get_the_same_factor(tmp_path):
    from cnnspec.training.pipeline import pipeline_settings

    path = npz_spec(
        tmp_path, pixels(12, "uint16", 65536), classes(12), pixels(6, "uint16", 65536), classes(6)
    )
    compiled, config, data = loaded(path)
    assert pipeline_settings(compiled, config, data).rescale == pytest.approx(1 / 65535)
    # the stand-in reporting passes for image files (8-bit): 1/255 as before
    files = SimpleNamespace(integer_pixels=True)
    assert rescale_factor(config, files, compiled) == pytest.approx(1 / 255)  # type: ignore[arg-type]


def test_integer_pixels_of_unknown_depth_ask_for_a_rescale(tmp_path):
    x = pixels(12, "int32", 1000)
    x[0, 0, 0, 0] = 999
    path = npz_spec(tmp_path, x, classes(12), pixels(6, "int32"), classes(6))
    error = refused(path)
    assert error.path == "data.source.npz"
    assert error.message == (
        "expected 8-bit (0–255) or uint16 training images for data.rescale: auto; the training "
        "images of d.npz are int32 from 0 to 999"
    )
    assert "rescale: 0.001001" in error.hint and "null" in error.hint
    # written as auto: located on data.rescale; a number (or null) is taken as given
    error = refused(npz_spec(tmp_path, x, classes(12), x[:6], classes(6), extra="  rescale: auto\n"))
    assert error.path == "data.rescale"
    compiled, config, data = loaded(
        npz_spec(tmp_path, x, classes(12), x[:6], classes(6), extra="  rescale: 0.001\n")
    )
    assert rescale_factor(config, data, compiled) == pytest.approx(0.001)


def test_test_images_of_another_depth_are_refused(tmp_path):
    path = npz_spec(tmp_path, pixels(12), classes(12), pixels(6, "uint16", 65536), classes(6))
    error = refused(path)
    assert error.message == (
        "expected training and test images of one depth for data.rescale: auto; the training "
        "images of d.npz are uint8 (0–255) and the test images uint16 (0–65535)"
    )


@pytest.mark.parametrize(("train", "test"), [("uint8", "float32"), ("float32", "uint8")])
def test_integer_and_float_splits_are_refused_under_rescale_auto(tmp_path, train, test):
    # auto divides integer pixels and keeps float ones, and one factor serves both splits: the
    # test images of [0, 1] floats beside uint8 training images were scored 255 times too dark
    def stored(x: np.ndarray, dtype: str) -> np.ndarray:
        return (x / 255).astype(dtype) if dtype == "float32" else x

    x_train, x_test = stored(pixels(12), train), stored(pixels(6), test)
    error = refused(npz_spec(tmp_path, x_train, classes(12), x_test, classes(6)))
    assert error.path == "data.source.npz"
    assert error.message == (
        "expected training and test images of one kind for data.rescale: auto, which divides "
        f"integer pixels and keeps float ones; the training images of d.npz are {train} and the "
        f"test images {test}"
    )
    # a number (or null) is one factor for both, as written
    loaded(npz_spec(tmp_path, x_train, classes(12), x_test, classes(6), extra="  rescale: null\n"))


@pytest.mark.parametrize("test_shape", [(6, 8, 8, 1), (6, 7, 7, 3)])
def test_test_images_of_another_shape_are_refused_before_training(tmp_path, test_shape):
    # they trained every epoch, then the test evaluation was an internal error
    x_test = np.zeros(test_shape, dtype="uint8")
    error = refused(npz_spec(tmp_path, pixels(12), classes(12), x_test, classes(6)))
    assert error.path == "data.source.npz"
    assert error.message == (
        "expected test images of the training images' shape [8, 8, 3]; the test images of d.npz "
        f"have shape {list(test_shape[1:])}"
    )


@pytest.mark.parametrize("link", ["symlink", "hard link"])
def test_a_table_naming_one_image_by_two_links_is_refused(tmp_path, link):
    # the two names were two images, which could land in the training and the test split
    names = write_images(tmp_path / "img", 4)
    make = (lambda a, b: b.symlink_to(a.name)) if link == "symlink" else (lambda a, b: b.hardlink_to(a))
    make(tmp_path / "img" / names[1], tmp_path / "img" / "copy.png")
    rows = ["file,labels", *[f"{n},cat" for n in [*names, "copy.png"]]]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    head = MULTILABEL.replace("units: 3", "units: 1")
    error = refused(spec(tmp_path, "{images: img, labels: t.csv}", head, TASK_OF_TABLE["labels"]))
    assert error.path == "data.source.labels"
    assert error.message == (
        f"expected each image once in t.csv; it lists rows 3 ({names[1]}) and 6 (copy.png) (one file: a link)"
    )


# -- class_names ---------------------------------------------------------------------------------
def test_too_few_class_names_are_refused(tmp_path):
    names = np.array(["a", "b"])
    error = refused(npz_spec(tmp_path, pixels(12), classes(12), pixels(6), classes(6), class_names=names))
    # were replaced by '0', '1', '2' without a word
    assert error.path == "data.source.npz"
    assert error.message == (
        "expected a name for each of the 3 classes (labels 0–2) in d.npz; its class_names has 2 (a, b)"
    )
    assert "one name per class" in error.hint


def test_class_names_of_multilabel_targets_must_match_the_columns(tmp_path):
    hot = (np.random.default_rng(1).random((12, 3)) > 0.5).astype("uint8")
    names = np.array(["cat", "dog", "owl", "fox"])
    path = npz_spec(tmp_path, pixels(12), hot, pixels(6), hot[:6], MULTILABEL, class_names=names)
    path.write_text(path.read_text().replace("{npz: d.npz}", "{npz: d.npz, target: multilabel}"))
    error = refused(path)
    assert error.message.startswith(
        "expected a name for each of the 3 labels in d.npz; its class_names has 4 "
    )


# -- a multi-output npz with an output of fewer rows than images -----------------------------------
def test_a_multi_output_npz_with_a_short_second_output_names_it(tmp_path):
    """Only the first output's rows were counted: a shorter second output stopped train's split
    with an IndexError."""
    from tests.test_script_refusal_order import MULTI

    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "d.npz",
        x_train=rng.random((12, 8, 8, 3)).astype("float32"),
        x_test=rng.random((6, 8, 8, 3)).astype("float32"),
        y_train_kind=classes(12),
        y_test_kind=classes(6),
        y_train_size=np.arange(11, dtype="float32"),
        y_test_size=np.arange(6, dtype="float32"),
    )
    path = tmp_path / "spec.yaml"
    path.write_text(MULTI)
    error = refused(path)
    assert error.path == "data.source.npz" and error.loc.line == 14
    assert error.message == "expected as many training targets for output size as images (12); received 11"
    assert error.hint == "store one row of y_train_size per image of x_train, in the same order"
