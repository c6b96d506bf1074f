"""An audit of the pixels and splits of `codegen --script`'s train.py against `cnnspec train`:

* the script read image files with TensorFlow's decoders, which refuse or misread files that
  cnnspec (Pillow) reads: a grayscale model on BMP or GIF files, CMYK JPEG to gray, 1-bit BMP,
  an 8-bit palette BMP (its palette indices). It now decodes with a copy of cnnspec's decoding:
  every kind of PNG, JPEG, BMP and GIF below gives cnnspec's pixels, exactly, at 1 and 3
  channels (the colour modes of an image source), resized or not;
* cnnspec read a gray or RGB PNG's transparent colour (tRNS) as opaque for 4 channels (predict
  with a 4-channel model); TensorFlow, and now cnnspec, give it alpha 0;
* with ``data.classes`` and no test folder, the script split all classes and selected after:
  it now selects first, as train does, so both split the same images.

The images are written here with Pillow (16-bit PNGs by hand): no binary fixtures.
"""

from __future__ import annotations

import ast
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cnnspec.api import compile_spec
from cnnspec.backends.python_emitter import generate_code
from cnnspec.training.imagefiles import converted_image, load_image
from tests.test_data_files_audit import CLASSIFIER, SIGMOID, class_tree, load, write_spec
from tests.test_listing_edges import compiled_script, script_functions

SIZES = [(12, 10), (8, 8)]  # the files' own size, and a resize


# -- the files ------------------------------------------------------------------------------------
def _png16(path: Path, pixels: np.ndarray, color_type: int) -> None:
    """A 16-bit PNG (Pillow writes 16 bits for gray only): gray+alpha 4, RGB 2, RGBA 6."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\0" + pixels[row].astype(">u2").tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def write_images(folder: Path) -> list[Path]:
    """12×10 images of every kind the audit compared (29), and the PNGs with a tRNS colour."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (12, 10, 3), dtype="uint8")
    rgba = rng.integers(0, 256, (12, 10, 4), dtype="uint8")
    rgba[0, 0, 3] = 0
    gray = rng.integers(0, 256, (12, 10), dtype="uint8")
    palette = Image.fromarray(rgb).quantize(16)
    smooth = np.add.outer(np.arange(12) * 20, np.arange(10) * 15)[..., None] + np.array([0, 40, 80])
    smooth = np.clip(smooth, 0, 255).astype("uint8")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: read as stored, as TensorFlow reads it
    saves = {
        "rgb.png": (Image.fromarray(rgb), {}),
        "rgba.png": (Image.fromarray(rgba), {}),
        "gray.png": (Image.fromarray(gray), {}),
        "la.png": (Image.fromarray(np.dstack([gray, gray[::-1]]), "LA"), {}),
        "pal.png": (palette, {}),
        "pal_trns.png": (palette, {"transparency": 3}),
        "pal_trns_partial.png": (palette, {"transparency": bytes([0, 128, 255, 50] + [255] * 12)}),
        "bit1.png": (Image.fromarray(gray > 128), {}),
        "gray_trns.png": (Image.fromarray(gray), {"transparency": int(gray[0, 0])}),
        "rgb_trns.png": (Image.fromarray(rgb), {"transparency": tuple(int(v) for v in rgb[0, 0])}),
        "gray16.png": (Image.fromarray(rng.integers(0, 65536, (12, 10), dtype="uint16")), {}),
        "rgb.jpg": (Image.fromarray(smooth), {"quality": 90}),
        "rgb444.jpg": (Image.fromarray(smooth), {"quality": 90, "subsampling": 0}),
        "prog.jpg": (Image.fromarray(smooth), {"quality": 90, "progressive": True}),
        "gray.jpg": (Image.fromarray(smooth[..., 0]), {"quality": 90}),
        "cmyk.jpg": (Image.fromarray(smooth).convert("CMYK"), {"quality": 90}),
        "exif6.jpg": (Image.fromarray(smooth), {"quality": 90, "exif": exif.tobytes()}),
        "rgb.bmp": (Image.fromarray(rgb), {}),
        "pal.bmp": (palette, {}),
        "gray.bmp": (Image.fromarray(gray), {}),
        "rgba.bmp": (Image.fromarray(rgba), {}),
        "bit1.bmp": (Image.fromarray(gray > 100), {}),
        "static.gif": (palette, {}),
        "trns.gif": (palette, {"transparency": 3}),
        "anim.gif": (palette, {"save_all": True, "append_images": [Image.fromarray(rgb[::-1]).quantize(16)]}),
        "gray.gif": (Image.fromarray(gray), {}),
    }
    for name, (image, options) in saves.items():
        image.save(folder / name, **options)
    _png16(folder / "rgb16.png", rng.integers(0, 65536, (12, 10, 3), dtype="uint16"), 2)
    _png16(folder / "rgba16.png", rng.integers(0, 65536, (12, 10, 4), dtype="uint16"), 6)
    _png16(folder / "la16.png", rng.integers(0, 65536, (12, 10, 2), dtype="uint16"), 4)
    return sorted(folder.iterdir())


