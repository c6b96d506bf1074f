"""What every data source ends in: a :class:`Dataset` (the splits' images and targets, the class
names, the content hash a run records), and the located error of a source (:func:`source_error`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnspec.analysis.datafit import source_loc
from cnnspec.errors import SpecError, SpecPath, format_path
from cnnspec.training import subsets

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec


SOURCE: SpecPath = ("data", "source")
DOWNLOAD_TIMEOUT_S = 20.0


@dataclass
class Dataset:
    """Images (N, H, W, C) and targets of each split, plus the names of the classes.

    The images keep their stored dtype. ``target`` says what ``y_*`` hold:

    - ``"class"``: int64 (N,) class indices (single-label classification);
    - ``"multilabel"``: float32 (N, K) 0/1, one column per label;
    - ``"regression"``: float32 (N, D), one column per value;
    - ``"mask"``: uint8 (N, H, W) class index per pixel (int32 beyond 255 classes; H, W the
      images'); for the ``shapes`` source class 0 is the background.

    ``class_names`` names the classes, labels, values or mask classes (K, D, or the mask's
    classes). A multi-output model's data has one target per output: ``target`` is then a
    dict output name → kind, each ``y_*`` a dict output name → array of that kind, and
    ``target_names`` holds each output's names (``class_names`` is then the first output's).

    The images are arrays, or :class:`~cnnspec.training.filelist.ImageFiles` for streamed
    sources (image folders and CSVs, class targets).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: dict[str, Any] = field(default_factory=dict)
    target: str | dict[str, str] = "class"
    target_names: dict[str, list[str]] = field(default_factory=dict)
    #: streamed sources: files the header check left out (``data.on_bad_file: skip``)
    bad_files: list[tuple[Path, str]] = field(default_factory=list)
    #: streamed sources: hash the files' bytes, not their names, sizes and times (--hash-content)
    hash_content: bool = False
    #: things the user should know about the splits (a split without some of the data's
    #: classes); not part of the content hash
    notes: list[str] = field(default_factory=list)
    #: integer images: the value of a full-intensity pixel, which ``data.rescale: auto``
    #: divides by (255; 65535 for uint16 images: :func:`~cnnspec.analysis.pixel_scaling.integer_pixel_max`)
    pixel_max: float = 255.0
    #: a multi-output npz: where each output's mask class names come from, as messages say it
    #: (the npz file's class_names_<output>, or its class_names); not part of the content hash
    mask_names_said: dict[str, str] = field(default_factory=dict)
    #: with ``data.classes``: the data's classes before it selected some, in their label order,
    #: so a ``training.class_weight`` key naming a class it left out is refused, not read as a
    #: label index of the renumbered classes (:func:`class_weights`); not part of the content hash
    source_class_names: list[str] | None = None

    @property
    def streamed(self) -> bool:
        """The images are files read batch by batch (:class:`ImageFiles`), not arrays."""
        from cnnspec.training.filelist import ImageFiles

        return isinstance(self.x_train, ImageFiles)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def integer_pixels(self) -> bool:
        return bool(np.issubdtype(self.x_train.dtype, np.integer))

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.x_train), "validation": len(self.x_val), "test": len(self.x_test)}

    def content_hash(self, moved: Sequence[tuple[str, str]] = ()) -> str:
        """SHA-256 over every split's dtype, shape and bytes, and the class names; for streamed
        files, over their names, sizes and modification times (or bytes: ``hash_content``) and
        the image size they are read at, so the pixels are never all read for it; their names
        and the class names in Unicode NFC, whichever form the file system wrote them in.
        ``moved``: folders the files were moved from since, as (now, before) pairs: the names
        are hashed as they were (:func:`~cnnspec.training.filelist.fingerprint`)."""
        digest = hashlib.sha256()
        if self.streamed:
            for files in (self.x_train, self.x_val, self.x_test):
                digest.update(f"{files.shape}".encode())
                digest.update(files.fingerprint(content=self.hash_content, moved=moved).encode())
            for labels in (self.y_train, self.y_val, self.y_test):
                digest.update(np.ascontiguousarray(labels, dtype="int64").tobytes())
            # in NFC, as the file names (a macOS copy of the folders is the same data)
            digest.update("\0".join(map(subsets.name_key, self.class_names)).encode())
            return digest.hexdigest()
        for part in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test):
            arrays = [part] if not isinstance(part, dict) else [part[k] for k in sorted(part)]
            for array in arrays:
                digest.update(f"{array.dtype.str}{array.shape}".encode())
                digest.update(np.ascontiguousarray(array).tobytes())
        digest.update("\0".join(self.class_names).encode())
        if self.target != "class":  # unchanged hashes for the classification data of older runs
            digest.update(repr(self.target).encode())
        return digest.hexdigest()


def source_error(
    message: str,
    compiled: CompiledSpec,
    path: SpecPath = SOURCE,
    hint: str | None = None,
    *,
    key: bool = False,
) -> SpecError:
    """A located error of the data source (``code="data"``) at ``path``, ``data.source`` unless
    said otherwise."""
    # (an error about a mapping's key, not its value, is located at the key: `seven` of `{seven: 2}`)
    loc = compiled.doc.key_loc(path) if key else source_loc(compiled, path)
    return SpecError.single(message, loc, format_path(path), code="data", hint=hint)
