"""``codegen --script``'s train.py reads data folders as ``cnnspec train`` does since the data
audit (tests/test_data_files_audit.py): images in formats it does not read stop it, images
without a table row stop it, a validation/test folder needs only the classes ``data.classes``
selects, masks are found whatever their extension's case, CSV header names are stripped, class
names compare in Unicode NFC and symlinked sub-folders are followed, in cnnspec's order.

The scripts' data functions run without TensorFlow (tests/test_listing_edges.py's
:func:`script_functions`) beside cnnspec's loader: the same files, labels and order where both
accept the data, a stop where cnnspec refuses it.
"""

from __future__ import annotations

import ast
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cnnspec.analysis.settings import data_config
from cnnspec.api import compile_spec, generate_code
from cnnspec.training.filelist import index_folder
from cnnspec.training.targets import read_image_masks
from tests.test_data_files_audit import (
    CLASSIFIER,
    NFC_EMU,
    NFD_EMU,
    REGRESSION,
    SEGMENTATION,
    SIGMOID,
    class_tree,
    data_error,
    image,
    images_with_a_linked_folder,
    images_with_a_tiff,
    load,
    photos_with_unreadable_formats,
    write_masks,
    write_spec,
)
from tests.test_listing_edges import script_functions


# -- helpers --------------------------------------------------------------------------------------
def script(path: Path) -> dict[str, Any]:
    """The script's data functions for the spec ``path``; reading images (TensorFlow) returns the
    files instead, so that the task script's ``read_files`` runs without it."""
    functions = script_functions(path)
    functions["read_images"] = lambda files: files
    return functions


def script_data(path: Path, *args: Path) -> tuple[list[tuple[str, int]], ...]:
    """The train.py's ``load_data(*args)`` (which applies ``data.classes`` before its test
    split, as cnnspec train does): (file, label) pairs of the training, validation (a folder
    given; else []) and test parts, and the class names."""
    functions = script(path)
    (x, y), (x_test, y_test), names, found = functions["load_data"](*args)
    val = found["validation"] or (x[:0], y[:0])
    return pairs(x, y), pairs(*val), pairs(x_test, y_test), names


def pairs(files: Any, labels: Any) -> list[tuple[str, int]]:
    return [(str(f), int(label)) for f, label in zip(files, labels, strict=True)]


def cnnspec_data(path: Path) -> tuple[list[tuple[str, int]], ...]:
    """cnnspec train's listing of the spec ``path`` in :func:`script_data`'s form."""
    data = load(path)
    return (
        pairs(data.x_train.paths, data.y_train),
        pairs(data.x_val.paths, data.y_val),
        pairs(data.x_test.paths, data.y_test),
        data.class_names,
    )


# -- 1. images in formats cnnspec does not read ---------------------------------------------------
def test_unreadable_formats_in_class_folders_stop_the_script(tmp_path):
    photos_with_unreadable_formats(tmp_path / "photos")
    path = write_spec(tmp_path, "{directory: photos}", CLASSIFIER)
    message, _, _ = data_error(path)
    assert "3 image file(s) are in a format cnnspec does not read" in message
    with pytest.raises(SystemExit) as info:
        script(path)["load_data"](tmp_path / "photos")
    stopped = str(info.value.code)
    assert stopped.split("\n")[0] == message  # train's words: a format "cnnspec does not read"
    assert all(name in stopped for name in ("cat/w.webp", "dog/sub/t.TIFF", "dog/s.jfif"))
    assert "README.txt" not in stopped and ".hidden" not in stopped and "convert them" in stopped


def test_an_unreadable_format_beside_the_class_folders_stops_the_script(tmp_path):
    class_tree(tmp_path / "photos", {"cat": 2, "dog": 2})
    image(tmp_path / "photos" / "loose.webp", suffix_format="WEBP")
    path = write_spec(tmp_path, "{directory: photos}", CLASSIFIER)
    assert "loose.webp" in data_error(path)[0]
    with pytest.raises(SystemExit, match=r"in no class: loose\.webp\n"):
        script(path)["load_data"](tmp_path / "photos")


