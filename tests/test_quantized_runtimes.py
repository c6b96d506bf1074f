"""Quantized TFLite exports as runtimes of their own: ``--runtime tflite-int8`` (and
``tflite-float16``, ``tflite-dynamic``) in evaluate and predict, and in benchmark's ``--formats``,
read ``RUN/export/model.int8.tflite`` where ``cnnspec export --quantize int8`` writes it; ``auto``
never picks one.

The slow tests share one copy of the tiny trained run (tests/test_report_support.py) with its
int8 export, made once.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.test_report_support import flat, invoke, made_once, trained_run

INT8 = ("--format", "tflite", "--quantize", "int8")


# -- fast: names, paths and refusals without an export ------------------------------------------------


def test_each_quantization_is_a_runtime_reading_its_own_file():
    from cnnspec.export.runtimes import QUANTIZATIONS, QUANTIZED_RUNTIMES, RUNTIMES, engine, export_path
    from cnnspec.export.targets import default_output

    stem = Path("run/export/model")
    assert QUANTIZED_RUNTIMES == ("tflite-dynamic", "tflite-float16", "tflite-int8")
    assert set(QUANTIZED_RUNTIMES) < set(RUNTIMES)
    for quantize, runtime in zip(QUANTIZATIONS, QUANTIZED_RUNTIMES):
        assert engine(runtime) == ("tflite", quantize)
        # the file a quantized runtime reads is the one `cnnspec export --quantize` writes
        assert export_path(stem, runtime) == default_output(stem, "tflite", quantize)
    for runtime in ("keras", "onnx", "tflite"):
        assert engine(runtime) == (runtime, None)
    assert export_path(stem, "tflite") == default_output(stem, "tflite")
    assert export_path(Path("a.b/m.v2"), "tflite-int8") == Path("a.b/m.v2.int8.tflite")


def test_the_commands_offer_every_runtime():
    from cnnspec.cli.evaluate import RUNTIME_HELP, Runtime
    from cnnspec.export.runtimes import QUANTIZED_RUNTIMES, RUNTIMES

    assert [r.value for r in Runtime] == ["auto", *RUNTIMES]
    for runtime in QUANTIZED_RUNTIMES:
        assert runtime in RUNTIME_HELP
    for command in ("evaluate", "predict"):
        text = flat(invoke(command, "--help"))
        assert "tflite-int8" in text and "tflite-float16" in text, text
    assert "tflite-int8" in flat(invoke("benchmark", "--help"))


# -- slow: real exports ------------------------------------------------------------------------------


def int8_exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A copy of the trained run with its int8 export (RUN/export/model.int8.tflite), and the
    export's ``--json`` result, made once per test session
    (:func:`~tests.test_report_support.made_once`; the tests copy it before they write): under
    pytest-xdist, which may send this module's tests to both workers, each worker exported it, a
    second and more of conversion; tests/test_export_int8.py reads the same export."""
    trained = trained_run(tmp_path_factory)

    def export(folder: Path) -> None:
        shutil.copytree(trained, folder / "run", ignore=shutil.ignore_patterns("export"))
        result = invoke("export", folder / "run", *INT8, "--json")
        assert result.exit_code == 0, result.output
        (folder / "result.json").write_text(result.stdout, encoding="utf-8")

    folder = made_once(tmp_path_factory, "quantized-int8", export)
    return folder / "run", json.loads((folder / "result.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def int8_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run folder of :func:`int8_exported`."""
    return int8_exported(tmp_path_factory)[0]


@pytest.mark.slow
@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_missing_quantized_export_says_how_to_make_it_and_what_is_there(int8_run, tmp_path, command):
    run = tmp_path / "run"
    shutil.copytree(int8_run, run)
    shutil.copy(run / "export" / "model.int8.tflite", run / "export" / "model.tflite")
    np.save(tmp_path / "x.npy", np.zeros((8, 8, 3), dtype="uint8"))
    extra = [tmp_path / "x.npy"] if command == "predict" else []
    result = invoke(command, run, *extra, "--runtime", "tflite-float16")
    assert result.exit_code == 2, result.output
    text = flat(result)
    missing = run / "export" / "model.float16.tflite"
    assert f"expected a tflite-float16 export at {missing}; there is none" in text
    # the TFLite files beside it, each with the runtime that reads it
    assert "(there is model.tflite: --runtime tflite; model.int8.tflite: --runtime tflite-int8)" in text
    assert f"cnnspec export {run} --format tflite --quantize float16" in text
    assert "Traceback" not in result.output and not missing.exists()


@pytest.mark.slow
def test_evaluate_and_predict_run_the_int8_export_by_its_name(int8_run, tmp_path, tmp_path_factory):
    run = tmp_path / "run"
    shutil.copytree(int8_run, run)
    export = run / "export" / "model.int8.tflite"
    accuracy = {}
    for runtime in ("keras", "tflite-int8"):
        evaluated = invoke("evaluate", run, "--runtime", runtime, "-f", "json")
        assert evaluated.exit_code == 0, evaluated.output
        document = json.loads(evaluated.stdout)
        assert document["runtime"] == runtime
        accuracy[runtime] = document["accuracy"]
    assert document["export"] == str(export)
    note = "tflite-int8: model.int8.tflite is an int8-quantized export (decision agreement with Keras"
    assert any(n.startswith(note) for n in document["notes"]), document["notes"]
    assert abs(accuracy["tflite-int8"] - accuracy["keras"]) <= 0.05, accuracy
    # the text report names the runtime too
    text = flat(invoke("evaluate", run, "--runtime", "tflite-int8"))
    assert "tflite-int8 runtime" in text

    x = np.load(trained_run(tmp_path_factory).parent / "colors.npz")["x_test"]  # (the run's data)
    np.save(tmp_path / "rows.npy", x)
    top = {}
    for runtime in ("keras", "tflite-int8"):
        predicted = invoke("predict", run, tmp_path / "rows.npy", "--runtime", runtime, "-f", "json")
        assert predicted.exit_code == 0, predicted.output
        document = json.loads(predicted.stdout)
        assert document["runtime"] == runtime
        top[runtime] = [p["top"][0]["class"] for p in document["predictions"]]
    assert document["export"] == str(export)
    same = np.mean([a == b for a, b in zip(top["keras"], top["tflite-int8"])])
    assert len(top["tflite-int8"]) == len(x) and same >= 0.9, top

    # auto reads the float exports only: with just the int8 one there, it is Keras
    predicted = invoke("predict", run, tmp_path / "rows.npy", "-f", "json")
    assert predicted.exit_code == 0, predicted.output
    assert json.loads(predicted.stdout)["runtime"] == "keras"


@pytest.mark.slow
def test_benchmark_compares_the_float_and_quantized_exports(int8_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(int8_run, run)
    result = invoke(
        "benchmark",
        run,
        "--formats",
        "tflite-int8,tflite-float16",
        "--batch",
        "1",
        "--runs",
        "3",
        "--warmup",
        "0",
        "-f",
        "json",
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    rows = {row["runtime"]: row for row in document["results"]}
    assert list(rows) == ["tflite-int8", "tflite-float16"]  # in the order asked for
    # the int8 export was there and is timed as it is; the float16 one is made and verified first
    # (named in the run folder: a benchmark from another working folder finds them)
    assert rows["tflite-int8"]["file"] == "export/model.int8.tflite"
    assert rows["tflite-float16"]["file"] == "export/model.float16.tflite"
    assert [rows[runtime].get("quantize") for runtime in rows] == ["int8", "float16"]
    assert any(
        n.startswith("tflite-float16: exporting (expected a tflite-float16 export") for n in document["notes"]
    )
    assert not any(n.startswith("tflite-int8: exporting") for n in document["notes"])
    record = json.loads((run / "export" / "model.float16.tflite.json").read_text())
    assert record["quantize"] == "float16" and record["verified"] is True
    for runtime, row in rows.items():
        assert row["status"] == "ok", row
        assert row["size_bytes"] == (run / row["file"]).stat().st_size
        assert 0.0 <= row["accuracy"] <= 1.0 and row["latency_ms"]["1"]["median"] > 0, runtime
