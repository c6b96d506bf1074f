"""Which images of one split are among a run's own splits: the one comparison behind every
"images the model trained on" check.

``evaluate``/``calibrate --data`` (:mod:`cnnspec.reporting.own_data`), the ensemble's check of
its members (:mod:`cnnspec.reporting.ensemble`) and ``train`` starting from the weights of a
run folder (:mod:`cnnspec.training.weights_split`) all ask it. Files are compared by what they
are (:func:`~cnnspec.training.filelist.file_identity`: the same file under a link or another
spelling of its path), and by their bytes where a run hashed them (``--hash-content``); arrays
by their pixels (the same dtype, shape and bytes). Images of another kind than the run's (files
against arrays) are never the same images.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: The run's splits, in the order an image found in more than one is counted in.
SPLITS = ("training", "validation", "test")

#: How two images were found to be one, as the notes say it.
MATCHED_BY = {
    "file": "the same files",
    "content": "the same files, or files of the same bytes",
    "pixels": "the same pixels",
    "split": "the run's own split of its data",
}


@dataclass(frozen=True)
class OwnImages:
    """How many of the ``images`` compared are the run's own, per split of the run
    (``counts``: :data:`SPLITS` → images; an image of two splits counts in the first), and
    how that was told (``by``: a key of :data:`MATCHED_BY`)."""

    images: int
    counts: dict[str, int] = field(default_factory=dict)
    by: str = "file"
    #: compared by their pixels: each image's run split (``None``: not the run's), in order, so
    #: that a command can set the run's own images aside (``calibrate --data``); else ``None``
    owners: tuple[str | None, ...] | None = field(default=None, compare=False, repr=False)

    @property
    def total(self) -> int:
        """The images compared that are any of the run's."""
        return sum(self.counts.values())

    @property
    def trained(self) -> int:
        """The images compared that the run trained or validated on (its test images excluded)."""
        return self.counts.get("training", 0) + self.counts.get("validation", 0)

    def listed(self, splits: tuple[str, ...] = SPLITS) -> str:
        """``36 training, 9 validation and 15 test``: the counts of ``splits`` that are not 0."""
        parts = [f"{self.counts[s]:,} {s}" for s in splits if self.counts.get(s)]
        return parts[0] if len(parts) < 2 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def seen_images(images: Any, parts: Sequence[Any], *, by_content: bool = False) -> OwnImages:
    """How many of ``images`` (an array of images, or
    :class:`~cnnspec.training.filelist.ImageFiles`) are among a run's ``parts``: its training,
    validation and (where given) test images, in :data:`SPLITS`' order. ``by_content``: files
    are also compared by their bytes (a run trained with ``--hash-content``: a copy of its
    images is still its images). A part of another kind than ``images`` holds none of them."""
    from cnnspec.training.filelist import ImageFiles

    named = list(zip(SPLITS, parts, strict=False))
    if isinstance(images, ImageFiles):
        files = [(split, part) for split, part in named if isinstance(part, ImageFiles)]
        return _same_files(images, files, by_content=by_content)
    arrays = [(split, np.asarray(part)) for split, part in named if not isinstance(part, ImageFiles)]
    return _same_pixels(np.asarray(images), arrays)


def _same_files(x: Any, parts: list[tuple[str, Any]], *, by_content: bool) -> OwnImages:
    """:class:`OwnImages` of the files ``x`` among the run's split files ``parts`` (each with
    its split's name), by identity, and by bytes where ``by_content``."""
    from cnnspec.training.filelist import real_paths

    owner: dict[str, str] = {}  # file identity → the first run split that lists it
    for split, part in parts:
        for real in real_paths(part.paths):
            owner.setdefault(real, split)
    counts = dict.fromkeys(SPLITS, 0)
    unmatched: list[Path] = []
    for path, real in zip(x.paths, real_paths(x.paths), strict=True):
        split = owner.get(real)
        if split is None:
            unmatched.append(path)
        else:
            counts[split] += 1
    found_by_content = 0
    if by_content and unmatched:
        runs_files = [(split, path) for split, part in parts for path in part.paths]
        for split in _by_bytes(unmatched, runs_files):
            counts[split] += 1
            found_by_content += 1
    return OwnImages(len(x.paths), counts, "content" if found_by_content else "file")


def _by_bytes(paths: list[Path], runs_files: list[tuple[str, Path]]) -> list[str]:
    """The run split of each of ``paths`` whose bytes are a run file's (``runs_files``: split
    and path); only files of a size some run file has are read, each at most once."""
    from cnnspec.fileio import sha256_file

    by_size: dict[int, list[tuple[str, Path]]] = {}
    for split, path in runs_files:
        size = _size(path)
        if size is not None:
            by_size.setdefault(size, []).append((split, path))
    digests: dict[str, str] = {}  # a run file's SHA-256 → its split (the first split's)
    hashed: set[int] = set()
    found = []
    for path in paths:
        size = _size(path)
        if size is None or size not in by_size:
            continue
        if size not in hashed:  # the run's files of this size, read once
            hashed.add(size)
            for split, run_file in by_size[size]:
                try:
                    digests.setdefault(sha256_file(run_file), split)
                except OSError:  # (gone since it was listed: not one of the images compared)
                    continue
        try:
            split = digests.get(sha256_file(path))
        except OSError:
            continue
        if split is not None:
            found.append(split)
    return found


def _size(path: Path) -> int | None:
    """The size of the file at ``path`` in bytes; ``None`` where it can't be read."""
    try:
        return path.stat().st_size
    except OSError:
        return None


def _same_pixels(x: np.ndarray, parts: list[tuple[str, np.ndarray]]) -> OwnImages:
    """:class:`OwnImages` of the images ``x`` among the run's split arrays ``parts`` (each with
    its split's name), by their dtype, shape and bytes."""
    owner: dict[bytes, str] = {}
    for split, part in parts:
        if part.dtype != x.dtype or part.shape[1:] != x.shape[1:]:
            continue  # (images of another dtype or shape are never the same pixels)
        for digest in _digests(part):
            owner.setdefault(digest, split)
    counts = dict.fromkeys(SPLITS, 0)
    owners = tuple(owner.get(digest) for digest in _digests(x))
    for split in owners:
        if split is not None:
            counts[split] += 1
    return OwnImages(len(x), counts, "pixels", owners)


def _digests(images: np.ndarray) -> list[bytes]:
    """One digest per image of ``images`` (first axis) over its bytes."""
    if len(images) == 0:  # (no row to infer the width of)
        return []
    rows = np.ascontiguousarray(images).reshape(len(images), -1)
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in rows]
