"""report.html from a run folder written by hand (``cnnspec/reporting/html.py``), without
TensorFlow: no model file, so the page is built from lock.json, metrics.json, history.json and
the resolved spec, and says what it could not show. (The full page of a trained run, model parts
included, is checked end to end in test_report.py.)"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import pytest

from cnnspec.errors import UsageError
from cnnspec.reporting.html import data_uri, write_report

SPEC = """\
cnnspec: 1
name: shapes
description: "Circles <b>vs</b> squares & triangles"
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3}
  - flatten
  - dense: {units: 3, activation: softmax}
training:
  optimizer: {sgd: {learning_rate: 0.05, momentum: 0.9, use_ema: true}}
"""

LOCK = {
    "format": 1,
    "created": "2026-01-02T03:04:05+0000",
    "spec_file": "specs/shapes.yaml",
    "spec_hash": "0123456789abcdef0123456789",
    "seed": 42,
    "deterministic": True,
    "mixing": {"mixup": {"alpha": 0.4}, "cutmix": {"factor": 1.0}, "mix_switch": 0.5},
    "data": {
        "kind": "npz",
        "path": "/data/shapes.npz",
        "sizes": {"train": 1200, "validation": 100, "test": 300},
        "sample_shape": [8, 8, 1],
    },
    "versions": {"python": "3.11.9", "cnnspec": "0.9", "onnx": "not installed"},
    "machine": {"platform": "Linux-x86_64", "cpu_count": 16, "gpus": ["H200"]},
}

METRICS = {
    "test_accuracy": 0.875,
    "test_loss": 0.31234,
    "test_images": 300,
    "macro_f1": 0.8,
    "weighted_f1": 0.81,
    "final_val_accuracy": 0.9,
    "epochs_run": 3,
    "epochs_planned": 5,
    "stopped_early": True,
    "best_epoch": 2,
    "train_seconds": 12.5,
    "images_per_second_steady": 2345.6,
    "per_class": {
        "circle": {"precision": 0.95, "recall": 0.9, "f1": 0.925, "support": 100},
        "square": {"precision": 0.7, "recall": 0.72, "f1": 0.71, "support": 100},
        "<tri>": {"precision": 0.8, "recall": 0.85, "f1": 0.82, "support": 100},
    },
    "macro_avg": {"precision": 0.82, "recall": 0.82, "f1": 0.8},
    "confusion_matrix": [[90, 5, 5], [10, 72, 18], [5, 10, 85]],
    "class_names": ["circle", "square", "<tri>"],
}

HISTORY = {
    "epoch": [1, 2, 3],
    "loss": [1.0, 0.6, 0.4],
    "accuracy": [0.5, 0.7, 0.8],
    "val_loss": [0.9, 0.5, 0.45],
    "val_accuracy": [0.6, 0.8, 0.9],
}


def make_run(folder: Path, *, metrics: bool = True) -> Path:
    folder.mkdir()
    (folder / "resolved.yaml").write_text(SPEC)
    (folder / "lock.json").write_text(json.dumps(LOCK))
    (folder / "history.json").write_text(json.dumps(HISTORY))
    if metrics:
        (folder / "metrics.json").write_text(json.dumps(METRICS))
    return folder


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> str:
    run = make_run(tmp_path_factory.mktemp("report") / "run")
    return write_report(run).read_text(encoding="utf-8")


def text_of(page: str) -> str:
    """The page's visible text, tags removed and entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_the_key_figures_come_from_metrics_json(page):
    text = text_of(page)
    for expected in (
        "test accuracy 87.50% 300 test images",
        "test loss 0.3123",
        "macro F1 0.8000 weighted 0.8100",
        "validation accuracy 90.00% last epoch",
        "epochs 3/5 stopped early, best epoch 2",
        "training time 12.5 s 2,346 images/s",
    ):
        assert expected in text, expected
    assert "training accuracy" not in text  # no final_accuracy in metrics.json: no card
    assert re.search(r"parameters [\d,]+ [\d.]+ [KM]?i?B as float32", text)


