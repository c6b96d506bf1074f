"""``data.classes`` (subset and order, relabelled, names kept) and ``data.per_class`` (at most
N training images per class, stratified, the same for a seed), for every kind of source."""

from __future__ import annotations

import types

import numpy as np
import pytest

from cnnspec.errors import SpecError
from cnnspec.training import runtime
from tests.test_data import load, spec_text, write_npz
from tests.test_listing_edges import script_functions


def test_npz_classes_are_relabelled_in_the_listed_order_with_their_names(tmp_path):
    write_npz(tmp_path / "d.npz", n=60, classes=3, class_names=np.array(["a", "b", "c"]))
    data_text = "{source: {npz: d.npz}, validation_split: 0, classes: [c, a]}"
    _, _, data = load(spec_text("[6, 6, 1]", 2, data_text), tmp_path)
    _, _, everything = load(
        spec_text("[6, 6, 1]", 3, "{source: {npz: d.npz}, validation_split: 0}"), tmp_path
    )
    assert data.class_names == ["c", "a"]
    # the images of class c (label 2) are now label 0, those of a (label 0) label 1; b is gone
    for new, old in ((0, 2), (1, 0)):
        assert np.array_equal(
            data.x_train[data.y_train == new], everything.x_train[everything.y_train == old]
        )
        assert np.array_equal(data.x_test[data.y_test == new], everything.x_test[everything.y_test == old])
    assert set(np.unique(data.y_train)) == {0, 1} and len(data.y_train) == 40


def test_digits_classes_by_label_and_per_class(tmp_path):
    data_text = "{source: digits, classes: [5, 6, 7, 8, 9], per_class: 10}"
    _, _, data = load(spec_text(units=5, data=data_text), tmp_path, seed=4)
    assert data.class_names == ["5", "6", "7", "8", "9"]
    assert np.bincount(data.y_train).tolist() == [10] * 5  # stratified: N of every class
    assert len(data.y_val) > 0 and set(np.unique(data.y_test)) == set(range(5))
    _, _, again = load(spec_text(units=5, data=data_text), tmp_path, seed=4)
    _, _, other = load(spec_text(units=5, data=data_text), tmp_path, seed=5)
    assert np.array_equal(data.x_train, again.x_train)  # the same seed, the same images
    assert not np.array_equal(data.x_train, other.x_train)


def test_keras_dataset_classes_by_name(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(50, 28, 28)).astype("uint8")
    y = np.arange(50) % 10

    def load_data():
        return (x, y), (x[:20], y[:20])

    fake = types.SimpleNamespace(
        datasets=types.SimpleNamespace(fashion_mnist=types.SimpleNamespace(load_data=load_data))
    )
    monkeypatch.setattr(runtime, "import_keras", lambda: fake)
    data_text = "{source: fashion_mnist, validation_split: 0, classes: [sneaker, bag]}"
    _, _, data = load(spec_text("[28, 28, 1]", 2, data_text), tmp_path)
    assert data.class_names == ["sneaker", "bag"]
    assert np.array_equal(data.x_train[data.y_train == 1][..., 0], x[y == 8])


def test_an_unknown_class_is_a_located_error(tmp_path):
    with pytest.raises(SpecError) as info:
        load(spec_text(units=2, data="{source: digits, classes: [3, thre]}"), tmp_path)
    (error,) = info.value.errors
    assert error.path == "data.classes[1]" and "'thre'" in error.message
    assert error.loc.line == 7 and "0, 1, 2" in error.hint


def test_image_folder_classes(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    for name in ("circle", "square", "star"):
        folder = tmp_path / "train" / name
        folder.mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 256, size=(8, 8, 3)).astype("uint8")).save(folder / f"{i}.png")
    data_text = (
        "\n  source: {directory: train}\n  validation_split: 0\n  classes: [star, circle]\n  per_class: 3"
    )
    _, _, data = load(spec_text("[8, 8, 1]", 2, data_text), tmp_path)
    assert data.class_names == ["star", "circle"]
    assert np.bincount(data.y_train).tolist() == [3, 3] and set(np.unique(data.y_test)) <= {0, 1}


