"""What a command's TARGET names, and loading what belongs to it.

A TARGET is a run folder written by ``cnnspec train`` (``model.keras``, ``lock.json``,
``resolved.yaml``, ``metrics.json`` …), or a ``.keras`` file (inside a run folder or on its own).
Models are loaded by the one safe loader (:mod:`cnnspec.training.modelfile`): Keras safe mode
only; HDF5 files, files that are not Keras archives and models with ``Lambda`` layers are
refused with a :class:`~cnnspec.errors.UsageError` before or instead of a Keras traceback.

The test data of a run is the run's own split: the resolved spec and the seed in ``lock.json``
give back exactly the images training held out (the content hash says whether the data
changed since). ``--data SOURCE`` evaluates on another source with the run's preprocessing.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import re
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnspec.analysis.classes import name_key
from cnnspec.analysis.tasks import (
    CLASS_ONLY_SOURCES,
    keras_classification_loss,
    keras_loss_name,
    keras_loss_task,
    keras_regression_loss,
    losses_by_name,
    saved_loss,
)
from cnnspec.errors import Loc, UsageError, did_you_mean
from cnnspec.fileio import user_path
from cnnspec.layers import REGISTRY, LayerKind, kind_of_keras_class
from cnnspec.paths import exists, is_dir, is_file, refuse_unreadable
from cnnspec.runholder import training_process  # (a weights: source of the spec says it too)
from cnnspec.spec.sections import DATASETS
from cnnspec.training.data import UNSELECTED_CLASSES
from cnnspec.training.data_arrays import pixel_range
from cnnspec.training.data_sources import DATA_OPTION_FILE
from cnnspec.training.modelfile import all_layers, check_model_file
from cnnspec.training.modelfile import load_model as load_model  # the one safe loader, re-exported

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.analysis.settings_types import TrainConfig
    from cnnspec.analysis.tasks import OutputTask
    from cnnspec.errors import Diagnostic, SpecError
    from cnnspec.reporting.own_data import OwnImages
    from cnnspec.spec.loader import SourceDoc
    from cnnspec.training.filelist import ImageFiles
    from cnnspec.training.pipeline import PipelineSettings

MODEL_FILE = "model.keras"
#: images of a streamed test split decoded at a time for a prediction
PREDICT_CHUNK = 256
NAMED_SOURCES = tuple(DATASETS)  # what `data.source` may name
#: Keras classes of the convolutions with a height × width kernel (the ones filter plots draw).
CONV_CLASSES = tuple(
    k.keras_class
    for k in REGISTRY.values()
    if k.kernel_layout is not None and k.kernel_layout.startswith("hw")
)
#: Where a ``--data`` source is located (training/data.py does not refuse it for listing its
#: images as both training and test: every one of them is a test image).
DATA_LOC = Loc(DATA_OPTION_FILE, 1, 1)


#: What the hint of a damaged run file says.
DAMAGED_HINT = (
    "the file was changed after cnnspec wrote it, or is not cnnspec's: put back the file "
    "`cnnspec train` wrote, or train the run again"
)


def damaged(path: Path, problems: list[str], hint: str = DAMAGED_HINT) -> UsageError:
    """The error of a run file that is not as cnnspec writes it (exit code 2): names the file
    and, per problem, the key and what is wrong with it; ``hint``: how to get it back (a file
    another command than train writes says which)."""
    listed = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
    return UsageError(f"damaged run file {path}: {listed}", hint)


def read_json(path: Path, hint: str = DAMAGED_HINT) -> dict[str, Any] | None:
    """A JSON object from ``path``; ``None`` when the file is absent, a clear error when corrupt
    (not JSON, not an object, or holding an integer too large for a float; ``hint``: how to
    get it back, for a file another command than train writes)."""
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise damaged(path, [f"expected readable JSON; {exc}"], hint) from None
    except RecursionError:  # json's decoder recurses once per level: a hostile nesting
        raise damaged(path, ["expected readable JSON; it is nested too deeply to read"], hint) from None
    except MemoryError:
        raise damaged(path, ["expected readable JSON; it is too large to read"], hint) from None
    if not isinstance(value, dict):
        raise damaged(path, [f"expected a JSON object; received {type(value).__name__}"], hint)
    from cnnspec.reporting.runs import large_numbers

    # cnnspec never writes an integer a float can't hold: one (hundreds of digits) made every
    # figure read from the file raise OverflowError wherever it was formatted or compared
    problems = large_numbers(value)
    if problems:
        raise damaged(path, problems, hint)
    return value


def read_lock(run_dir: Path) -> dict[str, Any] | None:
    """The run's lock.json (``None``: there is none), with every key the commands read of the
    type cnnspec writes (:func:`~cnnspec.reporting.runs.lock_problems`); a damaged one is a
    :func:`damaged` error. Keys an older cnnspec did not write may be absent."""
    from cnnspec.reporting.runs import lock_problems

    path = Path(run_dir) / "lock.json"
    lock = read_json(path)
    problems = lock_problems(lock) + _tasks_problems(lock) if lock is not None else []
    if problems:
        raise damaged(path, problems)
    return lock


def _tasks_problems(lock: dict[str, Any]) -> list[str]:
    """What is wrong with lock.json's ``tasks`` as :meth:`Run.output_names` reads it: a list of
    objects, each with its output's ``name`` and (written since the names were recorded)
    ``names``, a list of strings. Absent in a lock.json of an older cnnspec."""
    from cnnspec.reporting.runs import wrong_type

    tasks = lock.get("tasks")
    if tasks is None:
        return []
    if not isinstance(tasks, list):
        return [wrong_type("tasks", tasks, "a list")]
    problems = []
    for index, entry in enumerate(tasks):
        if not isinstance(entry, dict):
            problems.append(wrong_type(f"tasks[{index}]", entry, "an object"))
        elif not isinstance(entry.get("name"), str):
            problems.append(wrong_type(f"tasks[{index}].name", entry.get("name"), "a string"))
        elif "names" in entry and not (
            isinstance(entry["names"], list) and all(isinstance(n, str) for n in entry["names"])
        ):
            problems.append(wrong_type(f"tasks[{index}].names", entry["names"], "a list of strings"))
    return problems


def read_history(run_dir: Path) -> dict[str, Any] | None:
    """The run's history.json (``None``: there is none): columns of numbers, one per epoch
    (:func:`~cnnspec.reporting.runs.history_problems`); a damaged one is a :func:`damaged`
    error."""
    from cnnspec.reporting.runs import history_problems

    path = Path(run_dir) / "history.json"
    history = read_json(path)
    problems = history_problems(history) if history is not None else []
    if problems:
        raise damaged(path, problems)
    return history


@dataclass
class OutputKind:
    """How to read the model's outputs: one sigmoid unit (binary) or classes; logits or not."""

    binary: bool = False
    from_logits: bool = False


@dataclass(frozen=True)
class SplitOrigin:
    """How the run a model came from split its data, for a model known apart from its run
    folder (a checkpoint or an export inside the run folder, an export whose record names its
    run's split): the seed and fractions that draw the same test and validation images again.
    ``where``: how the split is known, in words, for the note that says so ("as the run RUN
    drew it")."""

    seed: int
    test_split: float | None
    validation_split: float
    where: str
    #: the kind of source the run split (``digits``; ``None``: not recorded)
    source: str | None = None
    #: the settings of a generated source (:data:`OPTIONED_SOURCES`: ``shapes``' image count,
    #: seed, noise, target, …) as the run's spec gave them, which draw the same images again;
    #: ``None``: not recorded (another source, or a record of an older cnnspec)
    options: dict[str, Any] | None = None

    def recorded(self) -> dict[str, Any]:
        """As an export's record keeps it (``split``: :func:`split_of_record` reads it back)."""
        fractions = {"test_split": self.test_split, "validation_split": self.validation_split}
        kept = {"seed": self.seed, **fractions, "source": self.source}
        if self.options is not None:
            kept["options"] = self.options
        return kept

    def base(self) -> dict[str, Any] | None:
        """The run's ``data.source`` mapping as :func:`parse_source` takes it for ``--data``
        (``{shapes: {...}}``), where the split keeps the source's settings."""
        if not self.source or not self.options:  # (none kept, or the defaults: the bare name)
            return None
        return {self.source: dict(self.options)}


@dataclass
class Run:
    """A model file and, when it lives in one, its run folder with the spec and class names."""

    model_path: Path
    run_dir: Path | None = None
    lock: dict[str, Any] | None = None
    compiled: CompiledSpec | None = None
    class_names: list[str] | None = None
    _config: Any = field(default=None, repr=False)
    #: the split of the run the model came from, where the model is known apart from its run
    #: folder (:func:`split_origin`); ``None``: not looked for, or none
    split: SplitOrigin | None = None
    #: an exported file served by itself whose record keeps no run's split: why, in words, as
    #: the record says (:data:`UNKNOWN_SPLIT`); ``None``: the record says nothing (an older one)
    unknown_split: str | None = None
    #: a model file outside any run folder described by ``--spec``: each output's names as the
    #: spec fixes them without reading data (:func:`spec_names`), which no lock.json records
    spec_names: dict[str, list[str]] = field(default_factory=dict)
    #: an exported file served by itself: the range its run's float inputs had, as its record
    #: keeps it (:func:`trained_pixel_range`, which reads it first); ``None``: not kept
    recorded_range: tuple[float, float] | None = None

    @property
    def name(self) -> str:
        """The model's name: its spec's, else the one lock.json records (a run folder that lost
        its resolved.yaml was titled "model", its model file's stem), else the model file's stem."""
        if self.compiled is not None:
            return self.compiled.name
        recorded = (self.lock or {}).get("name")
        if isinstance(recorded, str) and recorded.strip():
            return recorded
        return self.model_path.stem

    @property
    def missing_model(self) -> str | None:
        """Why a run folder has no model file to load, in words (``None``: it has one, or this is
        no run folder): a run that has not finished yet (no metrics.json either), or a finished
        one whose model.keras was moved or deleted (metrics.json is there)."""
        if self.run_dir is None or self.model_path.is_file():
            return None
        if self.model_path.is_dir():
            return f"{self.run_dir} holds a folder named {MODEL_FILE} where its model file belongs"
        if (self.run_dir / "metrics.json").is_file():
            return f"{MODEL_FILE} is missing from {self.run_dir}, a finished run (its metrics.json is there)"
        if (who := training_process(self.run_dir)) is not None:
            return f"{self.run_dir} has no {MODEL_FILE} yet: the run is still being trained by {who}"
        return f"{self.run_dir} has no {MODEL_FILE} yet: the run has not finished"

    @property
    def out_dir(self) -> Path:
        """Where results go by default: the run folder, else the model file's folder."""
        return self.run_dir if self.run_dir is not None else self.model_path.parent

    @property
    def config(self) -> TrainConfig | None:
        """The run's typed training settings (``None`` without a spec)."""
        if self._config is None and self.compiled is not None:
            from cnnspec.analysis.settings import training_config

            self._config = training_config(self.compiled)
        return self._config

    def metrics(self) -> dict[str, Any] | None:
        return read_json(self.run_dir / "metrics.json") if self.run_dir else None

    def history(self) -> dict[str, Any] | None:
        """history.json, checked (:func:`read_history`)."""
        return read_history(self.run_dir) if self.run_dir else None

    def output_kind(self, model: Any = None) -> OutputKind:
        """How to read the model's (first) output: the spec's loss, or for a model without a
        spec what the task rules read from ``model`` and its file (:func:`model_output_kind`)."""
        config = self.config
        if config is not None:
            return OutputKind(binary=config.binary, from_logits=config.loss.from_logits)
        return model_output_kind(model, self.name, self.model_path) if model is not None else OutputKind()

    def output_names(self, output_name: str) -> list[str]:
        """The class, label or value names of the model output ``output_name`` as training gave
        its results (lock.json's ``tasks[].names``); empty when none are known. A run of an
        older cnnspec recorded only the data's class names, which belong to the data's first
        target (the first of lock.json's ``data.target`` by output, else the first output):
        they are that output's, and the others have none."""
        if self.lock is None and output_name in self.spec_names:  # (a model file and its --spec)
            return list(self.spec_names[output_name])
        tasks = (self.lock or {}).get("tasks")
        recorded = [t for t in tasks if "names" in t] if isinstance(tasks, list) else []
        if recorded:  # checked by read_lock: objects with a name and a list of strings
            return next((list(t["names"]) for t in recorded if t["name"] == output_name), [])
        target = ((self.lock or {}).get("data") or {}).get("target")
        if isinstance(target, dict) and target:
            first = str(next(iter(target)))
        else:
            config = self.config
            first = config.tasks[0].name if config is not None and config.tasks else output_name
        return list(self.class_names or []) if output_name == first else []

    def names_for(self, count: int) -> list[str]:
        """Class names for ``count`` outputs (the run's when they fit, else indices)."""
        return names_or_indices(self.class_names, count)


def names_or_indices(names: list[str] | None, count: int) -> list[str]:
    """The names of ``count`` classes, labels or values: the first ``count`` of ``names`` when
    there are enough, else their indices (``0``, ``1`` …)."""
    known = list(names or [])
    return known[:count] if len(known) >= count else [str(i) for i in range(count)]


# -- locating ------------------------------------------------------------------------------------
#: Whether the current command line passed ``--allow-outside`` (:func:`outside_allowed`), for
#: the readers of a run's spec that the command reaches through other modules (report, export).
#: Never read from the run folder: a folder's own lock.json must not lift the rule for itself.
_OUTSIDE_ALLOWED: ContextVar[bool] = ContextVar("cnnspec_outside_allowed", default=False)


@contextlib.contextmanager
def outside_allowed(allowed: bool) -> Iterator[None]:
    """Within the block, a run's spec may read files outside its spec's folder when
    ``allowed`` (the current command's ``--allow-outside``): :func:`locate` and
    :func:`run_spec` called without ``allow_outside`` follow it."""
    token = _OUTSIDE_ALLOWED.set(bool(allowed))
    try:
        yield
    finally:
        _OUTSIDE_ALLOWED.reset(token)


def _allowed(allow_outside: bool | None) -> bool:
    """``allow_outside`` as given, else the current command's (:func:`outside_allowed`)."""
    return _OUTSIDE_ALLOWED.get() if allow_outside is None else allow_outside


