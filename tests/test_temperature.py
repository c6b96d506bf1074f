"""Temperature scaling (cnnspec/reporting/temperature.py): the fit checked against a temperature
known in advance, then `cnnspec calibrate` and what evaluate, predict, visualize and report do
with the temperature.json it writes into (a copy of) the tiny trained run."""

from __future__ import annotations

import json
import math
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cnnspec.errors import UsageError
from cnnspec.reporting.model_graph import OutputKind
from cnnspec.reporting.predictions import probabilities
from cnnspec.reporting.run import Run
from cnnspec.reporting.temperature import (
    FILE,
    HIGH,
    chosen,
    described,
    fit,
    fitted,
    negative_log_likelihood,
    parse_option,
    read,
    scaled_answer,
    tempered,
    tempered_labels,
    tempered_outputs,
)
from tests.test_report_support import ONNX_EXPORTS


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def drawn(temperature: float, n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits (n, 5), and labels drawn from softmax(logits / temperature): the model's own
    probabilities softmax(logits) are calibrated once divided by ``temperature``."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (n, 5))
    truth = softmax(logits / temperature)
    labels = np.array([rng.choice(5, p=row) for row in truth])
    return logits, labels


@pytest.mark.parametrize("known", [0.5, 1.0, 2.5])
def test_the_fit_finds_the_temperature_the_labels_were_drawn_with(known):
    logits, labels = drawn(known)
    found = fit(softmax(logits), labels)
    assert found == pytest.approx(known, rel=0.08)
    # the minimum: a little either side costs more
    cost = [
        negative_log_likelihood(tempered(softmax(logits), t), labels)
        for t in (found / 1.1, found, found * 1.1)
    ]
    assert cost[1] < cost[0] and cost[1] < cost[2]


def test_scaling_is_softmax_of_logits_over_t_and_keeps_the_top_class_and_a_row_that_is_not_numbers():
    logits, _ = drawn(1.0, n=50)
    probs = softmax(logits)
    scaled = tempered(probs, 1.7)
    np.testing.assert_allclose(scaled, softmax(logits / 1.7), atol=1e-12)
    np.testing.assert_allclose(scaled.sum(axis=1), 1.0)
    assert (scaled.argmax(axis=1) == probs.argmax(axis=1)).all()
    assert tempered(probs, 1.0) is not None and np.array_equal(tempered(probs, 1.0), probs)
    # a probability a float32 softmax rounded to 0 stays the least likely, and finite
    assert np.isfinite(tempered(np.array([[1.0, 0.0, 0.0]]), 3.0)).all()
    broken = tempered(np.array([[np.nan, 0.5, 0.5], [0.2, 0.3, 0.5]]), 2.0)
    assert np.isnan(broken[0]).all() and np.isfinite(broken[1]).all()


def test_raw_outputs_of_every_kind_read_back_as_the_scaled_probabilities():
    logits, _ = drawn(1.0, n=20)
    expected = softmax(logits / 2.0)
    for kind, raw in ((OutputKind(from_logits=True), logits), (OutputKind(), softmax(logits))):
        back = probabilities(tempered_outputs(raw, kind, 2.0), kind)
        np.testing.assert_allclose(back, expected, atol=1e-9)
    # one sigmoid unit: the log-odds divided by T
    odds = np.linspace(-4, 4, 9)[:, None]
    for kind, raw in (
        (OutputKind(binary=True, from_logits=True), odds),
        (OutputKind(binary=True), 1 / (1 + np.exp(-odds))),
    ):
        back = probabilities(tempered_outputs(raw, kind, 2.0), kind)[:, 1]
        np.testing.assert_allclose(back, 1 / (1 + np.exp(-odds[:, 0] / 2.0)), atol=1e-9)


def test_a_multi_label_output_is_scaled_label_by_label_and_its_calibration_counts_every_label():
    from cnnspec.reporting.calibration import label_rows, of_labels

    logits = np.array([[-3.0, 0.0, 2.0], [1.0, np.nan, -0.5]])
    expected = 1 / (1 + np.exp(-logits / 2.0))
    np.testing.assert_allclose(tempered_labels(logits, True, 2.0), logits / 2.0)
    scaled = tempered_labels(1 / (1 + np.exp(-logits)), False, 2.0)
    np.testing.assert_allclose(scaled, expected, atol=1e-12)  # (NaN where the output is NaN)
    assert np.array_equal(tempered_labels(logits, True, 1.0), logits, equal_nan=True)
    # a two-class row [1 - p, p] per label: its temperature is the label's own
    rows, targets = label_rows(1 / (1 + np.exp(-logits[:1])), np.array([[0, 1, 1]]))
    np.testing.assert_allclose(tempered(rows, 2.0)[:, 1], expected[0], atol=1e-12)
    assert targets.tolist() == [0, 1, 1]
    # the Brier score of the rows is twice the squared error of p
    p, y = np.array([[0.9, 0.2], [0.6, 0.4]]), np.array([[1, 0], [0, 0]])
    result = of_labels(p, y)
    assert result.images == 4 and result.accuracy == 0.75
    assert result.brier == pytest.approx(2 * np.mean((p - y) ** 2))

    class Task:  # (what scaled_answer reads of a task)
        task, binary = "multilabel", False
        loss = type("Loss", (), {"from_logits": True})

    np.testing.assert_allclose(scaled_answer(logits[:1], [Task], OutputKind(), 2.0), logits[:1] / 2.0)


def test_the_figures_before_and_after_and_a_fit_at_the_end_of_the_range():
    logits, labels = drawn(2.0, n=2000, seed=1)
    result = fitted(softmax(logits), labels, "ab" * 32)
    assert result.nll_after < result.nll_before and result.ece_after < result.ece_before
    assert result.images == 2000 and not result.at_bound
    described = json.loads(json.dumps(result.describe()))
    assert described["format"] == 1 and described["model_sha256"] == "ab" * 32
    # labels that disagree with every confident answer: as flat as the search goes
    wrong = fitted(softmax(logits * 5), (softmax(logits).argmax(axis=1) + 1) % 5, "x")
    assert wrong.temperature == pytest.approx(HIGH, rel=1e-3) and wrong.at_bound
    with pytest.raises(UsageError, match="images whose outputs are numbers"):
        fit(np.full((3, 2), np.nan), np.array([0, 1, 0]))


@pytest.mark.parametrize(
    "text", ["0", "-1", "nan", "inf", "hot", "", "1e-320", "1e-40", "0.0009", "1e4", "no", "none1"]
)
def test_the_option_takes_auto_none_or_a_number_float32_arithmetic_survives(text):
    """1e-320 made every log-probability -inf (NaN answers: evaluate scored them, predict and
    export blamed the model); 1e-40 overflowed an export's folded kernel. ``none`` is the
    model's own probabilities (1), for evaluate, predict, visualize and export alike."""
    assert parse_option(None) is None and parse_option("auto") is None and parse_option("AUTO") is None
    assert parse_option("none") == 1.0 and parse_option(" None ") == 1.0
    assert parse_option("1.5") == 1.5 and parse_option("0.001") == 0.001 and parse_option("1000") == 1000
    with pytest.raises(UsageError) as caught:
        parse_option(text)
    assert str(caught.value) == (
        f"expected --temperature to be auto, none or a number from 0.001 to 1000; received {text!r}"
    )
    assert caught.value.hint == (
        "--temperature none (or 1) shows the model's own probabilities, auto the run's "
        "temperature.json (cnnspec calibrate)"
    )


def test_a_picture_says_which_temperature_its_probabilities_are_of():
    assert described(1.0, None) == described(1.0, 1.0) == "temperature 1 (the model's own probabilities)"
    assert described(1.53219, None) == "temperature 1.532 (the run's temperature.json)"
    assert described(2.0, 2.0) == "temperature 2 (--temperature)"


def test_a_fit_at_the_end_of_the_range_counts_a_tasks_mistakes_in_its_rows():
    """A segmentation's refused fit said "8 validation images with 345 mistake(s)": its pixels'
    mistakes, read as mistaken images of 8."""
    from cnnspec.cli.calibrate import _mistakes

    assert _mistakes(3, 24, None) == "3 mistake(s)"
    assert _mistakes(345, 512, "pixels") == "345 of their 512 pixels wrong"
    assert _mistakes(1234, 3000, "label decisions") == "1,234 of their 3,000 label decisions wrong"


def test_the_likelihood_of_answers_all_right_and_sure_is_zero_not_minus_zero():
    """calibrate printed "negative log-likelihood 0.0014 → -0.0000" for a model sure and right
    of every validation image (and wrote -0.0 into temperature.json)."""
    nll = negative_log_likelihood(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1]))
    assert nll == 0.0 and f"{nll:.4f}" == "0.0000" and json.dumps(round(nll, 6)) == "0.0"


