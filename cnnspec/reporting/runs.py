"""Run folders listed and compared (``cnnspec runs``): plain files, no TensorFlow.

A run folder is a folder with a ``lock.json`` (written when a run starts); ``metrics.json``
says it finished, ``history.json`` holds its per-epoch values and ``resolved.yaml`` its spec
(whose SHA-256 lock.json records: one changed or cut since is damaged). A folder that holds a
finished run's files but lost its lock.json (:func:`lost_lock`) is listed as a damaged run.

Every file is checked where it is read: a file that is not a JSON object (or nested too deeply
to read), a figure that is not a number, or a lock.json key of the wrong type
(:func:`lock_problems`) makes its run "damaged" with a problem that names the file and what is
wrong; it never stops the other runs from being listed. :func:`lock_problems` and
:func:`history_problems` are the checks every command that reads a run applies
(:func:`cnnspec.reporting.run.read_lock`, :func:`~cnnspec.reporting.run.read_history`).
"""

from __future__ import annotations

import difflib
import json
import math
import os
import reprlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cnnspec.analysis.settings_types import STREAMED_SOURCES
from cnnspec.errors import UsageError
from cnnspec.fileio import write_atomic
from cnnspec.paths import exists, is_dir, is_file, refuse_unreadable

#: How deep under FOLDER run folders are looked for (a search's trials are one level down).
MAX_DEPTH = 3
#: How much deeper, and through how many folders at most, the run folders ``runs`` leaves out
#: are looked for (only to say how many there are, and where).
DEEPER_LEVELS = 6
DEEPER_FOLDERS = 2000
#: How non-finite numbers are stored in cnnspec's JSON files (``str(float("nan"))`` …).
NON_FINITE = ("nan", "inf", "-inf")
#: What a problem quotes of a value: a short excerpt, never the whole of a huge or deeply
#: nested one (``repr`` of those is slow, or recurses too deeply).
_EXCERPT = reprlib.Repr()
_EXCERPT.maxlevel, _EXCERPT.maxstring, _EXCERPT.maxother = 2, 36, 36


def _json(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON object in ``path`` and ``None``, or ``None`` and what is wrong with the file
    (``None, None``: there is no such file)."""
    if not is_file(path):
        return None, None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{path.name} can't be read ({getattr(exc, 'strerror', None) or exc})"
    except ValueError as exc:
        return None, f"{path.name} is not valid JSON ({exc})"
    except RecursionError:  # json's decoder recurses once per level: a hostile nesting
        return None, f"{path.name} is not valid JSON (nested too deeply to read)"
    except MemoryError:
        return None, f"{path.name} is too large to read"
    if not isinstance(value, dict):
        return None, f"{path.name} holds {_a('JSON ' + _kind(value))}, expected an object"
    return value, None


def _kind(value: Any) -> str:
    """The JSON name of a value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "list", dict: "object"}.get(type(value), type(value).__name__)


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def excerpt(value: Any) -> str:
    """A value as a problem quotes it: ``'0.9'``, ``[1, 2, ...]`` (40 characters at most)."""
    return _EXCERPT.repr(value)[:40]


def wrong_type(key: str, value: Any, expected: str) -> str:
    """The problem of a value of the wrong type: ``data is a list ([1]), expected an object``."""
    if value is None:
        return f"{key} is null, expected {expected}"
    if too_large(value):  # a number, but not one a figure can be ("a number, expected a number")
        return f"{key} is {too_large_text(value)}"
    return f"{key} is {_a(_kind(value))} ({excerpt(value)}), expected {expected}"


def too_large(value: Any) -> bool:
    """Whether ``value`` is a JSON integer too large for a float (hundreds of digits, which
    JSON allows): ``math.isfinite``, ``float()`` and ``:.1f`` raise OverflowError on it."""
    if not isinstance(value, int) or isinstance(value, bool) or value.bit_length() <= 1000:
        return False
    try:
        float(value)
    except OverflowError:
        return True
    return False


def too_large_text(value: int) -> str:
    """How a problem describes a :func:`too_large` number."""
    return f"a whole number of {len(str(abs(value)))} digits, too large for a figure"


def large_numbers(document: Any, limit: int = 5) -> list[str]:
    """Where ``document`` (a JSON value) holds a :func:`too_large` number, as problems that
    name the key (``per_class.a.support is a whole number of 401 digits, …``); at most
    ``limit``. Walked with a list, not recursion: the decoder accepts nesting deeper than a
    recursive walk could follow."""
    problems: list[str] = []
    pending: list[tuple[str, Any]] = [("", document)]
    while pending and len(problems) < limit:
        where, value = pending.pop()
        if isinstance(value, dict):
            pending += [(f"{where}.{key}" if where else str(key), item) for key, item in value.items()]
        elif isinstance(value, list):
            pending += [(f"{where}[{index}]", item) for index, item in enumerate(value)]
        elif too_large(value):
            problems.append(f"{where or 'the file'} is {too_large_text(value)}")
    return sorted(problems)


#: The lock.json key of resolved.yaml's SHA-256 (:func:`cnnspec.training.rundir.resolved_digest`
#: writes it; a lock.json of an older cnnspec has none).
RESOLVED_HASH = "resolved_sha256"


def resolved_changed(run_dir: Path, lock: dict[str, Any]) -> str | None:
    """Why the run's resolved.yaml is not the file training wrote (its SHA-256 is not the one
    lock.json records), or ``None``: it is, it is absent, or lock.json (an older cnnspec's)
    records no hash (:func:`cnnspec.reporting.run.resolved_problem` then compiles it)."""
    from cnnspec.training.rundir import resolved_digest

    recorded = lock.get(RESOLVED_HASH)
    if not isinstance(recorded, str):
        return None
    try:
        data = (Path(run_dir) / "resolved.yaml").read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"it can't be read ({exc.strerror or exc})"
    if resolved_digest(data) != recorded:
        return (
            f"expected the file training wrote (lock.json's {RESOLVED_HASH}); its SHA-256 differs: "
            "it was changed or cut since"
        )
    return None


#: The files of a run (beside lock.json) that make a folder without lock.json a damaged run,
#: not a folder of something else: train writes them, and nothing else writes all of them.
RUN_FILES = ("metrics.json", "model.keras", "resolved.yaml")


