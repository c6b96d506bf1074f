"""Run folders listed and compared (``cnnspec runs``): plain files, no TensorFlow.

A run folder is a folder with a ``lock.json`` (written when a run starts); ``metrics.json``
says it finished, ``history.json`` holds its per-epoch values and ``resolved.yaml`` its spec.

Every file is checked where it is read: a file that is not a JSON object, or a figure that is
not a number, makes its run "damaged" with a problem that names the file and what is wrong;
it never stops the other runs from being listed.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cnnspec.errors import UsageError
from cnnspec.fileio import write_atomic

#: How deep under FOLDER run folders are looked for (a search's trials are one level down).
MAX_DEPTH = 3
#: When nothing is found within MAX_DEPTH: how much deeper, and through how many folders at
#: most, a run folder is looked for (only to say where the runs are).
DEEPER_LEVELS = 6
DEEPER_FOLDERS = 2000
#: How non-finite numbers are stored in cnnspec's JSON files (``str(float("nan"))`` …).
NON_FINITE = ("nan", "inf", "-inf")


def _json(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON object in ``path`` and ``None``, or ``None`` and what is wrong with the file
    (``None, None``: there is no such file)."""
    if not path.is_file():
        return None, None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{path.name} can't be read ({getattr(exc, 'strerror', None) or exc})"
    except ValueError as exc:
        return None, f"{path.name} is not valid JSON ({exc})"
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


def is_run(folder: Path) -> bool:
    return (folder / "lock.json").is_file()


def _subfolders(here: Path) -> list[Path]:
    try:
        return sorted(p for p in here.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return []


def find_runs(folder: Path) -> list[Path]:
    """Every run folder at or under ``folder`` (to :data:`MAX_DEPTH`), oldest first."""
    if not folder.is_dir():
        raise UsageError(
            f"expected a folder of runs; {folder} is not a folder", "train a spec first: cnnspec train"
        )
    found = [run for _, run in _walk_runs(folder, MAX_DEPTH)]
    return sorted(
        found, key=lambda p: (_text((_json(p / "lock.json")[0] or {}).get("created")) or "", str(p))
    )


def deeper_run(folder: Path) -> Path | None:
    """A run folder more than :data:`MAX_DEPTH` levels below ``folder`` (the first found,
    breadth first), for the hint when :func:`find_runs` finds none. The search stops after
    :data:`DEEPER_LEVELS` more levels or :data:`DEEPER_FOLDERS` folders, so a huge tree (a
    home folder, a virtual environment) costs little."""
    deeper = _walk_runs(folder, MAX_DEPTH + DEEPER_LEVELS, DEEPER_FOLDERS)
    return next((run for depth, run in deeper if depth > MAX_DEPTH), None)


def _walk_runs(folder: Path, levels: int, most: int | None = None) -> Iterator[tuple[int, Path]]:
    """``(depth, run folder)`` breadth first, to ``levels`` below ``folder`` (a run folder's own
    sub-folders are not searched), stopping after ``most`` folders when given."""
    level, visited = [folder], 0
    for depth in range(levels + 1):
        below: list[Path] = []
        for here in level:
            visited += 1
            if most is not None and visited > most:
                return
            if is_run(here):
                yield depth, here
                continue
            below += _subfolders(here)
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
    return _number(value) or isinstance(value, float) or value in NON_FINITE


def run_row(run_dir: Path, root: Path | None = None) -> dict[str, Any]:
    """One line of ``cnnspec runs``: name, date, spec hash, test accuracy, epochs, time.

    ``status`` is ``finished``, ``unfinished`` or ``damaged``; ``problems`` says, per file,
    what is wrong with a damaged run (a value of the wrong type is left out of the row)."""
    problems: list[str] = []
    lock, problem = _json(run_dir / "lock.json")
    problems += [problem] if problem else []
    metrics, problem = _json(run_dir / "metrics.json")
    problems += [problem] if problem else []
    lock = lock or {}

    def field(doc: dict[str, Any] | None, file: str, key: str, valid: Any, expected: str) -> Any:
        if not doc or doc.get(key) is None:
            return None
        value = doc[key]
        if valid(value):
            return _figure(value)
        problems.append(f"{file}: {key} is {_a(_kind(value))} ({value!r:.40}), expected {expected}")
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
    }
    row["status"] = "damaged" if problems else "finished" if metrics is not None else "unfinished"
    row["problems"] = problems
    return row


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
            problems.append(f"metrics.json: {where}{key} is {_a(_kind(value))}, expected a number")
        return part

    outputs = metrics.get("outputs")
    if isinstance(outputs, dict):  # a multi-output run: every output's part must be an object
        for key, part in outputs.items():
            if not isinstance(part, dict):
                problems.append(f"metrics.json: outputs.{key} is {_a(_kind(part))}, expected an object")
        parts = {k: checked(v, f"outputs.{k}.") for k, v in outputs.items() if isinstance(v, dict)}
        metrics = {**metrics, "outputs": parts}
    else:
        checked(metrics, "")
    return [[label, _figure(value)] for label, value in headline(metrics)]


