"""Freezing and fine-tuning phases in training (TensorFlow): frozen layers keep their weights,
a frozen batch norm keeps its moving statistics, phases recompile and continue the history,
and a run killed in any phase resumes."""

from __future__ import annotations

import json
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cnnspec.api import compile_text
from cnnspec.backends.keras_builder import build_model
from tests.test_train_resume import start, wait_for

pytestmark = pytest.mark.slow

SPEC = """\
cnnspec: 1
name: phased
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same}
    id: conv
  - batch_norm
  - activation: relu
  - global_avg_pool2d
  - dense: {units: 10, activation: softmax}
    id: head
data: {source: digits, limit: 128}
training:
  batch_size: 32
  seed: 3
  phases:
    - {epochs: FIRST, freeze: [conv, batch_norm_1], learning_rate: 0.01}
    - {epochs: SECOND, unfreeze: ['*'], learning_rate: 0.001}
"""


def spec_text(first: int = 2, second: int = 2) -> str:
    return SPEC.replace("FIRST", str(first)).replace("SECOND", str(second))


def test_trainable_false_builds_frozen_layers_and_frozen_batch_norm_keeps_its_statistics():
    import keras

    text = spec_text().replace("  - batch_norm\n", "  - batch_norm:\n    trainable: false\n")
    compiled = compile_text(text, "spec.yaml")
    model = build_model(compiled.ir)
    assert [layer.name for layer in model.layers if not layer.trainable] == ["batch_norm_1"]
    norm = model.get_layer("batch_norm_1")
    before = [np.array(w) for w in norm.non_trainable_weights]  # moving mean and variance
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (32, 8, 8, 1)).astype("float32")  # far from the initial stats
    model.fit(x, rng.integers(0, 10, 32), epochs=2, batch_size=8, verbose=0)
    after = [np.array(w) for w in norm.non_trainable_weights]
    assert all(np.array_equal(b, a) for b, a in zip(before, after, strict=True))

    # the same layer trainable: its statistics move (the check above is not vacuous)
    model = build_model(compile_text(spec_text(), "spec.yaml").ir)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, rng.integers(0, 10, 32), epochs=1, batch_size=8, verbose=0)
    moved = model.get_layer("batch_norm_1").non_trainable_weights
    assert not np.allclose(np.array(moved[0]), before[0])
    assert isinstance(model, keras.Model)


@dataclass
class PhasedRun:
    """The 2 + 2 epoch phased run: its result, the kernels watched after every epoch, its folder,
    and the copy of its folder made once epoch 2 (phase 1's last) was saved."""

    result: Any
    watched: list[tuple[int, np.ndarray, np.ndarray]]
    run: Path
    boundary: Path


@pytest.fixture(scope="module")
def phased_run(tmp_path_factory: pytest.TempPathFactory) -> PhasedRun:
    """Trained once for the two tests that read it (a training is most of their time): the
    freeze test reads the run (and writes its report.html into it), the boundary test resumes
    the copy (what a SIGKILL right after epoch 2's snapshot leaves)."""
    import keras

    from cnnspec.training.trainer import train
    from tests.test_resume_exact import copied_after

    folder = tmp_path_factory.mktemp("phased")
    watched: list[tuple[int, np.ndarray, np.ndarray]] = []

    class Watch(keras.callbacks.Callback):
        """The frozen conv's kernel and the head's kernel after every epoch."""

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            conv, head = self.model.get_layer("conv"), self.model.get_layer("head")
            watched.append((epoch, np.array(conv.kernel), np.array(head.kernel)))

    compiled = compile_text(spec_text(), str(folder / "spec.yaml"))
    run, boundary = folder / "run", folder / "boundary"
    result = train(compiled, out=run, callbacks=[Watch(), copied_after(2, run, boundary)])
    return PhasedRun(result, watched, run, boundary)


@pytest.mark.xdist_group("phases_run")  # one worker: phased_run trains once
def test_phases_freeze_recompile_and_continue_the_history(phased_run: PhasedRun) -> None:
    history = json.loads((phased_run.run / "history.json").read_text())
    assert history["epoch"] == [1, 2, 3, 4] and history["phase"] == [1, 1, 2, 2]
    assert np.allclose(history["learning_rate"], [0.01, 0.01, 0.001, 0.001])
    kernels = [conv for _, conv, _ in phased_run.watched]
    heads = [head for _, _, head in phased_run.watched]
    assert np.array_equal(kernels[0], kernels[1])  # frozen in phase 1
    assert not np.array_equal(kernels[1], kernels[2])  # trained in phase 2
    assert not np.array_equal(heads[0], heads[1])  # the head trains throughout
    lock = json.loads((phased_run.run / "lock.json").read_text())
    assert [(p["first_epoch"], p["last_epoch"], p["frozen"]) for p in lock["phases"]] == [
        (1, 2, ["conv", "batch_norm_1"]),
        (3, 4, []),
    ]
    assert phased_run.result.metrics["epochs_run"] == 4
    from cnnspec.reporting.html import write_report

    page = write_report(phased_run.run).read_text(encoding="utf-8")
    assert "Dashed lines mark where a phase begins" in page
    assert "phase 1: epochs 1–2, 2 layer(s) frozen" in page and "phase 2: epochs 3–4, 0 layer(s)" in page


