"""Atomic file writes: a temp file in the same folder, fsync, then rename.

A crash or a failing writer leaves the previous file intact and no temp file behind. Also
:func:`sha256_file`, the one file digest cnnspec computes (data files, saved training state).

Every write of cnnspec goes through :func:`atomic_path`, so it is also where disk faults are
turned into one clean error: an ``OSError`` of the writer (a full disk, an I/O error, a
read-only or vanished folder), or a library's error that carries one only as text (h5py's
``RuntimeError: … errno = 28``), becomes a :class:`~cnnspec.errors.WriteError` naming the file,
the space the write needed and the space that was free (:mod:`cnnspec.write_faults` reads it).
Large writes state what they need (``needed``) and are refused before a byte is written when it
can't fit (:func:`~cnnspec.write_faults.ensure_space`). The text of the JSON files written is
:mod:`cnnspec.jsontext`'s.
:func:`check_writable` refuses an output location up front, before any slow work starts; a
target that is a folder, FIFO, device or socket is a :class:`~cnnspec.errors.UsageError` there
and in :func:`atomic_path` (:func:`refuse_special`), since the rename would replace it.

A write also never commits after a Ctrl-C or SIGTERM whose ``KeyboardInterrupt`` was swallowed
on its way (:func:`note_stop`): h5py runs Python callbacks for Keras' ``model.save`` and drops
an exception raised in them, and so does a ``__del__``. A stop that comes at any other moment of
a write leaves each target as it was or as written, and nothing else: Python raises it as soon as
a call returns (right after an ``os.mkdir`` or an ``os.replace``), so each folder a write makes
is recorded before it is made (:class:`_Made`), and what a commit did is read from the files, not
from flags set after each step (tests/test_stop_anywhere.py stops each kind of write at every
step in turn).
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import fcntl
import hashlib
import os
import re
import shutil
import stat
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cnnspec.errors import PartlyWrittenError, UsageError, WriteError
from cnnspec.write_faults import disk_fault, ensure_space, write_fault

#: What :mod:`zipfile` raises for a damaged or unusual archive: a bad CRC or header, a
#: truncated member, an unknown compression method, an encrypted member, corrupt deflate data.
ZIP_FAULTS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    NotImplementedError,
    RuntimeError,
    EOFError,
    OSError,
    ValueError,
    zlib.error,
)
try:
    import lzma

    ZIP_FAULTS += (lzma.LZMAError,)
except ImportError:  # pragma: no cover - Python built without lzma: zipfile cannot use it either
    pass

#: The first bytes of a zip archive that holds a file (its first local file header): a
#: ``.keras`` model, an ``.npz`` with an array. (An empty archive starts with its end record.)
ZIP_MAGIC = b"PK\x03\x04"


#: A Ctrl-C or SIGTERM that a command line's signal handler has turned into a
#: ``KeyboardInterrupt`` and that no command has handled yet (:func:`note_stop`).
_stop_noted = False


def note_stop() -> None:
    """Remember a stop the signal handler is raising as ``KeyboardInterrupt``, until
    :func:`stop_handled`. Python raises it wherever the main thread is, and some places drop it
    without a word: h5py's file callbacks, which Keras' ``model.save`` runs (`cnnspec build`
    then went on and saved its model, exit 0, after a SIGTERM), or a ``__del__``. So
    :func:`atomic_path` raises it again before it commits a write (:func:`check_stop`)."""
    global _stop_noted
    _stop_noted = True


def stop_handled() -> None:
    """The noted stop has been dealt with (a command reported "interrupted")."""
    global _stop_noted
    _stop_noted = False


def stop_noted() -> bool:
    """Whether a stop was noted that no command has handled yet."""
    return _stop_noted


def check_stop() -> None:
    """Raise ``KeyboardInterrupt`` again for a noted stop that something swallowed."""
    if _stop_noted:
        raise KeyboardInterrupt


#: The folders this process owns while it writes into them (a run folder under its lock:
#: :class:`cnnspec.training.runlock.RunLock`), by absolute path, each with the check that raises
#: (a :class:`~cnnspec.errors.WriteError`) once the folder is no longer the one it owns: moved,
#: deleted, or its lock file removed (another process may hold it now).
_OWNED: dict[str, Callable[[Path], None]] = {}


def own_folder(folder: str | Path, check: Callable[[Path], None]) -> None:
    """Make every :func:`atomic_path` write into ``folder`` (or below it) call ``check(target)``
    first and again before it commits, and never create ``folder`` itself: a run folder that
    was moved or deleted mid-run must not come back, empty, at its old path (the run's later
    files there and the moved folder left unfinished). Its sub-folders are still created, inside
    it only. Undone by :func:`disown_folder`."""
    _OWNED[os.path.abspath(folder)] = check


def disown_folder(folder: str | Path) -> None:
    """Writes into ``folder`` are checked no more (its owner let it go)."""
    _OWNED.pop(os.path.abspath(folder), None)


def check_owned(path: str | Path) -> None:
    """Run the check of the owned folder that holds ``path`` (or is it), if any: before a step
    that writes there other than through :func:`atomic_path` (and may create the folder)."""
    owner = _owner(Path(path))
    if owner is not None:
        owner[1](Path(path))


def _owner(folder: Path) -> tuple[Path, Callable[[Path], None]] | None:
    """The owned folder that holds ``folder`` (or is it), with its check; ``None`` when none."""
    here = os.path.abspath(folder)
    for root, check in _OWNED.items():
        if here == root or here.startswith(root.rstrip(os.sep) + os.sep):
            return Path(root), check
    return None


def _make_below(root: Path, folder: Path, made: list[Path]) -> None:
    """Create ``folder`` and the folders between it and ``root``, one at a time below ``root``
    (never ``root`` or anything above it: gone, the ``mkdir`` fails instead of re-creating it).
    Each is put at the front of ``made`` (innermost first) before its ``mkdir``, and taken off
    again when it was there already: a failed write removes those it made, and a Ctrl-C can
    come right after the ``mkdir`` returns, before anything else would record it."""
    here = root
    for part in Path(os.path.abspath(folder)).relative_to(root).parts:
        here = here / part
        made.insert(0, here)
        try:
            here.mkdir()
        except FileExistsError:
            del made[0]  # (a statement, not a call: no Ctrl-C lands between it and the except)


@dataclass
class _Made:
    """What a write has made so far, to remove again when it is given up: the folders up to its
    target (innermost first) and its scratch folder. Each is recorded *before* its ``mkdir``
    (and dropped again when it was there already): Python raises a Ctrl-C's
    ``KeyboardInterrupt`` as soon as a call returns, so a folder recorded only after its
    ``mkdir`` could be made and never recorded, and stay behind. One that was recorded and not
    made is no harm: removing it finds nothing (:func:`remove_empty`)."""

    folders: list[Path] = field(default_factory=list)
    scratch: Path | None = None
    #: The scratch folder is made and held (:func:`_hold`): the write's own cleanup takes over.
    ready: bool = False

    @property
    def held(self) -> Path:
        """The scratch folder, once :attr:`ready`."""
        assert self.scratch is not None
        return self.scratch

    def undo(self) -> None:
        """Remove what was made: the scratch folder with what the writer left in it
        (:func:`remove_atomic_temp`, which passes over one that was recorded and not made), then
        the folders, while they are empty. A scratch name the file system refused (too long, a
        folder gone) is no error of its own here: the write's own error is said."""
        if self.scratch is not None:
            with contextlib.suppress(OSError):
                remove_atomic_temp(self.scratch)
        remove_empty(self.folders)


