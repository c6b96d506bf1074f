"""`cnnspec evaluate`: the run's test split, the classification report, evaluation.json, and
clean refusals of models and folders it must not load."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.test_report_support import CLASSES, bare_model, flat, invoke, trained_run, write_data

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reporting")]

DOCUMENTED_KEYS = {
    "format",
    "name",
    "model",
    "run_dir",
    "data",
    "accuracy",
    "loss",
    "metrics",
    "class_names",
    "per_class",
    "macro_avg",
    "weighted_avg",
    "confusion_matrix",
    "seconds",
    "images_per_second",
    "notes",
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained_run(tmp_path_factory)


def test_evaluate_run_matches_training(run_dir, tmp_path):
    result = invoke("evaluate", run_dir, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    for word in ("precision", "recall", "F1", "support", "macro avg", "weighted avg", *CLASSES):
        assert word in flat(result)
    doc = json.loads((tmp_path / "evaluation.json").read_text())
    assert set(doc) >= DOCUMENTED_KEYS
    metrics = json.loads((run_dir / "metrics.json").read_text())
    # the same split, the same preprocessing: the numbers training reported
    assert doc["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert doc["loss"] == pytest.approx(metrics["test_loss"], rel=1e-4)
    assert doc["confusion_matrix"] == metrics["confusion_matrix"]
    assert doc["class_names"] == CLASSES and doc["data"]["images"] == 30
    assert doc["data"]["matches_run"] is True
    assert set(doc["per_class"]["red"]) == {"precision", "recall", "f1", "support"}
    with Image.open(tmp_path / "confusion_matrix.png") as image:
        assert 400 <= image.width <= 2000 and 400 <= image.height <= 2000
    assert not list(tmp_path.glob(".*"))  # atomic writes leave no temp files


def test_evaluate_json_output(run_dir, tmp_path):
    result = invoke("evaluate", run_dir / "model.keras", "--format", "json", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) >= DOCUMENTED_KEYS and set(doc["files"]) == {"evaluation", "confusion_matrix"}
    assert sum(sum(row) for row in doc["confusion_matrix"]) == 30


def test_evaluate_other_data_and_bare_model(run_dir, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    write_data(other)
    result = invoke("evaluate", run_dir, "--data", other / "colors.npz", "--out", tmp_path, "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["data"]["source"]["kind"] == "npz"
    # a model outside a run folder needs --data (or --spec); with it, it evaluates
    model = tmp_path / "copy.keras"
    shutil.copy(run_dir / "model.keras", model)
    result = invoke("evaluate", model)
    assert result.exit_code == 2 and "--data" in flat(result)
    # beside it is the evaluation of the run's model.keras (--out above): kept, unless --force
    before = (tmp_path / "evaluation.json").read_bytes()
    result = invoke("evaluate", model, "--data", other / "colors.npz")
    assert result.exit_code == 2 and (tmp_path / "evaluation.json").read_bytes() == before
    message = flat(result)
    assert "is the evaluation of model.keras, another model" in message and "--force" in message
    result = invoke("evaluate", model, "--data", other / "colors.npz", "-f", "json", "--force")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["run_dir"] is None and doc["class_names"] == CLASSES  # names from the npz
    assert (tmp_path / "evaluation.json").is_file()  # beside the model by default
    assert json.loads((tmp_path / "evaluation.json").read_text())["model"] == str(model)
    result = invoke("evaluate", model, "--data", other / "colors.npz")  # its own: replaced
    assert result.exit_code == 0, result.output
    result = invoke("visualize", model, "confusion")  # reads that evaluation
    assert result.exit_code == 0, result.output
    assert (tmp_path / "confusion_matrix.png").is_file()


def test_files_of_the_users_beside_a_model_file_are_not_replaced_without_force(run_dir, tmp_path):
    """Beside a model outside a run folder the folder is the user's: evaluate and visualize
    replaced a confusion_matrix.png, an evaluation.json or a filters picture of theirs (exit 0,
    without a word), which --out refused."""
    other = tmp_path / "other"
    other.mkdir()
    write_data(other)
    model = tmp_path / "m.keras"
    shutil.copy(run_dir / "model.keras", model)
    mine = {name: f"mine {name}".encode() for name in ("confusion_matrix.png", "filters_conv2d_1.png")}
    for name, text in mine.items():
        (tmp_path / name).write_bytes(text)
    data = ("--data", other / "colors.npz")
    for command in (("evaluate", model, *data), ("visualize", model, "filters")):
        result = invoke(*command)
        assert result.exit_code == 2, result.output
        assert "carries no mark of cnnspec's" in flat(result) and "--force" in flat(result)
    assert all((tmp_path / name).read_bytes() == text for name, text in mine.items())
    for command in (("evaluate", model, *data), ("visualize", model, "filters")):
        assert invoke(*command, "--force").exit_code == 0
        assert invoke(*command).exit_code == 0  # cnnspec's own now: replaced as before
    assert not any((tmp_path / name).read_bytes() == text for name, text in mine.items())


def test_a_file_of_test_arrays_alone_is_evaluated(run_dir, tmp_path):
    """`--data test.npz` with x_test and y_test only: evaluate and visualize score its test
    arrays, as they score those of a file that also holds training arrays; training, which
    needs the training arrays, says what the file lacks and what reads it."""
    full = np.load(write_data(tmp_path))
    alone = tmp_path / "test.npz"
    np.savez(alone, x_test=full["x_test"], y_test=full["y_test"], class_names=full["class_names"])
    docs = []
    for source, out in ((tmp_path / "colors.npz", "full"), (alone, "alone")):
        result = invoke("evaluate", run_dir, "--data", source, "--out", tmp_path / out, "-f", "json")
        assert result.exit_code == 0, result.output
        docs.append(json.loads(result.stdout))
    for key in ("accuracy", "loss", "confusion_matrix", "class_names"):
        assert docs[0][key] == docs[1][key], key
    assert docs[1]["data"]["images"] == 30
    result = invoke("visualize", run_dir, "samples", "--data", alone, "-o", tmp_path / "samples.png")
    assert result.exit_code == 0, result.output
    spec = tmp_path / "spec.yaml"
    text = (run_dir / "spec.yaml").read_text(encoding="utf-8")
    spec.write_text(text.replace("colors.npz", str(alone)), encoding="utf-8")
    result = invoke("train", spec, "--out", tmp_path / "runs")
    assert result.exit_code != 0 and "missing x_train, y_train" in flat(result)
    assert "evaluate, visualize and calibrate --data read a file of x_test and y_test alone" in flat(result)


def test_a_small_file_of_the_wrong_data_is_told_its_own_mistake(run_dir, tmp_path):
    """Ten images with another shape or other labels were told "expected a validation_split
    that leaves at least one training image per class": the split of training images evaluate
    never uses hid the file's real mistake. Its shape is now said for the trained model."""
    full = np.load(write_data(tmp_path))
    x, y = full["x_test"][:10], full["y_test"][:10]
    np.savez(tmp_path / "shape.npz", x_train=x[:, :4], y_train=y, x_test=x[:, :4], y_test=y)
    np.savez(tmp_path / "labels.npz", x_train=x, y_train=y + 20, x_test=x, y_test=y + 20)
    result = invoke("evaluate", run_dir, "--data", tmp_path / "shape.npz", "--out", tmp_path / "a")
    text = flat(result)
    assert result.exit_code == 2 and "the npz images have shape [4, 8, 3]" in text, text
    assert "pass --data images of 8×8×3" in text and "input.shape" not in text
    result = invoke("evaluate", run_dir, "--data", tmp_path / "labels.npz", "--out", tmp_path / "b")
    text = flat(result)
    assert result.exit_code == 2 and "classes" in text and "validation_split" not in text, text


