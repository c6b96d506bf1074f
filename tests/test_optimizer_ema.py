"""Optimizer settings beyond the rate: a moving average of the weights (``use_ema``) and
gradient accumulation, as Keras' optimizers take them.

``use_ema`` changes what a fit ends with (Keras sets the weights to their average after the
last epoch), which a run resumed at a phase boundary must replay from the snapshot's optimizer
variables; the accumulated gradients of an unfinished accumulation are optimizer variables too,
saved in every snapshot. tests/test_resume_exact.py's phased run has both, and resumes at the
boundary and mid-accumulation: the uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnspec.api import compile_text
from cnnspec.errors import SpecError
from tests.test_resume_exact import SPEC

#: Two phases, each with its own averaged optimizer; the second accumulates two batches of the
#: five an epoch has, so every epoch ends in the middle of an accumulation.
EMA = """\
  phases:
    - {epochs: 2, freeze: [conv], optimizer: {adam: {learning_rate: 0.01, use_ema: true, ema_momentum: 0.5}}}
    - epochs: 2
      unfreeze: ['*']
      optimizer:
        adam: {learning_rate: 0.003, use_ema: true, ema_momentum: 0.5, gradient_accumulation_steps: 2}"""


def test_the_settings_reach_keras_and_the_script_alike(tmp_path: Path):
    from typer.testing import CliRunner

    from cnnspec.cli.app import app
    from cnnspec.spec.optimizers import keras_settings

    settings = {"use_ema": True, "ema_momentum": 0.9, "ema_overwrite_frequency": 5}
    settings["gradient_accumulation_steps"] = 4
    assert keras_settings("sgd", {**settings, "momentum": 0.9}) == {**settings, "momentum": 0.9}
    (tmp_path / "s.yaml").write_text(SPEC.replace("TRAINING", EMA), "utf-8")
    result = CliRunner().invoke(
        app, ["codegen", str(tmp_path / "s.yaml"), "--script", "-o", str(tmp_path / "t.py")]
    )
    assert result.exit_code == 0, result.output
    text = (tmp_path / "t.py").read_text("utf-8")
    assert "Adam(learning_rate=0.01, ema_momentum=0.5, use_ema=True)" in text
    assert "learning_rate=0.003, ema_momentum=0.5, use_ema=True, gradient_accumulation_steps=2" in text
    # validation and the epoch's-end callbacks see the average (tests/test_averaged_weights.py)
    assert "return [average_in, average_out]" in text and "class AverageIn(keras.callbacks.Callback)" in text
    plain = SPEC.replace("TRAINING", "  epochs: 1")
    (tmp_path / "p.yaml").write_text(plain, "utf-8")
    args = ["codegen", str(tmp_path / "p.yaml"), "--script", "-o", str(tmp_path / "p.py")]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert "AverageIn" not in (tmp_path / "p.py").read_text("utf-8")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("ema_momentum: 0.9", "ema_momentum has no effect without use_ema: true"),
        ("{use_ema: false, ema_overwrite_frequency: 3}", "ema_overwrite_frequency has no effect"),
        ("gradient_accumulation_steps: 1", "expected an integer ≥ 2"),
    ],
)
def test_what_keras_would_ignore_or_refuse_is_located(setting: str, message: str):
    text = SPEC.replace(
        "TRAINING",
        "  epochs: 1\n  optimizer: {adam: " + (setting if setting[0] == "{" else f"{{{setting}}}") + "}",
    )
    with pytest.raises(SpecError) as caught:
        compile_text(text, "spec.yaml")
    (found,) = caught.value.errors
    assert message in found.message and found.loc.line == 18, found
