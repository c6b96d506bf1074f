"""`cnnspec evaluate FILE --data SOURCE` of a model known apart from its run folder (an ONNX or
TFLite export, a checkpoint) scores the test split of the run it came from: the images the
run held out, not a split drawn with seed 0 of which most images were training ones. Where the
run can't be known, a note says the split may include training images."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.test_report_support import flat, invoke, train_without_page

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reporting")]

#: digits, split with seed 7 (not 0): 1 epoch, a checkpoint of the best epoch
SPEC = """\
cnnspec: 1
name: split_digits
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same}
  - activation: relu
  - flatten
  - dense: {units: 10, activation: softmax}
data: {source: digits, validation_split: 0.1, test_split: 0.2}
training:
  epochs: 1
  batch_size: 64
  optimizer: {adam: {learning_rate: 0.01}}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  callbacks: [model_checkpoint]
  seed: 7
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("split")
    spec = root / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    run = root / "run"
    train_without_page(spec, run)
    return run


def _evaluate(target: Path, out: Path) -> dict:
    result = invoke("evaluate", target, "--data", "digits", "-o", out, "-f", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _the_runs_test_split(run_dir: Path, doc: dict) -> None:
    """``doc`` scored the run's own test images: training's confusion matrix, exactly."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert doc["data"]["images"] == sum(map(sum, metrics["confusion_matrix"]))
    assert doc["confusion_matrix"] == metrics["confusion_matrix"]
    assert doc["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_an_export_is_evaluated_on_its_runs_test_split_inside_the_run_and_copied_away(run_dir, tmp_path, fmt):
    result = invoke("export", run_dir, "--format", fmt)
    assert result.exit_code == 0, result.output
    exported = run_dir / "export" / f"model.{fmt}"
    record = json.loads((exported.parent / f"model.{fmt}.json").read_text())
    assert record["split"] == {"seed": 7, "test_split": 0.2, "validation_split": 0.1, "source": "digits"}
    doc = _evaluate(exported, tmp_path / "in")
    _the_runs_test_split(run_dir, doc)
    assert any(
        "as its record says the run it was exported from drew it (seed 7)" in note for note in doc["notes"]
    )
    # copied away with its record: the record still names the run's split
    away = tmp_path / "deployed"
    away.mkdir()
    for name in (f"model.{fmt}", f"model.{fmt}.json"):
        shutil.copy(exported.parent / name, away / name)
    _the_runs_test_split(run_dir, _evaluate(away / f"model.{fmt}", tmp_path / "away"))


def _older_record(path: Path, split: dict | None = None) -> None:
    """``path``'s record as an older cnnspec wrote it (no ``split``), or with this ``split``."""
    from cnnspec.export.runtimes import serving_digest

    record = json.loads(path.read_text())
    del record["split"]
    record.pop("split_unknown", None)
    if split is not None:
        record["split"] = split
    record["serving_sha256"] = serving_digest(record)
    path.write_text(json.dumps(record, indent=2))


def test_the_runs_split_is_not_said_of_a_source_the_run_did_not_split(run_dir, tmp_path):
    """A run of another source (shapes) split no digits: its seed draws them, but the note that
    the split is the run's is not given (as for a run folder's --data of another source)."""
    away = tmp_path / "deployed"
    result = invoke("export", run_dir, "--format", "onnx", "-o", away / "other.onnx")
    assert result.exit_code == 0, result.output
    split = {"seed": 7, "test_split": 0.2, "validation_split": 0.1, "source": "shapes"}
    _older_record(away / "other.onnx.json", split)
    doc = _evaluate(away / "other.onnx", tmp_path / "ev")
    _the_runs_test_split(run_dir, doc)  # (the same seed and fractions: the same digits)
    assert not any("split" in note for note in doc["notes"]), doc["notes"]


def test_an_older_export_inside_its_run_finds_the_run_and_away_from_it_is_told_so(run_dir, tmp_path):
    result = invoke("export", run_dir, "--format", "onnx", "-o", run_dir / "export" / "older.onnx")
    assert result.exit_code == 0, result.output
    exported = run_dir / "export" / "older.onnx"
    _older_record(exported.with_name("older.onnx.json"))
    doc = _evaluate(exported, tmp_path / "in")
    _the_runs_test_split(run_dir, doc)
    assert any(f"as the run {run_dir.resolve()} drew it (seed 7)" in note for note in doc["notes"])
    away = tmp_path / "deployed"
    away.mkdir()
    for name in ("older.onnx", "older.onnx.json"):
        shutil.copy(exported.parent / name, away / name)
    result = invoke("evaluate", away / "older.onnx", "--data", "digits", "-o", tmp_path / "away")
    assert result.exit_code == 0, result.output
    told = flat(result)
    assert "the test split was drawn with seed 0, maybe not the training's" in told
    assert "older.onnx lies in no run folder and its record keeps no run's split" in told
    assert "may include images the model trained on" in told
    assert "no run folder records the training seed" not in told  # (the former note, untrue here)


def test_an_export_of_a_lone_model_file_is_not_called_an_older_cnnspecs(run_dir, tmp_path):
    """A model file copied out of its run and exported now: its record says why it keeps no
    split (split_unknown), and evaluate's note says so, not "exported by an older cnnspec"."""
    lone = tmp_path / "m.keras"
    shutil.copy(run_dir / "model.keras", lone)
    result = invoke("export", lone, "--format", "onnx", "-o", tmp_path / "model.onnx")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "model.onnx.json").read_text())
    assert "split" not in record and record["split_unknown"] == "no_run"
    result = invoke("evaluate", tmp_path / "model.onnx", "--data", "digits", "-o", tmp_path / "evd2")
    assert result.exit_code == 0, result.output
    told = flat(result)
    assert (
        "note: the test split was drawn with seed 0, maybe not the training's: model.onnx lies in no "
        "run folder and its record keeps no run's split (exported from a model file outside any run "
        "folder), so it may include images the model trained on"
    ) in told
    assert "older cnnspec" not in told


