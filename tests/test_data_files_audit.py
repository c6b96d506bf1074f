"""Image folders, tables and masks found by a data audit to leave images out (or refuse good
data) without a word: images in formats cnnspec does not read, images without a table row,
validation/test folders under ``data.classes``, masks with an uppercase extension, a CSV header
with spaces, Unicode spellings of class names and symlinked sub-folders. No TensorFlow: the
listing and loading functions are called directly on tiny Pillow images.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnspec.analysis.settings import data_config, training_config
from cnnspec.analysis.settings_types import TrainConfig
from cnnspec.api import compile_spec
from cnnspec.errors import SpecError
from cnnspec.training import imagefiles, subsets, targets
from cnnspec.training.data import load_dataset
from cnnspec.training.dataset import Dataset
from cnnspec.training.filelist import ListingError, index_folder, read_csv

NFC_EMU = unicodedata.normalize("NFC", "ému")
NFD_EMU = unicodedata.normalize("NFD", "ému")
CLASSIFIER = "  - global_avg_pool2d\n  - dense: {units: UNITS, activation: softmax}\n"
SIGMOID = "  - global_avg_pool2d\n  - dense: {units: UNITS, activation: sigmoid}\n"
REGRESSION = "  - global_avg_pool2d\n  - dense: {units: 1}\n"
SEGMENTATION = "  - conv2d: {filters: 3, kernel_size: 1, activation: softmax}\n"


# -- helpers --------------------------------------------------------------------------------------
def image(path: Path, value: int = 0, suffix_format: str | None = None) -> Path:
    """An 8×8 RGB image at ``path`` (its format from the suffix, or ``suffix_format``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, dtype="uint8")).save(path, format=suffix_format)
    return path


def class_tree(folder: Path, classes: dict[str, int]) -> None:
    """``folder/<class>/<class><i>.png``: ``classes[class]`` images each."""
    for name, count in classes.items():
        for index in range(count):
            image(folder / name / f"{name}{index}.png", 10 * index)


def photos_with_unreadable_formats(folder: Path) -> None:
    """Class folders cat/ and dog/ of 3 PNGs each, with 3 images cnnspec does not read
    (cat/w.webp, dog/sub/t.TIFF, dog/s.jfif), a hidden WebP and a README.txt (no images)."""
    class_tree(folder, {"cat": 3, "dog": 3})
    image(folder / "cat" / "w.webp", suffix_format="WEBP")
    image(folder / "dog" / "sub" / "t.TIFF", suffix_format="TIFF")
    image(folder / "dog" / "s.jfif", suffix_format="JPEG")
    image(folder / "dog" / ".hidden.webp", suffix_format="WEBP")  # hidden: left out
    (folder / "dog" / "README.txt").write_text("no image")


def write_spec(
    tmp_path: Path, source: str, head: str, extra: str = "", units: int = 2, training: str = ""
) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(
        "cnnspec: 1\nname: audit\ninput: {shape: [8, 8, 3]}\nmodel:\n"
        "  - conv2d: {filters: 2, kernel_size: 3, padding: same}\n"
        + head.replace("UNITS", str(units))
        + f"data:\n  source: {source}\n"
        + extra
        + f"training: {{{training}epochs: 1, batch_size: 4, seed: 3}}\n",
        encoding="utf-8",
    )
    return path


def load(path: Path) -> Dataset:
    compiled = compile_spec(path)
    try:
        config = training_config(compiled)
    except SpecError as exc:  # a task the training settings do not take yet: the data alone
        if "expected a classifier output" not in str(exc) and "expected one model output" not in str(exc):
            raise
        config = TrainConfig(data=data_config(compiled, raise_errors=True))
    return load_dataset(compiled, config, config.seed or 0)  # the spec's seed, as train uses it


def data_error(path: Path) -> tuple[str, str | None, str]:
    """The message, hint and spec path of the one located error that loading ``path`` gives."""
    with pytest.raises(SpecError) as info:
        load(path)
    (error,) = info.value.errors
    assert error.loc is not None
    return error.message, error.hint, error.path


def listed(dataset: Dataset) -> dict[str, list[tuple[str, str]]]:
    """Each split's files as (class name, relative file name) pairs, sorted."""
    out = {}
    for split, x, y in (("train", dataset.x_train, dataset.y_train), ("val", dataset.x_val, dataset.y_val)):
        out[split] = sorted(
            (dataset.class_names[int(label)], p.name) for p, label in zip(x.paths, y, strict=True)
        )
    out["test"] = sorted(
        (dataset.class_names[int(label)], p.name)
        for p, label in zip(dataset.x_test.paths, dataset.y_test, strict=True)
    )
    return out


