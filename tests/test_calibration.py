"""Calibration (cnnspec/reporting/calibration.py): ECE, MCE and the Brier score worked out by
hand, then what `cnnspec evaluate`, `cnnspec visualize RUN calibration` and report.html show of
the tiny trained run."""

from __future__ import annotations

import json
import math
import re
import shutil

import numpy as np
import pytest

from cnnspec.reporting.calibration import Calibration, calibration, of_probabilities


def test_errors_by_hand_with_the_bin_edges_and_a_confidence_that_is_not_a_number():
    # bins of 0.1: (0.9, 1] holds 0.95, 0.95 and 1.0 (2 of 3 right); (0.5, 0.6] the four 0.55
    # (2 right); [0, 0.1] the 0.0 (wrong); the NaN (a diverged row) is left out
    confidence = [0.95, 0.95, 0.55, 0.55, 0.55, 0.55, 1.0, 0.0, math.nan]
    correct = [True, False, True, True, False, False, True, False, True]
    result = calibration(np.array(confidence), np.array(correct), bins=10)
    assert result.images == 8 and result.left_out == 1
    assert [b.images for b in result.bins] == [1, 0, 0, 0, 0, 4, 0, 0, 0, 3]
    top = result.bins[9]
    assert top.confidence == pytest.approx(2.9 / 3) and top.accuracy == pytest.approx(2 / 3)
    assert result.bins[1].confidence is None and result.bins[1].accuracy is None
    assert result.ece == pytest.approx(3 / 8 * 0.3 + 4 / 8 * 0.05)
    assert result.mce == pytest.approx(0.3)
    assert result.confidence == pytest.approx(5.1 / 8) and result.accuracy == pytest.approx(4 / 8)
    assert result.overconfidence > 0 and "(overconfident)" in result.line()
    assert "1 image(s) without a confidence left out" in result.line() and result.brier is None
    # a bin is (low, high]: 0.1 itself is the first bin's, a hair above it the second's
    edges = calibration(np.array([0.1, 0.1 + 1e-9]), np.array([True, True]), bins=10)
    assert [b.images for b in edges.bins[:2]] == [1, 1]


def test_the_brier_score_and_the_top_class_of_probabilities():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [np.nan, 0.5, 0.5]])
    result = of_probabilities(probs, np.array([0, 2, 1]))
    # (0.3² + 0.2² + 0.1²) and (0.1² + 0.8² + 0.9²): the row that is not numbers is left out
    assert result.brier == pytest.approx((0.14 + 1.46) / 2)
    assert result.images == 2 and result.left_out == 1
    assert result.accuracy == 0.5 and result.confidence == pytest.approx(0.75)


def test_outcomes_drawn_with_the_stated_confidence_are_calibrated_and_overconfidence_is_measured():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.2, 1.0, 20_000)
    honest = calibration(confidence, rng.uniform(size=confidence.size) < confidence)
    assert honest.ece < 0.02 and abs(honest.overconfidence) < 0.01
    assert "(about as sure as right)" in honest.line()
    # right only 80 % as often as it claims: about a fifth of the mean confidence (0.6) too sure
    boastful = calibration(confidence, rng.uniform(size=confidence.size) < 0.8 * confidence)
    assert boastful.overconfidence == pytest.approx(0.12, abs=0.01)
    assert boastful.ece == pytest.approx(0.12, abs=0.01)


def test_what_evaluation_json_keeps_reads_back_the_same():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(4), 50)
    result = of_probabilities(probs, rng.integers(0, 4, 50))
    described = json.loads(json.dumps(result.describe()))
    assert Calibration.read(described).line() == result.line()
    assert sum(row["images"] for row in described["reliability"]) == described["images"] == 50
    empty = calibration(np.array([math.nan]), np.array([False]))
    assert empty.images == 0 and "no test image has a confidence" in empty.line()


# -- the commands, on the tiny trained run ------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from tests.test_report_support import trained_run

    return trained_run(tmp_path_factory)


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_evaluate_keeps_it_and_visualize_draws_the_same(run_dir, tmp_path):
    from cnnspec.reporting.images import is_cnnspec_png
    from tests.test_report_support import flat, invoke

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    result = invoke("evaluate", copy)
    assert result.exit_code == 0, result.output
    document = json.loads((copy / "evaluation.json").read_text("utf-8"))
    described = document["calibration"]
    assert described["images"] == document["data"]["images"] == 30 and described["left_out"] == 0
    assert described["accuracy"] == pytest.approx(document["accuracy"], abs=1e-6)
    rows = [row for row in described["reliability"] if row["images"]]
    assert described["ece"] == pytest.approx(
        sum(row["images"] / 30 * abs(row["accuracy"] - row["confidence"]) for row in rows), abs=1e-5
    )
    assert 0 <= described["brier"] <= 2
    assert Calibration.read(described).line() in flat(result)
    drawn = invoke("visualize", copy, "calibration")
    assert drawn.exit_code == 0, drawn.output
    assert is_cnnspec_png(copy / "calibration.png") and f"wrote {copy / 'calibration.png'}" in flat(drawn)
    ece = float(re.search(r"calibration: ECE ([0-9.]+)%", flat(drawn)).group(1))
    assert ece == pytest.approx(100 * described["ece"], abs=0.011)  # the same model and images
