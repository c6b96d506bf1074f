"""What an epoch of a run is: its steps and the batch size one worker trains with, the images it
shows, and how long the epochs took once the first (the one that traces and compiles) is
left out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from cnnspec.analysis.settings_types import TrainConfig


def steps_per_epoch(config: TrainConfig, n_train: int) -> int:
    """The steps of one epoch: ``training.steps_per_epoch``, else the batches that show the
    training split of ``n_train`` images once."""
    return config.steps_per_epoch or max(1, math.ceil(n_train / config.batch_size))


def training_batch_size(config: TrainConfig, n_train: int) -> int:
    """The training batch: ``training.batch_size``, at most the whole training split. Without
    ``steps_per_epoch`` a larger batch is one smaller batch of every image anyway (as Keras
    does); with it the repeated data would fill each batch with every image many times over."""
    return min(config.batch_size, n_train) if n_train > 0 else config.batch_size


def images_shown_per_epoch(config: TrainConfig, n_train: int) -> int:
    """The images one epoch trains on: ``steps_per_epoch`` batches, else the training split once."""
    if config.steps_per_epoch:
        return config.steps_per_epoch * training_batch_size(config, n_train)
    return n_train


def steady_epoch_seconds(history: Sequence[dict[str, Any]], resumed_from: int | None = None) -> list[float]:
    """The seconds of the *steady* epochs: every epoch but the first of each stretch that
    starts a new model function, which builds (traces, compiles) it and so runs slower: the
    run's first epoch, the first epoch of each ``training.phases`` phase (freezing and a new
    optimizer recompile the model), and the first epoch after a resume (``resumed_from``: the
    epochs done before it; a new process traces anew). Empty when every epoch is such a first
    one (one epoch a phase). ``images_per_second_steady`` is the images of an epoch over the
    median (:func:`statistics.median`: of an even count, the mean of the middle two) of these."""
    steady = []
    for index, row in enumerate(history):
        first = (
            index == 0
            or row.get("phase") != history[index - 1].get("phase")
            or (resumed_from is not None and row.get("epoch") == resumed_from + 1)
        )
        if not first:
            steady.append(float(row.get("seconds", 0.0)))
    return steady