def test_an_empty_path_is_refused_not_read_as_the_current_folder(run_dir, tmp_path, monkeypatch):
    """`--data ''` or `predict RUN ''` (an unset shell variable) walked the whole working
    folder as a dataset or as images to predict."""
    monkeypatch.chdir(tmp_path)
    for args in (("evaluate", run_dir, "--data", ""), ("calibrate", run_dir, "--data", " ")):
        result = invoke(*args)
        assert result.exit_code == 2 and "expected --data SOURCE; received an empty string" in flat(result)
    result = invoke("predict", run_dir, "")
    assert result.exit_code == 2
    assert "expected an image file or folder; received an empty path" in flat(result)
    assert list(tmp_path.iterdir()) == []


def test_hostile_targets(run_dir, tmp_path):
    cases = {}
    cases["missing"] = tmp_path / "nope"
    (tmp_path / "empty_dir").mkdir()
    cases["not a run"] = tmp_path / "empty_dir"
    cases["junk"] = tmp_path / "junk.keras"
    cases["junk"].write_bytes(b"this is not a zip file at all")
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes((run_dir / "model.keras").read_bytes()[:2000])
    cases["truncated"] = truncated
    no_config = tmp_path / "noconfig.keras"
    with zipfile.ZipFile(no_config, "w") as archive:
        archive.writestr("readme.txt", "hello")
    cases["no config"] = no_config
    bad_class = tmp_path / "badclass.keras"
    with zipfile.ZipFile(bad_class, "w") as archive:
        archive.writestr("config.json", json.dumps({"class_name": "Evil", "config": {}, "module": "os"}))
        archive.writestr("metadata.json", "{}")
    cases["unknown class"] = bad_class
    h5 = tmp_path / "model.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    cases["h5"] = h5
    disguised = tmp_path / "disguised.keras"
    disguised.write_bytes(h5.read_bytes())
    cases["h5 named .keras"] = disguised
    cases["lambda"] = bare_model(tmp_path, lam=True)
    text = tmp_path / "model.txt"
    text.write_text("hello")
    cases["other suffix"] = text
    expected = {
        "missing": "does not exist",
        "not a run": "not one",
        "junk": "not one",
        "truncated": "not one",
        "no config": "config.json",
        "unknown class": "cannot load",
        "h5": "HDF5",
        "h5 named .keras": "HDF5",
        "lambda": "Lambda",
        "other suffix": ".keras",
    }
    for name, path in cases.items():
        result = invoke("evaluate", path, "--data", "digits")
        assert result.exit_code == 2, (name, result.output)
        assert expected[name] in flat(result), (name, result.output)
        assert "Traceback" not in flat(result) and "internal error" not in flat(result)