# -- class folders named by numbers: an entry that is a name is that class ---------------------
def _numbered_folders(root, values=(40, 120, 200)):
    """Folders ``1``, ``2``, ``3`` of 8×8 grey images, every pixel of folder k the k-th value."""
    from PIL import Image

    for name, value in zip(("1", "2", "3"), values, strict=True):
        folder = root / "imgs" / name
        folder.mkdir(parents=True)
        for i in range(6):
            Image.fromarray(np.full((8, 8), value, dtype="uint8")).save(folder / f"{i}.png")


NUMBERED = (
    "\n  source: {directory: imgs, image_size: [8, 8], color_mode: grayscale}"
    "\n  validation_split: 0\n  classes: %s"
)


def test_numbers_that_are_class_names_select_those_classes(tmp_path):
    _numbered_folders(tmp_path)
    _, _, data = load(spec_text("[8, 8, 1]", 2, NUMBERED % "[1, 2]"), tmp_path)
    assert data.class_names == ["1", "2"]  # the folders 1 and 2, not those at indices 1 and 2
    assert data.notes[0].startswith("data.classes[0]: 1 is the class named '1' (label 0)")  # said
    x = np.concatenate([data.x_train, data.x_test])
    y = np.concatenate([data.y_train, data.y_test])
    first, second = float(x[y == 0].max()), float(x[y == 1].max())
    assert len(np.unique(x[y == 0])) == 1 and second == pytest.approx(3 * first)  # 120 / 40
    _, _, reordered = load(spec_text("[8, 8, 1]", 2, NUMBERED % "[3, '1']"), tmp_path)
    assert reordered.class_names == ["3", "1"]


def test_class_indices_take_names_first_then_indices():
    from cnnspec.training.subsets import UnknownClass, class_indices, class_notes

    names = ["1", "2", "3"]
    assert class_indices([1, 2], names, 3) == [0, 1]
    assert class_indices(["3", 0], names, 3) == [2, 0]  # 0 names no class: the label index 0
    assert class_indices([5, 6], [str(i) for i in range(10)], 10) == [5, 6]  # digits: both agree
    with pytest.raises(UnknownClass) as twice:
        class_indices([1, "1"], names, 3)
    assert twice.value.index == 1 and "the same class ('1')" in twice.value.message
    with pytest.raises(UnknownClass) as unknown:
        class_indices([4], names, 3)
    assert unknown.value.index == 0 and "4" in unknown.value.message
    # a number beyond the classes lists them: 11 is no misspelling of 1
    with pytest.raises(UnknownClass) as beyond:
        class_indices([0, 11], [str(i) for i in range(10)], 10)
    assert beyond.value.hint == "the data's classes: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9"
    with pytest.raises(UnknownClass) as misspelt:  # a name still gets the closest one
        class_indices(["dgo"], ["cat", "dog"], 2)
    assert misspelt.value.hint == "did you mean `dog`?"
    # 1 names the folder 1 (label 0) but is also the index of the folder 2: said in a note
    (note,) = class_notes([1, 3], names, 3)
    assert note.startswith("data.classes[0]: 1 is the class named '1' (label 0)") and "'2'" in note
    assert class_notes([5, "a"], [str(i) for i in range(10)], 10) == []


def test_the_generated_script_selects_numbered_class_folders_by_name(tmp_path, capsys):
    _numbered_folders(tmp_path)
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text("[8, 8, 1]", 2, NUMBERED % "[1, 2]"))
    select_classes = script_functions(spec)["select_classes"]
    x = np.array([10, 11, 20, 21, 30, 31])
    y = np.array([0, 0, 1, 1, 2, 2])  # the folders 1, 2, 3, by their sorted names
    x_train, y_train, x_test, y_test, names = select_classes(x, y, x[2:], y[2:], ["1", "2", "3"])
    assert names == ["1", "2"]
    assert x_train.tolist() == [10, 11, 20, 21] and y_train.tolist() == [0, 0, 1, 1]
    assert x_test.tolist() == [20, 21] and y_test.tolist() == [1, 1]
    assert "1 is the class named '1', not the class at index 1" in capsys.readouterr().out
    # without names (labels only) the numbers are label indices, as in cnnspec
    x_train, y_train, _, _, names = select_classes(x, y, x[:0], y[:0], [])
    assert names == ["1", "2"] and x_train.tolist() == [20, 21, 30, 31] and y_train.tolist() == [0, 0, 1, 1]