@pytest.mark.parametrize("kind", ["labels", "masks"])
def test_unreadable_formats_in_an_images_folder_stop_the_script(tmp_path, kind):
    images_with_a_tiff(tmp_path)
    if kind == "labels":
        path = write_spec(tmp_path, "{images: imgs, labels: labels.csv}", SIGMOID)
        args, read = (tmp_path / "imgs", tmp_path / "labels.csv"), "read_labels"
    else:
        path = write_spec(tmp_path, "{images: imgs, masks: masks}", SEGMENTATION)
        args, read = (tmp_path / "imgs", tmp_path / "masks"), "read_files"
    message = data_error(path)[0]
    assert "1 image file(s) are in a format cnnspec does not read: extra.tif" in message
    with pytest.raises(SystemExit) as info:
        script(path)[read](*args)
    assert str(info.value.code).split("\n")[0] == message


# -- 2. images without a row in a labels/values table ---------------------------------------------
@pytest.mark.parametrize("key", ["labels", "values"])
def test_images_without_a_table_row_stop_the_script(tmp_path, key):
    for index in range(12):
        image(tmp_path / "imgs" / f"im{index:02d}.png", 10 * index)
    image(tmp_path / "imgs" / "._im00.png")  # hidden (a macOS resource fork): needs no row
    cells, header = ("cat dog", "file,labels") if key == "labels" else ("1.5", "file,age")
    rows = "".join(f"im{i:02d}.png,{cells}\n" for i in range(8))
    (tmp_path / "table.csv").write_text(f"{header}\n{rows}")
    head, training = (SIGMOID, "") if key == "labels" else (REGRESSION, "task: regression, loss: mse, ")
    path = write_spec(tmp_path, f"{{images: imgs, {key}: table.csv}}", head, training=training)
    assert "4 image(s) have none: im08.png, im09.png, im10.png and 1 more" in data_error(path)[0]
    read = script(path)[f"read_{key}"]
    with pytest.raises(
        SystemExit, match=r"4 image\(s\) have none: im08\.png, im09\.png, im10\.png and 1 more"
    ):
        read(tmp_path / "imgs", tmp_path / "table.csv")
    # a row for each (one spelled ./im11.png) reads every image, in the table's order
    rows += "".join(f"im{i:02d}.png,{cells}\n" for i in range(8, 11)) + f"./im11.png,{cells}\n"
    (tmp_path / "table.csv").write_text(f"{header}\n{rows}")
    data = load(path)
    files, _, _ = read(tmp_path / "imgs", tmp_path / "table.csv")
    assert len(files) == len(data.x_train) + len(data.x_val) + len(data.x_test) == 12
    assert [p.name for p in files] == [f"im{i:02d}.png" for i in range(12)]


# -- 3. data.classes and validation/test folders --------------------------------------------------
def test_split_folders_need_only_the_selected_classes_in_the_script_too(tmp_path):
    class_tree(tmp_path / "photos" / "train", {"bird": 3, "cat": 4, "dog": 4})
    class_tree(tmp_path / "photos" / "val", {"cat": 2, "dog": 1})
    class_tree(tmp_path / "photos" / "test", {"cat": 1, "dog": 2})
    path = write_spec(tmp_path, "{directory: photos}", CLASSIFIER, "  classes: [dog, cat]\n")
    listed = cnnspec_data(path)
    assert listed[3] == ["dog", "cat"] and len(listed[1]) == 3 and len(listed[2]) == 3
    assert script_data(path, tmp_path / "photos") == listed