def test_a_temperature_file_is_applied_only_to_the_model_file_it_was_fitted_for(tmp_path):
    from cnnspec.fileio import sha256_file

    model = tmp_path / "model.keras"
    model.write_bytes(b"weights")
    run = Run(model_path=model, run_dir=tmp_path)
    notes: list[str] = []
    assert chosen(run, None, notes) == 1.0 and notes == []  # no file: the model's own
    logits, labels = drawn(1.5, n=500)
    result = fitted(softmax(logits), labels, sha256_file(model))
    (tmp_path / FILE).write_text(json.dumps(result.describe()))
    assert chosen(run, None, notes) == pytest.approx(result.temperature, abs=1e-6)
    assert "applied" in notes[-1] and "500 validation images" in notes[-1]
    assert chosen(run, 1.0, notes) == 1.0 and chosen(run, 3.0, notes) == 3.0  # the option decides
    model.write_bytes(b"trained again")
    assert chosen(run, None, notes) == 1.0 and "fitted for another model file" in notes[-1]
    (tmp_path / FILE).write_text(json.dumps({**result.describe(), "temperature": -2, "images": "many"}))
    with pytest.raises(
        UsageError, match=r"damaged run file .*temperature: expected a number from 0\.001 to 1000.*images"
    ) as caught:
        read(tmp_path / FILE)
    # calibrate wrote it, and writes it again: no run need be trained again for it
    assert "run `cnnspec calibrate RUN` again" in str(caught.value.hint)
    assert "train" not in str(caught.value.hint).replace("calibrate", "")
    (tmp_path / FILE).write_text("{not json")
    with pytest.raises(UsageError, match="expected readable JSON") as caught:
        chosen(run, None, notes)
    # (not JSON at all: the same hint, not run files' "train the run again")
    assert "run `cnnspec calibrate RUN` again" in str(caught.value.hint)
    assert "evaluate, predict, visualize and export: --temperature none leaves it unread" in str(
        caught.value.hint
    )
    assert "train" not in str(caught.value.hint).replace("calibrate", "")


