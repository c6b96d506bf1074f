"""Output files named on the command line: an existing one is replaced only when it is cnnspec's.

``report -o``, ``visualize -o``, ``schema -o``, ``build -o`` and ``build --plot`` name files
that a user may already have (a page, a picture, a spec, a trained model). Such a file is
replaced when cnnspec wrote that kind of file (it carries cnnspec's mark, recognised by the
``ours`` function the command passes) or with ``--force``; otherwise the command refuses before
doing any work, so rerunning a command replaces its own output and never the user's file.

The marks are read from the head of the file only (:func:`cnnspec.fileio.read_head`): a check runs before the
work, on any file a user might name, and must neither be slow nor read a huge file whole.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from cnnspec.errors import UsageError


def refuse_foreign(path: Path, option: str, force: bool, ours: Callable[[Path], bool]) -> None:
    """Refuse, as a :class:`UsageError` (exit 2), to replace the existing file ``path`` that
    cnnspec did not write (``ours(path)`` is false), unless ``force``. ``option`` is the option
    that named it (``-o``, ``--out``, ``--plot``), for the hint.

    Called after a command's other checks of ``path`` (a folder, not writable, the input
    itself), and before its work. A link counts as the file it points to: the atomic write
    replaces the link, not that file, but the user named the link for what it shows."""
    if force or not os.path.lexists(path) or ours(path):
        return
    raise UsageError(
        f"{path} already exists and carries no mark of cnnspec's",
        f"pass --force to replace it, or choose another {option} (cnnspec replaces only the files "
        "it marked as its own; one written by an earlier version carries no mark)",
    )


def written_to(out: Path | None, run_dir: Path | None) -> tuple[str, str | None]:
    """How :func:`~cnnspec.fileio.check_writable` names where a command writes, and its hint:
    ``--out`` where given; else the folder the command writes into, the run folder (or the model
    file's folder, for a model outside a run), never "--out", which was not given."""
    if out is not None:
        return "--out", None
    where = "the run folder" if run_dir is not None else "the model file's folder"
    return where, "write elsewhere with --out (a place on a writable disk where you have permission)"


def refuse_idle_force(force: bool, option: str, why: str) -> None:
    """Refuse ``--force`` where the command writes no file it could replace (``why`` says what
    it does instead: ``prints the code``): the flag would be dropped without a word, and the
    user who meant to replace a file would find it unchanged."""
    if force:
        raise UsageError(
            f"--force replaces an existing {option} file, and this command {why}",
            f"name the file with {option}, or leave out --force",
        )


def enclosing_run(folder: Path) -> Path | None:
    """The run folder (with lock.json) that ``folder`` is, or lies in (resolved); ``None``
    where there is none."""
    try:
        here = folder.resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL: no run to name
        return None
    from cnnspec.reporting.runs import is_run

    return next((candidate for candidate in (here, *here.parents) if is_run(candidate)), None)
