"""Image folders and labelled CSVs at their edges: nothing is left out, split apart or made a
class without a word, and ``codegen --script``'s train.py lists the files as ``cnnspec train``.

The generated script imports TensorFlow at the top; its data functions do not use it, so
:func:`script_loader` runs only those (no TensorFlow in these tests).
"""

from __future__ import annotations

import ast
import os
import shutil
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cnnspec.analysis.compiled import CompiledSpec
from cnnspec.analysis.settings import training_config
from cnnspec.api import compile_spec
from cnnspec.backends.python_emitter import generate_code
from cnnspec.errors import SpecError
from cnnspec.training.data import Dataset, load_dataset


# -- helpers --------------------------------------------------------------------------------------
def make_images(folder: Path, classes: dict[str, int], seed: int = 0) -> list[Path]:
    """A class-folder tree of 8×8 random RGB PNGs (``{class: count}``); returns the files."""
    rng = np.random.default_rng(seed)
    files = []
    for name, count in classes.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            path = folder / name / f"{name}{i}.png"
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype="uint8")).save(path)
            files.append(path)
    return files


def write_spec(tmp_path: Path, data: str, units: int = 2) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(
        "cnnspec: 1\nname: edges\ninput: {shape: [8, 8, 3]}\nmodel:\n"
        "  - conv2d: {filters: 2, kernel_size: 3}\n  - global_avg_pool2d\n"
        f"  - dense: {{units: {units}, activation: softmax}}\ndata: {data}\n"
        "training: {epochs: 1, batch_size: 4, seed: 3}\n"
    )
    return path


def load(tmp_path: Path, data: str, units: int = 2) -> Dataset:
    compiled = compile_spec(write_spec(tmp_path, data, units))
    return load_dataset(compiled, training_config(compiled), 0)


def listing_error(tmp_path: Path, data: str, units: int = 2) -> Any:
    """The one located error that loading the data gives."""
    with pytest.raises(SpecError) as info:
        load(tmp_path, data, units)
    (error,) = info.value.errors
    assert error.path.startswith("data.source") and error.loc is not None
    return error


#: the script's imports that its data functions need (TensorFlow and Keras are left out; the
#: task script reads JSON tables too)
SCRIPT_MODULES = (
    "csv", "concurrent.futures", "io", "json", "os", "pathlib", "unicodedata",
    "numpy", "PIL", "sklearn.model_selection",
)  # fmt: skip


def script_functions(path: Path, compiled: CompiledSpec | None = None) -> dict[str, Any]:
    """The namespace of the training script generated from the spec ``path`` (or from
    ``compiled``, a compilation of it with ``--set`` overrides), run without TensorFlow: its
    undecorated functions, constants and data imports only (its model and training code are
    never called here)."""
    script = path.with_name("train_script.py")
    tree = ast.parse(
        compiled_script(path)
        if compiled is None
        else generate_code(compiled, script=True, output=script).text
    )
    kept = [
        node
        for node in tree.body
        if (isinstance(node, ast.FunctionDef) and not node.decorator_list)
        or (isinstance(node, ast.Import) and node.names[0].name in SCRIPT_MODULES)
        or (isinstance(node, ast.ImportFrom) and node.module in SCRIPT_MODULES)
        or (isinstance(node, ast.Assign) and isinstance(node.value, (ast.Constant, ast.Tuple, ast.List)))
        or (isinstance(node, ast.Assign) and _literal_dict(node.value))
    ]
    namespace: dict[str, Any] = {}
    exec(compile(ast.Module(body=kept, type_ignores=[]), str(script), "exec"), namespace)
    return namespace


#: The scripts generated so far, by the text and file name of a spec that reads no other spec
#: file: its folder when generated, and the script's text.
_SCRIPTS: dict[tuple[str, str], tuple[str, str]] = {}
#: What makes a spec read other files that its text does not show.
_READS_OTHER_SPECS = ("extends", "use:", "backbone", "weights")


