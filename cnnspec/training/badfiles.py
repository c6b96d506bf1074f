"""Bad image files, found before training and named by path (TensorFlow-free).

:func:`check_files` opens every file of a streamed source with Pillow in a thread pool and
*verifies* it without decoding the pixels (PNG: every chunk's CRC up to IEND; the others: the
header), so a truncated or mislabelled file is reported before the first step instead of as
a TensorFlow error halfway through an epoch. Files that pass this check and still fail to
decode are caught by the pipeline (:mod:`cnnspec.training.stream`) and reported the same way.

``data.on_bad_file: error`` (the default) stops with the list (:func:`describe`);
``skip`` leaves the files out, warns, and writes ``bad_files.txt`` in the run folder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cnnspec.errors import SpecError, UsageError
from cnnspec.fileio import write_atomic
from cnnspec.jsontext import library_text
from cnnspec.training.imagefiles import IMAGE_FORMATS, MAX_PIXELS, pillow

#: how many bad files an error message lists before it gives a count
SHOWN = 20
BAD_FILES = "bad_files.txt"
#: What to do about bad files of a spec's source: the spec can leave them out.
SPEC_HINT = "remove or replace these files, or set data.on_bad_file: skip to leave them out"
#: What to do about bad files of ``evaluate --data``: a file served alone has no spec to set
#: ``data.on_bad_file`` in, and a run's spec is the run's record, not a setting for --data.
DATA_HINT = (
    "remove or replace these files, or move them out of the --data folder: every image file "
    "--data lists is read (a run whose spec sets data.on_bad_file: skip leaves them out)"
)

#: What to do about an image given to predict (or visualize --image) that fails to decode.
INPUT_HINT = (
    "remove or replace these files, or leave them out of the inputs (move them out of a folder given)"
)


class BadFilesError(SpecError):
    """The header check's refusal of unreadable image files (``data.on_bad_file: error``):
    a spec error where the spec's source holds them; told as bad input files, with
    :data:`DATA_HINT`, where ``evaluate --data`` gave them (:func:`data_error`)."""


def data_error(message: str) -> UsageError:
    """The usage error (exit status 2, as for other bad input files) for the bad files of
    ``evaluate --data`` (``message``: the header check's or the stream's, naming them)."""
    return UsageError(message, DATA_HINT)


def decode_error(bad: Sequence[tuple[Path | str, str]], hint: str = SPEC_HINT) -> UsageError:
    """The usage error for image files that passed the header check and failed to decode
    (``bad``: path and reason), whether the stream or an indexed read found them: one message
    for both, with the hint of where the files came from (:data:`SPEC_HINT`, :data:`DATA_HINT`)."""
    return UsageError("expected every image file to decode; " + describe(bad), hint)


def decode_reason(exc: Exception) -> str:
    """Why a file failed to decode, from the error of :func:`cnnspec.training.imagefiles.load_image`
    (its hint is Pillow's reason; the message names the file, which :func:`describe` does)."""
    hint = getattr(exc, "hint", None)
    return f"cannot be decoded ({hint or exc})"


def check_file(path: Path) -> str | None:
    """Why ``path`` is not a usable image (``None``: it looks fine), without decoding it."""
    Image = pillow()

    try:
        with Image.open(path) as image:
            kind, (width, height) = image.format, image.size
            if kind not in IMAGE_FORMATS:
                return f"a {kind} image, not PNG/JPEG/BMP/GIF"
            if width * height > MAX_PIXELS:
                return f"{width}×{height} is more than {MAX_PIXELS:,} pixels"
            image.verify()
    except Image.DecompressionBombError:
        return f"more than {MAX_PIXELS:,} pixels"
    except Exception as exc:  # Pillow raises many types for broken files; each is a bad file
        # (Pillow quotes the path: a name that is no UTF-8 as `\udce9`, where the file is `\xe9`)
        text = library_text(str(exc).splitlines()[0][:160]) if str(exc) else type(exc).__name__
        return f"not a readable image ({text})"
    return None


def check_files(paths: Sequence[Path], workers: int | None = None) -> list[tuple[Path, str]]:
    """``(path, reason)`` of every bad file in ``paths``, in list order, checked in parallel
    (Pillow and file reads release the GIL for most of the work)."""
    workers = workers or min(32, (os.cpu_count() or 1) * 4)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        reasons = list(pool.map(check_file, paths, chunksize=64))
    return [(path, reason) for path, reason in zip(paths, reasons, strict=True) if reason is not None]


def describe(bad: Sequence[tuple[Path | str, str]], total: int | None = None) -> str:
    """``N bad image file(s) (of TOTAL):`` and up to :data:`SHOWN` lines ``path: reason``, then
    a count of the rest."""
    head = f"{len(bad)} bad image file(s)" + (f" of {total}" if total is not None else "") + ":"
    # one line per file: a line break in a file's name is shown escaped, never as a new line
    lines = [f"  {path}: {reason}".replace("\n", "\\n") for path, reason in bad[:SHOWN]]
    if len(bad) > SHOWN:
        lines.append(f"  ... and {len(bad) - SHOWN} more")
    return "\n".join([head, *lines])


def skipped_note(bad: Sequence[tuple[Path | str, str]], listed_in: Path | None = None) -> str:
    """The note on the files the header check left out (``data.on_bad_file: skip``), one text
    for every command that reads a source with that policy: where they are listed
    (``listed_in``: a run's ``bad_files.txt``), else their paths, up to :data:`SHOWN` (a
    command reading ``--data`` writes no list, and the files left out must still be named)."""
    note = f"left out {len(bad)} unreadable image file(s) (data.on_bad_file: skip)"
    if listed_in is not None:
        return f"{note}; they are listed in {listed_in}"
    more = f" and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
    # (one line: a line break in a file's name is shown escaped, as describe shows it)
    named = ", ".join(str(path).replace("\n", "\\n") for path, _ in bad[:SHOWN])
    return f"{note}: {named}{more}"


def write_list(run_dir: Path, bad: Sequence[tuple[Path | str, str]]) -> Path:
    """``bad_files.txt``: one ``path<TAB>reason`` line per file left out."""
    text = "".join(f"{path}\t{reason}\n" for path, reason in bad)
    # a name that is not UTF-8 is written as its own bytes, as the file system gave it
    return write_atomic(run_dir / BAD_FILES, text.encode("utf-8", "surrogateescape"))
