"""``report.html``: one self-contained page per run (``cnnspec report``, and the end of ``train``).

Every picture is inlined as a ``data:`` URI and the page carries a Content-Security-Policy that
forbids loading anything from elsewhere (no scripts at all, no fonts, no remote images), so
the file can be mailed, archived or opened offline and looks the same. Parts that cannot be
made (no model, data no longer available) are listed as notes instead of failing the page.

The page is rendered from ``templates/report.html.j2`` with Jinja autoescaping on: spec names,
descriptions and class names are user text and end up escaped.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.analysis.settings_types import rate_scale_text
from cnnspec.errors import SpecError, UsageError, printable
from cnnspec.fileio import read_head
from cnnspec.paths import refuse_unreadable
from cnnspec.reporting.run import MODEL_FILE, Run, locate
from cnnspec.reporting.runs import finite_number
from cnnspec.training.badfiles import BAD_FILES

TEMPLATE = "report.html.j2"
SAMPLES = 24
MISTAKES = 12
POOL = 2000  # test images predicted for the samples and mistakes
#: The generator tag in the head of every page the template renders (``cnnspec`` and the
#: version): ``report -o PAGE`` replaces an existing PAGE only when it has it (:func:`is_report`).
GENERATOR_TAG = re.compile(rb'<meta name="generator" content="cnnspec(?: [^"<>]*)?">')
#: How much of a file :func:`is_report` reads: the tag is in the page's first lines.
REPORT_HEAD_BYTES = 4096


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def is_report(path: str | Path) -> bool:
    """Whether the file at ``path`` is a report page cnnspec wrote: its first
    :data:`REPORT_HEAD_BYTES` hold the :data:`GENERATOR_TAG`. ``False`` for anything else, and
    for a file that can't be read."""
    head = read_head(path, REPORT_HEAD_BYTES)
    return head is not None and GENERATOR_TAG.search(head) is not None


