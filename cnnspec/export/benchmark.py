"""``cnnspec benchmark RUN``: the run's model in Keras, ONNX Runtime and LiteRT, side by side.

For every format asked for, the benchmark makes sure a *verified* export exists (exporting
what is missing, stale or unverified, exactly as ``cnnspec export`` does; an export that fails
verification is reported and never timed), then measures each runtime in a subprocess of its
own (:mod:`cnnspec.export.bench_worker`) with the same thread settings: latency (median and
p90 after a warm-up) and throughput per batch size, the run's own test figure on its test split
(a classifier's accuracy; a task model's scored as ``metrics.json`` scores it: macro F1, MAE or
mean IoU, each output's for a model of several), the file's size, the process's peak memory
and its import-and-load time.

``benchmark.json`` (``format`` 1): ``model``, ``run_dir``, ``created``, ``settings``
(``batches``, ``threads`` — ``intra_op`` and ``inter_op`` as every runtime got them —,
``warmup``, ``runs``, ``min_seconds``), ``machine`` (CPU count, load average when it started),
``data`` (the test split's source and size) and ``results``: one object per format (a
quantized TFLite export is a format of its own: ``tflite-int8`` …) with ``runtime``,
``status`` (``ok`` or why it was not timed), ``file`` (relative to the run folder),
``size_bytes``, ``file_sha256``, the export's ``max_abs_diff`` (and ``quantize`` where its
record says it is quantized, noted as ``predict`` notes it) and the worker's figures
(``metric`` names the test figure in ``score``; ``accuracy`` is a classifier's, else
``None``). A model of several outputs is scored
on every output in every runtime: ``metric`` and ``score`` stay the first output's, and a row
adds ``loss`` (every output's, weighted as training weighs them) and ``outputs``, one entry per
output by name with its ``task``, ``metric`` and ``score``, the headline ``test_*`` figures
``evaluate`` reports for it, its ``loss`` and, for an export timed beside Keras, ``vs_keras``
(``max_abs_diff`` and ``agreement`` of its answers on the test split: :func:`compare_outputs`).
A benchmark of some formats keeps the
rows of the others from the folder's previous ``benchmark.json`` when that one measured the
same model (``model_sha256``) with the same settings on the same machine size
(:func:`carry_over`) and while its file is the one it timed; a kept row says when it was
measured (``measured``).

The test split and the workers' settings go to a scratch folder in the system's temp folder
(``TMPDIR``); a full or failing temp folder is a :class:`~cnnspec.errors.WriteError` naming
the scratch file (exit 1). A benchmark that is stopped (Ctrl-C, SIGTERM) ends its timing worker
and waits for it before the scratch folder is removed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.errors import UsageError, WriteError
from cnnspec.export.runtimes import RUNTIMES, ExportRecord, engine, find_export, quantized_note, require
from cnnspec.fileio import sha256_file
from cnnspec.training.modelfile import check_model_file
from cnnspec.write_faults import ensure_space, write_fault

FORMAT = 1
WORKER_TIMEOUT_S = 900
#: The most intra-op threads a benchmark gives a runtime (``--threads``). Each runtime starts
#: about one OS thread per intra-op thread; far more than the machine has cores only measures
#: contention, and 100,000 aborted the Keras worker (SIGABRT) after minutes of thread creation.
#: 1,024 is above the hardware threads of the largest servers of today (two 192-core CPUs with
#: SMT: 768). A fixed figure rather than a multiple of ``os.cpu_count()``: the option's help and
#: docs/cli.md must read the same on every machine. ``cnnspec benchmark``'s option repeats it.
MAX_THREADS = 1024


def row_score(row: dict[str, Any]) -> tuple[str, float | None]:
    """A result row's test figure and its name (rows of an older benchmark.json have an
    accuracy only)."""
    if "metric" in row:
        score = row.get("score")
        return str(row["metric"]), score if isinstance(score, (int, float)) else None
    accuracy = row.get("accuracy")
    return "accuracy", accuracy if isinstance(accuracy, (int, float)) else None


def score_title(rows: list[dict[str, Any]]) -> str:
    """The title of the figure's column: its name when every timed row has the same one, else
    "score" (each cell then names its own)."""
    names = {row_score(row)[0] for row in rows if row.get("status") == "ok"}
    return names.pop() if len(names) == 1 else "score"


def score_text(row: dict[str, Any], title: str) -> str:
    """A row's figure as a table cell under ``title`` ("–" when it has none)."""
    name, value = row_score(row)
    if value is None:
        return "–"
    return f"{value:.4f}" if name == title else f"{name} {value:.4f}"