def compiled_script(path: Path) -> str:
    """The training script generated from the spec ``path``. Generation reads the spec and the
    spec files it names, never the data (codegen is TF-free and data-free), so the script of a
    spec of the same text, in another test's folder, is the same but for that folder's name:
    the hundreds of cases that write one spec beside data of different faults generate it once
    per process (0.2 s each)."""
    text = path.read_text(encoding="utf-8")
    key = (text, path.name)
    cacheable = not any(word in text for word in _READS_OTHER_SPECS)
    if cacheable and key in _SCRIPTS:
        folder, source = _SCRIPTS[key]
        return source.replace(folder, str(path.parent))
    source = generate_code(compile_spec(path), script=True, output=path.with_name("train_script.py")).text
    if cacheable:
        _SCRIPTS[key] = (str(path.parent), source)
    return source


def _literal_dict(value: ast.expr) -> bool:
    """A dict display of literals only (``BAD_READS = {}``, ``OUTPUTS = {"out": "regression"}``,
    ``MASK_SIZE = {"seg": (8, 8)}``)."""
    if not isinstance(value, ast.Dict):
        return False
    try:
        ast.literal_eval(value)
    except ValueError:
        return False
    return True


def script_loader(tmp_path: Path, data: str, units: int = 2) -> Any:
    """The generated train.py's ``load_data`` (:func:`script_functions`) for a spec of ``data``."""
    return script_functions(write_spec(tmp_path, data, units))["load_data"]


def names(paths: Any) -> list[str]:
    """``class/file`` of each path (the split folder left out)."""
    return [f"{Path(p).parent.name}/{Path(p).name}" for p in paths]


# -- 1. a CSV naming one image twice --------------------------------------------------------------
@pytest.mark.parametrize("second", ["a0.png,a", "./a0.png,b"], ids=["same-label", "other-label"])
def test_a_csv_row_repeating_an_image_is_an_error_naming_both_lines(tmp_path, second):
    make_images(tmp_path / "pics", {"a": 3, "b": 3})
    rows = [f"{c}/{c}{i}.png,{c}" for c in "ab" for i in range(3)]
    (tmp_path / "pics" / "labels.csv").write_text("file,label\n" + "\n".join([*rows, f"a/{second}"]) + "\n")
    error = listing_error(tmp_path, "{source: {csv: pics/labels.csv}}")
    assert "expected each image once in labels.csv" in error.message
    assert "a0.png on lines 2 and 8" in error.message and "training and the test split" in error.hint
    with pytest.raises(SystemExit, match="expected each image once"):
        script_loader(tmp_path, "{source: {csv: pics/labels.csv}}")(tmp_path / "pics" / "labels.csv")


def test_a_csv_naming_two_hard_links_of_one_image_is_an_error_too(tmp_path):
    """Two names of one file (``ln a0.png twin.png``): no path tells them apart, the inode does;
    a row naming a file that is missing still gets its own error (the script's too), not a crash."""
    import os

    make_images(tmp_path / "pics", {"a": 3, "b": 3})
    os.link(tmp_path / "pics" / "a" / "a0.png", tmp_path / "pics" / "b" / "twin.png")
    rows = [f"{c}/{c}{i}.png,{c}" for c in "ab" for i in range(3)]
    (tmp_path / "pics" / "labels.csv").write_text("file,label\n" + "\n".join([*rows, "b/twin.png,b"]) + "\n")
    error = listing_error(tmp_path, "{source: {csv: pics/labels.csv}}")
    assert "expected each image once in labels.csv" in error.message
    assert "twin.png on lines 2 and 8" in error.message
    with pytest.raises(SystemExit, match=r"listed more than once: twin\.png"):
        script_loader(tmp_path, "{source: {csv: pics/labels.csv}}")(tmp_path / "pics" / "labels.csv")
    (tmp_path / "pics" / "b" / "twin.png").unlink()  # now a row of a file that is not there
    with pytest.raises(SystemExit) as stopped:
        script_loader(tmp_path, "{source: {csv: pics/labels.csv}}")(tmp_path / "pics" / "labels.csv")
    assert "twin.png" in str(stopped.value) and "more than once" not in str(stopped.value)


# -- 2. a hidden folder beside train/ and test/ ---------------------------------------------------
def test_a_hidden_folder_beside_train_and_test_keeps_the_layout_in_the_script_too(tmp_path):
    make_images(tmp_path / "imgs" / "train", {"a": 4, "b": 4})
    make_images(tmp_path / "imgs" / "test", {"a": 2, "b": 2}, seed=1)
    (tmp_path / "imgs" / ".ipynb_checkpoints").mkdir()
    data = load(tmp_path, "{source: {directory: imgs}}")
    (_, _), (x_test, y_test), classes, _ = script_loader(tmp_path, "{source: {directory: imgs}}")(
        tmp_path / "imgs"
    )
    assert data.class_names == classes == ["a", "b"]
    assert [Path(p) for p in x_test] == data.x_test.paths
    assert {p.parent.parent.name for p in data.x_test.paths} == {"test"}
    np.testing.assert_array_equal(y_test, data.y_test)