FILES = sorted(
    [
        "rgb.png", "rgba.png", "gray.png", "la.png", "pal.png", "pal_trns.png", "pal_trns_partial.png",
        "bit1.png", "gray_trns.png", "rgb_trns.png", "gray16.png", "rgb16.png", "rgba16.png", "la16.png",
        "rgb.jpg", "rgb444.jpg", "prog.jpg", "gray.jpg", "cmyk.jpg", "exif6.jpg",
        "rgb.bmp", "pal.bmp", "gray.bmp", "rgba.bmp", "bit1.bmp",
        "static.gif", "trns.gif", "anim.gif", "gray.gif",
    ]
)  # fmt: skip


def test_the_files_are_of_the_kinds_the_audit_compared(tmp_path):
    files = write_images(tmp_path)
    assert [p.name for p in files] == FILES
    modes = {}
    for path in files:
        with Image.open(path) as image:
            modes[path.name] = (image.format, image.mode, "transparency" in image.info)
    assert modes["pal.bmp"] == ("BMP", "P", False) and modes["bit1.bmp"][1] == "1"
    assert modes["cmyk.jpg"][1] == "CMYK" and modes["gray16.png"][1].startswith("I")
    # (a 32-bit BMP's 4th byte: padding to Pillow, alpha to TensorFlow)
    assert modes["gray_trns.png"] == ("PNG", "L", True) and modes["rgb_trns.png"] == ("PNG", "RGB", True)
    assert modes["rgba.bmp"][1] == "RGB" and modes["trns.gif"] == ("GIF", "P", True)


# -- the script's reading -------------------------------------------------------------------------
def script(
    tmp_path: Path, channels: int, size: tuple[int, int], source: str = "{directory: photos}"
) -> dict[str, Any]:
    """The generated script's functions for a model of ``size`` × ``channels`` on ``source``
    (image classes; a table source: the task script)."""
    folder = tmp_path / f"spec{channels}x{size[0]}x{size[1]}"
    folder.mkdir(exist_ok=True)
    head = SIGMOID if "images:" in source else CLASSIFIER
    path = write_spec(folder, source, head)
    text = path.read_text(encoding="utf-8").replace("[8, 8, 3]", f"[{size[0]}, {size[1]}, {channels}]")
    path.write_text(text, encoding="utf-8")
    functions = script_functions(path)
    # Their source, written where their code says it is, for tf.data's AutoGraph: the very text
    # they were compiled from. A script generated afresh here differs from it in its line breaks
    # (the cached script of another folder, whose path ruff wrapped at another length): AutoGraph
    # then converted other lines of the file, read every image as zeros, and kept that conversion
    # for the same code in later tests.
    path.with_name("train_script.py").write_text(compiled_script(path), encoding="utf-8")
    return functions


