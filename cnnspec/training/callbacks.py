"""Keras callbacks of a run: the spec's callbacks, the recorder that backs up state every
epoch, and the best-model checkpoint. Imports Keras: only the trainer imports this module.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from cnnspec.analysis.settings_types import CallbackConfig, TrainConfig
from cnnspec.errors import WriteError
from cnnspec.fileio import atomic_path, check_owned, sync_folder, write_atomic
from cnnspec.jsontext import json_text
from cnnspec.training.interrupts import GATE
from cnnspec.training.modelfile import save_model
from cnnspec.training.runlock import RunFolderLost
from cnnspec.training.state import Snapshot, TrainingState, model_file_bytes
from cnnspec.write_faults import write_fault

#: Attributes of Keras' callbacks that make up their state across epochs.
_STATE_ATTRS: dict[str, tuple[str, ...]] = {
    "early_stopping": ("wait", "stopped_epoch", "best", "best_epoch"),
    "reduce_lr_on_plateau": ("wait", "cooldown_counter", "best"),
    "model_checkpoint": ("best", "best_epoch"),
}


#: The snapshot arrays holding the seed generators' states (see :func:`seed_states`).
SEED_STATES = "seed_generator_states"


def seed_generators(owners: Sequence[Any]) -> list[Any]:
    """The Keras ``SeedGenerator``s of ``owners`` (a model, the augmentation: a layer, a
    Sequential or a :class:`~cnnspec.training.joint_augment.JointAugmentation`; ``None`` is
    skipped), in a fixed order: the layers' order, which the same spec builds alike.

    Their states are what a resumed run needs besides the weights: Dropout and the random
    augmentation layers draw from them, and ``save_weights`` does not save them (Keras saves
    a layer's trainable and non-trainable weights only), so without them a resumed run would
    draw the random numbers of epoch 1 again."""
    from cnnspec.training.joint_augment import JointAugmentation

    found: list[Any] = []
    for owner in owners:
        if owner is None:
            continue
        layers = [layer for layer, _ in owner.layers] if isinstance(owner, JointAugmentation) else [owner]
        for top in layers:
            for layer in top._flatten_layers(include_self=True, recursive=True):
                found += [g for g in getattr(layer, "_seed_generators", []) if g not in found]
    return found


def seed_states(owners: Sequence[Any]) -> list[np.ndarray]:
    """The states of :func:`seed_generators` ``(owners)``, as arrays."""
    return [np.array(keras.ops.convert_to_numpy(g.state)) for g in seed_generators(owners)]


def restore_seed_states(owners: Sequence[Any], states: list[np.ndarray]) -> bool:
    """Put ``states`` (from :func:`seed_states`) back; ``False``, changing nothing, when they
    do not fit the owners' generators (another number of them, or another shape)."""
    generators = seed_generators(owners)
    if len(generators) != len(states) or any(
        tuple(g.state.shape) != tuple(np.shape(a)) for g, a in zip(generators, states, strict=True)
    ):
        return False
    for generator, state in zip(generators, states, strict=True):
        generator.state.assign(np.asarray(state).astype(generator.state.dtype))
    return True


def _mode(settings: dict[str, Any], config: TrainConfig) -> str:
    """``min`` or ``max`` for a monitored value: as the spec says, else (``mode: auto``) by the
    table of what cnnspec logs (``TrainConfig.higher_is_better``: ``val_mean_iou``, ``val_f1``,
    ``val_r2``, ``mask_mean_iou`` are better higher), else ``auto``: Keras' own rule (the
    direction of the model's metric of that name; ``loss`` is lower)."""
    return config.monitor_mode(settings)


def keras_auto_mode(model: Any, monitor: str) -> str:
    """Keras' ``mode="auto"`` (``MonitorCallback._set_monitor_op``): ``min`` for the loss, else
    the direction of the model's compiled metric named ``monitor`` (``val_`` removed)."""
    name = monitor.removeprefix("val_")
    found = "min" if name == "loss" else None
    for holder in getattr(model, "metrics", None) or []:
        for metric in getattr(holder, "metrics", [holder]):
            if getattr(metric, "name", None) == name and hasattr(metric, "_direction"):
                found = "max" if metric._direction == "up" else "min"
    if found is None:
        raise ValueError(
            f"model_checkpoint cannot tell whether {monitor!r} should be maximized or minimized; "
            "give it mode: max or mode: min"
        )
    return found


class BestCheckpoint(keras.callbacks.Callback):
    """``model_checkpoint``: saves ``checkpoints/best.keras`` (or ``last.keras``) atomically.

    An epoch's file is written beside it first (``best.epoch-0005.pending.keras``) and put in
    place once that epoch's snapshot is written (:meth:`commit`, called by the
    :class:`Recorder`). A run killed in between resumes from the snapshot before and trains that
    epoch again: had the file been in place, best.keras would hold the weights of an epoch the
    run no longer has, while the snapshot names an earlier best (its metrics.json then said
    "best epoch 1" of a model that was not epoch 1's, when the epoch trained again came out
    worse: a resume that is not exact, or a GPU's). :meth:`settle` sorts the files out on resume.
    """

    def __init__(self, run_dir: Path, monitor: str, mode: str, save_best_only: bool) -> None:
        super().__init__()
        self.folder = Path(run_dir) / "checkpoints"
        self.monitor = monitor
        self.mode = mode
        self.save_best_only = save_best_only
        self.best: float | None = None
        self.best_epoch = -1

    @property
    def path(self) -> Path:
        return self.folder / ("best.keras" if self.save_best_only else "last.keras")

    def pending(self, epochs_done: int) -> Path:
        """Where the file of the epoch that ends ``epochs_done`` epochs waits for its snapshot
        (``best.epoch-0005.pending.keras``: the suffix the temp file of its write has too, so a
        killed write's temp is known as a leftover and removed)."""
        return self.folder / f"{self.path.stem}.epoch-{epochs_done:04d}.pending{self.path.suffix}"

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        if self.mode not in ("min", "max"):  # auto, for a value cnnspec does not configure
            self.mode = keras_auto_mode(self.model, self.monitor)
        value = float(value)
        better = self.best is None or (value < self.best if self.mode == "min" else value > self.best)
        if better and math.isfinite(value):
            self.best, self.best_epoch = value, epoch
        if better or not self.save_best_only:
            try:
                with atomic_path(self.pending(epoch + 1), needed=model_file_bytes(self.model)) as temp:
                    save_model(self.model, temp)
            except WriteError as fault:  # said of the checkpoint the user knows, not its waiting name
                if isinstance(fault, RunFolderLost):
                    raise
                raise WriteError(
                    self.path, fault.reason, errno=fault.errno, needed=fault.needed, free=fault.free
                ) from fault

    def commit(self, epochs_done: int) -> None:
        """Put the file of the epoch that ended ``epochs_done`` epochs in place, once its
        snapshot is written (no file: that epoch saved none)."""
        pending = self.pending(epochs_done)
        if not pending.is_file():
            return
        check_owned(self.path)  # (a rename, not a write of atomic_path's: checked alike)
        try:
            os.replace(pending, self.path)
        except OSError as exc:
            raise write_fault(exc, self.path) or exc from None
        sync_folder(self.folder)

    def settle(self, epochs_done: int) -> None:
        """On resume from the snapshot after ``epochs_done`` epochs (0: none): that epoch's file,
        when it still waits (killed between the snapshot and the rename), is put in place; the
        files of later epochs, which the run trains again, are removed."""
        for path in self.folder.glob(f"{glob.escape(self.path.stem)}.epoch-*.pending{self.path.suffix}"):
            if path == self.pending(epochs_done):
                self.commit(epochs_done)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()


def spec_callbacks(config: TrainConfig, run_dir: Path) -> dict[str, Any]:
    """The Keras callbacks the spec asks for (``csv_logger`` is handled by the recorder)."""
    table: dict[str, Callable[[CallbackConfig], Any]] = {
        "early_stopping": lambda c: keras.callbacks.EarlyStopping(
            monitor=c.settings["monitor"],
            patience=int(c.settings.get("patience", 0)),
            min_delta=float(c.settings.get("min_delta", 0.0)),
            mode=_mode(c.settings, config),
            restore_best_weights=bool(c.settings.get("restore_best_weights", False)),
            start_from_epoch=int(c.settings.get("start_from_epoch", 0)),
        ),
        "reduce_lr_on_plateau": lambda c: keras.callbacks.ReduceLROnPlateau(
            monitor=c.settings["monitor"],
            factor=float(c.settings.get("factor", 0.1)),
            patience=int(c.settings.get("patience", 10)),
            min_lr=float(c.settings.get("min_lr", 0.0)),
            min_delta=float(c.settings.get("min_delta", 1e-4)),
            mode=_mode(c.settings, config),
            cooldown=int(c.settings.get("cooldown", 0)),
        ),
        "model_checkpoint": lambda c: BestCheckpoint(
            run_dir,
            c.settings["monitor"],
            _mode(c.settings, config),
            bool(c.settings.get("save_best_only", True)),
        ),
        "tensorboard": lambda c: keras.callbacks.TensorBoard(
            log_dir=str(Path(run_dir) / "tensorboard"),
            histogram_freq=int(c.settings.get("histogram_freq", 0)),
        ),
        "terminate_on_nan": lambda c: keras.callbacks.TerminateOnNaN(),
    }
    return {c.name: table[c.name](c) for c in config.callbacks if c.name in table}


def history_columns(history: list[dict[str, float]]) -> dict[str, list[float]]:
    """Rows (one per epoch) → Keras-style columns (``{"loss": [...], ...}``)."""
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    return {k: [row.get(k, float("nan")) for row in history] for k in keys}


def history_csv(history: list[dict[str, float]]) -> str:
    columns = history_columns(history)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(columns))
    for row in history:
        writer.writerow([_csv_value(row.get(k)) for k in columns])
    return buffer.getvalue()


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def write_history(run_dir: Path, history: list[dict[str, float]], csv_log: bool = False) -> None:
    """history.json (Keras-style columns) and history.csv, atomically."""
    columns = history_columns(history)
    write_atomic(Path(run_dir) / "history.json", json_text(columns, indent=1))
    text = history_csv(history)
    write_atomic(Path(run_dir) / "history.csv", text)
    if csv_log:
        write_atomic(Path(run_dir) / "training_log.csv", text)


