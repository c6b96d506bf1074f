"""Data a third audit found to end in an internal error, or to be read otherwise than the spec
says without a word: class labels of 10**12 or 2**64 - 1, a mask beyond the pixel limit, an
absolute path to a bad image in a values table, split settings beside a train/, test/ folder,
targets and pixels beyond float32's range, a class whose files are all bad under
``on_bad_file: skip`` and a path of the wrong kind (a file as a folder, a folder as a CSV).
Each is a located :class:`SpecError` now. No TensorFlow: ``load_dataset`` and the listing
functions are called directly on tiny arrays and Pillow images.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnspec.training import subsets
from cnnspec.training.filelist import ListingError, index_folder, read_csv
from tests.test_data_files_audit import data_error, load

CLASSIFIER = "  - global_avg_pool2d\n  - dense: {units: 3, activation: softmax}\n"
REGRESSION = "  - global_avg_pool2d\n  - dense: {units: 1}\n"
SEGMENTATION = "  - conv2d: {filters: 3, kernel_size: 1, activation: softmax}\n"


# -- helpers --------------------------------------------------------------------------------------
def write_spec(
    tmp_path: Path, source: str, head: str, extra: str = "", channels: int = 3, training: str = ""
) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(
        f"cnnspec: 1\nname: audit3\ninput: {{shape: [8, 8, {channels}]}}\nmodel:\n"
        "  - conv2d: {filters: 2, kernel_size: 3, padding: same}\n"
        + head
        + f"data:\n  source: {source}\n"
        + extra
        + f"training: {{{training}epochs: 1, batch_size: 4, seed: 3}}\n",
        encoding="utf-8",
    )
    return path


def image(path: Path, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, dtype="uint8")).save(path)
    return path


def class_tree(folder: Path, classes: dict[str, int]) -> None:
    for name, count in classes.items():
        for index in range(count):
            image(folder / name / f"{name}{index}.png", 10 * index)


def png_header(path: Path, width: int, height: int) -> Path:
    """A grayscale PNG that claims ``width`` × ``height`` pixels and holds one empty IDAT: Pillow
    opens it from its header alone (no pixels to write or read)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )
    return path


def npz(tmp_path: Path, y_train: np.ndarray, **arrays: np.ndarray) -> str:
    """``d.npz`` of 9 training and 3 test 8×8×1 images with ``y_train`` (the test labels 0, 1,
    2), ``arrays`` replacing any of them; the spec's source."""
    x = np.zeros((len(y_train), 8, 8, 1), dtype="uint8")
    saved = {"x_train": x, "y_train": y_train, "x_test": x[:3], "y_test": np.arange(3)} | arrays
    np.savez(tmp_path / "d.npz", **saved)
    return "{npz: d.npz}"


# -- 1. class labels of 10**12 and 2**64 - 1 ------------------------------------------------------
def uint64_max_label() -> np.ndarray:
    """Labels 0, 1, 2 with one 2**64 - 1: ≥ 0, and -1 once cast to int64."""
    labels = np.array([0, 1, 2] * 3, dtype="uint64")
    labels[4] = np.iinfo("uint64").max
    return labels


@pytest.mark.parametrize(
    ("labels", "count"),
    [
        ((np.arange(9) % 3) * 10**12, 2 * 10**12 + 1),
        (uint64_max_label(), 2**64),
        ((np.arange(9) % 3) * 1e30, int(2e30) + 1),
    ],
    ids=["10**12", "uint64-max", "float-1e30"],
)
def test_a_huge_class_label_is_refused_as_too_many_classes(tmp_path, labels, count):
    """Before: np.bincount asked for 14.6 TiB (MemoryError), or 2**64 - 1 wrapped to -1 in int64
    (ValueError): internal errors; a whole float of 1e30 became int64's minimum (a NumPy warning,
    then "received -9223372036854775808"). Now the error of any label beyond the outputs."""
    message, hint, where = data_error(write_spec(tmp_path, npz(tmp_path, labels), CLASSIFIER, channels=1))
    assert message == f"expected at most 3 classes (the model's output units); the data has {count}"
    assert where.startswith("model") and hint is not None and "no class index" in hint


def test_a_huge_class_label_with_data_classes_is_refused(tmp_path):
    """data.classes may select 2 of more classes, so the count is no error there; a label of
    10**12 still is (its class names alone would fill the memory)."""
    labels = (np.arange(9) % 3) * 10**12
    spec = write_spec(
        tmp_path, npz(tmp_path, labels), CLASSIFIER, "  classes: [0, 1000000000000]\n", channels=1
    )
    message, _, where = data_error(spec)
    assert message == "expected class labels of at most 999,999 in training; received 2000000000000"
    assert where == "data.source"


