"""``train``: a compiled spec → a trained model and a complete, reproducible run directory.

The order matters for the user: every spec and data mistake is reported (located) before the
run directory is created or a single step runs; state is saved after every epoch, so a crash
or Ctrl-C costs at most the epoch in progress (``--resume RUN_DIR``).

This module checks, prepares and runs the fit, phase by phase. How a training ends for its
caller is :mod:`cnnspec.training.outcomes`, the sizes of an epoch :mod:`cnnspec.training.epochs`,
and what a run writes once its epochs are done :mod:`cnnspec.training.finish`.
"""

from __future__ import annotations

import contextlib
import shutil
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from cnnspec.analysis.settings import layers_without_xla, training_config
from cnnspec.analysis.settings_types import TrainConfig, rate_scale_text
from cnnspec.errors import UsageError, WriteError, out_of_memory
from cnnspec.fileio import check_owned, check_writable, missing_folders, remove_empty, stop_noted
from cnnspec.training import rundir, runlock
from cnnspec.training.epochs import steps_per_epoch, training_batch_size
from cnnspec.training.finish import CACHE_FILE, clear_finished, complete_ended, finish_run, remove_cache
from cnnspec.training.outcomes import (
    DataChanged,
    KernelRefused,
    OutOfMemory,
    ReportInterrupted,
    TrainingInterrupted,
    TrainResult,
    resume_command,
)
from cnnspec.training.progress import Display
from cnnspec.training.state import TrainingState

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.analysis.weights_run import WeightsRun


def train(
    compiled: CompiledSpec,
    *,
    out: Path | None = None,
    resume: Path | None = None,
    display: Display | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    command: list[str] | None = None,
    cluster: list[str] | None = None,
    task_index: int | None = None,
    write_report: Callable[..., Path] | None = None,
    callbacks: Sequence[Any] = (),
    weights: str | None = None,
    hash_content: bool = False,
    run_data: Callable[[Path], Any] | None = None,
) -> TrainResult:
    """Train the spec's model on its data and write the run directory.

    ``out``: the run directory (default ``runs/<name>-<timestamp>``); ``resume``: continue the
    run in that directory (the spec must hash the same). Raises ``SpecError`` for spec/data
    mistakes, ``UsageError`` for unusable directories, :class:`TrainingInterrupted` on Ctrl-C.
    ``cluster``/``task_index``: this process's place in a ``multi_worker`` cluster (else
    ``TF_CONFIG``); only the chief writes ``out``, the other workers write to a temporary folder
    (:mod:`cnnspec.training.distribute`), and a lost worker raises ``ClusterError``.
    ``write_report``: called as ``write_report(run_dir, model=..., dataset=..., outputs=...)``
    once the results are saved (``outputs``: a classifier's outputs for the test split, which
    the test results were computed from, else ``None``; ``cnnspec train`` passes
    :func:`cnnspec.reporting.html.write_report`, which sits in a layer above this one); a failure
    there is a warning, not a failed run, unless the disk refused the page; ``None``: the run
    ends without a page (``--no-report``), and a resume of a run that lacks only its page has
    nothing to do. A file that can't be
    written (full disk, I/O error, read-only folder) raises :class:`~cnnspec.errors.WriteError`
    with a hint to resume; an output folder that can't take files at all is refused before
    TensorFlow is imported.
    ``callbacks``: more Keras callbacks for ``fit``, after the spec's own (a search trial's
    pruning: one that sets ``model.stop_training`` ends the run early, and it finishes as usual).
    ``weights``: a weights source replacing the spec's ``weights:`` (``--weights``). A new run
    starts from the spec's weights sources (:mod:`cnnspec.training.transfer_loads`), checked against
    the model before the run folder is written, and records ``--weights`` in lock.json; a
    resumed run restores its own snapshot, or, when it saved none yet, starts again from the
    same sources (a source gone since refuses the resume).
    ``hash_content``: a streamed source's hash in lock.json covers the files' bytes, not just
    their names, sizes and modification times.
    A new run whose whole-model weights come from a run folder trained on the same data source
    splits with that run's seed when it sets no ``training.seed`` (lock.json's ``seed_from``
    names the run), so that its test images are none those weights trained on; otherwise the
    test images that run trained or validated on are counted with ``run_data`` (loads a run
    folder's split: ``cnnspec train`` passes :func:`cnnspec.reporting.own_data.run_data`;
    ``None``: not counted) and a note says how many (:mod:`cnnspec.training.weights_split`).
    """
    from cnnspec.training.distribute import planned_chief

    display = display or Display("quiet")
    config = training_config(compiled)
    chief = planned_chief(config.distribute, cluster, task_index)
    if chief:  # a folder that can't take files is refused now, not after TensorFlow and the data
        if resume is not None:
            check_writable(
                resume,
                option="--resume",
                hint="make its disk writable again, or copy the run folder to one and resume the copy",
            )
        else:
            check_writable(out if out is not None else Path("runs"), option="--out")
    from cnnspec.training.memory import check_memory

    check_memory(compiled, config)  # data or batches that cannot fit: said before anything is allocated
    plans: list[Any] = []
    started_with = None  # what lock.json records of --weights
    from_run: WeightsRun | None = None  # the run folder the whole model's weights come from
    if resume is None:  # every weights source read and matched before anything is written
        from cnnspec.training.transfer_loads import override_record, plan_for_spec, whole_run

        plans = plan_for_spec(compiled, weights)
        started_with = override_record(compiled, weights, plans)
        from_run = whole_run(compiled, config, weights) if plans else None
    try:
        return _train(
            compiled, config, chief, out, resume, display, overrides, command, cluster, task_index,
            write_report, callbacks, hash_content, plans=plans, started_with=started_with,
            split_from=(from_run, run_data),
        )  # fmt: skip
    except WriteError as fault:
        if isinstance(fault, runlock.RunFolderLost):  # its resume command, at the folder's new path
            fault.hint = (
                "if the run folder was moved, continue it where it is now with: "
                f"{resume_command(compiled, list(overrides), Path('NEWPATH'))}; if only its lock "
                "file was removed, another process may be training into it now: let that one finish"
            )
        elif fault.hint is None:
            fault.hint = _continue_hint(compiled, overrides, fault)
        raise


