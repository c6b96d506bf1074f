"""Streamed image sources where a third audit found images leaking between splits or labels, or
a cached stream in class order, in ``cnnspec train`` and ``codegen --script``'s train.py alike:

1. one file in two of the training, validation and test sets (a ``test_directory`` or
   ``test_csv`` naming the training source, a ``test/`` linked to ``train/``, a file link);
2. one image under two class folders through a symlink or a hard link (a linked class folder, a link to
   another class inside one, a file link);
3. ``data.cache`` on files listed class by class: the shuffle buffer after the cache saw one
   class at a time, so the files are permuted once by the seed before the cache;
4. ``data.classes`` refusing bad files in the classes it leaves out (their folders are not read).

The listing tests need no TensorFlow (cnnspec's loader and the script's data functions, as in
tests/test_script_data_files.py); the stream's order and the script's history are ``slow``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from cnnspec.training.filelist import ListingError, index_folder
from tests.test_data_files_audit import CLASSIFIER, class_tree, data_error, image, write_spec
from tests.test_script_data_files import cnnspec_data, script, script_data

# (Keras warns when a stream's first epoch ends, as its length is unknown until then)
pytestmark = pytest.mark.filterwarnings("ignore:Your input ran out of data")

SPLIT = "  validation_split: 0.3\n"


def csv_source(tmp_path: Path) -> None:
    """``photos/`` of classes a and b (4 images each) and ``labels.csv`` naming all 8."""
    class_tree(tmp_path / "photos", {"a": 4, "b": 4})
    rows = "".join(f"photos/{c}/{c}{i}.png,{c}\n" for c in "ab" for i in range(4))
    (tmp_path / "labels.csv").write_text(f"file,label\n{rows}", encoding="utf-8")


def assert_same_files(path: Path, *args: Path) -> None:
    """The script's ``load_data(*args)`` lists the files, labels and classes cnnspec train does:
    the same test set, and the same training files (which the script splits for validation
    only later, in ``run``)."""
    ours, theirs = cnnspec_data(path), script_data(path, *args)
    assert theirs[2:] == ours[2:]
    assert sorted(theirs[0] + theirs[1]) == sorted(ours[0] + ours[1])


def stopped(path: Path, *args: Path) -> str:
    """The message the generated script's ``load_data(*args)`` stops with."""
    with pytest.raises(SystemExit) as info:
        script(path)["load_data"](*args)
    return str(info.value)


# -- 1. one file in two sets ----------------------------------------------------------------------
def test_a_test_directory_naming_the_training_folder_is_refused(tmp_path):
    class_tree(tmp_path / "photos", {"a": 4, "b": 4})
    path = write_spec(tmp_path, "{directory: photos, test_directory: photos}", CLASSIFIER, SPLIT)
    message, hint, where = data_error(path)
    assert where == "data.source.test_directory"
    assert "expected the training, validation and test images to be different files" in message
    assert "8 file(s) are in two of them" in message and "(training and test)" in message
    assert message.count("photos/a/") == 4 and "(and 3 more)" in message  # 5 named
    assert "of its own" in hint
    message = stopped(path, tmp_path / "photos", tmp_path / "photos")
    assert "8 file(s) are in two of them" in message and "(training and test)" in message


def test_a_test_csv_naming_the_training_csv_is_refused(tmp_path):
    csv_source(tmp_path)
    path = write_spec(tmp_path, "{csv: labels.csv, test_csv: labels.csv}", CLASSIFIER, SPLIT)
    message, _, where = data_error(path)
    assert where == "data.source.test_csv" and "8 file(s) are in two of them" in message
    message = stopped(path, tmp_path / "labels.csv", tmp_path / "labels.csv")
    assert "8 file(s) are in two of them" in message


def test_a_test_csv_naming_one_training_image_by_another_path_is_refused(tmp_path):
    csv_source(tmp_path)
    (tmp_path / "photos" / "link.png").symlink_to(tmp_path / "photos" / "b" / "b3.png")
    (tmp_path / "test.csv").write_text("file,label\n./photos/a/a0.png,a\nphotos/link.png,b\n")
    path = write_spec(tmp_path, "{csv: labels.csv, test_csv: test.csv}", CLASSIFIER, SPLIT)
    message, _, where = data_error(path)
    assert where == "data.source.test_csv" and "2 file(s) are in two of them" in message
    assert "a0.png (training and test)" in message and "link.png (training and test)" in message
    assert "2 file(s) are in two of them" in stopped(path, tmp_path / "labels.csv", tmp_path / "test.csv")