def test_a_test_directory_needs_only_the_selected_classes_in_the_script_too(tmp_path):
    class_tree(tmp_path / "train", {"bird": 3, "cat": 4, "dog": 4})
    class_tree(tmp_path / "test", {"cat": 2, "dog": 2})
    source = "{directory: train, test_directory: test}"
    path = write_spec(tmp_path, source, CLASSIFIER, "  classes: [cat, dog]\n")
    _, _, test, names = cnnspec_data(path)
    assert script_data(path, tmp_path / "train", tmp_path / "test")[2:] == (test, names)
    # a selected class the test folder lacks, and a folder of no training class: both refuse
    path = write_spec(tmp_path, source, CLASSIFIER, "  classes: [bird, cat]\n")
    assert "expected class folders 'bird'" in data_error(path)[0]
    with pytest.raises(
        SystemExit, match=r"expected class folders 'bird' in .*every class data\.classes selects"
    ):
        script_data(path, tmp_path / "train", tmp_path / "test")
    class_tree(tmp_path / "test", {"fish": 1})
    path = write_spec(tmp_path, source, CLASSIFIER, "  classes: [cat, dog]\n")
    assert "'fish'" in data_error(path)[0]
    with pytest.raises(SystemExit, match=r"among the training classes; received \['fish'\]"):
        script_data(path, tmp_path / "train", tmp_path / "test")


def test_the_script_notes_a_class_found_by_its_name_once_with_a_validation_folder(tmp_path, capsys):
    """data.classes [1]: the folder named 1 is the class at index 0; the note says so once, as
    cnnspec train does, not again for the validation folder (load_data passes notes=False there)."""
    class_tree(tmp_path / "photos" / "train", {"1": 3, "cat": 3})
    class_tree(tmp_path / "photos" / "val", {"1": 1, "cat": 1})
    path = write_spec(tmp_path, "{directory: photos}", CLASSIFIER, "  classes: [1, cat]\n")
    listed = script_data(path, tmp_path / "photos")
    assert listed == cnnspec_data(path) and listed[3] == ["1", "cat"]
    assert capsys.readouterr().out.count("1 is the class named '1', not the class at index 1") == 1
    load_data = next(
        node
        for node in ast.parse(generate_code(path, script=True)).body
        if isinstance(node, ast.FunctionDef) and node.name == "load_data"
    )
    calls = [
        [keyword.arg for keyword in node.keywords]
        for node in ast.walk(load_data)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "select_classes"
    ]
    assert sorted(calls) == [[], ["notes"]]


# -- 4. masks matched by name, the extension in any case ------------------------------------------
def masks_spec(tmp_path: Path, suffix: str) -> Path:
    (tmp_path / "imgs").mkdir()
    (tmp_path / "masks").mkdir()
    write_masks(tmp_path, suffix)
    return write_spec(tmp_path, "{images: imgs, masks: masks}", SEGMENTATION)


def test_the_script_finds_masks_with_an_uppercase_extension(tmp_path):
    path = masks_spec(tmp_path, ".PNG")
    for index in range(6):  # the images as .jpg: the masks are found by name, not by extension
        (tmp_path / "imgs" / f"im{index}.png").rename(tmp_path / "imgs" / f"im{index}.jpg")
    compiled = compile_spec(path)
    _, masks, names = read_image_masks(data_config(compiled, raise_errors=True), compiled)
    files, y, read_names = script(path)["read_files"](tmp_path / "imgs", tmp_path / "masks")
    assert [p.name for p in files] == [f"im{i}.jpg" for i in range(6)]
    np.testing.assert_array_equal(y, masks)
    assert read_names == names


def test_two_masks_for_one_image_stop_the_script(tmp_path):
    path = masks_spec(tmp_path, ".png")
    Image.fromarray(np.zeros((8, 8), dtype="uint8")).save(tmp_path / "masks" / "im2.bmp")
    message, _, where = data_error(path)
    assert where == "data.source.masks" and "im2.bmp" in message and "im2.png" in message
    with pytest.raises(SystemExit, match=r"one mask per image; .* holds 2 for im2\.png: im2\.bmp, im2\.png"):
        script(path)["read_files"](tmp_path / "imgs", tmp_path / "masks")