@contextlib.contextmanager
def atomic_path(
    target: str | Path, suffix: str | None = None, *, needed: int | None = None
) -> Iterator[Path]:
    """Yield a temp path beside ``target``; on success it replaces ``target`` atomically.

    For writers that insist on a path (``model.save``): the temp name keeps ``target``'s
    suffix (or ``suffix``) so format detection by extension still works. ``needed``: about how
    many bytes the writer will write; when the folder has less free space the write is refused
    before it starts. A write that fails on the disk (see :func:`~cnnspec.write_faults.write_fault`) raises
    :class:`~cnnspec.errors.WriteError`; ``target`` is then as it was before. A ``target`` that
    is a folder, FIFO, device or socket is refused (:func:`refuse_special`) before anything is
    written: the rename would put a regular file in its place. Into a folder this process owns
    (:func:`own_folder`, a run folder under its lock) the owner's check runs first and again
    before the commit, and that folder is never re-created. Inside :func:`write_together` the
    written and flushed temp waits for the group's end, where every file of the group is
    renamed into place, or none; inside :func:`staged_folder`, a write into its folder waits
    in the stage's one scratch folder.
    """
    target = Path(target)
    refuse_special(target)
    stage = _STAGE.get()
    if stage is not None and stage.holds(target):  # (staged_folder: renamed with the rest)
        with stage.staged(target, suffix, needed) as staged:
            yield staged
        return
    folder = target.parent if str(target.parent) else Path(".")
    owner = _owner(folder)
    made = _Made()
    try:  # (from the first folder made on: a Ctrl-C at any point leaves none of them behind)
        _scratch(target, folder, owner, needed, made)
        temp_dir, created = made.held, made.folders
        temp = temp_dir / f"part{suffix if suffix is not None else (target.suffix or '.tmp')}"
        yield temp
        check_stop()  # a Ctrl-C the writer swallowed: nothing is committed, not even fsynced
        if owner is not None:  # (the writer may have taken minutes: a model)
            owner[1](target)
        with open(temp, "rb") as written:
            os.fsync(written.fileno())
        group = _GROUP.get()
        if group is not None:  # written and flushed; renamed with the rest of its group
            group.add(_Pending(target, temp, temp_dir, created, needed, owner))
            return
        os.replace(temp, target)
        sync_folder(folder)
        with contextlib.suppress(OSError):
            temp_dir.rmdir()
        _release(temp_dir)
    except BaseException as exc:
        made.undo()
        if not made.ready:  # refused or stopped while it made its folders: its error as it is
            raise
        fault = _write_failure(exc, target, needed, owner)
        if fault is None:
            raise
        raise fault from exc


@contextlib.contextmanager
def scratch_folder(target: str | Path, *, needed: int | None = None) -> Iterator[Path]:
    """A private folder beside ``target`` for a writer's own work before :func:`atomic_path`
    (a copy checked before it is written): made and refused as :func:`atomic_path`'s scratch
    folder is (its name, mode 0700, ``needed``, disk faults as a
    :class:`~cnnspec.errors.WriteError`), and removed on leaving with what is left in it and the
    folders made for it, whatever stops the writer."""
    target = Path(target)
    refuse_special(target)
    folder = target.parent if str(target.parent) else Path(".")
    made = _Made()
    try:  # (the cleanup inside too: a Ctrl-C that stops it has it done again below)
        _scratch(target, folder, _owner(folder), needed, made)
        yield made.held
        made.undo()
    except BaseException:
        made.undo()
        raise


@dataclass
class _Pending:
    """A file of a :func:`write_together` group: written to ``temp`` and flushed, waiting to
    replace ``target``. ``scratch``: its private temp folder (where the file it replaces is kept
    aside until the group is committed); ``created``: the folders its write made."""

    target: Path
    temp: Path
    scratch: Path
    created: list[Path]
    needed: int | None
    owner: tuple[Path, Callable[[Path], None]] | None
    #: Whether the file is the one to keep in its scratch folder when a commit failed (its old
    #: file could not be put back there): the group's cleanup leaves it.
    stranded: bool = False

    # What the commit did so far is read from the files, not from flags set after each step: a
    # Ctrl-C comes as soon as a rename returns, before the next statement could note it.
    @property
    def kept(self) -> Path:
        """Where the file ``target`` held before is kept aside until the group is committed."""
        return self.scratch / f"{_OLD}{self.temp.suffix}"

    @property
    def old(self) -> Path | None:
        """The file ``target`` held before, kept aside (``None``: none is, or there was none)."""
        return self.kept if os.path.lexists(self.kept) else None

    @property
    def replaced(self) -> bool:
        """Whether ``temp`` has been renamed to ``target``."""
        return not os.path.lexists(self.temp)


@dataclass
class _Group:
    """The files written inside one :func:`write_together`, in the order they were written."""

    files: list[_Pending] = field(default_factory=list)

    def add(self, pending: _Pending) -> None:
        """Add a written file; one written to the same target earlier in the group is dropped
        (the later write wins, as two writes one after the other would)."""
        for earlier in [p for p in self.files if p.target == pending.target]:
            self.files.remove(earlier)
            remove_atomic_temp(earlier.scratch)
            remove_empty(earlier.created)
        self.files.append(pending)


#: The group :func:`atomic_path` writes join (``None``: each write is renamed into place at once).
_GROUP: contextvars.ContextVar[_Group | None] = contextvars.ContextVar("cnnspec_write_group", default=None)

#: The name of the file a group's write keeps aside in its temp folder: ``old`` and the
#: target's suffix (or ``.tmp``), beside ``part`` (:func:`is_atomic_leftover` knows both).
_OLD = "old"


@contextlib.contextmanager
def write_together() -> Iterator[None]:
    """Make the files written inside (through :func:`atomic_path`, :func:`write_atomic` and what
    uses them) replace their targets all together, or none: files that belong together (an
    export and its record, a spec and its weights, an evaluation and its picture) must not
    disagree after a failure between them.

    Each write inside goes to its temp file as usual (its free-space check, ``fsync``), and its
    rename waits. Only once the block ends without an error are the files renamed into place,
    in the order they were written; the file each replaces is kept aside (a hard link in the
    write's temp folder; where the file system has none, the file itself, renamed there) until
    the last rename is done. A failure inside the block (a writer, a free-space check, a
    Ctrl-C) leaves every target as it was; one in a rename puts back the files already
    replaced and removes those the group created. The error is the one a single write raises
    (a :class:`~cnnspec.errors.WriteError` naming the file that failed). A kill between two
    renames can still leave some files new and some old: the file system has no rename of
    several files at once (the temp folders left are leftovers, :func:`is_atomic_leftover`).

    Inside the block a target still reads as it was. A :func:`write_together` inside another
    joins it. :func:`atomic_dir` writes are not deferred.
    """
    if _GROUP.get() is not None:  # joins the group around it, which commits
        yield
        return
    group = _Group()
    # Every step inside one handler: a Ctrl-C can come at any of them (even as the group is
    # set, or as the commit is called), and must neither leave every later write deferred nor
    # keep a temp file. (A file the commit could not put back stays, as its error says.)
    try:
        try:
            _GROUP.set(group)
            yield
        finally:
            _GROUP.set(None)
        _commit(group.files)
    except BaseException as exc:
        _GROUP.set(None)  # (again: the Ctrl-C may have come as the finally clause began)
        _discard([p for p in group.files if not p.stranded])
        raise_stop_behind(exc)
        raise