def output_rows(document: dict[str, Any]) -> list[dict[str, str]]:
    """The cells of the table of every output of a model of several outputs, one row per timed
    runtime and output (``[]`` for a model of one): ``runtime``, ``output``, ``task``,
    ``figures`` (the headline test figures ``evaluate`` reports for it), ``loss``, ``diff`` and
    ``agreement`` (of its answers with Keras's on the test split; "–" for Keras itself, or where
    not measured)."""
    from cnnspec.training.task_metrics import headline

    cells: list[dict[str, str]] = []
    for row in document["results"]:
        outputs = row.get("outputs")
        if row.get("status") != "ok" or not isinstance(outputs, dict):
            continue
        for name, entry in outputs.items():
            if not isinstance(entry, dict):  # (a hand-edited file: nothing to show of it)
                continue
            figures = headline(entry) if "task" in entry else []
            compared = entry.get("vs_keras") or {}
            agreement = compared.get("agreement")
            cells.append(
                {
                    "runtime": str(row.get("runtime", "?")),
                    "output": str(name),
                    "task": str(entry.get("task", "")),
                    "figures": ", ".join(
                        f"{label.removeprefix('test ')} {value:.4f}" for label, value in figures
                    )
                    or "–",
                    "loss": _figure_text(entry.get("loss"), ".4f"),
                    "diff": _figure_text(compared.get("max_abs_diff"), ".3g"),
                    "agreement": f"{agreement:.2%}" if _is_number(agreement) else "–",
                }
            )
    return cells


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _figure_text(value: Any, form: str) -> str:
    """A figure of benchmark.json as text: a number in ``form``, a non-finite one as written
    ("inf", "nan"), "–" for none."""
    if _is_number(value):
        return format(value, form)
    return value if isinstance(value, str) else "–"


def parse_list(text: str, what: str, choices: tuple[str, ...] | None = None) -> list[str]:
    """A comma-separated option (``keras,onnx``; ``1,32``) as a list, checked."""
    items = [part.strip() for part in text.split(",")]
    if not any(items):
        raise UsageError(f"expected a comma-separated list for {what}; received {text!r}")
    if not all(items):  # `1,,32`: a value left out by mistake, not to be passed over
        raise UsageError(
            f"expected a comma-separated list for {what} with no empty item; received {text!r}",
            f"write each value once between commas, such as {','.join(choices[:2]) if choices else '1,32'}",
        )
    if choices is not None:
        bad = [i for i in items if i not in choices]
        if bad:
            raise UsageError(f"expected {what} among {', '.join(choices)}; received {', '.join(bad)}")
    return list(dict.fromkeys(items))


def parse_batches(text: str) -> list[int]:
    """``--batch 1,32`` as positive integers."""
    items = parse_list(text, "--batch")
    try:
        sizes = [int(i) for i in items]
    except ValueError:
        raise UsageError(f"expected whole numbers for --batch; received {text!r}") from None
    if any(s < 1 or s > 4096 for s in sizes):
        raise UsageError(f"expected batch sizes from 1 to 4096; received {text!r}")
    return sizes