def _continue_hint(compiled: CompiledSpec, overrides: list[str] | tuple[str, ...], fault: WriteError) -> str:
    """How to go on after a failed write: resume the run (its snapshots are intact), or, when
    the run folder was never set up, run the same command again."""
    from cnnspec.write_faults import write_fix

    fix = write_fix(fault.errno)  # (a full disk, a read-only one, no permission, … each its own)
    for parent in Path(fault.path).parents[:2]:  # the run folder, or its state/ or checkpoints/
        if (parent / "lock.json").is_file():
            return f"{fix}, then continue with: {resume_command(compiled, list(overrides), parent)}"
    return f"{fix}, then run the same command again (nothing of this run was kept)"


def _train(
    compiled: CompiledSpec,
    config: TrainConfig,
    chief: bool,
    out: Path | None,
    resume: Path | None,
    display: Display,
    overrides: list[str] | tuple[str, ...],
    command: list[str] | None,
    cluster: list[str] | None,
    task_index: int | None,
    write_report: Callable[..., Path] | None,
    callbacks: Sequence[Any],
    hash_content: bool = False,
    *,
    plans: Sequence[Any] = (),
    started_with: dict[str, Any] | None = None,
    split_from: tuple[WeightsRun | None, Callable[[Path], Any] | None] = (None, None),
) -> TrainResult:
    """:func:`train` once its output folder has passed :func:`check_writable`."""
    notes: list[str] = []
    created = False  # by this process: removed again when the run fails before writing a file
    if resume is not None:
        run_dir = Path(resume)
        if out is not None and Path(out).resolve() != run_dir.resolve():
            raise UsageError("expected either --out or --resume, or both naming the same folder")
        if chief:
            rundir.read_lock(run_dir)  # a missing or foreign folder is refused before locking it
    elif out is not None:
        run_dir = Path(out)
    else:
        created = chief
        claim = rundir.claim_default_run_dir if chief else rundir.default_run_dir
        run_dir = claim(compiled.name)
    if not chief:  # a non-chief multi_worker process writes a scratch copy, not the run folder
        if resume is not None and (run_dir / "metrics.json").is_file():
            rundir.check_resumable(run_dir, compiled, compiled.spec_hash(), page=write_report is not None)
            raise UsageError(
                f"the run in {run_dir} has finished training; there is nothing for a worker to resume",
                "resume it with the chief (worker 0) alone, which writes what the run left undone",
            )
        return _train_owned(
            compiled, config, run_dir, resume is not None, display, notes, overrides, command,
            cluster, task_index, write_report, callbacks, hash_content, plans=plans,
            started_with=started_with, split_from=split_from,
        )  # fmt: skip
    made: list[Path] = []  # the folders of --out this process made (all: removed on a failure)
    if resume is None:
        created = created or not run_dir.exists()
        made = missing_folders(run_dir)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            rundir.check_new(run_dir)  # a file in the way: the usual message
            raise
    # lock, then check: of two runs racing for one new folder exactly one passes check_new
    try:
        owned = runlock.acquire(run_dir, command, alternative=None if resume else "choose another --out")
    except WriteError:
        if created:  # a full disk: the empty lock file is all this run wrote; leave no folder
            with contextlib.suppress(OSError):
                (run_dir / runlock.LOCK_NAME).unlink()
                run_dir.rmdir()
            remove_empty(made)  # (run_dir, removed just above, is passed over)
        raise
    checked = False  # the folder held nothing but what check_new allows: this run's to remove
    try:
        if resume is None and rundir.check_new(run_dir, compiled):  # (before removing anything)
            notes.append(
                f"{run_dir} held the spec.yaml and resolved.yaml of this spec from a run killed "
                "before it started; this run starts there"
            )
        checked = resume is None
        removed = runlock.remove_leftovers(run_dir)
        if removed:
            notes.append(f"removed {removed} temp file(s) left in {run_dir} by an earlier killed write")
        if resume is not None and (run_dir / "metrics.json").is_file():  # its training had ended
            return complete_ended(compiled, run_dir, display, notes, write_report)
        try:
            return _train_owned(
                compiled, config, run_dir, resume is not None, display, notes, overrides, command,
                cluster, task_index, write_report, callbacks, hash_content, plans=plans,
                started_with=started_with, split_from=split_from,
            )  # fmt: skip
        except KeyboardInterrupt:  # before fit: the data, the model, a restore, lock.json just written
            _stopped_before_fit(run_dir, compiled, overrides)
            raise
    except BaseException as exc:
        if created and checked:  # (while it holds the lock: no other run has taken the folder;
            # never before check_new passed: a folder made by another between the exists() test
            # and the mkdir may hold a user's files, which the refusal keeps)
            _discard_unsaved(run_dir, exc)
        owned.release()  # before the rmdir: the lock file would keep the folder non-empty
        if created:  # nothing was written (a spec or data mistake): leave no empty folder behind
            with contextlib.suppress(OSError):
                run_dir.rmdir()
            # (nor the folders above it that --out made: a/b of --out a/b/run)
            remove_empty(made)  # (run_dir, removed just above, is passed over)
        raise
    finally:
        owned.release()