def test_a_test_folder_linked_to_the_train_folder_is_refused(tmp_path):
    class_tree(tmp_path / "photos" / "train", {"a": 4, "b": 4})
    (tmp_path / "photos" / "test").symlink_to("train")
    path = write_spec(tmp_path, "{directory: photos}", CLASSIFIER, SPLIT)
    message, _, where = data_error(path)
    assert where == "data.source.directory" and "8 file(s) are in two of them" in message
    assert "8 file(s) are in two of them" in stopped(path, tmp_path / "photos")


def test_a_validation_file_linked_to_a_training_file_is_refused(tmp_path):
    for split in ("train", "validation", "test"):
        class_tree(tmp_path / "photos" / split, {"a": 3, "b": 3})
    linked = tmp_path / "photos" / "validation" / "b" / "b2.png"
    linked.unlink()
    linked.symlink_to(tmp_path / "photos" / "train" / "b" / "b0.png")
    path = write_spec(tmp_path, "{directory: photos}", CLASSIFIER)
    message, _, where = data_error(path)
    assert where == "data.source.directory"
    assert "1 file(s) are in two of them" in message
    assert "validation/b/b2.png (training and validation)" in message
    assert "(training and validation)" in stopped(path, tmp_path / "photos")


def test_a_data_option_folder_is_read_whole_as_the_test_set(tmp_path):
    """evaluate/visualize/report's ``--data FOLDER`` is ``{directory: F, test_directory: F}``
    located at ``<--data>``: every image a test image, nothing trained on, so not refused."""
    from cnnspec.analysis.settings import training_config
    from cnnspec.api import compile_spec
    from cnnspec.reporting.data_option import DATA_LOC, parse_source, with_source
    from cnnspec.training.data import load_dataset
    from cnnspec.training.data_sources import DATA_OPTION_FILE

    assert DATA_LOC.file == DATA_OPTION_FILE
    class_tree(tmp_path / "photos", {"a": 4, "b": 4})
    compiled = compile_spec(write_spec(tmp_path, "{directory: photos}", CLASSIFIER, SPLIT))
    compiled = with_source(compiled, parse_source(str(tmp_path / "photos")))
    data = load_dataset(compiled, training_config(compiled), 0)
    assert len(data.x_test) == 8


def test_separate_sets_are_read_by_both(tmp_path):
    class_tree(tmp_path / "photos", {"a": 4, "b": 4})
    class_tree(tmp_path / "held", {"a": 2, "b": 2})
    path = write_spec(tmp_path, "{directory: photos, test_directory: held}", CLASSIFIER, SPLIT)
    listed = cnnspec_data(path)
    assert len(listed[0]) + len(listed[1]) == 8 and len(listed[2]) == 4
    assert_same_files(path, tmp_path / "photos", tmp_path / "held")


def test_a_test_file_hard_linked_to_a_training_file_is_refused(tmp_path):
    """A split made with hard links (``cp -al``, ``ln``): one file under two names, which no
    path tells apart; refused by cnnspec and the script alike, naming the file."""
    for split in ("train", "test"):
        class_tree(tmp_path / "photos" / split, {"a": 3, "b": 3})
    twin = tmp_path / "photos" / "test" / "a" / "a1.png"
    twin.unlink()
    os.link(tmp_path / "photos" / "train" / "b" / "b0.png", twin)
    path = write_spec(tmp_path, "{directory: photos}", CLASSIFIER, "  validation_split: 0.0\n")
    message, _, where = data_error(path)
    assert where == "data.source.directory" and "1 file(s) are in two of them" in message
    assert "test/a/a1.png (training and test)" in message
    assert "test/a/a1.png (training and test)" in stopped(path, tmp_path / "photos")
    # two names of one image within a class: listed once, as two symlinks to it are
    twin.unlink()
    twin.write_bytes((tmp_path / "photos" / "train" / "b" / "b1.png").read_bytes())
    os.link(tmp_path / "photos" / "train" / "a" / "a0.png", tmp_path / "photos" / "train" / "a" / "a9.png")
    training = [file for file, _ in cnnspec_data(path)[0]]
    assert len(training) == 6 and not any(file.endswith("a9.png") for file in training)
    assert_same_files(path, tmp_path / "photos")


def test_an_image_hard_linked_into_two_class_folders_is_refused(tmp_path):
    class_tree(tmp_path / "photos", {"a": 3, "b": 3})
    os.link(tmp_path / "photos" / "a" / "a0.png", tmp_path / "photos" / "b" / "twin.png")
    with pytest.raises(ListingError) as info:
        index_folder(tmp_path / "photos")
    message = str(info.value)
    assert f"the image file {tmp_path / 'photos' / 'b' / 'twin.png'} is reached both as" in message
    assert "(class 'a')" in message and "through a link (symbolic or hard)" in message
    path = write_spec(tmp_path, "{directory: photos}", CLASSIFIER)
    assert "two labels" in stopped(path, tmp_path / "photos")


