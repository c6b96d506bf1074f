"""Inference without TensorFlow (issue 23): `predict`/`evaluate --runtime`, export records and
`cnnspec benchmark`.

One tiny trained run (tests/test_report_support.py) is exported once to ONNX and TFLite; the
tests that change it work on copies. Export and Keras are slow, so the whole file is.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import cold_commands, start_python
from tests.test_report_support import CLASSES, colour_images, flat, invoke, made_once, trained_run

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reporting")]

EXPORTS = ("onnx", "tflite")
#: What an export's runtime must never import.
HEAVY = ("tensorflow", "keras", "sklearn", "matplotlib")


def exported_run(factory: pytest.TempPathFactory) -> Path:
    """A copy of the trained run with verified ONNX and TFLite exports, made once per test
    session (:func:`made_once`: tests/test_tta_commands.py reads it too); tests that write
    work on copies of it."""

    def export(folder: Path) -> None:
        shutil.copytree(trained_run(factory), folder / "run")
        for fmt in EXPORTS:
            result = invoke("export", folder / "run", "--format", fmt)
            assert result.exit_code == 0, result.output

    return made_once(factory, "runtimes-exported", export) / "run"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return exported_run(tmp_path_factory)


@pytest.fixture
def run_copy(exported, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(exported, folder)
    return folder


def _images(folder):
    """An image of the model's size, one larger in RGBA (resized and converted) and an array."""
    x, _ = colour_images(3, 11)
    Image.fromarray(x[0]).save(folder / "small.png")
    Image.fromarray(np.repeat(np.repeat(x[1], 3, axis=0), 2, axis=1)).convert("RGBA").save(folder / "big.png")
    np.save(folder / "rows.npy", x)
    return [folder / "small.png", folder / "big.png", folder / "rows.npy"]