# -- 1. images in formats cnnspec does not read ---------------------------------------------------
def test_image_extensions_are_defined_once():
    assert targets.IMAGE_EXTENSIONS is imagefiles.IMAGE_EXTENSIONS


def test_unreadable_formats_in_a_class_folder_are_named(tmp_path):
    photos_with_unreadable_formats(tmp_path / "photos")
    (tmp_path / "photos" / "cat" / "Thumbs.db").write_bytes(b"\0\1")
    with pytest.raises(ListingError) as info:
        index_folder(tmp_path / "photos")
    message = str(info.value)
    assert "3 image file(s) are in a format cnnspec does not read" in message
    assert "cat/w.webp" in message and "dog/sub/t.TIFF" in message and "dog/s.jfif" in message
    assert "PNG, JPEG, BMP or GIF" in message
    assert "README.txt" not in message and "Thumbs.db" not in message and ".hidden" not in message
    assert info.value.hint is not None and "convert" in info.value.hint and "'.'" in info.value.hint
    message, hint, where = data_error(write_spec(tmp_path, "{directory: photos}", CLASSIFIER))
    assert where == "data.source.directory" and "cat/w.webp" in message and hint is not None
    # moved out, the folder lists its PNGs; other files (README.txt, Thumbs.db) stay ignored
    for name in ("cat/w.webp", "dog/sub/t.TIFF", "dog/s.jfif"):
        (tmp_path / "photos" / name).rename(tmp_path / Path(name).name)
    assert len(index_folder(tmp_path / "photos").paths) == 6


def test_an_unreadable_format_beside_the_class_folders_is_refused(tmp_path):
    class_tree(tmp_path / "photos", {"cat": 2, "dog": 2})
    image(tmp_path / "photos" / "loose.webp", suffix_format="WEBP")
    with pytest.raises(ListingError, match=r"loose\.webp"):
        index_folder(tmp_path / "photos")


def images_with_a_tiff(tmp_path: Path) -> None:
    """imgs/im0..im3.png with their masks and labels.csv rows, and imgs/extra.tif (a TIFF
    cnnspec does not read) beside them."""
    for index in range(4):
        image(tmp_path / "imgs" / f"im{index}.png", 10 * index)
        image(tmp_path / "masks" / f"im{index}.png")
    image(tmp_path / "imgs" / "extra.tif", suffix_format="TIFF")
    (tmp_path / "labels.csv").write_text("file,labels\n" + "".join(f"im{i}.png,cat dog\n" for i in range(4)))


@pytest.mark.parametrize("kind", ["labels", "masks"])
def test_unreadable_formats_in_an_images_folder_are_named(tmp_path, kind):
    images_with_a_tiff(tmp_path)
    (tmp_path / "imgs" / "notes.txt").write_text("no image")
    source, head = (
        ("{images: imgs, labels: labels.csv}", SIGMOID)
        if kind == "labels"
        else ("{images: imgs, masks: masks}", SEGMENTATION)
    )
    message, hint, where = data_error(write_spec(tmp_path, source, head))
    assert where == "data.source.images"
    assert "extra.tif" in message and "1 image file(s) are in a format cnnspec does not read" in message
    assert "notes.txt" not in message and hint is not None and "convert" in hint


# -- 2. images without a row in a labels/values table ---------------------------------------------
@pytest.mark.parametrize("key", ["labels", "values"])
def test_images_without_a_table_row_are_named(tmp_path, key):
    for index in range(12):
        image(tmp_path / "imgs" / f"im{index:02d}.png", 10 * index)
    image(tmp_path / "imgs" / "._im00.png")  # hidden (a macOS resource fork): needs no row
    cells = "cat dog" if key == "labels" else "1.5"
    header = "file,labels" if key == "labels" else "file,age"
    rows = "".join(f"im{i:02d}.png,{cells}\n" for i in range(8))
    (tmp_path / "table.csv").write_text(f"{header}\n{rows}")
    head, training = (SIGMOID, "") if key == "labels" else (REGRESSION, "task: regression, loss: mse, ")
    path = write_spec(tmp_path, f"{{images: imgs, {key}: table.csv}}", head, training=training)
    message, hint, where = data_error(path)
    assert where == f"data.source.{key}"
    assert "expected a row in table.csv for every image" in message
    assert "4 image(s) have none: im08.png, im09.png, im10.png and 1 more" in message
    assert hint is not None and "add a row" in hint
    # a row for each (one spelled ./im11.png) loads every image
    rows += "".join(f"im{i:02d}.png,{cells}\n" for i in range(8, 11)) + f"./im11.png,{cells}\n"
    (tmp_path / "table.csv").write_text(f"{header}\n{rows}")
    data = load(path)
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 12


