"""`codegen --script` trains exactly as `cnnspec train` does, for the same seed: on image files
(JPEG pixels, the order of the batches in every epoch), with a best-only checkpoint (the best
epoch's weights are evaluated and saved) and under mixed precision (float32 output layers).

Each test runs the generated script in a fresh process and `cnnspec train` in this one, on a
tiny folder of images written to tmp_path (8×8 pixels, 36 files, 2 epochs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cnnspec.api import compile_spec, compile_text
from cnnspec.backends.python_emitter import generate_code
from tests.conftest import run_python, run_script

# (Keras warns when a stream's first epoch ends, as its length is unknown until then)
pytestmark = pytest.mark.filterwarnings("ignore:Your input ran out of data")

SPEC = """\
cnnspec: 1
name: parity
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - dense: {units: 3, activation: softmax}
data: {source: {directory: images}, validation_split: 0.25, test_split: 0.25}
training:
  epochs: 2
  batch_size: 8
  optimizer: {adam: {learning_rate: 0.01}}
  seed: 9
  deterministic: true
"""


def write_images(folder: Path) -> None:
    """Three classes of 12 noisy colour images each (8×8, a few 10×12), one JPEG per class
    (decoded to gray, as the model takes one channel)."""
    from PIL import Image

    rng = np.random.default_rng(1)
    for label, name in enumerate(("cat", "dog", "owl")):
        (folder / name).mkdir(parents=True)
        for index in range(12):
            size = (10, 12) if index % 4 == 0 else (8, 8)
            pixels = np.clip(rng.normal(60 + 60 * label, 40, (*size, 3)), 0, 255).astype("uint8")
            suffix = ".jpg" if index == 5 else ".png"
            Image.fromarray(pixels).save(folder / name / f"{name}{index:02d}{suffix}")


def run_both(tmp_path: Path, text: str) -> tuple[dict[str, Any], Any]:
    """The generated script's metrics.json and `cnnspec train`'s result for the spec `text`."""
    from cnnspec.training.trainer import train
    from tests.test_codegen import ruff_check

    write_images(tmp_path / "images")
    spec = tmp_path / "parity.yaml"
    spec.write_text(text, encoding="utf-8")
    compiled = compile_spec(spec)
    script = tmp_path / "train.py"
    code = generate_code(compiled, script=True, output=script, source_name="parity.yaml").text
    assert ruff_check(code, tmp_path, "check.py") == ""
    script.write_text(code, encoding="utf-8")
    done = run_script(script, "--out", str(tmp_path / "script"))
    # every pass over a stream ends by running out of data (its length is unknown): Keras' warning
    # that it "ran out of data; interrupting training" is silenced in the script, as in train
    assert "ran out of data" not in done.stdout + done.stderr, done.stderr[-2000:]
    theirs = json.loads((tmp_path / "script" / "metrics.json").read_text(encoding="utf-8"))
    return theirs, train(compiled, out=tmp_path / "cnnspec")


@pytest.mark.slow
def test_script_reads_and_orders_image_files_as_cnnspec_train_does(tmp_path):
    """The same pixels (a JPEG decoded with the accurate IDCT, as Pillow does) and the same
    batches in every epoch (file indices reshuffled inside a pipeline of the stream's shape):
    the per-epoch history is cnnspec train's, to 1e-6, and so are the test metrics. The
    learning rate warms up over 4 of the 6 steps (the script's WarmUp, train's LinearWarmup),
    then decays."""
    warmed = (
        "{exponential_decay: {initial_learning_rate: 0.05, decay_steps: 2, decay_rate: 0.5, warmup_steps: 4}}"
    )
    text = SPEC.replace("{learning_rate: 0.01}", f"{{learning_rate: {warmed}}}")
    assert warmed in text
    theirs, ours = run_both(tmp_path, text)
    assert theirs["epochs"] == len(ours.history) == 2
    for key, values in theirs["history"].items():
        expected = [row[key] for row in ours.history]
        assert values == pytest.approx(expected, abs=1e-6), key
    assert theirs["test_loss"] == pytest.approx(ours.metrics["test_loss"], abs=1e-6)
    assert theirs["test_accuracy"] == pytest.approx(ours.metrics["test_accuracy"], abs=1e-6)
    # Both model.keras load, compiled, in plain Keras (a process that never imports cnnspec nor
    # the script: neither warm-up class is registered there), with the rate the run reached: the
    # same in both, decayed below the 0.05 the warm-up led to
    loader = tmp_path / "load.py"
    loader.write_text(LOAD_COMPILED, encoding="utf-8")
    loaded = run_python(
        loader, str(tmp_path / "cnnspec" / "model.keras"), str(tmp_path / "script" / "model.keras")
    )
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    (ours_rate, ours_steps), (script_rate, script_steps) = (
        [float(word) for word in line.split()] for line in loaded.stdout.splitlines()
    )
    assert ours_rate == pytest.approx(script_rate, rel=1e-6) and 0 < ours_rate < 0.05
    # and the optimizer's state with it (Keras warns and skips it when the variables differ)
    assert ours_steps == script_steps > 0 and "Skipping variable loading" not in loaded.stderr


#: Load each model file given with keras.saving.load_model (compiled), print its learning rate
#: and its optimizer's step count.
LOAD_COMPILED = """\
import sys

import keras

for path in sys.argv[1:]:
    model = keras.saving.load_model(path)
    print(float(model.optimizer.learning_rate), int(model.optimizer.iterations))
"""


@pytest.mark.slow
def test_script_keeps_the_best_checkpoint_and_float32_outputs_as_cnnspec_train_does(tmp_path):
    """model_checkpoint (save_best_only) makes the best epoch's weights the result, evaluated
    and saved; runtime.mixed_precision computes the output layer in float32. The checkpoint
    monitors the training loss with mode max, so the best epoch is the first, not the last. The
    learning rate warms up over 2 steps: both checkpoints load, compiled, in plain Keras. The
    optimizer averages the weights (use_ema, under the loss scaling of mixed precision): the
    checkpoint and the validation have the average, and training goes on from the weights it
    trained, in the script as in cnnspec train."""
    import keras

    schedule = "initial_learning_rate: 0.01, decay_steps: 2, decay_rate: 0.5, warmup_steps: 2"
    warmed = f"{{exponential_decay: {{{schedule}}}}}"
    averaged = "use_ema: true, ema_momentum: 0.5"
    text = SPEC.replace("{adam: {learning_rate: 0.01}}", f"{{adam: {{learning_rate: {warmed}, {averaged}}}}}")
    text += "  callbacks:\n    - model_checkpoint: {monitor: loss, mode: max}\n"
    assert warmed in text
    theirs, ours = run_both(tmp_path, text + "runtime: {mixed_precision: true}\n")
    assert ours.metrics["best_epoch"] == 1 and theirs["epochs"] == 2
    for key, values in theirs["history"].items():  # val_*: the average's
        assert values == pytest.approx([row[key] for row in ours.history], abs=1e-6), key
    assert theirs["test_loss"] == pytest.approx(ours.metrics["test_loss"], abs=1e-6)
    assert theirs["test_accuracy"] == pytest.approx(ours.metrics["test_accuracy"], abs=1e-6)
    script_model = keras.saving.load_model(tmp_path / "script" / "model.keras")
    train_model = keras.saving.load_model(tmp_path / "cnnspec" / "model.keras")
    for name in ("conv2d_1", "dense_1"):
        mine, reference = script_model.get_layer(name), train_model.get_layer(name)
        assert mine.dtype_policy.name == reference.dtype_policy.name, name
        assert mine.get_config() == reference.get_config(), name
    assert train_model.get_layer("dense_1").dtype_policy.name == "float32"
    assert train_model.get_layer("conv2d_1").dtype_policy.name.startswith("mixed_")
    for mine, reference in zip(script_model.get_weights(), train_model.get_weights(), strict=True):
        np.testing.assert_allclose(mine, reference, atol=1e-6)
    # The checkpoints too (the script's is written by Keras' ModelCheckpoint) load, compiled, in a
    # process without cnnspec or the script, with the same rate and step count
    loader = tmp_path / "load.py"
    loader.write_text(LOAD_COMPILED, encoding="utf-8")
    best = [str(tmp_path / side / "checkpoints" / "best.keras") for side in ("cnnspec", "script")]
    loaded = run_python(loader, *best)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    (ours_rate, ours_steps), (script_rate, script_steps) = (
        [float(word) for word in line.split()] for line in loaded.stdout.splitlines()
    )
    assert ours_rate == pytest.approx(script_rate, rel=1e-6) and ours_steps == script_steps > 0
    assert "Skipping variable loading" not in loaded.stderr


MIXED = """\
cnnspec: 1
name: mixed
input: {shape: [8, 8, 1]}
blocks:
  head:
    params: {units: int}
    layers:
      - dense: {units: "${units}", activation: relu}
      - dense: {units: "${units}"}
model:
  - conv2d: {filters: 4, kernel_size: 3}
  - global_avg_pool2d
  - head: 4
  - repeat:
      times: 2
      as: i
      layers:
        - head: "${3 + i}"
runtime: {mixed_precision: true}
"""


def test_mixed_precision_writes_only_the_output_layer_in_float32():
    """As cnnspec's builder under a mixed policy: dtype="float32" on the output layer alone
    (in the model module and the script); a block whose calls and a repeat whose iterations
    make the output and other layers are written out, so that only the output gets it."""
    generated = generate_code(compile_text(MIXED))
    lines = [line.strip() for line in generated.text.splitlines() if 'dtype="float32"' in line]
    assert lines == ['x = layers.Dense(units=4, dtype="float32", name="head_3_dense_2")(x)']
    assert any("inlined block `head`: `head_3_dense_2` is a model output" in n for n in generated.notes)
    assert any(n.startswith("unrolled the repeat at model[3].repeat") for n in generated.notes)
    plain = generate_code(compile_text(MIXED.replace("mixed_precision: true", "mixed_precision: false")))
    assert "dtype=" not in plain.text and "def head(" in plain.text and "for i in range(2):" in plain.text


def test_mixed_precision_in_a_block_called_once_writes_float32_in_its_function():
    """A block called once that makes the output stays a function, its last layer in float32."""
    text = MIXED.replace(
        '  - repeat:\n      times: 2\n      as: i\n      layers:\n        - head: "${3 + i}"\n', ""
    )
    generated = generate_code(compile_text(text))
    assert 'x = layers.Dense(units=units, dtype="float32", name=f"{name}_dense_2")(x)' in generated.text
    assert generated.text.count("dtype=") == 1 and not generated.notes
