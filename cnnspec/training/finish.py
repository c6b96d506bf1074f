"""The end of a run (:func:`finish_run`): the weights it ends with (:func:`weights_source`), the
test split evaluated, the model, metrics, pictures and report page written, and what is
cleared once the run is complete (its snapshots, the data cache). A run that ended before it
wrote them gets them written when it is resumed (:func:`complete_ended`).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnspec.analysis.settings_types import TrainConfig
from cnnspec.errors import WriteError
from cnnspec.fileio import atomic_path, check_owned, write_atomic
from cnnspec.jsontext import json_text
from cnnspec.training import rundir, runlock
from cnnspec.training.epochs import images_shown_per_epoch, steady_epoch_seconds
from cnnspec.training.modelfile import save_model
from cnnspec.training.outcomes import ReportInterrupted, TrainResult, report_command
from cnnspec.training.progress import Display
from cnnspec.training.state import TrainingState, model_file_bytes

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec


#: ``data.cache: disk``: the cache file's name in the run folder (tf.data adds suffixes)
CACHE_FILE = "data-cache"


def weights_source(spec_cbs: dict[str, Any], epochs_run: int) -> tuple[int | None, str]:
    """The best epoch whose weights the saved model holds (``None``: none was restored) and
    what metrics.json says of them: ``best epoch 3 (restored by early_stopping)``, or ``last
    epoch 5`` when nothing put a best epoch's weights back. Keras' EarlyStopping restores only
    when it kept weights (``best_weights``): never before ``start_from_epoch``, whatever its
    ``best_epoch`` says."""
    best_epoch, source = None, ""
    early = spec_cbs.get("early_stopping")
    if early is not None and early.restore_best_weights and getattr(early, "best_weights", None) is not None:
        best_epoch, source = int(early.best_epoch) + 1, "restored by early_stopping"
    checkpoint = spec_cbs.get("model_checkpoint")
    if (
        checkpoint is not None
        and checkpoint.save_best_only
        and checkpoint.best_epoch >= 0
        and checkpoint.path.is_file()
    ):  # loaded after fit, over what early stopping restored
        best_epoch, source = int(checkpoint.best_epoch) + 1, "restored from model_checkpoint's best.keras"
    if best_epoch is None:
        return None, f"last epoch {epochs_run}"
    return best_epoch, f"best epoch {best_epoch} ({source})"


def _evaluate_test(model: Any, dataset: Any, settings: Any, dist: Any) -> tuple[dict[str, float], Any]:
    """The test split's metrics and the model's outputs, row for row with ``dataset.y_test``.

    Under ``multi_worker`` (evaluate/predict are collective), a streamed test split is read in
    parts, each worker its own files, and predict's rows are put back in file order
    (:meth:`~cnnspec.training.distribute.Distribution.file_shard_order`). If a worker dropped a
    file that failed to decode, that order no longer holds: the outputs are then predicted again
    with every worker reading every file (TensorFlow's data sharding keeps the order).
    """
    import numpy as np
    from keras import tree

    from cnnspec.training.pipeline import make_dataset

    def whole() -> Any:
        test_ds = make_dataset(dataset.x_test, dataset.y_test, settings)
        return test_ds if dist is None else dist.shard(test_ds)  # collective under multi_worker

    if not (dataset.streamed and dist is not None and dist.multi_worker):
        from cnnspec.training.output_losses import make_callback, output_rows

        test_ds = whole()
        losses = make_callback(settings.batch_size)  # (Keras' NAME_loss: a mean of batch means)
        evaluation = model.evaluate(test_ds, verbose=0, return_dict=True, callbacks=[losses])
        outputs = model.predict(test_ds, verbose=0)
        found = {k: float(v) for k, v in evaluation.items()}
        if dist is None or dist.replicas == 1:
            found.update(losses.evaluated(output_rows(outputs)))
        return found, outputs
    from cnnspec.training.stream import BAD_READS

    def part(batch_size: int, shard: tuple[int, int] | None) -> Any:
        return make_dataset(
            dataset.x_test, dataset.y_test, replace(settings, batch_size=batch_size), shard=shard
        )

    test_ds = dist.shard_files(part, settings.batch_size)
    evaluation = model.evaluate(test_ds, verbose=0, return_dict=True)
    outputs = model.predict(test_ds, verbose=0)
    test_paths = {str(path) for path in dataset.x_test.paths}
    dropped = sum(1 for path, _ in BAD_READS.all() if path in test_paths)
    order = dist.file_shard_order(len(dataset.x_test), settings.batch_size)
    rows = len(tree.flatten(outputs)[0])
    if max(dist.mean_across_workers([float(dropped), float(rows != len(order))])) > 0:
        outputs = model.predict(whole(), verbose=0)  # a worker dropped a file: file order is lost
    else:
        back = np.argsort(np.asarray(order))
        outputs = tree.map_structure(lambda values: np.asarray(values)[back], outputs)
    return {k: float(v) for k, v in evaluation.items()}, outputs


def finish_run(
    compiled: CompiledSpec,
    config: TrainConfig,
    dataset: Any,
    settings: Any,
    model: Any,
    run_dir: Path,
    history: list[dict[str, float]],
    state: TrainingState,
    display: Display,
    notes: list[str],
    stopped_early: bool,
    resumed_from: int | None,
    recorder: Any,
    dist: Any = None,
    write_report: Callable[..., Path] | None = None,
) -> TrainResult:
    from cnnspec.training.metrics import classification_report_text, classification_summary, predicted_classes
    from cnnspec.training.plots import plot_confusion_matrix, plot_history

    display.message("evaluating on the test set ...")
    evaluation, outputs = _evaluate_test(model, dataset, settings, dist)
    if dataset.streamed:  # images that failed to decode were dropped: drop their labels too
        from cnnspec.training.stream import settle

        dataset.x_test, dataset.y_test = settle(dataset.x_test, dataset.y_test)
    task_part: dict[str, Any] | None = None
    if config.task_path:
        from cnnspec.training.task_results import task_metrics

        task_part = task_metrics(config, dataset.y_test, outputs, dataset.target_names or dataset.class_names)
    else:
        if isinstance(outputs, list):
            outputs = outputs[0]
        y_pred = predicted_classes(outputs, binary=config.binary, from_logits=config.loss.from_logits)
        summary = classification_summary(dataset.y_test, y_pred, dataset.class_names)
    for note in _prediction_notes(summary if task_part is None else task_part):
        notes.append(note)  # (test images without a prediction: a diverged model)
        display.warn(note)
    files: dict[str, Path] = {}
    used = dataset.sizes()
    if dataset.streamed:
        _record_bad_reads(config, dataset, run_dir, display, files)
        used = _used_sizes(dataset, run_dir)
    with atomic_path(run_dir / "model.keras", needed=model_file_bytes(model)) as temp:
        save_model(model, temp)
    files["model"] = run_dir / "model.keras"

    images_per_epoch = images_shown_per_epoch(config, used["train"])
    seconds = [float(row.get("seconds", 0.0)) for row in history]
    train_seconds = sum(seconds)
    steady = steady_epoch_seconds(history, resumed_from)
    median = statistics.median(steady) if steady else 0.0
    best_epoch, weights_from = weights_source(recorder.spec_cbs, len(history))
    metrics: dict[str, Any] = {
        **({"test_accuracy": summary["accuracy"]} if task_part is None else {}),
        "test_loss": evaluation.get("loss"),
        **{f"test_{k}": v for k, v in evaluation.items() if k not in ("loss", "accuracy", "compile_metrics")},
        "epochs_run": len(history),
        "epochs_planned": config.epochs,
        "stopped_early": stopped_early,
        "best_epoch": best_epoch,
        "weights_from": weights_from,
        "train_seconds": round(train_seconds, 3),
        "images_per_second": round(images_per_epoch * len(history) / train_seconds, 1)
        if train_seconds
        else None,
        "images_per_second_steady": round(images_per_epoch / median, 1) if median else None,
        # the images read, not the files listed: a file that failed to decode was left out
        "train_images": used["train"],
        "validation_images": used["validation"],
        "test_images": len(dataset.x_test),
        "resumed_from_epoch": resumed_from,
        "weights_sha256": weights_digest(model),
    }
    last = history[-1] if history else {}
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if key in last:
            metrics[f"final_{key}"] = last[key]
    columns = {k: [row.get(k, float("nan")) for row in history] for k in history[0]} if history else {}
    files["history_png"] = plot_history(columns, run_dir / "history.png", f"{compiled.name}: learning curves")
    if task_part is not None:
        from cnnspec.training.task_results import write_task_files

        metrics.update(task_part)
        _replace_keras_figures(metrics, task_part)
        files.update(
            write_task_files(
                config,
                run_dir,
                task_part,
                dataset.y_test,
                outputs,
                dataset.x_test,
                f"{compiled.name}: test set ({len(dataset.x_test)} images)",
            )
        )
        return _write_results(compiled, run_dir, metrics, files, model, dataset, state, display, notes,
                              history, resumed_from, write_report, None)  # fmt: skip
    metrics.update(
        {
            "macro_f1": summary["macro_avg"]["f1"],
            "weighted_f1": summary["weighted_avg"]["f1"],
            "per_class": summary["per_class"],
            "macro_avg": summary["macro_avg"],
            "weighted_avg": summary["weighted_avg"],
            "confusion_matrix": summary["confusion_matrix"],
            "class_names": dataset.class_names,
            "no_prediction": summary["no_prediction"],
            **({"notes": summary["notes"]} if "notes" in summary else {}),
        }
    )
    report = classification_report_text(dataset.y_test, y_pred, dataset.class_names)
    files["classification_report"] = write_atomic(
        run_dir / "classification_report.txt",
        f"{compiled.name}: test set ({len(dataset.y_test)} images)\n\n{report}",
    )
    files["confusion_matrix"] = plot_confusion_matrix(
        summary["confusion_matrix"],
        dataset.class_names,
        run_dir / "confusion_matrix.png",
        f"{compiled.name}: confusion matrix (test accuracy {summary['accuracy']:.4f}"
        + (f"; {summary['no_prediction']} with no prediction)" if summary["no_prediction"] else ")"),
    )
    return _write_results(compiled, run_dir, metrics, files, model, dataset, state, display, notes,
                          history, resumed_from, write_report, outputs)  # fmt: skip


def _replace_keras_figures(metrics: dict[str, Any], task_part: dict[str, Any]) -> None:
    """An output with outputs that are not numbers: Keras' own figure of it at the top level
    (``test_NAME_accuracy``, ``test_NAME_mean_iou`` of a multi-output model) replaced by the one
    computed from its predictions, as ``outputs.NAME`` has it: Keras argmaxes a NaN row to
    class 0, which scored a diverged model as one that predicts class 0 everywhere."""
    for name, part in (task_part.get("outputs") or {}).items():
        if not part.get("no_prediction"):
            continue
        for key, value in part.items():
            keras_key = f"test_{name}_{key.removeprefix('test_')}"
            if key.startswith("test_") and keras_key in metrics:
                metrics[keras_key] = value


def _prediction_notes(summary: dict[str, Any]) -> list[str]:
    """The notes of test images (pixels, labels) without a prediction, and of classes without
    test images, in a test summary (every output's, named, for a multi-output model's)."""
    from cnnspec.training.metrics import NO_TEST_IMAGES, NOT_NUMBERS

    def said(note: str) -> bool:
        return NOT_NUMBERS in note or NO_TEST_IMAGES in note

    found = [note for note in summary.get("notes") or [] if said(note)]
    for name, part in (summary.get("outputs") or {}).items():
        found += [f"output {name}: {note}" for note in part.get("notes") or [] if said(note)]
    return found


def _write_results(
    compiled: CompiledSpec,
    run_dir: Path,
    metrics: dict[str, Any],
    files: dict[str, Path],
    model: Any,
    dataset: Any,
    state: TrainingState,
    display: Display,
    notes: list[str],
    history: list[dict[str, float]],
    resumed_from: int | None,
    write_report: Callable[..., Path] | None,
    outputs: Any,
) -> TrainResult:
    """metrics.json, report.html, and the run's result (every task's last step). ``outputs``: a
    classifier's outputs for the test split, row for row, which the page's sample predictions
    are read from rather than predicted again (``None``: the page predicts what it shows)."""
    files["history"] = run_dir / "history.json"
    files["history_csv"] = run_dir / "history.csv"
    files["metrics"] = write_atomic(run_dir / "metrics.json", json_text(metrics))
    _write_page(run_dir, state, display, write_report, files, model=model, dataset=dataset, outputs=outputs)
    clear_finished(state, run_dir)
    return TrainResult(run_dir, metrics, history, files, resumed_from, notes)


def _write_page(
    run_dir: Path,
    state: TrainingState,
    display: Display,
    write_report: Callable[..., Path] | None,
    files: dict[str, Path],
    *,
    strict: bool = False,
    **given: Any,
) -> None:
    """report.html, once the run's results are saved (metrics.json), into ``files``: a failed
    write is an error (with the ``cnnspec report`` that writes it later), any other problem a
    warning, a Ctrl-C :class:`ReportInterrupted`. ``given``: the model and dataset in memory.
    ``strict``: the page is what the command is for (``--resume`` of a run that lacks only its
    end), so any problem is the command's error, not a warning after which it exits 0."""
    try:
        if write_report is not None:
            files["html_report"] = write_report(run_dir, **given)
    except runlock.RunFolderLost:  # the folder at run_dir is not this run's now: leave it alone
        raise
    except WriteError as fault:  # a full disk is an error like any other write's
        clear_finished(state, run_dir)  # the results are whole (metrics.json): not needed
        fault.hint = (
            "the run's results are saved; once the disk can take it, write the page with: "
            f"{report_command(run_dir)}"
        )
        raise
    except Exception as exc:  # the results are saved; a report problem must not fail the run
        if strict:  # (a damaged metrics.json: report's own error, exit 2)
            raise
        display.warn(f"report.html was not written ({type(exc).__name__}: {exc}); run `cnnspec report`")
    except KeyboardInterrupt:  # the results are whole: a finished run, without its page
        clear_finished(state, run_dir)
        raise ReportInterrupted(run_dir) from None


