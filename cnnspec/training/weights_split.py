"""A new run that starts from the weights of a run folder trained on the same data: which seed
splits its data, and the images of its test split that those weights were trained on.

The seed is decided from lock.json alone (:func:`cnnspec.analysis.weights_run.adopted_seed`,
which the generated script follows too): without ``training.seed``, the weights run's. A run
that sets its own seed keeps it, and is told how many of its test images the weights run
trained or validated on (:func:`shared_note`), compared image by image as ``evaluate --data``
and ``--ensemble`` compare them (:func:`cnnspec.training.overlap.seen_images`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnspec.analysis.weights_run import WeightsRun, adopted_note, adopted_seed, gone_note

__all__ = ["RunData", "adopted_note", "adopted_seed", "gone_note", "shared_note"]

#: Loads a run folder's data split as that run split it (``None``: it can't be had); ``cnnspec
#: train`` passes :func:`cnnspec.reporting.own_data.run_data`, from the layer above this one.
RunData = Callable[[Path], Any]


def shared_note(dataset: Any, run: WeightsRun | None, run_data: RunData | None, seed: int) -> str | None:
    """The note of the new run's test images (``dataset.x_test``) that ``run`` trained or
    validated on; ``None`` where there are none, or they can't be counted (another data source,
    whose images are not compared, or the run's data that no longer loads). A run whose recorded
    data path is no longer there (a moved project folder: :attr:`WeightsRun.data_gone`) can't be
    compared, and the note says so (:func:`gone_note`). ``seed``: the new run's, for the hint."""
    from cnnspec.training.overlap import MATCHED_BY, SPLITS, seen_images

    if run is not None and run.data_gone is not None:
        return gone_note(run)
    if run is not None and run.same_data and run.seed is None:  # (none, or out of range)
        return (
            f"the split seed of {run.given} could not be read from its lock.json: this run's test "
            "images may include images those weights trained or validated on, and are not counted; "
            "hold out test images of their own (data.source.test_directory, an .npz file's x_test)"
        )
    if run is None or not run.same_data or run_data is None:
        return None
    theirs = run_data(run.run_dir)
    if theirs is None:
        return None
    by_content = (getattr(theirs, "source", None) or {}).get("hash") == "content"
    own = seen_images(dataset.x_test, (theirs.x_train, theirs.x_val), by_content=by_content)
    if own.trained == 0:
        return None
    if not run.same_split and run.test_split is not None:  # another fraction: another test split
        fix = f"set data.test_split to that run's, {run.test_split:g}, to split as it did"
        if run.seed is not None and run.seed != seed:
            fix += f" (and training.seed to its seed, {run.seed})"
    elif run.seed is not None and run.seed != seed:
        fix = f"set training.seed to that run's seed, {run.seed}, to split as it did"
    else:  # the same seed: another data.test_split (or other data under the same name)
        fix = "split as that run did (its data.test_split and data)"
    return (
        f"{own.trained:,} of this run's {own.images:,} test images are images {run.given} trained "
        f"or validated on ({own.listed(SPLITS[:2])}: {MATCHED_BY[own.by]}): the test figures may "
        f"include images the starting weights learnt; {fix}, or hold out test images of their own "
        "(data.source.test_directory, an .npz file's x_test)"
    )