def test_an_exports_folded_temperature_is_read_back_as_the_models_own_answer(tmp_path):
    """What cnnspec's readers do with an export whose record says a temperature was folded into
    it: the benchmark takes it out (model_answer), evaluate and predict apply only the rest
    (remaining), and a rest that would soften a float32 softmax too far is said (inexact)."""
    from cnnspec.export.runtimes import MAX_SOFTENING, ExportRecord, folded_temperature, model_answer

    logits, _ = drawn(1.0, n=6)
    output = {"binary": False, "from_logits": False, "classes": list("abcde"), "temperature": 2.0}
    record = ExportRecord(tmp_path / "model.onnx", "onnx", {"output": output})
    assert record.temperature == 2.0 and folded_temperature({"output": {}}) == 1.0
    exported = softmax(logits / 2.0).astype("float32")
    np.testing.assert_allclose(model_answer(exported, record.data), softmax(logits), atol=1e-6)
    assert model_answer(exported, record.data).dtype == np.float32
    assert record.remaining(2.0) == 1.0 and record.remaining(1.0) == 0.5
    assert record.inexact(1.0) is None and record.inexact(2.0 * MAX_SOFTENING) is None
    assert "can not be had exactly" in (record.inexact(2.0 * MAX_SOFTENING * 1.01) or "")
    # logits (divided by T in the file): the model's, up to a constant per image; a multi-label
    # output's labels each on their own
    as_logits = {"output": {**output, "from_logits": True}}
    answer = model_answer((logits / 2.0).astype("float32"), as_logits)
    np.testing.assert_allclose(softmax(answer.astype("float64")), softmax(logits), atol=1e-6)
    labels = {
        "output": {**output, "binary": True},
        "outputs": [{"name": "tags", "task": "multilabel", "shape": [5], "from_logits": False}],
    }
    folded = (1 / (1 + np.exp(-logits / 2.0))).astype("float32")
    np.testing.assert_allclose(model_answer(folded, labels), 1 / (1 + np.exp(-logits)), atol=1e-5)


def test_a_sigmoid_export_is_exact_only_as_far_as_its_float32_sigmoid_resolves(tmp_path):
    """A sigmoid's float32 probability is resolved only to 2^-24 next to 1 (every runtime) and,
    in ONNX Runtime, next to 0 too: softening an export's answer by more than
    MAX_SIGMOID_SOFTENING is said to be inexact (auto passes the export over), where the export
    resolves less than the Keras model: any ONNX one, a TFLite one that folded in T < 1."""
    from cnnspec.export.runtimes import MAX_SIGMOID_SOFTENING, ExportRecord

    # the limit's claim: an answer cut off at 2^-24 next to 0 and 1, softened by the limit, is
    # off by under 1e-6; softened by 1 / 0.3 (the tester's export) by far more
    z = np.linspace(-60, 60, 24001)
    step = 2.0**-24
    for softening, worst in ((MAX_SIGMOID_SOFTENING, 1e-6), (1 / 0.3, 1e-3)):
        cut = np.round(1 / (1 + np.exp(-z)) / step) * step
        error = np.abs(tempered_labels(cut, False, softening) - 1 / (1 + np.exp(-z / softening))).max()
        assert error < worst if worst == 1e-6 else error > worst

    binary = {"binary": True, "from_logits": False, "classes": ["red", "blue"]}

    def record(runtime: str, output: dict, **more) -> ExportRecord:
        return ExportRecord(tmp_path / f"model.{runtime}", runtime, {"output": output, **more})

    folded = record("onnx", {**binary, "temperature": 0.3})
    assert folded.cuts_sigmoid() and folded.inexact(1.0) == (
        "it answers sigmoid probabilities with the temperature 0.3 folded in, from which a temperature "
        "of 1 can not be had exactly (its float32 sigmoid resolves a probability only to about 6e-8 "
        "next to 0 or 1: the most confident answers, which softening by 3.333 would bring out, are lost)"
    )
    # its own answer, a mild softening, and any sharpening are exact
    assert folded.inexact(0.3) is None and folded.inexact(0.3 * MAX_SIGMOID_SOFTENING) is None
    assert folded.inexact(0.01) is None
    assert "about 6e-8 next to 1:" in (record("tflite", {**binary, "temperature": 0.3}).inexact(1.0) or "")
    # nothing folded: ONNX Runtime's sigmoid is cut off next to 0, TFLite's resolves as Keras's
    assert (record("onnx", binary).inexact(2.0) or "").startswith(
        "it answers sigmoid probabilities, from which a temperature of 2 can not be had exactly"
    )
    assert record("tflite", binary).inexact(2.0) is None and not record("tflite", binary).cuts_sigmoid()
    assert record("tflite", {**binary, "temperature": 2.0}).inexact(4.0) is None
    # logits are never cut off; a softmax keeps its own limit (MAX_SOFTENING)
    assert record("onnx", {**binary, "from_logits": True, "temperature": 0.3}).inexact(1.0) is None
    assert record("onnx", {"binary": False, "from_logits": False, "temperature": 0.3}).inexact(1.0) is None
    # a multi-label output's labels, and a one-channel map's pixels, are sigmoids too
    labels = [{"name": "tags", "task": "multilabel", "shape": [3], "from_logits": False}]
    assert record("onnx", {"temperature": 0.5}, outputs=labels).inexact(1.0) is not None
    mask = [{"name": "mask", "task": "segmentation", "shape": [8, 8, 1], "from_logits": False}]
    assert record("tflite", {"temperature": 0.5}, outputs=mask).inexact(1.0) is not None
    classes = [{"name": "mask", "task": "segmentation", "shape": [8, 8, 3], "from_logits": False}]
    assert record("onnx", {"temperature": 0.5}, outputs=classes).inexact(1.0) is None


# -- the commands, on a copy of the tiny trained run ------------------------------------------

