"""``codegen --script``'s data refusals beside ``cnnspec train``'s: the same message, word for
word, for each fault of an npz file's images, labels and class names, and where the data has two
faults at once, the same one named first (the scripts checked in an order of their own: pixel
depths before NaN pixels, the model's input shape before everything, an empty split before the
labels).

The scripts' data functions run without TensorFlow (tests/test_listing_edges.py's
:func:`script_functions`, compiled once per script text); train's data is loaded with
seed 0 (tests/test_data_checks.py). Nothing is trained. The script names a file by the path it
is given where train names it by its name: the messages are compared with that path written as
train writes it.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cnnspec.errors import SpecError
from tests.test_data_checks import CLASSIFIER, REGRESSION, loaded, npz_spec, refused
from tests.test_listing_edges import make_images, script_functions, write_spec
from tests.test_task_data import SEG_HEAD, masks_of, spec, write_images, write_pairs

Arrays = dict[str, Any]


def good_arrays(script: str) -> Arrays:
    """12 training and 6 test float images (8×8×3, as the specs' input) with 3 classes (or one
    value each, for the task script)."""
    rng = np.random.default_rng(0)
    y_train, y_test = np.arange(12) % 3, np.arange(6) % 3
    if script == "task":
        y_train, y_test = y_train.astype("float64"), y_test.astype("float64")
    return {
        "x_train": rng.random((12, 8, 8, 3)).astype("float32"),
        "y_train": y_train,
        "x_test": rng.random((6, 8, 8, 3)).astype("float32"),
        "y_test": y_test,
    }


def _set(arrays: Arrays, key: str, index: Any, value: Any, dtype: str | None = None) -> None:
    array = arrays[key].astype(dtype) if dtype else arrays[key].copy()
    if array.size:  # (a split emptied by another fault keeps that fault alone)
        array[index] = value
    arrays[key] = array


#: one fault each, made on good arrays; faults of one group change one thing and are not paired
FAULTS: dict[str, tuple[str, Callable[[Arrays], None]]] = {
    "nan-pixel": ("pixels", lambda a: _set(a, "x_train", (2, 1, 1, 0), np.nan)),
    "inf-test-pixel": ("test-pixels", lambda a: _set(a, "x_test", (1, 0, 2, 1), np.inf)),
    "bool-images": ("train-kind", lambda a: a.update(x_train=a["x_train"] > 0.5)),
    "integer-test": ("test-kind", lambda a: a.update(x_test=(a["x_test"] * 255).astype("uint8"))),
    "test-shape": ("test-size", lambda a: a.update(x_test=a["x_test"][:, :7, :7])),
    "input-shape": ("size", lambda a: a.update(x_train=a["x_train"][:, :6], x_test=a["x_test"][:, :6])),
    "label-nan": ("labels", lambda a: _set(a, "y_train", 3, np.nan, "float64")),
    "test-label": ("test-labels", lambda a: _set(a, "y_test", 2, 1e39 if a["task"] else -1, "float64")),
    "count": ("count", lambda a: a.update(y_train=a["y_train"][:-1])),
    "empty-test": ("test-size", lambda a: a.update(x_test=a["x_test"][:0], y_test=a["y_test"][:0])),
    "names": ("names", lambda a: a.update(class_names=np.array(["a", "b"]))),
    "names-twice": ("names", lambda a: a.update(class_names=np.array(["a", "b", "a"]))),
    # two columns: for one output unit (the task script trained them, or failed inside Keras)
    "width": (
        "width",
        lambda a: a.update(y_train=np.stack([a["y_train"]] * 2, 1), y_test=np.stack([a["y_test"]] * 2, 1)),
    ),
}
#: the faults each script has (the task script's class_names name its one value)
SCRIPT_FAULTS = {"classifier": sorted(FAULTS), "task": sorted(FAULTS)}
#: what makes each data set of two faults: faults of two groups (test-labels on an emptied test
#: split are gone)
PAIRS = [
    (script, first, second)
    for script, faults in SCRIPT_FAULTS.items()
    for first, second in itertools.combinations(faults, 2)
    if FAULTS[first][0] != FAULTS[second][0] and {first, second} != {"empty-test", "test-label"}
]


def npz_case(tmp_path: Path, script: str, faults: list[str]) -> Path:
    """The spec of an npz file (``d.npz``) made with ``faults``, for ``script`` (its head)."""
    arrays = good_arrays(script) | {"task": script == "task"}
    for fault in faults:
        FAULTS[fault][1](arrays)
    del arrays["task"]
    head, training = (
        (CLASSIFIER, "seed: 0") if script == "classifier" else (REGRESSION, "seed: 0, task: regression")
    )
    return npz_spec(tmp_path, head=head, extra=f"training: {{{training}}}\n", **arrays)


def script_refusal(tmp_path: Path, path: Path, script: str) -> str:
    """The first line of the message the script stops with, reading ``d.npz`` as its main() does
    up to the model's input shape (the task script: load_splits; the classifier: load_data, then
    check_input_shape, which main calls once the data is split), the file named as train names it."""
    functions = script_functions(path)
    npz = tmp_path / "d.npz"
    with pytest.raises(SystemExit) as stopped:
        if script == "task":
            functions["load_splits"](npz)
        else:
            (x_train, _), _, _ = functions["load_data"](npz)
            functions["check_input_shape"](x_train)
    return str(stopped.value.code).split("\n")[0].replace(str(npz), npz.name)


@pytest.mark.parametrize(("script", "fault"), [(s, f) for s, faults in SCRIPT_FAULTS.items() for f in faults])
def test_each_npz_fault_is_refused_with_trains_message(tmp_path, script, fault):
    path = npz_case(tmp_path, script, [fault])
    assert script_refusal(tmp_path, path, script) == refused(path).message


@pytest.mark.parametrize(("script", "first", "second"), PAIRS)
def test_an_npz_with_two_faults_is_refused_for_the_one_train_names(tmp_path, script, first, second):
    path = npz_case(tmp_path, script, [first, second])
    assert script_refusal(tmp_path, path, script) == refused(path).message


# -- the messages the scripts worded their own way ---------------------------------------------
def test_a_classifiers_too_few_class_names_are_refused_with_trains_message(tmp_path):
    arrays = good_arrays("classifier") | {"class_names": np.array(["cat", "dog"])}
    path = npz_spec(tmp_path, head=CLASSIFIER, extra="training: {seed: 0}\n", **arrays)
    message = refused(path).message
    assert message.endswith("each of the 3 classes (labels 0–2) in d.npz; its class_names has 2 (cat, dog)")
    assert script_refusal(tmp_path, path, "classifier") == message


MULTI = (
    "cnnspec: 1\nname: two\ninput: {shape: [8, 8, 3]}\nmodel:\n"
    "  - conv2d: {filters: 2, kernel_size: 3}\n  - global_avg_pool2d:\n    id: pool\n"
    "  - dense: {units: 3, activation: softmax}\n    id: kind\n"
    "  - dense: {units: 1}\n    inputs: pool\n    id: size\n"
    "outputs: [kind, size]\ndata: {source: {npz: d.npz}}\n"
    "training: {seed: 0, outputs: {size: {task: regression, loss: mse}}}\n"
)


@pytest.mark.parametrize(
    "fault",
    [
        *["names", "own-names", "nan-label", "fraction", "negative", "huge", "one-hot", "nan-value"],
        *["value-names", "train-floats", "train-floats+channels", "whole-values", "whole-values+channels"],
        *["short-values", "short-test-values", "short-test-labels+short-values"],
    ],
)
def test_a_multi_output_npz_is_refused_with_trains_message(tmp_path, fault):
    """The task script's check_names and check_read_targets (each output's labels or values, by
    the kind train reads them as), check_value_names (a regression output's names), check_kinds
    (targets train reads as another task's, refused once the shape is), and check_counts (every
    output's rows, not the first output's alone: train's split stopped with an IndexError)."""
    arrays = good_arrays("classifier")
    arrays = {
        "x_train": arrays["x_train"],
        "x_test": arrays["x_test"],
        "y_train_kind": arrays["y_train"],
        "y_test_kind": arrays["y_test"],
        "y_train_size": np.arange(12, dtype="float32"),
        "y_test_size": np.arange(6, dtype="float32"),
    }
    labels = arrays["y_test_kind"].astype("float64")
    changes: dict[str, Callable[[], None]] = {
        "names": lambda: arrays.update(class_names=np.array(["a", "b"])),
        "own-names": lambda: arrays.update(class_names_kind=np.array(["a"])),
        "nan-label": lambda: arrays.update(y_test_kind=np.where(np.arange(6) == 2, np.nan, labels)),
        "fraction": lambda: arrays.update(y_test_kind=labels + 0.5),
        "negative": lambda: arrays.update(y_test_kind=labels - 1),
        "huge": lambda: arrays.update(y_test_kind=labels * 10**7),
        "one-hot": lambda: arrays.update(y_test_kind=np.eye(3)[arrays["y_test_kind"]]),
        "nan-value": lambda: arrays.update(y_test_size=np.full(6, np.nan, "float32")),
        "value-names": lambda: arrays.update(class_names_size=np.array(["w", "h"])),
        "train-floats": lambda: arrays.update(y_train_kind=arrays["y_train_kind"] + 0.5),
        "whole-values": lambda: arrays.update(y_train_size=np.arange(12)),
        # an output after the first with fewer rows than images (train's split failed on it)
        "short-values": lambda: arrays.update(y_train_size=arrays["y_train_size"][:-1]),
        "short-test-values": lambda: arrays.update(y_test_size=arrays["y_test_size"][:-2]),
        "short-test-labels": lambda: arrays.update(y_test_kind=arrays["y_test_kind"][:-1]),
        "channels": lambda: arrays.update(
            x_train=arrays["x_train"][..., :1], x_test=arrays["x_test"][..., :1]
        ),
    }
    for change in fault.split("+"):
        changes[change]()
    np.savez(tmp_path / "d.npz", **arrays)
    path = tmp_path / "spec.yaml"
    path.write_text(MULTI)
    message = refused(path).message
    assert script_refusal(tmp_path, path, "task") == message


def test_text_labels_of_a_multi_output_npz_are_refused_with_trains_message_not_a_traceback(tmp_path):
    """Train reads text labels as regression targets and refuses them as no numbers; the script
    took them for regression too and called isfinite on them (a TypeError traceback)."""
    arrays = good_arrays("classifier")
    arrays = {
        "x_train": arrays["x_train"],
        "x_test": arrays["x_test"],
        "y_train_kind": np.array(list("abcabcabcabc")),
        "y_test_kind": arrays["y_test"],
        "y_train_size": np.arange(12, dtype="float32"),
        "y_test_size": np.arange(6, dtype="float32"),
    }
    np.savez(tmp_path / "d.npz", **arrays)
    path = tmp_path / "spec.yaml"
    path.write_text(MULTI)
    message = refused(path).message
    assert message.startswith("expected numeric regression targets in y_train_kind; received dtype <U1")
    assert script_refusal(tmp_path, path, "task") == message


@pytest.mark.parametrize(
    "names",
    [np.array([["bird", "cat", "dog"]]), np.array([b"bird", b"c\xe4t", b"dog"])],
    ids=["one-row", "not-utf-8"],
)
@pytest.mark.parametrize("script", ["classifier", "task"])
def test_class_names_of_any_shape_and_bytes_are_read_as_train_reads_them(tmp_path, script, names):
    """A (1, K) class_names row was one name, "['bird' 'cat' 'dog']", refused by the new name
    counts (train flattens it); bytes that are no UTF-8 were a UnicodeDecodeError traceback."""
    from tests.test_data_checks import loaded

    arrays = good_arrays(script) | {"class_names": names}
    if script == "task":  # three labels, multi-hot
        rng = np.random.default_rng(2)
        arrays |= {"y_train": rng.integers(0, 2, (12, 3)), "y_test": rng.integers(0, 2, (6, 3))}
        head = "  - global_avg_pool2d\n  - dense: {units: 3, activation: sigmoid}\n"
        path = npz_spec(tmp_path, head=head, extra="training: {seed: 0, task: multilabel}\n", **arrays)
        read = script_functions(path)["load_splits"](tmp_path / "d.npz")
    else:
        path = npz_spec(tmp_path, head=CLASSIFIER, extra="training: {seed: 0}\n", **arrays)
        read = script_functions(path)["load_data"](tmp_path / "d.npz")
    trained = loaded(path)[2].class_names
    assert trained[0] == "bird" and len(trained) == 3
    assert trained in [list(part) for part in read if isinstance(part, list)]


# -- a CSV with two faults -------------------------------------------------------------------------
#: a CSV row each (beside good ones), and what train's message and the script's both say of it
CSV_FAULTS = {
    "no-label": ("{0},", "expected an image path and a label on line"),
    "unknown-label": ("{0},owl", "among the training classes"),
    "missing": ("gone.png,cat", "expected every image the CSV names to be a file; 1 are not: line "),
    "twice": ("./{0},cat", "expected each image once in"),
}


@pytest.mark.parametrize(("first", "second"), list(itertools.permutations(sorted(CSV_FAULTS), 2)))
def test_a_test_csv_with_two_faults_is_refused_for_the_one_train_names(tmp_path, first, second):
    names = write_images(tmp_path / "img", 6)
    rows = ["file,label", *[f"img/{n},{'cat' if i % 2 else 'dog'}" for i, n in enumerate(names[:4])]]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    test = ["file,label", f"img/{names[4]},cat", f"img/{names[5]},dog"]
    test += [CSV_FAULTS[fault][0].format(f"img/{names[5 - i]}") for i, fault in enumerate((first, second))]
    (tmp_path / "test.csv").write_text("\n".join(test) + "\n")
    data = "{csv: train.csv, test_csv: test.csv, image_size: [8, 8]}"
    path = spec(tmp_path, data, CLASSIFIER.replace("units: 3", "units: 2"), "training: {seed: 0}\n")
    trained = refused(path).message
    load_data = script_functions(path)["load_data"]
    with pytest.raises(SystemExit) as stopped:
        load_data(tmp_path / "train.csv", tmp_path / "test.csv")
    named = [fault for fault, (_, words) in CSV_FAULTS.items() if words in trained]
    assert len(named) == 1 and CSV_FAULTS[named[0]][1] in str(stopped.value.code), (trained, stopped.value)


def test_a_csv_row_naming_a_folder_is_said_to_be_one(tmp_path):
    """It was "expected every image the CSV names to exist; … do not", with a hint that paths are
    relative to the CSV's folder: the path was right, and named a folder. Train and the script
    say it alike."""
    names = write_images(tmp_path / "img", 4)
    (tmp_path / "img" / "sub").mkdir()
    rows = [
        "file,label",
        *[f"img/{n},{'cat' if i % 2 else 'dog'}" for i, n in enumerate(names)],
        "img/sub,cat",
    ]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    path = spec(tmp_path, "{csv: train.csv, image_size: [8, 8]}", CLASSIFIER.replace("units: 3", "units: 2"))
    error = refused(path)
    folder = (tmp_path / "img" / "sub").resolve()
    assert error.message == (
        f"expected every image the CSV names to be a file; 1 are folders: line 6: {folder} is a folder, "
        "not a file"
    )
    assert error.hint == "each row names one image file"
    with pytest.raises(SystemExit) as stopped:
        script_functions(path)["load_data"](tmp_path / "train.csv")
    assert str(stopped.value.code) == f"{error.message}\n{error.hint}"


@pytest.mark.parametrize("split", ["y_train", "y_test"])
def test_negative_targets_of_an_msle_regression_are_refused_with_trains_message(tmp_path, split):
    """Keras' msle reads every target below 0 as 0: the loss read 0.0000 while the model learnt
    nothing. Train and the script refuse them alike (the split they are in named)."""
    from cnnspec.analysis.datafit import MSLE_HINT

    arrays = good_arrays("task")
    arrays[split] = arrays[split] - 1.5
    extra = "training: {seed: 0, task: regression, loss: msle}\n"
    path = npz_spec(tmp_path, head=REGRESSION, extra=extra, **arrays)
    error = refused(path)
    which = "training" if split == "y_train" else "test"
    assert error.message == f"expected {which} targets ≥ 0 for the msle loss; found -1.5"
    assert error.hint == MSLE_HINT and error.path == "data.source"
    assert script_refusal(tmp_path, path, "task") == error.message
    # the same targets with mse are fine: only msle clamps them
    path.write_text(path.read_text().replace("loss: msle", "loss: mse"))
    loaded(path)  # (no refusal)


def test_negative_targets_of_an_msle_output_of_several_are_refused_with_trains_message(tmp_path):
    arrays = good_arrays("classifier")
    saved = {"x_train": arrays["x_train"], "x_test": arrays["x_test"]}
    saved |= {"y_train_kind": arrays["y_train"], "y_test_kind": arrays["y_test"]}
    saved |= {
        "y_train_size": np.arange(12, dtype="float32") - 2,
        "y_test_size": np.arange(6, dtype="float32"),
    }
    np.savez(tmp_path / "d.npz", **saved)
    path = tmp_path / "spec.yaml"
    path.write_text(MULTI.replace("loss: mse", "loss: msle"))
    message = refused(path).message
    assert message == "expected training targets for output size ≥ 0 for the msle loss; found -2"
    assert script_refusal(tmp_path, path, "task") == message


# -- an npz file without the arrays it needs (a KeyError traceback in both scripts) ---------------
def test_a_multilabel_npzs_class_names_are_one_per_label(tmp_path):
    """The task script read any number of names for the labels; train refuses another count."""
    arrays = good_arrays("task") | {"class_names": np.array(["a", "b", "c"])}
    rng = np.random.default_rng(2)
    arrays |= {"y_train": rng.integers(0, 2, (12, 2)), "y_test": rng.integers(0, 2, (6, 2))}
    head = "  - global_avg_pool2d\n  - dense: {units: 2, activation: sigmoid}\n"
    path = npz_spec(tmp_path, head=head, extra="training: {seed: 0, task: multilabel}\n", **arrays)
    message = refused(path).message
    assert message == "expected a name for each of the 2 labels in d.npz; its class_names has 3 (a, b, c)"
    assert script_refusal(tmp_path, path, "task") == message


@pytest.mark.parametrize("script", ["classifier", "task"])
@pytest.mark.parametrize("keys", [("y_test",), ("x_train", "y_train"), ("x_test", "y_train")])
def test_an_npz_without_an_array_is_refused_with_trains_message(tmp_path, script, keys):
    arrays = good_arrays(script)
    path = npz_case(tmp_path, script, [])
    saved = {key: value for key, value in arrays.items() if key not in keys}
    if "y_test" in keys:  # under a wrong name
        saved["labels"] = arrays["y_test"]
    np.savez(tmp_path / "d.npz", **saved)
    assert script_refusal(tmp_path, path, script) == refused(path).message


@pytest.mark.parametrize(
    "fault", ["no-size", "no-test-kind", "single-layout-missing", "single-layout", "stray-names"]
)
def test_a_multi_output_npz_without_an_array_is_refused_with_trains_message(tmp_path, fault):
    arrays = good_arrays("classifier")
    x = {"x_train": arrays["x_train"], "x_test": arrays["x_test"]}
    kind = {"y_train_kind": arrays["y_train"], "y_test_kind": arrays["y_test"]}
    size = {"y_train_size": np.arange(12, dtype="float32"), "y_test_size": np.arange(6, dtype="float32")}
    saved = {
        "no-size": x | kind,
        "no-test-kind": x | size | {"y_train_kind": arrays["y_train"]},
        "single-layout-missing": x | {"y_train": arrays["y_train"]},
        # Keras' layout for a model of two outputs: each output's arrays named (train read them as
        # one output's labels)
        "single-layout": x | {"y_train": arrays["y_train"], "y_test": arrays["y_test"]},
        "stray-names": x | kind | size | {"class_names_kinds": np.array(["a", "b", "c"])},
    }[fault]
    np.savez(tmp_path / "d.npz", **saved)
    path = tmp_path / "spec.yaml"
    path.write_text(MULTI)
    message = refused(path).message
    assert script_refusal(tmp_path, path, "task") == message
    if fault.startswith("single-layout"):
        given = "y_train" if fault.endswith("missing") else "y_train and y_test"
        assert message == (
            "expected y_train_<output> and y_test_<output> arrays for each of the model's 2 outputs "
            f"(kind, size); d.npz has {given}, one target"
        )


# -- segmentation masks in an npz, alone and in pairs ----------------------------------------------
def good_masks() -> Arrays:
    """12 training and 6 test float images (8×8×3) with masks of classes 0–2 (3 channels)."""
    arrays = good_arrays("task")
    rng = np.random.default_rng(1)
    return arrays | {"y_train": rng.integers(0, 3, (12, 8, 8)), "y_test": rng.integers(0, 3, (6, 8, 8))}


#: one fault each of a mask npz, by group (as FAULTS)
MASK_FAULTS: dict[str, tuple[str, Callable[[Arrays], None]]] = {
    "nan-pixel": ("pixels", lambda a: _set(a, "x_train", (2, 1, 1, 0), np.nan)),
    "channels": ("size", lambda a: a.update(x_train=a["x_train"][..., :1], x_test=a["x_test"][..., :1])),
    "nan-mask": ("masks", lambda a: _set(a, "y_train", (3, 2, 2), np.nan, "float64")),
    "fraction": ("masks", lambda a: _set(a, "y_train", (3, 2, 2), 0.5, "float64")),
    # multi-hot rows, no masks: refused as masks of the wrong shape (train said class labels)
    "rows": ("masks", lambda a: a.update(y_train=(a["y_train"][:, 0, :3] > 0).astype("float32"))),
    "mask-size": ("mask-size", lambda a: a.update(y_train=a["y_train"][:, :7, :7])),
    "negative": ("test-masks", lambda a: _set(a, "y_test", (1, 0, 0), -1)),
    "huge": ("test-masks", lambda a: _set(a, "y_test", (1, 0, 0), 10**7)),
    "class-3": ("test-masks", lambda a: _set(a, "y_test", (2, 4, 4), 3)),
    "255": ("test-masks", lambda a: _set(a, "y_test", (2, 4, 4), 255)),
    "count": ("count", lambda a: a.update(y_train=a["y_train"][:-1])),
    "empty-test": ("test-size", lambda a: a.update(x_test=a["x_test"][:0], y_test=a["y_test"][:0])),
    "few-names": ("names", lambda a: a.update(class_names=np.array(["a", "b"]))),
    "many-names": ("names", lambda a: a.update(class_names=np.array(["a", "b", "c", "d"]))),
}
MASK_PAIRS = [
    (first, second)
    for first, second in itertools.combinations(sorted(MASK_FAULTS), 2)
    if MASK_FAULTS[first][0] != MASK_FAULTS[second][0]
    and not ({first, second} & {"empty-test"} and {first, second} & {"negative", "huge", "class-3", "255"})
]


def mask_case(tmp_path: Path, faults: list[str]) -> Path:
    arrays = good_masks()
    for fault in faults:
        MASK_FAULTS[fault][1](arrays)
    return npz_spec(tmp_path, head=SEG_HEAD, extra="training: {seed: 0}\n", **arrays)


@pytest.mark.parametrize("fault", sorted(MASK_FAULTS))
def test_each_mask_fault_is_refused_with_trains_message(tmp_path, fault):
    path = mask_case(tmp_path, [fault])
    assert script_refusal(tmp_path, path, "task") == refused(path).message


@pytest.mark.parametrize(("first", "second"), MASK_PAIRS)
def test_a_mask_npz_with_two_faults_is_refused_for_the_one_train_names(tmp_path, first, second):
    path = mask_case(tmp_path, [first, second])
    assert script_refusal(tmp_path, path, "task") == refused(path).message


@pytest.mark.parametrize("faults", [[], ["negative"], ["count"], ["mask-size"], ["channels"], ["nan-pixel"]])
def test_masks_for_a_classifier_are_refused_with_trains_message(tmp_path, faults):
    """A segmentation npz (y of shape (n, H, W)) for a classifier: train reads the targets as
    masks and refuses them as another task's (once they pass its checks of masks, counts and the
    model's input); the classifier script said "expected training labels of shape (n,) or (n, 1)"."""
    arrays = good_masks()
    for fault in faults:
        MASK_FAULTS[fault][1](arrays)
    path = npz_spec(tmp_path, head=CLASSIFIER, extra="training: {seed: 0}\n", **arrays)
    error = refused(path)
    if not faults:
        assert error.message == (
            "expected class targets for the classification output dense_1; the data has mask targets"
        )
    assert script_refusal(tmp_path, path, "classifier") == error.message


SEG_MULTI = (
    "cnnspec: 1\nname: two\ninput: {shape: [8, 8, 3]}\nmodel:\n"
    "  - conv2d: {filters: 3, kernel_size: 1, activation: softmax}\n    id: seg\n"
    "  - global_avg_pool2d:\n    inputs: seg\n  - dense: {units: 3, activation: softmax}\n    id: kind\n"
    "outputs: [seg, kind]\ndata: {source: {npz: d.npz}}\ntraining: {seed: 0}\n"
)


@pytest.mark.parametrize("faults", [["negative"], ["class-3"], ["train-class-3"], ["class-3", "channels"]])
def test_a_multi_output_npz_of_masks_is_refused_with_trains_message(tmp_path, faults):
    """A segmentation output beside a classifier: its masks checked as train checks them (their
    values with the labels, their classes once the data is split, output by output)."""
    arrays = good_masks()
    changes = {
        "negative": lambda: _set(arrays, "y_test", (1, 0, 0), -1),
        "class-3": lambda: _set(arrays, "y_test", (2, 4, 4), 3),
        "train-class-3": lambda: _set(arrays, "y_train", (5, 4, 4), 3),
        "channels": lambda: arrays.update(
            x_train=arrays["x_train"][..., :1], x_test=arrays["x_test"][..., :1]
        ),
    }
    for fault in faults:
        changes[fault]()
    saved = {"x_train": arrays["x_train"], "x_test": arrays["x_test"]}
    saved |= {"y_train_seg": arrays["y_train"], "y_test_seg": arrays["y_test"]}
    saved |= {"y_train_kind": np.arange(12) % 3, "y_test_kind": np.arange(6) % 3}
    np.savez(tmp_path / "d.npz", **saved)
    path = tmp_path / "spec.yaml"
    path.write_text(SEG_MULTI)
    assert script_refusal(tmp_path, path, "task") == refused(path).message


def test_too_few_mask_class_names_for_the_outputs_channels_are_refused_with_trains_message(tmp_path):
    """Names for the masks' 2 classes on a 3-channel output were replaced by numbers in every
    report (the export's record kept them): an error, as a classifier's too few names are."""
    arrays = good_masks()
    arrays |= {"y_train": arrays["y_train"] % 2, "y_test": arrays["y_test"] % 2}
    arrays["class_names"] = np.array(["background", "road"])
    path = npz_spec(tmp_path, head=SEG_HEAD, extra="training: {seed: 0}\n", **arrays)
    error = refused(path)
    assert error.message == (
        "expected a name for each of the output's 3 classes; class_names of d.npz has 2 (background, road)"
    )
    assert (error.loc.line, error.loc.column) == (8, 17)  # data.source's npz value
    assert script_refusal(tmp_path, path, "task") == error.message


def test_too_few_mask_class_names_of_a_multi_output_npz_are_refused_with_trains_message(tmp_path):
    arrays = good_masks()
    saved = {"x_train": arrays["x_train"], "x_test": arrays["x_test"]}
    saved |= {"y_train_seg": arrays["y_train"] % 2, "y_test_seg": arrays["y_test"] % 2}
    saved |= {"y_train_kind": np.arange(12) % 3, "y_test_kind": np.arange(6) % 3}
    saved |= {"class_names_seg": np.array(["a", "b"]), "class_names": np.array(["x", "y", "z"])}
    np.savez(tmp_path / "d.npz", **saved)
    path = tmp_path / "spec.yaml"
    path.write_text(SEG_MULTI)
    message = refused(path).message
    assert (
        message
        == "expected a name for each of the output seg's 3 classes; class_names_seg of d.npz has 2 (a, b)"
    )
    assert script_refusal(tmp_path, path, "task") == message


def test_too_few_mask_classes_of_an_image_folder_are_refused_before_any_file_is_read(tmp_path):
    """The spec alone tells it (the names against the output's channels): refused by validate,
    and so by train and codegen, where train refused it once every image and mask was read."""
    from cnnspec.api import compile_spec
    from cnnspec.backends.python_emitter import generate_code
    from cnnspec.errors import SpecError

    write_pairs(tmp_path / "d", masks_of(6, classes=2), mode="P")
    path = spec(tmp_path, "{images: d/images, masks: d/masks, classes: [bg, fg]}", SEG_HEAD)
    error = refused(path)
    assert (
        error.message
        == "expected a name for each of the output's 3 classes; data.source.classes has 2 (bg, fg)"
    )
    assert path.read_text().splitlines()[error.loc.line - 1][error.loc.column - 1 :] == "[bg, fg]}"
    with pytest.raises(SpecError) as caught:
        generate_code(compile_spec(path), script=True)
    assert [e.message for e in caught.value.errors] == [error.message]


#: a one-channel sigmoid head (binary masks)
SIGMOID_HEAD = "  - conv2d: {filters: 1, kernel_size: 1, activation: sigmoid}\n"


def _folder_script_refusal(path: Path, root: Path) -> str:
    """The message the script stops with reading the images and masks of ``root`` as its main()
    does up to its check of the mask classes (load_splits), TensorFlow's decoding left out."""
    functions = script_functions(path)
    functions["read_images"] = lambda files: np.zeros((len(files), 8, 8, 3))  # (TensorFlow's decoding)
    with pytest.raises(SystemExit) as stopped:
        functions["load_splits"](root / "images", root / "masks")
    return str(stopped.value.code)


def test_binary_masks_of_0_and_255_are_refused_naming_the_two_values_and_the_classes_table(tmp_path):
    """Black-and-white masks (0 and 255, the usual binary mask) for a one-channel sigmoid were
    "256 mask classes" with a hint to give the last layer 256 filters: the message says the two
    values, at data.source.masks, and the hint the documented table that maps them, which trains."""
    masks = [mask * 255 for mask in masks_of(6, classes=2)]
    write_pairs(tmp_path / "d", masks)
    path = spec(tmp_path, "{images: d/images, masks: d/masks}", SIGMOID_HEAD)
    error = refused(path)
    assert error.message == (
        "expected masks of the class indices 0 and 1 for a one-channel output; the masks hold the two "
        "values 0 and 255"
    )
    assert error.hint == (
        "map them to the classes 0 and 1 with data.source.classes: {background: [0, 0, 0], foreground: "
        "[255, 255, 255]} (a mask's gray value v is the colour [v, v, v]), or store the masks as 0 and 1"
    )
    assert path.read_text().splitlines()[error.loc.line - 1][error.loc.column - 1 :] == "d/masks}"
    assert _folder_script_refusal(path, tmp_path / "d") == f"{error.message}\n{error.hint}"
    table = "{background: [0, 0, 0], foreground: [255, 255, 255]}"
    path = spec(tmp_path, f"{{images: d/images, masks: d/masks, classes: {table}}}", SIGMOID_HEAD)
    *_, data = loaded(path)  # the hint's table: the masks read as 0 and 1
    assert data.class_names == ["background", "foreground"]
    assert sorted(np.unique(data.y_train).tolist()) == [0, 1]


def test_npz_masks_of_two_other_values_are_refused_naming_them(tmp_path):
    arrays = good_masks()
    arrays |= {"y_train": (arrays["y_train"] % 2) * 255, "y_test": (arrays["y_test"] % 2) * 255}
    path = npz_spec(tmp_path, head=SIGMOID_HEAD, extra="training: {seed: 0}\n", **arrays)
    error = refused(path)
    assert error.message == (
        "expected masks of the class indices 0 and 1 for a one-channel output; the masks hold the two "
        "values 0 and 255"
    )
    assert error.hint == "store the masks as 0 and 1 (the classes a one-channel output's sigmoid tells apart)"
    assert (error.loc.line, error.loc.column) == (8, 17)  # data.source's npz value
    assert script_refusal(tmp_path, path, "task") == error.message
    # three values are still mask classes beyond the output's two (a softmax's hint)
    arrays["y_test"][0, 0, 0] = 1
    path = npz_spec(tmp_path, head=SIGMOID_HEAD, extra="training: {seed: 0}\n", **arrays)
    assert refused(path).message == "expected 2 mask classes for a one-channel output; the data has 256"


def test_more_mask_class_names_than_channels_are_refused_as_names_not_mask_values(tmp_path):
    """4 names for a 3-channel output whose masks hold 0-2 were blamed on "masks [that] hold values
    up to 3": validate says the names, at data.source.classes (known without reading a mask); an
    npz's class_names at train, with the script's same words."""
    from cnnspec.api import compile_spec

    write_pairs(tmp_path / "d", masks_of(6))
    path = spec(tmp_path, "{images: d/images, masks: d/masks, classes: [bg, a, b, c]}", SEG_HEAD)
    with pytest.raises(SpecError) as info:
        compile_spec(path)
    (error,) = info.value.errors
    assert (error.path, error.message, error.hint) == (
        "data.source.classes",
        "expected at most 3 mask class names for a 3-channel output; data.source.classes has 4",
        "name one class per output channel, in index order (or give the last layer 4 filters)",
    )
    assert path.read_text().splitlines()[error.loc.line - 1][error.loc.column - 1 :] == "[bg, a, b, c]}"
    path = spec(tmp_path, "{images: d/images, masks: d/masks, classes: [bg, fg, x]}", SIGMOID_HEAD)
    with pytest.raises(SpecError) as info:
        compile_spec(path)
    assert info.value.errors[0].message == (
        "expected at most 2 mask class names for a one-channel output (a sigmoid: 2 classes); "
        "data.source.classes has 3"
    )
    path = mask_case(tmp_path, ["many-names"])
    error = refused(path)
    assert error.message == (
        "expected at most 3 mask class names for a 3-channel output; the npz file's class_names has 4"
    )
    assert script_refusal(tmp_path, path, "task") == error.message


#: SEG_MULTI with a one-channel sigmoid segmentation output
SIGMOID_MULTI = SEG_MULTI.replace(
    "filters: 3, kernel_size: 1, activation: softmax", "filters: 1, kernel_size: 1, activation: sigmoid"
)
#: a segmentation output beside a regression output (no classifier: class_names names the masks)
SEG_REGRESSION = SEG_MULTI.replace("dense: {units: 3, activation: softmax}", "dense: {units: 1}").replace(
    "training: {seed: 0}", "training: {seed: 0, outputs: {kind: {loss: mse}}}"
)


def multi_mask_case(
    tmp_path: Path, text: str, masks: Callable[[np.ndarray], np.ndarray], **names: Any
) -> Path:
    """``text`` (a spec of the outputs seg and kind) reading d.npz of good_masks() changed by
    ``masks``, kind's targets of ``text``'s task, and the class names ``names``."""
    arrays = good_masks()
    kind = np.arange(18) % 3 if "mse" not in text else np.arange(18, dtype="float32")
    saved = {"x_train": arrays["x_train"], "x_test": arrays["x_test"], "y_train_kind": kind[:12]}
    saved |= {
        "y_test_kind": kind[12:],
        "y_train_seg": masks(arrays["y_train"]),
        "y_test_seg": masks(arrays["y_test"]),
    }
    np.savez(tmp_path / "d.npz", **saved, **{key: np.array(value) for key, value in names.items()})
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def whole_script_refusal(tmp_path: Path, path: Path) -> str:
    """The whole message (problem and hint) the task script stops with reading d.npz (load_splits)."""
    with pytest.raises(SystemExit) as stopped:
        script_functions(path)["load_splits"](tmp_path / "d.npz")
    return str(stopped.value.code).replace(str(tmp_path / "d.npz"), "d.npz")


def test_binary_masks_of_a_multi_output_npz_are_refused_naming_the_two_values_and_the_output(tmp_path):
    """0/255 masks for a one-channel output beside a classifier were "expected class indices 0–1 in
    the training targets for output seg; found 255": the single output's words, naming the output."""
    path = multi_mask_case(tmp_path, SIGMOID_MULTI, lambda y: (y % 2) * 255)
    error = refused(path)
    assert (error.path, error.message, error.hint) == (
        "data.source.npz",
        "expected masks of the class indices 0 and 1 for the one-channel output seg; the masks hold the "
        "two values 0 and 255",
        "store the masks as 0 and 1 (the classes a one-channel output's sigmoid tells apart)",
    )
    assert path.read_text().splitlines()[error.loc.line - 1][error.loc.column - 1 :] == "d.npz}}"
    assert whole_script_refusal(tmp_path, path) == f"{error.message}\n{error.hint}"
    # three values are still classes beyond the output's two (a softmax's hint, as a single output's)
    path = multi_mask_case(tmp_path, SIGMOID_MULTI, lambda y: y)
    error = refused(path)
    assert (error.path, error.message, error.hint) == (
        "data.source.npz",
        "expected 2 mask classes for the one-channel output seg; the data has 3",
        "give the output seg 3 filters and a softmax",
    )
    assert whole_script_refusal(tmp_path, path) == f"{error.message}\n{error.hint}"


def _one_value(value: int) -> Callable[[np.ndarray], np.ndarray]:
    """Masks of classes 0–2 with one pixel of the first test mask set to ``value`` (made on the
    test masks alone: good_masks' 6 test masks, after its 12 training ones)."""

    def change(y: np.ndarray) -> np.ndarray:
        y = y.copy()
        if len(y) == 6:
            y[0, 4, 4] = value
        return y

    return change


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        pytest.param(3, "give the output seg 4 filters", id="class-3"),
        pytest.param(
            255,
            "a mask value of 255 usually marks void or ignored pixels, not a class: map it to one of the "
            "classes 0-2 in the mask files (or, if it is a class, give the output seg 256 filters)",
            id="void-255",
        ),
    ],
)
def test_more_mask_classes_than_a_multi_output_models_channels_are_refused_as_a_single_outputs(
    tmp_path, value, hint
):
    """A mask value beyond a segmentation output's 3 channels beside a classifier was task_data's
    "expected class indices 0–2 in the test targets for output seg; found 255", a split at a time,
    with no word of a void label: the single output's words and hint, naming the output, at the npz
    as its other mask errors; the script stops with the same, word for word."""
    path = multi_mask_case(tmp_path, SEG_MULTI, _one_value(value))
    error = refused(path)
    assert (error.path, error.message, error.hint) == (
        "data.source.npz",
        f"expected at most 3 mask classes (the output seg's channels); the data has {value + 1} (its masks "
        f"hold values up to {value})",
        hint,
    )
    assert path.read_text().splitlines()[error.loc.line - 1][error.loc.column - 1 :] == "d.npz}}"
    assert whole_script_refusal(tmp_path, path) == f"{error.message}\n{hint}"