class _Shape:
    """The model's input shape for :func:`~cnnspec.reporting.held_out.load_test_data`, from the spec."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.sample_shape = shape


def ensure_export(run_dir: Path, runtime: str, notes: list[str]) -> ExportRecord | str:
    """A usable export record for ``runtime``, exporting (and verifying) when there is none or
    it is stale or unverified; the reason as text when the export fails or does not verify. A
    quantized export is noted as ``predict`` and ``evaluate`` note it (:func:`quantized_note`):
    an int8 file written to ``model.tflite`` with ``-o`` was timed and scored as the float
    ``tflite`` row with nothing to tell it apart."""
    require(runtime)
    try:
        record = find_export(run_dir, runtime)
    except UsageError as exc:
        notes.append(f"{runtime}: exporting ({exc})")
        made = _export(run_dir, runtime)
        if made is not None:
            return made
        record = find_export(run_dir, runtime)
    notes += quantized_note(record)
    return record


def _export(run_dir: Path, runtime: str) -> str | None:
    """Export (and verify) the run's model for ``runtime``, as ``cnnspec export`` does (a
    calibrated run's temperature folded in: the file stays at the run's export path, where
    predict and deployment take it): ``None`` when done, else why not."""
    from cnnspec.export.exporter import ExportFailed, ExportMismatch, export_model

    base, quantize = engine(runtime)  # (tflite-int8: a TFLite export quantized to int8)
    try:
        export_model(run_dir, base, quantize=quantize, temperature=None)
    except ExportFailed as exc:  # the converter's own failure (said as export says it): no verification ran
        return f"not timed: {exc}"
    except ExportMismatch as exc:
        return f"export failed verification, not timed: {exc}"
    return None


def run_benchmark(
    target: Path,
    runtimes: list[str],
    batches: list[int],
    *,
    threads: int | None = None,
    warmup: int = 10,
    runs: int = 50,
    min_seconds: float = 1.0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Benchmark the run folder ``target`` in each of ``runtimes`` (see the module docstring).

    Refused with a :class:`~cnnspec.errors.UsageError` before any export or timing: unknown
    runtimes, ``threads`` outside 1 … :data:`MAX_THREADS`, a folder that is no run and a run whose
    ``model.keras`` is no Keras archive (as ``evaluate``, ``export`` and ``predict`` refuse it).
    A runtime that fails later (its export, its worker) is a row with the reason as its
    ``status``."""
    from cnnspec.reporting.held_out import load_test_data
    from cnnspec.reporting.run import locate

    say = progress or (lambda _text: None)
    bad = [r for r in runtimes if r not in RUNTIMES]
    if bad:
        raise UsageError(f"expected --formats among {', '.join(RUNTIMES)}; received {', '.join(bad)}")
    if threads is not None and not 1 <= threads <= MAX_THREADS:
        raise UsageError(f"expected --threads from 1 to {MAX_THREADS}; received {threads}")
    run = locate(Path(target), run_only=True)
    if run.run_dir is None or run.compiled is None or run.config is None:
        outside = "is a model file outside one" if run.run_dir is None else "is not one"
        raise UsageError(
            f"expected a run folder written by `cnnspec train`; {target} {outside}",
            "the benchmark measures accuracy on the run's own test split",
        )
    # A damaged model.keras is the user's to fix (exit 2), not a failed row for every runtime:
    # the Keras worker failed on it, and each export would have too, after the test split was
    # loaded and written out (and the earlier benchmark.json was replaced by the failures).
    check_model_file(run.model_path)
    for runtime in runtimes:
        if runtime != "keras":  # before any slow export: name the missing extra first
            require(runtime, f"leave {runtime} out of --formats (e.g. --formats keras)")
    threads = threads or os.cpu_count() or 1
    notes: list[str] = []
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    targets: dict[str, ExportRecord | str | Path] = {}
    for runtime in runtimes:
        if runtime == "keras":
            targets[runtime] = run.model_path
        else:
            say(f"checking the {runtime} export")
            targets[runtime] = ensure_export(run.run_dir, runtime, notes)
    say("loading the test split")
    test = load_test_data(run, _Shape(tuple(int(d) for d in run.compiled.ir.input_shape)))
    scoring = _scoring(run)
    several = "tasks" in scoring  # (a model of several outputs: every one is scored)
    answers = test.y if several else _first_targets(run.config, test.y)
    results: list[dict[str, Any]] = []
    settings = {
        "batches": batches,
        "threads": {"intra_op": threads, "inter_op": 1},
        "warmup": warmup,
        "runs": runs,
        "min_seconds": min_seconds,
    }
    with _scratch_folder() as scratch:
        data, labels = _write_test_split(test.x, answers, test.settings.rescale, Path(scratch))
        kept: dict[str, Path] = {}  # each runtime's answers, by output (several outputs)
        for runtime in runtimes:
            item = targets[runtime]
            if isinstance(item, str):
                results.append({"runtime": runtime, "status": item})
                continue
            path = item.path if isinstance(item, ExportRecord) else Path(item)
            say(f"timing {runtime} ({path.name})")
            if several:
                kept[runtime] = Path(scratch) / f"{runtime}-answers.npz"
            figures = _worker(
                {
                    "runtime": runtime,
                    "path": str(path),
                    "data": str(data),
                    "labels": str(labels),
                    "batches": batches,
                    "threads": threads,
                    "warmup": warmup,
                    "runs": runs,
                    "min_seconds": min_seconds,
                    **scoring,
                    **_served(item),
                    **({"answers": str(kept[runtime])} if several else {}),
                },
                Path(scratch),
                threads,
            )
            results.append(_row(runtime, path, item, figures, run.run_dir))
        if several and len(test.x):  # (no test images: no answers to compare)
            notes += compare_outputs(results, kept, scoring["tasks"])
    return {
        "format": FORMAT,
        "name": run.name,
        "model": str(run.model_path),
        "model_sha256": sha256_file(run.model_path),
        "run_dir": str(run.run_dir),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": settings,
        "machine": {"cpus": os.cpu_count(), "load_average": load},
        # (images, not targets: a multi-output run's test.y is a dict of one array per output)
        "data": {"source": dict(test.source), "split": "test", "images": len(test.x)},
        "results": results,
        "notes": notes + list(test.notes),
    }