def test_the_per_class_table_marks_weak_classes(page):
    text = text_of(page)
    assert "circle 0.9500 0.9000 0.9250 100" in text
    assert "macro average 0.8200 0.8200 0.8000 300" in text  # support: all classes together
    assert page.count('class="bar low"') == 1  # square's F1 0.71 is below 0.8


def test_the_run_is_described_from_lock_json(page):
    text = text_of(page)
    assert "trained 2026-01-02 03:04:05+0000" in text
    assert "npz (/data/shapes.npz): 1,200 training, 100 validation, 300 test images of 8×8×1" in text
    assert "seed 42 (deterministic)" in text
    assert "label mixing mixup, alpha 0.4; cutmix, factor 1.0; mix_switch 0.5" in text
    assert (
        "optimizer sgd at 0.05 (momentum 0.9, use_ema true); validation, early stopping and "
        "checkpoints on the averaged weights"
    ) in text
    assert "python 3.11.9, cnnspec 0.9" in text and "onnx" not in text
    assert "Linux-x86_64, 16 CPUs, GPU: H200" in text
    assert "spec hash 0123456789abcdef…" in text


def test_user_text_is_escaped(page):
    assert "Circles &lt;b&gt;vs&lt;/b&gt; squares &amp; triangles" in page and "<b>vs</b>" not in page
    assert "&lt;tri&gt;" in page and "<tri>" not in page


def test_pictures_are_inline_pngs_and_nothing_is_loaded_from_elsewhere(page):
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == 2  # the training curves and the confusion matrix
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]).startswith(b"\x89PNG")
    assert "Content-Security-Policy" in page and "<script" not in page


def test_what_needs_the_model_is_a_note_not_a_failure(page):
    text = text_of(page)
    assert "model.keras is missing, so there are no sample predictions or feature maps" in text
    assert 'id="samples"' not in page and 'id="features"' not in page
    # the layer table comes from the spec, not the model
    assert "conv2d_1" in text and "dense_1" in text


def test_an_unfinished_run_says_so(tmp_path):
    run = make_run(tmp_path / "run", metrics=False)
    text = text_of(write_report(run, out=tmp_path / "page.html").read_text())
    assert "metrics.json is missing: the run has not finished" in text
    assert "test accuracy" not in text and (run / "history.png").is_file()
    assert not (run / "report.html").exists()  # written where --out said


def test_a_run_folder_whose_name_is_not_utf8_is_shown_with_each_such_byte_as_xnn(tmp_path):
    # The byte 0xE9 (é in Latin-1) alone is no UTF-8: Python holds it as the surrogate \udce9,
    # which the page once rendered raw and could not write (UnicodeEncodeError, exit 3).
    run = make_run(tmp_path / "r\udce9<b>")
    page = write_report(run).read_bytes().decode("utf-8")  # (strict: the page is UTF-8)
    assert "r\\xe9&lt;b&gt;" in page  # shown as the terminal shows it, and still escaped
    assert "\udce9" not in page and "<b>" not in page


@pytest.mark.parametrize(("make", "expected"), [(False, "does not exist"), (True, "lock.json")])
def test_only_run_folders_are_reported(tmp_path, make, expected):
    folder = tmp_path / "folder"
    if make:
        folder.mkdir()
    with pytest.raises(UsageError, match=expected):
        write_report(folder)


def test_data_uri_round_trips_bytes():
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    uri = data_uri(png)
    assert uri.startswith("data:image/png;base64,") and base64.b64decode(uri.split(",", 1)[1]) == png


def test_curves_are_drawn_again_when_history_json_is_newer(tmp_path):
    """A run resumed and stopped again has a history.json newer than its history.png."""
    import os

    run = make_run(tmp_path / "run", metrics=False)
    write_report(run)
    first = (run / "history.png").read_bytes()
    longer = {key: [*values, values[-1]] for key, values in HISTORY.items()}
    longer["epoch"] = [1, 2, 3, 4]
    (run / "history.json").write_text(json.dumps(longer))
    stamp = (run / "history.png").stat().st_mtime
    os.utime(run / "history.json", (stamp + 5, stamp + 5))
    write_report(run)
    assert (run / "history.png").read_bytes() != first