def test_a_multi_output_mask_class_count_is_refused_before_a_classifiers_labels(tmp_path):
    """The mask classes of every split are counted once the data is split, before each split's
    targets are checked output by output (train's order, and the script's): a classifier's
    training label beyond its classes is named after a test mask's class beyond the channels."""
    path = multi_mask_case(tmp_path, SEG_MULTI, _one_value(3))
    with np.load(tmp_path / "d.npz") as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["y_train_kind"] = np.arange(12) % 4  # labels 0–3 for the classifier's 3 classes
    np.savez(tmp_path / "d.npz", **arrays)
    message = refused(path).message
    assert message.startswith("expected at most 3 mask classes (the output seg's channels)")
    assert script_refusal(tmp_path, path, "task") == message


@pytest.mark.parametrize(
    ("text", "key", "channels"),
    [
        pytest.param(SEG_MULTI, "class_names_seg", 3, id="softmax"),
        pytest.param(SIGMOID_MULTI, "class_names_seg", 1, id="sigmoid"),
        pytest.param(SEG_REGRESSION, "class_names", 3, id="beside-regression"),
    ],
)
def test_more_mask_class_names_than_a_multi_output_models_channels_are_refused(tmp_path, text, key, channels):
    """Names beyond a segmentation output's channels, whose masks hold fewer classes, were kept
    without a word for a multi-output model (the last ones named no channel): refused as the single
    output's, naming the output and the npz array that names them (class_names_seg, or class_names
    where no output is a classifier)."""
    names = ["bg", "a", "b", "c"][: channels + 1 if channels > 1 else 3]
    path = multi_mask_case(tmp_path, text, lambda y: y % min(channels + 1, 3), **{key: names})
    error = refused(path)
    output = (
        "the 3-channel output seg" if channels == 3 else "the one-channel output seg (a sigmoid: 2 classes)"
    )
    limit = 2 if channels == 1 else channels
    count = len(names)
    assert (error.path, error.message, error.hint) == (
        "data.source.npz",
        f"expected at most {limit} mask class names for {output}; the npz file's {key} has {count}",
        f"name one class per output channel, in index order (or give the output seg {count} filters"
        + (" and a softmax)" if channels == 1 else ")"),
    )
    assert whole_script_refusal(tmp_path, path) == f"{error.message}\n{error.hint}"