def is_run(folder: Path) -> bool:
    """Whether ``folder`` is a run folder (holds lock.json); ``False`` where the OS won't say
    (a folder of another user's, a name too long: :func:`cnnspec.fileio.is_file`)."""
    return is_file(folder / "lock.json")


def lost_lock(folder: Path) -> bool:
    """Whether ``folder`` holds a finished run's files (:data:`RUN_FILES`) but no lock.json file
    (none, or a folder of that name): a run that lost it, which ``cnnspec runs`` lists as
    damaged (it was left out without a word)."""
    return not is_file(folder / "lock.json") and all(exists(folder / name) for name in RUN_FILES)


def _subfolders(here: Path, dangling: list[tuple[Path, str]] | None = None) -> list[Path]:
    """The folders in ``here``, links to folders included (a run folder kept elsewhere and
    linked in was skipped without a word); a dangling link is no folder, and goes into
    ``dangling`` with why it is skipped (where it leads), and so does a folder that can't be
    read (another user's: the listing ended in an internal error). Links cannot make the
    search endless: it goes :data:`MAX_DEPTH` levels deep at most, and :func:`_walk_runs`
    visits each real folder once, the tree's own folders before the links (a run both in the
    tree and linked to from it is listed under its own name)."""
    try:
        entries = list(here.iterdir())
    except OSError as exc:
        if dangling is not None and not isinstance(exc, (FileNotFoundError, NotADirectoryError)):
            dangling.append((here, f"can't be read ({exc.strerror or exc}): not searched"))
        return []
    if dangling is not None:
        dangling += sorted(
            (p, f"leads to {os.readlink(p)}, which is gone: not listed")
            for p in entries
            if p.is_symlink() and not exists(p)
        )
    return sorted((p for p in entries if is_dir(p)), key=lambda p: (p.is_symlink(), p.name))


def find_runs(folder: Path, dangling: list[tuple[Path, str]] | None = None) -> list[Path]:
    """Every run folder at or under ``folder`` (to :data:`MAX_DEPTH`), oldest first.
    ``dangling``: gets each link met on the way that leads nowhere (a run folder moved or
    deleted since it was linked in), or a folder that can't be read, with why it is skipped."""
    refuse_unreadable(folder, "a folder of runs")
    if not is_dir(folder):
        raise UsageError(
            f"expected a folder of runs; {folder} is not a folder", "train a spec first: cnnspec train"
        )
    found = [run for _, run in _walk_runs(folder, MAX_DEPTH, dangling=dangling)]
    return sorted(
        found, key=lambda p: (_text((_json(p / "lock.json")[0] or {}).get("created")) or "", str(p))
    )


def deeper_run(folder: Path) -> Path | None:
    """A run folder more than :data:`MAX_DEPTH` levels below ``folder`` (the first found,
    breadth first), for the hint when :func:`find_runs` finds none. The search stops after
    :data:`DEEPER_LEVELS` more levels or :data:`DEEPER_FOLDERS` folders, so a huge tree (a
    home folder, a virtual environment) costs little."""
    found, _ = deeper_runs(folder)
    return found[0] if found else None


def deeper_runs(folder: Path) -> tuple[list[Path], bool]:
    """The run folders more than :data:`MAX_DEPTH` levels below ``folder``, which
    :func:`find_runs` leaves out (breadth first: the nearest first), and whether the search
    stopped before it had looked everywhere: it goes :data:`DEEPER_LEVELS` more levels and
    through :data:`DEEPER_FOLDERS` folders at most, so a huge tree (a home folder, a virtual
    environment) costs little, and the count is then a lower bound."""
    visited = [0]
    walk = _walk_runs(folder, MAX_DEPTH + DEEPER_LEVELS, DEEPER_FOLDERS, visited=visited)
    found = [run for depth, run in walk if depth > MAX_DEPTH]
    return found, visited[0] > DEEPER_FOLDERS


def _walk_runs(
    folder: Path,
    levels: int,
    most: int | None = None,
    dangling: list[tuple[Path, str]] | None = None,
    visited: list[int] | None = None,
) -> Iterator[tuple[int, Path]]:
    """``(depth, run folder)`` breadth first, to ``levels`` below ``folder`` (a run folder's own
    sub-folders are not searched), stopping after ``most`` folders when given. The links met
    on the way are followed after the tree itself, so a run both in the tree and linked to from
    it is listed once, under its own name, whichever is nearer ``folder``. ``dangling`` gets
    the links that lead nowhere (:func:`_subfolders`)."""
    seen: set[str] = set()  # the real folders visited: a run reached by a link and as itself is one
    links: list[tuple[int, Path]] = []
    visited = [0] if visited is None else visited  # (the folders visited: past ``most``, cut short)
    yield from _breadth_first([(0, folder)], levels, most, seen, visited, links, dangling)
    yield from _breadth_first(links, levels, most, seen, visited, None, dangling)


def _breadth_first(
    start: list[tuple[int, Path]],
    levels: int,
    most: int | None,
    seen: set[str],
    visited: list[int],
    links: list[tuple[int, Path]] | None,
    dangling: list[tuple[Path, str]] | None = None,
) -> Iterator[tuple[int, Path]]:
    """:func:`_walk_runs`' walk from ``start``: links below it are put in ``links`` for later,
    or followed at once when ``links`` is None (the walk of the links themselves)."""
    level = start
    while level:
        below: list[tuple[int, Path]] = []
        for depth, here in level:
            if links is not None and depth > 0 and here.is_symlink():
                links.append((depth, here))
                continue
            real = os.path.realpath(here)
            if real in seen:
                continue
            seen.add(real)
            visited[0] += 1
            if most is not None and visited[0] > most:
                return
            if is_run(here) or lost_lock(here):
                yield depth, here
            elif depth < levels:
                below += [(depth + 1, sub) for sub in _subfolders(here, dangling)]
        level = below


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _figure(value: Any) -> Any:
    """A figure of a metrics file as a row carries it: a finite number, a non-finite one as its
    stored text (``"nan"``: JSON has no NaN), or ``None`` (absent)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _is_figure(value: Any) -> bool:
    """Whether ``value`` is a number as cnnspec's JSON files store one (non-finite: as text)."""
    return finite_number(value) or isinstance(value, float) or value in NON_FINITE


