"""One runtime's timings for ``cnnspec benchmark``, measured in a process of its own.

``python -m cnnspec.export.bench_worker SETTINGS.json`` loads one model in one runtime (so
one runtime's imports and memory never leak into another's figures), runs the test split
for accuracy, times each batch size after a warm-up, and prints one JSON object on stdout:

``runtime``, ``load_seconds`` (imports and loading), ``latency_ms`` (per batch size: median,
p90 and mean wall time, ``cpu``: CPU time per call over all threads, runs), ``throughput``
(images per second per batch size, from the median), ``metric`` and ``score`` (the run's own
test figure: a classifier's accuracy; a multi-label output's macro F1, a regression's MAE, a
segmentation's mean IoU, as ``metrics.json`` has them), ``accuracy`` (a classifier's score,
else ``None``), ``peak_memory_mb`` (the process's peak resident set size, taken before the
scoring imports anything) and ``threads``.

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
    from cnnspec.export.runtimes import model_answer, open_session, predict_batches

    started = time.perf_counter()
    session = open_session(settings["runtime"], Path(settings["path"]), settings["threads"])
    load_seconds = time.perf_counter() - started
    x = np.load(settings["data"], mmap_mode="r")  # read from disk batch by batch: bounded memory
    y = np.load(settings["labels"])
    batches = [int(b) for b in settings["batches"]]
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
    return {
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
    if int(settings.get("outputs", 1)) > 1:  # (the first output's: an export runs only that one)
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
    sys.exit(main(sys.argv[1:]))