def complete_ended(
    compiled: CompiledSpec,
    run_dir: Path,
    display: Display,
    notes: list[str],
    write_report: Callable[..., Path] | None,
) -> TrainResult:
    """``--resume`` of a run stopped (killed) once its results were saved (metrics.json) and
    before its end, or of one that ended without its page (``--no-report``, a page that could
    not be written): write what the end of a run writes and it lacks (report.html, and the
    pictures the page draws that are missing; not where ``write_report`` is ``None``), and
    remove its snapshots (state/), which a finished run no longer has. Nothing is trained or
    evaluated again. A run that lacks nothing is refused by
    :func:`~cnnspec.training.rundir.check_resumable`, as before."""
    page = write_report is not None
    # (a changed spec, a whole run)
    rundir.check_resumable(run_dir, compiled, compiled.spec_hash(), page=page)
    state = TrainingState(run_dir)
    # its end ran and only its page is missing (--no-report, a page that failed to be written)
    ended = not os.path.lexists(state.dir)
    files: dict[str, Path] = {}
    done: list[str] = []
    if rundir.REPORT_FILE in rundir.left_undone(run_dir, page):  # none, or one not of these results
        display.message(f"writing the report of {run_dir} ...")
        _write_page(run_dir, state, display, write_report, files, strict=True)
        if "html_report" in files:
            done.append(f"wrote its {rundir.REPORT_FILE}")
    if os.path.lexists(state.dir):
        clear_finished(state, run_dir)
        if not os.path.lexists(state.dir):
            done.append(f"removed its training snapshots ({state.dir.name}/)")
    how = (
        f"the run in {run_dir} had ended without its {rundir.REPORT_FILE}"
        if ended
        else f"the run in {run_dir} had finished training and saved its results (metrics.json) when "
        "it was stopped, before its end"
    )
    notes.append(
        f"{how}; nothing was trained again: "
        + ("; ".join(done) if done else "what it lacks could not be written (see above)")
    )
    for note in notes:
        display.warn(note)
    metrics, history = _saved_results(run_dir)
    return TrainResult(run_dir, metrics, history, files, None, notes, completed=done)


