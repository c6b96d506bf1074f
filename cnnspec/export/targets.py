"""Where an export goes and what it may replace there: the model file a TARGET names
(:func:`resolve_target`), the default output beside it (:func:`default_output`, in the run's
``export/`` folder), and the checks of the output path: a file of another format, a folder that
is no SavedModel, a link, or an existing export without ``--force`` are refused before anything
is converted.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from cnnspec.errors import UsageError
from cnnspec.export.runtimes import RECORD_FORMAT
from cnnspec.paths import exists, is_dir
from cnnspec.training.modelfile import check_model_file

_SUFFIX = {"tflite": ".tflite", "onnx": ".onnx"}
#: What a SavedModel folder holds (Keras and TensorFlow write these); nothing else is replaced.
SAVED_MODEL_ENTRIES = frozenset(
    {"saved_model.pb", "variables", "assets", "fingerprint.pb", "keras_metadata.pb"}
)
_FORCE_HINT = "add --force to replace it"


def resolve_target(target: Path) -> tuple[Path, Path]:
    """``(model file, output stem)`` for a run folder or a ``.keras`` file.

    A run folder's exports go to ``RUN/export/model.*``; a ``.keras`` file's go beside it. A
    run's own ``RUN/model.keras`` (its folder has ``lock.json``) is the run: ``export``,
    ``predict`` and ``evaluate`` find one export whichever of the two paths they are given.
    """
    target = Path(target)
    if target.name == "model.keras" and target.is_file() and (target.parent / "lock.json").is_file():
        target = target.parent
    if target.is_dir():
        model = target / "model.keras"
        if model.is_file():
            return model, target / "export" / "model"
        if (target / "lock.json").is_file():  # (unfinished, or finished and its model file gone)
            from cnnspec.reporting.run import missing_model_error

            raise missing_model_error(target)
        raise UsageError(
            f"expected a run folder (with model.keras) or a .keras file; {target} is neither",
            "a run folder is what `cnnspec train` writes (runs/<name>-<time>)",
        )
    if not target.exists():
        raise UsageError(f"expected a run folder or a .keras file; {target} does not exist")
    if target.suffix != ".keras":
        check_model_file(target)  # the loader's refusal (an .h5 file, another format), said its way
    return target, target.with_suffix("")


def default_output(stem: Path, fmt: str, quantize: str | None = None) -> Path:
    """``stem_saved_model/``, ``stem.tflite`` (``stem.dynamic.tflite`` …), ``stem.onnx``."""
    if fmt == "savedmodel":
        return stem.with_name(stem.name + "_saved_model")
    tag = f".{quantize}" if quantize else ""
    return stem.with_name(stem.name + tag + _SUFFIX[fmt])


def is_default_output(path: Path, default: Path, folder: Path | None) -> bool:
    """Whether ``path`` is where cnnspec writes this export by itself (``default``, from
    :func:`default_output`) in a place of its own: an ``-o`` link, or a default reached through
    a link (:func:`_linked_place`), is held to ``--force`` like any other existing file."""
    if _linked_place(default, folder) is not None or os.path.islink(path):
        return False
    return os.path.realpath(path) == os.path.realpath(default)


def foreign_file(path: Path, fmt: str) -> Path | None:
    """Which of ``path`` and its record an export there would replace though cnnspec did not
    write it (``None``: neither is there, or the record beside the file names its bytes). A
    SavedModel folder is judged by :func:`check_output`, which replaces only its own files."""
    from cnnspec.export.runtimes import record_path

    record = record_path(path)
    if fmt == "savedmodel" or not (os.path.lexists(path) or os.path.lexists(record)):
        return None
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        data = None
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        return path if os.path.lexists(path) else record
    # cnnspec's record: of the file there, of one moved away (the record stays), or of the
    # export a kill caught between its two renames
    return None


def export_folder(source: Path, stem: Path) -> Path | None:
    """A run folder's ``RUN/export`` (:func:`resolve_target`'s stem is in it, the model is not);
    ``None`` for a ``.keras`` file's exports, which go beside it."""
    return stem.parent if stem.parent != source.parent else None