def test_sigkill_mid_phase_then_resume(tmp_path, runner):
    from cnnspec.cli.app import app

    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text(2, 3))
    out = tmp_path / "run"
    process = start(spec, out)
    wait_for(out / "state" / "epoch-0003.json", process)  # in phase 2: its optimizer is saved
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    # (without its page: nothing here reads it, and drawing it was a second and a half)
    result = runner.invoke(app, ["train", str(spec), "--no-report", "--resume", str(out)])
    assert result.exit_code == 0, result.output
    resumed = int(result.output.split("after epoch ")[1].split()[0])
    assert resumed >= 3
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == [1, 2, 3, 4, 5] and history["phase"] == [1, 1, 2, 2, 2]
    assert np.allclose(history["learning_rate"], [0.01, 0.01, 0.001, 0.001, 0.001])
    assert json.loads((out / "metrics.json").read_text())["resumed_from_epoch"] == resumed
    assert Path(out / "model.keras").is_file() and not (out / "state").exists()


@pytest.mark.xdist_group("phases_run")
def test_interrupted_at_a_phase_boundary_resumes_into_the_next_phase(phased_run: PhasedRun) -> None:
    """The snapshot after a phase's last epoch holds that phase's optimizer: the resumed run
    loads it as that phase, then recompiles for the next one (the run folder as a kill right
    after epoch 2's snapshot leaves it: phased_run's copy), and ends as the uninterrupted run."""
    from cnnspec.training.trainer import train
    from tests.test_resume_exact import untimed

    compiled = compile_text(spec_text(2, 2), str(phased_run.boundary.parent / "spec.yaml"))
    result = train(compiled, resume=phased_run.boundary)
    assert result.resumed_from == 2
    assert [row["phase"] for row in result.history] == [1, 1, 2, 2]
    assert np.allclose([row["learning_rate"] for row in result.history], [0.01, 0.01, 0.001, 0.001])
    whole = phased_run.result
    # phase 2 trained from the same weights and optimizer in both
    assert untimed(result.history) == untimed(whole.history)
    assert result.metrics["weights_sha256"] == whole.metrics["weights_sha256"]


def test_generated_script_trains_the_phases_on_the_same_data(tmp_path):
    """`codegen --script` of a phased spec with data subsets: the script freezes, recompiles
    and continues its epochs as `cnnspec train` does, on the same classes and images. The seed,
    a phase's epochs and the learning rates read from vars: the script reads their constants
    (SEED and PHASES after them) and trains the same."""
    from cnnspec.api import compile_spec
    from cnnspec.backends.python_emitter import generate_code
    from cnnspec.training.trainer import train
    from tests.conftest import FIXTURES, run_script

    spec = tmp_path / "frozen.yaml"
    spec.write_text(
        (FIXTURES / "codegen" / "frozen.yaml")
        .read_text(encoding="utf-8")
        .replace("name: frozen\n", "name: frozen\nvars: {lr: 0.05, e: 2, s: 11}\n")
        .replace("seed: 11", 'seed: "${s}"')
        .replace("learning_rate: 0.05, momentum", 'learning_rate: "${lr}", momentum')
        .replace("{epochs: 2, freeze", '{epochs: "${e}", freeze')
        .replace("learning_rate: 0.01}", 'learning_rate: "${lr / 5}"}'),
        encoding="utf-8",
    )
    compiled = compile_spec(spec)
    script = tmp_path / "train.py"
    text = generate_code(compiled, script=True, output=script).text
    assert "SEED = S  # training.seed" in text and '"epochs": E,' in text
    assert "decided when this code was generated" not in text
    script.write_text(text, encoding="utf-8")
    with ThreadPoolExecutor(1) as pool:  # the script's fresh Python runs meanwhile, in its own folder
        running = pool.submit(run_script, script, "--out", str(tmp_path / "script"))
        ours = train(compiled, out=tmp_path / "cnnspec")
        run = running.result()
    theirs = json.loads((tmp_path / "script" / "metrics.json").read_text())
    assert theirs["class_names"] == ours.metrics["class_names"] == ["5", "6", "7", "8", "9"]
    rates = [row["learning_rate"] for row in ours.history]
    assert np.allclose(rates, [0.05, 0.05, 0.01, 5e-4])  # each phase's optimizer
    boundaries = [line for line in run.stdout.splitlines() if line.startswith("phase ")]
    assert boundaries == ["phase 1/3: epochs 1-2", "phase 2/3: epochs 3-3", "phase 3/3: epochs 4-4"]
    # the phase of each epoch, as cnnspec train's history has it (history.png draws its starts)
    assert theirs["history"]["phase"] == [row["phase"] for row in ours.history] == [1, 1, 2, 3]
    assert theirs["epochs"] == ours.metrics["epochs_run"] == 4
    support = [theirs["classification_report"][name]["support"] for name in theirs["class_names"]]
    assert support == [ours.metrics["per_class"][name]["support"] for name in theirs["class_names"]]
