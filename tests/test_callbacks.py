"""The callbacks of a run (``cnnspec/training/callbacks.py``): history files, the spec's Keras
callbacks, the best-model checkpoint and the recorder that snapshots every epoch. Keras is
imported (the module needs it), but no model is trained: stand-ins play the model."""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from cnnspec.analysis.settings import training_config
from cnnspec.api import compile_text
from cnnspec.training.state import TrainingState
from tests.conftest import TINY_FLAT_HEAD

pytestmark = pytest.mark.slow

HEAD = TINY_FLAT_HEAD


@pytest.fixture(scope="module")
def cb():
    return importlib.import_module("cnnspec.training.callbacks")


class FakeOptimizer:
    learning_rate = 0.01


class FakeModel:
    """Enough of a Keras model for the checkpoint and the recorder."""

    def __init__(self) -> None:
        self.optimizer = FakeOptimizer()
        self.saved: list[str] = []

    def save(self, path: str) -> None:
        Path(path).write_bytes(b"model")
        self.saved.append(Path(path).name)

    def save_weights(self, path: str) -> None:
        Path(path).write_bytes(b"weights")


def test_history_rows_become_columns_in_first_seen_order(cb):
    rows = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25, "val_loss": 0.3}]
    columns = cb.history_columns(rows)
    assert list(columns) == ["epoch", "loss", "val_loss"]
    assert columns["loss"] == [0.5, 0.25] and math.isnan(columns["val_loss"][0])


def test_history_csv_writes_whole_numbers_as_integers_and_gaps_as_empty(cb):
    text = cb.history_csv([{"epoch": 1.0, "loss": 0.1}, {"epoch": 2.0, "acc": 1.0}])
    assert text == "epoch,loss,acc\n1,0.1,\n2,,1\n"


def test_write_history_stores_non_finite_values_as_strings(cb, tmp_path):
    cb.write_history(tmp_path, [{"epoch": 1, "loss": math.inf, "val_loss": math.nan}])
    assert json.loads((tmp_path / "history.json").read_text()) == {
        "epoch": [1],
        "loss": ["inf"],
        "val_loss": ["nan"],
    }
    assert (tmp_path / "history.csv").is_file() and not (tmp_path / "training_log.csv").exists()
    cb.write_history(tmp_path, [{"epoch": 1, "loss": 0.5}], csv_log=True)
    assert (tmp_path / "training_log.csv").read_text() == "epoch,loss\n1,0.5\n"


def _callbacks(cb, tmp_path, callbacks: str) -> dict:
    config = training_config(compile_text(HEAD + f"training:\n  callbacks: {callbacks}\n", "t.yaml"))
    return cb.spec_callbacks(config, tmp_path)


def test_spec_callbacks_get_their_settings_and_an_inferred_mode(cb, tmp_path):
    made = _callbacks(
        cb,
        tmp_path,
        "[{early_stopping: {monitor: val_accuracy, patience: 3}}, "
        "{reduce_lr_on_plateau: {factor: 0.5}}, model_checkpoint, csv_logger, terminate_on_nan]",
    )
    assert set(made) == {"early_stopping", "reduce_lr_on_plateau", "model_checkpoint", "terminate_on_nan"}
    early = made["early_stopping"]
    assert (early.monitor, early.patience) == ("val_accuracy", 3)
    assert early.mode == "max"  # larger is better for an accuracy
    plateau = made["reduce_lr_on_plateau"]
    assert plateau.factor == 0.5 and plateau.mode == "min"  # the default monitor: val_loss
    checkpoint = made["model_checkpoint"]
    assert isinstance(checkpoint, cb.BestCheckpoint) and checkpoint.mode == "min"
    assert checkpoint.path == tmp_path / "checkpoints" / "best.keras"


def test_best_checkpoint_saves_only_improvements(cb, tmp_path):
    checkpoint = cb.BestCheckpoint(tmp_path, "val_loss", "min", save_best_only=True)
    model = FakeModel()
    checkpoint.set_model(model)
    for epoch, loss in enumerate([0.5, 0.7, 0.3, 0.4]):
        checkpoint.on_epoch_end(epoch, {"val_loss": loss})
        checkpoint.commit(epoch + 1)  # (the recorder's, once the epoch's snapshot is written)
    checkpoint.on_epoch_end(4, {"loss": 0.1})  # the monitored value is missing: nothing happens
    checkpoint.commit(5)
    assert len(model.saved) == 2 and (checkpoint.best, checkpoint.best_epoch) == (0.3, 2)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["best.keras"]


