"""Smoke tests: every benchmark script runs on tiny settings and writes well-formed results.

No timing is asserted (benchmarks are not tests); the figures only have to exist and be
positive. Each script runs as a child process, as ``make bench`` runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

pytestmark = pytest.mark.slow


#: Each benchmark script run in a child process, as `make bench` runs it: those that build or
#: train with TensorFlow take about 40 s of CPU, and the TF-free ones (front end, codegen, zoo,
#: language server, graphs) about 10 s more, which `make test`'s 10 minutes cannot spare. They
#: test the benchmarks, not cnnspec, so `make bench-smoke` (part of `make test-full`) runs them
#: and `make bench-quick` runs the scripts; the in-process tests of their helpers stay in
#: `make test`.
BENCHMARK_RUN = pytest.mark.skipif(
    not os.environ.get("CNNSPEC_BENCH_SMOKE"),
    reason="the benchmark scripts run in child processes in `make bench-smoke` (make test-full)",
)


def cnnspec_has(command: str) -> bool:
    """Whether this checkout's `cnnspec` has ``command``: asked of its Typer app in this process
    (a `cnnspec COMMAND --help` process of its own told the same, a cold start later)."""
    from typer.testing import CliRunner

    from cnnspec.cli.app import app

    return CliRunner().invoke(app, [command, "--help"]).exit_code == 0


def run_bench(script: str, tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / f"{Path(script).stem}.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args, "--json", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out.read_text(encoding="utf-8"))


def positive(stat: dict[str, Any]) -> bool:
    return stat["n"] >= 1 and stat["median"] > 0 and stat["min"] <= stat["median"] <= stat["max"]


@BENCHMARK_RUN
def test_frontend(tmp_path: Path) -> None:
    data = run_bench("bench_frontend.py", tmp_path, "--repeats", "1", "--no-baseline")
    assert positive(data["cold"]["validate"]) and data["cold"]["ratio"] is None
    per_spec = data["in_process"]["per_spec"]
    assert {"resnet50.yaml", "densenet121.yaml"} <= set(per_spec)
    assert set(per_spec["resnet50.yaml"]["stages"]) == {"load", "validate", "resolve_infer"}
    assert data["in_process"]["specs_per_second"] > 0


@BENCHMARK_RUN
def test_build(tmp_path: Path) -> None:
    data = run_bench("bench_build.py", tmp_path, "--repeats", "1", "--models", "basic_cnn")
    pair = data["pairs"]["basic_cnn"]
    assert pair["parameters"] == 74_058
    assert positive(pair["cnnspec"]) and positive(pair["hand_written"]) and pair["cpu_ratio"] > 0
    assert {"intra_op", "inter_op"} <= set(data["threads"])


@BENCHMARK_RUN
def test_train_against_seed_script(tmp_path: Path) -> None:
    data = run_bench(
        "bench_train.py",
        tmp_path,
        *("--epochs", "2", "--repeats", "1", "--train-images", "64", "--test-images", "16"),
        *("--models", "basic_cnn", "--modes", "augmented"),
    )
    pair = data["pairs"]["basic_cnn/augmented"]
    for side in ("cnnspec", "hand_written"):
        run = pair[side]["runs"][0]
        assert run["train_images"] == 64 and run["validation_images"] == 16
        assert len(run["epoch_seconds"]) == 2
        assert run["images_per_second"] > 0 and run["peak_rss"] > 0
        assert len(run["epoch_end_cpu"]) == 2 and run["images_per_cpu_second"] > 0
    assert pair["ratio"] > 0


@BENCHMARK_RUN
def test_temperature(tmp_path: Path) -> None:
    data = run_bench("bench_temperature.py", tmp_path, "--seeds", "1", "--epochs", "2")
    for rows in data["setups"].values():
        (row,) = rows
        assert row["temperature"] > 0 and row["validation_images"] > 0
        assert row["before"]["accuracy"] == row["after"]["accuracy"]  # a temperature keeps the top class
        # the exported file, the temperature folded in, answers as the scaled Keras model
        assert row["onnx_file"]["ece"] == pytest.approx(row["after"]["ece"], abs=1e-4)
        assert 0 <= row["after"]["ece"] <= 1 and row["after"]["nll"] > 0


@BENCHMARK_RUN
def test_focal(tmp_path: Path) -> None:
    data = run_bench("bench_focal.py", tmp_path, "--seeds", "1", "--epochs", "1")
    counts = data["train_counts"]
    assert all(counts[str(c)] < counts["0"] / 5 for c in (5, 6, 7, 8, 9))  # the rare classes
    assert set(data["setups"]) == {"crossentropy", "class weights", "focal", "focal + class weights"}
    for (row,) in data["setups"].values():
        assert 0 <= row["rare_recall"] <= 1 and 0 <= row["macro_f1"] <= 1 and row["train_seconds"] > 0


@BENCHMARK_RUN
def test_digits(tmp_path: Path) -> None:
    data = run_bench("bench_digits.py", tmp_path, "--seeds", "1", "--epochs", "1")
    run = data["runs"]["1"]
    assert 0 <= run["cnnspec"]["test_accuracy"] <= 1
    assert run["svc"]["test_accuracy"] > 0.9  # the classical baseline on the same split
    assert run["cnnspec"]["test_images"] == run["test_images"]


@BENCHMARK_RUN
def test_codegen(tmp_path: Path) -> None:
    # a small spec: the smoke test needs the figures, not the emitter's and ruff's work on ResNet-50
    data = run_bench(
        "bench_codegen.py", tmp_path, "--repeats", "1", "--no-baseline", "--spec", "specs/basic_cnn.yaml"
    )
    if not cnnspec_has("codegen"):
        assert data["available"] is False
        return
    assert positive(data["codegen"]) and positive(data["validate"])


@BENCHMARK_RUN
def test_lsp(tmp_path: Path) -> None:
    pytest.importorskip("pygls", reason="the `lsp` extra is part of `dev`")
    data = run_bench("bench_lsp.py", tmp_path, "--repeats", "1", "--cold", "1")
    assert positive(data["cold"]["initialize_ms"]) and positive(data["cold"]["first_diagnostics_ms"])
    assert positive(data["warm"]["diagnostics_ms"]) and positive(data["warm"]["hover_ms"])
    assert 1 <= data["warm"]["burst"]["checks"] <= data["warm"]["burst"]["edits"]
    long = data["long_search"]  # (answered before the search's finding: its candidates beside)
    assert long["first_diagnostics_ms"] > 0 and 0 < long["hover_ms"] < 1000 * long["search_finding_s"]


def test_synthetic_data_splits_alike(tmp_path: Path) -> None:
    import numpy as np
    import synthetic

    info = synthetic.write(tmp_path, 50, 10)
    with np.load(info["reference"]) as ref, np.load(info["cnnspec"]) as ours:
        assert ref["x_train"].shape == (50, 32, 32, 3) and ref["x_train"].dtype == np.uint8
        assert ours["x_train"].shape[0] == 60
        assert round(60 * info["validation_split"]) == 10
        assert (ours["x_test"] == ref["x_test"]).all()


def test_report_keeps_hand_written_notes(tmp_path: Path) -> None:
    import report

    readme = tmp_path / "README.md"
    readme.write_text(
        f"stale figures\n{report.NOTES_START}\nmy analysis\n{report.NOTES_END}\n", encoding="utf-8"
    )
    results = {
        "meta": {"date": "today", "cores": 2, "versions": {"keras": "3"}},
        "train": {"available": False, "reason": "no train command"},
    }
    report.write_readme(results, readme)
    text = readme.read_text(encoding="utf-8")
    assert "my analysis" in text and "not measured: no train command" in text and "stale figures" not in text


@BENCHMARK_RUN
def test_zoo(tmp_path: Path) -> None:
    data = run_bench("bench_zoo.py", tmp_path, "--repeats", "1", "--no-baseline")
    assert positive(data["cold"]["validate"]) and positive(data["cold"]["zoo"])
    assert data["cold"]["ratio"] is None
    rows = data["variants"]
    assert {"resnet50", "vgg16"} <= {row["name"] for row in rows}
    assert all(row["params"] > 0 and 0 < row["spec_lines"] <= 80 for row in rows)


@BENCHMARK_RUN
def test_graphs(tmp_path: Path) -> None:
    data = run_bench("bench_graphs.py", tmp_path)
    flat, blocks = data["nasnet_cells/6 without"], data["nasnet_cells/6 with graph blocks"]
    assert flat["parameters"] == blocks["parameters"] > 0
    assert blocks["spec_lines"] < flat["spec_lines"] and blocks["code_lines"] < flat["code_lines"]
    assert data["unet"]["code_lines"] > 0


@BENCHMARK_RUN
def test_zoo_validate(tmp_path: Path) -> None:
    data = run_bench("bench_zoo_validate.py", tmp_path, "--repeats", "1", "--no-baseline")
    assert positive(data["cold"]["wall"]["validate_zoo"]) and positive(data["cold"]["cpu"]["validate_tiny"])
    assert data["cold"]["ratio"] is None
    assert data["passes"]["variants"] == data["cold"]["variants"] >= 32
    assert set(data["passes"]["passes"]) >= {"load", "check_schema", "resolve"}


@BENCHMARK_RUN
def test_shapes(tmp_path: Path) -> None:
    data = run_bench("bench_shapes.py", tmp_path, "--images", "50", "--size", "16", "--repeats", "1")
    assert data["images"] == 50 and positive(data["wall_s"]) and positive(data["cpu_s"])
    assert set(data["targets_s"]) == {"class", "multilabel", "count", "area", "mask"}
