"""Runtime settings that Keras or cnnspec used to drop silently (audit D2, D4).

- D2: ``runtime.jit_compile`` on a model holding Keras layers without XLA support
  (``supports_jit = False``: random_rotation, random_zoom, random_translation, random_crop …).
  Keras compiles such a model without XLA and only warns; ``auto`` now picks false untimed with
  the layers as its reason, and ``true`` is a located spec error at ``cnnspec validate`` (TF-free,
  from the registry's ``xla``), as ``true`` beside ``training.deterministic`` is.
- D4: ``runtime.distribute.startup_timeout`` beside a strategy other than ``multi_worker`` (the
  only one that waits for a cluster) is a located error, as ``test_split`` is beside a source
  with its own test set.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cnnspec.cli.app import app
from cnnspec.errors import SpecError
from cnnspec.training.distribute import Distribution, choose_jit

#: digits (8×8×1) with Keras layers that lack XLA support inside the model (random_rotation,
#: random_zoom) and one that has it (random_flip): the smallest model of the audit's repro.
RANDOM_IN_MODEL = """\
cnnspec: 1
name: jitaug
input: {shape: [8, 8, 1]}
model:
  - random_flip: horizontal
  - random_rotation: 0.1
  - random_zoom: 0.1
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - dense: {units: 10, activation: softmax}
data: {source: digits, limit: 96, test_split: 0.25}
training: {epochs: 1, batch_size: 32, seed: 1}
"""
#: the names the built model gives the two layers without XLA support
UNSUPPORTED = ["random_rotation_1", "random_zoom_1"]

DISTRIBUTE_HEAD = """\
cnnspec: 1
name: st
input: {shape: [8, 8, 1]}
model:
  - flatten
  - dense: {units: 10, activation: softmax}
data: {source: digits}
training: {epochs: 1}
"""


# -- D4: startup_timeout outside multi_worker ------------------------------------------------------


@pytest.mark.parametrize("strategy", ["default", "one_device", "mirrored", "tpu"])
def test_startup_timeout_beside_another_strategy_is_a_located_error(
    runner: CliRunner, write_spec: Any, strategy: str
) -> None:
    """Only multi_worker waits for a cluster: elsewhere the timeout would be accepted and never
    used. Reported where the key is written, with the way out."""
    line = f"runtime: {{distribute: {{strategy: {strategy}, startup_timeout: 5}}}}\n"
    spec = write_spec(DISTRIBUTE_HEAD + line)
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1, result.output
    column = line.index("startup_timeout") + 1
    assert f":9:{column}: error: runtime.distribute.startup_timeout" in result.output
    assert f"expected no startup_timeout with strategy {strategy}" in result.output
    assert "multi_worker" in result.output and f"runtime.distribute: {strategy}" in result.output


@pytest.mark.parametrize(
    "runtime",
    [
        "runtime: {distribute: {strategy: multi_worker, startup_timeout: 5}}\n",
        "runtime: {distribute: {strategy: mirrored}}\n",
        "runtime: {distribute: mirrored}\n",
    ],
)
def test_startup_timeout_with_multi_worker_still_validates(
    runner: CliRunner, write_spec: Any, runtime: str
) -> None:
    result = runner.invoke(app, ["validate", str(write_spec(DISTRIBUTE_HEAD + runtime))])
    assert result.exit_code == 0, result.output
    assert "error" not in result.output and "warning" not in result.output


# -- D2: choose_jit with layers Keras cannot compile with XLA --------------------------------------


def _never_built(jit: bool) -> Any:
    """A ``build`` for :func:`choose_jit` that fails the test when called: nothing is timed."""
    raise AssertionError(f"a model was built to be timed (jit={jit})")


def test_auto_picks_false_untimed_naming_the_layers() -> None:
    """``auto`` must not time a second run without XLA as "XLA": false, the layers as reason,
    said once."""
    notes: list[str] = []
    choice = choose_jit("auto", _never_built, None, Distribution(), notes, unsupported=UNSUPPORTED)
    assert choice.describe() == {
        "setting": "auto",
        "chosen": False,
        "reason": "layers without XLA support: random_rotation_1, random_zoom_1",
    }
    assert notes == [
        "jit_compile auto: no XLA — Keras cannot compile random_rotation_1, random_zoom_1 with XLA"
    ]


def test_true_is_a_located_spec_error_naming_the_layers(runner: CliRunner, write_spec: Any) -> None:
    """As ``true`` with ``training.deterministic``: the run would not compile what the spec says.
    Said by ``validate`` (no TensorFlow), so ``train`` and the generated script never start it."""
    spec = write_spec(RANDOM_IN_MODEL + "runtime: {jit_compile: true}\n")
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1, result.output
    assert ":13:24: error: runtime.jit_compile: expected runtime.jit_compile false or auto" in result.output
    assert "Keras cannot compile random_rotation_1, random_zoom_1 with XLA" in result.output
    assert "augmentation: section" in result.output
    refused = runner.invoke(app, ["codegen", "--script", str(spec)])
    assert refused.exit_code == 1 and "runtime.jit_compile" in refused.output


def test_the_same_layers_in_the_augmentation_section_leave_true_alone(
    runner: CliRunner, write_spec: Any
) -> None:
    moved = RANDOM_IN_MODEL.replace(
        "model:\n  - random_flip: horizontal\n  - random_rotation: 0.1\n  - random_zoom: 0.1\n",
        "augmentation: [random_flip: horizontal, random_rotation: 0.1, random_zoom: 0.1]\nmodel:\n",
    )
    assert "augmentation:" in moved
    result = runner.invoke(app, ["validate", str(write_spec(moved + "runtime: {jit_compile: true}\n"))])
    assert result.exit_code == 0, result.output


def test_models_xla_can_compile_are_unchanged() -> None:
    """No unsupported layers: ``true`` and ``false`` are what they say, untimed."""
    assert choose_jit(True, _never_built, None, Distribution(), [], unsupported=()).chosen is True
    assert choose_jit(False, _never_built, None, Distribution(), [], unsupported=UNSUPPORTED).chosen is False


# -- D2: through the CLI (TensorFlow) ----------------------------------------


def _train(runner: CliRunner, spec: Path, out: Path) -> tuple[Any, list[str]]:
    """``cnnspec train`` on ``spec``; its result and the messages of the warnings it raised
    (recorded: pytest would otherwise swallow them before they reach the output)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = runner.invoke(app, ["train", str(spec), "--out", str(out)])
    return result, [str(w.message) for w in caught]