def _scoring(run: Any) -> dict[str, Any]:
    """How the worker scores the test split, in the run's own terms: a classifier's accuracy
    (``binary``, ``from_logits``), or the headline figure of the first output's task
    (``output``: its :func:`~cnnspec.export.runtimes.describe_output`; ``outputs``: how many the
    model has). A model of several outputs adds ``tasks``, every output's description: each
    one is scored (:func:`~cnnspec.export.bench_worker.output_scores`)."""
    config = run.config
    if not config.task_path:
        kind = run.output_kind()
        return {"binary": kind.binary, "from_logits": kind.from_logits}
    from cnnspec.export.runtimes import describe_output

    scoring = {"output": describe_output(config.tasks[0]), "outputs": len(config.tasks)}
    if len(config.tasks) > 1:
        scoring["tasks"] = [describe_output(out) for out in config.tasks]
    return scoring


def compare_outputs(
    results: list[dict[str, Any]], kept: dict[str, Path], entries: list[dict[str, Any]]
) -> list[str]:
    """Each timed row's agreement with the Keras model, output by output, on the test split:
    ``outputs[NAME]["vs_keras"]`` holds ``max_abs_diff`` (the largest difference of their
    answers; infinity where one answers NaN or infinity and the other not) and ``agreement``
    (the share of decisions made alike: argmax, thresholds; ``None`` for a regression), from
    the answers each worker kept (``kept``, by runtime). Returns the notes on what could not be
    compared (no Keras row, answers not kept)."""
    from cnnspec.export.verification import ExportMismatch, compare, entry_decision

    rows = {row["runtime"]: row for row in results if row.get("status") == "ok" and "outputs" in row}
    others = [runtime for runtime in rows if runtime != "keras"]
    if not others:
        return []
    if "keras" not in rows:
        return ["each output's agreement with Keras is measured when keras is timed beside the exports"]
    if not kept["keras"].is_file():
        return ["keras: its answers could not be kept, so no export was compared with Keras's"]
    missing = []
    with np.load(kept["keras"]) as keras:
        expected = [keras[f"arr_{number}"] for number in range(len(entries))]
        for runtime in others:
            if not kept[runtime].is_file():
                missing.append(runtime)
                continue
            with np.load(kept[runtime]) as saved:
                for number, entry in enumerate(entries):
                    decision = entry_decision(entry)
                    try:
                        diff, agreement = compare([expected[number]], [saved[f"arr_{number}"]], [decision])
                    except ExportMismatch:  # (NaN or infinity in one of them only, or another shape)
                        diff, agreement = float("inf"), None
                    output = rows[runtime]["outputs"][str(entry["name"])]
                    output["vs_keras"] = {"max_abs_diff": diff, "agreement": agreement}
    return [f"{runtime}: its answers could not be kept, so not compared with Keras's" for runtime in missing]