def test_a_multi_output_npz_of_binary_masks_with_two_names_loads(tmp_path):
    path = multi_mask_case(tmp_path, SIGMOID_MULTI, lambda y: y % 2, class_names_seg=["bg", "fg"])
    *_, data = loaded(path)
    assert data.target_names["seg"] == ["bg", "fg"]
    script_functions(path)["load_splits"](tmp_path / "d.npz")  # (stops at nothing)


# -- a class-folder tree with two faults -----------------------------------------------------------
#: a fault each of a `{directory: pics}` tree of classes a and b (4 images each), for two units
FOLDER_FAULTS: dict[str, Callable[[Path], Any]] = {
    "loose": lambda pics: (
        make_images(pics / "tmp", {"x": 1}) and (pics / "tmp/x/x0.png").rename(pics / "x.png")
    ),
    "webp": lambda pics: (pics / "a" / "z.webp").write_bytes(b"RIFF0000WEBP"),
    "empty": lambda pics: (pics / "c").mkdir(),
    "corrupt": lambda pics: (pics / "b" / "bad.png").write_bytes(b"not a png"),
    "third-class": lambda pics: make_images(pics, {"d": 4}, seed=1),
}


def folder_refusal(path: Path, pics: Path) -> str | None:
    """What the script stops with reading ``pics`` as its main() does up to the class count (its
    load_data, then main's count of the classes against the model's 2 units), in its own words:
    a format it does not read is one "cnnspec does not read", as train words it."""
    try:
        *_, names = script_functions(path)["load_data"](pics)
    except SystemExit as stopped:
        return str(stopped.code)
    return f"{len(names)} classes" if len(names) > 2 else None