def _discard(files: list[_Pending]) -> None:
    """Remove the temp files (and the folders made for them) of a group that is not committed."""
    for pending in reversed(files):
        remove_atomic_temp(pending.scratch)
        remove_empty(pending.created)


def _commit(files: list[_Pending]) -> None:
    """Rename a group's files into place (:func:`write_together`), or put every target back
    (marking the files whose old one could not be: :attr:`_Pending.stranded`); the temp files
    of a failed commit are removed by :func:`write_together`'s handler, which a stop before
    this commit's own handler needs anyway."""
    if not files:  # (nothing was written: nothing to commit)
        return
    current = files[0]
    try:
        check_stop()  # a Ctrl-C a writer swallowed: nothing is committed
        for pending in files:
            current = pending
            if pending.owner is not None:  # (checked for all before the first rename)
                pending.owner[1](pending.target)
        for pending in files:
            current = pending
            _set_aside(pending)
            os.replace(pending.temp, pending.target)
    except BaseException as exc:
        stranded = _roll_back(files)
        for pending in stranded:  # (a leftover now: the next write to its target puts it back)
            pending.stranded = True
            _release(pending.scratch)
        if stranded and isinstance(exc, Exception):
            raise _stranded_file(stranded[0], exc) from exc
        fault = _write_failure(exc, current.target, current.needed, current.owner)
        if fault is None:
            raise
        raise fault from exc
    for folder in dict.fromkeys(p.target.parent for p in files):
        sync_folder(folder if str(folder) else ".")
    _discard(files)  # (the old files kept aside, now let go)


def _set_aside(pending: _Pending) -> None:
    """Keep the file at ``pending.target`` (if any) in its temp folder until the group commits:
    a second name for it, so the target is never missing; where the file system can't link,
    the file itself, renamed there (the rename of the new file follows at once)."""
    if not os.path.lexists(pending.target):
        return
    try:
        os.link(pending.target, pending.kept, follow_symlinks=False)  # (a link is kept as a link)
    except OSError:
        os.replace(pending.target, pending.kept)


def _roll_back(files: list[_Pending]) -> list[_Pending]:
    """Put back what a failed commit replaced: the files kept aside, in their places again; the
    targets that were none before, removed. Returns the files whose old one could not be put
    back (it stays in its temp folder, where the leftover cleanup puts it back)."""
    stranded = []
    for pending in reversed(files):
        # (a target kept aside by a hard link and not replaced yet is still the old file)
        if pending.old is not None and (pending.replaced or not os.path.lexists(pending.target)):
            try:
                os.replace(pending.old, pending.target)
            except OSError:
                stranded.append(pending)
        elif pending.replaced:
            with contextlib.suppress(OSError):
                os.unlink(pending.target)
    return stranded


def _stranded_file(pending: _Pending, exc: BaseException) -> PartlyWrittenError:
    """The error of a group that could not put a replaced file back: where the old one is kept."""
    assert pending.old is not None
    fault = write_fault(exc, pending.target)
    return PartlyWrittenError(
        pending.target,
        f"{fault.reason if fault else exc}; the file there before is kept in {pending.old}",
        errno=fault.errno if fault else None,
        hint=f"move {pending.old} back to {pending.target}, then run the same command again",
    )


def raise_stop_behind(exc: BaseException) -> None:
    """Raise again the Ctrl-C (``KeyboardInterrupt``) that ``exc`` was raised on top of, if any:
    an error of a cleanup that ran while the stop was on its way out stands for the stop. The
    standard library has cleanups that fail when a stop comes between two of their steps
    (``shutil.rmtree`` then closes a descriptor twice: EBADF), and the command must end as a
    stopped one (exit 130), not as a failed write."""
    if isinstance(exc, KeyboardInterrupt):
        return
    behind = exc.__context__
    while behind is not None:
        if isinstance(behind, KeyboardInterrupt):
            raise behind
        behind = behind.__context__


def _write_failure(
    exc: BaseException, target: Path, needed: int | None, owner: tuple[Path, Callable[[Path], None]] | None
) -> WriteError | None:
    """What a failed write of ``target`` raises instead of ``exc`` (``None``: ``exc`` itself, a
    Ctrl-C or an error that is no disk fault). A folder that went away under the writer is said
    by ``owner``'s check (it raises), not as its ENOENT. A Ctrl-C behind ``exc`` is raised
    again (:func:`raise_stop_behind`)."""
    raise_stop_behind(exc)
    if owner is not None and isinstance(exc, Exception) and not isinstance(exc, WriteError):
        owner[1](target)
    return write_fault(exc, target, needed) if isinstance(exc, Exception) else None


#: The scratch folders of this process's writes in flight, each with the descriptor that holds
#: its ``flock``: a scratch folder no process holds is a killed write's leftover.
_HELD: dict[str, int] = {}
#: How old (by its modification time) a scratch folder no process holds must be before another
#: write takes it for a leftover: a writer makes its folder, then locks it at once.
STALE_AFTER_S = 10.0


def _hold(scratch: Path) -> None:
    """Lock this write's ``scratch`` folder until :func:`_release` (or this process ends): a
    write to the same target meanwhile knows it for a live one (:func:`_remove_stale`). A file
    system without ``flock`` leaves it unlocked (it is then never taken for a leftover young)."""
    with contextlib.suppress(OSError):
        fd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return
        _HELD[str(scratch)] = fd


