"""The files cnnspec writes in groups (an export and its record, ``import --weights``' spec and
weights, evaluate's picture and evaluation.json, ``build --plot``'s files, benchmark's JSON and
chart) each with a failure injected on the group's second rename: the files there before stay
as they were (or none appears). Before, the first file was already in place: a new export
beside the previous record, new weights beside the previous spec, and so on."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from cnnspec.cli.app import app
from tests.test_import import TINY_KERAS

NO_SPACE = OSError(errno.ENOSPC, "No space left on device")


def _fail_second_rename_into(monkeypatch: pytest.MonkeyPatch, targets: list[Path]) -> list[Path]:
    """Make the second ``os.replace`` onto one of ``targets`` fail (a full disk); every other
    rename (temps, files kept aside, putting back) goes on. Returns the targets renamed onto
    (the first two: the group's renames; then those putting a file back)."""
    real = os.replace
    wanted = {os.path.abspath(t) for t in targets}
    onto: list[Path] = []

    def replace(source, destination):
        if os.path.abspath(destination) in wanted:
            onto.append(Path(destination))
            if len(onto) == 2:
                raise NO_SPACE
        return real(source, destination)

    monkeypatch.setattr(os, "replace", replace)
    return onto


def _contents(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too: a temp left behind shows) by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_export_whose_record_cannot_be_renamed_keeps_the_previous_export(tmp_path, monkeypatch):
    from cnnspec.errors import WriteError
    from cnnspec.export.exporter import _with_record, _write_bytes
    from cnnspec.export.runtimes import record_path

    export = tmp_path / "export" / "model.onnx"
    export.parent.mkdir()
    export.write_bytes(b"previous export")
    record_path(export).write_text("previous record")
    before = _contents(tmp_path)
    onto = _fail_second_rename_into(monkeypatch, [export, record_path(export)])
    made = _with_record(export, 10, lambda temp: b"record of " + temp.read_bytes())
    with pytest.raises(WriteError, match="No space left") as caught, made as temp:
        _write_bytes(temp, b"new export")
    assert onto[:2] == [export, record_path(export)] and caught.value.path == record_path(export)
    assert _contents(tmp_path) == before
    # and a first export: neither file appears
    export.unlink()
    record_path(export).unlink()
    onto.clear()
    with pytest.raises(WriteError), _with_record(export, 10, lambda temp: b"record") as temp:
        _write_bytes(temp, b"new export")
    assert os.listdir(export.parent) == []


@pytest.mark.parametrize("before", ["earlier import", "none"])
def test_import_force_whose_second_file_fails_keeps_the_spec_and_weights_as_they_were(
    tmp_path, monkeypatch, before
):
    out = tmp_path / "out.yaml"
    weights = tmp_path / "out.weights.h5"
    if before == "earlier import":
        out.write_text("cnnspec: 1  # the earlier import's spec\n")
        weights.write_bytes(b"the earlier import's weights")
    previous = _contents(tmp_path)
    onto = _fail_second_rename_into(monkeypatch, [out, weights])
    result = CliRunner().invoke(app, ["import", str(TINY_KERAS), "-o", str(out), "--weights", "--force"])
    output = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert "No space left on device" in output and "Traceback" not in output
    assert len(onto) >= 2  # (the first then put back, when there was one)
    assert _contents(tmp_path) == previous  # both old, or neither there
    monkeypatch.undo()
    again = CliRunner().invoke(app, ["import", str(TINY_KERAS), "-o", str(out), "--weights", "--force"])
    assert again.exit_code == 0, again.output
    assert "weights: out.weights.h5" in out.read_text() and weights.stat().st_size > 1000


def _evaluation(accuracy: float) -> SimpleNamespace:
    """A classification evaluation as write_evaluation reads it (its document only)."""
    document = {
        "name": "tiny",
        "accuracy": accuracy,
        "confusion_matrix": [[3, 1], [0, 4]],
        "class_names": ["a", "b"],
        "data": {"source": {"kind": "digits"}, "images": 8},
    }
    return SimpleNamespace(document=document, data=None, outputs=None)


def test_an_evaluation_whose_json_cannot_be_renamed_keeps_the_previous_picture(tmp_path, monkeypatch):
    from cnnspec.errors import WriteError
    from cnnspec.reporting.evaluation import write_evaluation

    write_evaluation(_evaluation(0.5), tmp_path, "tiny")  # type: ignore[arg-type]
    before = _contents(tmp_path)
    assert set(before) == {"evaluation.json", "confusion_matrix.png"}
    onto = _fail_second_rename_into(
        monkeypatch, [tmp_path / "evaluation.json", tmp_path / "confusion_matrix.png"]
    )
    with pytest.raises(WriteError, match="No space left") as caught:
        write_evaluation(_evaluation(0.875), tmp_path, "tiny")  # type: ignore[arg-type]
    assert [p.name for p in onto[:2]] == ["confusion_matrix.png", "evaluation.json"]
    assert caught.value.path == tmp_path / "evaluation.json"
    assert _contents(tmp_path) == before  # the 0.5 picture still beside the 0.5 evaluation.json


def test_a_graph_whose_mermaid_file_cannot_be_renamed_keeps_the_previous_dot(tmp_path, monkeypatch):
    from cnnspec.analysis.passes import compile_text
    from cnnspec.cli import build
    from cnnspec.cli.build import write_graph
    from cnnspec.errors import WriteError
    from tests.conftest import ROOT

    monkeypatch.setattr(build.shutil, "which", lambda name: None)  # (no Graphviz: the texts alone)
    ir = compile_text((ROOT / "specs" / "basic_cnn.yaml").read_text(encoding="utf-8")).ir
    target = tmp_path / "graph.png"
    write_graph(ir, target, origin="build from first.yaml")
    before = _contents(tmp_path)
    assert set(before) == {"graph.dot", "graph.mmd"}
    onto = _fail_second_rename_into(monkeypatch, [tmp_path / "graph.dot", tmp_path / "graph.mmd"])
    with pytest.raises(WriteError, match="No space left"):
        write_graph(ir, target, origin="build from second.yaml")
    assert [p.name for p in onto[:2]] == ["graph.dot", "graph.mmd"]
    assert _contents(tmp_path) == before


def test_a_benchmark_whose_chart_cannot_be_renamed_keeps_the_previous_json(tmp_path, monkeypatch):
    from cnnspec.errors import WriteError
    from cnnspec.export import benchmark

    monkeypatch.setattr(benchmark, "chart_png", lambda document: f"chart {document['n']}".encode())
    document = {"n": 1, "results": [{"runtime": "keras", "status": "ok"}]}
    benchmark.write_results(document, tmp_path)
    before = _contents(tmp_path)
    assert set(before) == {"benchmark.json", "benchmark.png"}
    onto = _fail_second_rename_into(monkeypatch, [tmp_path / "benchmark.json", tmp_path / "benchmark.png"])
    with pytest.raises(WriteError, match="No space left") as caught:
        benchmark.write_results({**document, "n": 2}, tmp_path)
    assert [p.name for p in onto[:2]] == ["benchmark.json", "benchmark.png"]
    assert caught.value.path == tmp_path / "benchmark.png"
    assert _contents(tmp_path) == before