# -- 3. data.classes and validation/test folders --------------------------------------------------
def test_split_folders_need_only_the_selected_classes(tmp_path):
    class_tree(tmp_path / "photos" / "train", {"bird": 3, "cat": 4, "dog": 4})
    class_tree(tmp_path / "photos" / "val", {"cat": 2, "dog": 1})
    class_tree(tmp_path / "photos" / "test", {"cat": 1, "dog": 2})
    data = load(write_spec(tmp_path, "{directory: photos}", CLASSIFIER, "  classes: [dog, cat]\n"))
    assert data.class_names == ["dog", "cat"]
    files = listed(data)
    assert files["val"] == [("cat", "cat0.png"), ("cat", "cat1.png"), ("dog", "dog0.png")]
    assert files["test"] == [("cat", "cat0.png"), ("dog", "dog0.png"), ("dog", "dog1.png")]
    assert all(name == file[:3] for split in files.values() for name, file in split)  # labels kept


def test_a_test_directory_needs_only_the_selected_classes(tmp_path):
    class_tree(tmp_path / "train", {"bird": 3, "cat": 4, "dog": 4})
    class_tree(tmp_path / "test", {"cat": 2, "dog": 2})
    source = "{directory: train, test_directory: test}"
    data = load(write_spec(tmp_path, source, CLASSIFIER, "  classes: [cat, dog]\n"))
    files = listed(data)
    assert files["test"] == [
        ("cat", "cat0.png"),
        ("cat", "cat1.png"),
        ("dog", "dog0.png"),
        ("dog", "dog1.png"),
    ]
    # a selected class the test folder lacks, and a folder of no training class, are still refused
    message, hint, where = data_error(write_spec(tmp_path, source, CLASSIFIER, "  classes: [bird, cat]\n"))
    assert where == "data.source.test_directory" and "expected class folders 'bird'" in message
    assert hint is not None and "data.classes selects" in hint
    class_tree(tmp_path / "test", {"fish": 1})
    message, _, _ = data_error(write_spec(tmp_path, source, CLASSIFIER, "  classes: [cat, dog]\n"))
    assert "'fish'" in message


def test_a_missing_class_folder_without_data_classes_has_a_hint(tmp_path):
    class_tree(tmp_path / "train", {"bird": 3, "cat": 3})
    class_tree(tmp_path / "test", {"cat": 2})
    with pytest.raises(ListingError) as info:
        index_folder(tmp_path / "test", ["bird", "cat"])
    assert "'bird'" in str(info.value) and info.value.hint is not None and "data.classes" in info.value.hint


@pytest.mark.parametrize("classes", ["[cat, bb]", "[0, 9]"])
def test_an_unknown_data_class_is_named_before_an_unselected_empty_folder(tmp_path, classes):
    """An entry of data.classes that names no class was read as "select every class", so every
    folder was walked and an empty folder the selection never named was refused instead."""
    class_tree(tmp_path / "photos", {"cat": 3, "dog": 3})
    (tmp_path / "photos" / "z_empty").mkdir()
    message, _, where = data_error(
        write_spec(tmp_path, "{directory: photos}", CLASSIFIER, f"  classes: {classes}\n")
    )
    assert where == "data.classes[1]" and message.startswith("expected a class of the data; received")


# -- 4. masks matched by name, the extension in any case ------------------------------------------
def write_masks(tmp_path: Path, suffix: str, n: int = 6) -> None:
    rng = np.random.default_rng(0)
    for index in range(n):
        mask = rng.integers(0, 3, size=(8, 8)).astype("uint8")
        pixels = np.zeros((8, 8, 3), dtype="uint8")
        pixels[..., 0] = mask * 80
        Image.fromarray(pixels).save(tmp_path / "imgs" / f"im{index}.png")
        Image.fromarray(mask).save(tmp_path / "masks" / f"im{index}{suffix}", format="PNG")


def test_masks_with_an_uppercase_extension_are_found(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "masks").mkdir()
    write_masks(tmp_path, ".PNG")
    for index in range(6):  # the images as .jpg: the masks are found by name, not by extension
        (tmp_path / "imgs" / f"im{index}.png").rename(tmp_path / "imgs" / f"im{index}.jpg")
    data = load(write_spec(tmp_path, "{images: imgs, masks: masks}", SEGMENTATION))
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 6


def test_two_masks_for_one_image_are_refused(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "masks").mkdir()
    write_masks(tmp_path, ".png")
    Image.fromarray(np.zeros((8, 8), dtype="uint8")).save(tmp_path / "masks" / "im2.bmp")
    message, hint, where = data_error(write_spec(tmp_path, "{images: imgs, masks: masks}", SEGMENTATION))
    assert where == "data.source.masks" and "im2.bmp" in message and "im2.png" in message
    assert hint is not None and "one mask" in hint