def test_two_images_for_one_mask_are_refused_in_both(tmp_path):
    """im2.png and im2.jpg were both paired with masks/im2.png without a word (one picture in two
    formats could land in the training and the test split), where two masks of one name are
    refused: refused alike, at data.source.images, naming the mask and both images."""
    path = masks_spec(tmp_path, ".png")
    image(tmp_path / "imgs" / "im2.jpg")
    message, hint, where = data_error(path)
    assert where == "data.source.images"
    folder = tmp_path / "imgs"
    assert message == f"expected one image per mask; {folder} holds 2 for masks/im2.png: im2.jpg, im2.png"
    assert hint is not None and hint.startswith("keep one image file per name (remove or rename the others)")
    stop = r"^expected one image per mask; .* holds 2 for masks/im2\.png: im2\.jpg, im2\.png\n"
    with pytest.raises(SystemExit, match=stop):
        script(path)["read_files"](tmp_path / "imgs", tmp_path / "masks")


@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_images_and_masks_are_ordered_by_their_nfc_names_in_both(tmp_path, form):
    """Named éN and fN: by raw code points, a decomposed é (e + accent) came before f and a
    composed one after it, so a macOS copy of the folders read its images (and split them) in
    another order than Linux."""
    import unicodedata

    path = masks_spec(tmp_path, ".png")
    for index in range(6):
        name = unicodedata.normalize(form, f"é{index}.png" if index % 2 else f"f{index}.png")
        for folder in ("imgs", "masks"):
            (tmp_path / folder / f"im{index}.png").rename(tmp_path / folder / name)
    compiled = compile_spec(path)
    _, masks, _ = read_image_masks(data_config(compiled, raise_errors=True), compiled)
    files, y, _ = script(path)["read_files"](tmp_path / "imgs", tmp_path / "masks")
    order = ["f0.png", "f2.png", "f4.png", "é1.png", "é3.png", "é5.png"]
    assert [unicodedata.normalize("NFC", p.name) for p in files] == order
    np.testing.assert_array_equal(y, masks)  # cnnspec reads them in the same order


def test_a_mask_named_in_the_other_unicode_form_is_its_images_mask_in_both(tmp_path):
    """Images named on Linux (composed é), masks copied from macOS (decomposed): both forms are
    one name, as cnnspec compares names everywhere else; the masks were "missing"."""
    import unicodedata

    path = masks_spec(tmp_path, ".png")
    for index in range(6):
        for folder, form in (("imgs", "NFC"), ("masks", "NFD")):
            name = unicodedata.normalize(form, f"é{index}.png")
            (tmp_path / folder / f"im{index}.png").rename(tmp_path / folder / name)
    compiled = compile_spec(path)
    _, masks, _ = read_image_masks(data_config(compiled, raise_errors=True), compiled)
    files, y, _ = script(path)["read_files"](tmp_path / "imgs", tmp_path / "masks")
    assert masks.shape == (6, 8, 8) and len(files) == 6
    np.testing.assert_array_equal(y, masks)
    for index in range(6):  # each image's own mask (write_masks draws a different one for each)
        with Image.open(tmp_path / "masks" / unicodedata.normalize("NFD", f"é{index}.png")) as mask:
            np.testing.assert_array_equal(masks[index], np.asarray(mask))


# -- 5. a CSV header with spaces ------------------------------------------------------------------
def test_the_script_strips_the_csv_header(tmp_path):
    for index in range(6):
        image(tmp_path / f"a{index}.png", 10 * index)
    rows = "".join(f"a{i}.png, {'cat' if i % 2 else 'dog'}\n" for i in range(6))
    (tmp_path / "sp.csv").write_text(f"file, label \n{rows}")
    for index in range(2):  # test images of their own: one file in both sets is refused
        image(tmp_path / f"t{index}.png", 10 * index)
    (tmp_path / "test.csv").write_text("file , label\nt0.png,dog\nt1.png, cat\n")
    path = write_spec(tmp_path, "{csv: sp.csv, test_csv: test.csv}", CLASSIFIER)
    train, val, test, names = cnnspec_data(path)
    script_train, _, script_test, script_names = script_data(path, tmp_path / "sp.csv", tmp_path / "test.csv")
    assert script_names == names == ["cat", "dog"] and script_test == test
    assert sorted(script_train) == sorted(train + val)


