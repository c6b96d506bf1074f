"""What predict, evaluate, export, report, visualize and benchmark print of the user's names
(image files, class folders, paths): control characters shown escaped (``\\x1b``), never sent
to the terminal raw, as `train` prints them (cnnspec.cli.render.safe).

A class folder named ``dog\\x1b[2J`` cleared the screen on `cnnspec evaluate`, and an image
named ``new\\nline.png`` split `cnnspec predict`'s output in two. The fast tests stand in for
the model and the data (the printing is what they test); the slow one trains a real run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.test_report_support import invoke

#: Class names with ESC (a title-setting OSC, a screen-clearing CSI), BEL, CR, LF, C1 CSI.
CLASSES = ["cat\x1b]0;TITLE\x07", "dog\x1b[2J\r", "new\nline\x9b"]
#: How they look once escaped.
SHOWN_CLASSES = ["cat\\x1b]0;TITLE\\x07", "dog\\x1b[2J\\x0d", "new\\x0aline\\x9b"]
FILES = ["evil\x1b[31mRED\x1b[0m.png", "new\nline.png", "bell\x07cr\r.png"]
SHOWN_FILES = ["evil\\x1b[31mRED\\x1b[0m.png", "new\\x0aline.png", "bell\\x07cr\\x0d.png"]
#: What must never reach the terminal: C0 controls but the line breaks the command prints
#: itself, DEL, and the C1 controls (0x9b is a one-byte CSI on some terminals).
RAW = {chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))} - {"\n"}


def assert_no_raw_control(text: str) -> None:
    raw = sorted({f"\\x{ord(ch):02x}" for ch in text if ch in RAW})
    assert not raw, f"raw control characters {raw} in {text!r}"


def _lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.split("\n") if needle in line]


def _images(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in FILES:
        path = folder / name
        Image.fromarray(np.zeros((8, 8, 3), dtype="uint8")).save(path, format="PNG")
        paths.append(path)
    return paths


# -- predict ------------------------------------------------------------------------------------


def _classified(images: list[Path], k: int) -> list[dict[str, Any]]:
    top = [
        {"class": name, "index": i, "probability": p}
        for i, (name, p) in enumerate(zip(CLASSES, (0.7, 0.2, 0.1)))
    ]
    return [
        {"input": image.name, "notes": [f"{image.name}: L → 3 channels"], "top": top[:k]} for image in images
    ]


def _multilabel(images: list[Path], k: int) -> list[dict[str, Any]]:
    entry = {
        "task": "multilabel",
        "labels": CLASSES[:2],
        "threshold": 0.5,
        "probabilities": dict(zip(CLASSES, (0.9, 0.8, 0.1))),
    }
    return [
        {"input": image.name, "notes": [], "outputs": {CLASSES[2]: entry, "other": entry}} for image in images
    ]


@pytest.fixture
def stand_in_predict(monkeypatch):
    """predict without a model: the Keras path answers with the hostile names."""
    import cnnspec.cli.predict as predict_module
    import cnnspec.export.runtimes as runtimes

    def use(answer):
        monkeypatch.setattr(
            runtimes, "choose", lambda *args, **kwargs: ("keras", None, [f"auto: {CLASSES[1]}"])
        )
        monkeypatch.setattr(
            predict_module,
            "_predict_keras",
            lambda target, images, k, out=None, spec=None, views=(), ensemble=None, notes=None, wanted=None: (
                answer(images, k),
                list(CLASSES),
                Path(target) / "model.keras",
                [1.0],
            ),
        )

    return use


@pytest.mark.parametrize("answer", [_classified, _multilabel], ids=["classes", "multilabel"])
def test_predict_shows_file_and_class_names_escaped(tmp_path, stand_in_predict, answer):
    stand_in_predict(answer)
    images = _images(tmp_path / "in")
    result = invoke("predict", tmp_path / "run", *images)
    assert result.exit_code == 0, result.output
    assert_no_raw_control(result.output)
    for shown in SHOWN_FILES:
        assert _lines_with(result.stdout, shown), result.stdout  # each name on its one line
    for shown in SHOWN_CLASSES[:2]:
        assert shown in result.stdout
    assert f"note: auto: {SHOWN_CLASSES[1]}" in result.output


def test_predict_json_keeps_the_names_and_escapes_them_itself(tmp_path, stand_in_predict):
    stand_in_predict(_classified)
    images = _images(tmp_path / "in")
    result = invoke("predict", tmp_path / "run", *images, "--format", "json")
    assert result.exit_code == 0, result.output
    assert_no_raw_control(result.stdout)  # JSON writes \u001b, \n … itself
    doc = json.loads(result.stdout)
    assert [p["input"] for p in doc["predictions"]] == FILES
    assert doc["classes"] == CLASSES


# -- evaluate -----------------------------------------------------------------------------------


def _document(task: str | None, classes: list[str] = CLASSES) -> dict[str, Any]:
    row = {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    document: dict[str, Any] = {
        "name": "imgs",
        "runtime": "keras",
        "data": {"source": {"kind": "directory\x1b[2J", "path": "imgds"}, "images": 6},
        "loss": 0.7,
        "metrics": {"loss": 0.7, "accuracy": 0.5},
        "images_per_second": 100.0,
        "notes": [f"class {classes[0]} has 2 test images"],
    }
    if task is None:
        document.update(
            accuracy=0.5,
            class_names=list(classes),
            per_class={name: row for name in classes},
            macro_avg=row,
            weighted_avg=row,
        )
    else:
        document["task"] = task
    return document


@pytest.fixture
def stand_in_evaluate(monkeypatch):
    """evaluate without a model or data: an evaluation of the hostile class names."""
    import cnnspec.export.runtimes as runtimes
    import cnnspec.reporting.evaluation as evaluation
    import cnnspec.reporting.run as run
    import cnnspec.reporting.run_splits as run_splits
    import cnnspec.training.modelfile as modelfile

    def use(task: str | None, classes: list[str] = CLASSES):
        document = _document(task, classes)
        report = "\n".join(f"{name:>12}  0.5000" for name in classes)
        monkeypatch.setattr(
            run,
            "locate",
            lambda target, *args, **kwargs: SimpleNamespace(
                out_dir=target, run_dir=None, model_path=target / "model.keras", compiled=None
            ),
        )
        monkeypatch.setattr(run_splits, "check_data_known", lambda *args: None)  # (no data either)
        monkeypatch.setattr(runtimes, "choose", lambda *args, **kwargs: ("keras", None, []))
        monkeypatch.setattr(modelfile, "load_model", lambda *args, **kwargs: None)
        monkeypatch.setattr(
            evaluation, "evaluate", lambda *args, **kwargs: evaluation.Evaluation(document, report, None)
        )
        monkeypatch.setattr(
            evaluation,
            "write_evaluation",
            lambda result, out, *args, **kwargs: {"evaluation": out / "evaluation.json"},
        )

    return use


@pytest.mark.parametrize("task", [None, "multilabel"], ids=["classification", "multilabel"])
def test_evaluate_shows_class_names_and_paths_escaped(tmp_path, stand_in_evaluate, task):
    stand_in_evaluate(task)
    out = tmp_path / "out\x1b[2J\rx"
    result = invoke("evaluate", tmp_path / "run", "-o", out)
    assert result.exit_code == 0, result.output
    assert_no_raw_control(result.output)
    # (a task's report is text with its own line breaks: there a name's line break stays one)
    for shown in SHOWN_CLASSES if task is None else SHOWN_CLASSES[:2]:
        assert len(_lines_with(result.stdout, shown)) == 1, result.stdout  # one row, one line
    assert f"wrote {tmp_path}/out\\x1b[2J\\x0dx/evaluation.json" in result.stdout
    assert f"note: class {SHOWN_CLASSES[0]} has 2 test images" in result.output
    if task is None:
        assert "directory\\x1b[2J test set (6 images)" in result.stdout


#: A Latin-1 name read from the file system: Python holds its byte 0xE9 as the lone surrogate
#: U+DCE9, which text output showed as \udce9 where the JSON writes \xe9 (jsontext.utf8_text).
LATIN_1 = os.fsdecode(b"caf\xe9")
#: The note of a name shown so (jsontext.UNDECODABLE_NOTE), in part.
UNDECODABLE = "a file name that is not valid UTF-8 is written with each such byte as \\xNN"


@pytest.mark.parametrize("task", [None, "multilabel"], ids=["classification", "multilabel"])
def test_evaluate_text_shows_a_name_that_is_no_utf8_as_its_json_does(tmp_path, stand_in_evaluate, task):
    """A class folder and an --out folder named in Latin-1: shown with the byte as \\xe9, as
    evaluate's JSON writes them, not \\udce9, with the note that says why (once)."""
    stand_in_evaluate(task, [LATIN_1, "dog", "cow"])
    result = invoke("evaluate", tmp_path / "run", "-o", tmp_path / LATIN_1)
    assert result.exit_code == 0, result.output
    assert "\\udc" not in result.output
    assert f"wrote {tmp_path}/caf\\xe9/evaluation.json" in result.stdout
    assert "note: class caf\\xe9 has 2 test images" in result.stderr
    assert len(_lines_with(result.stdout, "caf\\xe9 ")) == 1  # its report row
    assert " ".join(result.stderr.split()).count(UNDECODABLE) == 1
    # JSON: the note printed, and in the document's notes, also where only --out is no UTF-8
    stand_in_evaluate(task, ["cat", "dog", "cow"])
    result = invoke("evaluate", tmp_path / "run", "-o", tmp_path / LATIN_1, "-f", "json")
    assert result.exit_code == 0, result.output
    notes = json.loads(result.stdout)["notes"]
    assert notes[-1].startswith(UNDECODABLE) and UNDECODABLE in " ".join(result.stderr.split())
    result = invoke("evaluate", tmp_path / "run", "-o", tmp_path / "out")  # (all UTF-8: no note)
    assert result.exit_code == 0 and "note: a file name" not in result.stderr, result.output