def _linked_place(default: Path, folder: Path | None) -> str | None:
    """Why ``default`` is no place of cnnspec's own (``None`` when it is): the run's export
    ``folder`` is a link or no folder, or the default file (or SavedModel folder) is a link."""
    if folder is not None and os.path.islink(folder):
        return f"{folder} is a symlink (to {os.readlink(folder)})"
    if folder is not None and os.path.lexists(folder) and not folder.is_dir():
        return f"{folder} is not a folder"
    if os.path.islink(default):
        return f"{default} is a symlink (to {os.readlink(default)})"
    return None


def check_default_place(default: Path, folder: Path | None) -> None:
    """Refuse to write the default output through a link: with ``ln -s ~/elsewhere RUN/export``,
    ``cnnspec export RUN`` wrote (and replaced, as it replaces its default outputs) files there."""
    why = _linked_place(default, folder)
    if why is None:
        return
    where = "the run folder itself" if folder is not None else "the model's own folder"
    raise UsageError(
        f"expected the export's default location to be cnnspec's own; {why}",
        f"cnnspec writes its exports into {where}: remove the link, or export with -o PATH",
    )


def _entries(folder: Path) -> list[str]:
    """The names in ``folder`` (sorted); a :class:`UsageError` when it can't be listed."""
    try:
        return sorted(entry.name for entry in folder.iterdir())
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UsageError(f"expected -o to name a folder that can be read; {folder}: {reason}") from None


#: What a SavedModel's variables/ holds: its index and its data shards.
_VARIABLE_FILE = re.compile(r"variables\.(index|data-\d+-of-\d+)")


def _not_saved_model(folder: Path, entries: list[str]) -> list[str]:
    """What in ``folder`` is no part of a SavedModel export (relative names): an entry a
    SavedModel has not, a ``variables/`` file other than its index and shards, anything in
    ``assets/`` (cnnspec's exports leave it empty), or a missing ``saved_model.pb``. All of it
    would be lost with the folder, which an export replaces whole."""
    foreign = [name for name in entries if name not in SAVED_MODEL_ENTRIES]
    if "saved_model.pb" not in entries:
        foreign.append("no saved_model.pb")
    for sub, keep in (("variables", _VARIABLE_FILE), ("assets", None)):
        inner = folder / sub
        if sub in entries and (inner.is_symlink() or not inner.is_dir()):
            foreign.append(sub)
        elif sub in entries:
            foreign += [f"{sub}/{n}" for n in _entries(inner) if keep is None or not keep.fullmatch(n)]
    return foreign


def check_output(path: Path, fmt: str, *, replace: bool) -> None:
    """Refuse an output that does not fit ``fmt``, and one whose replacing would lose files.

    ``replace``: an existing export there may be replaced (``--force``, or the default output,
    which is cnnspec's own). A folder holding anything but a SavedModel's own entries is never
    replaced: an export replaces the whole folder, and the other files would be lost.
    """
    # (is_dir and exists of cnnspec.paths: a name too long for the file system made Path's
    # raise ENAMETOOLONG, an internal error; check_writable then refuses it as a usage error)
    if fmt == "savedmodel":
        if exists(path) and not is_dir(path):
            raise UsageError(f"expected a folder for the SavedModel; {path} is a file")
        entries = _entries(path) if is_dir(path) else []
        if not entries:
            return
        foreign = _not_saved_model(path, entries)
        if foreign:
            shown = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
            raise UsageError(
                f"expected a new folder or an earlier SavedModel export; {path} holds what no export "
                f"does ({shown})",
                "choose another -o (a SavedModel export replaces the whole folder, so even --force "
                "does not replace a folder with files that are not an export)",
            )
        if not replace:
            raise UsageError(f"expected -o to name a new or empty folder; {path} already exists", _FORCE_HINT)
        return
    if path.suffix != _SUFFIX[fmt]:
        raise UsageError(f"expected an output path ending in {_SUFFIX[fmt]}; received {path}")
    if is_dir(path):
        raise UsageError(f"expected a file path for the {fmt} model; {path} is a folder")
    if replace:
        return
    from cnnspec.export.runtimes import record_path

    for existing in (path, record_path(path)):  # (the record beside it is replaced as well)
        if os.path.lexists(existing):
            raise UsageError(f"expected -o to name a new file; {existing} already exists", _FORCE_HINT)
