"""Faults (issue 21): a full, failing or read-only disk under any write of a run is one clean
error (exit 1) naming the file and the space it needed; nothing written before is lost and the
run continues once the disk is fixed. Output locations that can't be written are refused before
TensorFlow is imported. One safe loader reads every model file.

The faults are injected where the disk reports them (:class:`Injector`): ``ENOSPC`` and ``EIO``
when a written file is flushed (``fsync``, where delayed allocation and write-back errors
surface), ``EROFS`` when the file is created (a disk remounted read-only mid-run). Every write
of cnnspec goes through :func:`cnnspec.fileio.atomic_path`, so the injection meets all of them.
A real small tmpfs (mounted when the tests run as root) checks the same without injection.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cnnspec import fileio
from cnnspec.cli.app import app
from cnnspec.errors import UsageError, WriteError
from cnnspec.fileio import check_writable, is_atomic_temp
from cnnspec.training.runlock import LOCK_NAME
from cnnspec.write_faults import write_fault
from tests.conftest import TINY_DIGITS_MODEL, TINY_FLAT_HEAD, FakeDataset, cold_commands, run_python

FAULTS = {"ENOSPC": errno.ENOSPC, "EIO": errno.EIO, "EROFS": errno.EROFS}
#: How many rotations of the faults over a run's writes: `make test` one (each fault at a third
#: of the points), `make faults-all` (part of `make test-full`) all three (every point, every fault).
ROTATIONS = int(os.environ.get("CNNSPEC_FAULT_ROTATIONS", "1"))
ON_LINUX = Path("/proc/self/fd").is_dir()
needs_proc = pytest.mark.skipif(not ON_LINUX, reason="the injector reads /proc/self/fd (Linux)")


class Injector:
    """Fail the write of the file called ``name`` (its ``skip``-th write counted from 0) the way
    a disk does, once, and remember the run folder as it was at that moment."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fault: str, name: str, skip: int = 0) -> None:
        self.fault, self.code, self.name, self.skip = fault, FAULTS[fault], name, skip
        self.folder: Path | None = None
        self.before: dict[str, str] | None = None  # the folder when the fault fired
        self.seen: set[str] = set()
        real_fsync = os.fsync

        def fsync(fd: int) -> None:  # ENOSPC, EIO: the written temp file is flushed
            if self.fault != "EROFS" and self.before is None:
                try:  # the temp file, in atomic_path's private folder `.<name>.????????.tmp`
                    temp = Path(os.readlink(f"/proc/self/fd/{fd}")).parent.name
                except OSError:
                    temp = ""
                new = temp not in self.seen  # (one write may flush its temp file twice)
                if self._names(temp) and new:
                    self.seen.add(temp)
                    if self._fires():
                        raise OSError(self.code, os.strerror(self.code))
            real_fsync(fd)

        real_make_scratch = fileio._make_scratch

        # EROFS: the scratch folder of a write is created (atomic_path's, atomic_dir's for a
        # SavedModel export, scratch_folder's for the importer's checked copy)
        def make_scratch(folder, name, made):
            mine = self.fault == "EROFS" and self._prefix(f".{name}.")
            if mine and self.before is None and self._fires():
                raise OSError(self.code, os.strerror(self.code))
            return real_make_scratch(folder, name, made)

        monkeypatch.setattr(fileio.os, "fsync", fsync)  # (the os module: every caller's fsync)
        monkeypatch.setattr(fileio, "_make_scratch", make_scratch)

    @property
    def fired(self) -> bool:
        return self.before is not None

    #: A model_checkpoint file is written first as ``STEM.epoch-NNNN.pending.SUFFIX`` (it waits
    #: there for its epoch's snapshot): a write of the file too.
    def _patterns(self) -> tuple[str, str]:
        stem, suffix = os.path.splitext(self.name)
        return self.name, f"{stem}.epoch-????.pending{suffix}"

    def _names(self, temp: str) -> bool:
        """Whether ``temp`` is the temp folder of a write of the file named ``self.name``."""
        return any(fnmatch.fnmatchcase(temp, f".{name}.????????.*") for name in self._patterns())

    def _prefix(self, prefix: str | None) -> bool:
        """Whether a temp name's ``prefix`` is that of a write of the file named ``self.name``."""
        return prefix is not None and any(
            fnmatch.fnmatchcase(prefix, f".{name}.") for name in self._patterns()
        )

    def _fires(self) -> bool:
        if self.skip:
            self.skip -= 1
            return False
        self.before = contents(self.folder) if self.folder is not None else {}
        return True


def contents(folder: Path) -> dict[str, str]:
    """Every file of ``folder`` (but the lock and temp files) with its SHA-256."""
    if not folder.is_dir():
        return {}
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
        and path.name != LOCK_NAME
        and not any(is_atomic_temp(part) for part in path.relative_to(folder).parts)
    }


def kept(before: dict[str, str], point: str) -> dict[str, str]:
    """What must still be there after the write of ``point`` failed: everything, but the files
    of the snapshot that failed (a snapshot is whole or absent; its own files are dropped)."""
    if not point.startswith("state/"):
        return before
    stem = Path(point).name.split(".")[0]
    return {name: digest for name, digest in before.items() if Path(name).name.split(".")[0] != stem}


def leftovers(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob(".*") if is_atomic_temp(p.name)] if folder.exists() else []


def flat(text: str) -> str:
    return " ".join(text.split())


# -- what counts as a disk fault ------------------------------------------------------------------