def test_evaluate_json_keeps_the_names_and_escapes_them_itself(tmp_path, stand_in_evaluate):
    stand_in_evaluate(None)
    result = invoke("evaluate", tmp_path / "run", "-o", tmp_path / "out\x1b[2J", "--format", "json")
    assert result.exit_code == 0, result.output
    assert_no_raw_control(result.stdout)
    doc = json.loads(result.stdout)
    assert doc["class_names"] == CLASSES and list(doc["per_class"]) == CLASSES
    assert doc["files"]["evaluation"] == str(tmp_path / "out\x1b[2J" / "evaluation.json")


# -- export, report, visualize, benchmark: the paths and messages they print --------------------


def test_export_shows_paths_notes_and_failures_escaped(tmp_path, monkeypatch):
    import cnnspec.export as export

    result_of = export.ExportResult(
        format="tflite",
        path=tmp_path / "m\x1b[2J\n.tflite",
        source=tmp_path / "run\x07" / "model.keras",
        quantize=None,
        max_abs_diff=1e-7,
        top1_agreement=1.0,
        tolerance=1e-4,
        batch=8,
        seconds=0.5,
        size_bytes=2048,
        runtime="litert",
        notes=["trained on \x1b]0;T\x07"],
    )
    monkeypatch.setattr(export, "export_model", lambda *args, **kwargs: result_of)
    result = invoke("export", tmp_path / "run\x07", "-f", "tflite", "-o", result_of.path)
    assert result.exit_code == 0, result.output
    assert_no_raw_control(result.output)
    assert "m\\x1b[2J\\x0a.tflite" in result.stdout and "run\\x07" in result.stdout
    assert "note: trained on \\x1b]0;T\\x07" in result.stdout

    def failing(*args, **kwargs):
        raise export.ExportFailed("the tflite converter failed on run\x1b[2J/[/bold]model.keras")

    monkeypatch.setattr(export, "export_model", failing)
    result = invoke("export", tmp_path / "run", "-f", "tflite")
    assert result.exit_code == 1, result.output
    assert_no_raw_control(result.output)
    assert "failed on run\\x1b[2J/[/bold]model.keras" in result.output  # (markup shown, not read)