def _discard_unsaved(run_dir: Path, exc: BaseException) -> None:
    """Remove what a run wrote in the folder it created (lock.json, spec.yaml, resolved.yaml …)
    when an error of its data or model stopped it before it saved an epoch (a file that fails to
    decode mid-epoch): the stub held nothing a resume would not redo, yet the same command was
    refused (the folder not empty) and ``--resume`` too once the fault was fixed (a bad file
    removed changes the data's hash), so the user had to delete it by hand. A stop whose message
    says how to resume keeps it: Ctrl-C, out of memory, a refused kernel, a failed write (a full
    disk: resumed once space is freed; a folder lost, moved or its lock file removed, may be
    another process's now), a lost cluster worker (restarted with --resume)."""
    from cnnspec.training.distribute import ClusterError

    if not isinstance(exc, Exception) or isinstance(
        exc, (TrainingInterrupted, OutOfMemory, KernelRefused, WriteError, ClusterError)
    ):
        return
    if rundir.saved_an_epoch(run_dir):
        return  # an epoch saved (or its results): a resume goes on from it
    with contextlib.suppress(OSError):  # (what is left keeps the folder: the rmdir then passes over it)
        for path in list(run_dir.iterdir()):
            if path.name == runlock.LOCK_NAME:
                continue  # (the lock's release removes it)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def _stopped_before_fit(
    run_dir: Path, compiled: CompiledSpec, overrides: list[str] | tuple[str, ...]
) -> None:
    """Raise :class:`TrainingInterrupted` for a Ctrl-C or SIGTERM before fit started (or in
    what it does not handle) in a folder that is a run, its lock.json written: the folder
    resumes, so the stop says how, as one in fit does. It said a bare "interrupted", and the
    same command was then refused, the folder being no longer new. Returns when the folder is
    no run yet (``rundir.start`` removed what it had written: the same command starts it again)
    or a finished one."""
    if not (run_dir / "lock.json").is_file() or (run_dir / "metrics.json").is_file():
        return
    snapshots = TrainingState(run_dir).snapshots()
    raise TrainingInterrupted(
        run_dir, snapshots[0].epoch if snapshots else 0, resume_command(compiled, list(overrides), run_dir)
    ) from None