H5PY_FULL = (
    "Can't close file (file write failed: time = Mon Nov 30 12:19:10 2026\n, filename = 'x.h5', "
    "file descriptor = 4, errno = 28, error message = 'No space left on device', buf = 0x1, "
    "total write size = 10240, bytes this sub-write = 10240, offset = 84504)"
)


def _wrapped(inner: BaseException, outer: type[Exception] = ValueError) -> Exception:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer("the writer failed") from exc
    except Exception as exc:  # (the chained exception, as a converter raises it)
        return exc


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), errno.ENOSPC),
        (OSError(errno.EIO, "Input/output error"), errno.EIO),
        (OSError(errno.EROFS, "Read-only file system"), errno.EROFS),
        (PermissionError(errno.EACCES, "Permission denied"), errno.EACCES),
        (OSError(errno.ENOSPC, H5PY_FULL), errno.ENOSPC),  # what h5py raises at close
        (RuntimeError(H5PY_FULL), errno.ENOSPC),  # what h5py raises while writing
        (_wrapped(OSError(errno.EIO, "Input/output error")), errno.EIO),  # a converter's wrapping
        (RuntimeError("ResourceExhausted: ...; No space left on device"), errno.ENOSPC),  # TF's words
        (ValueError("unsupported op"), None),  # no disk fault: reported as what it is
        (RuntimeError("a bug"), None),
    ],
    ids=[
        "enospc",
        "eio",
        "erofs",
        "eacces",
        "h5py-close",
        "h5py-write",
        "wrapped",
        "tf-words",
        "bug",
        "bug2",
    ],
)
def test_write_fault_recognises_disk_errors_and_only_them(tmp_path, error, code):
    fault = write_fault(error, tmp_path / "model.keras", needed=2048)
    if code is None:
        assert fault is None
        return
    assert isinstance(fault, WriteError) and fault.errno == code
    assert fault.path == tmp_path / "model.keras" and fault.needed == 2048
    assert isinstance(fault.free, int) and fault.free >= 0
    message = str(fault)
    assert message.startswith(f"cannot write {tmp_path / 'model.keras'}: {os.strerror(code)}")
    assert "needs about 2.0 KiB" in message and "free there" in message


@pytest.mark.parametrize(
    ("text", "named", "code"),
    [
        (
            "Graph execution error:\n\nRUN/c_0.data-00000-of-00001.tempstate155; No space left on device\n",
            True,
            28,
        ),
        ("RUN/events.out.tfevents; Read-only file system", True, errno.EROFS),
        ("RUN/c_0.index; Input/output error", True, errno.EIO),  # an I/O error of a named write
        ("No space left on device", False, errno.ENOSPC),  # unnamed: the fallback file
        ("Input/output error", False, None),  # unnamed: may be a read of the data
        ("OOM when allocating tensor with shape[32,4,8,8]", False, None),  # memory, not the disk
    ],
    ids=["cache-full", "named-read-only", "named-eio", "unnamed-full", "unnamed-eio", "oom"],
)
def test_a_libraries_own_write_fault_names_its_file_and_only_write_faults_count(tmp_path, text, named, code):
    """TensorFlow says a full disk under its own files (tf.data's cache) as ResourceExhausted,
    naming the file before the system's words; its ``.tempstateN`` ending is its temp file's."""
    from cnnspec.write_faults import library_write_fault

    error = RuntimeError(text.replace("RUN", str(tmp_path)))
    fault = library_write_fault(error, tmp_path / "fallback")
    if code is None:
        assert fault is None and library_write_fault(error, None) is None
        return
    assert isinstance(fault, WriteError) and fault.errno == code and fault.free is not None
    expected = text.split(";")[0].split("\n")[-1].replace("RUN", str(tmp_path)).split(".tempstate")[0]
    assert fault.path == (Path(expected) if named else tmp_path / "fallback")
    assert str(fault).startswith(f"cannot write {fault.path}: {os.strerror(code)} (")
    assert (library_write_fault(error, None) is None) is not named  # unnamed: only with a fallback
    assert library_write_fault(fault, tmp_path) is None  # cnnspec's own: raised as it is


# -- the write points without TensorFlow: every fault ----------------------------------------------

TINY_SPEC = TINY_FLAT_HEAD + "training: {epochs: 2}\n"


class FakeModel:
    """A stand-in for a Keras model: its "weights file" is a few bytes."""

    optimizer = None

    def __init__(self, data: bytes) -> None:
        self.weights: list[np.ndarray] = []
        self.data = data
        self.loaded: bytes | None = None

    def save_weights(self, path: str) -> None:
        Path(path).write_bytes(self.data)

    def load_weights(self, path: str) -> None:
        self.loaded = Path(path).read_bytes()


def _start(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnspec.analysis.settings import training_config
    from cnnspec.api import compile_text
    from cnnspec.training import rundir

    monkeypatch.setattr(rundir, "machine", lambda: {"platform": "test", "cpu_count": 1, "gpus": []})
    compiled = compile_text(TINY_SPEC, "tiny.yaml")
    rundir.start(folder, compiled, training_config(compiled), 7, FakeDataset(), "float32", [], ["x"])


def _snapshot(folder: Path, epoch: int) -> None:
    from cnnspec.training.state import TrainingState

    history = [{"epoch": e, "loss": 1.0 / e} for e in range(1, epoch + 1)]
    arrays = {"early_stopping_best_weights": [np.full(3, float(epoch))]}
    TrainingState(folder).save(FakeModel(f"w{epoch}".encode()), epoch, history, {}, arrays)


def _plot(folder: Path) -> None:
    from cnnspec.training.plots import plot_history

    plot_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}, folder / "history.png", "tiny")