# -- 5. a CSV header with spaces ------------------------------------------------------------------
def test_csv_header_is_stripped(tmp_path):
    for index in range(6):
        image(tmp_path / f"a{index}.png", 10 * index)
    rows = "".join(f"a{i}.png, {'cat' if i % 2 else 'dog'}\n" for i in range(6))
    (tmp_path / "sp.csv").write_text(f"file, label \n{rows}")
    listing = read_csv(tmp_path / "sp.csv", "file", "label")
    assert listing.class_names == ["cat", "dog"] and list(listing.labels) == [1, 0, 1, 0, 1, 0]


# -- 6. Unicode spellings of class names ----------------------------------------------------------
def test_data_classes_match_a_decomposed_folder_name(tmp_path):
    class_tree(tmp_path / "photos", {NFD_EMU: 4, "cat": 4, "dog": 4})
    data = load(write_spec(tmp_path, "{directory: photos}", CLASSIFIER, f"  classes: [{NFC_EMU}, cat]\n"))
    assert data.class_names == [NFD_EMU, "cat"]  # the data's own spelling is kept
    assert subsets.class_indices([NFC_EMU], [NFD_EMU, "cat"], 2) == [0]


def test_a_test_folder_spelled_otherwise_matches_the_training_class(tmp_path):
    class_tree(tmp_path / "photos" / "train", {NFC_EMU: 3, "cat": 3})
    class_tree(tmp_path / "photos" / "test", {NFD_EMU: 2, "cat": 2})
    data = load(write_spec(tmp_path, "{directory: photos}", CLASSIFIER))
    assert data.class_names == ["cat", NFC_EMU]
    assert sorted(int(label) for label in data.y_test) == [0, 0, 1, 1]
    (tmp_path / "test.csv").write_text(f"file,label\na.png,{NFD_EMU}\n")
    image(tmp_path / "a.png")
    assert list(read_csv(tmp_path / "test.csv", "file", "label", ["cat", NFC_EMU]).labels) == [1]


def test_two_spellings_of_one_class_folder_are_refused(tmp_path):
    class_tree(tmp_path / "photos", {NFD_EMU: 2, NFC_EMU: 2, "cat": 2})
    with pytest.raises(ListingError, match="two Unicode spellings"):
        index_folder(tmp_path / "photos")


# -- 7. symlinked folders -------------------------------------------------------------------------
def test_a_symlinked_subfolder_of_a_class_is_read(tmp_path):
    class_tree(tmp_path / "photos", {"cat": 2, "dog": 2})
    image(tmp_path / "elsewhere" / "sub" / "linked.png")
    os.symlink(tmp_path / "elsewhere" / "sub", tmp_path / "photos" / "dog" / "subdir_link")
    listing = index_folder(tmp_path / "photos")
    assert tmp_path / "photos" / "dog" / "subdir_link" / "linked.png" in listing.paths
    assert len(listing.paths) == 5 and list(listing.labels) == [0, 0, 1, 1, 1]


@pytest.mark.parametrize("target", ["dog", "."], ids=["own-class-folder", "data-folder"])
def test_a_symlink_loop_is_refused(tmp_path, target):
    class_tree(tmp_path / "photos", {"cat": 2, "dog": 2})
    os.symlink(tmp_path / "photos" / target, tmp_path / "photos" / "dog" / "loop")
    with pytest.raises(ListingError, match="loop"):
        index_folder(tmp_path / "photos")


def images_with_a_linked_folder(tmp_path: Path) -> str:
    """imgs/im0..im3.png, imgs/linked → elsewhere/ (holding more.png), and labels.csv with rows
    for the four images of imgs/ only; returns those rows."""
    for index in range(4):
        image(tmp_path / "imgs" / f"im{index}.png", 10 * index)
    image(tmp_path / "elsewhere" / "more.png", 200)
    os.symlink(tmp_path / "elsewhere", tmp_path / "imgs" / "linked")
    rows = "".join(f"im{i}.png,cat dog\n" for i in range(4))
    (tmp_path / "labels.csv").write_text(f"file,labels\n{rows}")
    return rows


def test_a_symlinked_subfolder_of_an_images_folder_is_read(tmp_path):
    rows = images_with_a_linked_folder(tmp_path)
    message, _, _ = data_error(write_spec(tmp_path, "{images: imgs, labels: labels.csv}", SIGMOID))
    assert "linked/more.png" in message  # listed, so it needs its row
    (tmp_path / "labels.csv").write_text(f"file,labels\n{rows}linked/more.png,cat dog\n")
    data = load(write_spec(tmp_path, "{images: imgs, labels: labels.csv}", SIGMOID))
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 5