#: The format of the exports whose point is the temperature folded into them, not the format: ONNX
#: where the export extra is installed (its conversion costs about a third of a TFLite one), else
#: TFLite, so that the tests run without the extra as well.
ONE_FILE = "onnx" if ONNX_EXPORTS else "tflite"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from tests.test_report_support import trained_run

    return trained_run(tmp_path_factory)


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_calibrate_then_evaluate_predict_visualize_and_report_apply_it(run_dir, tmp_path):
    from PIL import Image

    from tests.test_report_support import flat, invoke

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    raw = invoke("evaluate", copy)
    assert raw.exit_code == 0, raw.output
    before = json.loads((copy / "evaluation.json").read_text("utf-8"))
    assert before["temperature"] == 1.0

    # (the tiny run classifies every validation image right: its fit ends at 0.05, and only
    # --force writes it; test_a_fit_without_mistakes_to_learn_from_is_not_written_unless_forced)
    result = invoke("calibrate", copy, "-f", "json", "--force")
    assert result.exit_code == 0, result.output
    said = json.loads(result.stdout)
    kept = json.loads((copy / FILE).read_text("utf-8"))
    assert said["file"] == str(copy / FILE) and kept["temperature"] == said["temperature"]
    assert kept["split"] == "validation" and kept["images"] == 24  # 0.2 of the 120 training images
    assert kept["nll_after"] <= kept["nll_before"]
    t = kept["temperature"]
    assert not math.isclose(t, 1.0, abs_tol=1e-3)
    text = invoke("calibrate", copy, "--force")
    assert (
        text.exit_code == 0
        and f"temperature {t:.4g}" in flat(text)
        and "fitted on 24 validation images" in flat(text)
    )
    # a run folder named in Latin-1: its path shown with \xe9, as the JSON writes it, and the note
    latin = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9"))
    shutil.copytree(copy, latin)
    named = invoke("calibrate", latin, "--force")
    assert named.exit_code == 0 and f"wrote {tmp_path}/caf\\xe9/{FILE}" in flat(named), named.output
    assert "\\udc" not in named.output and "is written with each such byte as \\xNN" in flat(named)

    result = invoke("evaluate", copy)
    assert result.exit_code == 0, result.output
    after = json.loads((copy / "evaluation.json").read_text("utf-8"))
    assert after["temperature"] == pytest.approx(t)
    assert f"temperature {t:.4g} applied" in flat(result)
    # the top class is the same; the confidences and the loss are the scaled ones
    assert after["accuracy"] == before["accuracy"] and after["confusion_matrix"] == before["confusion_matrix"]
    assert after["calibration"]["mean_confidence"] != before["calibration"]["mean_confidence"]
    assert after["loss"] != pytest.approx(before["loss"], abs=1e-6)
    own = invoke("evaluate", copy, "--temperature", "none")  # (as 1: the model's own)
    assert own.exit_code == 0 and "applied" not in flat(own)
    again = json.loads((copy / "evaluation.json").read_text("utf-8"))
    assert again["calibration"] == before["calibration"] and again["loss"] == pytest.approx(
        before["loss"], abs=1e-5
    )

    # predict: the scaled probabilities of the model's own, by hand
    image = np.random.default_rng(6).integers(0, 255, (8, 8, 3), dtype="uint8")
    Image.fromarray(image).save(tmp_path / "a.png")
    plain = json.loads(invoke("predict", copy, tmp_path / "a.png", "-f", "json", "--temperature", "1").stdout)
    scaled = json.loads(invoke("predict", copy, tmp_path / "a.png", "-f", "json").stdout)
    assert plain["temperature"] == 1.0 and scaled["temperature"] == pytest.approx(t)
    names = [entry["class"] for entry in plain["predictions"][0]["top"]]
    p = np.array([[entry["probability"] for entry in plain["predictions"][0]["top"]]])
    expected = dict(zip(names, tempered(p, t)[0]))
    got = {entry["class"]: entry["probability"] for entry in scaled["predictions"][0]["top"]}
    assert got == pytest.approx(expected, abs=1e-9)

    # visualize's reliability diagram and report.html's say it and show the scaled confidences
    drawn_ = invoke("visualize", copy, "calibration")
    assert drawn_.exit_code == 0 and f"temperature {t:.4g} applied" in flat(drawn_)
    assert "--temperature none for the model's own probabilities" in flat(drawn_)
    # the line printed with the picture (and its title) says which temperature it is of
    assert f"; temperature {t:.4g} (the run's temperature.json)" in flat(drawn_)
    ece = float(flat(drawn_).split("calibration: ECE ")[1].split("%")[0])
    assert ece == pytest.approx(100 * after["calibration"]["ece"], abs=0.011)
    # --temperature none: the diagram before calibrating, beside it (evaluate --temperature 1's
    # ECE); the stored temperature.json is not even read
    uncalibrated = invoke(
        "visualize", copy, "calibration", "--temperature", "none", "-o", tmp_path / "own.png"
    )
    assert uncalibrated.exit_code == 0 and "applied" not in flat(uncalibrated)
    assert "; temperature 1 (the model's own probabilities)" in flat(uncalibrated)
    own_ece = float(flat(uncalibrated).split("calibration: ECE ")[1].split("%")[0])
    assert own_ece == pytest.approx(100 * before["calibration"]["ece"], abs=0.011) and own_ece != ece
    bad = invoke("visualize", copy, "calibration", "--temperature", "hot")
    assert bad.exit_code == 2 and (
        "expected --temperature to be auto, none or a number from 0.001 to 1000; received 'hot'"
    ) in flat(bad)
    page = invoke("report", copy)
    assert page.exit_code == 0, page.output
    html = (copy / "report.html").read_text("utf-8")
    assert (
        f"scaled by the run&#39;s temperature {t:.4g}" in html
        or f"scaled by the run's temperature {t:.4g}" in html
    )
    # its test loss is metrics.json's, the model's own: said on its card
    assert f"before the temperature {t:.4g} (cnnspec evaluate: after)" in html

    # the model file trained again (here: another model's bytes) leaves the temperature out
    kept["model_sha256"] = "0" * 64
    (copy / FILE).write_text(json.dumps(kept))
    stale = invoke("evaluate", copy)
    assert stale.exit_code == 0 and "was fitted for another model file" in flat(stale)
    assert json.loads((copy / "evaluation.json").read_text("utf-8"))["temperature"] == 1.0


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_an_export_answers_with_the_runs_temperature_folded_in_and_reads_back_as_keras(run_dir, tmp_path):
    """`export` folds the run's temperature into the output layer's weights: the file answers
    with the scaled probabilities itself (another program needs no T), its record says T, and
    evaluate and predict read it as the model's own answer, so every runtime reports alike
    under any --temperature. (The temperature is folded before the conversion: the export is
    ONNX, a third of a TFLite conversion, where the export extra is installed; the multi-label
    test below folds one into a TFLite file.)"""
    import keras

    from cnnspec.export.runtimes import open_session
    from tests.test_report_support import flat, invoke

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    assert invoke("calibrate", copy, "--force").exit_code == 0
    t = json.loads((copy / FILE).read_text("utf-8"))["temperature"]
    exported = invoke("export", copy, "-f", ONE_FILE)
    assert exported.exit_code == 0, exported.output
    assert f"the run's temperature {t:.4g} (temperature.json" in flat(exported)
    assert "folded into the kernel and bias of layer" in flat(exported)
    record = json.loads((copy / "export" / f"model.{ONE_FILE}.json").read_text("utf-8"))
    assert record["output"]["temperature"] == pytest.approx(t) and record["verified"]

    batch = np.random.default_rng(2).random((5, 8, 8, 3)).astype("float32")
    own = keras.saving.load_model(copy / "model.keras").predict(batch, verbose=0)
    raw = open_session(ONE_FILE, copy / "export" / f"model.{ONE_FILE}").run(batch)
    np.testing.assert_allclose(raw, tempered(own, t), atol=1e-5)  # the file's own answer

    def evaluated(*options: str) -> tuple[dict, str]:
        result = invoke("evaluate", copy, *options)
        assert result.exit_code == 0, result.output
        return json.loads((copy / "evaluation.json").read_text("utf-8")), flat(result)

    def alike(one: dict, other: dict) -> None:
        assert one["temperature"] == pytest.approx(other["temperature"])
        assert one["calibration"]["mean_confidence"] == pytest.approx(
            other["calibration"]["mean_confidence"], abs=1e-4
        )
        assert one["loss"] == pytest.approx(other["loss"], abs=1e-3)

    # the run's temperature (auto): the export's own answer
    keras_doc, _ = evaluated("--runtime", "keras")
    exported_doc, _ = evaluated("--runtime", ONE_FILE)
    assert exported_doc["runtime"] == ONE_FILE and keras_doc["temperature"] == pytest.approx(t)
    alike(exported_doc, keras_doc)
    keras_own, _ = evaluated("--runtime", "keras", "--temperature", "1")
    np.save(tmp_path / "one.npy", (batch[0] * 255).astype("uint8"))
    answers = {
        runtime: json.loads(
            invoke("predict", copy, tmp_path / "one.npy", "--runtime", runtime, "-f", "json").stdout
        )["predictions"][0]["top"]
        for runtime in ("keras", ONE_FILE)
    }
    assert [a["class"] for a in answers[ONE_FILE]] == [a["class"] for a in answers["keras"]]
    assert [a["probability"] for a in answers[ONE_FILE]] == pytest.approx(
        [a["probability"] for a in answers["keras"]], abs=1e-5
    )

    # 1 from a file sharpened by 1 / 0.1: the classes its float32 softmax rounded to 0 are lost,
    # so auto takes Keras and an explicit --runtime (the export's) says it is not exact
    assert invoke("export", copy, "-f", ONE_FILE, "--temperature", "0.1").exit_code == 0
    auto_own, said = evaluated("--runtime", "auto", "--temperature", "1")
    assert auto_own["runtime"] == "keras"
    assert f"auto: skipped {ONE_FILE}: it answers with the temperature" in said
    explicit = evaluated("--runtime", ONE_FILE, "--temperature", "1")[1]
    assert explicit.count("--runtime keras answers exactly") == 1
    unscaled = invoke("predict", copy, tmp_path / "one.npy", "--temperature", "1", "-f", "json")
    assert json.loads(unscaled.stdout)["runtime"] == "keras" and f"auto: skipped {ONE_FILE}" in flat(unscaled)

    # a milder temperature folded in (given by number) is taken out, or sharpened, exactly
    milder = invoke("export", copy, "-f", ONE_FILE, "--temperature", "0.5")
    assert milder.exit_code == 0 and "--temperature 0.5 folded into" in flat(milder)
    for options, expected in ((("--temperature", "1"), keras_own), ((), keras_doc)):
        served, said = evaluated("--runtime", "auto", *options)
        assert served["runtime"] == ONE_FILE and "skipped" not in said
        alike(served, expected)

    # --temperature 1: the model's own probabilities, and a record without a temperature
    plain = invoke("export", copy, "-f", ONE_FILE, "--temperature", "1")
    assert plain.exit_code == 0 and "folded" not in flat(plain)
    record = json.loads((copy / "export" / f"model.{ONE_FILE}.json").read_text("utf-8"))
    assert "temperature" not in record["output"]
    raw = open_session(ONE_FILE, copy / "export" / f"model.{ONE_FILE}").run(batch)
    np.testing.assert_allclose(raw, own, atol=1e-5)