def _train_owned(
    compiled: CompiledSpec,
    config: TrainConfig,
    run_dir: Path,
    resuming: bool,
    display: Display,
    notes: list[str],
    overrides: list[str] | tuple[str, ...],
    command: list[str] | None,
    cluster: list[str] | None,
    task_index: int | None,
    write_report: Callable[..., Path] | None,
    extra_callbacks: Sequence[Any] = (),
    hash_content: bool = False,
    *,
    plans: Sequence[Any] = (),
    started_with: dict[str, Any] | None = None,
    split_from: tuple[WeightsRun | None, Callable[[Path], Any] | None] = (None, None),
) -> TrainResult:
    """:func:`train` once this process owns ``run_dir`` (or, off the chief, needs no lock).
    ``split_from``: the run folder the weights come from and how to load its data split
    (:func:`train`'s ``run_data``)."""
    lock: dict[str, Any] | None = None
    from_run, run_data = split_from
    seed_from: WeightsRun | None = None  # the weights run whose seed this run splits with
    shared: str | None = None  # (its note of the test images those weights learnt)
    if resuming:
        lock = rundir.check_resumable(run_dir, compiled, compiled.spec_hash(), page=write_report is not None)
        seed = int(lock["seed"])
        if not TrainingState(run_dir).snapshots():  # killed before its first snapshot: it starts
            # again from epoch 1, so from the weights it first started from (else the snapshot's)
            from cnnspec.training.transfer_loads import plan_for_restart

            plans = plan_for_restart(compiled, lock, run_dir)
    else:
        from cnnspec.training.runtime import choose_seed
        from cnnspec.training.weights_split import adopted_note, adopted_seed

        seed = choose_seed(config)
        adopted = adopted_seed(config, from_run)
        if adopted is not None and from_run is not None:  # its test images stay out of its training
            seed, seed_from = adopted, from_run
            display.message(adopted_note(seed, from_run))
        elif from_run is not None and adopted_seed(replace(config, seed=None), from_run) == seed:
            seed_from = from_run  # its seed set to that run's (a search trial's study seed): said so

    from cnnspec.training.runtime import configured, refuse_cpu_gaps

    display.message(f"[bold]{compiled.name}[/bold]: loading data ({config.data.kind}) ...")
    with configured(config, seed, notes) as policy:
        from cnnspec.training import distribute
        from cnnspec.training.data import load_dataset

        # (before this worker waits for its cluster: the machine alone decides)
        distribute.refuse_cpu_jit(compiled, config.jit_compile, config.distribute, cluster)
        try:
            dist = distribute.make_distribution(
                config.distribute,
                notes,
                cluster=cluster,
                task_index=task_index,
                startup_timeout=config.startup_timeout,
            )
        except distribute.NoTPU:
            raise distribute.no_tpu(compiled) from None
        if dist.multi_worker and lock is None and config.seed is None:
            seed = distribute.reseed(dist.from_chief(seed))  # every worker splits and shuffles alike
        with distribute.worker_scratch(dist):
            work_dir = dist.work_dir(run_dir)
            refuse_cpu_gaps(compiled)  # (a layer a CPU cannot run: said before the data is loaded)
            dataset = load_dataset(compiled, config, seed)
            notes.extend(dataset.notes)  # e.g. a split that has no images of some classes
            if lock is not None:  # a resumed run hashes its data as it did when it started
                hash_content = (lock.get("data") or {}).get("hash") == "content"
            dataset.hash_content = hash_content
            if hash_content and dataset.streamed:  # evaluate/report hash the files alike
                dataset.source["hash"] = "content"
            content_hash = dataset.content_hash()
            if lock is not None and lock.get("data", {}).get("content_hash") not in (None, content_hash):
                raise DataChanged(
                    f"expected the same data as the run in {run_dir}; the data's content hash changed",
                    "resume with the data the run started with, or start a new run"
                    if rundir.saved_an_epoch(run_dir)
                    # (its bad files removed, as the error that stopped it said: nothing to resume)
                    else f"the run saved no epoch, so nothing of it is lost: remove the files in {run_dir} "
                    "and start it there anew with --out, or choose another --out",
                )
            if lock is None:
                check_owned(work_dir)  # still where it was locked: rundir.start would re-create it
                _make_loss_and_metrics(config)
                from cnnspec.training.transfer_loads import file_records
                from cnnspec.training.weights_split import shared_note

                # the test images its starting weights learnt, said before training (a source's
                # own test set holds none of them)
                if dist.is_chief and config.data.splits_test:
                    shared = shared_note(dataset, from_run, run_data, seed)
                    notes.extend([shared] if shared is not None else [])
                lock = rundir.start(
                    work_dir, compiled, config, seed, dataset, policy, list(overrides), command,
                    weights=started_with, weights_files=file_records(list(plans)),
                    seed_from=None if seed_from is None else str(seed_from.run_dir.absolute()),
                    test_note=shared,
                )  # fmt: skip
                distribute.update_lock(work_dir, distribute=dist.describe())
            elif dist.is_chief and isinstance(lock.get("test_note"), str):
                # a resumed run's (a search's continued trial): counted as it started, from the data
                # it still has (the content hash above), so said again as it was, not counted anew
                shared = lock["test_note"]
                notes.append(shared)
            if dataset.bad_files:
                from cnnspec.training.badfiles import skipped_note, write_list

                notes.append(skipped_note(dataset.bad_files, write_list(work_dir, dataset.bad_files)))
            try:
                result = _run(
                    compiled, config, dataset, work_dir, seed, display, notes, resuming, overrides,
                    dist=dist, lock=lock, restore_from=run_dir, write_report=write_report,
                    extra_callbacks=extra_callbacks, plans=plans,
                )  # fmt: skip
            except BaseException as exc:
                if isinstance(exc, OSError):  # a file read back (or Keras' own) gone with a moved
                    check_owned(work_dir)  # folder: said as the move (RunFolderLost), not as that file
                lost = isinstance(exc, runlock.RunFolderLost)  # (its path may be another run's now)
                if config.data.cache == "disk" and not config.data.keep_cache and not lost:
                    remove_cache(work_dir)  # never read again: a resume rebuilds it (in _run)
                if isinstance(exc, Exception) and dist.multi_worker and distribute.is_cluster_failure(exc):
                    raise distribute.cluster_failure(exc, dist, run_dir, work_dir) from None
                raise
            if not dist.is_chief:  # its files were a scratch copy; the chief's are the run's
                result.run_dir, result.files, result.worker = run_dir, {}, dist.task
            result.shared_note = shared
            recorded = lock.get("seed_from") if lock is not None else None  # (a resumed run's)
            taken = str(seed_from.run_dir.absolute()) if seed_from is not None else recorded
            result.seed_from = taken if isinstance(taken, str) else None
            return result


def _make_loss_and_metrics(config: TrainConfig) -> None:
    """Make the run's loss and metrics once, unused, before the run folder is written: Keras
    checks their settings (a metric's threshold, a loss's weight) only when they are made, and
    a refusal after lock.json would leave a run folder that can neither be resumed nor started
    anew. (Validate holds every setting to Keras' rules; this keeps a missed one harmless.)"""
    from cnnspec.training import builders

    builders.loss(config)
    builders.metrics(config)