@pytest.mark.slow
def test_jit_auto_with_random_layers_in_the_model_records_false(
    runner: CliRunner, write_spec: Any, tmp_path: Path
) -> None:
    spec = write_spec(RANDOM_IN_MODEL + "runtime: {jit_compile: auto}\n")
    result, caught = _train(runner, spec, tmp_path / "run")
    assert result.exit_code == 0, result.output
    recorded = json.loads((tmp_path / "run" / "lock.json").read_text())["jit_compile"]
    assert recorded == {
        "setting": "auto",
        "chosen": False,
        "reason": "layers without XLA support: random_rotation_1, random_zoom_1",
    }
    assert result.output.count("Keras cannot compile random_rotation_1, random_zoom_1 with XLA") == 1
    assert not [message for message in caught if "jit_compile" in message], caught


def test_the_script_says_no_xla_for_such_a_model(runner: CliRunner, write_spec: Any) -> None:
    """Its note said `cnnspec train` times both and to set true for XLA: train times nothing
    for this model and validate refuses true."""
    spec = write_spec(RANDOM_IN_MODEL + "runtime: {jit_compile: auto}\n")
    result = runner.invoke(app, ["codegen", "--script", str(spec)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.replace("#", " ").split())  # the header's comment lines wrap
    assert "compiles without XLA, as `cnnspec train` does for this model" in said
    assert "Keras cannot compile random_rotation_1, random_zoom_1 with XLA" in said
    assert "set runtime.jit_compile: true for XLA here" not in said


@pytest.mark.slow
def test_a_deterministic_run_leaves_op_determinism_as_it_found_it(tmp_path: Path) -> None:
    """Op determinism is process-wide: a later run in the process (a search trial, the Python
    API) ran deterministic too, and Keras then compiled `jit_compile: auto`'s XLA model
    without XLA (its timing compared two runs without it)."""
    from tensorflow.python.framework.config import is_op_determinism_enabled

    from cnnspec.api import compile_text
    from cnnspec.training.trainer import train

    spec = RANDOM_IN_MODEL.replace(
        "  - random_flip: horizontal\n  - random_rotation: 0.1\n  - random_zoom: 0.1\n", ""
    )
    assert not is_op_determinism_enabled()
    text = spec.replace("seed: 1}", "seed: 1, deterministic: true}") + "runtime: {jit_compile: auto}\n"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(compile_text(text), out=tmp_path / "run")
    assert not is_op_determinism_enabled()
    # and the run's own `jit_compile: auto` picked no XLA, untimed (op determinism has none:
    # test_distribute.py's choose_jit test), so Keras' bare UserWarning about it never came
    assert json.loads((tmp_path / "run" / "lock.json").read_text())["jit_compile"] == {
        "setting": "auto",
        "chosen": False,
        "reason": "training.deterministic: op determinism has no XLA",
    }
    user_warnings = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert user_warnings == [], user_warnings


# -- a layer TensorFlow's CPU kernels cannot run -----------------------------------------------------


@pytest.mark.slow
def test_train_refuses_a_layer_no_cpu_kernel_runs_on_a_machine_without_a_gpu(
    runner: CliRunner, write_spec: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dilated conv2d_transpose failed in the first batch on a CPU, with TensorFlow's
    InvalidArgumentError, after the data was loaded. Without a GPU (this machine's answer is
    set here, so a GPU machine runs the same test), train refuses it at the layer before the
    data is loaded, and leaves no run folder."""
    from cnnspec.training import data, runtime

    monkeypatch.setattr(runtime, "gpu_names", lambda: [])
    # (this machine's kernels, as where oneDNN is off: TensorFlow reads its setting at its import)
    monkeypatch.setattr(runtime, "cpu_runs", lambda node, compiled: False)
    monkeypatch.setattr(data, "load_dataset", lambda *args: pytest.fail("the data was loaded"))
    spec = write_spec(
        "cnnspec: 1\nname: up\ninput: {shape: [8, 8, 1]}\nmodel:\n"
        "  - conv2d_transpose: {filters: 2, kernel_size: 3, dilation_rate: 2}\n"
        "  - flatten\n  - dense: {units: 10, activation: softmax}\n"
        "data: {source: digits}\ntraining: {epochs: 1}\n"
    )
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(spec), "--out", str(out)])
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "spec.yaml:5:23: error: model[0].conv2d_transpose: TensorFlow's own CPU kernel takes no " in text
    assert "dilation_rate over 1; this machine has no GPU, and its oneDNN is off" in text
    assert "hint: run with TF_ENABLE_ONEDNN_OPTS=1" in text and "Traceback" not in text
    assert not out.exists()


def test_a_layer_this_machines_kernels_run_is_not_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """train refused a dilated conv2d_transpose on any machine without a GPU, where oneDNN's
    kernel (on by default with AVX-512: the generated script trained it) runs it: the probe of
    the layer alone decides. (Faked here: TensorFlow's oneDNN setting is read at its import.)"""
    from cnnspec.analysis.passes import compile_text
    from cnnspec.training import runtime

    compiled = compile_text(
        "cnnspec: 1\nname: up\ninput: {shape: [8, 8, 1]}\nmodel:\n"
        "  - conv2d_transpose: {filters: 2, kernel_size: 3, dilation_rate: 2}\n"
        "  - flatten\n  - dense: {units: 10, activation: softmax}\n",
        "up.yaml",
    )
    monkeypatch.setattr(runtime, "gpu_names", lambda: [])
    monkeypatch.setattr(runtime, "cpu_runs", lambda node, compiled: True)
    runtime.refuse_cpu_gaps(compiled)  # (no refusal)
    monkeypatch.setattr(runtime, "cpu_runs", lambda node, compiled: False)
    with pytest.raises(SpecError) as refused:
        runtime.refuse_cpu_gaps(compiled)
    assert refused.value.errors[0].path == "model[0].conv2d_transpose"


@pytest.mark.slow
def test_the_cpu_probe_answers_as_the_kernel_does_on_this_machine() -> None:
    """`cpu_runs` is this machine's answer: the same layer run by Keras directly, on the CPU."""
    import keras
    import tensorflow as tf

    from cnnspec.analysis.passes import compile_text
    from cnnspec.training.runtime import cpu_runs

    compiled = compile_text(
        "cnnspec: 1\nname: up\ninput: {shape: [8, 8, 1]}\nmodel:\n"
        "  - conv2d_transpose: {filters: 2, kernel_size: 3, dilation_rate: 2}\n"
        "  - flatten\n  - dense: {units: 10, activation: softmax}\n",
        "up.yaml",
    )
    try:
        with tf.device("/CPU:0"):
            keras.layers.Conv2DTranspose(2, 3, dilation_rate=2)(tf.zeros((1, 8, 8, 1)))
        runs = True
    except Exception:
        runs = False
    assert cpu_runs(compiled.ir.nodes[0], compiled) is runs