@pytest.mark.slow
def test_what_calibrate_and_a_temperature_refuse(tmp_path):
    """A model file outside a run folder has no validation split to fit on; a model that is not
    a single classifier, multi-label or segmentation output (here a regression) takes no
    temperature."""
    import keras

    from tests.test_report_support import flat, invoke

    inputs = keras.Input((6, 6, 1))
    flat_ = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, name="value")(flat_))
    model.compile(loss="mse")
    model.save(tmp_path / "m.keras")
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (6, 6, 6, 1), dtype="uint8")
    y = x.reshape(6, -1).mean(axis=1).astype("float32")
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    np.save(tmp_path / "one.npy", x[0])
    outside = invoke("calibrate", tmp_path / "m.keras")
    assert outside.exit_code == 2 and "is a model file outside one" in flat(outside)
    assert not (tmp_path / FILE).exists()
    # a run folder that lost its resolved.yaml is no "model file outside one"
    lost = tmp_path / "lost"
    lost.mkdir()
    (tmp_path / "m.keras").rename(lost / "model.keras")
    (lost / "lock.json").write_text("{}")
    (lost / "metrics.json").write_text("{}")
    without = invoke("calibrate", lost)
    assert (
        without.exit_code == 2
        and f"resolved.yaml, its spec, is missing from the run folder {lost}" in flat(without)
    )
    (lost / "model.keras").rename(tmp_path / "m.keras")
    for command, written in (
        (
            ["evaluate", tmp_path / "m.keras", "--data", tmp_path / "d.npz", "-o", tmp_path / "e"],
            tmp_path / "e",
        ),
        (
            ["predict", tmp_path / "m.keras", tmp_path / "one.npy", "-f", "csv", "-o", tmp_path / "p"],
            tmp_path / "p",
        ),
    ):
        refused = invoke(*command, "--temperature", "2")
        assert refused.exit_code == 2, refused.output
        assert (
            "expected a classifier, a multi-label or a segmentation model (one output) for a temperature"
        ) in flat(refused)
        assert "value (regression)" in flat(refused)
        assert not written.exists() or not any(written.iterdir())  # refused before writing
        done = invoke(*command)  # (auto: nothing to apply)
        assert done.exit_code == 0, done.output
    refused = invoke("export", tmp_path / "m.keras", "-f", "tflite", "--temperature", "2")
    assert refused.exit_code == 2 and "for a temperature" in flat(refused), refused.output
    assert not (tmp_path / "m.tflite").exists()