def test_select_does_not_size_a_table_by_the_largest_label():
    """subsets.select looked labels up in an array as long as the largest label + 1."""
    y = np.array([0, 10**12, 5, 10**12, 0])
    x, relabelled = subsets.select(np.arange(5), y, [10**12, 0])
    assert x.tolist() == [0, 1, 3, 4] and relabelled.tolist() == [1, 0, 0, 1]
    assert subsets.select(np.arange(5), y, [7])[0].tolist() == []


def test_a_huge_mask_class_index_is_named_unwrapped(tmp_path):
    """Before: int32 wrapped 10**12 to -727379968, which the error then named."""
    masks = np.zeros((9, 8, 8), dtype="int64")
    masks[0, 0, 0] = 10**12
    source = npz(tmp_path, masks, y_test=np.zeros((3, 8, 8), dtype="int64"))
    message, _, _ = data_error(write_spec(tmp_path, source, SEGMENTATION, channels=1))
    assert "1000000000000" in message and "masks" in message


# -- 2. a mask beyond the pixel limit -------------------------------------------------------------
@pytest.mark.parametrize(("side", "shown"), [(8000, "8000×8000"), (20000, "larger")])
def test_an_oversized_mask_is_refused_as_an_oversized_image_is(tmp_path, side, shown):
    """Before: 20000×20000 raised Pillow's DecompressionBombError (an internal error), and
    8000×8000 was decoded whole (64 MB of a mask) before it was refused for its size."""
    (tmp_path / "masks").mkdir()
    for index in range(4):
        image(tmp_path / "imgs" / f"im{index}.png")
        Image.fromarray(np.zeros((8, 8), dtype="uint8")).save(tmp_path / "masks" / f"im{index}.png")
    png_header(tmp_path / "masks" / "im2.png", side, side)
    spec = write_spec(tmp_path, "{images: imgs, masks: masks}", SEGMENTATION)
    message, hint, where = data_error(spec)
    assert message == (
        f"cannot read the mask masks/im2.png: expected an image of at most 50,000,000 pixels; "
        f"masks/im2.png is {shown}"
    )
    assert where == "data.source.masks" and hint is not None


# -- 3. an absolute path to a bad image in a table -------------------------------------------------
def test_an_absolute_path_to_a_bad_image_is_named_as_written(tmp_path):
    """Before: Path.relative_to raised ValueError while the error message was built."""
    for index in range(3):
        image(tmp_path / "imgs" / f"im{index}.png")
    outside = tmp_path / "outside_bad.png"
    outside.write_bytes(b"nope!")
    rows = "".join(f"im{index}.png,{index}\n" for index in range(3))
    (tmp_path / "v.csv").write_text(f"file,age\n{rows}{outside},3\n")
    spec = write_spec(tmp_path, "{images: imgs, values: v.csv}", REGRESSION, training="task: regression, ")
    message, hint, where = data_error(spec)
    assert message.startswith(f"cannot read the image {outside}: ") and where == "data.source.images"
    assert hint is not None


# -- 4. test_split and validation_split beside a train/, val/, test/ folder ------------------------
def split_folder(folder: Path) -> None:
    for split in ("train", "val", "test"):
        class_tree(folder / split, {"a": 4, "b": 4})


@pytest.mark.parametrize("key", ["test_split", "validation_split"])
def test_a_split_setting_for_a_split_the_folder_has_is_refused(tmp_path, key):
    """Before: the folders' splits were used and the setting ignored without a word. A layout
    without that split's folder still takes the setting (it splits train/)."""
    split = key.split("_")[0]
    lacking = tmp_path / "lacking"
    for folder in ("train", "val", "test"):
        if folder != {"test": "test", "validation": "val"}[split]:
            class_tree(lacking / folder, {"a": 4, "b": 4})
    sizes = load(write_spec(tmp_path, "{directory: lacking}", CLASSIFIER, f"  {key}: 0.25\n")).sizes()
    assert sizes[split] == 2 and sizes["train"] == 6
    split_folder(tmp_path / "photos")
    assert load(write_spec(tmp_path, "{directory: photos}", CLASSIFIER)).sizes() == dict.fromkeys(
        ("train", "validation", "test"), 8
    )  # the default settings are no error beside a full layout
    spec = write_spec(tmp_path, "{directory: photos}", CLASSIFIER, f"  {key}: 0.5\n")
    message, hint, where = data_error(spec)
    assert message == (
        f"expected no {key} for a folder with its own {split} set (train/, val/, test/ in "
        f"{tmp_path / 'photos'}); received 0.5"
    )
    assert where == f"data.{key}" and hint is not None and f"remove {key}" in hint