def _run(
    compiled: CompiledSpec,
    config: TrainConfig,
    dataset: Any,
    run_dir: Path,
    seed: int,
    display: Display,
    notes: list[str],
    resuming: bool,
    overrides: list[str] | tuple[str, ...],
    *,
    dist: Any = None,
    lock: dict[str, Any] | None = None,
    restore_from: Path | None = None,
    write_report: Callable[..., Path] | None = None,
    extra_callbacks: Sequence[Any] = (),
    plans: Sequence[Any] = (),
) -> TrainResult:
    from cnnspec.backends.keras_builder import (
        adapt_layers,
        adapted_layers,
        build_augmentation,
        build_model,
        set_frozen,
    )
    from cnnspec.training import builders
    from cnnspec.training.callbacks import InterruptCheck, Recorder, spec_callbacks, write_history
    from cnnspec.training.data_checks import class_weights
    from cnnspec.training.distribute import Distribution, prepare_model
    from cnnspec.training.interrupts import GATE
    from cnnspec.training.joint_augment import build_joint_augmentation
    from cnnspec.training.mixing import build_mixing
    from cnnspec.training.pipeline import counted, make_dataset, pipeline_settings
    from cnnspec.training.prebuild import build_for_fit
    from cnnspec.training.rates import scale_learning_rates

    if dataset.streamed:
        from cnnspec.training.stream import BAD_READS

        BAD_READS.clear()  # (an earlier run in this process may have left some)
        remove_cache(run_dir)  # a killed run's cache may be half-written: it is rebuilt
    n_train = len(dataset.x_train)
    steps = steps_per_epoch(config, n_train)
    train_batch = training_batch_size(config, n_train)
    if config.steps_per_epoch and train_batch < config.batch_size:
        notes.append(
            f"training.batch_size {config.batch_size} is larger than the {n_train} training images: "
            f"each of the {config.steps_per_epoch} steps of an epoch trains on a batch of all {n_train}"
        )
    settings = pipeline_settings(compiled, config, dataset)
    notes.extend(_value_range_notes(compiled, dataset, settings.rescale))
    notes.extend(builders.long_warmup_warnings(compiled, config, steps))  # (the steps are known now)
    dist = dist or Distribution()

    def configure(model: Any, index: int, jit: bool) -> None:
        """Freeze the layers of phase ``index`` and compile with its fresh optimizer: Keras
        only sees a change of ``trainable`` when the model is compiled again."""
        phase = config.phases[index]
        set_frozen(model, phase.frozen)
        with dist.scope():  # variables (model, optimizer, metrics) live on the strategy's devices
            model.compile(
                optimizer=builders.optimizer(config, steps * phase.epochs, phase.optimizer),
                loss=builders.loss(config),
                loss_weights=builders.loss_weights(config),
                metrics=builders.metrics(config),
                jit_compile=jit,
            )
            scale_learning_rates(model, phase.rate_scale)

    def compiled_model(jit: bool) -> Any:
        with dist.scope():
            built = build_model(compiled.ir)
        configure(built, 0, jit)
        return prepare_model(built, dist)

    jit = _decide_jit(
        compiled_model,
        config,
        dataset,
        settings,
        seed,
        dist,
        lock,
        run_dir,
        notes,
        layers_without_xla(compiled.ir),
    )
    model = compiled_model(jit)
    augmentation = build_joint_augmentation(compiled.ir, dataset.target) or build_augmentation(compiled.ir)
    mixing = build_mixing(config, seed)  # training.mixup / cutmix: Keras' MixUp or CutMix

    def training_data(batch_size: int, shard: tuple[int, int] | None) -> Any:
        return make_dataset(
            dataset.x_train,
            dataset.y_train,
            replace(settings, batch_size=batch_size),
            training=True,
            seed=seed,
            augmentation=augmentation,
            shuffle_buffer=config.data.shuffle_buffer,
            repeat=config.steps_per_epoch is not None,
            cache_file=run_dir / CACHE_FILE if config.data.cache == "disk" else None,
            shard=shard,
            mixing=mixing,
        )

    if dataset.streamed:  # each worker reads only its part of the files
        train_ds = dist.shard_files(training_data, train_batch)
    else:
        train_ds = dist.shard(training_data(train_batch, None))
    # Count the iterators Keras makes of the training data, so that a resumed run can make as
    # many and go on with the shuffle order of the next epoch (pipeline.counted). Not for a
    # repeated dataset (steps_per_epoch: one iterator runs on across epochs, read ahead by the
    # prefetch) nor a distributed one (Keras iterates the strategy's wrapper); with class weights
    # Keras iterates its own map of it, which the count does not see. Their resume is not exact,
    # and the snapshots say so by leaving the count out (Recorder.data_iterators).
    import tensorflow as tf

    data_counter = None
    if config.steps_per_epoch is None and isinstance(train_ds, tf.data.Dataset):
        train_ds = data_counter = counted(train_ds)
    has_val = len(dataset.x_val) > 0
    val_ds = None
    if has_val:
        val_cache = run_dir / f"{CACHE_FILE}-validation" if config.data.cache == "disk" else None

        def validation_data(batch_size: int, shard: tuple[int, int] | None) -> Any:
            return make_dataset(
                dataset.x_val,
                dataset.y_val,
                replace(settings, batch_size=batch_size),
                cache_file=val_cache,
                shard=shard,
            )

        # Validation only feeds metrics, which the strategy sums over workers whatever the order,
        # so a streamed validation split is read in parts too (each worker its own files, in as
        # many batches as the others: stream.shard_batches).
        if dataset.streamed:
            val_ds = dist.shard_files(validation_data, config.batch_size)
        else:
            val_ds = dist.shard(validation_data(config.batch_size, None))

    state = TrainingState(run_dir)
    restored = None
    phase_index = 0  # the phase the model is set up for

    def prepare(snapshot: Any) -> None:  # a snapshot holds the optimizer of the phase that wrote it
        nonlocal phase_index
        wrote = config.phase_at(max(snapshot.epoch - 1, 0))
        if wrote != phase_index:
            configure(model, wrote, jit)
            phase_index = wrote

    if resuming:  # (a non-chief worker reads the chief's state: the run folder must be shared)
        with dist.scope():
            restored = TrainingState(restore_from or run_dir).restore(model, notes, prepare)
        if restored is None:  # killed before its first snapshot (or its state/ was removed)
            notes.append("no training state was saved in this run yet: it starts again from epoch 1")
    if restored is None:  # a resumed run restores the adapted statistics with the weights
        adapt_layers(
            model, adapted_layers(compiled.ir), make_dataset(dataset.x_train, dataset.y_train, settings)
        )
    if plans and restored is None:  # after adapt: the loaded statistics are the pretrained ones
        from cnnspec.training.transfer import apply_plan
        from cnnspec.training.transfer_report import class_order_notes
        from cnnspec.training.transfer_report import write_report as write_transfer

        for plan in plans:
            apply_plan(model, plan)
            for line in plan.lines():
                display.message(line)
        write_transfer(run_dir, list(plans))
        outputs = [(out.name, names) for out, names in rundir.output_names(config, dataset)]
        notes.extend(class_order_notes(plans, outputs))
    snapshot, arrays = restored if restored else (None, {})
    initial_epoch = snapshot.epoch if snapshot else 0
    if snapshot is not None and not (snapshot.complete or snapshot.stopped_early):
        _resume_random_state(snapshot, arrays, [model, augmentation, mixing], data_counter, notes)
    for note in notes:
        display.warn(note)
    if snapshot is not None:
        display.message(
            f"resuming {run_dir} after epoch {initial_epoch}"
            + (
                " (training had finished; writing the results)"
                if snapshot.complete or snapshot.stopped_early
                else ""
            )
        )

    spec_cbs = spec_callbacks(config, run_dir)
    recorder = Recorder(
        run_dir, state, spec_cbs, snapshot, arrays, config.callback("csv_logger") is not None,
        random_owners=[model, augmentation, mixing], data=data_counter,
    )  # fmt: skip
    keys = config.logged_names(has_val)
    progress = display.callback(config.epochs, steps, keys, initial_epoch)
    epoch_end = list(spec_cbs.values())
    if config.averages_weights:  # use_ema: validation and these callbacks see the average
        from cnnspec.training.averaged import around

        epoch_end = around(epoch_end)
    callbacks = [InterruptCheck(), *epoch_end, progress, recorder, *extra_callbacks]
    if dataset.streamed:  # a file that fails to decode mid-epoch stops the run, named
        from cnnspec.training.stream import make_keras_callback

        callbacks.insert(1, make_keras_callback(config.data.on_bad_file))
    if len(compiled.ir.outputs) > 1 and dist.replicas == 1 and not dist.multi_worker:
        from cnnspec.training.output_losses import make_callback

        # first: each output's loss weighted by batch size before anything reads the epoch's logs
        whole = None if config.steps_per_epoch is not None else n_train  # (repeated: every batch whole)
        callbacks.insert(0, make_callback(config.batch_size, len(dataset.x_val), whole))
    display.message(
        f"training {compiled.name}: {n_train} images ({len(dataset.x_val)} validation, "
        f"{len(dataset.x_test)} test), {config.epochs} epochs × {steps} steps of {train_batch}, "
        f"seed {seed}{dist.summary()} → {run_dir}"
    )
    if config.averages_weights and has_val:
        display.message(
            "use_ema: validation (val_*), early stopping and checkpoints see the averaged weights"
        )
    complete = snapshot is not None and snapshot.complete
    stopped_early = snapshot.stopped_early if snapshot else False
    fitted = False  # whether fit ran here, and so the final snapshot is still to be written
    if complete:
        recorder.restore_callbacks()  # no fit: best epoch etc. come from the snapshot
    elif stopped_early:  # fit had ended at the snapshot's epoch; killed before the final snapshot
        recorder.replay_fit_end(model)  # no epoch more: only the end of that fit
    else:
        _check_cache_space(run_dir, config, dataset)
        try:
            with GATE.deferred():
                start = initial_epoch
                stop_requested = False  # whether the last fit was told to stop (stop_training)
                last = len(config.phases) - 1
                for index, phase in enumerate(config.phases):
                    end = phase.first_epoch + phase.epochs
                    # a phase already done is skipped; when every epoch is (killed before the
                    # final snapshot), one fit of no epochs still runs the callbacks' ends
                    if start >= end and not (index == last and start == initial_epoch):
                        continue
                    if start == phase.first_epoch and index > 0 and recorder.resumed is not None:
                        # Resumed at a phase boundary: the snapshot is the state after the last
                        # epoch of the phase before, written before that fit's end. Replay the end
                        # (the optimizer's finalize: use_ema's average, with the phase before's
                        # optimizer, so before this phase's is set up; early stopping's
                        # restore_best_weights: this phase starts from the best weights) and put
                        # every callback's state back now, before this fit: its on_train_begin
                        # then resets what Keras resets between fits (early stopping,
                        # reduce_lr_on_plateau) and keeps what carries across phases
                        # (model_checkpoint's best), as in the uninterrupted run.
                        recorder.replay_fit_end(model)
                        recorder.resumed = None
                    if index != phase_index:
                        configure(model, index, jit)
                        phase_index = index
                    if config.phased:
                        recorder.phase = index + 1
                        display.message(_phase_line(config, index))
                    elif phase.rate_scale:  # (one phase: no phase line to say them)
                        display.message(rate_scale_text(dict(phase.rate_scale), phase.frozen))
                    build_for_fit(model, train_ds)  # (one trace of the train step, not two)
                    with _untrained_said(compiled, phase):
                        model.fit(
                            train_ds,
                            validation_data=val_ds,
                            epochs=end,
                            initial_epoch=start,
                            steps_per_epoch=config.steps_per_epoch,
                            class_weight=class_weights(config, dataset),
                            callbacks=callbacks,
                            shuffle=False,  # the pipeline shuffles, seeded
                            verbose=0,
                        )
                    recorder.resumed = None  # restored once, at the start of the first fit
                    start = len(recorder.history)
                    # early stopping (or terminate_on_nan, or a search trial's pruning) ends the
                    # whole run, on a phase's last epoch too: Keras' fit then ends as it would
                    # anyway, and only its stop_training flag tells (the next fit clears it)
                    stop_requested = bool(getattr(model, "stop_training", False))
                    if start < end or stop_requested:
                        break
        except KeyboardInterrupt:
            recorder.interrupted = True
            progress.stop()
            raise TrainingInterrupted(
                run_dir, len(recorder.history), resume_command(compiled, list(overrides), run_dir)
            ) from None
        except Exception as exc:  # out of memory: the epochs done are saved, as for Ctrl-C
            from cnnspec.training.onednn import kernel_limit, spec_layers

            fault = _fit_write_fault(exc, run_dir, config, dataset)
            if fault is not None:  # a full disk under TensorFlow's own writes (before the memory:
                recorder.interrupted = True  # it says ResourceExhausted for both)
                progress.stop()
                raise fault from None
            detail, limit = out_of_memory(exc), kernel_limit(exc, spec_layers(model, compiled.ir))
            if detail is None and limit is None:
                raise
            recorder.interrupted = True
            progress.stop()
            resume_with = resume_command(compiled, list(overrides), run_dir)
            if limit is not None:  # (the same run goes on with the other kernels)
                raise KernelRefused(run_dir, len(recorder.history), resume_with, limit) from None
            raise OutOfMemory(run_dir, len(recorder.history), resume_with, train_batch, detail) from None
        # From the last fit's flag, as each epoch's snapshot records it: early stopping's own
        # stopped_epoch is reset by the on_train_begin of every phase's fit.
        stopped_early = stop_requested or len(recorder.history) < config.epochs
        fitted = True
    history = recorder.history
    try:
        if fitted:  # (in this try: a Ctrl-C while it is written says how to resume, as after it)
            recorder.save(len(recorder.history), complete=True, stopped_early=stopped_early)
        checkpoint = spec_cbs.get("model_checkpoint")
        if checkpoint is not None and checkpoint.save_best_only and checkpoint.path.is_file():
            model.load_weights(str(checkpoint.path))
        write_history(run_dir, history, config.callback("csv_logger") is not None)
        if config.data.cache == "disk" and not config.data.keep_cache:
            remove_cache(run_dir)
        return finish_run(
            compiled, config, dataset, settings, model, run_dir, history, state, display, notes,
            stopped_early, snapshot.epoch if snapshot else None, recorder, dist, write_report,
        )  # fmt: skip
    except Exception:
        if not stop_noted():
            raise
        # a Ctrl-C or SIGTERM that h5py turned into an error of its own in the middle of a
        # model.save (interrupts.py): a stop, said as the one below
        _stopped_after_fit(run_dir, state, history, compiled, overrides)
    except KeyboardInterrupt:
        _stopped_after_fit(run_dir, state, history, compiled, overrides)