def test_best_checkpoint_in_max_mode_and_saving_every_epoch(cb, tmp_path):
    checkpoint = cb.BestCheckpoint(tmp_path, "val_accuracy", "max", save_best_only=False)
    model = FakeModel()
    checkpoint.set_model(model)
    for epoch, accuracy in enumerate([0.5, 0.9, 0.7]):
        checkpoint.on_epoch_end(epoch, {"val_accuracy": accuracy})
        checkpoint.commit(epoch + 1)
    assert len(model.saved) == 3 and checkpoint.best_epoch == 1
    assert checkpoint.path.name == "last.keras" and checkpoint.path.is_file()


def _recorder(cb, tmp_path, spec_cbs: dict, resumed=None, arrays=None, csv_log: bool = False):
    recorder = cb.Recorder(tmp_path, TrainingState(tmp_path), spec_cbs, resumed, arrays or {}, csv_log)
    recorder.set_model(FakeModel())
    return recorder


def test_recorder_records_each_epoch_and_snapshots_it(cb, tmp_path):
    early = _callbacks(cb, tmp_path, "[{early_stopping: {monitor: loss}}]")["early_stopping"]
    recorder = _recorder(cb, tmp_path, {"early_stopping": early})
    early.wait, early.best = 2, 0.25
    early.best_weights = [np.ones(2)]
    recorder.on_epoch_begin(0)
    recorder.on_epoch_end(0, {"loss": np.float32(0.5), "learning_rate": 9.0})
    (row,) = recorder.history
    assert row["epoch"] == 1 and row["loss"] == 0.5 and row["seconds"] >= 0
    assert math.isclose(row["learning_rate"], 0.01)  # the optimizer's, not the logged value
    assert json.loads((tmp_path / "history.json").read_text())["loss"] == [0.5]
    snapshot, arrays = TrainingState(tmp_path).restore(_NoLoad(), [])
    assert snapshot.epoch == 1 and snapshot.callbacks["early_stopping"]["wait"] == 2
    assert snapshot.callbacks["early_stopping"]["best"] == 0.25
    assert arrays["early_stopping_best_weights"][0].tolist() == [1.0, 1.0]


def test_an_interrupted_epoch_is_neither_recorded_nor_saved(cb, tmp_path):
    recorder = _recorder(cb, tmp_path, {})
    recorder.interrupted = True
    recorder.on_epoch_begin(0)
    recorder.on_epoch_end(0, {"loss": 0.5})
    assert recorder.history == [] and not (tmp_path / "state").exists()


def test_recorder_puts_the_callbacks_counters_back_on_resume(cb, tmp_path):
    from cnnspec.training.state import Snapshot

    made = _callbacks(cb, tmp_path, "[{early_stopping: {monitor: loss}}, reduce_lr_on_plateau]")
    resumed = Snapshot(
        epoch=3,
        manifest=tmp_path / "m.json",
        history=[{"epoch": 1}, {"epoch": 2}, {"epoch": 3}],
        callbacks={
            "early_stopping": {"wait": 2, "best": 0.1, "stopped_epoch": 0, "best_epoch": 1},
            "reduce_lr_on_plateau": {"cooldown_counter": 1, "wait": 4},
            "tensorboard": {"wait": 9},  # not in this run: ignored
        },
    )
    arrays = {"early_stopping_best_weights": [np.zeros(3)]}
    recorder = _recorder(cb, tmp_path, made, resumed, arrays)
    recorder.on_train_begin()
    early, plateau = made["early_stopping"], made["reduce_lr_on_plateau"]
    assert (early.wait, early.best, early.best_epoch) == (2, 0.1, 1)
    assert (plateau.cooldown_counter, plateau.wait) == (1, 4)
    assert early.best_weights[0].tolist() == [0.0, 0.0, 0.0]
    assert len(recorder.history) == 3  # the next epoch appends to the resumed history


class _NoLoad:
    optimizer = None

    def load_weights(self, path: str) -> None:
        pass