def locate(
    target: Path,
    spec: Path | None = None,
    *,
    allow_outside: bool | None = None,
    need_model: bool = True,
) -> Run:
    """Resolve a TARGET (run folder or ``.keras`` file) and read its run folder, if any.

    ``spec``: a spec file that describes the model and its data (for a model outside a run).
    ``allow_outside``: the current command's ``--allow-outside`` (``None``: as
    :func:`outside_allowed` says); the run's own lock.json never decides it.
    ``need_model``: refuse a run folder without its model.keras (an unfinished run, or a
    finished one whose model file is gone: :func:`missing_model_error`); false for a command
    that reads the folder only (learning curves, the graph), which gets the run with
    :attr:`Run.missing_model` saying why there is no model.

    A run folder's model file that is not the model of the run's spec is refused when the
    model is needed (:func:`check_run_model`).
    """
    target = Path(target)
    expected = "a run folder or a .keras model"
    refuse_unreadable(target, expected)  # (another user's folder, a name too long: not "no such file")
    if is_dir(target):
        refuse_unreadable(target / "lock.json", expected)
    if not exists(target):
        raise UsageError(
            f"expected a run folder or a .keras model; {target} does not exist",
            "pass the folder `cnnspec train` wrote (runs/<name>-<time>) or its model.keras",
        )
    if is_dir(target):
        model_path = target / MODEL_FILE
        if not is_file(model_path) and not is_file(target / "lock.json"):
            raise UsageError(
                f"expected a cnnspec run folder (with {MODEL_FILE} and lock.json); {target} is not one",
                "pass the folder `cnnspec train` wrote, or a .keras model file",
            )
        if not is_file(model_path) and need_model:
            raise missing_model_error(target)
        run_dir: Path | None = target
    else:
        check_model_file(target)
        model_path = target
        run_dir = target.parent if is_file(target.parent / "lock.json") else None
    run = Run(model_path=model_path, run_dir=run_dir)
    if run_dir is not None:
        run.lock = read_lock(run_dir)
        if spec is None:
            run.compiled = run_spec(run_dir, run.lock or {}, allow_outside=allow_outside)
            if run.compiled is not None and need_model and is_file(model_path):
                check_run_model(model_path, run_dir, run.compiled)
        names = ((run.lock or {}).get("data") or {}).get("classes")
        if not names:
            names = (run.metrics() or {}).get("class_names")
        if isinstance(names, list) and names:
            run.class_names = [str(n) for n in names]
    if spec is not None:
        from cnnspec.analysis.passes import compile_spec

        run.compiled = compile_spec(spec, allow_outside=_allowed(allow_outside))
        if run.lock is None and run.config is not None:  # a model file alone: what its spec names
            run.spec_names = spec_names(run.config)
            first = next(iter(run.spec_names.values()), None)
            run.class_names = list(first) if first else None
    return run


def check_run_model(model_path: Path, run_dir: Path, compiled: CompiledSpec) -> None:
    """Refuse a run folder's model file that is not the model of the run's spec (another run's
    model.keras copied in): its answers would be read with this run's task, class names and
    output activation, silently wrong. Structural (:func:`model_mismatches`): the run's own
    model retrained or replaced by one of the same spec passes."""
    from cnnspec.reporting.model_match import model_mismatches

    problems = model_mismatches(model_path, compiled.ir)
    if problems:
        raise UsageError(
            f"expected {model_path} to be the model of the run's spec ({run_dir / 'resolved.yaml'}); "
            f"received another model: {'; '.join(problems)}",
            f"put back the {MODEL_FILE} this run trained (or train the spec again); another model is "
            "used from its own run folder, or as a .keras file outside any run folder",
        )


def spec_names(config: TrainConfig) -> dict[str, list[str]]:
    """Each output's class, label or mask-class names where the spec fixes them without any
    data being read, by output name, the first target's first (as training orders its
    ``target_names``): the built-in datasets' classes, the ``shapes`` source's (its shapes for a
    class or multi-label target, its mask classes for ``mask``), a masks folder's ``classes``
    table, and ``data.classes`` where it picks classes by name (it renames nothing: the picked
    classes keep their names, in its order). A folder's, a CSV's or an npz file's own names are
    not listed: only reading the data tells them (which folders hold images, which labels the
    rows or arrays have), so an output whose names only the data tells has none here."""
    from cnnspec.analysis.classes import UnknownClass, class_indices
    from cnnspec.analysis.settings_data import fixed_class_names

    data = config.data
    outputs = [task.name for task in config.tasks]

    def fixed(target: str | None) -> list[str] | None:
        if data.kind == "shapes":
            from cnnspec.shapes import MASK_CLASSES, SHAPE_NAMES

            # (count and area are values, named by the data's loader: left to it)
            return {
                "class": list(SHAPE_NAMES),
                "multilabel": list(SHAPE_NAMES),
                "mask": list(MASK_CLASSES),
            }.get(target or "class")
        table = data.options.get("classes")
        if isinstance(table, (list, dict)) and table:  # a masks folder's classes (a table's keys)
            return [str(name) for name in table]
        return fixed_class_names(data)

    if isinstance(data.target, dict):  # one target per output (shapes)
        found = {str(out): fixed(str(kind)) for out, kind in data.target.items()}
        return {out: names for out, names in found.items() if names and out in outputs}
    if not outputs:
        return {}
    names = fixed(data.target)
    if data.classes is not None:  # (a class target alone: validate refuses it for the others)
        if names is not None:
            try:
                names = [names[label] for label in class_indices(data.classes, names, len(names))]
            except UnknownClass:  # (validate and train say so at data.classes)
                names = None
        elif all(
            isinstance(entry, str) and not entry.strip().lstrip("-").isdecimal() for entry in data.classes
        ):
            names = [str(entry) for entry in data.classes]  # names of classes the data has
    return {outputs[0]: names} if names else {}


def missing_model_error(run_dir: Path) -> UsageError:
    """The refusal of a run folder (with lock.json) that has no model.keras to load. A run that
    has not finished (no metrics.json) is sent to ``--resume``, unless a process is training it
    still (:func:`training_process`): ``--resume`` would be refused while it holds the folder,
    so that process is named and waited for. A finished one whose model file was moved or
    deleted is not: its training state is gone with its end, and ``--resume`` of it says there
    is nothing to resume (it was sent there, too, and led nowhere)."""
    if (run_dir / MODEL_FILE).is_dir():
        return UsageError(
            f"expected the model file of the run; {run_dir / MODEL_FILE} is a folder",
            f"put back the {MODEL_FILE} training wrote (a file), or train the spec again",
        )
    if (run_dir / "metrics.json").is_file():
        return UsageError(
            f"expected the model of a finished run; {MODEL_FILE} is missing from {run_dir} "
            f"(its metrics.json is there: the run finished, and the file was moved or deleted since)",
            f"put back the {MODEL_FILE} training wrote, or train the spec again "
            f"(`cnnspec report {run_dir}` shows the rest of the run without it)",
        )
    if (who := training_process(run_dir)) is not None:
        return UsageError(
            f"expected a finished run; {run_dir} is still being trained by {who}, and has no "
            f"{MODEL_FILE} yet",
            "wait for that process to end, then run this command again",
        )
    return UsageError(
        f"expected a finished run; {run_dir} has no {MODEL_FILE} yet",
        f"finish it with `cnnspec train SPEC --resume {run_dir}`",
    )


def run_spec(
    run_dir: Path, lock: dict[str, Any], *, allow_outside: bool | None = None
) -> CompiledSpec | None:
    """The run's resolved spec, compiled as training compiled it: its relative paths (data
    files, a backbone's ``spec`` and ``weights``, ``weights:``) read from the folder of the spec
    the run was trained from, not from the run folder.

    The data paths are those lock.json records (absolute, as training read them), or where the
    data was found moved with the project folder when a recorded one is gone (the data the run
    recorded, by its hash: :func:`_run_spec`; :func:`moved_data_note` says so). Every other
    relative path starts where the resolver starts it, at the folder of the file its location
    names: each location of the resolved document is moved to the spec file (found again by
    :func:`trained_spec`), so no path-valued key is left behind. When that file is not found
    any more, an error about a path says so in a note.

    Files outside the spec's folder (a backbone's spec) are read only when the current command
    allows it (``allow_outside``, else :func:`outside_allowed`), never because lock.json says
    the training was allowed: the folder opened cannot vouch for itself. A run trained with
    ``--allow-outside`` then needs it again, and the refusal says so.

    A resolved.yaml changed since training wrote it is a :func:`damaged` run file: its SHA-256
    is not the one lock.json records, or (an older cnnspec's lock.json records none) it does
    not compile (:func:`resolved_problem`). Its other errors are located in it (RUN/resolved.yaml,
    whose lines they quote), never in the user's spec file."""
    try:
        return _run_spec(Path(run_dir), lock, allow_outside)
    except _Damaged as exc:
        raise damaged(Path(run_dir) / "resolved.yaml", [str(exc)]) from None


def resolved_problem(run_dir: Path, lock: dict[str, Any]) -> str | None:
    """Why the run's resolved.yaml is damaged (:func:`run_spec` refuses it), or ``None``: it is
    the file training wrote, or absent. Without lock.json's hash of it (an older cnnspec's),
    compiling it tells; its other errors (a file outside the spec's folder, one gone) are no
    damage, and the commands that read the spec say them."""
    from cnnspec.errors import SpecError
    from cnnspec.reporting.runs import RESOLVED_HASH, resolved_changed

    problem = resolved_changed(run_dir, lock)
    if problem is not None or isinstance(lock.get(RESOLVED_HASH), str):
        return problem
    try:
        _run_spec(Path(run_dir), lock, None)
    except _Damaged as exc:
        return str(exc)
    except (SpecError, UsageError):
        return None
    return None


class _Damaged(Exception):
    """The run's resolved.yaml is not the file training wrote (the message: why)."""


def _run_spec(run_dir: Path, lock: dict[str, Any], allow_outside: bool | None) -> CompiledSpec | None:
    """:func:`run_spec`, raising :class:`_Damaged` for a damaged resolved.yaml.

    A data path lock.json records that is gone (the project folder renamed or moved) is looked
    for where the spec's path leads from where the spec (or the run folder) is now
    (:func:`_moved_data`); found and holding the data the run recorded (:func:`_same_data`),
    it is read, and the commands say so (:func:`moved_data_note`). Else the error about the
    recorded path says that it is gone and how to go on."""
    from cnnspec.errors import SpecError
    from cnnspec.reporting.runs import resolved_changed

    path = run_dir / "resolved.yaml"
    if not path.is_file():
        return None
    problem = resolved_changed(run_dir, lock)
    if problem is not None:
        raise _Damaged(problem)
    spec_file = trained_spec(run_dir, lock)
    recorded = lock.get("data") or {}
    paths = {
        key: str(recorded[lock_key])
        for key, lock_key in recorded_data_paths().items()
        if recorded.get(lock_key)
    }
    gone = {key: where for key, where in paths.items() if not exists(Path(where))}
    found = _moved_data(path, gone, lock, run_dir, spec_file) if gone else {}
    if found:
        try:
            compiled = _compiled_run_doc(path, lock, run_dir, spec_file, {**paths, **found}, allow_outside)
        except (SpecError, _Damaged):
            compiled = None
        if compiled is not None and _same_data(compiled, lock):
            return compiled
    return _compiled_run_doc(path, lock, run_dir, spec_file, paths, allow_outside, gone=gone, found=found)


def _compiled_run_doc(
    path: Path,
    lock: dict[str, Any],
    run_dir: Path,
    spec_file: Path | None,
    paths: dict[str, str],
    allow_outside: bool | None,
    *,
    gone: dict[str, str] | None = None,
    found: dict[str, str] | None = None,
) -> CompiledSpec | None:
    """The run's resolved.yaml at ``path`` compiled, its ``data.source`` paths set to ``paths``
    (key → absolute path); errors located in it. ``gone``: the recorded data paths that no
    longer exist (``found``: the ones found elsewhere, which were not the run's data), which an
    error then explains."""
    from cnnspec.analysis.passes import compile_doc
    from cnnspec.errors import Note, SpecError
    from cnnspec.reporting.runs import RESOLVED_HASH
    from cnnspec.spec.compose import load_spec

    try:
        doc = load_spec(path)
    except SpecError as exc:  # not YAML of a spec any more: cnnspec wrote one (an older run: no hash)
        if isinstance(lock.get(RESOLVED_HASH), str):  # (the file training wrote: the loader's error)
            raise
        raise _Damaged(_not_compiling(exc)) from None
    source = (doc.data.get("data") or {}).get("source")
    if isinstance(source, dict):
        for key, where in paths.items():
            if key in source:
                source[key] = where
    written = doc.file  # RUN/resolved.yaml, as load_spec names it (its text is kept under that name)
    label = _locate_in(doc, spec_file, run_dir) if spec_file is not None else written
    try:
        # (finished_run: the checks only training needs are not made, class_weight's keys: a run
        # trained before cnnspec refused a key stays usable, a resume still refuses it)
        return compile_doc(doc, path=path, allow_outside=_allowed(allow_outside), finished_run=True)
    except SpecError as exc:
        # located in the file that holds the text they quote, RUN/resolved.yaml, not in the spec
        # file whose folder its relative paths start from (the user's spec has other lines)
        exc = SpecError(_relocated(d, label, written) for d in exc.diagnostics)
        if _trained_outside(lock):  # lock.json only explains the refusal; it lifts nothing
            exc = SpecError(_retold(d) for d in exc.diagnostics)
        if gone:
            exc = SpecError(_gone_data(d, gone, found or {}, "hash") for d in exc.diagnostics)
        if (
            not isinstance(lock.get(RESOLVED_HASH), str)
            and _damage(exc)
            and (spec_file is not None or not lock.get("spec_file"))
        ):
            # an older run's lock.json records no hash of resolved.yaml: cnnspec wrote a file that
            # compiled, so one that does not (its relative paths found) was changed since
            raise _Damaged(_not_compiling(exc)) from None
        if spec_file is not None or not lock.get("spec_file"):
            raise exc from None
        note = Note(
            f"relative paths in {path} start at the folder of the spec the run was trained from "
            f"(lock.json: {lock['spec_file']}), which was not found from here"
        )
        raise SpecError(d.with_notes((note,)) for d in exc.diagnostics) from None