# -- 6. Unicode spellings of class names ----------------------------------------------------------
def test_data_classes_match_a_decomposed_folder_name_in_the_script_too(tmp_path):
    class_tree(tmp_path / "photos" / "train", {NFD_EMU: 4, "cat": 4, "dog": 4})
    class_tree(tmp_path / "photos" / "test", {NFD_EMU: 1, "cat": 2, "dog": 1})
    path = write_spec(tmp_path, "{directory: photos}", CLASSIFIER, f"  classes: [{NFC_EMU}, cat]\n")
    listed = cnnspec_data(path)
    assert listed[3] == [NFD_EMU, "cat"]  # the data's own spelling is kept
    assert script_data(path, tmp_path / "photos")[2:] == listed[2:]


def test_a_test_folder_spelled_otherwise_matches_the_training_class_in_the_script_too(tmp_path):
    class_tree(tmp_path / "photos" / "train", {NFC_EMU: 3, "cat": 3})
    class_tree(tmp_path / "photos" / "val", {"cat": 1, NFC_EMU: 1})
    class_tree(tmp_path / "photos" / "test", {NFD_EMU: 2, "cat": 2})
    path = write_spec(tmp_path, "{directory: photos}", CLASSIFIER)
    listed = cnnspec_data(path)
    assert listed[3] == ["cat", NFC_EMU] and sorted(label for _, label in listed[2]) == [0, 0, 1, 1]
    assert script_data(path, tmp_path / "photos") == listed


def test_csv_test_labels_spelled_otherwise_are_the_training_classes_in_the_script_too(tmp_path):
    for index in range(6):
        image(tmp_path / f"a{index}.png", 10 * index)
    rows = "".join(f"a{i}.png,{'cat' if i % 2 else NFC_EMU}\n" for i in range(6))
    (tmp_path / "train.csv").write_text(f"file,label\n{rows}", encoding="utf-8")
    for index in range(2):  # test images of their own: one file in both sets is refused
        image(tmp_path / f"t{index}.png", 10 * index)
    (tmp_path / "test.csv").write_text(f"file,label\nt0.png,{NFD_EMU}\nt1.png,cat\n", encoding="utf-8")
    path = write_spec(tmp_path, "{csv: train.csv, test_csv: test.csv}", CLASSIFIER)
    _, _, test, names = cnnspec_data(path)
    assert names == ["cat", NFC_EMU] and [label for _, label in test] == [1, 0]
    assert script_data(path, tmp_path / "train.csv", tmp_path / "test.csv")[2:] == (test, names)


def test_two_spellings_of_one_class_folder_stop_the_script(tmp_path):
    class_tree(tmp_path / "photos", {NFD_EMU: 2, NFC_EMU: 2, "cat": 2})
    path = write_spec(tmp_path, "{directory: photos}", CLASSIFIER, units=3)
    assert "two Unicode spellings" in data_error(path)[0]
    with pytest.raises(SystemExit, match="two Unicode spellings"):
        script(path)["load_data"](tmp_path / "photos")


