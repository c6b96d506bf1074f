"""Folders named like splits: ``--data`` of a train/, validation/, test/ layout reads its test/
folder (with a note) instead of taking the split folders for classes, and classes literally
named train, validation and test get errors that say their folders look like splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnspec.cli.app import app
from tests.test_data_files_audit import CLASSIFIER, class_tree, data_error, image, write_spec

# (Keras warns when a stream's first epoch ends, as its length is unknown until then); one worker
# runs the module, so `run` is trained once, not once per xdist worker
pytestmark = [
    pytest.mark.filterwarnings("ignore:Your input ran out of data"),
    pytest.mark.xdist_group("split_named_run"),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of classes a and b trained on a tiny folder of 8×8 PNGs (in this process, without
    the page `cnnspec train` adds: the tests read the run's model and data alone)."""
    from tests.test_report_support import train_without_page

    root = tmp_path_factory.mktemp("splitnamed")
    class_tree(root / "photos", {"a": 6, "b": 6})
    spec = write_spec(root, "{directory: photos}", CLASSIFIER, "  validation_split: 0.25\n")
    out = root / "run"
    train_without_page(spec, out)
    return out


@pytest.mark.slow
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


@pytest.mark.slow
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


def loose_images(folder: Path) -> None:
    """``folder`` of 3 images lying directly in it, in no class folder."""
    for index in range(3):
        image(folder / f"img{index}.png", 40 * index)


def test_data_of_loose_images_is_a_bad_input_told_of_data_not_of_the_spec(tmp_path):
    """``--data`` of a folder of loose images was a spec error (exit 1) at
    ``<--data>:1:1 ... data.source.directory``: the run's spec is not what is wrong."""
    from cnnspec.api import compile_spec
    from cnnspec.errors import UsageError
    from cnnspec.reporting.held_out import load_test_data
    from cnnspec.reporting.run import Run

    class_tree(tmp_path / "photos", {"a": 2, "b": 2})
    compiled = compile_spec(write_spec(tmp_path, "{directory: photos}", CLASSIFIER))
    loose_images(tmp_path / "flat")
    with pytest.raises(UsageError) as info:  # (told before the model is used: none is given)
        load_test_data(Run(tmp_path / "model.keras", compiled=compiled), None, str(tmp_path / "flat"))
    assert str(info.value) == (
        f"--data: expected only folders in {tmp_path / 'flat'}; 3 image file(s) lie directly in it, "
        "in no class: img0.png, img1.png, img2.png"
    )
    assert info.value.hint == (
        "move each image into its class's folder (DIR/<class name>/<image>.png), or out of DIR"
    )


@pytest.mark.slow
def test_evaluate_of_data_of_loose_images_exits_2(runner, run, tmp_path):
    loose_images(tmp_path / "flat")
    result = runner.invoke(app, ["evaluate", str(run), "--data", str(tmp_path / "flat")])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"error: --data: expected only folders in {tmp_path / 'flat'}; 3 image file(s)" in text
    assert "data.source.directory" not in text and "<--data>" not in text


@pytest.mark.slow
def test_evaluate_of_data_named_in_no_utf8_writes_utf8_json(runner, run, tmp_path):
    """--data d\\xe9 (a Latin-1 folder name): evaluation.json and the JSON printed held the lone
    surrogate "\\udce9", which strict JSON readers refuse; written escaped, with a note, and
    evaluated again into the same evaluations/ folder (its recorded source is the same one)."""
    import os

    folder = Path(os.fsdecode(os.fsencode(tmp_path) + b"/d\xe9"))
    class_tree(folder, {"a": 2, "b": 2})
    for _ in range(2):
        result = runner.invoke(app, ["evaluate", str(run), "--data", str(folder), "-f", "json"])
        assert result.exit_code == 0, result.output
        printed = json.loads(result.stdout_bytes.decode("utf-8"))
        assert printed["data"]["source"]["path"] == f"{tmp_path}/d\\xe9"
        assert any("is written with each such byte as \\xNN" in note for note in printed["notes"])
    written = Path(printed["files"]["evaluation"])
    assert written.parent == run / "evaluations" / "d_"  # (the same folder both times)
    assert "\\udce9" not in written.read_text(encoding="utf-8")
