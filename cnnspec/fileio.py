"""Atomic file writes: a temp file in the same folder, fsync, then rename.

A crash or a failing writer leaves the previous file intact and no temp file behind. Also
:func:`sha256_file`, the one file digest cnnspec computes (data files, saved training state).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path beside ``target``; on success it replaces ``target`` atomically.

    For writers that insist on a path (``model.save``): the temp name keeps ``target``'s
    suffix (or ``suffix``) so format detection by extension still works.
    """
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(
        prefix=f".{target.name}.",
        suffix=suffix if suffix is not None else (target.suffix or ".tmp"),
        dir=folder,
    )
    os.close(handle)
    temp = Path(temp_name)
    try:
        temp.unlink()  # writers such as Keras refuse to overwrite; they create the file
        yield temp
        with open(temp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temp, target)
        _fsync_dir(folder)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise


#: The temp names :func:`atomic_path` makes: ``.<target name>.<8 random characters><suffix>``
#: (``tempfile.mkstemp`` with that prefix; the suffix always begins with a dot).
_TEMP_NAME = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}\.[^/]+")


def is_atomic_temp(name: str) -> bool:
    """Whether a file name has the shape of :func:`atomic_path`'s temp files (one left behind
    by a write that was killed before its rename)."""
    return _TEMP_NAME.fullmatch(name) is not None


def write_atomic(target: str | Path, content: str | bytes) -> Path:
    """Write text or bytes to ``target`` atomically; returns the path."""
    target = Path(target)
    data = content.encode("utf-8") if isinstance(content, str) else content
    with atomic_path(target) as temp, open(temp, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return target


def _fsync_dir(folder: Path) -> None:
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