def _release(scratch: Path) -> None:
    """Let go of ``scratch``'s lock (:func:`_hold`), if this process holds it."""
    fd = _HELD.pop(str(scratch), None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def _remove_stale(folder: Path, name: str) -> None:
    """Remove what killed writes to ``name`` left in ``folder`` (their scratch folders, putting
    back a group's kept file whose target is missing, :func:`remove_atomic_temp`), before a new
    write to it: outside a run folder nothing else ever removed them. A scratch folder is taken
    for a leftover only when it has the shape cnnspec's writes leave
    (:func:`is_atomic_leftover`), names this very target, is older than
    :data:`STALE_AFTER_S` and no process holds its lock (a live write holds it)."""
    listed = _scratch_folders(folder)
    for entry in list(listed.get(name, ())):
        path = folder / entry
        if str(path) in _HELD:
            continue
        try:
            if time.time() - path.lstat().st_mtime < STALE_AFTER_S or not is_atomic_leftover(path):
                continue
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:  # (gone: removed by another write, or its writer's own clean-up)
            listed[name].remove(entry)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            remove_atomic_temp(path)
            listed[name].remove(entry)
        except OSError:  # held: a write in flight (or no flock here: left, as it may be one)
            pass
        finally:
            os.close(fd)


#: A folder with at least this many entries is listed for :func:`_remove_stale` once every
#: :data:`STALE_AFTER_S` seconds, not for each write into it: predict writing 5,000 masks into
#: one folder listed it 5,000 times (22 s of listing; 1.7 s for the first 1,000).
LISTED_ENTRIES = 64
#: folder → (when it was listed, its scratch folders by the name of their target)
_LISTED: dict[str, tuple[float, dict[str, list[str]]]] = {}


def _scratch_folders(folder: Path) -> dict[str, list[str]]:
    """The scratch folders in ``folder`` by their targets' names: listed now, or at most
    :data:`STALE_AFTER_S` seconds ago for a large folder. A leftover made since a listing was
    kept is found by the next one: it is taken for a leftover only once it is that old anyway."""
    key, now = str(folder), time.monotonic()
    kept = _LISTED.get(key)
    if kept is not None and now - kept[0] < STALE_AFTER_S:
        return kept[1]
    try:
        entries = [entry.name for entry in os.scandir(folder)]
    except OSError:
        _LISTED.pop(key, None)
        return {}
    listed: dict[str, list[str]] = {}
    for entry in entries:
        found = _TEMP_FOLDER.fullmatch(entry)
        if found is not None:
            listed.setdefault(found["target"], []).append(entry)
    if len(entries) >= LISTED_ENTRIES:
        _LISTED[key] = (now, listed)
    else:
        _LISTED.pop(key, None)
    return listed


def _scratch(
    target: Path,
    folder: Path,
    owner: tuple[Path, Callable[[Path], None]] | None,
    needed: int | None,
    made: _Made,
) -> None:
    """Make the private scratch folder of a write to ``target`` in ``folder`` (creating the
    folders up to it), recording in ``made`` each folder as it makes it; ``made.ready`` once it
    is done. Refused or stopped, it removes what it made. ``owner``: the owned folder that
    holds ``folder`` (:func:`own_folder`), whose check runs first and which is never
    re-created. Shared by :func:`atomic_path`, :func:`atomic_dir` and :func:`staged_folder`, so
    all refuse alike."""
    try:
        if owner is None:
            made.folders[:] = missing_folders(folder)
            folder.mkdir(parents=True, exist_ok=True)
        else:
            owner[1](target)  # moved, deleted, its lock removed: raises, and nothing is written
            _make_below(owner[0], folder, made.folders)  # (export/ of a run: removed on a failure)
        if needed is not None:
            ensure_space(folder, needed, target)
        # A private folder (mode 0700) beside the target holds the temp file: the writer creates
        # the file (Keras refuses to overwrite one), and no other user can create it first in a
        # shared folder, as a freed temp name would let them; the rename stays on one disk.
        if owner is None:  # (a run folder's owner removed its leftovers as it took its lock)
            _remove_stale(folder, target.name)
        _hold(_make_scratch(folder, target.name, made))
        made.ready = True
    except OSError as exc:
        made.undo()
        if owner is not None:
            owner[1](target)  # gone since the check: that, not "No such file or directory"
        if exc.errno == errno.ENAMETOOLONG:  # a name the file system refuses: no disk fault
            raise UsageError(
                f"expected a shorter path; {clipped_name(str(target))} is too long to write "
                f"({exc.strerror or os.strerror(exc.errno)})",
                "choose a shorter file name (or folder names)",
            ) from None
        raise disk_fault(target, exc.errno, exc.strerror or str(exc), needed) from None
    except BaseException:  # too little space (ensure_space), a Ctrl-C: the folders go too
        made.undo()
        raise


#: How many random names :func:`_make_scratch` tries before it gives up (each taken already).
_SCRATCH_TRIES = 100


def _make_scratch(folder: Path, name: str, made: _Made) -> Path:
    """Make the scratch folder of a write to ``name`` in ``folder``: ``.<name>.<8 random hex
    digits>.tmp``, mode 0700, as ``tempfile.mkdtemp`` would, but recorded in ``made`` before
    its ``mkdir`` (``mkdtemp`` returns the name only after it made the folder)."""
    for _ in range(_SCRATCH_TRIES):
        made.scratch = folder / f".{name}.{os.urandom(4).hex()}.tmp"
        try:
            os.mkdir(made.scratch, 0o700)
        except FileExistsError:
            made.scratch = None  # (another write's: never removed as this one's)
            continue
        return made.scratch
    raise FileExistsError(errno.EEXIST, "no free name for a temp folder", str(folder))


def missing_folders(folder: Path) -> list[Path]:
    """The folders of ``folder``'s path that do not exist yet, innermost first: those a write
    creates, and removes again if nothing is written (a refused write leaves no empty folder)."""
    missing = []
    here = Path(os.path.abspath(folder))
    while not os.path.lexists(here) and here != here.parent:
        missing.append(here)
        here = here.parent
    return missing


def remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (innermost first) while they are empty: another writer's file in one
    keeps it and those above it. One that is not there is passed over: a write stopped while it
    made them made only the outer ones."""
    for folder in folders:
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue
        except OSError:
            return


def user_path(text: str | Path) -> Path:
    """A path the user wrote, with ``~`` and ``~user`` expanded where they name a home folder.
    ``Path.expanduser`` raises RuntimeError for ``~name`` of no such user (``masks: ~0``);
    :func:`os.path.expanduser` leaves such a path as written, a relative name like any other."""
    return Path(os.path.expanduser(str(text)))


def special_kind(path: str | Path) -> str | None:
    """What stands at ``path`` when it is something a file write must not replace: ``"a FIFO
    (named pipe)"``, ``"a character device"``, ``"a block device"``, ``"a socket"`` (or ``"not a
    regular file"``), or a symbolic link to one (``"a link to a FIFO (named pipe)"``); ``None``
    for a regular file, a folder, a link to either, a dangling link or nothing.

    :func:`atomic_path` renames over a link itself, so ``-o link.py`` replaces the link and
    leaves the file it points to as it is (as before); a link to a FIFO or device (such as
    ``/dev/stdout``) is refused like the FIFO or device, because nobody asks for that link to
    become a file."""
    try:
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            kind = _special_mode(os.stat(path).st_mode)
            return f"a link to {kind}" if kind is not None else None
    except (OSError, ValueError):  # nothing there, a dangling link (or a name the OS refuses)
        return None
    return _special_mode(mode)


def _special_mode(mode: int) -> str | None:
    """:func:`special_kind` of an ``st_mode`` (a link's is never passed here)."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def refuse_special(target: str | Path) -> None:
    """Raise :class:`~cnnspec.errors.UsageError` when ``target`` is a folder, FIFO, device or
    socket (see :func:`special_kind`): a file write renames a new file over it, which would
    replace it, or fail only after the work was done. The command line refuses these earlier,
    naming its option (:func:`check_writable`); this guards every other write."""
    target = Path(target)
    kind = special_kind(target)
    if kind is None and os.path.isdir(target) and not os.path.islink(target):
        kind = "a folder"
    if kind is not None:
        raise UsageError(
            f"expected a file that can be written; {target} is {kind}",
            "choose another path: only a regular file is replaced by the new one",
        )


def same_file(path: str | Path, other: str | Path) -> bool:
    """Whether ``path`` and ``other`` name one file (through a link or another spelling too);
    ``False`` when either is missing or a name the OS refuses. Outputs that would replace an
    input (``codegen -o SPEC``, ``import x.json -o x.json``) are refused with it."""
    try:
        return os.path.samefile(path, other)
    except (OSError, ValueError):
        return False


#: How much of a file the checks of cnnspec's marks read: every mark sits in its first lines.
HEAD_BYTES = 4096


def read_head(path: str | Path, size: int = HEAD_BYTES) -> bytes | None:
    """The first ``size`` bytes of the file at ``path``; ``None`` when it can't be read (a file
    whose mark can't be read counts as not cnnspec's). Checks that run before a command's work,
    on any file a user may name, read this much only, never a huge file whole."""
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except (OSError, ValueError):  # ValueError: a name the OS refuses (an embedded NUL)
        return None


def check_writable(
    path: str | Path, *, option: str = "--out", folder: bool = True, hint: str | None = None
) -> None:
    """Refuse an output location that can't be written, before any slow work starts.

    ``path`` is a folder to create or fill (``folder=True``) or a file to create or replace.
    It fails when a file stands where a folder is needed, or when the nearest existing folder
    won't take a new file (read-only mount, no permission): the probe creates and removes a
    temp file there, because only trying tells (``os.access`` says yes to root on a read-only
    mount). Raises :class:`~cnnspec.errors.UsageError` naming ``option`` (``hint``: what to do
    instead of choosing another ``option``).
    """
    path = Path(path)
    refuse_long_path(path, option, folder=folder)
    here = path
    while not os.path.lexists(here) and here != here.parent and str(here) != ".":
        here = here.parent
    kind = "folder" if folder else "file"
    special = special_kind(here)  # a FIFO, device or socket: never replaced, never a folder
    if here == path and (special is not None or folder != here.is_dir()):
        raise UsageError(
            f"expected {option} to name a {kind} that can be written; {path} is "
            + (special or ("a file" if folder else "a folder")),
            f"choose another {option}",
        )
    if here != path and not here.is_dir():
        raise UsageError(
            f"expected {option} to name a {kind} that can be written; "
            + (f"{here}, {special}, is in the way" if special else f"the file {here} is in the way"),
            f"choose another {option}",
        )
    probe_dir = here if here.is_dir() else (path.parent if str(path.parent) else Path("."))
    refuse_long_names(path, path.parts[len(here.parts) :] if here != path else (), probe_dir, option, folder)
    try:
        _probe(probe_dir)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UsageError(
            f"expected {option} to be writable; cannot create files in {probe_dir}: {reason}",
            hint or f"choose another {option} (a folder on a writable disk where you have permission)",
        ) from None


def _probe(folder: Path) -> None:
    """Create a file in ``folder`` and remove it again (``.write-check.<8 hex digits>.tmp``);
    raises the ``OSError`` of a folder that takes no new file. Its name is chosen before it is
    created, and it is removed whatever stops the probe: a Ctrl-C right after the file was made
    (``tempfile.mkstemp`` returns its name only then) left it in the user's folder."""
    for _ in range(_SCRATCH_TRIES):
        probe = folder / f".write-check.{os.urandom(4).hex()}.tmp"
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
            with contextlib.suppress(OSError):
                os.unlink(probe)
        except FileExistsError:
            continue  # (another's: never removed as this probe's)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(probe)
            raise
        return
    raise FileExistsError(errno.EEXIST, "no free name for a probe file", str(folder))


#: What :func:`atomic_path`'s temp folder adds to the target's name: ``.NAME.XXXXXXXX.tmp``.
TEMP_ROOM = "..XXXXXXXX.tmp"


def refuse_long_names(
    path: Path, new_parts: tuple[str, ...], folder_there: Path, option: str, folder: bool
) -> None:
    """Raise :class:`~cnnspec.errors.UsageError` when a name in ``path`` is longer than the file
    system allows (``ENAMETOOLONG``: a usage error, not a disk to check): ``new_parts``, the
    folders still to be made (``folder_there``: the nearest that exists), at most its
    ``PC_NAME_MAX`` bytes, and a file's own name less the room :func:`atomic_path`'s temp name
    beside it takes (:data:`TEMP_ROOM`)."""
    try:
        name_max = os.pathconf(folder_there, "PC_NAME_MAX")
    except (OSError, ValueError):  # no such setting here: the common limit
        name_max = 255
    for part in new_parts if folder else new_parts[:-1]:  # (a file's own name: below)
        if len(os.fsencode(part)) > name_max:
            raise UsageError(
                f"expected {option} to name folders of at most {name_max} bytes; received one of "
                f"{len(os.fsencode(part)):,} bytes ({clipped_name(part)})",
                f"choose another {option} with shorter names",
            )
    if folder:
        return
    limit = name_max - len(TEMP_ROOM)  # the temp folder beside it: .NAME.XXXXXXXX.tmp
    size = len(os.fsencode(path.name))
    if size > limit:
        raise UsageError(
            f"expected {option} to name a file of at most {limit} bytes; received a name of "
            f"{size:,} bytes ({clipped_name(path.name)})",
            f"choose a shorter {option} name: this file system allows {name_max} bytes in a name, "
            f"and the file is written first into a folder .NAME.XXXXXXXX.tmp beside it",
        )


#: The bytes a folder cnnspec fills may add to its path: the longest names it writes inside a
#: run folder, with a temp folder's (``checkpoints/.last.weights.h5.XXXXXXXX.tmp/…``).
FOLDER_ROOM = 100


def refuse_long_path(path: Path, option: str, *, folder: bool) -> None:
    """Raise :class:`~cnnspec.errors.UsageError` when ``path`` with what cnnspec writes there
    (a run folder's files, :data:`FOLDER_ROOM`; a file's temp folder beside it) is longer than
    the system's ``PC_PATH_MAX``: each name may be short enough and the whole too long, which
    ``Path.exists`` answers with ``OSError(ENAMETOOLONG)`` (exit 3, "internal error")."""
    try:
        path_max = os.pathconf("/", "PC_PATH_MAX")
    except (OSError, ValueError):  # no such setting here: Linux's
        path_max = 4096
    room = FOLDER_ROOM if folder else len(os.fsencode(path.name)) + len(TEMP_ROOM) + 1
    limit = path_max - 1 - room  # (the limit counts the terminating NUL)
    size = len(os.fsencode(str(path)))
    if size > limit:
        raise UsageError(
            f"expected {option} to name a path of at most {limit:,} bytes; received one of {size:,} "
            f"bytes ({clipped_name(str(path))})",
            f"choose a shorter {option}: this system takes paths of {path_max:,} bytes, and cnnspec "
            + (
                "writes files inside the folder"
                if folder
                else "writes the file first into a temp folder beside it"
            ),
        )


def clipped_name(name: str) -> str:
    """A long name as a message shows it: its start and its end."""
    return name if len(name) <= 40 else f"{name[:24]}…{name[-12:]}"


#: The temp names :func:`atomic_path` makes: ``.<target name>.<8 random characters>.tmp``, a
#: folder (:func:`_make_scratch`); before, a file of the target's suffix (left by a killed
#: write of an older cnnspec: cleaned up alike).
_TEMP_NAME = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}(?P<suffix>\.[^/]+)")


def is_atomic_temp(name: str) -> bool:
    """Whether a file name has the shape of :func:`atomic_path`'s temp files (one left behind
    by a write that was killed before its rename): its suffix is its target's (or ``.tmp``),
    so that a user's ``.config.defaults.yaml`` is none."""
    found = _TEMP_NAME.fullmatch(name)
    return found is not None and _suffix_of(found["target"], found["suffix"])


#: The endings of the files cnnspec writes: an older cnnspec's temp file (a file, not today's
#: folder) is one only for a target of these, so that a user's ``.analysis.20261204.tmp`` (notes
#: kept in a finished run, which every command that takes the run's lock tidies) is none.
WRITTEN_SUFFIXES = (
    ".keras", ".h5", ".json", ".jsonl", ".yaml", ".html", ".png", ".svg", ".dot", ".mmd",
    ".py", ".ipynb", ".tflite", ".onnx", ".npz", ".npy", ".csv", ".txt", ".pdf", ".md",
)  # fmt: skip


def _old_temp_file(name: str) -> bool:
    """Whether the file ``name`` is a temp file an older cnnspec's killed write left: the
    temp shape (:func:`is_atomic_temp`) of a target cnnspec writes (:data:`WRITTEN_SUFFIXES`)."""
    found = _TEMP_NAME.fullmatch(name)
    if found is not None and found["target"] == "write-check":  # check_writable's probe
        return found["suffix"] == ".tmp"
    return (
        found is not None
        and _suffix_of(found["target"], found["suffix"])
        and found["target"].lower().endswith(WRITTEN_SUFFIXES)
    )


def _suffix_of(target: str, suffix: str) -> bool:
    """Whether :func:`atomic_path` gives ``target``'s temp the ``suffix``: its own, or ``.tmp``."""
    return suffix == ".tmp" or target.endswith(suffix)


#: The temp folders :func:`atomic_path` makes (``.<target name>.<8 characters>.tmp``), and the
#: names of what a writer leaves in one (``part<suffix>``).
_TEMP_FOLDER = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp")


#: The file that marks :func:`atomic_dir`'s scratch folder as cnnspec's.
SWAP_MARK = ".cnnspec-swap"


def is_atomic_leftover(path: Path) -> bool:
    """Whether ``path`` is what a killed :func:`atomic_path` write left: a temp file of that
    name's shape, or a temp folder holding nothing but its one part file (``part`` and the
    target's suffix, or ``.tmp``), with the file a :func:`write_together` group kept aside
    (``old`` and that suffix); or what a killed :func:`atomic_dir` left, a temp folder
    with its mark and nothing but its ``new`` and ``old`` folders. A folder of the user's that
    happens to be named so (``.notes.settings.bak/``, ``.notes.abcdefgh.tmp/part.txt``) is none."""
    if path.is_symlink() or not path.is_dir():
        return os.path.lexists(path) and not path.is_dir() and _old_temp_file(path.name)
    found = _TEMP_FOLDER.fullmatch(path.name)
    if found is None:
        return False
    try:
        inside = list(os.scandir(path))
    except OSError:
        return False
    for mark in (SWAP_MARK, STAGE_MARK):  # (atomic_dir's and staged_folder's: the same shape)
        if any(entry.name == mark and entry.is_file(follow_symlinks=False) for entry in inside):
            return all(
                entry.name == mark or (entry.name in ("new", "old") and entry.is_dir(follow_symlinks=False))
                for entry in inside
            )
    # a group's write (write_together) also keeps the file it replaces there: old<suffix>
    return len(inside) <= 2 and all(
        entry.name.startswith(("part.", f"{_OLD}."))
        and _suffix_of(found["target"], entry.name[entry.name.index(".") :])
        # (the kept file may be a link the target was: kept as a link)
        and (entry.is_file(follow_symlinks=False) or (entry.name.startswith(_OLD) and entry.is_symlink()))
        for entry in inside
    )


def remove_atomic_temp(path: Path) -> None:
    """Remove a temp of :func:`atomic_path` (its folder and the part file in it, or an older
    cnnspec's temp file); one already gone is no error. Only what :func:`atomic_path` makes:
    callers that find leftovers check them with :func:`is_atomic_leftover` first.

    An :func:`atomic_dir` write killed between its two renames left the old folder aside and
    none in its place: the old one is put back, as the write promises the old or the new; so is
    each file a :func:`staged_folder` kept aside whose target is missing."""
    _release(path)  # (this process's own write, given up: no longer held)
    if path.is_dir() and not path.is_symlink() and (path / STAGE_MARK).is_file():
        # a stage killed while it renamed: a kept file whose target is missing goes back there
        _put_back_kept(path / _OLD, path.parent)
        shutil.rmtree(path, ignore_errors=True)
    elif path.is_dir() and not path.is_symlink() and (path / SWAP_MARK).is_file():
        found = _TEMP_FOLDER.fullmatch(path.name)
        if found is not None and (path / "old").is_dir():
            _put_back(path / "old", path.parent / found["target"])
        shutil.rmtree(path, ignore_errors=True)
    elif path.is_dir() and not path.is_symlink():
        found = _TEMP_FOLDER.fullmatch(path.name)
        target = path.parent / found["target"] if found is not None else None
        for old in path.glob(f"{_OLD}.*"):  # a group's kept file, moved there (no hard links)
            if target is not None and not os.path.lexists(target):
                with contextlib.suppress(OSError):
                    os.replace(old, target)  # its target is missing: it goes back there
        for entry in path.iterdir():
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        with contextlib.suppress(OSError):
            path.rmdir()
    else:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            path.unlink()


@contextlib.contextmanager
def atomic_dir(target: Path, *, needed: int | None = None) -> Iterator[Path]:
    """Yield a temp folder beside ``target``; on success it replaces ``target`` by renames.

    An existing ``target`` is first renamed aside, then removed once the new folder is in
    place, so a crash leaves either the old or the new folder under ``target``; a failure or a
    Ctrl-C between the two renames puts the old folder back (or, when even that rename fails,
    keeps it in the scratch folder, where :func:`remove_atomic_temp` puts it back). ``needed``,
    disk faults and folders this process owns (:func:`own_folder`) as in :func:`atomic_path`
    (a :class:`WriteError`); a ``target`` that is a file, FIFO, device or socket is refused
    (:class:`~cnnspec.errors.UsageError`): the new folder would replace it.

    The scratch folder (``.<target name>.<8 characters>.tmp``) holds the new folder (``new``),
    the old one once it is renamed aside (``old``) and a mark (:data:`SWAP_MARK`), by which a
    killed write's leftover is known (:func:`is_atomic_leftover`) from a user's folder.
    """
    target = Path(target)
    _refuse_non_folder(target)
    parent = target.parent if str(target.parent) else Path(".")
    owner = _owner(parent)
    made = _Made()
    try:  # (from the first folder made on: a Ctrl-C at any point leaves none of them behind)
        _scratch(target, parent, owner, needed, made)
        scratch = made.held
        temp, old = scratch / "new", scratch / "old"
        (scratch / SWAP_MARK).touch()
        temp.mkdir()  # (the scratch folder is private; this one gets the usual umask permissions)
        yield temp
        check_stop()  # a Ctrl-C the writer swallowed (note_stop): nothing is committed
        if owner is not None:  # (the writer may have taken minutes: a SavedModel)
            owner[1](target)
        if os.path.lexists(target):
            os.replace(target, old)
        os.replace(temp, target)
        shutil.rmtree(scratch, ignore_errors=True)
        _release(scratch)
        sync_folder(parent)
    except BaseException as exc:
        if not made.ready:  # refused or stopped while it made its folders: its error as it is
            made.undo()
            raise
        scratch = made.held
        _release(scratch)  # (a folder left stranded is a leftover now: the next write's to put back)
        # Set aside and not replaced yet, as the folders say (a flag set after each rename could
        # miss one: a Ctrl-C comes as soon as the rename returns): the old folder goes back.
        aside = os.path.lexists(scratch / "old") and os.path.lexists(scratch / "new")
        if aside and not _put_back(scratch / "old", target):  # the old folder stays in the scratch one
            if isinstance(exc, Exception):
                raise _stranded(target, scratch) from exc
            raise
        shutil.rmtree(scratch, ignore_errors=True)
        remove_empty(made.folders)
        fault = _write_failure(exc, target, needed, owner)
        if fault is None:
            raise
        raise fault from exc


def _refuse_non_folder(target: Path) -> None:
    """Refuse, for :func:`atomic_dir`, a ``target`` that is there and no folder (nor a link to
    one): a file, FIFO, device or socket would be replaced by the new folder, and lost. A link
    that leads nowhere is replaced, as :func:`atomic_path` replaces a link."""
    if os.path.lexists(target) and not os.path.isdir(target) and os.path.exists(target):
        kind = special_kind(target) or "a file"
        raise UsageError(
            f"expected a folder that can be written; {target} is {kind}",
            "choose another path: only a folder is replaced by the new one",
        )


def _put_back(old: Path, target: Path) -> bool:
    """Rename the folder :func:`atomic_dir` had set aside back to ``target``; whether it is
    there again (nothing else took its place meanwhile)."""
    if os.path.lexists(target):
        return False
    try:
        os.replace(old, target)
    except OSError:
        return False
    return True


def _stranded(target: Path, scratch: Path) -> WriteError:
    """The error of an :func:`atomic_dir` write that could put the old folder neither back nor
    the new one in its place: where the old one is, so nothing of the user's is lost."""
    return WriteError(
        target,
        f"the write failed after the folder there was moved aside; it is kept in {scratch / 'old'}",
        hint=f"move {scratch / 'old'} back to {target}, then run the same command again",
    )


def write_atomic(target: str | Path, content: str | bytes) -> Path:
    """Write text or bytes to ``target`` atomically; returns the path."""
    target = Path(target)
    data = content.encode("utf-8") if isinstance(content, str) else content
    with atomic_path(target, needed=len(data)) as temp, open(temp, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return target


def sync_folder(folder: str | Path) -> None:
    """Flush ``folder``'s entries to the disk (after a rename into it); a failure is ignored, as
    some file systems refuse to sync a folder."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex), read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- many files of one folder, all together or none ------------------------------------------------

#: The file that marks :func:`staged_folder`'s scratch folder as cnnspec's (beside its ``new``
#: folder of staged files and its ``old`` folder of the files they replace).
STAGE_MARK = ".cnnspec-stage"
#: The name a stage's scratch folder is made for: ``.cnnspec-staged.<8 characters>.tmp``.
_STAGE_NAME = "cnnspec-staged"


@dataclass
class _Stage:
    """The files written into ``folder`` (absolute) inside one :func:`staged_folder`: each
    in ``scratch/new`` under its own name, until the stage commits. The scratch folder is made
    at the first write (a stage nothing writes into creates nothing)."""

    folder: Path
    #: What the first write made (the scratch folder, the folders up to it), from its first
    #: ``mkdir`` on: :meth:`discard` removes it even when that write was stopped half-way.
    made: _Made | None = None
    #: Whether a failed commit left old files in the scratch folder, which then stays (its error
    #: says where they are): :meth:`discard` leaves it.
    stranded: bool = False
    owner: tuple[Path, Callable[[Path], None]] | None = None
    #: The staged files by their targets' names, in the order they were written.
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def scratch(self) -> Path | None:
        """The stage's scratch folder, once its first write made it (``None`` before)."""
        return self.made.scratch if self.made is not None and self.made.ready else None

    def holds(self, target: Path) -> bool:
        """Whether a write to ``target`` goes to this stage (it is a file of its folder)."""
        return os.path.abspath(target.parent if str(target.parent) else ".") == str(self.folder)

    def _open(self, target: Path) -> Path:
        """The stage's ``new`` folder, made (with the folders up to it) at the first write."""
        if self.scratch is not None:
            return self.scratch / "new"
        self.owner = _owner(self.folder)
        made = self.made = _Made()
        try:
            _scratch(self.folder / _STAGE_NAME, self.folder, self.owner, None, made)
        except WriteError as exc:  # named for the file the user asked for, not the stage's folder
            if exc.path != self.folder / _STAGE_NAME:
                raise
            raise disk_fault(target, exc.errno, exc.reason, None) from None
        scratch = made.held
        try:
            (scratch / STAGE_MARK).touch()
            (scratch / "new").mkdir()
        except OSError as exc:
            self.discard()
            raise disk_fault(target, exc.errno, exc.strerror or str(exc), None) from None
        return scratch / "new"

    @contextlib.contextmanager
    def staged(self, target: Path, suffix: str | None, needed: int | None) -> Iterator[Path]:
        """:func:`atomic_path`'s write of ``target``, to the stage: a later write of the same
        target replaces the earlier one, as two writes one after the other would."""
        new = self._open(target)
        name = target.name if suffix is None or target.name.endswith(suffix) else target.name + suffix
        temp = new / name
        self.files.pop(target.name, None)
        try:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            if needed is not None:
                ensure_space(new, needed, target)
            yield temp
            check_stop()  # a Ctrl-C the writer swallowed: nothing is staged
            if self.owner is not None:
                self.owner[1](target)
            with open(temp, "rb") as written:
                os.fsync(written.fileno())
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            fault = _write_failure(exc, target, needed, self.owner)
            if fault is None:
                raise
            raise fault from exc
        self.files[target.name] = temp

    def commit(self) -> None:
        """Rename every staged file into place, the file each replaces kept aside (a hard link
        in ``scratch/old``) until the last rename is done; a failure puts back what was replaced."""
        if self.scratch is None:
            return
        if not self.files:  # (every write failed or was given up: nothing to commit)
            self.discard()
            return
        # (target, where its old file is kept, its staged file): what each rename did is read
        # from the files by _undo_stage (a Ctrl-C comes as soon as a rename returns, before a
        # flag set after it could say so)
        done: list[tuple[Path, Path, Path]] = []
        target = self.folder / next(iter(self.files))
        try:
            check_stop()  # a Ctrl-C a writer swallowed: nothing is committed
            if self.owner is not None:
                self.owner[1](target)
            kept_in = self.scratch / _OLD
            kept_in.mkdir()
            for name, temp in self.files.items():
                target = self.folder / name
                done.append((target, kept_in / name, temp))
                _keep_aside(target, kept_in / name)
                os.replace(temp, target)
        except BaseException as exc:
            left = _undo_stage(done)
            if left:
                mixed = _mixed_commit(target, exc, left, self.folder, self.scratch / _OLD)
                if any(kept is not None for _, kept, _ in left):
                    self.stranded = True
                    _release(self.scratch)  # (a leftover now, holding the old files: not removed)
                else:
                    self.discard()
                if isinstance(exc, Exception):
                    raise mixed from exc
                raise
            self.discard()
            fault = _write_failure(exc, target, None, self.owner)
            if fault is None:
                raise
            raise fault from exc
        sync_folder(self.folder)
        self.discard()  # (the old files kept aside, now let go; no created folder is empty)

    def discard(self) -> None:
        """Remove the scratch folder (and the folders made for it, left empty)."""
        if self.made is not None and not self.stranded:
            if self.made.scratch is not None:
                _release(self.made.scratch)
                shutil.rmtree(self.made.scratch, ignore_errors=True)
            remove_empty(self.made.folders)
        self.made = None


def _keep_aside(target: Path, kept: Path) -> None:
    """Give the file at ``target`` a second name ``kept`` (a hard link; where the file system
    has none, the file itself, renamed there); nothing when there is no file."""
    if not os.path.lexists(target):
        return
    try:
        os.link(target, kept, follow_symlinks=False)
    except OSError:
        os.replace(target, kept)


#: A file a failed stage commit could not put back: its target, the old file kept for it
#: (``None``: there was none) and whether the target holds the stage's new file.
_Left = tuple[Path, Path | None, bool]


def _undo_stage(done: list[tuple[Path, Path, Path]]) -> list[_Left]:
    """Put back what a failed commit of a stage replaced (``done``: each target, where its old
    file is kept, its staged file: kept if that is there, replaced if the staged file is gone);
    the files it could not put back, in the commit's order (none: the folder is as it was)."""
    left: list[_Left] = []
    for target, keep, temp in reversed(done):
        kept = keep if os.path.lexists(keep) else None
        replaced = not os.path.lexists(temp)
        if kept is not None and (replaced or not os.path.lexists(target)):
            try:
                os.replace(kept, target)
            except OSError:
                left.append((target, kept, replaced))
        elif replaced:
            try:
                os.unlink(target)
            except FileNotFoundError:
                pass
            except OSError:
                left.append((target, None, True))
        elif kept is not None:  # (a second name of the file still in place: no old file to tell)
            with contextlib.suppress(OSError):
                os.unlink(kept)
    left.reverse()
    return left


def _mixed_commit(
    target: Path, exc: Exception, left: list[_Left], folder: Path, kept_in: Path
) -> PartlyWrittenError:
    """The error of a stage commit that failed at ``target`` and could not put everything back
    (``left``): what ``folder`` holds now (which files are new, which are missing), where the old
    files are kept (``kept_in``, under their own names) and how to restore them. Exact, since
    "nothing was written" would be false: some of the new files are in place."""
    fault = write_fault(exc, target)
    named = [(path.name, old, is_new) for path, old, is_new in left]  # (all in one folder)
    new = [name for name, _, is_new in named if is_new]
    missing = [name for name, old, is_new in named if old is not None and not is_new]
    kept = [name for name, old, _ in named if old is not None]
    fresh = [name for name, old, _ in named if old is None]
    said = []
    if new:
        said.append(f"{_listing(new)} in {folder} {_are(new)} new (this write's)")
    if missing:
        said.append(f"{_listing(missing)} {_are(missing)} missing from {folder}")
    state = " and ".join(said) + ", every other file there as it was"
    if kept:
        state += f"; the old {_listing(kept)} {_are(kept)} kept in {kept_in}"
    steps = [f"move the file{'s' if len(kept) > 1 else ''} in {kept_in} back into {folder}"] if kept else []
    if fresh:
        steps.append(f"delete {_listing(fresh)} (new, with no earlier file)")
    return PartlyWrittenError(
        target,
        f"{fault.reason if fault else exc}; putting back what it replaced failed too: {state}",
        errno=fault.errno if fault else None,
        hint=" and ".join(steps) + ", then run the same command again",
    )


#: The file names a message lists before it counts the rest.
_NAMES_SHOWN = 5


def _listing(names: list[str]) -> str:
    """``a.png, b.png and 3 more``."""
    rest = len(names) - _NAMES_SHOWN
    return ", ".join(names[:_NAMES_SHOWN]) + (f" and {rest} more" if rest > 0 else "")


def _are(names: list[str]) -> str:
    """The verb for a listing of ``names``."""
    return "is" if len(names) == 1 else "are"


def _put_back_kept(kept_in: Path, folder: Path) -> None:
    """Rename each file a killed stage kept in ``kept_in`` back into ``folder`` where its
    target is missing (the rename of the new file did not follow)."""
    if not kept_in.is_dir():
        return
    for kept in kept_in.iterdir():
        if not os.path.lexists(folder / kept.name):
            with contextlib.suppress(OSError):
                os.replace(kept, folder / kept.name)


#: The stage :func:`atomic_path` writes into its folder join (``None``: none).
_STAGE: contextvars.ContextVar[_Stage | None] = contextvars.ContextVar("cnnspec_stage", default=None)


@contextlib.contextmanager
def staged_folder(folder: str | Path) -> Iterator[_Stage]:
    """Make the files written into ``folder`` inside (through :func:`atomic_path` and what uses
    it) appear there all together, or none: predict's masks of a whole folder of images.

    :func:`write_together` for any number of files: each write goes to one scratch folder
    inside ``folder`` (``.cnnspec-staged.<8 characters>.tmp``, on the same file system: the
    renames are atomic), made at the first write, with its free-space check and ``fsync``; one
    lock and one folder for all, where a group's file holds a descriptor and a folder each (5,000
    masks outran the open-file limit). Only once the block ends without an error are the files
    renamed into place, in the order they were written, each file they replace kept aside (a hard
    link) until the last rename is done. A failure or a Ctrl-C inside leaves ``folder`` as it was
    (a folder it made is removed again); one in a rename puts back the files already replaced. A
    kill between two renames can still leave some files new and some old; its scratch folder is a
    leftover (:func:`is_atomic_leftover`) that the next write into ``folder`` removes, putting
    back a kept file whose target is missing. A :func:`staged_folder` of the same folder inside
    another joins it; writes to other folders are not staged. It yields the stage, whose
    ``files`` name what was written (once the block is over: moved into place).
    """
    where = Path(os.path.abspath(folder))
    outer = _STAGE.get()
    if outer is not None and outer.folder == where:  # joins the stage around it, which commits
        yield outer
        return
    stage = _Stage(where)
    # Every step inside one handler, as in write_together: a Ctrl-C can come at any of them.
    try:
        try:
            _STAGE.set(stage)
            yield stage
        finally:
            _STAGE.set(outer)
        stage.commit()
    except BaseException as exc:
        _STAGE.set(outer)  # (again: the Ctrl-C may have come as the finally clause began)
        stage.discard()
        raise_stop_behind(exc)
        raise