def run_row(run_dir: Path, root: Path | None = None) -> dict[str, Any]:
    """One line of ``cnnspec runs``: name, date, spec hash, test accuracy, epochs, time.

    ``status`` is ``finished``, ``running`` (a live process holds its lock), ``unfinished`` or
    ``damaged``; ``problems`` says, per file,
    what is wrong with a damaged run (a value of the wrong type is left out of the row): its
    lock.json, metrics.json, or history.json (unreadable, or not columns of one number per
    epoch: ``report`` and ``visualize`` refuse such a run), a finished run's model.keras
    that is gone (``predict``, ``evaluate`` and ``export`` have nothing to load), a lock.json
    that is gone from a finished run's folder, or a resolved.yaml that is not the one training
    wrote (:func:`_resolved_problem`: ``report`` and ``evaluate`` refuse it). ``link``: the
    real folder of a run reached through a symbolic link (else ``None``)."""
    problems: list[str] = []
    lock, problem = _json(run_dir / "lock.json")
    problems += [problem] if problem else []
    readable = lock is not None  # (a lock.json that can't be read says nothing of resolved.yaml)
    metrics, problem = _json(run_dir / "metrics.json")
    problems += [problem] if problem else []
    history_doc, problem = _json(run_dir / "history.json")
    problems += [problem] if problem else []
    if history_doc is not None:
        problems += [f"history.json: {p}" for p in history_problems(history_doc)]
    lock = lock or {}

    def field(doc: dict[str, Any] | None, file: str, key: str, valid: Any, expected: str) -> Any:
        if not doc or doc.get(key) is None:
            return None
        value = doc[key]
        if valid(value):
            return _figure(value)
        problems.append(f"{file}: {wrong_type(key, value, expected)}")
        return None

    name = str(run_dir.relative_to(root)) if root is not None and run_dir != root else run_dir.name
    row = {
        "run": name,
        "path": str(run_dir),
        "spec": field(lock, "lock.json", "name", _text, "a string"),
        "date": field(lock, "lock.json", "created", _text, "a string"),
        "spec_hash": field(lock, "lock.json", "spec_hash", _text, "a string") or None,
        "test_accuracy": field(metrics, "metrics.json", "test_accuracy", _is_figure, "a number"),
        # other tasks' headline figures (test mean IoU, macro F1, MAE/R², per output)
        "headline": _headline(metrics, problems) if metrics else [],
        "epochs": field(metrics, "metrics.json", "epochs_run", _integer, "a whole number"),
        "epochs_planned": field(metrics, "metrics.json", "epochs_planned", _integer, "a whole number"),
        "seconds": field(metrics, "metrics.json", "train_seconds", _is_figure, "a number"),
        "finished": metrics is not None,
        "link": os.path.realpath(run_dir) if run_dir.is_symlink() else None,
    }
    # the other keys the commands read (name, created and spec_hash are the row's own fields)
    wrong = lock_problems(lock)
    problems += [f"lock.json: {p}" for p in wrong if f"lock.json: {p}" not in problems]
    if lost_lock(run_dir):  # (a finished run's files: not a folder of something else)
        what = "not a file" if os.path.lexists(run_dir / "lock.json") else "missing"
        problems.insert(0, f"lock.json: {what}, though the folder holds a run's " + ", ".join(RUN_FILES))
    elif readable and not wrong and (resolved := _resolved_problem(run_dir, lock)) is not None:
        problems.append(f"resolved.yaml: {resolved}")
    # (train writes model.keras before metrics.json: a finished run without it lost it since)
    if metrics is not None and not os.path.lexists(run_dir / "model.keras"):
        problems.append("model.keras: missing, though metrics.json says the run finished")
    elif metrics is not None and (broken := _model_problem(run_dir / "model.keras")) is not None:
        problems.append(f"model.keras: {broken}")
    if problems:
        row["status"] = "damaged"
    elif metrics is not None:
        row["status"] = "finished"
    elif _training(run_dir):
        row["status"] = "running"
        if isinstance(history_doc, dict):  # its epochs so far
            row["epochs"] = next((len(v) for v in history_doc.values() if isinstance(v, list)), None)
    else:
        row["status"] = "unfinished"
    row["problems"] = problems
    return row


def _model_problem(path: Path) -> str | None:
    """Why a finished run's model.keras can't be loaded (``None``: it can, as far as its archive
    tells without Keras): empty, cut short, a folder… ``evaluate`` and ``predict`` refuse it,
    and the listing said "finished". Its zip directory is read, not the weights."""
    from cnnspec.training.modelfile import check_model_file

    try:
        check_model_file(path)
    except UsageError as exc:
        return str(exc).replace(f"{path}", "it")
    return None


def _resolved_problem(run_dir: Path, lock: dict[str, Any]) -> str | None:
    """Why a run's resolved.yaml is damaged (``None``: it is not): its hash against lock.json's,
    or, for an older run whose lock.json has none, compiling it (no TensorFlow), which only
    such runs cost."""
    if isinstance(lock.get(RESOLVED_HASH), str) or not is_file(run_dir / "resolved.yaml"):
        return resolved_changed(run_dir, lock)
    from cnnspec.reporting.run import resolved_problem

    return resolved_problem(run_dir, lock)


def _training(run_dir: Path) -> bool:
    """Whether a process is training into ``run_dir`` now: it holds the folder's lock
    (:func:`~cnnspec.training.runlock.live_holder`; a killed run's lock file holds nobody). A
    run in progress and a killed one both read "unfinished" before."""
    from cnnspec.training.runlock import live_holder

    return live_holder(run_dir) is not None


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _headline(metrics: dict[str, Any], problems: list[str]) -> list[list[Any]]:
    """The task's headline figures (:func:`~cnnspec.training.task_metrics.headline`) of the
    parts of ``metrics`` that have the right types; the others are added to ``problems``."""
    from cnnspec.training.task_metrics import HEADLINE_KEYS, headline

    def checked(part: dict[str, Any], where: str) -> dict[str, Any]:
        keys = HEADLINE_KEYS.get(str(part.get("task", "classification")), HEADLINE_KEYS["classification"])
        for key, _ in keys:
            value = part.get(key)
            if value is None or _is_figure(value) or (where, key) == ("", "test_accuracy"):
                continue  # (the top-level test accuracy is run_row's own field)
            problems.append(f"metrics.json: {wrong_type(where + key, value, 'a number')}")
        # headline() converts each figure with float(): one too large for it raised OverflowError
        return {k: v for k, v in part.items() if not too_large(v)}

    outputs = metrics.get("outputs")
    if isinstance(outputs, dict):  # a multi-output run: every output's part must be an object
        for key, part in outputs.items():
            if not isinstance(part, dict):
                problems.append(f"metrics.json: outputs.{key} is {_a(_kind(part))}, expected an object")
        parts = {k: checked(v, f"outputs.{k}.") for k, v in outputs.items() if isinstance(v, dict)}
        metrics = {**metrics, "outputs": parts}
    else:
        metrics = checked(metrics, "")
    return [[label, _figure(value)] for label, value in headline(metrics)]


