"""File lists of streamed image sources (TensorFlow-free): class folders and labelled CSVs.

A streamed source is never read whole: it is listed (paths and integer labels), split by seed
from the list, and decoded batch by batch while training (:mod:`cnnspec.training.stream`).
:class:`ImageFiles` stands where an in-memory source has its pixel array: it has the array's
``shape``, ``dtype`` and ``len``, and indexing it decodes just the images asked for (with
:func:`cnnspec.training.imagefiles.load_image`, the decode every other part of cnnspec uses),
so ``evaluate``, ``visualize`` and ``report`` read a streamed source as they read an array.
"""

from __future__ import annotations

import csv
import hashlib
import os
import stat
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.analysis.datafit import REPEATED_COLUMN_HINT
from cnnspec.training.imagefiles import (
    IMAGE_EXTENSIONS,
    UnreadableImage,
    is_image_name,
    is_other_image_name,
    load_image,
    unreadable_images_error,
)
from cnnspec.training.subsets import name_key

#: the sub-folders of a folder that is already split (used as given)
SPLIT_FOLDERS = ("train", "validation", "test")
#: the names a split layout's validation folder goes by (one of them; ``val/`` is common)
VALIDATION_FOLDERS = ("validation", "val", "valid")
#: how a split layout must look, for the hint of a folder that is almost one
LAYOUT_HINT = (
    "an already split folder holds train/ and test/ (and one of validation/, val/, valid/), each "
    "of class folders, and nothing else; otherwise name the folder of class folders itself"
)


