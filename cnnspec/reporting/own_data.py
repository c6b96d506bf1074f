"""Which of a ``--data`` source's images are a run's own: the images it trained, validated or
was tested on.

``evaluate``, ``visualize`` and ``report`` score ``--data`` as a test set; ``calibrate`` fits a
temperature on it. Images the model trained on flatter those figures, and a temperature
fitted on the run's test images leaves none unseen to judge it (``calibrate`` refuses the
run's own files, and sets aside arrays of the pixels of its training and test images). A
whole-data content hash (lock.json's ``data.content_hash``) tells the run's own named or
``.npz`` data, but not a folder or CSV: training hashes its train, validation and test file
lists together, and a ``--data`` folder is all one test list, so no hash of it is ever the
run's. The images are compared one by one instead (:func:`own_images`, by
:func:`~cnnspec.training.overlap.seen_images`): files by what they are (the same file under a
link or another spelling of its path, and by their bytes for a run trained with
``--hash-content``), arrays by their pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.training.overlap import MATCHED_BY, SPLITS, OwnImages, seen_images

if TYPE_CHECKING:
    from cnnspec.reporting.predictions import TestData
    from cnnspec.reporting.run import Run

__all__ = ["MATCHED_BY", "SCORED", "SPLITS", "OwnImages", "own_images", "run_data", "seen_note"]


def own_images(run: Run, held_out: TestData) -> OwnImages | None:
    """How many of ``held_out``'s images (a ``--data`` source's test images) are ``run``'s
    training, validation or test images; ``None`` where that can't be told: a model without
    its run folder, a run that recorded no split seed, run data that no longer loads, or
    images of another kind than the run's (files against arrays).

    Files are compared by :func:`~cnnspec.training.filelist.file_identity` (a link, a second
    spelling of a path and a hard link are the file they name), and for a run trained with
    ``--hash-content`` by their bytes too. Arrays whose source hashes as the run's data are
    the run's test split (``--data digits`` for a digits run draws the run's own split);
    others are compared image by image by their pixels."""
    from cnnspec.training.filelist import ImageFiles

    x = held_out.x
    lock = run.lock or {}
    recorded = (lock.get("data") or {}).get("content_hash")
    if not isinstance(x, ImageFiles) and recorded is not None and recorded == held_out.content_hash:
        return OwnImages(len(x), {"test": len(x)}, "split")  # (no need to load the run's data)
    dataset = _run_dataset(run)
    if dataset is None or dataset.streamed != isinstance(x, ImageFiles):
        return None
    parts = (dataset.x_train, dataset.x_val, dataset.x_test)
    return seen_images(x, parts, by_content=(lock.get("data") or {}).get("hash") == "content")


#: What a note of ``--data`` images the run trained on says they do to scores (evaluate's).
SCORED = "the test figures may include images the model trained on"


def seen_note(own: OwnImages | None, data: str, run_name: str, consequence: str = SCORED) -> str | None:
    """The note of ``--data`` images that ``run_name`` trained or validated on (``None``: none,
    or it can't be told): scoring other data is what ``--data`` is for, but figures on the
    model's training images say little of images it never saw (``consequence``: what the
    images do to the command's figures). Its test images are unseen ones, and no note: a
    temperature is never fitted on them (``calibrate --data`` sets them aside or refuses them)."""
    if own is None or own.trained == 0:
        return None
    return (
        f"{own.trained:,} of the {own.images:,} images of --data {data} are images {run_name} "
        f"trained or validated on ({own.listed(SPLITS[:2])}: {MATCHED_BY[own.by]}): {consequence}"
    )


def _run_dataset(run: Run) -> Any:
    """The run's own data, split as its training split it (file lists for a folder or CSV,
    nothing decoded); ``None`` where that can't be had: no run folder or spec, no recorded
    seed, or a source that no longer loads (moved, changed into something else)."""
    from cnnspec.errors import SpecError, UsageError
    from cnnspec.reporting.run import run_config
    from cnnspec.reporting.run_splits import split_seed
    from cnnspec.training.data import load_dataset

    if run.run_dir is None or run.compiled is None:
        return None
    try:
        config = run_config(run.compiled)
        seed, recorded = split_seed(run, config)
        if not recorded:  # another seed draws other splits: counting by them would mislead
            return None
        return load_dataset(run.compiled, config, seed)
    except (SpecError, UsageError, OSError):
        return None


def run_data(run_dir: Path) -> Any:
    """The data of the run folder ``run_dir``, split as its training split it (file lists for a
    folder or CSV, nothing decoded); ``None`` where that can't be had (:func:`_run_dataset`, or
    a folder that is no readable run). ``cnnspec train`` passes it to the trainer, which sits
    below this layer, to find the images of its test split that the run it starts from trained
    on (:mod:`cnnspec.training.weights_split`)."""
    from cnnspec.errors import SpecError, UsageError
    from cnnspec.reporting.run import locate

    try:
        run = locate(run_dir, need_model=False)
    except (SpecError, UsageError, OSError):
        return None
    return _run_dataset(run)
