"""``codegen --script``'s train.py refuses the data the third data audit made ``cnnspec train``
refuse (tests/test_data_audit3.py), with train's message: a ``test_split`` or
``validation_split`` the spec writes for a split a ``train/``, ``val/``, ``test/`` folder has,
a class whose files are all bad under ``on_bad_file: skip``, and a regression value beyond
float32's range in a values table.

The scripts' data functions run without TensorFlow (tests/test_listing_edges.py's
:func:`script_functions`) beside cnnspec's loader. Nothing is trained.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cnnspec.api import compile_spec
from tests.test_data_audit3 import (
    CLASSIFIER,
    REGRESSION,
    class_tree,
    data_error,
    image,
    load,
    split_folder,
    write_spec,
)
from tests.test_listing_edges import script_functions


def stopped(functions: dict[str, Any], *args: Any) -> str:
    """The message the script's ``load_data(*args)`` stops with."""
    with pytest.raises(SystemExit) as info:
        functions["load_data"](*args)
    return str(info.value.code)


# -- 1. test_split and validation_split beside a train/, val/, test/ folder ----------------------
@pytest.mark.parametrize("key", ["test_split", "validation_split"])
def test_a_split_setting_for_a_split_the_folder_has_stops_the_script(tmp_path, key):
    """Before: the folders' splits were used and the setting ignored without a word. A layout
    without that split's folder still takes the setting (it splits train/), and the default
    settings beside a full layout are no error."""
    split = key.split("_")[0]
    for folder in ("train", "val", "test"):
        if folder != {"test": "test", "validation": "val"}[split]:
            class_tree(tmp_path / "lacking" / folder, {"a": 4, "b": 4})
    spec = write_spec(tmp_path, "{directory: lacking}", CLASSIFIER, f"  {key}: 0.25\n")
    assert load(spec).sizes()[split] == 2
    (x, _), (x_test, _), _, found = script_functions(spec)["load_data"](tmp_path / "lacking")
    if split == "test":
        assert len(x) == 6 and len(x_test) == 2
    else:  # (main() splits the validation set off)
        assert found["validation"] is None and len(x) == len(x_test) == 8
    split_folder(tmp_path / "photos")
    spec = write_spec(tmp_path, "{directory: photos}", CLASSIFIER)
    (x, _), (x_test, _), _, found = script_functions(spec)["load_data"](tmp_path / "photos")
    assert len(x) == len(x_test) == len(found["validation"][0]) == 8
    spec = write_spec(tmp_path, "{directory: photos}", CLASSIFIER, f"  {key}: 0.5\n")
    message, _, _ = data_error(spec)
    text = stopped(script_functions(spec), tmp_path / "photos")
    assert text.splitlines()[0] == message
    assert f"remove data.{key} from the spec" in text


@pytest.mark.parametrize("key", ["test_split", "validation_split"])
def test_a_split_setting_given_with_set_stops_the_script_too(tmp_path, key):
    split_folder(tmp_path / "photos")
    spec = write_spec(tmp_path, "{directory: photos}", CLASSIFIER)
    text = stopped(script_functions(spec, compile_spec(spec, [f"data.{key}=0.25"])), tmp_path / "photos")
    split = key.split("_")[0]
    assert text.startswith(
        f"expected no {key} for a folder with its own {split} set (train/, val/, test/ in "
        f"{tmp_path / 'photos'}); received 0.25\n"
    )


# -- 2. a class whose files are all bad under on_bad_file: skip ------------------------------------
def spoil(folder: Path, names: list[str]) -> None:
    for name in names:
        (folder / name).write_bytes(b"not an image")


def test_a_class_of_only_bad_files_stops_the_script_under_skip(tmp_path):
    class_tree(tmp_path / "photos", {"a": 4, "b": 4, "c": 3})
    spoil(tmp_path / "photos" / "c", ["bad.png"])
    spec = write_spec(tmp_path, "{directory: photos}", CLASSIFIER, "  on_bad_file: skip\n")
    (x, _), (x_test, _), names, found = script_functions(spec)["load_data"](tmp_path / "photos")
    assert names == ["a", "b", "c"] and len(x) + len(x_test) == 11 and len(found["bad_files"]) == 1
    spoil(tmp_path / "photos" / "c", ["c0.png", "c1.png", "c2.png"])
    message, _, _ = data_error(spec)
    assert stopped(script_functions(spec), tmp_path / "photos") == message