def test_bad_data_option(run_dir):
    result = invoke("evaluate", run_dir, "--data", "digitz")
    assert result.exit_code == 2 and "did you mean `digits`" in flat(result)
    result = invoke("evaluate", run_dir, "--data", "missing.npz")
    assert result.exit_code == 2 and "does not exist" in flat(result)
    # digits are 8×8×1; the model takes 8×8×3: a clear shape error, not a Keras traceback
    result = invoke("evaluate", run_dir, "--data", "digits")
    assert result.exit_code in (1, 2) and "shape" in flat(result)
    assert "Traceback" not in flat(result)


def test_out_is_a_folder_not_a_file_name(run_dir, tmp_path):
    result = invoke("evaluate", run_dir, "--out", tmp_path / "result.json")
    assert result.exit_code == 2 and "expected --out to name a folder" in flat(result)
    assert not (tmp_path / "result.json").exists()


def test_unfinished_run_is_refused(run_dir, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(run_dir / "lock.json", partial / "lock.json")
    result = invoke("evaluate", partial)
    assert result.exit_code == 2 and "--resume" in flat(result)


def test_probabilities_from_logits():
    from cnnspec.reporting.model_graph import OutputKind
    from cnnspec.reporting.predictions import probabilities

    logits = np.array([[2.0, 0.0, -1.0]])
    probs = probabilities(logits, OutputKind(from_logits=True))
    assert probs.sum() == pytest.approx(1.0) and probs.argmax() == 0
    binary = probabilities(np.array([[0.8]]), OutputKind(binary=True))
    assert binary.tolist() == [[pytest.approx(0.2), 0.8]]


def test_evaluating_into_a_run_another_process_holds_is_refused(run_dir, tmp_path):
    import os

    from cnnspec.training.runlock import acquire

    before = sorted(p.name for p in run_dir.iterdir())
    with acquire(run_dir, ["cnnspec", "train", "--resume", str(run_dir)]):
        busy = invoke("evaluate", run_dir)
        elsewhere = invoke("evaluate", run_dir, "--out", tmp_path)  # reading the run is fine
    assert busy.exit_code == 2 and f"in use by process {os.getpid()}" in flat(busy)
    assert "Traceback" not in busy.output
    assert sorted(p.name for p in run_dir.iterdir()) == before  # nothing written into the run
    assert elsewhere.exit_code == 0, elsewhere.output
    assert (tmp_path / "evaluation.json").is_file()


def _npz(path, y, names=None):
    """An .npz of 8×8 colour images with labels ``y`` (and ``class_names`` when given)."""
    x = np.random.default_rng(0).integers(0, 256, (len(y), 8, 8, 3), dtype="uint8")
    arrays = {"x_train": x, "y_train": np.asarray(y), "x_test": x, "y_test": np.asarray(y)}
    np.savez(path, **arrays, **({} if names is None else {"class_names": np.array(names)}))
    return path


def test_data_whose_classes_are_not_the_models_is_refused(run_dir, tmp_path):
    labels = [0, 1, 2] * 4
    many = [f"kind{i}" for i in range(12)]
    cases = {
        "other names": (_npz(tmp_path / "animals.npz", labels, ["cat", "dog", "bird"]), "'cat'"),
        "more classes": (_npz(tmp_path / "many.npz", list(range(12)) * 4, many), "at most 3 classes"),
        "more labels": (_npz(tmp_path / "labels.npz", [0, 1, 2, 3] * 3), "at most 3 classes"),
    }
    out = tmp_path / "out"
    for name, (source, words) in cases.items():
        result = invoke("evaluate", run_dir, "--data", source, "--out", out)
        assert result.exit_code == 2, (name, result.output)
        text = flat(result)
        assert words in text and "'red', 'green', 'blue'" in text, (name, text)  # both sets named
        assert "hint:" in text and "--spec" in text and "Traceback" not in text, (name, text)
        assert not (out / "evaluation.json").exists() and not (out / "confusion_matrix.png").exists()
    text = flat(invoke("evaluate", run_dir, "--data", cases["more classes"][0], "--out", out))
    assert "'kind7', … 4 more" in text and "'kind8'" not in text  # long lists are clipped


def test_data_with_the_models_classes_or_no_names_is_accepted(run_dir, tmp_path):
    unnamed = _npz(tmp_path / "unnamed.npz", [0, 1, 2] * 4)
    result = invoke("evaluate", run_dir, "--data", unnamed, "--out", tmp_path, "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["class_names"] == CLASSES  # the labels are the run's classes
    same = _npz(tmp_path / "same.npz", [0, 1, 2] * 4, CLASSES)
    result = invoke("evaluate", run_dir, "--data", same, "--out", tmp_path, "-f", "json")
    assert result.exit_code == 0, result.output
    # the run's classes in another order: renumbered by name, with a note, and scored as the same
    # images labelled in the run's order are
    labels = [0, 0, 1, 2] * 3
    order = _npz(tmp_path / "order.npz", labels, CLASSES[::-1])
    result = invoke("evaluate", run_dir, "--data", order, "--out", tmp_path / "a", "-f", "json")
    assert result.exit_code == 0, result.output
    assert "note: --data names its classes in another order than the run" in flat(result)
    run_order = _npz(tmp_path / "run_order.npz", [2 - label for label in labels], CLASSES)
    again = invoke("evaluate", run_dir, "--data", run_order, "--out", tmp_path / "b", "-f", "json")
    apart = ("data", "files", "seconds", "images_per_second", "notes")  # (where and how fast)
    first, second = json.loads(result.stdout), json.loads(again.stdout)
    assert {k: v for k, v in first.items() if k not in apart} == {
        k: v for k, v in second.items() if k not in apart
    }
    assert first["per_class"] and first["confusion_matrix"]  # (compared above)


def test_digits_model_refuses_the_shapes_classes():
    from types import SimpleNamespace

    from cnnspec.errors import UsageError
    from cnnspec.reporting.class_match import check_source_classes

    digits = [str(i) for i in range(10)]
    config = SimpleNamespace(
        binary=False, output_units=10, data=SimpleNamespace(kind="shapes", streamed=False)
    )
    with pytest.raises(UsageError) as refused:
        check_source_classes(["circle", "square", "triangle"], digits, config)
    assert "'0', '1', '2', '3', '4', '5', '6', '7', … 2 more" in str(refused.value)
    assert "'circle', 'square', 'triangle'" in str(refused.value) and "--spec" in refused.value.hint
    check_source_classes(digits, digits, config)  # the same classes
    check_source_classes(["0", "1", "2"], ["zero", "one", "two"], config)  # labels without names
    config.binary, config.output_units = True, 1
    with pytest.raises(UsageError, match="at most 2 classes"):
        check_source_classes(["0", "1", "2"], [], config)


def test_data_shapes_keeps_the_runs_shapes_target_and_settings():
    """`evaluate RUN --data shapes` of a run that learnt shape areas scored it on counts (the
    regression task's default target) with the generator's defaults, and a multi-output run
    failed; the run's own shapes settings are kept. Other runs get the plain source."""
    from cnnspec.reporting.data_option import parse_source

    settings = {"images": 60, "image_size": [16, 16], "target": "area"}
    assert parse_source("shapes", {"shapes": settings}) == {"shapes": settings}
    several = {"shapes": {"target": {"mask": "mask", "present": "multilabel"}}}
    assert parse_source("shapes", several) == several
    assert parse_source("shapes", {"npz": "x.npz"}) == "shapes"
    assert parse_source("shapes", None) == "shapes"
    assert parse_source("digits", {"shapes": settings}) == "digits"


def test_a_bare_multilabel_model_is_evaluated_as_one(tmp_path):
    """A model outside a run folder with several sigmoid units is a multi-label head: --data
    shapes gives it shapes' multi-label targets and the multi-label figures (it was scored as a
    classifier on the class target)."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="sigmoid"),
        ]
    )
    model.save(tmp_path / "copy.keras")
    result = invoke("evaluate", tmp_path / "copy.keras", "--data", "shapes", "-f", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["task"] == "multilabel" and set(doc["per_label"]) == {"circle", "square", "triangle"}