def _moved_data(
    path: Path, gone: dict[str, str], lock: dict[str, Any], run_dir: Path, spec_file: Path | None
) -> dict[str, str]:
    """Where each data path of ``gone`` (key → the path lock.json records, no longer there) is
    now, as far as it can be told (key → an existing path; a key not found is left out): the
    path the spec wrote, read from where the spec is now; else the recorded path's place
    beside the spec the run was trained from (lock.json's ``spec_path``), read from where the
    spec is now or from each folder above the run folder (the spec itself gone). Nothing is
    read here: :func:`_same_data` tells whether it is the run's data."""
    import os

    from cnnspec.spec.compose import load_spec

    try:
        source = (load_spec(path).data.get("data") or {}).get("source")
    except Exception:  # (a resolved.yaml that does not load: the compile says why)
        return {}
    if not isinstance(source, dict):
        return {}
    trained_from = lock.get("spec_path")
    found: dict[str, str] = {}
    for key, where in gone.items():
        if key not in source:  # (the other keys that record the same path)
            continue
        relative: list[Path] = []
        written = source.get(key)
        if isinstance(written, str) and written and not Path(written).is_absolute():
            relative.append(Path(written))
        if isinstance(trained_from, str) and trained_from:
            with contextlib.suppress(ValueError):  # (another drive)
                relative.append(Path(os.path.relpath(where, Path(trained_from).parent)))
        folders = [spec_file.parent] if spec_file is not None else []
        folders += [folder for folder in Path(run_dir).resolve().parents if folder not in folders]
        candidates = [folder / rel for rel in dict.fromkeys(relative) for folder in folders]
        here = next((c for c in candidates if exists(c)), None)
        if here is not None and os.path.normpath(here) != os.path.normpath(where):
            found[key] = str(Path(os.path.normpath(here)))
    return found


def _same_data(compiled: CompiledSpec, lock: dict[str, Any]) -> bool:
    """Whether ``compiled``'s data (its paths found elsewhere than lock.json records them) is
    the data the run recorded: an ``.npz`` file of the SHA-256 lock.json records, other sources
    (folders, CSV files) split as the run split them into files of the content hash it records,
    their names hashed as they were before the move (:func:`moved_data`)."""
    from cnnspec.errors import SpecError
    from cnnspec.fileio import sha256_file
    from cnnspec.spec.sections import recorded_seed
    from cnnspec.training.data import load_dataset

    recorded = lock.get("data") or {}
    try:
        config = run_config(compiled)
        if config.data.kind == "npz" and isinstance(recorded.get("file_sha256"), str):
            return config.data.path is not None and sha256_file(config.data.path) == recorded["file_sha256"]
        seed = recorded_seed(lock.get("seed"))
        if seed is None or not isinstance(recorded.get("content_hash"), str):
            return False  # (no split of record, or no hash: the data can't be told the run's)
        dataset = load_dataset(compiled, config, seed)
        dataset.hash_content = recorded.get("hash") == "content"
        return dataset.content_hash(moved_data(config, lock)) == recorded["content_hash"]
    except (SpecError, UsageError, OSError, ValueError):
        return False


