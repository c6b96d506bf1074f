"""`cnnspec lr-find SPEC` (cnnspec/training/lr_find.py): the rate grows exponentially from --min
to --max, one rate per batch of the spec's own training; the suggestion is where the smoothed
loss falls fastest; nothing of the sweep's run is kept."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnspec.analysis.passes import compile_text
from cnnspec.analysis.settings import training_config
from cnnspec.cli.app import app
from cnnspec.training.lr_find import (
    Sweep,
    SweepEnded,
    batch_losses,
    beta_for,
    centred,
    rate_override,
    settle,
    smooth,
    suggest,
    sweep_overrides,
)

SPEC = """\
cnnspec: 1
name: sweepme
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
    id: conv
  - flatten
  - dense: {units: 5, activation: softmax}
data: {source: digits, classes: [0, 1, 2, 3, 4], per_class: 20}
training:
  batch_size: 10
  seed: 2
TRAINING
"""


def test_smoothing_is_bias_corrected_and_the_suggestion_is_the_steepest_fall():
    assert smooth([2.0] * 5) == pytest.approx([2.0] * 5)  # no pull towards 0 at the start
    rates = list(np.logspace(-6, 1, 71))
    # a loss that falls fastest at 1e-3 (a logistic step in log10 of the rate), least at 1e-1, then rises
    losses = [
        2 - 1 / (1 + math.exp(-3 * (math.log10(r) + 3))) + max(0.0, math.log10(r) + 1) ** 2 for r in rates
    ]
    steepest, lowest = suggest(rates, losses)
    assert steepest == pytest.approx(1e-3, rel=0.2) and lowest == pytest.approx(1e-1, rel=0.3)
    assert suggest(rates, [1.0 + i for i in range(71)]) == (None, rates[0])  # never falls
    assert suggest(rates[:2], [1.0, 0.5]) == (None, None)  # too few points
    flat = [1.0 + 0.01 * math.sin(i) for i in range(71)]  # noise: a fall of 2 %
    assert suggest(rates, flat)[0] is None


def test_the_centred_smoothing_weighs_both_sides_alike():
    losses = list(np.random.default_rng(3).uniform(0.5, 2.0, 40))
    gaps = np.abs(np.subtract.outer(np.arange(40), np.arange(40)))
    weights = 0.9**gaps  # (the definition, worked out the slow way)
    assert centred(losses, 0.9) == pytest.approx(list(weights @ losses / weights.sum(axis=1)))
    assert centred([2.0] * 7, 0.97) == pytest.approx([2.0] * 7)


def test_the_suggestion_does_not_lag_behind_the_fall():
    """The running average trails the losses: its steepest fall lies at a higher rate than the
    losses' own. The suggestion comes from the centred curve, up to the running average's lowest
    point (the diverging tail after it left out)."""
    steps = 100
    rates = list(np.logspace(-7, 1, steps))
    noise = np.random.default_rng(0).normal(0, 0.15, steps)
    logs = np.log10(rates)
    losses = list(
        2.3 - 2 / (1 + np.exp(-3 * (logs + 2.5))) + noise + np.maximum(0, np.exp(4 * (logs + 0.5)) - 1)
    )
    sweep = Sweep(rates=rates, losses=losses, smoothed=smooth(losses, beta_for(steps)), steps=steps)
    lagging, _ = suggest(sweep.rates, sweep.smoothed)
    settle(sweep)
    assert math.log10(sweep.steepest) == pytest.approx(-2.5, abs=0.25)  # the fall's steepest point
    assert lagging > 2.5 * sweep.steepest  # (where the running average put it: 1e-1.9 here)
    lowest = sweep.smoothed.index(min(sweep.smoothed))
    assert len(sweep.centred) == lowest + 1 and sweep.describe()["centred"] == sweep.centred
    # a sweep cut short by a non-finite loss: the curve stops before it
    cut = Sweep(rates=rates[:30], losses=[*losses[:29], math.inf], steps=steps)
    cut.smoothed = smooth(cut.losses, beta_for(steps))
    settle(cut)
    assert all(math.isfinite(v) for v in cut.centred) and len(cut.centred) <= 29
    # a short sweep (--steps 5): no negative weights, so the curve stays within its losses
    short = Sweep(rates=rates[:5], losses=[2.30, 2.29, 2.0, 1.5, 1.45], steps=5)
    short.smoothed = smooth(short.losses, beta_for(5))
    settle(short)
    assert all(1.45 <= v <= 2.30 for v in short.centred)
    empty = Sweep(rates=[1e-3], losses=[math.nan], smoothed=[math.nan], steps=steps)
    settle(empty)
    assert (empty.centred, empty.steepest, empty.lowest) == ([], None, None)


def test_the_sweep_is_the_spec_trained_for_one_epoch_of_growing_rates():
    plain_text = SPEC.replace(
        "TRAINING", "  optimizer: {sgd: {momentum: 0.9, learning_rate: 0.1}}\n  epochs: 7"
    )
    plain = compile_text(plain_text, "s.yaml")
    swept = compile_text(plain_text, "s.yaml", overrides=sweep_overrides(plain, 1e-5, 1.0, 11))
    config = training_config(swept)
    assert (config.epochs, config.steps_per_epoch, config.callbacks) == (1, 11, ())
    optimizer = config.phases[0].optimizer
    assert optimizer.name == "sgd" and optimizer.settings == {"momentum": 0.9}  # the spec's own
    assert optimizer.learning_rate.kind == "exponential_decay"
    growth = optimizer.learning_rate.settings["decay_rate"]
    assert 1e-5 * growth**10 == pytest.approx(1.0)  # the 11th batch's rate is --max
    # a phased spec keeps its first phase: what it freezes
    phased = "  phases:\n    - {epochs: 3, freeze: [conv], learning_rate: 0.01}\n"
    phased += "    - {epochs: 3, unfreeze: ['*']}"
    first = compile_text(SPEC.replace("TRAINING", phased), "s.yaml")
    swept = compile_text(
        SPEC.replace("TRAINING", phased), "s.yaml", overrides=sweep_overrides(first, 1e-5, 1.0, 11)
    )
    config = training_config(swept)
    assert (
        len(config.phases) == 1 and config.phases[0].frozen == training_config(first).phases[0].frozen != ()
    )
    assert config.phases[0].optimizer.learning_rate.kind == "exponential_decay"
    # a spec trained by a cluster is swept in this process alone, whichever way it writes the
    # strategy (the short form, or a mapping with a startup_timeout the default strategy refuses)
    for runtime in (
        "{distribute: {strategy: multi_worker}}",
        "{distribute: multi_worker}",
        "{distribute: {strategy: multi_worker, startup_timeout: 60}}",
    ):
        clustered = SPEC.replace("TRAINING", "") + f"runtime: {runtime}\n"
        swept = compile_text(
            clustered, "s.yaml", overrides=sweep_overrides(compile_text(clustered, "s.yaml"), 1e-5, 1, 9)
        )
        assert training_config(swept).distribute == "default", runtime
    # the suggestion goes back as the optimizer's rate, its settings kept (none for phases)
    again = compile_text(plain_text, "s.yaml", overrides=[rate_override(plain, 0.0123)])
    assert training_config(again).optimizer.settings == {"momentum": 0.9}
    assert training_config(again).optimizer.learning_rate == 0.012
    assert rate_override(first, 0.01) is None


def test_a_range_that_is_none_or_a_temporary_folder_that_cannot_be_made_is_refused(tmp_path, monkeypatch):
    (tmp_path / "s.yaml").write_text(SPEC.replace("TRAINING", ""), "utf-8")
    result = CliRunner().invoke(app, ["lr-find", str(tmp_path / "s.yaml"), "--min", "1", "--max", "0.1"])
    assert result.exit_code == 2 and "expected 0 < --min < --max" in result.output
    # an infinite --max, a range no float spans (the sweep's growth factor would be infinite),
    # and rates the optimizer's float32 rounds to 0 (it swept "rates 0 → 0") or to infinity
    for low, high in (("1e-7", "inf"), ("1e-300", "1e300"), ("1e-310", "1e-300"), ("1e-7", "1e39")):
        args = ["lr-find", str(tmp_path / "s.yaml"), "--min", low, "--max", high]
        result = CliRunner().invoke(app, args)
        text = " ".join(result.output.split())
        assert result.exit_code == 2 and "expected --min and --max between 1.2e-38 and 3.4e+38" in text

    def refused(**_: object) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", refused)
    result = CliRunner().invoke(app, ["lr-find", str(tmp_path / "s.yaml")])
    assert result.exit_code == 2 and "cannot make the sweep's temporary folder in" in result.output
    assert "Permission denied" in result.output and "TMPDIR" in result.output


class _Rates:
    """What the sweep's callback reads of a model: its optimizer's current rate."""

    def __init__(self) -> None:
        self.optimizer = type("Optimizer", (), {"learning_rate": 0.5})()


@pytest.mark.slow
@pytest.mark.parametrize("diverges", [False, True])
def test_the_sweep_ends_after_its_last_batch_or_once_the_loss_diverges(diverges: bool):
    """The training ends there (SweepEnded): no validation, test evaluation or model file of a run
    folder that is thrown away."""
    callback, sweep = batch_losses(12)
    callback.set_model(_Rates())
    losses = [1.0] * 6 + [100.0 if diverges else 1.0] * 6
    with pytest.raises(SweepEnded):
        mean = 0.0
        for batch, loss in enumerate(losses):
            mean = (mean * batch + loss) / (batch + 1)  # Keras logs the epoch's running mean
            callback.on_train_batch_begin(batch)
            callback.on_train_batch_end(batch, {"loss": mean})
    assert sweep.losses == pytest.approx(losses[: len(sweep.losses)])
    assert len(sweep.losses) == (7 if diverges else 12) and sweep.rates == [0.5] * len(sweep.losses)
    assert (
        (sweep.stopped == "the loss diverged at a rate of 0.5 (batch 7)") if diverges else sweep.stopped == ""
    )


@pytest.mark.slow
def test_the_command_sweeps_draws_and_keeps_nothing_else(tmp_path: Path):
    from cnnspec.reporting.images import is_cnnspec_png

    (tmp_path / "s.yaml").write_text(SPEC.replace("TRAINING", ""), "utf-8")
    before = set(Path(tempfile.gettempdir()).glob("cnnspec-lr-find-*"))
    args = ["lr-find", str(tmp_path / "s.yaml"), "--steps", "30", "--min", "1e-5", "--max", "3", "--plot"]
    result = CliRunner().invoke(app, [*args, str(tmp_path / "lr.png"), "-f", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout[result.stdout.index("{") :])
    rates, losses = document["rates"], document["losses"]
    assert len(rates) == len(losses) == document["batches"] and document["batches"] <= 30
    assert rates[0] == pytest.approx(1e-5, rel=1e-5)  # then growing by the same factor each batch
    assert np.allclose(np.diff(np.log(rates)), math.log(3e5) / 29, rtol=1e-4)
    assert all(loss is None or loss > 0 for loss in losses)
    assert document["suggested"] is None or 1e-5 <= document["suggested"] <= 3
    assert is_cnnspec_png(tmp_path / "lr.png")
    assert set(Path(tempfile.gettempdir()).glob("cnnspec-lr-find-*")) == before  # its run is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr.png", "s.yaml"]


@pytest.mark.parametrize("where", ["history.png", "pictures/lr.png", "lr.png"])
@pytest.mark.parametrize("force", [False, True])
def test_a_plot_in_a_run_folder_is_refused_and_the_run_keeps_its_picture(tmp_path: Path, where, force):
    """`lr-find --plot RUN/history.png` replaced that run's own curves, exit 0 (cnnspec drew
    them, so their mark let them be replaced): refused as visualize -o refuses another run's."""
    from tests.test_damaged_runs import make_run

    run = make_run(tmp_path / "run")
    (run / "pictures").mkdir()
    (run / "history.png").write_bytes(b"the run's own curves")
    (tmp_path / "s.yaml").write_text(SPEC.replace("TRAINING", ""), "utf-8")
    plot = run / where
    args = ["lr-find", str(tmp_path / "s.yaml"), "--plot", str(plot), *(["--force"] if force else [])]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
    assert result.exit_code == 2, result.output
    assert (
        f"error: expected --plot outside the folders of runs; {plot} is inside {run}, a run's folder, "
        "where the picture would be read as that run's own" in " ".join(result.output.split())
    )
    assert (run / "history.png").read_bytes() == b"the run's own curves"
    assert not (run / "lr.png").exists() and not (run / "pictures" / "lr.png").exists()
