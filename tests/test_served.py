"""`cnnspec predict FILE.onnx|FILE.tflite IMAGE…` and `cnnspec evaluate FILE --data SOURCE`: an
exported file served by itself, with the record `cnnspec export` wrote beside it (``FILE.json``),
away from its run folder and model. The record says how to convert, scale and read
(runtimes.read_served; reporting/served.py's stand-in spec for evaluate): the answers and
figures are those of the run's (every runtime answers alike), no TensorFlow is imported, and
what needs the model (`--spec`, `--ensemble`, another runtime) is refused before anything is
read; a model of several outputs is answered output by output. Before, predict and evaluate took
a run folder or a `.keras` file only: a deployed file could not be asked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import cold_commands
from tests.test_report_support import colour_images, flat, invoke, train_without_page


def _image(folder: Path, index: int = 0) -> Path:
    from PIL import Image

    x, _ = colour_images(4, 7)
    path = folder / f"im{index}.png"
    Image.fromarray(x[index]).save(path)
    return path


def _fake_export(folder: Path, **changes: object) -> Path:
    """A made-up ``model.onnx`` and a record that passes every check that needs no model (its
    file's and serving digests), with ``changes`` to the record before the digest."""
    from cnnspec.export.runtimes import RECORD_FORMAT, serving_digest
    from cnnspec.fileio import sha256_file

    export = folder / "model.onnx"
    export.write_bytes(b"not really onnx")
    data: dict[str, object] = {
        "format": RECORD_FORMAT,
        "file": export.name,
        "file_sha256": sha256_file(export),
        "model": "model.keras",
        "model_sha256": "0" * 64,
        "verified": True,
        "input": {"shape": [8, 8, 3], "inputs": 1, "color_mode": "rgb", "rescale_integer": 1 / 255},
        "output": {"binary": False, "from_logits": False, "classes": ["a", "b", "c"]},
        **changes,
    }
    data["serving_sha256"] = serving_digest(data)
    (folder / "model.onnx.json").write_text(json.dumps(data), encoding="utf-8")
    return export


def test_what_needs_the_model_is_refused_before_the_file_is_read(tmp_path):
    image = _image(tmp_path)
    export = _fake_export(tmp_path)
    cases = [
        (["-r", "tflite"], "expected --runtime onnx (or auto) for"),
        (["-r", "keras"], "expected --runtime onnx (or auto) for"),
        (["--spec", tmp_path / "spec.yaml"], "expected a run folder or a .keras model with --spec"),
        (["--ensemble", tmp_path / "other"], "expected a run folder or a .keras model with --ensemble"),
    ]
    for extra, said in cases:
        result = invoke("predict", export, image, *extra)
        assert result.exit_code == 2, (extra, result.output)
        assert said in flat(result), (extra, result.output)
    # a mean over mirror images takes no temperature after the mean
    _fake_export(tmp_path, tta=["hflip"])
    result = invoke("predict", export, image, "--temperature", "2")
    assert result.exit_code == 2 and "expected --temperature auto for" in flat(result), result.output


def test_a_served_file_of_several_outputs_is_read_as_its_model(tmp_path):
    """A file of a model with several outputs was refused ("predict and evaluate serve an
    exported file of one output only"): its record now becomes a stand-in spec with a head per
    output, in the record's order, each with its task, loss, weight and names, as evaluate reads
    the run."""
    from cnnspec.reporting.served import served_record, served_run

    outputs = [
        {"name": "mask", "task": "segmentation", "shape": [8, 8, 2], "from_logits": False,
         "loss": "sparse_categorical_crossentropy", "names": ["bg", "fg"], "file_output": "output_0"},
        {"name": "count", "task": "regression", "shape": [1], "from_logits": False, "loss": "mae",
         "loss_weight": 0.5, "names": ["count"], "file_output": "output_1"},
    ]  # fmt: skip
    export = _fake_export(tmp_path, outputs=outputs)
    record, scale, notes = served_record(export, "auto", None, None, None)
    assert (record.path, scale, notes) == (export, 1.0, [])
    run = served_run(record)
    tasks = [(t.name, t.task, t.shape, t.loss.name, t.loss_weight) for t in run.config.tasks]
    assert tasks == [
        ("mask", "segmentation", (8, 8, 2), "sparse_categorical_crossentropy", 1.0),
        ("count", "regression", (1,), "mae", 0.5),
    ]
    assert (run.output_names("mask"), run.output_names("count")) == (["bg", "fg"], ["count"])


def test_served_ids_are_unique_where_names_differ_only_in_punctuation():
    """Two outputs whose names differ only in punctuation had one head id in the stand-in spec
    (``mask-a`` and ``mask_a``: ``mask_a`` twice). A name that is an id keeps it, whatever its
    place; the others take a suffix; ``input`` (the model input's) and letters outside ASCII are
    no id; the same names give the same ids."""
    from cnnspec.reporting.served import served_ids

    assert served_ids(["mask-a", "mask_a"]) == ["mask_a_2", "mask_a"]
    assert served_ids(["a_b", "a.b", "a-b"]) == ["a_b", "a_b_2", "a_b_3"]
    assert served_ids(["a.b", "a_b_2", "a-b"]) == ["a_b", "a_b_2", "a_b_3"]
    assert served_ids(["input", "1x", "mäsk", ""]) == ["input_2", "output_1x", "m_sk", "output"]
    assert served_ids(["x", "x"]) == ["x", "x_2"]
    assert served_ids(["mask-a", "mask_a"]) == served_ids(["mask-a", "mask_a"])


def test_a_served_file_named_with_punctuation_has_a_stand_in_spec():
    """The stand-in spec's name is an identifier whatever the file is called: ``my-model.onnx``,
    ``1model.onnx`` and ``modèle.onnx`` were refused ("name: expected an identifier …")."""
    from cnnspec.analysis.passes import compile_text
    from cnnspec.export.runtimes import ExportRecord
    from cnnspec.reporting.served import stand_in_text

    data = {
        "input": {"shape": [8, 8, 3], "rescale_integer": 1 / 255},
        "output": {"binary": False, "from_logits": True, "classes": ["a", "b", "c"]},
    }
    for stem, name in (("my-model", "my_model"), ("1model", "_1model"), ("modèle", "mod_le")):
        assert compile_text(stand_in_text(ExportRecord(Path(f"{stem}.onnx"), "onnx", data))).name == name


def test_a_served_file_of_outputs_named_alike_is_read_as_its_model(tmp_path):
    """The record's outputs ``mask-a``, ``mask_a`` (maps) and ``n.x``, ``n_x``, ``n_x_flat``
    (vectors: their flatten layers' ids are not the heads') each get a head of their own, in the
    record's order, each with its own task and names."""
    from cnnspec.reporting.served import served_record, served_run

    def entry(name: str, task: str, shape: list[int], loss: str, names: list[str], at: int) -> dict:
        return {"name": name, "task": task, "shape": shape, "from_logits": False, "loss": loss,
                "names": names, "file_output": f"output_{at}"}  # fmt: skip

    outputs = [
        entry("mask-a", "segmentation", [8, 8, 2], "sparse_categorical_crossentropy", ["bg", "fg"], 0),
        entry("mask_a", "segmentation", [8, 8, 3], "sparse_categorical_crossentropy", ["p", "q", "r"], 1),
        entry("n.x", "regression", [1], "mae", ["count"], 2),
        entry("n_x", "regression", [2], "mse", ["w", "h"], 3),
        entry("n_x_flat", "regression", [1], "mae", ["size"], 4),
    ]
    record, _, _ = served_record(_fake_export(tmp_path, outputs=outputs), "auto", None, None, None)
    run = served_run(record)
    tasks = [(t.name, t.task, t.shape, t.loss.name) for t in run.config.tasks]
    assert tasks == [
        ("mask_a_2", "segmentation", (8, 8, 2), "sparse_categorical_crossentropy"),
        ("mask_a", "segmentation", (8, 8, 3), "sparse_categorical_crossentropy"),
        ("n_x_2", "regression", (1,), "mae"),
        ("n_x", "regression", (2,), "mse"),
        ("n_x_flat", "regression", (1,), "mae"),
    ]
    named = {ident: run.output_names(ident) for ident in ("mask_a_2", "mask_a", "n_x_2", "n_x", "n_x_flat")}
    assert named == {
        "mask_a_2": ["bg", "fg"],
        "mask_a": ["p", "q", "r"],
        "n_x_2": ["count"],
        "n_x": ["w", "h"],
        "n_x_flat": ["size"],
    }


def test_a_file_without_its_record_or_changed_after_it_is_refused(tmp_path):
    image = _image(tmp_path)
    export = _fake_export(tmp_path)
    export.write_bytes(b"another file")
    result = invoke("predict", export, image)
    assert result.exit_code == 2 and "the file changed after it was verified" in flat(result), result.output
    (tmp_path / "model.onnx.json").unlink()
    result = invoke("predict", export, image)
    assert result.exit_code == 2 and "it has no verification record (model.onnx.json)" in flat(result)
    result = invoke("predict", tmp_path / "none.tflite", image)
    assert result.exit_code == 2 and "there is none" in flat(result), result.output


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from tests.test_report_support import trained_run

    return trained_run(tmp_path_factory)


@pytest.fixture(scope="module")
def onnx_file(run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run exported to ONNX with ``--temperature 1`` (its record beside it), once for the
    module: the tests below copy it, with its record, into folders of their own."""
    made = tmp_path_factory.mktemp("served") / "made" / "model.onnx"
    result = invoke("export", run, "-f", "onnx", "-o", made, "--temperature", "1")
    assert result.exit_code == 0, result.output
    return made


def _alone(made: Path, folder: Path) -> Path:
    """The export ``made`` copied with its record, and nothing else, into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in (made, made.with_name(made.name + ".json")):
        shutil.copy2(path, folder / path.name)
    return folder / made.name


@pytest.fixture(scope="module")
def cold_served(
    run: Path, onnx_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[int, str, str, list[str]]]:
    """`predict` and `evaluate --data` of the ONNX file alone, one after another in one fresh
    Python (conftest's cold_commands: one start-up for both): each one's exit status, output and
    which of TensorFlow and Keras were imported once it ended (never unloaded, so evaluate's
    include predict's)."""
    folder = tmp_path_factory.mktemp("cold")
    served = _alone(onnx_file, folder / "alone")
    lines = [
        ["predict", str(served), str(_image(folder)), "-f", "json"],
        ["evaluate", str(served), "--data", str(run.parent / "colors.npz"), "-o", str(folder / "e")],
    ]
    return dict(zip(("predict", "evaluate"), cold_commands(lines, ("tensorflow", "keras")), strict=True))


def _top(result) -> list[list[float]]:
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    return [[entry["probability"] for entry in p["top"]] for p in document["predictions"]]


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_a_served_file_answers_as_its_run_does(run, onnx_file, cold_served, tmp_path):
    """An ONNX and a TFLite export, each copied alone with its record into a folder of its
    own: predict answers as `predict RUN --runtime keras`, with the run's class names; a
    temperature folded in at export answers scaled (`auto`), and `--temperature 1` gives the
    model's own again; a `--tta hflip` file answers as `predict RUN --tta hflip`."""
    images = [_image(tmp_path, i) for i in range(3)]
    own = _top(invoke("predict", run, *images, "-r", "keras", "--temperature", "1", "-f", "json", "-k", "3"))
    scaled = _top(
        invoke("predict", run, *images, "-r", "keras", "--temperature", "2", "-f", "json", "-k", "3")
    )
    mirrored = _top(
        invoke("predict", run, *images, "-r", "keras", "--temperature", "1", "--tta", "hflip", "-f", "json")
    )
    for name, extra, expected in (
        ("model.onnx", ["--temperature", "1"], own),
        ("model.tflite", ["--temperature", "2"], scaled),
        ("tta.onnx", ["--temperature", "1", "--tta", "hflip"], mirrored),
    ):
        made = tmp_path / "made" / name
        if name == "model.onnx":  # (exported so once for the module)
            made = onnx_file
        else:
            result = invoke("export", run, "-f", Path(name).suffix[1:], "-o", made, *extra)
            assert result.exit_code == 0, result.output
        alone = _alone(made, tmp_path / name.replace(".", "_"))
        result = invoke("predict", alone, *images, "-f", "json", "-k", "3")
        np.testing.assert_allclose(_top(result), expected, atol=1e-4)
        document = json.loads(result.stdout)
        assert document["runtime"] == Path(name).suffix[1:] and document["model"] == str(alone)
        assert document["classes"] == ["red", "green", "blue"]
        # the views the file mirrors itself are said (a review found `"tta": []` for such a file)
        assert document["tta"] == (["hflip"] if name == "tta.onnx" else [])
    # a mean's own temperature (the one it was exported with) is its answer; another is refused
    mean = tmp_path / "tta_onnx" / "tta.onnx"
    np.testing.assert_allclose(
        _top(invoke("predict", mean, *images, "--temperature", "1", "-f", "json")), mirrored, atol=1e-4
    )
    result = invoke("predict", mean, *images, "--temperature", "2")
    assert result.exit_code == 2 and "(temperature 1), which no temperature after the mean gives" in flat(
        result
    )
    # the folded temperature taken back out: the model's own probabilities
    result = invoke(
        "predict", tmp_path / "model_tflite" / "model.tflite", *images, "--temperature", "1", "-f", "json"
    )
    np.testing.assert_allclose(_top(result), own, atol=1e-4)
    # the ONNX file alone, predicted in a fresh Python, imports neither TensorFlow nor Keras
    code, _, stderr, heavy = cold_served["predict"]
    assert code == 0, stderr
    assert heavy == [], heavy


def _evaluated(*args: object) -> dict:
    result = invoke("evaluate", *args, "-f", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{") :])


def _served_copy(run: Path, folder: Path, name: str, *extra: object) -> Path:
    """``run`` exported to ``name`` and copied alone, with its record, into ``folder``."""
    made = folder / "made" / name
    result = invoke("export", run, "-f", Path(name).suffix[1:], "-o", made, *extra)
    assert result.exit_code == 0, result.output
    return _alone(made, folder / "alone")


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_evaluate_scores_a_served_classifier_as_its_run(run, onnx_file, cold_served, tmp_path):
    """`evaluate FILE --data SOURCE`: the run's figures on the same data (accuracy, per-class
    report, calibration, the loss its record says it trained with), through the file alone,
    TensorFlow-free. Without --data it is refused: a file has no data of its own."""
    data = run.parent / "colors.npz"
    served = _alone(onnx_file, tmp_path / "alone")  # (exported with --temperature 1)
    result = invoke("evaluate", served)
    assert result.exit_code == 2 and "expected --data SOURCE with the exported file" in flat(result)
    own = _evaluated(run, "--data", data, "-r", "keras", "--temperature", "1", "-o", tmp_path / "keras")
    alone = _evaluated(served, "--data", data, "-o", tmp_path / "file")
    assert alone["runtime"] == "onnx" and alone["model"] == str(served)
    assert alone["accuracy"] == own["accuracy"] and alone["data"]["images"] == own["data"]["images"]
    assert alone["calibration"]["ece"] == pytest.approx(own["calibration"]["ece"], abs=1e-4)
    assert alone["confusion_matrix"] == own["confusion_matrix"]
    assert alone["class_names"] == own["class_names"] == ["red", "green", "blue"]
    # the record keeps the loss it trained with: the file's loss is the run's
    assert alone["loss"] == pytest.approx(own["loss"], abs=1e-5)
    assert not any("keeps no training loss" in note for note in alone["notes"])
    # TensorFlow-free: the file alone, evaluated on the same data in a fresh Python
    code, _, stderr, heavy = cold_served["evaluate"]
    assert code == 0, stderr
    assert heavy == [], heavy


SEGMENTATION = """\
cnnspec: 1
name: served_masks
input: {shape: [16, 16, 3]}
model:
  - conv2d: {filters: 6, kernel_size: 3, padding: same, activation: relu}
  - conv2d: {filters: 3, kernel_size: 1, activation: softmax}
    id: mask
data: {source: {npz: masks.npz}, validation_split: 0.25}
training: {epochs: 2, batch_size: 8, seed: 3, loss: {categorical_focal_crossentropy: {alpha: 0.5}}}
"""


@pytest.mark.slow
def test_evaluate_and_predict_serve_a_segmentation_file_as_its_run(tmp_path):
    """A segmentation model's TFLite file alone: evaluate's mean IoU, pixel accuracy and loss
    (a focal loss's settings kept in the record), and predict's masks, are the run's."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (40, 16, 16, 3), dtype="uint8")
    masks = (x[..., 0] > 128).astype("int64") + (x[..., 1] > 200)
    np.savez(tmp_path / "masks.npz", x_train=x[:30], y_train=masks[:30], x_test=x[30:], y_test=masks[30:])
    (tmp_path / "spec.yaml").write_text(SEGMENTATION, encoding="utf-8")
    train_without_page(tmp_path / "spec.yaml", tmp_path / "run")
    served = _served_copy(tmp_path / "run", tmp_path, "model.tflite")
    data = tmp_path / "masks.npz"
    own = _evaluated(tmp_path / "run", "--data", data, "-o", tmp_path / "keras")
    alone = _evaluated(served, "--data", data, "-o", tmp_path / "file")
    assert alone["task"] == own["task"] == "segmentation"
    for key in ("test_mean_iou", "test_pixel_accuracy"):
        assert alone[key] == pytest.approx(own[key], abs=1e-6), key
    assert alone["confusion_matrix"] == own["confusion_matrix"] and alone["output"] == "mask"
    # the loss from the file's outputs is Keras' (task_loss); what Keras alone computes (the
    # spec's metric objects) is sent to the run folder: the file has no Keras model
    # (with the focal loss's alpha the record keeps: Keras' default 0.25 gave half the loss)
    assert alone["loss"] == pytest.approx(own["loss"], rel=1e-5)
    assert any("evaluate the run folder with --runtime keras for them" in n for n in alone["notes"])
    assert not any("with its default settings" in n for n in alone["notes"])
    image = tmp_path / "one.png"
    from PIL import Image

    Image.fromarray(x[31]).save(image)
    for target, out in ((tmp_path / "run", "m_run"), (served, "m_file")):
        result = invoke("predict", target, image, "-o", tmp_path / out, "-f", "json")
        assert result.exit_code == 0, result.output
    ours = sorted((tmp_path / "m_run").rglob("*.png"))
    theirs = sorted((tmp_path / "m_file").rglob("*.png"))
    assert len(ours) == len(theirs) == 1
    assert np.array_equal(np.asarray(Image.open(ours[0])), np.asarray(Image.open(theirs[0])))


def test_a_classifiers_record_keeps_the_loss_it_trained_with():
    """The record's ``output.loss`` is ``training.loss`` as a spec writes it (settings at their
    defaults left out), and the stand-in spec of a served file trains, so scores, with it; a
    record written before it was kept gets crossentropy."""
    from cnnspec.analysis.settings_types import LossConfig
    from cnnspec.export.serving_record import _loss_setting
    from cnnspec.reporting.served import recorded_loss

    cases = [
        (LossConfig("sparse_categorical_crossentropy"), "sparse_categorical_crossentropy"),
        (
            LossConfig("categorical_crossentropy", label_smoothing=0.1),
            {"categorical_crossentropy": {"label_smoothing": 0.1}},
        ),
        (LossConfig("categorical_focal_crossentropy"), "categorical_focal_crossentropy"),
        (
            LossConfig("categorical_focal_crossentropy", gamma=3.0),
            {"categorical_focal_crossentropy": {"gamma": 3.0, "alpha": 0.25}},
        ),
        (
            LossConfig("binary_focal_crossentropy", alpha=0.4, apply_class_balancing=True),
            {"binary_focal_crossentropy": {"gamma": 2.0, "alpha": 0.4, "apply_class_balancing": True}},
        ),
    ]
    for loss, written in cases:
        assert _loss_setting(loss) == written
        name, settings = recorded_loss({"loss": written}, "sparse_categorical_crossentropy")
        assert name == loss.name and settings == (written[name] if isinstance(written, dict) else {})
    assert recorded_loss({}, "binary_crossentropy") == ("binary_crossentropy", {})
    assert recorded_loss({"loss": {"mse": {}}}, "binary_crossentropy") == ("binary_crossentropy", {})
    # the stand-in spec of such a record trains (so scores) with it
    from cnnspec.analysis.passes import compile_text
    from cnnspec.analysis.settings import training_config
    from cnnspec.export.runtimes import ExportRecord
    from cnnspec.reporting.served import stand_in_text

    data = {
        "input": {"shape": [8, 8, 3], "rescale_integer": 1 / 255, "rescale_by_depth": True},
        "output": {
            "binary": False,
            "from_logits": True,
            "classes": ["a", "b", "c"],
            "loss": {"categorical_focal_crossentropy": {"gamma": 3.0, "alpha": 0.5}},
        },
    }
    config = training_config(compile_text(stand_in_text(ExportRecord(Path("m.onnx"), "onnx", data))))
    assert (config.loss.name, config.loss.gamma, config.loss.alpha) == (
        "categorical_focal_crossentropy",
        3.0,
        0.5,
    )
    assert config.loss.from_logits and config.tasks[0].units == 3


def _onnx_export(folder: Path) -> Path:
    """:func:`_fake_export` with a real ONNX model (written with onnx's helper, no TensorFlow):
    the mean of each channel, as the 3 classes' probabilities through a softmax."""
    import onnx
    from onnx import TensorProto, helper

    from cnnspec.export.runtimes import serving_digest
    from cnnspec.fileio import sha256_file

    export = _fake_export(folder)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["x"], ["pooled"], axes=[1, 2], keepdims=0),
            helper.make_node("Softmax", ["pooled"], ["y"], axis=-1),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8, 8, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, export)
    record_file = folder / "model.onnx.json"
    data = json.loads(record_file.read_text(encoding="utf-8"))
    data["file_sha256"] = sha256_file(export)
    data["serving_sha256"] = serving_digest(data)
    record_file.write_text(json.dumps(data), encoding="utf-8")
    return export


def test_a_bad_image_of_data_for_a_served_file_is_a_bad_input_file(tmp_path):
    """An unreadable image in `evaluate FILE --data FOLDER` was a spec error (exit 1) located at
    `<--data>` whose hint said to set data.on_bad_file, which a file served alone has no spec
    for: it is a bad input file now (exit 2), with a hint the user can act on."""
    export = _onnx_export(tmp_path)
    folder, bad, _ = _bad_folder(tmp_path, "header")
    result = invoke("evaluate", export, "--data", folder, "-o", tmp_path / "e")
    assert result.exit_code == 2, result.output
    assert flat(result) == " ".join(
        f"error: expected every image file to be readable; 1 bad image file(s) of 4: {bad}: not a "
        f"readable image (cannot identify image file '{bad}') hint: remove or replace these files, or "
        "move them out of the --data folder: every image file --data lists is read (a run "
        "whose spec sets data.on_bad_file: skip leaves them out)".split()
    )
    assert not (tmp_path / "e").exists()


def _bad_folder(tmp_path: Path, kind: str, classes: str = "abc") -> tuple[Path, Path, str]:
    """``dd/{a,b,c}/`` (or ``classes``' folders, space-separated) of good images and one that
    passes the header check and fails to decode (``kind``: a PNG whose pixel data is no zlib
    stream, or a JPEG cut short; ``header``: a PNG signature and nothing after it, which the
    header check refuses), and Pillow's reason for it."""
    from tests.test_script_data_audit4 import truncated_jpeg
    from tests.test_stream import png_that_verifies_but_does_not_decode

    names = classes.split() if " " in classes else list(classes)
    for name in names:
        (tmp_path / "dd" / name).mkdir(parents=True)
        _image(tmp_path / "dd" / name)
    if kind == "header":
        bad = tmp_path / "dd" / names[0] / "z.png"
        bad.write_bytes(b"\x89PNG\r\n\x1a\nxx")
        return tmp_path / "dd", bad, f"cannot identify image file '{bad}'"
    if kind == "png":
        bad = tmp_path / "dd" / names[0] / "z.png"
        png_that_verifies_but_does_not_decode(bad)
        return tmp_path / "dd", bad, "broken data stream when reading image file"
    bad = tmp_path / "dd" / names[0] / "z.jpg"
    truncated_jpeg(bad)
    return tmp_path / "dd", bad, "image file is truncated (1 bytes not processed)"


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_an_image_of_data_that_fails_to_decode_is_a_bad_input_file(tmp_path, kind):
    """An image of `evaluate FILE --data FOLDER` that passes the header check and fails when
    decoded was refused as no image at all, its hint Pillow's reason, while one the header check
    caught had --data's hint: it is told as a bad file of --data now, as evaluate's stream tells
    it, and nothing is written."""
    export = _onnx_export(tmp_path)
    folder, bad, reason = _bad_folder(tmp_path, kind)
    result = invoke("evaluate", export, "--data", folder, "-o", tmp_path / "e")
    assert result.exit_code == 2, result.output
    assert flat(result) == " ".join(
        f"error: expected every image file to decode; 1 bad image file(s): {bad}: cannot be decoded "
        f"({reason}) hint: remove or replace these files, or move them out of the --data folder: "
        "every image file --data lists is read (a run whose spec sets data.on_bad_file: skip "
        "leaves them out)".split()
    )
    assert not (tmp_path / "e").exists()


def test_predict_names_an_image_that_fails_to_decode_as_evaluate_does(tmp_path):
    """`predict` of a folder holding an image that fails to decode (its header passes) said the
    file was no image, with Pillow's reason as its hint: it names it as evaluate does, with a
    hint for predict's inputs, and answers nothing for the folder's good images."""
    export = _onnx_export(tmp_path)
    folder, bad, reason = _bad_folder(tmp_path, "png")
    result = invoke("predict", export, folder, "-f", "csv")
    assert result.exit_code == 2, result.output
    assert flat(result) == " ".join(
        f"error: expected every image file to decode; 1 bad image file(s): {bad}: cannot be decoded "
        f"({reason}) hint: remove or replace these files, or leave them out of the inputs (move them "
        "out of a folder given)".split()
    )


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_a_runs_data_image_that_fails_to_decode_is_a_bad_input_file_on_every_path(run, tmp_path):
    """`evaluate RUN --data FOLDER` (Keras' stream, then --tta's indexed reads) and `visualize RUN
    samples --data FOLDER` name an image that fails to decode as one error with --data's hint:
    --tta and visualize said the file was no image, Pillow's reason as their hint. Nothing is
    written."""
    folder, bad, reason = _bad_folder(tmp_path, "png", "red green blue")
    expected = " ".join(
        f"error: expected every image file to decode; 1 bad image file(s): {bad}: cannot be decoded "
        f"({reason}) hint: remove or replace these files, or move them out of the --data folder: "
        "every image file --data lists is read (a run whose spec sets data.on_bad_file: skip "
        "leaves them out)".split()
    )
    for extra in ([], ["--tta", "hflip"]):
        result = invoke("evaluate", run, "--data", folder, "-r", "keras", "-o", tmp_path / "e", *extra)
        assert (result.exit_code, flat(result)) == (2, expected), result.output
    result = invoke("visualize", run, "samples", "--data", folder, "--out", tmp_path / "v.png")
    assert (result.exit_code, flat(result)) == (2, expected), result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["dd"]