def test_report_shows_its_path_escaped(tmp_path, monkeypatch):
    import cnnspec.reporting.html as html

    def write_report(run_dir: Path, out: Path | None = None, into_run: bool = True, on_problem=None) -> Path:
        out.write_text("<html></html>")
        return out

    monkeypatch.setattr(html, "write_report", write_report)
    run = tmp_path / "run\x1b[2J"
    run.mkdir()
    result = invoke("report", run, "-o", run / "r\x07\n.html")
    assert result.exit_code == 0, result.output
    assert_no_raw_control(result.output)
    assert "wrote " + str(tmp_path) + "/run\\x1b[2J/r\\x07\\x0a.html" in result.stdout


def _visualize_history(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Any:
    """``visualize FOLDER history`` with a stand-in run there and a stand-in picture."""
    import cnnspec.reporting.run as run
    import cnnspec.reporting.views as views

    def write_history(found: Any, path: Path) -> Path:
        path.write_bytes(b"png")
        return path

    monkeypatch.setattr(
        run,
        "locate",
        lambda target, *args, **kwargs: SimpleNamespace(
            out_dir=target, run_dir=None, model_path=target / "model.keras"
        ),
    )
    monkeypatch.setattr(views, "write_history", write_history)
    folder.mkdir()
    return invoke("visualize", folder, "history")


def test_visualize_shows_its_path_escaped(tmp_path, monkeypatch):
    result = _visualize_history(monkeypatch, tmp_path / "run\x1b[2J\r")
    assert result.exit_code == 0, result.output
    assert_no_raw_control(result.output)
    assert "wrote " + str(tmp_path) + "/run\\x1b[2J\\x0d/history.png" in result.stdout


def test_visualize_shows_a_path_that_is_no_utf8_as_the_json_does(tmp_path, monkeypatch):
    """A run folder named in Latin-1: `wrote …/caf\\xe9/history.png` with the note, not \\udce9."""
    result = _visualize_history(monkeypatch, tmp_path / LATIN_1)
    assert result.exit_code == 0, result.output
    assert "\\udc" not in result.output
    assert f"wrote {tmp_path}/caf\\xe9/history.png" in result.stdout
    assert " ".join(result.stderr.split()).count(UNDECODABLE) == 1


def test_benchmark_shows_names_statuses_and_paths_escaped(tmp_path, monkeypatch):
    import cnnspec.export.benchmark as benchmark
    import cnnspec.reporting.run as run

    ok = {
        "runtime": "keras",
        "status": "ok",
        "latency_ms": {"1": {"median": 1.0, "p90": 2.0}},
        "throughput": {"1": 10.0},
        "accuracy": 0.5,
        "size_bytes": 100,
        "peak_memory_mb": 10.0,
        "load_seconds": 0.1,
    }
    document = {
        "name": "net\x1b]0;T\x07",
        "settings": {"batches": [1], "threads": {"intra_op": 1, "inter_op": 1}},
        "data": {"images": 5},
        "results": [ok, {"runtime": "onnx", "status": "failed on \x1b[2J"}],
        "notes": ["kept \x1b[31m"],
    }

    def run_benchmark(target: Path, *args: Any, progress: Any, **kwargs: Any) -> dict[str, Any]:
        progress(f"timing {target.name}")
        return document

    folder = tmp_path / "run\x1b[2J"
    folder.mkdir()
    monkeypatch.setattr(
        run, "locate", lambda target, *args, **kwargs: SimpleNamespace(out_dir=target, run_dir=target)
    )
    monkeypatch.setattr(benchmark, "run_benchmark", run_benchmark)
    monkeypatch.setattr(benchmark, "read_previous", lambda *args, **kwargs: None)
    monkeypatch.setattr(
        benchmark, "write_results", lambda doc, out, *args, **kwargs: {"results": out / "benchmark.json"}
    )
    result = invoke("benchmark", folder, "--formats", "keras,onnx", "--batch", "1")
    assert result.exit_code == 0, result.output
    assert_no_raw_control(result.output)
    for shown in ("net\\x1b]0;T\\x07", "failed on \\x1b[2J", "kept \\x1b[31m", "timing run\\x1b[2J"):
        assert shown in result.output
    assert "wrote " + str(tmp_path) + "/run\\x1b[2J/benchmark.json" in result.stdout


# -- end to end: a run trained on class folders with such names ---------------------------------

SPEC = """\
cnnspec: 1
name: hostile_names
input: {shape: [8, 8, 3]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same}
  - global_avg_pool2d
  - dense: {units: 2, activation: softmax}
data: {source: {directory: images}, validation_split: 0.2, test_split: 0.3}
training: {epochs: 1, batch_size: 8, seed: 1}
"""


@pytest.mark.slow
def test_a_run_with_hostile_class_folders_evaluates_and_predicts_escaped(tmp_path):
    """The audit's repro: class folders ``cat\\x1b]0;TITLE\\x07`` and ``dog\\x1b[2J\\r``."""
    rng = np.random.default_rng(0)
    for name in CLASSES[:2]:
        folder = tmp_path / "images" / name
        folder.mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype="uint8")).save(folder / f"{i}.png")
    (tmp_path / "spec.yaml").write_text(SPEC)
    run = tmp_path / "run"
    trained = invoke("train", tmp_path / "spec.yaml", "--out", run)
    assert trained.exit_code == 0, trained.output
    evaluated = invoke("evaluate", run, "-o", tmp_path / "ev")
    assert evaluated.exit_code == 0, evaluated.output
    # stdout: matplotlib's own "Glyph 27 (\x1b) missing" warnings go to stderr, raw
    assert_no_raw_control(evaluated.stdout)
    for shown in SHOWN_CLASSES[:2]:
        assert len(_lines_with(evaluated.stdout, shown)) == 1, evaluated.stdout
    predicted = invoke("predict", run, *_images(tmp_path / "in"), "--runtime", "keras")
    assert predicted.exit_code == 0, predicted.output
    assert_no_raw_control(predicted.output)
    for shown in SHOWN_FILES:
        assert _lines_with(predicted.stdout, shown), predicted.stdout