@pytest.mark.parametrize(("first", "second"), list(itertools.combinations(sorted(FOLDER_FAULTS), 2)))
def test_a_class_folder_tree_with_two_faults_is_refused_for_the_one_train_names(tmp_path, first, second):
    pics = tmp_path / "pics"
    make_images(pics, {"a": 4, "b": 4})
    for fault in (first, second):
        FOLDER_FAULTS[fault](pics)
    shutil.rmtree(pics / "tmp", ignore_errors=True)
    path = write_spec(tmp_path, "{source: {directory: pics, image_size: [8, 8]}}")
    path.write_text(path.read_text().replace("seed: 3", "seed: 0"))
    trained = refused(path).message
    script = folder_refusal(path, pics)
    if "(the model's output units)" in trained:  # main's count, after load_data (a slow test compares it)
        assert script is not None and trained.startswith("expected at most 2 classes"), (trained, script)
        assert script == f"{trained.split('the data has ')[1].split(' ')[0]} classes", (trained, script)
    else:  # train's message (a bad file's: its lines too), then the script's hint
        assert script is not None and script.startswith(f"{trained}\n"), (trained, script)


# -- a labels or values table with two faults ------------------------------------------------------
#: a row each (beside six good ones) of a values table `file,width,height` (its own image p6–p9)
VALUE_ROWS = {
    "not-number": "p6.png,x,1",
    "short-row": "p7.png,2",
    "huge": "p8.png,1e39,1",
    "missing": "gone.png,1,2",
    "twice": "./p5.png,1,2",
    "unlisted": None,  # p9.png, in the folder with no row
}
#: the same of a labels table `file,labels`
LABEL_ROWS = {"missing": "gone.png,cat", "twice": "./p5.png,dog", "unlisted": None}


def table_case(tmp_path: Path, key: str, faults: tuple[str, ...]) -> tuple[Path, Callable[[], Any]]:
    """The spec of images img/p0–p9.png and a `key` table (t.csv) made with `faults`, and the
    script's load_data called as its main() calls it."""
    names = write_images(tmp_path / "img", 10)
    if key == "values":
        rows, faulty = (
            ["file,width,height", *[f"{n},{i * 1.5},{-i}" for i, n in enumerate(names[:6])]],
            VALUE_ROWS,
        )
    else:
        rows, faulty = (
            ["file,labels", *[f"{n},{'cat dog' if i % 2 else 'dog'}" for i, n in enumerate(names[:6])]],
            LABEL_ROWS,
        )
    rows += [faulty[fault] for fault in faults if faulty[fault] is not None]
    for name in names[6:]:  # an image no row names is a fault of its own
        if not any(row.startswith(f"{name},") for row in rows) and not (
            name == "p9.png" and "unlisted" in faults
        ):
            (tmp_path / "img" / name).unlink()
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    task, units = ("regression", "linear") if key == "values" else ("multilabel", "sigmoid")
    head = f"  - global_avg_pool2d\n  - dense: {{units: 2, activation: {units}}}\n"
    path = spec(tmp_path, f"{{images: img, {key}: t.csv}}", head, f"training: {{seed: 0, task: {task}}}\n")
    return path, lambda: script_functions(path)["load_data"](tmp_path / "img", tmp_path / "t.csv")


TABLE_CASES = [
    (key, faults)
    for key, faulty in (("values", VALUE_ROWS), ("labels", LABEL_ROWS))
    for size in (1, 2)
    for faults in itertools.combinations(sorted(faulty), size)
]


@pytest.mark.parametrize(("key", "faults"), TABLE_CASES)
def test_a_table_with_one_or_two_faults_is_refused_for_the_one_train_names(tmp_path, key, faults):
    path, load_data = table_case(tmp_path, key, faults)
    with pytest.raises(SystemExit) as stopped:
        load_data()
    assert str(stopped.value.code).split("\n")[0] == refused(path).message


# -- an image and mask folder with one or two faults ----------------------------------------------
def _mask_png(masks: Path, name: str, change: Callable[[np.ndarray], np.ndarray]) -> None:
    from PIL import Image

    with Image.open(masks / name) as image:
        pixels = np.asarray(image).copy()
    Image.fromarray(change(pixels)).save(masks / name)


def _put(pixels: np.ndarray, value: int) -> np.ndarray:
    pixels[4, 4] = value
    return pixels


