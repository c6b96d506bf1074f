"""How a training ends, as its caller sees it: :class:`TrainResult` for a finished run, or the
exception that says why it stopped (interrupted, out of memory, a kernel the device refused, the
data changed since the run began, the report interrupted), each carrying the run folder and the
command that resumes it (:func:`resume_command`).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.errors import UsageError

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec


class TrainingInterrupted(Exception):
    """Ctrl-C (or SIGTERM) during training; the state of the last whole epoch is saved."""

    def __init__(self, run_dir: Path, epochs_done: int, resume_command: str) -> None:
        super().__init__(f"interrupted after {epochs_done} epoch(s)")
        self.run_dir = run_dir
        self.epochs_done = epochs_done
        self.resume_command = resume_command


class DataChanged(UsageError):
    """A resumed run's data is not the data it started with (its content hash differs): the run
    is refused before anything is written (a search's continued trial then starts over)."""


class ReportInterrupted(Exception):
    """Ctrl-C (or SIGTERM) once the run's results were written (metrics.json, model.keras),
    while report.html was written or after: a finished run, its snapshots cleared; at most the
    page is missing."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(f"interrupted after the results of {run_dir} were written")
        self.run_dir = run_dir


class OutOfMemory(Exception):
    """The device or the host ran out of memory during training (TensorFlow's
    ResourceExhaustedError, or Python's MemoryError). As after Ctrl-C, the state of the last
    whole epoch is saved and the run can be resumed; one line says where it broke off."""

    def __init__(
        self, run_dir: Path, epochs_done: int, resume_command: str, batch_size: int, detail: str
    ) -> None:
        super().__init__(
            f"out of memory in epoch {epochs_done + 1}, training with batches of {batch_size}: {detail}"
        )
        self.run_dir = run_dir
        self.epochs_done = epochs_done
        self.resume_command = resume_command
        self.batch_size = batch_size


class KernelRefused(Exception):
    """A TensorFlow CPU kernel of this machine refused the model mid-training (oneDNN's rank
    limit, TensorFlow's own kernel and a dilated transposed convolution:
    :mod:`cnnspec.training.onednn`). As after Ctrl-C, the epochs done are saved, and
    the run continues with the other kernels (``limit.setting``); ``limit`` says what and how."""

    def __init__(self, run_dir: Path, epochs_done: int, resume_command: str, limit: Any) -> None:
        super().__init__(limit.message)
        self.run_dir = run_dir
        self.epochs_done = epochs_done
        self.resume_command = resume_command
        self.limit = limit


@dataclass
class TrainResult:
    """What a finished run produced."""

    run_dir: Path
    metrics: dict[str, Any]
    history: list[dict[str, float]]
    files: dict[str, Path]
    resumed_from: int | None = None
    notes: list[str] = field(default_factory=list)
    worker: str | None = None  # a non-chief multi_worker process: its task ("worker:1")
    #: ``--resume`` of a run stopped after its results (:func:`complete_ended`): what it did
    completed: list[str] | None = None
    #: The note of its test images that the run its weights come from trained or validated on
    #: (:func:`cnnspec.training.weights_split.shared_note`), and the folder of the run whose split
    #: seed it took (lock.json's ``seed_from``, a resumed run's too): a search records both for
    #: each trial (a resumed run's note is lock.json's ``test_note``, not counted again)
    shared_note: str | None = None
    seed_from: str | None = None


def report_command(run_dir: Path) -> str:
    """The command that writes the run's report.html, as it is to be pasted: a folder with a
    space or a quote in its name quoted."""
    return shlex.join(["cnnspec", "report", str(run_dir)])


def resume_command(compiled: CompiledSpec, overrides: list[str], run_dir: Path) -> str:
    """The command that resumes the run: the same spec, ``--set`` overrides and compile options
    (``--allow-outside``, ``--max-params``), which resuming checks against the run."""
    words = ["cnnspec", "train", str(compiled.path or "SPEC.yaml"), *compiled.options]
    for item in overrides:
        words += ["--set", item]
    words += ["--resume", str(run_dir)]
    return shlex.join(words)
