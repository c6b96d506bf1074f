"""``codegen --script``'s train.py beside ``cnnspec train`` where the data has holes: a labels CSV
whose rows lack a cell, name a missing image or lack a column (refused by both, never a
traceback, an image labelled with the empty class "" or a missing file left out as a bad one).

The scripts' data functions run without TensorFlow (:func:`tests.test_listing_edges.script_loader`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.test_listing_edges import listing_error, make_images, script_functions, script_loader, write_spec

CSV_SOURCE = "{source: {csv: pics/labels.csv}, on_bad_file: skip}"
NO_CELL = "an image path and a label on line 8"


def labels_csv(tmp_path: Path, extra: str = "", header: str = "file,label") -> Path:
    """pics/labels.csv naming six images of the classes a and b, then the rows ``extra``."""
    files = make_images(tmp_path / "pics", {"a": 3, "b": 3})
    rows = "".join(f"{p.parent.name}/{p.name},{p.parent.name}\n" for p in files)
    path = tmp_path / "pics" / "labels.csv"
    path.write_text(f"{header}\n{rows}{extra}")
    return path


@pytest.mark.parametrize(
    ("extra", "header", "trained", "script"),
    [
        # an empty label made the image one of a class "" (b/extra.png exists); an empty path read
        # the CSV's folder as a bad image file, which on_bad_file: skip left out
        ("b/extra.png\n", "file,label", NO_CELL, NO_CELL),
        (",a\n", "file,label", NO_CELL, NO_CELL),
        # a missing image was a bad file, left out under on_bad_file: skip
        (
            "c/new.png,a\n",
            "file,label",
            "every image the CSV names to be a file",
            "a file; 1 are not: line 8: ",
        ),
        # a missing column was a KeyError's traceback
        ("", "file,kind", "expected a column 'label' in labels.csv", "expected a column 'label' in "),
    ],
    ids=["no-label", "no-path", "missing-image", "no-column"],
)
def test_the_script_refuses_the_csv_rows_cnnspec_train_refuses(tmp_path, extra, header, trained, script):
    path = labels_csv(tmp_path, extra, header)
    (tmp_path / "pics" / "b" / "extra.png").write_bytes((tmp_path / "pics" / "b" / "b0.png").read_bytes())
    assert trained in listing_error(tmp_path, CSV_SOURCE).message
    with pytest.raises(SystemExit, match=script):
        script_loader(tmp_path, CSV_SOURCE)(path)


def test_a_quoted_line_break_in_a_csv_path_is_part_of_the_path_in_both(tmp_path):
    """The script read its CSV line by line: the quoted path "a/new<newline>.png" was a/new.png,
    an image train never lists (train reads the file whole, as the csv module wants)."""
    path = labels_csv(tmp_path, '"a/new\n.png",a\n')
    (tmp_path / "pics" / "a" / "new.png").write_bytes((tmp_path / "pics" / "a" / "a0.png").read_bytes())
    assert "a file; 1 are not: line 9: " in listing_error(tmp_path, CSV_SOURCE).message
    with pytest.raises(SystemExit, match=r"a file; 1 are not: line 9: .*/a/new\n\.png does not exist"):
        script_loader(tmp_path, CSV_SOURCE)(path)


@pytest.mark.parametrize(
    ("opened", "header"), [('"a/a0.png,a\n', "file,label"), ("", 'file,"label')], ids=["row", "header"]
)
def test_a_quote_left_open_in_a_large_csv_is_refused_by_both_alike(tmp_path, opened, header):
    """The rest of the file became one cell over the csv module's limit: the script stopped
    with a csv.Error traceback (in a row, and in the header, read outside its handler); train
    refuses the file."""
    big = "".join(f"a/a{i % 3}.png,a\n" for i in range(20_000))
    path = labels_csv(tmp_path, opened + big, header=header)
    trained = listing_error(tmp_path, CSV_SOURCE).message
    assert trained.startswith("expected a readable UTF-8 CSV file; labels.csv: field larger than field limit")
    with pytest.raises(SystemExit) as stopped:
        script_loader(tmp_path, CSV_SOURCE)(path)
    assert str(stopped.value) == trained


def test_the_script_refuses_a_csv_of_a_header_alone(tmp_path):
    path = labels_csv(tmp_path)
    load_data = script_loader(tmp_path, CSV_SOURCE)
    path.write_text("file,label\n")
    with pytest.raises(SystemExit, match=r"expected at least one row of images in .* it has only a header"):
        load_data(path)


# -- a file that passes the header check and fails to decode -------------------------------------
def truncated_jpeg(path: Path) -> None:
    """A JPEG cut in half: Pillow's verify reads a JPEG's header only, so it passes the check
    before training and fails when its pixels are decoded (a download cut short)."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype="uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) * 3 // 4])  # (its header whole)
    with Image.open(path) as image:
        image.verify()  # passes: the check before training lets it through