# -- 7. symlinked folders; hidden ones; the order -------------------------------------------------
def test_the_script_follows_symlinked_subfolders_in_cnnspecs_order(tmp_path):
    for split in ("train", "val", "test"):
        class_tree(tmp_path / "photos" / split, {"cat": 2, "dog": 2})
    image(tmp_path / "elsewhere" / "sub" / "linked.png")
    image(tmp_path / "elsewhere" / "sub" / "deeper" / "a.png")
    os.symlink(tmp_path / "elsewhere" / "sub", tmp_path / "photos" / "train" / "dog" / "b_link")
    # a second link to the same folder: its images are listed once
    os.symlink(tmp_path / "elsewhere" / "sub", tmp_path / "photos" / "train" / "dog" / "c_again")
    image(tmp_path / "photos" / "train" / "dog" / "a_sub" / "z.png")
    image(tmp_path / "photos" / "train" / "dog" / ".cache" / "hidden.png")  # hidden: left out
    image(tmp_path / "photos" / "train" / "cat" / "._cat0.png")
    path = write_spec(tmp_path, "{directory: photos}", CLASSIFIER)
    listed = cnnspec_data(path)
    train = [str(Path(f).relative_to(tmp_path / "photos" / "train")) for f, _ in listed[0]]
    assert train == [
        "cat/cat0.png", "cat/cat1.png", "dog/dog0.png", "dog/dog1.png", "dog/a_sub/z.png",
        "dog/b_link/linked.png", "dog/b_link/deeper/a.png",
    ]  # fmt: skip
    assert script_data(path, tmp_path / "photos") == listed
    assert index_folder(tmp_path / "photos" / "train").paths == [Path(f) for f, _ in listed[0]]


@pytest.mark.parametrize("target", ["dog", "."], ids=["own-class-folder", "data-folder"])
def test_a_symlink_loop_stops_the_script(tmp_path, target):
    class_tree(tmp_path / "photos", {"cat": 2, "dog": 2})
    os.symlink(tmp_path / "photos" / target, tmp_path / "photos" / "dog" / "loop")
    path = write_spec(tmp_path, "{directory: photos}", CLASSIFIER)
    assert "loop" in data_error(path)[0]
    with pytest.raises(SystemExit, match=r"the symlinked folder .*loop leads back to .*\(a loop\)"):
        script(path)["load_data"](tmp_path / "photos")


def test_a_symlinked_subfolder_of_an_images_folder_needs_its_rows_in_the_script_too(tmp_path):
    rows = images_with_a_linked_folder(tmp_path)
    path = write_spec(tmp_path, "{images: imgs, labels: labels.csv}", SIGMOID)
    assert "linked/more.png" in data_error(path)[0]
    read = script(path)["read_labels"]
    with pytest.raises(SystemExit, match=r"1 image\(s\) have none: linked/more\.png"):
        read(tmp_path / "imgs", tmp_path / "labels.csv")
    (tmp_path / "labels.csv").write_text(f"file,labels\n{rows}linked/more.png,cat dog\n")
    files, _, _ = read(tmp_path / "imgs", tmp_path / "labels.csv")
    data = load(path)
    assert len(files) == len(data.x_train) + len(data.x_val) + len(data.x_test) == 5


# -- folders that are missing or cannot be read ---------------------------------------------------
def test_a_missing_masks_folder_is_named_as_masks_by_the_script_too(tmp_path):
    path = masks_spec(tmp_path, ".png")
    shutil.rmtree(tmp_path / "masks")
    message, _, where = data_error(path)
    assert where == "data.source.masks" and "expected a folder of masks" in message
    with pytest.raises(SystemExit, match=r"expected a folder of masks; .*masks does not exist"):
        script(path)["read_files"](tmp_path / "imgs", tmp_path / "masks")


def test_a_folder_the_script_cannot_read_stops_it_with_a_message(tmp_path, monkeypatch):
    """A sub-folder it may not list was a PermissionError traceback in the script (cnnspec
    names it); as root every folder is readable, so the listing is made to fail."""
    class_tree(tmp_path / "photos", {"cat": 2, "dog": 2})
    (tmp_path / "photos" / "dog" / "locked").mkdir()
    path = write_spec(tmp_path, "{directory: photos}", CLASSIFIER)
    functions = script(path)
    listing = Path.iterdir

    def iterdir(self):
        if self.name == "locked":
            raise PermissionError(13, "Permission denied", str(self))
        return listing(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    with pytest.raises(SystemExit) as info:
        functions["load_data"](tmp_path / "photos")
    stopped = str(info.value.code)
    assert f"cannot read the folder {tmp_path / 'photos' / 'dog' / 'locked'}: Permission denied" in stopped
    assert "make it readable" in stopped