def test_a_checkpoint_is_evaluated_on_its_runs_test_split(run_dir, tmp_path):
    checkpoint = run_dir / "checkpoints" / "best.keras"
    assert checkpoint.is_file()
    doc = _evaluate(checkpoint, tmp_path)
    # one epoch: the best epoch's model is the run's model
    _the_runs_test_split(run_dir, doc)
    assert any("as the run" in note and "(seed 7)" in note for note in doc["notes"])
    # without --data: refused, and not as a model "not in a run folder" (it is in one)
    result = invoke("evaluate", checkpoint, "-o", tmp_path / "none")
    assert result.exit_code == 2, result.output
    told = flat(result)
    assert (
        f"{checkpoint} is not the model of a run folder (it lies in the run folder {run_dir.resolve()}"
        in told
    )
    assert "is not in a run folder" not in told and "--data SOURCE" in told


def test_a_checkpoint_exported_away_from_its_run_keeps_the_runs_split(run_dir, tmp_path):
    out = tmp_path / "best.onnx"
    result = invoke("export", run_dir / "checkpoints" / "best.keras", "--format", "onnx", "-o", out)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "best.onnx.json").read_text())["split"]["seed"] == 7
    _the_runs_test_split(run_dir, _evaluate(out, tmp_path / "ev"))


def test_a_savedmodel_export_is_not_evaluated_on_a_split_of_its_own(run_dir, tmp_path):
    result = invoke("export", run_dir, "--format", "savedmodel")
    assert result.exit_code == 0, result.output
    saved = run_dir / "export" / "model_saved_model"
    result = invoke("evaluate", saved, "--data", "digits", "-o", tmp_path)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "not one" in flat(result) and not (tmp_path / "evaluation.json").exists()


