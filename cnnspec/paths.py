"""Questions about a user's path that answer, not raise, where the OS won't say.

Python 3.11's ``Path.is_file``/``is_dir``/``exists`` raise ``PermissionError`` (a folder of
another user's on the way) and ``OSError(ENAMETOOLONG)`` (a name longer than the file system
allows) instead of answering ``False``; a command given such a path ended in "internal error
… please report it", exit 3. These answer ``False`` there, and :func:`refuse_unreadable` says
why, as a usage error (exit 2), where a command needs the path.

It sits at the bottom, beside :mod:`cnnspec.fileio`: the spec's includes and backbones (spec/)
and the run-reading commands (reporting/) ask the same questions of the same paths.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from cnnspec.errors import UsageError
from cnnspec.fileio import clipped_name

#: The errors ``Path.exists`` reads as "nothing there" (a link loop included): no refusal.
_NOTHING_THERE = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)


def is_file(path: str | Path) -> bool:
    """``Path.is_file``, ``False`` where the OS won't say (:func:`unreadable` says why)."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):  # ValueError: an embedded NUL
        return False


def is_dir(path: str | Path) -> bool:
    """``Path.is_dir``, ``False`` where the OS won't say (:func:`unreadable` says why)."""
    try:
        return Path(path).is_dir()
    except (OSError, ValueError):
        return False


def exists(path: str | Path) -> bool:
    """``Path.exists``, ``False`` where the OS won't say (:func:`unreadable` says why)."""
    try:
        return Path(path).exists()
    except (OSError, ValueError):
        return False


def unreadable(path: str | Path) -> str | None:
    """Why the OS won't say what is at ``path`` (``Permission denied``, ``File name too
    long``), or ``None`` where it says, whether or not anything is there. A link loop is
    nothing there, as ``Path.exists`` has it (each command says what it makes of a link that
    leads nowhere)."""
    try:
        os.stat(path)
    except OSError as exc:
        return None if exc.errno in _NOTHING_THERE else (exc.strerror or str(exc))
    except UnicodeEncodeError:
        return unencodable(path)
    except ValueError:
        return "the name holds a NUL character"
    return None


def working_folder_gone() -> bool:
    """Whether the process's working folder was removed (or renamed away) since it started:
    ``os.getcwd()`` then fails, and so does every relative path and ``Path.cwd()`` (Python's
    error for it, a FileNotFoundError without a file name, read as cnnspec's bug)."""
    try:
        os.getcwd()
    except FileNotFoundError:
        return True
    return False


def unencodable(path: str | Path) -> str | None:
    """Why ``path`` cannot be handed to the OS in this process's file-name encoding (``None``:
    it can): a name with a letter outside ASCII where Python runs in a C locale without its
    UTF-8 mode (``LC_ALL=C PYTHONUTF8=0``). ``Path.exists`` answers ``False`` for it, which
    said "does not exist" of a file that is there."""
    try:
        os.fsencode(path)
    except UnicodeEncodeError:
        import sys

        return (
            f"its name has characters that the file-name encoding here ({sys.getfilesystemencoding()}) "
            "cannot write; run with a UTF-8 locale (LANG=C.UTF-8) or Python's UTF-8 mode (PYTHONUTF8=1)"
        )
    return None


def refuse_unreadable(path: str | Path, expected: str, hint: str | None = None) -> None:
    """Raise :class:`~cnnspec.errors.UsageError` (exit 2) where the OS won't say what is at
    ``path`` (:func:`unreadable`): ``expected {expected}; cannot read {path}: {reason}``,
    where ``expected`` names the argument or option and what it should name."""
    reason = unreadable(path)
    if reason is not None:
        raise UsageError(
            f"expected {expected}; cannot read {shown(Path(path))}: {reason}",
            hint or "choose a path you may read (with names the file system allows)",
        )


def shown(path: Path) -> str:
    """``path`` as a message shows it: each name longer than 40 characters clipped to its start
    and end (a 300-character name filled the terminal)."""
    return str(Path(*(clipped_name(part) for part in path.parts))) if path.parts else str(path)