@pytest.mark.parametrize("channels", [1, 3])
def test_the_script_decodes_every_file_as_cnnspec_does(tmp_path, channels):
    """decode (Pillow, no TensorFlow): cnnspec's pixels in the model's channels, for every file."""
    decode = script(tmp_path, channels, (12, 10))["decode"]
    for path in write_images(tmp_path / "images"):
        expected, _ = converted_image(path, channels)
        got = decode(str(path).encode())  # (as tf.numpy_function passes it in a dataset's map)
        assert got.dtype == np.uint8 and got.shape == expected.shape, path.name
        assert np.array_equal(got, expected), path.name


@pytest.mark.slow
@pytest.mark.parametrize("channels", [1, 3])
def test_the_script_reads_every_file_as_cnnspec_does(tmp_path, channels):
    """read_image (decode in the pipeline, TensorFlow's resize, rounded) gives load_image's
    pixels for every file, at the files' size and resized: before, TensorFlow's decoders
    stopped on BMP and GIF files for a gray model, on CMYK JPEG to gray and on 1-bit BMP, and
    read an 8-bit palette BMP as its indices."""
    import tensorflow as tf

    files = write_images(tmp_path / "images")
    for size in SIZES:
        functions = script(tmp_path, channels, size)
        functions["tf"] = tf
        dataset = tf.data.Dataset.from_tensor_slices([str(p) for p in files]).map(functions["read_image"])
        for path, (got, ok) in zip(files, dataset.as_numpy_iterator(), strict=True):  # (as make_dataset)
            assert ok and np.array_equal(got, load_image(path, size, channels)[0]), (path.name, size)


@pytest.mark.slow
def test_the_task_script_reads_every_file_as_cnnspec_does(tmp_path):
    """The task script's read_images (an images folder with a table) reads them alike."""
    import tensorflow as tf

    files = write_images(tmp_path / "images")
    for channels in (1, 3):
        functions = script(tmp_path, channels, (8, 8), "{images: imgs, labels: labels.csv}")
        functions["tf"] = tf
        expected = np.stack([load_image(path, (8, 8), channels)[0] for path in files])
        assert np.array_equal(functions["read_images"](files), expected), channels


# -- a PNG's transparent colour -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["gray_trns.png", "rgb_trns.png"])
def test_a_pngs_transparent_colour_is_alpha_0_for_4_channels(tmp_path, name):
    """A gray or RGB PNG's tRNS colour: alpha 0 where a pixel has it, 255 elsewhere; the colour
    channels, and 1 or 3 channels, as without it."""
    path = next(p for p in write_images(tmp_path) if p.name == name)
    with Image.open(path) as image:
        plain = np.asarray(image.convert("RGB"))
        key = image.info["transparency"]
    hidden = np.all(plain == (key if isinstance(key, tuple) else (key,) * 3), axis=-1)
    pixels, _ = load_image(path, (12, 10), 4)
    assert hidden.any() and not hidden.all()
    assert np.array_equal(pixels[..., 3], np.where(hidden, 0, 255))
    assert np.array_equal(pixels[..., :3], plain)
    assert np.array_equal(load_image(path, (12, 10), 3)[0], plain)


@pytest.mark.slow
def test_pngs_read_with_4_channels_as_tensorflow_reads_them(tmp_path):
    """For 4 channels cnnspec reads PNGs as TensorFlow's decoder does, the tRNS colours
    included; but for a palette without transparency or a 1-bit PNG, to which TensorFlow gives
    alpha 15 or 1 (cnnspec: 255)."""
    import tensorflow as tf

    for path in write_images(tmp_path):
        if path.suffix != ".png" or path.name in ("pal.png", "bit1.png"):
            continue
        decoded = tf.io.decode_image(path.read_bytes(), channels=4, expand_animations=False)
        for size in SIZES:
            expected = np.clip(np.round(tf.image.resize(decoded, size).numpy()), 0, 255).astype("uint8")
            assert np.array_equal(load_image(path, size, 4)[0], expected), (path.name, size)


