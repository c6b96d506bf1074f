"""``codegen --script``'s data reading beside ``cnnspec train``'s, at the edges the data checks
added: the pixel depth ``data.rescale: auto`` divides an npz file's images by (uint8, uint16,
int64 holding 0–255; an unknown depth and two depths refused), labels tables (labels separated
by commas, extra cells, JSON labels with spaces or empty), an image listed twice and a table
without its header row (refused), and the scale predict gives a uint16 array.

The scripts' data functions run without TensorFlow, as in tests/test_listing_edges.py: only
their functions, constants and data imports are executed. Nothing is trained.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from cnnspec.errors import UsageError
from cnnspec.reporting.pixel_ranges import file_rescale
from cnnspec.reporting.run import Run
from cnnspec.training.data_checks import rescale_factor
from tests.test_data_checks import (
    CLASSIFIER,
    MULTILABEL,
    REGRESSION,
    classes,
    loaded,
    npz_spec,
    pixels,
    refused,
)
from tests.test_listing_edges import script_functions
from tests.test_task_data import spec, write_images

#: the heads of the two scripts: train.py.j2 (a classifier) and train_task.py.j2 (regression)
SCRIPTS = {"classifier": (CLASSIFIER, ""), "task": (REGRESSION, "training: {task: regression}\n")}


def npz_case(tmp_path: Path, script: str, x_train: np.ndarray, x_test: np.ndarray, extra: str = "") -> Path:
    """An npz spec for ``script`` (its head and targets): class labels or values."""
    head, training = SCRIPTS[script]
    y_train, y_test = classes(len(x_train)), classes(len(x_test))
    if script == "task":
        y_train, y_test = y_train.astype("float32"), y_test.astype("float32")
    return npz_spec(tmp_path, x_train, y_train, x_test, y_test, head, extra + training)


# -- data.rescale: auto and the pixel depth ------------------------------------------------------
@pytest.mark.parametrize("script", sorted(SCRIPTS))
@pytest.mark.parametrize(
    ("dtype", "high", "factor"),
    [("uint8", 256, 1 / 255), ("uint16", 65536, 1 / 65535), ("int64", 256, 1 / 255), ("float32", 1, None)],
)
def test_the_script_scales_npz_pixels_by_trains_factor(tmp_path, script, dtype, high, factor):
    path = npz_case(tmp_path, script, pixels(12, dtype, high), pixels(6, dtype, high))
    compiled, config, data = loaded(path)
    functions = script_functions(path)
    (x_train, _), _, _ = functions["load_data"](tmp_path / "d.npz")
    assert functions["auto_scale"](x_train) == rescale_factor(config, data, compiled) == factor
    # main() scales after the splits: any part gives the factor of the whole
    assert functions["auto_scale"](x_train[:5]) == factor


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_integer_pixels_of_unknown_depth_stop_the_script_too(tmp_path, script):
    x = pixels(12, "int64", 1000)
    x[0, 0, 0, 0] = 999
    error = refused(npz_case(tmp_path, script, x, pixels(6, "int64")))
    assert error.message.startswith("expected 8-bit (0–255) or uint16 training images")
    load_data = script_functions(tmp_path / "spec.yaml")["load_data"]
    with pytest.raises(SystemExit, match=r"8-bit \(0–255\) or uint16 training images .* int64 from 0 to 999"):
        load_data(tmp_path / "d.npz")


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_test_images_of_another_depth_stop_the_script_too(tmp_path, script):
    error = refused(npz_case(tmp_path, script, pixels(12), pixels(6, "uint16", 65536)))
    assert error.message.startswith("expected training and test images of one depth")
    load_data = script_functions(tmp_path / "spec.yaml")["load_data"]
    with pytest.raises(
        SystemExit, match=r"one depth .* uint8 \(0–255\) and the test images uint16 \(0–65535\)"
    ):
        load_data(tmp_path / "d.npz")


@pytest.mark.parametrize("script", sorted(SCRIPTS))
@pytest.mark.parametrize(("train", "test"), [("uint8", "float32"), ("float32", "uint8")])
def test_integer_beside_float_images_stop_the_script_too(tmp_path, script, train, test):
    def stored(x: np.ndarray, dtype: str) -> np.ndarray:
        return (x / 255).astype(dtype) if dtype == "float32" else x

    error = refused(npz_case(tmp_path, script, stored(pixels(12), train), stored(pixels(6), test)))
    assert error.message.startswith("expected training and test images of one kind")
    load_data = script_functions(tmp_path / "spec.yaml")["load_data"]
    with pytest.raises(SystemExit, match=f"of one kind .* are {train} and the test images {test}"):
        load_data(tmp_path / "d.npz")


def test_class_names_stored_as_bytes_are_their_text_in_both(tmp_path):
    # numpy saves a list of bytes as dtype S: the names were "b'cat'" and data.classes missed them
    names = np.array([b"cat", b"dog", b"emu"])
    path = npz_spec(tmp_path, pixels(12), classes(12), pixels(6), classes(6), class_names=names)
    assert loaded(path)[2].class_names == ["cat", "dog", "emu"]
    _, _, script_names = script_functions(path)["load_data"](tmp_path / "d.npz")
    assert script_names == ["cat", "dog", "emu"]


def test_a_rescale_given_takes_any_depth_in_both(tmp_path):
    x = pixels(12, "int64", 1000)
    compiled, config, data = loaded(npz_case(tmp_path, "classifier", x, x[:6], "  rescale: 0.001\n"))
    functions = script_functions(tmp_path / "spec.yaml")
    assert "check_depths" not in functions and "auto_scale" not in functions  # scale = 0.001
    functions["load_data"](tmp_path / "d.npz")
    assert rescale_factor(config, data, compiled) == 0.001


# -- labels and values tables --------------------------------------------------------------------
def labels_table(tmp_path: Path, layout: str) -> str:
    """A labels table of 4 images (p0–p3.png in img/) whose labels are separated by commas (a
    quoted cell, extra cells), spaces and ;, or JSON labels with spaces and an empty one."""
    names = write_images(tmp_path / "img", 4)
    if layout == "csv":
        rows = [
            "file,labels",
            f'{names[0]},"cat,dog"',
            f"{names[1]},cat,owl",
            f"{names[2]}, dog ;owl",
            f"{names[3]},",
        ]
        (tmp_path / "l.csv").write_text("\n".join(rows) + "\n")
        return "l.csv"
    lists = {names[0]: ["cat", " dog"], names[1]: ["cat ", "owl"], names[2]: ["dog", "owl"], names[3]: [""]}
    (tmp_path / "l.json").write_text(json.dumps(lists))
    return "l.json"


@pytest.mark.parametrize("layout", ["csv", "json"])
def test_the_script_reads_a_labels_table_as_train_does(tmp_path, layout):
    table = labels_table(tmp_path, layout)
    extra = "  test_split: 0.5\n  validation_split: 0\n"
    _, _, data = loaded(spec(tmp_path, f"{{images: img, labels: {table}}}", MULTILABEL, extra))
    trained = {}  # file → labels, as cnnspec train read them (write_images: p{i} is gray 20·i)
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        for image, row in zip(x, y, strict=True):
            trained[f"p{int(image[0, 0, 0]) // 20}.png"] = {data.class_names[i] for i in np.flatnonzero(row)}
    files, y, names = script_functions(tmp_path / "spec.yaml")["read_labels"](
        tmp_path / "img", tmp_path / table
    )
    assert names == data.class_names == ["cat", "dog", "owl"]  # no 'cat,dog' beside cat and dog
    assert {
        Path(f).name: {names[i] for i in np.flatnonzero(row)} for f, row in zip(files, y, strict=True)
    } == trained
    assert (
        trained["p0.png"] == {"cat", "dog"}
        and trained["p1.png"] == {"cat", "owl"}
        and trained["p3.png"] == set()
    )


def test_a_quoted_line_break_and_a_unicode_line_separator_stay_in_their_cells_in_both(tmp_path):
    """A CSV is read whole, not split into lines first: "cat<newline>dog" (quoted) was the label
    catdog, and a U+2028 in a cell (str.splitlines breaks there) made a row of its own."""
    names = write_images(tmp_path / "img", 4)
    rows = [
        "file,labels",
        f'{names[0]},"cat\ndog"',
        f"{names[1]},cat\u2028owl",
        f"{names[2]},dog",
        f"{names[3]},owl",
    ]
    (tmp_path / "l.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    extra = "  test_split: 0.5\n  validation_split: 0\n"
    _, _, data = loaded(spec(tmp_path, "{images: img, labels: l.csv}", MULTILABEL, extra))
    assert data.class_names == ["cat", "dog", "owl"]
    files, y, read = script_functions(tmp_path / "spec.yaml")["read_labels"](
        tmp_path / "img", tmp_path / "l.csv"
    )
    assert read == data.class_names
    labels = {Path(f).name: {read[i] for i in np.flatnonzero(row)} for f, row in zip(files, y, strict=True)}
    assert labels == {
        names[0]: {"cat", "dog"},
        names[1]: {"cat", "owl"},
        names[2]: {"dog"},
        names[3]: {"owl"},
    }


def test_rows_after_a_quoted_line_break_are_named_by_the_line_they_start_on_in_both(tmp_path):
    names = write_images(tmp_path / "img", 3)
    rows = [
        "file,labels",
        f'{names[0]},"cat\ndog"',
        f"{names[1]},cat",
        f"{names[2]},dog",
        f"./{names[1]},dog",
    ]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    path = table_spec(tmp_path, "labels", "t.csv")
    assert refused(path).message.endswith(f"it lists rows 4 ({names[1]}) and 6 (./{names[1]})")
    with pytest.raises(SystemExit, match=rf"it lists rows 4 \({names[1]}\) and 6 \(\./{names[1]}\)"):
        script_functions(path)["read_labels"](tmp_path / "img", tmp_path / "t.csv")


def test_a_quote_left_open_in_a_large_table_is_a_located_error_not_an_internal_one(tmp_path):
    """The rest of the file became one cell over the csv module's limit: csv.Error, "internal
    error" (exit 3), and a traceback in the script."""
    names = write_images(tmp_path / "img", 3)
    rows = ["file,labels", f'{names[0]},"cat', *[f"{names[1 + i % 2]},dog owl" for i in range(20_000)]]
    (tmp_path / "l.csv").write_text("\n".join(rows) + "\n")
    path = spec(tmp_path, "{images: img, labels: l.csv}", MULTILABEL, "  test_split: 0.5\n")
    error = refused(path)
    assert error.path == "data.source.labels"
    assert error.message.startswith("expected a readable CSV table; l.csv: field larger than field limit")
    assert error.message.endswith("in the row that starts on line 2 (a quote left open?)")
    with pytest.raises(SystemExit) as stopped:
        script_functions(path)["read_labels"](tmp_path / "img", tmp_path / "l.csv")
    assert str(stopped.value) == error.message