#: a fault each of `{images: d/images, masks: d/masks}` (10 pairs of 3 classes, for 3 channels)
MASK_FILE_FAULTS: dict[str, Callable[[Path], Any]] = {
    "no-mask": lambda masks: (masks / "i07.png").unlink(),
    "mask-size": lambda masks: _mask_png(masks, "i02.png", lambda _: np.zeros((6, 7), "uint8")),
    "class-3": lambda masks: _mask_png(masks, "i03.png", lambda p: _put(p, 3)),
    "bad-mask": lambda masks: (masks / "i05.png").write_bytes(b"garbage"),
    "colour": lambda masks: _mask_png(masks, "i06.png", lambda _: np.full((8, 8, 3), (200, 10, 0), "uint8")),
}


def _pil_images(files: list[Path]) -> np.ndarray:
    """The script's read_images (TensorFlow's decoding) stood in for by Pillow's: 8×8 PNGs."""
    from PIL import Image

    return np.stack([np.asarray(Image.open(path).convert("RGB")) for path in files])


@pytest.mark.parametrize(
    "faults",
    [(fault,) for fault in sorted(MASK_FILE_FAULTS)]
    + list(itertools.combinations(sorted(MASK_FILE_FAULTS), 2)),
)
def test_mask_files_with_one_or_two_faults_are_refused_for_the_one_train_names(tmp_path, faults):
    from tests.test_task_data import masks_of, write_pairs

    write_pairs(tmp_path / "d", masks_of(10))
    for fault in faults:
        MASK_FILE_FAULTS[fault](tmp_path / "d" / "masks")
    path = spec(tmp_path, "{images: d/images, masks: d/masks}", extra="training: {seed: 0}\n")
    functions = script_functions(path)
    functions["read_images"] = _pil_images
    with pytest.raises(SystemExit) as stopped:
        functions["load_splits"](tmp_path / "d" / "images", tmp_path / "d" / "masks")
    assert str(stopped.value.code).split("\n")[0] == refused(path).message


# -- a CSV or table that is not UTF-8 ----------------------------------------------------------------
@pytest.mark.parametrize("table", ["csv", "test_csv", "labels", "values", "values.json"])
def test_a_csv_or_table_that_is_not_utf_8_is_refused_with_trains_message(tmp_path, table):
    """A Latin-1 "é" (byte 0xE9) in a classifier's CSV or test CSV, or in a labels or values
    table: train refuses the file, located; the scripts stopped with a UnicodeDecodeError
    traceback."""
    names = write_images(tmp_path / "img", 6)
    if table in ("csv", "test_csv"):
        rows = ["file,label", *[f"img/{n},{'cat' if i % 2 else 'dog'}" for i, n in enumerate(names)]]
        for name, part in (("train.csv", rows[:5]), ("test.csv", [rows[0], *rows[5:]])):
            text = "\n".join(part) + "\n"
            bad = name == ("train.csv" if table == "csv" else "test.csv")
            (tmp_path / name).write_bytes((text.replace("dog", "d\xe9g") if bad else text).encode("latin-1"))
        data = "{csv: train.csv, test_csv: test.csv, image_size: [8, 8]}"
        path = spec(tmp_path, data, CLASSIFIER.replace("units: 3", "units: 2"), "training: {seed: 0}\n")
        args: tuple[Path, ...] = (tmp_path / "train.csv", tmp_path / "test.csv")
    else:
        key, suffix = table.split(".")[0], ".json" if table.endswith(".json") else ".csv"
        if suffix == ".json":
            text = "{" + ", ".join(f'"{n}": [{i}, 1]' for i, n in enumerate(names)) + ', "\xe9": [0, 0]}'
        else:
            cells = ["cat dog", "d\xe9g"] if key == "labels" else ["1.5,2", "3,4"]
            header = "file,labels" if key == "labels" else "file,w\xe9,h"
            text = "\n".join([header, *[f"{n},{cells[i % 2]}" for i, n in enumerate(names)]]) + "\n"
        (tmp_path / f"t{suffix}").write_bytes(text.encode("latin-1"))
        task, units = ("multilabel", "sigmoid") if key == "labels" else ("regression", "linear")
        head = f"  - global_avg_pool2d\n  - dense: {{units: 2, activation: {units}}}\n"
        extra = f"training: {{seed: 0, task: {task}}}\n"
        path = spec(tmp_path, f"{{images: img, {key}: t{suffix}}}", head, extra)
        args = (tmp_path / "img", tmp_path / f"t{suffix}")
    message = refused(path).message
    assert "'utf-8' codec can't decode byte 0xe9" in message
    with pytest.raises(SystemExit) as stopped:
        script_functions(path)["load_data"](*args)
    assert str(stopped.value.code).split("\n")[0] == message


