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

from cnnspec.analysis.settings_types import DEFAULT_TEST_SPLIT
from cnnspec.spec.sections import recorded_seed

if TYPE_CHECKING:
    from cnnspec.analysis.settings_types import DataConfig, TrainConfig
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
    readable, or out of training.seed's range) and whether it was trained on the same data
    source as the new run. ``same_split``: whether it split off its test images as the new run
    would (the same ``data.test_split``, read from its resolved.yaml; the test split is drawn
    first, from every image, so only that fraction and the seed decide it). ``data_gone``: the
    data path its lock.json records where that is no longer there (a moved or renamed project
    folder): its data can't be compared with the new run's. ``moved_from``: that path, where the
    data was found again beside the new spec as it was beside the run's (:func:`_moved`): the
    same data, moved."""

    run_dir: Path
    given: str
    seed: int | None
    same_data: bool
    same_split: bool = True
    test_split: float | None = None
    data_gone: str | None = None
    moved_from: str | None = None


def weights_run(
    source: WeightsSource | None, data: DataConfig, spec_file: Path | None = None
) -> WeightsRun | None:
    """The run folder ``source`` (a model's whole-model weights source) reads from: a run
    folder, or a model file in one (``RUN/model.keras``, ``RUN/checkpoints/best.keras``);
    ``None`` for ``imagenet``, a file of no run, or a run folder without a readable lock.json.
    ``data``: the new run's data, compared with the run's; ``spec_file``: the new run's spec,
    where its data is looked for again when the run's recorded data is gone (:func:`_moved`)."""
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
    recorded = lock.get("data")
    same = isinstance(recorded, dict) and _source(recorded) == _source(data.describe())
    gone = _gone(recorded, data) if not same else None
    moved = None
    if gone is not None and _moved(lock, data, spec_file):  # a moved project folder: the same data
        same, moved, gone = True, gone, None
    theirs = _test_split(run_dir)
    ours = data.test_fraction
    spec = source.loc is not None or bool(source.path)  # (else the command line's --weights)
    given = f"weights: {source.text}" if spec else f"--weights {source.text}"
    split = theirs is not None and abs(theirs - ours) <= 1e-9  # (0.3 drawn by a step is 0.3)
    return WeightsRun(run_dir, given, recorded_seed(lock.get("seed")), same, split, theirs, gone, moved)


def adopted_seed(config: TrainConfig, run: WeightsRun | None) -> int | None:
    """The seed a new run splits its data with because of the run its weights come from:
    that run's, where the new run sets no ``training.seed``, was trained on the same data
    source with the same ``data.test_split`` (:attr:`WeightsRun.same_split`: else its test
    images would be others all the same, and the shared ones are counted instead) and the
    source's test split depends on the seed (not a Keras dataset's, an ``.npz`` file's or a
    test folder's own test set: :attr:`DataConfig.splits_test`); ``None`` otherwise (the run's
    own seed, or a fresh one)."""
    if run is None or run.seed is None or config.seed is not None or not run.same_data:
        return None
    if not run.same_split:  # another test_split draws other test images, whatever the seed
        return None
    return run.seed if config.data.splits_test else None


def adopted_note(seed: int, run: WeightsRun) -> str:
    """The line that says a run splits with its weights run's seed."""
    moved = f" (found here again: lock.json names {run.moved_from})" if run.moved_from else ""
    return (
        f"seed {seed}: the split seed of {run.given}, trained on the same data{moved}, so that this "
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


def gone_note(run: WeightsRun) -> str:
    """The note of a weights run whose recorded data is no longer where lock.json says: the
    new run's test images can't be compared with those it trained on."""
    fix = (
        f"if it is this data moved, set training.seed to that run's seed, {run.seed}, to split as it did"
        if run.seed is not None
        else "hold out test images of their own (data.source.test_directory, an .npz file's x_test)"
    )
    return (
        f"the data split of {run.given} could not be compared with this run's: its data "
        f"(lock.json: {run.data_gone}) is no longer there, so its seed is not taken and its "
        f"images are not counted among this run's test images; {fix}"
    )


def _gone(recorded: Any, data: DataConfig) -> str | None:
    """The first data path of lock.json's record ``recorded`` that is no longer there, where the
    record is otherwise of the new run's kind of source (``None``: all there, or another kind)."""
    if not isinstance(recorded, dict) or recorded.get("kind") != data.kind:
        return None
    for key in PATH_KEYS:
        path = recorded.get(key)
        if isinstance(path, str) and path and not os.path.exists(path):
            return path
    return None


def _moved(lock: dict[str, Any], data: DataConfig, spec_file: Path | None) -> bool:
    """Whether the run's recorded data, gone from where lock.json says, is the new run's data
    moved with its spec (a project folder moved or renamed): lock.json's ``spec_path`` is gone
    too, and each recorded data path lies from it as the new run's lies from ``spec_file``
    (``imgs`` beside ``d.yaml`` then and now), the spec's file name the same. Relative paths
    are what a moved folder keeps (the generated script writes its data paths so, too)."""
    recorded, spec_then = lock.get("data"), lock.get("spec_path")
    if spec_file is None or not isinstance(recorded, dict) or not isinstance(spec_then, str) or not spec_then:
        return False
    if os.path.exists(spec_then) or os.path.basename(spec_then) != spec_file.name:
        return False
    now = data.describe()
    if _source({k: v for k, v in recorded.items() if k not in PATH_KEYS}) != _source(
        {k: v for k, v in now.items() if k not in PATH_KEYS}
    ):
        return False
    then_dir = os.path.dirname(spec_then)
    now_dir = os.path.realpath(os.path.dirname(os.path.abspath(spec_file)))
    for key in PATH_KEYS:
        old, new = recorded.get(key), now.get(key)
        if (old is None) != (new is None) or (old is not None and not isinstance(old, str)):
            return False
        # (each then as recorded; each now as the file it names, as its spec's folder)
        moved = isinstance(old, str) and isinstance(new, str)
        if moved and os.path.relpath(old, then_dir) != os.path.relpath(os.path.realpath(new), now_dir):
            return False
    return True


def disjoint_classes(run_dir: Path, data: DataConfig) -> bool:
    """Whether the run in ``run_dir`` and ``data`` select classes of their source that share
    none (``data.classes`` both, written alike: names, or label indices): no test image of one
    can be an image the other trained on, whatever their splits."""
    import yaml

    ours = data.classes
    try:
        doc = yaml.safe_load((run_dir / "resolved.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError):
        return False
    section = doc.get("data") if isinstance(doc, dict) else None
    theirs = section.get("classes") if isinstance(section, dict) else None
    if not ours or not isinstance(theirs, list) or not theirs:
        return False
    kinds = {type(entry) for entry in [*ours, *theirs]}
    if kinds not in ({int}, {str}):  # (names beside indices: not comparable here)
        return False
    return not set(ours) & set(theirs)


def _test_split(run_dir: Path) -> float | None:
    """The ``data.test_split`` the run split with, from its resolved.yaml (the default where it
    sets none); ``None`` where that can't be read."""
    import yaml

    try:
        doc = yaml.safe_load((run_dir / "resolved.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError):
        return None
    section = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(section, dict):
        return None
    value = section.get("test_split")
    if value is None:
        return DEFAULT_TEST_SPLIT
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
