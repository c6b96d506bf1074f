"""Mixed precision (float32 outputs) and `jit_compile: auto` (timed choice recorded in lock.json)."""

from __future__ import annotations

import json

import pytest

from cnnspec.analysis.settings import training_config
from cnnspec.api import compile_text
from cnnspec.errors import SpecError
from cnnspec.training.distribute import Distribution, JitChoice, choose_jit

TINY = """\
cnnspec: 1
name: tiny_precision
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - dense: {units: 10, activation: softmax}
data: {source: digits, limit: 64}
training: {epochs: 1, batch_size: 16, seed: 4}
"""


@pytest.mark.parametrize(
    ("value", "jit", "auto"), [("true", True, False), ("false", False, False), ("auto", False, True)]
)
def test_jit_compile_setting(value, jit, auto):
    config = training_config(compile_text(TINY + f"runtime: {{jit_compile: {value}}}\n"))
    assert (config.jit_compile, config.jit_auto) == (jit, auto)


def test_jit_compile_rejects_other_words():
    with pytest.raises(SpecError, match="jit_compile"):
        compile_text(TINY + "runtime: {jit_compile: sometimes}\n")


@pytest.mark.parametrize(("plain", "xla", "chosen"), [(0.010, 0.004, True), (0.004, 0.010, False)])
def test_auto_keeps_the_faster(monkeypatch, plain, xla, chosen):
    from cnnspec.training import distribute

    timings = {False: plain, True: xla}
    monkeypatch.setattr(distribute, "time_steps", lambda model, dataset: timings[model])
    notes: list[str] = []
    choice = choose_jit("auto", lambda jit: jit, object(), Distribution(), notes)
    assert choice.chosen is chosen
    assert choice.describe()["seconds_per_step"] == {"no_xla": plain, "xla": xla}
    assert choice.describe()["xla_speedup"] == round(plain / xla, 3)
    assert "ms/step" in notes[0]


def test_auto_survives_a_model_xla_cannot_compile(monkeypatch):
    from cnnspec.training import distribute

    def fake(model, dataset):
        if model:
            raise RuntimeError("XLA cannot compile this op")
        return 0.01

    monkeypatch.setattr(distribute, "time_steps", fake)
    notes: list[str] = []
    choice = choose_jit("auto", lambda jit: jit, object(), Distribution(), notes)
    assert choice.chosen is False and "xla" not in choice.seconds_per_step
    assert any("XLA failed" in note for note in notes)


def test_fixed_settings_are_not_timed():
    assert choose_jit(True, None, None, Distribution(), []) == JitChoice(True, True)  # type: ignore[arg-type]
    assert choose_jit(False, None, None, Distribution(), []).chosen is False  # type: ignore[arg-type]


@pytest.mark.slow
def test_mixed_policy_keeps_outputs_float32():
    import keras

    from cnnspec.api import build_model
    from cnnspec.training.runtime import configured

    compiled = compile_text(TINY + "runtime: {mixed_precision: true}\n")
    notes: list[str] = []
    with configured(training_config(compiled), 1, notes) as policy:
        model = build_model(compiled)
    assert policy == "mixed_bfloat16"  # no GPU here: bfloat16 on the CPU
    assert keras.config.dtype_policy().name == "float32"  # restored
    assert model.layers[1].compute_dtype == "bfloat16"  # the conv computes in bfloat16
    assert model.layers[-1].dtype_policy.name == "float32"
    assert model.outputs[0].dtype == "float32"


@pytest.mark.slow
def test_mixed_precision_run_with_jit_auto(tmp_path):
    from cnnspec.training.modelfile import load_model
    from cnnspec.training.trainer import train

    spec = tmp_path / "spec.yaml"
    spec.write_text(TINY + "runtime: {mixed_precision: true, jit_compile: auto}\n")
    result = train(compile_text(spec.read_text(), str(spec)), out=tmp_path / "run")
    lock = json.loads((result.run_dir / "lock.json").read_text())
    assert lock["dtype_policy"] == "mixed_bfloat16"
    jit = lock["jit_compile"]
    assert jit["setting"] == "auto" and isinstance(jit["chosen"], bool)
    assert set(jit["seconds_per_step"]) == {"no_xla", "xla"} and jit["timed_steps"] > 0
    assert jit["chosen"] == (jit["seconds_per_step"]["xla"] < jit["seconds_per_step"]["no_xla"])
    assert any("jit_compile auto" in note for note in result.notes)
    model = load_model(result.run_dir / "model.keras", compile=True)
    assert model.outputs[0].dtype == "float32"