def run_script(spec_path: Path, out: Path) -> None:
    """The generated train.py of ``spec_path``, run in this process with ``--out out``."""
    import importlib.util

    from cnnspec.api import compile_spec
    from cnnspec.backends.python_emitter import generate_code

    script = spec_path.with_name("train_script.py")
    script.write_text(generate_code(compile_spec(spec_path), script=True, output=script).text)
    module_spec = importlib.util.spec_from_file_location("generated_audit4_script", script)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    module.main(["--out", str(out)])


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["skip", "error"])
@pytest.mark.full
def test_the_script_leaves_out_or_names_a_file_that_fails_to_decode_as_train_does(tmp_path, mode):
    """A truncated JPEG in the training folder and one in the test folder: the script crashed
    with TensorFlow's traceback; now it leaves them out and lists them (skip), as cnnspec train,
    or stops naming the first (error)."""
    import json

    from typer.testing import CliRunner

    from cnnspec.cli.app import app

    make_images(tmp_path / "pics", {"a": 6, "b": 6})
    make_images(tmp_path / "tst", {"a": 2, "b": 2}, seed=1)
    truncated_jpeg(tmp_path / "pics" / "a" / "cut.jpg")
    truncated_jpeg(tmp_path / "tst" / "b" / "cut.jpg")
    data = f"{{source: {{directory: pics, test_directory: tst}}, on_bad_file: {mode}, validation_split: 0}}"
    spec_path = write_spec(tmp_path, data)
    trained = CliRunner().invoke(app, ["train", str(spec_path), "--out", str(tmp_path / "run"), "-q"])
    if mode == "error":
        assert trained.exit_code == 2, trained.output
        with pytest.raises(SystemExit) as stopped:
            run_script(spec_path, tmp_path / "out")
        text = str(stopped.value.code)
        assert text.startswith("expected every image file to decode; 1 bad image file(s):"), text
        assert "cut.jpg: cannot be decoded (image file is truncated" in text
        return
    assert trained.exit_code == 0, trained.output
    run_script(spec_path, tmp_path / "out")
    listed = {
        name: sorted(
            line.split("\t")[0] for line in (tmp_path / name / "bad_files.txt").read_text().splitlines()
        )
        for name in ("run", "out")
    }
    cuts = sorted(str(tmp_path / folder / "cut.jpg") for folder in ("pics/a", "tst/b"))
    assert listed == {"run": cuts, "out": cuts}
    # the test image left out of the predictions and of the labels alike: 4 test images scored
    matrix = json.loads((tmp_path / "out" / "metrics.json").read_text())["confusion_matrix"]
    assert sum(map(sum, matrix)) == 4


# -- the task script: an image or a mask that cannot be read -------------------------------------
def test_the_task_script_names_a_mask_that_is_no_image(tmp_path):
    """A mask file that Pillow cannot open stopped the task script with Pillow's traceback;
    cnnspec train names it (a located error), and so does the script now."""
    from tests.test_data_files_audit import SEGMENTATION, data_error
    from tests.test_data_files_audit import write_spec as task_spec
    from tests.test_script_data_files import masks_spec, script

    masks_spec(tmp_path, ".png")
    (tmp_path / "masks" / "im3.png").write_bytes(b"not a png")
    path = task_spec(tmp_path, "{images: imgs, masks: masks}", SEGMENTATION)
    message, _, where = data_error(path)
    assert where == "data.source.masks" and message.startswith("cannot read the mask masks/im3.png")
    with pytest.raises(SystemExit, match=r"cannot read the mask .*im3\.png: cannot identify image file"):
        script(path)["read_files"](tmp_path / "imgs", tmp_path / "masks")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["values", "masks"])
