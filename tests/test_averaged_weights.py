"""``use_ema``: a run is validated, and keeps its best epoch, on the averaged weights it ends
with (cnnspec/training/averaged.py), and the swaps in and out leave training as it was.

Keras' fit sets the weights to their moving average when it ends. Before, validation scored
the trained weights, so the last epoch's ``val_loss`` was not the final model's, and early
stopping's "best weights" were trained weights of the best epoch, never its average.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cnnspec.api import compile_text

pytestmark = pytest.mark.slow

SPEC = """\
cnnspec: 1
name: averaged
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - flatten
  - dense: {units: 5, activation: softmax}
data: {source: digits, classes: [0, 1, 2, 3, 4], per_class: 20, validation_split: 0.25}
training:
  epochs: 5
  batch_size: 10
  seed: 3
  optimizer: {adam: {learning_rate: 0.02, use_ema: true, ema_momentum: 0.6}}
  callbacks:
    - early_stopping: {monitor: val_loss, patience: 10, restore_best_weights: true}
"""


def recorder() -> tuple[Any, dict[str, list[list[np.ndarray]]]]:
    """A callback (given to ``train`` after cnnspec's own) that keeps the weights each
    validation starts with and those each epoch's training ended with."""
    import keras

    seen: dict[str, list[list[np.ndarray]]] = {"validated": [], "trained": []}

    class Watch(keras.callbacks.Callback):
        def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
            seen["validated"].append([np.array(w) for w in self.model.get_weights()])

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            seen["trained"].append([np.array(w) for w in self.model.get_weights()])

    return Watch(), seen


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_the_run_ends_with_the_weights_its_best_epoch_validated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation scores the average, and the model the run ends with is the one its best
    epoch validated. The same run without the swaps (validation on the trained weights, as
    Keras does) trains the very same weights, epoch by epoch: only its validation differs."""
    import io

    import keras
    from rich.console import Console

    from cnnspec.training import averaged
    from cnnspec.training.progress import Display
    from cnnspec.training.trainer import train

    watch, seen = recorder()
    shown = io.StringIO()
    display = Display("plain", Console(file=shown, width=200))
    compiled = compile_text(SPEC, "spec.yaml")
    result = train(compiled, out=tmp_path / "run", callbacks=[watch], display=display)
    assert "use_ema: validation (val_*), early stopping and checkpoints see the averaged" in shown.getvalue()
    losses = [row["val_loss"] for row in result.history]
    best = int(np.argmin(losses))
    assert result.metrics["best_epoch"] == best + 1
    final = keras.saving.load_model(result.run_dir / "model.keras").get_weights()
    # validation scored the average, not the weights training went on from ...
    assert not any(same(v, t) for v, t in zip(seen["validated"], seen["trained"], strict=True))
    # ... and the model the run ends with is the one its best epoch validated, bit for bit
    assert same(final, seen["validated"][best])

    monkeypatch.setattr(averaged, "around", lambda callbacks: callbacks)
    watch, unswapped = recorder()
    plain = train(compiled, out=tmp_path / "plain", callbacks=[watch])
    assert all(same(a, b) for a, b in zip(seen["trained"], unswapped["trained"], strict=True))
    for key in ("loss", "accuracy"):
        assert [row[key] for row in result.history] == [row[key] for row in plain.history], key
    assert [row["val_loss"] for row in plain.history] != losses