def _file_uri(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data_uri(data) if data.startswith(b"\x89PNG") else None


def _pct(value: Any) -> str:
    return f"{value:.2%}" if finite_number(value) else _not_a_figure(value)


def _num(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if finite_number(value) else _not_a_figure(value)


def _not_a_figure(value: Any) -> str:
    """A figure that is absent ("–") or not a number: NaN or infinity from a diverged run
    (stored as a number, or as JSON's text "nan")."""
    text = str(value).lower() if isinstance(value, (int, float, str)) else ""
    return "not a number (the run diverged)" if text in ("nan", "inf", "-inf") else "–"


def _mixing_text(kind: Any, settings: Any) -> str:
    """``mixup, alpha 0.2`` (``mix_switch 0.5``) from lock.json's ``mixing`` entry (any other
    shape as it is)."""
    if not isinstance(settings, dict):
        return f"{kind} {settings}"
    return ", ".join([str(kind), *(f"{name} {value}" for name, value in settings.items())])


def _optimizer_text(config: Any) -> str:
    """``adam at 0.003 (use_ema True, ema_momentum 0.5); validation, early stopping and
    checkpoints on the averaged weights``: the (first phase's) optimizer, its rate and settings."""
    optimizer = config.phases[0].optimizer
    rate = optimizer.learning_rate
    text = f"{optimizer.name} at {rate:g}" if isinstance(rate, float) else f"{optimizer.name}, {rate.kind}"
    if optimizer.settings:
        shown = {
            key: str(value).lower() if isinstance(value, bool) else value
            for key, value in optimizer.settings.items()
        }
        text += " (" + ", ".join(f"{key} {value}" for key, value in shown.items()) + ")"
    if len(config.phases) > 1:
        text += f" in phase 1 of {len(config.phases)} (the curves' caption lists each phase)"
    elif config.phases[0].rate_scale:  # (one phase: no caption lists them)
        text += f"; {rate_scale_text(dict(config.phases[0].rate_scale), config.phases[0].frozen)}"
    if config.averages_weights:
        text += "; validation, early stopping and checkpoints on the averaged weights"
    return text


def _meta(run: Run) -> dict[str, Any]:
    from cnnspec.version import __version__

    lock = run.lock or {}
    data = lock.get("data") or {}
    versions = lock.get("versions") or {}
    rows: list[tuple[str, str]] = []
    if lock.get("created"):
        rows.append(("trained", str(lock["created"]).replace("T", " ")))
    if lock.get("spec_file"):
        rows.append(("spec", str(lock["spec_file"])))
    if data:
        sizes = _used_sizes(run, data)
        where = data.get("path")
        text = str(data.get("kind", "?")) + (f" ({where})" if where else "")
        if sizes:
            text += f": {sizes.get('train', 0):,} training, {sizes.get('validation', 0):,} validation, "
            text += f"{sizes.get('test', 0):,} test images"
        if data.get("sample_shape"):
            text += " of " + "×".join(str(d) for d in data["sample_shape"])
        rows.append(("data", text))
        left_out = _bad_file_count(run)
        if left_out:
            rows.append(
                (
                    "bad files",
                    f"{left_out:,} image file(s) left out as unreadable (data.on_bad_file: skip); "
                    f"listed in {BAD_FILES}",
                )
            )
    if "seed" in lock:
        rows.append(("seed", f"{lock['seed']}" + (" (deterministic)" if lock.get("deterministic") else "")))
    if run.config is not None and run.config.phases:
        rows.append(("optimizer", _optimizer_text(run.config)))
    mixing = lock.get("mixing")
    if isinstance(mixing, dict) and mixing:  # {kind: {setting: amount}} per key; mix_switch: share
        rows.append(
            ("label mixing", "; ".join(_mixing_text(kind, settings) for kind, settings in mixing.items()))
        )
    if versions:
        rows.append(
            ("software", ", ".join(f"{k} {v}" for k, v in versions.items() if v and v != "not installed"))
        )
    machine = lock.get("machine") or {}
    if machine:
        gpus = machine.get("gpus") or []
        rows.append(
            ("machine", f"{machine.get('platform', '?')}, {machine.get('cpu_count', '?')} CPUs"
             + (f", GPU: {', '.join(gpus)}" if gpus else ""))
        )  # fmt: skip
    if lock.get("spec_hash"):
        rows.append(("spec hash", str(lock["spec_hash"])[:16] + "…"))
    description = ""
    if run.compiled is not None:
        description = str(run.compiled.resolved.get("description") or "")
    return {
        "name": run.name,
        "description": description,
        "rows": rows,
        "cnnspec_version": __version__,
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "run_dir": str(run.run_dir or run.model_path.parent),
    }


def _used_sizes(run: Run, data: dict[str, Any]) -> dict[str, Any]:
    """The images of each split the run read: metrics.json's counts, else lock.json's
    ``data.used_sizes`` (both leave out files that failed to decode), else its listing's
    ``data.sizes``; the counts the Results card's test images agree with."""
    sizes = dict(data.get("used_sizes") or data.get("sizes") or {})
    metrics = run.metrics() or {}
    for split, key in (
        ("train", "train_images"),
        ("validation", "validation_images"),
        ("test", "test_images"),
    ):
        value = metrics.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and sizes:
            sizes[split] = value
    return sizes


def _bad_file_count(run: Run) -> int:
    """How many files the run left out as unreadable: the lines of its ``bad_files.txt``."""
    folder = run.run_dir
    path = folder / BAD_FILES if folder is not None else None
    if path is None or not path.is_file():
        return 0
    try:
        return sum(1 for line in path.read_bytes().splitlines() if line.strip())
    except OSError:  # (unreadable: the page is still written, without the count)
        return 0


def _card(label: str, value: str, sub: str = "", primary: bool = False) -> dict[str, Any]:
    return {"label": label, "value": value, "sub": sub, "primary": primary}


def _cards(metrics: dict[str, Any], total_params: int | None) -> list[dict[str, Any]]:
    """The key figures at the top of the page."""
    cards: list[dict[str, Any]] = []
    if metrics.get("task", "classification") != "classification":
        from cnnspec.training.task_metrics import headline

        n = metrics.get("test_images")
        sub = f"{n:,} test images" if isinstance(n, int) else ""
        for index, (label, value) in enumerate(headline(metrics)):
            cards.append(_card(label, _num(value), sub, primary=index == 0))
    elif "test_accuracy" in metrics:
        n = metrics.get("test_images")
        sub = f"{n:,} test images" if isinstance(n, int) else ""
        cards.append(_card("test accuracy", _pct(metrics["test_accuracy"]), sub, primary=True))
    if "test_loss" in metrics:
        cards.append(_card("test loss", _num(metrics["test_loss"])))
    if "macro_f1" in metrics:
        cards.append(
            _card("macro F1", _num(metrics["macro_f1"]), f"weighted {_num(metrics.get('weighted_f1'))}")
        )
    for key, label in (
        ("final_val_accuracy", "validation accuracy"),
        ("final_accuracy", "training accuracy"),
    ):
        if isinstance(metrics.get(key), (int, float)):
            cards.append(_card(label, _pct(metrics[key]), "last epoch"))
    if "epochs_run" in metrics:
        subs = ["stopped early"] if metrics.get("stopped_early") else []
        if metrics.get("best_epoch"):
            subs.append(f"best epoch {metrics['best_epoch']}")
        planned = metrics.get("epochs_planned", "?")
        cards.append(_card("epochs", f"{metrics['epochs_run']}/{planned}", ", ".join(subs)))
    seconds = metrics.get("train_seconds")
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
        sub = speed_text(metrics)  # as `cnnspec train` prints it
        # a non-finite time reads as the other non-finite figures do, never "nan s"
        shown = f"{seconds:.1f} s" if finite_number(seconds) else _not_a_figure(seconds)
        cards.append(_card("training time", shown, sub))
    if total_params is not None:
        from cnnspec.analysis.report import human_bytes

        cards.append(_card("parameters", f"{total_params:,}", f"{human_bytes(total_params * 4)} as float32"))
    return cards


def speed_text(metrics: dict[str, Any]) -> str:
    """The training speed, as ``cnnspec train`` prints it and the report's training-time card
    shows it: ``1,253 images/s overall, 876 images/s steady``. *overall*: the images of every
    epoch over the whole training time (``images_per_second``); *steady*: the images of an
    epoch over the median time of the epochs that build no model function
    (``images_per_second_steady``, :func:`cnnspec.training.epochs.steady_epoch_seconds`).
    Each figure is labelled: the two differ, and one "images/s" of each read as a mistake."""
    figures = []
    for key, label in (("images_per_second", "overall"), ("images_per_second_steady", "steady")):
        value = metrics.get(key)
        if finite_number(value):
            figures.append(f"{value:,.0f} images/s {label}")
    return ", ".join(figures)


def _report_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    per_class = metrics.get("per_class")
    if not isinstance(per_class, dict) or not per_class:
        return []

    def row(name: str, values: dict[str, Any], support: Any, total: bool = False) -> dict[str, Any]:
        f1 = values.get("f1")
        return {
            "name": name,
            # (null: undefined, a class without test images has no recall or F1)
            "precision": _num(values.get("precision")) if values.get("precision", 0) is not None else "n/a",
            "recall": _num(values.get("recall")) if values.get("recall", 0) is not None else "n/a",
            "f1": _num(f1) if "f1" not in values or f1 is not None else "n/a",
            # only a finite F1 is drawn as a bar: round() of NaN (a JSON NaN) raised ValueError
            "bar": round(100 * f1) if finite_number(f1) else 0,
            # a present F1 that is no number (a diverged class) is as weak as a low one
            "low": f1 is not None and not (finite_number(f1) and f1 >= 0.8),
            "support": f"{support:,}" if isinstance(support, int) else "",
            "total": total,
        }

    rows = [row(str(name), values, values.get("support")) for name, values in per_class.items()]
    total = sum(v.get("support", 0) for v in per_class.values() if isinstance(v.get("support"), int))
    for key, label in (("macro_avg", "macro average"), ("weighted_avg", "weighted average")):
        if isinstance(metrics.get(key), dict):
            rows.append(row(label, metrics[key], total, total=True))
    return rows


def _layers(run: Run) -> tuple[list[dict[str, Any]], dict[str, str], str, int | None]:
    if run.compiled is None:
        return [], {}, "", None
    from cnnspec.analysis.report import human_count, shape_text, summary

    info = summary(run.compiled.ir)
    rows = []
    group = ""
    for layer in info["layers"]:
        header = ""
        if layer["group"] != group:
            group = layer["group"]
            header = group
        rows.append(
            {
                "group_header": header,
                "indent": "\u00a0\u00a0" * (layer["group"].count("/") + 1) if layer["group"] else "",
                "name": layer["name"],
                "kind": layer["kind"],
                "shape": shape_text(layer["output_shape"]),
                "params": f"{layer['params']:,}",
                "macs": human_count(layer["macs"]) if layer["macs"] else "",
            }
        )
    totals = {"params": f"{info['total_params']:,}", "macs": human_count(info["macs"])}
    line = (
        f"input {shape_text(info['input_shape'])} → output {shape_text(info['output_shape'])}; "
        f"{info['total_params']:,} parameters ({info['trainable_params']:,} trainable), "
        f"{human_count(info['macs'])} multiply-accumulates per image."
    )
    return rows, totals, line, int(info["total_params"])


def _history_uri(run: Run, notes: list[str], into_run: bool = True) -> str | None:
    """The learning curves as a data URI: the run's history.png, drawn again from history.json
    when it is missing or older (a resumed run that was stopped again has not drawn it). Drawn
    into the run folder when this process may write there (``into_run``), else aside."""
    assert run.run_dir is not None
    path = run.run_dir / "history.png"
    history = run.run_dir / "history.json"
    if history.is_file() and (not path.is_file() or _older(path, history)):
        from cnnspec.reporting.views import write_history

        try:
            if into_run:
                write_history(run, path)
            else:
                with tempfile.TemporaryDirectory(prefix="cnnspec-report-") as aside:
                    return _file_uri(write_history(run, Path(aside) / "history.png"))
        except UsageError as exc:
            notes.append(f"training curves unavailable: {exc}")
    if not os.path.lexists(history):  # said, not left to the caption or an absent section
        shown = (
            "the curves are the run's own history.png" if path.is_file() else "there are no training curves"
        )
        notes.append(f"history.json is missing: {shown}")
    return _file_uri(path) if path.is_file() else None


def _curve_data(run: Run) -> str:
    """What the learning curves were measured on: history.json has ``val_…`` columns when the
    run had a validation split. Without history.json that can't be told (the run may well
    have had one): the caption says the history is missing, never "no validation split"."""
    if run.run_dir is None or not os.path.lexists(run.run_dir / "history.json"):
        return "run's data (its history.json is missing, so which splits they show is unknown)"
    history = run.history() or {}
    validated = any(str(key).startswith("val_") for key in history)
    return "training and validation data" if validated else "training data (the run had no validation split)"


def _curve_names(run: Run) -> str:
    """What the learning curves show, as the caption says it: ``accuracy and loss`` for a
    classifier, ``loss, mae and r2`` for a regression (the panels of history.png, in its order:
    :func:`~cnnspec.training.plots.curve_names`), at most six names and then how many more."""
    from cnnspec.training.plots import MAX_HISTORY_PANELS, curve_names

    names = curve_names([_history_json(run)])[:MAX_HISTORY_PANELS] or ["loss"]
    shown = [printable(name) for name in names[:6]]
    if len(names) > 6:
        return ", ".join(shown) + f" and {len(names) - 6} more"
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def _history_json(run: Run) -> dict[str, Any]:
    """history.json, or nothing when it is missing or damaged (the curves' note says why)."""
    try:
        return run.history() or {}
    except UsageError:
        return {}


def _older(path: Path, than: Path) -> bool:
    try:
        return path.stat().st_mtime < than.stat().st_mtime
    except OSError:
        return False


def _phases(lock: dict[str, Any], metrics: dict[str, Any], history: dict[str, Any]) -> list[str]:
    """One line per phase of a ``training.phases`` run, for the curves' caption: as it ran
    (lock.json plans the phases; metrics.json or history.json say how many epochs ran), so
    after early stopping a phase ends at the last epoch run and one that never started says
    so. Empty for a run of one phase."""
    phases = lock.get("phases") or []
    if len(phases) < 2:
        return []
    ran = _epochs_run(metrics, history)
    if ran is None:
        why = ""
    elif metrics.get("stopped_early") is True:
        why = f"stopped early at epoch {ran}"
    elif metrics:
        why = f"training ended at epoch {ran}"
    else:
        why = f"the unfinished run has reached epoch {ran}"
    lines = []
    for index, phase in enumerate(phases, start=1):
        phase = phase if isinstance(phase, dict) else {}
        rate = phase.get("learning_rate")
        scheduled = not isinstance(rate, (int, float))
        rate_text = "with a learning-rate schedule" if scheduled else f"at learning rate {rate:g}"
        frozen = len(phase.get("frozen") or [])
        first, last = phase.get("first_epoch"), phase.get("last_epoch")
        planned = f"epochs {first}–{last}"
        settings = f"{frozen} layer(s) frozen, {phase.get('optimizer')} {rate_text}"
        scale = phase.get("learning_rate_scale")
        scaled = rate_scale_text(scale, phase.get("frozen") or []) if isinstance(scale, dict) else ""
        settings += f" ({scaled})" if scaled else ""
        if ran is None or not _whole(first) or not _whole(last) or ran >= last:
            lines.append(f"phase {index}: {planned}, {settings}")
        elif ran >= first:
            lines.append(f"phase {index}: epochs {first}–{ran} (planned {first}–{last}; {why}), {settings}")
        else:
            lines.append(f"phase {index}: not run ({why}); planned {planned}, {settings}")
    return lines


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _epochs_run(metrics: dict[str, Any], history: dict[str, Any]) -> int | None:
    """How many epochs the run trained: metrics.json's ``epochs_run`` (a finished run), else
    the last epoch history.json records (``None``: neither says)."""
    if _whole(metrics.get("epochs_run")):
        return int(metrics["epochs_run"])
    epochs = history.get("epoch")
    if isinstance(epochs, list) and epochs and all(_whole(e) for e in epochs):
        return int(epochs[-1])
    return None


def _confusion(metrics: dict[str, Any], run: Run, notes: list[str]) -> tuple[str | None, str]:
    """The confusion matrix beside the per-class table, as a data URI, and which data it is of
    (for its caption). Both come from metrics.json, so they are of the same predictions: the
    training's test set. The confusion_matrix.png in the run folder is not what the page shows:
    ``cnnspec evaluate`` (with ``--runtime``, on changed data) may have drawn another one there."""
    from cnnspec.training.plots import confusion_png

    matrix, names = metrics.get("confusion_matrix"), metrics.get("class_names")
    if isinstance(names, list) and not names:
        names = None
    if names is None and isinstance(metrics.get("per_class"), dict):  # an older metrics.json
        names = list(metrics["per_class"])
    shaped = (
        isinstance(matrix, list)
        and isinstance(names, list)
        and len(matrix) == len(names)
        and all(isinstance(row, list) and len(row) == len(names) for row in matrix)
        and all(_whole(v) and 0 <= v < 2**62 for row in matrix for v in row)  # counts int64 holds
    )
    if not shaped:
        notes.append("confusion matrix unavailable: metrics.json has no confusion matrix of its classes")
        return None, ""
    assert isinstance(matrix, list) and isinstance(names, list)
    counts = np.asarray(matrix, dtype="int64")
    total = int(counts.sum())
    accuracy = float(np.trace(counts) / total) if total else 0.0
    what = f"the training's test set ({total:,} images)"
    # the title the training gave confusion_matrix.png: the picture it drew a moment ago is
    # reused when this page is written at the end of a training (plots.confusion_png)
    title = f"{run.name}: confusion matrix (test accuracy {accuracy:.4f})"
    return data_uri(confusion_png(counts.tolist(), [str(n) for n in names], title)), what


#: What each task's picture shows (the file the trainer wrote, by task).
_TASK_CAPTIONS = {
    "regression": "Predicted against true values on the test set; the dashed line is a perfect prediction.",
    "segmentation": "Test images with the true and the predicted mask (class 0 left clear).",
    "multilabel": "Precision, recall and F1 of each label on the test set.",
    "classification": "True class in rows, predicted class in columns; the diagonal counts the correct "
    "predictions.",
}


def _task_figures(run: Run, metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per output of a model that is not a single classifier: its per-class /
    per-label / per-target table and its picture (regression.png, segmentation.png, the
    confusion matrix of a classification output, ...)."""
    from cnnspec.training.task_results import picture_file

    if metrics.get("task", "classification") == "classification" or run.run_dir is None:
        return []
    parts = (
        metrics["outputs"]
        if isinstance(metrics.get("outputs"), dict)
        else {metrics.get("output", ""): metrics}
    )
    figures = []
    for name, part in parts.items():
        task = str(part.get("task", ""))
        rows: list[tuple[str, str]] = []
        if task == "segmentation":
            rows = [(f"IoU {k}", _num(v)) for k, v in (part.get("per_class_iou") or {}).items()]
        elif task == "multilabel":
            rows = [(f"{k}: F1 / AUC", f"{_num(v.get('f1'))} / {_num(v.get('auc'))}")
                    for k, v in (part.get("per_label") or {}).items()]  # fmt: skip
            if "auc_macro" in part:  # (– for a label without positives and negatives)
                rows.append(("macro AUC (labels with both)", _num(part["auc_macro"])))
        elif task == "regression":
            rows = [(f"{k}: MAE / R²", f"{_num(v.get('mae'))} / {_num(v.get('r2'))}")
                    for k, v in (part.get("per_target") or {}).items()]  # fmt: skip
        figures.append(
            {
                "title": f"{name} ({task})" if name else task,
                "rows": rows,
                # a classification output: the classifier's per-class table
                "report_rows": _report_rows(part) if task == "classification" else [],
                "png": _file_uri(run.run_dir / picture_file(task, name, "outputs" in metrics)),
                "caption": _TASK_CAPTIONS.get(task, ""),
            }
        )
    return figures


def _benchmark(run: Run, notes: list[str]) -> dict[str, Any] | None:
    """The rows and chart of ``benchmark.json``/``benchmark.png`` (``cnnspec benchmark``), when
    the run has them; ``outputs``: a model of several outputs' figures of each output per
    runtime (:func:`~cnnspec.export.benchmark.output_rows`; empty for a model of one)."""
    from cnnspec.export.benchmark import output_rows, score_text, score_title
    from cnnspec.reporting.run import read_json

    assert run.run_dir is not None
    try:
        document = read_json(run.run_dir / "benchmark.json")
    except UsageError as exc:
        notes.append(f"benchmark results unreadable: {exc}")
        return None
    if not document:
        return None
    try:
        batches = [str(b) for b in document["settings"]["batches"]]
        threads = document["settings"]["threads"]
        score = score_title(document["results"])  # accuracy, or a task model's own figure
        rows = []
        for row in document["results"]:
            ok = row.get("status") == "ok"
            rows.append(
                {
                    "runtime": row["runtime"],
                    "status": "" if ok else str(row.get("status")),
                    "latency": [
                        f"{row['latency_ms'][b]['median']:.3f} ms (p90 {row['latency_ms'][b]['p90']:.3f})"
                        for b in batches
                    ]
                    if ok
                    else [],
                    "throughput": [f"{row['throughput'][b]:,.0f}" for b in batches] if ok else [],
                    "score": score_text(row, score) if ok else "",
                    "size": f"{row['size_bytes'] / 1024:,.1f} KiB" if ok else "",
                    "memory": f"{row['peak_memory_mb']:,.0f} MB" if ok else "",
                }
            )
        outputs = output_rows(document)  # (a model of several outputs: each one's figures)
        caption = (
            f"{document['data']['images']:,} test images; {threads['intra_op']} intra-op and "
            f"{threads['inter_op']} inter-op thread(s) in every runtime, each timed in its own process "
            f"({document.get('created', '')})."
        )
    except (KeyError, TypeError, ValueError) as exc:
        notes.append(f"benchmark.json is not in the expected format ({type(exc).__name__}: {exc})")
        return None
    return {
        "batches": batches,
        "score": score,
        "rows": rows,
        "outputs": outputs,
        "caption": caption,
        "png": _file_uri(run.run_dir / "benchmark.png"),
    }


#: What a sample card says instead of a class when the model's outputs for the image are not
#: finite numbers (:data:`cnnspec.reporting.calibration.NO_PREDICTION`).
NO_PREDICTION_TEXT = "no prediction: the outputs are not numbers (the run diverged)"


def _sample_cards(
    test: Any, indices: np.ndarray, predicted: np.ndarray, confidence: np.ndarray
) -> list[dict[str, Any]]:
    from cnnspec.reporting.figures import image_png

    names = test.class_names

    def name(i: int) -> str:
        return names[i] if 0 <= i < len(names) else str(i)

    def card(i: int, p: int, c: float) -> dict[str, Any]:
        decided = p >= 0 and finite_number(float(c))  # NO_PREDICTION: the outputs were not numbers
        return {
            "index": i,
            "image": data_uri(image_png(test.x[i])),
            "predicted": name(p) if decided else NO_PREDICTION_TEXT,
            "true": name(int(test.y[i])),
            "confidence": f"{c:.1%} sure" if decided else "",
            "correct": decided and p == int(test.y[i]),
        }

    return [card(int(i), int(p), float(c)) for i, p, c in zip(indices, predicted, confidence)]


def _calibration_part(
    *, pool: np.ndarray, test: Any, predicted: np.ndarray, confidence: np.ndarray, temperature: float = 1.0
) -> dict[str, Any]:
    """The reliability diagram of the test images predicted for the samples (all of them up to
    :data:`POOL`), drawn by the page itself (a column per bin: its accuracy, and a red line at
    its mean confidence; no picture to render at the end of every training), with its summary
    as the caption (``temperature``: what the confidences were scaled by, said there)."""
    from cnnspec.reporting.calibration import calibration

    result = calibration(confidence, predicted == test.y[pool])
    n = len(test.y)
    of = f"{len(pool):,} test images" + ("" if len(pool) == n else f" checked of {n:,}")
    caption = (
        f"{result.line()}. Each column is the accuracy of the {of} whose top-class confidence falls "
        "in its bin, the red line their mean confidence; on the diagonal the model is as sure as "
        "it is right (cnnspec evaluate adds the Brier score, cnnspec visualize RUN calibration "
        "draws it as a picture)."
    )
    if temperature != 1.0:
        caption += (
            f" The confidences are scaled by the run's temperature {temperature:.4g} (fitted by "
            "cnnspec calibrate: the notes say on which images)."
        )
    return {
        "bins": _reliability_bins(result),
        "caption": caption[:1].upper() + caption[1:],
        "axis": "top-class confidence",
    }


def _reliability_bins(result: Any, what: str = "images") -> list[dict[str, Any]]:
    """The columns the page draws of a :class:`~cnnspec.reporting.calibration.Calibration`:
    each bin's accuracy and mean confidence (percent) and its tooltip (``what``: what it
    counts)."""
    return [
        {
            "images": b.images,
            "accuracy": round(100 * (b.accuracy or 0.0), 2),
            "confidence": round(100 * (b.confidence or 0.0), 2),
            "tip": f"confidence {b.low:.2f}–{b.high:.2f}: {b.images:,} {what}"
            + (f", accuracy {b.accuracy:.1%}, mean confidence {b.confidence:.1%}" if b.images else ""),
        }
        for b in result.bins
    ]


def _label_calibration_part(probe: Any, notes: list[str]) -> dict[str, Any] | None:
    """The reliability diagram of a multi-label model's labels (each label of each test image
    a decision of its own), or of a segmentation model's pixels, drawn as a classifier's is;
    ``None``, with a note, where the test data cannot be loaded."""
    from cnnspec.reporting.calibration import LABELS, PIXELS

    try:
        test = probe.test
    except (SpecError, UsageError) as exc:
        notes.append(f"no calibration: the test data could not be loaded ({exc})")
        return None
    (task,) = test.config.tasks
    result = probe.label_calibration(task)
    notes.extend(note for note in probe.extra_notes if note not in notes)  # (the temperature's)
    pixels = task.task == "segmentation"
    what, confidence = ("pixel", "its top class probability") if pixels else ("label", "max(p, 1 − p)")
    sampled = " (a seeded sample of them)" if pixels and result.images < len(test.x) * _pixels(task) else ""
    caption = (
        f"{result.line(PIXELS if pixels else LABELS)}. Each column is the share of right decisions "
        f"among the {result.images:,} {what} decisions{sampled} ({len(test.x):,} test images) whose "
        f"confidence, {confidence}, falls in its bin, the red line their mean confidence; on the "
        "diagonal the model is as sure as it is right (cnnspec visualize RUN calibration draws it "
        "as a picture)."
    )
    if probe.temperature != 1.0:
        caption += f" The probabilities are scaled by the run's temperature {probe.temperature:.4g}."
    return {
        "bins": _reliability_bins(result, f"{what} decisions"),
        "caption": caption[:1].upper() + caption[1:],
        "axis": f"{what} confidence, {confidence}",
    }


def _pixels(task: Any) -> int:
    """The pixels of one of a segmentation output's maps."""
    height, width = task.shape[:2]
    return int(height) * int(width)


def _model_parts(probe: Any, notes: list[str]) -> dict[str, Any]:
    """Sample predictions, feature maps and filters: the parts that need the model and data."""
    from cnnspec.reporting.gradcam import spatial_layers
    from cnnspec.reporting.model_graph import conv_layers

    parts: dict[str, Any] = {
        "samples": [], "mistakes": [], "features": [], "filters_png": None, "class_map": None,
        "calibration": None,
    }  # fmt: skip
    convs = conv_layers(probe.model)
    if convs:
        png, _ = probe.filters(convs[0].name, max_filters=64)
        parts["filters_png"] = data_uri(png)
    try:
        test = probe.test
    except (SpecError, UsageError) as exc:
        # (with the hints: what to do, e.g. of a moved project's data, is in them)
        hints = [d.hint for d in getattr(exc, "diagnostics", []) if d.hint] or [getattr(exc, "hint", None)]
        said = "".join(f"; {hint}" for hint in dict.fromkeys(h for h in hints if h))
        notes.append(
            "sample predictions and feature maps unavailable: the test data could not be loaded "
            f"({exc}{said})"
        )
        return parts
    for note in test.notes:
        notes.append(note)
    n = len(test.y)
    pool = np.sort(np.random.default_rng(0).permutation(n)[:POOL])  # bounded work on big test sets
    predicted, confidence = probe.predictions(pool)
    notes.extend(note for note in probe.extra_notes if note not in notes)  # (the temperature's)
    order = np.random.default_rng(1).permutation(len(pool))
    shown = np.sort(order[:SAMPLES])
    wrong = np.sort([p for p in order[SAMPLES:] if predicted[p] != test.y[pool[p]]][:MISTAKES])
    parts["samples"] = _sample_cards(test, pool[shown], predicted[shown], confidence[shown])
    parts["samples_caption"] = (
        f"{len(shown)} test images chosen at random (of {n:,}) with the predicted class, the model's "
        "confidence and the true class; mistakes are framed in red."
    )
    wrong = wrong.astype("int64")
    parts["mistakes"] = _sample_cards(test, pool[wrong], predicted[wrong], confidence[wrong])
    errors = int((predicted != test.y[pool]).sum())
    among = (
        f"the {errors:,} misclassified test images"
        if len(pool) == n
        else (f"the {errors:,} misclassified images among {len(pool):,} test images checked")
    )
    parts["mistakes_caption"] = f"{len(wrong)} more of {among}."
    undecided = int((predicted < 0).sum())  # NO_PREDICTION: counted among the mistakes
    if undecided:
        parts["mistakes_caption"] += (
            f" {undecided:,} of them have no prediction: the model's outputs are not numbers (the "
            "run diverged)."
        )
    parts["calibration"] = _calibration_part(
        pool=pool, test=test, predicted=predicted, confidence=confidence, temperature=probe.temperature
    )
    first = int(pool[shown[0]]) if len(shown) else 0
    layers = [convs[0], convs[-1]] if len(convs) > 1 else convs[:1]
    for position, layer in zip(("first", "last"), layers):
        png, _ = probe.features(layer.name, sample=first)
        parts["features"].append(
            {"title": f"{layer.name} ({position} convolution)", "layer": layer.name, "image": data_uri(png)}
        )
    if not convs:
        notes.append("the model has no 2-D convolution, so there are no feature maps to show")
    # where the model found its answer: the first mistake's predicted class, else the first sample's
    chosen = pool[wrong[0]] if len(wrong) else (pool[shown[0]] if len(shown) else None)
    if chosen is not None and spatial_layers(probe.model):
        try:
            png, _, line = probe.class_map(None, sample=int(chosen))
        except UsageError as exc:  # a diverged model's map is not numbers: the page says so
            notes.append(f"no class map: {exc}")
            return parts
        what = "a misclassified test image" if len(wrong) else "a test image"
        parts["class_map"] = {
            "image": data_uri(png),
            "caption": f"Grad-CAM of {what}: {line}. Bright places are where the layer's "
            "features raise the class's score (cnnspec visualize RUN gradcam draws any image, "
            "layer or class).",
        }
    return parts


def report_context(
    run: Run,
    model: Any = None,
    test: Any = None,
    into_run: bool = True,
    on_problem: Callable[[str], None] | None = None,
    outputs: Any = None,
) -> dict[str, Any]:
    """Everything the template shows, from the run folder (and the model, when it loads).
    ``outputs``: the model's outputs for every image of ``test`` (:attr:`Probe.outputs`).
    ``into_run``: pictures that are missing may be drawn into the run folder (its owner).
    ``on_problem`` is told of a finished run's damage the page can only mention (a model.keras
    that is missing or will not load), so that ``cnnspec report`` says it where it is run too."""
    from cnnspec.reporting.views import Probe
    from cnnspec.training.modelfile import load_model

    assert run.run_dir is not None
    from cnnspec.training.rundir import results_mark

    # before metrics.json is read: a page read from none, then written as it appeared, says none
    # (``train --resume`` writes the finished run's page again: rundir.page_is_current)
    mark = results_mark(run.run_dir)
    notes: list[str] = []
    metrics = run.metrics() or {}
    missing = "metrics.json is missing: the run has not finished, so there are no test results"
    if not metrics:
        notes.append(missing)
    layers, totals, model_line, total_params = _layers(run)
    context: dict[str, Any] = {
        "meta": _meta(run),
        "results_mark": mark,
        "cards": _cards(metrics, total_params),
        "history_png": _history_uri(run, notes, into_run),
        "curve_data": _curve_data(run),
        "curve_names": _curve_names(run),
        "phases": _phases(run.lock or {}, metrics, _history_json(run)),
        "report_rows": _report_rows(metrics),
        "test_images": metrics.get("test_images", ""),
        "confusion_png": None,
        "confusion_of": "",
        "task_figures": _task_figures(run, metrics),
        "layers": layers,
        "totals": totals,
        "model_line": model_line,
        "samples": [],
        "samples_caption": "",
        "mistakes": [],
        "mistakes_caption": "",
        "features": [],
        "filters_png": None,
        "class_map": None,
        "calibration": None,
        "spec_text": _read_text(run.run_dir / "resolved.yaml"),
        "benchmark": _benchmark(run, notes),
    }
    if metrics and metrics.get("task", "classification") == "classification":
        context["confusion_png"], context["confusion_of"] = _confusion(metrics, run, notes)
    if model is None and not run.model_path.exists():  # nothing to load (an unfinished run)
        why = "model.keras is missing" if metrics else "the run has no model.keras yet (it has not finished)"
        notes.append(f"{why}, so there are no sample predictions or feature maps")
        if metrics and on_problem is not None:  # (an unfinished run has none yet: no damage)
            on_problem(f"{run.model_path} is missing: the page has no sample predictions or feature maps")
    elif model is None:
        try:
            model = load_model(run.model_path)
        except UsageError as exc:
            notes.append(f"the model could not be loaded, so there are no sample predictions: {exc}")
            if on_problem is not None:
                on_problem(f"the model could not be loaded, so the page has no sample predictions: {exc}")
    # the notes of the test results (e.g. a multilabel auc that counts labels as 0)
    parts = metrics["outputs"].values() if isinstance(metrics.get("outputs"), dict) else [metrics]
    notes += [str(note) for part in parts if isinstance(part, dict) for note in part.get("notes") or []]
    if model is not None and metrics.get("task", "classification") != "classification":
        notes.append("sample predictions and feature maps are drawn for classifiers; see the test results")
        if metrics.get("task") in ("multilabel", "segmentation"):  # (labels, pixels: their reliability)
            probe = Probe(run, model, _test=test)
            context["calibration"] = _label_calibration_part(probe, notes)
            _loss_before_temperature(context["cards"], probe.temperature)
    elif model is not None:
        probe = Probe(run, model, _test=test, outputs=outputs if test is not None else None)
        context.update(_model_parts(probe, notes))
        _loss_before_temperature(context["cards"], probe.temperature)
        if not metrics and (context.get("calibration") or context.get("samples")):
            # (the model file is there: what the page shows of the test split is its, not training's)
            notes[notes.index(missing)] = (
                f"{missing} from training; the calibration and sample predictions below are of the "
                f"model.keras the run has now, on the {len(probe.test.y):,} images of its test split"
            )
    context["notes"] = notes
    return context


def _loss_before_temperature(cards: list[dict[str, Any]], temperature: float) -> None:
    """Say on the test loss card that its figure is the model's own (metrics.json's) where the
    page scales the probabilities by a temperature: the loss of the scaled ones needs every
    test image predicted, which `cnnspec evaluate` does and the page does not."""
    if temperature == 1.0:
        return
    for card in cards:
        if card["label"] == "test loss":
            card["sub"] = f"before the temperature {temperature:.4g} (cnnspec evaluate: after)"


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def render(context: dict[str, Any]) -> str:
    """The page's HTML (Jinja, autoescaped, strict about missing values), valid UTF-8: a path
    that is not UTF-8 (a run folder named with the byte 0xE9, which Python holds as ``\\udce9``)
    shows each such byte as ``\\xNN`` (:func:`~cnnspec.jsontext.utf8_text`), as the terminal and
    cnnspec's JSON show it; raw, the page could not be written at all."""
    from cnnspec.jsontext import utf8_text
    from cnnspec.resources import templates_dir

    source = templates_dir().joinpath(TEMPLATE).read_text(encoding="utf-8")
    # Once over the escaped page, so that every path it shows is covered: ``\xNN`` holds no
    # character HTML escapes, and only lone surrogates (no text a page can hold) change.
    return utf8_text(_compiled(source).render(**context))


@functools.lru_cache(maxsize=2)
def _compiled(source: str) -> Any:
    """The template ``source`` compiled (a tenth of a second, at the end of every training): kept
    by its text, which is read each time, so an edited template is compiled again."""
    import jinja2

    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    return env.from_string(source)


def write_report(
    run_dir: Path,
    *,
    model: Any = None,
    dataset: Any = None,
    outputs: Any = None,
    out: Path | None = None,
    into_run: bool = True,
    on_problem: Callable[[str], None] | None = None,
) -> Path:
    """Write ``report.html`` for a run folder (atomically); returns its path.

    ``model`` and ``dataset`` (a :class:`cnnspec.training.dataset.Dataset`): what ``train`` has in
    memory already, to save loading them again; ``outputs``: a classifier's outputs for that
    dataset's test split, which train computed its test results from (the page's sample
    predictions are then read from them, not predicted again). ``into_run``: whether the caller owns the run
    folder, so that missing pictures (the learning curves) may be drawn into it. ``on_problem``:
    told of damage the page can only mention (:func:`report_context`). A damaged
    lock.json or history.json is a :class:`UsageError` that names the file and the key
    (:func:`cnnspec.reporting.run.read_lock`, :func:`~cnnspec.reporting.run.read_history`).
    """
    from cnnspec.fileio import write_atomic
    from cnnspec.reporting.held_out import test_split

    run_dir = Path(run_dir)
    refuse_unreadable(run_dir, "a run folder")
    refuse_unreadable(run_dir / "lock.json", "a run folder")
    if not run_dir.is_dir():
        raise UsageError(f"expected a run folder; {run_dir} does not exist or is not a folder")
    if not (run_dir / "lock.json").is_file():
        raise UsageError(
            f"expected a cnnspec run folder (with lock.json); {run_dir} is not one",
            "pass the folder `cnnspec train` wrote (runs/<name>-<time>)",
        )
    if (run_dir / MODEL_FILE).is_file():
        run = locate(run_dir)
    else:
        run = Run(model_path=run_dir / MODEL_FILE, run_dir=run_dir)
        run.lock = _lock(run_dir)
        from cnnspec.reporting.run import run_spec

        run.compiled = run_spec(run_dir, run.lock)
    run.history()  # a damaged history.json is refused (exit 2) before anything is drawn
    test = None
    if model is not None and dataset is not None and run.compiled is not None and run.config is not None:
        test = test_split(run, model, dataset, run.compiled, run.config)
    context = report_context(run, model, test, into_run, on_problem, outputs)
    return write_atomic(out or run_dir / "report.html", render(context))


def _lock(run_dir: Path) -> dict[str, Any]:
    from cnnspec.reporting.run import read_lock

    return read_lock(run_dir) or {}
