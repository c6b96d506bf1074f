"""The run directory: spec as given, resolved spec, lock.json, and the checks for --resume.

Layout of ``runs/<name>-<timestamp>/``::

    spec.yaml                 the spec file as written (extends/use files are in resolved.yaml)
    resolved.yaml             the fully composed spec (extends, use and --set applied)
    lock.json                 versions, seed, spec hash, resolved.yaml's SHA-256, data source + content
                              hash, --weights, machine, each output's task and class/label/value names
    state/                    per-epoch snapshots while training (removed when the run ends)
    model.keras  history.json  history.csv  metrics.json  classification_report.txt
    history.png  confusion_matrix.png   (+ checkpoints/, tensorboard/, training_log.csv)

Every file is written atomically (:mod:`cnnspec.fileio`).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from cnnspec.errors import UsageError, WriteError, format_path
from cnnspec.fileio import is_atomic_leftover, write_atomic
from cnnspec.spec.dumping import dump_yaml
from cnnspec.spec.zoo import written_data
from cnnspec.training.outcomes import report_command
from cnnspec.training.runlock import LOCK_NAME, RunFolderLost, remove_leftovers

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.analysis.settings_types import TrainConfig
    from cnnspec.analysis.tasks import OutputTask
    from cnnspec.training.dataset import Dataset

LOCK_FORMAT = 1
PACKAGES = ("cnnspec", "tensorflow", "keras", "numpy", "scikit-learn", "h5py")


def default_run_dir(name: str, root: Path = Path("runs")) -> Path:
    """``runs/<name>-<YYYYmmdd-HHMMSS>``, with ``-2``, ``-3`` … when taken."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = root / f"{name}-{stamp}"
    number = 2
    while candidate.exists():
        candidate = root / f"{name}-{stamp}-{number}"
        number += 1
    return candidate


def claim_default_run_dir(name: str, root: Path = Path("runs")) -> Path:
    """Create and return a new :func:`default_run_dir`; ``mkdir`` is atomic, so two runs
    started in the same second get two folders."""
    while True:
        candidate = default_run_dir(name, root)
        try:
            candidate.mkdir(parents=True)
        except FileExistsError:
            continue  # taken between the check and the mkdir: the next number
        return candidate


def spec_files(compiled: CompiledSpec) -> dict[str, str]:
    """The texts of a new run's spec.yaml (the spec as written, when its text is known) and
    resolved.yaml, written before its lock.json."""
    from cnnspec.spec.loader import SOURCE_TEXTS

    files: dict[str, str] = {}
    if compiled.path is not None and compiled.path.is_file():
        files["spec.yaml"] = compiled.path.read_text(encoding="utf-8")
    elif (source := SOURCE_TEXTS.get(compiled.doc.file)) is not None:
        files["spec.yaml"] = source
    resolved = json.loads(json.dumps(written_data(compiled.resolved, compiled.doc.variant), default=str))
    header = f"# {compiled.name}: the fully resolved spec of this run (extends, use and --set applied).\n"
    dumped = dump_yaml(resolved, sort_keys=False, allow_unicode=True, default_flow_style=None)
    files["resolved.yaml"] = header + dumped
    return files


def resolved_digest(data: bytes) -> str:
    """The SHA-256 (hex) of a resolved.yaml's bytes, as lock.json's ``resolved_sha256`` records
    it (``spec_hash`` is that of the composed spec, not of the file's text)."""
    import hashlib

    return hashlib.sha256(data).hexdigest()


def check_new(run_dir: Path, compiled: CompiledSpec | None = None) -> bool:
    """Refuse a folder that already has files. Its lock file (this process's) and temp files of
    atomic writes (left by a killed run) don't count: the new run removes those. Nor, given
    ``compiled``, do the spec.yaml and resolved.yaml of a run of the same spec killed (SIGKILL:
    nothing could remove them) before its lock.json: byte for byte what this run writes there,
    so nothing of the user's is overwritten. Whether there were such files."""
    if not run_dir.is_dir():
        others = [run_dir] if run_dir.exists() else []
    else:
        others = [p for p in run_dir.iterdir() if p.name != LOCK_NAME and not is_atomic_leftover(p)]
    if others and compiled is not None and not (run_dir / "lock.json").exists():
        mine = spec_files(compiled)
        if all(p.name in mine and p.is_file() and _holds(p, mine[p.name]) for p in others):
            return True
    if others:
        hint = "choose another --out (a new folder, or an empty one)"
        if run_dir.is_dir() and (run_dir / "metrics.json").exists():
            hint = "choose another --out; that run has finished"
        elif run_dir.is_dir() and (run_dir / "lock.json").exists():  # a run that did not finish
            hint = f"choose another --out, or continue it with --resume {run_dir}"
            if not saved_an_epoch(run_dir):  # (a resume of other data, its bad files removed, is refused)
                hint = (
                    f"choose another --out; the run there stopped before it saved an epoch: continue it "
                    f"with --resume {run_dir} on the data it started with, or remove its files to start "
                    "it there anew (nothing of it is lost)"
                )
        elif {p.name for p in others} <= {"spec.yaml", "resolved.yaml"}:
            hint = (
                "they may be what a run of another spec left when it was killed before it started "
                "(no lock.json): choose another --out, or remove them if they are not yours"
            )
        raise UsageError(f"expected a new or empty run folder; {run_dir} already has files", hint)
    return False


