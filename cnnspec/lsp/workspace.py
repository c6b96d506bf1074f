"""The specs of the editor's workspace folders that are not open: what a rename must cover too.

An editor expects a rename to cover the workspace, not only the open files: renaming a block of
a shared library must rewrite its calls in the specs on disk that ``use:`` it. :func:`scan`
lists the spec files of the workspace folders (``*.yaml``/``*.yml``), leaving out what is no
user's spec: hidden folders (``.git``, ``.venv``), ``node_modules``, ``build``/``dist``, a
Python environment (a folder holding ``pyvenv.cfg``) and the packaged zoo. It stops at
:data:`MAX_FILES` files and says so (:attr:`Scan.capped`: the caller refuses rather than cover
half the workspace), and leaves out files over :data:`MAX_BYTES`.

:func:`readers` then loads (composes and compiles, TF-free) the files that read a given file:
through ``extends``/``use`` or a backbone's ``spec:``, directly or through another spec, as the
compiler's reads record them. Only a file whose text names the stem of a file already known to
read it is loaded (``use: [lib.yaml]`` names ``lib``), so a large workspace costs one read per
file and a compile per likely reader. An open document's editor text wins over its disk text
(the ``reader``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cnnspec.errors import SpecError
from cnnspec.lsp.documents import SearchRun, check, is_library, looks_like_spec, path_of
from cnnspec.lsp.navigation import automatic_names
from cnnspec.lsp.scopes import Automatic
from cnnspec.resources import zoo_dir
from cnnspec.spec.compose import Reader, load_library
from cnnspec.spec.loader import SOURCE_TEXTS, SourceDoc

log = logging.getLogger("cnnspec.lsp")

#: At most this many spec files are scanned (the rest of a larger workspace is not looked at).
MAX_FILES = 2000
#: At most this many folders are walked (a home folder opened as the workspace is not).
MAX_FOLDERS = 20000
#: A larger file is not read (no spec is that long; a data file may be).
MAX_BYTES = 1 << 20
#: The suffixes of spec files.
SUFFIXES = (".yaml", ".yml")
#: Folders that hold no user's spec (build outputs, dependencies).
SKIPPED = frozenset({"node_modules", "build", "dist", "__pycache__", "site-packages"})


@dataclass
class Scan:
    """The spec files of the workspace, in a stable order."""

    files: list[Path] = field(default_factory=list)
    #: Whether the scan stopped at a limit (more spec files, or folders, were there).
    capped: bool = False
    #: The files left out for their size.
    too_big: list[Path] = field(default_factory=list)
    #: The limit the scan ran under.
    limit: int = MAX_FILES


@dataclass(frozen=True)
class Spec:
    """A spec (or block library) of the workspace, loaded from the text it has now."""

    path: Path
    text: str
    #: The composed document with locations.
    doc: SourceDoc
    #: The automatic names of its block calls (``None``: a library, which has no model).
    automatic: Automatic | None
    #: Whether it compiles (a library: loads).
    compiles: bool
    #: Every file its compilation read (itself, its includes, its backbones' specs, theirs),
    #: with the text read: its locations are positions in these texts.
    texts: dict[Path, str]

    @property
    def files(self) -> frozenset[Path]:
        return frozenset(self.texts)


def scan(folders: Iterable[Path], limit: int | None = None, max_bytes: int | None = None) -> Scan:
    """The spec files under ``folders`` (see the module), at most ``limit`` of them in at most
    :data:`MAX_FOLDERS` folders; ``limit``/``max_bytes``: by default :data:`MAX_FILES` and
    :data:`MAX_BYTES` (the module's values when called)."""
    limit = MAX_FILES if limit is None else limit
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    found = Scan(limit=limit)
    seen: set[Path] = set()
    zoo = _zoo()
    walked = 0
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            walked += 1
            if walked > MAX_FOLDERS:
                found.capped = True
                return found
            here = Path(root)
            if "pyvenv.cfg" in files or _is_zoo(here, zoo):
                dirs[:] = []  # a Python environment, the packaged zoo: no user's specs
                continue
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED)
            for name in sorted(files):
                if name.startswith(".") or not name.endswith(SUFFIXES):
                    continue
                path = _resolved(here / name)
                if path is None or path in seen:
                    continue
                if len(found.files) + len(found.too_big) >= limit:
                    found.capped = True
                    return found
                seen.add(path)
                if _size(path) > max_bytes:
                    found.too_big.append(path)
                else:
                    found.files.append(path)
    return found


