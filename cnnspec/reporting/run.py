"""What a command's TARGET names, and the run folder that belongs to it.

A TARGET is a run folder written by ``cnnspec train`` (``model.keras``, ``lock.json``,
``resolved.yaml``, ``metrics.json`` …), or a ``.keras`` file (inside a run folder or on its own).
Models are loaded by the one safe loader (:mod:`cnnspec.training.modelfile`): Keras safe mode
only; HDF5 files, files that are not Keras archives and models with ``Lambda`` layers are
refused with a :class:`~cnnspec.errors.UsageError` before or instead of a Keras traceback.

This module reads a run's files (checked, a damaged one a located error), finds what TARGET
names (:func:`locate`, a :class:`Run`) and compiles the spec the run was trained from again
(:func:`run_spec`), saying where its data moved or went. What the commands do with a run is in
the modules beside it:

- :mod:`~cnnspec.reporting.model_graph`: the loaded model read as a graph (outputs, activations);
- :mod:`~cnnspec.reporting.stand_in`: a spec for a model that has none;
- :mod:`~cnnspec.reporting.data_option`: ``--data SOURCE``;
- :mod:`~cnnspec.reporting.run_splits`: the split of the run a model file came from;
- :mod:`~cnnspec.reporting.pixel_ranges`: the pixels a model was trained on;
- :mod:`~cnnspec.reporting.held_out`: the test data (:func:`~cnnspec.reporting.held_out.load_test_data`),
  whose classes :mod:`~cnnspec.reporting.class_match` matches to the run's;
- :mod:`~cnnspec.reporting.predictions`: the model's answers for it.

The test data of a run is the run's own split: the resolved spec and the seed in ``lock.json``
give back exactly the images training held out (the content hash says whether the data
changed since). ``--data SOURCE`` evaluates on another source with the run's preprocessing.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.errors import Loc, UsageError
from cnnspec.fileio import user_path
from cnnspec.paths import exists, is_dir, is_file, refuse_unreadable
from cnnspec.reporting.model_graph import OutputKind
from cnnspec.reporting.stand_in import model_output_kind
from cnnspec.runholder import training_process
from cnnspec.training.modelfile import check_model_file
from cnnspec.training.modelfile import load_model as load_model  # the one safe loader, re-exported
from cnnspec.training.outcomes import report_command

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.analysis.settings_types import TrainConfig
    from cnnspec.errors import Diagnostic, SpecError
    from cnnspec.spec.loader import SourceDoc

MODEL_FILE = "model.keras"


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
    get it back, for a file another command than train writes). A folder (or anything but a
    file) in its place is damage too: read as no file, a run whose metrics.json is a folder was
    reported as not finished, where --resume calls it finished."""
    if not path.is_file():
        if os.path.lexists(path) and not path.is_symlink():  # (a dangling link: no file, as before)
            raise damaged(
                path, [f"expected a file; it is {'a folder' if path.is_dir() else 'no regular file'}"], hint
            )
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
    #: the run's ``data.classes`` as its spec wrote them (the subset and order of the source's
    #: classes the model answers in): ``--data`` of the run's source is labelled as the source
    #: labels it and picked from alike; ``None``: every class, or not recorded
    classes: tuple[str | int, ...] | None = None

    def recorded(self) -> dict[str, Any]:
        """As an export's record keeps it (``split``: :func:`split_of_record` reads it back)."""
        fractions = {"test_split": self.test_split, "validation_split": self.validation_split}
        kept = {"seed": self.seed, **fractions, "source": self.source}
        if self.options is not None:
            kept["options"] = self.options
        if self.classes is not None:
            kept["classes"] = list(self.classes)
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
    run_only: bool = False,
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
    model is needed (:func:`check_run_model`). ``run_only``: the command needs the run (its
    splits, its folder), so its refusals ask for a run folder, not "or a .keras model" (a model
    file outside a run is refused by the command, in its words).
    """
    target = Path(target)
    expected = (
        f"a run folder written by `cnnspec train` (or its {MODEL_FILE})"
        if run_only
        else "a run folder or a .keras model"
    )
    refuse_unreadable(target, expected)  # (another user's folder, a name too long: not "no such file")
    if is_dir(target):
        refuse_unreadable(target / "lock.json", expected)
    if not exists(target):
        raise UsageError(
            f"expected {expected}; {target} does not exist",
            f"pass the folder `cnnspec train` wrote (runs/<name>-<time>) or its {MODEL_FILE}",
        )
    if is_dir(target):
        model_path = target / MODEL_FILE
        if not is_file(model_path) and not is_file(target / "lock.json"):
            raise UsageError(
                f"expected a cnnspec run folder (with {MODEL_FILE} and lock.json); {target} is not one",
                "pass the folder `cnnspec train` wrote" + ("" if run_only else ", or a .keras model file"),
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
            f"(`{report_command(run_dir)}` shows the rest of the run without it)",
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


def run_config(compiled: CompiledSpec) -> TrainConfig:
    from cnnspec.analysis.settings import training_config

    return training_config(compiled)