def _predict(run, images, runtime):
    result = invoke("predict", run, *images, "--runtime", runtime, "-k", "3", "-f", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_every_runtime_gives_the_same_answer(exported, tmp_path):
    images = _images(tmp_path)
    documents = {runtime: _predict(exported, images, runtime) for runtime in ("keras", *EXPORTS, "auto")}
    keras = documents["keras"]
    assert keras["runtime"] == "keras" and keras["classes"] == CLASSES
    assert documents["auto"]["runtime"] in EXPORTS  # a verified export beats Keras
    for runtime, document in documents.items():
        assert document["classes"] == keras["classes"], runtime
        assert [p["input"] for p in document["predictions"]] == [p["input"] for p in keras["predictions"]]
        for got, want in zip(document["predictions"], keras["predictions"]):
            assert got["notes"] == want["notes"]
            assert [t["class"] for t in got["top"]] == [t["class"] for t in want["top"]], runtime
            probs = [t["probability"] for t in got["top"]]
            assert probs == pytest.approx([t["probability"] for t in want["top"]], abs=1e-4), runtime
    notes = documents["onnx"]["predictions"][1]["notes"]
    assert any("RGBA" in n for n in notes) and any("resized 24×16 → 8×8 (height×width)" in n for n in notes)
    text = invoke("predict", exported, images[0], "--runtime", "tflite")
    assert text.exit_code == 0 and "small.png" in flat(text) and "probability" in flat(text)


@pytest.fixture(scope="module")
def cold_predictions(exported, tmp_path_factory) -> dict[str, tuple[int, str, str, list[str]]]:
    """`predict --runtime R` through each export, one after another in one fresh Python
    (conftest's cold_commands: one start-up for both): each one's exit status, output and the
    heavy modules imported once it ended (never unloaded, so the second's include the first's)."""
    images = _images(tmp_path_factory.mktemp("cold"))
    lines = [["predict", str(exported), *map(str, images), "--runtime", r, "-f", "json"] for r in EXPORTS]
    return dict(zip(EXPORTS, cold_commands(lines, HEAVY), strict=True))


@pytest.mark.parametrize("runtime", EXPORTS)
def test_export_runtimes_never_import_tensorflow(cold_predictions, runtime):
    code, stdout, stderr, heavy = cold_predictions[runtime]
    assert code == 0, stderr
    assert heavy == [], f"predict --runtime {runtime} imported {heavy}"
    assert json.loads(stdout)["runtime"] == runtime


def test_exports_agree_with_keras_on_the_test_split(exported):
    """Top-1 agreement 100% and probabilities within 1e-4 on the run's test split, fed by the
    export record's scaling (no resize: the images have the model's size)."""
    from cnnspec.export.runtimes import find_export, open_session, predict_batches
    from cnnspec.reporting.held_out import load_test_data
    from cnnspec.reporting.predictions import probabilities
    from cnnspec.reporting.run import load_model, locate
    from cnnspec.training.imagefiles import scale_batch

    run = locate(exported)
    model = load_model(run.model_path)
    test = load_test_data(run, model)
    # (one call in inference mode: predict() would first trace a graph of the model)
    want = np.asarray(model(scale_batch(test.x, test.settings.rescale), training=False))
    for runtime in EXPORTS:
        record = find_export(exported, runtime)
        x = scale_batch(test.x, record.rescale(True))
        got = probabilities(predict_batches(open_session(runtime, record.path), x), run.output_kind())
        assert np.max(np.abs(got - want)) <= 1e-4, runtime
        assert np.array_equal(got.argmax(1), want.argmax(1)), runtime


def test_evaluate_with_each_runtime_gives_the_same_report(exported, tmp_path):
    documents = {}
    for runtime in ("keras", *EXPORTS):
        result = invoke("evaluate", exported, "--runtime", runtime, "--out", tmp_path / runtime, "-f", "json")
        assert result.exit_code == 0, result.output
        documents[runtime] = json.loads(result.stdout)
        assert (tmp_path / runtime / "evaluation.json").is_file()
    keras = documents["keras"]
    for runtime in EXPORTS:
        document = documents[runtime]
        assert document["runtime"] == runtime
        for key in ("accuracy", "confusion_matrix", "per_class", "class_names"):
            assert document[key] == keras[key], (runtime, key)
        assert document["loss"] == pytest.approx(keras["loss"], abs=1e-4)
    text = invoke("evaluate", exported, "--runtime", "onnx", "--out", tmp_path / "text")
    assert text.exit_code == 0 and "onnx runtime" in flat(text) and "accuracy" in flat(text)


def _refused(run, image, runtime, *words):
    result = invoke("predict", run, image, "--runtime", runtime)
    assert result.exit_code == 2, result.output
    for word in words:
        assert word in flat(result), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output


def test_stale_unverified_or_changed_exports_are_refused(run_copy, tmp_path):
    image = _images(tmp_path)[0]
    onnx = run_copy / "export" / "model.onnx"
    # a model retrained after the export: auto falls back to Keras and says why
    record = json.loads((run_copy / "export" / "model.tflite.json").read_text())
    record["model_sha256"] = "0" * 64
    (run_copy / "export" / "model.tflite.json").write_text(json.dumps(record))
    hint = f"cnnspec export {run_copy} --format tflite"
    _refused(run_copy, image, "tflite", "model.keras changed since the export", hint)
    # the export's bytes changed after verification
    onnx.write_bytes(onnx.read_bytes() + b"\0")
    _refused(run_copy, image, "onnx", "changed after it was verified")
    auto = invoke("predict", run_copy, image, "--runtime", "auto", "-f", "json")
    assert auto.exit_code == 0 and json.loads(auto.stdout)["runtime"] == "keras"
    assert "auto: skipped onnx" in flat(auto) and "auto: skipped tflite" in flat(auto)
    # no record at all, or made with --no-verify
    (run_copy / "export" / "model.onnx.json").unlink()
    _refused(run_copy, image, "onnx", "no verification record")
    result = invoke("export", run_copy, "--format", "onnx", "--no-verify")
    assert result.exit_code == 0, result.output
    _refused(run_copy, image, "onnx", "not verified")
    shutil.rmtree(run_copy / "export")
    _refused(run_copy, image, "onnx", "there is none", "cnnspec export")


def test_a_runtime_that_is_not_installed_names_the_extra(exported, tmp_path, monkeypatch):
    # (a None in sys.modules makes every `import onnxruntime` fail, as it does where it is not
    # installed; cnnspec imports it only inside the function that opens a session)
    image = _images(tmp_path)[0]
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    result = invoke("predict", exported, image, "--runtime", "onnx")
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert "needs onnxruntime" in message and "pip install 'cnnspec[export]'" in message


def test_images_the_model_cannot_take_are_refused_with_the_reason(exported, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((4, 4, 3), dtype="uint8"))
    for runtime in EXPORTS:
        _refused(exported, text, runtime, "is not one")
        _refused(exported, wrong, runtime, "8×8×3", "not resized")


def test_benchmark_exports_what_is_missing_and_writes_its_results(run_copy):
    # (the ONNX export is the one missing: its conversion is the quicker of the two)
    (run_copy / "export" / "model.onnx").unlink()
    result = invoke(
        "benchmark", run_copy, "--formats", "keras,onnx,tflite", "--batch", "1,4", "--runs", "3",
        "--warmup", "1", "--threads", "1", "-f", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (run_copy / "export" / "model.onnx").is_file()  # re-exported, verified:
    assert json.loads((run_copy / "export" / "model.onnx.json").read_text())["verified"] is True
    assert [r["runtime"] for r in document["results"]] == ["keras", "onnx", "tflite"]
    assert document["settings"]["threads"] == {"intra_op": 1, "inter_op": 1}
    accuracies = set()
    for row in document["results"]:
        assert row["status"] == "ok", row
        assert set(row["latency_ms"]) == {"1", "4"} and row["latency_ms"]["1"]["runs"] >= 3
        assert row["latency_ms"]["4"]["median"] <= row["latency_ms"]["4"]["p90"]
        assert row["throughput"]["4"] > 0 and row["size_bytes"] > 0 and row["peak_memory_mb"] > 0
        accuracies.add(row["accuracy"])
    assert len(accuracies) == 1  # the same predictions in every runtime
    saved = json.loads((run_copy / "benchmark.json").read_text())
    assert saved["results"] == document["results"]
    assert (run_copy / "benchmark.png").read_bytes().startswith(b"\x89PNG")
    report = invoke("report", run_copy)
    assert report.exit_code == 0, report.output
    html = (run_copy / "report.html").read_text(encoding="utf-8")
    assert 'id="benchmark"' in html and "batch 4 images/s" in html
    table = invoke("benchmark", run_copy, "--formats", "onnx", "--batch", "2", "--runs", "3", "--warmup", "0")
    assert table.exit_code == 0 and "batch 2" in flat(table) and "onnx" in flat(table)


def _bench_workers(scratch) -> list[int]:
    """The PIDs of timing workers whose settings lie under ``scratch``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"cnnspec.export.bench_worker" in command and str(scratch).encode() in command:
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc")
def test_sigterm_to_a_benchmark_ends_its_worker_and_removes_its_scratch_folder(run_copy, tmp_path):
    """SIGTERM ended the benchmark alone: its worker timed on as an orphan, its scratch folder
    (/tmp/cnnspec-bench-*) was left behind."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    command = [str(Path(sys.executable).parent / "cnnspec"), "benchmark", str(run_copy), "--formats", "keras"]
    # a fresh Python of its own (cold: `cnnspec benchmark` imports no TensorFlow itself, its
    # workers do, so forking one that had imported it would only start that server for
    # nothing): the benchmark's own start-up, signal handling and exit status
    bench = start_python(
        *command,
        "--runs",
        "1000",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(scratch), "TF_CPP_MIN_LOG_LEVEL": "3"},
        cold=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not _bench_workers(scratch):
            assert bench.poll() is None, bench.communicate()
            assert time.monotonic() < deadline, "no timing worker started"
            time.sleep(0.05)
        bench.send_signal(signal.SIGTERM)
        _, err = bench.communicate(timeout=60)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.communicate()
    assert bench.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err
    assert _bench_workers(scratch) == []  # ended and reaped before the benchmark exited
    assert list(scratch.iterdir()) == []
    assert not (run_copy / "benchmark.json").exists()


def _failing_worker(monkeypatch, *failing: str) -> None:
    """The timing workers of ``failing`` runtimes abort (as the Keras worker did with 100,000
    threads); the others run as they do."""
    from cnnspec.export import benchmark as module

    real = module._worker

    def worker(settings, scratch, threads):
        if settings["runtime"] in failing:
            return {"runtime": settings["runtime"], "status": "failed (exit -6): @ 0x7f cfunction_call"}
        return real(settings, scratch, threads)

    monkeypatch.setattr(module, "_worker", worker)


def test_a_benchmark_in_which_every_runtime_failed_exits_1_and_keeps_the_earlier_results(
    run_copy, monkeypatch
):
    """Every runtime failed, yet the benchmark exited 0 and replaced the run's benchmark.json
    (good figures) with a file of failures only."""
    earlier = json.dumps({"format": 1, "results": [{"runtime": "keras", "status": "ok"}]})
    (run_copy / "benchmark.json").write_text(earlier, encoding="utf-8")
    _failing_worker(monkeypatch, "keras", "onnx")
    for fmt in ("text", "json"):
        result = invoke(
            "benchmark", run_copy, "--formats", "keras,onnx", "--runs", "3", "--warmup", "0", "-f", fmt
        )
        assert result.exit_code == 1, result.output
        assert result.stdout == ""
        error = flat(result)
        assert "no runtime could be timed: all 2 failed; the first, keras: failed (exit -6)" in error
        assert f"the earlier {run_copy / 'benchmark.json'} is kept as it was" in error
        assert (run_copy / "benchmark.json").read_text(encoding="utf-8") == earlier
        assert not (run_copy / "benchmark.png").exists()


def test_a_benchmark_in_which_some_runtimes_failed_still_succeeds(run_copy, monkeypatch):
    """Figures from one runtime are results: exit 0, the failure shown in its row."""
    _failing_worker(monkeypatch, "keras")
    result = invoke(
        "benchmark", run_copy, "--formats", "keras,onnx", "--batch", "1", "--runs", "3", "--warmup", "0",
        "--threads", "1", "-f", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {row["runtime"]: row["status"] for row in json.loads(result.stdout)["results"]}
    assert rows == {"keras": "failed (exit -6): @ 0x7f cfunction_call", "onnx": "ok"}
    saved = json.loads((run_copy / "benchmark.json").read_text(encoding="utf-8"))
    assert [row["status"] for row in saved["results"]] == [rows["keras"], "ok"]