# -- what the commands read of a run's lock.json and history.json -------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_list_of(valid: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, list) and all(valid(item) for item in value)


#: Each lock.json key the commands read: what it must be, and how the problem says it. Older
#: cnnspec versions wrote fewer keys, and some are null (no spec file): absent or null is fine.
LOCK_KEYS: dict[str, tuple[Any, str]] = {
    "name": (_text, "a string"),
    "created": (_text, "a string"),
    "spec_file": (_text, "a string"),
    "spec_path": (_text, "a string"),
    "spec_hash": (_text, "a string"),
    "seed": (_integer, "a whole number"),
    "data": (lambda v: isinstance(v, dict), "an object"),
    "phases": (lambda v: isinstance(v, list), "a list"),
    "mixing": (lambda v: isinstance(v, dict), "an object"),
    "versions": (lambda v: isinstance(v, dict), "an object"),
    "machine": (lambda v: isinstance(v, dict), "an object"),
}
#: The same for the keys of lock.json's ``data`` (the source as training read it), …
LOCK_DATA_KEYS: dict[str, tuple[Any, str]] = {
    "kind": (_text, "a string"),
    "path": (_text, "a string"),
    "test_path": (_text, "a string"),
    "labels_path": (_text, "a string"),
    "hash": (_text, "a string"),
    "content_hash": (_text, "a string"),
    "classes": (lambda v: isinstance(v, list), "a list"),
    "sample_shape": (lambda v: isinstance(v, list), "a list"),
    "sizes": (lambda v: isinstance(v, dict), "an object"),
    "used_sizes": (lambda v: isinstance(v, dict), "an object"),
}
#: … of ``data.sizes``, ``machine`` and each of ``phases``.
LOCK_SIZES_KEYS = {split: (_is_number, "a number") for split in ("train", "validation", "test")}
LOCK_MACHINE_KEYS: dict[str, tuple[Any, str]] = {"gpus": (_is_list_of(_text), "a list of strings")}
LOCK_PHASE_KEYS: dict[str, tuple[Any, str]] = {
    "first_epoch": (_integer, "a whole number"),
    "last_epoch": (_integer, "a whole number"),
    "frozen": (lambda v: isinstance(v, list), "a list"),
    "learning_rate_scale": (lambda v: isinstance(v, dict), "an object"),
}
#: The metrics.json keys report.html reads beyond those ``runs`` does (:func:`run_row`).
REPORT_METRICS_KEYS: dict[str, tuple[Any, str]] = {
    "best_epoch": (_integer, "a whole number"),
    "stopped_early": (lambda v: isinstance(v, bool), "true or false"),
    "test_images": (_integer, "a whole number"),
    "class_names": (lambda v: isinstance(v, list), "a list"),
    "confusion_matrix": (lambda v: isinstance(v, list), "a list"),
    "per_class": (
        lambda v: isinstance(v, dict) and all(isinstance(row, dict) for row in v.values()),
        "an object of one object per class",
    ),
    "macro_avg": (lambda v: isinstance(v, dict), "an object"),
    "weighted_avg": (lambda v: isinstance(v, dict), "an object"),
}


def report_metrics_problems(metrics: dict[str, Any]) -> list[str]:
    """What is wrong with the keys of a metrics.json that report.html reads beyond ``runs``'
    (each output's part of a multi-output run too); empty: nothing."""
    problems = _keys_problems(metrics, REPORT_METRICS_KEYS)
    outputs = metrics.get("outputs")
    for key, part in outputs.items() if isinstance(outputs, dict) else ():
        if isinstance(part, dict):
            problems += _keys_problems(part, REPORT_METRICS_KEYS, f"outputs.{key}.")
    return problems


def refuse_damaged_metrics(run_dir: Path) -> None:
    """Refuse a run whose metrics.json holds a value of the wrong type, as ``cnnspec runs``
    reads it (:func:`run_row`): report's page showed "epochs zzz/zzz" and "stopped early, best
    epoch zzz", exit 0, and visualize drew its confusion matrix, where runs called the run
    damaged."""
    if not (run_dir / "metrics.json").is_file():
        return
    from cnnspec.reporting.run import damaged, read_json

    prefix = "metrics.json: "
    problems = [p.removeprefix(prefix) for p in run_row(run_dir)["problems"] if p.startswith(prefix)]
    if not problems:  # (readable: what the page reads besides, "best epoch zzz" or a crash)
        metrics = read_json(run_dir / "metrics.json")
        problems = report_metrics_problems(metrics) if metrics is not None else []
    if problems:
        raise damaged(run_dir / "metrics.json", problems)


def _keys_problems(doc: dict[str, Any], keys: dict[str, tuple[Any, str]], where: str = "") -> list[str]:
    """What has the wrong type among ``keys`` of ``doc`` (``where``: the path to ``doc``)."""
    problems = []
    for key, (valid, expected) in keys.items():
        value = doc.get(key)
        if value is not None and not valid(value):
            problems.append(wrong_type(where + key, value, expected))
    return problems


def lock_problems(lock: dict[str, Any]) -> list[str]:
    """What is wrong with the keys of a lock.json that the commands read (empty: nothing):
    each problem names the key, what it holds and what it should (``data.classes is an object
    ({'a': 1}), expected a list``). Keys the commands do not read are not checked."""
    problems = _keys_problems(lock, LOCK_KEYS)
    data, machine, phases = lock.get("data"), lock.get("machine"), lock.get("phases")
    if isinstance(data, dict):
        problems += _keys_problems(data, LOCK_DATA_KEYS, "data.")
        if isinstance(data.get("sizes"), dict):
            problems += _keys_problems(data["sizes"], LOCK_SIZES_KEYS, "data.sizes.")
        if isinstance(data.get("used_sizes"), dict):
            problems += _keys_problems(data["used_sizes"], LOCK_SIZES_KEYS, "data.used_sizes.")
    if isinstance(machine, dict):
        problems += _keys_problems(machine, LOCK_MACHINE_KEYS, "machine.")
    for index, phase in enumerate(phases if isinstance(phases, list) else []):
        if isinstance(phase, dict):
            problems += _keys_problems(phase, LOCK_PHASE_KEYS, f"phases[{index}].")
        else:
            problems.append(wrong_type(f"phases[{index}]", phase, "an object"))
    return problems