def _require_run(path: Path) -> None:
    if not is_run(path):
        raise UsageError(
            f"expected a run folder (with lock.json); {path} is not one",
            "cnnspec runs lists the run folders under a folder",
        )


def spec_diff(a: Path, b: Path) -> list[str]:
    """The unified diff of two runs' ``resolved.yaml`` (empty: the same spec)."""
    texts = []
    for run in (a, b):
        try:
            texts.append((run / "resolved.yaml").read_text(encoding="utf-8").splitlines())
        except (OSError, UnicodeDecodeError):
            texts.append([])
    return list(
        difflib.unified_diff(texts[0], texts[1], f"{a}/resolved.yaml", f"{b}/resolved.yaml", lineterm="")
    )


def starting_weights(run: Path) -> str:
    """Where the run's weights started, as ``runs compare`` shows it: ``random``, the
    ``--weights`` source lock.json records, or the spec's own ``weights:``/backbone sources;
    with what transfer.json says was loaded (``runs/pre (loaded 15 of 17)``). ``not recorded``:
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
        loaded, total = report.get("loaded"), report.get("total")
        if _integer(loaded) and _integer(total):
            text += f" (loaded {loaded} of {total})"
    return text


def metric_differences(a: Path, b: Path) -> list[dict[str, Any]]:
    """Every number both runs' metrics.json have at the top level: a, b and b − a."""
    ma, mb = _json(a / "metrics.json")[0] or {}, _json(b / "metrics.json")[0] or {}
    rows = []
    for key in ma:
        va, vb = ma.get(key), mb.get(key)
        if _number(va) and _number(vb):
            rows.append({"metric": key, "a": va, "b": vb, "difference": vb - va})
    return rows


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def history(run: Path) -> dict[str, list[float]]:
    """``history.json`` as numeric columns, converted as ``cnnspec visualize history`` does
    (``"nan"``/``"inf"`` back to floats); empty when the run has no usable history."""
    return _history(run)[0]


def _history(run: Path) -> tuple[dict[str, list[float]], str | None]:
    """The columns and ``None``, or ``{}`` and why the history can't be drawn."""
    if not (run / "history.json").is_file():
        return {}, None
    from cnnspec.reporting.run import Run
    from cnnspec.reporting.views import history_columns

    try:
        return history_columns(Run(model_path=run / "model.keras", run_dir=run)), None
    except UsageError as exc:
        return {}, str(exc)


def curves(a: Path, b: Path) -> dict[str, list[dict[str, Any]]]:
    """What :func:`plot_curves` draws: per panel (``accuracy``, ``loss``), one series per run
    and split, each with its label, line style, epochs (x) and values (y)."""
    runs = [(a, history(a), "tab:blue"), (b, history(b), "tab:orange")]
    panels = [k for k in ("accuracy", "loss") if any(k in h for _, h, _ in runs)] or ["loss"]
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
                drawn[key].append(
                    {"label": f"{run.name} {split}", "color": color, "linestyle": style, "x": x, "y": y}
                )
    return drawn


def plot_curves(a: Path, b: Path, target: Path) -> Path:
    """Both runs' learning curves in one PNG: accuracy and loss, training and validation."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = curves(a, b)
    figure = Figure(figsize=(11, 4), dpi=100)
    for index, (key, series) in enumerate(panels.items(), start=1):
        axes = figure.add_subplot(1, len(panels), index)
        for line in series:
            axes.plot(
                line["x"], line["y"], color=line["color"], linestyle=line["linestyle"], label=line["label"]
            )
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("epoch")
        axes.set_title(key)
        axes.grid(alpha=0.3)
        if series:
            axes.legend(fontsize=8)
    figure.suptitle(f"{a.name} vs {b.name}")
    figure.tight_layout()
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    write_atomic(target, buffer.getvalue())
    return target


def compare(a: Path, b: Path, png: Path) -> dict[str, Any]:
    """The two runs side by side: resolved-spec diff and starting weights, metric differences,
    overlaid curves.

    ``notes``: what is wrong with either run's files (damaged lock.json, metrics.json or
    history.json); the comparison shows what the rest of the files allow."""
    _require_run(a)
    _require_run(b)
    rows = {"a": run_row(a), "b": run_row(b)}
    notes = [f"{rows[side]['path']}: {problem}" for side in rows for problem in rows[side]["problems"]]
    for run in (a, b):
        problem = _history(run)[1]
        if problem:
            notes.append(f"{run}: no learning curves drawn: {problem}")
    weights = {"a": starting_weights(a), "b": starting_weights(b)}
    return {
        **rows,
        "spec_diff": spec_diff(a, b),
        # part of what a run is: one resolved spec from other weights is another run
        "starting_weights": weights,
        "metrics": metric_differences(a, b),
        "curves": str(plot_curves(a, b, png)),
        "notes": notes,
    }
