"""Edge cases of the splits and of ``data.classes``: a split that leaves fewer images than
classes, a class listed twice, splits that lose classes (notes), and a softmax wider than the
classes selected (a lint warning)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnnspec.api import compile_text
from cnnspec.errors import SpecError
from cnnspec.training import subsets
from cnnspec.training.data import SplitTooLarge, _split_indices
from tests.test_data import load, spec_text, write_npz


def located(text: str, tmp_path: Path):
    with pytest.raises(SpecError) as info:
        load(text, tmp_path)
    (error,) = info.value.errors
    return error


# -- a split that holds out (nearly) everything ---------------------------------------------------
def test_a_huge_validation_split_is_a_located_error(tmp_path):
    error = located(spec_text(data="{source: digits, validation_split: 0.999}"), tmp_path)
    assert error.path == "data.validation_split" and error.code == "data"
    assert error.loc.line == 7 and error.loc.column == 42
    assert "leaves 1 training image for 10 classes" in error.message
    assert "0.999 of 1438 images holds out 1437" in error.message
    assert "smaller validation_split" in error.hint and "at most 0.99" in error.hint


def test_a_huge_test_split_is_a_located_error(tmp_path):
    error = located(spec_text(data="{source: digits, test_split: 0.999}"), tmp_path)
    assert error.path == "data.test_split" and error.loc.line == 7
    assert (
        "holds out 1795" in error.message
        and "leaves 2 training and validation images for 10" in error.message
    )
    assert "smaller test_split" in error.hint
    # all of it: round(1797 × 0.9999) = 1797 leaves nothing (scikit-learn's own error before)
    error = located(spec_text(data="{source: digits, test_split: 0.9999}"), tmp_path)
    assert error.path == "data.test_split" and "leaves 0 " in error.message


def test_split_indices_refuse_to_keep_nothing():
    with pytest.raises(SplitTooLarge) as info:  # targets that are no classes: at least one image
        _split_indices(10, None, 0.99, 0)
    assert (info.value.n, info.value.held, info.value.kept, info.value.classes) == (10, 10, 0, 1)
    with pytest.raises(SplitTooLarge) as info:  # classes: at least one image per class
        _split_indices(12, np.arange(12) % 4, 0.75, 0)
    assert (info.value.kept, info.value.classes) == (3, 4)
    kept, held = _split_indices(12, np.arange(12) % 4, 0.6, 0)
    assert (len(kept), len(held)) == (5, 7)


def test_a_huge_split_of_an_image_folder_is_located(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("circle", "square"):
        folder = tmp_path / "train" / name
        folder.mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, size=(8, 8, 3)).astype("uint8")).save(folder / f"{i}.png")
    # 6 images: 1 for the test split, 5 left; 4 of those for validation leaves 1 for 2 classes
    text = spec_text("[8, 8, 1]", 2, "\n  source: {directory: train}\n  validation_split: 0.9")
    error = located(text, tmp_path)
    assert error.path == "data.validation_split" and error.loc.line == 9
    assert "leaves 1 training image for 2 classes" in error.message


# -- a class listed twice -------------------------------------------------------------------------
def test_a_class_listed_twice_is_a_located_error(tmp_path):
    error = located(spec_text(units=2, data="{source: digits, classes: [3, '3']}"), tmp_path)
    assert error.path == "data.classes[1]" and error.loc.line == 7 and error.loc.column == 37
    assert "'3'" in error.message and "as 3 at data.classes[0]" in error.message
    assert "remove one of 3 and '3'" in error.hint


def test_a_class_by_name_and_by_index_is_listed_twice(tmp_path):
    write_npz(tmp_path / "d.npz", classes=3, class_names=np.array(["a", "b", "c"]))
    text = spec_text("[6, 6, 1]", 2, "{source: {npz: d.npz}, classes: [c, a, '2']}")
    error = located(text, tmp_path)
    assert error.path == "data.classes[2]" and "('c')" in error.message and "'c'" in error.hint


def test_class_indices_and_select_refuse_duplicates():
    with pytest.raises(subsets.UnknownClass) as info:
        subsets.class_indices(["x", 1], ["w", "x"], 2)
    assert info.value.index == 1
    with pytest.raises(ValueError):
        subsets.select(np.arange(4), np.array([0, 1, 2, 1]), [1, 1])


# -- splits that lose classes ---------------------------------------------------------------------
def test_tiny_splits_note_the_classes_they_lack(tmp_path):
    _, _, data = load(spec_text(data="{source: digits, test_split: 0.99}"), tmp_path, seed=42)
    assert data.sizes() == {"train": 16, "validation": 2, "test": 1779}
    training, validation = data.notes
    assert training == "the training split (16 images) has no images of 1 of the data's 10 classes: 8"
    assert validation.startswith("the validation split (2 images) has no images of 8 of the data's 10")
    assert (
        data.content_hash()
        == load(spec_text(data="{source: digits, test_split: 0.99}"), tmp_path, 42)[2].content_hash()
    )


def test_splits_with_every_class_have_no_notes(tmp_path):
    write_npz(tmp_path / "d.npz", n=60, classes=3)
    _, _, data = load(spec_text("[6, 6, 1]", 3, "{source: {npz: d.npz}}"), tmp_path)
    assert data.notes == []


# -- a softmax wider than data.classes ------------------------------------------------------------
def test_more_units_than_selected_classes_is_a_warning():
    compiled = compile_text(spec_text(data="{source: digits, classes: [7, 1, 3]}"), "s.yaml")
    (warning,) = [w for w in compiled.warnings if w.code == "class-count"]
    assert warning.severity == "warning" and warning.path == "model[1].dense"
    assert warning.loc.line == 6
    assert "the model has 10 outputs for 3 classes" in warning.message
    assert warning.hint == "set the last dense layer to units: 3"
    assert warning.notes[0].loc.line == 7
    for fits in (
        spec_text(units=3, data="{source: digits, classes: [7, 1, 3]}"),
        spec_text(units=10, data="{source: digits}"),  # no subset: as for any source
        spec_text(units=1, data="{source: digits, classes: [7, 1]}").replace("softmax", "sigmoid")
        + "training: {loss: binary_crossentropy}\n",
    ):
        assert not [w for w in compile_text(fits).warnings if w.code == "class-count"]


def test_fewer_units_than_selected_classes_is_an_error(tmp_path):
    error = located(spec_text(units=2, data="{source: digits, classes: [7, 1, 3]}"), tmp_path)
    assert "at most 2 classes" in error.message and "units: 3" in error.hint


# -- images that do not fit the input: one check for train and codegen --script -------------------
WIDE = (
    "cnnspec: 1\nname: wide\ninput: {shape: [16, 16, 3]}\n"
    "model: [flatten, {dense: {units: 4, activation: softmax}}]\n"
)


def test_without_a_data_section_a_misfit_is_said_at_the_input_with_the_default_named(tmp_path):
    error = located(WIDE, tmp_path)
    assert (error.path, error.loc.line) == ("input.shape", 3)
    assert "the digits images have shape [8, 8, 1]" in error.message
    assert "the spec has no data section, so the digits images are used" in error.hint


def test_codegen_script_refuses_the_labels_train_refuses_and_notes_what_it_resizes(runner, tmp_path):
    from cnnspec.cli.app import app

    named = tmp_path / "named.yaml"
    named.write_text(WIDE + "data: {source: digits}\n")
    result = runner.invoke(app, ["codegen", str(named), "--script", "-o", str(tmp_path / "a.py")])
    assert result.exit_code == 1 and not (tmp_path / "a.py").exists()
    assert "expected at most 4 classes (the model's output units); the data has 10" in result.stderr
    default = tmp_path / "default.yaml"
    default.write_text(WIDE)  # no data section: a script to point at one's own images
    result = runner.invoke(app, ["codegen", str(default), "--script", "-o", str(tmp_path / "b.py")])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "the spec has no data section, so the script reads the digits images (10 classes)" in said
    assert "the digits images are 8×8×1; the script resizes them" in said