def _earlier_plot(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An earlier history.png, made recognisable: it must survive the failed write over it. (A
    plot drawn first would only be overwritten by these bytes: a figure drawn for nothing.)"""
    (folder / "history.png").write_bytes(b"\x89PNG earlier")


#: write point → (what was there before, the write). The snapshot points write epoch 2 over a
#: folder holding epoch 1; history.png replaces an earlier picture.
UNIT_POINTS: dict[str, tuple[Callable[[Path, pytest.MonkeyPatch], None] | None, Callable]] = {
    "spec.yaml": (None, _start),
    "resolved.yaml": (None, _start),
    "lock.json": (None, _start),
    "state/epoch-0002.weights.h5": (lambda f, m: _snapshot(f, 1), lambda f, m: _snapshot(f, 2)),
    "state/epoch-0002.arrays.npz": (lambda f, m: _snapshot(f, 1), lambda f, m: _snapshot(f, 2)),
    "state/epoch-0002.json": (lambda f, m: _snapshot(f, 1), lambda f, m: _snapshot(f, 2)),
    "history.png": (_earlier_plot, lambda f, m: _plot(f)),
}


@needs_proc
@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("point", UNIT_POINTS)
def test_every_write_point_fails_cleanly_and_keeps_what_was_written(tmp_path, monkeypatch, point, fault):
    folder = tmp_path / "run"
    folder.mkdir()
    before, write = UNIT_POINTS[point]
    if before is not None:
        before(folder, monkeypatch)
    injector = Injector(monkeypatch, fault, Path(point).name)
    injector.folder = folder
    with pytest.raises(WriteError) as info:
        write(folder, monkeypatch)
    assert injector.fired
    fault_error = info.value
    assert fault_error.path == folder / point and fault_error.errno == FAULTS[fault]
    assert fault_error.needed is not None and fault_error.needed > 0
    assert str(fault_error).startswith(f"cannot write {folder / point}: {os.strerror(FAULTS[fault])}")
    assert not leftovers(folder)
    after = contents(folder)
    if write is _start:  # a run folder that was never set up is left as new: run the command again
        assert after == {}
        return
    assert after == kept(injector.before, point)  # nothing written before changed or went missing
    if point.startswith("state/"):  # and the last good snapshot is still the one --resume loads
        from cnnspec.training.state import TrainingState

        model = FakeModel(b"")
        snapshot, arrays = TrainingState(folder).restore(model, notes := [])
        assert snapshot.epoch == 1 and model.loaded == b"w1" and not notes
        assert arrays["early_stopping_best_weights"][0].tolist() == [1.0, 1.0, 1.0]


def test_a_snapshot_that_cannot_fit_is_refused_before_a_byte_is_written(tmp_path, monkeypatch):
    from cnnspec.training.state import TrainingState

    _snapshot(tmp_path, 1)
    before = contents(tmp_path)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda _: usage._replace(free=10_000))
    written: list[str] = []
    model = FakeModel(b"w2")
    model.save_weights = lambda path: written.append(path)  # type: ignore[method-assign]
    with pytest.raises(WriteError) as info:
        TrainingState(tmp_path).save(model, 2, [{"epoch": 1}, {"epoch": 2}], {})
    assert not written and contents(tmp_path) == before and not leftovers(tmp_path)
    fault = info.value
    assert fault.errno == errno.ENOSPC and fault.free == 10_000 and fault.needed > 10_000
    assert "not enough free space; nothing was written" in str(fault)
    assert "9.8 KiB free there" in str(fault)


@needs_proc
@pytest.mark.parametrize("fault", FAULTS)
def test_codegen_output_on_a_failing_disk_is_exit_1_and_keeps_the_old_file(
    tmp_path, runner, monkeypatch, fault
):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPEC)
    out = tmp_path / "model.py"
    out.write_text("# the previous version\n")
    Injector(monkeypatch, fault, "model.py")
    result = runner.invoke(app, ["codegen", str(spec), "-o", str(out), "--force", "--no-format"])
    assert result.exit_code == 1, result.output
    text = flat(result.output)
    assert f"error: cannot write {out}: {os.strerror(FAULTS[fault])} (needs about" in text
    assert "Traceback" not in text and "internal error" not in text
    assert out.read_text() == "# the previous version\n" and not leftovers(tmp_path)


# -- locations that can't be written: refused up front ----------------------------------------------


def _read_only_mount(folder: Path) -> Iterator[Path]:
    """``folder`` as a real read-only file system (a tmpfs mounted ``ro``); needs root and mount(8)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a read-only tmpfs needs root (CI runs as root)")
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"mount refused: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


@pytest.fixture
def read_only_dir(tmp_path):
    """A real read-only file system (a tmpfs mounted ``ro``); needs root and mount(8)."""
    yield from _read_only_mount(tmp_path / "ro")


def test_check_writable_refuses_a_file_in_the_way_and_creates_nothing(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    check_writable(tmp_path / "new" / "deeper")  # missing folders are fine: created later
    check_writable(tmp_path / "new.keras", folder=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]  # the probe left nothing
    with pytest.raises(UsageError, match=r"file\.txt is a file"):
        check_writable(tmp_path / "file.txt")
    with pytest.raises(UsageError, match=r"the file .*file\.txt is in the way"):
        check_writable(tmp_path / "file.txt" / "run", option="--out")
    with pytest.raises(UsageError, match="is a folder"):
        check_writable(tmp_path, option="-o", folder=False)


def test_check_writable_refuses_a_folder_without_permission(tmp_path, monkeypatch):
    def denied(*args, **kwargs):  # we run as root, which chmod does not stop: inject the refusal
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(fileio, "_probe", denied)
    with pytest.raises(UsageError, match=r"cannot create files in .*: Permission denied") as info:
        check_writable(tmp_path / "run", option="--out")
    assert "choose another --out" in (info.value.hint or "")


def test_check_writable_refuses_a_read_only_mount(read_only_dir):
    with pytest.raises(UsageError, match="Read-only file system"):
        check_writable(read_only_dir / "run")
    with pytest.raises(UsageError, match="Read-only file system"):
        check_writable(read_only_dir / "model.keras", folder=False)


def _fake_model(path: Path) -> Path:
    """A file that passes the checks before Keras (a .keras zip with config.json)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
    return path


#: command → its arguments with OUT as the output that can't be written.
OUTPUT_COMMANDS = {
    "train": ["train", "SPEC", "--out", "OUT/run"],
    "train-resume": ["train", "SPEC", "--resume", "OUT/run"],
    "build": ["build", "SPEC", "-o", "OUT/model.keras"],
    "codegen": ["codegen", "SPEC", "-o", "OUT/model.py"],
    "export": ["export", "MODEL", "-f", "tflite", "-o", "OUT/model.tflite"],
    "evaluate": ["evaluate", "MODEL", "--data", "digits", "--out", "OUT/eval"],
    "visualize": ["visualize", "MODEL", "filters", "--out", "OUT/pics/"],
    "report": ["report", "RUN", "--out", "OUT/report.html"],
}


def _refused_before_tensorflow(folder: Path, runs: list[tuple[str, Path]]) -> list[str]:
    """Each command of ``runs`` (OUTPUT_COMMANDS) with its output (a location that can't be
    written), run in turn in one fresh Python (a Python start-up and cnnspec's import each was
    most of these tests' time): each exits 2 with TensorFlow and Keras not imported yet, and no
    traceback. Their messages, in order."""
    spec = folder / "tiny.yaml"
    spec.write_text(TINY_SPEC)
    model = _fake_model(folder / "m.keras")
    run = folder / "a-run"
    run.mkdir(exist_ok=True)
    (run / "lock.json").write_text("{}")
    lines = []
    for command, out in runs:
        words = [w.replace("SPEC", str(spec)).replace("MODEL", str(model)).replace("RUN", str(run))
                 for w in OUTPUT_COMMANDS[command]]  # fmt: skip
        words = [w.replace("OUT", str(out)) for w in words]
        if "--resume" in words:  # a run folder to resume that sits on the unwritable disk
            words[words.index("--resume") + 1] = str(out)
        lines.append(words)
    messages = []
    results = cold_commands(lines, ("tensorflow", "keras"))
    for (command, _), (code, stdout, stderr, heavy) in zip(runs, results, strict=True):
        assert code == 2, (command, stdout, stderr)
        assert heavy == [], f"{command}: TensorFlow was imported before the refusal"
        assert "Traceback" not in stderr, (command, stderr)
        messages.append(flat(stderr))
    return messages


BEHIND_A_FILE = [c for c in OUTPUT_COMMANDS if c != "train-resume"]
ON_A_READ_ONLY_DISK = ["train", "train-resume", "build", "export", "evaluate"]


class Refusals:
    """Each command's refusal of an output behind a file (``blocker``) and, where a read-only
    tmpfs could be mounted (``read_only``, else ``skipped`` says why not), of one on it: all in
    one fresh Python (a second one for the read-only disk was a start-up and an import more)."""

    def __init__(self, blocker: Path, behind: dict[str, str]) -> None:
        self.blocker, self.behind = blocker, behind
        self.read_only: Path | None = None
        self.on_read_only: dict[str, str] = {}
        self.skipped = ""


@pytest.fixture(scope="module")
def refusals(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Refusals]:
    folder = tmp_path_factory.mktemp("refused")
    blocker = folder / "blocker"
    blocker.write_text("a file where a folder should be")
    mount = _read_only_mount(folder / "ro")
    read_only: Path | None = None
    skipped = ""
    try:
        read_only = next(mount)
    except pytest.skip.Exception as why:  # (no root: the read-only tests skip, the others run)
        skipped = str(why)
    runs = [(command, blocker) for command in BEHIND_A_FILE]
    if read_only is not None:
        runs += [(command, read_only) for command in ON_A_READ_ONLY_DISK]
    try:
        messages = _refused_before_tensorflow(folder, runs)
        found = Refusals(blocker, dict(zip(BEHIND_A_FILE, messages, strict=False)))
        found.read_only, found.skipped = read_only, skipped
        found.on_read_only = dict(zip(ON_A_READ_ONLY_DISK, messages[len(BEHIND_A_FILE) :], strict=False))
        yield found
    finally:
        next(mount, None)  # (unmounts the disk)


@pytest.mark.xdist_group("faults_refused_before_tensorflow")  # one worker runs each probe once
@pytest.mark.parametrize("command", BEHIND_A_FILE)
def test_an_output_behind_a_file_is_refused_before_tensorflow_is_imported(refusals, command):
    blocker, message = refusals.blocker, refusals.behind[command]
    # (visualize reads `--out blocker/pics/` as the picture blocker/pics: the folder is blocker)
    assert f"the file {blocker} is in the way" in message or f"; {blocker} is a file" in message


@pytest.mark.xdist_group("faults_refused_before_tensorflow")
@pytest.mark.parametrize("command", ON_A_READ_ONLY_DISK)
def test_an_output_on_a_read_only_disk_is_refused_before_tensorflow_is_imported(refusals, command):
    if refusals.read_only is None:
        pytest.skip(refusals.skipped)
    message = refusals.on_read_only[command]
    assert f"cannot create files in {refusals.read_only}: Read-only file system" in message


# -- one safe loader ------------------------------------------------------------------------------


def test_only_the_safe_loader_asks_keras_to_load_a_model():
    """Every model file is read by ``cnnspec.training.modelfile.load_model``: no other module of
    the package calls Keras' loaders (which would skip its checks and messages)."""
    package = Path(__file__).resolve().parent.parent / "cnnspec"
    callers = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if any(
            word in path.read_text(encoding="utf-8") for word in ("saving.load_model", "models.load_model")
        )
    )
    assert callers == ["training/modelfile.py"]


def _bad_models(folder: Path) -> dict[str, tuple[Path, str]]:
    """Model files the loader refuses before Keras sees them, with the words of its message."""
    h5 = folder / "legacy.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    disguised = folder / "disguised.keras"
    disguised.write_bytes(h5.read_bytes())
    junk = folder / "junk.keras"
    junk.write_bytes(b"not a zip at all")
    bare = folder / "bare.keras"
    with zipfile.ZipFile(bare, "w") as archive:
        archive.writestr("metadata.json", "{}")
    text = folder / "model.txt"
    text.write_text("hello")
    return {
        "h5": (h5, "is a legacy HDF5 (.h5) file"),
        "h5 named .keras": (disguised, "is a legacy HDF5 (.h5) file"),
        "junk": (junk, "is not one (corrupt or another format)"),
        "no config": (bare, "has none"),
        "not .keras": (text, "expected a Keras model file ending in .keras"),
    }


LOADING_COMMANDS = {
    "evaluate": ["evaluate", "MODEL", "--data", "digits"],
    "predict": ["predict", "MODEL", "IMAGE"],
    "visualize": ["visualize", "MODEL", "filters"],
    "export": ["export", "MODEL", "-f", "tflite"],
}


@pytest.mark.parametrize("command", LOADING_COMMANDS)
def test_every_command_refuses_unsafe_model_files_with_the_same_message(tmp_path, runner, command):
    np.save(tmp_path / "image.npy", np.zeros((8, 8, 1), dtype="float32"))
    for name, (path, words) in _bad_models(tmp_path).items():
        args = [str(path) if w == "MODEL" else str(tmp_path / "image.npy") if w == "IMAGE" else w
                for w in LOADING_COMMANDS[command]]  # fmt: skip
        result = runner.invoke(app, args)
        text = flat(result.output)
        assert result.exit_code == 2, (name, text)
        assert words in text and str(path) in "".join(text.split()), (name, text)
        assert "Traceback" not in text and "internal error" not in text


@pytest.mark.slow
def test_a_lambda_model_is_refused_alike_by_every_command(tmp_path, runner):
    from tests.test_report_support import bare_model

    model = bare_model(tmp_path, lam=True)
    np.save(tmp_path / "image.npy", np.zeros((8, 8, 3), dtype="float32"))
    messages = {}
    for command, template in LOADING_COMMANDS.items():
        args = [str(model) if w == "MODEL" else str(tmp_path / "image.npy") if w == "IMAGE" else w
                for w in template]  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (command, result.output)
        messages[command] = flat(result.output)
    first = next(iter(messages.values()))
    assert "Lambda layer" in first
    assert all(message == first for message in messages.values()), messages


# -- every write of a real run, in order: fail, keep, continue ---------------------------------------

#: A flatten and a dense layer on 128 digits: each of the chain's ~20 commands builds, traces and
#: trains its model again, and a convolution's graph only made each of them slower.
CHAIN_SPEC = (
    "cnnspec: 1\nname: faulty\ninput: {shape: [8, 8, 1]}\n"
    "model:\n  - flatten\n  - dense: {units: 10, activation: softmax}\n"
    "data: {source: digits, limit: 128}\n"
    + """\
training:
  epochs: 2
  batch_size: 32
  seed: 3
  callbacks:
    - early_stopping: {monitor: val_loss, patience: 5, restore_best_weights: true}
    - model_checkpoint: {save_best_only: false}
    - csv_logger
"""
)

#: Every file a run writes, in the order it writes them: (file in the run folder, which write of
#: it in that command fails (0: its first), how the user goes on). Each command of the chain
#: fails at the next point, so a point is reached by the command that continues the last one:
#: ``again`` (the folder was never set up: the same command), ``resume``, ``report``.
CHAIN = (
    ("spec.yaml", 0, "again"),
    ("resolved.yaml", 0, "again"),
    ("lock.json", 0, "again"),
    ("lock.json", 1, "resume"),  # the update right after the start: the run exists now
    ("checkpoints/last.keras", 0, "resume"),  # epoch 1, before its snapshot
    ("state/epoch-0001.weights.h5", 0, "resume"),
    ("state/epoch-0001.arrays.npz", 0, "resume"),  # early stopping's best weights
    ("state/epoch-0001.json", 0, "resume"),
    ("history.json", 0, "resume"),  # epoch 1's snapshot is whole
    ("state/epoch-0002.weights.h5", 0, "resume"),  # epoch 2 over epoch 1's snapshot
    ("state/epoch-0002.json", 0, "resume"),
    ("history.csv", 0, "resume"),  # epoch 2's snapshot is whole: training is done
    ("state/epoch-0002-final.weights.h5", 0, "resume"),
    ("state/epoch-0002-final.json", 0, "resume"),
    ("training_log.csv", 0, "resume"),  # the history once more, after fit
    ("model.keras", 0, "resume"),
    ("classification_report.txt", 0, "resume"),
    ("history.png", 0, "resume"),
    ("confusion_matrix.png", 0, "resume"),
    ("metrics.json", 0, "resume"),  # the run counts as finished once this exists
    ("report.html", 0, "report"),
)


@pytest.mark.slow
@needs_proc
@pytest.mark.parametrize(
    "offset", range(min(ROTATIONS, len(FAULTS))), ids=[f"faults-from-{name}" for name in FAULTS][:ROTATIONS]
)
def test_every_write_of_a_run_fails_cleanly_keeps_the_folder_and_the_run_continues(
    tmp_path, runner, monkeypatch, capsys, offset
):
    """One run, failed at each of its writes in turn (the faults rotate; the three offsets,
    ``CNNSPEC_FAULT_ROTATIONS=3``, give every point every fault): each failure is exit 1 naming
    the file and its size, changes nothing that was written before, and the command the hint
    names goes on to the next."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(CHAIN_SPEC)
    out = tmp_path / "run"
    command = ["train", str(spec), "--quiet", "--out", str(out)]
    rows = []
    for index, (point, skip, then) in enumerate(CHAIN):
        fault = list(FAULTS)[(index + offset) % len(FAULTS)]
        with monkeypatch.context() as patch:
            injector = Injector(patch, fault, Path(point).name, skip)
            injector.folder = out
            started = time.perf_counter()
            result = runner.invoke(app, command)
            seconds = time.perf_counter() - started
        text = flat(result.output)
        rows.append(f"{point} | {fault} | exit {result.exit_code} | {seconds:.2f}s")
        assert injector.fired, (point, text)
        assert result.exit_code == 1, (point, fault, text)
        assert f"error: cannot write {out / point}: {os.strerror(FAULTS[fault])} (needs about" in text
        assert "Traceback" not in text and "internal error" not in text
        assert not leftovers(tmp_path) and not (out / LOCK_NAME).exists()
        after = contents(out)
        if then == "again":  # the run never got its lock.json: the folder is gone, as it was
            assert not out.exists() and "run the same command again" in text
        elif then == "report":  # the results are whole; the snapshots were let go
            assert after == {k: v for k, v in injector.before.items() if not k.startswith("state/")}
            assert f"cnnspec report {out}" in text
            command = ["report", str(out)]
        else:
            assert after == kept(injector.before, point), point  # nothing written before changed
            assert f"--resume {out}" in text
            command = ["train", str(spec), "--quiet", "--resume", str(out)]
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    assert (out / "report.html").is_file() and (out / "model.keras").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    history = json.loads((out / "history.json").read_text())
    assert metrics["epochs_run"] == 2 and history["epoch"] == [1, 2]  # every epoch once
    assert not (out / "state").exists() and not leftovers(out) and not (out / LOCK_NAME).exists()
    with capsys.disabled():
        print("\n" + "\n".join(f"  {row}" for row in rows))


# -- a real full disk ---------------------------------------------------------------------------------

#: Snapshots of about 250 KiB (19k parameters with Adam's two moments): a 600 KiB disk holds
#: the run's first files and one or two snapshots, not the whole run.
FILLING_SPEC = """\
cnnspec: 1
name: filling
input: {shape: [8, 8, 1]}
model:
  - flatten
  - dense: {units: 256, activation: relu}
  - dense: {units: 10, activation: softmax}
data: {source: digits, limit: 128}
training: {epochs: 4, batch_size: 32, seed: 1}
"""
CNNSPEC = str(Path(sys.executable).with_name("cnnspec"))
#: ``cnnspec`` with the free-space check switched off: the disk fills up between the check and
#: the write (another process wrote in between), so the write itself meets ENOSPC.
UNCHECKED = """
import sys
from cnnspec import fileio
from cnnspec.training import state
fileio.ensure_space = state.ensure_space = lambda *args, **kwargs: None
from cnnspec.cli.app import app
app(sys.argv[1:])
"""


@pytest.fixture
def small_disk(tmp_path):
    """A real 600 KiB tmpfs; ``grow()`` gives it room, as freeing space would."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    folder = tmp_path / "disk"
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"mount refused: {done.stderr.decode(errors='replace').strip()}")

    def grow() -> None:
        subprocess.run(["mount", "-o", "remount,size=16m", str(folder)], check=True, capture_output=True)

    try:
        yield folder, grow
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


@pytest.mark.slow
@pytest.mark.parametrize("checked", [True, False], ids=["space-checked", "disk-fills-after-check"])
def test_training_on_a_full_disk_is_a_clean_error_and_resumes_once_there_is_room(
    tmp_path, small_disk, capsys, runner, checked
):
    folder, grow = small_disk
    spec = tmp_path / "spec.yaml"
    spec.write_text(FILLING_SPEC)
    out = folder / "run"
    command = ["train", str(spec), "--quiet", "--out", str(out)]
    started = time.perf_counter()
    if checked:  # refused before a byte of the write: no HDF5 file meets the full disk
        # in a fork of a Python that has imported TensorFlow (tests/script_runner.py): the
        # command's own start-up, exit status and output, without 5 s of imports and 3 s of
        # module teardown
        done = run_python(Path(CNNSPEC), *command)
    else:  # h5py meets ENOSPC: a fresh Python, whose teardown (HDF5's destructors) is checked too
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        done = subprocess.run(
            [sys.executable, "-c", UNCHECKED, *command], capture_output=True, text=True, env=env
        )
    seconds = time.perf_counter() - started
    message = flat(done.stderr)
    assert done.returncode == 1, (done.returncode, done.stderr)  # not 139 (h5py's segfault), not 3
    assert "Traceback" not in done.stderr and "internal error" not in message
    assert "Exception ignored" not in done.stderr  # no HDF5 error printed from a destructor
    assert f"error: cannot write {out}/" in message and "free there" in message
    reason = "not enough free space; nothing was written" if checked else "No space left on device"
    assert reason in message, message
    assert f"--resume {out}" in message
    assert not leftovers(out) and not (out / LOCK_NAME).exists()
    manifests = sorted((out / "state").glob("epoch-*.json"))
    assert manifests, "the disk should have held at least one snapshot"

    grow()
    # the resume in this process (TensorFlow is loaded here already): the run above proved the
    # command's own exit, a second fresh process would only import TensorFlow again; without its
    # page (nothing here reads it: its drawing was a second and a half of the resume)
    resumed = runner.invoke(app, ["train", str(spec), "--quiet", "--no-report", "--resume", str(out)])
    assert resumed.exit_code == 0, resumed.output
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == [1, 2, 3, 4]  # every epoch once: the last good snapshot was intact
    newest = max(int(path.stem.split("-")[1]) for path in manifests)
    assert json.loads((out / "metrics.json").read_text())["resumed_from_epoch"] == newest
    with capsys.disabled():
        first = message.split("error: ", 1)[1].split(" hint:", 1)[0]
        kind = "checked" if checked else "unchecked"
        print(f"\n  600 KiB tmpfs ({kind}): exit 1 after {seconds:.1f}s: {first}")


@pytest.mark.slow
@needs_proc
def test_build_and_export_on_a_failing_disk_are_the_same_clean_error(tmp_path, runner, monkeypatch):
    spec = tmp_path / "spec.yaml"
    spec.write_text("cnnspec: 1\nname: built\n" + TINY_DIGITS_MODEL)
    model = tmp_path / "built.keras"
    assert runner.invoke(app, ["build", str(spec), "-o", str(model)]).exit_code == 0
    good = model.read_bytes()
    cases = {  # command → the file it writes, and the fault met there
        "build": (["build", str(spec), "-o", str(model)], model, "ENOSPC"),
        "export-tflite": (["export", str(model), "-f", "tflite"], tmp_path / "built.tflite", "EIO"),
        "export-savedmodel": (
            ["export", str(model), "-f", "savedmodel"],
            tmp_path / "built_saved_model",
            "EROFS",
        ),
    }
    for name, (args, target, fault) in cases.items():
        with monkeypatch.context() as patch:
            injector = Injector(patch, fault, target.name)
            result = runner.invoke(app, args)
        text = flat(result.output)
        assert injector.fired and result.exit_code == 1, (name, text)
        assert f"error: cannot write {target}: {os.strerror(FAULTS[fault])} (needs about" in text, name
        assert "converter failed" not in text and "Traceback" not in text and "internal error" not in text
        assert not target.exists() or target == model, name
        assert model.read_bytes() == good and not leftovers(tmp_path), name

    # too little room for the model: refused before a byte is written, with the numbers
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda _: usage._replace(free=4096))
    result = runner.invoke(app, ["build", str(spec), "-o", str(tmp_path / "other.keras")])
    text = flat(result.output)
    assert result.exit_code == 1 and "not enough free space; nothing was written" in text
    assert "4.0 KiB free there" in text and not (tmp_path / "other.keras").exists()