class InterruptCheck(keras.callbacks.Callback):
    """Raises a Ctrl-C/SIGTERM that arrived during ``fit`` at a batch or epoch boundary
    (``cnnspec/training/interrupts.py``). Put it first: a completed epoch is saved by the
    Recorder before the next ``on_epoch_begin`` can raise."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        GATE.check()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        GATE.check()

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        GATE.check()


class Recorder(keras.callbacks.Callback):
    """Keeps the history and writes a state snapshot after every epoch (put it last).

    On ``on_train_begin`` it restores the spec callbacks' counters from the snapshot the run
    resumes from (Keras resets them there); a run resumed at a phase boundary restores them
    before its ``fit`` instead (:meth:`replay_fit_end`), so that the reset of a new ``fit``
    applies as in an uninterrupted run. After an interrupt (``interrupted`` set) the
    partial epoch is neither recorded nor saved. ``random_owners`` (the model, the
    augmentation) have their seed generators' states saved with each snapshot, and ``data``
    (a :func:`~cnnspec.training.pipeline.counted` training dataset, or ``None``) the count of
    its iterators: what a resumed run needs to go on with the same random numbers.
    """

    def __init__(
        self,
        run_dir: Path,
        state: TrainingState,
        spec_cbs: dict[str, Any],
        resumed: Snapshot | None,
        arrays: dict[str, list[np.ndarray]],
        csv_log: bool,
        random_owners: Sequence[Any] = (),
        data: Any = None,
    ) -> None:
        super().__init__()
        self.random_owners = list(random_owners)
        self.data = data
        self.run_dir = Path(run_dir)
        self.state = state
        self.spec_cbs = spec_cbs
        self.history: list[dict[str, float]] = list(resumed.history) if resumed else []
        self.resumed = resumed
        self.arrays = arrays
        self.csv_log = csv_log
        self.interrupted = False
        self.epoch_start = 0.0
        self.epoch_lr: float | None = None
        self.session_epochs = 0
        self.session_seconds = 0.0
        #: The phase being trained (1-based; 0: the run has no ``training.phases``).
        self.phase = 0
        if isinstance(spec_cbs.get("model_checkpoint"), BestCheckpoint):
            spec_cbs["model_checkpoint"].settle(resumed.epoch if resumed else 0)

    def learning_rate(self) -> float | None:
        try:
            return float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        except (AttributeError, TypeError, ValueError):
            return None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.restore_callbacks()

    def restore_callbacks(self) -> None:
        """Put the spec callbacks' counters back as the snapshot recorded them."""
        if self.resumed is None:
            return
        for name, values in self.resumed.callbacks.items():
            callback = self.spec_cbs.get(name)
            if callback is None:
                continue
            for attr in _STATE_ATTRS.get(name, ()):
                if attr in values:
                    setattr(callback, attr, values[attr])
        early = self.spec_cbs.get("early_stopping")
        if early is not None and self.arrays.get("early_stopping_best_weights"):
            early.best_weights = list(self.arrays["early_stopping_best_weights"])

    def replay_fit_end(self, model: Any) -> None:
        """Put the callbacks back as the snapshot recorded them and do what the end of the
        ``fit`` that wrote it did next: Keras' ``EarlyStopping.on_train_end`` sets the model to
        its best weights (``restore_best_weights``). The snapshot is written in
        ``on_epoch_end``, before that, so its weights are the last epoch's; a run resumed after
        a stopped run's last epoch, or at a phase boundary (the next phase starts from the best
        weights in an uninterrupted run), needs this step replayed. Before the callbacks, the
        fit had finalized the optimizer's variables (``use_ema``: the weights became their
        moving average, which the snapshot's optimizer variables hold): replayed too, so
        ``model`` must still have the optimizer of the phase that wrote the snapshot."""
        self.restore_callbacks()
        model.optimizer.finalize_variable_values(model.trainable_weights)  # (Keras' fit does)
        early = self.spec_cbs.get("early_stopping")
        if early is not None and early.restore_best_weights and early.best_weights is not None:
            model.set_weights(early.best_weights)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch_start = time.perf_counter()
        self.epoch_lr = self.learning_rate()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.interrupted:
            return
        seconds = time.perf_counter() - self.epoch_start
        row: dict[str, float] = {"epoch": epoch + 1}
        for key, value in (logs or {}).items():
            if key != "learning_rate":
                row[key] = float(np.asarray(value))
        if self.epoch_lr is not None:
            row["learning_rate"] = self.epoch_lr
        row["seconds"] = round(seconds, 4)
        if self.phase:
            row["phase"] = self.phase
        self.history.append(row)
        self.session_epochs += 1
        self.session_seconds += seconds
        # early stopping (or terminate_on_nan) ends fit after this epoch: the snapshot says so,
        # or a run killed before its final snapshot would train one epoch more when resumed
        self.save(epoch + 1, stopped_early=bool(getattr(self.model, "stop_training", False)))
        checkpoint = self.spec_cbs.get("model_checkpoint")
        if isinstance(checkpoint, BestCheckpoint):  # its file of this epoch, now that the snapshot is
            checkpoint.commit(epoch + 1)
        write_history(self.run_dir, self.history, self.csv_log)

    def callback_state(self) -> tuple[dict[str, dict[str, Any]], dict[str, list[np.ndarray]]]:
        values = {
            name: {attr: _plain(getattr(cb, attr, None)) for attr in _STATE_ATTRS.get(name, ())}
            for name, cb in self.spec_cbs.items()
            if name in _STATE_ATTRS
        }
        arrays: dict[str, list[np.ndarray]] = {}
        early = self.spec_cbs.get("early_stopping")
        if early is not None and getattr(early, "best_weights", None) is not None:
            arrays["early_stopping_best_weights"] = [np.asarray(w) for w in early.best_weights]
        if self.random_owners:
            arrays[SEED_STATES] = seed_states(self.random_owners)
        return values, arrays

    def data_iterators(self) -> int | None:
        """Iterators made of the training data so far, ``None`` when they were not counted (no
        counted dataset, or Keras iterated a wrapper of it: the count never moved)."""
        count = getattr(self.data, "iterators", 0)
        return count if count > 0 else None

    def save(self, epochs_done: int, *, complete: bool = False, stopped_early: bool = False) -> None:
        values, arrays = self.callback_state()
        self.state.save(
            self.model,
            epochs_done,
            self.history,
            values,
            arrays,
            complete=complete,
            stopped_early=stopped_early,
            data_iterators=self.data_iterators(),
        )


def _plain(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value
