"""`cnnspec benchmark` refuses what it cannot time before any work, without TensorFlow: a
damaged model.keras (exit 2, nothing heavy imported, nothing written) and a --threads above
its maximum. (test_runtimes.py, all slow, times real exports.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import cold_commands
from tests.test_report_support import flat, invoke

#: The modules a refusal must not import.
HEAVY = ("tensorflow", "keras", "sklearn", "matplotlib")


def _damaged_run(folder: Path) -> Path:
    """A run folder whose model.keras is cut short (a copy that stopped halfway), made without
    TensorFlow: a spec and a lock.json are all that the benchmark reads of a run before it."""
    folder.mkdir()
    (folder / "resolved.yaml").write_text(
        "cnnspec: 1\nname: damaged\ninput: {shape: [8, 8, 1]}\n"
        "model:\n  - global_avg_pool2d\n  - dense: {units: 10, activation: softmax}\n"
        "data: {source: digits, limit: 64}\n",
        encoding="utf-8",
    )
    (folder / "lock.json").write_text(json.dumps({"format": 1, "name": "damaged"}), encoding="utf-8")
    (folder / "model.keras").write_bytes(b"PK\x03\x04" + bytes(996))
    return folder


def test_benchmark_refuses_a_damaged_model_before_any_work(tmp_path):
    """A damaged model.keras was timed: the Keras worker failed on it, the table showed the
    UsageError as a cell, the exit status was 0 and benchmark.json recorded the failure.
    Refused up front now, as evaluate/export/predict refuse it: exit 2, no TensorFlow."""
    run = _damaged_run(tmp_path / "run")
    args = ["benchmark", str(run), "--formats", "keras", "--runs", "3", "--warmup", "0", "--batch", "1"]
    [(code, stdout, stderr, heavy)] = cold_commands([args], HEAVY)
    assert code == 2, stderr
    assert "expected a Keras model (a .keras zip archive)" in stderr and "is not one" in stderr
    assert "Traceback" not in stderr and "timing" not in stderr
    assert stdout.strip() == "" and heavy == []  # nothing printed, nothing heavy loaded
    assert sorted(p.name for p in run.iterdir()) == ["lock.json", "model.keras", "resolved.yaml"]


def test_benchmark_threads_have_a_maximum(tmp_path):
    """--threads 100000 ran a Keras worker that aborted (exit -6) after minutes, shown as a
    failed row with exit 0: now a usage error, from the option and from the API alike."""
    from cnnspec.cli import benchmark as command
    from cnnspec.errors import UsageError
    from cnnspec.export.benchmark import MAX_THREADS, run_benchmark

    assert command.MAX_THREADS == MAX_THREADS  # (the CLI repeats it: see its comment)
    run = _damaged_run(tmp_path / "run")
    result = invoke("benchmark", run, "--formats", "keras", "--threads", MAX_THREADS + 1)
    assert result.exit_code == 2 and f"1<=x<={MAX_THREADS}" in flat(result), result.output
    with pytest.raises(UsageError, match=f"--threads from 1 to {MAX_THREADS}"):
        run_benchmark(run, ["keras"], [1], threads=100_000)


def test_a_benchmark_without_formats_times_the_runtimes_installed_and_names_the_others(tmp_path, monkeypatch):
    """A plain `pip install cnnspec` (no export extra) had `cnnspec benchmark RUN` refused, its hint
    naming `--runtime keras`, an option benchmark does not have. Without --formats it now times
    the installed runtimes of keras, onnx and tflite, with a note on each left out; a runtime
    asked for by name is refused with a hint in --formats' words."""
    from cnnspec.cli import benchmark as command
    from cnnspec.errors import UsageError
    from cnnspec.export import benchmark, runtimes

    monkeypatch.setattr(runtimes, "installed", lambda runtime: runtime != "onnx")
    asked: list[list[str]] = []

    def timed(target: Path, formats: list[str], *args: object, **kwargs: object) -> dict:
        asked.append(list(formats))
        raise UsageError("stopped here", "(the test's)")

    monkeypatch.setattr(benchmark, "run_benchmark", timed)
    run = _damaged_run(tmp_path / "run")
    result = invoke("benchmark", run)
    assert result.exit_code == 2 and asked == [["keras", "tflite"]], result.output
    assert runtimes.missing_note("onnx") == (
        "onnx not timed: it needs onnxruntime (the Python module onnxruntime); install it with "
        "pip install 'cnnspec[export]'"
    )
    assert command.DEFAULT_FORMATS == ("keras", "onnx", "tflite")
    with pytest.raises(UsageError) as refused:
        runtimes.require("onnx", "leave onnx out of --formats (e.g. --formats keras)")
    hint = "install it with pip install 'cnnspec[export]', or leave onnx out of --formats"
    assert refused.value.hint == hint + " (e.g. --formats keras)"