def history_problems(history: dict[str, Any]) -> list[str]:
    """What is wrong with a history.json (empty: nothing). Every column is a list of numbers
    (non-finite ones stored as text, as training writes them; ``epoch`` of whole numbers), one
    per epoch: all as long as ``epoch`` (or, without it, ``loss``), as the curves pair them."""
    problems = []
    for key, values in history.items():
        valid = _integer if key == "epoch" else _is_figure
        expected = "a whole number" if key == "epoch" else "a number"
        if not isinstance(values, list):
            problems.append(wrong_type(key, values, f"a list of {expected[2:]}s"))
            continue
        bad = next((i for i, v in enumerate(values) if not valid(v)), None)
        if bad is not None:
            problems.append(wrong_type(f"{key}[{bad}]", values[bad], expected))
    if problems:
        return problems
    reference = "epoch" if "epoch" in history else "loss" if "loss" in history else None
    if reference is None:
        return []
    count = len(history[reference])
    for key, values in history.items():
        if len(values) != count:
            problems.append(f"{key} has {len(values)} value(s), {reference} has {count} (one per epoch)")
    return problems


def _require_run(path: Path) -> None:
    refuse_unreadable(path / "lock.json", "a run folder (with lock.json)")
    if not is_run(path):
        raise UsageError(
            f"expected a run folder (with lock.json); {path} is not one",
            "cnnspec runs lists the run folders under a folder",
        )


def resolved_spec(run: Path) -> tuple[list[str] | None, str | None]:
    """The lines of a run's ``resolved.yaml`` and ``None``, or ``None`` and why there are none
    (``no resolved.yaml``, what stops it from being read, or ``resolved.yaml is damaged``: not
    the file training wrote, :func:`run_row`'s problem, whose cut or edit is no spec change)."""
    path = run / "resolved.yaml"
    if not os.path.lexists(path):
        return None, "no resolved.yaml"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        return None, "resolved.yaml is not UTF-8 text"
    except OSError as exc:
        return None, f"resolved.yaml can't be read ({exc.strerror or exc})"
    lock = _json(run / "lock.json")[0]
    if lock is not None and not lock_problems(lock) and _resolved_problem(run, lock) is not None:
        return None, "resolved.yaml is damaged"
    return lines, None


def spec_diff(a: Path, b: Path) -> list[str]:
    """The unified diff of two runs' ``resolved.yaml`` (empty: the same spec). Empty too when
    either can't be read (:func:`resolved_spec` says why): a missing file diffed as an empty
    one showed the other run's whole spec as the difference."""
    texts = [resolved_spec(run)[0] for run in (a, b)]
    if texts[0] is None or texts[1] is None:
        return []
    return list(
        difflib.unified_diff(texts[0], texts[1], f"{a}/resolved.yaml", f"{b}/resolved.yaml", lineterm="")
    )


#: The keys of a resolved spec's ``data`` that choose which images of the test split are used:
#: with these equal (and the seed and the test size), two runs of one source tested on the same
#: images, whatever else of the training selection (``limit``, ``per_class``,
#: ``validation_split``) differs.
TEST_SELECTION_KEYS = ("test_split", "classes")


def _same_test_selection(first: dict[str, Any], second: dict[str, Any], kind: str | None) -> bool:
    """Whether two resolved ``data`` sections of one source select the same test images:
    :data:`TEST_SELECTION_KEYS` alike, or ``classes`` the same classes in another order where
    the source is arrays (the digits, a Keras dataset, shapes, an .npz): their test split is
    drawn, or given, before the selection picks and relabels the classes, so the order changes
    the labels alone. Not a folder's or CSV's, whose files are selected first and then split
    by their new labels."""
    differ = [key for key in TEST_SELECTION_KEYS if first.get(key) != second.get(key)]
    if differ != ["classes"]:
        return not differ
    a, b = first.get("classes"), second.get("classes")
    reordered = isinstance(a, list) and isinstance(b, list) and sorted(map(repr, a)) == sorted(map(repr, b))
    return reordered and kind is not None and kind not in STREAMED_SOURCES


def _data_section(run: Path) -> dict[str, Any] | None:
    """The ``data`` section of a run's resolved.yaml (``None``: no such file, or not YAML of a
    mapping): what the spec selected of its source, which lock.json records only in part."""
    import yaml

    lines = resolved_spec(run)[0]
    if lines is None:
        return None
    try:
        document = yaml.safe_load("\n".join(lines))
    except (yaml.YAMLError, RecursionError):
        return None
    data = document.get("data") if isinstance(document, dict) else None
    return data if isinstance(data, dict) else None


def _with_defaults(section: dict[str, Any] | None, locked: dict[str, Any]) -> dict[str, Any] | None:
    """A resolved ``data`` section with the default of each key it leaves out that has one
    (``validation_split: 0.1``, ``cache: none``…; ``test_split: 0.2`` where the source, as
    lock.json's ``locked`` data records it, has no test set of its own): a spec writing
    ``test_split: 0.2`` and one leaving it out select alike, which comparing the sections as
    written called another selection (and other test images). Only a key left out takes it:
    ``rescale: null`` (never rescale) is not ``rescale``'s default."""
    if section is None:
        return None
    from dataclasses import MISSING, fields

    from cnnspec.analysis.settings_types import DEFAULT_TEST_SPLIT, KERAS_DATASETS, DataConfig
    from cnnspec.spec.sections import DATA_SCHEMA

    keys = DATA_SCHEMA["properties"]
    defaults = {
        field.name: field.default
        for field in fields(DataConfig)
        if field.name in keys and field.default not in (MISSING, None)
    }
    if locked.get("kind") not in (*KERAS_DATASETS, "npz") and locked.get("test_path") is None:
        defaults["test_split"] = DEFAULT_TEST_SPLIT  # as DataConfig.splits_test decides
    return {**defaults, **section}