def saved_an_epoch(run_dir: Path) -> bool:
    """Whether the run in ``run_dir`` saved anything of its training: a snapshot (its state/ holds
    a file) or its results (metrics.json). One that did not holds nothing a fresh start would not
    redo, so a message may offer to remove it."""
    from cnnspec.training.state import TrainingState

    state = TrainingState(run_dir).dir
    return (run_dir / "metrics.json").exists() or (state.is_dir() and any(state.iterdir()))


def _holds(path: Path, text: str) -> bool:
    """Whether the file ``path`` holds ``text`` (UTF-8, as :func:`write_atomic` wrote it)."""
    try:
        data = text.encode("utf-8")
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def tidy(run_dir: Path) -> None:
    """Remove what killed commands left in ``run_dir``, which this process now owns (holds its
    lock): the temp files of their writes (:func:`~cnnspec.training.runlock.remove_leftovers`),
    and, in a finished run (metrics.json written), the training state: a run killed while its
    report was written kept its snapshots (state/, the size of two models with their
    optimizer), which nothing reads again (``--resume`` refuses a finished run) and nothing
    removed."""
    from cnnspec.training.state import TrainingState

    remove_leftovers(run_dir)
    if (run_dir / "metrics.json").is_file():
        TrainingState(run_dir).clear()


#: The page the end of a run writes (after metrics.json, before removing its snapshots).
REPORT_FILE = "report.html"


#: The meta tag in report.html's head that says which results the page shows: ``none`` (written
#: for a run without metrics.json) or ``metrics.json sha256 HEX`` (:func:`results_mark`).
RESULTS_META = "cnnspec-results"
#: How much of report.html :func:`page_is_current` reads: the tag is in the page's first lines.
PAGE_HEAD_BYTES = 4096


def results_mark(run_dir: Path) -> str:
    """What a report.html written now for the run in ``run_dir`` shows of its results, as its
    :data:`RESULTS_META` tag records it: the SHA-256 of its metrics.json, or ``none``."""
    from cnnspec.fileio import sha256_file

    try:
        return f"metrics.json sha256 {sha256_file(run_dir / 'metrics.json')}"
    except OSError:
        return "none"


def page_is_current(run_dir: Path) -> bool:
    """Whether the run's report.html is the page of its results as they are: its
    :data:`RESULTS_META` tag names the metrics.json there now. A page of an older cnnspec (no
    tag) counts when it is not older than metrics.json; either way a page written for the run
    before it finished (``cnnspec report`` of an unfinished run: "metrics.json is missing") is
    not its finished run's page."""
    import re

    from cnnspec.fileio import read_head

    page = run_dir / REPORT_FILE
    head = read_head(page, PAGE_HEAD_BYTES) if page.is_file() else None
    if head is None:
        return False
    found = re.search(rb'<meta name="' + RESULTS_META.encode() + rb'" content="([^"<>]*)">', head)
    if found is not None:
        return found.group(1).decode("utf-8", "replace") == results_mark(run_dir)
    try:
        return page.stat().st_mtime >= (run_dir / "metrics.json").stat().st_mtime
    except OSError:
        return False


def left_undone(run_dir: Path, page: bool = True) -> list[str]:
    """What the run in ``run_dir``, whose results are saved (metrics.json), lacks of a run that
    ended: the report.html of those results (none, or one written before they were, which says
    the run has not finished: :func:`page_is_current`), and its snapshots' removal (a run killed
    between the two kept state/). ``train --resume`` finishes it (empty: nothing to resume).
    ``page``: whether the resuming command writes pages (``--no-report`` does not: a run that
    lacks only its page then lacks nothing it would write)."""
    from cnnspec.training.state import STATE_DIR

    left = [] if not page or page_is_current(run_dir) else [REPORT_FILE]
    if os.path.lexists(run_dir / STATE_DIR):
        left.append(f"{STATE_DIR}/")
    return left


