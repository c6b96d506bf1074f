"""What happens after training for task and multi-output models (the post-training audit):

- D1: the TFLite runtime serves a multi-output model's outputs in the model's order (LiteRT's
  output list is in another), so ``benchmark`` scores each output as Keras does;
- D2: predict's mask files are unique over the whole call, not only per input stem;
- D3: ``evaluate --runtime auto`` of a multi-output model with an export falls back to Keras;
- D5: an export of a ``.keras`` no spec describes claims no decision for a linear output.

One tiny run (two regression outputs, ``count`` then ``area``, whose TFLite output list starts
with ``area``) is trained and exported to TFLite once for the module.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cnnspec.export.runtimes import output_task
from cnnspec.reporting.images import read_inputs
from cnnspec.reporting.task_predict import predict_tasks
from tests.test_report_support import invoke, train_without_page

#: Two regression outputs on one pooled feature: LiteRT lists ``area`` first.
TWO_OUTPUTS = """\
cnnspec: 1
name: two
input: {shape: [16, 16, 3]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d:
    id: pooled
  - dense: 1
    inputs: pooled
    id: count
  - dense: 1
    inputs: pooled
    id: area
outputs: [count, area]
data:
  source: {shapes: {images: 32, target: {count: count, area: area}}}
  validation_split: 0.25
training:
  epochs: 1
  batch_size: 16
  seed: 0
  outputs:
    count: {task: regression, loss: mse}
    area: {task: regression, loss: mse}
"""


#: The tests that read two_outputs, kept on one xdist worker: the module-scoped fixture is trained
#: and exported once, not once on each worker (``--dist loadgroup`` spreads the tests of no group).
SHARES_TWO_OUTPUTS = pytest.mark.xdist_group("post_audit_two_outputs")


@pytest.fixture(scope="module")
def two_outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained run of :data:`TWO_OUTPUTS` with a verified TFLite export."""
    pytest.importorskip("ai_edge_litert")
    folder = tmp_path_factory.mktemp("two_outputs")
    spec = folder / "spec.yaml"
    spec.write_text(TWO_OUTPUTS, encoding="utf-8")
    run = folder / "run"
    train_without_page(spec, run)
    exported = invoke("export", run, "--format", "tflite")
    assert exported.exit_code == 0, exported.output
    return run


# -- D1 ------------------------------------------------------------------------------------------


@pytest.mark.slow
@SHARES_TWO_OUTPUTS
def test_the_tflite_session_serves_every_output_in_the_models_order(two_outputs: Path) -> None:
    """The session read ``get_output_details()[0]``: ``area``'s values for ``count``."""
    from cnnspec.export.artifact_runs import keras_outputs
    from cnnspec.export.runtimes import open_session
    from cnnspec.training.modelfile import load_model

    batch = np.random.default_rng(3).random((5, 16, 16, 3)).astype("float32")
    count, area = keras_outputs(load_model(two_outputs / "model.keras", one_input=False), [batch])
    assert np.max(np.abs(count - area)) > 1e-3  # (else the test could not tell them apart)
    session = open_session("tflite", two_outputs / "export" / "model.tflite")
    np.testing.assert_allclose(session.run(batch), count, atol=1e-4)
    served = session.run_all(batch)
    assert len(served) == 2
    np.testing.assert_allclose(served[0], count, atol=1e-4)
    np.testing.assert_allclose(served[1], area, atol=1e-4)


@pytest.mark.slow
@SHARES_TWO_OUTPUTS
def test_the_benchmark_scores_the_same_output_in_keras_and_tflite(two_outputs: Path, tmp_path: Path) -> None:
    """TFLite's row scored ``area`` against the ``count`` targets (another MAE than Keras')."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(two_outputs, run)
    args = ("benchmark", run, "--formats", "keras,tflite", "--batch", "1", "--runs", "3", "--warmup", "0")
    result = invoke(*args, "-f", "json")
    assert result.exit_code == 0, result.output
    rows = {row["runtime"]: row for row in json.loads(result.stdout)["results"]}
    assert rows["keras"]["status"] == rows["tflite"]["status"] == "ok", rows
    assert rows["keras"]["metric"] == rows["tflite"]["metric"] == "count MAE"
    assert rows["tflite"]["score"] == pytest.approx(rows["keras"]["score"], abs=1e-4)
    metrics = json.loads((run / "metrics.json").read_text())
    assert rows["tflite"]["score"] == pytest.approx(metrics["outputs"]["count"]["test_mae"], abs=1e-4)
    # every output is scored in every runtime (only the first was): evaluate's figures of each,
    # its loss, and the export's agreement with Keras on the test split
    for runtime, row in rows.items():
        assert list(row["outputs"]) == ["count", "area"], runtime
        for name in ("count", "area"):
            entry, want = row["outputs"][name], metrics["outputs"][name]
            assert entry["task"] == "regression" and entry["metric"] == "MAE"
            assert entry["score"] == entry["test_mae"] == pytest.approx(want["test_mae"], abs=1e-4)
            assert entry["test_r2"] == pytest.approx(want["test_r2"], abs=1e-4)
            assert entry["loss"] == pytest.approx(metrics[f"test_{name}_loss"], abs=1e-4), (runtime, name)
        assert row["loss"] == pytest.approx(metrics["test_loss"], abs=1e-4)
    assert all("vs_keras" not in entry for entry in rows["keras"]["outputs"].values())
    for name in ("count", "area"):
        compared = rows["tflite"]["outputs"][name]["vs_keras"]
        assert compared["agreement"] is None and 0 <= compared["max_abs_diff"] < 1e-4, compared
    document = json.loads((run / "benchmark.json").read_text())
    assert document["results"][1]["outputs"] == rows["tflite"]["outputs"]
    # the table of every output the text output prints (from the same document)
    from rich.console import Console

    from cnnspec.cli.benchmark import outputs_table

    console = Console(record=True, width=160, file=io.StringIO())
    console.print(outputs_table(document))
    text = console.export_text()
    assert "each output on the test split" in text
    for runtime, name in (("keras", "count"), ("tflite", "area")):
        entry = rows[runtime]["outputs"][name]
        line = next(line for line in text.splitlines() if f" {runtime} " in line and f" {name} " in line)
        assert f"MAE {entry['test_mae']:.4f}, R² {entry['test_r2']:.4f}" in line, line


# -- D3 ------------------------------------------------------------------------------------------


@pytest.mark.slow
@SHARES_TWO_OUTPUTS
def test_evaluate_and_predict_answer_several_outputs_through_the_export(
    two_outputs: Path, tmp_path: Path
) -> None:
    """``-r auto`` was refused (exit 2) as if ``--runtime tflite`` had been asked for; then it
    fell back to Keras ("the model has several outputs") and ``-r tflite`` stayed refused. The
    TFLite file answers every output now, as Keras does: the same figures of each output."""
    documents = {}
    for runtime in ("keras", "auto", "tflite"):
        result = invoke("evaluate", two_outputs, "-r", runtime, "-o", tmp_path / runtime, "-f", "json")
        assert result.exit_code == 0, result.output
        documents[runtime] = json.loads(result.stdout)
    want = documents.pop("keras")
    for runtime, document in documents.items():
        assert document["runtime"] == "tflite", runtime
        assert not any("skipped" in note for note in document["notes"]), document["notes"]
        assert set(document["outputs"]) == {"count", "area"}
        for name in ("count", "area"):
            for key, value in want["outputs"][name].items():
                if isinstance(value, float):
                    assert document["outputs"][name][key] == pytest.approx(value, abs=1e-4), (name, key)
        for key in ("loss", "count_loss", "area_loss"):
            assert document["metrics"][key] == pytest.approx(want["metrics"][key], abs=1e-4), key
    image = tmp_path / "im.npy"
    np.save(image, np.random.default_rng(4).random((2, 16, 16, 3)).astype("float32"))
    answers = {}
    for runtime in ("keras", "tflite"):
        result = invoke("predict", two_outputs, image, "-r", runtime, "-f", "json")
        assert result.exit_code == 0, result.output
        answers[runtime] = [p["outputs"] for p in json.loads(result.stdout)["predictions"]]
    for mine, theirs in zip(answers["tflite"], answers["keras"], strict=True):
        assert list(mine) == list(theirs) == ["count", "area"]
        for name in mine:
            assert mine[name]["names"] == theirs[name]["names"], name
            assert mine[name]["values"] == pytest.approx(theirs[name]["values"], abs=1e-4), name


# -- D2 ------------------------------------------------------------------------------------------


def _segmentation(name: str) -> Any:
    return output_task({"name": name, "task": "segmentation", "shape": [8, 8, 4], "from_logits": False})


def test_masks_of_different_inputs_and_outputs_never_share_a_file(tmp_path: Path) -> None:
    """Inputs ``a``, ``a_b`` and outputs ``b_m``, ``m``: (a, b_m) and (a_b, m) both made
    ``a_b_m_mask.png``; the second replaced the first and both reported that one path."""
    inputs = []
    for stem in ("a", "a_b"):
        Image.fromarray(np.full((8, 8, 3), 50, dtype="uint8")).save(tmp_path / f"{stem}.png")
        inputs.append(tmp_path / f"{stem}.png")
    tasks = (_segmentation("b_m"), _segmentation("m"))
    classes = {"b_m": 1, "m": 3}  # each output paints every pixel in a class of its own

    def model(batch: np.ndarray) -> list[np.ndarray]:
        maps = []
        for out in tasks:
            scores = np.zeros((len(batch), 8, 8, 4), dtype="float32")
            scores[..., classes[out.name]] = 1.0
            maps.append(scores)
        return maps

    out = tmp_path / "out"
    results = predict_tasks(tasks, {}, read_inputs(inputs, (8, 8, 3)), out, 1, lambda i, p: 1 / 255, model)
    paths = {
        (result["input"], name): Path(entry["mask"])
        for result in results
        for name, entry in result["outputs"].items()
    }
    assert len(set(paths.values())) == 4, paths
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths.values())
    for (_, name), path in paths.items():  # each reported file holds its own output's mask
        assert np.all(np.asarray(Image.open(path)) == classes[name]), path
    # the first pair keeps the name, the later one is numbered (documented, deterministic)
    assert paths[(str(inputs[0]), "b_m")].name == "a_b_m_mask.png"
    assert paths[(str(inputs[1]), "m")].name == "a_b_m_2_mask.png"


# -- D5 ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_bare_linear_export_claims_no_decision(tmp_path: Path) -> None:
    """A ``.keras`` outside a run with one linear unit was read as a binary classifier on
    logits: ``top1_agreement`` 1.0 on "threshold 0 per unit" for what may be a regression."""
    from cnnspec.training.runtime import import_keras

    keras = import_keras()
    linear = tmp_path / "reg.keras"
    keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(1)]).save(linear)
    for fmt, extra in (("tflite", ["--quantize", "dynamic"]), ("savedmodel", [])):
        result = invoke("export", linear, "--format", fmt, *extra, "--json")
        assert result.exit_code == 0, result.output
        document = json.loads(result.stdout)
        assert document["top1_agreement"] is None, (fmt, document)
        assert "no spec says its task" in (document["agreement_basis"] or ""), (fmt, document)
    record = json.loads((tmp_path / "reg.dynamic.tflite.json").read_text())
    assert record["top1_agreement"] is None and "no spec" in record["agreement_basis"]
    # a sigmoid unit says what it decides without a spec: its 0.5 threshold is still counted
    sigmoid = tmp_path / "binary.keras"
    keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(1, activation="sigmoid")]
    ).save(sigmoid)
    result = invoke("export", sigmoid, "--format", "tflite", "--quantize", "dynamic", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["top1_agreement"] is not None
    assert document["agreement_basis"] == "threshold 0.5 per unit"