@pytest.mark.slow
def test_a_multi_label_run_gets_one_temperature_for_its_labels(tmp_path, tmp_path_factory):
    """A tiny multi-label run (three labels of 8×8 images; tests/test_task_training.py's,
    trained once per session, here a copy): calibrate fits one temperature on the validation
    labels; evaluate reports the labels' calibration of the scaled probabilities, with the AUC
    (a ranking) unchanged, and predict answers with the scaled probabilities."""
    from tests.test_report_support import flat, invoke
    from tests.test_task_training import trained_task_run

    run = tmp_path / "run"
    shutil.copytree(trained_task_run(tmp_path_factory, "multilabel"), run)
    page = (run / "report.html").read_text("utf-8")  # (the labels' reliability, drawn by the page)
    assert '<section id="calibration">' in page and "Calibration of the labels (each label" in page
    assert "among the 24 label decisions (8 test images)" in page
    raw = invoke("evaluate", run, "-f", "json")
    assert raw.exit_code == 0, raw.output
    before = json.loads(raw.stdout)
    assert before["task"] == "multilabel" and before["temperature"] == 1.0
    assert before["calibration"]["images"] == 8 * 3  # each label of each test image

    fitted_ = invoke("calibrate", run)
    assert fitted_.exit_code == 0, fitted_.output
    assert "fitted on 8 validation images (24 label decisions)" in flat(fitted_)
    t = json.loads((run / FILE).read_text("utf-8"))["temperature"]
    # one evaluate in text, whose document is the evaluation.json it writes (-f json prints it)
    text = invoke("evaluate", run)
    assert text.exit_code == 0, text.output
    after = json.loads((run / "evaluation.json").read_text("utf-8"))
    assert after["temperature"] == pytest.approx(t) and f"temperature {t:.4g} applied" in flat(text)
    assert after["calibration"]["mean_confidence"] != before["calibration"]["mean_confidence"]
    assert after["auc_macro"] == pytest.approx(before["auc_macro"])
    assert "calibration of the labels (each label of each image, decided at 0.5): ECE" in flat(text)

    np.save(tmp_path / "one.npy", np.random.default_rng(7).integers(0, 256, (8, 8, 1)).astype("uint8"))
    answers = {}
    for option in ("1", "auto"):
        predicted = invoke("predict", run, tmp_path / "one.npy", "-f", "json", "--temperature", option)
        assert predicted.exit_code == 0, predicted.output
        answers[option] = json.loads(predicted.stdout)
    (own,) = answers["1"]["predictions"][0]["outputs"].values()
    (scaled,) = answers["auto"]["predictions"][0]["outputs"].values()
    p = np.array(list(own["probabilities"].values()))
    expected = dict(zip(own["probabilities"], tempered_labels(p, False, t)))
    assert scaled["probabilities"] == pytest.approx(expected, abs=1e-9)
    drawn = invoke("visualize", run, "calibration")
    assert drawn.exit_code == 0 and "calibration of the labels" in flat(drawn)
    assert f"; temperature {t:.4g} (the run's temperature.json)" in flat(drawn)
    uncalibrated = invoke(
        "visualize", run, "calibration", "--temperature", "none", "-o", tmp_path / "own.png"
    )
    assert uncalibrated.exit_code == 0 and "; temperature 1 (the model's own probabilities)" in flat(
        uncalibrated
    )
    own_ece = float(flat(uncalibrated).split("ECE ")[1].split("%")[0])
    assert own_ece == pytest.approx(100 * before["calibration"]["ece"], abs=0.011)
    assert invoke("report", run).exit_code == 0
    page = (run / "report.html").read_text("utf-8")
    assert f"scaled by the run&#39;s temperature {t:.4g}" in page and "temperature.json" in page

    # an export's labels are scaled as Keras' are: by the file itself (sigmoid(z / T))
    exported = invoke("export", run, "-f", ONE_FILE)
    assert exported.exit_code == 0, exported.output
    assert "folded into the kernel and bias of layer" in flat(exported)
    record = json.loads((run / "export" / f"model.{ONE_FILE}.json").read_text("utf-8"))
    assert record["output"]["temperature"] == pytest.approx(t)
    result = invoke("evaluate", run, "-f", "json", "--runtime", ONE_FILE)
    assert result.exit_code == 0, result.output
    through = json.loads(result.stdout)
    assert through["runtime"] != "keras" and through["temperature"] == pytest.approx(t)
    assert through["calibration"]["mean_confidence"] == pytest.approx(
        after["calibration"]["mean_confidence"], abs=1e-4
    )
    predicted = invoke("predict", run, tmp_path / "one.npy", "-f", "json", "--runtime", ONE_FILE)
    assert predicted.exit_code == 0, predicted.output
    (exported_answer,) = json.loads(predicted.stdout)["predictions"][0]["outputs"].values()
    assert exported_answer["probabilities"] == pytest.approx(scaled["probabilities"], abs=1e-4)


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_each_model_of_an_ensemble_is_scaled_by_its_own_temperature(run_dir, tmp_path):
    """A copy of the tiny run, calibrated, joins the run itself (not calibrated): the mean is of
    the copy's scaled probabilities and the run's own; --temperature 1 takes both as they are."""
    from cnnspec.reporting.held_out import load_test_data
    from cnnspec.reporting.predictions import predict
    from cnnspec.reporting.run import locate
    from cnnspec.training.modelfile import load_model
    from tests.test_report_support import flat, invoke

    copy = tmp_path / "calibrated"
    shutil.copytree(run_dir, copy)
    # saved again: the same weights in another file (a byte-for-byte copy is refused as the
    # same model twice), so the mean below is of one model's probabilities, scaled and not
    load_model(copy / "model.keras").save(copy / "model.keras")
    assert (copy / "model.keras").read_bytes() != (run_dir / "model.keras").read_bytes()
    assert invoke("calibrate", copy, "--force").exit_code == 0
    t = json.loads((copy / FILE).read_text("utf-8"))["temperature"]
    result = invoke("evaluate", run_dir, "--ensemble", copy, "-o", tmp_path / "e")
    assert result.exit_code == 0, result.output
    assert f"temperature {t:.4g} applied ({copy / FILE}" in flat(result)
    document = json.loads((tmp_path / "e" / "evaluation.json").read_text("utf-8"))
    assert document["temperature"] == [1.0, pytest.approx(t)]
    run = locate(run_dir)
    test = load_test_data(run, load_model(run.model_path))
    own = predict(load_model(run.model_path), test.x, test.settings.rescale, run.output_kind())
    mean = (own + tempered(own, t)) / 2  # (the same weights: the copy is the run's model)
    assert document["calibration"]["mean_confidence"] == pytest.approx(
        float(mean.max(axis=1).mean()), abs=1e-5
    )
    plain = invoke("evaluate", run_dir, "--ensemble", copy, "--temperature", "1", "-o", tmp_path / "p")
    assert plain.exit_code == 0, plain.output
    assert json.loads((tmp_path / "p" / "evaluation.json").read_text("utf-8"))["temperature"] == [1.0, 1.0]


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_a_fit_without_mistakes_to_learn_from_is_not_written_unless_forced(run_dir, tmp_path):
    """The tiny run classifies all 24 of its validation images right: the likelihood only
    grows as the temperature falls, and the fit ends at 0.05, which every later evaluate and
    predict would apply. Refused with the figures and the reason; --force writes it."""
    from tests.test_report_support import flat, invoke

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    refused = invoke("calibrate", copy)
    assert refused.exit_code == 2, refused.output
    assert "expected a temperature inside the range searched" in flat(refused)
    assert "(T = 0.05; validation NLL" in flat(refused) and "Nothing was written" in flat(refused)
    assert "the model makes no mistake on the 24 validation images" in flat(refused)
    assert not (copy / FILE).exists()
    forced = invoke("calibrate", copy, "--force")
    assert forced.exit_code == 0, forced.output
    assert json.loads((copy / FILE).read_text("utf-8"))["temperature"] == pytest.approx(0.05, rel=1e-3)
    assert "note: the fit ended at the end of the range searched" in flat(forced)


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_calibrate_fits_on_a_calibration_set_of_its_own_but_never_on_the_runs_data(run_dir, tmp_path):
    """`calibrate --data`: the images `evaluate --data` scores (here 40 colour images with a third
    of their labels moved to the next class, so the model is surer than right), kept as what
    the temperature was fitted on; the run's own data is refused, nothing written."""
    from tests.test_report_support import CLASSES, colour_images, flat, invoke

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    x, y = colour_images(40, 9)
    y[::3] = (y[::3] + 1) % 3
    # (the loader wants training images; calibrate, as evaluate --data, reads the test images)
    np.savez(
        tmp_path / "cal.npz", x_train=x[:3], y_train=y[:3], x_test=x, y_test=y, class_names=np.array(CLASSES)
    )
    own = invoke("calibrate", copy, "--data", run_dir.parent / "colors.npz")
    assert own.exit_code == 2 and "expected a calibration set other than the run's own data" in flat(own)
    assert not (copy / FILE).exists()

    result = invoke("calibrate", copy, "--data", tmp_path / "cal.npz", "-f", "json")
    assert result.exit_code == 0, result.output
    kept = json.loads((copy / FILE).read_text("utf-8"))
    assert kept["images"] == 40 and kept["split"] == f"--data {tmp_path / 'cal.npz'}"
    assert kept["temperature"] > 1 and kept["nll_after"] < kept["nll_before"]  # surer than right
    evaluated = invoke("evaluate", copy)
    assert evaluated.exit_code == 0, evaluated.output
    assert f"fitted by cnnspec calibrate on 40 images of --data {tmp_path / 'cal.npz'}" in flat(evaluated)