def test_the_task_script_names_images_that_cannot_be_read(tmp_path, kind):
    """An image that is no image, or a JPEG cut short, in an images folder: the task script
    stopped with TensorFlow's traceback; cnnspec train names it, and so does the script now."""
    import tensorflow as tf

    from tests.test_data_files_audit import REGRESSION, SEGMENTATION, data_error
    from tests.test_data_files_audit import write_spec as task_spec
    from tests.test_script_data_files import masks_spec

    masks_spec(tmp_path, ".png")
    (tmp_path / "imgs" / "im1.png").write_bytes(b"not a png")
    truncated_jpeg(tmp_path / "imgs" / "im4.jpg")
    (tmp_path / "imgs" / "im4.png").unlink()
    if kind == "values":
        rows = "".join(f"im{i}.{'jpg' if i == 4 else 'png'},{i}\n" for i in range(6))
        (tmp_path / "values.csv").write_text("file,size\n" + rows)
        path = task_spec(
            tmp_path, "{images: imgs, values: values.csv}", REGRESSION, units=1, training="task: regression, "
        )
        args, read = (tmp_path / "imgs", tmp_path / "values.csv"), "read_files"
    else:
        path = task_spec(tmp_path, "{images: imgs, masks: masks}", SEGMENTATION)
        args, read = (tmp_path / "imgs", tmp_path / "masks"), "read_files"
    message, _, where = data_error(path)
    assert where == "data.source.images" and message.startswith("cannot read the image im1.png"), message
    functions = script_functions(path)
    functions["tf"] = tf
    with pytest.raises(SystemExit) as stopped:
        functions[read](*args)
    text = str(stopped.value.code)
    assert text.startswith("expected every image to be readable; 2 cannot be read:"), text
    assert "im1.png: cannot be decoded (cannot identify image file" in text
    assert "im4.jpg: cannot be decoded (image file is truncated" in text


# -- file names that are not UTF-8 ----------------------------------------------------------------
def not_utf8(folder: Path, name: bytes) -> Path:
    """The path ``folder/name`` of a file name that is not UTF-8 (as an old zip leaves them)."""
    import os

    return Path(os.fsdecode(os.fsencode(folder) + b"/" + name))


@pytest.mark.slow
@pytest.mark.full
def test_the_script_trains_on_files_whose_names_are_not_utf8_as_train_does(tmp_path):
    """A class folder with an image whose name is not UTF-8: cnnspec train reads it; the script
    stopped with TensorFlow's "Unable to convert element to UTF-8" (its paths went into a string
    tensor), and printing such a bad file's name stopped it with a UnicodeEncodeError."""
    from typer.testing import CliRunner

    from cnnspec.cli.app import app

    files = make_images(tmp_path / "pics", {"a": 6, "b": 6})
    files[0].rename(not_utf8(files[0].parent, b"caf\xe9.png"))  # (Latin-1)
    truncated_jpeg(not_utf8(tmp_path / "pics" / "b", b"cut\xe9.jpg"))
    not_utf8(tmp_path / "pics" / "b", b"text\xe9.png").write_bytes(b"not an image")
    spec_path = write_spec(tmp_path, "{source: {directory: pics}, on_bad_file: skip, validation_split: 0.2}")
    trained = CliRunner().invoke(app, ["train", str(spec_path), "--out", str(tmp_path / "run"), "-q"])
    assert trained.exit_code == 0, trained.output
    run_script(spec_path, tmp_path / "out")
    listed = {
        name: sorted(
            line.split(b"\t")[0] for line in (tmp_path / name / "bad_files.txt").read_bytes().splitlines()
        )
        for name in ("run", "out")
    }
    bad = sorted(bytes(tmp_path / "pics" / "b") + b"/" + name for name in (b"cut\xe9.jpg", b"text\xe9.png"))
    assert listed == {"run": bad, "out": bad}


@pytest.mark.slow
def test_the_task_script_reads_images_whose_names_are_not_utf8(tmp_path):
    """An image and its mask named in Latin-1: the task script's reader stopped with TensorFlow's
    "Unable to convert element to UTF-8"; it now reads the pixels cnnspec train reads."""
    import numpy as np
    import tensorflow as tf

    from cnnspec.analysis.settings import data_config
    from cnnspec.api import compile_spec
    from cnnspec.training.targets import read_image_masks
    from tests.test_data_files_audit import SEGMENTATION
    from tests.test_data_files_audit import write_spec as task_spec
    from tests.test_script_data_files import masks_spec

    masks_spec(tmp_path, ".png")
    for folder in ("imgs", "masks"):
        (tmp_path / folder / "im2.png").rename(not_utf8(tmp_path / folder, b"caf\xe9.png"))
    path = task_spec(tmp_path, "{images: imgs, masks: masks}", SEGMENTATION)
    compiled = compile_spec(path)
    images, masks, names = read_image_masks(data_config(compiled, raise_errors=True), compiled)
    functions = script_functions(path)
    functions["tf"] = tf
    got = functions["read_files"](tmp_path / "imgs", tmp_path / "masks")
    np.testing.assert_array_equal(got[0], images)
    np.testing.assert_array_equal(got[1], masks)
    assert got[2] == names


