"""A failed write as one clean error: the :class:`~cnnspec.errors.WriteError` that names the file,
the space the write needed and the space that was free, and the fix the hint gives.

:func:`write_fault` reads it from an exception of a writer (an ``OSError`` with an errno, h5py's
``errno = 28`` in its message, the words of a full disk), :func:`library_write_fault` from a
library that writes files of its own (TensorFlow names the file in its message), and
:func:`ensure_space` refuses a large write before a byte of it is written. :mod:`cnnspec.fileio`'s
atomic writes raise them; the commands' hints say :func:`write_fix` (docs/faults.md).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path

from cnnspec.errors import WriteError

#: HDF5 (through h5py) reports a failed system call only in its message: ``errno = 28``.
_ERRNO_TEXT = re.compile(r"\berrno\s*=\s*(\d+)")
#: Messages of wrapped errors (TensorFlow's, Keras') that name the fault only in words.
_FAULT_WORDS = {code: os.strerror(code) for code in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS)}

#: What to do about a failed write's errno before trying again (others: check the disk).
_WRITE_FIXES = {
    errno.ENOSPC: "free some space there",
    errno.EDQUOT: "free some space there (or raise the disk quota)",
    errno.EROFS: "make that disk writable",
    errno.EACCES: "get permission to write there",
    errno.EPERM: "get permission to write there",
}


def write_fix(code: int | None) -> str:
    """The fix for a write that failed with errno ``code``, as every command's hint says it
    (docs/faults.md): free space, make the disk writable, get permission, or check the disk."""
    return _WRITE_FIXES.get(code or 0, "check the disk")


def write_fault(error: BaseException, target: str | Path, needed: int | None = None) -> WriteError | None:
    """The :class:`~cnnspec.errors.WriteError` an exception of a writer stands for, or ``None``
    when it is no disk fault (a bug, a converter failure: the caller reports it as it is).

    Looks through the exception and its causes for an ``OSError`` with an errno, an HDF5
    ``errno = N`` in the text, or the words of a full disk, an I/O error or a read-only disk."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, WriteError):
            return current
        if isinstance(current, OSError) and current.errno:
            return disk_fault(target, current.errno, current.strerror or os.strerror(current.errno), needed)
        text = str(current)
        found = _ERRNO_TEXT.search(text)
        if found is not None:
            code = int(found.group(1))
            return disk_fault(target, code, os.strerror(code), needed)
        for code, words in _FAULT_WORDS.items():
            if words.lower() in text.lower():
                return disk_fault(target, code, words, needed)
        current = current.__cause__ or current.__context__
    return None


#: TensorFlow names the file it failed to write before the system's words, ``PATH; No space
#: left on device`` (``RUN/data-cache_0.data-00000-of-00001.tempstate1234; …``: tf.data's cache
#: writes a ``.tempstateN`` file first, gone with the failure, and renames it to the file).
_NAMED_FAULT = re.compile(
    r"(?P<path>[^\s;]+?)(?:\.tempstate\d+)?; (?P<words>"
    + "|".join(re.escape(words) for words in _FAULT_WORDS.values())
    + ")"
)
#: The faults that only a write meets: a read never runs out of space or finds a disk read-only.
_WRITE_ONLY = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def library_write_fault(
    error: BaseException, fallback: str | Path | None, needed: int | None = None
) -> WriteError | None:
    """The :class:`~cnnspec.errors.WriteError` of a failure inside a library that writes files
    of its own (TensorFlow: ``data.cache: disk``'s cache file, TensorBoard's logs), or ``None``
    when it is no disk fault (a cnnspec ``WriteError`` is ``None`` too: it is raised as it is).

    TensorFlow says a full disk as a ``ResourceExhaustedError``, the type of its out of memory,
    and names the file in the message (``PATH; No space left on device``): that file is named,
    else ``fallback`` (``None``: only a named file counts). Only a full disk, a quota or a
    read-only disk counts without a named file, and an I/O error only with one: an I/O error may
    come from reading the data."""
    if isinstance(error, WriteError):
        return None
    text = str(getattr(error, "message", None) or error)
    named = _NAMED_FAULT.search(text)
    if named is not None:
        code = next(code for code, words in _FAULT_WORDS.items() if words == named["words"])
        return disk_fault(Path(named["path"]), code, named["words"], needed)
    if fallback is None:
        return None
    fault = write_fault(error, fallback, needed)
    return fault if fault is not None and fault.errno in _WRITE_ONLY else None


def disk_fault(target: Path, code: int | None, reason: str, needed: int | None) -> WriteError:
    """The :class:`~cnnspec.errors.WriteError` of a write to ``target`` that failed with errno
    ``code`` (``reason``: the words for it where there is none), with the space it ``needed`` and
    the space that was free."""
    # the system's words for the errno, not a library's paragraph (h5py's names buffers and offsets)
    words = os.strerror(code) if code else reason
    return WriteError(target, words, errno=code, needed=needed, free=free_space(target.parent))


def free_space(folder: str | Path) -> int | None:
    """Bytes free to this user in ``folder``'s file system (its nearest existing ancestor's);
    ``None`` when even that can't be asked."""
    here = Path(folder) if str(folder) else Path(".")
    while not here.exists() and here != here.parent:
        here = here.parent
    try:
        return shutil.disk_usage(here).free
    except OSError:
        return None


def ensure_space(folder: str | Path, needed: int, target: str | Path) -> None:
    """Raise :class:`~cnnspec.errors.WriteError` (ENOSPC) when ``folder`` has fewer than
    ``needed`` bytes free, before anything is written to ``target``."""
    free = free_space(folder)
    if free is not None and free < needed:
        raise WriteError(
            target,
            "not enough free space; nothing was written",
            errno=errno.ENOSPC,
            needed=needed,
            free=free,
        )