@contextlib.contextmanager
def _untrained_said(compiled: Any, phase: Any) -> Iterator[None]:
    """Keras' own "The model does not have any trainable weights" left out of a fit whose
    phase freezes every layer with weights: the spec's warning said it, located (a UserWarning
    naming Keras' own file said it again). A model with none at all keeps Keras' words."""
    from cnnspec.analysis.phase_checks import trains_nothing

    if not trains_nothing(compiled.ir, phase):
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The model does not have any trainable weights")
        yield


def _fit_write_fault(exc: Exception, run_dir: Path, config: TrainConfig, dataset: Any) -> WriteError | None:
    """The :class:`~cnnspec.errors.WriteError` a failure in fit stands for when the disk refused
    a file TensorFlow writes itself (``data.cache: disk``'s cache, which tf.data writes during
    the first epoch; TensorBoard's logs), else ``None``. TensorFlow raises a full disk as a
    ``ResourceExhaustedError``, its out of memory's type: said as that, with the advice of
    smaller batches, a run on a full disk was told it lacked memory. A cache file's write needs
    about its decoded images (their pixels and a label each), training and validation."""
    from cnnspec.write_faults import library_write_fault

    cache = config.data.cache == "disk"
    fault = library_write_fault(exc, run_dir / CACHE_FILE if cache else run_dir)
    if fault is None or not cache or not Path(fault.path).name.startswith(CACHE_FILE):
        return fault
    needed = _cache_bytes(dataset)
    return WriteError(fault.path, fault.reason, errno=fault.errno, needed=needed, free=fault.free)