# -- a class name given twice ----------------------------------------------------------------------
@pytest.mark.parametrize("source", ["multi", "multi-own", "multi-nfc", "masks-classes", "values-header"])
def test_a_name_given_twice_is_refused_with_trains_message(tmp_path, source):
    """The scripts numbered or trained classes of one name, which results keyed by name report
    as one; train refuses them (an npz's class_names, single-target ones in the FAULTS above)."""
    if source.startswith("multi"):
        arrays = good_arrays("classifier")
        saved = {"x_train": arrays["x_train"], "x_test": arrays["x_test"]}
        saved |= {"y_train_kind": arrays["y_train"], "y_test_kind": arrays["y_test"]}
        saved |= {
            "y_train_size": np.arange(12, dtype="float32"),
            "y_test_size": np.arange(6, dtype="float32"),
        }
        names = {
            "multi": {"class_names": ["a", "b", "a"]},
            "multi-own": {"class_names": ["a", "b", "c"], "class_names_kind": ["x", "y", "x"]},
            "multi-nfc": {"class_names": ["\u00e9mu", "b", "e\u0301mu"]},  # composed, then decomposed
        }[source]
        np.savez(tmp_path / "d.npz", **saved, **{key: np.array(value) for key, value in names.items()})
        path = tmp_path / "spec.yaml"
        path.write_text(MULTI)
        message = refused(path).message
        assert script_refusal(tmp_path, path, "task") == message
        return
    if source == "masks-classes":
        from tests.test_task_data import masks_of, write_pairs

        write_pairs(tmp_path / "d", masks_of(10))
        path = spec(
            tmp_path,
            "{images: d/images, masks: d/masks, classes: [bg, cat, bg]}",
            extra="training: {seed: 0}\n",
        )
        args = (tmp_path / "d" / "images", tmp_path / "d" / "masks")
    else:
        names = write_images(tmp_path / "img", 6)
        rows = ["file,w,h,w", *[f"{n},{i},1,2" for i, n in enumerate(names)]]
        (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
        head = "  - global_avg_pool2d\n  - dense: {units: 3, activation: linear}\n"
        path = spec(tmp_path, "{images: img, values: t.csv}", head, "training: {seed: 0, task: regression}\n")
        args = (tmp_path / "img", tmp_path / "t.csv")
    message = refused(path).message
    noun = "value column" if source == "values-header" else "class"  # (named at the file's columns)
    assert message.startswith(f"expected each {noun} name once in ")
    functions = script_functions(path)
    functions["read_images"] = _pil_images
    with pytest.raises(SystemExit) as stopped:
        functions["load_splits"](*args)
    assert str(stopped.value.code).split("\n")[0] == message


# -- a multi-output npz with faults in outputs of different kinds -----------------------------------
FOUR = (
    "cnnspec: 1\nname: four\ninput: {shape: [8, 8, 3]}\nmodel:\n"
    "  - conv2d: {filters: 3, kernel_size: 1, activation: softmax}\n    id: seg\n"
    "  - global_avg_pool2d:\n    inputs: seg\n    id: pool\n"
    "  - dense: {units: 1}\n    inputs: pool\n    id: size\n"
    "  - dense: {units: 2, activation: sigmoid}\n    inputs: pool\n    id: tags\n"
    "  - dense: {units: 3, activation: softmax}\n    inputs: pool\n    id: kind\n"
    "outputs: [size, tags, seg, kind]\ndata: {source: {npz: d.npz}}\n"
    "training: {seed: 0, outputs: {size: {task: regression, loss: mse}, tags: {task: multilabel}}}\n"
)


def good_four() -> Arrays:
    """12 training and 6 test images with a target for each of FOUR's outputs: values, 0/1 label
    pairs, masks of classes 0–2 and class indices 0–2."""
    rng = np.random.default_rng(3)
    arrays = {key: good_masks()[key] for key in ("x_train", "x_test")}
    for part, n in (("train", 12), ("test", 6)):
        arrays[f"y_{part}_size"] = rng.random(n).astype("float32")
        arrays[f"y_{part}_tags"] = np.stack([np.arange(n) % 2, (np.arange(n) + 1) % 2], axis=1)
        arrays[f"y_{part}_seg"] = rng.integers(0, 3, (n, 8, 8))
        arrays[f"y_{part}_kind"] = np.arange(n) % 3
    return arrays


#: one fault each of a FOUR npz, by group: the output it is in (or the images, or the names); in
#: train's order, each output's targets are checked as read (by their kind, output by output),
#: then against the outputs once the data is split
FOUR_FAULTS: dict[str, tuple[str, Callable[[Arrays], None]]] = {
    "size-nan": ("size", lambda a: _set(a, "y_train_size", 3, np.nan)),
    "size-huge": ("size", lambda a: _set(a, "y_test_size", 1, 1e39, "float64")),
    "size-width": ("size", lambda a: a.update(y_train_size=np.ones((12, 2)), y_test_size=np.ones((6, 2)))),
    "size-whole-negative": ("size", lambda a: a.update(y_train_size=np.arange(12) - 3)),
    "tags-values": ("tags", lambda a: _set(a, "y_test_tags", (0, 0), 2)),
    # a training row's typo: its array read as values ("the data has regression targets")
    "tags-train-values": ("tags", lambda a: _set(a, "y_train_tags", (1, 1), 2)),
    "tags-width": (
        "tags",
        lambda a: a.update(
            y_train_tags=np.eye(3, dtype=int)[np.arange(12) % 3],
            y_test_tags=np.eye(3, dtype=int)[np.arange(6) % 3],
        ),
    ),
    "tags-vector": ("tags", lambda a: a.update(y_test_tags=np.arange(6) % 2)),
    "seg-classes": ("seg", lambda a: a.update(y_train_seg=np.arange(12) % 3, y_test_seg=np.arange(6) % 3)),
    "seg-nan": ("seg", lambda a: _set(a, "y_test_seg", (1, 2, 2), np.nan, "float64")),
    "seg-class-3": ("seg", lambda a: _set(a, "y_train_seg", (2, 4, 4), 3)),
    "kind-negative": ("kind", lambda a: _set(a, "y_test_kind", 2, -1)),
    "kind-class-3": ("kind", lambda a: _set(a, "y_train_kind", 5, 3)),
    "kind-fractions": ("kind", lambda a: a.update(y_train_kind=a["y_train_kind"] + 0.5)),
    "names-twice": ("names", lambda a: a.update(class_names=np.array(["a", "b", "a"]))),
    "nan-pixel": ("pixels", lambda a: _set(a, "x_train", (2, 1, 1, 0), np.nan)),
    "channels": ("channels", lambda a: a.update(x_train=a["x_train"][..., :1], x_test=a["x_test"][..., :1])),
}
FOUR_CASES = [(fault,) for fault in sorted(FOUR_FAULTS)] + [
    (first, second)
    for first, second in itertools.combinations(sorted(FOUR_FAULTS), 2)
    if FOUR_FAULTS[first][0] != FOUR_FAULTS[second][0]
]


@pytest.mark.parametrize("faults", FOUR_CASES, ids="+".join)
def test_a_multi_output_npz_with_faults_in_outputs_of_other_kinds_is_refused_as_train_refuses_it(
    tmp_path, faults
):
    """The task script checked the classification outputs' labels, then the values, then the
    masks, each by the output's task; train checks each output's targets in turn, by the kind it
    reads them as (a regression output's whole numbers are class labels to it), and once the data
    is split, each output's width (a regression output's values, a multi-label output's labels)
    and classes, which the script did not check: training failed inside Keras, or trained wrongly."""
    arrays = good_four()
    for fault in faults:
        FOUR_FAULTS[fault][1](arrays)
    np.savez(tmp_path / "d.npz", **arrays)
    path = tmp_path / "spec.yaml"
    path.write_text(FOUR)
    assert script_refusal(tmp_path, path, "task") == refused(path).message


def test_a_typo_in_a_multi_label_training_array_is_said_so_not_called_another_tasks_data(tmp_path):
    """A 2 in a multi-hot training row made the array values: "expected multilabel targets for
    the multilabel output tags; the data has regression targets", with the hint to ask a
    `shapes` source for other targets, which an npz has no use for."""
    arrays = good_four()
    FOUR_FAULTS["tags-train-values"][1](arrays)
    np.savez(tmp_path / "d.npz", **arrays)
    path = tmp_path / "spec.yaml"
    path.write_text(FOUR)
    error = refused(path)
    assert (
        error.message
        == "expected 0/1 multi-label targets for the multilabel output tags; y_train_tags holds 2"
    )
    assert error.hint == "a multi-hot row holds 1 for each label of its image and 0 for the others"
    functions = script_functions(path)
    with pytest.raises(SystemExit) as stopped:
        functions["load_splits"](tmp_path / "d.npz")
    assert str(stopped.value.code).split("\n") == [error.message, error.hint]


# -- an npz of one target for a multi-output model --------------------------------------------------
TWO_CLASSIFIERS = MULTI.replace("dense: {units: 1}", "dense: {units: 2, activation: softmax}").replace(
    ", outputs: {size: {task: regression, loss: mse}}", ""
)


@pytest.mark.parametrize(
    ("model", "fault"),
    [
        ("classifier-regression", None),
        ("two-classifiers", None),
        ("two-classifiers", "negative"),
        ("two-classifiers", "names-twice"),
        ("two-classifiers", "few-names"),
        ("two-classifiers", "masks"),
        ("two-classifiers", "channels"),
        ("two-classifiers", "no-test"),
    ],
)
def test_an_npz_of_one_target_for_several_outputs_is_refused_with_trains_message(tmp_path, model, fault):
    """Train reads x_train, y_train, … as one target (of the first output's kind, or masks),
    checks it, and refuses it for the model once the data is split (a kind another output does
    not take, else one array for several outputs); the script refused any such file at once, in
    words of its own."""
    arrays = good_arrays("classifier")
    changes: dict[str | None, Callable[[], Any]] = {
        None: lambda: None,
        "negative": lambda: _set(arrays, "y_test", 1, -1),
        "names-twice": lambda: arrays.update(class_names=np.array(["a", "b", "a"])),
        "few-names": lambda: arrays.update(class_names=np.array(["a", "b"])),
        "masks": lambda: arrays.update(y_train=np.zeros((12, 8, 8), int), y_test=np.zeros((6, 8, 8), int)),
        "channels": lambda: arrays.update(
            x_train=arrays["x_train"][..., :1], x_test=arrays["x_test"][..., :1]
        ),
        "no-test": lambda: arrays.pop("y_test"),
    }
    changes[fault]()
    np.savez(tmp_path / "d.npz", **arrays)
    path = tmp_path / "spec.yaml"
    path.write_text(MULTI if model == "classifier-regression" else TWO_CLASSIFIERS)
    assert script_refusal(tmp_path, path, "task") == refused(path).message


# -- the shapes source's targets against a multi-output model ---------------------------------------
@pytest.mark.parametrize("head", ["units: 2, activation: softmax", "units: 1, activation: sigmoid"])
def test_a_multi_output_classifier_of_fewer_classes_than_the_shapes_is_refused_as_train_refuses_it(
    tmp_path, head
):
    """The shapes' class target has 3 classes; an output of 2 trained on index 2 (Keras' sparse
    losses give NaN or fail): train refuses it once the data is split, and the script now too."""
    path = tmp_path / "spec.yaml"
    path.write_text(
        "cnnspec: 1\nname: two\ninput: {shape: [16, 16, 3]}\nmodel:\n"
        "  - conv2d: {filters: 2, kernel_size: 3}\n  - global_avg_pool2d:\n    id: pool\n"
        f"  - dense: {{{head}}}\n    id: kind\n"
        "  - dense: {units: 1}\n    inputs: pool\n    id: area\n"
        "outputs: [kind, area]\ndata: {source: {shapes: {images: 30, target: {kind: class, area: area}}}}\n"
        "training: {seed: 0, outputs: {area: {task: regression, loss: mse}}}\n"
    )
    message = refused(path).message
    assert message.startswith("expected class indices 0–1 in the training targets for output kind")
    with pytest.raises(SystemExit) as stopped:
        script_functions(path)["load_splits"]()
    assert str(stopped.value.code).split("\n")[0] == message


def test_multi_hot_rows_of_another_width_than_the_output_are_refused_with_trains_message(tmp_path):
    """Two labels per image for an output of three sigmoid units: the task script trained them
    (or failed inside Keras); train refuses them once the data is split."""
    rng = np.random.default_rng(2)
    arrays = good_arrays("task") | {
        "y_train": rng.integers(0, 2, (12, 2)),
        "y_test": rng.integers(0, 2, (6, 2)),
    }
    head = "  - global_avg_pool2d\n  - dense: {units: 3, activation: sigmoid}\n"
    path = npz_spec(tmp_path, head=head, extra="training: {seed: 0, task: multilabel}\n", **arrays)
    message = refused(path).message
    assert message == "expected 2 output units (one per label); the model outputs 3"
    assert script_refusal(tmp_path, path, "task") == message


# -- a data path of the other kind, or a file that is damaged or cannot be read --------------------
#: each source a path of the data is read from: the spec's data.source, its model's head and
#: training section, the path a fault is made at (made good first, as a data set of the source),
#: and the script function main() calls with the source's paths
PATH_SOURCES: dict[str, tuple[str, str, str, str, str]] = {
    "npz": ("{npz: d.npz}", CLASSIFIER, "seed: 0", "d.npz", "load_data"),
    "task-npz": ("{npz: d.npz}", REGRESSION, "seed: 0, task: regression", "d.npz", "load_splits"),
    "csv": (
        "{csv: train.csv, test_csv: test.csv, image_size: [8, 8]}",
        CLASSIFIER.replace("units: 3", "units: 2"),
        "seed: 0",
        "train.csv",
        "load_data",
    ),
    "test_csv": (
        "{csv: train.csv, test_csv: test.csv, image_size: [8, 8]}",
        CLASSIFIER.replace("units: 3", "units: 2"),
        "seed: 0",
        "test.csv",
        "load_data",
    ),
    "directory": (
        "{directory: pics, image_size: [8, 8]}",
        CLASSIFIER.replace("units: 3", "units: 2"),
        "seed: 0",
        "pics",
        "load_data",
    ),
    "test_directory": (
        "{directory: pics, test_directory: tests, image_size: [8, 8]}",
        CLASSIFIER.replace("units: 3", "units: 2"),
        "seed: 0",
        "tests",
        "load_data",
    ),
    "labels": (
        "{images: img, labels: t.csv}",
        "  - global_avg_pool2d\n  - dense: {units: 2, activation: sigmoid}\n",
        "seed: 0, task: multilabel",
        "t.csv",
        "load_data",
    ),
    "labels.json": (
        "{images: img, labels: t.json}",
        "  - global_avg_pool2d\n  - dense: {units: 2, activation: sigmoid}\n",
        "seed: 0, task: multilabel",
        "t.json",
        "load_data",
    ),
    "labels-images": (
        "{images: img, labels: t.csv}",
        "  - global_avg_pool2d\n  - dense: {units: 2, activation: sigmoid}\n",
        "seed: 0, task: multilabel",
        "img",
        "load_data",
    ),
    "values": (
        "{images: img, values: t.csv}",
        "  - global_avg_pool2d\n  - dense: {units: 2, activation: linear}\n",
        "seed: 0, task: regression",
        "t.csv",
        "load_data",
    ),
    "masks": ("{images: d/images, masks: d/masks}", "", "seed: 0", "d/masks", "load_splits"),
    "masks-images": ("{images: d/images, masks: d/masks}", "", "seed: 0", "d/images", "load_splits"),
}


def _source_data(tmp_path: Path, source: str) -> list[Path]:
    """A good data set of ``source`` in ``tmp_path``; the paths main() reads it from."""
    from tests.test_task_data import masks_of, write_pairs

    data = PATH_SOURCES[source][0]
    if "npz" in data:
        arrays = good_arrays("task" if source == "task-npz" else "classifier")
        np.savez(tmp_path / "d.npz", **arrays)
        return [tmp_path / "d.npz"]
    if "csv:" in data:
        names = write_images(tmp_path / "img", 6)
        rows = [f"img/{n},{'cat' if i % 2 else 'dog'}" for i, n in enumerate(names)]
        (tmp_path / "train.csv").write_text("\n".join(["file,label", *rows[:4]]) + "\n")
        (tmp_path / "test.csv").write_text("\n".join(["file,label", *rows[4:]]) + "\n")
        return [tmp_path / "train.csv", tmp_path / "test.csv"]
    if "directory:" in data:
        make_images(tmp_path / "pics", {"a": 4, "b": 4})
        make_images(tmp_path / "tests", {"a": 2, "b": 2}, seed=1)
        return [tmp_path / "pics", *([tmp_path / "tests"] if "test_directory" in data else [])]
    if "masks:" in data:
        write_pairs(tmp_path / "d", masks_of(10))
        return [tmp_path / "d" / "images", tmp_path / "d" / "masks"]
    names = write_images(tmp_path / "img", 6)
    cells = ["1.5,2", "3,4"] if "values" in data else ["cat dog", "dog"]
    header = "file,w,h" if "values" in data else "file,labels"
    (tmp_path / "t.csv").write_text(
        "\n".join([header, *[f"{n},{cells[i % 2]}" for i, n in enumerate(names)]])
    )
    (tmp_path / "t.json").write_text("{" + ", ".join(f'"{n}": ["cat"]' for n in names) + "}")
    return [tmp_path / "img", tmp_path / ("t.json" if "json" in data else "t.csv")]


def _bad_member(path: Path) -> None:
    """A byte of x_train's data changed in the npz file ``path`` (stored, not compressed): its
    member fails zipfile's CRC check when it is read."""
    raw = bytearray(path.read_bytes())
    start = raw.index(b"\x93NUMPY", raw.index(b"x_train.npy"))
    raw[start + 300] ^= 0xFF
    path.write_bytes(bytes(raw))


def _forged_member(path: Path, shape: tuple[int, ...]) -> None:
    """x_train of the npz file ``path`` replaced by a member whose .npy header claims ``shape``
    (float32) and that holds 100 bytes after it."""
    import io
    import zipfile

    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    members["x_train.npy"] = header.getvalue() + bytes(100)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


#: a fault each, made at the source's path (a file or a folder), and the sources it applies to
PATH_FAULTS: dict[str, tuple[Callable[[Path], Any], tuple[str, ...]]] = {
    "folder": (
        lambda p: p.unlink() or p.mkdir(),
        ("npz", "task-npz", "csv", "test_csv", "labels", "labels.json", "values"),
    ),
    "file": (
        lambda p: shutil.rmtree(p) or p.write_text("file,label\na.png,cat\n"),
        ("directory", "test_directory", "labels-images", "masks", "masks-images"),
    ),
    "not-a-zip": (lambda p: p.write_bytes(b"PK\x03\x04garbage"), ("npz", "task-npz")),
    "text": (lambda p: p.write_text("file,label\na.png,cat\n"), ("npz", "task-npz")),
    "npy": (
        lambda p: np.save(p.with_suffix(".npy"), np.zeros(3)) or p.with_suffix(".npy").rename(p),
        ("npz",),
    ),
    "empty": (lambda p: p.write_bytes(b""), ("npz", "task-npz")),
    "bad-member": (_bad_member, ("npz", "task-npz")),
    "forged-header": (lambda p: _forged_member(p, (10**9, 8, 8, 3)), ("npz", "task-npz")),
    "cut-member": (lambda p: _forged_member(p, (12, 8, 8, 3)), ("npz", "task-npz")),
}


@pytest.mark.parametrize(
    ("source", "fault"),
    [(source, fault) for fault, (_, sources) in PATH_FAULTS.items() for source in sources],
)
def test_a_data_path_of_the_other_kind_or_a_damaged_file_is_refused_with_trains_message(
    tmp_path, source, fault
):
    """The scripts stopped with a traceback (IsADirectoryError, NotADirectoryError, BadZipFile,
    NumPy's pickle error), or said "does not exist" of a path of the other kind, or "missing"
    of a table's images in a file named as their folder; train names each fault, located."""
    data, head, training, target, function = PATH_SOURCES[source]
    args = _source_data(tmp_path, source)
    PATH_FAULTS[fault][0](tmp_path / target)
    path = spec(tmp_path, data, *([head] if head else []), extra=f"training: {{{training}}}\n")
    message = refused(path).message
    with pytest.raises(SystemExit) as stopped:
        script_functions(path)[function](*args)
    named = tmp_path / target  # as train names it, where it names it by its name
    assert str(stopped.value.code).split("\n")[0].replace(str(named), named.name) == message.replace(
        str(named), named.name
    )


@pytest.mark.parametrize("source", ["npz", "task-npz", "csv", "test_csv", "labels", "values"])
def test_a_data_file_that_cannot_be_read_is_refused_with_trains_message(tmp_path, monkeypatch, source):
    """A file the user may not read (as root every file is readable, so opening it is made to
    fail): the npz scripts stopped with a PermissionError traceback."""
    data, head, training, target, function = PATH_SOURCES[source]
    args = _source_data(tmp_path, source)
    path = spec(tmp_path, data, *([head] if head else []), extra=f"training: {{{training}}}\n")
    opening = Path.open

    def locked(self, *args, **kwargs):
        if self == tmp_path / target:
            raise PermissionError(13, "Permission denied", str(self))
        return opening(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", locked)
    message = refused(path).message
    assert "Permission denied" in message
    with pytest.raises(SystemExit) as stopped:
        script_functions(path)[function](*args)
    named = tmp_path / target
    assert str(stopped.value.code).split("\n")[0].replace(str(named), named.name) == message.replace(
        str(named), named.name
    )


@pytest.mark.parametrize("header", ["path,y", "file", ""])
def test_a_csv_without_the_named_columns_is_refused_with_trains_message_and_hint(tmp_path, header):
    """The script listed the columns as a Python list (``['path', 'y']``), without train's hint;
    an empty file was ``[]`` where train says it has none."""
    (tmp_path / "train.csv").write_text(f"{header}\na.png,cat\n" if header else "")
    path = spec(tmp_path, "{csv: train.csv, image_size: [8, 8]}", CLASSIFIER.replace("units: 3", "units: 2"))
    error = refused(path)
    with pytest.raises(SystemExit) as stopped:
        script_functions(path)["load_data"](tmp_path / "train.csv")
    first, hint = str(stopped.value.code).replace(str(tmp_path / "train.csv"), "train.csv").split("\n")
    assert (first, hint) == (error.message, error.hint)


@pytest.mark.parametrize("source", ["directory", "test_directory"])
def test_a_folder_of_class_folders_that_cannot_be_listed_is_refused_by_both(tmp_path, monkeypatch, source):
    """A training or test folder the user may not list (as root every folder is readable, so
    listing it is made to fail): train and the script both stopped with a PermissionError
    traceback; both now name the folder."""
    data, head, training, target, function = PATH_SOURCES[source]
    args = _source_data(tmp_path, source)
    path = spec(tmp_path, data, head, extra=f"training: {{{training}}}\n")
    listing = Path.iterdir

    def locked(self):
        if self == tmp_path / target:
            raise PermissionError(13, "Permission denied", str(self))
        return listing(self)

    monkeypatch.setattr(Path, "iterdir", locked)
    error = refused(path)
    assert (error.message, error.hint) == (
        f"cannot read the folder {tmp_path / target}: Permission denied",
        "make it readable",
    )
    with pytest.raises(SystemExit) as stopped:
        script_functions(path)[function](*args)
    assert str(stopped.value.code).split("\n") == [error.message, error.hint]


@pytest.mark.parametrize("source", ["npz", "task-npz"])
def test_an_npz_array_too_large_for_memory_is_refused_with_trains_message(tmp_path, monkeypatch, source):
    """Reading x_train runs out of memory (made to, here): train names the array and suggests an
    image folder; the script said it could not read it."""
    data, head, training, _, function = PATH_SOURCES[source]
    args = _source_data(tmp_path, source)
    path = spec(tmp_path, data, head, extra=f"training: {{{training}}}\n")
    reading = np.lib.npyio.NpzFile.__getitem__

    def short_of_memory(self, key):
        if key == "x_train":
            raise MemoryError("Unable to allocate 768. GiB")
        return reading(self, key)

    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", short_of_memory)
    error = refused(path)
    assert error.message.endswith("d.npz: x_train does not fit in memory (Unable to allocate 768. GiB)")
    with pytest.raises(SystemExit) as stopped:
        script_functions(path)[function](*args)
    assert str(stopped.value.code).split("\n") == [error.message, error.hint]


# -- data of one class for a classifier ------------------------------------------------------------
def script_stop(path: Path) -> list[str]:
    """The last two lines (message, hint) the generated train.py of ``path`` stops with, run as its
    user runs it (main's count of the classes is past load_data: the script runs whole)."""
    from cnnspec.api import compile_spec
    from cnnspec.backends.python_emitter import generate_code
    from tests.conftest import run_python

    script = path.with_name("train_script.py")
    script.write_text(generate_code(compile_spec(path), script=True, output=script).text)
    done = run_python(script, "--out", str(path.parent / "script_run"))
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-4000:]
    assert not (path.parent / "script_run").exists()
    return done.stderr.strip().splitlines()[-2:]


def one_class_cases(tmp_path: Path) -> dict[str, Path]:
    """Specs whose classifier's data has one class: a folder of one class folder (two heads), an
    npz of one label (and one selected by data.classes), shapes with one class selected, and a
    multi-output npz whose classifier's labels are all 0."""
    make_images(tmp_path / "one", {"cat": 6})
    folder = write_spec(tmp_path, "{source: {directory: one, image_size: [8, 8]}}").read_text()
    folder = folder.replace("seed: 3", "seed: 0")
    sigmoid = folder.replace("units: 2, activation: softmax", "units: 1, activation: sigmoid")
    arrays = good_arrays("classifier")
    zeros = {"y_train": 0 * arrays["y_train"], "y_test": 0 * arrays["y_test"]}
    np.savez(tmp_path / "zeros.npz", **(arrays | zeros))
    np.savez(tmp_path / "d.npz", **arrays)
    npz = CLASSIFIER_SPEC.format(source="{npz: zeros.npz}")
    selected = CLASSIFIER_SPEC.format(source="{npz: d.npz}, classes: [2]")
    shapes = CLASSIFIER_SPEC.format(source="{shapes: {images: 30}}, classes: [square]")
    multi = MULTI.replace("d.npz", "multi.npz")
    np.savez(
        tmp_path / "multi.npz",
        x_train=arrays["x_train"],
        x_test=arrays["x_test"],
        y_train_kind=np.zeros(12, "int64"),
        y_test_kind=np.zeros(6, "int64"),
        y_train_size=np.arange(12, dtype="float32"),
        y_test_size=np.arange(6, dtype="float32"),
    )
    rows = "".join(f"{p.parent.name}/{p.name},cat\n" for p in sorted((tmp_path / "one" / "cat").iterdir()))
    (tmp_path / "one" / "labels.csv").write_text(f"file,label\n{rows}")
    table = folder.replace("{directory: one,", f"{{csv: {tmp_path / 'one' / 'labels.csv'},")
    texts = {"folder": folder, "folder-sigmoid": sigmoid, "npz": npz, "selected": selected, "shapes": shapes}
    texts["csv"] = table
    paths = {}
    for name, text in (texts | {"multi": multi}).items():
        (tmp_path / name).mkdir()
        paths[name] = tmp_path / name / "spec.yaml"
        paths[name].write_text(text.replace("directory: one", f"directory: {tmp_path / 'one'}"))
        for npz_name in ("zeros.npz", "d.npz", "multi.npz"):
            shutil.copy(tmp_path / npz_name, tmp_path / name / npz_name)
    return paths


CLASSIFIER_SPEC = (
    "cnnspec: 1\nname: one\ninput: {{shape: [8, 8, 3]}}\nmodel:\n"
    "  - conv2d: {{filters: 2, kernel_size: 3}}\n  - global_avg_pool2d\n"
    "  - dense: {{units: 3, activation: softmax}}\ndata: {{source: {source}}}\n"
    "training: {{epochs: 1, batch_size: 4, seed: 0}}\n"
)
ONE_CLASS = {
    "folder": ("data.source", "expected at least 2 classes for a classifier; the data has 1 ('cat')"),
    "folder-sigmoid": ("data.source", "expected at least 2 classes for a classifier; the data has 1 ('cat')"),
    "npz": ("data.source", "expected at least 2 classes for a classifier; the data has 1 ('0')"),
    "csv": ("data.source", "expected at least 2 classes for a classifier; the data has 1 ('cat')"),
    "selected": ("data.classes", "expected at least 2 classes for a classifier; the data has 1 ('2')"),
    "shapes": ("data.classes", "expected at least 2 classes for a classifier; the data has 1 ('square')"),
    "multi": (
        "data.source",
        "expected at least 2 classes for the classifier output kind; the data has 1 ('0')",
    ),
}


@pytest.mark.parametrize("case", sorted(ONE_CLASS))
def test_data_of_one_class_for_a_classifier_is_refused_before_training(tmp_path, case):
    """A classifier on data of one class trained and scored test accuracy 1.0000 (every
    prediction is that class): train refuses it, located, once the data is loaded."""
    path = one_class_cases(tmp_path)[case]
    error = refused(path)
    where, message = ONE_CLASS[case]
    assert (error.path, error.message) == (where, message)
    assert "a classifier learns to tell classes apart" in error.hint


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(ONE_CLASS))
def test_data_of_one_class_for_a_classifier_stops_the_script_with_trains_message(tmp_path, case):
    path = one_class_cases(tmp_path)[case]
    error = refused(path)
    if case in ("selected", "shapes"):  # data.classes of one class: refused as the spec compiles
        from cnnspec.api import compile_spec

        with pytest.raises(SpecError) as caught:  # (no script is generated: validate refuses it)
            compile_spec(path)
        (found,) = caught.value.errors
        assert [found.message, found.hint] == [error.message, error.hint]
        return
    if case == "multi":  # the task script's load_splits (no TensorFlow)
        with pytest.raises(SystemExit) as stopped:
            script_functions(path)["load_splits"](path.with_name("multi.npz"))
        lines = str(stopped.value.code).split("\n")
    else:
        lines = script_stop(path)
    assert lines == [error.message, error.hint]