def read_lock(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "lock.json"
    if not run_dir.is_dir():
        raise UsageError(f"expected a run folder to resume; {run_dir} does not exist")
    try:
        lock = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(lock, dict) or "spec_hash" not in lock or "seed" not in lock:
            raise ValueError("missing spec_hash or seed")
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"expected a cnnspec run folder with a readable lock.json; {path}: {exc}",
            "--resume takes the folder a previous `cnnspec train` wrote (runs/<name>-<time>)",
        ) from None
    return lock


def _differences(old: Any, new: Any, path: tuple[Any, ...] = ()) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in list(old) + [k for k in new if k not in old]:
            if key not in old or key not in new:
                out.append(format_path((*path, key)))
            else:
                out += _differences(old[key], new[key], (*path, key))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in _differences(a, b, (*path, i))]
    return [] if old == new else [format_path(path)]


def check_resumable(
    run_dir: Path, compiled: CompiledSpec, spec_hash: str, page: bool = True
) -> dict[str, Any]:
    """The run's lock, after checking that this spec may continue it (``page``: as for
    :func:`left_undone`)."""
    lock = read_lock(run_dir)
    if lock["spec_hash"] != spec_hash:
        changed: list[str] = []
        try:
            old = yaml.safe_load((run_dir / "resolved.yaml").read_text(encoding="utf-8"))
            now = written_data(compiled.resolved, compiled.doc.variant)  # (as resolved.yaml wrote it)
            changed = _differences(old, json.loads(json.dumps(now, default=str)))
        except (OSError, yaml.YAMLError):
            pass
        where = f" (changed: {', '.join(changed[:5])}{' …' if len(changed) > 5 else ''})" if changed else ""
        raise UsageError(
            f"expected the spec the run in {run_dir} started with; its hash differs{where}",
            "resume with the same spec file and the same --set/--epochs/--batch-size options, "
            "or start a new run",
        )
    if (run_dir / "metrics.json").exists() and not left_undone(run_dir, page):
        raise UsageError(
            f"the run in {run_dir} has finished; there is nothing to resume",
            f"its results are in {run_dir}/metrics.json; `{report_command(run_dir)}` "
            f"writes its {REPORT_FILE}" + (" again" if (run_dir / REPORT_FILE).is_file() else ""),
        )
    state = run_dir / "state"
    if os.path.lexists(state) and not state.is_dir():  # (found after an epoch's training, writing it)
        raise UsageError(
            f"expected {state} to be the run's training-state folder; it is "
            + ("a link that leads nowhere" if state.is_symlink() and not state.exists() else "a file"),
            "move it away: the run then starts again from epoch 1 (or from the snapshots of the "
            "state folder, put back in its place)",
        )
    return lock


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine() -> dict[str, Any]:
    from cnnspec.training.runtime import gpu_names

    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "gpus": gpu_names(),
        "hostname": platform.node(),
    }


def output_names(config: TrainConfig, dataset: Dataset) -> list[tuple[OutputTask, list[str]]]:
    """Every output of the model with the names training gives its results: the data's names of
    that output's target (several outputs), or the data's names (one output)."""
    by_output = getattr(dataset, "target_names", None) or {}
    if by_output:
        return [(out, [str(n) for n in by_output.get(out.name, [])]) for out in config.tasks]
    return [
        (out, [str(n) for n in dataset.class_names] if i == 0 else []) for i, out in enumerate(config.tasks)
    ]


def start(
    run_dir: Path,
    compiled: CompiledSpec,
    config: TrainConfig,
    seed: int,
    dataset: Dataset,
    policy: str,
    overrides: list[str],
    command: list[str] | None,
    *,
    weights: dict[str, Any] | None = None,
    weights_files: list[dict[str, Any]] | None = None,
    seed_from: str | None = None,
    test_note: str | None = None,
) -> dict[str, Any]:
    """Create the run folder with spec.yaml, resolved.yaml and lock.json; returns the lock.

    ``weights``: the ``--weights`` source the run starts from, as
    :func:`cnnspec.training.transfer_loads.override_record` records it (lock.json's ``weights``: a run
    resumed before its first snapshot starts from it again; a lock.json without the key is an
    older cnnspec's). ``weights_files``: every weights file the run starts from, with its
    SHA-256 (:func:`cnnspec.training.transfer_loads.file_records`). ``seed_from``: the run folder
    whose seed the run took (:mod:`cnnspec.training.weights_split`; lock.json's ``seed_from``,
    absent otherwise). ``test_note``: the note of its test images that the weights run trained or
    validated on (:func:`cnnspec.training.weights_split.shared_note`; lock.json's ``test_note``,
    absent where there is none), which a resumed run says again without counting them anew.
    lock.json goes last: a folder
    without it is no run yet. When a write fails (a full disk), the files written before it
    are removed again, so the folder is as new as it was and the same command can simply be
    run again; so are they after a Ctrl-C or SIGTERM before lock.json (a folder holding them
    alone could be neither resumed, without lock.json, nor started anew, not being empty). Not
    when the folder was lost (moved, or its lock file removed): the files at its path may be
    another process's now."""
    written: list[Path] = []
    try:
        return _start(
            run_dir,
            compiled,
            config,
            seed,
            dataset,
            policy,
            overrides,
            command,
            written,
            weights,
            weights_files,
            seed_from,
            test_note,
        )
    except (WriteError, KeyboardInterrupt) as stopped:
        if not isinstance(stopped, RunFolderLost) and not (run_dir / "lock.json").is_file():
            for path in written:
                with contextlib.suppress(OSError):
                    path.unlink()
        raise