def _cache_bytes(dataset: Any) -> int:
    """About what ``data.cache: disk``'s files take: the decoded images of training and
    validation, their pixels and a label each."""
    images = len(dataset.x_train) + len(dataset.x_val)
    return images * (int(np.prod(dataset.sample_shape)) * np.dtype(dataset.x_train.dtype).itemsize + 16)


def _check_cache_space(run_dir: Path, config: TrainConfig, dataset: Any) -> None:
    """Refuse ``data.cache: disk`` before the first epoch when the run folder's disk can't
    hold the cache (:func:`_cache_bytes`): tf.data writes it during that epoch, which was then
    trained in vain. A cache the run already has (a resumed run's) is not counted again."""
    if config.data.cache != "disk" or any(run_dir.glob(CACHE_FILE + "*")):
        return
    from cnnspec.write_faults import ensure_space

    ensure_space(run_dir, _cache_bytes(dataset), run_dir / f"{CACHE_FILE}_0.data-00000-of-00001")


def _stopped_after_fit(
    run_dir: Path,
    state: TrainingState,
    history: list[dict[str, float]],
    compiled: CompiledSpec,
    overrides: list[str] | tuple[str, ...],
) -> NoReturn:
    """Raise what a Ctrl-C or SIGTERM once fit had ended stands for: :class:`ReportInterrupted`
    when metrics.json is written (the snapshots go), else :class:`TrainingInterrupted`."""
    if (run_dir / "metrics.json").is_file():  # after the results: a finished run
        clear_finished(state, run_dir)
        raise ReportInterrupted(run_dir) from None
    # before metrics.json: the training is done and saved, its results are not; --resume
    # writes them (the test evaluation and the files) without training again
    raise TrainingInterrupted(
        run_dir, len(history), resume_command(compiled, list(overrides), run_dir)
    ) from None