# -- data.classes leaving no training or test image ----------------------------------------------
def npz_without_test_images_of(tmp_path: Path, missing: list[int]) -> Path:
    """d.npz of 8×8 gray images of the labels 0–3, its test images of none of ``missing``; a
    spec selecting the classes ``missing`` (a classifier of that many units)."""
    import numpy as np

    rng = np.random.default_rng(0)
    y_test = np.array([label for label in (0, 1, 2, 3) if label not in missing] * 2)
    np.savez(
        tmp_path / "d.npz",
        x_train=rng.integers(0, 256, (20, 8, 8, 3), dtype="uint8"),
        y_train=np.array([0, 1, 2, 3] * 5),
        x_test=rng.integers(0, 256, (len(y_test), 8, 8, 3), dtype="uint8"),
        y_test=y_test,
    )
    return write_spec(tmp_path, f"{{source: {{npz: d.npz}}, classes: {missing}}}", units=len(missing))


def test_classes_with_no_test_image_are_a_located_error(tmp_path):
    """data.classes selecting classes the test images lack: cnnspec train trained, then stopped
    with an internal error (UnboundLocalError) evaluating an empty test set."""
    from cnnspec.analysis.settings import training_config
    from cnnspec.api import compile_spec
    from cnnspec.errors import SpecError
    from cnnspec.training.data import load_dataset

    path = npz_without_test_images_of(tmp_path, [3, 0])
    compiled = compile_spec(path)
    with pytest.raises(SpecError) as info:
        load_dataset(compiled, training_config(compiled), 0)
    (error,) = info.value.errors
    assert error.path == "data.classes" and error.loc is not None and error.loc.line == 8
    assert error.message == (
        "expected test images of the classes data.classes selects; the source's test images have "
        "none of '3', '0'"
    )
    assert error.hint == "select classes that have test images (the test images are of '1', '2')"


@pytest.mark.slow
def test_the_script_stops_on_classes_with_no_test_image_too(tmp_path):
    with pytest.raises(SystemExit, match=r"expected test images of the classes data\.classes selects"):
        run_script(npz_without_test_images_of(tmp_path, [3, 0]), tmp_path / "out")
    assert not (tmp_path / "out").exists()  # stopped before the training


def test_a_class_of_one_image_leaves_no_test_image_in_train_and_the_script(tmp_path):
    """A source of one class of one image: its test split keeps the image for training;
    cnnspec train said "the source has none", the script went on with no test image. (It was
    data.classes selecting one class of one image: validate refuses a selection of one class
    now, as train does.)"""
    make_images(tmp_path / "pics", {"a": 1})
    data = "{source: {directory: pics}, test_split: 0.5}"
    error = listing_error(tmp_path, data, units=1)
    assert (
        error.message
        == "expected at least one test image; the 1 image(s) of the source leave none to test on"
    )
    assert error.hint == "a test split needs at least 2 images: add images"
    with pytest.raises(SystemExit, match="expected at least one test image; the 1 image"):
        script_loader(tmp_path, data, units=1)(tmp_path / "pics")


@pytest.mark.parametrize(
    "data",
    [
        "{source: {csv: pics/labels.csv}, on_bad_file: skip, classes: [b, a]}",
        "{source: {directory: pics, test_directory: pics}, on_bad_file: skip, cache: memory}",
        "{source: {npz: d.npz}, classes: [1, 0]}",
    ],
    ids=["csv", "directory", "npz"],
)
def test_the_scripts_with_these_checks_pass_the_projects_ruff_rules(tmp_path, data):
    from cnnspec.api import compile_spec
    from cnnspec.backends.python_emitter import generate_code
    from tests.test_codegen import ruff_check

    path = write_spec(tmp_path, data)
    script = tmp_path / "train.py"
    assert ruff_check(generate_code(compile_spec(path), script=True, output=script).text, tmp_path) == ""


