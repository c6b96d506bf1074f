"""Which of a ``--data`` source's images are a run's own: the images it trained, validated or
was tested on.

``evaluate``, ``visualize`` and ``report`` score ``--data`` as a test set; ``calibrate`` fits a
temperature on it. Images the model trained on flatter those figures, and a temperature
fitted on the run's test images leaves none unseen to judge it. A whole-data content hash
(lock.json's ``data.content_hash``) tells the run's own named or ``.npz`` data, but not a
folder or CSV: training hashes its train, validation and test file lists together, and a
``--data`` folder is all one test list, so no hash of it is ever the run's. The images are
compared one by one instead (:func:`own_images`): files by what they are (the same file under
a link or another spelling of its path, and by their bytes for a run trained with
``--hash-content``), arrays by their pixels.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from cnnspec.reporting.run import Run, TestData

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
    """How many of the ``images`` a ``--data`` source holds are the run's own, per split of the
    run (``counts``: :data:`SPLITS` → images; an image of two splits counts in the first), and
    how that was told (``by``: a key of :data:`MATCHED_BY`)."""

    images: int
    counts: dict[str, int] = field(default_factory=dict)
    by: str = "file"

    @property
    def total(self) -> int:
        """The ``--data`` images that are any of the run's."""
        return sum(self.counts.values())

    @property
    def trained(self) -> int:
        """The ``--data`` images the run trained or validated on (its test images excluded)."""
        return self.counts.get("training", 0) + self.counts.get("validation", 0)

    def listed(self, splits: tuple[str, ...] = SPLITS) -> str:
        """``36 training, 9 validation and 15 test``: the counts of ``splits`` that are not 0."""
        parts = [f"{self.counts[s]:,} {s}" for s in splits if self.counts.get(s)]
        return parts[0] if len(parts) < 2 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def own_images(run: Run, held_out: TestData) -> OwnImages | None:
    """How many of ``held_out``'s images (a ``--data`` source's test images) are ``run``'s
    training, validation or test images; ``None`` where that can't be told: a model without
    its run folder, a run that recorded no split seed, run data that no longer loads, or
    images of another kind than the run's (files against arrays).

    Files are compared by :func:`~cnnspec.training.filelist.file_identity` (a link, a second
    spelling of a path and a hard link are the file they name), and for a run trained with
    ``--hash-content`` by their bytes too. Arrays whose source hashes as the run's data are
    the run's test split (``--data digits`` for a digits run draws the run's own split);
    others are compared image by image by their pixels."""
    from cnnspec.training.filelist import ImageFiles

    x = held_out.x
    lock = run.lock or {}
    recorded = (lock.get("data") or {}).get("content_hash")
    if not isinstance(x, ImageFiles) and recorded is not None and recorded == held_out.content_hash:
        return OwnImages(len(x), {"test": len(x)}, "split")  # (no need to load the run's data)
    dataset = _run_dataset(run)
    if dataset is None or dataset.streamed != isinstance(x, ImageFiles):
        return None
    parts = (dataset.x_train, dataset.x_val, dataset.x_test)
    if isinstance(x, ImageFiles):
        return _same_files(x, parts, by_content=(lock.get("data") or {}).get("hash") == "content")
    return _same_pixels(np.asarray(x), [np.asarray(part) for part in parts])


#: What a note of ``--data`` images the run trained on says they do to scores (evaluate's).
SCORED = "the test figures may include images the model trained on"
#: What they do to a temperature fitted on them (calibrate's).
FITTED = "the temperature is fitted partly on images the model trained on, where it is surer than on new ones"


def seen_note(own: OwnImages | None, data: str, run_name: str, consequence: str = SCORED) -> str | None:
    """The note of ``--data`` images that ``run_name`` trained or validated on (``None``: none,
    or it can't be told): scoring other data is what ``--data`` is for, but figures on the
    model's training images say little of images it never saw (``consequence``: what the
    images do to the command's figures, :data:`SCORED` or :data:`FITTED`)."""
    if own is None or own.trained == 0:
        return None
    return (
        f"{own.trained:,} of the {own.images:,} images of --data {data} are images {run_name} "
        f"trained or validated on ({own.listed(SPLITS[:2])}: {MATCHED_BY[own.by]}): {consequence}"
    )


def _run_dataset(run: Run) -> Any:
    """The run's own data, split as its training split it (file lists for a folder or CSV,
    nothing decoded); ``None`` where that can't be had: no run folder or spec, no recorded
    seed, or a source that no longer loads (moved, changed into something else)."""
    from cnnspec.errors import SpecError, UsageError
    from cnnspec.reporting.run import run_config, split_seed
    from cnnspec.training.data import load_dataset

    if run.run_dir is None or run.compiled is None:
        return None
    try:
        config = run_config(run.compiled)
        seed, recorded = split_seed(run, config)
        if not recorded:  # another seed draws other splits: counting by them would mislead
            return None
        return load_dataset(run.compiled, config, seed)
    except (SpecError, UsageError, OSError):
        return None


def _same_files(x: Any, parts: tuple[Any, ...], *, by_content: bool) -> OwnImages:
    """:class:`OwnImages` of the files ``x`` among the run's split files ``parts`` (training,
    validation, test), by identity, and by bytes where ``by_content`` (a run hashed with
    ``--hash-content``: a copy of its images is still its images)."""
    from cnnspec.training.filelist import real_paths

    owner: dict[str, str] = {}  # file identity → the first run split that lists it
    for split, part in zip(SPLITS, parts, strict=True):
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
        runs_files = [(split, path) for split, part in zip(SPLITS, parts, strict=True) for path in part.paths]
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


def _same_pixels(x: np.ndarray, parts: list[np.ndarray]) -> OwnImages:
    """:class:`OwnImages` of the images ``x`` among the run's split arrays ``parts`` (training,
    validation, test), by their dtype, shape and bytes."""
    owner: dict[bytes, str] = {}
    for split, part in zip(SPLITS, parts, strict=True):
        if part.dtype != x.dtype or part.shape[1:] != x.shape[1:]:
            continue  # (images of another dtype or shape are never the same pixels)
        for digest in _digests(part):
            owner.setdefault(digest, split)
    counts = dict.fromkeys(SPLITS, 0)
    for digest in _digests(x):
        split = owner.get(digest)
        if split is not None:
            counts[split] += 1
    return OwnImages(len(x), counts, "pixels")


def _digests(images: np.ndarray) -> list[bytes]:
    """One digest per image of ``images`` (first axis) over its bytes."""
    rows = np.ascontiguousarray(images).reshape(len(images), -1)
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in rows]
