"""Data sources: digits, npz, image folders, Keras datasets offline; splits and checks."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest

from cnnspec.analysis.settings import training_config
from cnnspec.api import compile_spec, compile_text
from cnnspec.errors import SpecError
from cnnspec.training import runtime
from cnnspec.training.data import load_dataset
from cnnspec.training.data_checks import class_weights, rescale_factor


def spec_text(
    shape: str = "[8, 8, 1]", units: int = 10, data: str = "{source: digits}", extra: str = ""
) -> str:
    return (
        f"cnnspec: 1\nname: t\ninput: {{shape: {shape}}}\nmodel:\n  - flatten\n"
        f"  - dense: {{units: {units}, activation: softmax}}\ndata: {data}\n{extra}"
    )


def load(text: str, tmp_path: Path, seed: int = 0):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    compiled = compile_spec(path)
    config = training_config(compiled)
    return compiled, config, load_dataset(compiled, config, seed)


def write_npz(path: Path, n: int = 40, shape=(6, 6), classes: int = 3, dtype="uint8", **extra) -> Path:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, *shape)).astype(dtype)
    y = np.arange(n) % classes
    np.savez(path, x_train=x, y_train=y.reshape(-1, 1), x_test=x[:9], y_test=y[:9], **extra)
    return path


@pytest.mark.slow
def test_digits_split_is_stratified_scaled_and_seeded(tmp_path):
    _, config, data = load(spec_text(), tmp_path, seed=3)
    assert data.sizes() == {"train": 1294, "validation": 144, "test": 359}
    assert data.sample_shape == (8, 8, 1) and data.x_train.dtype == np.float32
    assert data.x_train.min() >= 0.0 and data.x_train.max() <= 1.0
    assert np.bincount(data.y_test).min() >= 35  # about 36 of each digit
    again = load(spec_text(), tmp_path, seed=3)[2]
    other = load(spec_text(), tmp_path, seed=4)[2]
    assert data.content_hash() == again.content_hash() != other.content_hash()
    assert rescale_factor(config, data, compile_text(spec_text())) is None  # floats stay as they are


def test_npz_layout_channels_labels_and_rescale(tmp_path):
    write_npz(tmp_path / "d.npz", class_names=np.array(["a", "b", "c"]))
    compiled, config, data = load(spec_text("[6, 6, 1]", 3, "{source: {npz: d.npz}, limit: 20}"), tmp_path)
    assert data.x_train.shape[1:] == (6, 6, 1) and data.x_train.dtype == np.uint8
    assert data.y_train.ndim == 1 and data.class_names == ["a", "b", "c"]
    assert len(data.y_train) == 20 and len(data.y_test) == 9
    assert rescale_factor(config, data, compiled) == pytest.approx(1 / 255)
    assert data.source["kind"] == "npz" and len(data.source["file_sha256"]) == 64


def test_rescale_auto_respects_a_rescaling_layer(tmp_path):
    write_npz(tmp_path / "d.npz")
    text = spec_text("[6, 6, 1]", 3, "{source: {npz: d.npz}}").replace(
        "  - flatten\n", "  - rescaling: {scale: 0.00392156862745098}\n  - flatten\n"
    )
    compiled, config, data = load(text, tmp_path)
    assert rescale_factor(config, data, compiled) is None


def test_npz_missing_file_and_keys_are_located(tmp_path):
    with pytest.raises(SpecError) as info:
        load(spec_text(data="\n  source: {npz: nothere.npz}"), tmp_path)
    (error,) = info.value.errors
    assert error.loc.line == 8 and "does not exist" in error.message
    np.savez(tmp_path / "bad.npz", x=np.zeros((2, 8, 8)))
    with pytest.raises(SpecError) as info:
        load(spec_text(data="{source: {npz: bad.npz}}"), tmp_path)
    assert "missing x_train" in info.value.errors[0].message
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(SpecError) as info:
        load(spec_text(data="{source: {npz: junk.npz}}"), tmp_path)
    assert "readable .npz" in info.value.errors[0].message


def test_shape_mismatch_is_reported_before_training(tmp_path):
    write_npz(tmp_path / "d.npz", shape=(6, 6, 3))
    with pytest.raises(SpecError) as info:
        load(spec_text("[6, 6, 1]", 3, "{source: {npz: d.npz}}"), tmp_path)
    (error,) = info.value.errors
    assert error.path == "data.source" and error.loc.line == 7
    assert "[6, 6, 1]" in error.message and "[6, 6, 3]" in error.message
    assert "channel" in error.hint


def test_more_classes_than_outputs(tmp_path):
    write_npz(tmp_path / "d.npz", classes=5)
    with pytest.raises(SpecError) as info:
        load(spec_text("[6, 6, 1]", 3, "{source: {npz: d.npz}}"), tmp_path)
    assert "at most 3 classes" in info.value.errors[0].message
    assert "units: 5" in info.value.errors[0].hint


def test_class_weight_balanced_and_by_name(tmp_path):
    x = np.zeros((30, 4, 4), "uint8")
    y = np.array([0] * 20 + [1] * 10)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:4], y_test=y[:4], class_names=["cat", "dog"])
    text = spec_text("[4, 4, 1]", 2, "{source: {npz: d.npz}, validation_split: 0}")
    _, config, data = load(text + "training: {class_weight: balanced}\n", tmp_path)
    assert class_weights(config, data) == pytest.approx({0: 0.75, 1: 1.5})
    _, config, data = load(text + "training: {class_weight: {dog: 3}}\n", tmp_path)
    assert class_weights(config, data) == {0: 1.0, 1: 3.0}
    with pytest.raises(SpecError) as info:
        load(text + "training: {class_weight: {dgo: 3}}\n", tmp_path)
    assert "`dog`" in info.value.errors[0].hint


def test_keras_dataset_offline_fails_fast_with_instructions(tmp_path, monkeypatch):
    def offline():
        raise Exception(
            "URL fetch failure on https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz: "
            "None -- [Errno -2] Name or service not known"
        )

    fake = types.SimpleNamespace(
        datasets=types.SimpleNamespace(mnist=types.SimpleNamespace(load_data=offline))
    )
    monkeypatch.setattr(runtime, "import_keras", lambda: fake)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    with pytest.raises(SpecError) as info:
        load(spec_text("[28, 28, 1]", 10, "{source: mnist}"), tmp_path)
    (error,) = info.value.errors
    assert error.path == "data.source"
    assert "download failed: URL fetch failure ([Errno -2] Name or service not known)" in error.message
    assert f"mnist.npz → {tmp_path / 'kh' / 'datasets' / 'mnist.npz'}" in error.hint
    assert "{npz: path/to/file.npz}" in error.hint


@pytest.mark.slow
def test_image_folders(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    for split, count in (("train", 6), ("test", 2)):
        for name in ("circle", "square"):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, size=(12, 10, 3)).astype("uint8")
                Image.fromarray(pixels).save(folder / f"{i}.png")
    data_text = "\n  source: {directory: train, test_directory: test}\n  validation_split: 0.25"
    _compiled, config, data = load(spec_text("[8, 8, 1]", 2, data_text), tmp_path)
    assert data.class_names == ["circle", "square"]
    assert data.sample_shape == (8, 8, 1) and data.x_train.dtype == np.uint8  # resized, grayscale
    assert data.sizes() == {"train": 9, "validation": 3, "test": 4}
    assert config.data.color_mode == "grayscale"
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(SpecError) as info:
        load(spec_text("[8, 8, 1]", 2, "{source: {directory: empty}}"), tmp_path)
    assert "class folder" in info.value.errors[0].message and "holds no" in info.value.errors[0].message


def test_too_many_classes_are_listed_by_name(tmp_path):
    """A stray label or folder shows itself: the message lists the data's classes."""
    names = np.array(["cat", "dog", "stray"])
    write_npz(tmp_path / "d.npz", class_names=names)
    with pytest.raises(SpecError) as caught:
        load(spec_text("[6, 6, 1]", 2, "{source: {npz: d.npz}}"), tmp_path)
    message = caught.value.errors[0].message
    assert message.endswith("the data has 3 ('cat', 'dog', 'stray')"), message