def _served(item: ExportRecord | Path) -> dict[str, Any]:
    """What the worker needs to read an export as the Keras model answers (``served``: its
    record's ``output`` and ``outputs``, which say the temperature folded into it); nothing
    for the Keras model itself."""
    if not isinstance(item, ExportRecord):
        return {}
    return {"served": {key: item.data[key] for key in ("output", "outputs") if key in item.data}}


def _first_targets(config: Any, y: Any) -> Any:
    """The test targets of the model's first output (a multi-output split holds them by name)."""
    if isinstance(y, dict):
        return y[config.tasks[0].name]
    return y


def _row(
    runtime: str, path: Path, item: ExportRecord | Path, figures: dict[str, Any], run_dir: Path
) -> dict[str, Any]:
    """A result row: the runtime, its file (relative to ``run_dir``: :func:`in_run`) and the
    worker's figures, or why it has none."""
    row: dict[str, Any] = {"runtime": runtime, "status": "ok", "file": in_run(path, run_dir)}
    if figures.get("status", "ok") != "ok":  # failed or timed out: no figures to show
        return row | {"status": figures["status"]}
    diff = item.data.get("max_abs_diff") if isinstance(item, ExportRecord) else None
    # the file's hash: a later benchmark of other formats keeps this row only while it is the same
    measured = {"size_bytes": path.stat().st_size, "file_sha256": sha256_file(path), "max_abs_diff": diff}
    quantize = item.data.get("quantize") if isinstance(item, ExportRecord) else None
    if isinstance(quantize, str):  # (its record's; also a quantized file at the float path: -o)
        measured["quantize"] = quantize
    return row | measured | figures | {"runtime": runtime}


def in_run(path: Path, run_dir: Path) -> str:
    """``path`` as a row's ``file``: relative to the run folder (``export/model.onnx``), where
    benchmark.json lives, so that a later benchmark from another working folder, or of the
    folder moved, finds it (a path relative to the working folder made every kept row's file
    look gone, and dropped it); absolute when it is not inside the run folder."""
    absolute = Path(os.path.abspath(path))  # (as written: no link followed)
    try:
        return absolute.relative_to(os.path.abspath(run_dir)).as_posix()
    except ValueError:
        return str(absolute)


#: images decoded and scaled at a time when the test split is written for the workers
CHUNK_IMAGES = 256
#: What a full temp folder's error says to do.
SCRATCH_HINT = "free some space in the temp folder, or point TMPDIR at a folder with room to spare"


@contextlib.contextmanager
def _scratch_writes(path: Path, needed: int | None = None) -> Iterator[None]:
    """Writes to the scratch file ``path``: a disk fault (a full temp folder) raises
    :class:`~cnnspec.errors.WriteError` naming it, with :data:`SCRATCH_HINT`."""
    try:
        yield
    except (OSError, WriteError) as exc:
        fault = write_fault(exc, path, needed)
        if fault is None:
            raise
        fault.hint = fault.hint or SCRATCH_HINT
        raise fault from None


@contextlib.contextmanager
def _scratch_folder() -> Iterator[Path]:
    """A new folder in the temp folder, removed with what is in it on leaving."""
    with _scratch_writes(Path(tempfile.gettempdir()) / "cnnspec-bench-*"):
        folder = tempfile.TemporaryDirectory(prefix="cnnspec-bench-")
    with folder as name:
        yield Path(name)