# -- 3. val/ and valid/; folders that are almost a split layout ----------------------------------
@pytest.mark.parametrize("folder", ["val", "valid"])
def test_val_and_valid_name_the_validation_folder(tmp_path, folder):
    make_images(tmp_path / "imgs" / "train", {"a": 4, "b": 4})
    make_images(tmp_path / "imgs" / folder, {"a": 1, "b": 2}, seed=1)
    make_images(tmp_path / "imgs" / "test", {"a": 2, "b": 1}, seed=2)
    data = load(tmp_path, "{source: {directory: imgs}}")
    assert data.class_names == ["a", "b"] and data.source["layout"] == "train/validation/test"
    assert {p.parent.parent.name for p in data.x_val.paths} == {folder}
    *_, found = script_loader(tmp_path, "{source: {directory: imgs}}")(tmp_path / "imgs")
    x_val, y_val = found["validation"]
    assert [Path(p) for p in x_val] == data.x_val.paths
    np.testing.assert_array_equal(y_val, data.y_val)


@pytest.mark.parametrize(
    "folders",
    [("train", "other"), ("train", "val", "validation", "test"), ("train",), ("test", "a")],
    ids=["train+other", "two-validation-folders", "lone-train", "test-without-train"],
)
def test_a_folder_almost_split_is_an_error_whose_hint_names_the_layout(tmp_path, folders):
    for folder in folders:
        make_images(tmp_path / "imgs" / folder, {"a": 2, "b": 2})
    error = listing_error(tmp_path, "{source: {directory: imgs}}")
    assert "to be a folder of class folders or a train/, test/ layout" in error.message
    assert "train/ and test/ (and one of validation/, val/, valid/)" in error.hint
    with pytest.raises(SystemExit, match="or a train/, test/ layout"):
        script_loader(tmp_path, "{source: {directory: imgs}}")(tmp_path / "imgs")


def test_a_class_named_train_is_still_a_class(tmp_path):
    """Only a train/ or test/ folder of folders marks a split: vehicles may have a class train."""
    make_images(tmp_path / "imgs", {"bus": 3, "train": 3})
    data = load(tmp_path, "{source: {directory: imgs}, test_split: 0.3}")
    assert data.class_names == ["bus", "train"]


# -- 4. a test class folder the training classes lack ---------------------------------------------
@pytest.mark.parametrize("layout", ["presplit", "test_directory"])
def test_an_unknown_test_class_folder_is_an_error(tmp_path, layout):
    if layout == "presplit":
        make_images(tmp_path / "imgs" / "train", {"a": 3, "b": 3})
        make_images(tmp_path / "imgs" / "test", {"a": 1, "b": 1, "d": 2}, seed=1)
        data, test = "{source: {directory: imgs}}", ()
    else:
        make_images(tmp_path / "imgs", {"a": 3, "b": 3})
        make_images(tmp_path / "held", {"a": 1, "b": 1, "d": 2}, seed=1)
        data, test = "{source: {directory: imgs, test_directory: held}}", (tmp_path / "held",)
    error = listing_error(tmp_path, data)
    assert "among the training classes; received 'd'" in error.message
    assert "the training classes are 'a', 'b'" in error.hint
    with pytest.raises(SystemExit, match="among the training classes"):
        script_loader(tmp_path, data)(tmp_path / "imgs", *test)