# -- 2. one image under two class folders ---------------------------------------------------------
@pytest.mark.parametrize(
    ("link", "target", "kind"),
    [("c", "a", "folder"), ("b/more", "../a", "folder"), ("b/x.png", "../a/a0.png", "image file")],
    ids=["class-folder", "folder-in-a-class", "file-in-a-class"],
)
def test_an_image_reached_from_two_class_folders_is_refused(tmp_path, link, target, kind):
    class_tree(tmp_path / "photos", {"a": 3, "b": 3})
    (tmp_path / "photos" / link).symlink_to(target)
    with pytest.raises(ListingError) as info:
        index_folder(tmp_path / "photos")
    message = str(info.value)
    assert f"expected each image in one class folder of {tmp_path / 'photos'}; the {kind}" in message
    assert "(class 'a')" in message and f"as {tmp_path / 'photos' / link} (class" in message
    assert "two labels" in message and "remove the link" in (info.value.hint or "")
    path = write_spec(tmp_path, "{directory: photos}", CLASSIFIER, units=3 if link == "c" else 2)
    assert data_error(path)[2] == "data.source.directory"
    assert f"the {kind}" in stopped(path, tmp_path / "photos")


def test_a_class_folder_linking_to_another_class_first_is_refused_too(tmp_path):
    """The link in the class listed first (a/more → ../b): b's own folder is then reached twice."""
    class_tree(tmp_path / "photos", {"a": 3, "b": 3})
    (tmp_path / "photos" / "a" / "more").symlink_to("../b")
    both = r"reached both as .*a/more \(class 'a'\) and as .*photos/b \(class 'b'\)"
    with pytest.raises(ListingError, match=both):
        index_folder(tmp_path / "photos")
    path = write_spec(tmp_path, "{directory: photos}", CLASSIFIER)
    assert "two labels" in stopped(path, tmp_path / "photos")


def test_an_image_linked_twice_within_one_class_is_listed_once_by_both(tmp_path):
    class_tree(tmp_path / "photos", {"a": 4, "b": 4})
    (tmp_path / "photos" / "a" / "0best.png").symlink_to("a2.png")  # by name first: the one kept
    (tmp_path / "photos" / "b" / "again").symlink_to(".")  # a loop: still refused
    with pytest.raises(ListingError, match="loop"):
        index_folder(tmp_path / "photos")
    (tmp_path / "photos" / "b" / "again").unlink()
    listing = index_folder(tmp_path / "photos")
    kept = ["0best.png", "a0.png", "a1.png", "a3.png"]  # a2.png, reached again, left out
    assert [p.name for p in listing.paths] == [*kept, *(f"b{i}.png" for i in range(4))]
    path = write_spec(tmp_path, "{directory: photos}", CLASSIFIER, SPLIT)
    assert_same_files(path, tmp_path / "photos")


# -- 4. data.classes and bad files in the classes it leaves out -----------------------------------
@pytest.mark.parametrize("layout", ["folder", "test_directory"])
def test_bad_files_in_a_class_data_classes_leaves_out_are_not_checked(tmp_path, layout):
    class_tree(tmp_path / "photos", {"a": 4, "b": 4, "c": 2})
    (tmp_path / "photos" / "c" / "c0.png").write_bytes(b"x\n")  # not an image
    source = "{directory: photos}"
    args = [tmp_path / "photos"]
    if layout == "test_directory":
        class_tree(tmp_path / "held", {"a": 2, "b": 2, "c": 1})
        (tmp_path / "held" / "c" / "c0.png").write_bytes(b"x\n")
        (tmp_path / "photos" / "c" / "c0.png").unlink()
        source, args = "{directory: photos, test_directory: held}", [*args, tmp_path / "held"]
    path = write_spec(tmp_path, source, CLASSIFIER, "  classes: [a, b]\n" + SPLIT)
    listed = cnnspec_data(path)
    assert listed[3] == ["a", "b"] and not any("/c/" in f for part in listed[:3] for f, _ in part)
    assert_same_files(path, *args)
    # the classes it keeps are still checked
    (tmp_path / "photos" / "b" / "b1.png").write_bytes(b"x\n")
    assert "b1.png" in data_error(path)[0]
    assert "b1.png" in stopped(path, *args)