def _resolved(path: Path) -> Path | None:
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):  # a link loop, a name the OS refuses
        return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # (gone since the walk: reading it fails, and it is left out then)


def _zoo() -> Path | None:
    try:
        return zoo_dir().resolve()
    except (OSError, ImportError):
        return None


def _is_zoo(folder: Path, zoo: Path | None) -> bool:
    return zoo is not None and _resolved(folder) == zoo


def text_of(path: Path, reader: Reader | None) -> str | None:
    """The editor's text of ``path`` when it is open, else the disk's (``None``: unreadable)."""
    text = reader(path) if reader is not None else None
    if text is not None:
        return text
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def readers(
    file: Path, found: Scan, reader: Reader | None, stems_of: Iterable[Path] = (), skip: Iterable[Path] = ()
) -> list[Spec]:
    """The specs of the scan whose compilation reads ``file`` (see the module), loaded;
    ``stems_of``: files known to lead to it (the open specs that read it: a file naming one of
    them is loaded too); ``skip``: files not to load (those the caller has already). A file
    that does not load is left out (its own diagnostics say why), as is one whose text names
    none of the stems: it cannot name a file that reads ``file``."""
    stems = {path.stem for path in (file, *stems_of)}
    skipped = set(skip)
    pending: dict[Path, str] = {}
    for path in found.files:
        if path in skipped:
            continue
        text = text_of(path, reader)
        if text is not None and looks_like_spec(text):
            pending[path] = text
    result: list[Spec] = []
    saved = dict(SOURCE_TEXTS)  # (the loader records what it reads: diagnostics quote it)
    try:
        grown = True
        while grown:  # a file may read `file` through another (lib2.yaml `use:`-s lib.yaml)
            grown = False
            for path, text in list(pending.items()):
                if not any(stem in text for stem in stems):
                    continue
                del pending[path]
                spec = load(path, text, reader)
                if spec is None or file not in spec.files:
                    continue
                result.append(spec)
                stems.add(path.stem)
                grown = True
    finally:
        SOURCE_TEXTS.clear()
        SOURCE_TEXTS.update(saved)
    return result


def reads(doc: SourceDoc, file: str) -> bool:
    """Whether the composed ``doc`` reads ``file`` (a location's file name): it is the spec's
    own file, or one it includes (``extends``/``use``; not a backbone's spec)."""
    return file == doc.file or file in doc.includes


def closed_readers(file: str, found: Scan, have: Sequence[SourceDoc], reader: Reader | None) -> list[Spec]:
    """The specs of the scan ``found`` that read ``file`` (:func:`readers`) other than the
    documents ``have`` (the open specs) and the files they include, which those documents
    cover; a file naming the stem of one of them that reads ``file`` is tried too."""
    skip = {path_of(name) for each in have for name in (each.file, *each.includes)}
    near = {path_of(each.file) for each in have if reads(each, file)}
    return readers(path_of(file), found, reader, near, skip)


def load(path: Path, text: str, reader: Reader | None) -> Spec | None:
    """``path`` (whose text is ``text``) composed and compiled as the editor checks it, with
    the text of every file that read (an open one's: the editor's); ``None`` when it does not
    load at all."""
    texts: dict[Path, str] = {path: text}

    def reading(target: Path) -> str | None:
        if target not in texts:
            found = text_of(target, reader)
            if found is None:
                return None  # (the composer says why, in its words)
            texts[target] = found
        return texts[target]

    try:
        if is_library(text):
            try:
                doc = load_library(path, reader=reading)
            except SpecError:
                return None
            return Spec(path, text, doc, None, True, texts)
        analysis = check(path, reading, None, SearchRun(repeat=[]))
    except Exception:  # a compiler bug in one file must not stop a rename elsewhere: skip it
        log.exception("loading %s for a rename", path)
        return None
    if analysis.doc is None:
        return None
    compiled = analysis.compiled
    automatic = automatic_names(analysis.doc, compiled.ir) if compiled is not None else None
    return Spec(path, text, analysis.doc, automatic, compiled is not None, texts)


def roots(folders: Sequence[str], root: str | None) -> list[Path]:
    """The workspace's folders as paths: ``folders`` (file-system paths of the workspace
    folders), else ``root`` (the root path of an older client), else none."""
    chosen = [f for f in folders if f] or ([root] if root else [])
    found: list[Path] = []
    for folder in chosen:
        path = _resolved(Path(folder))
        if path is not None and path.is_dir() and path not in found:
            found.append(path)
    return found
