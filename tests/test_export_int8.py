"""`cnnspec export RUN --format tflite --quantize int8`: a full-integer TFLite export, calibrated on
the run's training images, verified on its test images, and run by evaluate and predict with
``--runtime tflite`` (the session quantizes the float input and dequantizes the output).

One tiny trained run (tests/test_report_support.py) is copied and exported once per test session,
with tests/test_quantized_runtimes.py; the tests that write work on copies.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.test_report_support import flat, invoke, trained_run

INT8 = ("export", "--format", "tflite", "--quantize", "int8")


@pytest.fixture(scope="module")
def int8_run(tmp_path_factory) -> tuple[Path, dict]:
    """A copy of the trained run with its int8 export (RUN/export/model.int8.tflite), and the
    export's ``--json`` result: tests/test_quantized_runtimes.py's, made once per test session
    (the tests here copy it before they write)."""
    from tests.test_quantized_runtimes import int8_exported

    return int8_exported(tmp_path_factory)


# -- fast: the session's (de)quantization, and refusals before TensorFlow ---------------------------


def test_quantize_and_dequantize_with_the_tensor_parameters():
    from cnnspec.export.runtimes import dequantize_output, quantize_input

    detail = {"dtype": np.int8, "quantization": (0.5, -10)}
    batch = np.array([[0.0, 0.25, -0.25, 1.3, 100.0, -100.0]], dtype="float32")
    got = quantize_input(batch, detail)
    assert got.dtype == np.int8
    # x / 0.5 rounded half away from zero, plus the zero point, clipped to [-128, 127]
    assert got.tolist() == [[-10, -9, -11, -7, 127, -128]]
    back = dequantize_output(got, detail)
    assert back.dtype == np.float32 and back.tolist() == [[0.0, 0.5, -0.5, 1.5, 68.5, -59.0]]
    plain = {"dtype": np.float32, "quantization": (0.0, 0)}
    assert quantize_input(batch, plain) is batch  # float exports: unchanged
    assert np.array_equal(dequantize_output(batch, plain), batch)


def test_int8_with_another_format_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.keras").write_bytes(b"not read before the arguments are checked")
    for fmt in ("onnx", "savedmodel"):
        result = invoke("export", "m.keras", "--format", fmt, "--quantize", "int8")
        assert result.exit_code == 2, result.output
        assert "expected --quantize only with --format tflite" in flat(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]


# -- slow: the export and the runtimes ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.xdist_group("int8_export")
def test_int8_export_is_integer_calibrated_and_verified_on_test_images(int8_run):
    from ai_edge_litert.interpreter import Interpreter

    folder, result = int8_run
    path = folder / "export" / "model.int8.tflite"
    assert Path(result["path"]) == path and result["quantize"] == "int8"
    # 120 training images, 20% validation: 96 calibrate it; the 30 test images verify it
    assert result["calibration_images"] == 96
    assert result["batch"] == 30 and "30 of the run's 30 test images" in result["verify_data"]
    assert result["tolerance"] is None and result["top1_agreement"] >= 0.9
    assert result["agreement_basis"] == "argmax over the last axis"
    record = json.loads((folder / "export" / "model.int8.tflite.json").read_text())
    assert record["quantize"] == "int8" and record["verified"] is True
    assert record["calibration"] == {"images": 96, "split": "train", "train_images": 96, "seed": 0}
    assert record["verify_batch"] == 30 and record["top1_agreement"] == result["top1_agreement"]
    interpreter = Interpreter(model_path=str(path))
    (given,), (answer,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert given["dtype"] == np.int8 and answer["dtype"] == np.int8
    assert given["quantization"][0] > 0 and answer["quantization"][0] > 0
    # every tensor of the graph is an integer: int8 activations and weights, int32 biases
    kinds = {np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
    assert kinds <= {"int8", "int32"}, kinds


@pytest.mark.slow
@pytest.mark.xdist_group("int8_export")
def test_int8_export_answers_as_keras_through_evaluate_and_predict(int8_run, tmp_path, tmp_path_factory):
    folder, _ = int8_run
    run = tmp_path / "run"
    shutil.copytree(folder, run)
    # the runtimes read RUN/export/model.tflite: the int8 export goes there with -o
    result = invoke(*INT8[:1], run, *INT8[1:], "-o", run / "export" / "model.tflite")
    assert result.exit_code == 0, result.output
    text = flat(result)
    assert "tflite (int8 quantized)" in text and "test images" in text
    assert "calibrated on 96 of the run's training images" in text
    # seeded calibration: the same run gives the same bytes
    ours = (run / "export" / "model.tflite").read_bytes()
    assert ours == (run / "export" / "model.int8.tflite").read_bytes()

    accuracy = {}
    for runtime in ("keras", "tflite"):
        evaluated = invoke("evaluate", run, "--runtime", runtime, "-f", "json")
        assert evaluated.exit_code == 0, evaluated.output
        document = json.loads(evaluated.stdout)
        accuracy[runtime] = document["accuracy"]
    assert document["export"] == str(run / "export" / "model.tflite")
    assert any("model.tflite is an int8-quantized export (decision agreement" in n for n in document["notes"])
    assert abs(accuracy["tflite"] - accuracy["keras"]) <= 0.05, accuracy

    x = np.load(trained_run(tmp_path_factory).parent / "colors.npz")["x_test"]  # (the run's data)
    np.save(tmp_path / "rows.npy", x)
    top = {}
    for runtime in ("keras", "tflite"):
        predicted = invoke("predict", run, tmp_path / "rows.npy", "--runtime", runtime, "-f", "json")
        assert predicted.exit_code == 0, predicted.output
        document = json.loads(predicted.stdout)
        assert document["runtime"] == runtime
        top[runtime] = [p["top"][0]["class"] for p in document["predictions"]]
    same = np.mean([a == b for a, b in zip(top["keras"], top["tflite"])])
    assert len(top["tflite"]) == len(x) and same >= 0.9, top


@pytest.mark.slow
@pytest.mark.xdist_group("int8_export")
def test_int8_without_the_runs_data_is_refused(int8_run, tmp_path):
    folder, _ = int8_run
    bare = tmp_path / "bare.keras"
    shutil.copy(folder / "model.keras", bare)
    result = invoke(*INT8[:1], bare, *INT8[1:])
    assert result.exit_code == 2, result.output
    text = flat(result)
    assert "expected a run folder with its data for --quantize int8" in text
    assert "is not in a run folder" in text and "--quantize dynamic or float16" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare.keras"]
    # a run folder that lost the spec naming its data
    run = tmp_path / "run"
    shutil.copytree(folder, run, ignore=shutil.ignore_patterns("export"))
    (run / "resolved.yaml").unlink()
    result = invoke(*INT8[:1], run, *INT8[1:])
    assert result.exit_code == 2, result.output
    assert "resolved.yaml, the run's spec that names its data, is missing" in flat(result)
    assert not (run / "export").exists()


@pytest.mark.slow
@pytest.mark.xdist_group("int8_export")
def test_a_converter_failure_is_a_clear_error(int8_run, tmp_path, monkeypatch):
    from cnnspec.export import exporter

    folder, _ = int8_run
    run = tmp_path / "run"
    shutil.copytree(folder, run, ignore=shutil.ignore_patterns("export"))
    seen = {}

    def failing(model, quantize, calibration=None):  # what TFLite's converter says of an op without int8
        seen.update(quantize=quantize, images=len(calibration))
        raise RuntimeError("'tf.Sinh' op is neither a custom op nor a flex op")

    monkeypatch.setattr(exporter, "tflite_bytes", failing)
    result = invoke(*INT8[:1], run, *INT8[1:])
    assert result.exit_code == 1, result.output
    text = flat(result)
    assert "the tflite converter failed" in text and "tf.Sinh" in text and "int8 kernel" in text
    assert "Traceback" not in result.output and seen == {"quantize": "int8", "images": 96}
    assert not (run / "export").exists() or not any((run / "export").iterdir())  # nothing written
