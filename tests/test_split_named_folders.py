"""Folders named like splits: ``--data`` of a train/, validation/, test/ layout reads its test/
folder (with a note) instead of taking the split folders for classes, and classes literally
named train, validation and test get errors that say their folders look like splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnspec.cli.app import app
from tests.test_data_files_audit import CLASSIFIER, class_tree, data_error, image, write_spec

# (Keras warns when a stream's first epoch ends, as its length is unknown until then)
pytestmark = pytest.mark.filterwarnings("ignore:Your input ran out of data")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of classes a and b trained on a tiny folder of 8×8 PNGs."""
    from typer.testing import CliRunner

    root = tmp_path_factory.mktemp("splitnamed")
    class_tree(root / "photos", {"a": 6, "b": 6})
    spec = write_spec(root, "{directory: photos}", CLASSIFIER, "  validation_split: 0.25\n")
    out = root / "run"
    result = CliRunner().invoke(app, ["train", str(spec), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_data_of_a_split_layout_reads_its_test_folder(runner, run, tmp_path):
    layout = tmp_path / "split"
    class_tree(layout / "train", {"a": 4, "b": 4})
    class_tree(layout / "validation", {"a": 2, "b": 2})
    class_tree(layout / "test", {"a": 3, "b": 2})
    out = tmp_path / "eval"
    result = runner.invoke(app, ["evaluate", str(run), "--data", str(layout), "--out", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    assert document["data"]["images"] == 5  # test/ alone, not 23 images of classes train, test …
    assert document["class_names"] == ["a", "b"]
    assert any("its test/ folder is read" in note for note in document["notes"])


def test_data_of_a_split_layout_without_test_is_refused_naming_its_folders(runner, run, tmp_path):
    layout = tmp_path / "split"
    class_tree(layout / "train", {"a": 2, "b": 2})
    class_tree(layout / "validation", {"a": 2, "b": 2})
    result = runner.invoke(app, ["evaluate", str(run), "--data", str(layout)])
    assert result.exit_code == 2
    assert "with no test/ folder" in result.output
    assert f"--data {layout / 'validation'}" in result.output.replace("\n", "")
    assert "Traceback" not in result.output


def classes_named_like_splits(folder: Path) -> None:
    """``folder/{train,validation,test}/``: classes, each of 4 images lying directly in it."""
    for name in ("train", "validation", "test"):
        for index in range(4):
            image(folder / name / f"img{index}.png", 30 * index)


def test_classes_named_like_splits_with_a_test_split_are_told_so(tmp_path):
    classes_named_like_splits(tmp_path / "tv")
    path = write_spec(tmp_path, "{directory: tv}", CLASSIFIER, "  test_split: 0.25\n", units=3)
    message, hint, where = data_error(path)
    assert "expected no test_split for a folder with its own test set" in message
    assert "if train/, validation/ (or val/, valid/) and test/ are your classes, rename them" in hint
    assert where == "data.test_split"


def test_classes_named_like_splits_without_split_settings_are_told_so(tmp_path):
    classes_named_like_splits(tmp_path / "tv")
    path = write_spec(tmp_path, "{directory: tv}", CLASSIFIER, units=3)
    message, hint, _ = data_error(path)
    assert "image file(s) lie directly in it" in message
    assert "if train/, validation/ (or val/, valid/) and test/ are your classes, rename them" in hint


def test_images_beside_class_folders_keep_their_own_hint(tmp_path):
    """A folder not named like a split: the hint is still to move the images into class folders."""
    class_tree(tmp_path / "photos", {"a": 2, "b": 2})
    image(tmp_path / "photos" / "stray.png")
    path = write_spec(tmp_path, "{directory: photos}", CLASSIFIER)
    _, hint, _ = data_error(path)
    assert "move each image into its class's folder" in hint