def test_a_report_elsewhere_draws_nothing_into_a_run_it_does_not_own(tmp_path):
    run = make_run(tmp_path / "run", metrics=False)
    page = write_report(run, out=tmp_path / "page.html", into_run=False).read_text()
    assert not (run / "history.png").exists()
    assert 'alt="accuracy and loss per epoch' in page  # drawn aside, shown inline; a classifier's panels


def test_the_caption_names_the_figures_the_curves_show(tmp_path):
    run = make_run(tmp_path / "run")
    history = {
        "epoch": [1, 2],
        "loss": [0.9, 0.5],
        "mae": [0.4, 0.3],
        "val_loss": [1.0, 0.6],
        "val_r2": [0.1, 0.2],
    }
    (run / "history.json").write_text(json.dumps(history))
    text = text_of(write_report(run, out=tmp_path / "page.html", into_run=False).read_text())
    assert "Loss, mae and r2 per epoch on the training and validation data." in text


def test_the_caption_says_what_the_curves_were_measured_on(tmp_path):
    run = make_run(tmp_path / "run")
    no_val = {key: values for key, values in HISTORY.items() if not key.startswith("val_")}
    (run / "history.json").write_text(json.dumps(no_val))
    text = text_of(write_report(run).read_text())
    assert "on the training data (the run had no validation split)" in text
    assert "training and validation data" not in text


def test_a_diverged_runs_figures_say_so(tmp_path):
    run = make_run(tmp_path / "run")
    (run / "metrics.json").write_text(
        json.dumps({**METRICS, "test_accuracy": "nan", "test_loss": float("nan")})
    )
    text = text_of(write_report(run).read_text())
    assert "nan%" not in text.lower() and "not a number (the run diverged)" in text


def _benchmark_row(runtime: str, **figure: object) -> dict:
    return {
        "runtime": runtime,
        "status": "ok",
        "latency_ms": {"1": {"median": 1.0, "p90": 1.5, "runs": 3}},
        "throughput": {"1": 900.0},
        "size_bytes": 2048,
        "peak_memory_mb": 80.0,
        **figure,
    }


@pytest.mark.parametrize(
    ("rows", "title", "cells"),
    [
        ([_benchmark_row("onnx", metric="MAE", score=0.25, accuracy=None)], "MAE", ["0.2500"]),
        ([_benchmark_row("onnx", accuracy=0.875)], "accuracy", ["0.8750"]),  # an older benchmark.json
        (
            [_benchmark_row("keras", metric="MAE", score=0.25), _benchmark_row("onnx", accuracy=0.5)],
            "score",
            ["MAE 0.2500", "accuracy 0.5000"],
        ),
    ],
    ids=["task", "older", "mixed"],
)
def test_the_runtimes_table_shows_each_rows_own_test_figure(tmp_path, rows, title, cells):
    """A task model's benchmark rows carry their own figure (the regression's MAE): the page
    names it as the terminal table does, rather than an empty accuracy column."""
    run = make_run(tmp_path / "run")
    document = {
        "name": "shapes",
        "settings": {"batches": [1], "threads": {"intra_op": 1, "inter_op": 1}},
        "data": {"images": 30},
        "results": rows,
    }
    (run / "benchmark.json").write_text(json.dumps(document))
    page = write_report(run).read_text(encoding="utf-8")
    header = re.search(r'<section id="benchmark">.*?</thead>', page, re.S)
    assert header is not None and f'<th class="num">{title}</th>' in header.group(0)
    for cell in cells:
        assert f'<td class="num">{cell}</td>' in page