def _test_images(data: dict[str, Any]) -> Any:
    """The number of test images a run used (``used_sizes`` leaves out files that failed to
    decode), ``None`` where lock.json records none."""
    for key in ("used_sizes", "sizes"):
        sizes = data.get(key)
        if isinstance(sizes, dict) and _integer(sizes.get("test")):
            return sizes["test"]
    return None


def data_compared(a: Path, b: Path) -> dict[str, Any]:
    """What each run trained on, from lock.json's ``data``: ``a`` and ``b`` (each ``kind``,
    ``path``, ``content_hash``, ``file_sha256``, ``test_images``, ``seed``; ``None`` where
    lock.json records none; ``lock_damage``: what is wrong with a lock.json that can't be read,
    else ``None``) and ``same``: whether the content hashes are equal (``None`` when
    either run has none). One resolved spec that read a folder whose images changed between the
    runs is not the same run: its hash says so.

    The content hash covers the images each run selected, so two selections of one file
    differ by it too; the rest tells them apart. ``source``: ``"same"`` (the file hashes are
    equal), ``"differs"`` (they differ, or the kind or path does) or ``None`` (one folder or
    CSV by path: lock.json has no hash of its files alone). ``selection``: each key of the
    resolved specs' ``data`` but ``source`` that differs, as ``{key, a, b}`` (``None``: either
    resolved.yaml can't be read). ``test_same``: whether the test images can be the same ones:
    the same test size, seed, ``test_split`` and ``classes`` (``None``: not known)."""
    sides: dict[str, Any] = {}
    sections: dict[str, dict[str, Any] | None] = {}
    read = True  # both lock.json files read: a damaged one records nothing, not another source
    for side, run in (("a", a), ("b", b)):
        found, damage = _json(run / "lock.json")
        read = read and isinstance(found, dict)
        lock = found or {}
        data = lock.get("data") if isinstance(lock.get("data"), dict) else {}
        sides[side] = {key: _text(data.get(key)) for key in ("kind", "path", "content_hash", "file_sha256")}
        # why it records nothing, where the file is damaged: the line says that, not "no hash"
        sides[side]["lock_damage"] = damage
        sides[side]["test_images"] = _test_images(data)
        sides[side]["seed"] = lock.get("seed") if _integer(lock.get("seed")) else None
        sections[side] = _with_defaults(_data_section(run), data)
    hashes = [sides[side]["content_hash"] for side in ("a", "b")]
    same = None if None in hashes else hashes[0] == hashes[1]
    files = [sides[side]["file_sha256"] for side in ("a", "b")]
    if None not in files:
        source: str | None = "same" if files[0] == files[1] else "differs"
    elif not read:  # (it said "differs": the damaged side's kind and path were None)
        source = None
    elif any(sides["a"][key] != sides["b"][key] for key in ("kind", "path")):
        source = "differs"
    elif sides["a"]["path"] is None and sections["a"] is not None and sections["b"] is not None:
        # a built-in data set (digits, mnist, shapes): the same one when the specs name it alike
        source = "same" if sections["a"].get("source") == sections["b"].get("source") else "differs"
    else:  # one folder by its path: its files may have changed between the runs or not
        source = None
    selection: list[dict[str, Any]] | None = None
    test_same: bool | None = None
    first, second = sections["a"], sections["b"]
    if first is not None and second is not None:
        keys = [key for key in _union(first, second) if key != "source"]
        selection = [
            {"key": key, "a": first.get(key), "b": second.get(key)}
            for key in keys
            if first.get(key) != second.get(key)
        ]
        counts = [sides[side]["test_images"] for side in ("a", "b")]
        seeds = [sides[side]["seed"] for side in ("a", "b")]
        if source != "differs" and None not in counts and None not in seeds:
            test_same = (
                counts[0] == counts[1]
                and seeds[0] == seeds[1]
                and _same_test_selection(first, second, sides["a"]["kind"])
            )
    return {**sides, "same": same, "source": source, "selection": selection, "test_same": test_same}


def starting_weights(run: Path) -> str:
    """Where the run's weights started, as ``runs compare`` shows it: ``random``, the
    ``--weights`` source lock.json records, or the spec's own ``weights:``/backbone sources;
    with what transfer.json says was loaded and the start of each file's SHA-256 (``runs/pre
    (loaded 15 of 17, sha256 3f2a…)``). ``not recorded``:
    a lock.json of a cnnspec that did not record ``--weights``, and no transfer.json."""
    lock = _json(run / "lock.json")[0] or {}
    report = _json(run / "transfer.json")[0]
    recorded = lock.get("weights")
    if isinstance(recorded, dict):
        text = str(recorded.get("from") or recorded.get("file") or "?")
    elif report is not None:
        text = f"the spec's {report.get('source', '?')}"
    elif "weights" in lock and recorded is None:
        return "random"
    else:
        return "not recorded"
    if report is not None:
        loaded, total = _transfer_counts(report)
        figures = [f"loaded {loaded} of {total}"] if _integer(loaded) and _integer(total) else []
        figures += [f"sha256 {digest[:12]}" for digest in _file_digests(report)]
        if figures:
            text += f" ({', '.join(figures)})"
    return text


def _transfer_counts(report: dict[str, Any]) -> tuple[Any, Any]:
    """transfer.json's loaded and total, each of the model's tensors counted once. An older
    cnnspec added its parts up: a backbone's tensors counted twice when the whole model's
    source followed (``loaded 17 of 32`` for a model of 17 tensors, all loaded). Such a report
    is told apart by its top-level total (over the whole model's part's, which counted every
    tensor of the model) and counted again from its parts: the whole model's part loaded what
    it loaded, and a tensor it skipped in a backbone's scope was loaded there unless that
    backbone skipped it too."""
    loaded, total = report.get("loaded"), report.get("total")
    parts = [part for part in report.get("parts") or [] if isinstance(part, dict)]
    whole = next((part for part in parts if not part.get("scope")), None)
    if whole is None or not all(_integer(whole.get(key)) for key in ("loaded", "total")):
        return loaded, total
    covered = whole.get("loaded_from_other_sources", 0)
    if not _integer(covered) or total == whole["total"] + covered:
        return loaded, total  # (counted per tensor already)
    again = whole["loaded"]
    for scope, skipped in ((p.get("scope"), p.get("skipped")) for p in parts if p.get("scope")):
        missed = {(s.get("layer"), s.get("weight")) for s in skipped or [] if isinstance(s, dict)}
        again += sum(
            1
            for s in whole.get("skipped") or []
            if isinstance(s, dict)
            and str(s.get("layer", "")).startswith(f"{scope}_")
            and (s.get("layer"), s.get("weight")) not in missed
        )
    return again, whole["total"]


