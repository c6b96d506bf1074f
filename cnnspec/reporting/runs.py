"""Run folders listed and compared (``cnnspec runs``): plain files, no TensorFlow.

A run folder is a folder with a ``lock.json`` (written when a run starts); ``metrics.json``
says it finished, ``history.json`` holds its per-epoch values and ``resolved.yaml`` its spec.
"""

from __future__ import annotations

import difflib
import json
import math
from pathlib import Path
from typing import Any

from cnnspec.errors import UsageError
from cnnspec.fileio import write_atomic

#: How deep under FOLDER run folders are looked for (a search's trials are one level down).
MAX_DEPTH = 3


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_run(folder: Path) -> bool:
    return (folder / "lock.json").is_file()


def find_runs(folder: Path) -> list[Path]:
    """Every run folder at or under ``folder`` (to :data:`MAX_DEPTH`), oldest first."""
    if not folder.is_dir():
        raise UsageError(
            f"expected a folder of runs; {folder} is not a folder", "train a spec first: cnnspec train"
        )
    found: list[Path] = []
    level = [folder]
    for _ in range(MAX_DEPTH + 1):
        below: list[Path] = []
        for here in level:
            if is_run(here):
                found.append(here)
                continue
            try:
                below += sorted(p for p in here.iterdir() if p.is_dir() and not p.is_symlink())
            except OSError:
                continue
        level = below
    return sorted(found, key=lambda p: (str((_json(p / "lock.json") or {}).get("created", "")), str(p)))


def run_row(run_dir: Path, root: Path | None = None) -> dict[str, Any]:
    """One line of ``cnnspec runs``: name, date, spec hash, test accuracy, epochs, time."""
    lock = _json(run_dir / "lock.json") or {}
    metrics = _json(run_dir / "metrics.json")
    name = str(run_dir.relative_to(root)) if root is not None and run_dir != root else run_dir.name
    return {
        "run": name,
        "path": str(run_dir),
        "spec": lock.get("name"),
        "date": lock.get("created"),
        "spec_hash": str(lock.get("spec_hash", ""))[:12] or None,
        "test_accuracy": metrics.get("test_accuracy") if metrics else None,
        # other tasks' headline figures (test mean IoU, macro F1, MAE/R², per output)
        "headline": _headline(metrics) if metrics else [],
        "epochs": metrics.get("epochs_run") if metrics else None,
        "epochs_planned": metrics.get("epochs_planned") if metrics else None,
        "seconds": metrics.get("train_seconds") if metrics else None,
        "finished": metrics is not None,
    }


def _headline(metrics: dict[str, Any]) -> list[list[Any]]:
    from cnnspec.training.task_metrics import headline

    return [[label, value] for label, value in headline(metrics)]


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
        except OSError:
            texts.append([])
    return list(
        difflib.unified_diff(texts[0], texts[1], f"{a}/resolved.yaml", f"{b}/resolved.yaml", lineterm="")
    )


def metric_differences(a: Path, b: Path) -> list[dict[str, Any]]:
    """Every number both runs' metrics.json have at the top level: a, b and b − a."""
    ma, mb = _json(a / "metrics.json") or {}, _json(b / "metrics.json") or {}
    rows = []
    for key in ma:
        va, vb = ma.get(key), mb.get(key)
        if _number(va) and _number(vb):
            rows.append({"metric": key, "a": va, "b": vb, "difference": vb - va})
    return rows


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def history(run: Path) -> dict[str, list[float]]:
    data = _json(run / "history.json")
    return data if isinstance(data, dict) else {}


def plot_curves(a: Path, b: Path, target: Path) -> Path:
    """Both runs' learning curves in one PNG: accuracy and loss, training and validation."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    runs = [(a, history(a), "tab:blue"), (b, history(b), "tab:orange")]
    panels = [k for k in ("accuracy", "loss") if any(k in h for _, h, _ in runs)] or ["loss"]
    figure = Figure(figsize=(11, 4), dpi=100)
    for index, key in enumerate(panels, start=1):
        axes = figure.add_subplot(1, len(panels), index)
        for run, values, color in runs:
            epochs = values.get("epoch") or list(range(1, len(values.get(key, [])) + 1))
            if key in values:
                axes.plot(epochs, values[key], color=color, label=f"{run.name} training")
            if f"val_{key}" in values:
                axes.plot(
                    epochs, values[f"val_{key}"], color=color, linestyle="--", label=f"{run.name} validation"
                )
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("epoch")
        axes.set_title(key)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.suptitle(f"{a.name} vs {b.name}")
    figure.tight_layout()
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    write_atomic(target, buffer.getvalue())
    return target


def compare(a: Path, b: Path, png: Path) -> dict[str, Any]:
    """The two runs side by side: resolved-spec diff, metric differences, overlaid curves."""
    _require_run(a)
    _require_run(b)
    return {
        "a": run_row(a),
        "b": run_row(b),
        "spec_diff": spec_diff(a, b),
        "metrics": metric_differences(a, b),
        "curves": str(plot_curves(a, b, png)),
    }