def multi_output_benchmark(run: Path) -> None:
    """A benchmark.json of a model of two outputs (a mask and a count) in ``run``, its ONNX row
    compared with Keras output by output."""

    def row(runtime: str, compared: dict) -> dict:
        mask = {"task": "segmentation", "metric": "mean IoU", "score": 0.5, "test_mean_iou": 0.5,
                "test_pixel_accuracy": 0.75, "loss": 0.5, **compared}  # fmt: skip
        count = {"task": "regression", "metric": "MAE", "score": 0.25, "test_mae": 0.25, "test_r2": 0.125,
                 "loss": 0.0625}  # fmt: skip
        figures = {"metric": "mask mean IoU", "score": 0.5, "accuracy": None, "loss": 0.5625}
        return _benchmark_row(runtime, **figures, outputs={"mask": mask, "count": count})

    document = {
        "name": "shapes",
        "settings": {"batches": [1], "threads": {"intra_op": 1, "inter_op": 1}},
        "data": {"images": 30},
        "results": [row("keras", {}), row("onnx", {"vs_keras": {"max_abs_diff": 2.5e-7, "agreement": 1.0}})],
    }
    (run / "benchmark.json").write_text(json.dumps(document))


def test_the_runtimes_card_shows_every_output_of_a_model_of_several(tmp_path):
    """The card showed the first output's figure alone (mask mean IoU); each output has its row
    per runtime now, with evaluate's figures, its loss and its agreement with Keras."""
    run = make_run(tmp_path / "run")
    multi_output_benchmark(run)
    page = write_report(run).read_text(encoding="utf-8")
    table = re.search(r'<table id="benchmark-outputs">.*?</table>', page, re.S)
    assert table is not None
    lines = re.findall(r"<tr>.*?</tr>", table.group(0), re.S)
    assert "<th>output</th>" in lines[0] and '<th class="num">agreement with Keras</th>' in lines[0]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", line) for line in lines[1:]]
    assert cells == [
        ["keras", "mask", "segmentation", "mean IoU 0.5000, pixel accuracy 0.7500", "0.5000", "–", "–"],
        ["keras", "count", "regression", "MAE 0.2500, R² 0.1250", "0.0625", "–", "–"],
        [
            "onnx",
            "mask",
            "segmentation",
            "mean IoU 0.5000, pixel accuracy 0.7500",
            "0.5000",
            "2.5e-07",
            "100.00%",
        ],
        ["onnx", "count", "regression", "MAE 0.2500, R² 0.1250", "0.0625", "–", "–"],
    ]
    assert '<td class="num">mask mean IoU 0.5000</td>' not in page  # (the column is titled so)
    assert '<th class="num">mask mean IoU</th>' in page
    single = make_run(tmp_path / "single")  # a model of one output: no table of outputs
    document = json.loads((run / "benchmark.json").read_text())
    document["results"] = [_benchmark_row("onnx", accuracy=0.5)]
    (single / "benchmark.json").write_text(json.dumps(document))
    assert 'id="benchmark-outputs"' not in write_report(single).read_text(encoding="utf-8")


def test_a_changed_template_is_compiled_again_not_served_from_the_kept_one(tmp_path, monkeypatch):
    """render keeps the compiled template by its text: the same text renders from the kept one,
    and another text (an edited template) is rendered as it now reads."""
    from cnnspec.reporting import html as page_module

    folder = tmp_path / "templates"
    folder.mkdir()
    monkeypatch.setattr("cnnspec.resources.templates_dir", lambda: folder)
    (folder / page_module.TEMPLATE).write_text("one {{ name }}", encoding="utf-8")
    assert page_module.render({"name": "<a>"}) == "one &lt;a&gt;"  # (autoescaped, as the page)
    assert page_module.render({"name": "b"}) == "one b"
    (folder / page_module.TEMPLATE).write_text("two {{ name }}", encoding="utf-8")
    assert page_module.render({"name": "b"}) == "two b"
    import jinja2

    with pytest.raises(jinja2.UndefinedError, match="name"):  # (strict about missing values, as before)
        page_module.render({})