def _write_test_split(x: Any, y: Any, rescale: float | None, folder: Path) -> tuple[Path, Path]:
    """The scaled test images and their labels as ``.npy`` files that the timing workers map
    from disk. The images are read and scaled ``CHUNK_IMAGES`` at a time, so a streamed test
    split (image files) is never held whole in memory. The space is checked, and the images'
    file reserved, before a byte is written: a store into a map of a sparse file on a full disk
    ends the process (SIGBUS), not in an error."""
    from cnnspec.training.imagefiles import scale_batch

    several = isinstance(y, dict)  # (a model of several outputs: the targets by output name)
    images, labels = folder / "test-x.npy", folder / ("test-y.npz" if several else "test-y.npy")
    first = scale_batch(x[0:1], rescale)
    answers = {name: np.asarray(part) for name, part in y.items()} if several else np.asarray(y)
    size = sum(part.nbytes for part in answers.values()) if isinstance(answers, dict) else answers.nbytes
    needed = first.nbytes * max(len(x), 1) + size + 2 * 4096  # (.npy headers)
    with _scratch_writes(images, needed):
        ensure_space(folder, needed, images)  # (the labels' file is counted in)
    with _scratch_writes(labels, size):
        if isinstance(answers, dict):
            np.savez(labels, **answers)
        else:
            np.save(labels, answers)
    if len(x) == 0:  # (NumPy cannot map an empty file)
        with _scratch_writes(images, first.nbytes):
            np.save(images, first)
        return images, labels
    with _scratch_writes(images, needed):
        out = np.lib.format.open_memmap(
            images, mode="w+", dtype=first.dtype, shape=(len(x), *first.shape[1:])
        )
        _reserve(images)
    for start in range(0, len(x), CHUNK_IMAGES):
        out[start : start + CHUNK_IMAGES] = scale_batch(x[start : start + CHUNK_IMAGES], rescale)
    with _scratch_writes(images, needed):
        out.flush()
    del out  # (closes the map)
    return images, labels


def _reserve(path: Path) -> None:
    """Allocate the blocks of ``path`` (as large as it is now) on the disk, so that the writes
    into its map cannot run out of space; a file system that cannot preallocate is left to
    :func:`~cnnspec.write_faults.ensure_space`'s check."""
    if not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            raise
    finally:
        os.close(fd)