def test_a_class_of_only_bad_files_in_the_test_folder_names_that_folder(tmp_path):
    split_folder(tmp_path / "photos")
    spoil(tmp_path / "photos" / "test" / "b", [f"b{i}.png" for i in range(4)])
    spec = write_spec(tmp_path, "{directory: photos}", CLASSIFIER, "  on_bad_file: skip\n")
    message, _, _ = data_error(spec)
    assert f"the class 'b' in {tmp_path / 'photos' / 'test'} is a bad file" in message
    assert stopped(script_functions(spec), tmp_path / "photos") == message


def test_a_class_of_only_bad_files_in_a_csv_stops_the_script_under_skip(tmp_path):
    class_tree(tmp_path / "pics", {"a": 4, "b": 4, "c": 2})
    spoil(tmp_path / "pics" / "c", ["c0.png", "c1.png"])
    rows = "".join(f"{c}/{c}{i}.png,{c}\n" for c, n in (("a", 4), ("b", 4), ("c", 2)) for i in range(n))
    (tmp_path / "pics" / "labels.csv").write_text(f"file,label\n{rows}")
    spec = write_spec(tmp_path, "{csv: pics/labels.csv}", CLASSIFIER, "  on_bad_file: skip\n")
    message, _, _ = data_error(spec)
    assert "every image of the class 'c'" in message
    assert stopped(script_functions(spec), tmp_path / "pics" / "labels.csv") == message


# -- 3. a regression value beyond float32 in a values table -----------------------------------------
def values_table(path: Path, third: str) -> None:
    """A CSV or JSON values table of im0.png … im3.png whose third value is ``third``."""
    values = {"im0.png": "1", "im1.png": "2", "im2.png": third, "im3.png": "-3"}
    if path.suffix == ".csv":
        path.write_text("file,age\n" + "".join(f"{file},{value}\n" for file, value in values.items()))
    else:
        path.write_text(json.dumps({file: float(value) for file, value in values.items()}))


@pytest.mark.parametrize("table", ["v.csv", "v.json"])
def test_a_value_beyond_float32_stops_the_script(tmp_path, table):
    """Before: the script stored it as float32 infinity (with NumPy's overflow warning)."""
    for index in range(4):
        image(tmp_path / "imgs" / f"im{index}.png")
    values_table(tmp_path / table, "1e39")
    training = "task: regression, loss: mse, "
    spec = write_spec(tmp_path, f"{{images: imgs, values: {table}}}", REGRESSION, training=training)
    message, _, _ = data_error(spec)
    functions = script_functions(spec)
    functions["read_images"] = lambda files: files  # (TensorFlow's decoder: not needed here)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        with pytest.raises(SystemExit) as info:
            functions["read_files"](tmp_path / "imgs", tmp_path / table)
    text = str(info.value.code)
    head = "expected a number within float32's range (±3.403e+38) in "
    assert message.startswith(head) and text.startswith(head) and "im2.png" in text
    assert text.split("\n")[0] == message  # received '1e39' (the CSV cell) or 1e+39, as train names it
    values_table(tmp_path / table, "3e38")  # within float32's range: read
    _, y, _ = functions["read_files"](tmp_path / "imgs", tmp_path / table)
    assert np.isfinite(y).all() and y[2, 0] == np.float32(3e38)


def test_a_json_integer_beyond_any_float_stops_train_and_the_script_alike(tmp_path):
    """Before: an uncaught OverflowError in both (``float(10**400)``)."""
    for index in range(4):
        image(tmp_path / "imgs" / f"im{index}.png")
    huge = "1" + "0" * 400
    (tmp_path / "v.json").write_text(f'{{"im0.png": 1, "im1.png": 2, "im2.png": {huge}, "im3.png": -3}}')
    training = "task: regression, loss: mse, "
    spec = write_spec(tmp_path, "{images: imgs, values: v.json}", REGRESSION, training=training)
    message, _, _ = data_error(spec)
    head = "expected a number within float32's range (±3.403e+38) in "
    assert message.startswith(head)
    functions = script_functions(spec)
    functions["read_images"] = lambda files: files
    with pytest.raises(SystemExit) as info:
        functions["read_files"](tmp_path / "imgs", tmp_path / "v.json")
    assert str(info.value.code).startswith(head) and "im2.png" in str(info.value.code)