#: shapes with settings of its own (not the 400 default images): an export must keep them
SHAPES_SPEC = """\
cnnspec: 1
name: split_shapes
input: {shape: [12, 12, 3]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - dense: {units: 3, activation: softmax}
data:
  source: {shapes: {images: 60, noise: 0.2, seed: 3, target: class}}
  validation_split: 0.1
  test_split: 0.2
training: {epochs: 1, batch_size: 16, seed: 5}
"""


def test_an_export_of_a_shapes_run_keeps_the_generators_settings_for_its_test_split(tmp_path):
    """The record kept ``source: shapes`` alone, so ``evaluate FILE --data shapes`` scored
    shapes' 400 default images while its note said it drew the run's split; it now keeps the
    generator's settings and scores the run's 12 test images. An older record without them is
    said to maybe not be the run's images."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(SHAPES_SPEC, encoding="utf-8")
    run = tmp_path / "run"
    train_without_page(spec, run)
    assert (exported := invoke("export", run, "--format", "onnx")).exit_code == 0, exported.output
    record = json.loads((run / "export" / "model.onnx.json").read_text())
    assert record["split"]["options"] == {"images": 60, "noise": 0.2, "seed": 3, "target": "class"}
    away = tmp_path / "deployed"
    away.mkdir()
    for name in ("model.onnx", "model.onnx.json"):
        shutil.copy(run / "export" / name, away / name)
    result = invoke("evaluate", away / "model.onnx", "--data", "shapes", "-o", tmp_path / "ev", "-f", "json")
    assert result.exit_code == 0, result.output
    doc, metrics = json.loads(result.stdout), json.loads((run / "metrics.json").read_text())
    assert doc["data"]["images"] == metrics["test_images"] == 12
    assert doc["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    assert any("as its record says the run it was exported from drew it" in note for note in doc["notes"])
    _older_record(away / "model.onnx.json", {k: v for k, v in record["split"].items() if k != "options"})
    result = invoke("evaluate", away / "model.onnx", "--data", "shapes", "-o", tmp_path / "old")
    assert result.exit_code == 0, result.output
    told = flat(result)
    assert "its record keeps no settings of the run's shapes source (exported by an older cnnspec)" in told
    assert "may not be the run's test images" in told and "as its record says" not in told
    _float_pixels_far_off_an_integer_run_are_noted(run, away / "model.onnx", tmp_path)


def _float_pixels_far_off_an_integer_run_are_noted(run: Path, lone: Path, tmp_path: Path) -> None:
    """A run trained on 8-bit images (shapes: uint8, ``data.rescale: auto`` → [0, 1]) gave float
    0–255 pixels confident answers, unsaid: its trained range was known only for float data.
    The run and its export served alone (whose record now keeps the range) note them alike."""
    record = json.loads((run / "export" / "model.onnx.json").read_text())
    assert record["input"]["pixel_range"] == [0.0, 1.0]
    pixels = np.linspace(0, 255, 2 * 12 * 12 * 3, dtype="float32").reshape(2, 12, 12, 3)
    np.savez(tmp_path / "f255.npz", x_test=pixels, y_test=np.array([0, 1]))
    np.save(tmp_path / "f255.npy", np.linspace(0, 255, 12 * 12 * 3, dtype="float32").reshape(12, 12, 3))
    note = (
        "the pixels of {} range 0 to 255, far outside the 0 to 1 {} trained on: float pixels are taken "
        "as already on the run's scale, so {} may be meaningless; divide them by 255 (pixels of 0–255) "
        "to the run's range"
    )
    for target, name in ((run, "split_shapes"), (lone, "model")):
        result = invoke(
            "evaluate", target, "--data", tmp_path / "f255.npz", "-o", tmp_path / name, "-f", "json"
        )
        assert result.exit_code == 0, result.output
        said = note.format(f"--data {tmp_path / 'f255.npz'}", name, "the figures on them")
        assert said in json.loads(result.stdout)["notes"]
        result = invoke("predict", target, tmp_path / "f255.npy")
        assert result.exit_code == 0, result.output
        assert note.format("the .npy arrays", name, "the predictions") in flat(result)


def test_float_data_far_off_the_runs_pixel_range_is_noted(run_dir, tmp_path):
    """A float .npz --data (or .npy to predict) of 0–255 pixels for a run trained on [0, 1]
    floats was scored as it is, unsaid (loss 52, accuracy 0.89): a note names both ranges and
    the way out; the same images on the run's scale have none. lock.json records the range."""
    from sklearn.datasets import load_digits

    lock = json.loads((run_dir / "lock.json").read_text())
    assert lock["data"]["pixel_range"] == [0.0, 1.0]
    bunch = load_digits()
    x, y = (bunch.images.astype("float32") / 16)[..., None][:40], bunch.target[:40]
    note = (
        "the pixels of --data {} range 0 to 255, far outside the 0 to 1 split_digits trained on: float "
        "pixels are taken as already on the run's scale, so the figures on them may be meaningless; "
        "divide them by 255 (pixels of 0–255) to the run's range"
    )
    for name, pixels, noted in (("big.npz", (x * 255).round(), True), ("unit.npz", x, False)):
        np.savez(tmp_path / name, x_test=pixels, y_test=y)
        result = invoke(
            "evaluate", run_dir, "--data", tmp_path / name, "-o", tmp_path / name[:-4], "-f", "json"
        )
        assert result.exit_code == 0, result.output
        notes = json.loads(result.stdout)["notes"]
        assert (note.format(tmp_path / name) in notes) is noted, notes
    np.save(tmp_path / "big.npy", (x[0] * 255).round())
    result = invoke("predict", run_dir, tmp_path / "big.npy")
    assert result.exit_code == 0, result.output
    said = note.format("").replace("of --data  range 0 to 255", "of the .npy arrays range 0 to 239")
    assert said.replace("the figures on them", "the predictions") in flat(result)