#: a calibrated classifier whose scores come from batch_norm: no layer takes the temperature
UNFOLDABLE = """\
cnnspec: 1
name: unfoldable
input: {shape: [12, 12, 3]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - dense: 3
  - batch_norm
  - activation: softmax
data:
  source: {shapes: {images: 80, target: class}}
  validation_split: 0.25
  test_split: 0.2
training: {epochs: 2, batch_size: 16, seed: 0}
"""


@pytest.mark.slow
def test_an_export_whose_head_takes_no_temperature_is_served_alone_as_its_run_is(tmp_path):
    """The run's temperature, not folded into the export (batch_norm makes the scores), was
    applied by ``predict RUN -r onnx`` but not by ``predict RUN/export/model.onnx`` (or a copy),
    which answered the model's own probabilities, with temperature 1 and no note. The record
    keeps it now, and predict and evaluate of the file alone apply it."""
    pytest.importorskip("tf2onnx")
    from PIL import Image

    from tests.test_report_support import flat, invoke, train_without_page

    spec = tmp_path / "spec.yaml"
    spec.write_text(UNFOLDABLE, encoding="utf-8")
    run = tmp_path / "run"
    train_without_page(spec, run)
    assert (fitted_ := invoke("calibrate", run, "--force")).exit_code == 0, fitted_.output
    temperature = json.loads((run / FILE).read_text())["temperature"]
    assert temperature != 1.0
    exported = invoke("export", run, "--format", "onnx")
    assert exported.exit_code == 0 and "is not folded into the export" in flat(exported), exported.output
    record = json.loads((run / "export" / "model.onnx.json").read_text())
    assert record["output"]["unfolded_temperature"] == pytest.approx(temperature)
    away = tmp_path / "deployed"
    away.mkdir()
    for name in ("model.onnx", "model.onnx.json"):
        shutil.copy(run / "export" / name, away / name)
    picture = tmp_path / "c.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (12, 12, 3), dtype="uint8")).save(picture)
    answers = {}
    for target in ((run, "-r", "onnx"), (run / "export" / "model.onnx",), (away / "model.onnx",)):
        result = invoke("predict", *target, picture, "-o", tmp_path / "p", "-f", "json")
        assert result.exit_code == 0, result.output
        document = json.loads(result.stdout)
        assert document["temperature"] == pytest.approx(temperature), target
        (prediction,) = document["predictions"]
        answers[target] = sorted((p["index"], p["probability"]) for p in prediction["top"])
    for target, answer in answers.items():
        np.testing.assert_allclose(answer, answers[(run, "-r", "onnx")], atol=1e-6, err_msg=str(target))
    told = flat(invoke("predict", away / "model.onnx", picture, "-o", tmp_path / "t"))
    assert f"temperature {temperature:.4g} applied" in told
    own = invoke(
        "predict", away / "model.onnx", picture, "--temperature", "1", "-o", tmp_path / "o", "-f", "json"
    )
    assert json.loads(own.stdout)["temperature"] == 1.0
    losses = []
    for target in ((run, "-r", "onnx"), (away / "model.onnx",)):
        result = invoke("evaluate", *target, "--data", "shapes", "-o", tmp_path / "e", "-f", "json")
        assert result.exit_code == 0, result.output
        losses.append(json.loads(result.stdout)["loss"])
    assert losses[1] == pytest.approx(losses[0], abs=1e-5)