# -- 5. targets and pixels beyond float32 ----------------------------------------------------------
def test_a_regression_value_beyond_float32_is_named_by_row(tmp_path):
    """Before: NumPy's overflow warning on stderr, then "found NaN or infinity" naming no row."""
    for index in range(4):
        image(tmp_path / "imgs" / f"im{index}.png")
    (tmp_path / "v.csv").write_text("file,age\nim0.png,1\nim1.png,2\nim2.png,1e39\nim3.png,-3\n")
    spec = write_spec(tmp_path, "{images: imgs, values: v.csv}", REGRESSION, training="task: regression, ")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        message, hint, where = data_error(spec)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert "v.csv row 4 (im2.png), age" in message and "float32" in message and "'1e39'" in message
    assert where == "data.source.values" and hint is not None


def test_npz_regression_targets_beyond_float32_are_refused(tmp_path):
    values = np.linspace(0, 1, 9)
    values[5] = 1e300
    npz(tmp_path, values, y_test=np.zeros(3))
    source = "{npz: d.npz, target: regression}"
    spec = write_spec(tmp_path, source, REGRESSION, channels=1, training="loss: mse, ")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        message, _, _ = data_error(spec)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert "float32" in message and "1e+300" in message


def test_float64_pixels_beyond_float32_are_refused_as_nan_pixels_are(tmp_path):
    """Before: the finiteness check passed 1e300, which the pipeline's float32 made infinity."""
    x = np.zeros((9, 8, 8, 1))
    x[4, 2, 3, 0] = -1e300
    source = npz(tmp_path, np.arange(9) % 3, x_train=x)
    message, hint, _ = data_error(write_spec(tmp_path, source, CLASSIFIER, channels=1))
    assert message == (
        "expected pixel values within float32's range in the training images of d.npz; image 4 "
        "has -1e+300 at row 2, column 3, channel 0"
    )
    assert hint is not None


def test_a_longdouble_pixel_beyond_any_float_is_refused_not_an_internal_error(tmp_path):
    """1e400 in a longdouble array is finite there and infinite as a float: the check took it
    for a NaN-like value and then found none (an IndexError, "internal error")."""
    x = np.zeros((9, 8, 8, 1), np.longdouble)
    x[4, 2, 3, 0] = np.longdouble(10) ** 400
    source = npz(tmp_path, np.arange(9) % 3, x_train=x)
    message, _, _ = data_error(write_spec(tmp_path, source, CLASSIFIER, channels=1))
    assert message == (
        "expected pixel values within float32's range in the training images of d.npz; image 4 "
        "has 1e+400 at row 2, column 3, channel 0"
    )


# -- 6. a class whose files are all bad under on_bad_file: skip ------------------------------------
def test_a_class_of_only_bad_files_is_refused_under_skip(tmp_path):
    """Before: the class was kept without an image in any split (and a note spoke of the data's
    2 classes). A class with good files beside its bad ones keeps the good ones."""
    class_tree(tmp_path / "photos", {"a": 4, "b": 4, "c": 3})
    (tmp_path / "photos" / "c" / "bad.png").write_bytes(b"not an image")
    spec = write_spec(tmp_path, "{directory: photos}", CLASSIFIER, "  on_bad_file: skip\n")
    dataset = load(spec)
    assert dataset.class_names == ["a", "b", "c"] and sum(dataset.sizes().values()) == 11
    assert [path.name for path, _ in dataset.bad_files] == ["bad.png"]
    for name in ("c0.png", "c1.png", "c2.png"):
        (tmp_path / "photos" / "c" / name).write_bytes(b"not an image")
    message, hint, where = data_error(spec)
    assert "every image of the class 'c'" in message and "expected images in every class" in message
    assert str(tmp_path / "photos" / "c" / "c0.png") in message and "bad.png" in message
    assert where == "data.source.directory" and hint is not None


# -- 7. a path of the wrong kind ----------------------------------------------------------------------
def test_a_file_given_as_a_folder_is_not_called_missing(tmp_path):
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("file,label\n")
    with pytest.raises(ListingError) as info:
        index_folder(csv_file)
    assert str(info.value) == f"expected a folder of class sub-folders; {csv_file} is a file, not a folder"
    assert info.value.hint is not None and "csv" in info.value.hint
    message, _, where = data_error(write_spec(tmp_path, "{directory: labels.csv}", CLASSIFIER))
    assert "is a file, not a folder" in message and where == "data.source.directory"


def test_a_folder_given_as_a_csv_is_not_called_missing(tmp_path):
    class_tree(tmp_path / "photos", {"a": 2})
    with pytest.raises(ListingError) as info:
        read_csv(tmp_path / "photos", "file", "label")
    assert str(info.value) == (
        f"expected a CSV file of image paths and labels; {tmp_path / 'photos'} is a folder, not a file"
    )
    assert info.value.hint is not None and "directory" in info.value.hint
    message, _, where = data_error(write_spec(tmp_path, "{csv: photos}", CLASSIFIER))
    assert "is a folder, not a file" in message and where == "data.source.csv"