@pytest.mark.slow
def test_16_bit_colour_pngs_read_in_gray_as_tensorflow_reads_them(tmp_path):
    """libpng makes 16-bit gray of 16-bit colour before it keeps the high byte: gray from the high
    bytes alone differed by one level on some pixels."""
    import tensorflow as tf

    for path in write_images(tmp_path):
        if path.name not in ("rgb16.png", "rgba16.png"):
            continue
        decoded = tf.io.decode_image(path.read_bytes(), channels=1, expand_animations=False).numpy()
        pixels, notes = load_image(path, (12, 10), 1)
        assert np.array_equal(pixels, decoded), path.name
        assert notes == [f"{'RGBA' if 'rgba' in path.name else 'RGB'} → grayscale"]


# -- data.classes and the test split --------------------------------------------------------------
def script_split(path: Path, data: Path) -> tuple[dict[str, list[tuple[str, str]]], list[str]]:
    """The script's files of each part, as its run() makes them: load_data (which selects
    data.classes), then the seeded validation split (the spec's 0.2)."""
    functions = script_functions(path)
    (x, y), (x_test, y_test), names, found = functions["load_data"](data)
    assert found["validation"] is None
    x, y = functions["prepare_images"](x, y)
    x, y, x_val, y_val = functions["split"](x, y, 0.2)
    parts = {"train": (x, y), "val": (x_val, y_val), "test": (x_test, y_test)}
    return {
        part: sorted((names[int(label)], Path(p).name) for p, label in zip(*pair))
        for part, pair in parts.items()
    }, names


def train_split(path: Path) -> tuple[dict[str, list[tuple[str, str]]], list[str]]:
    """cnnspec train's files of each part, in :func:`script_split`'s form."""
    data = load(path)
    parts = {
        "train": (data.x_train, data.y_train),
        "val": (data.x_val, data.y_val),
        "test": (data.x_test, data.y_test),
    }
    named = {
        part: sorted((data.class_names[int(label)], p.name) for p, label in zip(files.paths, labels))
        for part, (files, labels) in parts.items()
    }
    return named, data.class_names


@pytest.mark.parametrize("source", ["directory", "csv"])
def test_data_classes_are_selected_before_the_test_split_as_train_selects_them(tmp_path, source):
    """Classes c and a of three, 10 images each, a test split of 0.3: the script split all 30
    images and kept those of c and a (another 6, 7 test images than train's); it now selects the
    20 first and splits them, as cnnspec train does."""
    class_tree(tmp_path / "photos", {"a": 10, "b": 10, "c": 10})
    if source == "csv":
        rows = "".join(f"{c}/{c}{i}.png,{c}\n" for c in "abc" for i in range(10))
        (tmp_path / "photos" / "labels.csv").write_text(f"file,label\n{rows}", encoding="utf-8")
        data, text = tmp_path / "photos" / "labels.csv", "{csv: photos/labels.csv}"
    else:
        data, text = tmp_path / "photos", "{directory: photos}"
    extra = "  test_split: 0.3\n  validation_split: 0.2\n  classes: [c, a]\n"
    path = write_spec(tmp_path, text, CLASSIFIER, extra)
    theirs, names = script_split(path, data)
    ours, train_names = train_split(path)
    assert names == train_names == ["c", "a"]
    assert [len(theirs[part]) for part in ("train", "val", "test")] == [11, 3, 6]
    assert theirs == ours
    run = next(
        node
        for node in ast.parse(generate_code(compile_spec(path), script=True).text).body
        if isinstance(node, ast.FunctionDef) and node.name == "run"
    )  # (script_split's order is run()'s: the classes are not selected again there)
    assert not [
        n for n in ast.walk(run) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "select_classes"
    ]