# -- npz labels that are no class indices, more classes than the output takes --------------------
def npz_labelled(tmp_path: Path, y_train: Any, units: int = 2) -> Path:
    """d.npz of 8×8 RGB images labelled ``y_train`` (test labels 0, 1); its classifier spec."""
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "d.npz",
        x_train=rng.integers(0, 256, (len(y_train), 8, 8, 3), dtype="uint8"),
        y_train=np.asarray(y_train),
        x_test=rng.integers(0, 256, (4, 8, 8, 3), dtype="uint8"),
        y_test=np.array([0, 1, 0, 1]),
    )
    return write_spec(tmp_path, "{source: {npz: d.npz}}", units=units)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        # a huge label sized the script's split counts (np.bincount): a MemoryError
        (10**10, "expected at most 2 classes (the model's output units); the data has 10000000001"),
        (-1, "expected class labels ≥ 0 in training; received -1"),
        # a fractional label was truncated to a class (1.5: class 1) without a word
        (1.5, "expected integer class labels in training; received dtype float64"),
        (float("nan"), "expected integer class labels in training; found NaN"),
    ],
    ids=["huge", "negative", "fractional", "nan"],
)
def test_the_script_refuses_npz_labels_train_refuses(tmp_path, bad, message):
    """With train's message, word for word (the script's own wording named the same faults)."""
    from cnnspec.analysis.settings import training_config
    from cnnspec.api import compile_spec
    from cnnspec.errors import SpecError
    from cnnspec.training.data import load_dataset

    labels: list[Any] = [0, 1] * 5
    labels[3] = bad
    path = npz_labelled(tmp_path, labels)
    compiled = compile_spec(path)
    with pytest.raises(SpecError) as info:
        load_dataset(compiled, training_config(compiled), 0)
    assert [error.message for error in info.value.errors] == [message]
    with pytest.raises(SystemExit) as stopped:
        script_loader(tmp_path, "{source: {npz: d.npz}}")(tmp_path / "d.npz")
    assert str(stopped.value.code).split("\n")[0] == message


@pytest.mark.slow
@pytest.mark.parametrize("source", ["npz", "directory"])
def test_the_script_refuses_more_classes_than_the_output_takes(tmp_path, source):
    """Labels 0–2 (an npz, or three class folders) for a model of two outputs: cnnspec train
    refuses them before training; the script failed in its first batch with TensorFlow's
    "label value outside the valid range" traceback."""
    from cnnspec.analysis.settings import training_config
    from cnnspec.api import compile_spec
    from cnnspec.errors import SpecError
    from cnnspec.training.data import load_dataset

    if source == "npz":
        path = npz_labelled(tmp_path, [0, 1, 2] * 4)
    else:
        make_images(tmp_path / "pics", {"a": 4, "b": 4, "c": 4})
        path = write_spec(tmp_path, "{source: {directory: pics}}")
    compiled = compile_spec(path)
    with pytest.raises(SpecError) as refused:
        load_dataset(compiled, training_config(compiled), 0)
    message = refused.value.errors[0].message
    named = "('a', 'b', 'c')" if source == "directory" else "('0', '1', '2')"
    assert message == f"expected at most 2 classes (the model's output units); the data has 3 {named}"
    with pytest.raises(SystemExit) as stopped:
        run_script(path, tmp_path / "out")
    assert str(stopped.value.code).split("\n")[0] == message  # (with the names, as train lists them)


@pytest.mark.slow
def test_the_script_lists_the_class_names_beyond_a_binary_output_as_train_does(tmp_path):
    """Labels 0–2 for binary_crossentropy: train's refusal names the classes; the script's did not."""
    from cnnspec.analysis.settings import training_config
    from cnnspec.api import compile_spec
    from cnnspec.errors import SpecError
    from cnnspec.training.data import load_dataset

    path = npz_labelled(tmp_path, [0, 1, 2] * 4, units=1)
    text = path.read_text().replace("activation: softmax", "activation: sigmoid")
    path.write_text(text.replace("seed: 3}", "seed: 3, loss: binary_crossentropy}"))
    compiled = compile_spec(path)
    with pytest.raises(SpecError) as refused:
        load_dataset(compiled, training_config(compiled), 0)
    message = refused.value.errors[0].message
    assert message == "expected 2 classes for binary_crossentropy; the data has 3 ('0', '1', '2')"
    with pytest.raises(SystemExit) as stopped:
        run_script(path, tmp_path / "out")
    assert str(stopped.value.code).split("\n")[0] == message