def one_labelled_cases(tmp_path: Path) -> dict[str, Path]:
    """Specs whose classifier has two classes or more, yet training images of one: an npz labelled
    1 throughout (classes 0 and 1 by its largest label), its multi-output twin, and a data.limit
    that keeps one image."""
    arrays = good_arrays("classifier")
    ones = {"y_train": 0 * arrays["y_train"] + 1, "y_test": np.arange(6) % 2}
    texts = {
        "ones": CLASSIFIER_SPEC.format(source="{npz: d.npz}"),
        "limit": CLASSIFIER_SPEC.format(source="{npz: d.npz}, limit: 1"),
        "multi": MULTI,
    }
    paths = {}
    for name, text in texts.items():
        (tmp_path / name).mkdir()
        paths[name] = tmp_path / name / "spec.yaml"
        paths[name].write_text(text)
        if name == "limit":
            np.savez(tmp_path / name / "d.npz", **arrays)
        elif name == "ones":
            np.savez(tmp_path / name / "d.npz", **(arrays | ones))
        else:
            np.savez(
                tmp_path / name / "d.npz",
                x_train=arrays["x_train"],
                x_test=arrays["x_test"],
                y_train_kind=np.ones(12, "int64"),
                y_test_kind=np.arange(6) % 3,
                y_train_size=np.arange(12, dtype="float32"),
                y_test_size=np.arange(6, dtype="float32"),
            )
    return paths


