"""Which images are a run's test split, for a model known apart from its run folder: the seed
and fractions the run split its data with (:class:`~cnnspec.reporting.run.SplitOrigin`, read from
the run folder the file lies in or an export's record), why an export's record keeps none, and
the refusal to evaluate a model when nothing names its data (:func:`check_data_known`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.errors import UsageError
from cnnspec.reporting.data_option import OPTIONED_SOURCES, refuse_empty_source, source_options
from cnnspec.reporting.run import Run, SplitOrigin, read_lock, run_config, run_spec

if TYPE_CHECKING:
    from cnnspec.analysis.settings_types import TrainConfig


def check_data_known(run: Run, data: str | None) -> None:
    """Refuse (:class:`UsageError`) to evaluate ``run`` when nothing names its data: no spec
    (a model file outside a run folder, or a run folder that lost its resolved.yaml) and no
    ``--data``. Told before the model is loaded, as is an empty ``--data``."""
    if data is not None:
        refuse_empty_source(data)
    if run.compiled is not None or data is not None:
        return
    if run.run_dir is not None:  # a run folder that lost its resolved spec
        raise UsageError(
            f"cannot tell which data to use: resolved.yaml, the run's spec that names its data, "
            f"is missing from the run folder {run.run_dir}",
            "put back the resolved.yaml `cnnspec train` wrote, or pass --data SOURCE or --spec SPEC",
        )
    holder = enclosing_run_dir(run.model_path)
    if holder is not None:  # a checkpoint, RUN/checkpoints/best.keras: its folder is no run's top
        raise UsageError(
            f"cannot tell which data to use: {run.model_path} is not the model of a run folder "
            f"(it lies in the run folder {holder}, below its top)",
            f"pass --data SOURCE (a source the run split is split as the run split it) or --spec SPEC, "
            f"or evaluate the run folder {holder} itself",
        )
    raise UsageError(
        f"cannot tell which data to use: {run.model_path} is not in a run folder",
        "pass --data SOURCE (digits, mnist, a .npz file, an image folder) or --spec SPEC",
    )


def split_seed(run: Run, config: TrainConfig) -> tuple[int, bool]:
    """The seed that splits the run's data as its training split it: the one lock.json
    records, else the one of the run the model came from (:attr:`Run.split`), else the spec's
    (else 0); and whether a run recorded it. A recorded seed out of ``training.seed``'s range
    (a damaged lock.json: NumPy refuses it) is none."""
    from cnnspec.spec.sections import recorded_seed

    seed = recorded_seed((run.lock or {}).get("seed"))
    if seed is not None:
        return seed, True
    if run.split is not None and recorded_seed(run.split.seed) is not None:
        return run.split.seed, True
    return (config.seed if config.seed is not None else 0), False


def split_of_record(value: Any, where: str) -> SplitOrigin | None:
    """The :class:`SplitOrigin` an export's record keeps (``split``, written by ``cnnspec
    export`` of a model of a run); ``None`` where it keeps none, or none well formed."""
    if not isinstance(value, dict):
        return None
    seed, test, validation = value.get("seed"), value.get("test_split"), value.get("validation_split")

    def fraction(number: Any) -> bool:
        return isinstance(number, (int, float)) and not isinstance(number, bool) and 0 <= number < 1

    if not isinstance(seed, int) or isinstance(seed, bool) or not fraction(validation):
        return None
    if test is not None and not fraction(test):
        return None
    source, options = value.get("source"), value.get("options")
    kind = source if isinstance(source, str) else None
    settings = dict(options) if isinstance(options, dict) and kind in OPTIONED_SOURCES else None
    classes = _recorded_classes(value.get("classes"))
    test_split = None if test is None else float(test)
    return SplitOrigin(seed, test_split, float(validation), where, kind, settings, classes)


def _recorded_classes(value: Any) -> tuple[str | int, ...] | None:
    """A record's ``classes`` (the run's ``data.classes``): names and label indices, each once;
    ``None`` for none, or for a list a damaged record made of something else."""
    if not isinstance(value, list) or not value:
        return None
    fine = all(
        isinstance(c, str) or (isinstance(c, int) and not isinstance(c, bool) and c >= 0) for c in value
    )
    return tuple(value) if fine and len(set(map(repr, value))) == len(value) else None


def enclosing_run_dir(path: Path) -> Path | None:
    """The run folder (with lock.json) that ``path``'s folder is or lies in, resolved (a
    checkpoint's ``RUN/checkpoints/``, an export's ``RUN/export/``); ``None`` where there is none."""
    from cnnspec.reporting.runs import is_run

    try:
        here = Path(path).parent.resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL: no run to name
        return None
    return next((candidate for candidate in (here, *here.parents) if is_run(candidate)), None)


def run_split(run_dir: Path) -> SplitOrigin | None:
    """The split of the run in ``run_dir``: the seed its lock.json records and the fractions
    of its resolved spec; ``None`` where either can't be read (a damaged or older run)."""
    from cnnspec.errors import SpecError

    try:
        lock = read_lock(run_dir) or {}
        seed = lock.get("seed")
        compiled = run_spec(run_dir, lock) if isinstance(seed, int) else None
        config = run_config(compiled) if compiled is not None else None
    except (UsageError, SpecError, OSError):
        return None
    if config is None or not isinstance(seed, int):
        return None
    where = f"as the run {run_dir} drew it"
    data, options = config.data, source_options(compiled)
    return SplitOrigin(seed, data.test_split, data.validation_split, where, data.kind, options, data.classes)