# -- the task script: an npz file's regression and multi-label targets ---------------------------
@pytest.mark.parametrize(
    ("task", "bad", "trained", "script"),
    [
        ("regression", float("nan"), "expected finite regression targets", "found NaN"),
        ("regression", float("inf"), "expected finite regression targets", "found infinity"),
        ("regression", 1e39, "within float32's range", "within float32's range"),
        ("multilabel", 2.0, "expected 0/1 multi-label targets", "expected 0/1 multi-label targets"),
    ],
    ids=["nan", "infinity", "beyond-float32", "not-0-1"],
)
def test_the_task_script_refuses_npz_targets_train_refuses(tmp_path, task, bad, trained, script):
    """Targets cnnspec train refuses (a located error) were trained on by the task script: a NaN
    or infinite value as a NaN loss, a 2 in a multi-hot row as a label weighted twice."""
    import numpy as np

    from tests.test_data_checks import MULTILABEL, REGRESSION, npz_spec, pixels, refused

    width = 1 if task == "regression" else 3
    y_train = np.random.default_rng(0).integers(0, 2, (12, width)).astype("float64")
    y_train[5, 0] = bad
    y_test = np.zeros((6, width))
    head = REGRESSION if task == "regression" else MULTILABEL
    path = npz_spec(tmp_path, pixels(12), y_train, pixels(6), y_test, head, f"training: {{task: {task}}}\n")
    assert trained in refused(path).message
    with pytest.raises(SystemExit, match=f"{script}.*" if task != "regression" else script):
        script_functions(path)["load_splits"](tmp_path / "d.npz")


@pytest.mark.parametrize("task", ["regression", "multilabel"])
def test_the_task_scripts_checking_npz_targets_pass_the_projects_ruff_rules(tmp_path, task):
    import numpy as np

    from cnnspec.api import compile_spec
    from cnnspec.backends.python_emitter import generate_code
    from tests.test_codegen import ruff_check
    from tests.test_data_checks import MULTILABEL, REGRESSION, npz_spec, pixels

    width, head = (1, REGRESSION) if task == "regression" else (3, MULTILABEL)
    y_train, y_test = np.zeros((12, width)), np.zeros((6, width))
    path = npz_spec(tmp_path, pixels(12), y_train, pixels(6), y_test, head, f"training: {{task: {task}}}\n")
    code = generate_code(compile_spec(path), script=True, output=tmp_path / "train.py").text
    assert "def check_targets" in code and ruff_check(code, tmp_path) == ""


@pytest.mark.parametrize("script", ["classifier", "task"])
@pytest.mark.parametrize("split", ["training", "test"])
def test_both_scripts_refuse_npz_pixels_that_are_nan_or_infinite(tmp_path, script, split):
    """Float images holding NaN: cnnspec train refuses them (a located error); the scripts
    trained on them, every loss NaN."""
    import numpy as np

    from tests.test_data_checks import CLASSIFIER, REGRESSION, classes, npz_spec, pixels, refused

    x_train, x_test = pixels(12).astype("float32"), pixels(6).astype("float32")
    (x_train if split == "training" else x_test)[4, 2, 3, 1] = np.inf
    y_train, y_test = classes(12), classes(6)
    head, extra = CLASSIFIER, ""
    if script == "task":
        head, extra = REGRESSION, "training: {task: regression}\n"
        y_train, y_test = y_train.astype("float32"), y_test.astype("float32")
    path = npz_spec(tmp_path, x_train, y_train, x_test, y_test, head, extra)
    assert refused(path).message.startswith(f"expected finite pixel values in the {split} images")
    message = f"expected finite pixel values in the {split} images of d.npz; image 4 has infinity"
    assert refused(path).message == message + " at row 2, column 3, channel 1"
    with pytest.raises(SystemExit) as stopped:
        script_functions(path)["load_data"](tmp_path / "d.npz")
    assert str(stopped.value.code) == message + " at row 2, column 3, channel 1"  # train's words


