"""cnnspec.training.imagefiles: the one image conversion (decode, colour mode, resize) that
training folders, predict, evaluate and the export runtimes share, without TensorFlow."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cnnspec.training.imagefiles import load_image

SIZES = [(12, 12), (7, 9), (31, 5)]  # the same size, downsampling, mixed


def _encode(pixels: np.ndarray, fmt: str) -> bytes:
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[pixels.shape[-1]]
    image = Image.fromarray(pixels[..., 0] if mode == "L" else pixels, mode=mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _random(h: int, w: int, c: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype="uint8")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fmt", "have", "want"),
    [("PNG", 3, 1), ("PNG", 3, 3), ("PNG", 4, 1), ("PNG", 4, 3), ("PNG", 4, 4), ("PNG", 1, 3), ("PNG", 1, 1),
     ("BMP", 3, 3), ("BMP", 1, 4), ("GIF", 3, 3), ("GIF", 4, 3)],
)  # fmt: skip
def test_pixels_equal_tensorflows_decode_and_resize(fmt, have, want):
    """For lossless files the conversion is TensorFlow's, pixel for pixel: what Keras' folder
    loader fed every run trained before cnnspec read folders itself."""
    import tensorflow as tf

    for index, (h, w) in enumerate(((20, 16), (12, 12), (5, 40))):
        data = _encode(_random(h, w, have, index), fmt)
        decoded = tf.io.decode_image(data, channels=want, expand_animations=False)
        for size in SIZES:
            expected = np.clip(np.round(tf.image.resize(decoded, size).numpy()), 0, 255).astype("uint8")
            got, _notes = load_image(data, size, want)
            assert got.dtype == np.uint8 and got.shape == (*size, want)
            assert np.array_equal(got, expected), (fmt, have, want, (h, w), size)


@pytest.mark.slow
@pytest.mark.parametrize("want", [1, 3])
def test_jpeg_differs_from_tensorflow_only_by_its_idct(want):
    """TensorFlow decodes JPEG with libjpeg's fast integer IDCT, Pillow with the accurate one:
    a few levels apart on noise, the worst case for a JPEG."""
    import tensorflow as tf

    data = _encode(_random(24, 20, 3, 7), "JPEG")
    decoded = tf.io.decode_image(data, channels=want, expand_animations=False)
    expected = np.clip(np.round(tf.image.resize(decoded, (10, 10)).numpy()), 0, 255).astype("int64")
    got, _ = load_image(data, (10, 10), want)
    assert np.abs(got.astype("int64") - expected).max() <= 4


def test_notes_say_what_was_converted():
    data = _encode(_random(20, 10, 4, 1), "PNG")
    pixels, notes = load_image(data, (8, 8), 1)
    assert pixels.shape == (8, 8, 1)
    assert notes == ["RGBA → grayscale", "resized 20×10 → 8×8 (height×width)"]
    same, none = load_image(_encode(_random(8, 8, 3, 2), "PNG"), (8, 8), 3)
    assert none == [] and np.array_equal(same, _random(8, 8, 3, 2))


def test_conversion_never_imports_tensorflow(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(_encode(_random(9, 11, 3, 3), "PNG"))
    probe = (
        "import sys\nfrom pathlib import Path\nfrom cnnspec.training.imagefiles import load_image\n"
        f"pixels, notes = load_image(Path({str(path)!r}), (8, 8), 1)\n"
        "print(pixels.shape, sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(8, 8, 1) []"


@pytest.mark.slow
def test_training_folders_read_as_keras_read_them(tmp_path):
    """A ``directory`` source gives the arrays, labels and order Keras' loader gave."""
    import keras

    from cnnspec.analysis.passes import compile_text
    from cnnspec.analysis.settings import training_config
    from cnnspec.training.data import load_dataset

    for label, name in enumerate(("cat", "dog")):
        for index in range(3):
            folder = tmp_path / "pics" / name / ("deep" if index == 2 else "")
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(_random(10 + index, 14, 3, 10 * label + index)).save(folder / f"{index}.png")
    # the test set is pics/ read whole; the training folder a copy (one file in both is refused)
    shutil.copytree(tmp_path / "pics", tmp_path / "train")
    spec = (
        "cnnspec: 1\nname: folders\ninput: {shape: [8, 8, 1]}\nmodel: [flatten, {dense: {units: 2}}]\n"
        f"data: {{source: {{directory: {tmp_path / 'train'}, test_directory: {tmp_path / 'pics'}}}, "
        "validation_split: 0}\n"
    )
    compiled = compile_text(spec, "folders.yaml")
    data = load_dataset(compiled, training_config(compiled), 0)
    reference = keras.utils.image_dataset_from_directory(
        tmp_path / "pics",
        color_mode="grayscale",
        image_size=(8, 8),
        shuffle=False,
        batch_size=64,
        verbose=False,
    )
    x, y = next(iter(reference))
    assert data.class_names == ["cat", "dog"]
    assert np.array_equal(data.y_test, y.numpy())
    assert np.array_equal(data.x_test, np.clip(np.round(x.numpy()), 0, 255).astype("uint8"))


def test_an_image_over_pillows_warning_size_is_refused_without_its_warning(tmp_path):
    """A 100-megapixel PNG: Pillow warned (DecompressionBombWarning, a site-packages line on
    stderr) before cnnspec's own refusal; decode and the file check now say only theirs."""
    import warnings

    from cnnspec.errors import UsageError
    from cnnspec.training.badfiles import check_file
    from cnnspec.training.imagefiles import MAX_PIXELS, decode

    path = tmp_path / "huge.png"
    Image.new("L", (10_000, 10_000)).save(path)  # ~100 KB on disk, 10⁸ pixels
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(UsageError, match=f"at most {MAX_PIXELS:,} pixels"):
            decode(path, name="huge.png")
        assert check_file(path) == f"10000×10000 is more than {MAX_PIXELS:,} pixels"
    assert [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)] == []