class ListingError(Exception):
    """A source that cannot be listed (no such folder, a CSV without the named column, ...)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass
class Listing:
    """Image files with their integer labels, and the class names the labels index."""

    paths: list[Path]
    labels: np.ndarray
    class_names: list[str]


def not_found(path: Path, folder: bool) -> str:
    """Why ``path`` is not the folder (``folder``) or file a source names: it does not exist, or
    it is of the other kind (a file given as a folder, a folder given as a file), which "does
    not exist" would misreport for a path the user can see; or its name cannot be written in
    the file-name encoding of this process (a C locale without Python's UTF-8 mode: ASCII), so
    no file of that name could be asked for (:func:`cnnspec.paths.unencodable`)."""
    from cnnspec.paths import unencodable

    if (why := unencodable(path)) is not None:
        return f"{path} cannot be looked for: {why}"
    if folder and path.is_file():
        return f"{path} is a file, not a folder"
    if not folder and path.is_dir():
        return f"{path} is a folder, not a file"
    return f"{path} does not exist"


def name_order(name: str) -> tuple[str, str]:
    """The key names are sorted by: Unicode NFC first (:func:`name_key`), so a folder copied from
    macOS (decomposed names) lists, numbers its classes, splits and hashes as the same folder
    on Linux (composed names) does; then the name itself, so that two spellings of one name in
    one folder still sort the same on every file system. An NFC name (every ASCII one) sorts as
    before, by its code points."""
    return name_key(name), name


def path_order(path: Path) -> tuple[tuple[str, str], tuple[str, str]]:
    """The key files are sorted by: their folder, then their name, each by :func:`name_order`."""
    return name_order(str(path.parent)), name_order(path.name)


def subfolders(folder: Path) -> list[str]:
    """The names of ``folder``'s sub-folders, sorted (:func:`name_order`), hidden ones
    (``.ipynb_checkpoints/``, ``.git/``) left out."""
    return sorted(
        (p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=name_order
    )


def loose_images(folder: Path) -> list[str]:
    """The image files directly in ``folder`` (not hidden), sorted: no class folder holds them
    (images in a format cnnspec does not read too: they are no less out of place)."""
    return sorted(
        p.name
        for p in folder.iterdir()
        if (is_image_name(p.name) or is_other_image_name(p.name))
        and not p.name.startswith(".")
        and p.is_file()
    )


#: what a listing reached, shared by the class folders of one listing: each real folder and real
#: image file (``os.path.realpath``) → (the class folder that reached it, the path it was reached by)
Claims = dict[str, tuple[str, Path]]


def data_files(folder: Path, claims: Claims | None = None, owner: str = "") -> list[Path]:
    """Every file below ``folder`` (os.walk's order, sub-folders and files by name; callers
    sort), hidden files and folders left out, symlinked sub-folders followed (each real folder
    once).

    A symlinked folder that leads back to a folder holding it (a loop) or to ``folder``'s own
    parents, and a folder that cannot be read, are a :class:`ListingError`: either would
    otherwise leave images out (or list them again) without a word.

    ``claims`` (shared by the class folders of one listing, ``owner`` naming this one): a real
    folder or image file that another class folder reached already is a :class:`ListingError`
    naming both paths; a link makes it one image under two labels, so it would be trained on
    as one class and tested on as the other. Reached twice within ``owner`` (two links to it),
    it is listed once, as a folder is without ``claims``."""
    top = os.path.realpath(folder)
    tracks_files = claims is not None
    claims = {} if claims is None else claims
    _claim(claims, top, owner, folder, folder)

    def unreadable(exc: OSError) -> None:
        raise ListingError(
            f"cannot read the folder {exc.filename or folder}: {exc.strerror or exc}",
            "make it readable, or move it out of the data folder (or hide it: a name starting with '.')",
        )

    found: list[Path] = []
    for root, dirs, files in os.walk(folder, onerror=unreadable, followlinks=True):
        real_root = os.path.realpath(root)
        kept = []
        for name in sorted(dirs, key=name_order):
            if name.startswith("."):
                continue  # hidden: .ipynb_checkpoints/, .git/
            path = os.path.join(root, name)
            real = os.path.realpath(path)
            if os.path.islink(path) and any(
                inner == real or inner.startswith(real.rstrip(os.sep) + os.sep) for inner in (top, real_root)
            ):
                raise ListingError(
                    f"expected the folders below {folder} to hold images; the symlinked folder "
                    f"{path} leads back to {real}, a folder that holds it (a loop)",
                    "remove the link, or point it at a folder outside the data folder",
                )
            if _claim(claims, real, owner, Path(path), folder):  # reached twice: listed once
                kept.append(name)
        dirs[:] = kept
        # by name, so that of two links to one image within a class the same one is kept
        # wherever the files lie (os.walk lists them in the file system's order)
        for file in sorted(files, key=name_order):
            if file.startswith("."):
                continue
            path = Path(root) / file
            # a file link (b/x.png → ../a/a0.png) reaches an image no folder link shows, and a
            # hard link (one file under two names) one no path shows
            image = is_image_name(file) or is_other_image_name(file)
            if not image and os.path.islink(path) and not os.path.exists(path):
                raise ListingError(  # (a folder of images, likely: an image is a bad file, said so)
                    f"expected the links below {folder} to lead somewhere; {path} leads to "
                    f"{os.readlink(path)}, which does not exist, so what it held would be left out",
                    "point the link at what it should reach, or remove it",
                )
            if (
                tracks_files
                and image
                and not _claim(claims, file_identity(path, real_root), owner, path, folder)
            ):
                continue
            found.append(path)
    return found


def _claim(claims: Claims, real: str, owner: str, path: Path, folder: Path) -> bool:
    """Claim the real folder or file ``real`` (reached as ``path``; a file's
    :func:`file_identity`) for the class folder ``owner``: ``True`` when it is new, ``False``
    when ``owner`` reached it before (list it once), a :class:`ListingError` naming both paths
    when another class folder did."""
    first = claims.setdefault(real, (owner, path))
    if first[0] == owner:
        return first[1] == path
    kind = "folder" if os.path.isdir(path) else "image file"
    shown = os.path.realpath(path) if real.startswith(HARD_LINKED) else real  # a path, not an inode
    raise ListingError(
        f"expected each image in one class folder of {folder.parent}; the {kind} {shown} is "
        f"reached both as {first[1]} (class {first[0]!r}) and as {path} (class {owner!r}), "
        "through a link (symbolic or hard), so its images would have two labels",
        "remove the link, or copy the images into the class they belong to",
    )


#: How :func:`file_identity` names a file with several hard links: by its device and inode.
HARD_LINKED = "hard-linked file "


def file_identity(path: str | Path, real_parent: str | None = None) -> str:
    """What makes two paths one file: its real path (a symlink is the file it leads to), or,
    for a file with more than one hard link, its device and inode (``hard-linked file
    DEV:INO``), since no path tells two names of one file apart. ``real_parent``: the real
    path of the file's folder, when the caller knows it. One ``lstat`` for a plain file, as
    ``os.path.islink`` costs."""
    text = os.fspath(path)
    try:
        status = os.lstat(text)
        if stat.S_ISLNK(status.st_mode):
            status = os.stat(text)  # the file it leads to, whose other names count too
            real = os.path.realpath(text)
        else:
            parent, name = os.path.split(text)
            real = os.path.join(
                real_parent if real_parent is not None else os.path.realpath(parent or "."), name
            )
    except OSError:  # gone or unreadable: said where it is read
        return os.path.realpath(text)
    if status.st_nlink > 1 and stat.S_ISREG(status.st_mode):
        return f"{HARD_LINKED}{status.st_dev}:{status.st_ino}"
    return real


def real_paths(paths: Sequence[Path]) -> list[str]:
    """:func:`file_identity` of each of ``paths`` (existing files), the folders resolved once
    each: a million files in a few thousand folders cost a million ``lstat`` calls, not a
    resolve of every component of every path."""
    folders: dict[str, str] = {}
    out = []
    for path in paths:
        parent = os.path.dirname(os.fspath(path))
        real_parent = folders.get(parent)
        if real_parent is None:
            real_parent = folders[parent] = os.path.realpath(parent or ".")
        # a file that is a link is the file it leads to (data/test/x.png → ../train/x.png)
        out.append(file_identity(path, real_parent))
    return out


def split_layout(names: Iterable[str]) -> dict[str, str] | None:
    """``{"train": "train", "validation": "val", "test": "test"}`` (the splits present, each with
    its folder's name) when the sub-folder ``names`` are a split layout; ``None`` otherwise."""
    subs = set(names)
    validation = [name for name in VALIDATION_FOLDERS if name in subs]
    if "train" not in subs or len(subs) < 2 or len(validation) > 1:
        return None  # a lone train/ folder is no split (see index_folder)
    if not subs <= {"train", "test", *validation}:
        return None
    layout = {"train": "train"} | ({"validation": validation[0]} if validation else {})
    return layout | ({"test": "test"} if "test" in subs else {})


#: the hint for classes named like splits (train/, validation/, test/ of images): read as a
#: split layout, each "split" then holds images instead of class folders
SPLIT_NAMED_CLASSES_HINT = (
    "if train/, validation/ (or val/, valid/) and test/ are your classes, rename them (e.g. "
    "train_set/): folders named like splits make a train/, test/ layout, whose folders must "
    "hold class folders"
)


def _named_like_a_split(folder: Path) -> bool:
    """Whether ``folder`` is a split folder of a train/, test/ layout (its parent's folders
    are named like splits), so images directly in it are likely a class named like a split."""
    try:
        return folder.name in {*SPLIT_FOLDERS, *VALIDATION_FOLDERS} and (
            split_layout(subfolders(folder.parent)) is not None
        )
    except OSError:
        return False


def _check_not_half_split(folder: Path, names: Sequence[str]) -> None:
    """A ListingError when ``folder`` looks split (a train/, test/ or validation folder that holds
    folders itself): its splits would otherwise become classes. A split layout read here is one
    named where a folder of class folders is read (a test_directory): one of its splits is."""
    split_names = {*SPLIT_FOLDERS, *VALIDATION_FOLDERS}
    looks_split = [n for n in names if n in split_names and subfolders(folder / n)]
    layout = split_layout(names)
    if looks_split and layout is not None:
        test = layout.get("test", layout["train"])
        raise ListingError(
            f"expected {folder} to be a folder of class folders; it is laid out as "
            f"{', '.join(f'{n}/' for n in layout.values())}, a split layout whose splits would be "
            "read as classes",
            f"name one split's folder of class folders instead (e.g. {folder / test})",
        )
    if looks_split:
        raise ListingError(
            f"expected {folder} to be a folder of class folders or a train/, test/ layout; its "
            f"sub-folders {', '.join(f'{n}/' for n in names)} are neither "
            f"({', '.join(f'{n}/' for n in looks_split)} holding folders, as a split does)",
            LAYOUT_HINT,
        )


def _check_entries(folder: Path) -> None:
    """A ListingError for an entry of a class-folder tree that would be left out or break a run
    later: a link that leads nowhere (a class folder, or an image, that is not there), or a name
    that is not UTF-8 (a class's name is written into reports, lock.json and the model's files)."""
    gone = dangling(folder)
    if gone:
        raise ListingError(
            f"expected each entry of {folder} to be there; {gone[0].name} is a link to "
            f"{os.readlink(gone[0])}, which does not exist, so its images would be left out",
            "point the link at the class folder, or remove it (or hide it: a name starting with '.')",
        )
    for entry in sorted(folder.iterdir()):
        raw = os.fsencode(entry.name)
        if entry.is_dir() and not entry.name.startswith(".") and not _is_utf8(raw):
            raise ListingError(
                f"expected class folder names in UTF-8; {folder}/"
                f"{raw.decode('utf-8', 'backslashreplace')} is not, and a class's name is written "
                "into reports and the run's files",
                "rename the folder",
            )


def dangling(folder: Path) -> list[Path]:
    """The links in ``folder`` that lead nowhere (hidden ones left out), sorted by name."""
    return sorted(
        p for p in folder.iterdir() if p.is_symlink() and not p.exists() and not p.name.startswith(".")
    )


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _check_spellings(folder: Path, found: Sequence[str]) -> None:
    """A ListingError for two class folders whose names differ only in their Unicode form
    (``ému`` composed, as Linux writes it, beside ``ému`` decomposed, as macOS does): they
    look the same and would be told apart only by their bytes."""
    first: dict[str, str] = {}
    for name in found:
        other = first.setdefault(name_key(name), name)
        if other != name:
            raise ListingError(
                f"expected distinct class folders in {folder}; {other!r} and {name!r} are the same "
                "name in two Unicode spellings (composed and decomposed characters)",
                "merge their images into one folder",
            )


def _check_classes(
    folder: Path, found: Sequence[str], class_names: Sequence[str], required: Sequence[str]
) -> dict[str, str]:
    """The folder of each training class in a validation or test folder (``{class name: folder
    name}``; the names compared in Unicode NFC, so macOS' decomposed ``ému`` is ``ému``), or a
    ListingError when a class of ``required`` has none or a folder is no training class (its
    images would otherwise be dropped without a word)."""
    folders = {name_key(name): name for name in found}
    missing = [name for name in required if name_key(name) not in folders]
    if missing:
        selected = len(required) < len(class_names)
        raise ListingError(
            f"expected class folders {', '.join(map(repr, missing))} in {folder}",
            "a validation or test folder holds a folder of images for every "
            + ("class data.classes selects" if selected else "training class")
            + f" ({', '.join(map(repr, required))}): add the missing ones"
            + ("" if selected else ", or select the classes it has with data.classes"),
        )
    known = {name_key(name) for name in class_names}
    unknown = sorted(name for name in found if name_key(name) not in known)
    if unknown:
        raise ListingError(
            f"expected the class folders of {folder} among the training classes; received "
            f"{', '.join(map(repr, unknown[:5]))}{' …' if len(unknown) > 5 else ''}",
            f"the training classes are {', '.join(map(repr, class_names))}: remove or rename "
            "the other folders (or hide them: a name starting with '.')",
        )
    return {name: folders[name_key(name)] for name in class_names if name_key(name) in folders}


def _class_files(folder: Path, claims: Claims) -> tuple[list[Path], list[Path]]:
    """The image files below one class folder by sorted folder, then name (:func:`path_order`;
    hidden ones left out,
    symlinked sub-folders followed), and the images in formats cnnspec does not read.

    ``claims`` is shared by every class folder of the listing: a folder or image reached from
    two class folders (``c → a``, ``b/more → ../a``) is an error, not two labels for one image."""
    files = sorted(data_files(folder, claims, folder.name), key=path_order)
    return (
        [path for path in files if is_image_name(path.name)],
        [path for path in files if is_other_image_name(path.name)],
    )


def index_folder(
    folder: Path,
    class_names: Sequence[str] | None = None,
    required: Sequence[str] | None = None,
    select: Callable[[list[str]], Sequence[str]] | None = None,
) -> Listing:
    """The image files of a class-folder tree in Keras' ``index_directory`` order (classes
    sorted, or in ``class_names``' order; each class's files by sorted folder then name), so
    a folder splits as it did when cnnspec read it whole.

    With ``class_names`` (a validation or test folder, labelled as the training folder), the
    classes of ``required`` (default: all) must have a folder; a class without one has no
    images here, its label still its index in ``class_names``.

    ``select`` (``data.classes``): given the class names, those whose folders are read; the
    other folders give their names (labels stay indices among all the classes) and are not
    walked, so what they hold (an empty folder, another image format, thousands of files)
    neither stops nor slows a run that leaves them out.

    Nothing is left out without a word: an almost-split folder (``train/`` beside ``other/``),
    a class folder unknown to ``class_names``, an empty class folder, images lying beside
    the class folders and images in formats cnnspec does not read (WebP, TIFF, ...) are each a
    :class:`ListingError`."""
    if not folder.is_dir():
        raise ListingError(
            f"expected a folder of class sub-folders; {not_found(folder, folder=True)}",
            "name the folder that holds the class folders (DIR/<class name>/<image>.png); a CSV "
            "of image paths and labels is a {csv: FILE} source"
            if folder.is_file()
            else None,
        )
    try:
        loose = loose_images(folder)
    except OSError as exc:  # (a PermissionError traceback before)
        message = f"cannot read the folder {folder}: {exc.strerror or exc}"
        raise ListingError(message, "make it readable") from None
    if loose:
        more = f" (and {len(loose) - 5} more)" if len(loose) > 5 else ""
        raise ListingError(
            f"expected only folders in {folder}; {len(loose)} image file(s) lie directly "
            f"in it, in no class: {', '.join(loose[:5])}{more}",
            SPLIT_NAMED_CLASSES_HINT
            if _named_like_a_split(folder)
            else "move each image into its class's folder (DIR/<class name>/<image>.png), or out of DIR",
        )
    _check_entries(folder)
    found_names = subfolders(folder)
    _check_not_half_split(folder, found_names)
    _check_spellings(folder, found_names)
    if class_names is not None:
        required = class_names if required is None else required
        folders = _check_classes(folder, found_names, class_names, required)
        names = list(class_names)
    else:
        folders, names = {name: name for name in found_names}, found_names
    reading = None if select is None else set(select(list(names)))
    listed: list[tuple[int, str, list[Path]]] = []
    other: list[Path] = []
    claims: Claims = {}  # one for all the class folders: an image reached from two is refused
    for label, name in enumerate(names):
        if name not in folders or (reading is not None and name not in reading):
            continue  # a class data.classes leaves out (its folder, if this one has it, unread)
        files, unreadable = _class_files(folder / folders[name], claims)
        listed.append((label, folders[name], files))
        other.extend(unreadable)
    if other:
        raise ListingError(
            *unreadable_images_error(folder, [p.relative_to(folder).as_posix() for p in other])
        )
    paths: list[Path] = []
    labels: list[int] = []
    for label, name, files in listed:
        if not files:
            raise ListingError(
                f"expected images in every class folder; class folder {folder / name} holds no "
                f"{'/'.join(IMAGE_EXTENSIONS)} files",
                "add its images, or remove the folder (or hide it: a name starting with '.')",
            )
        paths.extend(files)
        labels.extend([label] * len(files))
    if not paths:
        raise ListingError(
            f"expected class sub-folders with images in {folder}; found {len(found_names)} "
            f"sub-folder(s) and no {'/'.join(IMAGE_EXTENSIONS)} files",
            "lay it out as DIR/<class name>/<image>.png",
        )
    return Listing(paths, np.asarray(labels, dtype="int64"), names)


def presplit_folders(folder: Path) -> dict[str, Path] | None:
    """``{"train": …, "validation": …, "test": …}`` (those present) when ``folder`` is laid out
    as ``train/``, ``validation/`` (or ``val/``, ``valid/``), ``test/`` of class folders;
    ``None`` for a plain class tree, and for anything else, which :func:`index_folder` then
    refuses with the reason (images beside the splits, ``val/`` and ``validation/`` both, ...)."""
    try:
        if not folder.is_dir() or loose_images(folder):
            return None
    except OSError:  # a folder it may not list: index_folder says so
        return None
    # a split folder that is a link leading nowhere is still a split (said missing when it is
    # read): left out, `test -> moved` made the test split a slice of train/ without a word
    layout = split_layout(sorted([*subfolders(folder), *(p.name for p in dangling(folder))]))
    return None if layout is None else {split: folder / name for split, name in layout.items()}


def read_csv(
    path: Path,
    image_column: str,
    label_column: str,
    class_names: Sequence[str] | None = None,
    column_hint: str | None = None,
) -> Listing:
    """A labelled CSV: image paths (relative to the CSV's folder) and class labels; the class
    names are the label values, sorted (or ``class_names``, to label a test CSV alike).
    ``column_hint``: the hint for a missing column where the spec's column settings are no
    choice (``--data``: the run's spec reads it); default: set them."""
    if not path.is_file():
        raise ListingError(
            f"expected a CSV file of image paths and labels; {not_found(path, folder=False)}",
            "name the CSV file itself; a folder of class folders is a {directory: DIR} source"
            if path.is_dir()
            else None,
        )
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            # a quote after the comma's space opens a quoted cell (`a.png, "cat"` is the class cat,
            # not `"cat"` with its quotes), as a spreadsheet reads it
            reader = csv.DictReader(handle, skipinitialspace=True)
            # the header stripped as the cells are: "file, label" has the column "label"
            reader.fieldnames = [name.strip() for name in reader.fieldnames or []]
            columns = list(reader.fieldnames)
            for column in (image_column, label_column):
                if column not in columns:
                    raise ListingError(
                        f"expected a column {column!r} in {path.name}; its columns are "
                        f"{', '.join(map(repr, columns)) or 'none (an empty file)'}",
                        column_hint or "set data.source.image_column / label_column to the header's names",
                    )
            _check_columns_once(path, columns, (image_column, label_column))
            # cells stripped: "b0.png, b" (a space after the comma) labels b0.png as b, not " b"
            rows = [(_cell(row, image_column), _cell(row, label_column), reader.line_num) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ListingError(f"expected a readable UTF-8 CSV file; {path.name}: {exc}") from None
    if not rows:
        raise ListingError(f"expected at least one row of images in {path.name}; it has only a header")
    for file, label, line in rows:
        if not file or not label:
            raise ListingError(f"expected an image path and a label on line {line} of {path.name}")
    if class_names is None:  # one class per label, its Unicode spellings (NFC, NFD) one label
        spellings: dict[str, str] = {}
        for _, label, _ in rows:
            spellings.setdefault(name_key(label), label)
        names = sorted(spellings.values(), key=name_order)
    else:
        names = list(class_names)
    index = {name_key(name): i for i, name in enumerate(names)}
    unknown = sorted({label for _, label, _ in rows if name_key(label) not in index})
    if unknown:
        raise ListingError(
            f"expected the labels of {path.name} among the training classes; received "
            f"{', '.join(map(repr, unknown[:5]))}"
        )
    base = path.resolve().parent
    paths = [on_disk(base, file) for file, _, _ in rows]
    missing = [(p, line) for p, (_, _, line) in zip(paths, rows, strict=True) if not p.is_file()]
    if missing:
        # a row naming a folder is said as such: "does not exist", with a hint about where paths
        # are relative to, sent the user after a path that was right
        shown = "; ".join(f"line {line}: {not_found(p, False)}" for p, line in missing[:5])
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        folders = all(p.is_dir() for p, _ in missing)
        raise ListingError(
            f"expected every image the CSV names to be a file; {len(missing)} "
            f"{'are folders' if folders else 'are not'}: {shown}{more}",
            "each row names one image file"
            if folders
            else "paths in the CSV are relative to the CSV's folder",
        )
    _check_unique(path, paths, [line for _, _, line in rows])
    labels = np.asarray([index[name_key(label)] for _, label, _ in rows], dtype="int64")
    return Listing(paths, labels, names)


def _check_columns_once(path: Path, columns: list[str], read: Sequence[str]) -> None:
    """A ListingError when the header names a column that is read (``read``: the image and label
    columns) twice, worded as a values table's repeated column: ``file,label,label`` was taken,
    the csv module keeping the last label of each row. Other repeated names (the blank names of
    a spreadsheet's empty trailing columns) are never read, so they are no fault."""
    for column in read:
        at = [index + 1 for index, name in enumerate(columns) if name == column]  # (counted from 1)
        if len(at) > 1:
            raise ListingError(
                f"expected each column name once in the header of {path.name}; received {column!r} "
                f"at column {at[1]}, the same name as {column!r} at column {at[0]}",
                REPEATED_COLUMN_HINT,
            )


def on_disk(base: Path, file: str) -> Path:
    """The file a CSV row names (relative to ``base``, the CSV's folder, or absolute), each part
    of its path in the Unicode spelling (NFC or NFD) that is on disk where only the other one is:
    a CSV written on macOS names files decomposed that Linux stores composed (and the other way
    round), and the two spellings looked alike in "does not exist". The path as written where it
    exists, and where no spelling does (said missing)."""
    path = base / file
    if file.isascii() or path.exists():  # (an ASCII name has one spelling)
        return path
    found = base
    for part in Path(file).parts:
        spellings = dict.fromkeys([part, *(unicodedata.normalize(form, part) for form in ("NFC", "NFD"))])
        found = next((found / name for name in spellings if (found / name).exists()), found / part)
    return found if found.exists() else path


def _cell(row: dict[str | None, Any], column: str) -> str:
    """A CSV row's cell, stripped (``""`` for a row too short to have it)."""
    value = row.get(column)
    return value.strip() if isinstance(value, str) else ""


def _check_unique(csv_path: Path, paths: Sequence[Path], lines: Sequence[int]) -> None:
    """A ListingError when a CSV names one image file twice: its rows would be split apart, so
    the image (same label or not) could be trained on and tested on."""
    first: dict[str, int] = {}
    repeated: list[str] = []
    for path, line in zip(paths, lines, strict=True):
        seen = first.setdefault(file_identity(path), line)  # a0.png and ./a0.png are one file
        if seen != line:
            repeated.append(f"{path.name} on lines {seen} and {line}")
    if repeated:
        more = f" (and {len(repeated) - 5} more)" if len(repeated) > 5 else ""
        raise ListingError(
            f"expected each image once in {csv_path.name}; {len(repeated)} row(s) repeat an "
            f"image: {'; '.join(repeated[:5])}{more}",
            "remove the repeated rows: an image listed twice can land in both the training "
            "and the test split",
        )


def fingerprint(
    paths: Iterable[Path], *, content: bool = False, moved: Sequence[tuple[str, str]] = ()
) -> str:
    """SHA-256 over each file's name, size and modification time (or its bytes with
    ``content``): cheap enough for a million files, and it changes when a file does. The name
    is hashed in Unicode NFC (:func:`name_key`): the same files keep their hash when copied
    between macOS (decomposed names) and Linux (composed), and an NFC name hashes as before.

    ``moved``: folders the files were moved from, as (now, before) pairs: a file under one is
    hashed under its name before the move (a renamed project's data is the data its run
    recorded, :func:`~cnnspec.reporting.run.run_spec`)."""
    digest = hashlib.sha256()
    for path in paths:
        name = _name_before(str(path), moved)
        digest.update(name_key(name).encode("utf-8", "surrogateescape") + b"\0")
        if content:
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        else:
            info = path.stat()
            digest.update(f"{info.st_size}:{info.st_mtime_ns}".encode())
    return digest.hexdigest()


def _name_before(name: str, moved: Sequence[tuple[str, str]]) -> str:
    """``name`` (a file's path) as it was before the first of the ``moved`` folders (now,
    before) that holds it was moved; unchanged where none does."""
    for now, before in moved:
        if name == now or name.startswith(now.rstrip(os.sep) + os.sep):
            return before + name[len(now) :]
    return name


class ImageFiles:
    """Image files that stand in for a uint8 pixel array ``(n, height, width, channels)``.

    Indexing decodes only the images asked for; ``np.asarray`` decodes them all (for small
    uses such as an exported model's benchmark). The training pipeline reads the paths
    directly (:func:`cnnspec.training.stream.make_stream`).
    """

    dtype = np.dtype("uint8")

    def __init__(
        self,
        paths: Sequence[Path],
        size: tuple[int, int],
        channels: int,
        *,
        cache: str = "none",
        on_bad_file: str = "error",
        bad_hint: str | None = None,
    ) -> None:
        self.paths = list(paths)
        self.size = (int(size[0]), int(size[1]))
        self.channels = int(channels)
        self.cache = cache  # data.cache: none | memory | disk
        self.on_bad_file = on_bad_file  # data.on_bad_file: error | skip
        # what to do about a file that fails to decode when indexed: the spec's hint, or
        # evaluate --data's (a file served alone has no spec to skip it in)
        self.bad_hint = bad_hint

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.paths), *self.size, self.channels)

    @property
    def ndim(self) -> int:
        return 4

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> np.ndarray:
        """One image decoded and resized as training reads it (a ``UsageError`` if unreadable)."""
        path = self.paths[index]
        pixels, _ = load_image(path, self.size, self.channels, name=str(path))
        return pixels

    def subset(self, indices: Sequence[int] | np.ndarray) -> ImageFiles:
        """The files at ``indices``, in that order (nothing is decoded)."""
        return ImageFiles(
            [self.paths[int(i)] for i in indices],
            self.size,
            self.channels,
            cache=self.cache,
            on_bad_file=self.on_bad_file,
            bad_hint=self.bad_hint,
        )

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer)):
            return self._decoded(int(key))
        if isinstance(key, slice):
            key = range(*key.indices(len(self.paths)))
        indices = [int(i) for i in np.asarray(list(key) if isinstance(key, range) else key).reshape(-1)]
        out = np.empty((len(indices), *self.size, self.channels), dtype="uint8")
        for row, index in enumerate(indices):
            out[row] = self._decoded(index)
        return out

    def _decoded(self, index: int) -> np.ndarray:
        """:meth:`load`, a file that fails to decode told as the stream tells it
        (:func:`cnnspec.training.badfiles.decode_error`), so every path gives one error."""
        from cnnspec.training.badfiles import SPEC_HINT, decode_error, decode_reason

        try:
            return self.load(index)
        except UnreadableImage as exc:
            bad = [(self.paths[index], decode_reason(exc))]
            raise decode_error(bad, self.bad_hint or SPEC_HINT) from None

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = self[:]
        return array if dtype is None else array.astype(dtype)

    def fingerprint(self, *, content: bool = False, moved: Sequence[tuple[str, str]] = ()) -> str:
        """:func:`fingerprint` of the files."""
        return fingerprint(self.paths, content=content, moved=moved)