@pytest.mark.parametrize("layout", ["folder", "split", "test_directory"])
def test_the_folders_of_classes_data_classes_leaves_out_are_not_read(tmp_path, layout):
    """Only the selected classes' folders are walked: a left-out class's empty folder, its
    images in a format cnnspec does not read, an image linked from a kept class (which would
    otherwise have two labels) stop neither cnnspec nor the script, in the training folder and
    in a validation or test folder; the labels are still indices among all the classes."""
    root = tmp_path / "photos"
    trees = {"folder": [root], "split": [root / "train", root / "validation", root / "test"]}
    trees["test_directory"] = [root, tmp_path / "held"]
    for tree in trees[layout]:
        class_tree(tree, {"a": 4, "b": 4, "c": 2, "d": 2})
        for index in range(2):  # d: empty; c: a WebP and a link into a kept class
            (tree / "d" / f"d{index}.png").unlink()
        (tree / "c" / "c0.webp").write_bytes(b"RIFF")
        (tree / "c" / "c1.png").unlink()
        (tree / "c" / "c1.png").symlink_to(tree / "a" / "a0.png")
    source = {"folder": "{directory: photos}", "split": "{directory: photos}"}
    source["test_directory"] = "{directory: photos, test_directory: held}"
    args = [root] + ([tmp_path / "held"] if layout == "test_directory" else [])
    extra = "  classes: [b, 0]\n" + ("" if layout == "split" else SPLIT)  # (split: its own validation/)
    path = write_spec(tmp_path, source[layout], CLASSIFIER, extra)
    listed = cnnspec_data(path)
    assert listed[3] == ["b", "a"]  # `0`: the label index among all four classes
    assert not any(f"/{c}/" in f for c in "cd" for part in listed[:3] for f, _ in part)
    assert_same_files(path, *args)
    # the classes it keeps are still read whole
    (trees[layout][0] / "a" / "a3.webp").write_bytes(b"RIFF")
    assert "a3.webp" in data_error(path)[0] and "a3.webp" in stopped(path, *args)


def test_data_classes_still_names_a_kept_class_of_only_bad_files(tmp_path):
    """on_bad_file: skip, a kept class all of whose files are bad: named by its own name (the
    labels are renumbered by data.classes before the check)."""
    class_tree(tmp_path / "photos", {"a": 3, "b": 3, "c": 3})
    for index in range(3):
        (tmp_path / "photos" / "c" / f"c{index}.png").write_bytes(b"x\n")
    extra = "  classes: [c, a]\n  on_bad_file: skip\n" + SPLIT
    path = write_spec(tmp_path, "{directory: photos}", CLASSIFIER, extra)
    message = data_error(path)[0]
    assert "every image of the class 'c'" in message
    assert "class 'c'" in stopped(path, tmp_path / "photos")


# -- 3. data.cache on files listed class by class -------------------------------------------------
@pytest.mark.slow
def test_a_cached_stream_mixes_classes_listed_in_order(tmp_path):
    """120 files, 30 a class in class order (as a validation/ folder leaves them), cached, a
    shuffle buffer of 8: the first 30 images hold more than the two first classes, and the same
    seed gives the same order."""
    from cnnspec.training.filelist import ImageFiles
    from cnnspec.training.pipeline import PipelineSettings
    from cnnspec.training.stream import make_stream

    paths = [image(tmp_path / f"{c}" / f"{i}.png", i) for c in range(4) for i in range(30)]
    files = ImageFiles(paths, (8, 8), 3, cache="memory")
    labels = np.repeat(np.arange(4), 30)

    def first_labels() -> list[int]:
        settings = PipelineSettings(batch_size=10)
        stream = make_stream(files, labels, settings, training=True, seed=1, shuffle_buffer=8)
        return [int(v) for batch in stream.take(3) for v in batch[1].numpy()]

    seen = first_labels()
    assert len(set(seen)) >= 3, seen
    assert first_labels() == seen


SPLIT_FILES = """\
cnnspec: 1
name: audit
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - dense: {units: 3, activation: softmax}
data:
  source: {directory: images}
  shuffle_buffer: 4
  cache: memory
training:
  epochs: 2
  batch_size: 4
  optimizer: {adam: {learning_rate: 0.01}}
  seed: 9
  deterministic: true
"""


@pytest.mark.slow
@pytest.mark.full
def test_a_cached_split_folder_trains_alike_in_the_script(tmp_path):
    """A train/, validation/, test/ folder (the training files in class order) with data.cache:
    the script permutes the files as cnnspec train does, so the history is train's to 1e-6."""
    from tests.test_script_parity_audit import assert_same_history, run_both

    for split, count in (("train", 8), ("validation", 2), ("test", 2)):
        for c in range(3):
            for i in range(count):
                image(tmp_path / "images" / split / f"c{c}" / f"{i}.png", 40 * c + 9 * i)
    theirs, _, ours = run_both(tmp_path, SPLIT_FILES)
    assert_same_history(theirs, ours)
    assert theirs["test_loss"] == pytest.approx(ours.metrics["test_loss"], abs=1e-6)