# -- 5. CSV cells with spaces ---------------------------------------------------------------------
def test_csv_cells_are_stripped_so_a_space_makes_no_class(tmp_path):
    make_images(tmp_path / "pics", {"a": 3, "b": 3})
    rows = [f" {c}/{c}{i}.png , {c}" if i == 0 else f"{c}/{c}{i}.png,{c}" for c in "ab" for i in range(3)]
    (tmp_path / "pics" / "labels.csv").write_text("file,label\n" + "\n".join(rows) + "\n")
    make_images(tmp_path / "pics" / "held", {"a": 1})  # a test image of its own (held/a/a0.png)
    (tmp_path / "pics" / "test.csv").write_text("file,label\nheld/a/a0.png, b \n")
    source = "{csv: pics/labels.csv, test_csv: pics/test.csv}"
    data = load(tmp_path, f"{{source: {source}}}")
    assert data.class_names == ["a", "b"] and list(data.y_test) == [1]
    everything = [*data.x_train.paths, *data.x_val.paths]
    assert sorted(names(everything)) == sorted(f"{c}/{c}{i}.png" for c in "ab" for i in range(3))
    (x_train, y_train), (x_test, y_test), classes, _ = script_loader(tmp_path, f"{{source: {source}}}")(
        tmp_path / "pics" / "labels.csv", tmp_path / "pics" / "test.csv"
    )
    assert classes == ["a", "b"] and list(y_test) == [1] and names(x_test) == ["a/a0.png"]  # (held/a/a0.png)
    labelled = zip(names(everything), [*data.y_train, *data.y_val], strict=True)
    assert sorted(zip(names(x_train), y_train, strict=True)) == sorted(labelled)


# -- 6. empty class folders; images beside the class folders --------------------------------------
def test_an_empty_class_folder_is_an_error(tmp_path):
    make_images(tmp_path / "imgs", {"a": 3, "b": 3})
    (tmp_path / "imgs" / "empty").mkdir()
    (tmp_path / "imgs" / "empty" / "notes.txt").write_text("no image")
    error = listing_error(tmp_path, "{source: {directory: imgs}}", units=3)
    assert "class folder" in error.message and "empty holds no .png" in error.message
    with pytest.raises(SystemExit, match=r"empty holds no \.png"):
        script_loader(tmp_path, "{source: {directory: imgs}}", units=3)(tmp_path / "imgs")


@pytest.mark.parametrize("layout", ["classes", "presplit"])
def test_a_class_folder_link_that_leads_nowhere_is_an_error(tmp_path, layout):
    # its class was left out without a word (a broken link is no folder to is_dir)
    root = tmp_path / "imgs"
    classes = root if layout == "classes" else root / "train"
    make_images(classes, {"a": 3, "b": 3})
    if layout == "presplit":
        make_images(root / "test", {"a": 1, "b": 1})
    (classes / "owl").symlink_to(tmp_path / "gone")
    error = listing_error(tmp_path, "{source: {directory: imgs}}")
    assert error.message == (
        f"expected each entry of {classes} to be there; owl is a link to {tmp_path / 'gone'}, which "
        "does not exist, so its images would be left out"
    )
    with pytest.raises(SystemExit, match="links that lead nowhere: \\['owl'\\]"):
        script_loader(tmp_path, "{source: {directory: imgs}}")(root)


def test_a_split_folder_link_that_leads_nowhere_is_a_missing_split_not_a_slice_of_train(tmp_path):
    # test -> moved: the link was left out, and the test images drawn from train/ without a word
    root = tmp_path / "imgs"
    make_images(root / "train", {"a": 4, "b": 4})
    make_images(root / "val", {"a": 1, "b": 1})
    (root / "test").symlink_to(tmp_path / "moved")
    error = listing_error(tmp_path, "{source: {directory: imgs}}")
    assert error.message.endswith(f"{root / 'test'} does not exist")
    with pytest.raises(SystemExit, match="test does not exist"):
        script_loader(tmp_path, "{source: {directory: imgs}}")(root)


def test_a_link_inside_a_class_folder_that_leads_nowhere_is_an_error(tmp_path):
    root = tmp_path / "imgs"
    make_images(root, {"a": 3, "b": 3})
    (root / "a" / "batch2").symlink_to(tmp_path / "moved_batch2")  # a folder of images, moved
    error = listing_error(tmp_path, "{source: {directory: imgs}}")
    assert "batch2 leads to" in error.message and "which does not exist" in error.message


def test_a_class_folder_name_that_is_not_utf8_is_an_error(tmp_path):
    # it trained to an internal error (the run's hash and files write the class names as UTF-8)
    root = tmp_path / "imgs"
    make_images(root, {"a": 3})
    make_images(Path(os.fsdecode(bytes(root) + b"/b\xff")).parent, {os.fsdecode(b"b\xff"): 3})
    error = listing_error(tmp_path, "{source: {directory: imgs}}")
    assert error.message == (
        f"expected class folder names in UTF-8; {root}/b\\xff is not, and a class's name is written "
        "into reports and the run's files"
    )