def moved_data(config: TrainConfig, lock: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The folders the run's data was moved from, as (now, before) pairs: each data path
    ``config`` reads (a run's spec, :func:`run_spec`) that is not where lock.json records it,
    shortened by the names the two share at their ends (``/a/proj2/d.npz`` recorded as
    ``/a/proj/d.npz``: ``/a/proj2`` was ``/a/proj``), so the files of a folder or CSV moved
    with it are named as they were; ``[]``: none moved."""
    recorded = (lock or {}).get("data") or {}
    pairs: list[tuple[str, str]] = []
    for attr in ("path", "test_path", "labels_path"):
        now, before = getattr(config.data, attr, None), recorded.get(attr)
        if now is None or not isinstance(before, str) or not before or str(now) == before:
            continue
        now_parts, before_parts = list(Path(now).parts), list(Path(before).parts)
        while len(now_parts) > 1 and len(before_parts) > 1 and now_parts[-1] == before_parts[-1]:
            now_parts.pop()
            before_parts.pop()
        pair = (str(Path(*now_parts)), str(Path(*before_parts)))
        if pair not in pairs:
            pairs.append(pair)
    return pairs


def moved_data_note(config: TrainConfig, lock: dict[str, Any] | None) -> str | None:
    """The note of a run whose data was read elsewhere than lock.json records it (``None``:
    where it records it): found where the spec's path leads from where it is now, and the
    data the run recorded (:func:`_same_data`)."""
    recorded = (lock or {}).get("data") or {}
    moved = [
        (str(getattr(config.data, attr)), recorded[attr])
        for attr in ("path", "test_path", "labels_path")
        if getattr(config.data, attr, None) is not None
        and isinstance(recorded.get(attr), str)
        and str(getattr(config.data, attr)) != recorded[attr]
    ]
    if not moved:
        return None
    read = "; ".join(f"read {now}, recorded as {before}" for now, before in moved)
    return f"data moved: {read} (lock.json; the same data by its recorded hash)"


def gone_data_error(exc: SpecError, run: Run) -> SpecError:
    """``exc`` (an error loading the run's own data) with what to do about a data path of
    lock.json that is gone, on the error about it: put the data back, or pass ``--data`` (a
    path found in its stead that held other data is named in a note); unchanged where none is
    gone. The spec compiles without its data (:func:`run_spec` keeps the recorded path where
    the data was not found moved): the commands that read no data still work."""
    from cnnspec.errors import SpecError

    if run.run_dir is None or not run.lock:
        return exc
    recorded = run.lock.get("data") or {}
    gone = {
        key: str(recorded[name])
        for key, name in recorded_data_paths().items()
        if recorded.get(name) and not exists(Path(str(recorded[name])))
    }
    if not gone:
        return exc
    spec_file = trained_spec(run.run_dir, run.lock)
    found = _moved_data(run.run_dir / "resolved.yaml", gone, run.lock, run.run_dir, spec_file)
    if recorded.get("kind") == "npz" and recorded.get("file_sha256"):
        hashed = "SHA-256"
    elif recorded.get("hash") == "content":
        hashed = "content hash"
    else:  # (a folder's or CSV's files: a copy has new modification times, not a hash of the run's)
        hashed = "content hash (of its files' names, sizes and modification times: a copy has new times)"
    return SpecError(_gone_data(d, gone, found, hashed) for d in exc.diagnostics)


def _gone_data(
    diagnostic: Diagnostic, gone: dict[str, str], found: dict[str, str], hashed: str
) -> Diagnostic:
    """An error about a recorded data path that is gone, saying so and how to go on (``found``:
    the paths found in its stead, which held other data by the ``hashed`` lock.json records)."""
    import dataclasses

    from cnnspec.errors import Note

    key = next((k for k in gone if diagnostic.path == f"data.source.{k}"), None)
    if key is None:
        return diagnostic
    notes = []
    if key in found:
        notes.append(
            Note(
                f"{found[key]}, where the spec's path leads from here, is not the data the run "
                f"trained on: its {hashed} is not the one lock.json records"
            )
        )
    moved = dataclasses.replace(
        diagnostic,
        hint=f"the run read its data from {gone[key]} (lock.json), which is gone: put it back there, "
        "or pass --data SOURCE to use other data",
    )
    return moved.with_notes(notes) if notes else moved


def _trained_outside(lock: dict[str, Any]) -> bool:
    """Whether lock.json says the run was trained with ``--allow-outside`` (for a hint only)."""
    command = lock.get("command")
    return isinstance(command, list) and "--allow-outside" in command


def _retold(diagnostic: Diagnostic) -> Diagnostic:
    """An outside-the-folder refusal of a run's spec, with what to do about it here."""
    import dataclasses

    if diagnostic.code != "outside":
        return diagnostic
    return dataclasses.replace(
        diagnostic,
        hint="the run was trained with --allow-outside; pass --allow-outside to this command too "
        "if you trust the file",
    )


def recorded_data_paths() -> dict[str, str]:
    """Each path-valued key of a ``data.source`` mapping → the lock.json ``data`` key that
    records its absolute path (:meth:`~cnnspec.analysis.settings_types.DataConfig.describe`)."""
    from cnnspec.analysis.settings_types import IMAGE_TARGET_SOURCES

    return {
        "npz": "path",
        "directory": "path",
        "csv": "path",
        "images": "path",
        "test_directory": "test_path",
        "test_csv": "test_path",
        **dict.fromkeys(IMAGE_TARGET_SOURCES, "labels_path"),  # masks, labels, values
    }


def trained_spec(run_dir: Path, lock: dict[str, Any]) -> Path | None:
    """The spec file the run was trained from, found again (``None``: not found).

    lock.json's ``spec_path`` is where it was; an older lock.json's ``spec_file`` names it as
    the command line did, relative to the working directory of the training, which is not
    recorded: it is looked for as an absolute path,
    from this working directory and from each folder above the run folder (``cnnspec train
    a/spec.yaml --out runs/x`` from one folder). A file whose text is the run's spec.yaml is
    taken first; else the first that exists (the spec was edited since)."""
    from cnnspec.spec.zoo import is_zoo_ref

    recorded = lock.get("spec_path")  # absolute, where lock.json records it
    if isinstance(recorded, str) and recorded and is_file(Path(recorded)):
        return Path(recorded)
    named = lock.get("spec_file")
    if not isinstance(named, str) or not named.strip() or named.startswith("<") or is_zoo_ref(named):
        return None
    try:
        file = user_path(named)
        folders = [] if file.is_absolute() else [Path.cwd(), *Path(run_dir).resolve().parents]
    except (OSError, RuntimeError, ValueError):  # no home folder, a symlink loop, a NUL
        return None
    candidates = [folder / file for folder in folders] if folders else [file]
    existing = [c for c in dict.fromkeys(candidates) if is_file(c)]
    copy = _read(Path(run_dir) / "spec.yaml")
    same = [c for c in existing if copy is not None and _read(c) == copy]
    found = (same or existing or [None])[0]
    return found.resolve() if found is not None else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _damage(exc: Exception) -> bool:
    """Whether a run's resolved.yaml that failed to compile says it was changed: an error that
    is not the refusal of a file outside the spec's folder (which the command's
    ``--allow-outside`` lifts, the file being as it was)."""
    diagnostics = getattr(exc, "diagnostics", [])
    return any(d.severity == "error" and d.code != "outside" for d in diagnostics)


def _not_compiling(exc: Exception) -> str:
    """The damaged-file problem of a resolved.yaml that does not compile: its first error."""
    diagnostics = [d for d in getattr(exc, "diagnostics", []) if d.severity == "error"]
    if not diagnostics:
        return f"expected a spec that compiles, as training wrote it; {exc}"
    first = diagnostics[0]
    where = "".join(f"{part}: " for part in (first.loc, first.path) if part)
    return f"expected a spec that compiles, as training wrote it; {where}{first.message}"


def _relocated(diagnostic: Diagnostic, label: str, file: str) -> Diagnostic:
    """``diagnostic`` with its locations (and its notes') in ``label`` moved to ``file``."""
    import dataclasses

    def moved(loc: Loc | None) -> Loc | None:
        return dataclasses.replace(loc, file=file) if loc is not None and loc.file == label else loc

    notes = tuple(dataclasses.replace(n, loc=moved(n.loc)) for n in diagnostic.notes)
    return dataclasses.replace(diagnostic, loc=moved(diagnostic.loc), notes=notes)


def _locate_in(doc: SourceDoc, spec_file: Path, run_dir: Path) -> str:
    """Move every location of ``doc`` (the run's resolved.yaml) into ``spec_file``'s folder,
    under a name that says what it is: the resolver reads a relative path from the folder of
    the file its location names. The text is still resolved.yaml's (diagnostics quote it, and
    :func:`run_spec` moves their locations back to it). Returns that name."""
    import dataclasses

    from cnnspec.spec.loader import SOURCE_TEXTS

    old = doc.file
    label = f"{spec_file} (resolved in {Path(run_dir).resolve().name})"
    SOURCE_TEXTS[label] = SOURCE_TEXTS.get(old, "")
    doc.file = label
    for table in (doc.locs, doc.key_locs):
        for key, loc in table.items():
            if loc.file == old:
                table[key] = dataclasses.replace(loc, file=label)
    return label


def input_shape(model: Any) -> tuple[int, ...]:
    """The model's sample shape (without the batch axis); an export record's ``sample_shape``."""
    if hasattr(model, "sample_shape"):
        return tuple(int(d) for d in model.sample_shape)
    shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise UsageError(f"expected a model with a fixed input shape; received {(None, *shape)}")
    return tuple(int(d) for d in shape)


def model_output_kind(model: Any, name: str = "model", path: Path | None = None) -> OutputKind:
    """For a model without a spec: how to read its first output, as predict, evaluate and
    export read it (:func:`model_tasks`: each output's task from its shape, activation and the
    loss its file ``path`` records), not from the last layer (another output of a multi-output
    model, a ``Softmax`` layer without an ``activation`` key, a regression head's linear unit).
    A :class:`UsageError` asking for ``--spec`` where the task rules cannot tell."""
    first = model_tasks(model, name, path)[0]
    return OutputKind(binary=first.binary, from_logits=first.loss.from_logits)


def layer_kind(layer: Any) -> LayerKind | None:
    """The registry's kind of a Keras layer (``None`` for classes cnnspec does not build)."""
    return kind_of_keras_class(type(layer).__name__)


def rescales_itself(model: Any) -> bool:
    """Whether the model rescales the pixel values itself: every path from its input meets a
    ``Rescaling`` before any layer with weights, by the rule
    :func:`~cnnspec.analysis.pixel_scaling.model_scales_input` reads a spec with
    (:func:`~cnnspec.analysis.pixel_scaling.scales_every_path`), on the model's graph: a nested
    model (a preprocessing ``Sequential`` inside, a keras.applications backbone that rescales
    its own input) scales where its own graph does, random augmentation layers pass the pixels
    on. The order of ``model.layers`` never decides: a branch that convolves the raw input
    sees unscaled pixels wherever Keras lists it."""
    from cnnspec.analysis.pixel_scaling import PixelRole, scales_every_path

    graph = _layer_graph(model)
    if graph is None:
        return False

    def role(layer: Any) -> PixelRole:
        if layer is _INPUT or type(layer).__name__ == "InputLayer":
            return "input"
        if _is_model(layer):  # a nested model: what its own graph does to the pixels
            if rescales_itself(layer):
                return "scales"
            return "weights" if getattr(layer, "weights", None) else "passes"
        kind = layer_kind(layer)
        if kind is not None and kind.value_range == "affine":
            return "scales"
        # (an op of a functional graph that is no layer, keras.ops.add …: no weights)
        return "weights" if getattr(layer, "weights", None) else "passes"

    outputs, parents = graph
    return scales_every_path(outputs, parents, role)


#: The model input of a graph read from a layer list (:func:`_layer_graph`): the first layer's
#: parent.
_INPUT = object()


def _layer_graph(model: Any) -> tuple[list[Any], Any] | None:
    """``model``'s layer graph as :func:`~cnnspec.analysis.pixel_scaling.scales_every_path` walks
    it: its output layers, and a function giving the layers that feed a layer (read from the
    tensors of the layer's calls, ``_keras_history``). A model whose graph cannot be read
    (never called) is read as the chain of its layers, in order; ``None`` without layers."""
    try:
        tensors = list(model.outputs or [])
    except (AttributeError, ValueError):
        tensors = []
    outputs = [history[0] for t in tensors if (history := getattr(t, "_keras_history", None))]
    if outputs and len(outputs) == len(tensors):

        def parents(layer: Any) -> list[Any]:
            found = []
            for node in getattr(layer, "_inbound_nodes", None) or []:
                for tensor in getattr(node, "input_tensors", None) or []:
                    history = getattr(tensor, "_keras_history", None)
                    if history:
                        found.append(history[0])
            return found

        return outputs, parents
    layers = list(getattr(model, "layers", None) or [])
    if not layers:
        return None
    before = {id(layer): layers[index - 1] if index else _INPUT for index, layer in enumerate(layers)}
    return [layers[-1]], lambda layer: [before[id(layer)]] if id(layer) in before else []


def conv_layers(model: Any) -> list[Any]:
    """The model's 2-D convolutions, in order."""
    return [layer for layer in all_layers(model) if type(layer).__name__ in CONV_CLASSES]


def find_layer(model: Any, name: str, choices: list[str], what: str) -> Any:
    """The layer called ``name``; an unknown name lists the valid ones. A layer inside a nested
    model (``keras.applications`` called as one layer) is not one: the hint says how to reach it."""
    if name not in choices:
        listing = ", ".join(choices[:40]) + (" …" if len(choices) > 40 else "")
        hint = did_you_mean(name, choices)
        inside = _nested_holding(model, name)
        if inside is not None:
            hint = (
                f"{name!r} is a layer of the nested model {inside!r}, which is one layer here; "
                f"`cnnspec import MODEL.keras -o m.yaml --weights` writes its layers in line, and "
                "`cnnspec build m.yaml -o flat.keras` makes a model file that has them (named as the "
                "spec names them)"
            )
        raise UsageError(
            f"expected the name of a {what}; received {name!r}. Valid: {listing or 'none'}",
            hint,
        )
    return model.get_layer(name)


def _nested_holding(model: Any, name: str) -> str | None:
    """The name of the nested model (at any depth) that has a layer ``name``, or None."""
    for layer in getattr(model, "layers", []):
        inner = getattr(layer, "layers", None)
        if not inner:
            continue
        if any(getattr(each, "name", None) == name for each in inner) or _nested_holding(layer, name):
            return str(layer.name)
    return None


# -- outputs -------------------------------------------------------------------------------------
def probabilities(outputs: np.ndarray, kind: OutputKind) -> np.ndarray:
    """Class probabilities (n, classes) from raw model outputs."""
    out = np.asarray(outputs, dtype="float64")
    if kind.binary:
        p = label_probabilities(out.reshape(-1), kind.from_logits)
        return np.stack([1.0 - p, p], axis=1)
    out = out.reshape(len(out), -1)
    return softmax(out) if kind.from_logits else out


def softmax(logits: Any) -> np.ndarray:
    """The softmax of ``logits`` over their last axis (a classifier's classes, a segmentation's
    classes per pixel), in float64."""
    raw = np.asarray(logits, dtype="float64")
    shifted = np.exp(raw - raw.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def label_probabilities(outputs: Any, from_logits: bool) -> np.ndarray:
    """The probabilities of sigmoid units (a multi-label output's labels, one binary unit):
    the sigmoid of logits, else the outputs as they are."""
    raw = np.asarray(outputs, dtype="float64")
    return 1.0 / (1.0 + np.exp(-raw)) if from_logits else raw


def label_answers(model: Any, data: TestData, task: Any) -> tuple[np.ndarray, np.ndarray]:
    """A single multi-label output's label probabilities (n, labels) for every image of
    ``data``, and their 0/1 targets."""
    from cnnspec.training.task_results import targets_by_name

    raw = predict(model, data.x, data.settings.rescale, OutputKind())  # (the outputs as they are)
    truth = targets_by_name(data.config, data.y)[task.name]
    return label_probabilities(raw, task.loss.from_logits), np.asarray(truth)


def map_answers(model: Any, data: TestData, task: Any) -> tuple[np.ndarray, np.ndarray]:
    """A single segmentation output's class probability maps (n, height, width, classes; a
    1-channel sigmoid map's probability) for every image of ``data``, and their masks."""
    from cnnspec.reporting.tta import as_probabilities
    from cnnspec.training.task_results import targets_by_name

    raw = predict(model, data.x, data.settings.rescale, OutputKind())  # (each image's map, flat)
    maps = np.asarray(raw, dtype="float64").reshape((len(raw), *task.shape))
    truth = targets_by_name(data.config, data.y)[task.name]
    return as_probabilities(maps, task), np.asarray(truth)


def predict(model: Any, x: np.ndarray | ImageFiles, rescale: float | None, kind: OutputKind) -> np.ndarray:
    """Class probabilities for stored-format images (scaled like the pipeline); image files
    (a streamed source) are decoded a chunk at a time, never all at once."""
    from cnnspec.training.filelist import ImageFiles

    if isinstance(x, ImageFiles) and len(x) > PREDICT_CHUNK:
        parts = [
            predict(model, x[i : i + PREDICT_CHUNK], rescale, kind) for i in range(0, len(x), PREDICT_CHUNK)
        ]
        return np.concatenate(parts)
    batch = np.asarray(x, dtype="float32")
    if rescale is not None:
        batch = batch * np.float32(rescale)
    outputs = model.predict(batch, batch_size=64, verbose=0)
    if isinstance(outputs, list):
        outputs = outputs[0]
    return probabilities(outputs, kind)


# -- data ----------------------------------------------------------------------------------------
@dataclass
class TestData:
    """A test split in stored format (image files for a streamed source), with how training
    scaled it."""

    x: np.ndarray | ImageFiles
    y: np.ndarray
    class_names: list[str]
    settings: PipelineSettings
    compiled: CompiledSpec
    config: TrainConfig
    source: dict[str, Any]
    content_hash: str | None = None
    matches_run: bool | None = None
    notes: list[str] = field(default_factory=list)
    #: each model output's class, label or value names, by output name (:func:`test_split`)
    output_names: dict[str, list[str]] = field(default_factory=dict)
    #: ``--data``: how many of its images are the run's own, per split of the run (``None``:
    #: the run's data, or it can't be told: :func:`~cnnspec.reporting.own_data.own_images`)
    own: OwnImages | None = None


#: The sources generated from settings (``{shapes: {images, seed, noise, …}}``): the same
#: test images need the run's settings as well as its seed, and ``--data shapes`` takes them
#: from the run's spec (:func:`parse_source`) or an export's record (``split.options``).
OPTIONED_SOURCES = ("shapes",)


def source_options(compiled: CompiledSpec | None) -> dict[str, Any] | None:
    """The settings of the generated source a spec trains on (:data:`OPTIONED_SOURCES`), as its
    ``data.source`` gives them (``{}`` for the bare name: the defaults); ``None`` for another
    source or no spec."""
    source = (compiled.data or {}).get("source") if compiled is not None else None
    if source in OPTIONED_SOURCES:
        return {}
    if isinstance(source, dict) and len(source) == 1:
        ((kind, options),) = source.items()
        if kind in OPTIONED_SOURCES and isinstance(options, dict):
            return copy.deepcopy(options)
    return None


def parse_source(text: str, base: dict[str, Any] | None = None) -> str | dict[str, Any]:
    """``--data``: a named source, an ``.npz`` file, or a folder of class sub-folders.

    ``base``: the run's own ``data.source`` mapping. ``--data shapes`` on a run trained on a
    ``shapes`` mapping keeps its generator settings (above all its ``target``: a run that
    learnt areas or several outputs' targets is scored on them, not on the default target of
    its first output's task; and its image count and seed)."""
    _refuse_empty_source(text)
    if text == "shapes" and base is not None and isinstance(base.get("shapes"), dict):
        return {"shapes": dict(base["shapes"])}
    if text in NAMED_SOURCES:
        return text
    path = user_path(text)
    refuse_unreadable(path, "--data to name a source, a file or a folder")
    if path.suffix.lower() == ".npz":
        if not path.is_file():
            raise UsageError(f"expected an .npz file for --data; {path} does not exist")
        return {"npz": str(path.resolve())}
    if path.suffix.lower() == ".csv":  # images and labels; every row is a test image
        if not path.is_file():
            raise UsageError(f"expected a CSV file for --data; {path} does not exist")
        source_csv: dict[str, Any] = {"csv": str(path.resolve()), "test_csv": str(path.resolve())}
        for key in ("image_size", "color_mode", "image_column", "label_column"):
            if base and key in base:
                source_csv[key] = base[key]
        return source_csv
    if path.is_dir():
        folder = str(path.resolve())
        source: dict[str, Any] = {"directory": folder, "test_directory": folder}
        for key in ("image_size", "color_mode"):
            if base and key in base:
                source[key] = base[key]
        return source
    hint = did_you_mean(text, NAMED_SOURCES)
    raise UsageError(
        f"expected --data to be {', '.join(NAMED_SOURCES)}, an .npz file or a folder of class "
        f"sub-folders; received {text!r}" + ("" if path.exists() or hint else " (no such file or folder)"),
        hint,
    )


#: What ``y_test`` holds for a task's output in a ``--data`` ``.npz`` (README's table of sources)
_NPZ_TARGETS = {
    "multilabel": "integer 0/1 labels (n, K)",
    "regression": "float values",
    "segmentation": "integer masks (n, H, W)",
}


def class_only_source(source: str | dict[str, Any]) -> str | None:
    """What ``source`` (:func:`parse_source`'s) is, said for a message, when it has class labels
    only (a dataset other than shapes, a folder of class folders, a CSV of labels); ``None``
    for a source that can hold other targets (shapes, an ``.npz`` file)."""
    if isinstance(source, str):
        return f"the dataset {source}" if source in CLASS_ONLY_SOURCES else None
    if "csv" in source:
        return f"the CSV {Path(source['csv']).name}"
    if "directory" in source:
        return f"the folder {Path(source['directory']).name}"
    return None


def refuse_class_only_data(tasks: Sequence[OutputTask], source: str | dict[str, Any]) -> None:
    """A UsageError when ``--data`` is a CSV, a folder or a dataset of class labels (``source``:
    :func:`parse_source`'s) for a run with an output that is no classifier (``tasks``): they are
    read as class labels (a CSV's ``label`` column, the class folders), so multi-label,
    regression or segmentation targets cannot come from them. Said first, with the ``.npz``
    that can carry them: the errors of reading it as class labels (a missing ``label`` column,
    "the data has class targets") led to renaming columns that were right."""
    given = class_only_source(source)
    others = [out for out in tasks if out.task != "classification"]
    if given is None or not others:
        return
    out = others[0]
    key = "y_test" if len(tasks) == 1 else "y_test_<output id> for each output"
    raise UsageError(
        f"expected --data to be an .npz file of test images and targets for the {out.task} output "
        f"{out.name}; received {given}, which holds class labels only",
        f"save the test images as x_test and their targets as {key} ({out.task}: "
        f"{_NPZ_TARGETS.get(out.task, 'its targets')}) in an .npz file and pass --data FILE.npz",
    )


def _refuse_empty_source(text: str) -> None:
    """An empty ``--data`` (an unset shell variable) is refused: as a path it is the whole
    working folder, walked as a dataset."""
    if not text.strip():
        raise UsageError(
            "expected --data SOURCE; received an empty string",
            f"pass {', '.join(NAMED_SOURCES)}, an .npz file, a CSV or a folder of class sub-folders",
        )


def with_source(compiled: CompiledSpec, source: str | dict[str, Any]) -> CompiledSpec:
    """The spec with ``data.source`` replaced (errors about it are located at ``<--data>``)."""
    from cnnspec.analysis.passes import compile_doc
    from cnnspec.spec.loader import SourceDoc

    data = copy.deepcopy(compiled.doc.data)
    section = dict(data.get("data") or {})
    section["source"] = source
    splits_itself = isinstance(source, dict) and (
        ("directory" in source and "test_directory" not in source)
        or ("csv" in source and "test_csv" not in source)
    )
    if source not in ("digits", "shapes") and not splits_itself:
        section.pop("test_split", None)  # the source has its own test set
    data["data"] = section
    prefix = ("data", "source")
    locs = {p: loc for p, loc in compiled.doc.locs.items() if p[:2] != prefix}
    key_locs = {p: loc for p, loc in compiled.doc.key_locs.items() if p[:2] != prefix}
    locs[prefix] = DATA_LOC
    if isinstance(source, dict):
        for key in source:
            locs[(*prefix, key)] = DATA_LOC
    doc = SourceDoc(
        compiled.doc.file,
        data,
        locs,
        key_locs,
        zoo_variant=compiled.doc.zoo_variant,
        variant=compiled.doc.variant,
    )
    # (a finished run's spec stays one: --data is scored, never trained on)
    return compile_doc(doc, path=compiled.path, finished_run=compiled.finished_run)


#: The largest ``config.json`` read from a model archive for its recorded losses (a model's
#: config is kilobytes; a hostile archive must not make this read gigabytes)
_MAX_ARCHIVE_CONFIG = 16 * 1024 * 1024
#: What a refusal to guess a model's task tells the user to do.
TASK_SPEC_HINT = (
    "pass --spec SPEC, a spec that describes the model (its outputs and training.task or "
    "training.outputs.NAME.task), or use the model in its run folder"
)


@dataclass(frozen=True)
class ModelOutput:
    """One output of a model without a spec, as the task rules read an output: its name (the
    Keras output name), shape without the batch axis, activation and the regression loss the
    model file records for it (``None``: none recorded, or another loss). ``unread_loss``: the
    Keras name of a recorded loss that is neither a classification nor a regression loss
    cnnspec knows (:func:`~cnnspec.analysis.tasks.keras_loss_task`): no task is guessed for
    such an output (``None``: the loss, if any, says a task). ``classification_loss``: the Keras
    name of a recorded classification loss, and ``rebuilt_loss`` the stand-in spec's
    ``training.loss`` for it where cnnspec builds it as Keras does
    (:func:`~cnnspec.analysis.tasks.keras_classification_loss`; ``None``: crossentropy stands in).
    """

    name: str
    shape: tuple[int | None, ...]
    activation: str | None
    loss: str | None = None
    unread_loss: str | None = None
    classification_loss: str | None = None
    rebuilt_loss: str | dict[str, Any] | None = None


def archive_config(path: Path) -> dict[str, Any]:
    """The ``config.json`` of the Keras archive ``path`` as a dict (``{}`` when it cannot be
    read): read as JSON from the zip, no TensorFlow, no layer is built."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("config.json")
            if info.file_size > _MAX_ARCHIVE_CONFIG:
                return {}
            config = json.loads(archive.read(info))
    except (OSError, KeyError, ValueError, RecursionError, zipfile.BadZipFile):
        return {}
    return config if isinstance(config, dict) else {}


def recorded_loss_entries(config: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The saved loss entry (a name or a serialized Keras loss, as ``compile_config`` holds it;
    ``None``: none) a model archive's ``config`` records for each output in ``names`` (the
    outputs' layer names, ``output_names``). Keras saves the loss of a compiled model: one
    for every output, a dict by output name, or a list in order.

    A model whose outputs are a dict (``keras.Model(i, {"zeta": a, "alpha": b})``) is scored
    by the dict's keys, which Keras matches to the dict's outputs and never to layer names:
    every key is translated through the functional config's ``output_layers``, which maps it
    to its ``[layer, node, tensor]``. Read by key, a ``Dense(1)`` head compiled with ``mse``
    found no loss (a binary classifier), and a key that is another output's layer name
    (``{"b": Dense(name="a"), "a": Dense(name="b")}``) gave each output the other's loss."""
    loss = saved_loss(config)
    if losses_by_name(loss):
        inner = config.get("config")
        wanted = inner.get("output_layers") if isinstance(inner, dict) else None
        if isinstance(wanted, dict):  # dict outputs: the loss's keys are the dict's keys
            by_layer = {
                where[0]: loss[key]
                for key, where in wanted.items()
                if key in loss and isinstance(where, list) and where and isinstance(where[0], str)
            }
        else:  # list outputs: the loss's keys are the output names
            by_layer = dict(loss)
        return {name: by_layer.get(name) for name in names}
    if isinstance(loss, list):
        return {name: loss[index] if index < len(loss) else None for index, name in enumerate(names)}
    return dict.fromkeys(names, loss)


def _layer_activation(layer: Any, inputs: list[tuple[Any, ...]]) -> str | None:
    """The activation a Keras layer ends with (``None`` for a linear one or a layer without an
    activation): its ``activation`` setting, else what its registry kind's
    :meth:`~cnnspec.layers.registry.LayerKind.output_activation` says of it (a ``Softmax``
    layer over the last axis gives ``softmax``); ``inputs``: its input shapes without the
    batch axis."""
    config = layer.get_config() if hasattr(layer, "get_config") else {}
    activation = config.get("activation") if isinstance(config, dict) else None
    if isinstance(activation, dict):  # a serialized activation function
        activation = activation.get("config", {}).get("name") or activation.get("class_name")
    if isinstance(activation, str) and activation not in ("linear", ""):
        return activation
    kind = layer_kind(layer)
    if kind is None or not isinstance(config, dict):
        return None
    # (the Keras config holds the kind's own settings under their names: a Softmax's axis)
    return kind.output_activation({**config, "activation": None}, inputs)


def _innermost(tensor: Any) -> Any:
    """The tensor a layer computes for the model output ``tensor``, looked for inside nested
    models: a ``Sequential`` (or functional model) used as a layer is the tensor's
    ``_keras_history`` layer, and has no ``activation`` of its own, so its softmax was read as
    logits and applied a second time; its own output tensor (of the output the tensor is,
    recursively) says. ``None`` for a tensor no layer made."""
    history = getattr(tensor, "_keras_history", None)
    for _ in range(64):  # nested models nest finitely; the bound only guards a cyclic oddity
        if not history:
            return None
        layer = history[0]
        inner = getattr(layer, "outputs", None) if _is_model(layer) else None
        if not inner:
            return tensor
        index = history[2] if len(history) > 2 and isinstance(history[2], int) else 0
        tensor = inner[index] if 0 <= index < len(inner) else inner[-1]
        history = getattr(tensor, "_keras_history", None)
    return tensor


def _input_tensor(tensor: Any) -> Any:
    """The first input of the layer call that computed ``tensor`` (``None``: none known), in
    the graph the tensor belongs to (:func:`_innermost` of it, so that a nested model's output
    steps back into the nested model)."""
    tensor = _innermost(tensor)
    history = getattr(tensor, "_keras_history", None) if tensor is not None else None
    if not history:
        return None
    nodes = getattr(history[0], "_inbound_nodes", None) or []
    index = history[1] if len(history) > 1 and isinstance(history[1], int) else 0
    inputs = getattr(nodes[index], "input_tensors", None) if 0 <= index < len(nodes) else None
    return inputs[0] if inputs else None


def _tensor_layer(tensor: Any) -> Any:
    """The layer that computes ``tensor`` (inside nested models: :func:`_innermost`)."""
    inner = _innermost(tensor)
    history = getattr(inner, "_keras_history", None) if inner is not None else None
    return history[0] if history else None


def output_activation_of(tensor: Any) -> str | None:
    """The activation a model output ``tensor`` ends with, by the rule a spec's outputs are read
    by (:func:`~cnnspec.analysis.output_activation.trace_activation`): its layer's, or, through layers
    whose registry kind passes the activation on (a dropout, flatten or reshape after a softmax
    dense), the activation of the layer before them. Read at the last layer alone, a softmax
    followed by a flatten was taken for logits and predict applied softmax a second time."""
    from cnnspec.analysis.output_activation import trace_activation

    def own(step: Any) -> str | None:
        layer = _tensor_layer(step)
        if layer is None:
            return None
        source = _input_tensor(step)
        shapes = [tuple(source.shape[1:])] if getattr(source, "shape", None) is not None else []
        return _layer_activation(layer, shapes)

    def kind(step: Any) -> LayerKind | None:
        layer = _tensor_layer(step)
        return layer_kind(layer) if layer is not None else None

    def last_axis(step: Any) -> int | None:
        shape = getattr(_innermost(step), "shape", None)
        return shape[-1] if shape else None

    return trace_activation(tensor, own, kind, _input_tensor, last_axis)


def _is_model(layer: Any) -> bool:
    """Whether ``layer`` is a Keras model (a ``Sequential`` or functional model used as a
    layer), by its class's ancestry: no Keras import here, and a plain layer's ``outputs``
    attribute, where it has one, is not a graph to descend into."""
    return any(
        klass.__name__ in ("Model", "Functional", "Sequential") and klass.__module__.startswith("keras")
        for klass in type(layer).__mro__
    )


def model_outputs(model: Any, path: Path | None = None) -> list[ModelOutput]:
    """Each output of a Keras model, as :func:`spec_for_model` and :func:`model_tasks` read it
    (``path``: the model's file, whose recorded losses tell a regression head; the activation
    is the one the output ends with: :func:`output_activation_of`)."""
    layers = [getattr(t, "_keras_history", (None,))[0] for t in model.outputs]
    names = list(getattr(model, "output_names", None) or [])
    if len(names) != len(layers):
        names = [getattr(layer, "name", f"output_{i}") for i, layer in enumerate(layers)]
    entries = recorded_loss_entries(archive_config(path), names) if path is not None else {}
    outputs: list[ModelOutput] = []
    for name, tensor in zip(names, model.outputs):
        entry = entries.get(name)
        # a loss no task rule reads (a custom one): named, so the refusal can say which
        unread = None
        task = keras_loss_task(entry)
        if task == "unknown":  # (a string as the file spells it)
            unread = entry if isinstance(entry, str) else keras_loss_name(entry) or repr(entry)[:60]
        outputs.append(
            ModelOutput(
                name,
                tuple(None if d is None else int(d) for d in tensor.shape[1:]),
                output_activation_of(tensor),
                keras_regression_loss(entry),
                unread,
                keras_loss_name(entry) if task == "classification" else None,
                keras_classification_loss(entry),
            )
        )
    return outputs


def archive_single_classifier(path: Path) -> bool:
    """Whether the Keras archive ``path`` is plainly a single classifier, told from its
    ``config.json`` alone (no TensorFlow: predict's export path, for a record written before
    records said the task, ``output.task``): one output, a dense layer
    whose units, activation and recorded loss the task rules
    (:func:`~cnnspec.analysis.tasks.infer_task`) read as a classifier. ``False`` where the file
    does not say (another output layer: its shape needs Keras to tell)."""
    from cnnspec.analysis.tasks import infer_task

    config = archive_config(path)
    inner = config.get("config") if isinstance(config.get("config"), dict) else {}
    layers = [layer for layer in inner.get("layers") or [] if isinstance(layer, dict)]
    wanted = inner.get("output_layers")
    if isinstance(wanted, list) and wanted and not isinstance(wanted[0], list):
        wanted = [wanted]  # one output is saved as [name, node, tensor]
    if config.get("class_name") == "Sequential" and layers:
        output = layers[-1]
    elif isinstance(wanted, list) and len(wanted) == 1 and isinstance(wanted[0], list) and wanted[0]:
        output = next((lay for lay in layers if (lay.get("config") or {}).get("name") == wanted[0][0]), {})
    else:
        return False
    params = output.get("config") if isinstance(output.get("config"), dict) else {}
    units = params.get("units")
    if output.get("class_name") != "Dense" or not isinstance(units, int):
        return False
    activation = params.get("activation")
    activation = activation if isinstance(activation, str) and activation != "linear" else None
    name = str(params.get("name"))
    entry = recorded_loss_entries(config, [name])[name]
    if keras_loss_task(entry) == "unknown":
        return False  # a loss no task rule reads: no classifier is guessed (model_tasks refuses)
    return infer_task((units,), activation, keras_regression_loss(entry)) == "classification"


def stand_in_ids(outputs: list[ModelOutput]) -> list[str]:
    """The ids of the outputs' heads in the stand-in spec (:func:`_stand_in_text`), in order:
    an output's Keras name where cnnspec's id rules take it, else a made-up ``out_N`` (``N``
    its position; ``out_N_2`` … where a Keras name holds that). A Keras name is no id when it
    is not an identifier (``my.out-1``), is ``input`` (the model input's) or repeats one (an
    output listed twice, ``keras.Model(i, [d, d])``): used as ids, such names made the model
    unreadable without ``--spec``. Names that are ids stay: a multi-output model's losses,
    metrics and ``.npz`` targets (``y_test_NAME``) are keyed by them, as the model's are.
    :func:`model_tasks` maps the ids back to the Keras names."""
    from cnnspec.ir import INPUT
    from cnnspec.spec.scope import IDENTIFIER, unique_id

    def usable(name: str) -> bool:
        return bool(IDENTIFIER.fullmatch(name)) and name.isascii() and name != INPUT

    # every usable name is reserved before any made-up id is chosen, so none takes one
    taken = {out.name for out in outputs if usable(out.name)}
    ids: list[str] = []
    for position, out in enumerate(outputs):
        if usable(out.name) and out.name not in ids:
            ids.append(out.name)
            continue
        # not an id, or a repeat (its first use keeps the name): a made-up id
        ids.append(unique_id(f"out_{position}", taken | set(ids)))
    return ids


#: The data source of a stand-in spec (:func:`_stand_in_text`): an ``.npz`` file without a
#: ``target``, the one source whose spec says nothing of the data (its targets, the images'
#: size and channels are the file's alone, checked when it is read), so that no source's
#: limits are put on the model's input: ``shapes`` (whose generator draws 1- or 3-channel
#: images of at least 8×8 pixels) refused an RGBA or 2-channel model, a 7×7 input and a
#: 16×1 segmentation map as "cannot tell the task". It is never read: the data of a model
#: without a spec is ``--data`` (:func:`spec_for_model` replaces it).
STAND_IN_SOURCE = {"npz": "<the model's data>.npz"}


def stand_in_name(name: str) -> str:
    """The spec name of a model file's stand-in spec, from its file name: a valid identifier
    (``[A-Za-z_][A-Za-z0-9_]*``) whatever the file is called. ``my-model.keras``,
    ``1model.keras`` and ``modèle.keras`` were refused ("cannot tell the task of the model's
    outputs without a spec (name: expected an identifier …)"): the clean-up kept ``-``, a
    letter outside ASCII and a leading digit."""
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not re.search(r"[A-Za-z0-9]", cleaned):  # nothing of the name is left: a plain one
        return "model"
    return f"_{cleaned}" if cleaned[0].isdigit() else cleaned


def _stand_in_text(
    name: str, sample: tuple[int, ...], outputs: list[ModelOutput], scales: bool, rebuild: bool = True
) -> str:
    """The stand-in spec of a model without one: a head per output with the output's id
    (:func:`stand_in_ids`), shape and activation (a 1×1 convolution for a map, a dense layer
    for a vector) and the loss its file records (a classification loss only with ``rebuild``,
    where cnnspec builds it: :attr:`ModelOutput.rebuilt_loss`), so the task rules
    (:func:`~cnnspec.analysis.tasks.infer_task` and the output checks) decide each output's
    task as they decide a spec's. A :class:`UsageError` naming an output (by its Keras name)
    whose shape is no task's."""
    from cnnspec.spec.dumping import dump_yaml

    ids = stand_in_ids(outputs)
    taken = set(ids)
    flat = next(
        f"cnnspec_flat{i or ''}" for i in range(len(taken) + 1) if f"cnnspec_flat{i or ''}" not in taken
    )
    model: list[Any] = []
    if any(len(out.shape) == 1 for out in outputs):
        model.append({"flatten": None, "id": flat, "inputs": "input"})
    losses: dict[str, Any] = {}
    for out, out_id in zip(outputs, ids):
        params: dict[str, Any] = {}
        if out.activation is not None:
            params["activation"] = out.activation
        if (
            any(d is None for d in out.shape)
            or len(out.shape) not in (1, 3)
            or (len(out.shape) == 3 and tuple(out.shape[:2]) != tuple(sample[:2]))
        ):  # a map of another size, or another rank: no task's output (README: tasks)
            raise UsageError(
                f"cannot tell the task of the model's output {out.name!r} (shape {list(out.shape)}) "
                "without a spec: it is neither a vector nor a map of the input's height and width",
                TASK_SPEC_HINT,
            )
        if out.unread_loss is not None:  # a guess would be a made-up task (predict's classes)
            raise UsageError(
                f"cannot tell the task of the model's output {out.name!r} without a spec: its file "
                f"records the loss {out.unread_loss!r}, which is neither a classification nor a "
                "regression loss cnnspec knows",
                TASK_SPEC_HINT,
            )
        if (
            tuple(out.shape) == (1,)
            and out.activation not in ("sigmoid", "softmax")
            and out.loss is None
            and out.classification_loss is None
        ):  # (the task rules would read a binary classifier on logits: a made-up task)
            raise UsageError(
                f"cannot tell the task of the model's output {out.name!r} without a spec: one "
                "unit without a sigmoid, saved without a loss, may be a binary classifier's logit "
                "or a regression's value",
                TASK_SPEC_HINT,
            )
        if len(out.shape) == 3:
            head = {"conv2d": {"filters": out.shape[-1], "kernel_size": 1, **params}, "inputs": "input"}
        else:
            head = {"dense": {"units": out.shape[0], **params}, "inputs": flat}
        model.append({**head, "id": out_id})
        if out.loss is not None:
            losses[out_id] = {"loss": out.loss}
        elif rebuild and out.rebuilt_loss is not None:
            losses[out_id] = {"loss": out.rebuilt_loss}
    training: dict[str, Any] = {}
    if len(outputs) > 1 and losses:
        training = {"outputs": losses}
    elif losses:
        training = dict(next(iter(losses.values())))
    document: dict[str, Any] = {
        "cnnspec": 1,
        "name": stand_in_name(name),
        "input": {"shape": list(sample)},
        "model": model,
        "outputs": ids,
        # STAND_IN_SOURCE: a source whose spec holds every task's targets and puts no limit on
        # the input, so only the model's outputs decide the tasks here
        "data": {"source": dict(STAND_IN_SOURCE), "rescale": None if scales else "auto"},
    }
    if training:
        document["training"] = training
    return dump_yaml(document, sort_keys=False)


def stand_in_spec(model: Any, name: str, path: Path | None = None) -> CompiledSpec:
    """The stand-in spec of a model without one (:func:`_stand_in_text`), compiled: its tasks
    are what the task rules infer from the model's outputs, the one reading of a model outside
    a run that evaluate and predict share. A :class:`UsageError` naming the output and asking
    for ``--spec`` where they cannot tell (the first of the rules' errors)."""
    return _compiled_stand_in(model, name, model_outputs(model, path))


def _compiled_stand_in(model: Any, name: str, outputs: list[ModelOutput]) -> CompiledSpec:
    """:func:`stand_in_spec` of the model's ``outputs`` (:func:`model_outputs`), read once by
    :func:`model_tasks`, which also maps the stand-in's ids back to their names."""
    from cnnspec.analysis.passes import compile_text
    from cnnspec.errors import SpecError

    sample, scales = input_shape(model), rescales_itself(model)
    if any(out.rebuilt_loss is not None for out in outputs):
        try:
            return compile_text(_stand_in_text(name, sample, outputs, scales), "<model>")
        except SpecError:
            # a recorded loss the output's task does not take (binary crossentropy on a softmax
            # of 10 units, which Keras trains without a word): crossentropy stands in for it, and
            # evaluate says so (loss_notes)
            pass
    text = _stand_in_text(name, sample, outputs, scales, rebuild=False)
    try:
        return compile_text(text, "<model>")
    except SpecError as exc:
        first = exc.diagnostics[0] if exc.diagnostics else None
        where = f" ({first.path}: {first.message})" if first is not None else ""
        raise UsageError(
            f"cannot tell the task of the model's outputs without a spec{where}", TASK_SPEC_HINT
        ) from None


def model_tasks(model: Any, name: str, path: Path | None = None) -> tuple[OutputTask, ...]:
    """Each output's task of a model without a spec, as evaluate reads such a model
    (:func:`stand_in_spec`), named by the model's output names (the stand-in's ids are made up
    where a name is no id: :func:`stand_in_ids`), so predict, export and visualize report the
    outputs the model has."""
    from cnnspec.analysis.settings import training_config

    outputs = model_outputs(model, path)
    keras_names = dict(zip(stand_in_ids(outputs), (out.name for out in outputs)))
    tasks = training_config(_compiled_stand_in(model, name, outputs)).tasks
    if len(set(keras_names.values())) < len(keras_names):
        # names repeat (one layer output listed twice, keras.Model(i, [d, d])): the ids stay, as
        # evaluate keeps them (_named_as_model); named alike, predict answered one of them
        return tasks
    return tuple(replace(task, name=keras_names.get(task.name, task.name)) for task in tasks)


def described_outputs(tasks: Sequence[Any]) -> str:
    """``mask (segmentation), area (regression)``: a model's outputs and their tasks, as the
    refusals of what a task does not allow name them."""
    return ", ".join(f"{task.name} ({task.task})" for task in tasks)


def spec_for_model(
    model: Any, name: str, source: str | dict[str, Any], path: Path | None = None
) -> CompiledSpec:
    """A stand-in spec for a model without one (:func:`stand_in_spec`: each output's shape,
    activation and recorded loss, so its task), with the data source, and the model's own
    scaling (``rescale: null`` when it has a Rescaling layer)."""
    return with_source(stand_in_spec(model, name, path), source)


def pipeline_settings(compiled: CompiledSpec, config: TrainConfig, dataset: Any) -> PipelineSettings:
    """The evaluation pipeline's settings, as training made them for this data."""
    from cnnspec.training.data_checks import rescale_factor
    from cnnspec.training.pipeline import PipelineSettings

    prepare_targets = None
    if config.task_path:  # multilabel, regression, segmentation, several outputs
        from cnnspec.training.tasks import target_preparer

        prepare_targets = target_preparer(config)
    return PipelineSettings(
        batch_size=config.batch_size,
        rescale=rescale_factor(config, dataset, compiled),
        num_classes=max(dataset.num_classes, config.output_units),
        one_hot=config.one_hot_labels,
        binary=config.binary,
        prepare_targets=prepare_targets,
    )


def file_rescale(
    run: Run, model: Any, integer_pixels: bool = True, pixels: np.ndarray | None = None
) -> float | None:
    """The multiplier for images read from files (0–255 integers) or ``.npy`` arrays.

    With a spec: what the pipeline did to integer-pixel data (``data.rescale``: auto → 1/the
    pixels' full intensity unless the model has its own rescaling layer, which then takes a
    file's pixels as the run's training images came: scaled to [0, 1] for an embedded float
    dataset, :func:`trained_on_unit_floats`; as they are otherwise). Float arrays are taken
    as already scaled. Without a spec: the same, unless the model begins with a Rescaling layer.
    ``pixels``: the integer batch to scale, whose dtype and values tell its depth as training's
    (:func:`pixel_depth`); without it, 8-bit (image files decode to 8-bit pixels).
    """
    if not integer_pixels and (run.config is None or run.config.data.rescale == "auto"):
        return None
    if run.compiled is None or run.config is None:
        return None if rescales_itself(model) else 1.0 / pixel_depth(pixels)
    from cnnspec.analysis.pixel_scaling import model_scales_input
    from cnnspec.training.data_checks import rescale_factor

    auto = run.config.data.rescale == "auto"
    if integer_pixels and auto and model_scales_input(run.compiled.ir) and trained_on_unit_floats(run):
        # the model's rescaling layer saw float images (digits, shapes: [0, 1]), never 0–255: a
        # file's integer pixels are scaled to that range first, or every answer is wrong
        return 1.0 / pixel_depth(pixels)
    # the depth counts only where data.rescale: auto divides by it (a uint16 .npy: by 65535)
    divides = integer_pixels and auto and not model_scales_input(run.compiled.ir)
    stand_in = SimpleNamespace(  # rescale_factor reads only these two
        integer_pixels=integer_pixels, pixel_max=pixel_depth(pixels) if divides else 255.0
    )
    return rescale_factor(run.config, stand_in, run.compiled)  # type: ignore[arg-type]


#: The sources whose images are floats in [0, 1] (cnnspec's embedded datasets): the only ones
#: whose range is known. A float npz may hold 0–255 (what a model's own 1/255 rescaling is for).
UNIT_FLOAT_SOURCES = ("digits", "shapes")


def trained_on_unit_floats(run: Run) -> bool:
    """Whether the run trained on images known to be floats in [0, 1] (an embedded dataset,
    recorded as float in lock.json): a model's rescaling layer of such a run never saw 0–255."""
    data = (run.lock or {}).get("data")
    dtype = data.get("dtype") if isinstance(data, dict) else None
    kind = run.config.data.kind if run.config is not None else None
    return isinstance(dtype, str) and dtype.startswith("float") and kind in UNIT_FLOAT_SOURCES


def trained_pixel_range(run: Run) -> tuple[float, float] | None:
    """The range of the pixels the run trained on, as float ``--data`` or ``.npy`` arrays must
    come to match them (before the ``data.rescale`` a float array gets too): its lock.json's
    ``pixel_range``, [0, 1] for an embedded float dataset of a run trained before it was
    recorded, the scaled range of integer training images (:func:`_integer_trained_range`);
    ``None`` where it is unknown (a float npz may hold 0–255)."""
    if run.recorded_range is not None:
        return run.recorded_range
    data = (run.lock or {}).get("data")
    recorded = range_of_record(data.get("pixel_range") if isinstance(data, dict) else None)
    if recorded is not None:
        return recorded
    if trained_on_unit_floats(run):
        return (0.0, 1.0)
    dtype = data.get("dtype") if isinstance(data, dict) else None
    return _integer_trained_range(run, dtype) if isinstance(dtype, str) else None


def range_of_record(recorded: Any) -> tuple[float, float] | None:
    """A pixel range as a record keeps it (``[low, high]``, finite numbers), else ``None``."""
    if (
        isinstance(recorded, list)
        and len(recorded) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in recorded)
        and all(math.isfinite(v) for v in recorded)
    ):
        return float(recorded[0]), float(recorded[1])
    return None


def _integer_trained_range(run: Run, dtype: str) -> tuple[float, float] | None:
    """The range a float array must have to be fed as the run's integer training images
    (lock.json's ``dtype``: image files and 8-bit arrays are uint8) were: ``data.rescale: auto``
    divided them by their depth into [0, 1] but takes float arrays as they are, so [0, 1]; a
    model that rescales itself, a numeric ``data.rescale`` (applied to floats too) or ``null``
    saw them as stored, so [0, their depth]. ``None``: no spec, a float or unknown dtype, or a
    depth the dtype does not tell (int64 pixels under a numeric rescale)."""
    from cnnspec.analysis.pixel_scaling import PIXEL_MAX_OF_DTYPE, model_scales_input

    try:
        integer = np.issubdtype(np.dtype(dtype), np.integer)
    except TypeError:  # a damaged record: the range is unknown
        return None
    if not integer or run.config is None or run.compiled is None:
        return None
    auto = run.config.data.rescale == "auto"
    if auto and not model_scales_input(run.compiled.ir):
        return (0.0, 1.0)
    # auto trained other integer dtypes only on 0–255 values (integer_pixel_max refuses others)
    depth = PIXEL_MAX_OF_DTYPE.get(dtype, 255.0 if auto else None)
    return (0.0, depth) if depth is not None else None


def float_scale_notes(
    run: Run, found: tuple[float, float] | None, what: str, scored: str = "the figures on them"
) -> list[str]:
    """The note of float pixels ranging ``found`` (their lowest and highest finite values:
    :func:`~cnnspec.training.data_arrays.pixel_range`; ``what``: ``--data X``, ``the .npy arrays``)
    far outside the range the run trained on (:func:`trained_pixel_range`): float arrays are
    taken as already scaled, so 0–255 pixels given to a run trained on [0, 1] were scored as
    they are, their figures meaningless, unsaid. Far: beyond the trained range by half its width."""
    trained = trained_pixel_range(run)
    if trained is None or found is None:
        return []
    low, high = found
    lowest, highest = trained
    margin = 0.5 * max(highest - lowest, 1e-6)
    if lowest - margin <= low and high <= highest + margin:
        return []
    fix = "divide them by 255 (pixels of 0–255)" if high > 1.5 and highest <= 1.5 else "scale them"
    return [
        f"the pixels of {what} range {low:g} to {high:g}, far outside the {lowest:g} to {highest:g} "
        f"{run.name} trained on: float pixels are taken as already on the run's scale, so {scored} "
        f"may be meaningless; {fix} to the run's range"
    ]


def pixel_depth(pixels: np.ndarray | None) -> float:
    """The value of a full-intensity pixel of integer ``pixels``, as training tells it from an npz
    file's images (:func:`~cnnspec.analysis.pixel_scaling.integer_pixel_max`): 255 for 8-bit, 65535 for
    uint16 (``None``: image files, 8-bit). A :class:`UsageError` when neither dtype nor values tell."""
    from cnnspec.analysis.pixel_scaling import integer_pixel_max

    if pixels is None:
        return 255.0
    low, high = (float(pixels.min()), float(pixels.max())) if pixels.size else (0.0, 0.0)
    depth = integer_pixel_max(pixels.dtype.name, low, high)
    if depth is None:
        raise UsageError(
            f"expected 8-bit (0–255) or uint16 integer pixels, as training takes them; received "
            f"{pixels.dtype.name} from {low:g} to {high:g}",
            "store the array as uint8 or uint16, or as floats scaled as the training images were",
        )
    return depth


def check_data_known(run: Run, data: str | None) -> None:
    """Refuse (:class:`UsageError`) to evaluate ``run`` when nothing names its data: no spec
    (a model file outside a run folder, or a run folder that lost its resolved.yaml) and no
    ``--data``. Told before the model is loaded, as is an empty ``--data``."""
    if data is not None:
        _refuse_empty_source(data)
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
    return SplitOrigin(seed, None if test is None else float(test), float(validation), where, kind, settings)


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
    return SplitOrigin(seed, data.test_split, data.validation_split, where, data.kind, options)


def run_config(compiled: CompiledSpec) -> TrainConfig:
    from cnnspec.analysis.settings import training_config

    return training_config(compiled)


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
    :func:`split_seed`'s), so that its test and validation images are the run's again."""
    data = replace(config.data, test_split=origin.test_split, validation_split=origin.validation_split)
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


def load_test_data(run: Run, model: Any, data: str | None = None, split: str = "test") -> TestData:
    """The test split of the run's data (or of ``--data``), checked against the model
    (``split="validation"``: the images training held out to validate on, as
    ``cnnspec calibrate`` fits a temperature on them). A ``--data`` source that cannot be read
    as one (a folder of loose images, no class folders) is a bad input, a :class:`UsageError`
    (exit 2) told of ``--data`` (:func:`data_option_error`), not a spec's error at
    ``data.source.directory``: the run's spec is not what is wrong."""
    from cnnspec.errors import SpecError

    try:
        return _load_test_data(run, model, data, split)
    except SpecError as exc:
        told = data_option_error(exc) if data is not None else None
        if told is None:
            raise
        raise told from None


def data_option_error(exc: Any) -> UsageError | None:
    """The :class:`UsageError` for a spec error whose every error is located at ``<--data>``
    (:data:`DATA_LOC`: the source ``--data`` put in the spec's place), worded of ``--data``;
    ``None`` for any other (the run's spec's own errors stay spec errors)."""
    errors = [d for d in exc.diagnostics if d.severity == "error"]
    if not errors or any(d.loc is None or d.loc.file != DATA_LOC.file for d in errors):
        return None
    message = "\n".join(f"--data: {d.message}" for d in errors)
    hints = [d.hint for d in errors if d.hint]
    return UsageError(message, "; ".join(dict.fromkeys(hints)) or None)


def _load_test_data(run: Run, model: Any, data: str | None, split: str) -> TestData:
    """:func:`load_test_data`, its errors as they are raised."""
    from cnnspec.analysis.settings import training_config

    notes: list[str] = []
    check_data_known(run, data)
    data = _test_folder_of_layout(data, notes)
    compiled = run.compiled
    origin = split_origin(run)
    # --data shapes draws the run's images with the run's generator settings: its spec's source,
    # else (a file served alone, a model without a spec) the settings its run's split keeps
    recorded_base = origin.base() if origin is not None else None
    if compiled is None:
        assert data is not None  # (check_data_known)
        source = parse_source(data, recorded_base)
        stand_in = stand_in_spec(model, run.name, run.model_path)
        if class_only_source(source) is not None:  # the outputs' tasks, before the source is read
            # (with the source, a multi-output stand-in is refused first, hinting at spec keys)
            tasks = training_config(with_source(stand_in, {"npz": "data.npz"})).tasks
            refuse_class_only_data(tasks, source)
        compiled = with_source(stand_in, source)
    elif data is not None:
        base = (compiled.data or {}).get("source")
        if recorded_base is not None and source_options(compiled) is None:
            base = recorded_base  # (a served file's stand-in spec names no source of the run's)
        source = parse_source(data, base if isinstance(base, dict) else None)
        refuse_class_only_data(training_config(compiled).tasks, source)
        compiled = with_source(compiled, source)
    config = training_config(compiled)
    if origin is not None:  # a checkpoint's, an export's: its run's split of the data
        config = with_split(config, origin)
    seed, recorded = split_seed(run, config)
    if config.data.splits_test:
        if not recorded:
            notes.append(unknown_split_note(run, seed, split))
        elif origin is not None and origin.source in (None, config.data.kind):  # (the run's source)
            which = "validation" if split == "validation" else "test"
            if origin.source in OPTIONED_SOURCES and origin.options is None:
                notes.append(
                    f"the {which} split is drawn with the seed and fractions of the run it was "
                    f"exported from (seed {seed}), but its record keeps no settings of the run's "
                    f"{origin.source} source (exported by an older cnnspec): the images were "
                    f"generated with {origin.source}' defaults, so they may not be the run's "
                    f"{which} images"
                )
            else:
                notes.append(f"the {which} split is drawn {origin.where} (seed {seed})")
    # --data is checked against the model by test_split, which knows the run's classes and says
    # what --data did wrong; the spec's own fit checks would blame the model's last layer
    from cnnspec.errors import SpecError

    test_only = data is not None and split == "test"
    try:
        dataset = _load_for_test(
            compiled, config if data is None else _fit_unchecked(config), seed, test_only
        )
    except SpecError as exc:
        from cnnspec.training.badfiles import BadFilesError, data_error

        if data is not None and isinstance(exc, BadFilesError):  # bad input files, not a spec's error
            raise data_error(exc.diagnostics[0].message) from None
        misfit = (_data_misfit(exc) or _shape_misfit(exc, model)) if data is not None else None
        if misfit is None and data is None:
            raise gone_data_error(exc, run) from None
        if misfit is None:
            raise
        raise misfit from None
    # a streamed source is hashed as the run hashed it (names, sizes and times, or --hash-content)
    dataset.hash_content = ((run.lock or {}).get("data") or {}).get("hash") == "content"
    if run.compiled is None:  # the stand-in's made-up ids (stand_in_ids) back to the model's names
        config = _named_as_model(config, dataset, model, run.model_path)
        notes.extend(loss_notes(config, model_outputs(model, run.model_path)))
    test = test_split(run, model, dataset, compiled, config, data=data, notes=notes, split=split)
    from cnnspec.training.filelist import ImageFiles

    if data is not None and isinstance(test.x, ImageFiles):
        from cnnspec.training.badfiles import DATA_HINT

        # a file of --data that fails to decode when indexed (an export's evaluation, --tta,
        # visualize): a bad input file with --data's hint, as evaluate's stream tells it
        test.x.bad_hint = DATA_HINT
    test = _decodable(test)
    if data is not None:
        # scoring other data is what --data is for, but not scoring the run's training images
        # as unseen ones unsaid (calibrate refuses the run's own images by test.own)
        from cnnspec.reporting.own_data import own_images, seen_note

        test.own = own_images(run, test)
        seen = seen_note(test.own, data, run.name)
        if seen is not None:
            test.notes.append(seen)
        limit = config.data.limit
        if limit is not None and len(test.x) >= limit:
            # (read as the run read its data: a folder of 30 images was scored on 10, unsaid)
            test.notes.append(
                f"--data is read as the run's spec reads its data, with data.limit: {limit}: at most "
                f"{limit} of its images are scored"
            )
    return test


def _decodable(test: TestData) -> TestData:
    """``test`` without the image files that fail to decode where the source skips bad files
    (``data.on_bad_file: skip``), with evaluate's note: every command then scores, counts and
    indexes the images evaluate's stream reads (:func:`cnnspec.training.stream.readable`)."""
    from cnnspec.training.filelist import ImageFiles

    if not isinstance(test.x, ImageFiles):
        return test
    from cnnspec.training.stream import readable

    test.x, test.y, dropped = readable(test.x, test.y)
    if dropped:
        test.notes.append(f"left out {dropped} image file(s) that failed to decode")
    return test


def _test_folder_of_layout(data: str | None, notes: list[str]) -> str | None:
    """``--data`` of a folder laid out as ``train/``, ``validation/``, ``test/`` of class folders:
    its ``test/`` folder, with a note (read whole, the split folders would be taken for
    classes); refused, naming the folders to pass instead, where it has no ``test/`` folder.
    ``data`` as it is for anything else, a folder whose split-named folders hold images (classes
    that are named train, test …) included."""
    from cnnspec.training.filelist import presplit_folders, subfolders

    if data is None or not data.strip():
        return data
    path = user_path(data)
    given = presplit_folders(path)
    try:  # (a split link that leads nowhere: the folder is read as it is, and said missing there)
        if not given or not all(subfolders(folder) for folder in given.values()):
            return data
    except OSError:
        return data
    listed = ", ".join(f"{folder.name}/" for folder in given.values())
    if "test" not in given:
        choices = " or ".join(f"--data {folder}" for split, folder in given.items() if split != "train")
        raise UsageError(
            f"expected --data to be a folder of class folders or a split layout with a test/ folder; "
            f"{path} is laid out as {listed} with no test/ folder",
            f"pass {choices or '--data ' + str(given['train'])} to read one split's class folders",
        )
    notes.append(f"{path} is laid out as {listed}: its test/ folder is read ({given['test']})")
    return str(given["test"])


def loss_notes(config: TrainConfig, outputs: list[ModelOutput]) -> list[str]:
    """What evaluate says of the loss of a model without a spec (``config``: its stand-in's,
    ``outputs``: :func:`model_outputs`) where it is not the classification loss the model file
    records (one cnnspec has no equal of, or that the output's task does not take): the loss
    reported is then the stand-in's, and not what the model trained on."""
    from cnnspec.analysis.settings_training import name_and_settings

    notes = []
    for task, out in zip(config.tasks, outputs):
        recorded = out.classification_loss
        if recorded is None or (
            out.rebuilt_loss is not None and name_and_settings(out.rebuilt_loss)[0] == task.loss.name
        ):
            continue
        which = f"{out.name}'s loss" if len(outputs) > 1 else "the loss"
        settings = " with settings cnnspec's has not" if keras_classification_loss(recorded) else ""
        notes.append(
            f"{which} is {task.loss.name}: the model file records {recorded}{settings}, which cnnspec "
            "does not compute for this output without a spec (pass --spec SPEC with the loss it trained on)"
        )
    return notes


def _named_as_model(config: TrainConfig, dataset: Any, model: Any, path: Path) -> TrainConfig:
    """``config`` of a stand-in spec with its outputs named as ``model`` names them, and the
    per-output targets of ``dataset`` (changed in place) keyed by those names: Keras compiles
    a multi-output model's losses and metrics by its output names, and the report names the
    outputs the model has, not the ids made up where a name is no id (:func:`stand_in_ids`).
    Unchanged where every name is its id, or where names repeat (one layer output twice: a
    dict by name cannot tell them apart)."""
    outputs = model_outputs(model, path)
    names = dict(zip(stand_in_ids(outputs), (out.name for out in outputs)))
    if all(key == name for key, name in names.items()) or len(set(names.values())) < len(names):
        return config

    def renamed(value: Any) -> Any:
        return (
            {names.get(key, key): item for key, item in value.items()} if isinstance(value, dict) else value
        )

    for attribute in ("y_train", "y_val", "y_test", "target", "target_names"):
        setattr(dataset, attribute, renamed(getattr(dataset, attribute)))
    tasks = tuple(replace(task, name=names.get(task.name, task.name)) for task in config.tasks)
    return replace(config, tasks=tasks)


def assumed_rescale_note(model_name: str, factors: set[float]) -> list[str]:
    """The note that a model file's pixel factor was assumed (``factors``: those applied to
    integer pixels, 1 / their depth): nothing says what its training did (no run folder with
    its spec, no export record, no rescaling layer of its own), and a run trained with another
    ``data.rescale`` (0.01, or none) answers otherwise; ``--spec`` gives the spec's (predict's
    and evaluate's ``--data`` of image files alike)."""
    if not factors:
        return []
    said = ", ".join(f"1/{1 / factor:.6g}" for factor in sorted(factors, reverse=True))
    return [
        f"pixels multiplied by {said}, assumed: {model_name} comes with no run folder, spec or "
        "export record to say what its training did, nor a rescaling layer; --spec SPEC applies the "
        "spec's data.rescale"
    ]


def test_split(
    run: Run,
    model: Any,
    dataset: Any,
    compiled: CompiledSpec,
    config: TrainConfig,
    *,
    data: str | None = None,
    notes: list[str] | None = None,
    split: str = "test",
) -> TestData:
    """The test part of a loaded :class:`~cnnspec.training.dataset.Dataset`, checked against the
    model, with the run's class names (``data``: the ``--data`` text it came from, if any;
    ``split="validation"``: its validation part instead)."""
    notes = list(notes or [])
    expected = input_shape(model)
    if dataset.sample_shape != expected:
        raise UsageError(
            f"expected data of shape {list(expected)} (the model's input); the {config.data.kind} "
            f"images have shape {list(dataset.sample_shape)}"
        )
    x, y = (dataset.x_val, dataset.y_val) if split == "validation" else (dataset.x_test, dataset.y_test)
    names = list(dataset.class_names)
    by_name = bool(run.class_names) and data is not None and config.data.streamed
    if by_name:
        # matched by name first: a class the run lacks is named, not only counted (a folder of
        # a data.classes run's whole source has more classes than the model)
        y, names = _remap(y, names, run.class_names or [])
    if data is not None and dataset.target == "class" and not config.task_path:
        check_source_classes(names, run.class_names or [], config)
        y, names = _classes_by_name(y, names, run.class_names or [], config, notes)
    elif data is not None and not by_name:  # other tasks' names are matched (reordered) by name
        y, names = _match_outputs(run, dataset, config, y, names, notes)
    if not by_name and run.class_names and len(run.class_names) >= len(names):
        names = list(run.class_names)
    # the run's data read where it was moved to (run_spec): its files hashed by their names before
    moved = moved_data(config, run.lock) if data is None and run.compiled is compiled else []
    content_hash = dataset.content_hash(moved)
    recorded = ((run.lock or {}).get("data") or {}).get("content_hash") if data is None else None
    matches = None if recorded is None else recorded == content_hash
    said = moved_data_note(config, run.lock) if moved else None
    if said is not None:
        notes.append(said)
    if data is None and compiled.finished_run:
        notes.extend(weight_key_notes(config, dataset))
    if matches is False:
        notes.append(
            "the splits differ from those the run was trained with (the data, or how it is split, "
            f"changed: content hash): the {'validation' if split == 'validation' else 'test'} figures may "
            "include images the model trained on"
        )
    settings = pipeline_settings(compiled, config, dataset)
    # --data of image files for a run trained on [0, 1] floats whose model rescales: as predict
    # scales a file's pixels (file_rescale), not the 0-255 its rescaling layer never saw
    unscaled = data is not None and dataset.integer_pixels and settings.rescale is None
    if unscaled and config.data.rescale == "auto" and trained_on_unit_floats(run):
        settings = replace(settings, rescale=1.0 / dataset.pixel_max)
    if data is not None and not dataset.integer_pixels and isinstance(x, np.ndarray) and x.dtype.kind == "f":
        notes.extend(float_scale_notes(run, pixel_range(x), f"--data {data}"))
    if run.compiled is None and data is not None and dataset.integer_pixels and settings.rescale is not None:
        # a model file alone (its stand-in spec): the factor is cnnspec's default, not known
        notes.extend(assumed_rescale_note(run.model_path.name, {settings.rescale}))
    return TestData(
        x=x,
        y=y,
        class_names=names,
        settings=settings,
        compiled=compiled,
        config=config,
        source=dict(dataset.source),
        content_hash=content_hash,
        matches_run=matches,
        notes=notes,
        output_names=_output_names(run, dataset, config, names),
    )


def weight_key_notes(config: TrainConfig, dataset: Any) -> list[str]:
    """What to say of a run whose ``training.class_weight`` keys cnnspec refuses now (a class
    ``data.classes`` left out, two keys weighing one class): it was trained by an older cnnspec,
    which read them otherwise than the spec says. The run's model is evaluated all the same (the
    weights only matter to training); the note tells the figures' reader, and how a new run goes."""
    from cnnspec.training.data_checks import weight_key_refusals

    return [
        f"training.class_weight.{key}: {message}; this run was trained before cnnspec refused such "
        "a key, so its class weights may not be the ones the spec reads as (fix the key to train it "
        "again: validate, train and --resume refuse it)"
        for key, message, _ in weight_key_refusals(config, dataset)
    ]


def _output_names(run: Run, dataset: Any, config: TrainConfig, names: list[str]) -> dict[str, list[str]]:
    """Each output's names: the run's (:meth:`Run.output_names`) where they name at least as
    many as the data's, else the data's (its names of the output's target; one output:
    ``names``, the test split's class names)."""
    by_output = getattr(dataset, "target_names", None) or {}
    found: dict[str, list[str]] = {}
    for position, out in enumerate(config.tasks):
        data = list(by_output.get(out.name, [])) if by_output else (names if position == 0 else [])
        recorded = run.output_names(out.name)
        found[out.name] = recorded if recorded and len(recorded) >= len(data) else [str(n) for n in data]
    return found


#: How to evaluate on other data than data whose classes fit the model (``--data`` refusals).
OTHER_DATA_HINT = (
    "pass --data a source with the model's classes (named as the run names them, or labels "
    "without names), leave --data out for the run's own test split, or pass --spec with a spec "
    "that describes the model's data"
)


def _fit_unchecked(config: TrainConfig) -> TrainConfig:
    """``config`` for loading ``--data``: without the class-count and ``class_weight`` checks
    of the data against the model, which :func:`check_source_classes` makes for evaluation (a
    classifier's; other tasks keep their checks)."""
    if config.task_path:
        return config
    loss = replace(config.loss, name="sparse_categorical_crossentropy") if config.binary else config.loss
    data = config.data
    if data.streamed and data.classes is not None:
        # a folder's or CSV's classes are matched to the run's by name (_remap): one of some of
        # the selected classes is scored in the run's order, one with others is refused naming
        # them; the run's selection applied to it wanted every selected class in it
        data = replace(data, classes=None)
    return replace(config, output_units=0, class_weight=None, loss=loss, data=data)


def _load_for_test(compiled: CompiledSpec, config: TrainConfig, seed: int, test_only: bool) -> Any:
    """The dataset whose test images are scored (``test_only``: ``--data``'s, the test split
    alone used). A file whose training images are too few for the validation split (which it
    need not have) is read again without that split: it was refused for it, whatever its own
    mistake was. Otherwise the split is drawn as for the run, so the data's content hash is
    what training recorded (calibrate refuses the run's own data by it)."""
    from cnnspec.errors import SpecError
    from cnnspec.training.data import load_dataset

    try:
        return load_dataset(compiled, config, seed, test_only=test_only)
    except SpecError as exc:
        if not (test_only and any(d.path == "data.validation_split" for d in exc.diagnostics)):
            raise
    unsplit = replace(config, data=replace(config.data, validation_split=0.0))
    return load_dataset(compiled, unsplit, seed, test_only=test_only)


#: How the loader's shape check begins (cnnspec.analysis.datafit.check_sample_shape).
_SHAPE_MISFIT = "expected data of shape "


def _shape_misfit(exc: Any, model: Any) -> UsageError | None:
    """The ``--data`` error for images of another shape than the model takes: the loader's
    hint is a spec author's ("set input.shape …, add a resizing layer"), which a trained model
    cannot take; ``None`` for any other error."""
    for diagnostic in exc.diagnostics:
        if diagnostic.message.startswith(_SHAPE_MISFIT):
            side = "×".join(str(d) for d in input_shape(model))
            said = diagnostic.message.replace("(input.shape)", "(its input)")
            return UsageError(
                f"expected --data that fits the trained model; {said}",
                f"pass --data images of {side} (resized first if need be), or --spec with a spec that "
                "reads them as the model takes them",
            )
    return None


def _data_misfit(exc: Any) -> UsageError | None:
    """The ``--data`` error for a spec error about the data not fitting the model (code
    ``data``) that the loader located in the model (its last layer: "give the last layer 9
    filters"): the model is trained, so it is ``--data`` that does not fit, as a classifier's
    :func:`check_source_classes` says (``None``: ``exc`` is another error, located at
    ``--data`` already or about something else, raised as it is)."""
    for diagnostic in exc.diagnostics:
        if diagnostic.code != "data" or (diagnostic.loc is not None and diagnostic.loc.file == DATA_LOC.file):
            continue
        if diagnostic.message.startswith(UNSELECTED_CLASSES):  # classes the run lacks, named
            return UsageError(diagnostic.message, diagnostic.hint)
        if str(diagnostic.path).startswith("data.classes"):  # the run's selection, applied to --data
            return UsageError(
                "expected --data in the labels the run's data.classes picks its classes from (it "
                f"picks them from --data too); {diagnostic.message}",
                "pass --data with the run's classes named (class_names, class folders), or labelled "
                "as the run's source labels them (before data.classes picked and reordered them)",
            )
        return UsageError(
            f"expected --data that fits the trained model; {diagnostic.message}", OTHER_DATA_HINT
        )
    return None


def _listed(names: list[str]) -> str:
    """``3 ('a', 'b', 'c')``: a count of class names and the first of them."""
    from cnnspec.analysis.datafit import name_list

    return f"{len(names)} {name_list(names)}" if names else "0"


def check_source_classes(names: list[str], recorded: list[str], config: TrainConfig) -> None:
    """The classes of a ``--data`` source (``names``) can be the model's: no more than its output
    units tell apart (2 for a binary one), and, where the source names them and the run
    recorded its own (``recorded``), some or all of the run's names, in any order
    (:func:`_classes_by_name` puts them in the run's). Numbered names (``0``,
    ``1`` …) are a source's labels without names; a streamed folder's classes are matched to
    the run's by name (:func:`_remap`). A :class:`UsageError` naming both sets otherwise: the
    report would show the source's classes under the model's names."""
    limit = 2 if config.binary else config.output_units
    kind = config.data.kind
    theirs = f"the run's classes are {_listed(recorded)}" if recorded else "the model's classes are not named"
    if limit and len(names) > limit:
        raise UsageError(
            f"expected --data with at most {limit} classes (the model's output units; {theirs}); "
            f"the {kind} data has {_listed(names)}",
            OTHER_DATA_HINT,
        )
    # (compared by name_key, Unicode NFC: a test folder macOS wrote decomposed is the same class)
    unknown = match_names(names, recorded).unknown if _by_name(names, recorded, config) else []
    if unknown:
        raise UsageError(
            f"expected --data classes named as the run's, in any order: {_listed(recorded)}; "
            f"the {kind} data has {_listed(names)} ({', '.join(map(repr, unknown[:10]))} not the run's)",
            OTHER_DATA_HINT,
        )


def _by_name(names: list[str], recorded: list[str], config: TrainConfig) -> bool:
    """Whether a single classifier's ``--data`` names (an npz's ``class_names``) are matched to
    the run's by name (:func:`_classes_by_name`): both named, and not a streamed folder (matched
    by :func:`_remap` before)."""
    return bool(recorded) and not config.data.streamed and not _numbered(names) and bool(names)


def _classes_by_name(
    y: Any, names: list[str], recorded: list[str], config: TrainConfig, notes: list[str]
) -> tuple[Any, list[str]]:
    """A single classifier's ``--data`` labels whose names (checked by
    :func:`check_source_classes`: some or all of the run's) come in another order than the run's,
    renumbered to the run's classes, with a note: read by position, a permuted npz was refused
    while a multi-label one was read by name (:func:`_match_outputs`)."""
    if not _by_name(names, recorded, config):
        return y, names
    match = match_names(names, recorded)
    if match.table == list(range(len(match.table))):
        return y, names
    notes.append(_reordered_note("classes", names, recorded))
    return _renumbered(y, match), list(recorded)


def _renumbered(values: Any, match: NameMatch) -> np.ndarray:
    """Class indices or mask values of ``--data`` (the data's j-th name) as the run's indices
    (``match.table[j]``), in their own dtype."""
    return np.asarray(match.table, dtype=np.asarray(values).dtype)[np.asarray(values)]


def _reordered_note(what: str, names: Sequence[str], recorded: Sequence[str]) -> str:
    """The note that ``--data``'s names (``what``: classes, labels …) were put in the run's order."""
    return (
        f"--data names its {what} in another order than the run ({_listed(list(names))}; the run's: "
        f"{_listed(list(recorded))}): they are matched to the run's by name"
    )


@dataclass(frozen=True)
class NameMatch:
    """How the names of ``--data`` (a class folder's, an npz's ``class_names``) match the
    run's, compared by :func:`~cnnspec.analysis.classes.name_key` (Unicode NFC, as training
    compares them: the folder ``ému`` macOS wrote decomposed is the run's ``ému``)."""

    #: for each of the data's names, the run's index of it (-1: the run has no such name)
    table: list[int]
    #: the data's names the run lacks, and the run's names the data lacks, in their order
    unknown: list[str]
    missing: list[str]

    @property
    def same_order(self) -> bool:
        """Every name the run's, at the run's index: nothing to reorder."""
        return not self.unknown and not self.missing and self.table == list(range(len(self.table)))


def match_names(names: Sequence[str], run_names: Sequence[str]) -> NameMatch:
    """The one matching of ``--data``'s names to the run's, by name, for every task: class
    folders (:func:`_remap`) and npz names of labels, values, mask classes and a multi-output
    model's classes (:func:`_match_outputs`)."""
    keys = [name_key(n) for n in run_names]
    theirs = {name_key(n) for n in names}
    return NameMatch(
        table=[keys.index(name_key(n)) if name_key(n) in keys else -1 for n in names],
        unknown=[str(n) for n in names if name_key(n) not in keys],
        missing=[str(n) for n in run_names if name_key(n) not in theirs],
    )


def _remap(y: np.ndarray, names: list[str], run_names: list[str]) -> tuple[np.ndarray, list[str]]:
    """Labels of a folder evaluated by a run's model: class folders mapped by name
    (:func:`match_names`; a folder of some of the run's classes is scored in the run's order),
    named as the run names them."""
    match = match_names(names, run_names)
    if match.same_order and len(names) == len(run_names):
        return y, list(run_names)
    if match.unknown:
        raise UsageError(
            f"expected class folders named like the run's classes ({', '.join(run_names[:20])}); "
            f"received {', '.join(match.unknown[:10])}",
            OTHER_DATA_HINT,
        )
    return np.array(match.table, dtype="int64")[y], list(run_names)


def _numbered(names: Sequence[str]) -> bool:
    """``0``, ``1`` …: the names a source without names is given (its values are positions)."""
    return list(names) == [str(i) for i in range(len(names))]


#: What an output's names name, by the kind of its target (for messages).
_NAMED = {"class": "classes", "multilabel": "labels", "regression": "values", "mask": "mask classes"}


def _match_outputs(
    run: Run, dataset: Any, config: TrainConfig, y: Any, names: list[str], notes: list[str]
) -> tuple[Any, list[str]]:
    """``--data``'s targets of every output whose names (an npz's ``class_names``, or
    ``class_names_<output>``) are the run's in another order, reordered to the run's
    (:func:`match_names`): label and value columns, mask values, class indices; a note says so.
    The report reads them by position under the run's names: read as they come, a permuted
    file was scored wrongly, unsaid. Names that are no permutation of the run's (some missing,
    others extra) are refused naming both. Unnamed data (numbered names) and a run that
    recorded no names are read by position, as before. ``y``: the split's targets (a dict by
    output for a multi-output model, whose ``dataset.target_names`` are renamed in place);
    ``names``: a single output's names."""
    several = isinstance(dataset.target, dict)
    renamed = dict(dataset.target_names or {})
    y = dict(y) if several else y
    for out in config.tasks:
        kind = dataset.target.get(out.name) if several else dataset.target
        data_names = list(renamed.get(out.name, [])) if several else list(names)
        recorded = run.output_names(out.name)
        if kind is None or not recorded or not data_names or _numbered(data_names) or _numbered(recorded):
            continue
        match = match_names(data_names, recorded)
        if match.same_order and len(data_names) == len(recorded):
            continue
        what = _NAMED.get(str(kind), "names")
        whose = f" of the output {out.name}" if several else ""
        if match.unknown or match.missing:
            problems = [
                f"{', '.join(map(repr, match.missing[:10]))} missing" if match.missing else "",
                f"{', '.join(map(repr, match.unknown[:10]))} not the run's" if match.unknown else "",
            ]
            raise UsageError(
                f"expected --data {what}{whose} named as the run's, in any order: {_listed(recorded)}; "
                f"the {config.data.kind} data has {_listed(data_names)} "
                f"({'; '.join(p for p in problems if p)})",
                "pass --data whose names are the run's (they are matched by name), or leave --data out "
                "for the run's own test split",
            )
        values = y[out.name] if several else y
        if kind in ("multilabel", "regression"):  # columns: the run's i-th is the data's order[i]
            order = [match.table.index(i) for i in range(len(recorded))]
            values = np.asarray(values)[:, order]
        else:  # class indices or mask values: the data's j-th name is the run's table[j]
            values = _renumbered(values, match)
        notes.append(_reordered_note(what + whose, data_names, recorded))
        if several:
            y[out.name] = values
            renamed[out.name] = list(recorded)
        else:
            y, names = values, list(recorded)
    if several:
        dataset.target_names = renamed
    return y, names
