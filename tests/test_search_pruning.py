"""A search trial's pruning callback never prunes at the training's last epoch.

Before, a pruner that judged the last epoch's value poor (hyperband, with ``training.epochs: 1``)
marked a trial that had trained all its epochs, and been tested, PRUNED: its result was thrown
away though nothing was saved by stopping it. Earlier epochs are pruned as before."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

optuna = pytest.importorskip("optuna")
pytestmark = pytest.mark.slow  # (the callback is a Keras callback)


class _Always(optuna.pruners.BasePruner):
    """Prunes every trial at every step."""

    def prune(self, study: object, trial: object) -> bool:
        return True


def _callback(last_epoch: int | None) -> object:
    from cnnspec.search.worker import pruning_callback

    study = optuna.create_study(direction="maximize", pruner=_Always())
    callback = pruning_callback(study.ask(), "val_accuracy")
    callback.last_epoch = last_epoch
    callback.set_model(SimpleNamespace(stop_training=False))
    return callback


def test_the_last_epoch_is_never_pruned() -> None:
    last = _callback(3)
    last.on_epoch_end(2, {"val_accuracy": 0.1})  # (epoch index 2: the third and last)
    assert last.pruned_at is None and last.model.stop_training is False


def test_an_earlier_epoch_is_pruned_as_before() -> None:
    early = _callback(3)
    early.on_epoch_end(1, {"val_accuracy": 0.1})
    assert early.pruned_at == 2 and early.model.stop_training is True
    unknown = _callback(None)  # (no last epoch given: every epoch may be pruned)
    unknown.on_epoch_end(0, {"val_accuracy": 0.1})
    assert unknown.pruned_at == 1