@pytest.mark.parametrize("script", ["classifier", "task"])
def test_both_scripts_refuse_float64_pixels_beyond_float32_and_an_npz_without_test_images(tmp_path, script):
    """A review of the pixel check: a float64 pixel of 1e39 (infinity in training's float32,
    every loss NaN) passed both scripts; an npz of no test images trained and then failed in
    predict. cnnspec train refuses both, and so do the scripts now, with its words."""

    from tests.test_data_checks import CLASSIFIER, REGRESSION, classes, npz_spec, pixels, refused

    x_train, x_test = pixels(12).astype("float64"), pixels(6).astype("float64")
    x_train[3, 1, 2, 0] = 1e39
    y_train, y_test = classes(12), classes(6)
    head, extra = CLASSIFIER, ""
    if script == "task":
        head, extra = REGRESSION, "training: {task: regression}\n"
        y_train, y_test = y_train.astype("float32"), y_test.astype("float32")
    path = npz_spec(tmp_path, x_train, y_train, x_test, y_test, head, extra)
    message = (
        "expected pixel values within float32's range in the training images of d.npz; image 3 has "
        "1e+39 at row 1, column 2, channel 0"
    )
    assert refused(path).message == message
    with pytest.raises(SystemExit) as stopped:
        script_functions(path)["load_data"](tmp_path / "d.npz")
    assert str(stopped.value.code) == message
    x_train[3, 1, 2, 0] = 0.5
    path = npz_spec(tmp_path, x_train, y_train, x_test[:0], y_test[:0], head, extra)
    message = "expected at least one test image; the source has none"
    assert refused(path).message == message
    with pytest.raises(SystemExit) as stopped:
        script_functions(path)["load_data"](tmp_path / "d.npz")
    assert str(stopped.value.code) == message


# -- an npz file's images of another shape than the input ----------------------------------------
@pytest.mark.parametrize("script", ["classifier", "task"])
@pytest.mark.parametrize(
    ("train_shape", "test_shape", "message"),
    [
        # grayscale images without a channel axis for an RGB model
        (
            (12, 8, 8),
            (6, 8, 8),
            "expected data of shape [8, 8, 3] (input.shape); the npz images have shape [8, 8, 1]",
        ),
        (
            (12, 10, 10, 3),
            (6, 10, 10, 3),
            "expected data of shape [8, 8, 3] (input.shape); the npz images have shape [10, 10, 3]",
        ),
        (
            (12, 8, 8, 3),
            (6, 7, 7, 3),
            "expected test images of the training images' shape [8, 8, 3]; the test images of ",
        ),
        (
            (12, 8, 8, 3, 1),
            (6, 8, 8, 3, 1),
            "expected training images shaped (n, height, width[, channels]); received ",
        ),
    ],
    ids=["channels", "size", "test-shape", "five-axes"],
)
def test_both_scripts_refuse_npz_images_train_refuses_for_their_shape(
    tmp_path, script, train_shape, test_shape, message
):
    """Images of another size or channels than input.shape (or test images of another shape than
    the training images): cnnspec train refuses them (a located error, as it reads an npz file's
    images as stored); the scripts resized them and converted their channels without a word."""
    import numpy as np

    from tests.test_data_checks import CLASSIFIER, REGRESSION, classes, npz_spec, refused

    y_train, y_test = classes(12), classes(6)
    head, extra = CLASSIFIER, ""
    if script == "task":
        head, extra = REGRESSION, "training: {task: regression}\n"
        y_train, y_test = y_train.astype("float32"), y_test.astype("float32")
    x_train = np.random.default_rng(0).integers(0, 256, train_shape).astype("uint8")
    x_test = np.random.default_rng(1).integers(0, 256, test_shape).astype("uint8")
    path = npz_spec(tmp_path, x_train, y_train, x_test, y_test, head, extra)
    trained = refused(path).message
    functions = script_functions(path)
    with pytest.raises(SystemExit) as stopped:
        (x, _), _, _ = functions["load_data"](tmp_path / "d.npz")
        functions["check_input_shape"](x)  # (checked once the data is split, as train checks it)
    text = str(stopped.value.code)
    assert trained.startswith(message) and text.startswith(message), (trained, text)
    if "(input.shape)" in message:  # the whole message, then the hint on a line of its own
        assert text.split("\n")[0] == trained


def test_the_scripts_still_take_npz_images_of_the_inputs_shape(tmp_path):
    """(n, 8, 8) images for an input of [8, 8, 1]: no channel axis is the MNIST layout, read by both."""
    import numpy as np

    from tests.test_data_checks import CLASSIFIER, classes, loaded, npz_spec

    x = np.random.default_rng(0).integers(0, 256, (18, 8, 8)).astype("uint8")
    path = npz_spec(tmp_path, x[:12], classes(12), x[12:], classes(6), CLASSIFIER)
    path.write_text(path.read_text().replace("[8, 8, 3]", "[8, 8, 1]"))
    assert loaded(path)[2].sample_shape == (8, 8, 1)
    (x_train, _), (x_test, _), _ = script_functions(path)["load_data"](tmp_path / "d.npz")
    assert x_train.shape == (12, 8, 8) and x_test.shape == (6, 8, 8)