class WeightsModel(FakeModel):
    """A stand-in whose weights are a counter, so a restore shows which epoch's they are."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0

    def get_weights(self) -> list[np.ndarray]:
        return [np.array([self.epoch])]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.epoch = int(weights[0][0])


def _early_stopping_run(cb, tmp_path, settings: str, losses: list[float]) -> tuple[WeightsModel, dict]:
    """What fit does with the spec's early_stopping: one call per epoch, then the end."""
    made = _callbacks(cb, tmp_path, f"[{{early_stopping: {{monitor: loss, {settings}}}}}]")
    model = WeightsModel()
    early = made["early_stopping"]
    early.set_model(model)
    early.on_train_begin()
    for epoch, loss in enumerate(losses):
        model.epoch = epoch + 1
        early.on_epoch_end(epoch, {"loss": loss})
        if getattr(model, "stop_training", False):
            break
    early.on_train_end()
    return model, made


def test_best_epoch_is_reported_only_when_early_stopping_restored_it(cb, tmp_path):
    from cnnspec.training.finish import weights_source

    # start_from_epoch ≥ the epochs: Keras never keeps weights, so it restores nothing
    model, made = _early_stopping_run(
        cb, tmp_path, "restore_best_weights: true, start_from_epoch: 5", [0.5, 0.4, 0.9]
    )
    assert model.epoch == 3 and made["early_stopping"].best_epoch == 0  # Keras' counter says 1
    assert weights_source(made, 3) == (None, "last epoch 3")
    model, made = _early_stopping_run(cb, tmp_path, "restore_best_weights: true", [0.5, 0.4, 0.9])
    assert model.epoch == 2  # the best epoch's weights were put back
    assert weights_source(made, 3) == (2, "best epoch 2 (restored by early_stopping)")
    model, made = _early_stopping_run(cb, tmp_path, "patience: 0", [0.5, 0.4, 0.9])
    assert model.epoch == 3 and weights_source(made, 3) == (None, "last epoch 3")


def test_best_epoch_of_a_best_checkpoint_that_was_saved(cb, tmp_path):
    from cnnspec.training.finish import weights_source

    checkpoint = cb.BestCheckpoint(tmp_path, "val_loss", "min", save_best_only=True)
    assert weights_source({"model_checkpoint": checkpoint}, 2) == (None, "last epoch 2")
    checkpoint.set_model(FakeModel())
    for epoch, loss in enumerate([0.5, 0.3, 0.4]):
        checkpoint.on_epoch_end(epoch, {"val_loss": loss})
        checkpoint.commit(epoch + 1)
    found = weights_source({"model_checkpoint": checkpoint}, 3)
    assert found == (2, "best epoch 2 (restored from model_checkpoint's best.keras)")


def test_a_run_whose_early_stopping_never_started_reports_its_last_epoch(tmp_path):
    from tests.test_report_support import train_without_page

    spec = tmp_path / "es.yaml"
    spec.write_text(
        "cnnspec: 1\nname: es\ninput: {shape: [8, 8, 1]}\n"
        "model: [flatten, {dense: {units: 10, activation: softmax}}]\n"
        "data: {source: digits, limit: 100}\n"
        "training:\n  epochs: 2\n  batch_size: 32\n  seed: 7\n  callbacks:\n"
        "    - early_stopping: {monitor: val_loss, restore_best_weights: true, start_from_epoch: 5}\n"
    )
    out = tmp_path / "run"
    train_without_page(spec, out)  # (the trainer `cnnspec train` calls: metrics.json is its)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["best_epoch"] is None and metrics["weights_from"] == "last epoch 2"


def test_the_r2_of_a_diverged_regression_is_nan_not_zero(cb):
    """Keras' R2Score says 0.0 once the squared error overflows: a checkpoint monitoring val_r2
    kept that epoch over every honest negative R² (the history showed 0), whatever the loss."""
    from cnnspec.analysis.settings import training_config
    from cnnspec.api import compile_text
    from cnnspec.training.tasks import metric

    text = (
        "cnnspec: 1\nname: r\ninput: {shape: [8, 8, 3]}\nmodel: [flatten, dense: 1]\n"
        "data: {source: {shapes: {images: 20, image_size: [8, 8], target: count}}}\n"
        "training: {task: regression, metrics: [r2]}\n"
    )
    config = training_config(compile_text(text))
    (out,) = config.tasks
    r2 = metric(out, out.metrics[0])
    truth = np.array([[0.0], [1.0], [2.0], [3.0]], "float32")
    r2.update_state(truth, np.full((4, 1), 3e19, "float32"))  # a head that blew up
    assert math.isnan(float(r2.result()))
    r2.reset_state()
    r2.update_state(truth, truth + 0.5)
    assert float(r2.result()) == pytest.approx(1 - 1.0 / 5.0)  # an honest one, as Keras computes it
    checkpoint = cb.BestCheckpoint(Path("/nonexistent"), "val_r2", "max", save_best_only=True)
    checkpoint.best, checkpoint.best_epoch = -3.1, 1
    checkpoint.on_epoch_end(3, {"val_r2": math.nan})  # NaN is no improvement: epoch 1 stays best
    assert checkpoint.best_epoch == 1


