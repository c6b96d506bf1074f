"""A ``directory`` laid out as ``train/``, ``validation/``, ``test/`` beside a ``test_directory``:
read whole, its split folders were three classes ('test', 'train', 'val') and train ran on them;
it is refused at ``data.source.test_directory`` (train and the generated script alike). A
``test_directory`` laid out in splits is refused naming one split's folder to pass instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_listing_edges import listing_error, make_images, script_loader


def split_tree(root: Path, splits: tuple[str, ...] = ("train", "val", "test")) -> None:
    """``root/<split>/<class>/*.png`` for the classes x, y."""
    for seed, split in enumerate(splits):
        make_images(root / split, {"x": 3, "y": 3}, seed=seed)


@pytest.mark.parametrize("splits", [("train", "val", "test"), ("train", "validation")])
def test_a_split_directory_beside_a_test_directory_is_refused_at_test_directory(tmp_path, splits):
    split_tree(tmp_path / "data", splits)
    make_images(tmp_path / "held", {"x": 2, "y": 2}, seed=9)
    data = "{source: {directory: data, test_directory: held}}"
    error = listing_error(tmp_path, data)
    folders = ", ".join(f"{split}/" for split in splits)
    own = ", with its own test set" if "test" in splits else ""
    message = (
        f"expected a directory of class folders beside a test_directory; {tmp_path / 'data'} is laid "
        f"out as {folders} (a split layout{own})"
    )
    assert error.path == "data.source.test_directory" and error.message == message
    alone = f"or name {tmp_path / 'data' / 'train'} as the directory to read its class folders alone"
    assert error.hint == (
        f"its test/ folder is the test set: remove test_directory (to test on {tmp_path / 'held'}, "
        f"move its class folders into {tmp_path / 'data' / 'test'}), {alone}"
        if "test" in splits
        else f"put the test set's class folders in {tmp_path / 'data' / 'test'} and remove "
        f"test_directory, {alone}"
    )
    with pytest.raises(SystemExit) as info:
        script_loader(tmp_path, data)(tmp_path / "data", tmp_path / "held")
    assert str(info.value).splitlines()[0] == message


def test_split_named_classes_beside_a_test_directory_get_the_rename_hint(tmp_path):
    """train/, val/, test/ of images are classes named like splits: refused as without a
    test_directory (they were three classes beside one; without it, the rename hint)."""
    make_images(tmp_path / "data", {"train": 3, "val": 3, "test": 3})
    make_images(tmp_path / "held", {"train": 1, "val": 1, "test": 1}, seed=9)
    data = "{source: {directory: data, test_directory: held}}"
    error = listing_error(tmp_path, data, units=3)
    assert error.path == "data.source.test_directory"
    assert error.hint.startswith(
        "if train/, validation/ (or val/, valid/) and test/ are your classes, rename"
    )
    with pytest.raises(SystemExit, match=r"if train/, validation/ .* are your classes, rename them"):
        script_loader(tmp_path, data, units=3)(tmp_path / "data", tmp_path / "held")


def test_a_test_directory_laid_out_in_splits_is_refused_naming_its_test_folder(tmp_path):
    make_images(tmp_path / "data", {"x": 4, "y": 4})
    split_tree(tmp_path / "held")
    data = "{source: {directory: data, test_directory: held}}"
    error = listing_error(tmp_path, data)
    held = tmp_path / "held"
    message = (
        f"expected {held} to be a folder of class folders; it is laid out as train/, val/, test/, a "
        "split layout whose splits would be read as classes"
    )
    assert error.path == "data.source.test_directory" and error.message == message
    assert error.hint == f"name one split's folder of class folders instead (e.g. {held / 'test'})"
    with pytest.raises(SystemExit) as info:
        script_loader(tmp_path, data)(tmp_path / "data", held)
    assert str(info.value).splitlines()[0] == message


def test_a_split_directory_alone_and_its_train_folder_beside_a_test_directory_still_load(tmp_path):
    split_tree(tmp_path / "data")
    make_images(tmp_path / "held", {"x": 2, "y": 2}, seed=9)
    (_, _), (x_test, _), names, _ = script_loader(tmp_path, "{source: {directory: data}}")(tmp_path / "data")
    assert names == ["x", "y"] and {Path(p).parent.parent.name for p in x_test} == {"test"}
    data = "{source: {directory: data/train, test_directory: held}}"
    (_, _), (x_test, _), names, _ = script_loader(tmp_path, data)(
        tmp_path / "data" / "train", tmp_path / "held"
    )
    assert names == ["x", "y"] and {Path(p).parent.parent.name for p in x_test} == {"held"}