def test_an_export_of_a_data_classes_run_reads_data_labelled_as_its_source_as_the_run_does(tmp_path):
    """A run trained on the digits' classes [3, 0, 1, 2]: an .npz of those digits labelled as the
    digits label them is read by the run as its source (3 is its output 0), and scored 0.97. Its
    export's record kept no selection, so the file read label 3 as its output 3: 0.01, with no
    word. The record keeps the run's data.classes now, and the file scores what the run scores."""
    from sklearn.datasets import load_digits

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        SPEC.replace("units: 10", "units: 4")
        .replace("callbacks: [model_checkpoint]", "callbacks: []")
        .replace("data: {source: digits, ", "data: {source: digits, classes: [3, 0, 1, 2], "),
        encoding="utf-8",
    )
    run = tmp_path / "run"
    train_without_page(spec, run)
    assert invoke("export", run, "--format", "tflite").exit_code == 0
    record = json.loads((run / "export" / "model.tflite.json").read_text())
    assert record["split"]["classes"] == [3, 0, 1, 2]
    digits = load_digits()
    kept = np.isin(digits.target, [3, 0, 1, 2])
    x = (digits.images[kept] / 16.0).astype("float32")[..., None]
    np.savez(tmp_path / "source.npz", x_test=x, y_test=digits.target[kept])
    scored = []
    for target in (run, run / "export" / "model.tflite"):
        result = invoke(
            "evaluate", target, "--data", tmp_path / "source.npz", "-o", tmp_path / target.name, "-f", "json"
        )
        assert result.exit_code == 0, result.output
        scored.append(json.loads(result.stdout))
    assert scored[0]["accuracy"] > 0.8 and scored[1]["accuracy"] == pytest.approx(
        scored[0]["accuracy"], abs=1e-6
    )
    assert scored[1]["confusion_matrix"] == scored[0]["confusion_matrix"]
    # --data digits, the run's own source: its test split, the selection picking the run's
    # classes (both were refused: the run for the test images of the other digits, the file
    # for a source of 10 classes beside a model of 4)
    for target in (run, run / "export" / "model.tflite"):
        _the_runs_test_split(run, _evaluate(target, tmp_path / f"own_{target.name}"))