def _resume_random_state(
    snapshot: Any,
    arrays: dict[str, list[np.ndarray]],
    owners: list[Any],
    data_counter: Any,
    notes: list[str],
) -> None:
    """Put the random sequences back where the snapshot's run left them: the seed generators'
    states (Dropout, the augmentation), and the training data's shuffle, by making and dropping
    as many iterators as that run had made (each draws the next order). Then the resumed epochs
    are those an uninterrupted run with the seed trains. A snapshot without them (an older
    cnnspec, or a run whose iterators were not counted) resumes from its weights with a note:
    its random numbers start again from the seed's first ones. ``arrays``: the snapshot's
    (a model without random layers has no seed states: none saved, none to restore)."""
    from cnnspec.training.callbacks import SEED_STATES, restore_seed_states

    exact = (
        snapshot.data_iterators is not None
        and data_counter is not None
        and restore_seed_states(owners, arrays.get(SEED_STATES, []))
    )
    if exact:
        data_counter.replay(snapshot.data_iterators)
    else:
        notes.append(
            f"the snapshot after epoch {snapshot.epoch} holds no random state (saved by an older "
            "cnnspec, or training.steps_per_epoch, training.class_weight or a distribution strategy "
            "is set): the run goes "
            "on from its weights, but its data order, augmentation and dropout differ from those "
            "of an uninterrupted run"
        )


def _phase_line(config: TrainConfig, index: int) -> str:
    """``phase 2/2: epochs 4–6, 3 layers frozen, adam at 0.0001``."""
    phase = config.phases[index]
    rate = phase.optimizer.learning_rate
    rate_text = f"{rate:g}" if isinstance(rate, float) else rate.kind
    frozen = f"{len(phase.frozen)} layer(s) frozen" if phase.frozen else "nothing frozen"
    scaled = rate_scale_text(dict(phase.rate_scale), phase.frozen)
    return (
        f"phase {index + 1}/{len(config.phases)}: epochs {phase.first_epoch + 1}–"
        f"{phase.first_epoch + phase.epochs}, {frozen}, {phase.optimizer.name} at {rate_text}"
        + (f" ({scaled})" if scaled else "")
    )


def _decide_jit(
    compiled_model: Any,
    config: TrainConfig,
    dataset: Any,
    settings: Any,
    seed: int,
    dist: Any,
    lock: dict[str, Any] | None,
    run_dir: Path,
    notes: list[str],
    unsupported: list[str],
) -> bool:
    """``runtime.jit_compile`` as a bool; ``auto`` is timed once per run and kept in lock.json
    (not timed where ``unsupported`` names layers Keras cannot compile with XLA)."""
    from cnnspec.training import distribute
    from cnnspec.training.pipeline import make_dataset

    previous = (lock or {}).get("jit_compile")
    if config.jit_auto and isinstance(previous, dict) and "chosen" in previous:
        return bool(previous["chosen"])  # a resumed run compiles what it started with
    setting: Any = "auto" if config.jit_auto else config.jit_compile
    timing_ds = None
    if config.jit_auto and not config.deterministic and not unsupported:  # (else not timed)
        timing_ds = dist.shard(
            make_dataset(dataset.x_train, dataset.y_train, settings, training=True, seed=seed)
        )
    choice = distribute.choose_jit(
        setting, compiled_model, timing_ds, dist, notes, config.deterministic, unsupported=unsupported
    )
    if timing_ds is not None:
        distribute.reseed(seed)  # the timed models drew random numbers; the run starts afresh
    if dist.is_chief and lock is not None:
        distribute.update_lock(run_dir, jit_compile=choice.describe())
    return choice.chosen


def _value_range_notes(compiled: CompiledSpec, dataset: Any, rescale: float | None) -> list[str]:
    """The value_range warnings (analysis/lint.py) that need the data's own pixel range: an
    ``npz`` file's images, known only once read. Integer images reach the model as 0–pixel_max
    (255, or 65535 for uint16) × the rescale; float images as stored (× the rescale), their range
    measured on the training split."""
    from cnnspec.analysis.lint import value_range_warnings
    from cnnspec.analysis.pixel_scaling import fed_pixel_range
    from cnnspec.analysis.settings import data_config

    data = data_config(compiled)
    if data is None or fed_pixel_range(data, compiled.ir) is not None or dataset.streamed:
        return []  # known before reading: validate warned already (streamed files are 8-bit)
    x = np.asarray(dataset.x_train[:1024])
    if x.size == 0:
        return []
    factor = 1.0 if rescale is None else float(rescale)
    if dataset.integer_pixels:
        # stand-ins without pixel_max (tests) are 8-bit
        pixel_max = float(getattr(dataset, "pixel_max", 255.0))
        bits = "8-bit" if pixel_max <= 255 else "16-bit"
        top, how = pixel_max * factor, f"{data.kind} {bits} pixels × {factor:g}"
    else:  # the nominal range the measured one lies in: [0, 1] or [0, 255] (else: unknown)
        low, high = float(x.min()) * factor, float(x.max()) * factor
        if low < 0 or high > 255.0:
            return []
        top = 1.0 if high <= 1.0 else 255.0
        how = f"{data.kind} float pixels, {low:g} to {high:g} (read from the file)"
    return [w.headline() for w in value_range_warnings(compiled, ((0.0, top), how))]