def test_confusion_matrix_labels_show_control_characters_escaped(tmp_path):
    """A class folder named with an ESC: the tick label shows `\\x1b`, and matplotlib has no
    raw character to complain about (its warning printed it to the terminal)."""
    import warnings

    from cnnspec.training.plots import plot_confusion_matrix

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot_confusion_matrix([[1, 0], [0, 1]], ["cat\x1b]0;T\x07", "dog\x1b[2J"], tmp_path / "m.png")
    assert (tmp_path / "m.png").is_file()
    assert not [w for w in caught if "\x1b" in str(w.message) or "\x07" in str(w.message)]


def test_pillows_reason_names_a_file_that_is_no_utf8_as_cnnspec_names_it(tmp_path):
    """A bad image `caf\\xe9.png` was named so, and Pillow's reason beside it quoted it
    `caf\\udce9.png` (its repr of the byte), in train's, evaluate's and predict's errors."""
    from cnnspec.errors import UsageError
    from cnnspec.training.badfiles import check_file
    from cnnspec.training.imagefiles import _unreadable

    path = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.png"))
    path.write_bytes(b"garbage")
    reason = check_file(path)
    assert reason is not None and "caf\\xe9.png" in reason and "udce9" not in reason
    try:
        from PIL import Image as PilImage

        PilImage.open(path)
    except Exception as exc:
        error: UsageError = _unreadable(exc, "caf\\xe9.png")
    assert error.hint is not None and "caf\\xe9.png" in error.hint and "udce9" not in error.hint