def table_spec(tmp_path: Path, key: str, table: str) -> Path:
    """A spec reading img/ with the labels or values ``table`` (two labels, or one value)."""
    head = MULTILABEL.replace("units: 3", "units: 2") if key == "labels" else REGRESSION
    training = "" if key == "labels" else "training: {task: regression}\n"
    return spec(tmp_path, f"{{images: img, {key}: {table}}}", head, training)


@pytest.mark.parametrize("key", ["labels", "values"])
def test_an_image_listed_twice_is_refused_by_both(tmp_path, key):
    names = write_images(tmp_path / "img", 4)
    cell = "cat dog" if key == "labels" else "1.5"
    rows = [
        f"file,{'labels' if key == 'labels' else 'size'}",
        *[f"{n},{cell}" for n in names],
        f"./{names[1]},{cell}",
    ]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    path = table_spec(tmp_path, key, "t.csv")
    assert refused(path).message.endswith(f"it lists rows 3 ({names[1]}) and 6 (./{names[1]})")
    read = script_functions(path)[f"read_{key}"]
    with pytest.raises(
        SystemExit, match=rf"once in t\.csv; it lists rows 3 \({names[1]}\) and 6 \(\./{names[1]}\)"
    ):
        read(tmp_path / "img", tmp_path / "t.csv")