def _start(
    run_dir: Path,
    compiled: CompiledSpec,
    config: TrainConfig,
    seed: int,
    dataset: Dataset,
    policy: str,
    overrides: list[str],
    command: list[str] | None,
    written: list[Path],
    weights: dict[str, Any] | None = None,
    weights_files: list[dict[str, Any]] | None = None,
    seed_from: str | None = None,
    test_note: str | None = None,
) -> dict[str, Any]:
    run_dir.mkdir(parents=True, exist_ok=True)
    texts = spec_files(compiled)
    for name, text in texts.items():
        # recorded before the write: a Ctrl-C in its last steps (after the rename: the folder's
        # sync, the scratch folder's removal) leaves the file in place and ends the write with
        # a KeyboardInterrupt, not its return. A file there before was this spec's own
        # (check_new), so removing it after a failed write loses nothing.
        written.append(run_dir / name)
        write_atomic(run_dir / name, text)
    lock = {
        "format": LOCK_FORMAT,
        "name": compiled.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "spec_file": str(compiled.path) if compiled.path else None,
        # where it is: the relative paths of its resolved.yaml start there (reporting/run.py)
        "spec_path": str(compiled.path.resolve()) if compiled.path and compiled.path.is_file() else None,
        "spec_hash": compiled.spec_hash(),
        # resolved.yaml's bytes: one changed or cut since is a damaged run file (reporting/runs.py)
        "resolved_sha256": resolved_digest(texts["resolved.yaml"].encode("utf-8")),
        "overrides": overrides,
        "command": command or sys.argv,
        "weights": weights,  # --weights (the spec's own sources are in resolved.yaml)
        # every weights file read, with its SHA-256 (transfer.check_unchanged on a restart)
        "weights_files": weights_files or [],
        "seed": seed,
        # the run its weights came from, whose split seed it took (weights_split.py)
        **({"seed_from": seed_from} if seed_from is not None else {}),
        # the test images those weights learnt, counted once (weights_split.shared_note): a
        # resumed run (a search's continued trial) says and records the same note
        **({"test_note": test_note} if test_note is not None else {}),
        "deterministic": config.deterministic,
        "dtype_policy": policy,
        "jit_compile": config.jit_compile,
        # each output with its class, label or value names (reporting/run.py Run.output_names)
        "tasks": [{**out.describe(), "names": names} for out, names in output_names(config, dataset)],
        "data": {
            **dataset.source,
            "content_hash": dataset.content_hash(),
            "sizes": dataset.sizes(),
            "sample_shape": list(dataset.sample_shape),
            "dtype": str(dataset.x_train.dtype),
            # the float training images' pixel range as stored: evaluate/predict note --data or
            # .npy floats far outside it (another scale, scored unsaid)
            **_recorded_range(dataset.x_train),
            "classes": dataset.class_names,
            "target": getattr(dataset, "target", "class"),
        },
        # every phase with the layers it freezes (one phase for a run without training.phases)
        "phases": [phase.describe() for phase in config.phases],
        # training.mixup / cutmix with its defaults filled in (absent: batches are not mixed)
        **({"mixing": config.mixing.describe()} if config.mixing is not None else {}),
        "versions": versions(),
        "machine": machine(),
    }
    write_atomic(run_dir / "lock.json", json.dumps(lock, indent=2) + "\n")
    return lock


def _recorded_range(x: Any) -> dict[str, list[float]]:
    """``{"pixel_range": [low, high]}`` of float training images held in memory (the finite
    values: :func:`~cnnspec.training.data_arrays.pixel_range`): float ``--data`` is scaled as they
    were, so their ranges compare; nothing for integer pixels (scaled by their depth, which
    float --data is not), file paths (a streamed source) or an empty or non-finite array."""
    import numpy as np

    from cnnspec.training.data_arrays import pixel_range

    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        return {}
    found = pixel_range(x)
    return {"pixel_range": list(found)} if found is not None else {}
