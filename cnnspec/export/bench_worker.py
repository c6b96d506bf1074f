"""One runtime's timings for ``cnnspec benchmark``, measured in a process of its own.

``python -m cnnspec.export.bench_worker SETTINGS.json`` loads one model in one runtime (so
one runtime's imports and memory never leak into another's figures), runs the test split
for accuracy, times each batch size after a warm-up, and prints one JSON object on stdout:

``runtime``, ``load_seconds`` (imports and loading), ``latency_ms`` (per batch size: median,
p90 and mean wall time, ``cpu``: CPU time per call over all threads, runs), ``throughput``
(images per second per batch size, from the median), ``metric`` and ``score`` (the run's own
test figure: a classifier's accuracy; a multi-label output's macro F1, a regression's MAE, a
segmentation's mean IoU, as ``metrics.json`` has them; a model of several outputs: the first
output's), ``accuracy`` (a classifier's score, else ``None``), ``peak_memory_mb`` (the
process's peak resident set size, taken before the scoring imports anything) and ``threads``.
A model of several outputs adds ``loss`` and ``outputs`` (every output's figures:
:func:`output_scores`), and keeps its answers for the comparison with Keras (``answers``).

It imports TensorFlow only for the ``keras`` runtime. It ends itself when the benchmark that
started it is gone (killed: nobody would stop it, and its scratch files are gone with it).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np


def time_calls(
    call: Any, batch: np.ndarray, warmup: int, min_runs: int, min_seconds: float
) -> tuple[list[float], float]:
    """Wall seconds per call of ``call(batch)`` after ``warmup`` untimed calls (at least
    ``min_runs`` calls and ``min_seconds`` in all, at most 20 times ``min_runs``), and the
    process's CPU seconds per call over them (all threads): on a busy machine the wall time
    includes waiting for a core, the CPU time does not."""
    for _ in range(warmup):
        call(batch)
    times: list[float] = []
    cpu = time.process_time()
    started = time.perf_counter()
    while len(times) < min_runs or (
        time.perf_counter() - started < min_seconds and len(times) < 20 * min_runs
    ):
        before = time.perf_counter()
        call(batch)
        times.append(time.perf_counter() - before)
    return times, (time.process_time() - cpu) / len(times)


def peak_memory_kb() -> int:
    """This process's peak resident memory: ``VmHWM`` (Linux; reset by exec, unlike
    ``ru_maxrss``, which keeps the parent's peak across it), else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def measure(settings: dict[str, Any]) -> dict[str, Any]:
    """The figures of one runtime (see the module docstring)."""
    from cnnspec.export.runtimes import model_answer, open_session, predict_all_batches, predict_batches

    started = time.perf_counter()
    session = open_session(settings["runtime"], Path(settings["path"]), settings["threads"])
    load_seconds = time.perf_counter() - started
    x = np.load(settings["data"], mmap_mode="r")  # read from disk batch by batch: bounded memory
    entries = settings.get("tasks")  # (a model of several outputs: each one's record entry)
    batches = [int(b) for b in settings["batches"]]
    answers: list[np.ndarray] | None = None
    if entries:  # every output, in the model's order; the targets by output name (an .npz)
        with np.load(settings["labels"]) as saved:
            targets = {name: saved[name] for name in saved.files}
        y = targets[str(entries[0]["name"])]
        answers = predict_all_batches(session, x, max(batches)) if len(x) else None
        outputs = answers[0] if answers is not None else np.zeros((0,), dtype="float32")
    else:
        y = np.load(settings["labels"])
        outputs = predict_batches(session, x, max(batches))
    latency: dict[str, Any] = {}
    throughput: dict[str, float] = {}
    for size in batches:
        reps = -(-size // len(x))
        batch = np.ascontiguousarray(np.concatenate([x] * reps)[:size] if reps > 1 else x[:size])
        wall, cpu = time_calls(
            session.run, batch, settings["warmup"], settings["runs"], settings["min_seconds"]
        )
        times = np.array(wall)
        median = float(np.median(times))
        latency[str(size)] = {
            "median": round(median * 1e3, 4),
            "p90": round(float(np.percentile(times, 90)) * 1e3, 4),
            "mean": round(float(times.mean()) * 1e3, 4),
            "cpu": round(cpu * 1e3, 4),
            "runs": len(times),
        }
        throughput[str(size)] = round(size / median, 1)
    peak_kb = peak_memory_kb()
    # scored as the Keras model answers: a temperature the export folded in is taken out (timed
    # as exported, the runtime's own speed; after the peak, as it may import the reading)
    metric, value = score(model_answer(outputs, settings.get("served") or {}), y, settings)
    figures = {
        "runtime": settings["runtime"],
        "load_seconds": round(load_seconds, 3),
        "latency_ms": latency,
        "throughput": throughput,
        "metric": metric,
        "score": value,
        "accuracy": value if metric == "accuracy" else None,
        "peak_memory_mb": round(peak_kb / 1024, 1),
        "threads": settings["threads"],
    }
    if entries:
        figures.update(output_scores(answers, targets, entries))
        if answers is not None and settings.get("answers"):
            keep_answers(answers, Path(settings["answers"]))
    return figures


def output_scores(
    answers: list[np.ndarray] | None, targets: dict[str, np.ndarray], entries: list[dict[str, Any]]
) -> dict[str, Any]:
    """Every output's test figures of a model of several outputs, as ``evaluate`` reports them
    (each output's :func:`~cnnspec.training.task_metrics.output_summary` headline keys, and its
    loss from :func:`~cnnspec.reporting.evaluation.export_task_losses`, whose ``loss`` is their
    sum weighted as Keras weighs them): ``{"loss": …, "outputs": {NAME: {"task", "metric",
    "score", test_* keys, "loss"}}}``. Without test images, every figure is ``None``."""
    from cnnspec.export.runtimes import output_task
    from cnnspec.reporting.evaluation import export_task_losses
    from cnnspec.training.task_metrics import HEADLINE_KEYS, output_summary

    tasks = [output_task(entry) for entry in entries]
    losses = export_task_losses(answers, targets, tasks) if answers is not None else {}
    per: dict[str, Any] = {}
    for number, out in enumerate(tasks):
        keys = HEADLINE_KEYS[out.task]
        summary = output_summary(out, targets[out.name], answers[number], []) if answers is not None else {}
        figures = {key: _figure(summary.get(key)) for key, _label in keys}
        per[out.name] = {
            "task": out.task,
            "metric": keys[0][1].removeprefix("test "),
            "score": figures[keys[0][0]],
            **figures,
            "loss": losses.get(f"{out.name}_loss"),
        }
    return {"loss": losses.get("loss"), "outputs": per}


def _figure(value: Any) -> float | None:
    """A summary's figure as a float (``None`` where it has none)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def keep_answers(answers: list[np.ndarray], path: Path) -> None:
    """Every output's answers on the test split in ``path`` (an ``.npz``, one array per output in
    the model's order), which the benchmark compares with the Keras model's: a full disk leaves
    no file (the agreement with Keras is then not measured), never a failed row."""
    try:
        with open(path, "wb") as handle:
            np.savez(handle, *answers)
    except OSError:
        path.unlink(missing_ok=True)


def score(outputs: np.ndarray, y: np.ndarray, settings: dict[str, Any]) -> tuple[str, float | None]:
    """The name and value of the test figure the run itself reports for ``outputs`` (the raw
    outputs of the model's first output): a classifier's accuracy, else the headline figure
    of the output's task (``settings["output"]``); ``None`` without test images."""
    entry = settings.get("output")
    if entry is None:  # a single classifier
        from cnnspec.training.metrics import decided_accuracy, predicted_classes

        if not len(y):
            return "accuracy", None
        binary, logits = settings["binary"], settings["from_logits"]
        # (as train scores it: an image whose outputs are not numbers is a mistake, none: NaN)
        return "accuracy", decided_accuracy(y, predicted_classes(outputs, binary=binary, from_logits=logits))
    from cnnspec.export.runtimes import output_task
    from cnnspec.training.task_metrics import HEADLINE_KEYS, output_summary

    out = output_task(entry)
    key, label = HEADLINE_KEYS[out.task][0]
    name = label.removeprefix("test ")
    if int(settings.get("outputs", 1)) > 1:  # (the first output's; every one's: output_scores)
        name = f"{out.name} {name}"
    if not len(y):
        return name, None
    return name, float(output_summary(out, y, outputs, [])[key])


#: How often the worker looks whether the benchmark that started it still exists.
PARENT_CHECK_S = 1.0


def exit_with_parent(parent: int) -> None:
    """End this process once its parent (the benchmark, ``parent``) is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(1)

    threading.Thread(target=watch, name="cnnspec-bench-parent", daemon=True).start()


def main(argv: list[str]) -> int:
    exit_with_parent(os.getppid())
    settings = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    print(json.dumps(measure(settings)))
    return 0


if __name__ == "__main__":
    status = main(sys.argv[1:])
    # The figures are printed and every file is closed: the worker ends without tearing its
    # modules down, which for the Keras worker (TensorFlow's) costs about a CPU-second and
    # measures nothing. (An exception still ends it as Python does: traceback, exit 1.)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