def test_a_json_table_naming_an_image_twice_is_refused_by_both(tmp_path):
    names = write_images(tmp_path / "img", 3)
    # json.loads keeps the last of two equal keys: the repeat would be lost without a word
    (tmp_path / "v.json").write_text(
        f'{{"{names[0]}": 1, "{names[1]}": 2, "{names[2]}": 3, "{names[0]}": 4}}'
    )
    path = table_spec(tmp_path, "values", "v.json")
    assert refused(path).message == f"expected each image once in v.json; it lists {names[0]} twice"
    with pytest.raises(SystemExit, match=rf"once in v\.json; it lists {names[0]} twice\n"):
        script_functions(path)["read_values"](tmp_path / "img", tmp_path / "v.json")


@pytest.mark.parametrize(
    ("key", "first", "why"),
    [
        ("values", "p0.png,1.5", "p0.png is an image in img"),
        ("values", "gone.png,1.5", "its values are numbers"),
        ("labels", "p0.png,cat dog", "p0.png is an image in img"),
    ],
)
def test_a_table_without_its_header_is_refused_by_both(tmp_path, key, first, why):
    names = write_images(tmp_path / "img", 4)
    cell = first.split(",")[1]
    (tmp_path / "t.csv").write_text("\n".join([first, *[f"{n},{cell}" for n in names[1:]]]) + "\n")
    path = table_spec(tmp_path, key, "t.csv")
    error = refused(path)
    # it lost its first image and named the value column '1.5' before
    assert error.path == f"data.source.{key}"
    assert error.message == f"the first row of t.csv looks like data, not a header: {first!r} ({why})"
    assert error.hint.startswith("add a header row first: file,")
    with pytest.raises(SystemExit, match=rf"looks like data, not a header: {first!r} \({why}\)"):
        script_functions(path)[f"read_{key}"](tmp_path / "img", tmp_path / "t.csv")