def split_origin(run: Run) -> SplitOrigin | None:
    """The split of the run ``run``'s model came from, where the model is known apart from its
    run folder: :attr:`Run.split` (an export's record), else the run folder the model file lies
    in below its top (``RUN/checkpoints/best.keras``, ``RUN/export/model.onnx``). ``None`` for
    a run folder itself (its lock.json is read instead) and a model of no known run."""
    if run.run_dir is not None:
        return None
    if run.split is None:
        holder = enclosing_run_dir(run.model_path)
        if holder is not None:
            run.split = run_split(holder)
    return run.split


def with_split(config: TrainConfig, origin: SplitOrigin) -> TrainConfig:
    """``config`` splitting its data with the fractions of ``origin``'s run (its seed is
    :func:`split_seed`'s), so that its test and validation images are the run's again, and
    selecting the run's ``data.classes`` as the run does."""
    data = replace(config.data, test_split=origin.test_split, validation_split=origin.validation_split)
    if origin.classes is not None and data.classes is None:
        # --data as `evaluate RUN --data` reads it for a run trained with data.classes: labelled
        # as the run's source labels it, picked and reordered as the run picked its classes (the
        # model answers in those); a folder's classes are matched by name instead (held_out)
        data = replace(data, classes=origin.classes)
    return replace(config, data=data)


#: Why an export's record keeps no run's split, as the record says it (``split_unknown``, written
#: by ``cnnspec export`` since it keeps splits: :func:`unknown_split_reason`), in words.
UNKNOWN_SPLIT = {
    "no_run": "exported from a model file outside any run folder",
    "run_unread": "exported from a model file whose run folder could not be read for its seed and split",
    "no_seed": "exported from a run folder that records no training seed and split",
}


def unknown_split_reason(run: Run) -> str:
    """Why no run's split is known for the model of ``run`` (:func:`split_origin` and the run
    folder's lock.json found none), as an export's record keeps it (``split_unknown``, a key
    of :data:`UNKNOWN_SPLIT`): so that the file served alone is said truly, and told apart from
    the record of an older cnnspec, which keeps neither."""
    if run.run_dir is not None:
        return "no_seed"
    return "run_unread" if enclosing_run_dir(run.model_path) is not None else "no_run"


def record_unknown_split(value: Any) -> str | None:
    """The words of a record's ``split_unknown`` (:data:`UNKNOWN_SPLIT`); ``None`` where the
    record has none (an older cnnspec's: no ``split`` key either)."""
    if value is None:
        return None
    if isinstance(value, str) and value in UNKNOWN_SPLIT:
        return UNKNOWN_SPLIT[value]
    return "no run's split was known when it was exported"


def unknown_split_note(run: Run, seed: int, split: str) -> str:
    """The note of a split drawn without knowing the run the model came from (a model file or
    an exported file outside any run folder whose record names no run's split, a run folder
    whose resolved spec or lock.json can't be read): the images drawn may be training ones.
    Of an exported file, why its record keeps no split: as the record says
    (:attr:`Run.unknown_split`), or, saying nothing, its older cnnspec kept none."""
    holder = enclosing_run_dir(run.model_path) if run.run_dir is None else None
    if holder is not None:
        why = f"the run folder it lies in ({holder}) can't be read for its seed and split"
    elif run.run_dir is None:
        why = f"{run.model_path.name} lies in no run folder"
        if served_suffix(run.model_path):
            # (a record of today's export says why it keeps none; an older cnnspec's keeps no split)
            reason = run.unknown_split or "exported by an older cnnspec"
            why += f" and its record keeps no run's split ({reason})"
    else:
        why = "the run folder records no training seed"
    which = "validation" if split == "validation" else "test"
    return (
        f"the {which} split was drawn with seed {seed}, maybe not the training's: {why}, so it may "
        "include images the model trained on"
    )


def served_suffix(path: Path) -> bool:
    """Whether ``path`` is named as an exported file served by itself (``.onnx``, ``.tflite``)."""
    from cnnspec.export.runtimes import SERVED_SUFFIXES

    return path.suffix.lower() in SERVED_SUFFIXES