def _saved_results(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """The results a run saved (metrics.json, and history.json's columns as one row per epoch),
    as :class:`TrainResult` holds them; empty where a file can't be read (``cnnspec report`` and
    ``runs`` say what is wrong with it)."""
    found: list[Any] = []
    for name in ("metrics.json", "history.json"):
        try:
            value = json.loads((run_dir / name).read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            value = None
        found.append(value if isinstance(value, dict) else {})
    metrics, columns = found
    rows: list[dict[str, float]] = []
    if columns and all(isinstance(column, list) for column in columns.values()):
        rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
    return metrics, rows


def clear_finished(state: TrainingState, run_dir: Path) -> None:
    """Remove the snapshots of the finished run in ``run_dir``, unless the folder is no longer
    this process's (moved, or its lock file removed): the state/ at its path may be another
    run's then, one that ``train --resume`` still needs. (A removal is a write the folder's
    check does not see: it goes through no atomic write.)"""
    try:
        check_owned(run_dir)
    except runlock.RunFolderLost:
        return
    with contextlib.suppress(OSError):
        state.clear()


def remove_cache(run_dir: Path) -> None:
    """Remove ``data.cache: disk``'s files from the run folder (tf.data writes several)."""
    for leftover in run_dir.glob(CACHE_FILE + "*"):
        with contextlib.suppress(OSError):
            leftover.unlink()


def _used_sizes(dataset: Any, run_dir: Path) -> dict[str, int]:
    """The images of each split a streamed run read (its listing less the files that failed to
    decode, :data:`~cnnspec.training.stream.BAD_READS`), added to lock.json as
    ``data.used_sizes`` where they differ from ``data.sizes``. ``sizes`` stays the listing's,
    as the run started with (its content hash covers those files), so a resume reads the same."""
    from cnnspec.training.stream import BAD_READS

    failed = {path for path, _ in BAD_READS.all()}
    used = {
        split: sum(1 for path in files.paths if str(path) not in failed)
        for split, files in (
            ("train", dataset.x_train),
            ("validation", dataset.x_val),
            ("test", dataset.x_test),
        )
    }
    lock_path = run_dir / "lock.json"
    if lock_path.is_file():
        lock = json.loads(lock_path.read_text(encoding="utf-8"))
        data = lock.get("data")
        if isinstance(data, dict) and data.get("sizes") != used:
            data["used_sizes"] = used
            write_atomic(lock_path, json.dumps(lock, indent=2) + "\n")
    return used


def _record_bad_reads(
    config: TrainConfig, dataset: Any, run_dir: Path, display: Display, files: dict[str, Path]
) -> None:
    """Files that passed the header check but failed to decode while streaming: an error
    (``data.on_bad_file: error``), or added to ``bad_files.txt`` with a warning (``skip``)."""
    from cnnspec.training.badfiles import write_list
    from cnnspec.training.stream import BAD_READS, raise_bad_reads

    raise_bad_reads(config.data.on_bad_file)
    late = [
        (path, reason)
        for path, reason in BAD_READS.all()
        if path not in {str(p) for p, _ in dataset.bad_files}
    ]
    if late:
        display.warn(
            f"left out {len(late)} image file(s) that failed to decode while training "
            "(data.on_bad_file: skip)"
        )
    if dataset.bad_files or late:
        files["bad_files"] = write_list(run_dir, [*dataset.bad_files, *late])


def weights_digest(model: Any) -> str:
    """SHA-256 of the model's weights (float32 bytes, in order): equal weights, equal digest."""
    import hashlib

    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight, dtype=np.float32).tobytes())
    return digest.hexdigest()