# -- the task script: a multi-output npz file's class labels -------------------------------------
VALUES = "regression targets"


def two_heads_npz(tmp_path: Path, split: str, row: int, bad: Any) -> Path:
    """two.npz of a mask output `seg` (4 classes) and a 3-class classifier `kind` whose ``split``
    label at ``row`` is ``bad``; its spec."""
    import numpy as np

    from tests.test_task_data import TWO_HEADS, spec, two_head_arrays

    arrays = two_head_arrays()
    labels = arrays[f"y_{split}_kind"].astype("float64" if isinstance(bad, float) else "int64")
    labels[row] = bad
    arrays[f"y_{split}_kind"] = labels
    np.savez(tmp_path / "two.npz", **arrays)
    # seed 0, the one `refused` loads the data with: the split that holds the row (the message
    # names it) is then train's and the script's alike (unseeded, the script drew its own)
    return spec(tmp_path, "{npz: two.npz}", TWO_HEADS, "training: {seed: 0}\n")


@pytest.mark.parametrize(
    ("split", "bad", "message"),
    [
        # cnnspec train tells an array's kind by its training targets: floats are values
        ("train", 1.5, f"expected class targets for the classification output kind; the data has {VALUES}"),
        ("train", float("nan"), "expected finite regression targets in y_train_kind; found NaN"),
        ("train", -1, "expected class labels ≥ 0 in y_train_kind; received -1"),
        ("train", 10**7, "expected class labels of at most 999,999 in y_train_kind; received 10000000"),
        ("train", 3, "expected class indices 0–2 in the training targets for output kind; found 3"),
        ("test", 1.5, "expected integer class labels in y_test_kind; received dtype float64"),
        ("test", float("nan"), "expected integer class labels in y_test_kind; found NaN"),
        ("test", float("-inf"), "expected integer class labels in y_test_kind; found -infinity"),
        ("test", -2, "expected class labels ≥ 0 in y_test_kind; received -2"),
        ("test", 5, "expected class indices 0–2 in the test targets for output kind; found 5"),
    ],
    ids=[
        "train-fraction", "train-nan", "train-negative", "train-huge", "train-beyond-units",
        "test-fraction", "test-nan", "test-infinity", "test-negative", "test-beyond-units",
    ],
)  # fmt: skip
def test_the_task_script_refuses_npz_class_labels_train_refuses(tmp_path, split, bad, message):
    """A multi-output npz file's labels of a classifier output that are no class indices, or more
    than its units: cnnspec train refuses them; the task script trained on them (a fraction cut to
    a class, a NaN loss, or TensorFlow's "label value outside the valid range" in the first batch)."""
    from tests.test_data_checks import refused

    path = two_heads_npz(tmp_path, split, 5 if split == "train" else 1, bad)
    assert refused(path).message == message
    with pytest.raises(SystemExit) as stopped:
        script_functions(path)["load_splits"](tmp_path / "two.npz")
    assert str(stopped.value.code) == message


@pytest.mark.parametrize("dtype", ["int64", "uint8", "uint64"])
def test_the_task_script_takes_the_npz_class_labels_train_takes(tmp_path, dtype):
    """Whole floats as test labels and (n, 1) training labels: read by both; and labels stored
    as uint8 or uint64, which the script's name check could not hold -1 in (OverflowError)."""
    import numpy as np

    from tests.test_data_checks import loaded
    from tests.test_task_data import TWO_HEADS, spec, two_head_arrays

    arrays = two_head_arrays()
    arrays["y_train_kind"] = arrays["y_train_kind"][:, None].astype(dtype)
    arrays["y_test_kind"] = arrays["y_test_kind"].astype("float64")
    np.savez(tmp_path / "two.npz", **arrays)
    path = spec(tmp_path, "{npz: two.npz}", TWO_HEADS)
    loaded(path)
    *_, (_, y_test), _ = script_functions(path)["load_splits"](tmp_path / "two.npz")
    np.testing.assert_array_equal(y_test["kind"], [0, 1, 2, 0])


def test_the_task_script_checking_class_labels_passes_the_projects_ruff_rules(tmp_path):
    from cnnspec.api import compile_spec
    from cnnspec.backends.python_emitter import generate_code
    from tests.test_codegen import ruff_check

    path = two_heads_npz(tmp_path, "train", 0, 0)
    code = generate_code(compile_spec(path), script=True, output=tmp_path / "train.py").text
    assert "def check_read_targets" in code and "def check_shapes" in code
    assert ruff_check(code, tmp_path) == ""