def _worker(settings: dict[str, Any], scratch: Path, threads: int) -> dict[str, Any]:
    """Run :mod:`cnnspec.export.bench_worker` on ``settings`` in a fresh interpreter."""
    path = scratch / f"{settings['runtime']}.json"
    with _scratch_writes(path):
        path.write_text(json.dumps(settings), encoding="utf-8")
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), TF_CPP_MIN_LOG_LEVEL="3")  # the same pools everywhere
    command = [sys.executable, "-m", "cnnspec.export.bench_worker", str(path)]
    with contextlib.ExitStack() as ending:
        # A stop that lands while the worker starts waits until ``_ended`` holds it: raised in
        # the middle of Popen (the child forked, Popen not returned) or before the ``with``,
        # it left the worker timing on as an orphan (tests/test_runtimes.py caught it so).
        with _stops_held():
            # a session of its own: a Ctrl-C reaches this process alone, which ends the group
            worker = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                start_new_session=True,
            )
            ending.enter_context(_ended(worker))
        try:
            out, err = worker.communicate(timeout=WORKER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return {"runtime": settings["runtime"], "status": f"timed out after {WORKER_TIMEOUT_S} s"}
    lines = out.strip().splitlines()
    if worker.returncode != 0 or not lines:
        tail = (err.strip().splitlines() or ["no output"])[-1][:300]
        return {"runtime": settings["runtime"], "status": f"failed (exit {worker.returncode}): {tail}"}
    return dict(json.loads(lines[-1]))


@contextlib.contextmanager
def _stops_held() -> Iterator[None]:
    """While inside, a Ctrl-C or SIGTERM is only recorded; on leaving, the handlers before are
    put back and the first signal recorded is raised again, as if it came then (their handler,
    the command line's, raises ``KeyboardInterrupt``). Not the main thread: as they were."""
    held: list[int] = []
    previous: dict[int, Any] = {}
    try:
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(number, lambda signum, _frame: held.append(signum))
    except ValueError:  # not the main thread: its signals are not ours to hold
        pass
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        if held:
            signal.raise_signal(held[0])


@contextlib.contextmanager
def _ended(worker: subprocess.Popen[str]) -> Iterator[None]:
    """``worker``, killed with its process group and reaped on leaving when it still runs: the
    benchmark stopped (Ctrl-C, SIGTERM: a ``KeyboardInterrupt`` here) or the worker timed out.
    Without it, a stopped benchmark left the worker timing on as an orphan, and its scratch
    folder was removed under it."""
    try:
        yield
    finally:
        if worker.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(worker.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            worker.kill()  # (nothing when it has been reaped)
        worker.communicate()  # reaps it; closes the pipes


def read_previous(path: Path) -> Any:
    """The JSON in ``path`` (a folder's last ``benchmark.json``), or ``None`` when there is none
    or it can't be read: it is only a source of rows to keep."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def carry_over(document: dict[str, Any], previous: Any) -> dict[str, Any]:
    """``document`` with the rows of ``previous`` (the folder's last ``benchmark.json``) for the
    runtimes it did not time, when both measured the same model with the same settings on a
    machine with as many CPUs: ``--formats onnx`` after a full benchmark updates the ONNX row
    and keeps the others (``predict --runtime auto`` ranks by them). Otherwise ``document``
    replaces it, with a note naming the rows that are gone."""
    if not isinstance(previous, dict) or not isinstance(previous.get("results"), list):
        return document
    timed = {row.get("runtime") for row in document["results"]}
    old = [  # (a row without its runtime, as a failed worker's once was, names nothing to keep)
        r
        for r in previous["results"]
        if isinstance(r, dict) and r.get("runtime") in RUNTIMES and r.get("runtime") not in timed
    ]
    old, notes = _same_files(old, document.get("run_dir"), previous.get("run_dir"))
    document = {**document, "notes": [*document["notes"], *notes]}
    if not old:
        return document
    names = ", ".join(str(r.get("runtime")) for r in old)
    same = (
        previous.get("format") == document["format"]
        and previous.get("model_sha256") == document["model_sha256"]
        and previous.get("settings") == document["settings"]
        and (previous.get("machine") or {}).get("cpus") == document["machine"]["cpus"]
    )
    if not same:
        note = f"the previous benchmark.json also timed {names}, with another model or settings: replaced"
        return {**document, "notes": [*document["notes"], note]}
    scored = {_metric(r) for r in document["results"] if r.get("status") == "ok"}
    other = sorted({_metric(r) for r in old if r.get("status") == "ok"} - scored) if scored else []
    if other:  # an older cnnspec scored a task model by its accuracy, which means nothing
        note = f"the previous benchmark.json also timed {names}, scored by {', '.join(other)}: replaced"
        return {**document, "notes": [*document["notes"], note]}
    if any("outputs" in r for r in document["results"] if r.get("status") == "ok") and any(
        "outputs" not in r for r in old if r.get("status") == "ok"
    ):  # an older cnnspec scored a model of several outputs on its first output alone
        note = f"the previous benchmark.json also timed {names}, scoring only the first output: replaced"
        return {**document, "notes": [*document["notes"], note]}
    kept = [{**row, "measured": row.get("measured", previous.get("created"))} for row in old]
    order = {runtime: index for index, runtime in enumerate(RUNTIMES)}
    results = sorted(
        [*document["results"], *kept], key=lambda r: order.get(str(r.get("runtime")), len(order))
    )
    note = f"kept the {names} figures of the benchmark of {previous.get('created')} (same model and settings)"
    return {**document, "results": results, "notes": [*document["notes"], note]}


def _same_files(
    rows: list[dict[str, Any]], run_dir: Any, previous_run_dir: Any
) -> tuple[list[dict[str, Any]], list[str]]:
    """The timed ``rows`` whose file is still the one they timed (its ``file_sha256``), and a
    note for each of the others: an export replaced since (a quantized file written over the
    float one with ``-o``) would keep the old file's size, score and latency, and ``--runtime
    auto`` would rank by them. A row of an older cnnspec, which kept no hash, can't be told
    the same and goes too. Each file is found in the run folder ``run_dir``
    (:func:`row_file`); a kept row names it as :func:`in_run` does."""
    kept: list[dict[str, Any]] = []
    notes: list[str] = []
    for row in rows:
        if row.get("status") != "ok":
            kept.append(row)  # (no figures to go stale: why it was not timed)
            continue
        file, recorded = row_file(row.get("file"), run_dir, previous_run_dir), row.get("file_sha256")
        try:
            same = file is not None and isinstance(recorded, str) and sha256_file(file) == recorded
        except OSError:
            same = False
        if same and file is not None:
            named = in_run(file, Path(run_dir)) if isinstance(run_dir, str) else str(file)
            kept.append({**row, "file": named})
        else:
            notes.append(
                f"the previous benchmark.json's {row.get('runtime')} row timed a file that has changed "
                f"or gone since ({row.get('file') if file is None else file}): dropped; "
                f"time it again with --formats {row.get('runtime')}"
            )
    return kept, notes


def row_file(file: Any, run_dir: Any, previous_run_dir: Any) -> Path | None:
    """Where a previous row's ``file`` is now (``None``: it names none). A row names it
    relative to its run folder ``run_dir`` (:func:`in_run`); a benchmark.json of an older
    cnnspec named it relative to the working folder of its benchmark, whose run folder was
    ``previous_run_dir`` as written from there (``r/export/model.onnx`` beside ``r``): that
    file is found in the run folder first, then as written. The first of these that exists is
    the row's file (a file elsewhere with the same bytes is not the run's)."""
    if not isinstance(file, str) or not file:
        return None
    written = Path(file)
    if not isinstance(run_dir, str):  # (a document of no run folder: the file as written)
        return written
    places = [Path(run_dir) / written]  # (an absolute file stays itself)
    if isinstance(previous_run_dir, str) and not written.is_absolute():
        with contextlib.suppress(ValueError):  # (not inside the run folder as written then)
            inside = Path(os.path.normpath(written)).relative_to(os.path.normpath(previous_run_dir))
            places.append(Path(run_dir) / inside)
    places.append(written)
    return next((place for place in places if place.exists()), places[0])


def _metric(row: dict[str, Any]) -> str:
    """The name of a row's test figure (rows of an older benchmark.json: accuracy)."""
    return str(row.get("metric", "accuracy"))


def write_results(document: dict[str, Any], folder: Path) -> dict[str, Path]:
    """``benchmark.json`` and ``benchmark.png`` in ``folder``, atomically and together
    (:func:`~cnnspec.fileio.write_together`): a failure on the picture leaves the previous
    benchmark.json too (before, the new figures stayed beside the previous chart)."""
    from cnnspec.fileio import write_atomic, write_together
    from cnnspec.jsontext import json_text, utf8_safe

    # (a diverged model's test figure: "nan", which is JSON; a path that is no UTF-8, escaped)
    text = json_text(utf8_safe(document)[0])
    timed = [r for r in document["results"] if r.get("status") == "ok"]
    chart = chart_png(document) if timed else None  # drawn first: a failed drawing writes nothing
    with write_together():
        files = {"benchmark": write_atomic(folder / "benchmark.json", text)}
        if chart is not None:
            files["chart"] = write_atomic(folder / "benchmark.png", chart)
    return files


def chart_png(document: dict[str, Any]) -> bytes:
    """Two panels: median latency per batch size (p90 as the whisker), throughput per batch size."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timed = [r for r in document["results"] if r.get("status") == "ok"]
    batches = [str(b) for b in document["settings"]["batches"]]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    width = 0.8 / max(len(timed), 1)
    positions = np.arange(len(batches))
    for index, row in enumerate(timed):
        offset = positions + (index - (len(timed) - 1) / 2) * width
        median = [row["latency_ms"][b]["median"] for b in batches]
        p90 = [row["latency_ms"][b]["p90"] - row["latency_ms"][b]["median"] for b in batches]
        left.bar(offset, median, width, yerr=[np.zeros(len(p90)), p90], capsize=3, label=row["runtime"])
        right.bar(offset, [row["throughput"][b] for b in batches], width, label=row["runtime"])
    for axis, title, unit in (
        (left, "latency per call (median, whisker: p90)", "ms"),
        (right, "throughput", "images/s"),
    ):
        axis.set_xticks(positions, [f"batch {b}" for b in batches])
        axis.set_title(title, fontsize=10)
        axis.set_ylabel(unit)
        axis.grid(axis="y", alpha=0.3)
    left.legend(fontsize=8)
    threads = document["settings"]["threads"]
    from cnnspec.training.plots import literal

    cpus = document["machine"]["cpus"]
    title = f"{document['name']}: {threads['intra_op']} intra-op thread(s), {cpus} CPUs"
    figure.suptitle(literal(title), fontsize=10)  # a model file's stem may hold `$`: no mathtext
    figure.tight_layout()
    figure.set_layout_engine(None)  # (the engine tight_layout leaves made savefig draw it twice)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()