ONE_LABELLED = {
    "ones": ("data.source", "the class '1' (the data has 2 classes)", "store labels of at least 2"),
    "limit": ("data.limit", "the class '2' (the data has 3 classes)", "raise data.limit"),
    "multi": ("data.source", "the class '1' (the data has 3 classes)", "store labels of at least 2"),
}


@pytest.mark.parametrize("case", sorted(ONE_LABELLED))
def test_training_images_of_one_class_are_refused_before_training(tmp_path, case):
    """An npz labelled 1 throughout has classes 0 and 1 by its largest label: it passed the
    two-class check, trained a model answering 1 to everything and reported it as a run."""
    error = refused(one_labelled_cases(tmp_path)[case])
    where, ending, hint = ONE_LABELLED[case]
    whose = "the classifier output kind" if case == "multi" else "a classifier"
    assert error.path == where
    assert error.message == (
        f"expected training images of at least 2 classes for {whose}; every training image is of {ending}"
    )
    assert error.hint.startswith(hint)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(ONE_LABELLED))
def test_training_images_of_one_class_stop_the_script_with_trains_message(tmp_path, case):
    path = one_labelled_cases(tmp_path)[case]
    error = refused(path)
    if case == "multi":  # the task script's load_splits (no TensorFlow)
        with pytest.raises(SystemExit) as stopped:
            script_functions(path)["load_splits"](path.with_name("d.npz"))
        lines = str(stopped.value.code).split("\n")
    else:
        lines = script_stop(path)
    assert lines == [error.message, error.hint]


@pytest.mark.parametrize("case", ["folder", "npz", "multi"])
def test_test_images_of_one_class_are_still_scored(tmp_path, case):
    """evaluate's --data (its test images alone used) may hold one class's images to score: the
    refusal is training's."""
    from cnnspec.api import compile_spec
    from cnnspec.training.data import load_dataset
    from tests.test_task_data import train_settings

    compiled = compile_spec(one_class_cases(tmp_path)[case])
    dataset = load_dataset(compiled, train_settings(compiled), 0, test_only=True)
    assert len(dataset.y_test if case != "multi" else dataset.y_test["kind"]) == (
        1 if case == "folder" else 6
    )


def folder_limit_case(tmp_path: Path) -> Path:
    """A folder of 2 class folders whose data.limit of 1 keeps one training image: one class's."""
    make_images(tmp_path / "two", {"cat": 6, "dog": 6})
    return write_spec(
        tmp_path, f"{{source: {{directory: {tmp_path / 'two'}, image_size: [8, 8]}}, limit: 1}}"
    )


def test_a_limit_that_kept_one_class_of_a_folder_says_to_raise_it_alone(tmp_path):
    """The folder has its class folders: the hint is the limit's, not to make sub-folders."""
    error = refused(folder_limit_case(tmp_path))
    assert error.path == "data.limit" and "(the data has 2 classes)" in error.message
    assert error.hint == "raise data.limit, so that it keeps images of the other classes"


@pytest.mark.slow
def test_the_script_of_a_folder_limit_that_kept_one_class_stops_with_trains_error(tmp_path):
    """The script draws the image train draws at the spec's seed (3): the same class is named."""
    from cnnspec.api import compile_spec
    from cnnspec.errors import SpecError
    from cnnspec.training.data import load_dataset
    from cnnspec.training.data_checks import check_fit
    from tests.test_task_data import train_settings

    path = folder_limit_case(tmp_path)
    compiled = compile_spec(path)
    config = train_settings(compiled)
    assert config.seed == 3
    with pytest.raises(SpecError) as info:
        check_fit(load_dataset(compiled, config, config.seed), compiled, config)
    (error,) = info.value.errors
    assert script_stop(path) == [error.message, error.hint]


@pytest.mark.parametrize("source", ["values", "labels"])
def test_a_targets_table_of_another_width_than_the_output_is_refused_with_trains_message(tmp_path, source):
    """Image files with a values or labels table whose columns (or labels) are not the output's
    units: the script's check was made for an npz file's targets alone, and its training ended
    in a traceback from inside Keras ("Incompatible shapes", "target.shape=(None, 3)") where
    train refuses the data once it is split."""
    from tests.test_data_checks import loaded

    names = write_images(tmp_path / "img", 8)
    if source == "values":
        rows = ["file,a", *[f"{n},{i / 10}" for i, n in enumerate(names)]]
        head = "  - global_avg_pool2d\n  - dense: {units: 2, activation: linear}\n"
        extra = "training: {seed: 0, task: regression}\n"
    else:
        rows = ["file,labels", *[f"{n},{['x', 'y', 'x z'][i % 3]}" for i, n in enumerate(names)]]
        head = "  - global_avg_pool2d\n  - dense: {units: 2, activation: sigmoid}\n"
        extra = "training: {seed: 0, task: multilabel}\n"
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    path = spec(tmp_path, f"{{images: img, {source}: t.csv}}", head, extra)
    with pytest.raises(SpecError) as caught:
        loaded(path)
    (error,) = caught.value.errors
    count, noun = (1, "target value") if source == "values" else (3, "label")
    assert error.message == f"expected {count} output units (one per {noun}); the model outputs 2"
    functions = script_functions(path)
    functions["read_images"] = _pil_images
    with pytest.raises(SystemExit) as stopped:
        functions["load_splits"](tmp_path / "img", tmp_path / "t.csv")
    assert str(stopped.value.code).split("\n") == [error.message, error.hint]


def test_an_output_folder_the_script_cannot_make_is_said_not_a_traceback(tmp_path, monkeypatch):
    """`python train.py --out /proc/x` ended in pathlib's traceback (FileNotFoundError), and so
    did a runs/ folder in a working folder that cannot hold one; said as train says it."""
    from types import SimpleNamespace

    make_images(tmp_path / "pics", {"a": 4, "b": 4})
    path = write_spec(tmp_path, "{source: {directory: pics, image_size: [8, 8]}}")
    functions = script_functions(path)
    functions["time"] = __import__("time")  # (the script's own import, left out of the namespace)
    called = []
    args = SimpleNamespace(out=Path("/proc/cnnspec-no-such/x"), force=False)
    with pytest.raises(SystemExit) as stopped:
        functions["in_run_folder"](args, "edges", lambda *a: called.append(a))
    assert str(stopped.value.code) == (
        "expected --out to be writable; cannot create /proc/cnnspec-no-such/x: No such file or directory"
    )
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "runs").write_text("a file where the runs/ folder goes")
    monkeypatch.chdir(tmp_path / "work")
    with pytest.raises(SystemExit) as stopped:
        functions["in_run_folder"](
            SimpleNamespace(out=None, force=False), "edges", lambda *a: called.append(a)
        )
    assert str(stopped.value.code).startswith("expected runs/ to be writable; cannot create runs/edges-")
    assert not called


@pytest.mark.parametrize("inside", ["nothing", "an-empty-sub-folder"])
def test_an_empty_image_folder_is_refused_with_trains_message(tmp_path, inside):
    """`python train.py --data empty/` said "expected at least one test image; the 0 image(s)
    leave none to test on", a split left empty, where train says the folder holds no images and
    how to lay it out."""
    pics = tmp_path / "pics"
    pics.mkdir()
    if inside != "nothing":
        (pics / "a").mkdir()
    path = write_spec(tmp_path, "{source: {directory: pics, image_size: [8, 8]}}")
    trained = refused(path)
    if inside == "nothing":
        assert trained.message.startswith(f"expected class sub-folders with images in {pics}; found 0")
    script = folder_refusal(path, pics)
    assert script == f"{trained.message}\n{trained.hint}"


VOID = (
    "a mask value of 255 usually marks void or ignored pixels, not a class: map it to one of the classes 0-2"
)


def test_a_void_255_beyond_a_classes_table_is_hinted_as_void_pixels(tmp_path):
    """Masks with 255 beside a classes table of 3 were hinted "add the missing classes to the
    table" (252 more), where 255 without names is hinted as the void label it usually is."""
    masks = masks_of(6, classes=3)
    masks[4][0, 0] = 255
    write_pairs(tmp_path / "d", masks)
    path = spec(tmp_path, "{images: d/images, masks: d/masks, classes: [bg, a, b]}", SEG_HEAD)
    error = refused(path)
    assert error.message.startswith("expected class indices below 3 (the classes table)")
    assert (
        error.hint == f"{VOID} in the mask files (or, if it is a class, add the missing classes to the table)"
    )
    assert _folder_script_refusal(path, tmp_path / "d").split("\n") == [error.message, error.hint]


def test_a_void_255_beyond_an_npz_files_class_names_is_hinted_as_void_pixels(tmp_path):
    """The same in an npz file whose class_names name 3 classes: no hint at all."""
    arrays = good_masks() | {"class_names": np.array(["bg", "a", "b"])}
    _set(arrays, "y_test", (1, 2, 2), 255)
    path = npz_spec(tmp_path, head=SEG_HEAD, extra="training: {seed: 0}\n", **arrays)
    error = refused(path)
    assert error.message == "expected class indices below 3 (the classes) in the test masks; found 255"
    assert error.hint == f"{VOID} in the mask files (or, if it is a class, name every class up to it)"
    with pytest.raises(SystemExit) as stopped:
        script_functions(path)["load_splits"](tmp_path / "d.npz")
    assert str(stopped.value.code).split("\n") == [error.message, error.hint]


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("seg-nan", "expected integer class indices in the y_test_seg masks; found NaN or infinity"),
        ("kind-negative", "expected class labels ≥ 0 in y_test_kind; received -1"),
        ("tags-values", "expected 0/1 multi-label targets in y_test_tags; found other values"),
        ("size-nan", "expected finite regression targets in y_train_size; found NaN"),
    ],
)
def test_a_multi_output_npz_fault_names_the_array_it_is_in(tmp_path, fault, message):
    """A fault in one output's targets of a multi-output npz said the split alone ("in the test
    masks", "in test"): of four outputs, which one's? The array (``y_test_seg``) is named, which
    says the output and the split, by train and the script alike."""
    arrays = good_four()
    FOUR_FAULTS[fault][1](arrays)
    np.savez(tmp_path / "d.npz", **arrays)
    path = tmp_path / "spec.yaml"
    path.write_text(FOUR)
    assert refused(path).message == message
    assert script_refusal(tmp_path, path, "task") == message


@pytest.mark.parametrize(("bad", "said"), [(np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "-infinity")])
def test_a_target_that_is_not_finite_is_named_with_its_column(tmp_path, bad, said):
    """NaN or infinity in regression targets was "found NaN or infinity", naming neither which
    nor where, where a NaN pixel is named to its row, column and channel. The value and its
    column (the file's; the rows are a split's) are said, by train and the script alike."""
    arrays = good_four()
    arrays["y_train_size"] = np.ones((12, 3))
    arrays["y_test_size"] = np.ones((6, 3))
    arrays["y_train_size"][4, 1] = bad
    np.savez(tmp_path / "d.npz", **arrays)
    path = tmp_path / "spec.yaml"
    path.write_text(
        FOUR.replace(
            "  - dense: {units: 1}\n    inputs: pool\n    id: size\n",
            "  - dense: {units: 3}\n    inputs: pool\n    id: size\n",
        )
    )
    message = refused(path).message
    assert message == f"expected finite regression targets in y_train_size; found {said} in column 2 of 3"
    assert script_refusal(tmp_path, path, "task") == message