def test_gradcam_of_a_segmentation_refuses_a_temperature_it_would_not_apply(tmp_path, monkeypatch):
    """A segmentation's class map shows the shares of the pixels predicted as each class, which
    no temperature changes: `gradcam --temperature 2` drew the same picture, exit 0, as if
    applied; it is refused as an option that does not apply (exit 2), before the model is run."""
    from cnnspec.training import modelfile
    from tests.test_report_support import flat, invoke

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "cnnspec: 1\nname: pixels\ninput: {shape: [8, 8, 3]}\nmodel:\n"
        "  - conv2d: {filters: 2, kernel_size: 1, activation: softmax}\n"
        "data: {source: {shapes: {images: 8, image_size: [8, 8], target: mask}}}\n",
        encoding="utf-8",
    )
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as archive:  # (a model the test never runs)
        archive.writestr("config.json", "{}")
    monkeypatch.setattr(modelfile, "load_model", lambda *args, **kwargs: object())
    for temperature in ("2", "none"):
        result = invoke(
            "visualize", tmp_path / "m.keras", "gradcam", "--spec", spec, "--temperature", temperature
        )
        assert result.exit_code == 2, result.output
        assert flat(result) == (
            "error: expected --temperature with the gradcam view of a classifier or a multi-label model; "
            "a segmentation's class map shows the share of the pixels predicted as each class, which a "
            "temperature does not change hint: leave --temperature out (the calibration view draws a "
            "segmentation's pixel probabilities at a temperature)"
        )


@pytest.mark.slow
def test_a_run_without_a_validation_split_is_pointed_at_data(tmp_path):
    """A run trained with data.validation_split: 0 has nothing to fit on: the refusal named only
    training again, where `calibrate --data SOURCE` (the README's way for such a run) fits it
    on other labelled images."""
    from tests.test_report_support import flat, invoke, train_without_page

    spec = tmp_path / "s.yaml"
    spec.write_text(
        "cnnspec: 1\nname: noval\ninput: {shape: [8, 8, 1]}\n"
        "model: [flatten, {dense: {units: 10, activation: softmax}}]\n"
        "data: {source: digits, validation_split: 0, limit: 200}\n"
        "training: {epochs: 1, batch_size: 64, seed: 1}\n"
    )
    train_without_page(spec, tmp_path / "run")
    refused = invoke("calibrate", tmp_path / "run")
    assert refused.exit_code == 2, refused.output
    assert "held out none (data.validation_split: 0)" in flat(refused)
    assert "hint: fit it on other labelled images with --data SOURCE, or train with" in flat(refused)
    assert not (tmp_path / "run" / FILE).exists()
