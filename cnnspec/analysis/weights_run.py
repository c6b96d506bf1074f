"""The run folder a model's starting weights come from, as far as its data split goes (no
TensorFlow, no data read: lock.json alone).

Without ``training.seed`` every run draws a seed, and a source without a test set of its own
(digits, shapes, an image folder …) is split by it: a run started from the weights of an
earlier run of the same data would draw another test split, mostly of images those weights were
trained on, and score itself on them. So a new run that sets no seed and starts from a run
folder trained on the same data source splits with that run's seed (:func:`adopted_seed`):
its test images are then the earlier run's, none of which it trained on. ``cnnspec train``
(:mod:`cnnspec.training.weights_split`) and the generated script
(:mod:`cnnspec.backends.codegen_script`) decide it here, so both split alike. A run that sets
its own seed keeps it; ``train`` then counts the shared images and says so.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cnnspec.analysis.settings import DataConfig, TrainConfig
    from cnnspec.spec.weights import WeightsSource

#: lock.json's ``data`` keys that say which images a source holds (not which of them a run
#: keeps: data.classes, per_class and limit pick from a split already drawn; nor the target,
#: which lock.json records as the source read it, the spec only where it chose one).
SOURCE_KEYS = ("kind", "path", "test_path", "labels_path", "options", "image_column", "label_column")
#: The keys among them that hold paths (compared as the files they name).
PATH_KEYS = ("path", "test_path", "labels_path")


@dataclass(frozen=True)
class WeightsRun:
    """A run folder whose weights a model starts from: where it is, the source as written
    (``--weights runs/a``, ``weights: runs/a``), the seed its lock.json records (``None``: none
    readable) and whether it was trained on the same data source as the new run."""

    run_dir: Path
    given: str
    seed: int | None
    same_data: bool


def weights_run(source: WeightsSource | None, data: DataConfig) -> WeightsRun | None:
    """The run folder ``source`` (a model's whole-model weights source) reads from: a run
    folder, or a model file in one (``RUN/model.keras``, ``RUN/checkpoints/best.keras``);
    ``None`` for ``imagenet``, a file of no run, or a run folder without a readable lock.json.
    ``data``: the new run's data, compared with the run's."""
    if source is None or source.file is None:
        return None
    run_dir = next((folder for folder in source.file.parents[:2] if (folder / "lock.json").is_file()), None)
    if run_dir is None:
        return None
    try:
        lock = json.loads((run_dir / "lock.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(lock, dict):
        return None
    seed = lock.get("seed")
    seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else None
    recorded = lock.get("data")
    same = isinstance(recorded, dict) and _source(recorded) == _source(data.describe())
    spec = source.loc is not None or bool(source.path)  # (else the command line's --weights)
    given = f"weights: {source.text}" if spec else f"--weights {source.text}"
    return WeightsRun(run_dir, given, seed, same)


def adopted_seed(config: TrainConfig, run: WeightsRun | None) -> int | None:
    """The seed a new run splits its data with because of the run its weights come from:
    that run's, where the new run sets no ``training.seed``, was trained on the same data
    source and the source's test split depends on the seed (not a Keras dataset's, an ``.npz``
    file's or a test folder's own test set: :attr:`DataConfig.splits_test`); ``None``
    otherwise (the run's own seed, or a fresh one)."""
    if run is None or run.seed is None or config.seed is not None or not run.same_data:
        return None
    return run.seed if config.data.splits_test else None


def adopted_note(seed: int, run: WeightsRun) -> str:
    """The line that says a run splits with its weights run's seed."""
    return (
        f"seed {seed}: the split seed of {run.given}, trained on the same data, so that this "
        "run's test images are none those weights trained on (training.seed sets another)"
    )


def _source(record: dict[str, Any]) -> dict[str, Any]:
    """The keys of a data record (lock.json's, or :meth:`DataConfig.describe`'s) that say which
    images the source holds, JSON-normal (a tuple is a list), its paths as the files they name."""
    out = {key: record[key] for key in SOURCE_KEYS if record.get(key) is not None}
    for key in PATH_KEYS:
        if key in out:
            out[key] = os.path.realpath(str(out[key]))
    return json.loads(json.dumps(out, sort_keys=True, default=str))