#: What TensorFlow raised when tf.data's cache (``data.cache: disk``) filled a 120 KiB tmpfs, in
#: the first epoch (RUN stands for the run folder): a ResourceExhaustedError, out of memory's type.
CACHE_FULL_TEXT = (
    "Graph execution error:\n\nDetected at node IteratorGetNext defined at (most recent call last):\n"
    '  File "/usr/lib/python3.11/runpy.py", line 198, in _run_module_as_main\n\n'
    "RUN/data-cache_0.data-00000-of-00001.tempstate15574059443515153549; No space left on device\n"
    "\t [[{{node IteratorGetNext}}]]\n"
    "Hint: If you want to see a list of allocated tensors when OOM happens, add "
    "report_tensor_allocations_upon_oom to RunOptions for current allocation info. This isn't "
    "available when running in Eager mode.\n [Op:__inference_multi_step_on_iterator_1114]"
)


@pytest.mark.slow
def test_a_full_disk_under_the_data_cache_is_a_write_error_and_resumes(tmp_path, runner, monkeypatch):
    """`data.cache: disk` on a full disk: TensorFlow raises ResourceExhaustedError, which train
    took for memory running out ("out of memory in epoch 1 … Graph execution error:", and the
    advice of smaller batches). It is the write error of the cache file, with the space the
    cache needs and the resume command; the cache's files are removed, and the resume trains."""
    import keras
    import tensorflow as tf

    from cnnspec.training import callbacks
    from tests.test_stream import make_images, spec

    out = tmp_path / "run"

    class FullDisk(keras.callbacks.Callback):  # where tf.data writes the cache: the first epoch
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            (out / "data-cache_0.data-00000-of-00001.tempstate1").write_bytes(b"part")
            raise tf.errors.ResourceExhaustedError(None, None, CACHE_FULL_TEXT.replace("RUN", str(out)))

    real = callbacks.spec_callbacks
    make_images(tmp_path / "imgs", {"a": 10, "b": 10, "c": 10})
    text = spec("{source: {directory: imgs}, cache: disk, validation_split: 0.2, test_split: 0.2}")
    (tmp_path / "spec.yaml").write_text(text.replace("epochs: 1", "epochs: 2"))
    command = ["train", str(tmp_path / "spec.yaml"), "--quiet", "--out", str(out)]
    # a disk that has less than the cache needs is refused before the first epoch (it was
    # refused once that epoch had trained, writing the cache)
    usage = shutil.disk_usage(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(fileio.shutil, "disk_usage", lambda _: usage._replace(free=4096))
        early = runner.invoke(app, command)
    assert early.exit_code == 1, early.output
    # 24 images of training and validation, 8×8×3 pixels and a label each: 24 × (192 + 16) bytes
    cannot = f"error: cannot write {out}/data-cache_0.data-00000-of-00001:"
    said = flat(early.output)
    assert f"{cannot} not enough free space; nothing was written (needs about 4.9 KiB; 4.0 KiB" in said
    hint = f"hint: free some space there, then continue with: cnnspec train {tmp_path / 'spec.yaml'}"
    assert f"{hint} --resume {out}" in said
    assert not (out / "history.json").exists() and not list(out.glob("data-cache*"))

    # a disk that fills up all the same (the estimate fits; something else wrote meanwhile)
    with monkeypatch.context() as patch:
        patch.setattr(callbacks, "spec_callbacks", lambda *args: {**real(*args), "full": FullDisk()})
        result = runner.invoke(app, [*command[:-2], "--resume", str(out)])
    said = flat(result.output)
    assert result.exit_code == 1, result.output
    assert "out of memory" not in said and "batch" not in said and "Graph execution" not in said
    assert f"{cannot} No space left on device " in said
    assert "(needs about 4.9 KiB; " in said and " free there)" in said
    assert f"{hint} --resume {out}" in said
    assert not list(out.glob("data-cache*")) and (out / "lock.json").is_file()
    from cnnspec.api import compile_spec
    from cnnspec.training.trainer import train

    # the trainer the pasted command runs, without its page
    train(compile_spec(tmp_path / "spec.yaml"), resume=out)
    assert json.loads((out / "history.json").read_text())["epoch"] == [1, 2]


@pytest.mark.slow
@pytest.mark.full
def test_the_model_size_estimate_is_an_upper_bound_with_a_modest_margin(tmp_path, runner, monkeypatch):
    """The free-space check's estimate (``model_file_bytes``) against the files Keras writes:
    a tiny conv net, the digits CNN, a BatchNorm net and MobileNetV2 at 32×32, each without and
    with Adam's variables, as a ``.keras`` archive, a legacy ``.h5`` and a weights file. It had
    a flat 64 KiB per file and 4 KiB per variable: about 3× a small model (80.3 KiB for a
    20.0 KiB archive), so `build -o` of a 29 KiB model was refused on a 64 KiB disk.

    And ``saved_model_bytes`` against the SavedModel folder export writes: export asked for the
    ``.keras`` estimate, about half of it (the folder holds the weights twice)."""
    from cnnspec.api import compile_spec, compile_text
    from cnnspec.backends.keras_builder import build_model
    from cnnspec.export.converters import write_saved_model
    from cnnspec.training.modelfile import save_model
    from cnnspec.training.state import model_file_bytes, saved_model_bytes, weights_image

    tiny = "cnnspec: 1\nname: tiny\n" + TINY_DIGITS_MODEL
    norm = tiny.replace("  - global_avg_pool2d\n", "  - batch_norm\n  - global_avg_pool2d\n")
    specs_dir = Path(__file__).parent.parent / "specs"
    models = {
        "tiny": compile_text(tiny, "tiny.yaml"),
        "batch-norm": compile_text(norm, "norm.yaml"),
        "digits_cnn": compile_spec(specs_dir / "digits_cnn.yaml"),
        "mobilenet_v2": compile_spec(
            "zoo:mobilenet_v2", overrides=["input.shape=[32,32,3]", "vars.classes=10"]
        ),
    }
    for name, compiled in models.items():
        model = build_model(compiled.ir)
        if name == "mobilenet_v2":  # (export's SavedModel: its weights twice)
            # the model uncompiled, as export loads one: before the optimizer below (it was a
            # second MobileNetV2 built for this alone)
            folder = tmp_path / f"{name}-savedmodel"
            write_saved_model(model, folder)
            written = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            estimate = saved_model_bytes(model)
            print(f"  {name}: SavedModel estimate {estimate:,} B, written {written:,} B")
            assert written <= estimate <= 1.2 * written
            assert model_file_bytes(model) < written  # (what the check asked for before)
        for optimizer in (False, True):
            if optimizer:
                model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
                model.optimizer.build(model.trainable_variables)
            estimate = model_file_bytes(model)
            sizes = {"weights": len(weights_image(model))}
            for suffix in (".keras", ".h5"):
                path = tmp_path / f"{name}-{optimizer}{suffix}"
                save_model(model, path)
                sizes[suffix] = path.stat().st_size
            largest = max(sizes.values())
            print(f"\n  {name} (optimizer: {optimizer}): estimate {estimate:,} B, files {sizes}")
            assert largest <= estimate <= 1.6 * largest, (name, optimizer, estimate, sizes)

    # a 64 KiB disk (60 KiB free) takes the tiny model `build -o` writes (about 20 KiB)
    spec = tmp_path / "tiny.yaml"
    spec.write_text(tiny)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda _: usage._replace(free=60 * 1024))
    result = runner.invoke(app, ["build", str(spec), "-o", str(tmp_path / "m.keras")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m.keras").stat().st_size < 30 * 1024