def _file_digests(report: dict[str, Any]) -> list[str]:
    """The SHA-256 of each weights file transfer.json says the run read (one source, or each
    part's): two runs started from one path but other bytes (a pretraining run trained again
    in the same folder) differ by them."""
    parts = report.get("parts") if isinstance(report.get("parts"), list) else [report]
    return [
        str(part["sha256"])
        for part in parts
        if isinstance(part, dict) and isinstance(part.get("sha256"), str)
    ]


def metric_differences(a: Path, b: Path) -> list[dict[str, Any]]:
    """Every figure either run's metrics.json has, with a, b and b − a: the numbers at the top
    level, then a multi-output run's per output (``outputs.NAME.KEY``, ``output``: NAME).

    Nothing that differs is left out: a non-finite figure is shown as its stored text
    (``"nan"``; b − a is computed with it, ``"nan"`` or ``"inf"``), and one that only one run
    has (or holds as null) is ``None`` on the other side, which ``missing`` names (``"A"``,
    ``"B"``: the side whose metrics.json has no such key, not one that holds null). A value of
    the wrong type is left out: it makes its run damaged, which the notes say. Empty when
    either metrics.json is absent or no JSON object (an unfinished or damaged run: said apart)."""
    ma, mb = _json(a / "metrics.json")[0], _json(b / "metrics.json")[0]
    if ma is None or mb is None:
        return []
    rows = _differences(ma, mb, "", None)
    outputs_a, outputs_b = ma.get("outputs"), mb.get("outputs")
    parts_a = outputs_a if isinstance(outputs_a, dict) else {}
    parts_b = outputs_b if isinstance(outputs_b, dict) else {}
    for name in _union(parts_a, parts_b):
        part_a, part_b = parts_a.get(name), parts_b.get(name)
        if (part_a is not None and not isinstance(part_a, dict)) or (
            part_b is not None and not isinstance(part_b, dict)
        ):
            continue  # (run_row says such an output is damaged)
        rows += _differences(part_a, part_b, f"outputs.{name}.", str(name))
    return rows