# -- predict and evaluate --------------------------------------------------------------------------
def test_predict_scales_a_uint16_array_by_the_depth_training_divides_by(tmp_path):
    x = pixels(12, "uint16", 65536)
    compiled, config, data = loaded(npz_case(tmp_path, "classifier", x, x[:6]))
    run = Run(tmp_path / "model.keras", compiled=compiled, _config=config)
    # evaluate reads the npz as training does; predict scales the array it is given by its depth
    assert file_rescale(run, None, True, x[:2]) == rescale_factor(config, data, compiled) == 1 / 65535
    assert file_rescale(run, None, True, x[:2].astype("int64") // 257) == 1 / 255  # 0–255 in int64
    assert file_rescale(run, None, True) == 1 / 255  # image files: 8-bit
    assert file_rescale(run, None, False, x[:2].astype("float32")) is None  # floats: as stored
    with pytest.raises(UsageError, match=r"8-bit .* or uint16 integer pixels.* int64 from 0 to 999"):
        file_rescale(run, None, True, np.array([[0, 999]]))
    # without a spec (a bare model file): the same rule
    bare = Run(tmp_path / "model.keras")
    assert file_rescale(bare, SimpleNamespace(layers=[]), True, x[:2]) == 1 / 65535


@pytest.mark.parametrize("cells", [("0", "1"), ("0.0", "1.0")], ids=["whole", "float"])
def test_0_1_columns_written_as_floats_are_read_by_both(tmp_path, cells):
    """pandas writes a column of floats as `1.0`: the same labels as `1`, in train and the
    script; a cell of another value is refused by both, with the same message."""
    files = write_images(tmp_path / "img", 4)
    rows = ["file,cat,dog,owl", *[f"{f},{cells[i % 2]},{cells[1]},{cells[0]}" for i, f in enumerate(files)]]
    (tmp_path / "l.csv").write_text("\n".join(rows) + "\n")
    extra = "  test_split: 0.5\n  validation_split: 0\n"
    path = spec(tmp_path, "{images: img, labels: l.csv}", MULTILABEL, extra)
    _, _, data = loaded(path)
    assert data.class_names == ["cat", "dog", "owl"]
    read_labels = script_functions(path)["read_labels"]
    _, y, read = read_labels(tmp_path / "img", tmp_path / "l.csv")
    assert read == ["cat", "dog", "owl"] and y[:, 0].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert y[:, 1].tolist() == [1.0] * 4 and y[:, 2].tolist() == [0.0] * 4
    rows[2] = f"{files[1]},0.5,1,0"
    (tmp_path / "l.csv").write_text("\n".join(rows) + "\n")
    message = f"expected 3 columns of 0 or 1 in l.csv row 3 ({files[1]}); received '0.5,1,0'"
    assert refused(path).message == message
    with pytest.raises(SystemExit, match=re.escape(message)):
        read_labels(tmp_path / "img", tmp_path / "l.csv")


@pytest.mark.parametrize(
    ("header", "names"), [("cat", ["cat"]), ("labels", ["0", "1"])], ids=["one-label", "list"]
)
def test_a_single_float_0_1_column_is_one_label_too(tmp_path, header, names):
    files = write_images(tmp_path / "img", 4)
    rows = [f"file,{header}", *[f"{f},{i % 2}.0" for i, f in enumerate(files)]]
    (tmp_path / "l.csv").write_text("\n".join(rows) + "\n")
    head = MULTILABEL.replace("units: 3", f"units: {len(names)}")
    extra = "  test_split: 0.5\n  validation_split: 0\ntraining: {task: multilabel}\n"
    _, _, data = loaded(spec(tmp_path, "{images: img, labels: l.csv}", head, extra))
    names = ["cat"] if header == "cat" else ["0.0", "1.0"]  # under `labels`: the cells as labels
    assert data.class_names == names
    _, _, read = script_functions(tmp_path / "spec.yaml")["read_labels"](tmp_path / "img", tmp_path / "l.csv")
    assert read == names


@pytest.mark.parametrize(
    ("header", "names"), [("cat", ["cat"]), ("labels", ["0", "1"])], ids=["one-label", "list"]
)
def test_a_single_0_1_column_is_one_label_unless_its_header_names_a_list(tmp_path, header, names):
    """`file,cat` of 0/1 cells says which images show a cat (one label), in train and the
    script alike; under `file,labels` the same cells are the labels 0 and 1."""
    files = write_images(tmp_path / "img", 4)
    rows = [f"file,{header}", *[f"{f},{i % 2}" for i, f in enumerate(files)]]
    (tmp_path / "l.csv").write_text("\n".join(rows) + "\n")
    head = MULTILABEL.replace("units: 3", f"units: {len(names)}")
    extra = "  test_split: 0.5\n  validation_split: 0\n"
    extra += "training: {task: multilabel}\n"  # (one sigmoid unit is a binary classifier unless said)
    _, _, data = loaded(spec(tmp_path, "{images: img, labels: l.csv}", head, extra))
    assert data.class_names == names
    _, y, read = script_functions(tmp_path / "spec.yaml")["read_labels"](tmp_path / "img", tmp_path / "l.csv")
    assert read == names and y.shape == (4, len(names))
    if header == "cat":
        assert y[:, 0].tolist() == [0.0, 1.0, 0.0, 1.0]
