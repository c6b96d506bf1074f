"""``data.classes`` (subset and order, relabelled, names kept) and ``data.per_class`` (at most
N training images per class, stratified, the same for a seed), for every kind of source."""

from __future__ import annotations

import types

import numpy as np
import pytest

from cnnspec.errors import SpecError
from cnnspec.training import runtime
from tests.test_data import load, spec_text, write_npz


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