def _union(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    """The keys of both, in ``first``'s order and then ``second``'s own."""
    return [*first, *(key for key in second if key not in first)]


def _differences(
    ma: dict[str, Any] | None, mb: dict[str, Any] | None, where: str, output: str | None
) -> list[dict[str, Any]]:
    """:func:`metric_differences`' rows of one part of the metrics (``None``: a part that run
    lacks, so each of the other's figures is missing there)."""
    rows = []
    for key in _union(ma or {}, mb or {}):
        va, vb = (ma or {}).get(key), (mb or {}).get(key)
        if any(value is not None and not _is_figure(value) for value in (va, vb)):
            continue  # text, a list, a boolean, a too large integer: not a figure
        if va is None and vb is None:
            continue
        missing = [side for side, part in (("A", ma), ("B", mb)) if part is None or key not in part]
        rows.append(
            {
                "metric": where + key,
                "output": output,
                "a": _figure(va),
                "b": _figure(vb),
                "difference": _difference(va, vb),
                "missing": missing,
            }
        )
    return rows


def _difference(va: Any, vb: Any) -> Any:
    """b − a: a number when both are finite, the stored text of a non-finite result when
    either is not (``"nan"``, ``"inf"``), ``None`` when either is missing."""
    if va is None or vb is None:
        return None
    if finite_number(va) and finite_number(vb):
        return vb - va
    return _figure(float(vb) - float(va))


def finite_number(value: Any) -> bool:
    """Whether ``value`` is a finite number (a :func:`too_large` integer is not one: it made
    ``math.isfinite`` raise OverflowError, and ``runs`` list nothing)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and not too_large(value)
        and math.isfinite(value)
    )


def history(run: Path) -> dict[str, list[float]]:
    """``history.json`` as numeric columns, converted as ``cnnspec visualize history`` does
    (``"nan"``/``"inf"`` back to floats); empty when the run has no usable history."""
    return _history(run)[0]


def _history(run: Path) -> tuple[dict[str, list[float]], str | None]:
    """The columns and ``None``, or ``{}`` and why the history can't be drawn."""
    if not os.path.lexists(run / "history.json"):
        return {}, None  # (compare says so apart: no history is not a damaged one)
    from cnnspec.reporting.run import Run
    from cnnspec.reporting.views import history_columns

    try:
        return history_columns(Run(model_path=run / "model.keras", run_dir=run)), None
    except UsageError as exc:
        return {}, str(exc)


#: At most this many panels in the comparison: the loss and the first figures after it.
MAX_PANELS = 4


def curve_panels(histories: list[dict[str, list[float]]]) -> list[str]:
    """The panels of the comparison: ``accuracy`` and ``loss`` as for a classifier, and for
    another task (or several outputs) its figures as training logged them (``mae``, ``r2``,
    ``mask_mean_iou``…: a regression run's comparison was its loss alone), in the first
    history's order (:func:`~cnnspec.training.plots.curve_names`, as history.png draws them),
    at most :data:`MAX_PANELS`."""
    from cnnspec.training.plots import curve_names

    return curve_names(histories)[:MAX_PANELS] or ["loss"]


def curves(a: Path, b: Path) -> dict[str, list[dict[str, Any]]]:
    """What :func:`plot_curves` draws: per panel (:func:`curve_panels`), one series per run
    and split, each with its label, line style, epochs (x) and values (y)."""
    runs = [(a, history(a), "tab:blue"), (b, history(b), "tab:orange")]
    panels = curve_panels([h for _, h, _ in runs])
    drawn: dict[str, list[dict[str, Any]]] = {}
    for key in panels:
        drawn[key] = []
        for run, values, color in runs:
            for column, split, style in ((key, "training", "-"), (f"val_{key}", "validation", "--")):
                if column not in values:
                    continue
                y = values[column]
                x = values.get("epoch") or []
                if len(x) != len(y):  # no usable epoch column: number the values
                    x = list(range(1, len(y) + 1))
                label = f"{figure_label(run.name)} {split}"
                if y and not any(math.isfinite(v) for v in y):
                    # a diverged run's series draws nothing: its legend entry says why
                    label += f" (all {_non_finite_text(y)}: not drawn)"
                drawn[key].append({"label": label, "color": color, "linestyle": style, "x": x, "y": y})
    return drawn


def _non_finite_text(values: list[float]) -> str:
    """What a series of non-finite values holds, as its legend says it: ``nan``, ``inf`` or
    ``nan/inf``."""
    kinds = sorted({"nan" if math.isnan(v) else "inf" for v in values})
    return "/".join(kinds)


def missing_curves(a: Path, b: Path) -> list[str]:
    """What :func:`curves_figure` writes under the panels: the runs whose curves it can't draw
    because they have no history.json (a damaged one is said in the notes)."""
    return [
        f"{side} ({figure_label(run.name)}): no history.json, no curves"
        for side, run in (("A", a), ("B", b))
        if not os.path.lexists(run / "history.json")
    ]


#: The most characters of a run folder's name a compare figure shows (title, legend, notes).
FIGURE_NAME_CHARS = 40


def figure_label(name: str) -> str:
    """A run folder's name as a figure's text shows it: control characters escaped as the
    terminal shows them (``\\x1b``; matplotlib's "Glyph 27 (\\x1b) missing" warning printed the
    raw ESC on stderr), and every ``$`` a literal dollar (``a$\\frac$`` was read as mathtext,
    and a name it could not parse ended ``runs compare`` with an internal error). A name longer
    than :data:`FIGURE_NAME_CHARS` is cut with an ellipsis: two 130-character names made a
    title wider than the figure ("Tight layout not applied")."""
    from cnnspec.training.plots import cut_label, literal

    return literal(cut_label(name, FIGURE_NAME_CHARS))


def plot_curves(a: Path, b: Path, target: Path) -> Path:
    """Both runs' learning curves in one PNG (marked as cnnspec's: compared again, it is
    replaced): accuracy and loss, training and validation."""
    from cnnspec.training.plots import png_bytes

    write_atomic(target, png_bytes(curves_figure(a, b)))
    return target


def curves_figure(a: Path, b: Path) -> Any:
    """The matplotlib figure :func:`plot_curves` writes."""
    from matplotlib.figure import Figure

    from cnnspec.training.plots import epoch_axis

    panels = curves(a, b)
    figure = Figure(figsize=(5.5 * max(2, len(panels)), 4), dpi=100)
    for index, (key, series) in enumerate(panels.items(), start=1):
        axes = figure.add_subplot(1, len(panels), index)
        for line in series:
            axes.plot(
                line["x"],
                line["y"],
                color=line["color"],
                linestyle=line["linestyle"],
                label=line["label"],
                marker="o",  # as history.png: a one-epoch run is a point, which a line alone never draws
                markersize=3,
            )
        epoch_axis(axes, [x for line in series for x in line["x"]])
        axes.set_xlabel("epoch")
        axes.set_title(key)
        axes.grid(alpha=0.3)
        if series:
            axes.legend(fontsize=8)
    figure.suptitle(f"{figure_label(a.name)} vs {figure_label(b.name)}")
    missing = missing_curves(a, b)
    if missing:  # a run without curves is said on the picture too, not only left out of it
        figure.text(0.5, 0.01, "; ".join(missing), ha="center", va="bottom", fontsize=8, color="tab:red")
        figure.tight_layout(rect=(0, 0.05, 1, 1))
    else:
        figure.tight_layout()
    return figure


def compare(a: Path, b: Path, png: Path) -> dict[str, Any]:
    """The two runs side by side: resolved-spec diff, starting weights and data (``data``:
    :func:`data_compared`), metric differences, overlaid curves.

    ``notes``: what is wrong with either run's files (damaged lock.json, metrics.json or
    history.json); the comparison shows what the rest of the files allow. ``missing``: what
    either run lacks that the comparison reads (resolved.yaml: ``spec_missing`` has the side and
    why, and ``spec_diff`` is then empty, never the other spec diffed against nothing;
    history.json: that run has no curves). ``unfinished``: the sides (``"A"``, ``"B"``) whose
    run has no metrics.json yet (still training, stopped or failed), so ``metrics`` is empty;
    ``metrics_damaged``: those whose metrics.json is there but no JSON object (the notes say
    why), which leaves ``metrics`` empty too."""
    _require_run(a)
    _require_run(b)
    rows = {"a": run_row(a), "b": run_row(b)}
    notes, missing = [], []
    spec_missing: dict[str, str] = {}
    for side, run in (("a", a), ("b", b)):
        # a history that can't be drawn is said once, with what it costs the comparison
        # (run_row's own "history.json: …" problem would say it a second time)
        unreadable = _history(run)[1]
        notes += [
            f"{rows[side]['path']}: {problem}"
            for problem in rows[side]["problems"]
            if unreadable is None or not problem.startswith("history.json")
        ]
        if unreadable is not None:
            notes.append(f"{run}: no learning curves drawn: {unreadable}")
        elif not os.path.lexists(run / "history.json"):
            missing.append(f"{run}: no history.json: no learning curves drawn for it")
        why = resolved_spec(run)[1]
        if why is not None:
            spec_missing[side.upper()] = why
            missing.append(f"{run}: {why}: the resolved specs are not compared")
    # a run without metrics.json has no figures to compare: said, not an empty table alone
    # (one that can't be read is a damaged run's, in the notes)
    unfinished = [side for side, run in (("A", a), ("B", b)) if not os.path.lexists(run / "metrics.json")]
    # (run_row read it: `finished` is whether its metrics.json is a JSON object)
    damaged = [side for side in ("A", "B") if side not in unfinished and not rows[side.lower()]["finished"]]
    weights = {"a": starting_weights(a), "b": starting_weights(b)}
    return {
        **rows,
        "spec_diff": spec_diff(a, b),
        "spec_missing": spec_missing,
        # part of what a run is: one resolved spec from other weights is another run
        "starting_weights": weights,
        # part of what a run is too: one resolved spec read from changed images is another run
        "data": data_compared(a, b),
        "metrics": metric_differences(a, b),
        "curves": str(plot_curves(a, b, png)),
        "notes": notes,
        "missing": missing,
        "unfinished": unfinished,
        "metrics_damaged": damaged,
    }