@pytest.mark.parametrize("layout", ["classes", "presplit"])
def test_images_beside_the_class_folders_are_an_error(tmp_path, layout):
    root = tmp_path / "imgs"
    if layout == "classes":
        make_images(root, {"a": 3, "b": 3})
    else:
        make_images(root / "train", {"a": 3, "b": 3})
        make_images(root / "test", {"a": 1, "b": 1})
    (root / "b9.png").write_bytes((root.rglob("a0.png").__next__()).read_bytes())
    (root / "._b9.png").write_bytes(b"a macOS resource fork: hidden, so no image")
    error = listing_error(tmp_path, "{source: {directory: imgs}}")
    assert "1 image file(s) lie directly in it, in no class: b9.png" in error.message
    assert "into its class's folder" in error.hint
    with pytest.raises(SystemExit, match="in no class"):
        script_loader(tmp_path, "{source: {directory: imgs}}")(root)


# -- 7. names in either Unicode form (a macOS copy, decomposed; Linux, composed) ------------------
def unicode_tree(folder: Path, form: str) -> None:
    """Classes éclair and fig of 6 images each, file names éN.png and fN.png, written in the
    Unicode ``form`` (NFC or NFD); the same pixels for either form."""
    rng = np.random.default_rng(0)
    for cls in ("éclair", "fig"):
        for i in range(6):
            name = f"é{i}.png" if i % 2 else f"f{i}.png"
            path = folder / unicodedata.normalize(form, cls) / unicodedata.normalize(form, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype="uint8")).save(path)


def nfc(paths: Any) -> list[str]:
    """``class/file`` of each path in Unicode NFC."""
    return [unicodedata.normalize("NFC", name) for name in names(paths)]


def test_names_in_either_unicode_form_number_split_and_hash_alike_in_cnnspec_and_the_script(tmp_path):
    """Sorted by their raw code points, fig came before the composed éclair but after the
    decomposed one: label 0, the splits and the trained model changed with the file system."""
    data = "{source: {directory: imgs}, validation_split: 0.25, test_split: 0.25}"
    runs = {}
    for form in ("NFC", "NFD"):
        shutil.rmtree(tmp_path / "imgs", ignore_errors=True)
        unicode_tree(tmp_path / "imgs", form)
        compiled = compile_spec(write_spec(tmp_path, data))
        loaded = load_dataset(compiled, training_config(compiled), 3)  # the spec's seed, as the script
        loaded.hash_content = True  # (the files' times differ; their bytes do not)
        (_, _), (x_test, _), classes, _ = script_loader(tmp_path, data)(tmp_path / "imgs")
        assert classes == loaded.class_names == ["fig", unicodedata.normalize(form, "éclair")]
        assert nfc(x_test) == nfc(loaded.x_test.paths)  # the script splits alike
        runs[form] = (
            [nfc(x.paths) for x in (loaded.x_train, loaded.x_val, loaded.x_test)],
            [y.tolist() for y in (loaded.y_train, loaded.y_val, loaded.y_test)],
            loaded.content_hash(),
        )
    assert runs["NFC"] == runs["NFD"]
    assert runs["NFC"][0][2] == ["fig/f0.png", "fig/f2.png", "éclair/f0.png"]  # the test split


@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_csv_labels_in_either_unicode_form_are_the_same_classes_in_cnnspec_and_the_script(tmp_path, form):
    make_images(tmp_path / "pics", {"a": 2, "b": 2})
    label = unicodedata.normalize(form, "éclair")
    rows = ["a/a0.png,fig", "a/a1.png,fig", f"b/b0.png,{label}", f"b/b1.png,{label}"]
    (tmp_path / "pics" / "labels.csv").write_text("file,label\n" + "\n".join(rows) + "\n")
    loaded = load(tmp_path, "{source: {csv: pics/labels.csv}}")
    (_, _), _, classes, _ = script_loader(tmp_path, "{source: {csv: pics/labels.csv}}")(
        tmp_path / "pics" / "labels.csv"
    )
    assert classes == loaded.class_names == ["fig", label]