def test_a_figure_past_a_million_is_shown_in_significant_digits():
    from cnnspec.training.progress import figure

    assert [figure(v) for v in (0.12345, -3.0957, 8.717e20, math.inf)] == [
        "0.1235",
        "-3.0957",
        "8.717e+20",
        "inf",
    ]


def test_the_generated_scripts_r2_of_a_diverged_regression_is_nan_too():
    """The training script cnnspec codegen writes wraps its R2Score the same way."""
    import ast

    import keras

    from cnnspec.api import compile_spec
    from cnnspec.backends.python_emitter import generate_code
    from tests.conftest import ROOT

    code = generate_code(compile_spec(ROOT / "specs" / "shapes_count.yaml"), script=True).text
    assert 'nan_once_diverged(keras.metrics.R2Score(name="r2"))' in code
    (wrapper,) = [
        node
        for node in ast.parse(code).body
        if isinstance(node, ast.FunctionDef) and node.name == "nan_once_diverged"
    ]
    namespace: dict = {"keras": keras}
    exec(compile(ast.Module([wrapper], []), "train.py", "exec"), namespace)  # (the generated function)
    r2 = namespace["nan_once_diverged"](keras.metrics.R2Score(name="r2"))
    truth = np.array([[0.0], [1.0], [2.0], [3.0]], "float32")
    r2.update_state(truth, np.full((4, 1), 3e19, "float32"))
    assert math.isnan(float(r2.result()))
    r2.reset_state()
    r2.update_state(truth, truth + 0.5)
    assert float(r2.result()) == pytest.approx(0.8)


def test_a_best_checkpoint_waits_for_its_epochs_snapshot_and_a_resume_settles_it(cb, tmp_path):
    """best.keras is replaced only once the epoch's snapshot is written (the recorder commits
    it): killed before, the resume trains that epoch again and drops its file; killed after the
    snapshot but before the rename, the resume puts it in place."""
    checkpoint = cb.BestCheckpoint(tmp_path, "val_loss", "min", save_best_only=True)
    checkpoint.set_model(FakeModel())
    checkpoint.on_epoch_end(0, {"val_loss": 0.5})
    assert not checkpoint.path.exists() and checkpoint.pending(1).is_file()
    checkpoint.commit(1)
    assert checkpoint.path.read_bytes() == b"model" and not checkpoint.pending(1).exists()
    checkpoint.on_epoch_end(1, {"val_loss": 0.4})  # epoch 2: killed before its snapshot
    checkpoint.pending(2).write_bytes(b"epoch 2")
    checkpoint.pending(3).write_bytes(b"epoch 3")  # (one more: a resume from epoch 2's snapshot)
    checkpoint.settle(2)  # resumed after epoch 2: its snapshot was written, the rename was not
    assert checkpoint.path.read_bytes() == b"epoch 2"
    assert sorted(p.name for p in checkpoint.folder.iterdir()) == ["best.keras"]
    checkpoint.pending(2).write_bytes(b"epoch 2 again")
    checkpoint.settle(1)  # resumed after epoch 1: epoch 2 is trained again, its file goes
    assert checkpoint.path.read_bytes() == b"epoch 2"
    assert sorted(p.name for p in checkpoint.folder.iterdir()) == ["best.keras"]
    # a write of a waiting file killed midway leaves a temp that the cleanup of leftovers knows
    from cnnspec.fileio import is_atomic_leftover

    killed = checkpoint.folder / f".{checkpoint.pending(4).name}.ab12cd34.tmp"
    killed.mkdir()
    (killed / "part.keras").write_bytes(b"half")
    assert is_atomic_leftover(killed)
